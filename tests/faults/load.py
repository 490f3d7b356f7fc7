"""The client side of a scenario: a thread sending tasks at a steady rate throughout, which, when
a send raises `ConnectionFailed`, sends the same task id again until one send returns."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from typing_extensions import Self

from kernel import App
from kernel.errors import ConnectionFailed

#: seconds between two tries of one send that raised.
RETRY_AFTER = 0.2


@dataclass
class Send:
    """One task the client sends: when its first try began, when a try returned (None: not
    yet), and how many tries raised before that (monotonic clock)."""

    task_id: str
    first_try: float
    sent: float | None = None
    raised: int = 0


class Sender:
    """Sends ``faults.work(work)`` to `queue` through `app`, `rate` tasks a second, from a thread
    of its own, until `stop`. A task counts as sent once one send of it returned.

    A send that raises `ConnectionFailed` is tried again with the same task id; any other
    exception is tried again too, but recorded in `errors` (a send must fail with kernel's
    error). A send that has not returned after `send_deadline` seconds makes `check` fail: the
    client hangs."""

    def __init__(self, app: App, queue: str, *, rate: float = 20.0, work: float = 0.05,
                 send_deadline: float = 120.0) -> None:
        self.app = app
        self.queue = queue
        self.interval = 1.0 / rate
        self.work = work
        self.send_deadline = send_deadline
        self.errors: list[str] = []
        self._sends: list[Send] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._trying_since: float | None = None
        self._failure: BaseException | None = None
        self._burst = 0
        #: seconds the longest single try took (returned or raised).
        self.longest_try = 0.0
        self._thread = threading.Thread(target=self._run, name="faults-sender", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def burst(self, n: int) -> None:
        """Send `n` tasks at once, in one call, then go on at the steady rate."""
        with self._lock:
            self._burst += n

    def sends(self) -> list[Send]:
        """Every task tried so far, in the order of their first try (copies)."""
        with self._lock:
            return [Send(s.task_id, s.first_try, s.sent, s.raised) for s in self._sends]

    def sent(self) -> list[str]:
        """Ids of the tasks sent (one send of each returned)."""
        return [s.task_id for s in self.sends() if s.sent is not None]

    @property
    def raised(self) -> int:
        """Sends that raised (each then tried again)."""
        return sum(s.raised for s in self.sends())

    def check(self) -> None:
        """Fail if the thread died or one send has been trying for longer than the deadline."""
        if self._failure is not None:
            raise AssertionError(f"the client's thread died: {self._failure!r}")
        since = self._trying_since
        if since is not None and time.monotonic() - since > self.send_deadline:
            raise AssertionError(f"one send has not returned within {self.send_deadline} s: "
                                 f"the client hangs")

    def stop(self) -> None:
        """Send nothing new; wait for the send under way (tried again until it returns, within
        the deadline)."""
        self._stop.set()
        self._thread.join(self.send_deadline)
        if self._thread.is_alive():
            raise AssertionError(f"the client still sends after {self.send_deadline} s")
        self.check()

    def halt(self) -> None:
        """Send nothing new, without waiting (the thread ends after the send under way)."""
        self._stop.set()

    def _run(self) -> None:
        try:
            due = time.monotonic()
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                with self._lock:
                    n, self._burst = max(1, self._burst), 0
                self._send(n)
                # Steady: no burst to catch up after a send that waited out an outage.
                due = max(due + self.interval, time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - shown by check()
            self._failure = exc

    def _send(self, n: int) -> None:
        """Send `n` new tasks in one call (`send_many` for a burst), trying again until one
        try returns."""
        now = time.monotonic()
        sends = [Send(uuid.uuid4().hex, now) for _ in range(n)]
        with self._lock:
            self._sends += sends
        while True:
            self._trying_since = began = time.monotonic()
            try:
                if n == 1:
                    self.app.send_task("faults.work", (self.work,), task_id=sends[0].task_id,
                                       queue=self.queue)
                else:
                    self.app.send_many([("faults.work", (self.work,), {},
                                         {"task_id": s.task_id}) for s in sends],
                                       queue=self.queue)
            except ConnectionFailed:
                pass
            except Exception as exc:  # noqa: BLE001 - recorded: sends must raise ConnectionFailed
                self.errors.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
            else:
                with self._lock:
                    for send in sends:
                        send.sent = time.monotonic()
                self._trying_since = None
                return
            finally:
                self.longest_try = max(self.longest_try, time.monotonic() - began)
            with self._lock:
                for send in sends:
                    send.raised += 1
            time.sleep(RETRY_AFTER)  # a pause between tries, not a wait for a condition
