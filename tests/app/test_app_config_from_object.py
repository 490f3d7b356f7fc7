"""``App.config_from_object``: settings from a module, an object, a mapping or a dotted name,
Celery's namespace rule, read lazily, and what wins over what."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from kernel import App, ConfigurationError


@pytest.fixture
def settings_module() -> Iterator[types.ModuleType]:
    """A module ``kernel_test_settings`` holding Django-style settings."""
    module = types.ModuleType("kernel_test_settings")
    module.KERNEL_TASK_DEFAULT_QUEUE = "from-settings"  # type: ignore[attr-defined]
    module.KERNEL_RESULT_EXPIRES = 60  # type: ignore[attr-defined]
    module.DEBUG = True  # type: ignore[attr-defined]
    module.OTHER_TASK_DEFAULT_QUEUE = "not mine"  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def app(**kwargs: object) -> App:
    return App("cfg", broker="memory://", results="memory://", **kwargs)  # type: ignore[arg-type]


def test_a_namespace_takes_the_prefixed_upper_case_names(settings_module: types.ModuleType
                                                           ) -> None:
    a = app()
    a.config_from_object("kernel_test_settings", namespace="KERNEL")
    assert a.conf.task_default_queue == "from-settings"
    assert a.conf.result_expires == 60
    assert a.conf.broker_url == "memory://", "settings given to App() are kept"


def test_module_attribute_names_as_celery_writes_them(settings_module: types.ModuleType) -> None:
    settings_module.conf = types.SimpleNamespace(  # type: ignore[attr-defined]
        task_default_queue="attr", SOME_CONSTANT=1)
    for name in ("kernel_test_settings:conf", "kernel_test_settings.conf"):
        a = app()
        a.config_from_object(name)
        assert a.conf.task_default_queue == "attr", name


def test_without_a_namespace_lower_case_names_are_settings() -> None:
    module = types.ModuleType("celeryconfig")
    module.task_default_queue = "plain"  # type: ignore[attr-defined]
    module.os = sys  # type: ignore[attr-defined]  # an imported module is not a setting
    module.UPPER = "a constant"  # type: ignore[attr-defined]
    a = app()
    a.config_from_object(module)
    assert a.conf.task_default_queue == "plain"
    b = app()
    b.config_from_object({"task_default_queue": "mapping"})
    assert b.conf.task_default_queue == "mapping"


def test_the_object_is_read_when_the_settings_are_first_needed() -> None:
    reads: list[str] = []

    class Settings:
        def __dir__(self) -> list[str]:
            reads.append("dir")
            return ["KERNEL_TASK_DEFAULT_QUEUE"]

        KERNEL_TASK_DEFAULT_QUEUE = "lazy"

    a = app()
    a.config_from_object(Settings(), namespace="KERNEL")
    assert reads == [], "config_from_object must not read the object yet (Django's settings "\
        "are not ready while proj/__init__.py imports the app)"
    assert a.conf.task_default_queue == "lazy"
    assert a.conf.task_default_queue == "lazy"
    assert reads == ["dir"], "read once, on first use"


def test_force_reads_at_once_and_errors_name_the_source(settings_module: types.ModuleType
                                                        ) -> None:
    settings_module.KERNEL_TASK_DEFAULT_QUEU = "typo"  # type: ignore[attr-defined]
    a = app()
    with pytest.raises(ConfigurationError, match=r"kernel_test_settings \(namespace KERNEL\).*"
                       r"unknown setting 'task_default_queu'; did you mean 'task_default_queue'"):
        a.config_from_object("kernel_test_settings", namespace="KERNEL", force=True)


def test_an_object_that_cannot_be_read_is_one_sentence() -> None:
    class Unconfigured:
        def __dir__(self) -> list[str]:
            raise RuntimeError("Requested settings, but settings are not configured")

    a = app()
    a.config_from_object(Unconfigured(), namespace="KERNEL")
    with pytest.raises(ConfigurationError, match="cannot read settings from Unconfigured: "
                       "Requested settings, but settings are not configured"):
        a.conf  # noqa: B018


def test_a_missing_module_is_an_error_unless_silent() -> None:
    a = app()
    a.config_from_object("no_such_module_here.settings", silent=True)
    assert a.conf.task_default_queue == "celery", "silent: nothing changes"
    a.config_from_object("no_such_module_here.settings")
    with pytest.raises(ConfigurationError, match="cannot import the configuration "
                       "'no_such_module_here.settings'"):
        a.conf  # noqa: B018
    b = app()
    b.config_from_object("kernel.config:nothing_named_so")
    with pytest.raises(ConfigurationError, match="names 'nothing_named_so', which kernel.config"):
        b.conf  # noqa: B018


def test_app_arguments_and_changes_win_over_the_object() -> None:
    a = App("cfg", broker="memory://",
            config={"task_default_queue": "given"})
    a.conf.task_track_started = True
    a.config_from_object({"task_default_queue": "object", "result_backend": "memory://",
                          "task_track_started": False, "task_default_priority": 3})
    assert a.conf.task_default_queue == "given", "App(config=...) wins (Celery's rule)"
    assert a.conf.task_track_started is True, "a change made to app.conf is kept"
    assert a.conf.task_default_priority == 3
    assert a.conf.result_backend == "memory://", \
        "the result store derived from the broker is only a default"


def test_a_second_call_replaces_the_first_and_closes_connections() -> None:
    a = app()
    a.config_from_object({"task_default_queue": "one"})
    store = a.backend
    a.config_from_object({"task_default_priority": 2})
    assert a.conf.task_default_queue == "celery", "the second object replaces the first"
    assert a.conf.task_default_priority == 2
    assert a.backend is not store, "a store opened with the old settings is not reused"
