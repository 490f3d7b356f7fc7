"""Throwaway virtualenvs that see what the running interpreter has installed.

A venv made with ``--system-site-packages`` sees the *base* interpreter's packages, not those
of the venv running the tests (nox's, where kernel is installed): on a machine whose base
``python3`` lacks kernel, code run in it cannot import kernel. Here the new venv gets its own
pip (ensurepip, offline) and a ``.pth`` file that adds the running interpreter's site
directories with `site.addsitedir`, so their own ``.pth`` files (editable installs) are read too.
"""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
from pathlib import Path


def child_venv(directory: Path) -> Path:
    """Create a venv in `directory` layered over this interpreter's packages; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True,
                   capture_output=True, timeout=300)
    python = directory / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True).stdout.strip()
    parents = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"],
                             sysconfig.get_paths()["platlib"]])
    lines = [f"import site; site.addsitedir({str(p)!r})" for p in parents if Path(p).is_dir()]
    (Path(purelib) / "_kernel_test_parent.pth").write_text("\n".join(lines) + "\n")
    return python
