"""The Redis transport, in kombu's key layout so Celery producers and consumers interoperate.

Layout (one Redis database):

* a queue is a LIST named after it; producers LPUSH ``Envelope.to_json(queue)``, consumers take
  from the right (FIFO). Priorities are kombu's sub-lists: ``q``, ``q\\x06\\x163``,
  ``q\\x06\\x166``, ``q\\x06\\x169`` (option ``priority_steps``, default ``[0, 3, 6, 9]``).
* Priority mapping. On the wire (kombu, Celery) a LOWER number is served first, 0 highest; in
  kernel's API a HIGHER number is delivered first. Kernel priority ``p`` is kombu priority
  ``9 - p``: it picks the sub-list (the largest step <= 9 - p, as kombu does) and is what
  ``properties.priority`` holds on the wire; fetch turns it back, so kernel code always sees
  kernel priorities and a Celery worker always sees kombu ones. With the default steps kernel
  priorities fall into four bands, {7, 8, 9} > {4, 5, 6} > {1, 2, 3} > {0}; set
  ``priority_steps`` to ``list(range(10))`` on every producer and consumer for ten levels.
* Held messages. A fetch moves each message, in one Lua script, into kombu's ``unacked`` hash
  (tag -> ``[envelope, "", routing_key]``, the form a Celery worker restores) and into
  ``kernel.leases``, a ZSET of lease deadlines. Ack is HDEL + ZREM; `extend_lease` is ZADD XX.
  Expired leases are put back at the head of their list by the claim script, which every fetch
  runs (and an idle fetch at least every ``sweep_interval`` seconds), atomically, so each expired
  message is restored exactly once however many consumers sweep. Each claim gets a fresh tag, so
  settling a delivery whose lease already ran out (and which went to someone else) changes nothing.
* Celery's sweeper. kombu's ``unacked_index`` (tag -> delivery time) tells Celery workers when to
  restore a held message: one ``visibility_timeout`` after that score. We write the score as
  *lease deadline - visibility_timeout* (option ``visibility_timeout``, 3600 like Celery's;
  set it to the Celery side's value) and move it with every `extend_lease`, so a Celery worker
  restores a kernel-held message only after our lease has ended, never while the task runs; and
  if only Celery workers are left, they still bring back what a dead kernel worker held. Either
  sweeper takes the ``unacked`` entry atomically before restoring (kombu in MULTI, we in Lua),
  so a message is restored once even when both race. Caveat: kombu compares with its host's
  clock, we with Redis's; a Celery host whose clock runs ahead restores that much early.
* Delivery count travels in the envelope (see `kernel_redis.scripts`); restore and requeue keep
  it, the next claim adds one, `release` takes one off.
* Delayed messages wait in ``kernel.delayed:<queue>`` (ZSET by due time); the claim script moves
  due ones to their list (exactly once), and an idle fetch sleeps no longer than the earliest due.
* Dead letters: ``<queue>.dead``, an ordinary queue; the reason is in
  ``properties.dead_letter_reason``.
* Blocking, with no message ever in flight outside Redis. Messages leave a ready list only inside
  the claim script, which records them as held in the same atomic step, so a consumer killed at
  any moment loses nothing. An idle consumer does not BRPOP the ready lists (a message popped
  that way is lost if the process dies before recording it, and Redis has no multi-key blocking
  move into a held set); it blocks in BRPOP on ``kernel.wake:<queue>``, lists of tokens that our
  publish, requeue and restore push with each message (capped at 64), then claims in Lua (the
  BRPOP and the claim go in one pipeline: one round trip). A lost or stale token costs one empty
  claim, never a message. A claim that leaves messages behind pushes a token for a peer.
  Messages written by Celery producers carry no token: an idle consumer finds them within
  ``sweep_interval``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import redis

from kernel.plugin import ConfigurationError, DecodeError, Envelope, OptionReader, Options, mask_url
from kernel.interfaces.transport import (
    DEAD_LETTER_SUFFIX,
    Binding,
    Delivery,
    Outgoing,
    Subscription,
    Transport,
)
from kernel_redis import broadcast, scripts
from kernel_redis.connection import (
    as_bytes,
    close_quietly,
    open_bounded_client,
    open_client,
    reachable,
    within,
)
from kernel_redis.plugin import TRANSPORT_CAPABILITIES

SEP = broadcast.SEP
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
LEASES = "kernel.leases"
LEASED = "kernel.leased"
SEQUENCE = "kernel.lease.seq"
DELAYED = scripts.DELAYED
MAX_PRIORITY = 9
REASON = "dead_letter_reason"
#: sets of queues whose claim arguments `fetch` keeps (a worker asks for one or a few).
MAX_PLANS = 64
_COUNT = re.compile(rb'^\{"x-kernel-deliveries":(\d+),')


def wire_priority(priority: int) -> int:
    """Kernel priority (higher first) <-> kombu priority (lower first); its own inverse."""
    return MAX_PRIORITY - max(0, min(MAX_PRIORITY, int(priority)))


def _flip_property(properties: dict[str, Any]) -> dict[str, Any]:
    value = properties.get("priority")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PRIORITY:
        return {**properties, "priority": wire_priority(value)}
    return properties


class RedisTransport(Transport):
    """``redis://[:password@]host[:port][/db]`` or ``rediss://`` (TLS).

    Options: ``lease_seconds`` (30) a fetched message stays with its consumer unless extended;
    ``priority_steps`` ([0, 3, 6, 9]); ``sweep_interval`` (1 s) how often an idle fetch looks
    for expired leases and messages other producers wrote; ``visibility_timeout`` (3600) the
    Celery workers' setting on this Redis; ``connection_timeout`` (4 s, the app's
    ``broker_connection_timeout``) the most a publish spends on an unreachable Redis before
    `ConnectionFailed`; plus the connection options of `kernel_redis.connection.open_client`.

    A publish that raised was not delivered, with one exception: Redis ran it but its reply was
    lost, and every retry within ``connection_timeout`` failed to reach it. Retries carry the
    first attempt's token, so a publish retried (by the transport or by the caller with the same
    task id) is never delivered twice.
    """

    capabilities = TRANSPORT_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        self.url = url
        reader = OptionReader(options, "Redis transport")
        self.lease_seconds = reader.number("lease_seconds", 30.0, positive=True)
        self.sweep_interval = reader.number("sweep_interval", 1.0, positive=True)
        self.visibility_timeout = reader.number("visibility_timeout", 3600.0, positive=True)
        steps = options.get("priority_steps", [0, 3, 6, 9])
        if (not isinstance(steps, (list, tuple)) or not steps or len(steps) > 10
                or sorted(set(steps)) != list(steps) or steps[0] != 0
                or not all(isinstance(s, int) and 0 <= s <= MAX_PRIORITY for s in steps)):
            raise ConfigurationError(f"Redis option 'priority_steps' must be increasing integers "
                                     f"0..9 starting at 0, got {steps!r}")
        self.steps: tuple[int, ...] = tuple(steps)
        self._steps_of: dict[int, int] = {}
        self._steps_of = {p: self._step_index(p) for p in range(MAX_PRIORITY + 1)}
        self.connection_timeout = reader.number("connection_timeout", 4.0, positive=True)
        self._client = open_client(url, options)
        # Publishing must give up in time (a caller's delay() waits on it); fetching, which
        # blocks on purpose, keeps the retrying client.
        self._sender = open_bounded_client(url, options, self.connection_timeout)
        self._publish = self._sender.register_script(scripts.PUBLISH)
        self._claim = self._client.register_script(scripts.CLAIM)
        self._plans: dict[tuple[str, ...], tuple[list[str], list[Any], dict[str, str],
                                                 list[str]]] = {}
        self._return = self._client.register_script(scripts.RETURN)
        self._extend = self._client.register_script(scripts.EXTEND)
        self._ack = self._client.register_script(scripts.ACK)
        self._closed = threading.Event()
        #: kombu binding-set members of ``task_queues``' direct bindings not yet written.
        self._unbound: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"<RedisTransport {mask_url(self.url)}>"

    # ------------------------------------------------------------------ bindings

    def declare_bindings(self, bindings: Sequence[Binding]) -> None:
        """Bind ``task_queues``' direct bindings as kombu binds a queue (member ``key``,
        empty pattern, ``queue`` of the set ``_kombu.binding.<exchange>``), so a Celery client
        publishing to that exchange with that routing key lands in kernel's queue. Written by
        the next publish or fetch: declaring needs no Redis. (Celery's clients treat an
        exchange they did not declare as direct, so topic and fanout bindings are kernel's
        own routing, see docs/user-guide/routing.md.)"""
        self._unbound |= {(broadcast.binding_set(b.exchange),
                           f"{b.routing_key}{SEP}{SEP}{b.queue}")
                          for b in bindings if b.exchange_type == "direct"}

    def _bind(self) -> None:
        pending, self._unbound = self._unbound, set()
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key, member in pending:
                    pipe.sadd(key, member)
                pipe.execute()
        except BaseException:
            self._unbound |= pending
            raise

    # ------------------------------------------------------------------ keys

    def _step_index(self, priority: int) -> int:
        found = self._steps_of.get(priority)
        if found is None:
            kombu = wire_priority(priority)
            found = max(i for i, step in enumerate(self.steps) if step <= kombu)
        return found

    def ready_keys(self, queue: str) -> list[str]:
        """The lists of `queue`, highest priority first (kombu's names)."""
        return [queue if step == 0 else f"{queue}{SEP}{step}" for step in self.steps]

    # ------------------------------------------------------------------ publish

    def publish(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            return
        if self._unbound:
            within(self.connection_timeout, self.url, self._bind)
        keys: list[str] = [f"kernel.publish:{os.urandom(16).hex()}"]
        # The token outlives the retries (`within`), so a retried call cannot publish twice.
        args: list[Any] = [60]
        for m in messages:
            raw = m.envelope.to_json(m.queue, properties=_flip_property(
                {"priority": m.envelope.properties.get("priority", m.priority)}))
            step = self._step_index(m.priority)
            if m.not_before is not None and m.not_before > time.time():
                ident = f"{time.time_ns():020d}{uuid.uuid4().hex[:12]}{step}".encode()
                keys.append(DELAYED + m.queue)
                args += [repr(float(m.not_before)), ident + raw]
            else:
                keys.append(self.ready_keys(m.queue)[step])
                args += ["", raw]
        within(self.connection_timeout, self.url, partial(self._run_publish, keys, args))

    def _run_publish(self, keys: list[str], args: list[Any]) -> Any:
        # EVALSHA itself: redis-py's Script wrapper costs a few microseconds a call, and a
        # call is ~200 µs in all. A server that lost its scripts (a restart) gets it again.
        try:
            return self._sender.evalsha(self._publish.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return self._publish(keys=keys, args=args)

    # ------------------------------------------------------------------ consume

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        if limit <= 0 or not queues:
            return []
        deadline = time.monotonic() + max(0.0, timeout)
        keys, fixed, owner, wake_keys = self._claim_plan(tuple(queues))
        args: list[Any] = [limit, *fixed]
        with reachable(self.url):
            if self._unbound:
                self._bind()
            out = self._claim(keys=keys, args=args)
            while True:
                if len(out) > 1:
                    deliveries = self._deliveries(out, owner)
                    if deliveries:
                        return deliveries
                    out = self._claim(keys=keys, args=args)
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._closed.is_set():
                    return []
                wait = min(left, self.sweep_interval)
                if out and out[0]:
                    wait = min(wait, float(out[0]))
                out = self._wait_and_claim(wake_keys, max(wait, 0.01), keys, args)

    def _claim_plan(self, queues: tuple[str, ...]
                    ) -> tuple[list[str], list[Any], dict[str, str], list[str]]:
        """The claim script's keys and arguments (but the limit) for `queues`, which lists of
        them belong to which queue, and the queues' wake-up lists: built once per set of queues
        (a worker asks for the same ones every fetch; with 100 queues building them cost as
        much as the claim's own round trip)."""
        plan = self._plans.get(queues)
        if plan is None:
            owner: dict[str, str] = {}
            keys = [UNACKED, UNACKED_INDEX, LEASES, LEASED, SEQUENCE]
            suffixes: list[str] = []
            for queue in queues:
                ready = self.ready_keys(queue)
                owner.update((key, queue) for key in ready)
                keys += [DELAYED + queue, *ready]
                suffixes.append(',"",' + json.dumps(queue) + "]")
            fixed: list[Any] = [self.lease_seconds, len(self.steps), 100,
                                self.visibility_timeout, *suffixes]
            plan = keys, fixed, owner, [scripts.WAKE + queue for queue in queues]
            if len(self._plans) < MAX_PLANS:
                self._plans[queues] = plan
        return plan

    def _wait_and_claim(self, wake_keys: list[str], wait: float, keys: list[str],
                        args: list[Any]) -> Any:
        """Block for a wake-up token, then claim, in one round trip: Redis runs the claim the
        moment the BRPOP returns (only a token is popped; a claim after a timeout is the idle
        sweep). EVALSHA directly: a pipeline holding a Script object checks it is loaded first,
        a round trip of its own."""
        pipe = self._client.pipeline(transaction=False)
        pipe.brpop(wake_keys, wait)
        pipe.evalsha(self._claim.sha, len(keys), *keys, *args)
        try:
            return pipe.execute()[1]
        except redis.exceptions.NoScriptError:  # the server lost its scripts (a restart)
            return self._claim(keys=keys, args=args)

    def _deliveries(self, out: list[bytes], owner: dict[str, str]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        for i in range(0, len(out), 3):
            tag, key, raw = out[i].decode(), out[i + 1].decode(), out[i + 2]
            queue = owner[key]
            match = _COUNT.match(raw)
            count = int(match.group(1)) if match else 1
            try:
                envelope = Envelope.from_json(raw)
            except DecodeError as exc:
                # Never runnable: straight to the dead-letter queue, with the bytes kept.
                broken = Delivery(tag, queue, Envelope(raw, {}), count)
                self._settle(broken, "dead", self._dead_json(broken, str(exc), raw=True))
                continue
            if count == 1 and envelope.headers.get("redelivered"):
                count = 2  # restored by a Celery worker: delivered before, not counted by us
            envelope.properties = _flip_property(envelope.properties)
            deliveries.append(Delivery(tag, queue, envelope, count))
        return deliveries

    # ------------------------------------------------------------------ settle

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        tags = [str(d.tag) for d in deliveries]
        if not tags:
            return
        with reachable(self.url):
            # Lua's unpack takes a few thousand values at most: ack in slices.
            for start in range(0, len(tags), 1000):
                self._ack(keys=[UNACKED, UNACKED_INDEX, LEASES, LEASED],
                          args=tags[start:start + 1000])

    def _settle(self, delivery: Delivery, mode: str, dead: bytes = b"") -> None:
        with reachable(self.url):
            self._return(keys=[UNACKED, UNACKED_INDEX, LEASES, LEASED,
                               delivery.queue + DEAD_LETTER_SUFFIX],
                         args=[str(delivery.tag), mode, dead])

    def _dead_json(self, delivery: Delivery, reason: str, raw: bool = False) -> bytes:
        envelope = delivery.envelope
        properties = {**envelope.properties, REASON: reason}
        if not raw:
            properties = _flip_property(properties)
        body = replace(envelope, properties=properties).to_json(delivery.queue + DEAD_LETTER_SUFFIX)
        return b'{"x-kernel-deliveries":%d,' % delivery.delivery_count + body[1:]

    def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        if requeue:
            self._settle(delivery, "requeue")
        else:
            self._settle(delivery, "dead", self._dead_json(delivery, reason))

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Give back unstarted messages at the head of their list; their delivery does not count."""
        for delivery in deliveries:
            self._settle(delivery, "release")

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        """Renew leases to `seconds` from now (Redis's clock); a delivery whose lease already ran
        out and went back to its queue is left alone."""
        if deliveries:
            with reachable(self.url):
                self._extend(keys=[LEASES, UNACKED_INDEX],
                             args=[seconds, self.visibility_timeout,
                                   *(str(d.tag) for d in deliveries)])

    # ------------------------------------------------------------------ inspect

    def size(self, queue: str) -> int:
        """Ready and delayed messages of `queue`; held ones are not counted."""
        with reachable(self.url):
            pipe = self._client.pipeline(transaction=False)
            for key in self.ready_keys(queue):
                pipe.llen(key)
            pipe.zcard(DELAYED + queue)
            return sum(int(n) for n in pipe.execute())

    def purge(self, queue: str) -> int:
        """Delete what `size` counts; messages a consumer holds stay with it."""
        keys = [*self.ready_keys(queue), DELAYED + queue]
        with reachable(self.url):
            pipe = self._client.pipeline(transaction=True)
            for key in keys[:-1]:
                pipe.llen(key)
            pipe.zcard(keys[-1])
            pipe.delete(*keys)
            counts = pipe.execute()
        return sum(int(n) for n in counts[:-1])

    def dead_letters(self, queue: str, limit: int = 100) -> list[Delivery]:
        """The oldest messages of ``queue + ".dead"``; ``extra["reason"]`` says why each died."""
        dead = queue + DEAD_LETTER_SUFFIX
        with reachable(self.url):
            raws = self._client.lrange(dead, -limit, -1) if limit > 0 else []
        out = []
        for raw in map(as_bytes, reversed(raws)):
            match = _COUNT.match(raw)
            try:
                envelope = Envelope.from_json(raw)
            except DecodeError:
                envelope = Envelope(raw, {})
            envelope.properties = _flip_property(envelope.properties)
            reason = str(envelope.properties.get(REASON, ""))
            out.append(Delivery(None, dead, envelope, int(match.group(1)) if match else 1,
                                {"reason": reason}))
        return out

    # ------------------------------------------------------------------ broadcast

    def broadcast(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """PUBLISH on ``/<db>.<exchange>/<routing_key>``, as kombu does (see `broadcast`)."""
        with reachable(self.url):
            broadcast.publish(self._client, exchange, routing_key, envelope)

    def subscribe(self, exchange: str, pattern: str = "#") -> Subscription:
        with reachable(self.url):
            return broadcast.subscription(self._client, exchange, pattern)

    def close(self) -> None:
        self._closed.set()
        close_quietly(self._client)
        close_quietly(self._sender)


__all__ = ["RedisTransport", "wire_priority"]
