"""The consume loop: fetch within the prefetch bound, hand jobs to the pool, settle messages.

Threads: the fetcher (fetch → reserve → dispatch), the acker (batches acks), the leaser (renews
leases of every held message while its task waits or runs). Messages are acked after the task
ran (at-least-once) unless the task says ``acks_late=False``.

A prefetched message starts only while it is surely still this worker's: where the transport
has leases, the worker knows until when each lease surely runs (from the fetch, then each renewal
that returned in time), and a message whose lease may have lapsed while it waited here (the
worker was paused, or cut off from the broker past the lease) has gone, or will go, to another
consumer; the transport may also know (`Transport.holds`: a connection that dropped). Such a
message is given back, not run: running it would run the task twice.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernel import states
from kernel.config import first_set
from kernel.errors import (BrokerUnreachable, MessageError, TaskRevokedError, TimeLimitExceeded,
                           WorkerLostError)
from kernel.events.metrics import BROKER_ERROR, DEAD_LETTERED
from kernel.interfaces.pool import Job, Outcome, OutcomeKind, Pool, PoolCapabilities
from kernel.interfaces.transport import Delivery, Outgoing, Transport, clamp_priority
from kernel.message import Request
from kernel.parsing import parse_rate
from kernel.supervision import FATAL, start_supervised
from kernel.options import TaskOptions
from kernel.worker.connection import Outage, Retrying
from kernel.worker.execute import ACK, REJECT, REQUEUE, Executor, Payload, Verdict
from kernel.worker.ratelimit import Limiter, SharedBucket, TokenBucket

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.task import Task

log = logging.getLogger("kernel.worker")

#: how many rate-limited tasks may wait aside without counting against the prefetch.
THROTTLED_FREE = 1000
#: per pool slot, the most messages an adaptive prefetch may hold (for very short tasks).
PREFETCH_CEILING = 32
#: the same for a pool of green slots: one running, one waiting (they share one CPU).
GREEN_CEILING = 2


def prefetch_bounds(concurrency: int, prefetch: int, budget: float,
                    capabilities: PoolCapabilities) -> tuple[int, int]:
    """(floor, ceiling) of the messages a consumer of `concurrency` slots holds, `prefetch`
    being concurrency x multiplier: it holds the floor, and up to the ceiling while the
    prefetch budget says tasks are short. A pool of green slots holds one message a slot,
    and at most `GREEN_CEILING` a slot."""
    if capabilities.green:
        floor, per_slot = concurrency, GREEN_CEILING
    else:
        floor, per_slot = max(prefetch, concurrency), PREFETCH_CEILING
    return floor, max(floor, concurrency * per_slot) if budget > 0 else floor
#: acks wait this long (seconds) for company unless ACK_BATCH are pending: finished tasks whose
#: ack is delayed this long run again only if the worker dies within that window.
ACK_LINGER = 0.002
ACK_BATCH = 64
#: the states after which a redelivered message is not run again (not REJECTED: a dead
#: letter may be sent back to be run).
ENDED = frozenset({states.SUCCESS, states.FAILURE, states.REVOKED})
#: seconds one fetch may take beyond the `fetch_timeout` it waits for messages (the broker
#: client's own retries) before the worker counts as stuck (`Consumer.alive`).
STUCK_AFTER = 120.0


@dataclass
class Held:
    delivery: Delivery
    request: Request
    job: Job
    acks_late: bool
    reject_on_worker_lost: bool
    #: when the job went to the pool (monotonic), to learn how long tasks take.
    started: float = 0.0
    #: until when (monotonic) the message is surely leased to this worker: its lease began no
    #: earlier than the fetch that brought it, and each renewal that returned before this
    #: time moved it on; once past, it stays past (the message may be another's by then).
    leased_until: float = math.inf
    #: this consumer may settle the message (not so for one `adopt`ed from a process whose
    #: broker connection owned it: the broker gives it back by itself).
    here: bool = True


@dataclass
class Counters:
    processed: int = 0
    failed: int = 0
    rejected: int = 0
    requeued: int = 0
    by_task: dict[str, int] = field(default_factory=dict)


class Consumer:
    #: how long one fetch blocks; bounds how quickly a shutdown stops fetching.
    fetch_timeout = 1.0

    def __init__(self, app: App, transport: Transport, pool: Pool, executor: Executor, *,
                 queues: list[str], concurrency: int, prefetch: int, lease_seconds: float,
                 shutdown_timeout: float, processes: int = 1, worker_key: str = "") -> None:
        self.app = app
        self.transport = transport
        self.pool = pool
        #: ends here, through the middleware's after-hooks, the messages that end unrun.
        self.executor = executor
        self.queues = queues
        self.budget = app.conf.worker_prefetch_budget
        self._size(concurrency, prefetch)
        self.prefetch = self.floor
        self._mean_run: float | None = None
        self.lease_seconds = lease_seconds
        self._leases = transport.capabilities.leases
        self.shutdown_timeout = shutdown_timeout
        #: consumer processes of one worker (prefork children) keep to a per-worker rate
        #: limit together, in a bucket of the rate-limit store under the worker's key (each to
        #: its share of it where there is no store).
        self.processes = processes
        self.worker_key = worker_key
        self.counters = Counters()
        self._reserved: deque[Held] = deque()
        #: tasks a rate limit holds aside, per task name, and when each queue may go next.
        self._throttled: dict[str, deque[Held]] = {}
        self._due: dict[str, float] = {}
        self._limiters: dict[str, list[Limiter]] = {}
        self._running: dict[str, Held] = {}
        self._acks: list[Delivery] = []
        # One lock, one condition per kind of waiter, so a finished task wakes only the
        # thread that has something to do (waking every thread per task costs more than it).
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # shutdown waits on running tasks
        self._room = threading.Condition(self._lock)  # the fetcher waits for prefetch room
        self._ackable = threading.Condition(self._lock)  # the acker waits for acks
        self._timer = threading.Condition(self._lock)  # the throttle loop waits for its time
        #: the last fetch got less than it asked for: the queues are short, no need to batch.
        self._drained = True
        self._stopping = threading.Event()
        self._cold = threading.Event()
        self._begun = threading.Event()
        self._warned: set[str] = set()
        self._stopped = False
        self._settling = 0
        #: what the fetcher does and since when (monotonic): waiting, fetching, reserving.
        self._fetch_state = ("waiting", time.monotonic())
        #: fetches that returned nothing: a caller that saw `idle` and then one more of these
        #: knows nothing was between a fetch and the consumer's books.
        self.empty_fetches = 0
        #: checks run before a task starts; one returning an exception skips the task, which
        #: is recorded REVOKED with it (revocations plug in here).
        self.filters: list[Callable[[Request], Exception | None]] = []
        self._threads: list[threading.Thread] = []
        self._keys = itertools.count()
        #: told every message this consumer holds after each fetch (a prefork child tells its
        #: parent, which gives them back if the child dies: `ChildLink.holding`).
        self.holding: Callable[[list[Delivery]], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        targets = [self._fetch_loop, self._ack_loop, self._throttle_loop]
        if self.transport.capabilities.leases:
            targets.append(self._lease_loop)
        for target in targets:
            self._threads.append(start_supervised(f"kernel-{target.__name__[1:]}", target,
                                                  self._stopping))

    def alive(self, now: float | None = None) -> bool:
        """Every thread runs, and the fetcher is not stuck: it waits for room (tasks run), or
        its last call into the broker began less than `fetch_timeout` + `STUCK_AFTER` seconds
        ago."""
        if not all(thread.is_alive() for thread in self._threads):
            return False
        state, since = self._fetch_state
        limit = self.fetch_timeout + STUCK_AFTER
        return state != "fetching" or (now or time.monotonic()) - since < limit

    @property
    def held(self) -> int:
        # Tasks held aside by a rate limit do not count up to a point, so one throttled
        # task type cannot fill the prefetch and starve the others.
        throttled = sum(len(q) for q in self._throttled.values())
        return len(self._reserved) + len(self._running) + max(0, throttled - THROTTLED_FREE)

    @property
    def idle(self) -> bool:
        """Nothing held, running or being settled (whatever settling sends is sent)."""
        with self._lock:
            return self.held == 0 and self._settling == 0

    def _wake_all(self) -> None:
        with self._lock:
            for cond in (self._changed, self._room, self._ackable, self._timer):
                cond.notify_all()

    def _fetch_may_go(self) -> bool:
        """Under the lock: there is room for a batch, the pool is about to run dry, or the
        queues are short anyway. Fetching in batches spares a busy worker a broker call per
        task."""
        room = self.prefetch - self.held
        batch = max(1, self.prefetch // 2)
        return room > 0 and (room >= batch or not self._reserved or self._drained)

    def quiesce(self) -> None:
        """Stop fetching and starting tasks now, without waiting (the first step of a
        shutdown: steps that require the consumer stop next, while it still exists)."""
        self._stopping.set()
        self._wake_all()

    def go_cold(self) -> None:
        """Stop waiting for running tasks (the second signal)."""
        self._cold.set()
        self._wake_all()

    def stop(self, warm: bool = True) -> None:
        """Stop fetching, give unstarted messages back, let running tasks finish (warm, up to
        the shutdown timeout) or stop them now (cold, or after `go_cold`); their messages go
        back to the broker."""
        if self._stopped:
            return
        self._stopped = True
        self.executor.stop()
        if not warm:
            self._cold.set()
        self._give_back_unstarted()
        deadline = time.monotonic() + self.shutdown_timeout
        with self._changed:
            while self._running and not self._cold.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if self._running:
                    log.info("waiting for %d running task(s) to finish", len(self._running))
                self._changed.wait(min(left, 1.0))
        self.pool.stop(wait=False)  # what still runs is reported LOST and requeued
        with self._changed:
            # Outcomes may arrive from the pool's threads after stop returns: settle them all
            # before the connection closes.
            deadline = time.monotonic() + 10
            while (self._running or self._settling) and time.monotonic() < deadline:
                self._changed.wait(0.1)
            self._changed.notify_all()
        for thread in self._threads[1:]:
            thread.join(timeout=5)
        self._flush_acks()

    def surrender(self) -> None:
        """This process is about to be stopped with the task it runs (past its hard limit, or
        terminated: a prefork child): stop fetching and give back every message waiting here,
        so that none waits for its lease to run out."""
        self._give_back_unstarted()
        self._flush_acks()

    def _give_back_unstarted(self) -> None:
        self._stopping.set()
        self._wake_all()
        # The fetcher may be inside a fetch: once it has returned, nothing new arrives.
        self._threads[0].join(timeout=max(self.fetch_timeout * 5, 5))
        queued = {job.id for job in self.pool.withdraw()}
        with self._changed:
            unstarted = [h.delivery for h in self._all_waiting()]
            unstarted += [h.delivery for key in queued if (h := self._running.pop(key, None))]
            self._reserved.clear()
            self._throttled.clear()
        if unstarted:
            # First, or a prefork parent gives them back again when it kills this process:
            # by then another consumer may hold them, under the same tag and count.
            self._tell_holding()
            self._safely(self.transport.release, unstarted)
            log.info("gave %d prefetched task(s) back to the broker", len(unstarted))

    def _tell_holding(self) -> None:
        """Tell `holding` (a prefork parent) every message this consumer holds now."""
        if self.holding is not None:
            with self._lock:
                held = [h.delivery for h in (*self._all_waiting(), *self._running.values())]
            self.holding(held)

    # ------------------------------------------------------------------ fetching

    def begin(self) -> None:
        """Start fetching. The worker calls it once every bootstep has started, so steps that
        add filters are in place before the first message arrives."""
        self._begun.set()

    def _fetch_loop(self) -> None:
        outage = Outage(self.app.conf.broker_url, Retrying.after_loss(self.app.conf))
        while not self._begun.wait(0.1):
            if self._stopping.is_set():
                return
        while not self._stopping.is_set():
            with self._room:
                self._fetch_state = ("waiting", time.monotonic())
                while not self._stopping.is_set() and not self._fetch_may_go():
                    self._room.wait()
                room = self.prefetch - self.held
            if self._stopping.is_set():
                return
            began = time.monotonic()
            self._fetch_state = ("fetching", began)
            queues = self.queues
            try:
                deliveries = self.transport.fetch(queues, room, self.fetch_timeout)
                outage.ended()
            except Exception as exc:  # noqa: BLE001 - the broker may be down: retry
                self.app.events.note(BROKER_ERROR, self.executor.hostname)
                try:
                    pause = outage.note(exc, time.monotonic() - began, "fetch from")
                except BrokerUnreachable as spent:
                    log.critical("%s; the worker shuts down (exit status 1)", spent)
                    FATAL.set(str(spent))
                    return
                self._stopping.wait(pause)
                continue
            with self._lock:
                self._drained = len(deliveries) < room
                self.empty_fetches += not deliveries
            self._fetch_state = ("reserving", time.monotonic())
            leased_until = began + self.lease_seconds if self._leases else math.inf
            if deliveries and self.queues is not queues:  # changed while it fetched
                deliveries = self._still_wanted(deliveries)
            for delivery in deliveries:
                try:
                    self._reserve(delivery, leased_until)
                except Exception as exc:  # noqa: BLE001 - one message never stops the fetcher
                    log.exception("cannot take message %s from queue %r", delivery.tag,
                                  delivery.queue)
                    self._reject(delivery, f"could not be read: {type(exc).__name__}: {exc}")
            if deliveries:
                self._tell_holding()
            self._dispatch()

    def _still_wanted(self, deliveries: list[Delivery]) -> list[Delivery]:
        """A queue was cancelled while the fetch waited: what came from it goes back unrun."""
        wanted = set(self.queues)
        gone = [d for d in deliveries if d.queue not in wanted]
        if gone:
            self._safely(self.transport.release, gone)
        return [d for d in deliveries if d.queue in wanted]

    def _task_options(self, task: Task[Any, Any] | None) -> tuple[TaskOptions, bool, bool]:
        """The task's options (defaults for an unknown task), acks_late, reject_on_worker_lost."""
        conf = self.app.conf
        opts = task.options if task is not None else TaskOptions()
        return (opts, first_set(opts.acks_late, conf.task_acks_late),
                first_set(opts.reject_on_worker_lost, conf.task_reject_on_worker_lost))

    def _reserve(self, delivery: Delivery, leased_until: float = math.inf) -> None:
        envelope = delivery.envelope
        try:
            request = Request.from_envelope(envelope)
        except MessageError as exc:
            self._reject(delivery, f"malformed message: {exc}")
            return
        self.app.signals.send("kernel_task_received", request=request)
        events = self.app.events
        if events.wanted:
            h = request.headers
            events.task("task-received", self.executor.hostname, uuid=request.id,
                        name=request.name, args=h.get("argsrepr"), kwargs=h.get("kwargsrepr"),
                        root_id=request.root_id, parent_id=request.parent_id,
                        retries=request.retries, eta=h.get("eta"), expires=h.get("expires"))
        payload = Payload(request, envelope.body, envelope.content_type,
                          envelope.headers.get("compression"), delivery.queue, delivery.tag,
                          delivery.delivery_count)
        cap = self.app.conf.task_max_deliveries
        if delivery.delivery_count > cap:
            reason = (f"delivered {delivery.delivery_count} times (cap "
                      f"task_max_deliveries={cap}); it may crash its worker")
            # Out for good even if its record cannot be written: it must stop coming back.
            self._end(payload, states.REJECTED, MessageError(reason))
            self._reject(delivery, reason)
            return
        if request.eta is not None and request.eta > time.time() + 0.5 and (
                self.transport.capabilities.delayed_delivery):
            # Not due: the delay belongs at the broker, not in this worker's memory.
            try:
                self.transport.publish([Outgoing(delivery.queue, envelope,
                                                 clamp_priority(envelope.properties.get(
                                                     "priority") or 0), request.eta)])
            except Exception as exc:  # noqa: BLE001 - the broker is down: it comes back
                log.error("cannot delay task %s[%s] at the broker (%s); it comes back when "
                          "its lease ends", request.name, request.id, exc)
                return
            self._safely(self.transport.ack, [delivery])
            return
        task = self.app.tasks.get(request.name)
        topts, acks_late, lost = self._task_options(task)
        conf = self.app.conf
        hard = first_set(request.time_limit, topts.time_limit, conf.task_time_limit)
        soft = first_set(request.soft_time_limit, topts.soft_time_limit,
                         conf.task_soft_time_limit)
        self._warn_unenforced(request.name, soft, hard)
        job = Job(request.id, request.name, payload, soft_time_limit=soft, hard_time_limit=hard,
                  is_async=bool(task and task.is_async))
        if not acks_late:
            self.transport.ack([delivery])  # at-most-once: settled before it runs
        with self._lock:
            self._reserved.append(Held(delivery, request, job, acks_late, lost,
                                       leased_until=leased_until))

    def _warn_unenforced(self, name: str, soft: float | None, hard: float | None) -> None:
        if not (soft or hard) or name in self._warned:
            return  # the common case, on the hot path: nothing to check
        caps = self.pool.capabilities
        missing = [kind for kind, limit, can in (("soft", soft, caps.soft_time_limit),
                                                 ("hard", hard, caps.hard_time_limit))
                   if limit and not can]
        self._warned.add(name)
        if missing:
            log.warning("task %s has a %s time limit this pool (%s) cannot enforce; it will run "
                        "to its end (use -P prefork, see docs/user-guide/time-limits.md)", name,
                        " and ".join(missing), type(self.pool).__name__)

    # ------------------------------------------------------------------ remote control

    def running_now(self) -> list[Held]:
        with self._lock:
            return list(self._running.values())

    def waiting_now(self) -> list[Held]:
        """Prefetched, not started (rate-limited ones included)."""
        with self._lock:
            return self._all_waiting()

    def forget_limits(self, name: str) -> None:
        """Task `name`'s rate limit changed: its limiters are made again from its options."""
        with self._lock:
            self._limiters.pop(name, None)
            self._timer.notify()

    def set_queues(self, queues: list[str]) -> None:
        """Consume from `queues` from now on: what the fetch under way brings from a queue
        no longer among them goes back unrun."""
        self.queues = list(queues)

    def _size(self, concurrency: int, prefetch: int) -> None:
        self.concurrency = concurrency
        #: the configured prefetch (Celery's meaning); with a prefetch budget the worker holds
        #: more when tasks are short, up to `ceiling`, never more than `budget` s of work a slot.
        self.floor, self.ceiling = prefetch_bounds(concurrency, prefetch, self.budget,
                                                   self.pool.capabilities)
        #: jobs the pool may hold: one per slot, plus one queued per slot where it says so.
        self._pool_room = concurrency * (2 if self.pool.capabilities.queue_ahead else 1)

    def resize(self, concurrency: int) -> None:
        """The pool grew or shrank to `concurrency` slots: hold and hand over accordingly."""
        with self._lock:
            per_slot = self.floor // max(self.concurrency, 1)
            self._size(concurrency, max(per_slot * concurrency, concurrency))
            self.prefetch = min(max(self.prefetch, self.floor), self.ceiling)
            self._room.notify()
        self._dispatch()

    def _all_waiting(self) -> list[Held]:
        return [*self._reserved, *(h for q in self._throttled.values() for h in q)]

    def _limiters_for(self, name: str) -> list[Limiter]:
        found = self._limiters.get(name)
        if found is None:
            found = []
            task = self.app.tasks.get(name)
            conf = self.app.conf
            rate = first_set(task.options.rate_limit if task is not None else None,
                             conf.task_default_rate_limit)
            if conf.worker_disable_rate_limits:
                task = rate = None  # Celery's switch: every limit off, global ones too
            if rate:
                found.append(self._worker_bucket(name, parse_rate(rate)))
            if task is not None and task.options.global_rate_limit:
                found.append(SharedBucket(self.app.rate_limits, name,
                                          parse_rate(task.options.global_rate_limit)))
            self._limiters[name] = found
        return found

    def _worker_bucket(self, name: str, rate: float) -> Limiter:
        """The per-worker limit of task `name`: this process's, or, in a process pool's
        consumer (`worker_key`), one its siblings and successors share: a child that replaces
        another (recycled, lost) must not start with a full bucket."""
        if self.processes == 1 and not self.worker_key:
            return TokenBucket(rate)
        conf = self.app.conf
        if conf.rate_limit_store or conf.result_backend:
            return SharedBucket(self.app.rate_limits, f"{name}@{self.worker_key}", rate)
        return TokenBucket(rate / self.processes)

    def _next_waiting(self) -> Held | None:
        """Under the lock: a throttled task whose wait is over, else the next reserved one."""
        now = time.monotonic()
        for name, queue in self._throttled.items():
            if queue and self._due[name] <= now:
                return queue.popleft()
        return self._reserved.popleft() if self._reserved else None

    def _throttle(self, held: Held, wait: float) -> None:
        name = held.request.name
        with self._changed:
            queue = self._throttled.setdefault(name, deque())
            if self._due.get(name, 0) <= time.monotonic() and queue:
                queue.appendleft(held)  # it was the head: keep the order
            else:
                queue.appendleft(held) if not queue else queue.append(held)
            self._due[name] = time.monotonic() + wait
            self._timer.notify()
            if self._fetch_may_go():
                self._room.notify()

    def _throttle_loop(self) -> None:
        """Wakes when the earliest throttled task may go."""
        while not self._stopping.is_set():
            with self._timer:
                pending = [self._due[n] for n, q in self._throttled.items() if q]
                wait = (min(pending) - time.monotonic()) if pending else None
                if wait is None or wait > 0:
                    self._timer.wait(wait)
                    continue
            self._dispatch()

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if self._stopping.is_set() or self.pool.active >= self._pool_room:
                    return
                held = self._next_waiting()
                if held is None:
                    return
                # In hand: neither waiting nor running until it is submitted, throttled or
                # skipped; `idle` must not be true meanwhile.
                self._settling += 1
                if not self._reserved and self._fetch_may_go():
                    self._room.notify()
            try:
                if self._hand_over(held):
                    self.pool.submit(held.job, self._on_done)
            finally:
                with self._lock:
                    self._settling -= 1

    def _hand_over(self, held: Held) -> bool:
        """Give back, throttle or skip `held`, or record it running; True if it is to be
        submitted."""
        if time.monotonic() >= held.leased_until or not self.transport.holds(held.delivery):
            self._give_back(held)
            return False
        if held.delivery.redelivered and self._ended_before(held.request):
            log.warning("task %s[%s] delivered again though it already ended: acknowledged, not "
                        "run again", held.request.name, held.request.id)
            if held.acks_late:
                self._ack_later(held.delivery)
            return False
        wait = max((limiter.take() for limiter in self._limiters_for(held.request.name)),
                   default=0.0)
        if wait > 0:
            self._throttle(held, wait)
            return False
        skip = next((exc for f in self.filters if (exc := f(held.request)) is not None), None)
        if skip is not None:
            self._skip(held, skip)
            return False
        with self._lock:
            if held.job.id in self._running:
                # Two deliveries of one task (a redelivery, a producer that sent it twice) are
                # two jobs: each under a key of its own, so each settles its own message.
                held.job.id = f"{held.request.id}#{next(self._keys)}"
            held.started = time.monotonic()
            self._running[held.job.id] = held
        return True

    def _ended_before(self, request: Request) -> bool:
        """The task's record says it ended (SUCCESS, FAILURE, REVOKED): an earlier delivery ran
        it and its ack was lost, or the worker's process ended it for a process that died or
        was stopped at its hard limit. Asked of redelivered messages only."""
        if not self.app.conf.result_backend:
            return False
        try:
            meta = self.app.backend.get_meta(request.id)
        except Exception as exc:  # noqa: BLE001 - the store is down: run it, as without this
            log.warning("cannot read the record of redelivered task %s (%s); running it",
                        request.id, exc)
            return False
        return meta is not None and meta.get("status") in ENDED

    def _give_back(self, held: Held) -> None:
        """`held` may be another consumer's by now (see the module): give it back unrun. A
        transport ignores the release of a delivery it gave to someone else since."""
        request = held.request
        log.warning("task %s[%s] not started: its message may no longer be this worker's (its "
                    "lease ran out or its connection dropped while it waited here); given back "
                    "to the broker", request.name, request.id)
        self._release(held)

    def _release(self, held: Held) -> None:
        """Back to the broker unrun, its delivery uncounted."""
        self.counters.requeued += 1
        if held.here:
            self._safely(self.transport.release, [held.delivery])

    def _skip(self, held: Held, reason: Exception) -> None:
        """A filter refused the task: it ends REVOKED with the reason."""
        request = held.request
        log.info("task %s[%s] not run: %s", request.name, request.id, reason)
        self.counters.processed += 1
        self._conclude(held, states.REVOKED, reason)

    def _conclude(self, held: Held, state: str, exc: Exception) -> None:
        """A task that ended without its runner finishing it (skipped, timed out, terminated,
        lost): end it through the after-hooks and settle the message; if they could not
        finish (its result could not be stored), it goes back to the broker instead."""
        if not self._end(held.job.payload, state, exc):
            # It did not run: uncounted, so an outage cannot dead-letter it.
            self._release(held)
        elif held.acks_late and held.here:
            self._ack_later(held.delivery)

    def _end(self, payload: Payload, state: str, exc: Exception) -> bool:
        try:
            return self.executor.end(payload, state, exc)
        except Exception:  # noqa: BLE001 - the pipeline isolates its middleware; this is a bug
            log.exception("failed to end task %s[%s]", payload.request.name, payload.request.id)
            return False

    def _ack_later(self, delivery: Delivery) -> None:
        with self._lock:
            self._acks.append(delivery)
            if len(self._acks) == 1:
                self._ackable.notify()

    def terminate(self, task_id: str) -> bool:
        """Stop the running task `task_id` here (its message is settled as REVOKED)."""
        with self._changed:
            keys = [key for key, held in self._running.items() if held.request.id == task_id]
        return any([self.pool.terminate_job(key) for key in keys])

    def revoked(self, task_id: str, reason: Exception) -> None:
        """`task_id` was revoked: if it waits queued in the pool, take it back and skip it as
        the revocation filter would have (it passed the filter before the revocation came)."""
        with self._lock:
            keys = [key for key, held in self._running.items() if held.request.id == task_id]
        for job in self.pool.withdraw(keys) if keys else ():
            with self._lock:
                held = self._running.pop(job.id, None)
                if held is None:
                    continue
                self._settling += 1
            try:
                self._skip(held, reason)
            finally:
                with self._lock:
                    self._settling -= 1

    # ------------------------------------------------------------------ settling

    def _on_done(self, outcome: Outcome) -> None:
        with self._lock:
            held = self._running.pop(outcome.job_id, None)
            if held is None:
                return
            self._settling += 1
            self._adapt_prefetch(time.monotonic() - held.started)
            if self._fetch_may_go():
                self._room.notify()
        try:
            self._settle(held, outcome)
        except Exception:  # noqa: BLE001 - never lose the consumer over one message
            log.exception("failed to settle task %s", held.request.id)
        with self._lock:
            self._settling -= 1
            if self._stopping.is_set():
                self._changed.notify_all()
        if not self._stopping.is_set():
            self._dispatch()

    def _adapt_prefetch(self, ran: float) -> None:
        """Under the lock: hold about `budget` seconds of work per slot, within
        [floor, ceiling], from a moving mean of how long tasks take."""
        mean = self._mean_run = ran if self._mean_run is None else 0.9 * self._mean_run + 0.1 * ran
        if self.ceiling > self.floor:
            wanted = int(self.concurrency * self.budget / max(mean, 1e-6))
            self.prefetch = min(self.ceiling, max(self.floor, wanted))

    def _settle(self, held: Held, outcome: Outcome) -> None:
        request = held.request
        counters = self.counters
        counters.by_task[request.name] = counters.by_task.get(request.name, 0) + 1
        if outcome.kind is OutcomeKind.FINISHED:
            verdict = outcome.value
            if not isinstance(verdict, Verdict):
                reason = f"the runner crashed: {outcome.extra.get('error', repr(verdict))}"
                self._end(held.job.payload, states.REJECTED, MessageError(reason))
                verdict = Verdict(REJECT, states.REJECTED, reason)
            if verdict.action == ACK:
                counters.processed += 1
                if verdict.state == states.FAILURE:
                    counters.failed += 1
                if held.acks_late:
                    self._ack_later(held.delivery)
            elif verdict.action == REQUEUE and held.acks_late:
                self._requeue(held, verdict.reason)
            elif verdict.action == REQUEUE:
                log.error("task %s[%s] (acks_late=False) was acknowledged before it ran; "
                          "what could not be recorded is lost: %s", request.name, request.id,
                          verdict.reason)
            else:  # rejected: its record and its canvas were ended by the runner
                self._reject(held.delivery, verdict.reason,
                             settle=held.acks_late)  # at-most-once: already settled
            return
        if outcome.kind is OutcomeKind.LOST and held.acks_late and held.reject_on_worker_lost:
            log.warning("the process running task %s[%s] (pid %s) died; the task goes back to "
                        "the broker", request.name, request.id, outcome.pid)
            self._requeue(held, "worker lost")
            return
        if outcome.kind is OutcomeKind.TIMEOUT:
            exc: Exception = TimeLimitExceeded(
                f"task {request.name}[{request.id}] ran past its hard time limit of "
                f"{held.job.hard_time_limit} s and was killed")
            state = states.FAILURE
        elif outcome.kind is OutcomeKind.TERMINATED:
            exc, state = TaskRevokedError("terminated"), states.REVOKED
        else:
            exc = WorkerLostError(f"the process running task {request.name}[{request.id}] died "
                                  f"(pid {outcome.pid})")
            state = states.FAILURE
        log.error("%s", exc)
        counters.processed += 1
        counters.failed += 1
        self._conclude(held, state, exc)

    def _requeue(self, held: Held, reason: str) -> None:
        self.counters.requeued += 1
        if held.here:
            self._safely(lambda: self.transport.reject(held.delivery, requeue=True,
                                                       reason=reason))

    def _reject(self, delivery: Delivery, reason: str, *, settle: bool = True) -> None:
        """Take a message out for good (into the dead-letter queue where the broker has one);
        what the task's record and canvas need was done by the after-hooks first."""
        self.counters.rejected += 1
        log.error("rejected message from queue %r: %s", delivery.queue, reason)
        self.app.events.note(DEAD_LETTERED, self.executor.hostname, queue=delivery.queue)
        if settle:
            self._safely(lambda: self.transport.reject(delivery, requeue=False, reason=reason))

    def _ack_loop(self) -> None:
        while True:
            with self._ackable:
                while not self._acks and not self._stopping.is_set():
                    self._ackable.wait()
                if not self._acks and self._stopping.is_set():
                    return
                lingering = len(self._acks) < ACK_BATCH
            if lingering:
                # Let a few more tasks finish, so one broker call acks them all.
                self._stopping.wait(ACK_LINGER)
            self._flush_acks()

    def _flush_acks(self) -> None:
        with self._changed:
            batch, self._acks = self._acks, []
        if batch:
            self._safely(self.transport.ack, batch)

    def _lease_loop(self) -> None:
        period = max(self.lease_seconds / 3, 0.05)
        while not self._stopping.wait(period):
            with self._changed:
                held = [*self._all_waiting(), *self._running.values()]
            if not held:
                continue
            began = time.monotonic()
            if self._safely(self.transport.extend_lease, [h.delivery for h in held],
                            self.lease_seconds):
                returned = time.monotonic()
                with self._lock:
                    for h in held:
                        if returned < h.leased_until:  # renewed before it could lapse
                            h.leased_until = began + self.lease_seconds

    @staticmethod
    def _safely(fn: Any, *args: Any) -> bool:
        """Call `fn`; False (the failure logged) if it raised."""
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - logged; the lease brings the message back
            log.error("broker operation %s failed: %s", getattr(fn, "__name__", fn), exc)
            return False
        return True

