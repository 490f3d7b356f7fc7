"""Reading what real Celery 5.7 clients send (samples from reference/celery-protocol.md §1.8–§1.11):
the kombu envelope, the v2 headers a worker relies on, and the ``[args, kwargs, embed]`` body."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from kernel.canvas import Signature
from kernel.errors import DecodeError, MessageError
from kernel.message import Envelope, Request, parse_body

TASK_ID = "bb18765b-c411-483f-b53f-72c3591cc12b"

#: §1.8: the smallest message a real Celery 5.7 worker accepted.
MINIMAL_BODY = '[[2,40],{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
MINIMAL: dict[str, Any] = {
    "body": base64.b64encode(MINIMAL_BODY.encode()).decode(),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    "headers": {"lang": "py", "task": "tasks.add", "id": TASK_ID},
    "properties": {"correlation_id": TASK_ID,
                   "delivery_tag": "4b4c1a8e-3c4d-4b8e-9a41-5b1f0c1e2d3f",
                   "body_encoding": "base64",
                   "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0},
}

#: §1.9: apply_async with most options, as captured (body shown decoded there).
FULL_BODY = [[2], {"y": 3}, {
    "callbacks": [{"task": "tasks.mul", "args": [10], "kwargs": {}, "options": {},
                   "subtask_type": None, "immutable": False}],
    "errbacks": [{"task": "tasks.fail", "args": [], "kwargs": {}, "options": {},
                  "subtask_type": None, "immutable": True}],
    "chain": None, "chord": None}]
FULL_HEADERS: dict[str, Any] = {
    "lang": "py", "task": "tasks.add", "id": TASK_ID, "shadow": "shadowname",
    "eta": "2026-11-24T00:14:08.671543+00:00", "expires": "2026-11-24T00:15:08.671543+00:00",
    "group": None, "group_index": None, "retries": 0, "timelimit": [30, 20],
    "root_id": TASK_ID, "parent_id": None, "argsrepr": "(2,)", "kwargsrepr": "{'y': 3}",
    "origin": "gen6466@vm", "ignore_result": True, "replaced_task_nesting": 0,
    "stamped_headers": None, "stamps": {}, "custom": "hdr"}
FULL_PROPERTIES: dict[str, Any] = {
    "correlation_id": TASK_ID, "reply_to": "9e456fad-4e1b-3160-8d5b-5a67890e1962",
    "delivery_mode": 2, "expiration": "120000",
    "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 5,
    "body_encoding": "base64", "delivery_tag": "518c08e3-a9fd-4cc8-aec2-6decb843d401"}


def wire(headers: dict[str, Any], body: Any = FULL_BODY,
         properties: dict[str, Any] | None = None) -> bytes:
    """A kombu Redis envelope as a Celery client LPUSHes it: the body JSON, base64-encoded."""
    return json.dumps({
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8", "content-type": "application/json",
        "headers": headers, "properties": properties or FULL_PROPERTIES,
    }).encode()


def unix(iso: str) -> float:
    return datetime.fromisoformat(iso).astimezone(timezone.utc).timestamp()


# ------------------------------------------------------------------------------ envelope


def test_minimal_celery_message_parses() -> None:
    envelope = Envelope.from_json(json.dumps(MINIMAL))
    assert envelope.body == MINIMAL_BODY.encode()
    assert envelope.content_type == "application/json"
    assert envelope.content_encoding == "utf-8"
    assert envelope.properties["delivery_info"] == {"exchange": "", "routing_key": "celery"}
    assert parse_body(json.loads(envelope.body)) == (
        [2, 40], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})


def test_plain_json_string_body_without_body_encoding_parses() -> None:
    # Real workers accept a body that is the JSON text itself, with no body_encoding property.
    raw = dict(MINIMAL, body=MINIMAL_BODY,
               properties={"delivery_tag": "t1",
                           "delivery_info": {"exchange": "", "routing_key": "celery"}})
    envelope = Envelope.from_json(json.dumps(raw).encode())
    assert envelope.body == MINIMAL_BODY.encode()
    assert Request.from_envelope(envelope).name == "tasks.add"


def test_envelope_that_is_not_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not a JSON envelope"):
        Envelope.from_json(b"LPUSH by hand \x00")
    with pytest.raises(DecodeError, match="no 'body'"):
        Envelope.from_json(b'{"headers": {}}')
    with pytest.raises(DecodeError, match="base64"):
        Envelope.from_json(json.dumps(dict(MINIMAL, body="@@not base64@@")))


@pytest.mark.parametrize("field", [{"properties": [1]}, {"headers": "task=add"},
                                   {"content-type": 5}])
def test_envelope_fields_of_the_wrong_type_are_a_decode_error(field: dict[str, Any]) -> None:
    with pytest.raises(DecodeError, match="are not"):
        Envelope.from_json(json.dumps({**MINIMAL, **field}))


# ------------------------------------------------------------------------------ headers


def test_full_celery_message_yields_request() -> None:
    request = Request.from_envelope(Envelope.from_json(wire(FULL_HEADERS)))
    assert request.id == TASK_ID
    assert request.name == "tasks.add"
    assert request.eta == pytest.approx(unix("2026-11-24T00:14:08.671543+00:00"))
    assert request.expires == pytest.approx(unix("2026-11-24T00:15:08.671543+00:00"))
    assert request.retries == 0
    # Celery sends [hard, soft] whatever its docs say: time_limit=30, soft_time_limit=20.
    assert (request.time_limit, request.soft_time_limit) == (30, 20)
    assert request.root_id == TASK_ID
    assert request.parent_id is None
    assert request.group_id is None and request.group_index is None
    assert request.ignore_result is True
    assert request.headers["custom"] == "hdr"
    assert request.properties["priority"] == 5


def test_group_member_headers_are_read() -> None:
    headers = dict(FULL_HEADERS, group="f7b62308-0000-4000-8000-000000000001", group_index=1,
                   parent_id="df405702-0000-4000-8000-000000000002", retries=2)
    request = Request.from_envelope(Envelope.from_json(wire(headers)))
    assert request.group_id == "f7b62308-0000-4000-8000-000000000001"
    assert request.group_index == 1
    assert request.parent_id == "df405702-0000-4000-8000-000000000002"
    assert request.retries == 2


def test_missing_optional_headers_take_defaults() -> None:
    request = Request.from_envelope(Envelope.from_json(json.dumps(MINIMAL)))
    assert (request.id, request.name) == (TASK_ID, "tasks.add")
    assert request.eta is None and request.expires is None
    assert request.retries == 0
    assert request.time_limit is None and request.soft_time_limit is None
    assert request.root_id is None and request.parent_id is None
    assert request.ignore_result is False


def test_pre_53_timestamps_with_z_and_naive_are_utc() -> None:
    for eta in ("2026-11-24T00:14:08.671543Z", "2026-11-24T00:14:08.671543"):
        headers = {"task": "tasks.add", "id": TASK_ID, "eta": eta}
        request = Request.from_envelope(Envelope.from_json(wire(headers)))
        assert request.eta == pytest.approx(unix("2026-11-24T00:14:08.671543+00:00"))


@pytest.mark.parametrize("missing", ["task", "id"])
def test_missing_task_or_id_is_a_message_error(missing: str) -> None:
    headers = {k: v for k, v in FULL_HEADERS.items() if k != missing}
    envelope = Envelope.from_json(wire(headers))
    with pytest.raises(MessageError, match=f"no '{missing}' header") as caught:
        Request.from_envelope(envelope)
    assert "send with" in str(caught.value)  # tells the user what to do


@pytest.mark.parametrize(("header", "value"), [
    ("timelimit", "ab"),
    ("timelimit", [30]),
    ("timelimit", ["thirty", 20]),
    ("retries", "many"),
    ("eta", 1764000000),
    ("expires", "next tuesday"),
])
def test_malformed_header_is_a_message_error(header: str, value: Any) -> None:
    headers = dict(FULL_HEADERS, **{header: value})
    with pytest.raises(MessageError, match=f"header '{header}'"):
        Request.from_envelope(Envelope.from_json(wire(headers)))


# ------------------------------------------------------------------------------ body


def test_body_of_three_elements_is_args_kwargs_embed() -> None:
    args, kwargs, embed = parse_body(FULL_BODY)
    assert args == [2] and kwargs == {"y": 3}
    assert [Signature.from_dict(s).name for s in embed["callbacks"]] == ["tasks.mul"]
    errback = Signature.from_dict(embed["errbacks"][0])
    assert errback.name == "tasks.fail" and errback["immutable"] is True


def test_two_element_body_is_refused_with_a_sentence() -> None:
    # A 2-element body crashes real Celery workers on every restart; we refuse it instead.
    with pytest.raises(MessageError, match=r"must be \[args, kwargs, embed\], got a 2-element"):
        parse_body([[2, 40], {}])


@pytest.mark.parametrize("body", [
    {"args": [1]},
    [[1], {}, {}, {}],
    [{"x": 1}, {}, {}],
    [[1], [2], {}],
    [[1], {}, [3]],
    [[1], {}, "embed"],
])
def test_malformed_body_is_a_message_error(body: Any) -> None:
    with pytest.raises(MessageError, match="task body must be"):
        parse_body(body)


def test_empty_embed_is_accepted() -> None:
    assert parse_body([[1], {}, {}]) == ([1], {}, {})
    assert parse_body([[1], {}, None]) == ([1], {}, {})


def test_chain_body_keeps_remaining_steps_in_reverse_order() -> None:
    # §1.10: chain(add.s(1,2), mul.s(3), add.s(4), tsum.si([1,2])) publishes only the first step.
    reply_to = "02a7348a-0000-4000-8000-000000000000"
    ids = ["15977c48-0000-4000-8000-000000000001", "d878753f-0000-4000-8000-000000000002",
           "fa875077-0000-4000-8000-000000000003"]
    body = [[1, 2], {}, {"callbacks": None, "errbacks": None, "chord": None, "chain": [
        {"task": "tasks.tsum", "args": [[1, 2]], "kwargs": {},
         "options": {"task_id": ids[0], "reply_to": reply_to}, "subtask_type": None,
         "immutable": True},
        {"task": "tasks.add", "args": [4], "kwargs": {},
         "options": {"task_id": ids[1], "reply_to": reply_to}, "subtask_type": None,
         "immutable": False},
        {"task": "tasks.mul", "args": [3], "kwargs": {},
         "options": {"task_id": ids[2], "reply_to": reply_to}, "subtask_type": None,
         "immutable": False}]}]
    headers = {"task": "tasks.add", "id": "4412fd75", "root_id": "4412fd75"}
    envelope = Envelope.from_json(wire(headers, body))
    args, kwargs, embed = parse_body(json.loads(envelope.body))
    assert (args, kwargs) == ([1, 2], {})
    steps = [Signature.from_dict(s) for s in embed["chain"]]
    # the next step to run is the LAST element
    assert [s.name for s in steps] == ["tasks.tsum", "tasks.add", "tasks.mul"]
    assert [s["options"]["task_id"] for s in steps] == ids
    assert [s["immutable"] for s in steps] == [True, False, False]
    assert steps[0]["args"] == [[1, 2]]


def test_chord_header_member_carries_the_body_signature() -> None:
    # §1.11: a header member of chord([add.s(1,2), add.s(3,4)], tsum.s()).
    gid = "f7b62308-0000-4000-8000-000000000000"
    body = [[1, 2], {}, {"callbacks": None, "errbacks": None, "chain": None,
                         "chord": {"task": "tasks.tsum", "args": [], "kwargs": {},
                                   "options": {"task_id": "4caf4d74-0000-4000-8000-000000000000",
                                               "reply_to": "cd9cf1ba", "group_id": gid},
                                   "subtask_type": None, "immutable": False}}]
    headers = {"task": "tasks.add", "id": TASK_ID, "group": gid, "group_index": 0}
    envelope = Envelope.from_json(wire(headers, body))
    request = Request.from_envelope(envelope)
    assert (request.group_id, request.group_index) == (gid, 0)
    _, _, embed = parse_body(json.loads(envelope.body))
    chord = Signature.from_dict(embed["chord"])
    assert chord.name == "tasks.tsum"
    assert chord["options"]["group_id"] == gid
