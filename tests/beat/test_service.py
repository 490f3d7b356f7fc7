"""The beat loop with the memory store and a clock the test moves: first dues one interval after
an entry appears, claim before send, the celery_beat_task header and send options, late ticks
coalesced into one or skipped past the deadline, two leaders never sending a tick twice,
dynamic changes seen at the next pass, a store outage, and the sentences of bad entries."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App
from kernel.beat import BeatService
from kernel.errors import BeatEntryError, ConfigurationError, ConnectionFailed, UnknownEntry

class Clock:
    """Unix time the test moves; it starts at the real time (to the second), since entries
    added through the API are anchored at the real time."""

    def __init__(self) -> None:
        self.start = self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def make_app(store: str, **config: Any) -> App:
    return App("beat-test", broker=f"memory://{store}", results=f"memory://{store}",
               config={"beat_schedule_store": f"memory://{store}", **config})


@pytest.fixture
def name() -> str:
    return f"beat-{uuid.uuid4().hex}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(name: str) -> Iterator[App]:
    app = make_app(name, beat_schedule={
        "every-10": {"task": "proj.ping", "schedule": 10, "args": [1],
                     "options": {"queue": "beats", "priority": 3}}})
    yield app
    app.close()


def sent(app: App, queue: str = "beats") -> list[tuple[str, list[Any], dict[str, Any]]]:
    """The messages beat sent to `queue`: (task, args, headers)."""
    deliveries = app.transport.fetch([queue], 1000, 0.05)
    app.transport.ack(deliveries)
    out = []
    for d in deliveries:
        args, _kwargs, _embed = json.loads(d.envelope.body)
        out.append((d.envelope.headers["task"], args, d.envelope.headers))
    return out


def test_an_interval_entry_first_runs_one_interval_after_it_appears(app: App,
                                                                  clock: Clock) -> None:
    service = BeatService(app, clock=clock)
    assert service.tick() <= service.ttl / 3, "a pass never sleeps past the next renewal"
    assert service.token is not None, "the only beat process leads"
    assert sent(app) == []
    clock.now += 9.9
    service.tick()
    assert sent(app) == []
    clock.now += 0.2
    service.tick()
    [(task, args, headers)] = sent(app)
    assert (task, args) == ("proj.ping", [1])
    assert headers["celery_beat_task"] is True, "Celery 5.7's beat header"
    assert app.beat.status(now=clock.now)["entries"][0]["run_count"] == 1
    service.tick()
    assert sent(app) == [], "a tick is sent once"


def test_send_options_are_honoured(app: App, clock: Clock) -> None:
    service = BeatService(app, clock=clock)
    service.tick()
    clock.now += 10
    service.tick()
    deliveries = app.transport.fetch(["beats"], 10, 0.05)
    assert len(deliveries) == 1 and deliveries[0].envelope.properties.get("priority") == 3


def test_ticks_missed_during_a_failover_are_each_sent_once_late(app: App,
                                                                clock: Clock) -> None:
    service = BeatService(app, clock=clock)
    service.tick()
    clock.now += 35  # ticks at +10, +20, +30 all missed
    service.tick()
    ids = [headers["id"] for *_, headers in sent(app)]
    assert len(ids) == 3 and len(set(ids)) == 3, "each missed tick is sent once, late"
    state = app.schedule_store.states()["every-10"]
    assert (state.last_run, state.run_count) == (clock.start + 30, 3)
    service.tick()
    assert sent(app) == []
    clock.now = clock.start + 40
    service.tick()
    assert len(sent(app)) == 1, "then the schedule goes on"


def test_a_long_outage_sends_at_most_the_newest_missed_ticks(app: App, clock: Clock) -> None:
    from kernel.beat.entries import MAX_CATCH_UP

    service = BeatService(app, clock=clock)
    service.tick()
    clock.now += 10 * (MAX_CATCH_UP + 50) + 1
    service.tick()
    assert len(sent(app)) == MAX_CATCH_UP and service.skipped == 50


def test_a_tick_later_than_the_starting_deadline_is_skipped(name: str, clock: Clock) -> None:
    app = make_app(name, beat_cron_starting_deadline=2.0,
                   beat_schedule={"e": {"task": "t", "schedule": 10,
                                        "options": {"queue": "beats"}}})
    service = BeatService(app, clock=clock)
    service.tick()
    clock.now += 13
    service.tick()
    assert sent(app) == [] and service.skipped == 1
    clock.now = clock.start + 20.5
    service.tick()
    assert len(sent(app)) == 1, "a tick within the deadline is sent"


def test_two_leaders_for_a_moment_never_send_a_tick_twice(app: App, name: str,
                                                         clock: Clock) -> None:
    first = BeatService(app, owner="first", clock=clock)
    first.tick()
    other_app = make_app(name, beat_schedule=dict(app.conf.beat_schedule))
    second = BeatService(other_app, owner="second", clock=clock)
    second.tick()
    assert second.token is None, "a second process follows while the lease is held"
    clock.now += 10
    # The first leader is paused past its lease; the second takes over and sends the tick.
    app.schedule_store.release("first")
    second.tick()
    assert second.token is not None
    assert not app.schedule_store.claim("every-10", clock.start + 10, first.token or 0), \
        "the paused leader's old token cannot claim"
    first.tick()  # back from its pause: the lease is another's, nothing is sent
    assert first.token is None
    assert len(sent(app)) == 1


def test_dynamic_entries_are_seen_at_the_next_pass(app: App, clock: Clock) -> None:
    service = BeatService(app, clock=clock)
    service.tick()
    app.beat.add("dyn", "proj.dyn", 5, kwargs={"x": 1}, options={"queue": "beats"})
    clock.now = clock.start + 6.5  # the entry is anchored at the (real) time of its add
    service.tick()
    assert [t for t, *_ in sent(app)] == ["proj.dyn"]
    app.beat.disable("dyn")
    clock.now = clock.start + 30
    service.tick()
    assert [t for t, *_ in sent(app)] == ["proj.ping"] * 3, "a disabled entry sends nothing"


def test_add_list_enable_disable_remove(app: App) -> None:
    app.beat.add("dyn", "proj.dyn", 5)
    names = {e.name: e for e in app.beat.list()}
    assert set(names) == {"every-10", "dyn"} and names["dyn"].source == "dynamic"
    app.beat.disable("dyn")
    assert not {e.name: e for e in app.beat.list()}["dyn"].enabled
    app.beat.enable("dyn")
    assert {e.name: e for e in app.beat.list()}["dyn"].enabled
    app.beat.remove("dyn")
    assert "dyn" not in {e.name for e in app.beat.list()}
    with pytest.raises(UnknownEntry, match="no periodic task is named 'dyn'"):
        app.beat.remove("dyn")
    with pytest.raises(BeatEntryError, match="configuration"):
        app.beat.add("every-10", "x", 1)


def test_config_sync_keeps_state_and_removes_what_is_gone(app: App, name: str,
                                                         clock: Clock) -> None:
    service = BeatService(app, clock=clock)
    service.tick()
    clock.now += 10
    service.tick()
    assert len(sent(app)) == 1
    app.beat.add("dyn", "proj.dyn", 5)
    changed = make_app(name, beat_schedule={"every-10": {"task": "proj.ping", "schedule": 20,
                                                         "options": {"queue": "beats"}}})
    BeatService(changed, clock=clock).tick()
    stored = {e.name: e for e in changed.beat.list()}
    assert set(stored) == {"every-10", "dyn"}, "a dynamic entry survives a config sync"
    assert stored["every-10"].schedule.to_dict()["seconds"] == 20
    assert changed.schedule_store.states()["every-10"].run_count == 1, "state stays"
    BeatService(make_app(name), clock=clock).tick()
    assert {e.name for e in make_app(name).beat.list()} == {"dyn"}, \
        "a config entry no longer configured is removed"


def test_an_unreachable_store_stops_sending_and_recovers(app: App, clock: Clock,
                                                         caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    service = BeatService(app, clock=clock)
    service.tick()
    store = app.schedule_store

    def down(*args: Any) -> Any:
        raise ConnectionFailed("the store is down")

    monkeypatch.setattr(store, "acquire", down)
    clock.now += 10
    service.tick()
    service.tick()
    assert sent(app) == [] and service.token is None
    warnings = [r for r in caplog.records if "cannot reach the schedule store" in r.message]
    assert len(warnings) == 1, "an outage is logged once"
    monkeypatch.undo()
    service.tick()
    assert len(sent(app)) == 1, "the tick due during the outage is sent once it is back"
    assert any("reaches the schedule store again" in r.message for r in caplog.records)


@pytest.mark.parametrize(("entry", "sentence"), [
    ({"schedule": 10}, "periodic task 'e': 'task' is missing"),
    ({"task": "t", "schedule": "often"}, "periodic task 'e': 'schedule'"),
    ({"task": "t"}, "periodic task 'e': 'schedule' is missing"),
    ({"task": "t", "schedule": 1, "options": {"qeue": "x"}}, "did you mean 'queue'"),
    ({"task": "t", "schedule": 1, "args": "abc"}, "'args' must be a list"),
    ({"task": "t", "schedule": 1, "relative": True}, "'relative' is not an entry key"),
    ("t", "must be a dict"),
])
def test_bad_entries_are_refused_with_a_sentence(name: str, entry: Any,
                                                 sentence: str) -> None:
    app = make_app(name, beat_schedule={"e": entry})
    with pytest.raises(BeatEntryError, match=sentence.replace("(", r"\(")):
        BeatService(app)


def test_an_unknown_timezone_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="setting 'timezone'.*Mars/Olympus"):
        make_app(name, timezone="Mars/Olympus")
    app = make_app(name)
    app.conf.timezone = "Mars/Olympus"  # changed after the check: beat checks again
    with pytest.raises(ConfigurationError, match="setting 'timezone'.*Mars/Olympus"):
        BeatService(app)


def test_status_names_the_leader_and_each_entrys_runs(app: App, clock: Clock) -> None:
    service = BeatService(app, owner="host:1:abc", clock=clock)
    service.tick()
    clock.now += 10
    service.tick()
    status = app.beat.status(now=clock.now)
    assert status["leader"]["owner"] == "host:1:abc" and status["leader"]["token"] >= 1
    [row] = status["entries"]
    assert row["run_count"] == 1 and row["last_run"] is not None
    assert row["next_run"] > row["last_run"], "the next run is one interval later"
    service.stop()
    service._give_up()
    assert app.schedule_store.leader() is None, "a stopping beat gives the lead up"


def test_bad_beat_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="'beat_lease_ttl' must be a positive"):
        App("x", broker="memory://", config={"beat_lease_ttl": 0})


def test_add_periodic_task_and_the_decorator(name: str) -> None:
    app = make_app(name)

    @app.task
    def ping(n: int) -> int:
        return n

    assert app.add_periodic_task(5, ping.s(2), name="ping-2", queue="beats") == "ping-2"

    @app.periodic(60, name="hourly-report", queue="reports")
    def report() -> None:
        pass

    entries = app.beat.configured()
    assert entries["ping-2"].args == (2,) and entries["ping-2"].options == {"queue": "beats"}
    assert entries["hourly-report"].task == report.name
    with pytest.raises(BeatEntryError, match="declared twice"):
        app.add_periodic_task(5, ping.s(2), name="ping-2")


def test_the_default_store_is_the_brokers_where_it_has_one(tmp_path: Any) -> None:
    app = App("d", broker=f"sqlite:///{tmp_path / 'k.db'}")
    try:
        assert type(app.schedule_store).__name__ == "SqliteScheduleStore"
    finally:
        app.close()
    app = App("m", broker="memory://default-store")
    try:
        assert type(app.schedule_store).__name__ == "MemoryScheduleStore"
    finally:
        app.close()


def test_a_crontab_entry_runs_at_its_minutes(name: str, clock: Clock) -> None:
    from kernel import crontab

    app = make_app(name, beat_schedule={"c": {"task": "t", "schedule": crontab(minute="*/5"),
                                              "options": {"queue": "beats"}}})
    service = BeatService(app, clock=clock)
    service.tick()
    boundary = (clock.start // 300 + 1) * 300
    clock.now = boundary - 0.5
    service.tick()
    assert sent(app) == []
    clock.now = boundary + 0.5
    service.tick()
    assert len(sent(app)) == 1
    assert app.schedule_store.states()["c"].last_run == boundary


def test_preview_reads_crontabs_in_the_apps_timezone(name: str) -> None:
    app = make_app(name, timezone="Europe/Paris", beat_schedule={
        "morning": {"task": "t", "schedule": "30 7 * * mon-fri"}})
    january = 1_767_225_600.0  # 2026-01-01 00:00 UTC, a Thursday
    assert app.beat.preview(3, now=january)["morning"] == [
        "2026-01-01T07:30:00+01:00", "2026-01-02T07:30:00+01:00", "2026-01-05T07:30:00+01:00"]


@pytest.mark.parametrize(("text", "sentence"), [
    ("61 * * * *", "minute '61' is out of range"),
    ("* * * * 8", "day_of_week '8' is out of range"),
])
def test_a_malformed_crontab_names_the_entry_and_the_field(name: str, text: str,
                                                           sentence: str) -> None:
    app = make_app(name, beat_schedule={"nightly": {"task": "t", "schedule": text}})
    with pytest.raises(BeatEntryError, match=f"periodic task 'nightly': 'schedule' .*{sentence}"):
        BeatService(app)
