"""The Redis result store, in Celery's layout: the kernel hands it keys such as
``celery-task-meta-<id>`` and encoded records, and it writes them as Celery's Redis backend does
(SET with an expiry and PUBLISH on the key's own name, in one MULTI/EXEC), so Celery clients
waiting on a result are woken by a kernel worker and the other way round.

`wait` is pushed, not polled: SUBSCRIBE to the key's channel first, then GET (a value written
before the subscription is found there), then wait for the published value.

Chords are counted in Celery's layout (`CHORD_PART`), so Celery workers and kernel workers can
run the members of one chord.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.client import PubSub
from redis.commands.core import Script

from kernel.interfaces.results import ResultStore
from kernel.plugin import OptionReader, Options, mask_url
from kernel_redis.connection import (
    as_bytes,
    close_quietly,
    open_bounded_client,
    open_client,
    reachable,
    within,
)
from kernel_redis.plugin import RESULT_STORE_CAPABILITIES

#: subscriber connections kept for later waits (one per thread that waits at once).
MAX_IDLE_SUBSCRIBERS = 16
#: channels a kept subscriber stays subscribed to after their waits ended, before it leaves
#: them all in one UNSUBSCRIBE: one command per wait saved (a wait is a few round trips), for
#: messages on channels nobody waits on any more, which `_next` skips.
STALE_SUBSCRIPTIONS = 64

#: KEYS: records. ARGV: expiry in ms (``0``: none), then one value per key. Stores each record
#: and publishes it on its own name (Celery's SETEX + PUBLISH), atomically, in one command: a
#: MULTI pipeline costs the client an encode and a parse per command.
SET = """
local ms = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if ms > 0 then redis.call('SET', key, ARGV[i + 1], 'PX', ms)
  else redis.call('SET', key, ARGV[i + 1]) end
  redis.call('PUBLISH', key, ARGV[i + 1])
end
return #KEYS
"""

#: As SET, for keys that hold nothing (``ResultStore.add``); nothing is published.
ADD = """
local ms = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if ms > 0 then redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ms)
  else redis.call('SET', key, ARGV[i + 1], 'NX') end
end
return #KEYS
"""

#: One chord member finished, as Celery 5.7's Redis backend counts it. KEYS: ``.j`` (ZSET of
#: entries scored by group index), ``.t`` (extra count), ``.s`` (size, set by the client), ``.d``
#: (SET of ``task_id:index`` seen: a redelivery counts once), ``.c`` (claim: set once the body
#: was taken). ARGV: score (``+inf`` without an index), ``task_id:index``, entry, expiry in ms
#: (``0``: none). Returns every entry to the one call that completes the chord, else nil.
CHORD_PART = """
if redis.call('SADD', KEYS[4], ARGV[2]) == 0 then return false end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= '0' then
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
end
local size = redis.call('GET', KEYS[3])
if not size then return false end
local total = tonumber(size) + tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('ZCARD', KEYS[1]) < total or redis.call('EXISTS', KEYS[5]) == 1 then
  return false
end
local entries = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('SET', KEYS[5], 'done', 'EX', 300)
return entries
"""


def _millis(expires: float) -> int:
    # Rounded up: a record MUST NOT disappear before its expiry.
    return max(1, math.ceil(expires * 1000))


class RedisResultStore(ResultStore):
    """``redis://[:password@]host[:port][/db]`` or ``rediss://``; ``connection_timeout`` (4 s,
    the app's ``broker_connection_timeout``) the most storing a record spends on an unreachable
    Redis, and the connection options of `kernel_redis.connection.open_client`."""

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        options = options or {}
        self.connection_timeout = OptionReader(options, "Redis result store").number(
            "connection_timeout", 4.0, positive=True)
        self._client = open_client(url, options)
        # Storing gives up in time (a send writes its PENDING record first; a worker retries
        # on its own); a SET written twice is written once.
        self._writer = open_bounded_client(url, options, self.connection_timeout)
        self._lock = threading.Lock()
        self._idle: list[PubSub] = []
        self._chord_part = self._client.register_script(CHORD_PART)
        self._set = self._writer.register_script(SET)
        self._add = self._writer.register_script(ADD)

    def __repr__(self) -> str:
        return f"<RedisResultStore {mask_url(self.url)}>"

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(self._set, items, expires)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(self._add, items, expires)

    def _store(self, script: Script, items: Sequence[tuple[str, bytes]],
               expires: float | None) -> None:
        if not items:
            return
        keys = [key for key, _ in items]
        args: list[int | bytes] = [0 if expires is None else _millis(expires),
                                   *(value for _, value in items)]
        within(self.connection_timeout, self.url, lambda: script(keys, args))

    def get(self, key: str) -> bytes | None:
        with reachable(self.url):
            value = self._client.get(key)
        return None if value is None else as_bytes(value)

    def delete(self, keys: Sequence[str]) -> None:
        if keys:
            with reachable(self.url):
                self._client.delete(*keys)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        with reachable(self.url):
            pipe = self._client.pipeline(transaction=True)
            pipe.incrby(key, amount)
            if expires is not None:
                pipe.pexpire(key, _millis(expires))
            return int(pipe.execute()[0])

    def chord_part(self, key: str, index: int | None, task_id: str, entry: bytes,
                   expires: float | None) -> list[bytes] | None:
        keys = [key + suffix for suffix in (".j", ".t", ".s", ".d", ".c")]
        score = "+inf" if index is None else str(index)
        with reachable(self.url):
            found = self._chord_part(keys, [score, f"{task_id}:{index}", entry,
                                            0 if expires is None else _millis(expires)])
        return None if found is None else [as_bytes(e) for e in found]

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        """Subscribe, then read (a value written before the subscription counts), then wait
        for the publish that comes with every write. Subscriber connections are kept for the
        next wait: opening one costs a connection handshake, several round trips."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with reachable(self.url):
            pubsub = self._subscriber()
            healthy = False
            try:
                pubsub.subscribe(key)
                # The confirmation comes before anything published on `key` afterwards.
                if self._next(pubsub, key, "subscribe", deadline) is None:
                    return None
                value = self.get(key)
                while value is None or value == unless:
                    message = self._next(pubsub, key, "message", deadline)
                    if message is None:
                        value = None
                        break
                    value = as_bytes(message["data"])
                healthy = True
                return value
            finally:
                self._give_back(pubsub, key, healthy)

    def _subscriber(self) -> PubSub:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        pubsub: PubSub = self._client.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
        return pubsub

    def _give_back(self, pubsub: PubSub, key: str, reusable: bool) -> None:
        if reusable:
            try:
                if len(pubsub.channels) > STALE_SUBSCRIPTIONS:
                    pubsub.unsubscribe()  # type: ignore[no-untyped-call]  # all; confirmed later, skipped by `_next`
                with self._lock:
                    if len(self._idle) < MAX_IDLE_SUBSCRIBERS:
                        self._idle.append(pubsub)
                        return
            except redis.RedisError:
                pass
        close_quietly(pubsub)

    @staticmethod
    def _next(pubsub: PubSub, key: str, kind: str,
              deadline: float | None) -> dict[str, Any] | None:
        """The next message of `kind` on channel `key`, or None at the deadline. Others (left
        from this connection's earlier waits) are skipped."""
        wanted = key.encode()
        while True:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None
            message = pubsub.get_message(timeout=min(left, 1.0))
            if message is not None and message["type"] == kind and as_bytes(
                    message["channel"]) == wanted:
                return message  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for pubsub in idle:
            self._give_back(pubsub, "", False)
        close_quietly(self._client)
        close_quietly(self._writer)


__all__ = ["RedisResultStore"]
