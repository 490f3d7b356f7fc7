"""The beat service: any number of processes run it, one leads (by the schedule store's lease),
and the leader sends each tick exactly once.

One pass (`BeatService.tick`):

1. take or renew the lease (``beat_lease_ttl``; renewed every third of it). A process that does
   not get it follows: it looks again a third of a ttl later, so it takes over within about
   1.3 ttl of the leader's death;
2. re-read the entries when the store's version moved (dynamic changes: seen within one loop);
3. for every enabled entry, each tick due now (`Entry.due`: every due time after the last
   claimed one up to now, so a tick missed during a failover is sent once, late), oldest first,
   is *claimed* in the store, for (entry, due) and the lease's fencing token, and sent only
   when the claim succeeds; its task id is derived from (entry, due). A
   leader killed between claim and send loses that one tick (at most once, never twice); a
   leader paused past its lease cannot claim with its old token; two leaders for a moment
   cannot both claim one tick. A tick more than ``beat_cron_starting_deadline`` seconds late is
   skipped, not sent, and so are missed ticks beyond the newest `MAX_CATCH_UP` of an entry;
4. sleep until the next due time, the next renewal or ``beat_max_loop_interval``, whichever
   comes first, waking at once on `stop`.

A store that cannot be reached (`ConnectionFailed`) means no claims, so no sends: the service
logs it once, looks again every ttl/3 and logs again when the store answers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernel.beat.entries import MAX_CATCH_UP, Entry
from kernel.beat.periodic import Periodic, iso
from kernel.errors import BeatEntryError, ConnectionFailed, KernelError

if TYPE_CHECKING:
    from kernel.app import App

log = logging.getLogger("kernel.beat")

#: the header Celery 5.7's beat adds to every message it sends.
BEAT_HEADER = "celery_beat_task"
#: the namespace of the ticks' task ids (uuid5 of entry name and due time).
TICK_IDS = uuid.UUID("6f1c1b1e-7d0e-5b8e-9a39-2b6f0b2f7a61")


class BeatService:
    """``BeatService(app).run()`` until `stop`; `tick` is one pass (tests drive it with their
    own `clock`, unix time). Config entries are checked when the service is made
    (`BeatEntryError`), and written into the store at the first pass that reaches it."""

    def __init__(self, app: App, *, owner: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.periodic: Periodic = app.beat
        self.periodic.configured()  # a schedule beat cannot keep fails here, not later
        self.tz = self.periodic.timezone()
        conf = app.conf
        self.ttl = float(conf.beat_lease_ttl)
        self.max_loop = float(conf.beat_max_loop_interval)
        self.deadline = conf.beat_cron_starting_deadline
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        #: the fencing token while this process leads, else None.
        self.token: int | None = None
        #: ticks sent and skipped by this process (for tests and logs).
        self.sent = 0
        self.skipped = 0
        self._synced = False
        self._version: int | None = None
        self._entries: dict[str, Entry] = {}
        self._unreachable: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<BeatService {self.owner} {'leading' if self.token else 'following'}>"

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """Pass after pass until `stop`; gives the lease up on the way out."""
        log.info("beat %s starts: %d periodic task(s) configured, store %r", self.owner,
                 len(self.periodic.configured()), self.periodic.store)
        while not self._stop.is_set():
            self._stop.wait(self.tick())
        self._give_up()

    def start(self) -> BeatService:
        """`run` on a daemon thread (``kernel worker -B``)."""
        self._thread = threading.Thread(target=self._run_guarded, name="kernel-beat",
                                        daemon=True)
        self._thread.start()
        return self

    def _run_guarded(self) -> None:
        try:
            self.run()
        except Exception:  # noqa: BLE001 - no silent death: the thread's end is logged
            log.exception("beat %s stopped on an unexpected error; no periodic task is sent "
                          "by this process any more", self.owner)

    def stop(self, timeout: float = 5.0) -> None:
        """End `run` (at once, not after its sleep) and wait for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _give_up(self) -> None:
        if self.token is None:
            return
        try:
            self.periodic.store.release(self.owner)  # a successor takes over at once
            log.info("beat %s gave up the lead", self.owner)
        except KernelError as exc:
            log.warning("beat %s could not give the lead up (%s); it ends within %g s", self.owner,
                        exc, self.ttl)
        self.token = None

    # ------------------------------------------------------------------ one pass

    def tick(self) -> float:
        """One pass; the seconds to sleep before the next."""
        renew = self.ttl / 3
        try:
            delay = self._pass()
        except ConnectionFailed as exc:
            if self._unreachable is None:
                log.warning("beat %s cannot reach the schedule store (%s); no periodic task is "
                            "sent until it answers (looking again every %.1f s)", self.owner,
                            exc, renew)
            self._unreachable = str(exc)
            self.token = None
            return renew
        if self._unreachable is not None:
            log.warning("beat %s reaches the schedule store again", self.owner)
            self._unreachable = None
        return max(0.0, min(delay, renew))

    def _pass(self) -> float:
        store = self.periodic.store
        if not self._synced:
            self.periodic.sync(self.clock())
            self._synced = True
        token = store.acquire(self.owner, self.ttl)
        if token != self.token:
            if token is not None:
                log.info("beat %s leads (fencing token %d)", self.owner, token)
            else:
                log.info("beat %s no longer leads", self.owner)
        self.token = token
        if token is None:
            return self.ttl / 3
        self._refresh()
        states = store.states()
        now = self.clock()
        wake = now + self.max_loop
        for entry in self._entries.values():
            if not entry.enabled:
                continue
            state = states.get(entry.name)
            ticks, skipped, following = entry.due(state.last_run if state else None, self.tz,
                                                  now, self.deadline)
            if skipped:
                self.skipped += skipped
                log.warning("periodic task %r: %d tick(s) skipped, more than "
                            "beat_cron_starting_deadline late (or more than %d missed)",
                            entry.name, skipped, MAX_CATCH_UP)
            for tick in ticks:
                if not self._fire(entry, tick, token, now):
                    break
            if following is not None:
                wake = min(wake, following)
        return wake - self.clock()

    def _refresh(self) -> None:
        """Re-read the entries when the store's version moved (version first: a change in
        between shows at the next look)."""
        store = self.periodic.store
        version = store.version()
        if version == self._version:
            return
        entries = {}
        for name, data in store.entries().items():
            try:
                entries[name] = Entry.loads(name, data)
            except BeatEntryError as exc:
                log.error("%s", exc)
        self._entries, self._version = entries, version

    def _fire(self, entry: Entry, due: float, token: int, now: float) -> bool:
        """Claim the tick, then send it; False when the claim is refused (sent already, or
        this process lost the lease in between)."""
        if not self.periodic.store.claim(entry.name, due, token):
            return False
        options: dict[str, Any] = dict(entry.options)
        options["headers"] = {**(options.get("headers") or {}), BEAT_HEADER: True}
        # The tick's id follows from (entry, due): the same tick has the same id everywhere.
        options["task_id"] = str(uuid.uuid5(TICK_IDS, f"{entry.name}\0{due!r}"))
        late = now - due
        try:
            self.app.send_task(entry.task, list(entry.args), dict(entry.kwargs), **options)
        except KernelError as exc:
            log.error("periodic task %r due at %s was claimed but could not be sent (%s); "
                      "that tick is lost (a tick is sent at most once)", entry.name, iso(due),
                      exc)
            return True
        self.sent += 1
        log.info("sending due task %s (%s)%s", entry.name, entry.task,
                 f", {late:.1f} s late" if late >= 1 else "")
        return True
