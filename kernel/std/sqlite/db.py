"""One SQLite database file shared by threads and processes: the connection setup, error
translation and wake-ups that the SQLite transport and result store both use.

Every thread gets its own connection (SQLite connections are not meant to be shared), in WAL mode
with a busy timeout, so readers never block the one writer and writers queue up instead of
failing. Connections never cross a fork: a child process opens its own.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from kernel.parsing import OptionReader, mask_url
from kernel.errors import ConfigurationError, ConnectionFailed, KernelError

#: bumped in a forked child, so connections and locks inherited from the parent are dropped.
_fork_generation = 0
#: connections a forked child inherited: kept referenced so they are never closed there, since
#: closing a copied SQLite handle can drop the file locks of the child's own connections.
_inherited: list[sqlite3.Connection] = []
_notifiers: dict[tuple[str, str], Notifier] = {}
_notifiers_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _fork_generation, _notifiers_lock
    _fork_generation += 1
    _notifiers.clear()
    _notifiers_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

MIN_POLL = 0.001
MAX_POLL = 0.05


def path_from_url(url: str) -> str:
    """``sqlite://`` → ``kernel.db``; ``sqlite:///rel.db`` → ``rel.db``;
    ``sqlite:////abs/x.db`` → ``/abs/x.db``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "sqlite":
        raise ConfigurationError(f"{mask_url(url)!r} is not an SQLite URL; write "
                                 f"sqlite:///relative.db or sqlite:////absolute/path.db")
    rest = rest.split("?", 1)[0]
    if rest.startswith("/"):
        rest = rest[1:]
    elif rest:
        host, _, path = rest.rpartition("@")[2].partition("/")
        raise ConfigurationError(f"{mask_url(url)!r} names a host ({host}), which SQLite has "
                                 f"none of; write sqlite:///{path or 'kernel.db'} for a file "
                                 f"relative to the working directory")
    if rest in ("", "/"):
        return "kernel.db"
    if rest == ":memory:":
        raise ConfigurationError("an in-memory SQLite database cannot be shared between "
                                 "connections; use memory:// or a file path")
    return rest


def file_settings(options: Mapping[str, Any], owner: str) -> tuple[float, str]:
    """``(busy_timeout, synchronous)`` for `Database`, from a store's or transport's options:
    seconds to wait for another process's write (30), and SQLite's durability level
    ("NORMAL"; "FULL" also survives a power cut, more slowly)."""
    reader = OptionReader(options, owner)
    return reader.number("busy_timeout", 30.0, positive=True), reader.text("synchronous",
                                                                         "NORMAL")


def translate(path: str, exc: sqlite3.Error) -> KernelError:
    """A kernel error with a sentence for what SQLite reported."""
    text = str(exc)
    lowered = text.lower()
    if "not a database" in lowered or "encrypted" in lowered or "malformed" in lowered:
        return ConfigurationError(
            f"{path} is not a usable SQLite database ({text}); point the URL at a new file or "
            f"at a database kernel created")
    if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered:
        return ConnectionFailed(
            f"cannot write the SQLite database {path} ({text}); make sure its directory exists "
            f"and this user may write to it, or choose another path in the URL")
    if "locked" in lowered or "busy" in lowered:
        return ConnectionFailed(
            f"the SQLite database {path} stayed locked ({text}); another process holds a long "
            f"write transaction, or the file lives on a network file system, which SQLite "
            f"cannot lock reliably: keep it on a local disk")
    return ConnectionFailed(f"the SQLite database {path} failed ({text}); check the disk and "
                            f"the file's permissions")


class Notifier:
    """Wakes waiters of this process when a connection of this process commits a change.
    Changes by other processes are noticed by polling `Database.data_version`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.count = 0

    def notify(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Sleep up to `timeout` unless `count` moved past `seen`; True if it has."""
        with self._cond:
            if self.count == seen:
                self._cond.wait(timeout)
            return self.count != seen


def _shared_notifier(realpath: str, channel: str) -> Notifier:
    key = (realpath, channel)
    with _notifiers_lock:
        found = _notifiers.get(key)
        if found is None:
            found = _notifiers[key] = Notifier()
        return found


class Database:
    """Thread-local connections to one file, each set up the same way.

    `schema` is run once, in a write transaction, when the first connection opens; with it,
    each of `added` (table, column, definition), columns a later version added to a table, is
    added to a file that an earlier version made.
    """

    def __init__(self, path: str, schema: str, busy_timeout: float = 30.0,
                 synchronous: str = "NORMAL", *,
                 added: Sequence[tuple[str, str, str]] = ()) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigurationError(f"synchronous={synchronous!r} must be one of OFF, NORMAL, "
                                     f"FULL, EXTRA")
        self.path = path
        self._schema = schema
        self._added = added
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._lock = threading.Lock()
        #: every open connection with its thread, so `close` reaches them all and a dead
        #: thread's connection is closed when the next one opens.
        self._open: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._generation = _fork_generation
        self._realpath = os.path.realpath(path)
        self._notifiers: dict[str, Notifier] = {}
        self._ready = False
        self.connection()  # fail now, with a sentence, rather than on first use

    def _after_fork(self) -> None:
        # A forked child: the parent's connections and locks must never be touched here.
        _inherited.extend(conn for _, conn in self._open)
        self._local = threading.local()
        self._open = []
        self._notifiers = {}
        self._lock = threading.Lock()
        self._generation = _fork_generation

    def notifier(self, channel: str) -> Notifier:
        """The process-wide notifier of this file for `channel` ("queue", "results"): every
        instance on the same file in this process shares it."""
        if self._generation != _fork_generation:
            self._after_fork()
        found = self._notifiers.get(channel)
        if found is None:
            found = self._notifiers[channel] = _shared_notifier(self._realpath, channel)
        return found

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        if self._generation != _fork_generation:
            self._after_fork()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _set_up(self, conn: sqlite3.Connection) -> None:
        """WAL mode and the schema. Switching to WAL needs a moment alone with the file, and
        SQLite answers "locked" at once rather than waiting: several processes opening a new
        file together (a prefork worker's children) try again until the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise ConnectionFailed(
                        f"the SQLite database {self.path} cannot use WAL mode (it says {mode!r});"
                        f" keep it on a local disk, not a network file system")
                conn.executescript(f"BEGIN IMMEDIATE;\n{self._schema}")
                for table, column, definition in self._added:
                    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                if conn.in_transaction:
                    conn.rollback()
                time.sleep(0.01)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                                   check_same_thread=False, cached_statements=256)
        except sqlite3.Error as exc:
            raise translate(self.path, exc) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if not self._ready:
                self._set_up(conn)
                self._ready = True
        except sqlite3.Error as exc:
            conn.close()
            raise translate(self.path, exc) from None
        except BaseException:
            conn.close()
            raise
        with self._lock:
            dead = [c for t, c in self._open if not _alive(t)]
            self._open = [(t, c) for t, c in self._open if _alive(t)]
            self._open.append((weakref.ref(threading.current_thread()), conn))
        for old in dead:
            old.close()
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once (``BEGIN IMMEDIATE``) so two writers queue on the
        busy timeout instead of failing when one upgrades a read; committed on success."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(self.path, exc) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise translate(self.path, exc) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for reads in autocommit mode, with errors translated."""
        try:
            yield self.connection()
        except sqlite3.Error as exc:
            raise translate(self.path, exc) from None

    def data_version(self) -> int:
        """Changes whenever another connection commits to the file (cheap: no transaction)."""
        with self.read() as conn:
            value: int = conn.execute("PRAGMA data_version").fetchone()[0]
            return value

    def close(self) -> None:
        """Close this thread's connection and those of threads that ended. Another live
        thread may be inside a query on its own: closing that one under it crashes SQLite's
        library, so it is closed once the thread ends (by the next connect)."""
        me = threading.current_thread()
        with self._lock:
            mine = [(t, c) for t, c in self._open if t() is me or not _alive(t)]
            self._open = [entry for entry in self._open if entry not in mine]
            conns = [c for _, c in mine]
        self._local = threading.local()
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass


def _alive(ref: weakref.ref[threading.Thread]) -> bool:
    thread = ref()
    return thread is not None and thread.is_alive()


class Poller:
    """Sleeps until something may have changed: a same-process commit (woken at once), another
    process's commit (seen by polling ``data_version`` with a backoff from `MIN_POLL` up to
    `MAX_POLL`), or a deadline. The backoff only resets on a same-process wake, so a busy file
    that keeps changing for unrelated reasons does not turn an idle waiter into a spinner."""

    def __init__(self, db: Database, channel: str) -> None:
        self.db = db
        self.notifier = db.notifier(channel)
        self.delay = MIN_POLL

    def snapshot(self) -> tuple[int, int]:
        """Take this before looking, pass it to `sleep` after finding nothing."""
        return self.notifier.count, self.db.data_version()

    def sleep(self, snapshot: tuple[int, int], until: float) -> None:
        """Return when a change may have happened since `snapshot`, or at `until` (monotonic)."""
        seen, version = snapshot
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            if self.notifier.wait(seen, min(self.delay, left)):
                self.delay = MIN_POLL
                return
            self.delay = min(self.delay * 2, MAX_POLL)
            if self.db.data_version() != version:
                return
