"""``kernel beat``: --preview and --status (text and JSON), add/list/enable/disable/remove, bad
schedules refused with a sentence and a non-zero status, and ``kernel worker -B`` running the
periodic tasks inside a worker."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess

BEAT_SOURCE = """
    from kernel import App

    app = App("beatcli", config={{
        "beat_schedule": {{"every-30": {{"task": "beatcli.ping", "schedule": 30,
                                         "kwargs": {{"path": {path!r}}}}}}},
        "beat_max_loop_interval": 0.5, "beat_lease_ttl": 2.0,
    }})

    @app.task(name="beatcli.ping")
    def ping(path):
        with open(path, "a") as f:
            f.write("tick\\n")
"""


@pytest.fixture
def beat_app(make_module: Callable[[str], str], tmp_path: Path) -> str:
    return make_module(BEAT_SOURCE.format(path=str(tmp_path / "ticks.txt"))) + ":app"


def test_add_takes_a_crontab(invoke: Callable[..., Result], beat_app: str) -> None:
    added = invoke("-A", beat_app, "beat", "add", "weekday", "beatcli.ping", "--crontab",
                   "30 7 * * mon-fri")
    assert added.exit_code == 0, added.output
    times = json.loads(invoke("-A", beat_app, "beat", "--preview", "2", "--json").output)
    assert all(t.endswith("07:30:00+00:00") for t in times["weekday"])


def test_add_takes_a_one_off_time(invoke: Callable[..., Result], beat_app: str) -> None:
    added = invoke("-A", beat_app, "beat", "add", "once", "beatcli.ping", "--at",
                   "2030-01-01T09:00:00+00:00")
    assert added.exit_code == 0, added.output
    times = json.loads(invoke("-A", beat_app, "beat", "--preview", "3", "--json").output)
    assert times["once"] == ["2030-01-01T09:00:00+00:00"], "a clocked entry fires once"


def test_preview_prints_the_next_fire_times(invoke: Callable[..., Result],
                                            beat_app: str) -> None:
    done = invoke("-A", beat_app, "beat", "--preview", "3", "--json")
    assert done.exit_code == 0, done.output
    times = json.loads(done.output)
    assert list(times) == ["every-30"] and len(times["every-30"]) == 3
    text = invoke("-A", beat_app, "beat", "--preview", "2")
    assert text.exit_code == 0 and text.output.startswith("every-30:")


def test_add_list_disable_enable_remove_and_status(invoke: Callable[..., Result],
                                                   beat_app: str) -> None:
    added = invoke("-A", beat_app, "beat", "add", "nightly", "beatcli.ping", "--every", "60",
                   "--kwargs", '{"path": "/dev/null"}', "--options", '{"queue": "celery"}')
    assert added.exit_code == 0, added.output
    listed = json.loads(invoke("-A", beat_app, "beat", "list", "--json").output)
    assert {e["name"]: e["source"] for e in listed} == {"every-30": "config",
                                                        "nightly": "dynamic"}
    assert invoke("-A", beat_app, "beat", "disable", "nightly").exit_code == 0
    assert "nightly [disabled]" in invoke("-A", beat_app, "beat", "list").output
    assert invoke("-A", beat_app, "beat", "enable", "nightly").exit_code == 0
    status = json.loads(invoke("-A", beat_app, "beat", "--status", "--json").output)
    assert status["leader"] is None, "no beat runs"
    rows = {r["name"]: r for r in status["entries"]}
    assert rows["nightly"]["enabled"] and rows["nightly"]["run_count"] == 0
    assert rows["nightly"]["next_run"] is not None
    assert "leader: none" in invoke("-A", beat_app, "beat", "--status").output
    assert invoke("-A", beat_app, "beat", "remove", "nightly").exit_code == 0
    gone = invoke("-A", beat_app, "beat", "remove", "nightly")
    assert gone.exit_code == 2 and "no periodic task is named 'nightly'" in gone.output
    config = invoke("-A", beat_app, "beat", "remove", "every-30")
    assert config.exit_code == 2 and "is an entry of the configuration" in config.output


def test_bad_schedules_are_sentences_with_a_failing_status(
        invoke: Callable[..., Result], make_module: Callable[[str], str]) -> None:
    bad = make_module("""
        from kernel import App
        app = App("badbeat", config={"beat_schedule": {
            "broken": {"task": "x", "schedule": "every day"}}})
    """)
    for args in (("beat",), ("beat", "--preview", "1"), ("worker", "-B")):
        done = invoke("-A", f"{bad}:app", *args)
        assert done.exit_code == 2, done.output
        assert "periodic task 'broken': 'schedule'" in done.output
        assert "Traceback" not in done.output
    zone = make_module("""
        from kernel import App
        app = App("badzone", config={"timezone": "Mars/Olympus"})
    """)
    done = invoke("-A", f"{zone}:app", "beat", "--preview", "1")
    assert done.exit_code == 2 and "setting 'timezone'" in done.output
    plain = make_module("""
        from kernel import App
        app = App("plainbeat")
    """)
    no_schedule = invoke("-A", f"{plain}:app", "beat", "add", "x", "t")
    assert no_schedule.exit_code == 2 and "give the schedule once" in no_schedule.output
    cron = invoke("-A", f"{plain}:app", "beat", "add", "x", "t", "--crontab", "61 * * * *")
    assert cron.exit_code == 2 and "minute '61' is out of range" in cron.output


@pytest.mark.timeout(60)
def test_worker_dash_b_runs_the_periodic_tasks(tmp_path: Path, db_url: str,
                                               make_module: Callable[[str], str]) -> None:
    ticks = tmp_path / "ticks.txt"
    module = make_module(BEAT_SOURCE.format(path=str(ticks)).replace('"schedule": 30',
                                                                     '"schedule": 0.5'))
    worker = WorkerProcess(f"{module}:app", broker=db_url, results=db_url,
                           log=tmp_path / "worker.log", path=tmp_path, loglevel="info",
                           args=["-B"], cwd=tmp_path)
    with worker:
        worker.wait_ready()
        wait_for(lambda: ticks.exists() and ticks.read_text().count("tick") >= 3, 30,
                 f"the embedded beat's ticks to run; {worker.where()}")
    assert "leads" in worker.output()
