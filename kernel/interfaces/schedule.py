"""The schedule-store contract: where beat keeps its schedule state and its leader lock."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ScheduleStore(ABC):
    """Schedule state plus a lease-based leader lock with fencing.

    The lock MUST be held by at most one owner at a time; `acquire` returns a fencing token that
    grows with every new holder, so a stale leader's writes can be told apart.
    """

    @abstractmethod
    def acquire(self, owner: str, ttl: float) -> int | None:
        """Take or renew the leader lock for `ttl` seconds; the fencing token, or None if another
        owner holds it."""

    @abstractmethod
    def release(self, owner: str) -> None:
        """Give the lock up if `owner` holds it."""

    @abstractmethod
    def load(self) -> dict[str, float]:
        """Entry name → last run (unix time)."""

    @abstractmethod
    def save(self, last_run: dict[str, float], token: int) -> bool:
        """Store last-run times; MUST refuse (return False) when `token` is not the current
        holder's."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""
