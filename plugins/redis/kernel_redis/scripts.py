"""The Lua scripts of the Redis transport. Each runs atomically in Redis, so with any number of
consumers a message is claimed, restored or promoted exactly once.

Key roles (see `kernel_redis.transport` for the layout):

* ``unacked``: kombu's hash, tag -> ``[envelope, exchange, routing_key]`` (the held message);
* ``index``: kombu's ``unacked_index`` ZSET, tag -> lease deadline minus Celery's
  ``visibility_timeout``, so a Celery worker's sweeper restores no earlier than our lease ends;
* ``leases``: ZSET tag -> lease deadline (unix time, Redis clock);
* ``leased``: hash tag -> ``"<suffix length>:<ready list key>"``, how to cut the envelope out of
  the ``unacked`` entry and where to put it back;
* ``delayed``: one ZSET per queue, due time -> ``<32-char sortable id><step digit><envelope>``;
* ``wake``: one LIST per queue of wake-up tokens that idle consumers block on (never messages).

The delivery count travels in the envelope as its first key, ``{"x-kernel-deliveries":N,...``:
kombu and `Envelope.from_json` ignore unknown top-level keys, and a fixed prefix lets Lua bump it
without re-encoding JSON (cjson would turn ``[]`` into ``{}``).
"""

from __future__ import annotations

#: Prefix of the wake-up lists: ``kernel.wake:<queue>``.
WAKE = "kernel.wake:"
#: Prefix of the delayed ZSETs: ``kernel.delayed:<queue>``.
DELAYED = "kernel.delayed:"

#: Shared Lua. ``put_back(tag, delta)``: take `tag` out of the held set; if it was held, push its
#: envelope to the head of its ready list with the delivery count moved by `delta`, and wake a
#: consumer. Returns 1 if held. Removing the ``unacked`` entry is the ownership token, as in
#: kombu (whose restore removes it in one MULTI): whoever removes it restores.
_COMMON = """
local P = '{"x-kernel-deliveries":'
local function recount(msg, delta)
  local c = string.match(msg, '^{"x%-kernel%-deliveries":(%d+),')
  if c then
    local n = tonumber(c) + delta
    if n < 0 then n = 0 end
    return P .. n .. ',' .. string.sub(msg, #P + #c + 2), n
  end
  if delta > 0 and string.sub(msg, 1, 1) == '{' and string.sub(msg, 2, 2) ~= '}' then
    return P .. delta .. ',' .. string.sub(msg, 2), delta
  end
  return msg, 0
end
local WAKE_CAP = 64
-- A ready list's wake list: kombu's priority sub-lists end in "\\6\\22<step>".
local function wake(ready, n)
  local key = '@WAKE@' .. string.gsub(ready, '\\6\\22%d+$', '')
  for _ = 1, math.min(n, WAKE_CAP) do redis.call('LPUSH', key, '1') end
  redis.call('LTRIM', key, 0, WAKE_CAP - 1)
end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function take(unacked, index, leases, leased, tag)
  local entry = redis.call('HGET', unacked, tag)
  local info = redis.call('HGET', leased, tag)
  redis.call('HDEL', unacked, tag)
  redis.call('ZREM', index, tag)
  redis.call('ZREM', leases, tag)
  redis.call('HDEL', leased, tag)
  if not entry or not info then return nil end
  local n, key = string.match(info, '^(%d+):(.*)$')
  return string.sub(entry, 2, #entry - tonumber(n)), key
end
local function put_back(unacked, index, leases, leased, tag, delta)
  local msg, key = take(unacked, index, leases, leased, tag)
  if not msg then return 0 end
  msg = recount(msg, delta)
  redis.call('RPUSH', key, msg)
  wake(key, 1)
  return 1
end
""".replace("@WAKE@", WAKE)

#: KEYS[1] = batch token, KEYS[2..] = target keys; ARGV[1] = token TTL, then per target
#: (score or '' for a list, envelope). The token makes a retried call (reply lost, redis-py
#: retried) a no-op, so a batch is never published twice. Each message put on a ready list
#: leaves a wake-up token for an idle consumer.
PUBLISH = _COMMON + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local ready = {}
local delayed = {}
for i = 2, #KEYS do
  local score, value = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if score == '' then
    redis.call('LPUSH', KEYS[i], value)
    ready[KEYS[i]] = (ready[KEYS[i]] or 0) + 1
  else
    redis.call('ZADD', KEYS[i], score, value)
    delayed[KEYS[i]] = true
  end
end
for key, n in pairs(ready) do wake(key, n) end
-- A delayed message may be due before an idle consumer's next look: wake one so it
-- recomputes its wait (its queue's name follows the delayed prefix).
for key in pairs(delayed) do wake(string.sub(key, #'@DELAYED@' + 1), 1) end
return #KEYS - 1
""".replace("@DELAYED@", DELAYED)

#: KEYS: unacked, unacked_index, leases, leased, seq, then per queue its delayed ZSET and its
#: ready lists in priority order. ARGV: limit, lease seconds, steps per queue, sweep batch,
#: visibility timeout, then per queue the ``unacked`` entry suffix (``,"",<rk json>]``).
#: Restores expired leases (all queues), promotes due delayed messages (these queues), then
#: claims up to `limit` in preference order, waking a peer if messages are left. Returns
#: {tag, key, envelope, ...} and, when nothing was claimed, seconds until the earliest delay or
#: lease ends ('' when none).
CLAIM = _COMMON + """
local unacked, index, leases, leased, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local limit, lease, steps = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local visibility = tonumber(ARGV[5])
local now = clock()
for _, tag in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, ARGV[4])) do
  put_back(unacked, index, leases, leased, tag, 0)
end
local first, nqueues = 6, (#KEYS - 5) / (steps + 1)
-- One EXISTS over a queue's delayed set and lists tells which queues to look into: a worker of
-- 100 queues, most of them empty, would otherwise pay ~900 calls a fetch.
local present = {}
for q = 0, nqueues - 1 do
  local base = first + q * (steps + 1)
  if redis.call('EXISTS', unpack(KEYS, base, base + steps)) > 0 then
    present[#present + 1] = q
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[base], '-inf', now, 'LIMIT', 0, 1000)) do
      redis.call('ZREM', KEYS[base], m)
      redis.call('LPUSH', KEYS[base + 1 + tonumber(string.sub(m, 33, 33))], string.sub(m, 34))
    end
  end
end
local out = {}
local function claim(key, msg, suffix)
  msg = recount(msg, 1)
  local tag = 'k' .. redis.call('INCR', seq)
  redis.call('HSET', unacked, tag, '[' .. msg .. suffix)
  redis.call('ZADD', index, now + lease - visibility, tag)
  redis.call('ZADD', leases, now + lease, tag)
  redis.call('HSET', leased, tag, #suffix .. ':' .. key)
  out[#out + 1] = tag
  out[#out + 1] = key
  out[#out + 1] = msg
end
local taken = 0
for _, q in ipairs(present) do
  local base = first + q * (steps + 1)
  for s = 1, steps do
    if taken >= limit then break end
    local got = redis.call('RPOP', KEYS[base + s], limit - taken)
    if got then
      for _, msg in ipairs(got) do claim(KEYS[base + s], msg, ARGV[5 + q + 1]) end
      taken = taken + #got
    end
  end
end
if taken > 0 then
  -- If messages are left, wake an idle peer rather than leave them to its sweep (the token
  -- this claim came with may have been another queue's).
  for _, q in ipairs(present) do
    local base = first + q * (steps + 1)
    if redis.call('EXISTS', unpack(KEYS, base + 1, base + steps)) > 0 then
      for s = 1, steps do
        if redis.call('LLEN', KEYS[base + s]) > 0 then wake(KEYS[base + s], 1) break end
      end
    end
  end
  return out
end
local due = nil
local function earliest(key)
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if head[2] then
    local at = tonumber(head[2])
    if not due or at < due then due = at end
  end
end
earliest(leases)
for q = 0, nqueues - 1 do earliest(KEYS[first + q * (steps + 1)]) end
out[1] = due and tostring(math.max(0, due - now)) or ''
return out
"""

#: KEYS: unacked, unacked_index, leases, leased, dead list. ARGV: tag, mode ('requeue' |
#: 'release' | 'dead'), dead envelope. Settles a held message; nothing happens if `tag` is no
#: longer held (acked, or its lease ran out and it went back to its queue).
RETURN = _COMMON + """
local unacked, index, leases, leased = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tag, mode = ARGV[1], ARGV[2]
if mode == 'dead' then
  local msg = take(unacked, index, leases, leased, tag)
  if not msg then return 0 end
  redis.call('LPUSH', KEYS[5], ARGV[3])
  return 1
end
return put_back(unacked, index, leases, leased, tag, mode == 'release' and -1 or 0)
"""

#: KEYS: unacked, unacked_index, leases, leased. ARGV: tags. Forgets finished messages; one
#: command, where a MULTI pipeline would cost the client six to encode and parse.
ACK = """
redis.call('HDEL', KEYS[1], unpack(ARGV))
redis.call('ZREM', KEYS[2], unpack(ARGV))
redis.call('ZREM', KEYS[3], unpack(ARGV))
redis.call('HDEL', KEYS[4], unpack(ARGV))
return #ARGV
"""

#: KEYS: leases, unacked_index. ARGV: seconds, visibility timeout, tags... Renews leases still
#: held, from the Redis clock, and moves kombu's index entry along (XX: never re-adds an entry
#: a Celery worker already restored).
EXTEND = _COMMON + """
local until_ = clock() + tonumber(ARGV[1])
local n = 0
for i = 3, #ARGV do
  n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', until_, ARGV[i])
  redis.call('ZADD', KEYS[2], 'XX', until_ - tonumber(ARGV[2]), ARGV[i])
end
return n
"""
