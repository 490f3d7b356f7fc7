"""Entry point of kernel-couchdb (``kernel.plugins``: ``couchdb``). Kept light: httpx and the
store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, hookimpl

#: Celery's: ``couchdb://user:pass@host:port/container``.
SCHEMES = ("couchdb",)

#: Counters are revision-checked updates (a conflict is read again and retried); waiting polls.
#: Chords run on ``celery.chord_unlock``, as Celery's CouchDB backend (which has no counter)
#: runs them: its workers count nothing, so a chord counted on kernel's keys would never
#: finish on them, and its clients send that task, which kernel workers run.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("couchdb", SCHEMES, Lazy("kernel_couchdb.store:CouchDBStore"),
                          RESULT_STORE_CAPABILITIES)
