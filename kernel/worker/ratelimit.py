"""Rate limits: ``rate_limit="10/s"`` per task type per worker (a token bucket), and
``global_rate_limit="10/s"`` across every worker (time slots counted in the result store).

A limiter never sleeps: `take` answers "go" (0) or how many seconds until the next try, and the
consumer holds the task aside meanwhile, so other task types keep running.
"""

from __future__ import annotations

import math
import re
import time
from typing import Protocol

from kernel.errors import ConfigurationError
from kernel.interfaces.results import ResultStore

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*$")


def parse_rate(text: str | float) -> float:
    """``"10/s"``, ``"100/m"``, ``"1000/h"`` (or a number: per second) → tasks per second."""
    if isinstance(text, (int, float)):
        rate = float(text)
    else:
        match = _RATE.match(text)
        if not match:
            raise ConfigurationError(f"rate limit {text!r} is not N/s, N/m or N/h (e.g. '10/s')")
        rate = float(match.group(1)) / _UNITS[match.group(2)]
    if rate <= 0:
        raise ConfigurationError(f"rate limit {text!r} must be above zero")
    return rate


class Limiter(Protocol):
    def take(self) -> float:
        """0 to go now (a token was taken), else seconds until it is worth asking again."""
        ...


class TokenBucket:
    """At most `rate` per second on average, bursts of `capacity` (1: evenly spaced)."""

    def __init__(self, rate: float, capacity: float = 1.0) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class GlobalSlots:
    """Time is cut into slots of 1/rate seconds; each slot admits one task, whichever worker
    counts 1 on the slot's counter first. Needs an atomic counter, so the aggregate rate holds
    across processes and hosts."""

    def __init__(self, store: ResultStore, name: str, rate: float) -> None:
        if not store.capabilities.atomic_counter:
            raise ConfigurationError("a global rate limit needs a result store with an atomic "
                                     "counter (redis, sqlite on one host)")
        self.store = store
        self.prefix = f"kernel-rate-{name}-"
        self.rate = rate
        self.ttl = max(2.0 / rate, 10.0)

    def take(self) -> float:
        now = time.time()
        slot = math.floor(now * self.rate)
        if self.store.incr(f"{self.prefix}{slot}", 1, self.ttl) == 1:
            return 0.0
        return max((slot + 1) / self.rate - now, 0.0005)
