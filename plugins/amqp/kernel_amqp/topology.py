"""Names and arguments of everything the AMQP transport declares on RabbitMQ.

Queues are declared the way Celery declares them, so a Celery client or worker on the same
broker meets the same topology: queue ``Q`` is durable and bound to the durable direct exchange
``Q`` with routing key ``Q`` (Celery's default queue is ``celery`` on exchange ``celery``).
The one addition is ``x-max-priority`` (10 unless ``max_priority`` says otherwise); a Celery
app sharing the queues sets ``task_queue_max_priority`` to the same number, because RabbitMQ
refuses to redeclare a queue with other arguments.

Delayed messages wait in a cascade of per-queue TTL queues, one per power of two seconds:
``Q.delay.<L>`` holds messages for 2**L seconds (``x-message-ttl``), then dead-letters them
into the topic exchange of the level below. The routing key spells the delay in binary, most
significant bit first (``"0.1.1...1.Q"``), so each level's exchange sends a message into its
TTL queue when its bit is 1 and on to the next level when it is 0; after level 0 the message
reaches ``Q``. Every message of one TTL queue has the same TTL, so expiring only at the head
of the queue (RabbitMQ's rule) never holds a due message behind a later one.
"""

from __future__ import annotations

import math
from typing import Any

from kernel.interfaces.transport import DEAD_LETTER_SUFFIX

#: dead letters of queue ``Q`` live in the ordinary durable queue ``Q`` + this suffix.
DELAY_SUFFIX = ".delay."
#: 28 levels: delays up to 2**28 - 1 seconds (about 8.5 years).
DELAY_LEVELS = 28
MAX_DELAY = 2**DELAY_LEVELS - 1
DEFAULT_MAX_PRIORITY = 10
#: the kernel's API speaks priorities 0..9 (higher first), as AMQP does.
KERNEL_MAX_PRIORITY = 9
#: classic queues (Celery's default) or quorum queues (replicated; they count deliveries in
#: ``x-delivery-count`` and have no priorities).
QUEUE_TYPES = ("classic", "quorum")


def exchange_for(queue: str) -> str:
    return queue


def dead_queue(queue: str) -> str:
    return queue + DEAD_LETTER_SUFFIX


def queue_arguments(max_priority: int | None, queue_type: str = "classic") -> dict[str, Any]:
    if queue_type == "quorum":
        return {"x-queue-type": "quorum"}
    return {"x-max-priority": max_priority} if max_priority else {}


# ---------------------------------------------------------------------------- delays


def delay_exchange(level: int) -> str:
    return f"kernel.delay.{level}"


def delay_queue(queue: str, level: int) -> str:
    return f"{queue}{DELAY_SUFFIX}{level}"


def delay_seconds(not_before: float, now: float) -> int:
    """Whole seconds to wait, rounded up: the message is never delivered early."""
    wait = math.ceil(not_before - now)
    if wait > MAX_DELAY:
        raise ValueError(f"cannot delay a message by {wait} s: the AMQP transport delays by at "
                         f"most {MAX_DELAY} s (about 8.5 years)")
    return max(0, wait)


def delay_bits(seconds: int) -> list[int]:
    """The levels whose TTL queues a delay of `seconds` passes through."""
    return [level for level in range(DELAY_LEVELS) if seconds >> level & 1]


def delay_routing_key(queue: str, seconds: int) -> str:
    bits = ".".join("1" if seconds >> level & 1 else "0"
                    for level in reversed(range(DELAY_LEVELS)))
    return f"{bits}.{queue}"


def _bit_pattern(level: int, bit: str) -> str:
    """Topic pattern matching routing keys whose bit for `level` is `bit`."""
    words = ["*"] * DELAY_LEVELS
    words[DELAY_LEVELS - 1 - level] = bit
    return ".".join(words)


def delay_binding(queue: str, level: int) -> str:
    """Binds ``Q.delay.L`` to the level's exchange: bit L set, destination exactly `queue`."""
    return f"{_bit_pattern(level, '1')}.{queue}"


def pass_down_binding(level: int) -> str:
    """Binds a level's exchange to the one below for every message whose bit L is clear."""
    return f"{_bit_pattern(level, '0')}.#"


def arrival_binding(queue: str) -> str:
    """Binds `queue` to level 0's exchange: bit 0 clear, destination exactly `queue`."""
    return f"{_bit_pattern(0, '0')}.{queue}"


def delay_queue_arguments(queue: str, level: int) -> dict[str, Any]:
    args: dict[str, Any] = {"x-message-ttl": (2**level) * 1000}
    if level:
        args["x-dead-letter-exchange"] = delay_exchange(level - 1)
    else:
        # The last level hands the message straight to its queue.
        args["x-dead-letter-exchange"] = exchange_for(queue)
        args["x-dead-letter-routing-key"] = queue
    return args
