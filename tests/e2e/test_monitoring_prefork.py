"""Monitoring and remote control of a real ``kernel worker`` process with the default prefork
pool (the embedded SQLite broker): the parent answers for its children, whose work and state
it merges; the command line's inspect, control and events; and /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from kernel import App
from kernel.testing.servers import free_port
from tests.e2e.conftest import ROOT
from tests.helpers import wait_for

NODE = "pf@e2e"


def kernel(db_url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {"KERNEL_BROKER_URL": db_url, "KERNEL_RESULT_BACKEND": db_url, "PYTHONPATH": str(ROOT),
           "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "kernel", "-A", "tests.e2e.tasks:app", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def answers(client: App, command: str, arguments: dict[str, Any] | None = None) -> Any:
    replies = client.control.broadcast(command, arguments, destination=[NODE], reply=True,
                                       timeout=5)
    assert replies, f"the prefork worker did not answer {command}"
    return replies[0][NODE]


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith("kernel_"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_a_prefork_worker_answers_for_its_children(client: App, start_worker: Any,
                                                   tmp_path: Path) -> None:
    port = free_port()
    # One message a child at first, so the two long tasks go to two children.
    worker = start_worker("-P", "prefork", "-c", "2", "-n", NODE, "-E", "--metrics-port",
                          str(port), "--prefetch-multiplier", "1")
    # Both children run a task: `active` lists both, each with its own process.
    markers = [str(tmp_path / f"m{i}") for i in range(2)]
    held = [client.send_task("tests.e2e.tasks.sleep_until", (m,)) for m in markers]
    wait_for(lambda: all(Path(m).exists() for m in markers), 30, "both children should run")
    active = answers(client, "active", {"safe": True})
    assert {a["id"] for a in active} == {r.id for r in held}
    assert len({a["worker_pid"] for a in active}) == 2, "one task per child process"
    # Revoke with terminate stops the running task at once.
    client.control.revoke(held[0].id, terminate=True)
    wait_for(lambda: held[0].state == "REVOKED", 30, "a terminated task is REVOKED")
    Path(markers[1] + ".go").touch()
    assert held[1].get(timeout=30) == "finished"

    results = [client.send_task("tests.e2e.tasks.add", (i, i)) for i in range(20)]
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(20)]

    stats = answers(client, "stats")
    assert stats["total"]["tests.e2e.tasks.add"] == 20, (
        stats["total"], client.control.broadcast("local_stats", destination=[NODE],
                                                 reply=True), worker.log[-3000:])
    assert len(stats["pool"]["processes"]) == 2


    # pool_grow adds a consumer process; rate_limit reaches every child.
    assert answers(client, "pool_grow", {"n": 1}) == {"ok": "pool will grow by 1"}
    wait_for(lambda: len(answers(client, "stats")["pool"]["processes"]) == 3, 30,
             "pool_grow should start a third child")
    assert answers(client, "rate_limit", {"task_name": "tests.e2e.tasks.add",
                                          "rate_limit": "100/s"})["ok"]
    # time_limit applies to the next run of the task, in whichever child takes it.
    assert answers(client, "time_limit", {"task_name": "tests.e2e.tasks.sleep_until",
                                          "soft": None, "hard": 1})["ok"]
    limited = client.send_task("tests.e2e.tasks.sleep_until", (str(tmp_path / "never"),))
    wait_for(lambda: limited.state == "FAILURE", 30,
             "the new hard limit should stop the next run")

    metrics = scrape(port)
    succeeded = metrics.get('kernel_tasks_total{name="tests.e2e.tasks.add",state="SUCCESS",'
                            f'worker="{NODE}"}}')
    assert succeeded == 20, f"children's work counted through the parent: {metrics}"
    assert metrics[f'kernel_pool_size{{worker="{NODE}"}}'] == 3
    assert worker.stop() == 0


def test_the_command_line_inspects_controls_and_watches(db_url: str, start_worker: Any,
                                                        client: App) -> None:
    assert kernel(db_url, "inspect", "ping", "-t", "0.5").returncode == 1, \
        "no worker: the health check fails"
    worker = start_worker("-P", "threads", "-c", "1", "-n", NODE)
    ping = kernel(db_url, "inspect", "ping", "-d", NODE)
    assert ping.returncode == 0 and f"{NODE}: pong" in ping.stdout
    missing = kernel(db_url, "inspect", "ping", "-d", "other@e2e", "-t", "0.5")
    assert missing.returncode == 1 and "other@e2e answered ping" in missing.stderr
    stats = json.loads(kernel(db_url, "inspect", "stats", "--json").stdout)
    assert stats[NODE]["pool"]["max-concurrency"] == 1
    grow = kernel(db_url, "control", "pool_grow", "2", "-d", NODE)
    assert grow.returncode == 0 and "pool will grow by 2" in grow.stdout
    bad = kernel(db_url, "control", "rate_limit", "no.such.task", "1/s", "-d", NODE)
    assert bad.returncode == 1 and "unknown task" in bad.stdout
    usage = kernel(db_url, "control", "pool_grow", "many")
    assert usage.returncode == 2 and "N must be a int" in usage.stderr

    port = free_port()
    dump = subprocess.Popen(
        [sys.executable, "-m", "kernel", "-A", "tests.e2e.tasks:app", "events", "--json",
         "--timeout", "30", "--prometheus", str(port)], cwd=ROOT, env={"KERNEL_BROKER_URL": db_url,
                                             "KERNEL_RESULT_BACKEND": db_url,
                                             "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, text=True)
    assert dump.stdout is not None
    first = json.loads(dump.stdout.readline())  # the heartbeat `events` asks for at start
    assert first["type"] == "worker-heartbeat" and first["hostname"] == NODE
    assert kernel(db_url, "control", "enable_events", "-d", NODE).returncode == 0
    sent = client.send_task("tests.e2e.tasks.add", (1, 2))
    seen = []
    for line in dump.stdout:
        event = json.loads(line)
        seen.append(event["type"])
        if event.get("uuid") == sent.id and event["type"] == "task-succeeded":
            break
    cluster = scrape(port)
    dump.kill()
    assert {"task-received", "task-started", "task-succeeded"} <= set(seen)
    assert cluster[f'kernel_worker_up{{worker="{NODE}"}}'] == 1
    assert cluster[f'kernel_tasks_total{{name="tests.e2e.tasks.add",state="SUCCESS",'
                   f'worker="{NODE}"}}'] == 1, "the cluster's metrics come from its events"

    assert kernel(db_url, "control", "shutdown", "-d", NODE).returncode == 0
    wait_for(lambda: worker.proc.poll() is not None, 30, "shutdown should stop the worker")
    assert worker.proc.returncode == 0


def test_pool_restart_replaces_every_child_when_enabled(client: App, start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "2", "-n", NODE, env={"E2E_POOL_RESTARTS": "1"})
    before = set(answers(client, "stats")["pool"]["processes"])
    assert answers(client, "pool_restart", {"reload": False}) == {"ok": "reload started"}
    wait_for(lambda: len(set(answers(client, "stats")["pool"]["processes"]) - before) == 2, 30,
             "pool_restart should replace both children")
    assert client.send_task("tests.e2e.tasks.add", (2, 2)).get(timeout=30) == 4


def test_pool_restart_is_refused_unless_enabled(client: App, start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "1", "-n", NODE)
    assert "worker_pool_restarts" in answers(client, "pool_restart")["error"]


def test_autoscale_grows_under_load_and_shrinks_when_idle(
        client: App, start_worker: Any, tmp_path: Path) -> None:
    start_worker("-P", "prefork", "-c", "1", "-n", NODE, "--autoscale", "3,1",
                 "--prefetch-multiplier", "1")
    assert answers(client, "stats")["autoscaler"] == {"max": 3, "min": 1, "qty": 1}
    markers = [str(tmp_path / f"busy{i}") for i in range(4)]
    held = [client.send_task("tests.e2e.tasks.sleep_until", (m,)) for m in markers]
    wait_for(lambda: len(answers(client, "stats")["pool"]["processes"]) == 3, 60,
             "a busy pool with tasks waiting grows to its maximum")
    wait_for(lambda: sum(Path(m).exists() for m in markers) == 3, 30,
             "three children run three tasks at once")
    for m in markers:
        Path(m + ".go").touch()
    assert [r.get(timeout=30) for r in held] == ["finished"] * 4
    assert answers(client, "autoscale", {"max": 2, "min": 1}) == {
        "ok": "autoscale now max=2 min=1"}
    wait_for(lambda: answers(client, "stats")["autoscaler"]["qty"] == 2, 30,
             "a new maximum below the pool's size shrinks it")
    assert "error" in answers(client, "autoscale", {"max": 1, "min": 2})
