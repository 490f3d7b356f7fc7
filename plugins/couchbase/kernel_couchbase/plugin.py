"""Entry point of kernel-couchbase (``kernel.plugins``: ``couchbase``). Kept light: the
Couchbase SDK and the store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``couchbase://user:pass@host:port/bucket``.
SCHEMES = ("couchbase",)

#: Adds are inserts (refused where a live document is), counters replacements checked against
#: the CAS read: atomic. Chords run on ``celery.chord_unlock``, as Celery's Couchbase backend
#: (which has no counter) runs them. Records expire with Couchbase's document expiry. Waiting
#: polls.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("couchbase", SCHEMES, Lazy("kernel_couchbase.store:CouchbaseStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's name and keys (celery.backends.couchbase); secret: it holds a password.
    yield SettingSpec("couchbase_backend_settings", dict, {},
                      "Celery's: {'host': 'localhost', 'port': None, 'bucket': 'default', "
                      "'username': ..., 'password': ...}; the URL's parts win; kernel's key: "
                      "'scheme' ('couchbase', or 'couchbases' for TLS)", secret=True)
