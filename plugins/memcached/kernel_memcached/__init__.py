"""kernel-memcached: a Memcached result store for kernel, in Celery's cache backend's layout.

Records are kept under Celery's keys (``celery-task-meta-<id>``, ``celery-taskset-meta-<id>``)
with ``result_expires`` as the item's time to live, so Celery clients and workers using
``cache+memcached://`` share results with kernel ones. The entry-point module is
`kernel_memcached.plugin`; pymemcache is imported only when the store is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
