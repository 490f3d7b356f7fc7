"""The example result store: ``example://NAME`` keeps results in this process's memory, one table
per NAME shared by every App of the process. Replace the table with your service's client."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from kernel.interfaces import ResultStore
from kernel.plugin import ConfigurationError, OptionReader, Options
from kernel_example.plugin import CAPABILITIES


class _Table:
    """Values with their deadlines (monotonic time), and a condition writers notify."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.values: dict[str, tuple[bytes, float | None]] = {}

    def read(self, key: str) -> bytes | None:
        """Under `changed`: the live value of `key`."""
        found = self.values.get(key)
        if found is None or (found[1] is not None and found[1] <= time.monotonic()):
            return None
        return found[0]


_tables: dict[str, _Table] = {}
_tables_lock = threading.Lock()


class ExampleResultStore(ResultStore):
    capabilities = CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        scheme, sep, name = url.partition("://")
        if scheme != "example" or not sep:
            raise ConfigurationError(f"{url!r} is not a example URL; write example://NAME")
        self.prefix = OptionReader(options or {}, "example result store").text(
            "example_key_prefix", "")
        with _tables_lock:
            self._table = _tables.setdefault(name.strip("/"), _Table())

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        deadline = None if expires is None else time.monotonic() + expires
        with self._table.changed:
            for key, value in items:
                self._table.values[self.prefix + key] = (bytes(value), deadline)
            self._table.changed.notify_all()

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        deadline = None if expires is None else time.monotonic() + expires
        with self._table.changed:  # looking and storing in one step: see ResultStore.add
            for key, value in items:
                if self._table.read(self.prefix + key) is None:
                    self._table.values[self.prefix + key] = (bytes(value), deadline)

    def get(self, key: str) -> bytes | None:
        with self._table.changed:
            return self._table.read(self.prefix + key)

    def delete(self, keys: Sequence[str]) -> None:
        with self._table.changed:
            for key in keys:
                self._table.values.pop(self.prefix + key, None)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        table, full = self._table, self.prefix + key
        with table.changed:
            value = int(table.read(full) or 0) + amount
            old = table.values.get(full)
            deadline = time.monotonic() + expires if expires is not None else (
                old[1] if old else None)
            table.values[full] = (str(value).encode(), deadline)
            table.changed.notify_all()
            return value

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        """Woken by the write itself (``push_wait``), never by polling."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._table.changed:
            while True:
                value = self._table.read(self.prefix + key)
                if value is not None and value != unless:
                    return value
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._table.changed.wait(left)
