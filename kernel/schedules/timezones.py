"""Time zones for schedules: naming them, and turning a local wall-clock time into instants.

Calendar schedules (crontab, clocked times given without a zone, relative intervals) are
written in wall-clock time, and a wall-clock time does not always name one instant: on a
spring-forward day some do not exist (the gap), on a fall-back day some happen twice (the
fold). `wall_instants` gives both answers in one place, so every schedule applies the same rule.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from difflib import get_close_matches
from typing import NamedTuple

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UTC = timezone.utc

_OFFSET = re.compile(r"^UTC([+-])(\d{2}):(\d{2})$")


def resolve_timezone(value: str | tzinfo) -> tzinfo:
    """The tzinfo for an IANA name (``"Europe/Berlin"``, ``"UTC"``), a fixed offset written as
    ``"UTC+05:30"``, or a tzinfo (returned as it is). An unknown name is a ValueError."""
    if isinstance(value, tzinfo):
        return value
    if not isinstance(value, str):
        raise TypeError(f"a time zone is a name such as 'Europe/Berlin' or a tzinfo, "
                        f"not {type(value).__name__}")
    name = value.strip()
    if name.upper() in ("UTC", "Z"):
        return UTC
    fixed = _OFFSET.match(name)
    if fixed:
        sign, hours, minutes = fixed.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24):
            raise ValueError(f"time zone {value!r} has an offset of 24 hours or more")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = get_close_matches(name, available_timezones(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown time zone {value!r}: {hint}use an IANA name such as "
                         f"'Europe/Berlin' or 'UTC' (install tzdata if this system has no "
                         f"zone database)") from None


def zone_name(tz: tzinfo) -> str:
    """The name `resolve_timezone` takes back to an equal tzinfo (for to_dict and repr)."""
    if isinstance(tz, ZoneInfo):
        return tz.key
    if isinstance(tz, timezone):
        offset = tz.utcoffset(None)
        if not offset:
            return "UTC"
        sign = "-" if offset < timedelta(0) else "+"
        minutes = abs(offset) // timedelta(minutes=1)
        return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    raise ValueError(f"the time zone {tz!r} has no name a schedule can be stored under: "
                     f"build the schedule with an IANA name such as 'Europe/Berlin'")


def to_utc(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=UTC)


class Instants(NamedTuple):
    """The instants (aware, UTC) at which a local wall time shows; see `wall_instants`."""

    #: the first (or only) instant; for a time in a gap, the moment the clocks jumped past it.
    first: datetime
    #: for a time in a fold (it shows twice), the second, fold=1 instant; else None.
    second: datetime | None = None
    #: the time is in a gap: it never shows, `first` is the first moment after the gap.
    skipped: bool = False


def wall_instants(wall: datetime, tz: tzinfo) -> Instants:
    """The instants (aware, UTC) at which the naive local time `wall` shows in `tz`: once for
    an ordinary time, twice for a time in a fold (first the earlier, fold=0 one), never for a
    time in a gap (then `Instants.first` is the first moment after the gap, the instant the
    clocks jumped)."""
    early = wall.replace(tzinfo=tz, fold=0).utcoffset()
    late = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert early is not None and late is not None
    if early == late:
        return Instants(to_utc(wall - early))
    if early > late:
        return Instants(to_utc(wall - early), to_utc(wall - late))
    # A gap: `wall - late` is before the jump, `wall - early` after it.
    return Instants(transition(wall - late, wall - early, tz), skipped=True)


def transition(before: datetime, after: datetime, tz: tzinfo) -> datetime:
    """The instant (aware, UTC) `tz` changes its offset, between the naive UTC times `before`
    and `after` (which have different offsets): the first whole second with the later offset.

    A bisection over seconds: zoneinfo does not expose its transitions, and offsets change only
    on whole seconds.
    """
    base = before.replace(microsecond=0)
    wanted = to_utc(after).astimezone(tz).utcoffset()
    lo, hi = 0, int((after - base).total_seconds()) + 1  # offset(base+lo) differs, base+hi has it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if to_utc(base + timedelta(seconds=mid)).astimezone(tz).utcoffset() == wanted:
            hi = mid
        else:
            lo = mid
    return to_utc(base + timedelta(seconds=hi))


def fold_span(wall: datetime, tz: tzinfo) -> tuple[datetime, datetime, datetime] | None:
    """If the naive local time `wall` is in a fold (shows twice): ``(jump, start, end)``, the
    instant (aware, UTC) the clocks went back and the wall times ``[start, end)`` that repeat;
    None for an ordinary time."""
    early = wall.replace(tzinfo=tz, fold=0).utcoffset()
    late = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert early is not None and late is not None
    if early <= late:
        return None
    jump = transition(wall - early, wall - late, tz)
    start = jump.replace(tzinfo=None) + late
    return jump, start, start + (early - late)
