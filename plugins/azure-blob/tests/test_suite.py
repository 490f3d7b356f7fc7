"""The kernel's conformance suite against Azurite: every guarantee of the result-store contract,
expiry by a deadline in the blob's metadata and the ETag-checked counter included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kernel.testing.results import ResultStoreSuite
from kernel_azure_blob.store import AzureBlobStore


class TestAzureBlobStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, azure_url: str, azure_options: dict[str, Any]) -> Iterator[AzureBlobStore]:
        s = AzureBlobStore(azure_url, azure_options)
        yield s
        s.close()
