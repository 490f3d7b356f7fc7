"""The Redis schedule store: beat's leader lock and last-run state, each change one Lua script.

Keys (prefix: option ``schedule_key``, ``kernel.schedule`` by default; one per beat group):

* ``<prefix>:lock``: a hash {owner, token} that expires after the holder's ttl (PEXPIRE), so a
  dead leader's lock ends by itself and the Redis clock alone decides;
* ``<prefix>:fence``: a counter that never expires; every new holder takes the next value, so
  fencing tokens only grow, across expiries and releases;
* ``<prefix>:state``: a hash entry name -> last run (unix time). `save` merges into it, and only
  while the caller's token is the current lock's: a leader that lost the lock (paused past its
  ttl, say) cannot overwrite what its successor wrote.
"""

from __future__ import annotations

import math


from kernel.errors import ConfigurationError
from kernel.interfaces.schedule import ScheduleStore
from kernel.specs import Options
from kernel_redis.connection import as_text, close_quietly, open_client, reachable, safe_url

#: KEYS: lock, fence. ARGV: owner, ttl ms. The token, or false when another owner holds the lock.
ACQUIRE = """
local holder = redis.call('HGET', KEYS[1], 'owner')
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('HGET', KEYS[1], 'token'))
end
if holder then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', token)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return token
"""

#: KEYS: lock. ARGV: owner.
RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: KEYS: lock, state. ARGV: token, then name, last run pairs. 1 if stored, 0 if refused.
SAVE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
if #ARGV > 1 then redis.call('HSET', KEYS[2], unpack(ARGV, 2)) end
return 1
"""


class RedisScheduleStore(ScheduleStore):
    """Any kernel-redis URL (``redis://``, ``rediss://``, ``redis+sentinel://``); options: the
    connection options and ``schedule_key``."""

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        prefix = options.get("schedule_key", "kernel.schedule")
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(f"Redis option 'schedule_key' must be a non-empty string, "
                                     f"got {prefix!r}")
        self.url = url
        self.lock_key, self.fence_key, self.state_key = (
            f"{prefix}:lock", f"{prefix}:fence", f"{prefix}:state")
        self._client = open_client(url, options)
        self._acquire = self._client.register_script(ACQUIRE)
        self._release = self._client.register_script(RELEASE)
        self._save = self._client.register_script(SAVE)

    def __repr__(self) -> str:
        return f"<RedisScheduleStore {safe_url(self.url)} {self.lock_key}>"

    def acquire(self, owner: str, ttl: float) -> int | None:
        if not ttl > 0:
            raise ValueError(f"the lock ttl must be a positive number of seconds, got {ttl!r}")
        with reachable(self.url):
            token = self._acquire(keys=[self.lock_key, self.fence_key],
                                  args=[owner, max(1, math.ceil(ttl * 1000))])
        return None if token is None else int(token)

    def release(self, owner: str) -> None:
        with reachable(self.url):
            self._release(keys=[self.lock_key], args=[owner])

    def load(self) -> dict[str, float]:
        with reachable(self.url):
            stored = self._client.hgetall(self.state_key)
        return {as_text(name): float(value) for name, value in stored.items()}

    def save(self, last_run: dict[str, float], token: int) -> bool:
        args: list[str | int] = [int(token)]
        for name, when in last_run.items():
            args += [name, repr(float(when))]
        with reachable(self.url):
            return bool(self._save(keys=[self.lock_key, self.state_key], args=args))

    def close(self) -> None:
        close_quietly(self._client)


__all__ = ["RedisScheduleStore"]
