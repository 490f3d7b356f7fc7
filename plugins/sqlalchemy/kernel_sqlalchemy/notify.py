"""Waiting for a result on PostgreSQL without polling: the store's writes ``NOTIFY`` the key in
their transaction (PostgreSQL delivers it at the commit), and each waiting process keeps one
connection that ``LISTEN``s and wakes the waiters of that key.

A notification can be missed (the listening connection dropped, or was not up yet); a waiter
therefore looks at the row again at least every `RECHECK` seconds, so a missed one costs that
much time and never a result. Needs psycopg 3 (``db+postgresql+psycopg://``, what the
``postgres`` extra installs); with another driver the store polls.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL

from kernel.plugin import mask_url

log = logging.getLogger("kernel.sqlalchemy")

#: the channel every kernel result store on a database notifies.
CHANNEL = "kernel_results"
#: the longest a waiter goes without looking at the row itself.
RECHECK = 1.0
#: PostgreSQL refuses a payload of 8000 bytes or more; a longer value goes by its key alone.
MAX_PAYLOAD = 7_900
#: how often a waiter looks while the listener is not connected.
POLL = 0.05
#: seconds between attempts to connect the listener again.
RECONNECT = 1.0


#: the statement that tells the listeners of the changes bound as ``kernel_payloads``
#: (`payloads`), sent when its transaction commits.
STATEMENT = sa.select(sa.func.pg_notify(CHANNEL, sa.column("p"))).select_from(
    sa.func.unnest(sa.bindparam("kernel_payloads", type_=ARRAY(sa.Text))).alias("p"))


def payloads(changes: list[tuple[str, bytes | None]]) -> list[str]:
    """The notifications of (key, value) changes. The value goes with its key, so a waiter
    need not read the row, where it is what a read would return (None: it is not) and fits
    a notification as text."""
    found = []
    for key, value in changes:
        text = _as_text(value)
        found.append(key if text is None or len(text) + len(key) > MAX_PAYLOAD
                     else f"{key}\n{text}")
    return found


def _as_text(value: bytes | None) -> str | None:
    if value is None or b"\x00" in value:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


def supported(url: URL) -> bool:
    return url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg"


class Listener:
    """This process's listening connection (started on first use, again after a fork) and
    the waiters by key."""

    def __init__(self, url: URL, connect_timeout: float) -> None:
        self._url = url
        self._timeout = connect_timeout
        self._lock = threading.Lock()
        self._waiters: dict[str, list[Waiter]] = {}
        self._pid = 0
        self._stopped = threading.Event()
        #: set while the connection listens: a waiter may rely on notifications.
        self.listening = threading.Event()
        #: the connection's application_name (pg_stat_activity shows who listens).
        self.name = f"kernel-listen-{uuid.uuid4().hex[:12]}"

    @contextmanager
    def waiting(self, key: str) -> Iterator[Waiter]:
        """A waiter woken when `key` is notified, registered for the block. Register, then
        read the row, then wait: a write between the two is not missed."""
        self._ensure()
        waiter = Waiter()
        with self._lock:
            self._waiters.setdefault(key, []).append(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                waiters = self._waiters.get(key, [])
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    self._waiters.pop(key, None)

    def _ensure(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            # A forked child: the parent's thread and socket are not here; start its own.
            self._lock = threading.Lock()
            self._waiters = {}
            self.listening = threading.Event()
            self._pid = pid
            threading.Thread(target=self._listen, name="kernel-pg-listen", daemon=True).start()
            listening = self.listening
        # The first waiter waits for the connection: a write before it listens would be seen
        # only at the next look.
        listening.wait(min(self._timeout, 2.0))

    def _listen(self) -> None:
        import psycopg

        # The URL's parts as keywords (a rendered URL would send a query's spaces as "+",
        # which libpq does not read back: ?options=-c%20name%3Dvalue).
        params: dict[str, Any] = {
            **self._url.translate_connect_args(username="user", database="dbname"),
            "connect_timeout": max(2, round(self._timeout)),
            **{k: v if isinstance(v, str) else v[-1] for k, v in self._url.query.items()},
            "application_name": self.name, "autocommit": True}
        warned = False
        while not self._stopped.is_set():
            try:
                with psycopg.connect(**params) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    warned = False
                    while not self._stopped.is_set():
                        for note in conn.notifies(timeout=RECHECK):
                            self._wake(note.payload)
            except Exception as exc:  # noqa: BLE001 - waiters fall back to looking themselves
                self.listening.clear()
                if not warned:
                    log.warning("cannot listen for results on %s (%s); waiting clients look "
                                "every %.0f s until it can", mask_url(str(self._url)),
                                type(exc).__name__, RECHECK)
                    warned = True
                self._stopped.wait(RECONNECT)

    def _wake(self, payload: str) -> None:
        key, sep, text = payload.partition("\n")
        with self._lock:
            waiters = list(self._waiters.get(key, ()))
        for waiter in waiters:
            waiter.wake(text.encode() if sep else None)

    def wait_for(self, waiter: Waiter, seconds: float) -> bytes | None:
        """Wait for `waiter` up to `seconds` (at most `RECHECK` while listening, a poll's pace
        while not): the value it was notified with, if any."""
        return waiter.wait(min(seconds, RECHECK if self.listening.is_set() else POLL))

    def close(self) -> None:
        self._stopped.set()


class Waiter:
    """One waiting call: woken by a notification of its key, with the value when it came."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._value: bytes | None = None

    def wake(self, value: bytes | None) -> None:
        self._value = value
        self._event.set()

    def wait(self, seconds: float) -> bytes | None:
        self._event.wait(seconds)
        self._event.clear()
        value, self._value = self._value, None
        return value


def wait(listener: Listener, get: Callable[[str], bytes | None], key: str,
         timeout: float | None, unless: bytes | None) -> bytes | None:
    """`ResultStore.wait` on notifications: the value a notification brought, else
    `get(key)` each time the key is notified, and at least every `RECHECK` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with listener.waiting(key) as waiter:
        value = get(key)
        while True:
            if value is not None and value != unless:
                return value
            left = RECHECK if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None
            value = listener.wait_for(waiter, left)
            if value is None:
                value = get(key)
