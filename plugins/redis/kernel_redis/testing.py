"""Private redis-server processes for tests that stop, restart, cut off or reconfigure a server
(never a shared one): each on a free port with its own directory. Shipped with kernel-redis so
that kernel's own fault suite and other distributions' tests start them the same way::

    from kernel_redis.testing import RedisServer

    server = RedisServer(tmp_path, persist=True, extra=("--appendfsync", "always")).start()
    server.kill()   # a crash: what the server acknowledged is in its append-only file
    server.start()  # the same port, the same data

It needs the ``redis-server`` binary: without it the test skips, or fails under ``CI``
(`kernel.testing.servers.need_binary`). `reachable` is for tests on a running Redis (the
plugins' interop tests use one as their broker).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import redis

from kernel.testing.servers import ServerProcess, free_port, need_binary, unavailable
from kernel_redis.connection import as_bytes
from kernel_redis.transport import UNACKED

__all__ = ["RedisServer", "held", "reachable"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def reachable(url: str, role: str = "Redis") -> str:
    """`url` once a Redis answers there; else the test skips, or fails under ``CI``, saying
    that `role` (what the tests use it for) is not reachable."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"{role} is not reachable at {url} ({exc}); start redis-server or set "
                    f"KERNEL_REDIS_TEST_URL")
    return url


def held(client: redis.Redis, queue: str) -> int:
    """Messages of `queue` some consumer holds (kombu's ``unacked`` hash), whether its lease
    runs or has run out and the message waits to be restored."""
    suffix = f',"",{json.dumps(queue)}]'.encode()
    entries: list[bytes | str] = client.hvals(UNACKED)
    return sum(1 for entry in entries if as_bytes(entry).endswith(suffix))


class RedisServer(ServerProcess):
    """``RedisServer(tmp_path).start()``: data in `directory` (append-only file on when
    `persist`), so a restarted server has what the killed one acknowledged; its output goes to
    ``redis.log`` there. `config` (a file) and `extra` arguments make other servers (a
    Sentinel, TLS); `probe`: how to reach it for a ping.

    `host` is the address it binds and clients use (127.0.0.1); `prefix` is a command the
    server runs under, e.g. ``("ip", "netns", "exec", "ns1")`` to run it in a network
    namespace (that command must exec the server, so that a kill reaches it)."""

    def __init__(self, directory: Path, *, persist: bool = False, port: int | None = None,
                 config: Path | None = None, extra: tuple[str, ...] = (),
                 probe: dict[str, object] | None = None, host: str = "127.0.0.1",
                 prefix: Sequence[str] = ()) -> None:
        self.directory = directory
        self.host = host
        self.port = port or free_port()
        self.ping = probe or {"host": host, "port": self.port}
        directory.mkdir(parents=True, exist_ok=True)
        # Protected mode would refuse every client but loopback ones: a test's own address
        # (a namespace's, say) is no public one.
        protected = () if host in LOOPBACK else ("--protected-mode", "no")
        super().__init__(
            [*prefix, need_binary("redis-server"), *([str(config)] if config else []),
             "--port", str(self.port), "--bind", host, *protected, "--save", "",
             "--dir", str(directory), "--appendonly", "yes" if persist else "no", *extra],
            log=directory / "redis.log", probe=self.answers, start_timeout=15,
            name=f"redis-server on {host}:{self.port}")

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def answers(self) -> bool:
        with redis.Redis(socket_connect_timeout=0.2, **self.ping) as client:  # type: ignore[arg-type]
            return bool(client.ping())
