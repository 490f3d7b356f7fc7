"""The plugin as users meet it: found through its entry point for Celery's arangodb://, light
to import, declaring what it registers, reading Celery's arangodb_backend_settings, clear about
bad URLs, never showing a password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing import check_distribution
from kernel_arangodb.store import ArangoDBStore, document_key


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_listing_plugins_imports_no_client() -> None:
    code = ("import sys, kernel_arangodb.plugin; "
            "print(sorted(m for m in ('arango', 'requests', 'kernel_arangodb.store') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", f"listing plugins imported {out.strip()}"


def test_app_selects_the_store_by_celerys_scheme(arangodb_url: str) -> None:
    app = App("plugin-test", broker="memory://", results=arangodb_url)
    try:
        assert isinstance(app.backend.store, ArangoDBStore)
    finally:
        app.close()


def test_celerys_settings_fill_what_the_url_leaves_out() -> None:
    store = ArangoDBStore("arangodb://", {"arangodb_backend_settings": {
        "host": "db.example", "port": 18529, "database": "d", "collection": "c",
        "http_protocol": "https", "username": "u", "password": "p"}})
    assert (store.endpoint, store.database, store.collection) == (
        "https://db.example:18529", "d", "c")
    defaults = ArangoDBStore("arangodb://", {})
    assert (defaults.endpoint, defaults.database, defaults.collection) == (
        "http://127.0.0.1:8529", "celery", "celery"), "Celery's defaults"
    url_wins = ArangoDBStore("arangodb://h:1/db/coll", {"arangodb_backend_settings": {
        "host": "x", "database": "y", "collection": "z"}})
    assert (url_wins.endpoint, url_wins.database, url_wins.collection) == (
        "http://h:1", "db", "coll")


@pytest.mark.parametrize(("url", "settings", "match"), [
    ("redis://h/d/c", {}, "not an ArangoDB URL"),
    ("arangodb://h:port/d/c", {}, "port .* is not a number"),
    ("arangodb://h/only-one", {}, "names the database and the collection"),
    ("arangodb://h/d/c", {"http_protocol": "ftp"}, "http or https"),
])
def test_bad_input_is_refused_with_a_sentence(url: str, settings: dict[str, str],
                                              match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        ArangoDBStore(url, {"arangodb_backend_settings": settings})
    assert "\n" not in str(info.value)


def test_celerys_keys_are_document_keys_as_they_are() -> None:
    assert document_key("celery-task-meta-9b1de5c4-4f2e-4a37-8f0b-2f0c2a3b1d4e") == \
        "celery-task-meta-9b1de5c4-4f2e-4a37-8f0b-2f0c2a3b1d4e"
    awkward = ["a/b", "a%2Fb", "sp ace", "żółw", ".", "k" * 300, "it's"]
    keys = [document_key(k) for k in awkward]
    assert len(set(keys)) == len(keys) and all(k.startswith("!") for k in keys)


def test_the_password_is_masked() -> None:
    store = ArangoDBStore("arangodb://root:s3cret@127.0.0.1:1/celery/results",
                          {"connection_timeout": 0.5})
    assert "s3cret" not in repr(store)
    with pytest.raises(Exception) as info:
        store.get("celery-task-meta-x")
    assert "s3cret" not in str(info.value) and "cannot read" in str(info.value)
