"""``kernel call``, ``kernel result`` and ``kernel purge`` against a SQLite file, no worker:
what `call` sends is read back from the broker; results are stored the way a worker stores them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from kernel import App, states
from kernel.message import from_iso


def take_one(client: App, queue: str = "celery", timeout: float = 1.0
             ) -> tuple[dict[str, Any], list[Any], dict[str, Any], dict[str, Any]]:
    """(headers, args, kwargs, properties) of the single message waiting in `queue`; a delayed
    one is taken once due (within `timeout`)."""
    assert client.transport.size(queue) == 1
    [delivery] = client.transport.fetch([queue], 10, timeout)
    envelope = delivery.envelope
    args, kwargs, _embed = client.codec.decode(envelope.body, envelope.content_type)
    return envelope.headers, args, kwargs, envelope.properties


def test_call_sends_the_task_with_json_or_string_arguments(
        invoke: Callable[..., Result], client: App) -> None:
    result = invoke("call", "proj.add", "2", "x", '"3"', "[1, 2]", "true", "--kwargs",
                    '{"scale": 1.5}')
    assert result.exit_code == 0, result.output
    task_id = result.stdout.strip()
    headers, args, kwargs, _ = take_one(client)
    assert headers["task"] == "proj.add" and headers["id"] == task_id
    assert args == [2, "x", "3", [1, 2], True]
    assert kwargs == {"scale": 1.5}


def test_arguments_starting_with_a_dash_follow_a_double_dash(
        invoke: Callable[..., Result], client: App) -> None:
    assert invoke("call", "proj.add", "--", "-1", "-x").exit_code == 0
    _, args, _, _ = take_one(client)
    assert args == [-1, "-x"]


def test_queue_and_priority_reach_the_message(invoke: Callable[..., Result],
                                              client: App) -> None:
    result = invoke("call", "proj.add", "1", "--queue", "emails", "--priority", "7")
    assert result.exit_code == 0, result.output
    headers, _, _, properties = take_one(client, "emails")
    assert properties["priority"] == 7 and headers["eta"] is None


def test_countdown_delays_the_message(invoke: Callable[..., Result], client: App) -> None:
    before = time.time()
    assert invoke("call", "proj.add", "1", "--countdown", "0.5").exit_code == 0
    headers, _, _, _ = take_one(client, timeout=10)
    eta = from_iso(headers["eta"])
    assert eta is not None and before + 0.5 <= eta <= time.time()


def test_eta_without_a_zone_is_local_time(invoke: Callable[..., Result], client: App) -> None:
    local = time.localtime(time.time() + 1)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    assert invoke("call", "proj.add", "--eta", text).exit_code == 0
    headers, _, _, _ = take_one(client, timeout=10)
    assert from_iso(headers["eta"]) == time.mktime(local)


@pytest.mark.parametrize(("args", "message"), [
    (["--kwargs", "[1]"], "must be a JSON object"),
    (["--kwargs", "{x"], "not valid JSON"),
    (["--eta", "tomorrow"], "not an ISO-8601 time"),
    (["--countdown", "5", "--eta", "2030-01-01T00:00:00"], "not both"),
    (["--timeout", "5"], "only with --wait"),
    (["--priority", "12"], "0<=x<=9"),
])
def test_bad_call_options_are_usage_errors(invoke: Callable[..., Result], client: App,
                                           args: list[str], message: str) -> None:
    result = invoke("call", "proj.add", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert client.transport.size("celery") == 0


def test_result_shows_a_success(invoke: Callable[..., Result], client: App) -> None:
    client.backend.store_result("t-ok", states.SUCCESS, {"sum": 5})
    result = invoke("result", "t-ok")
    assert result.exit_code == 0, result.output
    assert "state: SUCCESS" in result.stdout
    assert 'result: {"sum": 5}' in result.stdout

    record = json.loads(invoke("result", "t-ok", "--json").stdout)
    assert record["status"] == "SUCCESS" and record["result"] == {"sum": 5}
    assert record["task_id"] == "t-ok" and record["date_done"]


def test_result_of_a_failure_shows_the_error_and_exits_1(invoke: Callable[..., Result],
                                                         client: App) -> None:
    client.backend.store_result("t-bad", states.FAILURE, KeyError("missing-key"),
                                traceback="Traceback (most recent call last):\nKeyError\n")
    result = invoke("result", "t-bad")
    assert result.exit_code == 1
    assert "state: FAILURE" in result.stdout
    assert "KeyError: 'missing-key'" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr

    as_json = invoke("result", "t-bad", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["result"]["exc_type"] == "KeyError"


def test_result_of_an_unknown_id_is_unknown_and_of_a_sent_one_pending(
        invoke: Callable[..., Result], client: App) -> None:
    result = invoke("result", "never-sent")
    assert result.exit_code == 0
    assert "state: UNKNOWN" in result.stdout
    assert json.loads(invoke("result", "never-sent", "--json").stdout)["status"] == "UNKNOWN"
    sent = client.send_task("x.y", (1,))
    assert "state: PENDING" in invoke("result", sent.id).stdout


def test_waiting_for_a_result_that_never_comes_times_out_with_status_2(
        invoke: Callable[..., Result]) -> None:
    result = invoke("result", "never-sent", "--wait", "--timeout", "0.2")
    assert result.exit_code == 2
    assert "did not finish within 0.2 s" in result.stderr
    assert "Traceback" not in result.output


def test_purge_with_force_deletes_and_counts_per_queue(invoke: Callable[..., Result],
                                                       client: App) -> None:
    client.send_many([("proj.add", [i], {}) for i in range(3)])
    client.send_many([("proj.add", [i], {}) for i in range(2)], queue="emails")
    client.send_task("proj.add", [9], queue="other")
    result = invoke("purge", "-Q", "celery,emails", "-f")
    assert result.exit_code == 0, result.output
    assert "celery: 3 messages deleted" in result.stdout
    assert "emails: 2 messages deleted" in result.stdout
    assert client.transport.size("celery") == client.transport.size("emails") == 0
    assert client.transport.size("other") == 1


def test_purge_asks_first(invoke: Callable[..., Result], client: App) -> None:
    client.send_many([("proj.add", [i], {}) for i in range(4)])
    declined = invoke("purge", input="n\n")
    assert declined.exit_code == 1
    assert "celery (4 waiting)" in declined.output
    assert client.transport.size("celery") == 4

    accepted = invoke("purge", input="y\n")
    assert accepted.exit_code == 0
    assert "celery: 4 messages deleted" in accepted.stdout
    assert client.transport.size("celery") == 0

