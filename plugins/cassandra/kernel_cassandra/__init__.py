"""kernel-cassandra: an Apache Cassandra result store for kernel, in Celery's Cassandra
backend's layout.

A task's records are rows ``(task_id, status, result, date_done, traceback, children)`` of the
table Celery's backend writes, so Celery clients and workers using ``cassandra://`` share
results with kernel ones. The entry-point module is `kernel_cassandra.plugin`; cassandra-driver
is imported only when the store is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
