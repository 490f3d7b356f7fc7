"""Celery 5 (its AzureBlockBlob backend) and kernel on one Azurite container (results) and one
Redis (broker): each side's results, failures, saved groups and chords
(``celery.chord_unlock``, as Celery's backend runs them) read or run by the other, with the
same URL and settings on both sides."""

from __future__ import annotations

import os
from typing import Any

import pytest

from kernel.testing.interop import Backend, CeleryInteropSuite

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery[azureblockblob]")

pytestmark = pytest.mark.timeout(120)


class TestCeleryInterop(CeleryInteropSuite):
    @pytest.fixture
    def kernel_backend(self, azure_url: str, azure_options: dict[str, Any]) -> Backend:
        return azure_url, {**azure_options, "azureblockblob_base_path": "results/"}
