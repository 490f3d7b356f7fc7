"""The plugin's tests: kernel's conformance suite for compressors, then the registration."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from kernel import App
from kernel.std import serializers
from kernel.testing import CompressorSuite
from kernel_lzma import plugin
from kernel_lzma.compressor import LzmaCompressor


class TestLzmaCompressor(CompressorSuite):
    @pytest.fixture
    def compressor(self) -> LzmaCompressor:
        return LzmaCompressor()


def test_an_app_compresses_task_messages_with_lzma() -> None:
    # App(plugins=[...], autoload=False): exactly these plugins, no entry points needed.
    app = App("lzma-test", plugins=[serializers, plugin], autoload=False,
              config={"task_compression": "lzma"})
    body, _, _, header = app.codec.encode({"x": "y" * 1000}, "json", "lzma")
    assert header == plugin.MIME
    assert app.codec.decode(body, "application/json", header) == {"x": "y" * 1000}


def test_the_entry_point_is_installed() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="kernel.plugins")}
    assert names.get("lzma") == "kernel_lzma.plugin", (
        "install the plugin (pip install -e .) so kernel finds its entry point")
