"""Private memcached processes for tests that stop, restart or reconfigure a server: each on a
free loopback port. Shipped with kernel-memcached so other distributions' tests start them the
same way::

    from kernel_memcached.testing import MemcachedServer

    server = MemcachedServer(tmp_path).start()
    server.url      # cache+memcached://127.0.0.1:PORT/
    server.stop(); server.start()   # a restart on the same port: every item is gone

It needs the ``memcached`` binary (Debian's package): without it the test skips, or fails under
``CI`` (`kernel.testing.servers.need_binary`).
"""

from __future__ import annotations

import os
from pathlib import Path

from kernel.testing.servers import ServerProcess, free_port, listening, need_binary

__all__ = ["MemcachedServer"]


class MemcachedServer(ServerProcess):
    """``MemcachedServer(tmp_path).start()``: memcached on 127.0.0.1 (TCP only), 64 MB, its
    output in ``memcached.log`` in `directory`; `item_size` is its largest item (``-I``)."""

    def __init__(self, directory: Path, *, port: int | None = None,
                 item_size: str = "1m") -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        user = ("-u", "root") if os.geteuid() == 0 else ()  # memcached refuses root otherwise
        super().__init__(
            [need_binary("memcached"), "-l", self.host, "-p", str(self.port), "-U", "0",
             "-m", "64", "-I", item_size, *user],
            log=directory / "memcached.log", probe=listening(self.port, self.host),
            name=f"memcached on {self.host}:{self.port}")

    @property
    def url(self) -> str:
        return f"cache+memcached://{self.host}:{self.port}/"
