"""The orders app's tasks: declared with shared_task, so this app does not import the project."""

from kernel import shared_task

from orders.models import Order


@shared_task
def charge(order_id: int) -> str:
    """Runs in a worker: it finds the order because it was sent after the commit."""
    order = Order.objects.get(pk=order_id)
    order.paid = True
    order.save(update_fields=["paid"])
    return f"charged order {order.pk} ({order.item})"
