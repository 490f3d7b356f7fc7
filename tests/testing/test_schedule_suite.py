"""The schedule-store suite against the in-memory reference store, and what the store does beyond
the suite: instances of one name share a schedule, other names are apart."""

from __future__ import annotations

import uuid

import pytest

from kernel.errors import ConfigurationError
from kernel.interfaces.schedule import EntryState
from kernel.testing import ScheduleStoreSuite
from kernel.std.memory.schedule import MemoryScheduleStore


class TestMemoryScheduleStore(ScheduleStoreSuite):
    short_ttl = 0.3
    lease_grace = 1.0

    @pytest.fixture
    def store(self, namespace: str) -> MemoryScheduleStore:
        return MemoryScheduleStore(f"memory://{namespace}")

    @pytest.fixture
    def other_store(self, namespace: str) -> MemoryScheduleStore:
        return MemoryScheduleStore(f"memory://{namespace}")


def test_schedules_of_other_names_are_apart() -> None:
    name = uuid.uuid4().hex
    mine, theirs = MemoryScheduleStore(f"memory://{name}"), MemoryScheduleStore(f"memory://{name}-b")
    token = mine.acquire("beat", 30)
    assert token is not None and theirs.acquire("beat", 30) is not None, \
        "each name has a lease of its own"
    mine.put_entry("e", b"x")
    assert mine.claim("e", 1.0, token)
    assert theirs.entries() == {} and theirs.states() == {}
    assert mine.states() == {"e": EntryState(1.0, 1)}


def test_a_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a memory URL"):
        MemoryScheduleStore("redis://localhost")
