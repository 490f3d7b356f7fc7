"""Private Azurite processes (Microsoft's Blob Storage emulator, from npm) for tests: each on a
free loopback port, in memory::

    from kernel_azure_blob.testing import Azurite

    server = Azurite(tmp_path).start()
    server.url()   # azureblockblob://DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;...

The binary (``azurite-blob``) is found on PATH, or where ``.ci/run`` installs it (``build/npm``
of the repository), or at ``KERNEL_AZURITE_BLOB``; without it the test skips, or fails under
``CI`` (`kernel.testing.servers.unavailable`). ``KERNEL_AZURE_BLOB_TEST_URL`` (an
``azureblockblob://`` URL) runs the tests against that account instead (`url_from_environment`).
"""

from __future__ import annotations

import os
from pathlib import Path

from kernel.testing.servers import ServerProcess, free_port, listening, npm_binary

__all__ = ["ACCOUNT", "ACCOUNT_KEY", "Azurite", "azurite_blob", "url_from_environment"]

#: where .ci/run installs npm packages: build/npm of the repository this package sits in.

#: Azurite's well-known development account (published by Microsoft; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


def azurite_blob() -> str:
    return npm_binary("azurite-blob", "azurite@3.35.0", "KERNEL_AZURITE_BLOB")


def url_from_environment() -> str | None:
    """``KERNEL_AZURE_BLOB_TEST_URL``: an account to test against instead of Azurite."""
    return os.environ.get("KERNEL_AZURE_BLOB_TEST_URL") or None


class Azurite(ServerProcess):
    """``Azurite(tmp_path).start()``: Azurite's blob service on 127.0.0.1, in memory, without
    telemetry, accepting the SDK's newer API versions (``--skipApiVersionCheck``)."""

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [azurite_blob(), "--blobHost", self.host, "--blobPort", str(self.port),
             "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry"],
            log=directory / "azurite.log", probe=listening(self.port), cwd=directory,
            start_timeout=30, grace=5, name=f"azurite-blob on {self.host}:{self.port}")

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint=http://{self.host}:{self.port}/{ACCOUNT};")

    def url(self) -> str:
        return "azureblockblob://" + self.connection_string
