"""``kernel plugins new``: every kind of distribution it writes installs for real (pip, in a
venv of its own), shows as ``ok`` in ``kernel plugins list``, and passes its own tests as
generated; contrib/plugin-template is exactly what it writes; bad input is a sentence."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernel.scaffold import KINDS, write_distribution
from tests.venvs import child_venv

ROOT = Path(__file__).resolve().parents[2]
#: one distribution a kind, each with a name of its own.
PLANNED = {kind: f"new{kind.split('-')[0][:5]}" for kind in KINDS}


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("new-plugins")
    python = child_venv(root / "venv")
    dirs = {}
    for kind, name in PLANNED.items():
        dirs[kind] = root / f"kernel-{name}"
        run([str(python), "-m", "kernel", "plugins", "new", name, "--provides", kind,
             "--path", str(dirs[kind])], cwd=root)
    # Offline: the build backend (hatchling) comes from the test environment.
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", *map(str, dirs.values())], cwd=root)
    return python, dirs


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_kind_installs_and_is_listed_ok(installed: tuple[Path, dict[str, Path]]) -> None:
    python, _ = installed
    listed = {i["name"]: i for i in json.loads(run(
        [str(python), "-m", "kernel", "plugins", "list", "--json"]).stdout)}
    for kind, name in PLANNED.items():
        info = listed[name]
        assert (info["status"], info["distribution"]) == ("ok", f"kernel-{name}"), info
        assert info["provides"][KINDS[kind].record][0].startswith(name), info


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_generated_distribution_passes_its_own_tests(
        installed: tuple[Path, dict[str, Path]], kind: str) -> None:
    python, dirs = installed
    done = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
               cwd=dirs[kind])
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
    for marker in ("unit", "integration"):
        picked = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                      marker, "--co"], cwd=dirs[kind]).stdout
        assert "no tests collected" not in picked, f"{kind}: no {marker} tests"


def test_contrib_plugin_template_is_what_the_scaffold_writes(tmp_path: Path) -> None:
    fresh = tmp_path / "template"
    write_distribution("example", "result-store", fresh)
    template = ROOT / "contrib" / "plugin-template"
    ours = sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*") if p.is_file())
    theirs = sorted(str(p.relative_to(template)) for p in template.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts
                    and ".egg-info" not in str(p))
    assert ours == theirs, "regenerate it: kernel plugins new example --provides result-store " \
                           "--path contrib/plugin-template (after removing the old one)"
    changed = [f for f in ours if not filecmp.cmp(fresh / f, template / f, shallow=False)]
    assert not changed, f"contrib/plugin-template differs from the scaffold in {changed}; " \
                        "regenerate it"


@pytest.mark.parametrize(("args", "complaint"), [
    (["Bad_Name", "--provides", "pool"], "must be lowercase letters and digits"),
    (["ok", "--provides", "broker"], "'broker' is not one of"),
])
def test_bad_input_is_one_sentence(args: list[str], complaint: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "kernel", "plugins", "new", *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and complaint in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "kernel-kept").mkdir()
    (tmp_path / "kernel-kept" / "mine.py").write_text("# mine\n")
    done = subprocess.run([sys.executable, "-m", "kernel", "plugins", "new", "kept",
                           "--provides", "pool"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "exists and is not empty" in done.stderr
    assert (tmp_path / "kernel-kept" / "mine.py").read_text() == "# mine\n"
