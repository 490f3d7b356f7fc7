"""kernel-couchdb: a CouchDB result store for kernel, in Celery's CouchDB backend's layout.

Each record is a document ``{"_id": <Celery's key>, "value": <the encoded record>}`` in the
database the URL names, as Celery's backend writes it, so Celery clients and workers using
``couchdb://`` share results with kernel ones. The entry-point module is
`kernel_couchdb.plugin`; httpx is imported only when the store is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
