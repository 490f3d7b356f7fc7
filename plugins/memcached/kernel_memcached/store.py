"""The Memcached result store, in Celery's cache backend's layout: the kernel hands it keys such
as ``celery-task-meta-<id>`` and encoded records, and it stores them as Celery's backend does
(the record's bytes as the item, ``result_expires`` as its time to live), so Celery clients and
workers on the same servers read kernel's results and the other way round.

Counters are memcached's ``incr``, atomic on the server. Chords are counted as Celery's cache
backend counts them: the client saves the header as the group record
``celery-taskset-meta-<gid>`` and sets ``chord-unlock-<gid>`` to 0; each finished member
increments that counter, and the one that brings it to the group's size sends the body. So a
chord runs on Celery and kernel workers alike, whichever client sent it. `wait` polls
(memcached cannot notify).

Each process has its own connections: a store used in a forked child (a prefork pool) opens
new ones there and never touches its parent's sockets.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pymemcache.client.base import PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheError, MemcacheServerError, MemcacheUnexpectedCloseError

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    GROUP_KEY_PREFIX,
    ConfigurationError,
    ConnectionFailed,
    GroupFields,
    OptionReader,
    Options,
    RecordFields,
    ResultTooLarge,
    mask_url,
    retry_within,
    task_key,
)
from kernel_memcached.plugin import RESULT_STORE_CAPABILITIES

T = TypeVar("T")

log = logging.getLogger("kernel.results")

DEFAULT_PORT = 11211

#: memcached reads an expiry over 30 days as an absolute Unix time.
MAX_RELATIVE_EXPIRY = 30 * 24 * 3600

#: memcached's own limit on a key, in bytes; keys must not hold spaces or control characters.
MAX_KEY = 250

#: what marks a key stored under its digest (one too long or with characters memcached refuses);
#: a key that itself starts so is stored under its digest too, so no two keys meet.
DIGEST_PREFIX = b"kernel-sha256:"

#: what an item needs besides key and value (memcached's item header and suffix, rounded up).
ITEM_OVERHEAD = 64

#: errors of a connection that was never used: nothing was sent, so a retry cannot double a
#: write. (Once a request is out, a lost reply leaves an incr's effect unknown.)
NOT_SENT = (ConnectionRefusedError, BrokenPipeError)

#: where Celery's cache backend counts a chord's finished members: ``chord-unlock-<gid>``.
CHORD_COUNTER_PREFIX = "chord-unlock-"

#: errors of a server that went away or does not answer.
UNREACHABLE = (OSError, MemcacheUnexpectedCloseError)


def drop_closed(client: PooledClient | HashClient) -> None:
    """Close the idle pooled connections whose server hung up (it stopped or restarted): a
    command written to one fails only after its bytes left, so for an incr that failure could
    not be told from a lost reply. Peeking at each idle socket tells them apart first."""
    for pooled in client.clients.values() if isinstance(client, HashClient) else [client]:
        for connection in pooled.client_pool.free:
            sock = connection.sock
            if sock is None:
                continue
            try:
                # Readable while idle: the peer hung up (or reset). poll, not a timed recv (a
                # socket with a timeout waits that long even when told not to), nor select
                # (it refuses descriptors past 1023).
                ready = select.poll()
                ready.register(sock, select.POLLIN)
                closed = bool(ready.poll(0)) and sock.recv(1, socket.MSG_PEEK) == b""
            except ValueError:
                continue  # closed meanwhile by the thread that took it from the pool
            except OSError:
                closed = True  # reset by the peer
            if closed:
                connection.close()  # the next command on it connects afresh


def parse_servers(url: str) -> list[tuple[str, int]]:
    """The servers of ``cache+memcached://host[:port][;host[:port]...]/`` (Celery's form)."""
    _, sep, rest = url.partition("://")
    servers = []
    for part in filter(None, rest.rstrip("/").split(";")):
        if part.startswith("["):  # [IPv6]:port or [IPv6]
            host, _, port = part[1:].partition("]")
            port = port.lstrip(":")
        elif part.count(":") == 1:
            host, port = part.split(":")
        else:
            host, port = part, ""
        try:
            servers.append((host or "127.0.0.1", int(port or DEFAULT_PORT)))
        except ValueError:
            servers = []
            break
    if not sep or not servers:
        raise ConfigurationError(
            f"{mask_url(url)!r} names no Memcached server; write cache+memcached://host:port/ "
            f"or, for several, cache+memcached://host1:port;host2:port/")
    return servers


def item_key(key: str) -> bytes:
    """The memcached key for `key`: the key itself where memcached takes it (Celery's keys are
    kept as they are), else a digest of it."""
    raw = key.encode()
    if len(raw) <= MAX_KEY and raw.isascii() and all(32 < c < 127 for c in raw) and \
            not raw.startswith(DIGEST_PREFIX):
        return raw
    return DIGEST_PREFIX + hashlib.sha256(raw).hexdigest().encode()


def exptime(expires: float | None) -> int:
    """memcached's exptime for `expires` seconds from now (0: never). Its clock ticks in whole
    seconds, so one is added: a record MUST NOT disappear before its expiry."""
    if expires is None:
        return 0
    seconds = max(1, math.ceil(expires)) + 1
    return seconds if seconds <= MAX_RELATIVE_EXPIRY else int(time.time()) + seconds


class MemcachedStore(ResultStore):
    """``cache+memcached://host[:port][;host[:port]...]/``; several servers share the keys by
    hash (pymemcache's HashClient), as Celery's backend does.

    Options (``result_backend_options``, or Celery's ``cache_backend_options``):
    ``connect_timeout`` and ``timeout`` (seconds, each at most a quarter of
    ``connection_timeout``), ``max_pool_size`` (connections per server and process; unbounded:
    one per thread that uses the store at once), ``no_delay`` (TCP_NODELAY, on).
    ``connection_timeout`` (4 s, the app's ``broker_connection_timeout``) is the most a call
    spends on an unreachable server before `ConnectionFailed`.
    """

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        options = {**dict((options or {}).get("cache_backend_options") or {}),
                   **{k: v for k, v in (options or {}).items() if k != "cache_backend_options"}}
        reader = OptionReader(options, "Memcached result store")
        self.servers = parse_servers(url)
        self.connection_timeout = reader.number("connection_timeout", 4.0, positive=True)
        attempt = self.connection_timeout / 4
        self._client_options: dict[str, Any] = {
            "connect_timeout": min(reader.number("connect_timeout", attempt, positive=True),
                                   attempt),
            "timeout": min(reader.number("timeout", attempt, positive=True), attempt),
            "no_delay": reader.boolean("no_delay", True),
        }
        pool = options.get("max_pool_size")
        self._max_pool_size = None if pool is None else reader.integer("max_pool_size", 0,
                                                                       minimum=1)
        fields = options.get("record_fields")
        #: the app's result serializer (the App gives it), for Celery's chord records.
        self._fields = fields if isinstance(fields, RecordFields) else None
        self._lock = threading.Lock()
        self._pid = -1
        self._client: PooledClient | HashClient | None = None
        self._item_size_max: int | None = None

    def __repr__(self) -> str:
        return f"<MemcachedStore {mask_url(self.url)}>"

    # ------------------------------------------------------------------ connections

    def _connection(self) -> PooledClient | HashClient:
        """This process's client; a forked child opens its own (its parent's sockets are left
        alone: closing them here would not end the parent's use of them, writing would mix)."""
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._item_size_max = None
                if len(self.servers) == 1:
                    self._client = PooledClient(self.servers[0], max_pool_size=self._max_pool_size,
                                                **self._client_options)
                else:
                    self._client = HashClient(self.servers, use_pooling=True,
                                              max_pool_size=self._max_pool_size,
                                              retry_attempts=1, dead_timeout=1,
                                              **self._client_options)
            return self._client

    def _call(self, operation: Callable[[PooledClient | HashClient], T], *,
              resend: bool = True) -> T:
        """`operation` on this process's client, tried again while the server cannot be reached
        and `connection_timeout` allows; `resend`: safe to send twice (everything but incr,
        which is tried again only when nothing was sent)."""
        retry_on = UNREACHABLE if resend else NOT_SENT

        def failed(exc: BaseException) -> ConnectionFailed:
            return ConnectionFailed(
                f"cannot reach Memcached at {mask_url(self.url)} within "
                f"{self.connection_timeout:g} s ({type(exc).__name__}: {exc}); check the server "
                f"is up and the URL is right, or allow longer (broker_connection_timeout)")

        try:
            return retry_within(self.connection_timeout, lambda: operation(self._connection()),
                                retry_on, failed)
        except UNREACHABLE as exc:  # not retried: an incr whose reply was lost
            raise ConnectionFailed(
                f"lost the connection to Memcached at {mask_url(self.url)} while counting "
                f"({type(exc).__name__}: {exc}); whether the count was made is unknown, check "
                f"the server (a worker retries the task)") from exc

    def _limit(self) -> int:
        """The largest item the server takes (``item_size_max``, 1 MiB unless ``-I``)."""
        if self._item_size_max is None:
            def read(client: PooledClient | HashClient) -> int:
                # several servers: the smallest one's limit
                each = client.clients.values() if isinstance(client, HashClient) else [client]
                return min(int(c.stats("settings").get(b"item_size_max", 1024 * 1024))
                           for c in each)
            self._item_size_max = self._call(read)
        return self._item_size_max

    # ------------------------------------------------------------------ the contract

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, add=False)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, add=True)

    def _store(self, items: Sequence[tuple[str, bytes]], expires: float | None,
               add: bool) -> None:
        if not items:
            return
        limit = self._limit() - ITEM_OVERHEAD
        fitting = {item_key(k): v for k, v in items if len(k) + len(v) <= limit}
        too_large = [(k, len(v)) for k, v in items if len(k) + len(v) > limit]
        ttl = exptime(expires)
        if fitting:
            try:
                if add:  # memcached's add: stored only where the key holds nothing
                    self._call(lambda c: [c.add(k, v, ttl, noreply=False)
                                          for k, v in fitting.items()])
                else:
                    self._call(lambda c: c.set_many(fitting, ttl, noreply=False))
            except MemcacheServerError as exc:
                if "too large" not in str(exc):
                    raise self._refused(exc) from exc
                too_large.append((", ".join(k.decode() for k in fitting), -1))
        if too_large:
            key, size = too_large[0]
            shown = f"{size} bytes" if size >= 0 else "over the limit"
            raise ResultTooLarge(
                f"the result stored under {key!r} is {shown}, more than Memcached at "
                f"{mask_url(self.url)} keeps in one item ({limit + ITEM_OVERHEAD} bytes); return "
                f"less from the task, or start memcached with a larger item size (-I)")

    def _refused(self, exc: MemcacheError) -> ConnectionFailed:
        return ConnectionFailed(f"Memcached at {mask_url(self.url)} refused the request "
                                f"({type(exc).__name__}: {exc}); check the server's log")

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda c: c.get(item_key(key)))
        return None if value is None else bytes(value)

    def delete(self, keys: Sequence[str]) -> None:
        if keys:
            self._call(lambda c: c.delete_many([item_key(k) for k in keys], noreply=False))

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """memcached's incr (decr for a negative amount), both atomic on the server; a missing
        counter is created with ``add``, so two processes starting it count both. A counter
        never goes below 0 (memcached's decr stops there)."""
        raw, ttl = item_key(key), exptime(expires)

        def count(client: PooledClient | HashClient) -> int:
            while True:
                if amount >= 0:
                    value = client.incr(raw, amount, noreply=False)
                else:
                    value = client.decr(raw, -amount, noreply=False)
                if value is not None:
                    if expires is not None:
                        client.touch(raw, ttl, noreply=False)
                    return int(value)
                if client.add(raw, b"%d" % max(amount, 0), ttl, noreply=False):
                    return max(amount, 0)
                # another process created it between our incr and add: count on it

        return self._once(count)

    # ------------------------------------------------------------------ chords (Celery's)

    def _record_fields(self) -> RecordFields:
        if self._fields is None:
            raise ConfigurationError(
                "the Memcached result store needs options['record_fields'] (the App gives it) "
                "to keep chords as Celery does: create it through App(results=...)")
        return self._fields

    def chord_start(self, key: str, members: Sequence[str], expires: float | None) -> None:
        """What Celery's cache backend writes for a chord: the header as the group record
        under `key` (``celery-taskset-meta-<gid>``, Celery's ``GroupResult.save``) and its
        counter ``chord-unlock-<gid>`` at 0, which a Celery worker counts as `chord_part`
        does."""
        group_id = key[len(GROUP_KEY_PREFIX):]
        header = [[group_id, None], [[[member, None], None] for member in members]]
        self.set([(key, self._record_fields().group_record(GroupFields(group_id, header))),
                  (CHORD_COUNTER_PREFIX + group_id, b"0")], expires)

    def chord_part(self, key: str, index: int | None, task_id: str, entry: bytes,
                   expires: float | None) -> list[bytes] | None:
        """Count one member on ``chord-unlock-<gid>``, as Celery's workers do, against the
        size of the group record `chord_start` (or a Celery client) saved. The member's entry
        is kept first under ``<key>.d.<task>.<index>``, with memcached's ``add``, which also
        tells a redelivered member: it counts once. The call that brings the count to the size
        deletes the counter and the group record and gets every entry in the group's order;
        members a Celery worker ran have none, and are read from their results. A counter or
        group record that is gone (the chord finished, expired, or the server restarted) counts
        nothing: None."""
        fields = self._record_fields()
        group_id = key[len(GROUP_KEY_PREFIX):]
        position = b"" if index is None else str(index).encode()
        ttl = exptime(expires)
        marker = item_key(f"{key}.d.{task_id}.{index}")
        value = b"%s\n%s\n%s" % (position, task_id.encode(), entry)
        if not self._once(lambda c: bool(c.add(marker, value, ttl, noreply=False))):
            return None  # counted already (a redelivered member)
        saved = self.get(key)
        if saved is None:
            log.warning("chord %s: its group record is gone (expired, or memcached restarted); "
                        "member %s counts nowhere and the body will not run", group_id, task_id)
            return None
        members = [str(m[0][0]) for m in fields.group(group_id, saved).result[1]]
        counter = item_key(CHORD_COUNTER_PREFIX + group_id)
        done = self._once(lambda c: c.incr(counter, 1, noreply=False))
        if done is None or int(done) != len(members):
            if done is not None and int(done) > len(members):
                log.warning("chord %s counted %s members of %d", group_id, done, len(members))
            return None
        return self._chord_entries(key, members)

    def _chord_entries(self, key: str, members: list[str]) -> list[bytes]:
        """The finished chord's entries, in the group's order, and its keys deleted."""
        fields = self._record_fields()
        markers = {tid: [item_key(f"{key}.d.{tid}.{n}"), item_key(f"{key}.d.{tid}.None")]
                   for n, tid in enumerate(members)}
        found = self._call(lambda c: c.get_many([k for ks in markers.values() for k in ks]))
        entries: dict[str, bytes] = {}
        for tid, keys in markers.items():
            stored = next((found[k] for k in keys if k in found), None)
            if stored is not None:
                entries[tid] = bytes(stored).split(b"\n", 2)[2]
        missing = [tid for tid in members if tid not in entries]
        records = self._call(lambda c: c.get_many([item_key(task_key(t)) for t in missing])) \
            if missing else {}
        for tid in missing:  # run by a Celery worker: its result record says how it ended
            record = records.get(item_key(task_key(tid)))
            if record is None:
                log.warning("chord member %s has no result; its value in the body is None", tid)
                status, result = "PENDING", None
            else:
                task = fields.task(bytes(record))
                status, result = task.status, task.result
            entries[tid] = fields.dumps([1, tid, status, result])
        self._call(lambda c: c.delete_many(
            [item_key(key), item_key(CHORD_COUNTER_PREFIX + key[len(GROUP_KEY_PREFIX):]),
             *(k for ks in markers.values() for k in ks)], noreply=False))
        return [entries[tid] for tid in members]

    def _once(self, operation: Callable[[PooledClient | HashClient], T]) -> T:
        """`operation`, a write that must not be made twice (add, incr), on connections the
        server has not hung up on; sent again only when nothing was sent."""
        def run(client: PooledClient | HashClient) -> T:
            drop_closed(client)
            return operation(client)

        try:
            return self._call(run, resend=False)
        except MemcacheError as exc:
            raise self._refused(exc) from exc

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()


__all__ = ["MemcachedStore", "exptime", "item_key", "parse_servers"]
