"""Entry point of kernel-sqlalchemy (``kernel.plugins``: ``sqlalchemy``). Kept light:
SQLAlchemy and the stores are imported by their factories, when an App first needs one."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import (
    Lazy,
    ResultStoreCapabilities,
    ResultStoreSpec,
    ScheduleStoreSpec,
    SettingSpec,
    hookimpl,
)

#: Celery's database backend URLs: ``db+`` and a SQLAlchemy URL.
SCHEMES = ("db+postgresql", "db+postgresql+psycopg", "db+postgresql+psycopg2", "db+mysql",
           "db+mysql+pymysql", "db+mysql+mysqldb", "db+mariadb", "db+mariadb+pymysql",
           "db+sqlite")

#: counters are atomic (one upsert per call), yet chords run with ``celery.chord_unlock`` as
#: Celery's database backend runs them, so Celery and kernel workers share them.
CAPABILITIES = ResultStoreCapabilities(push_wait=False, atomic_counter=True, persistent=True,
                                       multi_process=True, chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("sqlalchemy", SCHEMES,
                          Lazy("kernel_sqlalchemy.results:SqlResultStore"), CAPABILITIES)


@hookimpl
def kernel_schedule_stores() -> Iterable[ScheduleStoreSpec]:
    yield ScheduleStoreSpec("sqlalchemy", SCHEMES,
                            Lazy("kernel_sqlalchemy.schedule:SqlScheduleStore"))


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's names and meanings (celery.backends.database).
    yield SettingSpec("database_table_names", dict, {},
                      "table names by role: {'task': 'celery_taskmeta', 'group': "
                      "'celery_tasksetmeta', 'kv': 'kernel_kv'}")
    yield SettingSpec("database_table_schemas", dict, {},
                      "schemas by role, as database_table_names: {'task': 'results', ...}; "
                      "'beat': the schedule store's tables")
    yield SettingSpec("database_create_tables_at_setup", bool, True,
                      "create missing tables when the store is set up (False: on first use)")
    yield SettingSpec("database_pickled_results", bool, False,
                      "write the result columns pickled, as Celery before 5.7 reads them")
    yield SettingSpec("database_engine_options", dict, {},
                      "keyword arguments for sqlalchemy.create_engine (pool_size, echo, ...)")
