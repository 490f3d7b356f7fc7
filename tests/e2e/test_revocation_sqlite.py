"""Revocation on the embedded SQLite default, with real worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kernel import App, TaskRevokedError, states
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def test_a_task_revoked_before_a_worker_starts_is_not_run_by_it(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    revoked = client.send_task("tests.e2e.tasks.touch", (str(marker),))
    revoked.revoke()
    after = client.send_task("tests.e2e.tasks.add", (1, 2))
    start_worker("-P", "prefork", "-c", "1")
    assert after.get(timeout=30) == 3
    with pytest.raises(TaskRevokedError):
        revoked.get(timeout=5)
    assert revoked.state == states.REVOKED
    assert not marker.exists(), "a revoked task must never run"
    assert client.transport.size("celery") == 0, "its message is settled, not left behind"


def test_revoking_a_queued_task_reaches_a_running_worker(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    worker = start_worker("-P", "prefork", "-c", "1")
    blocker = tmp_path / "blocker"
    first = client.send_task("tests.e2e.tasks.sleep_until", (str(blocker),))
    wait_for(blocker.exists, 30, "the first task never started")
    marker = tmp_path / "ran"
    queued = client.send_task("tests.e2e.tasks.touch", (str(marker),))
    client.control.revoke(queued.id)
    wait_for(lambda: "revocations read up to #1" in worker.log, 30,
             "the worker never read the revocation")
    (tmp_path / "blocker.go").touch()
    assert first.get(timeout=30) == "finished"
    assert client.send_task("tests.e2e.tasks.add", (2, 2)).get(timeout=30) == 4
    assert queued.state == states.REVOKED and not marker.exists()


def test_terminate_stops_a_running_task_and_the_worker_goes_on(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    start_worker("-P", "prefork", "-c", "1")
    marker = tmp_path / "running"
    running = client.send_task("tests.e2e.tasks.sleep_until", (str(marker),))
    wait_for(marker.exists, 30, "task never started")
    running.revoke(terminate=True)
    wait_for(lambda: client.send_task("tests.e2e.tasks.add", (1, 1)).get(timeout=30) == 2,
             30, "the worker must serve after terminating")
    with pytest.raises(TaskRevokedError, match="terminated"):
        running.get(timeout=30)
