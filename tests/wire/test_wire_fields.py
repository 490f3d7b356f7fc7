"""kernel.fields: records to Celery's fields and back, for structured result stores."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kernel import App
from kernel.plugin import DecodeError, GroupFields, RecordFields, TaskFields, key_kind


@pytest.fixture
def fields() -> RecordFields:
    return RecordFields(App("t", broker="memory://").codec.serializer("json"))


def test_keys_are_sorted_into_tasks_groups_and_the_rest() -> None:
    assert key_kind("celery-task-meta-a.b") == ("task", "a.b")
    assert key_kind("celery-taskset-meta-g1") == ("group", "g1")
    for chord_key in (".s", ".t", ".n", ".w", ".c", ".e12", ".d.task.3", ".d.task.None"):
        assert key_kind("celery-taskset-meta-g1" + chord_key) is None, chord_key
    assert key_kind("kernel-revocations") is None


def test_a_task_record_round_trips(fields: RecordFields) -> None:
    backend = App("t", broker="memory://").backend
    record = backend.record("id1", "SUCCESS", {"x": [1]}, extra={
        "children": [[["c1", None], None]], "name": "proj.add", "args": [1], "kwargs": {},
        "worker": "w@h", "retries": 2, "queue": "q", "group_id": "g"})
    task = fields.task(backend.encode(record))
    assert task.status == "SUCCESS" and task.result == {"x": [1]} and task.retries == 2
    assert task.date_done is not None and task.date_done.tzinfo is not None
    assert task.extra == {"group_id": "g"}, "keys Celery has no column for are kept apart"
    assert backend.decode(fields.task_record(task)) == record


def test_a_task_not_ready_has_no_date_done(fields: RecordFields) -> None:
    written = datetime(2024, 1, 2, 3, 4, 5, 6)  # naive: UTC, as Celery's columns hold it
    meta = App("t", broker="memory://").backend.decode(fields.task_record(
        TaskFields("id2", "STARTED", date_done=written)))
    assert meta["date_done"] is None and meta["children"] == []
    done = fields.task(fields.task_record(TaskFields("id3", "SUCCESS", date_done=written)))
    assert done.date_done == written.replace(tzinfo=timezone.utc)


def test_groups_round_trip(fields: RecordFields) -> None:
    group = fields.group("g", fields.dumps({"result": [["g", None], []]}))
    assert group == GroupFields("g", [["g", None], []])
    assert fields.loads(fields.group_record(group)) == {"result": [["g", None], []]}


def test_what_is_not_a_record_is_a_decode_error(fields: RecordFields) -> None:
    with pytest.raises(DecodeError, match="result serializer 'json'"):
        fields.task(b"\x80not json")
    with pytest.raises(DecodeError, match="'status'"):
        fields.task(b"[1, 2]")
    with pytest.raises(DecodeError, match="'result'"):
        fields.group("g", b"{}")
