"""A PEP 517 build backend just big enough to build this distribution's wheel offline."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DIST, PACKAGE, VERSION = "kernel-broken-plugin", "kernel_broken_plugin", "0.1.0"
DIST_INFO = f"{PACKAGE}-{VERSION}.dist-info"
METADATA = (f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\n"
            f"Summary: a kernel plugin that fails to import, for tests\n")
WHEEL = "Wheel-Version: 1.0\nGenerator: broken_dist\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
ENTRY_POINTS = f"[kernel.plugins]\nbroken = {PACKAGE}\n"


def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    return []


def build_wheel(wheel_directory: str, config_settings: Any = None,
                metadata_directory: Any = None) -> str:
    files = {f"{PACKAGE}/__init__.py": (HERE / PACKAGE / "__init__.py").read_bytes(),
             f"{DIST_INFO}/METADATA": METADATA.encode(),
             f"{DIST_INFO}/WHEEL": WHEEL.encode(),
             f"{DIST_INFO}/entry_points.txt": ENTRY_POINTS.encode()}
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    files[f"{DIST_INFO}/RECORD"] = "\n".join([*record, f"{DIST_INFO}/RECORD,,", ""]).encode()
    name = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return name


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
