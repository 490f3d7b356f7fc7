"""Private S3 emulators for tests, each on a free loopback port, in memory: moto's server (from
PyPI, kernel-s3's test extra) and s3rver (npm, a second opinion)::

    from kernel_s3.testing import MotoServer

    server = MotoServer(tmp_path).start()
    server.options("results")   # the store's settings: bucket, endpoint, keys

moto_server is found as `kernel.testing.moto.MotoServer` finds it; s3rver on PATH, or where
``.ci/run`` installs it (``build/npm`` of the repository), or at ``KERNEL_S3RVER``. Without
one the test skips, or fails under ``CI`` (`kernel.testing.servers.unavailable`).

``KERNEL_S3_TEST_ENDPOINT`` (with ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``) runs
the tests against that S3 endpoint instead of starting moto (`endpoint_from_environment`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from kernel.testing import moto
from kernel.testing.servers import ServerProcess, free_port, listening, npm_binary, unavailable

__all__ = ["MotoServer", "S3rver", "S3Server", "endpoint_from_environment", "s3rver"]

#: preloaded into s3rver: its PUTs answer only once the object reads back.
SETTLE = Path(__file__).with_name("s3rver_settle.js")

def s3rver() -> str:
    return npm_binary("s3rver", "s3rver@3.7.1", "KERNEL_S3RVER")


def endpoint_from_environment() -> str | None:
    """``KERNEL_S3_TEST_ENDPOINT``: an S3 endpoint to test against instead of moto."""
    return os.environ.get("KERNEL_S3_TEST_ENDPOINT") or None


class S3Server:
    """An S3 endpoint for tests; `options` are a store's settings for a bucket."""

    host = "127.0.0.1"
    port: int
    access_key = "testing"
    secret_key = "testing"
    #: False where the emulator ignores If-None-Match / If-Match (s3rver).
    conditional_writes = True

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def options(self, bucket: str, **more: Any) -> dict[str, Any]:
        return {"s3_bucket": bucket, "s3_endpoint_url": self.endpoint,
                "s3_region": "us-east-1", "s3_access_key_id": self.access_key,
                "s3_secret_access_key": self.secret_key,
                "s3_conditional_writes": self.conditional_writes, **more}

    def client(self) -> Any:
        """A plain boto3 client on the endpoint (for tests to set up and look)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)


class MotoServer(S3Server, moto.MotoServer):
    """``MotoServer(tmp_path).start()``: moto's server (`kernel.testing.moto`), S3 in memory,
    any keys accepted."""

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        super().__init__(directory, port=port,
                         hint="pip install 'kernel-s3[test]' (moto[server])")


class S3rver(S3Server, ServerProcess):
    """``S3rver(tmp_path).start()``: s3rver, its objects under `directory`; it accepts only
    the key S3RVER/S3RVER and ignores conditional writes. It runs with ``s3rver_settle.js``
    preloaded, so that a PUT answers only once the object reads back (as S3's do)."""

    access_key = "S3RVER"
    secret_key = "S3RVER"
    conditional_writes = False

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        port = port or free_port()
        (directory / "data").mkdir(parents=True, exist_ok=True)
        self.port = port
        node = shutil.which("node") or unavailable("needs node, which runs s3rver")
        super().__init__([node, "-r", str(SETTLE), os.path.realpath(s3rver()),
                          "-d", str(directory / "data"), "-a", self.host, "-p", str(port),
                          "--no-vhost-buckets", "--silent"],
                         log=directory / "s3rver.log", cwd=directory, probe=listening(port),
                         start_timeout=30, grace=5, name=f"s3rver on {self.host}:{port}")
