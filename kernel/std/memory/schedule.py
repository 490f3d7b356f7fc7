"""The ``memory://`` schedule store: the reference `ScheduleStore`, for tests of beat and of the
schedule-store suite itself.

Stores are process-global by name, so ``MemoryScheduleStore("memory://x")`` opened twice is one
schedule, as two beat processes opening one server would see; every change happens under the
schedule's lock, and the lease runs on this process's monotonic clock.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from kernel.interfaces.schedule import (
    EntryState,
    Leader,
    ScheduleStore,
    check_due,
    check_ttl,
)
from kernel.specs import Options
from kernel.std.memory import name_from_url

__all__ = ["MemoryScheduleStore"]


@dataclass
class _Schedule:
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    holder: tuple[str, int, float] | None = None  # owner, token, monotonic end
    states: dict[str, EntryState] = field(default_factory=dict)
    entries: dict[str, bytes] = field(default_factory=dict)
    version: int = 0

    def current(self) -> tuple[str, int, float] | None:
        if self.holder is not None and self.holder[2] <= time.monotonic():
            self.holder = None  # the lease ended by itself
        return self.holder


_schedules: dict[str, _Schedule] = {}
_registry_lock = threading.Lock()


class MemoryScheduleStore(ScheduleStore):
    """``memory://`` or ``memory://name``; no options."""

    def __init__(self, url: str = "memory://", options: Options | None = None) -> None:
        self.url = url
        with _registry_lock:
            self._schedule = _schedules.setdefault(name_from_url(url), _Schedule())

    def __repr__(self) -> str:
        return f"<MemoryScheduleStore {self.url}>"

    def acquire(self, owner: str, ttl: float) -> int | None:
        check_ttl(ttl)
        s = self._schedule
        with s.lock:
            holder = s.current()
            if holder is not None and holder[0] != owner:
                return None
            token = holder[1] if holder is not None else next(s.tokens)
            s.holder = (owner, token, time.monotonic() + ttl)
            return token

    def release(self, owner: str) -> None:
        s = self._schedule
        with s.lock:
            holder = s.current()
            if holder is not None and holder[0] == owner:
                s.holder = None

    def leader(self) -> Leader | None:
        s = self._schedule
        with s.lock:
            holder = s.current()
            if holder is None:
                return None
            return Leader(holder[0], holder[1], holder[2] - time.monotonic())

    def claim(self, entry: str, due: float, token: int) -> bool:
        check_due(due)
        s = self._schedule
        with s.lock:
            holder = s.current()
            if holder is None or holder[1] != token:
                return False
            last = s.states.get(entry)
            if last is not None and due <= last.last_run:
                return False
            s.states[entry] = EntryState(due, (last.run_count if last else 0) + 1)
            return True

    def states(self) -> dict[str, EntryState]:
        with self._schedule.lock:
            return dict(self._schedule.states)

    def entries(self) -> dict[str, bytes]:
        with self._schedule.lock:
            return dict(self._schedule.entries)

    def put_entry(self, name: str, data: bytes) -> None:
        s = self._schedule
        with s.lock:
            s.entries[name] = bytes(data)
            s.version += 1

    def remove_entry(self, name: str) -> bool:
        s = self._schedule
        with s.lock:
            s.states.pop(name, None)
            if s.entries.pop(name, None) is None:
                return False
            s.version += 1
            return True

    def version(self) -> int:
        with self._schedule.lock:
            return self._schedule.version
