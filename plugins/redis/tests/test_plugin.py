"""The plugin as users meet it: found through its entry point for redis:// and rediss://,
light to import, and clear about bad URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing import check_distribution
from kernel_redis.results import RedisResultStore
from kernel_redis.transport import RedisTransport


def test_entry_point_module_does_not_import_redis_py() -> None:
    code = "import sys, kernel_redis.plugin; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "listing plugins must not import redis-py"


def test_app_selects_the_plugin_by_scheme(redis_url: str) -> None:
    app = App("plugin-test", broker=redis_url, results=redis_url)
    try:
        assert isinstance(app.transport, RedisTransport)
        assert isinstance(app.backend.store, RedisResultStore)
        spec = app.plugins.transports.get("rediss")
        assert spec.capabilities == RedisTransport.capabilities, \
            "the record must declare what the transport declares"
    finally:
        app.close()


def test_bad_options_are_refused_with_a_sentence(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="priority_steps"):
        RedisTransport(redis_url, {"priority_steps": [3, 6]})
    with pytest.raises(ConfigurationError, match="lease_seconds"):
        RedisTransport(redis_url, {"lease_seconds": "soon"})


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")
