"""The plugin as users meet it: found through its entry point for Celery's couchbase://, light
to import, declaring what it registers, reading Celery's couchbase_backend_settings, clear about
bad URLs, never showing a password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing import check_distribution
from kernel_couchbase.store import CouchbaseStore


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_listing_plugins_imports_no_sdk() -> None:
    code = ("import sys, kernel_couchbase.plugin; "
            "print(sorted(m for m in ('couchbase', 'kernel_couchbase.store') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", f"listing plugins imported {out.strip()}"


def test_app_selects_the_store_by_celerys_scheme(couchbase_url: str) -> None:
    app = App("plugin-test", broker="memory://", results=couchbase_url)
    try:
        assert isinstance(app.backend.store, CouchbaseStore)
    finally:
        app.close()


def test_celerys_settings_fill_what_the_url_leaves_out() -> None:
    store = CouchbaseStore("couchbase://", {"couchbase_backend_settings": {
        "host": "cb.example", "port": 11207, "bucket": "res", "username": "u",
        "password": "p", "scheme": "couchbases"}})
    assert (store.connstr, store.bucket) == ("couchbases://cb.example:11207", "res")
    defaults = CouchbaseStore("couchbase://u:p@", {})
    assert (defaults.connstr, defaults.bucket) == ("couchbase://localhost", "default"), \
        "Celery's defaults (host localhost, bucket default); the SDK's own port"
    url_wins = CouchbaseStore("couchbase://a:b@h/b1", {"couchbase_backend_settings": {
        "host": "x", "bucket": "y", "username": "z", "password": "w"}})
    assert (url_wins.connstr, url_wins.bucket) == ("couchbase://h", "b1")


@pytest.mark.parametrize(("url", "settings", "match"), [
    ("redis://u:p@h/b", {}, "not a Couchbase URL"),
    ("couchbase://u:p@h:port/b", {}, "port .* is not a number"),
    ("couchbase://u:p@h/b", {"scheme": "http"}, "couchbase or couchbases"),
    ("couchbase://h/b", {}, "needs a user and password"),
])
def test_bad_input_is_refused_with_a_sentence(url: str, settings: dict[str, str],
                                              match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        CouchbaseStore(url, {"couchbase_backend_settings": settings})
    assert "\n" not in str(info.value)


def test_the_password_is_masked() -> None:
    store = CouchbaseStore("couchbase://admin:s3cret@127.0.0.1/results", {})
    assert "s3cret" not in repr(store) and "s3cret" not in str(store)
