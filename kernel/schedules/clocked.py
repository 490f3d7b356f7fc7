"""`clocked`: run once, at a given time (django-celery-beat's clocked schedule)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from zoneinfo import ZoneInfo

from kernel.schedules.base import Schedule, require_aware
from kernel.schedules.timezones import UTC, resolve_timezone, wall_instants, zone_name


class clocked(Schedule):  # noqa: N801 - lower case, as the other schedules
    """Once, at `at`: ``next_after(t)`` is `at` while `at` is after `t`, then None.

    An aware `at` is that instant. A naive `at` is a wall-clock time in the app's timezone
    (the `tz` given to `next_after`); if that time falls in a DST gap it fires at the first
    moment after the gap, if it falls in a fold it fires at the first occurrence unless `at`
    has ``fold=1``.
    """

    __slots__ = ("at",)
    type_name = "clocked"
    at: datetime

    def __init__(self, at: datetime) -> None:
        if not isinstance(at, datetime):
            raise TypeError(f"clocked takes a datetime, not {type(at).__name__}: for a date, "
                            f"give its time too, e.g. datetime(2026, 5, 1, 9, 0)")
        self._set("at", at)

    def _instant(self, tz: tzinfo) -> datetime:
        if self.at.tzinfo is not None and self.at.utcoffset() is not None:
            return self.at.astimezone(UTC)
        shown = wall_instants(self.at, tz)
        return shown.second if self.at.fold and shown.second is not None else shown.first

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        require_aware(after)
        when = self._instant(tz)
        return when if when > after else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type_name,
                                "at": self.at.replace(tzinfo=None).isoformat()}
        if self.at.tzinfo is not None:
            data["tz"] = zone_name(self.at.tzinfo)
        if self.at.fold:
            data["fold"] = 1
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> clocked:
        text, tz, fold = data.get("at"), data.get("tz"), data.get("fold", 0)
        if not isinstance(text, str):
            raise ValueError(f"a stored clocked schedule's 'at' is an ISO date and time, "
                             f"not {text!r}")
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"a stored clocked schedule's 'at' {text!r} is not an ISO date "
                             f"and time such as '2026-05-01T09:00:00'") from None
        if fold not in (0, 1):
            raise ValueError(f"a stored clocked schedule's 'fold' is 0 or 1, not {fold!r}")
        if tz is not None:
            if not isinstance(tz, str):
                raise ValueError(f"a stored clocked schedule's 'tz' is a zone name, not {tz!r}")
            at = at.replace(tzinfo=resolve_timezone(tz))
        return cls(at.replace(fold=fold))

    def describe(self) -> str:
        text = f"once at {self.at.strftime('%Y-%m-%d %H:%M')}"
        if self.at.second or self.at.microsecond:
            text += f":{self.at.second:02d}"
        if self.at.tzinfo is not None:
            zone = self.at.tzinfo
            text += f" ({zone.key if isinstance(zone, ZoneInfo) else self.at.strftime('UTC%z')})"
        return text

    def _key(self) -> Hashable:
        # aware: the instant; naive: the wall time (fold included: 01:30 and its second pass
        # are different times)
        if self.at.tzinfo is not None:
            return "aware", self.at
        return "naive", self.at, self.at.fold

    def __repr__(self) -> str:
        return f"clocked({self.at!r})"
