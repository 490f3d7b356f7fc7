"""The server-process helper: start waits for the probe and fails saying where the output went,
stop leaves nothing of the process group behind, and a missing binary skips only off CI."""

from __future__ import annotations

import os
import signal
import socket
import re
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from kernel.testing.servers import (
    ServerProcess,
    free_port,
    listening,
    need_binary,
    stop_all,
    unavailable,
)
from kernel.testing.transport import wait_for

#: a process that ignores SIGTERM and starts a child that does too, writing both pids.
STUBBORN = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print("pids", child.pid, flush=True)
    time.sleep(600)
""")

#: exits at SIGTERM, leaving behind a child that ignores it.
LEAVES_A_CHILD = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print("pids", child.pid, flush=True)
    time.sleep(600)
""")


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture
def started() -> Iterator[list[ServerProcess]]:
    """Servers a test starts; stopped after it whatever happened."""
    servers: list[ServerProcess] = []
    yield servers
    stop_all(servers, grace=0)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def child_pid(server: ServerProcess) -> int:
    # The whole line: the log can be read while the stub is still writing it.
    found = wait_for(lambda: re.search(r"^pids (\d+)\n", server.output(), re.M), 10,
                     "the child's pid")
    return int(found.group(1))


def test_start_returns_once_the_server_answers(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess([sys.executable, "-m", "http.server", str(port), "--bind",
                            "127.0.0.1"], log=tmp_path / "http.log", probe=listening(port))
    with server:
        assert server.running
        socket.create_connection(("127.0.0.1", port), 1).close()
    assert not server.running, "leaving the with block stops the server"
    assert not listening(port)(), "nothing listens once it stopped"


def test_a_server_that_exits_before_answering_fails_naming_its_log(tmp_path: Path) -> None:
    server = ServerProcess(python("import sys; print('no config file'); sys.exit(3)"),
                           log=tmp_path / "out.log", probe=lambda: False, name="broken")
    with pytest.raises(AssertionError) as info:
        server.start()
    message = str(info.value)
    assert "broken exited with code 3 before it answered" in message
    assert str(tmp_path / "out.log") in message and "no config file" in message
    assert sys.executable in message, "the command is named"


def test_a_server_that_never_answers_fails_and_is_killed(tmp_path: Path) -> None:
    def probe() -> bool:
        raise ConnectionRefusedError("refused")

    server = ServerProcess(python("import time; time.sleep(600)"), log=tmp_path / "out.log",
                           probe=probe, start_timeout=0.5)
    with pytest.raises(AssertionError) as info:
        server.start()
    message = str(info.value)
    assert "did not answer within 0.5s" in message
    assert "the probe last raised ConnectionRefusedError: refused" in message
    assert str(tmp_path / "out.log") in message
    assert not server.running, "a server that failed to start must not be left running"


def test_stop_kills_the_group_of_a_process_that_ignores_sigterm(
        tmp_path: Path, started: list[ServerProcess]) -> None:
    server = ServerProcess(python(STUBBORN), log=tmp_path / "out.log")
    started.append(server.start())
    child = child_pid(server)
    begun = time.monotonic()
    assert server.stop(grace=0.5) == -signal.SIGKILL, "killed after the grace"
    assert time.monotonic() - begun < 5
    wait_for(lambda: gone(child), 5, "the child to be killed with its parent's group")


def test_stop_ends_what_outlived_a_clean_exit(tmp_path: Path,
                                              started: list[ServerProcess]) -> None:
    server = ServerProcess(python(LEAVES_A_CHILD), log=tmp_path / "out.log")
    started.append(server.start())
    child = child_pid(server)
    assert server.stop() == -signal.SIGTERM, "the process itself ended at SIGTERM"
    wait_for(lambda: gone(child), 5, "the child it left behind to be killed")
    assert server.stop() == -signal.SIGTERM, "a second stop changes nothing"


def test_kill_is_immediate_and_start_restarts(tmp_path: Path) -> None:
    server = ServerProcess(python("import os, time; print('pid', os.getpid(), flush=True); "
                                  "time.sleep(600)"), log=tmp_path / "out.log")
    with server:
        first = server.pid
        wait_for(lambda: f"pid {first}" in server.output(), 10, "the first run's output")
        server.kill()
        assert server.returncode == -signal.SIGKILL and not server.running
        second = server.start().pid
        wait_for(lambda: f"pid {second}" in server.output(), 10, "the second run's output")
        assert f"pid {first}" in server.output(), "a restart appends to the same log"


def test_environment_is_added_to_and_taken_from(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_TEST_DROPPED", "inherited")
    monkeypatch.setenv("SERVER_TEST_KEPT", "inherited")
    server = ServerProcess(
        python("import os; print([os.environ.get(k) for k in "
               "('SERVER_TEST_DROPPED', 'SERVER_TEST_KEPT', 'SERVER_TEST_ADDED')])"),
        log=tmp_path / "out.log", env={"SERVER_TEST_DROPPED": None, "SERVER_TEST_ADDED": "x"})
    server.start()
    assert server.wait(10) == 0
    assert server.output().strip() == "[None, 'inherited', 'x']"


def test_stop_all_shares_one_grace(tmp_path: Path, started: list[ServerProcess]) -> None:
    servers = [ServerProcess(python(STUBBORN), log=tmp_path / f"{n}.log") for n in range(3)]
    started.extend(server.start() for server in servers)
    for server in servers:
        child_pid(server)  # each has set its SIGTERM handler
    begun = time.monotonic()
    stop_all(servers, grace=1.0)
    assert time.monotonic() - begun < 2.5, "three stubborn servers, one shared grace"
    assert [server.returncode for server in servers] == [-signal.SIGKILL] * 3


def test_wait_fails_naming_the_log_when_the_process_goes_on(tmp_path: Path) -> None:
    with ServerProcess(python("import time; time.sleep(600)"), log=tmp_path / "out.log") as server:
        with pytest.raises(AssertionError, match="still runs after 0.2s.*out.log"):
            server.wait(0.2)


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_binary_skips_on_a_laptop_and_fails_in_ci(
        ci: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="needs the no-such-server-binary binary on PATH"):
        need_binary("no-such-server-binary")
    with pytest.raises(outcome, match="needs a licence"):
        unavailable("needs a licence")
    assert need_binary(os.path.basename(sys.executable)), "a binary on PATH is found"
