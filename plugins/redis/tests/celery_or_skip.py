"""Celery for the interop tests (a test dependency). Missing, a test module importing this is
skipped, except under CI, where the import fails."""

from __future__ import annotations

import os

import pytest

if os.environ.get("CI"):
    import celery
else:
    celery = pytest.importorskip("celery", reason="interop tests need celery>=5.3 (test extra)")

__all__ = ["celery"]
