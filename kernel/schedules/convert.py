"""What beat accepts as a schedule, and how a stored one is read back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from kernel.schedules.base import TYPES, Schedule
from kernel.schedules.interval import schedule


def as_schedule(value: object) -> Schedule:
    """A `Schedule` for what a ``beat_schedule`` entry gives: a Schedule (returned as it is),
    a number of seconds (int or float, > 0) or a timedelta (an interval `schedule`).

    Anything else is a TypeError naming the type received; a non-positive or non-finite
    number of seconds is a ValueError.
    """
    if isinstance(value, Schedule):
        return value
    if isinstance(value, timedelta) or (
            isinstance(value, (int, float)) and not isinstance(value, bool)):
        return schedule(value)
    raise TypeError(f"a beat schedule is a crontab, schedule, solar or clocked, a number of "
                    f"seconds or a timedelta, not {type(value).__name__} ({value!r})")


def schedule_from_dict(data: Mapping[str, Any]) -> Schedule:
    """The schedule whose `Schedule.to_dict` gave `data`: the inverse of to_dict.

    Bad data (not a mapping, no or an unknown ``"type"``, a missing or malformed field) is a
    ValueError saying what is wrong.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"stored schedule data is a dict with a 'type' key, "
                         f"not {type(data).__name__}")
    kind = data.get("type")
    cls = TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"stored schedule data has the type {kind!r}, which no schedule class "
                         f"claims: known types are {', '.join(sorted(TYPES))}")
    try:
        return cls.from_dict(data)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"stored {kind} schedule {dict(data)!r} is malformed: {exc}") from None
