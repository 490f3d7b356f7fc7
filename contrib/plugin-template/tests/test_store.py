"""kernel's conformance suite for result stores, against the example store."""

from __future__ import annotations

import uuid

import pytest

from kernel import App
from kernel.interfaces import ResultStore
from kernel.testing import ResultStoreSuite
from kernel_example.store import ExampleResultStore


@pytest.mark.integration
class TestExampleResultStore(ResultStoreSuite):
    expiry_grace = 0.5

    @pytest.fixture
    def store(self) -> ResultStore:
        return ExampleResultStore(f"example://{uuid.uuid4().hex}", {})


@pytest.mark.unit
def test_an_app_uses_the_store_with_its_setting() -> None:
    name = uuid.uuid4().hex
    app = App("t", broker="memory://", results=f"example://{name}",
              config={"example_key_prefix": "p-", "task_always_eager": False})
    app.backend.store_result("some-id", "SUCCESS", 42)
    assert app.AsyncResult("some-id").get(timeout=1) == 42
    raw = ExampleResultStore(f"example://{name}", {})
    assert raw.get("p-celery-task-meta-some-id") is not None, "keys carry the prefix setting"
