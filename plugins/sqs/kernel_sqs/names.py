"""Queue names: kernel's (Celery's) names turned into names SQS takes, as kombu's SQS transport
turns them, so a Celery client and a kernel worker meet on one queue.

SQS takes 1 to 80 characters of letters, digits, ``-`` and ``_`` (a FIFO queue's name ends in
``.fifo``). kombu puts ``queue_name_prefix`` in front, keeps ``-`` and ``_``, turns ``.`` into
``-`` and every other ASCII punctuation character into ``_``, and keeps a ``.fifo`` ending:
``"celery.high"`` → ``"celery-high"``, ``"a:b.fifo"`` → ``"a_b.fifo"``. kernel's dead-letter
queue of ``Q`` is ``Q + ".dead"``, so on SQS it is ``entity_name(Q)`` + ``"-dead"``
(``"orders.fifo.dead"`` → ``"orders-fifo-dead"``, a standard queue: a dead-letter queue needs
no order).
"""

from __future__ import annotations

import re
import string

from kernel.plugin import ConfigurationError

__all__ = ["FIFO_SUFFIX", "MAX_NAME", "entity_name", "is_fifo"]

FIFO_SUFFIX = ".fifo"
MAX_NAME = 80

#: kombu's table: ``.`` → ``-``, other ASCII punctuation but ``-`` and ``_`` → ``_``.
_TABLE = {ord(c): "_" for c in string.punctuation if c not in "-_."}
_TABLE[ord(".")] = "-"
_VALID = re.compile(r"^[A-Za-z0-9_-]+$")


def is_fifo(name: str) -> bool:
    return name.endswith(FIFO_SUFFIX)


def entity_name(queue: str, prefix: str = "") -> str:
    """The SQS name of kernel's queue `queue` (`prefix`: Celery's ``queue_name_prefix``);
    `ConfigurationError` for a name SQS cannot take even so (too long, not ASCII)."""
    name = prefix + queue
    fifo = is_fifo(name)
    stem = name[:-len(FIFO_SUFFIX)] if fifo else name
    sqs = stem.translate(_TABLE) + (FIFO_SUFFIX if fifo else "")
    if not _VALID.match(stem.translate(_TABLE)) or len(sqs) > MAX_NAME:
        raise ConfigurationError(
            f"the queue {queue!r} has no SQS name: SQS takes up to {MAX_NAME} letters, "
            f"digits, '-' and '_' (with the prefix {prefix!r}: {sqs!r}); rename the queue or "
            f"shorten queue_name_prefix")
    return sqs
