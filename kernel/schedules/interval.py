"""`schedule`: run every N seconds (Celery's ``celery.schedules.schedule``)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from kernel.schedules.base import Schedule, require_aware
from kernel.schedules.timezones import UTC, wall_instants

_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


class schedule(Schedule):  # noqa: N801 - Celery's name, so that beat_schedule files carry over
    """Every `run_every` (seconds, or a timedelta): ``next_after(t) == t + run_every``.

    Beat passes the entry's last run, so an entry runs one interval after the previous run,
    as in Celery (a new entry starts counting when beat first sees it).

    With ``relative=True`` the fire time is rounded down to the resolution of the interval,
    as Celery's ``relative`` does: an interval of a day or more fires at midnight, of an hour
    or more on the hour, of a minute or more on the minute, shorter ones on the whole second
    (intervals under a second are not rounded). The rounding is done in the app's time zone
    (`tz` of `next_after`), on its wall clock; a rounded time that falls in a DST gap fires at
    the first moment after the gap. The rounded time is strictly after `after` (it is less than
    one unit before ``after + run_every``, and the interval is at least a unit), except across
    a 25-hour fall-back day, where a daily interval keeps its unrounded time.

    A non-positive or non-finite interval is a ValueError.
    """

    __slots__ = ("run_every", "relative")
    type_name = "interval"
    run_every: timedelta
    relative: bool

    def __init__(self, run_every: float | timedelta, relative: bool = False) -> None:
        if isinstance(run_every, bool) or not isinstance(run_every, (int, float, timedelta)):
            raise TypeError(f"schedule's run_every is a number of seconds or a timedelta, "
                            f"not {type(run_every).__name__}")
        if isinstance(run_every, timedelta):
            delta = run_every
        else:
            if not math.isfinite(run_every):
                raise ValueError(f"schedule's run_every must be a finite number of seconds, "
                                 f"not {run_every!r}")
            try:
                delta = timedelta(seconds=run_every)
            except OverflowError:
                raise ValueError(f"schedule's run_every of {run_every!r} seconds is too long "
                                 f"(more than a million days)") from None
        if delta <= timedelta(0):
            raise ValueError(f"schedule's run_every must be positive, not {run_every!r}: "
                             f"an entry that runs every 0 s would run without pause")
        self._set("run_every", delta)
        self._set("relative", bool(relative))

    @property
    def seconds(self) -> float:
        """The interval in seconds."""
        return self.run_every.total_seconds()

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        require_aware(after)
        due = after.astimezone(UTC) + self.run_every
        if not self.relative:
            return due
        rounded = self._round(due, tz)
        # Only a 25-hour fall-back day can round a daily interval back to before `after`.
        return rounded if rounded > after else due

    def _round(self, due: datetime, tz: tzinfo) -> datetime:
        wall = due.astimezone(tz).replace(tzinfo=None)
        seconds = self.seconds
        if seconds >= 86400:
            wall = wall.replace(hour=0, minute=0, second=0, microsecond=0)
        elif seconds >= 3600:
            wall = wall.replace(minute=0, second=0, microsecond=0)
        elif seconds >= 60:
            wall = wall.replace(second=0, microsecond=0)
        elif seconds >= 1:
            wall = wall.replace(microsecond=0)
        else:
            return due
        return wall_instants(wall, tz).first

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "seconds": self.seconds, "relative": self.relative}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> schedule:
        seconds = data.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError(f"an interval schedule needs 'seconds', a number, "
                             f"not {seconds!r}")
        relative = data.get("relative", False)
        if not isinstance(relative, bool):
            raise ValueError(f"an interval schedule's 'relative' is true or false, "
                             f"not {relative!r}")
        return cls(seconds, relative=relative)

    def describe(self) -> str:
        text = f"every {_human(self.seconds)}"
        if self.relative:
            unit = next((name for size, name in _UNITS if self.seconds >= size), None)
            text += {"d": " at midnight", "h": " on the hour", "min": " on the minute",
                     "s": " on the second", None: ""}[unit]
        return text

    def _key(self) -> Hashable:
        return self.run_every, self.relative

    def __repr__(self) -> str:
        relative = ", relative=True" if self.relative else ""
        return f"schedule({self.seconds!r}{relative})"


def _human(seconds: float) -> str:
    """``90`` -> ``1 min 30 s``; ``0.5`` -> ``0.5 s``; ``86400`` -> ``1 d``."""
    if seconds != int(seconds) or seconds < 1:
        return f"{seconds:g} s"
    rest, parts = int(seconds), []
    for size, name in _UNITS:
        if rest >= size:
            parts.append(f"{rest // size} {name}")
            rest %= size
    return " ".join(parts)
