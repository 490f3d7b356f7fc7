"""The plugin as users meet it: found through its entry point for Celery's azureblockblob://,
configured by Celery's settings, light to import, clear about bad URLs, never showing the
account key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed
from kernel.testing import check_distribution
from kernel_azure_blob.store import AzureBlobStore
from kernel_azure_blob.testing import ACCOUNT_KEY


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_listing_plugins_imports_no_azure() -> None:
    code = ("import sys\nfrom kernel.cli import main\n"
            "try:\n    main(['plugins', 'list'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m == 'azure' or "
            "m.startswith(('azure.', 'kernel_azure_blob.store'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert "azureblockblob" in done.stdout, done.stdout + done.stderr
    assert "LOADED []" in done.stdout, "kernel plugins list must not import azure: " + \
        done.stdout[-300:]


def test_app_selects_the_store_by_celerys_scheme_and_settings(
        azure_url: str, azure_options: dict[str, Any]) -> None:
    app = App("plugin-test", broker="memory://", results=azure_url, config=azure_options)
    try:
        store = app.backend.store
        assert isinstance(store, AzureBlobStore)
        assert store.container == azure_options["azureblockblob_container_name"]
        store.set([("k", b"v")], None)  # the container is created on first use, as Celery
        assert store.get("k") == b"v"
    finally:
        app.close()


def test_celerys_defaults() -> None:
    store = AzureBlobStore("azureblockblob://AccountName=a;AccountKey=x", {})
    assert (store.container, store.prefix, store.where) == (
        "celery", "", "https://a.blob.core.windows.net")


@pytest.mark.parametrize("url, match", [
    ("azureblockblob://", "azureblockblob://CONNECTION_STRING"),
    ("azureblob://AccountName=a", "azureblockblob://CONNECTION_STRING"),
    ("azureblockblob://nonsense", "names no account"),
])
def test_a_bad_url_is_refused_with_a_sentence(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AzureBlobStore(url, {})


def test_the_account_key_is_never_shown() -> None:
    url = (f"azureblockblob://DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
           f"AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;")
    store = AzureBlobStore(url, {"connection_timeout": 0.5})
    assert ACCOUNT_KEY not in repr(store) and ACCOUNT_KEY[:12] not in repr(store)
    with pytest.raises(ConnectionFailed) as info:
        store.get("celery-task-meta-x")
    assert ACCOUNT_KEY[:12] not in str(info.value)
    assert ("cannot read 'celery-task-meta-x' in the Azure Blob Storage container 'celery' "
            "at http://127.0.0.1:1/devstoreaccount1") in str(info.value)
