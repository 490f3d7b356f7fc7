"""The rpc result store (``rpc://``): results travel back to the client that sent the task, on
a reply queue of its own, the way Celery's rpc backend sends them.

The wire, as Celery's: the client declares its reply queue before it sends anything and names
it in the ``reply_to`` property of each task message (`reply_address`); the worker publishes
each record of the task to the default exchange with routing key ``reply_to``, property
``correlation_id`` = the task id, the record as body (content type ``application/json``, or the
``content_type`` option for another result serializer), transient. So a Celery client with
``result_backend = "rpc://"`` reads a kernel worker's results and a kernel client a Celery
worker's. kernel adds header ``x-kernel-key`` with the record's key (for records that are not a
task's own, such as a group's).

The broker is the app's ``broker_url`` (an ``amqp://`` URL), unless the URL names one:
``rpc://user:password@host:5672/vhost``. Options: ``content_type``, ``reply_queue_expires``
(600 s), and the connection options of the transport (``heartbeat``, ``connect_timeout``,
``ssl``, ...): on the app's broker, the transport's options (``transport_options``), which
the result backend options override; a broker named in the rpc URL uses the result backend
options alone (it speaks TLS when their ``ssl`` is set).

What it guarantees, and what it cannot do:

* A record reaches the one process that sent the task. `get` and `wait` read what arrived
  here; a record for a task another process sent never arrives (`get` returns None).
* `wait` is woken by the arrival (push), and `get` first makes RabbitMQ hand over every record
  already in the reply queue, so a record whose `set_reply` returned is seen.
* Not persistent: records live in this process's memory until they expire (`expires`) or are
  deleted, and are gone with the process; until they arrive they wait in the reply queue, which
  is not durable (a RabbitMQ restart loses them). The reply queue outlives a lost connection by
  ``reply_queue_expires`` seconds, so records sent while the client reconnects wait for it.
* `set` (records a process writes for itself, such as PENDING when it sends a task) keeps
  them in this process.
* No counters: `incr`, and with it chords, unique tasks, global rate limits and revocation,
  raises `MissingCapability`; they need a shared store (redis://, sqlite://).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import amqp

from kernel.plugin import (
    TASK_KEY_PREFIX,
    ConfigurationError,
    ConnectionFailed,
    MissingCapability,
    OptionReader,
    Options,
    mask_url,
    task_key,
)
from kernel.interfaces.results import ResultStore
from kernel_amqp.link import ERRORS, HoldsLink, KeepAlive, Link, connect
from kernel_amqp.plugin import RPC_CAPABILITIES, SCHEMES
from kernel_amqp.tls import ssl_option
from kernel_amqp.wire import TRANSIENT

log = logging.getLogger(__name__)
T = TypeVar("T")
KEY_HEADER = "x-kernel-key"
#: the longest a `wait` holds the connection while it waits for records.
SLICE = 0.05
RECONNECT_PAUSE = 0.5
DEFAULT_QUEUE_EXPIRES = 600.0
#: expired records are swept from memory once per this many arrivals.
SWEEP_EVERY = 1024


def broker_for(url: str, options: Options) -> str:
    """The amqp:// URL of the broker results travel through."""
    named = url.partition("://")[2]
    if named.strip("/"):
        return "amqp://" + named
    broker = str(options.get("broker_url") or "")
    if broker.partition("://")[0] not in SCHEMES:
        raise ConfigurationError(
            f"rpc:// sends results back through RabbitMQ, but the broker is "
            f"{mask_url(broker) or 'not set'}: use an amqp:// broker_url, or name the broker "
            f"in the result backend URL (rpc://user:password@host:5672/vhost)")
    return broker


class RpcResultStore(HoldsLink, ResultStore):
    """``rpc://``: see the module docstring."""

    capabilities = RPC_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = dict(options or {})
        inherited = options.pop("broker_options", None) or {}
        self.broker = broker_for(url, options)
        if self.broker == options.get("broker_url"):
            # The app's broker: connect as its transport does (ssl, heartbeat, ...), unless
            # the result backend options say otherwise.
            options = {**inherited, **options}
        self.options = options
        ssl_option(options)  # a bad value is an error now, not at the first connect
        self.content_type = str(options.get("content_type") or "application/json")
        self.content_encoding = "utf-8" if self.content_type.endswith("json") else "binary"
        expires = OptionReader(options, "rpc:// result store").number(
            "reply_queue_expires", DEFAULT_QUEUE_EXPIRES, minimum=1)
        self.queue_arguments = {"x-expires": int(expires * 1000)}
        #: this process's reply queue (Celery calls it the oid).
        self.queue = f"kernel.rpc.{uuid.uuid4().hex}"
        #: guards the connection; a `wait` holds it for at most `SLICE` at a time.
        self._lock = threading.RLock()
        #: guards the records only, so reading and writing them never waits for a `wait`.
        self._held = threading.Lock()
        self._link: Link | None = None
        self._channel: Any = None  # the channel consuming the reply queue
        self._keepalive: KeepAlive | None = None
        #: key -> (record, monotonic deadline or None)
        self._records: dict[str, tuple[bytes, float | None]] = {}
        self._arrivals = 0
        self._warned = False

    def __repr__(self) -> str:
        return f"<RpcResultStore {self.queue} via {mask_url(self.broker)}>"

    # ------------------------------------------------------------------ connection

    def _connected(self) -> Link:
        if self._link is not None:
            try:
                self._link.catch_up()
            except ERRORS:
                self._drop()  # RabbitMQ closed it (a restart): reconnect now
        if self._link is None:
            self._link = connect(self.broker, self.options)
            if self._keepalive is None:
                self._keepalive = KeepAlive("kernel-rpc-heartbeat", self._heartbeat,
                                            self._keep_alive)
        return self._link

    def _listening(self) -> Link:
        """The connection, consuming the reply queue (declared again after a reconnect)."""
        link = self._connected()
        if self._channel is None:
            channel = link.channel()
            channel.queue_declare(self.queue, durable=False, exclusive=False,
                                  auto_delete=False, arguments=self.queue_arguments)
            channel.basic_consume(self.queue, callback=self._on_record)
            self._channel = channel
        return link

    def _drop(self) -> None:
        self._channel = None
        if self._link is not None:
            self._link.close()
            self._link = None

    def _retrying(self, doing: str, operation: Callable[[], T]) -> T:
        """Run `operation` under the lock; after a connection error once more on a fresh
        connection (an idle one may have been dropped), then give up."""
        with self._lock:
            try:
                return operation()
            except ERRORS:
                self._drop()
            try:
                return operation()
            except ERRORS as exc:
                self._drop()
                raise ConnectionFailed(f"rpc result store: lost RabbitMQ at "
                                       f"{mask_url(self.broker)} while {doing} ({exc}); the "
                                       f"next call reconnects") from None

    def _lost(self, exc: BaseException) -> None:
        log.warning("rpc result store: lost RabbitMQ (%s); reconnecting on the next call", exc)
        self._drop()

    # ------------------------------------------------------------------ receiving

    def _on_record(self, message: Any) -> None:
        props = message.properties
        headers = props.get("application_headers") or {}
        key = headers.get(KEY_HEADER) or task_key(str(props.get("correlation_id") or ""))
        expiration = props.get("expiration")
        deadline = time.monotonic() + int(expiration) / 1000 if expiration else None
        body = message.body
        with self._held:
            self._records[str(key)] = (body.encode() if isinstance(body, str) else bytes(body),
                                       deadline)
            self._arrivals += 1
            if self._arrivals % SWEEP_EVERY == 0:
                now = time.monotonic()
                for k in [k for k, (_, d) in self._records.items()
                          if d is not None and d <= now]:
                    del self._records[k]
        self._channel.basic_ack(message.delivery_info["delivery_tag"])

    def _fresh(self, key: str) -> bytes | None:
        with self._held:
            return self._fresh_locked(key)

    def _fresh_locked(self, key: str) -> bytes | None:
        found = self._records.get(key)
        if found is None:
            return None
        value, deadline = found
        if deadline is not None and time.monotonic() >= deadline:
            del self._records[key]
            return None
        return value

    # ------------------------------------------------------------------ ResultStore

    def reply_address(self) -> str:
        self._retrying("declaring its reply queue", self._listening)
        return self.queue

    def set_reply(self, properties: Mapping[str, Any], items: Sequence[tuple[str, bytes]],
                  expires: float | None) -> None:
        reply_to = properties.get("reply_to")
        if not reply_to:
            if not self._warned:
                self._warned = True
                log.warning("rpc result store: a task message has no reply_to, so its result "
                            "goes nowhere; the client that sent it must use rpc:// too")
            return
        batch = [(self._message(key, value, expires, properties.get("correlation_id")), "",
                  str(reply_to)) for key, value in items]
        lost = self._retrying("sending a result", lambda: self._connected().publish(batch))
        if lost:
            log.warning("rpc result store: %d record(s) for reply queue %r were not delivered: "
                        "it is gone (its client exited, or was away longer than "
                        "reply_queue_expires)", len(lost), reply_to)

    def _message(self, key: str, value: bytes, expires: float | None,
                 correlation_id: str | None) -> amqp.Message:
        is_task = key.startswith(TASK_KEY_PREFIX)
        props: dict[str, Any] = {
            "content_type": self.content_type, "content_encoding": self.content_encoding,
            "correlation_id": (correlation_id if is_task and correlation_id else
                               key[len(TASK_KEY_PREFIX):] if is_task else key),
            "delivery_mode": TRANSIENT, "application_headers": {KEY_HEADER: key}}
        if expires:
            props["expiration"] = str(max(1, int(expires * 1000)))
        return amqp.Message(body=value, **props)

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=True)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=False)

    def _store(self, items: Sequence[tuple[str, bytes]], expires: float | None,
               replace: bool) -> None:
        deadline = time.monotonic() + expires if expires else None
        with self._held:
            for key, value in items:
                if replace or self._fresh_locked(key) is None:
                    self._records[key] = (bytes(value), deadline)

    def _barrier(self) -> None:
        """Have RabbitMQ hand over every record already in the reply queue: it answers on the
        consuming channel only after it delivered them, so a record whose `set_reply`
        returned is here once this returns."""
        self._listening()
        self._channel.queue_declare(self.queue, passive=True)

    def get(self, key: str) -> bytes | None:
        self._retrying("reading its reply queue", self._barrier)
        return self._fresh(key)

    def wait(self, key: str, timeout: float | None, unless: bytes | None = None) -> bytes | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            value = self._fresh(key)
            if value is not None and value != unless:
                return value
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            # Another thread draining the connection puts what arrives in the records too:
            # look again rather than wait for the connection behind it.
            if not self._lock.acquire(timeout=SLICE):
                continue
            try:
                # Reading what already arrived may bring the record: then no wait.
                link = self._listening()
                if self._fresh(key) in (None, unless):
                    link.drain(SLICE if left is None else min(SLICE, left))
                link.keep_alive()
                continue
            except ERRORS as exc:
                log.warning("rpc result store: lost RabbitMQ while waiting (%s); reconnecting",
                            exc)
                self._drop()
            finally:
                self._lock.release()
            time.sleep(RECONNECT_PAUSE if left is None else min(RECONNECT_PAUSE, left))

    def delete(self, keys: Sequence[str]) -> None:
        """Forget `keys`, also records sent before this call that are still on their way."""
        self._retrying("reading its reply queue", self._barrier)
        with self._held:
            for key in keys:
                self._records.pop(key, None)

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        raise MissingCapability(
            "the rpc:// result store keeps no counters (results only travel back to the "
            "client that sent each task): unique tasks, revocation, global rate limits and "
            "chords need a shared result store such as redis:// or sqlite://")

    def close(self) -> None:
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()  # without the lock: its tick may be waiting for it
        with self._lock:
            if self._channel is not None:
                try:
                    self._channel.queue_delete(self.queue)  # nobody will read it any more
                except ERRORS:
                    pass  # already gone with the connection; it expires by itself
            self._drop()
