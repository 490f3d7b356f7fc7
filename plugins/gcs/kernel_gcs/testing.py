"""Private gcp-storage-emulator processes (a Cloud Storage JSON API emulator from PyPI) for
tests: each on a free loopback port, in memory::

    from kernel_gcs.testing import GCSEmulator

    server = GCSEmulator(tmp_path).start()
    server.host            # what STORAGE_EMULATOR_HOST must say for the client to use it
    server.url("results")  # gs://results?gcs_project=test

The emulator is found beside the running Python (kernel-gcs's test extra installs it), or on
PATH; without it the test skips, or fails under ``CI`` (`kernel.testing.servers.unavailable`).
It ignores generation preconditions and drops custom metadata (Custom-Time it keeps): stores
on it run with ``gcs_conditional_writes = False``.
"""

from __future__ import annotations

import shutil
import sys
import urllib.request
from pathlib import Path

from kernel.testing.servers import ServerProcess, free_port, unavailable

__all__ = ["GCSEmulator", "storage_emulator"]

PROJECT = "test"


def storage_emulator() -> str:
    beside = Path(sys.executable).parent / "gcp-storage-emulator"
    found = str(beside) if beside.exists() else shutil.which("gcp-storage-emulator")
    if not found:
        unavailable("needs gcp-storage-emulator: pip install 'kernel-gcs[test]'")
    return found


class GCSEmulator(ServerProcess):
    """``GCSEmulator(tmp_path).start()``: gcp-storage-emulator on 127.0.0.1, in memory."""

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [storage_emulator(), "start", "--host=127.0.0.1", f"--port={self.port}",
             "--in-memory"], log=directory / "gcs-emulator.log", probe=self.answers,
            cwd=directory, start_timeout=30, grace=5,
            name=f"gcp-storage-emulator on 127.0.0.1:{self.port}")

    @property
    def host(self) -> str:
        """The value of STORAGE_EMULATOR_HOST that points google-cloud-storage here."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, bucket: str) -> str:
        return f"gs://{bucket}?gcs_project={PROJECT}"

    def answers(self) -> bool:
        with urllib.request.urlopen(f"{self.host}/storage/v1/b?project={PROJECT}",
                                    timeout=1) as reply:
            return bool(reply.status == 200)
