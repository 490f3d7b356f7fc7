"""crontab: Celery's field syntax and semantics, its errors, its values, its time zones."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kernel import crontab
from kernel.schedules import schedule_from_dict

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int, tz: timezone | ZoneInfo = UTC) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("field, spec, expected", [
    ("minute", "*", set(range(60))),
    ("minute", "5", {5}),
    ("minute", 5, {5}),
    ("minute", {0, 30}, {0, 30}),
    ("minute", [0, 30], {0, 30}),
    ("minute", "10-12", {10, 11, 12}),
    ("minute", "*/15", {0, 15, 30, 45}),
    ("minute", "1,13,30-45/5,50-59/4", {1, 13, 30, 35, 40, 45, 50, 54, 58}),
    ("minute", " 5 , 10 ", {5, 10}),
    ("hour", "22-2", {22, 23, 0, 1, 2}),
    ("hour", "22-2/2", {22, 0, 2}),
    ("hour", "0,8-17/2", {0, 8, 10, 12, 14, 16}),
    ("day_of_week", "mon-fri", {1, 2, 3, 4, 5}),
    ("day_of_week", "MON,Wed", {1, 3}),
    ("day_of_week", "sunday", {0}),
    ("day_of_week", "fri-mon", {5, 6, 0, 1}),
    ("day_of_week", "*/2", {0, 2, 4, 6}),
    ("day_of_week", 0, {0}),
    ("day_of_month", "*/3", {1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31}),
    ("day_of_month", "1-7,15-21", set(range(1, 8)) | set(range(15, 22))),
    ("month_of_year", "jan,JUL", {1, 7}),
    ("month_of_year", "2-12/2", {2, 4, 6, 8, 10, 12}),
    ("month_of_year", "nov-feb", {11, 12, 1, 2}),
    ("month_of_year", "*/3", {1, 4, 7, 10}),
])
def test_fields_parse_as_celery_parses_them(field: str, spec: object, expected: set[int]) -> None:
    assert getattr(crontab(**{field: spec}), field) == expected


@pytest.mark.parametrize("field, spec, words", [
    ("minute", "61", ["minute '61'", "out of range 0-59"]),
    ("minute", 60, ["minute '60'", "out of range 0-59"]),
    ("minute", "1,61", ["minute '1,61'", "61 is out of range"]),
    ("hour", "24", ["hour '24'", "0-23"]),
    ("hour", {1, 25}, ["hour {1, 25}", "25 is out of range"]),
    ("day_of_week", "8", ["day_of_week '8'", "0-6"]),
    ("day_of_week", "7", ["day_of_week '7'", "7 is not accepted"]),
    ("day_of_month", "0", ["day_of_month '0'", "1-31"]),
    ("day_of_month", "32", ["day_of_month '32'", "1-31"]),
    ("month_of_year", "13", ["month_of_year '13'", "1-12"]),
    ("minute", "*/0", ["minute '*/0'", "positive whole number"]),
    ("minute", "*/", ["minute '*/'", "positive whole number"]),
    ("minute", "1-5/x", ["minute '1-5/x'", "positive whole number"]),
    ("minute", "-1", ["minute '-1'", "negative"]),
    ("minute", "abc", ["minute 'abc'", "'abc' is not a number"]),
    ("day_of_week", "funday", ["day_of_week 'funday'", "sun..sat"]),
    ("month_of_year", "mon", ["month_of_year 'mon'", "jan..dec"]),
    ("hour", "mon", ["hour 'mon'", "not a number"]),
    ("minute", "5/15", ["minute '5/15'", "needs '*' or a range"]),
    ("minute", "", ["minute ''", "empty"]),
    ("minute", "1,,2", ["minute '1,,2'", "empty item"]),
    ("minute", "3-", ["minute '3-'", "both sides"]),
    ("minute", set(), ["minute set()", "empty"]),
])
def test_malformed_fields_are_refused_with_a_sentence_naming_field_and_value(
        field: str, spec: object, words: list[str]) -> None:
    with pytest.raises(ValueError) as caught:
        crontab(**{field: spec})
    message = str(caught.value)
    assert message.startswith("crontab ")
    for word in words:
        assert word in message


@pytest.mark.parametrize("spec", [1.5, True, ["1"], object()])
def test_fields_of_another_type_are_a_type_error(spec: object) -> None:
    with pytest.raises(TypeError, match="crontab minute"):
        crontab(minute=spec)


@pytest.mark.parametrize("fields, shown", [
    ({"day_of_month": 30, "month_of_year": 2},
     "day_of_month '30' never falls in month_of_year '2'"),
    ({"day_of_month": "31", "month_of_year": "apr,jun,sep,nov"}, "'31' never falls"),
    ({"day_of_month": "30-31", "month_of_year": "feb"}, "'30-31' never falls"),
])
def test_dates_that_cannot_exist_are_refused(fields: dict[str, object], shown: str) -> None:
    with pytest.raises(ValueError, match=shown):
        crontab(**fields)  # type: ignore[arg-type]


def test_dates_that_exist_only_in_leap_years_are_allowed() -> None:
    assert crontab(0, 0, day_of_month=29, month_of_year=2).next_after(
        at(2026, 3, 1), UTC) == at(2028, 2, 29)


def test_from_string_takes_the_five_standard_fields() -> None:
    assert crontab.from_string("30 2 1-7 jan mon-fri") == crontab(
        minute="30", hour="2", day_of_month="1-7", month_of_year="jan", day_of_week="mon-fri")
    assert crontab.from_string("  */5   *  * * *  ") == crontab(minute="*/5")


@pytest.mark.parametrize("text", ["", "* * * *", "* * * * * *", "0 0 1 1 mon 2026"])
def test_from_string_refuses_a_wrong_number_of_fields(text: str) -> None:
    with pytest.raises(ValueError, match="five fields"):
        crontab.from_string(text)


# ---------------------------------------------------------------- Celery's examples (§6)


def test_day_of_week_and_day_of_month_are_anded_first_monday() -> None:
    # Verified against Celery: from Monday 2026-03-02 10:07, the first Monday is 2026-04-06.
    sched = crontab(minute=0, hour=0, day_of_week=1, day_of_month="1-7")
    assert sched.next_after(at(2026, 3, 2, 10, 7), UTC) == at(2026, 4, 6)


def test_a_monday_that_falls_on_the_15th() -> None:
    sched = crontab(minute=0, hour=0, day_of_week="mon", day_of_month=15)
    assert sched.next_after(at(2026, 3, 2, 10, 7), UTC) == at(2026, 6, 15)


def test_a_wrapping_hour_range_runs_over_midnight() -> None:
    sched = crontab(minute=0, hour="22-2")
    runs, t = [], at(2026, 3, 2, 12, 0)
    for _ in range(6):
        got = sched.next_after(t, UTC)
        assert got is not None
        runs.append(got.hour)
        t = got
    assert runs == [22, 23, 0, 1, 2, 22]


def test_strictly_after_and_on_the_whole_minute() -> None:
    every_minute = crontab()
    assert every_minute.next_after(at(2026, 1, 1, 10, 7), UTC) == at(2026, 1, 1, 10, 8)
    assert every_minute.next_after(at(2026, 1, 1, 10, 7, 59, 999999), UTC) == at(2026, 1, 1, 10, 8)


def test_crossing_years_and_month_ends() -> None:
    assert crontab(0, 0, day_of_month=31).next_after(at(2026, 3, 31, 0, 0), UTC) == at(2026, 5, 31)
    new_year = crontab(0, 0, day_of_month=1, month_of_year=1)
    assert new_year.next_after(at(2026, 6, 1), UTC) == at(2027, 1, 1)
    # positional order is Celery's: minute, hour, day_of_week, day_of_month, month_of_year
    assert crontab(0, 0, 1, 1, 1).next_after(at(2026, 6, 1), UTC) == at(2029, 1, 1)


def test_a_yearly_leap_day_entry_answers_fast() -> None:
    sched = crontab.from_string("0 0 29 2 *")
    after = at(2026, 3, 2, 10, 7)
    began = time.perf_counter()
    for _ in range(200):
        sched.next_after(after, UTC)
    per_call = (time.perf_counter() - began) / 200
    assert per_call < 0.001, f"{per_call * 1e6:.0f} µs per call"


def test_a_leap_day_on_a_given_weekday_is_found_decades_ahead() -> None:
    # 29 February on a Monday: 2044 after 2016.
    sched = crontab(0, 0, day_of_week="mon", day_of_month=29, month_of_year=2)
    assert sched.next_after(at(2016, 3, 1), UTC) == at(2044, 2, 29)


# ---------------------------------------------------------------- time zones


def test_fields_are_local_time_of_the_app_zone_or_the_crontabs_own() -> None:
    sched = crontab(minute=0, hour=9)
    after = at(2026, 7, 1)
    assert sched.next_after(after, BERLIN) == at(2026, 7, 1, 7, 0)
    own = crontab(minute=0, hour=9, tz="America/New_York")
    assert own.next_after(after, BERLIN) == at(2026, 7, 1, 13, 0)


def test_an_unknown_zone_is_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Berln'.*Europe/Berlin"):
        crontab(tz="Europe/Berln")


def test_a_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        crontab().next_after(datetime(2026, 1, 1), UTC)


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("sched", [
    crontab(),
    crontab(minute="0", hour="2"),
    crontab(minute=[0, 30], hour="22-2", day_of_week="mon-fri"),
    crontab(minute="*/15", day_of_month="1-7", month_of_year="jan,jul", tz="Europe/Berlin"),
    crontab(0, 0, tz=timezone(timedelta(hours=5, minutes=30))),
    crontab.from_string("5 4 * * sun"),
])
def test_round_trips_through_to_dict_and_repr(sched: crontab) -> None:
    back = schedule_from_dict(sched.to_dict())
    assert back == sched and hash(back) == hash(sched)
    assert eval(repr(sched), {"crontab": crontab}) == sched
    assert sched.to_dict()["type"] == "crontab"


def test_repr_shows_what_was_written() -> None:
    assert repr(crontab(minute="0", hour="2")) == "crontab(minute='0', hour='2')"
    assert repr(crontab(hour="22-2", tz="Europe/Berlin")) == \
        "crontab(hour='22-2', tz='Europe/Berlin')"


def test_equal_when_the_sets_are_equal() -> None:
    assert crontab(minute="*/30") == crontab(minute={0, 30}) == crontab(minute="0,30")
    assert crontab(day_of_week="mon-fri") == crontab(day_of_week="1-5")
    assert crontab(minute=0) != crontab(minute=0, tz="UTC")
    assert crontab(minute=0) != crontab(minute=1)


@pytest.mark.parametrize("data, words", [
    ({"type": "crontab", "minute": 5}, "'minute' is a string"),
    ({"type": "crontab", "minute": "61"}, "out of range"),
    ({"type": "crontab", "tz": 3}, "'tz' is a zone name"),
])
def test_bad_stored_data_is_a_value_error(data: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        schedule_from_dict(data)


def test_crontabs_are_immutable() -> None:
    with pytest.raises(AttributeError, match="immutable"):
        crontab().minute = frozenset({1})  # type: ignore[misc]


@pytest.mark.parametrize("sched, text", [
    (crontab(minute=30, hour=2, day_of_week="mon-fri"), "at 02:30 on mon-fri"),
    (crontab(minute="*/10"), "every 10 min"),
    (crontab(), "every minute"),
    (crontab(minute=5), "at minute 5 of every hour"),
    (crontab(minute=0, hour="9-17", day_of_week="sat,sun"), "at minute 0 of hours 9-17 on sun,sat"),
    (crontab(minute="*/15", hour="9-17"), "every 15 min during hours 9-17"),
    (crontab(minute=0, hour=0, day_of_month=1, month_of_year="jan"),
     "at 00:00 on day 1 of the month in jan"),
    (crontab(minute=0, hour=9, tz="Europe/Berlin"), "at 09:00 (Europe/Berlin)"),
])
def test_describe_is_a_short_phrase(sched: crontab, text: str) -> None:
    assert sched.describe() == text
