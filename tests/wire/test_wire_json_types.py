"""JSON type markers (§1.7): values JSON cannot hold travel as kombu ≥ 5.3 writes them, and the
plain strings of kombu < 5.3 stay strings."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from kernel.errors import DecodeError
from kernel.std.serializers import JsonSerializer

UID = uuid.UUID("4caf4d74-1b2c-4d3e-8f90-a1b2c3d4e5f6")

#: (value, the exact JSON kombu 5.3+ writes for it)
MARKED: list[tuple[Any, Any]] = [
    (datetime(2026, 11, 24, 0, 14, 8, 671543, tzinfo=timezone.utc),
     {"__type__": "datetime", "__value__": "2026-11-24T00:14:08.671543+00:00"}),
    (datetime(2026, 11, 24, 1, 2, 3, tzinfo=timezone(timedelta(hours=5, minutes=30))),
     {"__type__": "datetime", "__value__": "2026-11-24T01:02:03+05:30"}),
    (datetime(2026, 11, 24, 1, 2, 3),
     {"__type__": "datetime", "__value__": "2026-11-24T01:02:03"}),
    (date(2026, 11, 24), {"__type__": "date", "__value__": "2026-11-24"}),
    (time(13, 45, 1, 500), {"__type__": "time", "__value__": "13:45:01.000500"}),
    (Decimal("3.14159265358979323846"),
     {"__type__": "decimal", "__value__": "3.14159265358979323846"}),
    (UID, {"__type__": "uuid", "__value__": {"hex": "4caf4d741b2c4d3e8f90a1b2c3d4e5f6"}}),
    (b"caf\xc3\xa9", {"__type__": "bytes", "__value__": "café"}),
    (b"\xff\x00\xfe", {"__type__": "base64", "__value__": "/wD+"}),
]


@pytest.fixture
def json_serializer() -> JsonSerializer:
    return JsonSerializer()


@pytest.mark.parametrize(("value", "marked"), MARKED, ids=lambda v: type(v).__name__)
def test_value_is_written_in_kombu_53_form(json_serializer: JsonSerializer, value: Any,
                                           marked: Any) -> None:
    assert json.loads(json_serializer.dumps(value)) == marked


@pytest.mark.parametrize(("value", "marked"), MARKED, ids=lambda v: type(v).__name__)
def test_kombu_53_form_is_read_back_as_the_type(json_serializer: JsonSerializer, value: Any,
                                                marked: Any) -> None:
    back = json_serializer.loads(json.dumps({"kwargs": {"v": [marked]}}).encode())
    assert back == {"kwargs": {"v": [value]}}
    assert type(back["kwargs"]["v"][0]) is type(value)


def test_markers_round_trip_inside_a_task_body(json_serializer: JsonSerializer) -> None:
    body = [[v for v, _ in MARKED], {"when": MARKED[0][0]}, {"callbacks": None}]
    assert json_serializer.loads(json_serializer.dumps(body)) == body


@pytest.mark.parametrize("plain", [
    "2026-11-24T00:14:08.671543Z",  # kombu < 5.3 datetime, UTC as Z
    "2026-11-24",
    "4caf4d74-1b2c-4d3e-8f90-a1b2c3d4e5f6",  # str(uuid)
    "3.14159",  # str(Decimal)
])
def test_pre_53_plain_strings_stay_strings(json_serializer: JsonSerializer, plain: str) -> None:
    assert json_serializer.loads(json.dumps([plain]).encode()) == [plain]


@pytest.mark.parametrize("obj", [
    {"__type__": "datetime"},
    {"__type__": "datetime", "__value__": "2026-11-24", "extra": 1},
    {"__type__": "frobnicator", "__value__": 3},
    {"__value__": 3},
])
def test_dicts_that_are_not_markers_stay_dicts(json_serializer: JsonSerializer,
                                               obj: dict[str, Any]) -> None:
    assert json_serializer.loads(json.dumps(obj).encode()) == obj


@pytest.mark.parametrize("marked", [
    {"__type__": "datetime", "__value__": "yesterday"},
    {"__type__": "datetime", "__value__": 5},
    {"__type__": "uuid", "__value__": "not-a-dict"},
    {"__type__": "uuid", "__value__": {"hex": "xyz"}},
    {"__type__": "decimal", "__value__": "one"},
    {"__type__": "base64", "__value__": "!!!"},
    {"__type__": "bytes", "__value__": 5},
], ids=lambda m: f"{m['__type__']}-{m['__value__']!r}")
def test_malformed_marker_is_a_decode_error(json_serializer: JsonSerializer,
                                            marked: dict[str, Any]) -> None:
    with pytest.raises(DecodeError, match=marked["__type__"]):
        json_serializer.loads(json.dumps([marked]).encode())


def test_sets_travel_as_lists(json_serializer: JsonSerializer) -> None:
    assert sorted(json_serializer.loads(json_serializer.dumps({3, 1, 2}))) == [1, 2, 3]
