"""The example project on a SQLite database and broker of its own (a temporary directory),
migrated; the project is importable from here, and by the workers the tests start."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(tempfile.mkdtemp(prefix="kernel-django-example-"))
os.environ["EXAMPLE_DATA_DIR"] = str(DATA)
os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings"
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.core.management import call_command  # noqa: E402

django.setup()
call_command("migrate", verbosity=0, interactive=False)
