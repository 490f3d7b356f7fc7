"""``app.beat``: an app's periodic tasks, as its code and configuration declare them and as the
schedule store keeps them, and the dynamic API that changes the store while beat runs.

How the two kinds coexist: entries from the code and configuration (``beat_schedule``,
``add_periodic_task``, ``@app.periodic``) are *config* entries, written into the store by
every beat process when it starts (`sync`): one that changed is rewritten (its tick state,
anchor and enabled flag stay), one no longer declared is removed. Entries added through
``app.beat.add`` or ``kernel beat add`` are *dynamic*: they live in the store only, and a
beat start never touches them. A name is one or the other: ``add`` refuses a config entry's
name, ``remove`` refuses a config entry (it would come back at the next start; disable it).
Both kinds can be enabled and disabled; the flag lives in the store and survives restarts.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any

from kernel.beat.entries import CONFIG, DYNAMIC, Entry, check, next_due
from kernel.errors import BeatEntryError, ConfigurationError, KernelError, UnknownEntry
from kernel.interfaces.schedule import ScheduleStore
from kernel.schedules import resolve_timezone

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.task import Task

log = logging.getLogger("kernel.beat")


class Periodic:
    """The periodic tasks of one app (``app.beat``)."""

    def __init__(self, app: App) -> None:
        self.app = app
        #: entries declared in code (``add_periodic_task``, ``@app.periodic``), by name.
        self._declared: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ declared in code

    def declare(self, name: str, task: str, schedule: Any, args: Iterable[Any] = (),
                kwargs: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None) -> Entry:
        """Add a config entry from code; checked now, so a mistake fails where it is made."""
        value = {"task": task, "schedule": schedule, "args": list(args),
                 "kwargs": dict(kwargs or {}), "options": dict(options or {})}
        entry = check(name, value)
        if name in self._declared or name in self.app.conf.beat_schedule:
            raise BeatEntryError(name, "name", "is declared twice; give each periodic task "
                                               "its own name")
        self._declared[name] = value
        return entry

    def decorator(self, schedule: Any, name: str | None = None, args: Iterable[Any] = (),
                  kwargs: Mapping[str, Any] | None = None,
                  **options: Any) -> Callable[[Any], Task[Any, Any]]:
        """``@app.periodic(schedule, ...)`` over a task, or over a function (made a task)."""
        def register(target: Any) -> Task[Any, Any]:
            from kernel.task import Task

            task = target if isinstance(target, Task) else self.app.task(target)
            self.declare(name or task.name, task.name, schedule, args, kwargs, options)
            return task
        return register

    def configured(self) -> dict[str, Entry]:
        """Every config entry, checked: `BeatEntryError` names the first one beat cannot keep
        (and the timezone is checked too: `ConfigurationError`)."""
        self.timezone()
        entries = {name: check(name, value) for name, value in
                   self.app.conf.beat_schedule.items()}
        entries.update((name, check(name, value)) for name, value in self._declared.items())
        return entries

    def timezone(self) -> tzinfo:
        """The app's ``timezone`` setting as a tzinfo."""
        try:
            return resolve_timezone(self.app.conf.timezone)
        except ValueError as exc:
            raise ConfigurationError(f"setting 'timezone': {exc}") from None

    # ------------------------------------------------------------------ in the store

    @property
    def store(self) -> ScheduleStore:
        return self.app.schedule_store

    def sync(self, now: float | None = None) -> None:
        """Write the config entries into the store (see the module docstring)."""
        now = time.time() if now is None else now
        wanted = self.configured()
        stored = self._stored()
        for name, entry in wanted.items():
            old = stored.get(name)
            if old is not None and old.source == CONFIG and old.definition() == \
                    entry.definition():
                continue
            if old is not None and old.source == DYNAMIC:
                log.warning("periodic task %r from the configuration replaces the dynamic "
                            "entry of that name", name)
            keep = old is not None and old.source == CONFIG
            self.store.put_entry(name, replace(
                entry, anchor=old.anchor if keep and old else now,
                enabled=old.enabled if keep and old else True).dumps())
        for name, old in stored.items():
            if old.source == CONFIG and name not in wanted:
                self.store.remove_entry(name)
                log.info("periodic task %r is no longer configured: removed", name)

    def _stored(self) -> dict[str, Entry]:
        """The store's entries that beat can read; the others are logged and left alone."""
        found = {}
        for name, data in self.store.entries().items():
            try:
                found[name] = Entry.loads(name, data)
            except BeatEntryError as exc:
                log.error("%s", exc)
        return found

    def add(self, name: str, task: str, schedule: Any, *, args: Iterable[Any] = (),
            kwargs: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None,
            enabled: bool = True) -> Entry:
        """Add a dynamic entry, or replace one (its tick state stays); every beat process
        sees it within one loop. Refused for a config entry's name."""
        entry = check(name, {"task": task, "schedule": schedule, "args": list(args),
                             "kwargs": dict(kwargs or {}), "options": dict(options or {})},
                      source=DYNAMIC)
        if name in self.app.conf.beat_schedule or name in self._declared:
            raise BeatEntryError(name, "name", "belongs to an entry of the app's "
                                               "configuration; change it there")
        old = self._stored().get(name)
        if old is not None and old.source == CONFIG:
            raise BeatEntryError(name, "name", "belongs to an entry of the configuration "
                                               "of the running beat; change it there")
        entry = replace(entry, enabled=enabled,
                        anchor=old.anchor if old is not None else time.time())
        self.store.put_entry(name, entry.dumps())
        return entry

    def remove(self, name: str) -> None:
        """Remove a dynamic entry and its tick state; `UnknownEntry` if there is none."""
        stored = self._stored()
        old = stored.get(name)
        if old is None and name not in self.configured():
            raise UnknownEntry(name, stored)
        if old is None or old.source == CONFIG:
            raise BeatEntryError(name, "name", "is an entry of the configuration (it comes "
                                               "back when beat starts); disable it, or "
                                               "delete it from the configuration")
        self.store.remove_entry(name)

    def enable(self, name: str) -> None:
        """Send the entry's ticks again, from its next due time after now (ticks missed while
        it was disabled are not sent)."""
        self._set_enabled(name, True)

    def disable(self, name: str) -> None:
        """Send none of the entry's ticks until it is enabled."""
        self._set_enabled(name, False)

    def _set_enabled(self, name: str, enabled: bool) -> None:
        stored = self._stored()
        old = stored.get(name)
        if old is None:  # a config entry no beat has synced yet: stored now, with its flag
            configured = self.configured()
            if name not in configured:
                raise UnknownEntry(name, {*stored, *configured})
            old = replace(configured[name], anchor=time.time(), enabled=not enabled)
        if old.enabled != enabled:
            anchor = time.time() if enabled else old.anchor
            self.store.put_entry(name, replace(old, enabled=enabled, anchor=anchor).dumps())

    def list(self) -> builtins.list[Entry]:
        """Every entry, by name: the store's, and the config entries not synced yet."""
        now = time.time()
        entries = {name: replace(e, anchor=now) for name, e in self.configured().items()}
        entries.update(self._stored())
        return [entries[name] for name in sorted(entries)]

    def status(self, now: float | None = None) -> dict[str, Any]:
        """Who leads, and each entry's next run, last run and run count (JSON values)."""
        now = time.time() if now is None else now
        tz = self.timezone()
        leader = self.store.leader()
        states = self.store.states()
        rows = []
        for entry in self.list():
            state = states.get(entry.name)
            ticks, _, following = entry.due(state.last_run if state else None, tz, now,
                                            self.app.conf.beat_cron_starting_deadline)
            upcoming = ticks[0] if ticks else following
            rows.append({
                "name": entry.name, "task": entry.task, "schedule": entry.schedule.describe(),
                "enabled": entry.enabled, "source": entry.source,
                "next_run": iso(upcoming) if entry.enabled and upcoming is not None else None,
                "last_run": iso(state.last_run) if state else None,
                "run_count": state.run_count if state else 0})
        return {"leader": None if leader is None else {
                    "owner": leader.owner, "token": leader.token,
                    "expires_in": round(leader.expires_in, 3)},
                "entries": rows}

    def preview(self, count: int, now: float | None = None) -> dict[str, builtins.list[str]]:
        """The next `count` fire times of every entry after `now`, as ISO times in the app's
        timezone; nothing is sent. The store's entries are included when it answers."""
        now = time.time() if now is None else now
        tz = self.timezone()
        entries = self.configured()
        try:
            entries.update((e.name, e) for e in self._stored().values() if e.source == DYNAMIC)
        except KernelError as exc:
            log.warning("the schedule store's entries are left out: %s", exc)
        out: dict[str, builtins.list[str]] = {}
        for name in sorted(entries):
            times, after = [], now
            for _ in range(count):
                due = next_due(entries[name].schedule, after, tz)
                if due is None:
                    break
                times.append(iso(due, tz))
                after = due
            out[name] = times
        return out


def iso(when: float, tz: tzinfo = timezone.utc) -> str:
    """Unix time as an ISO-8601 string in `tz`, to the second."""
    return datetime.fromtimestamp(when, tz).isoformat(timespec="seconds")
