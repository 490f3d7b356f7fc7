"""Entry point of kernel-couchdb (``kernel.plugins``: ``couchdb``). Kept light: httpx and the
store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, hookimpl

#: Celery's: ``couchdb://user:pass@host:port/container``.
SCHEMES = ("couchdb",)

#: Counters are revision-checked updates (a conflict is read again and retried); waiting polls.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("couchdb", SCHEMES, Lazy("kernel_couchdb.store:CouchDBStore"),
                          RESULT_STORE_CAPABILITIES)
