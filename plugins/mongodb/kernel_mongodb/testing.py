"""Private nx-27017 processes (a MongoDB wire-protocol server on SQLite, from PyPI) for tests:
each on a free loopback port, its data, log and pid files in a directory of its own::

    from kernel_mongodb.testing import NxServer

    server = NxServer(tmp_path).start()
    server.url("results")   # mongodb://127.0.0.1:PORT/results
    server.restart()        # the same port and data: what a MongoDB restart looks like

The executable is found beside this interpreter (the virtualenv's bin, where the ``test``
extra installs it), on PATH, or at ``KERNEL_NX_27017``; without it the test skips, or fails
under ``CI`` (`kernel.testing.servers.unavailable`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pymongo

from kernel.testing.servers import ServerProcess, free_port, unavailable

__all__ = ["NxServer", "nx_27017"]


def nx_27017() -> str:
    """The nx-27017 executable (see the module's docstring for where it is looked for)."""
    beside = Path(sys.executable).parent / "nx-27017"
    found = os.environ.get("KERNEL_NX_27017") or (str(beside) if beside.exists() else None) \
        or shutil.which("nx-27017")
    if not found:
        unavailable(f"needs nx-27017: pip install 'kernel-mongodb[test]' (looked in "
                    f"{beside.parent}, on PATH and at KERNEL_NX_27017)")
    return found


class NxServer(ServerProcess):
    """``NxServer(directory).start()``: nx-27017 on 127.0.0.1, up once it answers ``ping``."""

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.directory = directory
        data = directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        # Every file named: its defaults (/tmp/nx_27017.*) are shared by all instances.
        super().__init__(
            [nx_27017(), "--host", self.host, "-p", str(self.port), "--data-dir", str(data),
             "--log-file", str(directory / "nx-27017.log"),
             "--pid-file", str(directory / "nx-27017.pid")],
            log=directory / "nx-27017.out", probe=self.answers, cwd=directory,
            start_timeout=30, grace=5, name=f"nx-27017 on {self.host}:{self.port}")

    def url(self, database: str = "kernel_tests") -> str:
        return f"mongodb://{self.host}:{self.port}/{database}"

    def client(self) -> pymongo.MongoClient[dict[str, object]]:
        """A client of the test's own (tz-aware, a short server selection timeout)."""
        return pymongo.MongoClient(self.host, self.port, tz_aware=True,
                                   serverSelectionTimeoutMS=5000)

    def answers(self) -> bool:
        client: pymongo.MongoClient[dict[str, object]]
        with pymongo.MongoClient(self.host, self.port, serverSelectionTimeoutMS=500,
                                 connectTimeoutMS=500) as client:
            return bool(client.admin.command("ping").get("ok"))

    def restart(self) -> None:
        """Stop the server (SIGTERM) and start it again on the same port and data."""
        self.stop()
        self.start()
