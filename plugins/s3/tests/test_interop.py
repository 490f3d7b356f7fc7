"""Celery 5 (its S3 backend, on boto3) and kernel on one bucket of moto's S3 server (results)
and one Redis (broker): each side's results, failures, saved groups and chords
(``celery.chord_unlock``, as Celery's S3 backend runs them) read or run by the other, with the
same settings on both sides (Celery's s3_* names)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from kernel.testing.interop import Backend, CeleryInteropSuite

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery[s3]")

pytestmark = pytest.mark.timeout(120)


class TestCeleryInterop(CeleryInteropSuite):
    @pytest.fixture
    def kernel_backend(self, s3_options: dict[str, Any]) -> Backend:
        return "s3://", {**s3_options, "s3_base_path": "results/"}
