"""A Django app's tasks module, found by ``app.autodiscover_tasks()``."""

from kernel import shared_task


@shared_task(name="shop.checkout")
def checkout(order: int) -> str:
    return f"order {order} paid"
