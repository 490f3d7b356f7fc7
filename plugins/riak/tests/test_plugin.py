"""The plugin as users meet it: found through its entry point for Celery's riak://, light to
import, declaring what it registers, reading Celery's riak_backend_settings, clear about bad
URLs and settings, never showing a password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing import check_distribution
from kernel_riak.store import RiakStore


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_listing_plugins_imports_no_http_client() -> None:
    code = ("import sys, kernel_riak.plugin; "
            "print('httpx' in sys.modules or 'kernel_riak.store' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", "listing plugins must not import httpx"


def test_app_selects_the_store_by_celerys_scheme(riak_url: str) -> None:
    app = App("plugin-test", broker="memory://", results=riak_url)
    try:
        assert isinstance(app.backend.store, RiakStore)
    finally:
        app.close()


def test_celerys_settings_fill_what_the_url_leaves_out() -> None:
    app = App("settings", broker="memory://", results="riak://", config={
        "riak_backend_settings": {"host": "riak.example", "port": 18098, "bucket": "res",
                                  "protocol": "http"}})
    try:
        store = app.backend.store
        assert isinstance(store, RiakStore)
        assert store.where == "http://riak.example:18098" and store.bucket == "res"
    finally:
        app.close()
    defaults = RiakStore("riak://", {})
    assert defaults.where == "http://localhost:8098" and defaults.bucket == "celery", \
        "Celery's defaults: bucket celery (kernel's port: Riak's HTTP one)"
    url_wins = RiakStore("riak://h:1/b", {"riak_backend_settings": {"host": "x", "bucket": "y"}})
    assert url_wins.where == "http://h:1" and url_wins.bucket == "b"


@pytest.mark.parametrize(("url", "settings", "match"), [
    ("redis://h/b", {}, "not a Riak URL"),
    ("riak://h:port/b", {}, "port .* is not a number"),
    ("riak://h/b", {"protocol": "pbc"}, "kernel speaks Riak's HTTP API"),
    ("riak://h/b", {"scheme": "ftp"}, "http or https"),
    ("riak://h/zółw", {}, "ASCII"),
])
def test_bad_input_is_refused_with_a_sentence(url: str, settings: dict[str, str],
                                              match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        RiakStore(url, {"riak_backend_settings": settings})
    assert "\n" not in str(info.value)


def test_the_password_is_masked() -> None:
    store = RiakStore("riak://admin:s3cret@127.0.0.1:1/results", {"connection_timeout": 0.5})
    assert "s3cret" not in repr(store)
    with pytest.raises(Exception) as info:
        store.get("celery-task-meta-x")
    assert "s3cret" not in str(info.value) and "cannot read" in str(info.value)
