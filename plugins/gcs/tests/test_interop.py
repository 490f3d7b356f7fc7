"""Celery 5 (its GCS backend's object layer) and kernel on one bucket of gcp-storage-emulator
(results) and one Redis (broker): each side's results, failures, saved groups and chords read
or run by the other.

Celery's ``gs://`` backend (GCSBackend) counts chords in Firestore and will not start without
it; no Firestore emulator runs here, so the Celery side is its base class, GCSBackendBase,
named by class (``celery.backends.gcs:GCSBackendBase+gs://...``): the same objects, chords by
``celery.chord_unlock``. On the emulator (no preconditions) kernel runs chords that way too."""

from __future__ import annotations

import os
from typing import Any

import pytest

from kernel.testing.interop import Backend, CeleryInteropSuite

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery[gcs]")

pytestmark = pytest.mark.timeout(120)


class TestCeleryInterop(CeleryInteropSuite):
    @pytest.fixture
    def kernel_backend(self, new_bucket: Any, gcs_options: dict[str, Any]) -> Backend:
        return f"gs://{new_bucket()}/results?gcs_project=test", gcs_options

    @pytest.fixture
    def celery_backend(self, kernel_backend: Backend) -> Backend:
        return "celery.backends.gcs:GCSBackendBase+" + kernel_backend[0], {}
