"""The Redis rate-limit store: shared token buckets, each `take` one Lua script.

A bucket is a hash ``<prefix>:<key>`` {tokens, stamp}; the script reads the Redis server's own
clock (TIME), so workers on hosts with skewed clocks still share one rate. An idle bucket
expires once it would be full again.
"""

from __future__ import annotations

import math


from kernel.plugin import ConfigurationError, Options, mask_url
from kernel.interfaces.ratelimit import RateLimitStore
from kernel_redis.connection import close_quietly, open_client, reachable

#: KEYS: bucket. ARGV: rate (tokens/s), capacity. 0 when a token was taken, else the wait in
#: microseconds. The same step as `kernel.interfaces.ratelimit.refill_and_take`.
TAKE = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local stamp = tonumber(redis.call('HGET', KEYS[1], 'stamp') or now)
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return math.ceil(wait * 1e6)
"""


class RedisRateLimitStore(RateLimitStore):
    """Any kernel-redis URL; options: the connection options and ``rate_limit_key``
    (``kernel.rate``)."""

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        prefix = options.get("rate_limit_key", "kernel.rate")
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(f"Redis option 'rate_limit_key' must be a non-empty "
                                     f"string, got {prefix!r}")
        self.url = url
        self.prefix = prefix
        self._client = open_client(url, options)
        self._take = self._client.register_script(TAKE)

    def __repr__(self) -> str:
        return f"<RedisRateLimitStore {mask_url(self.url)} {self.prefix}>"

    def take(self, key: str, rate: float, capacity: float = 1.0) -> float:
        if not (rate > 0 and math.isfinite(rate) and capacity >= 1):
            raise ValueError(f"a token bucket needs rate > 0 and capacity >= 1, got rate "
                             f"{rate!r} and capacity {capacity!r}")
        with reachable(self.url):
            micros = int(self._take(keys=[f"{self.prefix}:{key}"], args=[repr(rate),
                                                                         repr(capacity)]))
        return micros / 1e6

    def close(self) -> None:
        close_quietly(self._client)


__all__ = ["RedisRateLimitStore"]
