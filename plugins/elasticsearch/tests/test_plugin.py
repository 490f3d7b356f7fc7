"""The plugin as users meet it: found through its entry point for Celery's elasticsearch:// (and
opensearch://), light to import, declaring what it registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.testing import check_distribution
from kernel_elasticsearch.store import ElasticsearchStore, OpenSearchStore


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_listing_plugins_imports_neither_client() -> None:
    code = ("import sys, kernel; from kernel.plugins import PluginManager; PluginManager(); "
            "import kernel_elasticsearch.plugin; "
            "print(sorted(m for m in ('elasticsearch', 'opensearchpy', 'elastic_transport', "
            "'kernel_elasticsearch.store') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", f"listing plugins must not import the clients: {out}"


@pytest.mark.parametrize("scheme, kind", [
    ("elasticsearch", ElasticsearchStore), ("elasticsearch+https", ElasticsearchStore),
    ("opensearch", OpenSearchStore), ("opensearch+http", OpenSearchStore)])
def test_app_selects_the_store_by_scheme(scheme: str, kind: type) -> None:
    app = App("plugin-test", broker="memory://", results=f"{scheme}://127.0.0.1:1/results",
              config={"elasticsearch_timeout": 3, "elasticsearch_max_retries": 0})
    try:
        store = app.backend.store
        assert isinstance(store, kind) and store.timeout == 3
    finally:
        app.close()
