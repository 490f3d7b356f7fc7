"""Entry point of kernel-cosmosdb (``kernel.plugins``: ``cosmosdb``). Kept light: azure-cosmos
and the store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``cosmosdbsql://:{key}@{account}.documents.azure.com``.
SCHEMES = ("cosmosdbsql",)

#: Counters are ETag-checked replaces (a 412 reads again and retries), so they are atomic; yet
#: chords run with ``celery.chord_unlock``, as Celery's cosmosdbsql backend runs them (it has
#: no counter), so Celery and kernel workers share chords. Waiting polls.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("cosmosdbsql", SCHEMES, Lazy("kernel_cosmosdb.store:CosmosDBStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's names and defaults (celery.app.defaults, namespace cosmosdbsql).
    yield SettingSpec("cosmosdbsql_database_name", str, "celerydb",
                      "the Cosmos DB database results are kept in (created if missing)")
    yield SettingSpec("cosmosdbsql_collection_name", str, "celerycol",
                      "the container results are kept in, partitioned by /id (created if "
                      "missing)")
    yield SettingSpec("cosmosdbsql_consistency_level", str, "Session",
                      "the client's consistency level: Strong, BoundedStaleness, Session, "
                      "ConsistentPrefix or Eventual")
    yield SettingSpec("cosmosdbsql_max_retry_attempts", int, 9,
                      "how many times a throttled (429) or unavailable (503) request is "
                      "tried again")
    yield SettingSpec("cosmosdbsql_max_retry_wait_time", int, 30,
                      "the most seconds one call spends retrying throttled requests")
