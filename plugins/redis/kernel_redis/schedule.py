"""The Redis schedule store: beat's leader lease, its entries and their tick state, each change
one Lua script (Redis runs a script atomically, so no two beat processes interleave).

Keys (prefix: option ``schedule_key``, ``kernel.schedule`` by default; one per beat group):

* ``<prefix>:lock``: a hash {owner, token} that expires after the holder's ttl (PEXPIRE), so a
  dead leader's lease ends by itself and the Redis clock alone decides;
* ``<prefix>:fence``: a counter that never expires; every new holder takes the next value, so
  fencing tokens only grow, across expiries and releases;
* ``<prefix>:last_run``: a hash entry name -> the due time (unix time, as Python writes a
  float, so it reads back exactly) of its last claimed tick;
* ``<prefix>:run_count``: a hash entry name -> how many of its ticks were claimed;
* ``<prefix>:entries``: a hash entry name -> its data (bytes beat owns);
* ``<prefix>:version``: a counter every put and every remove that removed an entry moves.

A claim compares the caller's token with the lease's and the due with ``last_run``, and records
the tick, in one script: a leader that lost the lease (paused past its ttl, say) cannot send a
tick, and two processes never both send one. With persistence on (AOF or RDB), everything but
an expired lease survives a restart of Redis.
"""

from __future__ import annotations

import math

from kernel.plugin import ConfigurationError, Options, mask_url
from kernel.interfaces.schedule import (
    EntryState,
    Leader,
    ScheduleStore,
    check_due,
    check_ttl,
)
from kernel_redis.connection import (
    as_bytes,
    as_text,
    close_quietly,
    open_client,
    reachable,
)

#: KEYS: lock, fence. ARGV: owner, ttl ms. The token, or false when another owner holds it.
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

#: KEYS: lock. {owner, token, ms left}, or false when nobody holds the lease.
LEADER = """
local held = redis.call('HMGET', KEYS[1], 'owner', 'token')
local left = redis.call('PTTL', KEYS[1])
if not held[1] or left <= 0 then return false end
return {held[1], held[2], left}
"""

#: KEYS: lock, last_run, run_count. ARGV: token, entry, due. 1 if claimed, 0 if refused. The
#: due is stored as given: Lua's own rendering of a number keeps only 14 digits.
CLAIM = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
local last = redis.call('HGET', KEYS[2], ARGV[2])
if last and tonumber(ARGV[3]) <= tonumber(last) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
return 1
"""

#: KEYS: entries, version. ARGV: name, data.
PUT_ENTRY = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
"""

#: KEYS: entries, last_run, run_count, version. ARGV: name. 1 if the entry existed.
REMOVE_ENTRY = """
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[4])
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
        self.prefix = prefix
        self.lock_key, self.fence_key = f"{prefix}:lock", f"{prefix}:fence"
        self.last_run_key, self.run_count_key = f"{prefix}:last_run", f"{prefix}:run_count"
        self.entries_key, self.version_key = f"{prefix}:entries", f"{prefix}:version"
        self._client = open_client(url, options)
        self._acquire = self._client.register_script(ACQUIRE)
        self._release = self._client.register_script(RELEASE)
        self._leader = self._client.register_script(LEADER)
        self._claim = self._client.register_script(CLAIM)
        self._put_entry = self._client.register_script(PUT_ENTRY)
        self._remove_entry = self._client.register_script(REMOVE_ENTRY)

    def __repr__(self) -> str:
        return f"<RedisScheduleStore {mask_url(self.url)} {self.prefix}>"

    # ------------------------------------------------------------------ the leader lease

    def acquire(self, owner: str, ttl: float) -> int | None:
        check_ttl(ttl)
        with reachable(self.url):
            token = self._acquire(keys=[self.lock_key, self.fence_key],
                                  args=[owner, max(1, math.ceil(ttl * 1000))])
        return None if token is None else int(token)

    def release(self, owner: str) -> None:
        with reachable(self.url):
            self._release(keys=[self.lock_key], args=[owner])

    def leader(self) -> Leader | None:
        with reachable(self.url):
            held = self._leader(keys=[self.lock_key])
        if held is None:
            return None
        owner, token, left = held
        return Leader(as_text(owner), int(token), int(left) / 1000)

    # ------------------------------------------------------------------ ticks

    def claim(self, entry: str, due: float, token: int) -> bool:
        check_due(due)
        with reachable(self.url):
            return bool(self._claim(keys=[self.lock_key, self.last_run_key, self.run_count_key],
                                    args=[int(token), entry, repr(float(due))]))

    def states(self) -> dict[str, EntryState]:
        with reachable(self.url):
            pipe = self._client.pipeline(transaction=True)  # one snapshot of both hashes
            pipe.hgetall(self.last_run_key)
            pipe.hgetall(self.run_count_key)
            last_runs, counts = pipe.execute()
        return {as_text(name): EntryState(float(when), int(counts.get(name, 0)))
                for name, when in last_runs.items()}

    # ------------------------------------------------------------------ entries

    def entries(self) -> dict[str, bytes]:
        with reachable(self.url):
            stored = self._client.hgetall(self.entries_key)
        return {as_text(name): as_bytes(data) for name, data in stored.items()}

    def put_entry(self, name: str, data: bytes) -> None:
        with reachable(self.url):
            self._put_entry(keys=[self.entries_key, self.version_key], args=[name, bytes(data)])

    def remove_entry(self, name: str) -> bool:
        with reachable(self.url):
            return bool(self._remove_entry(
                keys=[self.entries_key, self.last_run_key, self.run_count_key,
                      self.version_key], args=[name]))

    def version(self) -> int:
        with reachable(self.url):
            return int(self._client.get(self.version_key) or 0)

    def close(self) -> None:
        close_quietly(self._client)


__all__ = ["RedisScheduleStore"]
