"""Periodic-task entries: what users write (the ``beat_schedule`` setting, ``add_periodic_task``,
``@app.periodic``, ``app.beat.add``), checked into `Entry`, and the bytes a schedule store keeps.

An entry's due times follow from its schedule and one anchor: the later of the due time of its
last claimed tick (the store's ``last_run``) and its own ``anchor`` (when it first appeared in
the store, or was last enabled), a unix time stored in the entry's data. Every beat process
reads both from the store, so every one computes the same due times, and a claim of (entry,
due) means the same tick everywhere.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone, tzinfo
from typing import Any

from kernel.errors import BeatEntryError
from kernel.options import check_send_options
from kernel.schedules import Schedule, as_schedule, crontab, schedule_from_dict

#: where an entry comes from: the app's code and configuration (synced into the store when a
#: beat process starts), or the dynamic API and ``kernel beat add``.
CONFIG, DYNAMIC = "config", "dynamic"

#: the keys of a ``beat_schedule`` entry (Celery's, ``relative`` aside: give
#: ``schedule(timedelta, relative=True)`` instead).
ENTRY_KEYS = ("task", "schedule", "args", "kwargs", "options")

#: at most this many due times are walked in one look at one entry; a longer gap is caught up
#: over several looks.
MAX_WALK = 100_000
#: at most this many missed ticks of one entry are sent late (the newest); older ones are
#: skipped, so a beat group that was down for long does not send a flood.
MAX_CATCH_UP = 100


@dataclass(frozen=True)
class Entry:
    """One periodic task. `options` are ordinary send options (queue, priority, expires,
    headers, ...)."""

    name: str
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    #: unix time the first due time is counted from (0: not stored yet).
    anchor: float = 0.0
    source: str = CONFIG

    def definition(self) -> dict[str, Any]:
        """What the user wrote, as JSON values: two entries with equal definitions send the
        same messages at the same times."""
        return {"task": self.task, "schedule": self.schedule.to_dict(), "args": list(self.args),
                "kwargs": dict(self.kwargs), "options": dict(self.options)}

    def dumps(self) -> bytes:
        """The entry as the schedule store keeps it (JSON)."""
        return json.dumps({**self.definition(), "enabled": self.enabled, "anchor": self.anchor,
                           "source": self.source}, sort_keys=True).encode()

    @classmethod
    def loads(cls, name: str, data: bytes) -> Entry:
        """The entry `dumps` wrote; `BeatEntryError` for data beat cannot read (written by a
        newer kernel, or by hand)."""
        try:
            raw = json.loads(data)
            stored = check(name, raw, source=raw.get("source", DYNAMIC))
            return replace(stored, enabled=bool(raw.get("enabled", True)),
                           anchor=float(raw.get("anchor", 0.0)))
        except (ValueError, TypeError, AttributeError) as exc:
            raise BeatEntryError(name, "data", f"in the schedule store cannot be read "
                                               f"({exc}); remove it with kernel beat remove "
                                               f"and add it again") from None

    def due(self, last_run: float | None, tz: tzinfo, now: float,
            deadline: float | None = None) -> tuple[list[float], int, float | None]:
        """``(ticks, skipped, following)``: the ticks to send now, oldest first (every due
        time after the last claimed one that is not after `now`: ticks missed during a
        failover or an outage are each sent once, late), how many due ticks are skipped (more
        than `deadline` seconds late, or beyond the newest `MAX_CATCH_UP`), and the due time
        after them (None: never again). Deterministic: the same anchor, `last_run` and `now`
        give the same answer in every process."""
        base = max(self.anchor, last_run if last_run is not None else -math.inf)
        ticks: deque[float] = deque(maxlen=MAX_CATCH_UP)
        seen = 0
        following = next_due(self.schedule, base, tz)
        for _ in range(MAX_WALK):
            if following is None or following > now:
                break
            seen += 1
            if deadline is None or now - following <= deadline:
                ticks.append(following)
            following = next_due(self.schedule, following, tz)
        else:
            following = next_due(self.schedule, now, tz)
        return list(ticks), seen - len(ticks), following


def next_due(schedule: Schedule, after: float, tz: tzinfo) -> float | None:
    """The schedule's first fire time strictly after unix time `after`, as unix time."""
    moment = schedule.next_after(datetime.fromtimestamp(after, timezone.utc), tz)
    return None if moment is None else moment.timestamp()


def check(name: str, value: Any, *, source: str = CONFIG) -> Entry:
    """A ``beat_schedule`` value as an `Entry`, or `BeatEntryError` naming the entry and the
    field. An unregistered task name is fine: the task may be defined in the workers only."""
    if not isinstance(name, str) or not name:
        raise BeatEntryError(str(name), "name", "must be a non-empty string")
    if not isinstance(value, Mapping):
        raise BeatEntryError(name, "entry", f"must be a dict with 'task' and 'schedule', got "
                                            f"{type(value).__name__}")
    unknown = sorted(set(value) - set(ENTRY_KEYS) - {"enabled", "anchor", "source"})
    if unknown:
        raise BeatEntryError(name, repr(unknown[0]), f"is not an entry key; write "
                                                     f"{', '.join(ENTRY_KEYS)}")
    task = value.get("task")
    if task is None:
        raise BeatEntryError(name, "'task'", "is missing: name the task to send")
    if not isinstance(task, str) or not task:
        raise BeatEntryError(name, "'task'", f"must be a task name, got {task!r}")
    if "schedule" not in value:
        raise BeatEntryError(name, "'schedule'", "is missing: give a crontab, a schedule, "
                                                 "seconds or a timedelta")
    raw = value["schedule"]
    try:
        if isinstance(raw, Mapping):
            when = schedule_from_dict(dict(raw))
        elif isinstance(raw, str):  # "m h dom mon dow", as cron writes it
            when = crontab.from_string(raw)
        else:
            when = as_schedule(raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise BeatEntryError(name, "'schedule'", f"is not one beat can keep: {exc}") from None
    args = value.get("args") or ()
    if not isinstance(args, Sequence) or isinstance(args, (str, bytes)):
        raise BeatEntryError(name, "'args'", f"must be a list, got {type(args).__name__}")
    kwargs = value.get("kwargs") or {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise BeatEntryError(name, "'kwargs'", f"must be a dict with string keys, got "
                                               f"{kwargs!r}")
    options = value.get("options") or {}
    if not isinstance(options, Mapping):
        raise BeatEntryError(name, "'options'", f"must be a dict of send options, got "
                                                f"{type(options).__name__}")
    try:
        check_send_options(options)
    except TypeError as exc:
        raise BeatEntryError(name, "'options'", f"has {exc}") from None
    entry = Entry(name, task, when, tuple(args), dict(kwargs), dict(options), source=source)
    for key, part in (("args", entry.args), ("kwargs", entry.kwargs),
                      ("options", entry.options)):
        try:
            json.dumps(part)
        except (TypeError, ValueError) as exc:
            raise BeatEntryError(name, repr(key), f"must be JSON values, to be kept in the "
                                                  f"schedule store ({exc})") from None
    return entry
