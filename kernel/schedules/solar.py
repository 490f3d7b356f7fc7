"""`solar`: run at a solar event (sunrise, dusk, ...) at a place on Earth (Celery's solar).

The sun's position comes from ``ephem`` (``pip install 'kernel[solar]'``), imported only when
a solar schedule is first asked for its next time: defining one in a ``beat_schedule`` that
workers also import does not make every worker need ephem, and beat, which asks every entry
when it starts, stops at once with the install hint if ephem is missing.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Hashable, Mapping
from datetime import datetime, timedelta, tzinfo
from types import ModuleType
from typing import Any, NamedTuple

from kernel.errors import MissingDependency
from kernel.schedules.base import Schedule, require_aware
from kernel.schedules.timezones import UTC


class _Event(NamedTuple):
    #: the ephem.Observer method that finds the event.
    method: str
    #: the sun's altitude at the event, in ephem's degrees:minutes notation.
    horizon: str
    #: measured at the sun's centre (twilights) rather than its upper limb (sunrise, sunset).
    use_center: bool


#: Celery's events and horizons: twilights at the sun's centre 6, 12 and 18 degrees below the
#: horizon; sunrise and sunset when its upper limb is 34 arcminutes below (refraction).
EVENTS: Mapping[str, _Event] = {
    "dawn_astronomical": _Event("next_rising", "-18", True),
    "dawn_nautical": _Event("next_rising", "-12", True),
    "dawn_civil": _Event("next_rising", "-6", True),
    "sunrise": _Event("next_rising", "-0:34", False),
    "solar_noon": _Event("next_transit", "0", False),
    "sunset": _Event("next_setting", "-0:34", False),
    "dusk_civil": _Event("next_setting", "-6", True),
    "dusk_nautical": _Event("next_setting", "-12", True),
    "dusk_astronomical": _Event("next_setting", "-18", True),
}

#: how far ahead an event is looked for: near the poles the sun may not rise for months.
HORIZON_DAYS = 366


def _ephem() -> ModuleType:
    try:
        return importlib.import_module("ephem")
    except ImportError:
        raise MissingDependency("a solar schedule", "ephem", "solar") from None


class solar(Schedule):  # noqa: N801 - Celery's name, so that beat_schedule files carry over
    """At each `event` seen from latitude `lat`, longitude `lon` (degrees; north and east
    positive), as Celery's solar: ``dawn_astronomical``, ``dawn_nautical``, ``dawn_civil``,
    ``sunrise``, ``solar_noon``, ``sunset``, ``dusk_civil``, ``dusk_nautical``,
    ``dusk_astronomical``.

    The observer stands at sea level with no atmosphere model beyond the horizons above (as
    Celery's). Where an event does not happen every day (polar day and night, or astronomical
    twilight all summer night at 52° N) the next one is searched for up to 366 days ahead;
    `next_after` is None if there is none (ephem steps day by day, so within a fraction of a
    degree of a pole, where the sun rises or sets once a year, it may find none). A search
    across a polar night costs ephem hundreds of calls (up to about a tenth of a second), so
    keep an entry's next due time rather than asking again on each loop. Fire times are
    rounded down to the whole second, so that beat processes on machines whose floating point
    differs in the last digits still agree on each due time. An event is an instant: `tz` does
    not change it.
    """

    __slots__ = ("event", "lat", "lon")
    type_name = "solar"
    event: str
    lat: float
    lon: float

    def __init__(self, event: str, lat: float, lon: float) -> None:
        if event not in EVENTS:
            raise ValueError(f"solar event {event!r} is not one of "
                             f"{', '.join(EVENTS)}")
        for name, value, limit in (("latitude", lat, 90), ("longitude", lon, 180)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"solar {name} is a number of degrees, "
                                f"not {type(value).__name__}")
            if not math.isfinite(value) or not -limit <= value <= limit:
                raise ValueError(f"solar {name} {value!r} is out of range "
                                 f"{-limit} to {limit} degrees")
        self._set("event", event)
        self._set("lat", float(lat))
        self._set("lon", float(lon))

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        require_aware(after)
        ephem = _ephem()
        spec = EVENTS[self.event]
        observer = ephem.Observer()
        # strings, not floats: ephem reads a float as radians and a string as degrees
        observer.lat, observer.lon = repr(self.lat), repr(self.lon)
        observer.elevation = 0
        observer.pressure = 0  # no refraction model: the horizons above include it
        observer.horizon = spec.horizon
        sun = ephem.Sun()
        find = getattr(observer, spec.method)
        options = {"use_center": True} if spec.use_center else {}
        since = after.astimezone(UTC).replace(tzinfo=None)
        limit = since + timedelta(days=HORIZON_DAYS)
        start = since
        while start < limit:
            try:
                found = find(sun, start=ephem.Date(start), **options).datetime()
            except ephem.CircumpolarError:
                # no such event that day: try again from after the sun's next lowest point
                start = observer.next_antitransit(sun, start=ephem.Date(start)).datetime() \
                    + timedelta(minutes=1)
                continue
            when = found.replace(microsecond=0)
            if when > since:
                return when.replace(tzinfo=UTC) if when <= limit else None
            start = found + timedelta(seconds=1)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "event": self.event, "lat": self.lat, "lon": self.lon}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> solar:
        event, lat, lon = data.get("event"), data.get("lat"), data.get("lon")
        if not isinstance(event, str):
            raise ValueError(f"a stored solar schedule's 'event' is a name such as "
                             f"'sunrise', not {event!r}")
        for key, value in (("lat", lat), ("lon", lon)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"a stored solar schedule's {key!r} is a number of degrees, "
                                 f"not {value!r}")
        assert isinstance(lat, (int, float)) and isinstance(lon, (int, float))
        return cls(event, lat, lon)

    def describe(self) -> str:
        north = f"{abs(self.lat):g}°{'N' if self.lat >= 0 else 'S'}"
        east = f"{abs(self.lon):g}°{'E' if self.lon >= 0 else 'W'}"
        return f"at {self.event.replace('_', ' ')} at {north} {east}"

    def _key(self) -> Hashable:
        return self.event, self.lat, self.lon

    def __repr__(self) -> str:
        return f"solar({self.event!r}, {self.lat!r}, {self.lon!r})"
