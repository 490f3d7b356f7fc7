"""`crontab`: run at the minutes, hours and days cron-style fields select (Celery's crontab)."""

from __future__ import annotations

from bisect import bisect_left
from calendar import monthrange, weekday
from collections.abc import Hashable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from kernel.schedules.base import Schedule, require_aware
from kernel.schedules.cronfields import (
    DAY_OF_MONTH,
    DAY_OF_WEEK,
    HOUR,
    MINUTE,
    MONTH_OF_YEAR,
    Field,
)
from kernel.schedules.timezones import fold_span, resolve_timezone, wall_instants, zone_name

_ONE_MINUTE = timedelta(minutes=1)
#: the longest day of each month, February in a leap year.
_LONGEST = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
#: how far ahead a match is looked for; any possible date recurs within 400 years (the
#: Gregorian cycle), so only the end of datetime's range (year 9999) ever stops a search.
_YEARS = 401
_FIELDS = (("minute", MINUTE), ("hour", HOUR), ("day_of_week", DAY_OF_WEEK),
           ("day_of_month", DAY_OF_MONTH), ("month_of_year", MONTH_OF_YEAR))


class crontab(Schedule):  # noqa: N801 - Celery's name, so that beat_schedule files carry over
    """Run at every minute whose local time matches all five fields, as Celery's crontab.

    Each field takes ``*``, ``N``, ``a-b``, ``*/s``, ``a-b/s`` and comma lists of these, names
    (``mon``, ``jan``, any case), an int or a set of ints; a range ending below its start wraps
    (hour ``'22-2'``). day_of_week counts from Sunday = 0 to Saturday = 6 (7 is refused).
    **Unlike Vixie cron, day_of_week and day_of_month are both required** (ANDed):
    ``crontab(minute=0, hour=9, day_of_week='mon', day_of_month='1-7')`` is the first Monday
    of each month. A field that is malformed, or days that cannot fall in the months given
    (day_of_month 30 with month_of_year 2), are a ValueError at construction.

    Times are the wall-clock time of `tz`, the crontab's own or else the app's timezone.
    Where daylight saving time moves the clocks, the rule (cron's, as cronie has it) depends on
    whether the hour field is every hour:

    - **At given hours** (``30 2 * * *``, ``0 9-17 * * *``): each matching wall time runs
      once a day. On **spring forward** (a gap: e.g. 02:00-02:59 does not exist) a time in
      the gap runs at the first moment after it (03:00 local, the instant the clocks jump);
      several times in one gap make one run. So a daily 02:30 entry still runs that day, at
      03:00. On **fall back** (a fold: e.g. 02:00-02:59 happens twice) a time in the fold runs
      at its first occurrence only (fold=0): a daily 01:30 or 02:30 entry runs once, not twice.
    - **Every hour** (hour ``*``: ``0 * * * *``, ``*/15 * * * *``): the entry follows the
      clock as it runs. Wall times the gap skips are skipped (that hour did not exist, and the
      next one comes right after), and the repeated hour of a fold runs again. So an hourly
      entry fires every real hour across both changes, and ``*/15`` every real 15 minutes.

    `next_after` computes the next match field by field (month, day, hour, minute), it never
    steps minute by minute: a yearly ``0 0 29 2 *`` answers in microseconds.
    """

    __slots__ = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year", "tz",
                 "_text", "_sorted", "_every_hour", "_dows")
    type_name = "crontab"
    minute: frozenset[int]
    hour: frozenset[int]
    day_of_week: frozenset[int]
    day_of_month: frozenset[int]
    month_of_year: frozenset[int]
    #: the crontab's own time zone, or None for the app's.
    tz: tzinfo | None
    _text: dict[str, str]
    _sorted: tuple[tuple[int, ...], ...]
    _every_hour: bool
    _dows: tuple[bool, ...]

    def __init__(self, minute: Any = "*", hour: Any = "*", day_of_week: Any = "*",
                 day_of_month: Any = "*", month_of_year: Any = "*",
                 tz: str | tzinfo | None = None) -> None:
        given = {"minute": minute, "hour": hour, "day_of_week": day_of_week,
                 "day_of_month": day_of_month, "month_of_year": month_of_year}
        text = {}
        for name, field in _FIELDS:
            values = field.parse(given[name])
            self._set(name, values)
            spec = given[name]
            text[name] = (spec.strip() if isinstance(spec, str)
                          else str(spec) if isinstance(spec, int) else field.text(values))
        self._set("_text", text)
        self._set("tz", None if tz is None else resolve_timezone(tz))
        self._check_possible()
        self._set("_sorted", (tuple(sorted(self.month_of_year)), tuple(sorted(self.day_of_month)),
                              tuple(sorted(self.hour)), tuple(sorted(self.minute))))
        self._set("_every_hour", self.hour == HOUR.all)
        self._set("_dows", tuple(d in self.day_of_week for d in range(7)))

    def _check_possible(self) -> None:
        if not any(day <= _LONGEST[month - 1]
                   for month in self.month_of_year for day in self.day_of_month):
            raise ValueError(f"crontab day_of_month {self._text['day_of_month']!r} never falls "
                             f"in month_of_year {self._text['month_of_year']!r}: no such date "
                             f"exists, so the entry would never run")

    @classmethod
    def from_string(cls, text: str, tz: str | tzinfo | None = None) -> crontab:
        """A crontab from the five fields of a crontab line, in the standard order:
        ``"minute hour day_of_month month_of_year day_of_week"`` (``"30 2 * * mon-fri"``)."""
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(f"crontab.from_string takes five fields 'minute hour day_of_month "
                             f"month_of_year day_of_week', got {len(fields)} in {text!r}")
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        return cls(minute, hour, day_of_week, day_of_month, month_of_year, tz=tz)

    # ------------------------------------------------------------------ when

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        require_aware(after)
        zone = self.tz or tz
        wall = after.astimezone(zone).replace(tzinfo=None)
        start = wall.replace(second=0, microsecond=0) + _ONE_MINUTE
        best: datetime | None = None
        span = fold_span(wall, zone)
        if span is not None:
            # `after` is in a fold: the repeated wall times [begin, end) also show a second
            # time, from `jump` on; an every-hour entry fires then too (see the class docstring).
            jump, begin, end = span
            second_pass = after >= jump
            if self._every_hour:
                match = self._next_wall(start if second_pass else begin)
                if match is not None and match < end:
                    best = wall_instants(match, zone).second
            if second_pass:  # the first occurrences of [begin, end) are behind us
                start = max(start, end)
        while True:
            match = self._next_wall(start)
            if match is None:
                return best
            shown = wall_instants(match, zone)
            if not (shown.skipped and self._every_hour):
                break
            # An every-hour entry skips what a gap skips: go on from the wall time after it.
            start = shown.first.astimezone(zone).replace(tzinfo=None)
        return shown.first if best is None or shown.first < best else best

    def _next_wall(self, start: datetime) -> datetime | None:
        """The first naive wall time at or after `start` (a whole minute) that matches."""
        months, days, hours, minutes = self._sorted
        year, month, day, hour, minute = start.year, start.month, start.day, start.hour, \
            start.minute
        last_year = min(9999, year + _YEARS)
        while year <= last_year:
            i = bisect_left(months, month)
            if i == len(months):
                year, month, day, hour, minute = year + 1, months[0], 1, 0, 0
                continue
            if months[i] != month:
                month, day, hour, minute = months[i], 1, 0, 0
            found = self._next_day(year, month, day, days)
            if found is None:
                month, day, hour, minute = month + 1, 1, 0, 0
                continue
            if found != day:
                day, hour, minute = found, 0, 0
            j = bisect_left(hours, hour)
            if j == len(hours):
                day, hour, minute = day + 1, 0, 0
                continue
            if hours[j] != hour:
                hour, minute = hours[j], 0
            k = bisect_left(minutes, minute)
            if k == len(minutes):
                hour, minute = hour + 1, 0
                continue
            return datetime(year, month, day, hour, minutes[k])
        return None

    def _next_day(self, year: int, month: int, day: int, days: tuple[int, ...]) -> int | None:
        """The first day of the month at or after `day` in day_of_month and day_of_week."""
        length = monthrange(year, month)[1]
        first_weekday = weekday(year, month, 1)  # Monday = 0, as the calendar module counts
        for candidate in days[bisect_left(days, day):]:
            if candidate > length:
                return None
            # cron counts Sunday = 0: Python's Monday = 0 shifted by one
            if self._dows[(first_weekday + candidate) % 7]:
                return candidate
        return None

    # ------------------------------------------------------------------ as a value

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type_name, **self._text}
        if self.tz is not None:
            data["tz"] = zone_name(self.tz)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> crontab:
        fields = {name: data.get(name, "*") for name, _ in _FIELDS}
        for name, value in fields.items():
            if not isinstance(value, str):
                raise ValueError(f"a stored crontab's {name!r} is a string such as '*/15', "
                                 f"not {value!r}")
        tz = data.get("tz")
        if tz is not None and not isinstance(tz, str):
            raise ValueError(f"a stored crontab's 'tz' is a zone name, not {tz!r}")
        return cls(**fields, tz=tz)

    def _key(self) -> Hashable:
        return (self.minute, self.hour, self.day_of_week, self.day_of_month, self.month_of_year,
                self.tz)

    def __repr__(self) -> str:
        args = [f"{name}={self._text[name]!r}" for name, _ in _FIELDS
                if self._text[name] != "*"]
        if self.tz is not None:
            try:
                args.append(f"tz={zone_name(self.tz)!r}")
            except ValueError:
                args.append(f"tz={self.tz!r}")
        return f"crontab({', '.join(args)})"

    def describe(self) -> str:
        """E.g. ``at 02:30 on mon-fri``, ``every 15 min``, ``at minute 5 of every hour``."""
        text = self._describe_time()
        days = []
        if self.day_of_week != DAY_OF_WEEK.all:
            days.append(f"on {DAY_OF_WEEK.text(self.day_of_week)}")
        if self.day_of_month != DAY_OF_MONTH.all:
            days.append(f"on day {DAY_OF_MONTH.text(self.day_of_month)} of the month")
        if days:
            text += " " + " and ".join(days)
        if self.month_of_year != MONTH_OF_YEAR.all:
            text += f" in {MONTH_OF_YEAR.text(self.month_of_year)}"
        if self.tz is not None:
            try:
                text += f" ({zone_name(self.tz)})"
            except ValueError:
                text += f" ({self.tz})"
        return text

    def _describe_time(self) -> str:
        minutes, hours = sorted(self.minute), sorted(self.hour)
        every_minute = self.minute == MINUTE.all
        step = _step_of(MINUTE, self.minute)
        if not self._every_hour and len(minutes) * len(hours) <= 4:
            return "at " + ", ".join(f"{h:02d}:{m:02d}" for h in hours for m in minutes)
        if every_minute:
            lead = "every minute"
        elif step:
            lead = f"every {step} min"
        else:
            lead = f"at minute{'s' if len(minutes) > 1 else ''} {MINUTE.text(self.minute)}"
        if self._every_hour:
            return lead if every_minute or step else f"{lead} of every hour"
        return f"{lead} {'of' if lead.startswith('at') else 'during'} hours " \
               f"{HOUR.text(self.hour)}"


def _step_of(field: Field, values: frozenset[int]) -> int | None:
    text = field.text(values)
    return int(text[2:]) if text.startswith("*/") else None
