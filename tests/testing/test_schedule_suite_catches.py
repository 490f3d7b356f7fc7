"""The schedule-store suite fails stores that break the contract, each with a message saying
what to check (so a passing run means something)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BROKEN = textwrap.dedent('''
    import time
    import pytest
    from kernel.interfaces.schedule import EntryState, check_due, check_ttl
    from kernel.testing import ScheduleStoreSuite
    from kernel.std.memory.schedule import MemoryScheduleStore

    class RacyClaim(MemoryScheduleStore):
        """Reads the last due, then writes: two claimants both see the tick as new."""
        def claim(self, entry, due, token):
            check_due(due)
            last = self.states().get(entry)
            leader = self.leader()
            if leader is None or leader.token != token or (last and due <= last.last_run):
                return False
            time.sleep(0.01)
            with self._schedule.lock:
                self._schedule.states[entry] = EntryState(due, (last.run_count if last else 0) + 1)
            return True

    class Unfenced(MemoryScheduleStore):
        """Any token claims."""
        def claim(self, entry, due, token):
            leader = self.leader()
            return super().claim(entry, due, leader.token if leader else token)

    class ReusedTokens(MemoryScheduleStore):
        """Every holding gets token 1."""
        def acquire(self, owner, ttl):
            token = super().acquire(owner, ttl)
            if token is None:
                return None
            with self._schedule.lock:
                self._schedule.holder = (owner, 1, self._schedule.holder[2])
            return 1

    class Milliseconds(MemoryScheduleStore):
        """Takes seconds for milliseconds: a lease lasts a thousand times its ttl."""
        def acquire(self, owner, ttl):
            check_ttl(ttl)
            return super().acquire(owner, ttl * 1000)

    class StuckVersion(MemoryScheduleStore):
        """Removing an entry does not move the version."""
        def remove_entry(self, name):
            before = self._schedule.version
            removed = super().remove_entry(name)
            self._schedule.version = before
            return removed

    class Mangled(MemoryScheduleStore):
        """Names flattened to a safe alphabet: 'a/b' and 'a:b' become one entry."""
        def put_entry(self, name, data):
            super().put_entry(name.replace("/", "_").replace(":", "_"), data)

    class Base(ScheduleStoreSuite):
        kind = MemoryScheduleStore
        short_ttl = 0.3
        lease_grace = 1.0

        @pytest.fixture
        def store(self, namespace):
            return self.kind(f"memory://{namespace}")

        @pytest.fixture
        def other_store(self, namespace):
            return self.kind(f"memory://{namespace}")

    class TestRacyClaim(Base):
        kind = RacyClaim

    class TestUnfenced(Base):
        kind = Unfenced

    class TestReusedTokens(Base):
        kind = ReusedTokens

    class TestMilliseconds(Base):
        kind = Milliseconds

    class TestStuckVersion(Base):
        kind = StuckVersion

    class TestMangled(Base):
        kind = Mangled
''')

#: each broken store, the suite tests that must catch it, and a phrase of the message.
CAUGHT = {
    "TestRacyClaim::test_one_claim_per_tick_among_racing_claimants": "in one atomic step",
    "TestUnfenced::test_an_unrenewed_lease_ends_within_its_ttl": "paused past its lease",
    "TestUnfenced::test_a_stale_token_cannot_claim": "after the lease moved",
    "TestReusedTokens::test_an_unrenewed_lease_ends_within_its_ttl": "tokens must grow",
    "TestReusedTokens::test_release_lets_another_owner_in_with_a_larger_token":
        "larger token, also after a release",
    "TestReusedTokens::test_a_stale_token_cannot_claim": "after the lease moved",
    "TestMilliseconds::test_an_unrenewed_lease_ends_within_its_ttl": "expires by itself",
    "TestMilliseconds::test_leader_reports_the_holder": "the seconds left",
    "TestStuckVersion::test_entries_put_overwrite_remove": "did not grow after a remove",
    "TestMangled::test_awkward_entry_names": "not mangled into each other",
}


@pytest.mark.timeout(120)
def test_the_suite_catches_broken_schedule_stores(tmp_path: Path) -> None:
    (tmp_path / "test_broken_schedule.py").write_text(BROKEN)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:xdist", "-p", "no:cacheprovider",
         "-p", "no:randomly", "test_broken_schedule.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=110,
        env={**os.environ, "COLUMNS": "2000"})  # the summary lines whole, with the messages
    out = run.stdout + run.stderr
    failed = set(re.findall(r"^FAILED test_broken_schedule.py::(\w+::\w+)", out, re.M))
    assert failed == set(CAUGHT), out
    for test, phrase in CAUGHT.items():
        line = next(line for line in out.splitlines()
                    if line.startswith(f"FAILED test_broken_schedule.py::{test}"))
        assert phrase in line, f"{test} failed without saying {phrase!r}:\n{line}"
