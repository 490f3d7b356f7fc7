"""The plugin as users meet it: found through its entry point for Celery's couchdb://, light to
import, declaring what it registers, clear about bad URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing import check_distribution
from kernel_couchdb.store import CouchDBStore


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_the_entry_point_module_does_not_import_httpx() -> None:
    code = ("import sys, kernel_couchdb.plugin; "
            "print('httpx' in sys.modules or 'kernel_couchdb.store' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", "listing plugins must not import httpx"


def test_app_selects_the_store_by_celerys_scheme(couchdb_url: str) -> None:
    app = App("plugin-test", broker="memory://", results=couchdb_url)
    try:
        assert isinstance(app.backend.store, CouchDBStore)
    finally:
        app.close()


@pytest.mark.parametrize("url", ["couchdb://", "couchdb:///db", "couchdb://h:port/db"])
def test_a_bad_url_is_refused_with_a_sentence(url: str) -> None:
    with pytest.raises(ConfigurationError, match="couchdb://|port"):
        CouchDBStore(url, {})


def test_credentials_are_masked() -> None:
    store = CouchDBStore("couchdb://admin:s3cret@127.0.0.1:1/results", {"connection_timeout": 0.5})
    assert "s3cret" not in repr(store)
    with pytest.raises(Exception) as info:
        store.get("celery-task-meta-x")
    assert "s3cret" not in str(info.value) and "cannot reach CouchDB" in str(info.value)
