"""Schedules of periodic tasks: when beat sends each entry of ``beat_schedule``.

- `schedule` (every N seconds), `crontab` (Celery's crontab fields), `solar` (sunrise, dusk, …;
  needs ``pip install 'kernel[solar]'``), `clocked` (once, at a given time);
- `Schedule`, the base class (the one method beat calls is `Schedule.next_after`);
- `as_schedule` (what a beat_schedule entry may give), `schedule_from_dict` (the inverse of
  `Schedule.to_dict`), `resolve_timezone` (names to tzinfo, for the app's ``timezone``).

This package imports only the standard library and `kernel.errors`.
"""

from kernel.schedules.base import Schedule
from kernel.schedules.clocked import clocked
from kernel.schedules.convert import as_schedule, schedule_from_dict
from kernel.schedules.crontab import crontab
from kernel.schedules.interval import schedule
from kernel.schedules.solar import solar
from kernel.schedules.timezones import resolve_timezone

__all__ = [
    "Schedule",
    "as_schedule",
    "clocked",
    "crontab",
    "resolve_timezone",
    "schedule",
    "schedule_from_dict",
    "solar",
]
