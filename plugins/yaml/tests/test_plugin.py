"""The plugin as users meet it: found through its entry point, light to import, declaring what
it registers, and chosen by ``serializer="yaml"`` or Celery's content type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kernel import App
from kernel.testing import check_distribution
from kernel_yaml.serializer import YamlSerializer


def test_kernel_lists_the_plugin_as_ok() -> None:
    listed = subprocess.run([sys.executable, "-m", "kernel", "plugins", "list", "--json"],
                            capture_output=True, text=True, check=True).stdout
    [info] = [i for i in json.loads(listed) if i["name"] == "yaml"]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == "kernel-yaml"


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_the_entry_point_module_does_not_import_yaml() -> None:
    code = ("import sys, kernel_yaml.plugin; "
            "print('yaml' in sys.modules or 'kernel_yaml.serializer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False", "listing plugins must not import yaml"


def test_an_app_encodes_and_decodes_by_name_and_content_type() -> None:
    app = App("plugin-test", broker="memory://", results=None,
              config={"accept_content": ["json", "yaml"]})
    try:
        assert isinstance(app.codec.serializer("yaml"), YamlSerializer)
        body, ctype, encoding, compression = app.codec.encode([[b"\xff"], {}], "yaml")
        assert (ctype, encoding, compression) == ("application/x-yaml", "utf-8", None)
        assert app.codec.decode(body, ctype) == [[b"\xff"], {}]
    finally:
        app.close()
