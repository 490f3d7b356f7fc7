"""clocked: one run at a given time."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kernel import clocked
from kernel.schedules import schedule_from_dict

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def test_fires_once_at_an_aware_time() -> None:
    at = datetime(2026, 5, 1, 9, 0, tzinfo=BERLIN)
    once = clocked(at)
    assert once.next_after(at - timedelta(days=3), UTC) == at
    assert once.next_after(at - timedelta(microseconds=1), UTC) == at
    assert once.next_after(at, UTC) is None
    assert once.next_after(at + timedelta(days=1), UTC) is None


def test_a_naive_time_is_wall_time_in_the_apps_zone() -> None:
    once = clocked(datetime(2026, 5, 1, 9, 0))
    after = datetime(2026, 4, 1, tzinfo=UTC)
    assert once.next_after(after, BERLIN) == datetime(2026, 5, 1, 7, 0, tzinfo=UTC)
    assert once.next_after(after, UTC) == datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def test_a_naive_time_in_a_gap_fires_right_after_it_and_in_a_fold_at_the_pass_asked() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert clocked(datetime(2026, 3, 29, 2, 30)).next_after(after, BERLIN) == \
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert clocked(datetime(2026, 10, 25, 2, 30)).next_after(after, BERLIN) == \
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert clocked(datetime(2026, 10, 25, 2, 30, fold=1)).next_after(after, BERLIN) == \
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_takes_a_datetime_only() -> None:
    with pytest.raises(TypeError, match="date"):
        clocked(dt.date(2026, 5, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize("once", [
    clocked(datetime(2026, 5, 1, 9, 0)),
    clocked(datetime(2026, 5, 1, 9, 0, 30, 5)),
    clocked(datetime(2026, 10, 25, 2, 30, fold=1)),
    clocked(datetime(2026, 5, 1, 9, 0, tzinfo=BERLIN)),
    clocked(datetime(2026, 5, 1, 9, 0, tzinfo=UTC)),
    clocked(datetime(2026, 5, 1, 9, 0, tzinfo=timezone(timedelta(hours=-3)))),
])
def test_round_trips_through_to_dict_and_repr(once: clocked) -> None:
    back = schedule_from_dict(once.to_dict())
    assert back == once and hash(back) == hash(once)
    assert eval(repr(once), {"clocked": clocked, "datetime": dt, "zoneinfo": zoneinfo}) == once


def test_naive_and_aware_differ_and_the_fold_counts() -> None:
    assert clocked(datetime(2026, 5, 1, 9)) != clocked(datetime(2026, 5, 1, 9, tzinfo=UTC))
    assert clocked(datetime(2026, 10, 25, 2, 30)) != clocked(datetime(2026, 10, 25, 2, 30, fold=1))
    assert clocked(datetime(2026, 5, 1, 9, tzinfo=BERLIN)) == \
        clocked(datetime(2026, 5, 1, 7, tzinfo=UTC))


@pytest.mark.parametrize("data, words", [
    ({"type": "clocked"}, "'at' is an ISO"),
    ({"type": "clocked", "at": "May 1st"}, "not an ISO"),
    ({"type": "clocked", "at": "2026-05-01T09:00", "tz": "Mars/Olympus"}, "unknown time zone"),
])
def test_bad_stored_data_is_a_value_error(data: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        schedule_from_dict(data)


def test_describe() -> None:
    assert clocked(datetime(2026, 5, 1, 9, 0, tzinfo=BERLIN)).describe() == \
        "once at 2026-05-01 09:00 (Europe/Berlin)"
    assert clocked(datetime(2026, 5, 1, 9, 0)).describe() == "once at 2026-05-01 09:00"
