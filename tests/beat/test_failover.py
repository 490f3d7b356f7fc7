"""Three beat processes on the embedded SQLite file (broker and schedule store), the leader
killed with SIGKILL three times: every tick counted at the broker, none twice, none lost but
what a kill between claim and send may lose, a new leader within seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.testing.beat import failover_run


@pytest.mark.timeout(90)
def test_three_beats_on_sqlite_survive_leader_kills(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kernel.db'}"
    report = failover_run(tmp_path, broker=url, store=url, kills=3)
    print(report.summary())
    report.check()
