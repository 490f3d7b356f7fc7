"""The schedule-store contract: where beat keeps its leader lease, its entries and the state of
each entry's ticks, so that any number of beat processes run with one leader and every tick is
sent exactly once."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Leader:
    """Who holds the leader lease (`ScheduleStore.leader`): `owner` as given to `acquire`, its
    fencing `token`, and the seconds until the lease ends unless renewed."""

    owner: str
    token: int
    expires_in: float


@dataclass(frozen=True)
class EntryState:
    """What the store knows of an entry's ticks: the due time (unix time) of the last one
    claimed, and how many were claimed."""

    last_run: float
    run_count: int


class ScheduleStore(ABC):
    """A leader lease with fencing tokens, beat's entries and their tick state, shared by every
    beat process that opens the store on the same URL (a store is created per process from a
    URL: ``ScheduleStoreSpec(name, schemes, factory(url, options))``).

    * The lease MUST be held by at most one owner at a time. It ends `ttl` seconds after it was
      last taken or renewed, by the store's clock (never the callers'), so a dead leader's
      lease ends by itself.
    * Fencing tokens MUST only grow: every new holder, including an owner taking the lease
      again after it lapsed or was released, gets a larger token than any given before.
    * `claim` is how a tick is sent exactly once: it MUST succeed for exactly one call per
      (entry, due) across every process sharing the store, and only for the current holder's
      token, so a leader that was paused past its lease cannot send once it is back.
    * Entry data is opaque bytes (beat owns the format); names are any strings, kept apart
      exactly as given.
    * Every method MUST be safe to call from several threads at once. A persistent store MUST
      keep everything (lease aside, which may end) across restarts of the store or its server.
    * A store that cannot reach its server raises `kernel.errors.ConnectionFailed`.
    """

    # ------------------------------------------------------------------ the leader lease

    @abstractmethod
    def acquire(self, owner: str, ttl: float) -> int | None:
        """Take the lease for `ttl` seconds, or renew it when `owner` holds it; the fencing
        token, or None when another owner holds it. Renewing MUST keep the holder's token.
        `ttl` MUST be a positive, finite number of seconds, else ValueError with a sentence."""

    @abstractmethod
    def release(self, owner: str) -> None:
        """Give the lease up if `owner` holds it; MUST do nothing otherwise."""

    @abstractmethod
    def leader(self) -> Leader | None:
        """Who holds the lease now (``expires_in`` > 0), or None (for ``kernel beat --status``)."""

    # ------------------------------------------------------------------ ticks

    @abstractmethod
    def claim(self, entry: str, due: float, token: int) -> bool:
        """Atomically record that the tick of `entry` due at `due` (unix time) is being sent.

        True for exactly one call per (entry, due) across every process sharing the store. MUST
        be False when that tick or a later one of the entry was already claimed (`due` <= the
        entry's last claimed due), or when `token` is not the current lease holder's (a lease
        that ended has no holder). On True the entry's state MUST become ``last_run=due`` and
        ``run_count + 1`` in the same atomic step. `due` MUST be finite, else ValueError."""

    @abstractmethod
    def states(self) -> dict[str, EntryState]:
        """Every entry's tick state (entries that never had a tick claimed are absent)."""

    # ------------------------------------------------------------------ entries

    @abstractmethod
    def entries(self) -> dict[str, bytes]:
        """Every entry: name -> its data as given to `put_entry`."""

    @abstractmethod
    def put_entry(self, name: str, data: bytes) -> None:
        """Add entry `name`, or replace its data (its tick state stays)."""

    @abstractmethod
    def remove_entry(self, name: str) -> bool:
        """Forget entry `name` and its tick state; True if the entry existed."""

    @abstractmethod
    def version(self) -> int:
        """A number that MUST grow with every `put_entry` and every `remove_entry` that removed
        an entry, and stay put otherwise, so a beat loop re-reads the entries only when they
        changed. Read it before `entries`: an entry changed in between then shows as a change
        at the next look rather than going unnoticed."""

    def close(self) -> None:  # noqa: B027
        """Release connections; MUST be safe to call twice."""


def check_ttl(ttl: float) -> None:
    """The `acquire` argument check every store makes, with the same sentence."""
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"the leader lease ttl must be a positive, finite number of seconds, "
                         f"got {ttl!r}")


def check_due(due: float) -> None:
    """The `claim` argument check every store makes, with the same sentence."""
    if not math.isfinite(due):
        raise ValueError(f"a tick's due time must be a finite unix time, got {due!r}")
