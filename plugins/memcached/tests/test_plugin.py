"""The plugin as users meet it: found through its entry point for Celery's cache+memcached://,
light to import, declaring what it registers, clear about bad URLs and options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing import check_distribution
from kernel_memcached.store import MemcachedStore


def test_kernel_lists_the_plugin_as_ok() -> None:
    listed = subprocess.run([sys.executable, "-m", "kernel", "plugins", "list", "--json"],
                            capture_output=True, text=True, check=True).stdout
    [info] = [i for i in json.loads(listed) if i["name"] == "memcached"]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == "kernel-memcached"


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_the_entry_point_module_does_not_import_pymemcache() -> None:
    code = ("import sys, kernel_memcached.plugin; "
            "print('pymemcache' in sys.modules or 'kernel_memcached.store' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", "listing plugins must not import pymemcache"


def test_app_selects_the_store_by_celerys_scheme(memcached_url: str) -> None:
    app = App("plugin-test", broker="memory://", results=memcached_url,
              config={"cache_backend_options": {"timeout": 1}})
    try:
        store = app.backend.store
        assert isinstance(store, MemcachedStore)
        assert store._client_options["timeout"] == 1, \
            "Celery's cache_backend_options must reach the client"
    finally:
        app.close()


@pytest.mark.parametrize("url", ["cache+memcached://", "cache+memcached:///",
                                 "cache+memcached://host:port/"])
def test_a_url_without_a_server_is_refused_with_a_sentence(url: str) -> None:
    with pytest.raises(ConfigurationError, match="write cache\\+memcached://host:port/"):
        MemcachedStore(url, {})


def test_a_bad_option_is_refused_with_a_sentence() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        MemcachedStore("cache+memcached://127.0.0.1:1/", {"timeout": "soon"})
