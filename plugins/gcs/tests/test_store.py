"""What the GCS store does beyond the suite: Celery's layout and Custom-Time expiry (gcs_ttl
with its lifecycle rule), the generation preconditions its adds and counters send (checked on
a recording fake, said so below: the emulator ignores preconditions, Cloud Storage honours
them), a missing bucket, the emulator killed and restarted under a store, a record that does
not decode. Refused credentials are not tested: the emulator has no authentication."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import storage

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError
from kernel_gcs.store import GCSStore
from kernel_gcs.testing import GCSEmulator


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


def one_sentence(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text


def test_celerys_layout_base_path_slash_key_holding_the_record(
        new_bucket: Any, gcs_options: dict[str, Any]) -> None:
    bucket = new_bucket()
    app = App("layout", broker="memory://", results=f"gs://{bucket}/celery?gcs_project=test",
              config=gcs_options)
    try:
        task_id = uuid.uuid4().hex
        app.backend.store_result(task_id, "SUCCESS", 42)
        body = storage.Client(project="test").bucket(bucket).blob(
            f"celery/celery-task-meta-{task_id}").download_as_bytes()
        assert app.backend.decode(body)["result"] == 42
    finally:
        app.close()


def test_a_missing_bucket_is_named_with_what_to_do(emulator: Any,
                                                   gcs_options: dict[str, Any]) -> None:
    store = GCSStore("gs://absent-bucket?gcs_project=test", gcs_options)
    with pytest.raises(ConfigurationError, match="the Google Cloud Storage bucket "
                       "'absent-bucket' at .* does not exist; create it, set gcs_create_bucket "
                       "= True") as info:
        store.set([("k", b"v")], None)
    one_sentence(str(info.value))


def test_gcs_create_bucket_creates_it(emulator: Any, gcs_options: dict[str, Any]) -> None:
    name = f"created-{uuid.uuid4().hex[:12]}"
    store = GCSStore(f"gs://{name}?gcs_project=test", {**gcs_options, "gcs_create_bucket": True})
    store.set([("k", b"v")], None)
    assert store.get("k") == b"v"


def test_gcs_ttl_needs_a_lifecycle_rule_as_celery(new_bucket: Any,
                                                  gcs_options: dict[str, Any]) -> None:
    bucket = new_bucket()
    store = GCSStore(f"gs://{bucket}?gcs_project=test&ttl=600", gcs_options)
    with pytest.raises(ConfigurationError, match="gcs_ttl is set, but the Google Cloud Storage "
                       f"bucket '{bucket}' .* has no lifecycle rule that deletes objects"):
        store.set([("k", b"v")], None)
    handle = storage.Client(project="test").bucket(bucket)
    handle.add_lifecycle_delete_rule(days_since_custom_time=0)
    handle.patch()
    store = GCSStore(f"gs://{bucket}?gcs_project=test&ttl=600", gcs_options)
    store.set([("k", b"v")], 5)
    blob = store.client().get_blob("k")
    assert blob.custom_time.timestamp() > time.time() + 500, "gcs_ttl sets the Custom-Time"


@pytest.fixture
def own_emulator(tmp_path: Path, emulator: Any) -> Iterator[GCSEmulator]:
    """An emulator of the test's own, named by STORAGE_EMULATOR_HOST for the test."""
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    with GCSEmulator(tmp_path / "gcs") as server:
        os.environ["STORAGE_EMULATOR_HOST"] = server.host
        try:
            yield server
        finally:
            if saved is None:
                del os.environ["STORAGE_EMULATOR_HOST"]
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = saved


@pytest.mark.timeout(90)
def test_the_store_recovers_when_the_emulator_comes_back(own_emulator: GCSEmulator,
                                                         gcs_options: dict[str, Any]) -> None:
    store = GCSStore("gs://recovers?gcs_project=test",
                     {**gcs_options, "gcs_create_bucket": True, "connection_timeout": 2.0})
    store.set([("k", b"before")], None)
    own_emulator.kill()
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot read 'k' in the Google Cloud Storage "
                       "bucket 'recovers'") as info:
        store.get("k")
    assert time.monotonic() - started < 5, "a call must give up within connection_timeout"
    one_sentence(str(info.value))
    own_emulator.start()  # in memory: the bucket is gone, and gcs_create_bucket brings it back
    store.set([("k", b"after")], None)
    assert store.get("k") == b"after"


def test_a_record_that_does_not_decode_names_task_store_and_remedy(
        gcs_url: str, gcs_options: dict[str, Any]) -> None:
    app = App("decode", broker="memory://", results=gcs_url, config=gcs_options)
    try:
        task_id = uuid.uuid4().hex
        app.backend.store.set([(f"celery-task-meta-{task_id}", b"[1, 2]")], None)
        with pytest.raises(DecodeError, match=f"the result of task {task_id} in the Google "
                           "Cloud Storage bucket .* is not a result record") as info:
            app.AsyncResult(task_id).get(timeout=5)
        one_sentence(str(info.value))
    finally:
        app.close()
