"""A Django app's tasks module, found by ``app.autodiscover_tasks()``."""

from kernel import shared_task


@shared_task(name="shop.checkout")
def checkout(order: int) -> str:
    return f"order {order} paid"


@shared_task(name="shop.results_with_status")
def results_with_status(status: str) -> int:
    """Reads the database through Django's ORM, from wherever the worker runs it."""
    from django_celery_results.models import TaskResult

    return TaskResult.objects.filter(status=status).count()
