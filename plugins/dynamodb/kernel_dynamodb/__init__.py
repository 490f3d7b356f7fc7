"""kernel-dynamodb: an Amazon DynamoDB result store for kernel, in Celery's DynamoDB backend's
table layout.

Each record is an item ``{"id": <Celery's key>, "result": <the encoded record, binary>,
"timestamp": <Unix time>}`` (plus ``ttl`` when it expires) in the table the URL names, as
Celery's backend writes it, so Celery clients and workers using ``dynamodb://`` share results
and chords with kernel ones. The entry-point module is `kernel_dynamodb.plugin`; boto3 is
imported only when the store is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"
