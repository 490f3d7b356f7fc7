"""``app.control``: commands for workers, by Celery's names (``reference/celery-protocol.md`` §5).

Commands are broadcast on the remote-control exchange (``<control_exchange>.pidbox``); a call
that wants replies first listens on ``reply.<control_exchange>.pidbox`` under a key of its own,
then collects the replies carrying its ticket until the timeout, or until every node it named
answered. Replies that come later, or carry another ticket, are dropped. Celery's workers and
kernel's answer alike, so ``app.control.ping()`` lists both.

Revocation reaches every worker, including those started after the revoke.

Revocations are a log in the result store: ``revoke`` takes the next number from the atomic
counter ``kernel-revocations`` and writes ``kernel-revoked-<n>`` (id, terminate, expiry). Each
worker's revocations step (`kernel.worker.revocations`) polls the counter (one read per
interval), reads the entries it has not seen and keeps the ids until they expire; a worker
that starts later reads the log from the start. A revoked task that has not started never
runs: it is recorded REVOKED. With ``terminate=True`` a running task is stopped too (a signal
in prefork, a cancel in asyncio).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kernel import states
from kernel.errors import ConfigurationError, DecodeError, TaskRevokedError
from kernel.interfaces.results import ResultStore
from kernel.message import Envelope

if TYPE_CHECKING:
    from kernel.app import App

log = logging.getLogger("kernel")
Replies = list[dict[str, Any]]

COUNTER = "kernel-revocations"
ENTRY = "kernel-revoked-{}"
#: how long a revocation is remembered (a task still queued after this long will run).
DEFAULT_EXPIRES = 7 * 86400.0
#: how many of the newest entries a starting worker reads.
READ_BACK = 100_000


def _store(app: App) -> ResultStore:
    store = app.backend.store
    if store is None:
        raise ConfigurationError("revoking needs a result backend (it keeps the revocations); "
                                 "set result_backend")
    return store


def revoke(app: App, task_ids: str | Iterable[str], *, terminate: bool = False,
           expires: float = DEFAULT_EXPIRES) -> None:
    """Revoke tasks on every worker, now and later (see the module docstring)."""
    ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    store = _store(app)
    until = time.time() + expires
    for task_id in ids:
        n = store.incr(COUNTER)
        entry = {"id": task_id, "terminate": terminate, "expires": until}
        store.set([(ENTRY.format(n), json.dumps(entry).encode())], expires)
        meta = app.backend.get_meta(task_id)
        if meta is None or meta.get("status") not in states.READY_STATES:
            # A waiting client learns at once; the worker that meets the message writes it too.
            app.backend.store_result(task_id, states.REVOKED, TaskRevokedError("revoked"))


class Control:
    """``app.control``: commands for workers. Those with ``reply=True`` return the replies,
    one ``{nodename: answer}`` dict per node that answered within `timeout` seconds."""

    def __init__(self, app: App) -> None:
        self.app = app

    def broadcast(self, command: str, arguments: dict[str, Any] | None = None, *,
                  destination: Iterable[str] | None = None, reply: bool = False,
                  timeout: float = 1.0, limit: int | None = None, pattern: str | None = None,
                  matcher: str | None = None,
                  callback: Callable[[dict[str, Any]], None] | None = None) -> Replies:
        """Send `command` to every worker (or those in `destination`, or whose name matches
        `pattern` with matcher ``glob`` or ``pcre``); with `reply`, wait for the answers."""
        namespace = self.app.conf.control_exchange
        nodes = list(destination) if destination is not None else None
        if isinstance(destination, str):
            nodes = [destination]
        request: dict[str, Any] = {"method": command, "arguments": arguments or {},
                                   "destination": nodes, "pattern": pattern,
                                   "matcher": matcher}
        transport = self.app.transport
        if not reply:
            transport.broadcast(f"{namespace}.pidbox", "", self._envelope(request, 0.0))
            return []
        key = str(uuid.uuid4())
        reply_exchange = f"reply.{namespace}.pidbox"
        subscription = transport.subscribe(reply_exchange, key)
        try:
            ticket = str(uuid.uuid4())
            request.update(ticket=ticket, reply_to={"exchange": reply_exchange,
                                                    "routing_key": key})
            transport.broadcast(f"{namespace}.pidbox", "", self._envelope(request, timeout))
            return self._collect(subscription, ticket, timeout, limit or (
                len(nodes) if nodes else None), callback)
        finally:
            subscription.close()

    def _envelope(self, request: dict[str, Any], timeout: float) -> Envelope:
        clock = self.app.events.clock.forward()
        return Envelope(json.dumps(request).encode(),
                        {"clock": clock, "expires": time.time() + timeout if timeout else 0},
                        {"delivery_mode": 1})

    def _collect(self, subscription: Any, ticket: str, timeout: float, limit: int | None,
                 callback: Callable[[dict[str, Any]], None] | None) -> Replies:
        replies: Replies = []
        deadline = time.monotonic() + timeout
        while limit is None or len(replies) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for _, envelope in subscription.get(left):
                if envelope.headers.get("ticket") != ticket:
                    continue  # a reply to an earlier call that came too late
                try:
                    body = json.loads(envelope.body)
                except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                    log.warning("dropped a remote-control reply that is not JSON (%s)",
                                DecodeError(str(exc)))
                    continue
                if not isinstance(body, dict) or len(body) != 1:
                    log.warning("dropped a remote-control reply that is not {node: answer}")
                    continue
                self.app.events.clock.adjust(envelope.headers.get("clock"))
                replies.append(body)
                if callback is not None:
                    callback(body)
        return replies

    def inspect(self, destination: Iterable[str] | None = None, timeout: float = 1.0, *,
                pattern: str | None = None, matcher: str | None = None,
                limit: int | None = None) -> Inspect:
        return Inspect(self, destination, timeout, pattern, matcher, limit)

    def ping(self, destination: Iterable[str] | None = None, timeout: float = 1.0,
             **kwargs: Any) -> Replies:
        return self.broadcast("ping", destination=destination, reply=True, timeout=timeout,
                              **kwargs)

    def revoke(self, task_ids: str | Iterable[str], *, terminate: bool = False,
               signal: str = "SIGTERM", expires: float = DEFAULT_EXPIRES,
               **kwargs: Any) -> Replies:
        """Revoke on every worker: in the revocation log (workers started later read it) and,
        where the broker broadcasts, as a command, which reaches Celery's workers too and
        stops a running task at once with `terminate`."""
        ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        if self.app.conf.result_backend:
            revoke(self.app, ids, terminate=terminate, expires=expires)
        elif not self.app.transport.capabilities.broadcast:
            raise ConfigurationError("revoking needs a result backend or a broker that "
                                     "broadcasts; set result_backend")
        if not self.app.transport.capabilities.broadcast:
            return []
        return self.broadcast("revoke", {"task_id": ids, "terminate": terminate,
                                         "signal": signal}, **kwargs)

    def terminate(self, task_id: str | Iterable[str], signal: str = "SIGTERM",
                  **kwargs: Any) -> Replies:
        return self.revoke(task_id, terminate=True, signal=signal, **kwargs)

    def rate_limit(self, task_name: str, rate_limit: str | int | None,
                   **kwargs: Any) -> Replies:
        return self.broadcast("rate_limit", {"task_name": task_name,
                                             "rate_limit": rate_limit}, **kwargs)

    def time_limit(self, task_name: str, soft: float | None = None, hard: float | None = None,
                   **kwargs: Any) -> Replies:
        return self.broadcast("time_limit", {"task_name": task_name, "soft": soft,
                                             "hard": hard}, **kwargs)

    def enable_events(self, **kwargs: Any) -> Replies:
        return self.broadcast("enable_events", **kwargs)

    def disable_events(self, **kwargs: Any) -> Replies:
        return self.broadcast("disable_events", **kwargs)

    def heartbeat(self, **kwargs: Any) -> Replies:
        return self.broadcast("heartbeat", **kwargs)

    def pool_grow(self, n: int = 1, **kwargs: Any) -> Replies:
        return self.broadcast("pool_grow", {"n": n}, **kwargs)

    def pool_shrink(self, n: int = 1, **kwargs: Any) -> Replies:
        return self.broadcast("pool_shrink", {"n": n}, **kwargs)

    def pool_restart(self, modules: list[str] | None = None, reload: bool = False,
                     **kwargs: Any) -> Replies:
        return self.broadcast("pool_restart", {"modules": modules, "reload": reload},
                              **kwargs)

    def autoscale(self, max: int, min: int, **kwargs: Any) -> Replies:  # noqa: A002 - Celery's
        return self.broadcast("autoscale", {"max": max, "min": min}, **kwargs)

    def shutdown(self, **kwargs: Any) -> Replies:
        return self.broadcast("shutdown", **kwargs)

    def add_consumer(self, queue: str, **kwargs: Any) -> Replies:
        return self.broadcast("add_consumer", {"queue": queue}, **kwargs)

    def cancel_consumer(self, queue: str, **kwargs: Any) -> Replies:
        return self.broadcast("cancel_consumer", {"queue": queue}, **kwargs)


class Inspect:
    """``app.control.inspect(timeout=1).stats()``: each method returns ``{node: answer}`` for
    the nodes that answered, or None when none did (as Celery's)."""

    def __init__(self, control: Control, destination: Iterable[str] | None, timeout: float,
                 pattern: str | None, matcher: str | None, limit: int | None) -> None:
        self.control = control
        self.destination = destination
        self.timeout = timeout
        self.pattern, self.matcher, self.limit = pattern, matcher, limit

    def _request(self, command: str, **arguments: Any) -> dict[str, Any] | None:
        replies = self.control.broadcast(command, arguments, destination=self.destination,
                                         reply=True, timeout=self.timeout, limit=self.limit,
                                         pattern=self.pattern, matcher=self.matcher)
        merged = {node: answer for reply in replies for node, answer in reply.items()}
        return merged or None

    def ping(self) -> dict[str, Any] | None:
        return self._request("ping")

    def stats(self) -> dict[str, Any] | None:
        return self._request("stats")

    def active_queues(self) -> dict[str, Any] | None:
        return self._request("active_queues")

    def registered(self, *taskinfoitems: str) -> dict[str, Any] | None:
        return self._request("registered", taskinfoitems=list(taskinfoitems))

    def active(self, safe: bool | None = None) -> dict[str, Any] | None:
        return self._request("active", safe=safe)

    def reserved(self) -> dict[str, Any] | None:
        return self._request("reserved")

    def scheduled(self) -> dict[str, Any] | None:
        return self._request("scheduled")

    def revoked(self) -> dict[str, Any] | None:
        return self._request("revoked")

    def conf(self, with_defaults: bool = False) -> dict[str, Any] | None:
        return self._request("conf", with_defaults=with_defaults)

    def query_task(self, *ids: str) -> dict[str, Any] | None:
        return self._request("query_task", ids=list(ids))

    def report(self) -> dict[str, Any] | None:
        return self._request("report")

    def clock(self) -> dict[str, Any] | None:
        return self._request("clock")
