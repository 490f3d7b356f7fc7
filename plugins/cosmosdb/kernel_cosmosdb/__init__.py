"""kernel-cosmosdb: an Azure Cosmos DB (SQL API) result store for kernel, in Celery's
``cosmosdbsql://`` backend's layout.

Each record is an item ``{"id": <Celery's key>, "value": <the encoded record>}`` partitioned
by ``/id``, in the database and container Celery's settings name (``celerydb`` and
``celerycol`` by default), so Celery clients and workers share results with kernel ones. The
entry-point module is `kernel_cosmosdb.plugin`; azure-cosmos is imported only when the store
is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
