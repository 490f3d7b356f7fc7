"""``@shared_task``: declared without an App, bound to every App (those that exist and those
created later), called through the current App; and ``autodiscover_tasks``."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import kernel.shared
from kernel import App, ConfigurationError, shared_task


@pytest.fixture(autouse=True)
def forget_shared_tasks() -> Iterator[None]:
    """Shared tasks are process-wide: the ones a test declares go with it."""
    declared = list(kernel.shared._declared)
    current = kernel.shared._current
    kernel.shared._current = None
    yield
    kernel.shared._declared[:] = declared
    kernel.shared._current = current


def eager_app(name: str) -> App:
    return App(name, broker="memory://", results="memory://",
               config={"task_always_eager": True})


def test_calling_a_shared_task_without_any_app_says_what_to_do() -> None:
    @shared_task
    def lonely(x: int) -> int:
        return x

    assert lonely(3) == 3, "calling the function itself needs no App"
    with pytest.raises(ConfigurationError, match="no kernel App exists in this process; "
                       "create one"):
        lonely.delay(1)


def test_a_task_declared_before_the_app_is_bound_to_it() -> None:
    @shared_task(name="shared.add")
    def add(x: int, y: int) -> int:
        return x + y

    app = eager_app("later")
    assert "shared.add" in app.tasks, "an App created later gets the shared task"
    assert app.tasks["shared.add"].app is app
    assert add.delay(2, 3).get() == 5
    assert add.name == "shared.add" and add.app is app


def test_a_task_declared_after_the_apps_is_bound_to_each() -> None:
    first, second = eager_app("first"), eager_app("second")

    @shared_task(max_retries=7)
    def mul(x: int, y: int) -> int:
        return x * y

    name = f"{__name__}.test_a_task_declared_after_the_apps_is_bound_to_each.<locals>.mul"
    assert mul.name == name
    for app in (first, second):
        assert app.tasks[name].app is app
        assert app.tasks[name].options.max_retries == 7
    assert mul.app is second, "the last App created is the current one"
    first.set_current()
    assert mul.app is first
    assert mul.s(2, 3).app is first, "signatures of a shared task use the current App"
    assert mul.delay(4, 5).get() == 20


def test_an_unknown_option_is_refused_by_each_app() -> None:
    eager_app("strict")
    with pytest.raises(ConfigurationError, match="unknown task option"):
        @shared_task(no_such_option=1)
        def bad() -> None: ...


@pytest.fixture
def packages(tmp_path: Path) -> Iterator[Path]:
    """Packages on sys.path: ``shop`` (with tasks.py), ``blog`` (without)."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "tasks.py").write_text(textwrap.dedent("""
        from kernel import shared_task

        @shared_task(name="shop.checkout")
        def checkout(order: int) -> str:
            return f"order {order} paid"
    """))
    (tmp_path / "blog").mkdir()
    (tmp_path / "blog" / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in ("shop", "shop.tasks", "blog"):
        sys.modules.pop(name, None)


def test_autodiscover_imports_tasks_modules_when_asked(packages: Path) -> None:
    app = eager_app("discover")
    app.autodiscover_tasks(["shop", "blog", "no_such_package"])
    assert "shop.checkout" not in app.tasks, "nothing is imported before a worker starts"
    assert app.import_discovered() == ["shop.tasks"], \
        "a package without tasks.py (or not importable) is skipped"
    assert app.tasks["shop.checkout"].delay(7).get() == "order 7 paid"
    assert app.import_discovered() == [], "imported once"


def test_autodiscover_force_and_packages_from_a_callable(packages: Path) -> None:
    app = eager_app("forced")
    asked: list[str] = []

    def installed() -> list[str]:
        asked.append("now")
        return ["shop"]

    app.autodiscover_tasks(installed, force=True)
    assert asked == ["now"] and "shop.checkout" in app.tasks


def test_a_package_with_one_app_under_another_name_loads(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from kernel.app import load_app

    (tmp_path / "djproj").mkdir()
    (tmp_path / "djproj" / "__init__.py").write_text(
        "from djproj.kernel import app as kernel_app\n")
    (tmp_path / "djproj" / "kernel.py").write_text(
        "from kernel import App\napp = App('djproj', broker='memory://')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = load_app("djproj")
    assert app.main == "djproj" and app.import_spec == "djproj:kernel_app", \
        "-A proj finds the App proj/__init__.py imports, as Celery's -A proj does"
    with pytest.raises(ConfigurationError,
                       match="djproj has no kernel App named 'other'; it has kernel_app"):
        load_app("djproj:other")
