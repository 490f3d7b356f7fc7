"""The ``memory://`` rate-limit store: token buckets shared by the Apps of one process."""

from __future__ import annotations

import threading
import time

from kernel.interfaces.ratelimit import RateLimitStore, refill_and_take
from kernel.specs import Options
from kernel.std.memory import name_from_url

_memory_buckets: dict[str, dict[str, tuple[float, float]]] = {}
_memory_lock = threading.Lock()


class MemoryRateLimitStore(RateLimitStore):
    """``memory://name``: buckets shared by every App of this process naming the same store."""

    def __init__(self, url: str, options: Options | None = None) -> None:
        with _memory_lock:
            self._buckets = _memory_buckets.setdefault(name_from_url(url), {})

    def take(self, key: str, rate: float, capacity: float = 1.0) -> float:
        with _memory_lock:
            now = time.monotonic()
            tokens, stamp = self._buckets.get(key, (capacity, now))
            tokens, wait = refill_and_take(tokens, stamp, now, rate, capacity)
            self._buckets[key] = (tokens, now)
        return wait
