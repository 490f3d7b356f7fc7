"""Private pouchdb-server processes (a CouchDB-compatible server from npm) for tests: each on a
free loopback port, in memory, its files in a directory of its own::

    from kernel_couchdb.testing import PouchServer

    server = PouchServer(tmp_path).start()
    server.url("results")   # couchdb://127.0.0.1:PORT/results
    PouchServer(tmp_path, in_memory=False)   # databases on disk: a restart keeps them

The binary is found on PATH, or where ``.ci/run`` installs it (``build/npm`` of the repository),
or at ``KERNEL_POUCHDB_SERVER``; without it the test skips, or fails under ``CI``
(`kernel.testing.servers.unavailable`).
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

from kernel.testing.servers import ServerProcess, free_port, unavailable

__all__ = ["PouchServer", "pouchdb_server"]

#: where .ci/run installs it: build/npm of the repository this package sits in.
PROJECT_NPM = Path(__file__).resolve().parents[3] / "build" / "npm" / "node_modules" / ".bin"


def pouchdb_server() -> str:
    """The pouchdb-server executable (see the module's docstring for where it is looked for)."""
    found = os.environ.get("KERNEL_POUCHDB_SERVER") or shutil.which("pouchdb-server") or \
        shutil.which("pouchdb-server", path=str(PROJECT_NPM))
    if not found:
        unavailable(f"needs pouchdb-server: npm install --prefix build/npm pouchdb-server "
                    f"(looked on PATH and in {PROJECT_NPM})")
    return found


class PouchServer(ServerProcess):
    """``PouchServer(tmp_path).start()``: pouchdb-server on 127.0.0.1, databases in memory
    (``-m``), its log and config in `directory`; with `in_memory` False the databases are
    files there (LevelDB), kept across a restart as a CouchDB server keeps them."""

    def __init__(self, directory: Path, *, port: int | None = None,
                 in_memory: bool = True) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [pouchdb_server(), "-o", self.host, "-p", str(self.port),
             *(["-m"] if in_memory else []), "-d", str(directory),
             "-c", str(directory / "config.json")],
            log=directory / "pouchdb-server.log", probe=self.answers, cwd=directory,
            start_timeout=30, name=f"pouchdb-server on {self.host}:{self.port}")

    def url(self, database: str) -> str:
        return f"couchdb://{self.host}:{self.port}/{database}"

    def answers(self) -> bool:
        with urllib.request.urlopen(f"http://{self.host}:{self.port}/", timeout=1) as r:
            return bool(r.status == 200)
