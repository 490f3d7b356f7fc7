"""Broadcast over Redis pub/sub, on kombu's channel names so Celery and Flower interoperate.

A message to exchange E with routing key K is PUBLISHed (the kombu envelope JSON) on
``/<db>.E/K``, or ``/<db>.E`` when K is empty; a subscriber PSUBSCRIBEs the glob form of its
topic pattern (``#`` → ``*``). The ``/<db>.`` prefix exists because pub/sub ignores Redis DBs.
Pub/sub is at-most-once: what is published while a subscriber is disconnected is lost, but the
subscription reconnects and subscribes again by itself.

A direct exchange (remote-control replies, ``reply.celery.pidbox``) is kombu's list routing
instead, which Celery's clients wait on: a subscriber to key K adds
``K\x06\x16\x06\x16K.<exchange>`` to the set ``_kombu.binding.<exchange>`` and pops the list
``K.<exchange>``; a message for K is LPUSHed onto every list the set binds to K.
"""

from __future__ import annotations

import time

import redis
from redis.client import PubSub

from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError, Envelope
from kernel.interfaces.transport import Subscription, exchange_type, topic_matches
from kernel_redis.connection import as_text, close_quietly

#: kombu's separator inside a binding set's members (routing key, pattern, queue).
SEP = "\x06\x16"
#: how long a direct subscription's list outlives its last pop (a client gone for good).
DIRECT_TTL = 3600

#: how long a subscription waits between attempts to reach a Redis that went away.
RECONNECT_PAUSE = 0.5


def channel_prefix(client: redis.Redis, exchange: str) -> str:
    db = client.connection_pool.connection_kwargs.get("db", 0)
    return f"/{db}.{exchange}"


def binding_set(exchange: str) -> str:
    return f"_kombu.binding.{exchange}"


def publish(client: redis.Redis, exchange: str, routing_key: str, envelope: Envelope) -> None:
    if exchange_type(exchange) == "direct":
        data = envelope.to_json(routing_key, exchange)
        queues = []
        for member in client.smembers(binding_set(exchange)):
            key, _, queue = (as_text(member).split(SEP, 2) + ["", ""])[:3]
            if key == routing_key and queue:
                queues.append(queue)
        if queues:
            with client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    pipe.lpush(queue, data)
                pipe.execute()
        return
    prefix = channel_prefix(client, exchange)
    channel = f"{prefix}/{routing_key}" if routing_key else prefix
    client.publish(channel, envelope.to_json(routing_key, exchange))


class DirectSubscription(Subscription):
    """Key `routing_key` of a direct exchange: a list of its own, bound as kombu binds."""

    def __init__(self, client: redis.Redis, exchange: str, routing_key: str) -> None:
        if any(word in ("*", "#") for word in routing_key.split(".")):
            raise ConfigurationError(f"exchange {exchange!r} is a direct exchange: it routes "
                                     f"exact routing keys only, so subscribe with one, not "
                                     f"the pattern {routing_key!r}")
        self._client = client
        self._set = binding_set(exchange)
        self._queue = f"{routing_key}.{exchange}"
        self._member = f"{routing_key}{SEP}{SEP}{self._queue}"
        self._key = routing_key
        client.sadd(self._set, self._member)
        self._closed = False

    def get(self, timeout: float) -> list[tuple[str, Envelope]]:
        got: list[tuple[str, Envelope]] = []
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._closed and not got:
            left = deadline - time.monotonic()
            try:
                # BRPOP blocks at least its timeout's resolution; then take what else waits.
                popped = self._client.brpop([self._queue], timeout=max(0.01, left))
                raws = []
                if popped:
                    raws = [popped[1], *(self._client.rpop(self._queue, 100) or [])]
                    self._client.expire(self._queue, DIRECT_TTL)
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(min(RECONNECT_PAUSE, max(0.0, deadline - time.monotonic())))
                raws = []
            for raw in raws:
                try:
                    got.append((self._key, Envelope.from_json(raw)))
                except DecodeError:
                    pass  # not a kombu envelope: nothing a subscriber could act on
            if time.monotonic() >= deadline:
                break
        return got

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    pipe.srem(self._set, self._member)
                    pipe.delete(self._queue)
                    pipe.execute()
            except redis.RedisError:
                pass  # the list expires by itself


def subscription(client: redis.Redis, exchange: str, pattern: str) -> Subscription:
    if exchange_type(exchange) == "direct":
        return DirectSubscription(client, exchange, pattern)
    return RedisSubscription(client, exchange, pattern)


class RedisSubscription(Subscription):
    def __init__(self, client: redis.Redis, exchange: str, pattern: str) -> None:
        prefix = channel_prefix(client, exchange)
        self._prefix_len = len(prefix) + 1
        self._pattern = pattern
        # "#" also matches the empty routing key, published without the "/<key>" part.
        globs = [f"{prefix}/{pattern.replace('#', '*')}"] + ([prefix] if pattern == "#" else [])
        self._pubsub: PubSub = client.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
        self._pubsub.psubscribe(*globs)
        # Wait for the confirmation, so what is broadcast after subscribe returns is seen.
        self._confirmed = 0
        deadline = time.monotonic() + 5.0
        while self._confirmed < len(globs) and time.monotonic() < deadline:
            self._read(0.1, [])
        if self._confirmed < len(globs):
            raise ConnectionFailed(f"Redis did not confirm the subscription to {globs} within "
                                   f"5 s; check the server is up and not overloaded")
        self._closed = False

    def _read(self, timeout: float, into: list[tuple[str, Envelope]]) -> None:
        message = self._pubsub.get_message(timeout=timeout)
        while message is not None:
            if message["type"] == "psubscribe":
                self._confirmed += 1
            elif message["type"] == "pmessage":
                key = as_text(message["channel"])[self._prefix_len:]
                # Redis globs are looser than topic patterns ("*" spans dots): check again.
                if topic_matches(self._pattern, key):
                    try:
                        into.append((key, Envelope.from_json(message["data"])))
                    except DecodeError:
                        pass  # not a kombu envelope: nothing a subscriber could act on
            message = self._pubsub.get_message(timeout=0)

    def get(self, timeout: float) -> list[tuple[str, Envelope]]:
        got: list[tuple[str, Envelope]] = []
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._closed:
            try:
                self._read(max(0.0, deadline - time.monotonic()), got)
            except (redis.ConnectionError, redis.TimeoutError):
                # redis-py subscribes again on the next read once the server answers.
                time.sleep(min(RECONNECT_PAUSE, max(0.0, deadline - time.monotonic())))
            if got or time.monotonic() >= deadline:
                break
        return got

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            close_quietly(self._pubsub)
