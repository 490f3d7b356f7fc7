"""Private redis-server processes for tests that stop, restart or reconfigure a server (never
the shared one): each on a free port with its own directory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from kernel.testing.transport import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def need(binary: str) -> str:
    """The path of `binary`; without it the test skips, except under CI (``CI`` set), where
    that is a failure."""
    path = shutil.which(binary)
    if path is None:
        message = f"needs the {binary} binary on PATH"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)
    return path


class RedisServer:
    """``RedisServer(tmp_path).start()``: data in `directory` (append-only file on when
    `persist`), so a restarted server has what the killed one acknowledged. `config` (a file)
    and `extra` arguments make other servers (a Sentinel, TLS); `probe`: how to ping it."""

    def __init__(self, directory: Path, *, persist: bool = False, port: int | None = None,
                 config: Path | None = None, extra: tuple[str, ...] = (),
                 probe: dict[str, object] | None = None) -> None:
        self.binary = need("redis-server")
        self.config = config
        self.directory = directory
        self.port = port or free_port()
        self.persist = persist
        self.extra = extra
        self.probe = probe or {"port": self.port}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.binary, *([str(self.config)] if self.config else []),
                "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.directory),
                "--appendonly", "yes" if self.persist else "no", *self.extra]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        client = redis.Redis(socket_connect_timeout=0.2, **self.probe)  # type: ignore[arg-type]

        def up() -> bool:
            assert self.process is not None and self.process.poll() is None, \
                f"redis-server {' '.join(args)} exited"
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_for(up, 15, f"redis-server on port {self.port} to answer")
        finally:
            client.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown save; what is in the append-only file survives."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
