"""What the Cassandra store does beyond the suite, and its faults: a cluster that cannot be
reached (the real driver against a port where nothing listens), refused credentials (the
error the driver raises then, handed to the store: no CQL server with users runs here), a
missing keyspace (never created), a record that does not decode and settings that are wrong.
The keyspace and decoding tests run on mockylla, an in-process fake of the driver's cluster."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from collections.abc import Callable

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError
from kernel.testing.servers import free_port
from kernel_cassandra.store import INSERT_TASK, CassandraStore
from kernel_cassandra.testing import FakeCluster


def plant(store: CassandraStore, task_id: str, result: bytes) -> None:
    """A row of Celery's table whose result is `result` (not kernel's nor Celery's)."""
    store._execute("plant", INSERT_TASK, [task_id, "SUCCESS", result,
                                          datetime.now(timezone.utc), b"null", b"null"],
                   write=True)


def one_sentence(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text


def test_an_unreachable_cluster_fails_within_connection_timeout(
        make_store: Callable[..., CassandraStore]) -> None:
    store = make_store(f"cassandra://cassandra:s3cret@127.0.0.1:{free_port()}/results/t",
                       broker_connection_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot reach the Cassandra table results.t") \
            as info:
        store.get("celery-task-meta-x")
    assert time.monotonic() - started < 5, "a call must give up within connection_timeout"
    one_sentence(str(info.value))
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(store)


def test_refused_credentials_are_one_sentence(make_store: Callable[..., CassandraStore]) -> None:
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    store = make_store("cassandra://127.0.0.1/results/t")

    def refused() -> None:
        raise NoHostAvailable("Unable to connect to any servers", {
            "127.0.0.1:9042": AuthenticationFailed(
                "Failed to authenticate to 127.0.0.1:9042: Error from server: code=0100 "
                "[Bad credentials] message=\"Provided username cassandra and/or password are "
                "incorrect\"")})

    with pytest.raises(ConfigurationError, match="refused the credentials .* check "
                       "cassandra_auth_provider") as info:
        store._call("connect", refused)
    one_sentence(str(info.value))


def test_a_missing_keyspace_is_named_and_never_created(
        fake: FakeCluster | None, make_store: Callable[..., CassandraStore]) -> None:
    keyspace = f"nowhere_{uuid.uuid4().hex[:8]}"
    store = make_store(f"cassandra://127.0.0.1/{keyspace}/t")
    with pytest.raises(ConfigurationError, match=f"the keyspace '{keyspace}' does not exist.*"
                       "kernel never creates keyspaces") as info:
        store.set([("k", b"v")], None)
    one_sentence(str(info.value))
    if fake is not None:
        assert not fake.sent("CREATE KEYSPACE " + keyspace)


def test_a_record_that_does_not_decode_names_task_store_and_remedy(
        cassandra_url: str) -> None:
    app = App("decode", broker="memory://", results=cassandra_url)
    try:
        store = app.backend.store
        assert isinstance(store, CassandraStore)
        task_id = uuid.uuid4().hex
        plant(store, task_id, b"{not json")
        with pytest.raises(DecodeError, match=f"the result of task {task_id} in the Cassandra "
                           "table .* does not decode with the result serializer 'json'") as info:
            app.AsyncResult(task_id).get(timeout=5)
        one_sentence(str(info.value))
    finally:
        app.close()


@pytest.mark.parametrize("config, said", [
    ({}, "neither is set"),
    ({"cassandra_servers": ["h"], "cassandra_secure_bundle_path": "/b.zip"}, "both are set"),
    ({"cassandra_servers": ["h"], "cassandra_keyspace": "k", "cassandra_table": "t",
      "cassandra_read_consistency": "MOST"}, "not a Cassandra consistency level"),
    ({"cassandra_servers": ["h"], "cassandra_keyspace": "k", "cassandra_table": "t",
      "cassandra_auth_provider": "Nope", "cassandra_auth_kwargs": {"username": "u"}},
     "not an auth provider"),
    ({"cassandra_servers": ["h"], "cassandra_keyspace": "k", "cassandra_table": "bad-name"},
     "not a table name"),
    ({"cassandra_servers": ["h"], "cassandra_table": "t"}, "not a keyspace name"),
    ({"result_backend": "cassandra://h:port/k/t"}, "port .* is not a number"),
])
def test_wrong_settings_are_one_sentence(config: dict[str, object], said: str) -> None:
    url = str(config.pop("result_backend", "cassandra://"))
    app = App("wrong", broker="memory://", results=url, config=config)
    try:
        with pytest.raises(ConfigurationError, match=said) as info:
            app.backend.store  # noqa: B018 - made on first use
        one_sentence(str(info.value))
    finally:
        app.close()


def test_celerys_settings_are_read(make_store: Callable[..., CassandraStore]) -> None:
    store = make_store("cassandra://", cassandra_servers=["a", "b"], cassandra_port=9142,
                       cassandra_keyspace="ks", cassandra_table="results",
                       cassandra_write_consistency="ONE", cassandra_entry_ttl=60,
                       cassandra_auth_provider="PlainTextAuthProvider",
                       cassandra_auth_kwargs={"username": "u", "password": "p"},
                       cassandra_options={"protocol_version": 4})
    from cassandra import ConsistencyLevel

    assert (store.servers, store.port, store.keyspace, store.table) == (
        ["a", "b"], 9142, "ks", "results")
    assert store.write_consistency == ConsistencyLevel.ONE
    assert store.read_consistency == ConsistencyLevel.LOCAL_QUORUM, "Celery's default"
    assert store.entry_ttl == 60 and store.cluster_options == {"protocol_version": 4}
    assert type(store.auth_provider).__name__ == "PlainTextAuthProvider"
