"""The plugin as users meet it: found through its entry point for Celery's gs://, configured by
Celery's URL and settings, light to import, clear about bad URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing import check_distribution
from kernel_gcs.store import GCSStore


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_listing_plugins_imports_no_google_cloud() -> None:
    code = ("import sys\nfrom kernel.cli import main\n"
            "try:\n    main(['plugins', 'list'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m.startswith(('google.cloud', "
            "'google.api_core', 'kernel_gcs.store'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert "gcs" in done.stdout, done.stdout + done.stderr
    assert "LOADED []" in done.stdout, "kernel plugins list must not import google-cloud: " + \
        done.stdout[-300:]


def test_app_selects_the_store_by_celerys_url(gcs_url: str,
                                              gcs_options: dict[str, Any]) -> None:
    app = App("plugin-test", broker="memory://", results=gcs_url, config=gcs_options)
    try:
        store = app.backend.store
        assert isinstance(store, GCSStore) and store.project == "test"
        store.set([("k", b"v")], None)
        assert store.get("k") == b"v"
    finally:
        app.close()


def test_celerys_url_names_bucket_base_path_project_and_ttl() -> None:
    store = GCSStore("gs://results/celery/prefix/?gcs_project=p&ttl=600", {})
    assert (store.bucket_name, store.prefix, store.project, store.ttl) == (
        "results", "celery/prefix/", "p", 600)
    assert store.object_name("celery-task-meta-1") == "celery/prefix/celery-task-meta-1"


def test_settings_alone_name_the_bucket() -> None:
    store = GCSStore("gs://", {"gcs_bucket": "b", "gcs_base_path": "/base/",
                               "gcs_project": "p"})
    assert (store.bucket_name, store.prefix) == ("b", "base/")


@pytest.mark.parametrize("url, match", [
    ("gs://", "needs a bucket"),
    ("gs://user:pw@b", "credentials come from GOOGLE_APPLICATION_CREDENTIALS"),
    ("gs://b?project=p", r"unknown parameters \['project'\]"),
    ("gs://b?ttl=-1", "gcs_ttl' must be a number of at least 0"),
])
def test_a_bad_url_is_refused_with_a_sentence(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        GCSStore(url, {})
    assert "pw" not in str(info.value)
