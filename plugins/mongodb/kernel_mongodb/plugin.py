"""Entry point of kernel-mongodb (``kernel.plugins``: ``mongodb``). Kept light: pymongo and the
store are imported by the factory, when an App first needs the store."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's MongoDB backend URLs.
SCHEMES = ("mongodb", "mongodb+srv")

#: counters are atomic (``$inc`` in one ``findAndModify``), yet chords run with
#: ``celery.chord_unlock``, as Celery's MongoDB backend runs them (it cannot join natively), so
#: Celery and kernel workers share them.
CAPABILITIES = ResultStoreCapabilities(push_wait=False, atomic_counter=True, persistent=True,
                                       multi_process=True, chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("mongodb", SCHEMES, Lazy("kernel_mongodb.results:MongoResultStore"),
                          CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's name and keys (celery.backends.mongodb); secret: it may hold a password.
    yield SettingSpec("mongodb_backend_settings", dict, {},
                      "Celery's: {'database': 'celery', 'taskmeta_collection': "
                      "'celery_taskmeta', 'groupmeta_collection': 'celery_groupmeta', "
                      "'options': {MongoClient keyword arguments}, 'user', 'password', "
                      "'host', 'port'}; other keys are MongoClient options too",
                      secret=True)
    yield SettingSpec("mongodb_kv_collection", str, "kernel_kv",
                      "the collection of kernel's own keys (chord counters, revocations, "
                      "unique-task claims), beside Celery's two")
