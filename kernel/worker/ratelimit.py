"""Rate limits: ``rate_limit="10/s"`` per task type per worker (a token bucket; a prefork
worker's children share one in the rate-limit store), and
``global_rate_limit="10/s"`` across every worker (a token bucket in the rate-limit store).

A limiter never sleeps: `take` answers "go" (0) or how many seconds until the next try, and the
consumer holds the task aside meanwhile, so other task types keep running.
"""

from __future__ import annotations

import time
from typing import Protocol

from kernel.interfaces.ratelimit import RateLimitStore, refill_and_take

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
        self.tokens, wait = refill_and_take(self.tokens, self.stamp, now, self.rate,
                                            self.capacity)
        self.stamp = now
        return wait


class SharedBucket:
    """A token bucket kept in the rate-limit store, shared by every worker of the task."""

    def __init__(self, store: RateLimitStore, name: str, rate: float) -> None:
        self.store = store
        self.key = f"kernel-rate-{name}"
        self.rate = rate

    def take(self) -> float:
        return self.store.take(self.key, self.rate)
