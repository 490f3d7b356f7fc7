"""The in-memory result store: values with their expiry, one condition per named store, so a
wait is woken by the write itself. Stores are process-global by name (``memory://x`` opened
twice is one store)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from kernel.interfaces.results import ResultStore
from kernel.specs import Options
from kernel.std.memory import RESULT_STORE_CAPABILITIES, name_from_url

#: expired results are dropped by a write at most this often (reads ignore them meanwhile).
SWEEP_EVERY = 60.0

_stores: dict[str, StoreTable] = {}
_lock = threading.Lock()

class StoreTable:
    """One named store: values with their expiry (monotonic time), and a condition for waits."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.values: dict[str, tuple[bytes, float | None]] = {}
        self.next_sweep = time.monotonic() + SWEEP_EVERY

    def get(self, key: str, now: float) -> bytes | None:
        item = self.values.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= now:
            del self.values[key]
            return None
        return item[0]


class MemoryResultStore(ResultStore):
    """``memory://`` or ``memory://name``; values live as long as the process."""

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        name = name_from_url(url)
        with _lock:
            self._table = _stores.setdefault(name, StoreTable())

    def __repr__(self) -> str:
        return f"<MemoryResultStore {self.url}>"

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=True)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=False)

    def _store(self, items: Sequence[tuple[str, bytes]], expires: float | None,
               replace: bool) -> None:
        table = self._table
        with table.cond:
            now = time.monotonic()
            until = None if expires is None else now + expires
            for key, value in items:
                if replace or table.get(key, now) is None:
                    table.values[key] = (bytes(value), until)
            if now >= table.next_sweep:
                table.next_sweep = now + SWEEP_EVERY
                for key in [k for k, (_, t) in table.values.items() if t is not None and t <= now]:
                    del table.values[key]
            table.cond.notify_all()

    def get(self, key: str) -> bytes | None:
        with self._table.cond:
            return self._table.get(key, time.monotonic())

    def delete(self, keys: Sequence[str]) -> None:
        with self._table.cond:
            for key in keys:
                self._table.values.pop(key, None)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        table = self._table
        with table.cond:
            now = time.monotonic()
            current = table.get(key, now)
            value = (int(current) if current else 0) + amount
            old = table.values.get(key)
            until = now + expires if expires is not None else (old[1] if old else None)
            table.values[key] = (str(value).encode(), until)
            table.cond.notify_all()
            return value

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        """Woken by the write itself, never by polling."""
        table = self._table
        deadline = None if timeout is None else time.monotonic() + timeout
        with table.cond:
            while True:
                value = table.get(key, time.monotonic())
                if value is not None and value != unless:
                    return value
                if deadline is None:
                    table.cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                table.cond.wait(left)
