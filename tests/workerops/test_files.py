"""A worker's log file, log format, pid file and detaching, on real worker processes: the
files land where the placeholders say, a task's JSON lines carry its id and name, a live pid
file refuses a second worker and a dead one's is taken over, and every mistake is one
sentence before anything starts."""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess
from kernel.worker.pidfile import alive, read_pid
from tests.workerops.conftest import client, kernel, write_tasks


def start(tmp_path: Path, broker: str, *args: str, pool: str = "threads",
          concurrency: int = 1) -> tuple[str, WorkerProcess]:
    spec = write_tasks(tmp_path)
    w = WorkerProcess(spec, broker=broker, results=broker, path=tmp_path, cwd=tmp_path,
                      log=tmp_path / "stderr.log", pool=pool, concurrency=concurrency,
                      loglevel="info", nodename=f"w1@{socket.gethostname()}", args=args)
    return spec, w.start()


def test_logfile_placeholders_give_one_file_per_process(broker: str, tmp_path: Path) -> None:
    spec, w = start(tmp_path, broker, "--logfile", str(tmp_path / "logs-%n%I.log"),
                    pool="prefork", concurrency=2)
    try:
        main = tmp_path / "logs-w1.log"
        wait_for(lambda: main.exists() and "ready." in main.read_text() or not w.running, 60,
                 "the worker to log ready in its file")
        app = client(broker, spec, tmp_path)
        try:
            results = [app.send_task("ops.talk") for _ in range(6)]
            assert [r.get(timeout=30) for r in results] == ["said"] * 6
        finally:
            app.close()
    finally:
        w.stop()
    children = sorted(p.name for p in tmp_path.glob("logs-w1-*.log"))
    assert children == ["logs-w1-1.log", "logs-w1-2.log"], children
    said = "".join((tmp_path / name).read_text() for name in children)
    assert said.count("talking from the task") == 6, said
    assert "talking from the task" not in main.read_text()
    assert "ready." not in w.output(), "the worker logs to its file, not to stderr"


def test_json_lines_carry_the_task_id_and_name(broker: str, tmp_path: Path) -> None:
    logfile = tmp_path / "w.jsonl"
    spec, w = start(tmp_path, broker, "--logfile", str(logfile), "--log-format", "json")
    try:
        wait_for(lambda: logfile.exists() and "ready." in logfile.read_text() or not w.running,
                 60, "the worker to log ready")
        app = client(broker, spec, tmp_path)
        try:
            result = app.send_task("ops.talk")
            assert result.get(timeout=30) == "said"
        finally:
            app.close()
    finally:
        w.stop()
    lines = [json.loads(line) for line in logfile.read_text().splitlines()]
    assert {"time", "level", "logger", "process", "pid", "message"} <= set(lines[0])
    said = [line for line in lines if line["message"] == "talking from the task"]
    assert len(said) == 1
    assert said[0]["task_id"] == result.id and said[0]["task_name"] == "ops.talk"
    assert said[0]["level"] == "WARNING" and said[0]["logger"] == "ops"
    assert not [line for line in lines if "ready." in line["message"] and "task_id" in line]
    assert any(line["message"].startswith("kernel worker: app ") for line in lines)


def test_a_live_pid_file_refuses_a_second_worker(broker: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "%n.pid"
    spec, w = start(tmp_path, broker, "--pidfile", str(pidfile))
    try:
        w.wait_ready()
        assert read_pid(tmp_path / "w1.pid") == w.pid
        second = kernel("worker", "-A", spec, "-n", "w1@%h", "--pidfile", str(pidfile),
                        broker=broker, cwd=tmp_path)
        assert second.returncode == 2
        assert second.stderr.strip() == (
            f"error: the pid file {tmp_path / 'w1.pid'} names process {w.pid}, which is "
            f"running: another worker runs under it; stop that one first (kill -TERM {w.pid}, "
            f"or kernel multi stop) or give this worker another --pidfile"), second.stderr
    finally:
        w.stop()
    assert w.returncode == 0
    assert not (tmp_path / "w1.pid").exists(), "a worker removes its pid file as it exits"


def test_a_dead_workers_pid_file_is_taken_over(broker: str, tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "w1.pid").write_text(f"{dead.pid}\n")
    _, w = start(tmp_path, broker, "--pidfile", str(tmp_path / "%n.pid"))
    try:
        w.wait_ready()
        assert read_pid(tmp_path / "w1.pid") == w.pid
    finally:
        w.stop()
    assert f"took over the pid file {tmp_path / 'w1.pid'}: process {dead.pid} is gone" \
        in w.output()


def test_detach_runs_in_the_background_with_the_default_logfile(broker: str,
                                                                tmp_path: Path) -> None:
    spec = write_tasks(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    began = kernel("worker", "-A", spec, "-P", "threads", "-n", "bg@%h", "--detach",
                   "--workdir", str(work), "--pidfile", "%n.pid", "--umask", "027",
                   broker=broker, cwd=tmp_path, timeout=30)
    assert began.returncode == 0, began.stderr
    pidfile, logfile = work / "bg.pid", work / "bg.log"
    wait_for(lambda: pidfile.exists() and logfile.exists() and "ready." in logfile.read_text(),
             60, f"the detached worker to log ready in {logfile}")
    pid = read_pid(pidfile)
    assert pid is not None and alive(pid)
    try:
        assert os.getsid(pid) != os.getsid(0), "the worker runs in a session of its own"
        assert oct(os.stat(logfile).st_mode & 0o777) == oct(0o640)
        app = client(broker, spec, tmp_path)
        try:
            assert app.send_task("ops.add", (1, 2)).get(timeout=30) == 3
        finally:
            app.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), 30, "the detached worker to stop")
    assert not pidfile.exists()
    assert "warm shutdown" in logfile.read_text()


def _world_reachable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents])


@pytest.mark.skipif(os.getuid() != 0, reason="switching users needs root")
@pytest.mark.skipif(not _world_reachable(Path(sys.base_prefix) / "lib"),
                    reason=f"nobody cannot read this Python ({sys.base_prefix}): a worker "
                           f"switched to nobody could not import the standard library")
def test_uid_runs_the_worker_as_that_user() -> None:
    # Not in tmp_path: pytest's directories are root's alone, and nobody must reach them.
    with tempfile.TemporaryDirectory(prefix="kernel-uid-") as where:
        tmp_path = Path(where)
        tmp_path.chmod(0o777)
        run_as_nobody(tmp_path)


def run_as_nobody(tmp_path: Path) -> None:
    broker = f"sqlite:///{tmp_path / 'kernel.db'}"
    spec = write_tasks(tmp_path)
    began = kernel("worker", "-A", spec, "-P", "threads", "-n", "nob@%h", "--detach",
                   "--uid", "nobody", "--pidfile", str(tmp_path / "%n.pid"),
                   "--logfile", str(tmp_path / "%n.log"), broker=broker, cwd=tmp_path)
    assert began.returncode == 0, began.stderr
    pidfile = tmp_path / "nob.pid"
    wait_for(lambda: pidfile.exists() and "ready." in (tmp_path / "nob.log").read_text(), 60,
             "the worker to start as nobody")
    pid = read_pid(pidfile)
    assert pid is not None
    try:
        assert os.stat(f"/proc/{pid}").st_uid == pwd.getpwnam("nobody").pw_uid
        assert os.stat(pidfile).st_uid == pwd.getpwnam("nobody").pw_uid
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), 30, "the worker to stop")


@pytest.mark.parametrize(("args", "sentence"), [
    (["--pidfile", "{tmp}/a-file/w.pid"],
     "error: cannot write the pid file {tmp}/a-file/w.pid (Not a directory); give --pidfile a "
     "path in a directory that exists and that the worker's user may write"),
    (["--logfile", "{tmp}/missing/w.log"],
     "error: cannot open the log file {tmp}/missing/w.log: No such file or directory; give "
     "--logfile a path in a directory that exists and that the worker's user may write"),
    (["--uid", "no-such-user-here"],
     "error: --uid 'no-such-user-here': there is no such user on this machine"),
    (["--umask", "99"], "error: --umask '99' is not an octal number; give one such as 022 or "
                        "0o027"),
    (["--workdir", "{tmp}/nowhere"],
     "error: --workdir {tmp}/nowhere: No such file or directory; give a directory that "
     "exists and the worker's user may enter"),
    (["--autoscale", "2,5"],
     "Error: Invalid value for '--autoscale': '2,5': give MAX,MIN with MAX >= MIN >= 1 "
     "(here MIN 5 is above MAX 2)"),
])
def test_bad_options_are_one_sentence(tmp_path: Path, args: list[str], sentence: str) -> None:
    (tmp_path / "a-file").write_text("")
    spec = write_tasks(tmp_path)
    done = kernel("worker", "-A", spec, *(a.format(tmp=tmp_path) for a in args),
                  broker=f"sqlite:///{tmp_path / 'kernel.db'}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == sentence.format(tmp=tmp_path), done.stderr
    assert "Traceback" not in done.stderr
