"""The plugin as users meet it: found through its entry point for Celery's cassandra://, light
to import, declaring what it registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kernel import App
from kernel.testing import check_distribution
from kernel_cassandra.store import CassandraStore


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_listing_plugins_does_not_import_the_driver() -> None:
    code = ("import sys, kernel; from kernel.plugins import PluginManager; PluginManager(); "
            "import kernel_cassandra.plugin; "
            "print('cassandra' in sys.modules or 'kernel_cassandra.store' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", "listing plugins must not import cassandra-driver"


def test_app_selects_the_store_by_celerys_scheme() -> None:
    app = App("plugin-test", broker="memory://", results="cassandra://",
              config={"cassandra_servers": ["127.0.0.1"], "cassandra_keyspace": "k",
                      "cassandra_table": "t"})
    try:
        assert isinstance(app.backend.store, CassandraStore)
    finally:
        app.close()
