from django.db import transaction

from orders.models import Order
from orders.tasks import charge


def place_order(item: str) -> Order:
    """Create the order and charge it once the row is committed: a worker that got the task
    earlier would not find the order (delay_on_commit sends nothing if this rolls back)."""
    with transaction.atomic():
        order = Order.objects.create(item=item)
        charge.delay_on_commit(order.pk)
    return order
