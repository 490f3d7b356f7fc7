"""Server processes for tests: a binary or an emulator on a free loopback port, up once its probe
answers, stopped so that nothing it started is left behind.

::

    from kernel.testing.servers import ServerProcess, free_port, listening, need_binary

    @pytest.fixture
    def memcached(tmp_path):
        port = free_port()
        command = [need_binary("memcached"), "-l", "127.0.0.1", "-p", str(port)]
        with ServerProcess(command, log=tmp_path / "memcached.log", probe=listening(port)):
            yield f"memcached://127.0.0.1:{port}"

A test that needs a server may skip on a laptop, never in CI: `need_binary` and `unavailable`
skip the test, or fail it when the ``CI`` environment variable is set.

Each process runs in a session (and process group) of its own, its output (stdout and stderr)
appended to the `log` file the caller names, which every failure message points to.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Protocol

import pytest
from typing_extensions import Self

from kernel.testing.transport import wait_for

__all__ = ["Restartable", "ServerProcess", "free_port", "listening", "need_binary",
           "silent_server", "stop_all", "unavailable"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now. Another process may bind it before the server
    does; the server's start then fails, naming its log."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that takes connections and never answers, for the block: a server
    hung, or cut off by the network behind connections that still look open. It never accepts,
    so the operating system completes a few handshakes and then lets connects hang too."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener.getsockname()[1]


def unavailable(message: str) -> NoReturn:
    """Skip the test because something it needs is missing (`message` says what), or fail it
    when ``CI`` is set: a test that never ran must not look green in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def need_binary(name: str) -> str:
    """The path of the executable `name` on PATH; without it the test skips, or fails under
    CI (see `unavailable`)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"needs the {name} binary on PATH")
    return path


#: where ``.ci/run`` installs the emulators that come from npm: build/npm of the repository.
PROJECT_NPM = Path(__file__).resolve().parents[2] / "build" / "npm" / "node_modules" / ".bin"


def npm_binary(name: str, package: str, override: str) -> str:
    """The executable `name` of npm's `package` (``"s3rver@3.7.1"``): the one the environment
    variable `override` names, else on PATH, else where ``.ci/run`` installs it; else the test
    is `unavailable`, with the command that installs it."""
    found = os.environ.get(override) or shutil.which(name) or \
        shutil.which(name, path=str(PROJECT_NPM))
    if not found:
        unavailable(f"needs {name}: npm install --prefix build/npm {package} (looked on PATH "
                    f"and in {PROJECT_NPM}; or name it in {override})")
    return found


def listening(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """A probe for `ServerProcess`: true once something accepts TCP connections on host:port
    (enough for servers that answer as soon as they listen)."""

    def probe() -> bool:
        try:
            socket.create_connection((host, port), 1).close()
        except OSError:
            return False
        return True

    return probe


class Restartable(Protocol):
    """A server a test stops and starts again on its port: a `ServerProcess`, or a fake
    served by the test's own process (`kernel.testing.http_fake.FakeHTTP`); `log` is where
    what it did is written, for failure messages."""

    name: str
    log: Path

    def start(self) -> Any: ...

    def stop(self) -> Any: ...


class ServerProcess:
    """`command` as a process a test starts and stops; usable as a context manager.

    `env` adds to (a value of None removes from) this process's environment; `log` receives the
    process's output, appended, so a restart's output follows the last one's. `probe` is called
    until it returns something truthy; an exception from it counts as "not yet" and is shown if
    the server never answers.

    Guarantees:

    * `start` MUST return only once `probe` answered (at once without a probe); it MUST fail
      (AssertionError naming the command, the log and its last lines) when the process exits
      first or does not answer within `start_timeout` seconds, and then leave nothing running.
    * `stop` MUST leave no process of the group behind: SIGTERM to the process (its own
      shutdown stops what it started), up to `grace` seconds for it to exit, then SIGKILL to
      its whole process group, which also ends whatever outlived a clean exit.
    * `kill` is a crash: SIGKILL to the whole group at once, no shutdown.
    * `start` may be called again after `stop` or `kill` (a restart on the same port).
    """

    def __init__(self, command: Sequence[str], *, log: Path,
                 probe: Callable[[], object] | None = None,
                 env: Mapping[str, str | None] | None = None, cwd: Path | None = None,
                 start_timeout: float = 30.0, grace: float = 10.0,
                 name: str | None = None) -> None:
        self.command = list(command)
        self.log = log
        self.probe = probe
        self.env = dict(env or {})
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.grace = grace
        self.name = name or Path(self.command[0]).name
        self.process: subprocess.Popen[bytes] | None = None
        self._swept = False

    def __repr__(self) -> str:
        state = "running" if self.running else f"exit code {self.returncode}"
        return f"<{type(self).__name__} {self.name} ({state}), log {self.log}>"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ state

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: the signal that ended it); None while running or unstarted."""
        return None if self.process is None else self.process.poll()

    def output(self) -> str:
        """Everything the process wrote so far (all starts)."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def environment(self) -> dict[str, str]:
        """The environment the process runs with: this process's, changed by `env` (for its
        companion commands, such as a server's control tool)."""
        merged = {**os.environ, **self.env}
        return {name: value for name, value in merged.items() if value is not None}

    def where(self) -> str:
        """For failure messages: the command and where its output went."""
        return f"command: {shlex.join(self.command)}; its output is in {self.log}"

    # ------------------------------------------------------------------ start

    def start(self) -> Self:
        assert not self.running, f"{self.name} is already running (pid {self.pid})"
        self._sweep()  # whatever the last run left behind
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, env=self.environment())
        self._swept = False
        if self.probe is not None:
            try:
                self.wait_until_up()
            except BaseException:
                self.kill()
                raise
        return self

    def wait_until_up(self, timeout: float | None = None) -> None:
        """Return once `probe` answers (after a restart the server did itself, say); fail as
        `start` does."""
        probe = self.probe
        assert probe is not None, f"{self.name} has no probe to wait on"
        timeout = self.start_timeout if timeout is None else timeout
        last_error: list[str] = []
        exited: list[int | None] = []

        def answered_or_exited() -> bool:
            if not self.running:
                exited.append(self.returncode)
                return True
            try:
                return bool(probe())
            except Exception as exc:  # noqa: BLE001 - not up yet; shown if it never is
                last_error[:] = [f" (the probe last raised {type(exc).__name__}: {exc})"]
                return False

        try:
            wait_for(answered_or_exited, timeout, f"{self.name} to answer", interval=0.05)
        except AssertionError:
            raise AssertionError(
                f"{self.name} did not answer within {timeout}s{''.join(last_error)}; "
                f"{self.where()}; its last lines:\n{self.tail()}") from None
        if exited:
            raise AssertionError(
                f"{self.name} exited with code {exited[0]} before it answered; "
                f"{self.where()}; its last lines:\n{self.tail()}")

    # ------------------------------------------------------------------ stop

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM), without waiting; `stop` waits."""
        if self.running and not self._swept:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def stop(self, grace: float | None = None) -> int | None:
        """Stop politely, then by force (see the class); returns the exit code, None if the
        process was never started. Safe to call again."""
        self.terminate()
        self._finish(time.monotonic() + (self.grace if grace is None else grace))
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group now: a crash, no shutdown."""
        self._sweep()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself (a task that kills its worker, say); its exit
        code. Fails after `timeout` seconds, naming the log."""
        assert self.process is not None, f"{self.name} was never started"
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still runs after {timeout}s; "
                                 f"{self.where()}") from None

    def _finish(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass  # swept below
        self._sweep()

    def _sweep(self) -> None:
        # Once per start: the group's number may be reused once every member is gone.
        if self.process is None or self._swept:
            return
        self._swept = True
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # nothing of the group is left
        self.process.wait(10)


def stop_all(processes: Iterable[ServerProcess], grace: float = 15.0) -> None:
    """`stop` several processes at once: SIGTERM to all, then one shared `grace` for all of
    them to exit before each remaining group is killed."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process._finish(deadline)
