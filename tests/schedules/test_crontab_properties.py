"""crontab.next_after against a brute force that steps through real (UTC) minutes.

The brute force is the rule of `kernel.schedules.crontab.crontab`'s docstring read literally:
a real minute fires when its local wall time matches the fields, unless it is the second pass of
a repeated wall time and the hour field is not every hour; and, for an entry at given hours,
the instant the clocks jump forward fires when a wall time skipped by the jump matches.

Random field specs, random starts (many close to DST changes) in zones with gaps and folds of
an hour, of half an hour (Lord Howe), at midnight (Santiago), and without DST (Kolkata, UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kernel import crontab

UTC = timezone.utc
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
         "Asia/Kolkata")
#: how far the brute force looks; beyond, it only checks that nothing fires before.
WINDOW = timedelta(days=2)
MINUTE = timedelta(minutes=1)


@cache
def transitions(name: str) -> tuple[datetime, ...]:
    """Instants (to the hour) around which `name` changed its offset, 2025-2028."""
    tz = ZoneInfo(name)
    found, t = [], datetime(2025, 1, 1, tzinfo=UTC)
    previous = t.astimezone(tz).utcoffset()
    while t.year < 2029:
        t += timedelta(hours=1)
        offset = t.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(t)
            previous = offset
    return tuple(found) or (datetime(2026, 6, 1, tzinfo=UTC),)


def field(low: int, high: int, star_weight: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    item = st.one_of(
        number.map(str),
        st.tuples(number, number).map(lambda ab: f"{ab[0]}-{ab[1]}"),
        st.tuples(number, number, st.integers(1, high - low + 1)).map(
            lambda abs_: f"{abs_[0]}-{abs_[1]}/{abs_[2]}"),
        st.integers(1, high - low + 1).map(lambda s: f"*/{s}"),
    )
    listed = st.lists(item, min_size=1, max_size=3).map(",".join)
    return st.one_of(*([st.just("*")] * star_weight), listed)


specs = st.fixed_dictionaries({
    "minute": field(0, 59, 1),
    "hour": field(0, 23, 3),
    "day_of_week": field(0, 6, 4),
    "day_of_month": field(1, 31, 5),
    "month_of_year": field(1, 12, 6),
})


@st.composite
def instants(draw: st.DrawFn, zone: str) -> datetime:
    where = draw(st.sampled_from(["just before", "close", "near", "anywhere"]))
    if where != "anywhere":
        anchor = draw(st.sampled_from(transitions(zone)))
        # just before a change (the next run may be in or past the gap, or in the fold's
        # second pass), close to it (90 minutes either side), or within a day and a half
        before, after = {"just before": (-3600, 0), "close": (-5400, 5400),
                         "near": (-36 * 3600, 36 * 3600)}[where]
        return anchor + timedelta(seconds=draw(st.integers(before, after)),
                                  microseconds=draw(st.sampled_from([0, 1, 500000, 999999])))
    seconds = draw(st.integers(0, 4 * 365 * 86400))
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


def matches(sched: crontab, wall: datetime) -> bool:
    return (wall.minute in sched.minute and wall.hour in sched.hour
            and wall.day in sched.day_of_month and wall.month in sched.month_of_year
            and wall.isoweekday() % 7 in sched.day_of_week)


def fires(sched: crontab, tz: ZoneInfo, minute: datetime) -> bool:
    here = minute.astimezone(tz)
    wall = here.replace(tzinfo=None)
    every_hour = sched.hour == frozenset(range(24))
    if matches(sched, wall) and (here.fold == 0 or every_hour):
        return True
    before = (minute - timedelta(seconds=1)).astimezone(tz)
    offset, offset_before = here.utcoffset(), before.utcoffset()
    assert offset is not None and offset_before is not None
    if offset > offset_before and not every_hour:
        # the clocks just jumped: the skipped wall times of an entry at given hours fire now
        skipped = offset - offset_before
        return any(matches(sched, wall - k * MINUTE) for k in range(1, skipped // MINUTE + 1))
    return False


def brute_force(sched: crontab, tz: ZoneInfo, after: datetime) -> datetime | None:
    minute = after.replace(second=0, microsecond=0) + MINUTE
    end = after + WINDOW
    while minute <= end:
        if fires(sched, tz, minute):
            return minute
        minute += MINUTE
    return None


@st.composite
def cases(draw: st.DrawFn) -> tuple[crontab, ZoneInfo, ZoneInfo, datetime]:
    zone = draw(st.sampled_from(ZONES))
    fields = draw(specs)
    own = draw(st.booleans())
    try:
        sched = crontab(**fields, tz=zone if own else None)
    except ValueError:  # days that cannot fall in the months drawn
        assume(False)
        raise
    app = ZoneInfo("Asia/Tokyo") if own else ZoneInfo(zone)
    return sched, ZoneInfo(zone), app, draw(instants(zone))


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cases())
def test_next_after_is_the_first_minute_the_brute_force_fires(
        case: tuple[crontab, ZoneInfo, ZoneInfo, datetime]) -> None:
    sched, tz, app_tz, after = case
    expected = brute_force(sched, tz, after)
    got = sched.next_after(after, app_tz)
    if expected is not None:
        assert got == expected, f"{sched!r} after {after.astimezone(tz)}"
    else:
        assert got is None or got > after + WINDOW, f"{sched!r} after {after.astimezone(tz)}"


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cases())
def test_successive_runs_match_the_brute_force_across_a_change(
        case: tuple[crontab, ZoneInfo, ZoneInfo, datetime]) -> None:
    sched, tz, app_tz, after = case
    t = after
    for _ in range(5):
        expected = brute_force(sched, tz, t)
        got = sched.next_after(t, app_tz)
        if expected is None:
            assert got is None or got > t + WINDOW
            return
        assert got == expected, f"{sched!r} after {t.astimezone(tz)}"
        t = got
