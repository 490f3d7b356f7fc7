"""Result records and exceptions in Celery's format (§3.3–§3.5), so each side reads the other's."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import pytest

import kernel.std.serializers
from kernel import App, states
from kernel.records import ResultBackend
from kernel.errors import RemoteError, TaskRevokedError
from kernel.records import exception_from_dict, exception_to_dict

FULL_FORM = {"status", "result", "traceback", "children", "date_done", "task_id"}  # §3.3


@pytest.fixture
def backend() -> ResultBackend:
    app = App("t", autoload=False, plugins=[kernel.std.serializers])
    return ResultBackend(None, app.codec, "json", 86400)


def test_success_record_has_celerys_full_form(backend: ResultBackend) -> None:
    meta = backend.record("08b9ae32-0000-4000-8000-000000000000", states.SUCCESS, 5)
    assert set(meta) == FULL_FORM
    assert meta["status"] == "SUCCESS" and meta["result"] == 5
    assert meta["traceback"] is None and meta["children"] == []
    assert meta["task_id"] == "08b9ae32-0000-4000-8000-000000000000"
    assert meta["date_done"].endswith("+00:00")
    datetime.fromisoformat(meta["date_done"])
    # what the store receives is plain JSON a Celery client reads
    assert json.loads(backend.encode(meta)) == meta


def test_group_and_parent_ids_are_added_when_present(backend: ResultBackend) -> None:
    meta = backend.record("c", states.SUCCESS, [3, 7],
                          extra={"group_id": "b9263b2a", "parent_id": "df405702"})
    assert set(meta) == FULL_FORM | {"group_id", "parent_id"}


def test_not_ready_states_have_no_date_done(backend: ResultBackend) -> None:
    meta = backend.record("s", states.STARTED, {"pid": 42, "hostname": "w1@vm"})
    assert meta["date_done"] is None and meta["result"] == {"pid": 42, "hostname": "w1@vm"}


def test_failure_record_holds_celerys_exception_dict(backend: ResultBackend) -> None:
    try:
        raise ValueError("boom 7")
    except ValueError as exc:
        meta = backend.record("f", states.FAILURE, exc)
    assert meta["result"] == {"exc_type": "ValueError", "exc_message": ["boom 7"],
                              "exc_module": "builtins"}
    assert "ValueError: boom 7" in meta["traceback"]
    assert json.loads(backend.encode(meta))["result"] == meta["result"]


def test_exception_args_that_json_cannot_carry_are_repr_strings() -> None:
    exc = KeyError(("tuple", "key"), {1, 2})
    assert exception_to_dict(exc)["exc_message"] == ["('tuple', 'key')", "{1, 2}"]


@pytest.mark.parametrize("exc", [
    ValueError("boom", 3), KeyError("missing"), ZeroDivisionError("division by zero"),
    OSError(2, "No such file"), TaskRevokedError("expired"),
], ids=lambda e: type(e).__name__)
def test_exceptions_come_back_as_their_own_type(exc: BaseException) -> None:
    back = exception_from_dict(json.loads(json.dumps(exception_to_dict(exc))))
    assert type(back) is type(exc)
    assert back.args == exc.args


def test_celery_value_error_dict_rebuilds_a_value_error() -> None:
    back = exception_from_dict(
        {"exc_type": "ValueError", "exc_message": ["boom …"], "exc_module": "builtins"})
    assert isinstance(back, ValueError) and back.args == ("boom …",)


def test_unimportable_type_becomes_a_named_remote_error() -> None:
    back = exception_from_dict({"exc_type": "QuotaExceeded", "exc_module": "nonexistent.mod",
                                "exc_message": ["over quota", 42]})
    assert isinstance(back, RemoteError)
    assert type(back).__name__ == "QuotaExceeded"
    assert back.args == ("over quota", 42)
    assert (back.exc_type, back.exc_module) == ("QuotaExceeded", "nonexistent.mod")
    # the same name gives the same class, so `except` clauses written against it keep working
    again = exception_from_dict({"exc_type": "QuotaExceeded", "exc_module": "nonexistent.mod",
                                 "exc_message": []})
    assert type(again) is type(back)


@pytest.mark.parametrize(("module", "name"), [
    ("builtins", "dict"), ("builtins", "print"), ("os", "system"), ("builtins", "__import__"),
    ("builtins", "object.__subclasses__"),
])
def test_a_non_exception_is_never_instantiated(module: str, name: str) -> None:
    back = exception_from_dict({"exc_type": name, "exc_module": module,
                                "exc_message": ["echo pwned"]})
    assert isinstance(back, RemoteError)
    assert back.args == ("echo pwned",)


def test_exception_module_is_never_imported(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "kernel_wire_sideeffect.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Boom(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    back = exception_from_dict({"exc_type": "Boom", "exc_module": "kernel_wire_sideeffect",
                                "exc_message": ["x"]})
    assert not marker.exists(), "reading a result record imported a module"
    assert "kernel_wire_sideeffect" not in sys.modules
    assert isinstance(back, RemoteError) and type(back).__name__ == "Boom"


def test_exception_of_an_imported_module_is_rebuilt(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kernel_wire_errors.py").write_text(
        "class Outer:\n    class Inner(Exception):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import kernel_wire_errors  # type: ignore[import-not-found]

    try:
        exc = kernel_wire_errors.Outer.Inner("nested", 1)
        data = exception_to_dict(exc)
        assert data["exc_type"] == "Outer.Inner"  # __qualname__, as Celery writes it
        back = exception_from_dict(data)
        assert type(back) is kernel_wire_errors.Outer.Inner and back.args == ("nested", 1)
    finally:
        del sys.modules["kernel_wire_errors"]


def test_constructor_with_other_arguments_falls_back_to_a_stand_in() -> None:
    class NeedsTwo(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a}/{b}")

    module = sys.modules[__name__]
    module.NeedsTwo = NeedsTwo  # type: ignore[attr-defined]
    try:
        back = exception_from_dict({"exc_type": "NeedsTwo", "exc_module": __name__,
                                    "exc_message": ["1/2"]})
    finally:
        delattr(module, "NeedsTwo")
    assert isinstance(back, RemoteError) and back.args == ("1/2",)


def test_old_style_string_message_becomes_single_arg() -> None:
    back = exception_from_dict({"exc_type": "RuntimeError", "exc_module": "builtins",
                                "exc_message": "just a string"})
    assert isinstance(back, RuntimeError) and back.args == ("just a string",)
