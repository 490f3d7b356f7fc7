"""The result-store contract: where task results are kept and waited on.

Stores deal in opaque bytes (the encoded result record); the kernel owns the record format, so
every store writes what Celery's backends write. A store is created per process from a URL and
MUST be safe to call from several threads.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResultStoreCapabilities:
    #: `wait` is woken by the store (pub/sub, reply queue), not by polling.
    push_wait: bool = False
    #: `incr` is atomic across processes (chords count with it).
    atomic_counter: bool = False
    #: records survive the process that wrote them (false for in-memory).
    persistent: bool = True
    #: several processes can share the store.
    multi_process: bool = True
    #: Celery's backend for this store runs chords with ``celery.chord_unlock`` (SQL, MongoDB):
    #: clients send that task for every chord, even where `incr` could count, and workers do
    #: not count, so a chord runs on Celery and kernel workers alike.
    chord_unlock: bool = False


class ResultStore(ABC):
    """A result store."""

    capabilities: ResultStoreCapabilities = ResultStoreCapabilities()

    @abstractmethod
    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        """Store each `(key, value)`, replacing what was there.

        MUST be durable on return and visible to every reader afterwards. With `expires`
        (seconds), the record MAY disappear after that long and MUST NOT disappear before.
        """

    @abstractmethod
    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        """Store each `(key, value)` whose key holds no live value (never stored, deleted or
        expired), and leave every other key as it is: how a client writes a task's PENDING
        record, which must never land on top of the worker's result (a write held up by a
        network cut can reach the server after the task ran).

        Looking and storing MUST be one atomic step per key, also against other processes
        (SET NX, INSERT ... ON CONFLICT DO NOTHING, a conditional put): a get, then a set,
        leaves room for exactly that late write. What is stored is as durable and expires as
        with `set`; a waiter need not be woken by it.
        """

    def set_reply(self, properties: Mapping[str, Any], items: Sequence[tuple[str, bytes]],
                  expires: float | None) -> None:
        """Store the records of one task for its caller: what a worker calls for the task it
        runs. `properties` are the task message's (``reply_to``, ``correlation_id``).

        Stores that send results back to the client that sent the task (`reply_address` is
        not None, as with ``rpc://``) MUST send them where ``reply_to`` says; every other store
        stores them as `set` does, which is the default.
        """
        self.set(items, expires)

    def reply_address(self) -> str | None:
        """Where workers are to send the results of tasks this process sends: the client puts
        it in each task message's ``reply_to`` property. None (the default) for stores that
        are read where the worker wrote them.

        A store that returns an address MUST already receive on it when this returns: a task
        may finish before the call that sent it has returned.
        """
        return None

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The stored value, or None if there is none (never stored, forgotten or expired)."""

    @abstractmethod
    def delete(self, keys: Sequence[str]) -> None:
        """Forget `keys`. Deleting a missing key is a no-op."""

    @abstractmethod
    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """Add `amount` to the integer counter `key` (missing counts as 0) and return the new
        value. With `capabilities.atomic_counter`, concurrent calls from any process MUST each see
        a distinct value."""

    def chord_start(self, key: str, members: Sequence[str], expires: float | None) -> None:
        """A chord's header is about to be sent: `members` are its task ids, in order, whose
        count `chord_part` counts towards (`key` as there). Called by the client before the
        first member is sent, for stores with `capabilities.atomic_counter` that do not
        declare `chord_unlock`.

        The default stores the size under ``key + ".s"``, where the default `chord_part` reads
        it. A store where Celery keeps chords its own way overrides it with that layout
        (django-celery-results: a ``ChordCounter`` row holding the members), so a Celery worker
        can finish a chord a kernel client sent.
        """
        self.set([(key + ".s", str(len(members)).encode())], expires)

    def chord_part(self, key: str, index: int | None, task_id: str, entry: bytes,
                   expires: float | None) -> list[bytes] | None:
        """Count one finished member of the chord whose keys begin with `key`
        (``celery-taskset-meta-<group id>``), keeping `entry`, the member's outcome.

        The chord's size is what `chord_start` recorded (by default the integer under
        ``key + ".s"``), plus the one
        under ``key + ".t"`` if any. The call that brings the count to the size MUST get every
        entry, ordered by `index` (None last), and MUST be the only one, across processes, to
        get them; every other call gets None, as do calls once the size key is gone. The same
        (`task_id`, `index`) counted twice (a redelivered task) MUST count once. With `expires`
        the chord's keys MAY disappear after that many seconds.

        This default is built on `incr` and needs `capabilities.atomic_counter`. A store where
        Celery keeps chords its own way overrides it with that layout (Redis: a sorted set
        ``key + ".j"``), so Celery and kernel workers can share one chord.
        """
        if self.incr(f"{key}.d.{task_id}.{index}", 1, expires) > 1:
            return None
        position = b"" if index is None else str(index).encode()
        slot = self.incr(key + ".n", 1, expires)
        self.set([(f"{key}.e{slot}", b"%s\n%s\n%s" % (position, task_id.encode(), entry))],
                 expires)
        # Counted only once written, so the last counter finds every entry in place.
        done = self.incr(key + ".w", 1, expires)
        size, extra = self.get(key + ".s"), self.get(key + ".t")
        if size is None or done != int(size) + int(extra or 0):
            return None
        parts = [(self.get(f"{key}.e{i}") or b"\n\n").split(b"\n", 2) for i in range(1, done + 1)]
        parts.sort(key=lambda p: (not p[0], int(p[0] or 0)))
        self.delete([key + ".n", key + ".w", key + ".s", key + ".t",
                     *(f"{key}.e{i}" for i in range(1, done + 1)),
                     *(f"{key}.d.{p[1].decode()}.{p[0].decode() or None}" for p in parts)])
        return [p[2] for p in parts]

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        """Block until `key` has a value other than `unless` (None: any value) or `timeout`
        seconds pass (None: forever); return that value, or None at the timeout.

        `unless` lets a reader that already saw an intermediate record (PENDING, STARTED,
        RETRY) wait for the next one without polling. The default polls `get` with a backoff
        from 5 ms up to 200 ms; stores with `capabilities.push_wait` override it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while True:
            value = self.get(key)
            if value is not None and value != unless:
                return value
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                delay = min(delay, left)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def cleanup(self) -> dict[str, int]:
        """Delete the records that have expired, where the store keeps them until something
        deletes them (a SQL table has no TTL); return how many, by what they were (``task``,
        ``group``, ...). ``kernel results cleanup`` and Celery's ``celery.backend_cleanup``
        task call it. Reads MUST ignore expired records whether or not this ran. The default,
        for stores that expire records themselves, deletes nothing and returns ``{}``."""
        return {}

    def close(self) -> None:  # noqa: B027
        """Release connections. Safe to call twice."""
