"""DynamoDB emulators for tests, each on a free loopback port: moto's server (PyPI, the
``test`` extra) and dynalite (npm, with no time-to-live API), as a second opinion::

    from kernel_dynamodb.testing import Dynalite, MotoServer

    server = MotoServer(tmp_path).start()
    server.url("results")   # dynamodb://testing:testing@127.0.0.1:PORT/results

moto keeps its tables in memory (a restart empties it); dynalite keeps them in its directory,
so `Dynalite.restart` is what a DynamoDB outage looks like. moto runs in this interpreter
(the ``test`` extra installs it), dynalite is found on PATH, in ``build/npm`` of the
repository (where ``.ci/run`` installs it) or at ``KERNEL_DYNALITE``; without one the test
skips, or fails under ``CI`` (`kernel.testing.servers.unavailable`).

``KERNEL_DYNAMODB_TEST_URL`` names a DynamoDB (or DynamoDB Local) to run the tests against
instead: see `test_url`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import textwrap
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from kernel.testing.servers import ServerProcess, free_port, listening, unavailable

__all__ = ["Dynalite", "MotoServer", "dynalite", "test_url"]

#: any key works with both emulators.
CREDENTIALS = "testing:testing"

#: where .ci/run installs dynalite: build/npm of the repository this package sits in.
PROJECT_NPM = Path(__file__).resolve().parents[3] / "build" / "npm" / "node_modules" / ".bin"


def test_url() -> str | None:
    """``KERNEL_DYNAMODB_TEST_URL``: a real DynamoDB's URL (the tests make tables of their
    own there, and delete them), or None for the emulators."""
    return os.environ.get("KERNEL_DYNAMODB_TEST_URL") or None


#: moto's server as ``moto_server`` runs it, but answering one request at a time: its
#: threads share the tables without a lock, so two ``UpdateItem ADD`` on one item can
#: interleave and lose a count there, which DynamoDB never does. (A request per connection:
#: a single-threaded server speaks HTTP/1.0.)
MOTO_MAIN = textwrap.dedent("""
    import sys
    from werkzeug.serving import run_simple
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication, MotoRequestHandler, create_backend_app)
    run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app),
               threaded=False, request_handler=MotoRequestHandler)
""")


def moto_command(host: str, port: int) -> list[str]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        unavailable("needs moto's server: pip install 'kernel-dynamodb[test]' (moto[server])")
    return [sys.executable, "-c", MOTO_MAIN, host, str(port)]


def dynalite() -> str:
    found = os.environ.get("KERNEL_DYNALITE") or shutil.which("dynalite") or \
        shutil.which("dynalite", path=str(PROJECT_NPM))
    if not found:
        unavailable(f"needs dynalite: npm install --prefix build/npm dynalite@4.0.0 (looked "
                    f"on PATH and in {PROJECT_NPM})")
    return found


class _Emulator(ServerProcess):
    host = "127.0.0.1"
    port: int

    def url(self, table: str, query: str = "") -> str:
        """The store's URL for `table` on this emulator (Celery's local-endpoint form)."""
        return f"dynamodb://{CREDENTIALS}@{self.host}:{self.port}/{table}" + \
            (f"?{query}" if query else "")

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self) -> object:
        """A boto3 client of the test's own on this emulator."""
        import boto3

        return boto3.client("dynamodb", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def restart(self) -> None:
        """Stop it (SIGTERM) and start it again on the same port."""
        self.stop()
        self.start()


class MotoServer(_Emulator):
    """``MotoServer(directory).start()``: moto's server on 127.0.0.1, in memory. `env` adds
    to its environment (``INITIAL_NO_AUTH_ACTION_COUNT=0`` makes it check credentials)."""

    def __init__(self, directory: Path, *, port: int | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(moto_command(self.host, self.port),
                         log=directory / "moto.log", probe=self.answers, cwd=directory,
                         env=dict(env or {}), start_timeout=30, grace=5,
                         name=f"moto_server on {self.host}:{self.port}")

    def answers(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1) as r:
            return bool(r.status == 200)


class Dynalite(_Emulator):
    """``Dynalite(directory).start()``: dynalite on 127.0.0.1, its tables kept (LevelDB) in
    `directory`, tables created and deleted in 50 ms."""

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        data = directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        super().__init__([dynalite(), "--host", self.host, "--port", str(self.port),
                          "--path", str(data), "--createTableMs", "50", "--deleteTableMs", "50"],
                         log=directory / "dynalite.log", probe=listening(self.port),
                         cwd=directory, start_timeout=30, grace=5,
                         name=f"dynalite on {self.host}:{self.port}")
