"""Private redis-server processes for tests that stop, restart or reconfigure a server (never
the shared one): each on a free port with its own directory."""

from __future__ import annotations

from pathlib import Path

import redis

from kernel.testing.servers import ServerProcess, free_port, need_binary


class RedisServer(ServerProcess):
    """``RedisServer(tmp_path).start()``: data in `directory` (append-only file on when
    `persist`), so a restarted server has what the killed one acknowledged; its output goes to
    ``redis.log`` there. `config` (a file) and `extra` arguments make other servers (a
    Sentinel, TLS); `probe`: how to reach it for a ping."""

    def __init__(self, directory: Path, *, persist: bool = False, port: int | None = None,
                 config: Path | None = None, extra: tuple[str, ...] = (),
                 probe: dict[str, object] | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.ping = probe or {"port": self.port}
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [need_binary("redis-server"), *([str(config)] if config else []),
             "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", str(directory), "--appendonly", "yes" if persist else "no", *extra],
            log=directory / "redis.log", probe=self.answers, start_timeout=15,
            name=f"redis-server on port {self.port}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        with redis.Redis(socket_connect_timeout=0.2, **self.ping) as client:  # type: ignore[arg-type]
            return bool(client.ping())
