"""``kernel results cleanup`` on the embedded SQLite store."""

from __future__ import annotations

import time
from collections.abc import Callable

from click.testing import Result

from kernel import App


def test_cleanup_deletes_expired_results(invoke: Callable[..., Result], client: App) -> None:
    store = client.backend.store
    assert store is not None
    store.set([("old", b"1")], 0.05)
    store.set([("kept", b"2")], None)
    time.sleep(0.1)
    result = invoke("results", "cleanup")
    assert result.exit_code == 0, result.output
    assert "deleted expired records: 1 results" in result.output
    assert store.get("kept") == b"2"


def test_cleanup_of_a_store_that_expires_by_itself(invoke: Callable[..., Result],
                                                   env: dict[str, str]) -> None:
    env["KERNEL_RESULT_BACKEND"] = "memory://"
    result = invoke("results", "cleanup")
    assert result.exit_code == 0, result.output
    assert "nothing to clean up" in result.output
