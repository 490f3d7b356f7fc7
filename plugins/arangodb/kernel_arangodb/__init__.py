"""kernel-arangodb: an ArangoDB result store for kernel, on python-arango, in the layout of
Celery's ArangoDB backend.

Each record is a document ``{"_key": <Celery's key>, "task": <the encoded record>}`` in the
database and collection the URL names (``celery``/``celery`` by default, as Celery's), so
Celery clients and workers using ``arangodb://`` share results with kernel ones. The
entry-point module is `kernel_arangodb.plugin`; python-arango is imported only when the store
is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
