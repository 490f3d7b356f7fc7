"""solar: events of the sun at a place, through ephem (the `solar` extra)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest

from kernel import solar
from kernel.errors import ConfigurationError, MissingDependency
from kernel.schedules import schedule_from_dict
from kernel.schedules.solar import EVENTS

UTC = timezone.utc
LONDON = (51.5074, -0.1278)
TROMSO = (69.6492, 18.9553)
ORDER = ["dawn_astronomical", "dawn_nautical", "dawn_civil", "sunrise", "solar_noon", "sunset",
         "dusk_civil", "dusk_nautical", "dusk_astronomical"]


def minutes_apart(a: datetime | None, b: datetime) -> float:
    assert a is not None
    return abs((a - b).total_seconds()) / 60


def test_london_at_midsummer_matches_the_almanac() -> None:
    # Published for London, 21 June: sunrise 04:43, solar noon 13:02, sunset 21:21 (BST).
    day = datetime(2026, 6, 21, tzinfo=UTC)
    assert minutes_apart(solar("sunrise", *LONDON).next_after(day, UTC),
                         datetime(2026, 6, 21, 3, 43, tzinfo=UTC)) <= 2
    assert minutes_apart(solar("solar_noon", *LONDON).next_after(day, UTC),
                         datetime(2026, 6, 21, 12, 2, tzinfo=UTC)) <= 2
    assert minutes_apart(solar("sunset", *LONDON).next_after(day, UTC),
                         datetime(2026, 6, 21, 20, 21, tzinfo=UTC)) <= 2


def test_the_events_of_an_equinox_day_come_in_their_order() -> None:
    day = datetime(2026, 3, 20, tzinfo=UTC)
    times = [solar(event, *LONDON).next_after(day, UTC) for event in ORDER]
    assert all(t is not None and t.date() == day.date() for t in times), times
    assert times == sorted(times)  # type: ignore[type-var]
    assert set(ORDER) == set(EVENTS)


def test_next_after_is_strictly_after_whole_seconds_and_a_day_later_next() -> None:
    sunrise = solar("sunrise", *LONDON)
    first = sunrise.next_after(datetime(2026, 3, 20, tzinfo=UTC), UTC)
    assert first is not None and first.microsecond == 0 and first.utcoffset() == timedelta(0)
    second = sunrise.next_after(first, UTC)
    assert second is not None
    assert timedelta(hours=23, minutes=50) < second - first < timedelta(hours=24)


def test_deterministic() -> None:
    after = datetime(2026, 8, 1, 12, 34, 56, 789, tzinfo=UTC)
    assert len({solar("dusk_civil", *LONDON).next_after(after, UTC) for _ in range(5)}) == 1


def test_polar_night_finds_the_sun_weeks_later() -> None:
    # The sun does not rise in Tromsø from late November until mid January.
    got = solar("sunrise", *TROMSO).next_after(datetime(2026, 12, 1, tzinfo=UTC), UTC)
    assert got is not None
    assert datetime(2027, 1, 10, tzinfo=UTC) < got < datetime(2027, 1, 25, tzinfo=UTC)


def test_astronomical_dawn_does_not_happen_in_a_london_summer() -> None:
    # At 51.5° N the sun stays above -18° all night from late May to mid July.
    got = solar("dawn_astronomical", *LONDON).next_after(datetime(2026, 6, 21, tzinfo=UTC), UTC)
    assert got is not None and datetime(2026, 7, 10, tzinfo=UTC) < got < datetime(
        2026, 8, 1, tzinfo=UTC)


def test_at_the_pole_the_answer_is_none_or_months_ahead() -> None:
    # At the pole the sun rises and sets once a year; ephem's day-by-day search may not see
    # so slow a crossing, and then there is no answer within the 366 days searched.
    after = datetime(2026, 6, 1, tzinfo=UTC)
    for event in ("sunrise", "dusk_astronomical"):
        got = solar(event, 90, 0).next_after(after, UTC)
        assert got is None or got > after + timedelta(days=60)
    assert solar("solar_noon", 90, 0).next_after(after, UTC) is not None


@pytest.mark.parametrize("args, words", [
    (("noon", 0, 0), "'noon' is not one of dawn_astronomical"),
    (("sunrise", 91, 0), "latitude 91 is out of range -90 to 90"),
    (("sunrise", -90.5, 0), "latitude"),
    (("sunrise", 0, 181), "longitude 181 is out of range -180 to 180"),
    (("sunrise", 0, float("nan")), "longitude"),
])
def test_bad_arguments_are_refused_with_a_sentence(args: tuple[str, float, float],
                                                   words: str) -> None:
    with pytest.raises(ValueError, match=words):
        solar(*args)


def test_without_ephem_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ephem", None)  # import ephem now raises ImportError
    sunrise = solar("sunrise", *LONDON)  # defining one needs no ephem
    with pytest.raises(MissingDependency) as caught:
        sunrise.next_after(datetime(2026, 3, 20, tzinfo=UTC), UTC)
    assert "pip install 'kernel[solar]'" in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)


def test_round_trips_through_to_dict_and_repr() -> None:
    sched = solar("dusk_civil", *LONDON)
    back = schedule_from_dict(sched.to_dict())
    assert back == sched and hash(back) == hash(sched)
    assert eval(repr(sched), {"solar": solar}) == sched
    assert sched.describe() == "at dusk civil at 51.5074°N 0.1278°W"


def test_bad_stored_data_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'lat' is a number"):
        schedule_from_dict({"type": "solar", "event": "sunrise", "lat": "51", "lon": 0})
