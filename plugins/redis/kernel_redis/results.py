"""The Redis result store, in Celery's layout: the kernel hands it keys such as
``celery-task-meta-<id>`` and encoded records, and it writes them as Celery's Redis backend does
(SET with an expiry and PUBLISH on the key's own name, in one MULTI/EXEC), so Celery clients
waiting on a result are woken by a kernel worker and the other way round.

`wait` is pushed, not polled: SUBSCRIBE to the key's channel first, then GET (a value written
before the subscription is found there), then wait for the published value.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import redis

from kernel.interfaces.results import ResultStore
from kernel.specs import Options
from kernel_redis.connection import as_bytes, open_client, reachable, safe_url
from kernel_redis.plugin import RESULT_STORE_CAPABILITIES


def _millis(expires: float) -> int:
    # Rounded up: a record MUST NOT disappear before its expiry.
    return max(1, math.ceil(expires * 1000))


class RedisResultStore(ResultStore):
    """``redis://[:password@]host[:port][/db]`` or ``rediss://``; the connection options of
    `kernel_redis.connection.open_client`."""

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        self._client = open_client(url, options or {})

    def __repr__(self) -> str:
        return f"<RedisResultStore {safe_url(self.url)}>"

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        if not items:
            return
        with reachable(self.url):
            pipe = self._client.pipeline(transaction=True)
            for key, value in items:
                pipe.set(key, value, px=None if expires is None else _millis(expires))
                pipe.publish(key, value)
            pipe.execute()

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

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        """Subscribe, then read (a value written before the subscription counts), then wait
        for the publish that comes with every write."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with reachable(self.url):
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(key)
                value = self.get(key)
                while value is None or value == unless:
                    left = 1.0 if deadline is None else deadline - time.monotonic()
                    if left <= 0:
                        return None
                    message = pubsub.get_message(timeout=min(left, 1.0))
                    if message is not None and message.get("type") == "message":
                        value = as_bytes(message["data"])
                return value
            finally:
                pubsub.close()

    def close(self) -> None:
        try:
            self._client.close()
        except redis.RedisError:
            pass  # closing a connection to a dead server has nothing left to release


__all__ = ["RedisResultStore"]
