"""The rate-limit store contract: token buckets shared by every worker that opens the same URL.

Global rate limits (``global_rate_limit="10/s"``) take their tokens here, so the aggregate rate
holds across processes and hosts, not only per worker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class RateLimitStore(ABC):
    """Shared token buckets, one per key, created on first use (full).

    A store is created per process from a URL and MUST be safe to call from several threads.
    """

    @abstractmethod
    def take(self, key: str, rate: float, capacity: float = 1.0) -> float:
        """Take one token from bucket `key`, which refills at `rate` tokens per second up to
        `capacity` tokens.

        Return 0.0 when a token was taken; otherwise take nothing and return the seconds until
        a token will be there (a positive number). MUST be atomic across every process sharing
        the store: over any window of T seconds the tokens taken from one bucket MUST NOT
        exceed ``capacity + rate * T``. MUST NOT block waiting for a token.
        """

    def close(self) -> None:  # noqa: B027
        """Release connections. Safe to call twice."""


def refill_and_take(tokens: float, stamp: float, now: float, rate: float,
                    capacity: float) -> tuple[float, float]:
    """The token-bucket step every store computes (in Python here, in Lua on Redis): refill
    from `stamp` to `now`, then take one token if there is one. Returns ``(tokens left, wait)``,
    `wait` being 0.0 when a token was taken."""
    tokens = min(capacity, tokens + max(0.0, now - stamp) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate
