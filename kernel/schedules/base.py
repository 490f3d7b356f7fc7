"""The contract every schedule keeps: when it fires next, how beat stores it, how it reads.

Beat asks a schedule one question, `Schedule.next_after`: the first fire time strictly after a
given instant. Several beat processes may share one schedule store and claim each tick by
``(entry, due time)``, so the answer MUST be the same in every process: a schedule is a pure
function of its fields and the arguments, never of the clock, the host or a random number.

Schedules are immutable values: equal when they fire at the same times for the same reasons,
hashable, and their ``repr`` is Python that builds them again (``crontab(minute='0', hour='2')``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from datetime import datetime, tzinfo
from typing import Any, ClassVar, NoReturn

#: type name -> schedule class, for `schedule_from_dict`.
TYPES: dict[str, type[Schedule]] = {}


class Schedule(ABC):
    """When a periodic task runs. Subclasses: `schedule` (an interval), `crontab`, `solar`,
    `clocked`; a third party may add its own, with a `type_name` of its own."""

    __slots__ = ()

    #: the ``"type"`` key of `to_dict`; `schedule_from_dict` dispatches on it. Each concrete
    #: subclass names its own, and is registered under it when its class is created.
    type_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("type_name")
        if name is None:
            return
        known = TYPES.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"two schedule classes claim the type name {name!r}: "
                            f"{known.__module__}.{known.__qualname__} and "
                            f"{cls.__module__}.{cls.__qualname__}; give one another type_name")
        TYPES[name] = cls

    @classmethod
    @abstractmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        """The schedule `to_dict` gave `data` for; a ValueError naming the key on bad data."""

    @abstractmethod
    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        """The first fire time strictly after `after` (an aware datetime), returned as an aware
        datetime in UTC; None when the schedule never fires again.

        MUST be deterministic (same arguments -> same answer in every process): beat claims
        ticks by (entry, due time) in a shared store, so every beat process must compute the
        same due times. `tz` is the app's timezone, in which calendar schedules (crontab, solar
        days) are evaluated; a schedule built with its own ``tz=`` uses that instead. A naive
        `after` is refused with ValueError: which instant it means would be a guess.
        """

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with a ``"type"`` key, from which `schedule_from_dict` builds an
        equal schedule: how beat stores dynamic entries."""

    @abstractmethod
    def describe(self) -> str:
        """A short human phrase for ``kernel beat list``, e.g. ``every 10 s``,
        ``at 02:30 on mon-fri``."""

    @abstractmethod
    def _key(self) -> Hashable:
        """What makes two schedules of this type equal."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Schedule)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    # Immutable: a schedule is shared by beat's entries and threads, and is a dict key.
    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable: build a new schedule instead")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable: build a new schedule instead")

    def _set(self, name: str, value: object) -> None:
        """Set a field while building (``__init__`` only)."""
        object.__setattr__(self, name, value)


def require_aware(after: datetime, what: str = "next_after") -> None:
    """Refuse a naive datetime (or anything else) where an instant is needed."""
    if not isinstance(after, datetime):
        raise TypeError(f"{what} takes a datetime, not {type(after).__name__}")
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"{what} needs an aware datetime, got the naive {after.isoformat()}: "
                         f"attach a time zone, e.g. datetime.now(timezone.utc)")
