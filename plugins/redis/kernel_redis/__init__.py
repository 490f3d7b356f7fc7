"""kernel-redis: a Redis transport and result store for kernel.

Both speak Celery's Redis layout (kombu's list envelope and priority sub-lists, the ``unacked``
hash, ``celery-task-meta-<id>`` result keys with pub/sub notification), so Celery clients and
workers can share a Redis server with kernel ones. The entry-point module is
`kernel_redis.plugin`; redis-py is imported only when a capability is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
