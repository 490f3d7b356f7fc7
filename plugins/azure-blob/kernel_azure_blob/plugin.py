"""Entry point of kernel-azure-blob (``kernel.plugins``: ``azureblockblob``). Kept light:
azure-storage-blob and the store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``azureblockblob://CONNECTION_STRING`` (or ``DefaultAzureCredential@URL``).
SCHEMES = ("azureblockblob",)

#: Counters are compare-and-swap writes on the blob's ETag (``If-Match``; adds are
#: ``If-None-Match: *``); waiting polls. Chords run with ``celery.chord_unlock``, as Celery's
#: backend runs them (it cannot count), so Celery and kernel workers share them.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("azureblockblob", SCHEMES,
                          Lazy("kernel_azure_blob.store:AzureBlobStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's names and defaults (celery.backends.azureblockblob), then kernel's one.
    yield SettingSpec("azureblockblob_container_name", str, "celery",
                      "the container results are kept in")
    yield SettingSpec("azureblockblob_base_path", str, "",
                      "what every blob's name starts with (joined as it is: end it with /)")
    yield SettingSpec("azureblockblob_connection_timeout", int | float, 20,
                      "seconds to connect (at most a quarter of broker_connection_timeout)")
    yield SettingSpec("azureblockblob_read_timeout", int | float, 120,
                      "seconds to wait for a reply (at most broker_connection_timeout)")
    yield SettingSpec("azureblockblob_create_container", bool, True,
                      "create the container when it is missing, as Celery does; off for "
                      "credentials that may not create containers")
