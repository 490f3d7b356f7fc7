"""Importing kernel, building an App and listing every installed plugin import no heavy client
library: plugins' entry-point modules stay light and import their libraries on first use."""

from __future__ import annotations

import json
import re
import subprocess
import sys

HEAVY = ("redis", "kombu", "amqp", "boto3", "botocore", "google", "azure", "pymongo",
         "sqlalchemy", "gevent", "eventlet", "msgpack", "yaml", "cassandra", "couchbase",
         "elasticsearch")


def python(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def heavy_in(modules: list[str]) -> list[str]:
    return sorted({m for m in modules if m.split(".")[0] in HEAVY})


def test_import_kernel_imports_no_heavy_library() -> None:
    report = python("-X", "importtime", "-c", "import kernel").stderr
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", report, re.M)
    assert "kernel" in imported
    assert heavy_in(imported) == []


def test_building_an_app_and_listing_plugins_imports_no_heavy_library() -> None:
    out = python("-c", "import json, sys, kernel\n"
                       "infos = kernel.App('x').plugins.infos()\n"
                       "print(json.dumps({'plugins': [i.name for i in infos],"
                       " 'modules': sorted(sys.modules)}))").stdout
    loaded = json.loads(out)
    assert {"serializers", "compression"} <= set(loaded["plugins"])
    assert heavy_in(loaded["modules"]) == []
