"""Entry point of kernel-riak (``kernel.plugins``: ``riak``). Kept light: httpx and the store
are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``riak://host:port/bucket``.
SCHEMES = ("riak",)

#: Riak's conditional PUTs (If-None-Match, If-Match) are checked before the write, not with it
#: ("this does not prevent concurrent writes", Riak's HTTP API documentation): no atomic
#: counter. Chords run on ``celery.chord_unlock``, as Celery's Riak backend ran them. Waiting
#: polls. Riak keeps no expiry per object: ``kernel results cleanup`` deletes what expired.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=False, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("riak", SCHEMES, Lazy("kernel_riak.store:RiakStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's name and keys (celery.backends.riak in Celery 4); secret: it may hold a password.
    yield SettingSpec("riak_backend_settings", dict, {},
                      "Celery's: {'host': 'localhost', 'port': 8098, 'bucket': 'celery', "
                      "'protocol': 'http'}; the URL's parts win; kernel's keys: "
                      "'bucket_type', 'scheme' ('http' or 'https'), 'username', 'password'",
                      secret=True)
