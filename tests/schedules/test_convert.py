"""Reading stored schedules back, and naming time zones."""

from __future__ import annotations

from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

import kernel
from kernel.schedules import Schedule, resolve_timezone, schedule_from_dict
from kernel.schedules.timezones import zone_name


@pytest.mark.parametrize("data, words", [
    ({}, "type None"),
    ({"type": "cron"}, "type 'cron'.*known types are clocked, crontab, interval, solar"),
    ({"type": 3}, "type 3"),
    ([("type", "interval")], "a dict with a 'type' key, not list"),
    ({"type": "interval"}, "needs 'seconds'"),
    ({"type": "interval", "seconds": -1}, "positive"),
    ({"type": "interval", "seconds": 5, "relative": "yes"}, "'relative' is true or false"),
    ({"type": "solar", "event": "sunrise"}, "'lat' is a number"),
])
def test_bad_data_is_a_value_error_saying_what_is_wrong(data: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        schedule_from_dict(data)  # type: ignore[arg-type]


def test_the_public_names() -> None:
    for name in ("crontab", "schedule", "solar", "clocked"):
        assert name in kernel.__all__ and issubclass(getattr(kernel, name), Schedule)


@pytest.mark.parametrize("name, expected", [
    ("Europe/Berlin", ZoneInfo("Europe/Berlin")),
    ("UTC", timezone.utc),
    (" utc ", timezone.utc),
    ("UTC+05:30", timezone(timedelta(hours=5, minutes=30))),
    ("UTC-03:00", timezone(timedelta(hours=-3))),
])
def test_resolve_timezone_takes_iana_names_and_fixed_offsets(name: str, expected: tzinfo) -> None:
    got = resolve_timezone(name)
    assert got == expected
    assert resolve_timezone(zone_name(got)) == got


def test_resolve_timezone_passes_a_tzinfo_through() -> None:
    zone = ZoneInfo("Asia/Tokyo")
    assert resolve_timezone(zone) is zone


@pytest.mark.parametrize("name", ["Europe/Berln", "Mars/Olympus", "", "../etc/passwd"])
def test_an_unknown_zone_is_a_value_error_with_a_sentence(name: str) -> None:
    with pytest.raises(ValueError, match=f"unknown time zone {name!r}.*IANA name"):
        resolve_timezone(name)


def test_a_misspelt_zone_gets_a_suggestion() -> None:
    with pytest.raises(ValueError, match="did you mean 'America/New_York'"):
        resolve_timezone("America/NewYork")


def test_resolve_timezone_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="not int"):
        resolve_timezone(3)  # type: ignore[arg-type]
