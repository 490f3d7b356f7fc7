"""Interval schedules (`schedule`) and what beat_schedule accepts (`as_schedule`)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kernel import schedule
from kernel.schedules import Schedule, as_schedule, schedule_from_dict

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
T = datetime(2026, 3, 2, 10, 7, 30, 250000, tzinfo=UTC)


def test_next_run_is_one_interval_after_the_last() -> None:
    assert schedule(10).next_after(T, UTC) == T + timedelta(seconds=10)
    assert schedule(timedelta(hours=1)).next_after(T, BERLIN) == T + timedelta(hours=1)


def test_the_answer_is_in_utc_whatever_zone_after_is_given_in() -> None:
    after = T.astimezone(BERLIN)
    got = schedule(10).next_after(after, UTC)
    assert got == T + timedelta(seconds=10) and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("every, expected", [
    (timedelta(days=1), datetime(2026, 3, 3, 0, 0, tzinfo=BERLIN)),
    (timedelta(hours=2), datetime(2026, 3, 2, 13, 0, tzinfo=BERLIN)),
    (timedelta(minutes=5), datetime(2026, 3, 2, 11, 12, tzinfo=BERLIN)),
    (timedelta(seconds=10), datetime(2026, 3, 2, 11, 7, 40, tzinfo=BERLIN)),
    (timedelta(seconds=0.5), T + timedelta(seconds=0.5)),
])
def test_relative_rounds_down_to_the_resolution_of_the_interval_in_the_app_zone(
        every: timedelta, expected: datetime) -> None:
    assert schedule(every, relative=True).next_after(T, BERLIN) == expected


def test_relative_is_always_strictly_after_even_across_a_25_hour_day() -> None:
    # New York falls back on 2026-11-01: that day has 25 hours.
    ny = ZoneInfo("America/New_York")
    after = datetime(2026, 11, 1, 0, 30, tzinfo=ny)
    got = schedule(timedelta(days=1), relative=True).next_after(after, ny)
    assert got is not None and got > after


@pytest.mark.parametrize("bad", [0, -1, -0.5, timedelta(0), timedelta(seconds=-3),
                                 math.inf, math.nan])
def test_non_positive_or_non_finite_intervals_are_refused(bad: float | timedelta) -> None:
    with pytest.raises(ValueError, match="run_every"):
        schedule(bad)


def test_a_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        schedule(10).next_after(datetime(2026, 1, 1), UTC)


@pytest.mark.parametrize("value", [schedule(30), 30, 30.0, timedelta(seconds=30)])
def test_as_schedule_takes_a_schedule_seconds_or_a_timedelta(value: object) -> None:
    assert as_schedule(value) == schedule(30)


@pytest.mark.parametrize("value", ["10", None, True, [10], {"seconds": 10}])
def test_as_schedule_names_the_type_it_cannot_take(value: object) -> None:
    with pytest.raises(TypeError, match=type(value).__name__):
        as_schedule(value)


def test_as_schedule_refuses_a_non_positive_number_with_a_value_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        as_schedule(0)


@pytest.mark.parametrize("sched", [schedule(10), schedule(0.25), schedule(86400, relative=True),
                                   schedule(timedelta(microseconds=1500))])
def test_round_trips_through_to_dict_and_repr(sched: schedule) -> None:
    assert schedule_from_dict(sched.to_dict()) == sched
    assert eval(repr(sched), {"schedule": schedule}) == sched
    assert hash(schedule_from_dict(sched.to_dict())) == hash(sched)


def test_equality_is_by_interval_and_relative() -> None:
    assert schedule(60) == schedule(timedelta(minutes=1))
    assert schedule(60) != schedule(60, relative=True)
    assert len({schedule(60), schedule(60.0), schedule(61)}) == 2


def test_schedules_are_immutable() -> None:
    sched = schedule(10)
    with pytest.raises(AttributeError, match="immutable"):
        sched.run_every = timedelta(seconds=1)  # type: ignore[misc]


@pytest.mark.parametrize("seconds, text", [(10, "every 10 s"), (90, "every 1 min 30 s"),
                                           (7200, "every 2 h"), (0.5, "every 0.5 s"),
                                           (86400, "every 1 d")])
def test_describe_is_a_short_phrase(seconds: float, text: str) -> None:
    assert schedule(seconds).describe() == text
    assert schedule(3600, relative=True).describe() == "every 1 h on the hour"


def test_schedule_is_a_schedule() -> None:
    assert isinstance(schedule(1), Schedule)
