"""Reaching the broker, honestly: a worker says ``ready`` only once the broker answered, and
while it cannot be reached says so with the pause it really takes before the next attempt.

The attempts follow Celery's settings: ``broker_connection_retry_on_startup`` (at start-up)
and ``broker_connection_retry`` (after losing the broker) say whether to try again at all,
``broker_connection_max_retries`` how often (0 or None: forever), and each attempt gives up
within ``broker_connection_timeout`` (the transport's own patience). Between two attempts the
worker pauses `FIRST_PAUSE` seconds, doubling up to `MAX_PAUSE`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kernel.errors import BrokerUnreachable
from kernel.parsing import mask_url
from kernel.supervision import FATAL

if TYPE_CHECKING:
    from kernel.config import Config
    from kernel.interfaces.transport import Transport

log = logging.getLogger("kernel.worker")

#: seconds between the first failed attempt and the next.
FIRST_PAUSE = 1.0
#: the longest pause between two attempts: a broker that is back after an outage is used again
#: within it.
MAX_PAUSE = 5.0


@dataclass(frozen=True)
class Retrying:
    """Whether, how often and after which pause a worker tries to reach its broker again."""

    retry: bool
    #: attempts in all; None: no end.
    attempts: int | None
    first: float = FIRST_PAUSE
    ceiling: float = MAX_PAUSE

    @classmethod
    def at_startup(cls, conf: Config) -> Retrying:
        on_startup = conf.broker_connection_retry_on_startup
        return cls._of(conf, conf.broker_connection_retry if on_startup is None else on_startup)

    @classmethod
    def after_loss(cls, conf: Config) -> Retrying:
        return cls._of(conf, conf.broker_connection_retry)

    @classmethod
    def _of(cls, conf: Config, retry: bool) -> Retrying:
        return cls(retry, conf.broker_connection_max_retries or None)

    def pause(self, failed: int) -> float | None:
        """Seconds to wait after the `failed`-th failed attempt in a row; None: give up."""
        if not self.retry or (self.attempts is not None and failed > self.attempts):
            return None
        return float(min(self.first * 2.0 ** (failed - 1), self.ceiling))

    def of(self, failed: int) -> str:
        """``attempt 3 of 100`` for the log line."""
        return f"attempt {failed} of {self.attempts}" if self.attempts else f"attempt {failed}"


class Outage:
    """Failed attempts in a row (reset by one that worked): what to log and how long to wait.
    ``note(exc, took)`` returns the pause before the next attempt, or raises
    `BrokerUnreachable` once there are to be no more."""

    def __init__(self, url: str, retrying: Retrying) -> None:
        self.where = mask_url(url)
        self.retrying = retrying
        self.failed = 0

    def note(self, exc: BaseException, took: float, what: str) -> float:
        self.failed += 1
        pause = self.retrying.pause(self.failed)
        if pause is None:
            if not self.retrying.retry:
                hint = "set broker_connection_retry (or _on_startup) to keep trying"
            else:
                hint = "check the server is up and the URL is right, or raise " \
                       "broker_connection_max_retries (0: forever)"
            raise BrokerUnreachable(
                f"cannot {what} the broker at {self.where} ({exc}); gave up after "
                f"{self.failed} attempt{'s' if self.failed > 1 else ''}: {hint}") from None
        log.error("cannot %s the broker at %s (%s; the attempt took %.1f s); trying again in "
                  "%.0f s (%s)", what, self.where, exc, took, pause, self.retrying.of(self.failed))
        return pause

    def ended(self) -> None:
        """An attempt worked: say so if some had failed, and start counting afresh."""
        if self.failed:
            log.warning("reached the broker at %s after %d failed attempt%s", self.where,
                        self.failed, "s" if self.failed > 1 else "")
        self.failed = 0


def reach(transport: Transport, url: str, queues: Sequence[str], retrying: Retrying,
          stop: threading.Event) -> bool:
    """Wait until the broker answers (counting a queue is a round trip to it; a transport that
    cannot count is taken at its word until its first fetch). False if `stop` was set first;
    raises `BrokerUnreachable` when the attempts are spent."""
    outage = Outage(url, retrying)
    while not stop.is_set():
        began = time.monotonic()
        try:
            transport.size(queues[0])
        except NotImplementedError:
            pass
        except Exception as exc:  # noqa: BLE001 - whatever the client raises: the broker is down
            if stop.wait(outage.note(exc, time.monotonic() - began, "reach")):
                return False
            continue
        outage.ended()
        return True
    return False


class Watch:
    """A look at the broker every `every` seconds, for a process whose consumers fetch in
    other processes: a failed look is an attempt as above, and once they are spent `FATAL`
    stops the worker (exit status 1)."""

    def __init__(self, transport: Transport, conf: Config, queues: Sequence[str],
                 every: float) -> None:
        self.transport, self.queue, self.every = transport, queues[0], every
        self.outage = Outage(conf.broker_url, Retrying.after_loss(conf))
        self.due = time.monotonic() + every

    def look(self) -> None:
        began = time.monotonic()
        if began < self.due:
            return
        try:
            self.transport.size(self.queue)
        except NotImplementedError:
            self.due = math.inf  # a broker that cannot count: the consumers' fetches tell
            return
        except Exception as exc:  # noqa: BLE001 - whatever the client raises: the broker is down
            try:
                self.due = time.monotonic() + self.outage.note(exc, time.monotonic() - began,
                                                               "reach")
            except BrokerUnreachable as spent:
                log.critical("%s; the worker shuts down (exit status 1)", spent)
                FATAL.set(str(spent))
            return
        self.outage.ended()
        self.due = time.monotonic() + self.every
