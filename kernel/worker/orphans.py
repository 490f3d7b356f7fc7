"""What a prefork worker's own process settles for its consumer children: the task of a child
that died, or that it stopped (hard limit, terminate), and the messages a dead child held.

Its consumer fetches nothing: it settles as the child would have, through the same after-hooks,
where the transport settles from any connection (Redis, SQLite); elsewhere (AMQP, where a
delivery belongs to the connection that received it) the broker gives the messages back as the
child's connection closes, and the record written here keeps a task that ended from running
again (`Consumer._ended_before`).
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from kernel.interfaces.pool import Job, Outcome
from kernel.interfaces.transport import Delivery
from kernel.message import Envelope
from kernel.worker.consumer import Consumer, Held
from kernel.worker.execute import Payload

log = logging.getLogger("kernel.worker")


class Orphans(Consumer):
    """`adopt` the job a child began and never ended; `give_back` what a dead child held."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._adopted: set[Any] = set()  # tags `adopt` settled, until `give_back`

    def give_back(self, held: list[tuple[Any, str, int]]) -> None:
        """Give back unrun the messages a consumer process of the pool held when it died,
        ``(tag, queue, delivery_count)`` each, where the transport settles from any connection
        (elsewhere the broker does as the process's connection closes). One this process just
        `adopt`ed stays as it was settled: given back, its delivery would not count."""
        if not self.transport.capabilities.settle_anywhere:
            return
        with self._lock:
            adopted, self._adopted = self._adopted, set()
        back = [Delivery(tag, queue, Envelope(b"", {}), count)
                for tag, queue, count in held if tag not in adopted]
        if back:
            self._safely(self.transport.release, back)
            log.info("gave back %d task(s) a lost process held", len(back))

    def adopt(self, outcome: Outcome) -> None:
        """Settle, here, a job that a consumer process of the pool began and never ended: the
        process died, or was stopped at the job's hard limit or to terminate it. The outcome
        carries the pickled job (``extra["payload"]``). Where the transport settles from any
        connection, the message is acked or requeued here; else the broker gives it back as
        the process's connection closes, and whoever gets it finds the record written here
        and acknowledges it unrun (`_ended_before`) — or runs it, when it was to be
        requeued."""
        job: Job = pickle.loads(outcome.extra["payload"])
        payload: Payload = job.payload
        envelope = Envelope(payload.body, {}, content_type=payload.content_type)
        delivery = Delivery(payload.tag, payload.queue, envelope, payload.delivery_count)
        _, acks_late, lost = self._task_options(self.app.tasks.get(job.name))
        held = Held(delivery, payload.request, job, acks_late, lost,
                    here=self.transport.capabilities.settle_anywhere)
        with self._lock:
            self._running[job.id] = held
            self._adopted.add(payload.tag)
        self._on_done(outcome)
        self._flush_acks()
