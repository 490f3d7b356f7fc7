"""Fixtures for the command-line tests: a CliRunner pointed at a fresh SQLite file, and app
modules written into tmp_path under unique names (kernel.app.load_app caches apps by their spec)."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kernel import App
from kernel.cli import cli

TASKS_SOURCE = """
    from kernel import App

    app = App("cliapp")

    @app.task
    def add(x, y):
        return x + y

    @app.task
    def boom():
        raise ValueError("boom on purpose")
"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kernel.db'}"


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    # Wide columns, so rich tables do not wrap the words the tests look for.
    return {"KERNEL_BROKER_URL": db_url, "KERNEL_RESULT_BACKEND": db_url, "COLUMNS": "250",
            "KERNEL_DISABLE_PLUGINS": ""}


@pytest.fixture
def invoke(env: dict[str, str]) -> Callable[..., Result]:
    """``invoke("call", "x")``: run the command line in-process with the test's environment."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), env=env, input=input)

    return run


@pytest.fixture
def client(db_url: str) -> Iterator[App]:
    """An App on the test's database, to look at what the commands did."""
    app = App("cli-test-client", broker=db_url, results=db_url)
    yield app
    app.close()


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write Python source into a uniquely named module on sys.path; return the module name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source: str) -> str:
        name = f"cli_mod_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return make


@pytest.fixture
def tasks_module(make_module: Callable[[str], str]) -> str:
    return make_module(TASKS_SOURCE)
