"""kernel-elasticsearch: Elasticsearch and OpenSearch result stores for kernel, in Celery's
Elasticsearch backend's layout.

Each record is a document ``{"result": <the encoded record>, "@timestamp": ...}`` under Celery's
key in the index the URL names, as Celery's backend writes it, so Celery clients and workers
using ``elasticsearch://`` share results with kernel ones. The entry-point module is
`kernel_elasticsearch.plugin`; the clients are imported only when a store is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
