"""Retries: ``self.retry``, ``autoretry_for`` with exponential backoff and jitter, max_retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App, MaxRetriesExceededError, Task, states
from kernel.message import from_iso
from kernel.worker import Worker
from tests.helpers import wait_for


@pytest.fixture
def app(app_factory: Any) -> App:
    app: App = app_factory("retries")
    return app


@pytest.fixture
def worker(app: App) -> Iterator[Worker]:
    worker = Worker(app, pool="threads", concurrency=2, shutdown_timeout=5)
    yield worker
    worker.stop()


def test_self_retry_resends_with_the_same_id_and_one_more_retry(app: App,
                                                                 worker: Worker) -> None:
    seen: list[tuple[str, int, list[Any]]] = []

    @app.task(bind=True, name="flaky")
    def flaky(self: Task[Any, Any], x: int) -> int:
        seen.append((self.request.id, self.request.retries, self.request.args))
        if self.request.retries < 2:
            raise self.retry(exc=ConnectionError("try again"), countdown=0.01)
        return x * 10

    worker.start()
    result = flaky.delay(4)
    assert result.get(timeout=10) == 40
    assert [s[1] for s in seen] == [0, 1, 2]
    assert {s[0] for s in seen} == {result.id}, "a retry keeps the task id"
    assert all(s[2] == [4] for s in seen), "a retry re-sends the same arguments"


def test_the_retry_state_is_recorded_while_the_task_waits(app: App, worker: Worker) -> None:
    @app.task(bind=True, name="later")
    def later(self: Task[Any, Any]) -> str:
        if self.request.retries == 0:
            raise self.retry(countdown=0.5)
        return "second run"

    worker.start()
    result = later.delay()
    wait_for(lambda: result.state == states.RETRY, 10, "RETRY was never recorded")
    assert result.get(timeout=10) == "second run"


def test_past_max_retries_the_error_reaches_the_caller(app: App, worker: Worker) -> None:
    @app.task(bind=True, name="always_without_exc", max_retries=2)
    def always_without_exc(self: Task[Any, Any]) -> None:
        raise self.retry(countdown=0)

    @app.task(bind=True, name="always_with_exc", max_retries=1)
    def always_with_exc(self: Task[Any, Any]) -> None:
        raise self.retry(exc=LookupError("gone"), countdown=0)

    worker.start()
    with pytest.raises(MaxRetriesExceededError, match="max_retries=2"):
        always_without_exc.delay().get(timeout=10)
    with pytest.raises(LookupError, match="gone"):
        always_with_exc.delay().get(timeout=10)


def test_autoretry_backoff_with_jitter_stays_in_its_envelope_over_100_retries(
        app: App, worker: Worker) -> None:
    factor, ceiling = 0.001, 0.02
    attempts: list[tuple[int, float, float | None]] = []
    #: retry number -> (when it was sent, its ETA): the planned delay is exactly eta - sent
    sent: dict[int, tuple[float, float]] = {}

    def on_publish(envelope: Any) -> None:
        retries = envelope.headers.get("retries") or 0
        if retries:
            sent[retries] = (time.time(), from_iso(envelope.headers["eta"]) or 0.0)

    app.connect("before_publish", on_publish)

    @app.task(bind=True, name="unlucky", autoretry_for=(TimeoutError,), max_retries=100,
              retry_backoff=factor, retry_backoff_max=ceiling, retry_jitter=True)
    def unlucky(self: Task[Any, Any]) -> int:
        attempts.append((self.request.retries, time.time(), self.request.eta))
        if self.request.retries < 100:
            raise TimeoutError("flaky network")
        return self.request.retries

    worker.start()
    assert unlucky.delay().get(timeout=60) == 100
    assert [a[0] for a in attempts] == list(range(101))
    assert sorted(sent) == list(range(1, 101)), "each retry is sent once, with retries + 1"
    planned = []
    for n, ran, eta in attempts[1:]:
        assert eta is not None and ran >= eta, f"retry {n} ran before its ETA"
        at, planned_eta = sent[n]
        wait = planned_eta - at
        envelope = min(ceiling, factor * 2 ** (n - 1))
        # `at` is taken after the ETA was computed: on a loaded machine a countdown near 0 can
        # read slightly negative, never above the envelope.
        assert -0.05 <= wait <= envelope + 0.001, (
            f"retry {n} was planned {wait:.4f} s after it was sent, outside [0, {envelope:.4f}]")
        planned.append(wait / envelope)
    # full jitter draws uniformly from the envelope: the mean fraction is near one half
    assert 0.3 < sum(planned) / len(planned) < 0.7
    assert len({round(p, 3) for p in planned}) > 50, "jitter makes the waits differ"


def test_exceptions_outside_autoretry_for_fail_at_once(app: App, worker: Worker) -> None:
    runs: list[int] = []

    @app.task(name="picky", autoretry_for=(TimeoutError,), retry_backoff=True)
    def picky() -> None:
        runs.append(1)
        raise ValueError("not retried")

    worker.start()
    with pytest.raises(ValueError):
        picky.delay().get(timeout=10)
    assert runs == [1]
