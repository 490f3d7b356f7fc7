"""kernel-riak: a Riak result store for kernel, over Riak's HTTP API, in the layout Celery's
Riak backend kept (Celery 4; Celery 5 dropped it).

Each record is the object ``<bucket>/<Celery's key>``, its body the record as a JSON string
(``application/json``, what the ``riak`` client wrote for Celery), so results a Celery 4
deployment left in Riak read back. The entry-point module is `kernel_riak.plugin`; httpx is
imported only when the store is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
