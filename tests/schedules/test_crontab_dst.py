"""crontab across daylight-saving changes, spelled out for Europe/Berlin and America/New_York.

2026: Berlin springs forward on 29 March (02:00 CET -> 03:00 CEST, at 01:00 UTC) and falls back
on 25 October (03:00 CEST -> 02:00 CET, at 01:00 UTC: 02:00-02:59 happens twice). New York
springs forward on 8 March (02:00 EST -> 03:00 EDT, at 07:00 UTC) and falls back on 1 November
(02:00 EDT -> 01:00 EST, at 06:00 UTC: 01:00-01:59 happens twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kernel import crontab

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def runs(sched: crontab, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in [start, end), as beat would see them one after the other."""
    found, t = [], start - timedelta(microseconds=1)
    while True:
        nxt = sched.next_after(t, tz)
        assert nxt is not None
        if nxt >= end:
            return found
        assert nxt > t and nxt.tzinfo is not None and nxt.utcoffset() == timedelta(0)
        found.append(nxt)
        t = nxt


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold).astimezone(UTC)  # type: ignore[misc]


def day(tz: ZoneInfo, y: int, m: int, d: int) -> tuple[datetime, datetime]:
    return local(tz, y, m, d), local(tz, y, m, d) + timedelta(days=1, hours=1)


# ---------------------------------------------------------------- spring forward: the gap


@pytest.mark.parametrize("tz, date, jump", [
    (BERLIN, (2026, 3, 29), utc(2026, 3, 29, 1, 0)),
    (NEW_YORK, (2026, 3, 8), utc(2026, 3, 8, 7, 0)),
])
def test_a_daily_time_in_the_gap_runs_once_at_the_first_moment_after_it(
        tz: ZoneInfo, date: tuple[int, int, int], jump: datetime) -> None:
    start, end = local(tz, *date), local(tz, *date) + timedelta(hours=23)
    assert runs(crontab(minute=30, hour=2), tz, start, end) == [jump]
    assert jump.astimezone(tz).strftime("%H:%M") == "03:00"


def test_several_times_in_one_gap_make_one_run() -> None:
    start, end = day(BERLIN, 2026, 3, 29)
    assert runs(crontab(minute="*/15", hour=2), BERLIN, start, end) == [utc(2026, 3, 29, 1, 0)]


def test_a_daily_time_in_the_gap_runs_at_its_wall_time_on_the_days_around() -> None:
    sched = crontab(minute=30, hour=2)
    got = runs(sched, BERLIN, local(BERLIN, 2026, 3, 28), local(BERLIN, 2026, 3, 31))
    assert [t.astimezone(BERLIN).strftime("%d %H:%M") for t in got] == \
        ["28 02:30", "29 03:00", "30 02:30"]


@pytest.mark.parametrize("tz, date", [(BERLIN, (2026, 3, 29)), (NEW_YORK, (2026, 3, 8))])
def test_a_time_before_the_gap_is_unaffected(tz: ZoneInfo, date: tuple[int, int, int]) -> None:
    start, end = local(tz, *date), local(tz, *date) + timedelta(hours=23)
    assert runs(crontab(minute=30, hour=1), tz, start, end) == [local(tz, *date, 1, 30)]


# ---------------------------------------------------------------- fall back: the fold


@pytest.mark.parametrize("tz, date, hour", [
    (BERLIN, (2026, 10, 25), 2),  # 02:30 happens twice in Berlin
    (NEW_YORK, (2026, 11, 1), 1),  # 01:30 happens twice in New York
])
def test_a_daily_time_in_the_fold_runs_once_at_its_first_occurrence(
        tz: ZoneInfo, date: tuple[int, int, int], hour: int) -> None:
    start, end = local(tz, *date), local(tz, *date) + timedelta(hours=25)
    got = runs(crontab(minute=30, hour=hour), tz, start, end)
    assert got == [local(tz, *date, hour, 30, fold=0)]
    assert got[0] < local(tz, *date, hour, 30, fold=1)


def test_a_daily_01_30_runs_once_in_both_zones_on_their_fall_back_days() -> None:
    for tz, date in ((BERLIN, (2026, 10, 25)), (NEW_YORK, (2026, 11, 1))):
        start, end = local(tz, *date), local(tz, *date) + timedelta(hours=25)
        assert len(runs(crontab(minute=30, hour=1), tz, start, end)) == 1


def test_a_fixed_hour_with_every_minute_runs_through_the_first_pass_only() -> None:
    start, end = day(BERLIN, 2026, 10, 25)
    got = runs(crontab(minute="*/15", hour=2), BERLIN, start, end)
    assert got == [utc(2026, 10, 25, 0, m) for m in (0, 15, 30, 45)]


def test_asking_from_inside_the_second_pass_skips_to_the_next_day() -> None:
    inside = local(BERLIN, 2026, 10, 25, 2, 10, fold=1)
    assert crontab(minute=30, hour=2).next_after(inside, BERLIN) == \
        local(BERLIN, 2026, 10, 26, 2, 30)


# ---------------------------------------------------------------- every hour, every real hour


@pytest.mark.parametrize("tz, date", [
    (BERLIN, (2026, 3, 29)), (BERLIN, (2026, 10, 25)),
    (NEW_YORK, (2026, 3, 8)), (NEW_YORK, (2026, 11, 1)),
])
@pytest.mark.parametrize("spec, every", [("0 * * * *", timedelta(hours=1)),
                                         ("*/15 * * * *", timedelta(minutes=15)),
                                         ("30 * * * *", timedelta(hours=1))])
def test_an_every_hour_entry_fires_at_a_steady_real_pace_across_the_change(
        tz: ZoneInfo, date: tuple[int, int, int], spec: str, every: timedelta) -> None:
    start = local(tz, *date) - timedelta(hours=12)
    end = start + timedelta(hours=36)
    got = runs(crontab.from_string(spec), tz, start, end)
    gaps = {b - a for a, b in zip(got, got[1:], strict=False)}
    assert gaps == {every}, f"{spec}: uneven gaps {sorted(gaps)}"
    assert len(got) == 36 * timedelta(hours=1) // every


def test_hourly_in_the_repeated_hour_fires_in_both_passes_from_anywhere() -> None:
    hourly = crontab(minute=0)
    # from the first pass (02:40 CEST) the next is the second 02:00 (CET), not 03:00
    assert hourly.next_after(local(BERLIN, 2026, 10, 25, 2, 40), BERLIN) == \
        local(BERLIN, 2026, 10, 25, 2, 0, fold=1)
    # from the second pass (02:40 CET) the next is 03:00 CET
    assert hourly.next_after(local(BERLIN, 2026, 10, 25, 2, 40, fold=1), BERLIN) == \
        local(BERLIN, 2026, 10, 25, 3, 0)


def test_a_crontab_in_its_own_zone_keeps_the_rule_whatever_the_apps_zone() -> None:
    sched = crontab(minute=30, hour=2, tz="Europe/Berlin")
    start, end = day(BERLIN, 2026, 3, 29)
    assert runs(sched, NEW_YORK, start, end) == [utc(2026, 3, 29, 1, 0)]


def test_an_every_hour_entry_skips_the_wall_times_the_gap_skips() -> None:
    start, end = local(BERLIN, 2026, 3, 29, 1, 0), local(BERLIN, 2026, 3, 29, 4, 0)
    got = runs(crontab(minute=30), BERLIN, start, end)
    assert [t.astimezone(BERLIN).strftime("%H:%M%z") for t in got] == \
        ["01:30+0100", "03:30+0200"]
