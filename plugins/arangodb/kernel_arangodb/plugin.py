"""Entry point of kernel-arangodb (``kernel.plugins``: ``arangodb``). Kept light: python-arango
and the store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``arangodb://user:pass@host:port/database/collection``.
SCHEMES = ("arangodb",)

#: Adds are inserts (a unique ``_key``), counters replacements checked against the ``_rev``
#: read: atomic. Chords run on ``celery.chord_unlock``, as Celery's ArangoDB backend (which has
#: no counter) runs them, so Celery and kernel workers share them. Waiting polls.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("arangodb", SCHEMES, Lazy("kernel_arangodb.store:ArangoDBStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's name and keys (celery.backends.arangodb); secret: it may hold a password.
    yield SettingSpec("arangodb_backend_settings", dict, {},
                      "Celery's: {'host': '127.0.0.1', 'port': 8529, 'database': 'celery', "
                      "'collection': 'celery', 'username', 'password', 'http_protocol': "
                      "'http', 'verify': False}; the URL's parts win", secret=True)
    yield SettingSpec("arangodb_create_collection", bool, False,
                      "create the collection (and its TTL index) when it is missing; Celery "
                      "never does, so by default a missing collection is an error")
