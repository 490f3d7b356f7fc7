"""Entry point of kernel-dynamodb (``kernel.plugins``: ``dynamodb``). Kept light: boto3 and the
store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``dynamodb://key:secret@region:port/table?read=N&write=M&ttl_seconds=S``.
SCHEMES = ("dynamodb",)

#: Counters are DynamoDB's atomic ``UpdateItem ADD``; chords count in Celery's
#: ``chord-unlock-<group>`` item, as Celery's backend does (no chord_unlock task); waiting polls.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("dynamodb", SCHEMES, Lazy("kernel_dynamodb.store:DynamoDBStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's name: it replaces the endpoint the URL implies (and boto3's own settings).
    yield SettingSpec("dynamodb_endpoint_url", str | None, None,
                      "Celery's: the DynamoDB endpoint to use instead of the region's "
                      "(DynamoDB Local, an emulator); boto3's AWS_ENDPOINT_URL_DYNAMODB "
                      "works too")
    yield SettingSpec("dynamodb_create_table", bool, True,
                      "create the table when it is missing, with the URL's read and write "
                      "capacity units, as Celery does; False: a missing table is an error")
