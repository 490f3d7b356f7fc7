"""A worker's presence and its mailbox, in the process that supervises (the worker's own).

`Presence` sends worker-online, a worker-heartbeat every ``worker_heartbeat_interval`` seconds
and worker-offline at a clean stop. `Mailbox` listens on the remote-control exchange
(``<control_exchange>.pidbox``), runs the commands meant for this node (`kernel.worker.remote`)
and sends each reply to where the request says (``reply_to``), on Celery's format (§5).

A request that is not JSON, not an object, too big, or names no known command is logged with
its reason and dropped, or answered with an error when it wants a reply; no request stops the
thread or touches a task.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import kernel
from kernel.message import Envelope
from kernel.supervision import start_supervised
from kernel.worker import remote

if TYPE_CHECKING:
    from kernel.worker.worker import Worker

log = logging.getLogger("kernel.worker")

#: a request bigger than this is not read.
MAX_REQUEST = 1024 * 1024


class Presence:
    """worker-online, worker-heartbeat, worker-offline. `counts` gives (active, processed)."""

    def __init__(self, worker: Worker, counts: Callable[[], tuple[int, int]]) -> None:
        self.worker = worker
        self.counts = counts
        self.freq = float(worker.app.conf.worker_heartbeat_interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._send("worker-online")
        self._thread = start_supervised("kernel-heartbeat", self._run, self._stop)

    def beat(self, freq: float | None = None) -> None:
        self._send("worker-heartbeat", freq)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._send("worker-offline")

    def _run(self) -> None:
        while not self._stop.wait(self.freq):
            self.beat()

    def _send(self, kind: str, freq: float | None = None) -> None:
        try:
            active, processed = self.counts()
        except Exception:  # noqa: BLE001 - a heartbeat without counts beats none
            log.exception("cannot count this worker's tasks for its heartbeat")
            active = processed = 0
        self.worker.app.events.send(
            kind, self.worker.nodename, freq=freq or self.freq, active=active,
            processed=processed, loadavg=[round(x, 2) for x in os.getloadavg()],
            sw_ident="py-kernel", sw_ver=kernel.__version__, sw_sys=platform.system())


class Mailbox:
    """The node's remote-control consumer: one thread, subscribed before `start` returns."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        namespace = worker.app.conf.control_exchange
        self.exchange = f"{namespace}.pidbox"
        self.reply_exchange = f"reply.{namespace}.pidbox"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscription = worker.app.transport.subscribe(self.exchange, "#")

    def start(self) -> None:
        self._thread = start_supervised("kernel-mailbox", self._run, self._stop)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._subscription.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for _, envelope in self._subscription.get(0.25):  # how soon a stop is seen
                if self._stop.is_set():
                    return
                self.handle(envelope)

    def handle(self, envelope: Envelope) -> None:
        """One request: checked, run if meant for this node, answered if it asks."""
        worker = self.worker
        events = worker.app.events
        events.clock.adjust(envelope.headers.get("clock"))
        try:
            request = self._decode(envelope)
        except ValueError as exc:
            log.warning("dropped a remote-control message: %s", exc)
            return
        if not remote.matches(worker.nodename, request.get("destination"),
                              request.get("pattern"), request.get("matcher")):
            return
        reply = self._run_command(request["method"], request.get("arguments"))
        ticket, reply_to = request.get("ticket"), request.get("reply_to")
        if ticket and isinstance(reply_to, dict):
            self._reply(str(ticket), reply_to, reply)

    def _decode(self, envelope: Envelope) -> dict[str, Any]:
        if len(envelope.body) > MAX_REQUEST:
            raise ValueError(f"request of {len(envelope.body):,} bytes is over "
                             f"{MAX_REQUEST:,}")
        try:
            request = json.loads(envelope.body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"request is not JSON ({exc}); remote control speaks JSON "
                             f"only") from None
        if not isinstance(request, dict):
            raise ValueError(f"request is a JSON {type(request).__name__}, not an object")
        if not isinstance(request.get("method"), str):
            raise ValueError("request has no 'method'")
        return request

    def _run_command(self, method: str, arguments: Any) -> Any:
        cmd = remote.COMMANDS.get(method)
        if cmd is None:
            log.warning("unknown remote-control command %r; answered with an error", method)
            return {"error": f"unknown command {method!r}: this worker (kernel "
                             f"{kernel.__version__}) knows {', '.join(sorted(remote.COMMANDS))}"}
        try:
            args = remote.check(cmd, arguments)
            if cmd.local and cmd.node_too and self.worker.children is not None:
                # The node's own copy first: what it reports follows what its children apply,
                # and a refusal (an unknown task, a bad rate) is the answer.
                mine = cmd.fn(self.worker, **args)
                if isinstance(mine, dict) and "error" in mine:
                    return mine
            if cmd.local:
                return cmd.merge(self.worker.ask(method, args, standing=cmd.standing))
            return cmd.fn(self.worker, **args)
        except remote.BadArguments as exc:
            log.warning("remote-control command %s refused: %s", method, exc)
            return {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the caller learns; the mailbox goes on
            log.exception("remote-control command %s failed", method)
            return {"error": f"{type(exc).__name__}: {exc}"}

    def _reply(self, ticket: str, reply_to: dict[str, Any], value: Any) -> None:
        exchange, key = reply_to.get("exchange"), reply_to.get("routing_key")
        # Replies go only to a reply exchange: a request cannot make a worker publish elsewhere.
        if exchange != self.reply_exchange or not isinstance(key, str) or not key:
            log.warning("remote-control reply_to %r is not on %s; not answered", reply_to,
                        self.reply_exchange)
            return
        events = self.worker.app.events
        body = json.dumps({self.worker.nodename: value}, default=repr).encode()
        envelope = Envelope(body, {"ticket": ticket, "clock": events.clock.forward()},
                            {"delivery_mode": 1})
        try:
            self.worker.app.transport.broadcast(exchange, key, envelope)
        except Exception as exc:  # noqa: BLE001 - the caller times out; the mailbox goes on
            log.warning("cannot send a remote-control reply (%s)", exc)
