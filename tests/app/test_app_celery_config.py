"""Configuration as a Celery project writes it: Celery's constructor keywords, ``-A`` found where
Celery looks, ``config_from_object``/``config_from_envvar``, ``conf.update``, ``KERNEL_``
environment variables, Celery's setting names (old and new), and ``kernel report``."""

from __future__ import annotations

import logging
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import kernel
from kernel import App, Celery, ConfigurationError, Task
from kernel.app import load_app
from kernel.cli import cli


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], str]:
    """``package({"__init__.py": ..., "celery.py": ...})``: a package of that name layout under a
    unique name on sys.path; returns the name (load_app caches by spec)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(files: dict[str, str]) -> str:
        name = f"proj_{uuid.uuid4().hex[:8]}"
        root = tmp_path / name
        root.mkdir()
        for path, text in files.items():
            (root / path).write_text(textwrap.dedent(text).replace("PKG", name))
        return name

    return make


# ---------------------------------------------------------------------------- App(...)


def test_celery_constructor_keywords_are_taken() -> None:
    app = Celery("proj", broker="memory://", backend="memory://", include=["proj.tasks"],
                 set_as_current=False, autofinalize=True, task_default_queue="jobs")
    assert Celery is App and app.main == "proj"
    assert app.conf.result_backend == "memory://", "backend= is kernel's results="
    assert app.conf.include == ("proj.tasks",)
    assert app.conf.task_default_queue == "jobs", "settings by name, as Celery's changes"
    assert app.conf.sources["result_backend"] == "App()"


def test_main_keyword_and_set_as_current() -> None:
    first = App(main="first", broker="memory://")
    App("second", broker="memory://", set_as_current=False)
    assert first.main == "first"
    assert kernel.shared.current_app() is first, "set_as_current=False leaves the current App"


def test_task_cls_makes_the_apps_tasks() -> None:
    class Audited(Task):  # type: ignore[type-arg]
        audited = True

    app = App("t", broker="memory://", task_cls=Audited)
    named = App("t2", broker="memory://", task_cls=f"{__name__}:Task")

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert isinstance(add, Audited) and add(2, 3) == 5
    assert named.task_cls is Task
    with pytest.raises(ConfigurationError, match="task class must be kernel.Task or a subclass"):
        App("t3", broker="memory://", task_cls=dict)


def test_unknown_and_internal_keywords_are_sentences() -> None:
    with pytest.raises(ConfigurationError, match="unexpected keyword 'brokr'; did you mean "
                                                 "'broker_url'"):
        App(brokr="memory://")
    with pytest.raises(ConfigurationError, match="App\\(loader=...\\) replaces a part of Celery"):
        App(loader="celery.loaders.default:Loader")


def test_config_source_and_namespace_as_django_projects_call_them() -> None:
    settings = {"CELERY_TASK_DEFAULT_QUEUE": "dj", "CELERY_BROKER_URL": "memory://",
                "DEBUG": True}
    app = App("dj", config_source=settings, namespace="CELERY")
    assert app.conf.task_default_queue == "dj" and app.conf.broker_url == "memory://"
    assert app.conf.sources["task_default_queue"] == "object dict"


# ---------------------------------------------------------------------------- -A


def test_dash_a_finds_the_app_where_celery_looks(package: Callable[[dict[str, str]], str]
                                                  ) -> None:
    flat = package({"__init__.py": "from kernel import App\napp = App('flat', "
                                   "broker='memory://')\n"})
    assert load_app(flat).main == "flat" and load_app(flat).import_spec == f"{flat}:app"
    nested = package({"__init__.py": "", "celery.py": "from kernel import Celery\n"
                                                      "app = Celery('nested', "
                                                      "broker='memory://')\n"})
    assert load_app(nested).import_spec == f"{nested}.celery:app", \
        "the Next steps layout: proj/celery.py holds app"
    other = package({"__init__.py": "", "celery.py": "from kernel import Celery\n"
                                                     "mine = Celery('other', "
                                                     "broker='memory://')\n"})
    assert load_app(other).import_spec == f"{other}.celery:mine", "the one App in proj.celery"
    factory = package({"__init__.py": "from kernel import App\ndef make():\n"
                                      "    return App('made', broker='memory://')\n"})
    assert load_app(f"{factory}:make").main == "made", "a function returning the App"
    dotted = package({"__init__.py": "", "tasks.py": "from kernel import App\n"
                                                     "app = App('dotted', broker='memory://')\n"})
    assert load_app(f"{dotted}.tasks.app").main == "dotted"


def test_dash_a_errors_say_where_it_looked(package: Callable[[dict[str, str]], str]) -> None:
    empty = package({"__init__.py": "X = 1\n"})
    with pytest.raises(ConfigurationError, match=f"found no kernel App in {empty} .looked at "
                                                 f"{empty}.app, {empty}.celery"):
        load_app(empty)
    broken = package({"__init__.py": "raise RuntimeError('no database')\n"})
    with pytest.raises(ConfigurationError, match=f"importing {broken} raised RuntimeError: no "
                                                 f"database; fix that module"):
        load_app(broken)


# ---------------------------------------------------------------------------- sources


def test_config_from_object_module_and_celery_names(
        package: Callable[[dict[str, str]], str], caplog: pytest.LogCaptureFixture) -> None:
    name = package({"__init__.py": "", "celeryconfig.py": """
        BROKER_URL = "memory://"
        CELERY_TASK_SERIALIZER = "json"
        CELERYD_PREFETCH_MULTIPLIER = 2
        broker_transport_options = {"visibility_timeout": 60}
        enable_utc = True
        SOME_CONSTANT = 3
    """})
    app = App("c")
    with caplog.at_level(logging.WARNING, logger="kernel.config"):
        app.config_from_object(f"{name}.celeryconfig")
        conf = app.conf
    assert conf.broker_url == "memory://" and conf.worker_prefetch_multiplier == 2
    assert conf.transport_options == {"visibility_timeout": 60}, "Celery's name, kernel's setting"
    assert conf.sources["broker_url"] == f"object {name}.celeryconfig"
    said = [r.getMessage() for r in caplog.records]
    assert "setting BROKER_URL is Celery's old name for broker_url: write that" in said
    assert any(line.startswith("setting enable_utc is ignored: ") for line in said), said


def test_a_celery_setting_kernel_lacks_and_a_config_that_does_not_import(
        package: Callable[[dict[str, str]], str]) -> None:
    with pytest.raises(ConfigurationError, match="'worker_direct' is a Celery setting kernel "
                                                 "does not have"):
        App("c", broker="memory://", config={"worker_direct": True})
    name = package({"__init__.py": "", "celeryconfig.py": "import no_such_module_here\n"})
    app = App("c", broker="memory://")
    with pytest.raises(ConfigurationError, match=f"cannot import the configuration "
                                                 f"'{name}.celeryconfig': No module named "
                                                 f"'no_such_module_here'"):
        app.config_from_object(f"{name}.celeryconfig", force=True)
    with pytest.raises(ConfigurationError, match="setting 'task_acks_late' must be bool, got "
                                                 "'yes'"):
        App("c", broker="memory://", config={"task_acks_late": "yes"})


def test_config_from_envvar(monkeypatch: pytest.MonkeyPatch,
                            package: Callable[[dict[str, str]], str]) -> None:
    name = package({"__init__.py": "", "settings.py": "task_default_queue = 'env-named'\n"})
    monkeypatch.setenv("PROJ_SETTINGS", f"{name}.settings")
    app = App("e", broker="memory://")
    app.config_from_envvar("PROJ_SETTINGS")
    assert app.conf.task_default_queue == "env-named"
    monkeypatch.delenv("PROJ_SETTINGS")
    with pytest.raises(ConfigurationError, match="the environment variable PROJ_SETTINGS is not "
                                                 "set; set it to the module"):
        app.config_from_envvar("PROJ_SETTINGS")
    app.config_from_envvar("PROJ_SETTINGS", silent=True)


def test_environment_variables_for_every_setting_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, text in {"KERNEL_WORKER_CONCURRENCY": "3", "KERNEL_TASK_ACKS_LATE": "false",
                      "KERNEL_ACCEPT_CONTENT": "json,msgpack", "KERNEL_RESULT_EXPIRES": "7.5",
                      "KERNEL_TASK_TIME_LIMIT": "", "KERNEL_TRANSPORT_OPTIONS": '{"a": 1}',
                      "KERNEL_TASK_ROUTES": '{"x.*": "q"}'}.items():
        monkeypatch.setenv(var, text)
    conf = App("env", broker="memory://").conf
    assert conf.worker_concurrency == 3 and conf.task_acks_late is False
    assert conf.accept_content == ("json", "msgpack") and conf.result_expires == 7.5
    assert conf.task_time_limit is None and conf.transport_options == {"a": 1}
    assert conf.task_routes == {"x.*": "q"}
    assert conf.sources["worker_concurrency"] == "env KERNEL_WORKER_CONCURRENCY"
    monkeypatch.setenv("KERNEL_WORKER_CONCURRENCY", "many")
    with pytest.raises(ConfigurationError, match="KERNEL_WORKER_CONCURRENCY='many' is not an "
                                                 "integer"):
        App("env", broker="memory://")


def test_conf_update_before_use_and_a_sentence_after() -> None:
    app = App("u", broker="memory://", results="memory://")
    app.conf.update({"CELERY_TASK_SERIALIZER": "json"}, task_default_queue="updated")
    assert app.conf.task_default_queue == "updated"
    assert app.conf.sources["task_default_queue"] == "app.conf.update"
    with pytest.raises(ConfigurationError, match="unknown setting 'task_default_queu' "
                                                 "\\(in app.conf.update\\)"):
        app.conf.update(task_default_queu="x")
    app.send_task("anything")  # connects
    app.conf.update(task_default_priority=3)  # read per send: fine
    with pytest.raises(ConfigurationError, match="app.conf.update\\(broker_url=...\\) after 'u' "
                                                 "connected"):
        app.conf.update(broker_url="memory://other")
    app.close()
    app.conf.update(broker_url="memory://other")
    assert app.conf.broker_url == "memory://other"


def test_conf_as_a_mapping_as_celery_projects_use_it() -> None:
    app = App("m", broker="memory://")
    app.conf["task_default_queue"] = "by-key"
    assert app.conf["task_default_queue"] == "by-key" == app.conf.task_default_queue
    with pytest.raises(ConfigurationError, match="unknown setting 'task_default_queu'"):
        app.conf["task_default_queu"] = "x"


def test_later_config_from_object_keeps_updates_and_their_source() -> None:
    app = App("k", broker="memory://")
    app.conf.update(task_default_queue="mine")
    app.config_from_object({"task_default_queue": "theirs", "task_default_priority": 4})
    assert app.conf.task_default_queue == "mine" and app.conf.task_default_priority == 4
    assert app.conf.sources["task_default_queue"] == "app.conf.update"


def test_imports_and_include_are_imported_as_a_worker_starts(
        package: Callable[[dict[str, str]], str]) -> None:
    # Not @shared_task: that would bind the task to every App the test session makes later.
    name = package({"__init__.py": "", "tasks.py": "from kernel.shared import current_app\n"
                                                   "@current_app().task(name='inc.add')\n"
                                                   "def add(x, y):\n    return x + y\n"})
    app = App("i", broker="memory://", include=[f"{name}.tasks"])
    assert app.import_discovered() == [f"{name}.tasks"] and "inc.add" in app.tasks
    bad = App("i", broker="memory://", imports=["no_such_tasks_module"])
    with pytest.raises(ConfigurationError, match="cannot import the configuration "
                                                 "'no_such_tasks_module'"):
        bad.import_discovered()


# ---------------------------------------------------------------------------- kernel report


def test_report_prints_the_settings_with_sources_and_masks_secrets(
        package: Callable[[dict[str, str]], str]) -> None:
    name = package({"__init__.py": "", "celery.py": """
        from kernel import Celery
        app = Celery("rep", broker="redis://:hunter2@127.0.0.1:6379/13", backend="memory://")
        app.config_from_object({"task_default_queue": "from-object"})
    """})
    result = CliRunner().invoke(cli, ["-A", name, "--results", "memory://", "report"],
                                env={"KERNEL_WORKER_CONCURRENCY": "5"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"app -> {name}.celery:app" in out
    assert "hunter2" not in out and "redis://:**@127.0.0.1:6379/13" in out
    lines = {line.split("=")[0].strip(): line for line in out.splitlines() if " = " in line}
    assert lines["task_default_queue"].endswith("[object dict]")
    assert lines["worker_concurrency"].endswith("[env KERNEL_WORKER_CONCURRENCY]")
    assert lines["result_backend"].endswith("[command line]")
    assert lines["broker_url"].endswith("[App()]")
    assert "task_serializer" not in lines, "defaults only with --all"
    full = CliRunner().invoke(cli, ["-A", name, "report", "--all"])
    assert '"json"    [default]' in full.output


@pytest.fixture(autouse=True)
def _forget_modules() -> Iterator[None]:
    """Packages made here are not left for the next test's imports."""
    before = set(sys.modules)
    yield
    for module in set(sys.modules) - before:
        if module.startswith("proj_"):
            del sys.modules[module]


def test_task_annotations_as_the_first_steps_configuration_writes_them() -> None:
    class Slow:
        def annotate(self, name: str) -> dict[str, object] | None:
            return {"time_limit": 5.0} if name.startswith("slow.") else None

    app = App("a", broker="memory://", config={
        "task_annotations": [{"tasks.add": {"rate_limit": "10/m"}, "*": {"max_retries": 7}},
                             Slow()]})

    @app.task(name="tasks.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="slow.report")
    def report() -> None: ...

    assert add.options.rate_limit == "10/m" and add.options.max_retries == 7
    assert report.options.time_limit == 5.0 and report.options.rate_limit is None
    app.conf.update(task_annotations={"tasks.add": {"rate_limit": "1/s"}})
    app.annotate_tasks()
    assert app.tasks["tasks.add"].options.rate_limit == "1/s", "read again as a worker starts"
    with pytest.raises(ConfigurationError, match="task_annotations for 'tasks.add' set "
                                                 "rate_limt, which is not a task option"):
        App("b", broker="memory://",
            config={"task_annotations": {"tasks.add": {"rate_limt": "1/s"}}}).task(
                name="tasks.add")(lambda: None)
