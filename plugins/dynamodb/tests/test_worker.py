"""A real kernel worker on the store: DynamoDB (dynalite, its tables on disk) killed (SIGKILL)
and started again under a prefork worker loses no result and fails no task (test_restart.py
stops it politely, with the kit's stricter checks); a chord whose saved header does not decode
is one sentence in the log, and the worker serves on."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from kernel import App, chord
from kernel.testing.workers import Workers, running_worker
from kernel_dynamodb.store import item_id
from kernel_dynamodb.testing import Dynalite

TASKS = textwrap.dedent("""
    import time
    from kernel import App
    # Longer than dynalite takes to come back: a result waits for it instead of failing.
    app = App("restart", config={"broker_connection_timeout": 10})

    @app.task(name="restart.double")
    def double(x):
        time.sleep(0.05)
        return 2 * x
""")


@pytest.mark.timeout(240)
def test_a_running_worker_loses_no_result_when_dynamodb_crashes(
        tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "restart_tasks.py").write_text(TASKS)
    with Dynalite(tmp_path / "dynalite") as server:
        url = server.url("restart")
        config = {"broker_connection_timeout": 10}
        with Workers("restart_tasks:app", broker=redis_url, results=url, path=tmp_path,
                     logs=tmp_path, client_config=config) as workers:
            workers.start(pool="prefork", concurrency=2, loglevel="info")
            client = server.client()

            def stored() -> int:
                """Results stored (not the PENDING records the client wrote on sending)."""
                try:
                    pages = client.get_paginator("scan").paginate(  # type: ignore[attr-defined]
                        TableName="restart", ConsistentRead=True)
                    return sum(b'"SUCCESS"' in item["result"]["B"]
                               for page in pages for item in page["Items"])
                except Exception:  # noqa: BLE001 - the test's client, while it restarts
                    return -1

            ids = workers.send("restart.double", (21,), n=240)
            workers.wait(lambda: stored() >= 40, 90, "40 results before the crash")
            server.kill()  # SIGKILL: no shutdown, what it wrote is on disk
            server.start()
            assert 0 <= stored() < 240, "the worker was still storing results at the crash"
            workers.wait_succeeded(ids, timeout=120)
            assert all(workers.client.AsyncResult(i).get(timeout=5) == 42 for i in ids)
            failures = [f for w in workers.processes for f in w.failures()]
            assert not failures, f"the worker logged errors: {failures[:2]}"


def test_a_chord_whose_saved_header_does_not_decode(
        dynamodb_url: str, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A chord as Celery's client leaves it (a counter without kernel's size) whose saved
    header is not a record: the worker says so in one sentence and serves on."""
    queue = f"odd-chord-{uuid.uuid4().hex}"
    app = App("odd-chord", broker=redis_url, results=dynamodb_url,
              config={"task_default_queue": queue})

    @app.task(name="odd.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="odd.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    try:
        body = chord([add.s(1, 1), add.s(2, 2)], tsum.s()).apply_async()
        header = body.parent
        assert header is not None
        table = dynamodb_url.rsplit("/", 1)[1]
        client = app.backend.store.table.client()  # type: ignore[union-attr]
        client.put_item(TableName=table, Item={
            "id": {"S": item_id(f"chord-unlock-{header.id}")}, "chord_count": {"N": "0"},
            "timestamp": {"N": "1"}})
        client.put_item(TableName=table, Item={
            "id": {"S": item_id(f"celery-taskset-meta-{header.id}")},
            "result": {"B": b"\x00not a record"}, "timestamp": {"N": "1"}})
        with running_worker(app, concurrency=2):
            assert add.delay(20, 22).get(timeout=30) == 42, "the worker serves on"
            assert all(r.get(timeout=30) in (2, 4) for r in header.results)
        said = [r.getMessage() for r in caplog.records if "does not decode" in r.getMessage()]
        assert said and "saved group" in said[0] and "check result_serializer" in said[0], \
            "the worker said why the chord cannot go on"
    finally:
        app.close()
