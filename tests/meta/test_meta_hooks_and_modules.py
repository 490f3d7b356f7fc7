"""Checks on the project itself: every hook is documented to the template and has a test, and
every module imports cleanly on its own with warnings as errors."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest

from kernel import hookspecs

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ("**Called**", "**Results**", "**Historic**", "**Wrappers**", "**Example**")
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if name.startswith("kernel_") and callable(fn))


def hook_doc(name: str) -> str:
    return inspect.getdoc(getattr(hookspecs, name)) or ""


def test_hookspecs_are_found() -> None:
    assert {"kernel_transports", "kernel_app_created", "kernel_worker_init"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_follows_the_template(hook: str) -> None:
    doc = hook_doc(hook)
    missing = [part for part in TEMPLATE if part not in doc]
    assert not missing, (f"kernel/hookspecs.py: the docstring of {hook} lacks {missing}; "
                         f"follow the template at the top of the module")


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_example_is_python(hook: str) -> None:
    doc = hook_doc(hook)
    example = doc.split("**Example**::", 1)[1] if "**Example**::" in doc else ""
    assert example.strip(), f"{hook}: the example must follow '**Example**::'"
    try:
        ast.parse(textwrap.dedent(example.strip("\n")))
    except SyntaxError as exc:
        pytest.fail(f"{hook}: the example does not parse as Python: {exc}")


@cache
def _test_sources() -> str:
    here = Path(__file__).resolve()
    return "\n".join(path.read_text(errors="replace") for path in (ROOT / "tests").rglob("*.py")
                     if path.resolve() != here)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    # a test named test_hook_<hook> or test_hook_<hook>_<what it checks>, anywhere under tests/
    pattern = rf"^\s*(async\s+)?def test_hook_{hook}(_\w+)?\s*\("
    if not re.search(pattern, _test_sources(), re.M):
        pytest.fail(f"no test for the hook {hook}: write `def test_hook_{hook}...` under tests/")


def _modules() -> list[str]:
    found = []
    for path in sorted((ROOT / "kernel").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append(".".join(parts))
    return found


@pytest.mark.parametrize("module", _modules())
def test_module_imports_cleanly_with_warnings_as_errors(module: str) -> None:
    done = subprocess.run([sys.executable, "-W", "error", "-c", f"import {module}"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, f"`python -W error -c 'import {module}'` failed:\n{done.stderr}"
