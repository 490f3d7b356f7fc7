"""``kernel multi``: Celery's node names and per-node options (parsed), and real detached nodes
started, serving, stopped with ``stopwait`` while a task runs, restarted and killed, on SQLite
and Redis."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import click
import pytest

from kernel import states
from kernel.cli.multi import nodes
from kernel.testing.transport import wait_for
from kernel.worker.pidfile import alive, read_pid
from tests.workerops.conftest import client, kernel, write_tasks

HOST = socket.gethostname()


def test_a_number_names_that_many_nodes() -> None:
    assert [n.name for n in nodes(["3"])] == [f"kernel{i}@{HOST}" for i in (1, 2, 3)]
    assert [n.name for n in nodes(["2", "--range-prefix", "w"])] == [f"w1@{HOST}", f"w2@{HOST}"]
    assert [n.name for n in nodes(["2", "--hostname=example.org"])] == [
        "kernel1@example.org", "kernel2@example.org"]


def test_names_and_per_node_options() -> None:
    found = nodes(["img", "video", "data@elsewhere", "-A", "proj", "-c", "2", "-c:1", "5",
                   "--loglevel:video,data=DEBUG", "-Q:2-3", "slow", "--heartbeat-file",
                   "/run/%n.beat"])
    assert [n.name for n in found] == [f"img@{HOST}", f"video@{HOST}", "data@elsewhere"]
    img, video, data = (n.command()[n.command().index("-n") + 2:] for n in found)
    assert img[-2:] == ["-c", "5"] and "-Q" not in img
    assert video[-4:] == ["--loglevel", "DEBUG", "-Q", "slow"]
    assert "/run/data.beat" in data, "%n is the node's name"
    assert found[0].option("-c") == "5" and found[1].option("-c") == "2"
    assert found[0].command()[found[0].command().index("--logfile") + 1] == "img%I.log"


@pytest.mark.parametrize(("argv", "sentence"), [
    (["-c", "2"], "name the nodes: a number (kernel multi start 3) or names"),
    (["2", "-c:3", "1"], "option scope '3': there are nodes 1 to 2"),
    (["w1", "-c:w9", "1"], f"option scope 'w9': no node is named 'w9' (nodes: w1@{HOST})"),
])
def test_bad_names_and_scopes_are_one_sentence(argv: list[str], sentence: str) -> None:
    with pytest.raises(click.UsageError) as err:
        nodes(argv)
    assert str(err.value.message).startswith(sentence)


def test_an_unknown_command_is_one_sentence(tmp_path: Path) -> None:
    done = kernel("multi", "begin", "2", broker="sqlite://", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for 'start|stop|stopwait|restart|kill|show': 'begin' is not one "
        "of 'start', 'stop', 'stopwait', 'restart', 'kill', 'show'.")


def test_start_stopwait_restart_kill(broker: str, tmp_path: Path) -> None:
    spec = write_tasks(tmp_path)
    prefix = f"m{uuid.uuid4().hex[:6]}-"
    names = ["2", "--range-prefix", prefix]
    opts = ["-A", spec, "-P", "threads", "-c", "1", "-c:2", "2", "-l", "info"]

    def run(action: str) -> str:
        done = kernel("multi", action, *names, *opts, broker=broker, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    nodes_ = [f"{prefix}{i}@{HOST}" for i in (1, 2)]
    pidfiles = [tmp_path / f"{prefix}{i}.pid" for i in (1, 2)]
    out = run("start")
    try:
        pids = [read_pid(p) for p in pidfiles]
        assert all(pid is not None and alive(pid) for pid in pids), out
        for node, pid in zip(nodes_, pids, strict=True):
            assert f"> {node}: OK (pid {pid})" in out
        for path in ("1.log", "2.log"):
            log = tmp_path / f"{prefix}{path}"
            wait_for(lambda log=log: "ready." in log.read_text(), 60, f"{log} to say ready")
        assert "concurrency 2" in (tmp_path / f"{prefix}2.log").read_text()
        app = client(broker, spec, tmp_path)
        try:
            assert [r.get(timeout=30) for r in
                    [app.send_task("ops.add", (i, i)) for i in range(6)]] == [
                        2 * i for i in range(6)]
            slow = app.send_task("ops.sleep", (3,))
            wait_for(lambda: app.AsyncResult(slow.id).state == states.STARTED
                     or any("ops.sleep" in (tmp_path / f"{prefix}{i}.log").read_text()
                            for i in (1, 2)), 30, "the slow task to start")
            out = run("stopwait")
            assert slow.state == states.SUCCESS, "stopwait returned before the task ended"
            assert f"> Waiting for 2 nodes -> {pids[0]}, {pids[1]}..." in out
            assert not any(alive(pid) for pid in pids if pid)
            assert not any(p.exists() for p in pidfiles)
            assert all(f"\t> {node}: DOWN" in run("stop") for node in nodes_)

            run("start")
            first = [read_pid(p) for p in pidfiles]
            out = run("restart")
            second = [read_pid(p) for p in pidfiles]
            assert all(pid and alive(pid) for pid in second) and set(first).isdisjoint(second)
            assert out.count(": OK (pid") == 2
            assert app.send_task("ops.add", (20, 1)).get(timeout=30) == 21
        finally:
            app.close()
        run("kill")
        wait_for(lambda: not any(alive(pid) for pid in second if pid), 10, "killed nodes")
    finally:
        kernel("multi", "kill", *names, broker=broker, cwd=tmp_path)
