"""The SQLite schedule store: the conformance suite on a file per test, what survives reopening
the file, and that the App finds it for ``sqlite://`` URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.interfaces.schedule import EntryState
from kernel.std.sqlite.schedule import SqliteScheduleStore
from kernel.testing import ScheduleStoreSuite


class TestSqliteScheduleStore(ScheduleStoreSuite):
    short_ttl = 0.3
    lease_grace = 1.0

    @pytest.fixture
    def url(self, tmp_path: Path, namespace: str) -> str:
        return f"sqlite:///{tmp_path / namespace}.db"

    @pytest.fixture
    def store(self, url: str) -> Iterator[SqliteScheduleStore]:
        s = SqliteScheduleStore(url)
        yield s
        s.close()

    @pytest.fixture
    def other_store(self, url: str) -> Iterator[SqliteScheduleStore]:
        s = SqliteScheduleStore(url)
        yield s
        s.close()


def test_the_file_keeps_the_schedule_and_tokens_keep_growing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'beat.db'}"
    store = SqliteScheduleStore(url)
    token = store.acquire("beat@a", 30)
    assert token is not None
    store.put_entry("report", b"every hour")
    assert store.claim("report", 3600.0, token)
    version = store.version()
    store.release("beat@a")
    store.close()
    again = SqliteScheduleStore(url)
    try:
        assert again.entries() == {"report": b"every hour"}
        assert again.states() == {"report": EntryState(3600.0, 1)}
        assert again.version() == version
        later = again.acquire("beat@b", 30)
        assert later is not None and later > token, "tokens keep growing across reopening"
        assert not again.claim("report", 3600.0, later), "a claimed tick stays claimed"
    finally:
        again.close()
