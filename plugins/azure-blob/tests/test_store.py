"""What the Azure Blob Storage store does beyond the suite, on Azurite: Celery's blob layout,
the container created on first use (as Celery) or named when that is off, a refused account
key, Azurite killed and restarted under a store, a record that does not decode."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError
from kernel_azure_blob.store import AzureBlobStore
from kernel_azure_blob.testing import ACCOUNT_KEY, Azurite


def one_sentence(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text, text


def test_celerys_layout_the_key_after_the_base_path_holding_the_record(
        azure_url: str, azure_options: dict[str, Any]) -> None:
    app = App("layout", broker="memory://", results=azure_url,
              config={**azure_options, "azureblockblob_base_path": "celery/"})
    try:
        task_id = uuid.uuid4().hex
        app.backend.store_result(task_id, "SUCCESS", 42)
        service = BlobServiceClient.from_connection_string(azure_url[len("azureblockblob://"):])
        blob = service.get_blob_client(azure_options["azureblockblob_container_name"],
                                       f"celery/celery-task-meta-{task_id}")
        assert app.backend.decode(blob.download_blob().readall())["result"] == 42
    finally:
        app.close()


def test_without_creating_a_missing_container_is_named(azure_url: str) -> None:
    store = AzureBlobStore(azure_url, {"azureblockblob_container_name": "absent",
                                       "azureblockblob_create_container": False})
    with pytest.raises(ConfigurationError, match="the Azure Blob Storage container 'absent' at "
                       r"http://127.0.0.1:\d+/devstoreaccount1 does not exist; create it, set "
                       "azureblockblob_create_container = True") as info:
        store.set([("k", b"v")], None)
    one_sentence(str(info.value))


def test_a_refused_account_key_is_one_sentence(azure_url: str,
                                               azure_options: dict[str, Any]) -> None:
    wrong = "A" * 86 + "=="
    store = AzureBlobStore(azure_url.replace(ACCOUNT_KEY, wrong), azure_options)
    with pytest.raises(ConfigurationError, match="refused the credentials to read 'k'.*check "
                       "the AccountKey") as info:
        store.get("k")
    one_sentence(str(info.value))
    assert wrong[:20] not in str(info.value) and ACCOUNT_KEY[:20] not in str(info.value)


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[Azurite]:
    with Azurite(tmp_path / "azurite") as server:
        yield server


@pytest.mark.timeout(90)
def test_the_store_recovers_when_azurite_comes_back(own_azurite: Azurite) -> None:
    store = AzureBlobStore(own_azurite.url(), {"connection_timeout": 2.0})
    store.set([("k", b"before")], None)
    own_azurite.kill()
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot read 'k' in the Azure Blob Storage "
                       "container 'celery'") as info:
        store.get("k")
    assert time.monotonic() - started < 5, "a call must give up within connection_timeout"
    one_sentence(str(info.value))
    assert ACCOUNT_KEY[:20] not in str(info.value)
    own_azurite.start()  # in memory: the container is gone, and is created again
    store.set([("k", b"after")], None)
    assert store.get("k") == b"after"


def test_a_record_that_does_not_decode_names_task_store_and_remedy(
        azure_url: str, azure_options: dict[str, Any]) -> None:
    app = App("decode", broker="memory://", results=azure_url, config=azure_options)
    try:
        task_id = uuid.uuid4().hex
        app.backend.store.set([(f"celery-task-meta-{task_id}", b"\xff\xfe")], None)
        with pytest.raises(DecodeError, match=f"the result of task {task_id} in the Azure Blob "
                           "Storage container .* does not decode") as info:
            app.AsyncResult(task_id).get(timeout=5)
        one_sentence(str(info.value))
    finally:
        app.close()
