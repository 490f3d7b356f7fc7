"""The SQL schedule store: the conformance suite on PostgreSQL, MariaDB and SQLite, names kept
apart byte for byte (MySQL folds case and accents by default), the server's clock, state that
outlives the store, clear errors, and three ``kernel beat`` processes on PostgreSQL and MariaDB
whose leader is killed again and again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel import App
from kernel.interfaces.schedule import EntryState
from kernel.plugin import ConfigurationError, ConnectionFailed
from kernel.testing import ScheduleStoreSuite
from kernel.testing.beat import failover_run
from kernel_sqlalchemy.schedule import SqlScheduleStore
from conftest import REDIS_URL

pytestmark = pytest.mark.integration


def schedule_store(url: str, key: str, **options: object) -> SqlScheduleStore:
    """The store an App with this schedule store would use."""
    app = App("sql-beat-tests", broker="memory://", results=None,
              config={"beat_schedule_store": url,
                      "beat_schedule_store_options": {"schedule_key": key, **options}})
    store = app.schedule_store
    assert isinstance(store, SqlScheduleStore)
    return store


class TestSqlScheduleStore(ScheduleStoreSuite):
    @pytest.fixture
    def store(self, db_url: str, namespace: str) -> Iterator[SqlScheduleStore]:
        s = schedule_store(db_url, namespace)
        yield s
        s.close()

    @pytest.fixture
    def other_store(self, db_url: str, namespace: str) -> Iterator[SqlScheduleStore]:
        s = schedule_store(db_url, namespace)
        yield s
        s.close()


def test_names_differing_in_case_or_accent_are_two_entries(db_url: str) -> None:
    store = schedule_store(db_url, uuid.uuid4().hex)
    try:
        names = ["report", "Report", "résumé", "resume"]
        for n, name in enumerate(names):
            store.put_entry(name, bytes([n]))
        assert store.entries() == {name: bytes([n]) for n, name in enumerate(names)}
        token = store.acquire("beat@a", 30)
        assert token is not None
        assert store.claim("report", 100.0, token) and store.claim("Report", 100.0, token)
        assert set(store.states()) == {"report", "Report"}
    finally:
        store.close()


def test_schedule_keys_keep_beat_groups_apart(db_url: str) -> None:
    one, two = (schedule_store(db_url, uuid.uuid4().hex) for _ in range(2))
    try:
        assert one.acquire("beat@a", 30) == 1 and two.acquire("beat@b", 30) == 1
        one.put_entry("nightly", b"1")
        assert two.entries() == {} and two.version() == 0
    finally:
        one.close()
        two.close()


def test_the_lease_runs_on_the_servers_clock(db_url: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = schedule_store(db_url, uuid.uuid4().hex)
    try:
        # The lease is taken while this process's clock is years behind; a lease that ran on
        # it would have ended long ago once the clock is right again.
        with monkeypatch.context() as behind:
            behind.setattr(time, "time", lambda: 1e9)
            assert store.acquire("beat@a", 30) == 1
        leader = store.leader()
        assert leader is not None and 25 < leader.expires_in <= 30
        assert store.acquire("beat@b", 30) is None, "beat@a still holds the lease"
    finally:
        store.close()


def test_state_and_entries_outlive_the_store(db_url: str) -> None:
    key = uuid.uuid4().hex
    first = schedule_store(db_url, key)
    token = first.acquire("beat@a", 30)
    assert token is not None
    first.put_entry("nightly", b"data")
    assert first.claim("nightly", 1_767_225_600.123456, token)
    first.close()
    again = schedule_store(db_url, key)
    try:
        assert again.entries() == {"nightly": b"data"}
        assert again.states() == {"nightly": EntryState(1_767_225_600.123456, 1)}
        assert again.acquire("beat@b", 30) is None, "the lease outlives its holder's store"
    finally:
        again.close()


def test_tables_in_a_schema_of_their_own(pg_url: str) -> None:
    import sqlalchemy as sa

    from kernel_sqlalchemy.connection import sqlalchemy_url

    engine = sa.create_engine(sqlalchemy_url(pg_url))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS beat_tests"))
    engine.dispose()
    app = App("sql-beat-schema", broker="memory://", results=None, config={
        "beat_schedule_store": pg_url,
        "beat_schedule_store_options": {"schedule_key": uuid.uuid4().hex},
        "database_table_schemas": {"beat": "beat_tests"}})
    try:
        app.schedule_store.put_entry("nightly", b"x")
        engine = sa.create_engine(sqlalchemy_url(pg_url))
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names(schema="beat_tests"))
        engine.dispose()
        assert {"kernel_beat_schedules", "kernel_beat_entries", "kernel_beat_state"} <= tables
    finally:
        app.close()


def test_an_empty_schedule_key_is_refused_with_a_sentence(sqlite_url: str) -> None:
    with pytest.raises(ConfigurationError, match="schedule_key"):
        schedule_store(sqlite_url, "")


def test_an_unreachable_server_is_a_sentence() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as caught:
        schedule_store("db+postgresql://postgres:s3cret@127.0.0.1:1/nothing", "k",
                       connection_timeout=2)
    message = str(caught.value)
    assert "cannot reach the schedule database" in message and "s3cret" not in message
    assert "\n" not in message and time.monotonic() - started < 15


@pytest.mark.timeout(120)
@pytest.mark.parametrize("server", ["pg_url", "mysql_url"])
def test_three_beats_survive_leader_kills(server: str, request: pytest.FixtureRequest,
                                          tmp_path: Path) -> None:
    url = str(request.getfixturevalue(server))
    report = failover_run(tmp_path, broker=REDIS_URL, store=url,
                          store_options={"schedule_key": f"failover-{uuid.uuid4().hex}"},
                          kills=3)
    print(report.summary())
    report.check()
