"""moto's server, the AWS emulator the tests of kernel-s3, kernel-dynamodb and kernel-sqs start,
on a free loopback port, everything in memory (a restart empties it)::

    from kernel.testing.moto import MotoServer

    with MotoServer(tmp_path) as server:
        sqs = server.aws_client("sqs")  # a boto3 client of the test's own
        server.endpoint                 # http://127.0.0.1:PORT

``moto_server`` is found beside the running Python (a plugin's ``test`` extra installs
``moto[server]`` there) or on PATH; without it the test skips, or fails under ``CI``
(`kernel.testing.servers.unavailable`). Any key is accepted unless `env` sets
``INITIAL_NO_AUTH_ACTION_COUNT=0``, which makes moto check credentials (IAM).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import textwrap
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kernel.testing.servers import ServerProcess, free_port, unavailable

__all__ = ["MotoServer", "moto_server"]

#: what the emulator accepts, and where it says it is.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"

#: moto's server as ``moto_server`` runs it, after `patch` (Python source, ``sys.argv[4]``), and
#: threaded or not (``sys.argv[3]``). Unthreaded (`MotoServer` with ``threaded=False``) it answers
#: one request at a time: moto's threads share a backend's state without a lock, so two DynamoDB
#: ``UpdateItem ADD`` on one item can interleave and lose a count, which DynamoDB never does. (A
#: request per connection: a single-threaded server speaks HTTP/1.0.) Not for SQS, whose long
#: polls would hold up every other request: kernel-sqs patches the one race it meets instead.
MAIN = textwrap.dedent("""
    import sys
    exec(sys.argv[4])
    from werkzeug.serving import run_simple
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication, MotoRequestHandler, create_backend_app)
    run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app),
               threaded=sys.argv[3] == "threaded", request_handler=MotoRequestHandler)
""")


def moto_server(hint: str = "pip install 'moto[server]'") -> str:
    """The moto_server executable: beside this Python, or on PATH; else `unavailable`, saying
    `hint` (the install command)."""
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if not found:
        unavailable(f"needs moto's server: {hint}")
    return found


class MotoServer(ServerProcess):
    """``MotoServer(directory).start()`` (or ``with``): moto's server on 127.0.0.1, its log in
    `directory`. `env` adds to its environment; `threaded` False answers one request at a time
    and `patch` is Python source run in the server before it starts (see `MAIN`); `hint` is
    the install command a missing moto names."""

    host = "127.0.0.1"
    access_key = ACCESS_KEY
    secret_key = SECRET_KEY
    region = REGION

    def __init__(self, directory: Path, *, port: int | None = None,
                 env: Mapping[str, str] | None = None, threaded: bool = True, patch: str = "",
                 hint: str = "pip install 'moto[server]'") -> None:
        self.port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        if threaded and not patch:
            command = [moto_server(hint), "-H", self.host, "-p", str(self.port)]
        else:
            if importlib.util.find_spec("moto") is None or \
                    importlib.util.find_spec("flask") is None:
                unavailable(f"needs moto's server: {hint}")
            command = [sys.executable, "-c", MAIN, self.host, str(self.port),
                       "threaded" if threaded else "single", patch]
        super().__init__(command, log=directory / "moto.log", probe=self.answers,
                         cwd=directory, env=dict(env or {}), start_timeout=30, grace=5,
                         name=f"moto_server on {self.host}:{self.port}")

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def answers(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1) as reply:
            return bool(reply.status == 200)

    def aws_client(self, service: str) -> Any:
        """A plain boto3 client for `service` on the emulator (for tests to set up and look)."""
        import boto3

        make: Any = boto3.client  # typed per service name; any service moto emulates goes
        return make(service, endpoint_url=self.endpoint, region_name=self.region,
                    aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def restart(self) -> None:
        """Stop it (SIGTERM) and start it again on the same port: empty, as moto keeps nothing."""
        self.stop()
        self.start()
