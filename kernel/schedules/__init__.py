"""Stand-in for branch ``schedules`` (issue #17 item 1), which replaces this file when merged:
only the interface beat codes against, and intervals. No crontab here on purpose."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Schedule", "as_schedule", "resolve_timezone", "schedule", "schedule_from_dict"]


class Schedule(ABC):
    """When an entry fires."""

    @abstractmethod
    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        """The first fire time strictly after `after` (aware), as aware UTC; None: never."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with a "type" key."""

    @abstractmethod
    def describe(self) -> str:
        """A human phrase."""


class schedule(Schedule):  # noqa: N801 - Celery's name
    """Every `run_every` (seconds or a timedelta)."""

    def __init__(self, run_every: float | timedelta) -> None:
        seconds = run_every.total_seconds() if isinstance(run_every, timedelta) else run_every
        if not seconds > 0:
            raise ValueError(f"an interval must be positive, got {run_every!r}")
        self.seconds = float(seconds)

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        return (after + timedelta(seconds=self.seconds)).astimezone(timezone.utc)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "interval", "seconds": self.seconds}

    def describe(self) -> str:
        return f"every {self.seconds:g} s"


def schedule_from_dict(data: dict[str, Any]) -> Schedule:
    if data.get("type") == "interval":
        return schedule(float(data["seconds"]))
    raise ValueError(f"unknown schedule type {data.get('type')!r}")


def as_schedule(value: Any) -> Schedule:
    if isinstance(value, Schedule):
        return value
    if isinstance(value, (int, float, timedelta)) and not isinstance(value, bool):
        return schedule(value)
    raise TypeError(f"a schedule must be a crontab, a schedule, seconds or a timedelta, got "
                    f"{value!r} ({type(value).__name__})")


def resolve_timezone(name: str | tzinfo) -> tzinfo:
    if isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}; give an IANA name such as "
                         f"'Europe/Paris' or 'UTC'") from None
