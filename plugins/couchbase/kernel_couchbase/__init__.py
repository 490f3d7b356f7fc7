"""kernel-couchbase: a Couchbase result store for kernel, on the Couchbase Python SDK 4, in the
layout of Celery's Couchbase backend.

Each record is the document ``<Celery's key>`` in the bucket's default collection, its value
the record as a JSON string (what the SDK's default transcoder makes of the text Celery
stores), expiring with Couchbase's own document expiry. The entry-point module is
`kernel_couchbase.plugin`; the SDK is imported only when the store is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
