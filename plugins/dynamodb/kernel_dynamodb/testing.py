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

import os
from collections.abc import Mapping
from pathlib import Path

from kernel.testing import moto
from kernel.testing.servers import ServerProcess, free_port, listening, npm_binary

__all__ = ["Dynalite", "MotoServer", "dynalite", "test_url"]

#: any key works with both emulators.
CREDENTIALS = "testing:testing"

#: where .ci/run installs dynalite: build/npm of the repository this package sits in.


def test_url() -> str | None:
    """``KERNEL_DYNAMODB_TEST_URL``: a real DynamoDB's URL (the tests make tables of their
    own there, and delete them), or None for the emulators."""
    return os.environ.get("KERNEL_DYNAMODB_TEST_URL") or None


def dynalite() -> str:
    return npm_binary("dynalite", "dynalite@4.0.0", "KERNEL_DYNALITE")


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


class MotoServer(_Emulator, moto.MotoServer):
    """``MotoServer(directory).start()``: moto's server (`kernel.testing.moto`) on 127.0.0.1,
    in memory, answering one request at a time (moto's threads share the tables without a
    lock, so two ``UpdateItem ADD`` on one item could lose a count). `env` adds to its
    environment (``INITIAL_NO_AUTH_ACTION_COUNT=0`` makes it check credentials)."""

    def __init__(self, directory: Path, *, port: int | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(directory, port=port, env=env, threaded=False,
                         hint="pip install 'kernel-dynamodb[test]' (moto[server])")


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
