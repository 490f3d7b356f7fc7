"""Entry point of kernel-cassandra (``kernel.plugins``: ``cassandra``). Kept light:
cassandra-driver and the store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``cassandra://`` (servers, keyspace and table come from the settings below);
#: kernel also reads ``cassandra://host1,host2:port/keyspace/table``.
SCHEMES = ("cassandra",)

#: Adds are lightweight transactions (``INSERT ... IF NOT EXISTS``); expiry is Cassandra's
#: ``USING TTL``. Counters are not atomic: kernel does not claim compare-and-set updates it has
#: not run against a real Cassandra (the fake it is tested on mangles conditional updates), so
#: chords run on ``celery.chord_unlock``, which is also how Celery's Cassandra backend (which
#: has no counter) runs them.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=False, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("cassandra", SCHEMES, Lazy("kernel_cassandra.store:CassandraStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's names (celery.backends.cassandra).
    yield SettingSpec("cassandra_servers", list | str | None, None,
                      "the contact points (host names or addresses)")
    yield SettingSpec("cassandra_port", int | None, None, "the CQL port (9042)")
    yield SettingSpec("cassandra_keyspace", str | None, None,
                      "the keyspace of the results table (never created by kernel or Celery)")
    yield SettingSpec("cassandra_table", str | None, None,
                      "the results table (created on first use, as Celery does)")
    yield SettingSpec("cassandra_read_consistency", str | None, None,
                      "a ConsistencyLevel name for reads (LOCAL_QUORUM)")
    yield SettingSpec("cassandra_write_consistency", str | None, None,
                      "a ConsistencyLevel name for writes (LOCAL_QUORUM)")
    yield SettingSpec("cassandra_entry_ttl", int | None, None,
                      "seconds a task's rows live (USING TTL); unset, result_expires")
    yield SettingSpec("cassandra_auth_provider", str | None, None,
                      "a class of cassandra.auth, e.g. PlainTextAuthProvider")
    yield SettingSpec("cassandra_auth_kwargs", dict | None, None,
                      "the auth provider's arguments (username, password)", secret=True)
    yield SettingSpec("cassandra_options", dict, {},
                      "more arguments for cassandra.cluster.Cluster")
    yield SettingSpec("cassandra_secure_bundle_path", str | None, None,
                      "an Astra DB secure connect bundle (instead of cassandra_servers)")
