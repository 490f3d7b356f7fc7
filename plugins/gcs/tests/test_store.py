"""What the GCS store does beyond the suite: Celery's Custom-Time expiry, and the generation
preconditions its adds and counters send (checked on a recording fake, said so below: the
emulator ignores preconditions, Cloud Storage honours them)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from kernel_gcs.store import GCSStore


def test_an_expiring_record_carries_its_deadline_as_custom_time(
        gcs_url: str, gcs_options: dict[str, Any]) -> None:
    store = GCSStore(gcs_url, gcs_options)
    key = f"celery-task-meta-{uuid.uuid4().hex}"
    before = time.time()
    store.set([(key, b"{}")], 3600)
    blob = store.client().get_blob(key)
    assert blob is not None and blob.custom_time is not None
    assert before + 3600 <= blob.custom_time.timestamp() <= time.time() + 3600 + 1, (
        "Custom-Time must be the record's deadline, for a daysSinceCustomTime lifecycle rule")


class Recorder:
    """A fake bucket that records the preconditions of uploads (a fake: the emulator ignores
    ifGenerationMatch, so what kernel sends is checked here, not what a server does)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def blob(self, name: str) -> Any:
        recorder = self

        class Blob:
            custom_time = None

            def upload_from_string(self, data: bytes, **kwargs: Any) -> None:
                recorder.sent.append((name, kwargs["if_generation_match"]))

        return Blob()


def test_adds_and_counters_send_generation_preconditions() -> None:
    store = GCSStore("gs://b?gcs_project=p", {})
    fake: Any = Recorder()
    assert store.create_object(fake, "k", b"1", None)
    assert store.replace_object(fake, "k", b"2", None, "1234")
    store.write_object(fake, "k", b"3", None)
    assert fake.sent == [("k", 0), ("k", 1234), ("k", None)], (
        "an add must upload with ifGenerationMatch=0, a counter with the generation read, "
        "a set without a precondition")
