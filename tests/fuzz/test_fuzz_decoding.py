"""Structured fuzzing of the decoding path (tests/fuzz/decoding.py): envelopes, headers,
properties and bodies of every wrong type and size, built from a valid message, must come back
as a request or as `MessageError`, never as another exception (one that would stop a worker
thread, or bring the message back forever)."""

from __future__ import annotations

import base64
import bz2
import json
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.errors import MessageError
from tests.fuzz.decoding import decode

TASK_ID = "9b3f0c1e-0000-4000-8000-000000000001"
BODY = [[2, 40], {"y": 1}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
HEADER_NAMES = ("task", "id", "retries", "eta", "expires", "timelimit", "group", "group_index",
                "root_id", "parent_id", "ignore_result", "compression", "argsrepr", "shadow")
PROPERTY_NAMES = ("correlation_id", "reply_to", "delivery_info", "priority", "body_encoding",
                  "delivery_tag")
EMBED_NAMES = ("callbacks", "errbacks", "chain", "chord")

#: values that have broken decoders before, tried first and often.
EDGES = st.sampled_from([float("inf"), float("-inf"), float("nan"), -1, 2**64, 1e308, "", "x",
                         [], {}, [None, None], [1, 2, 3], True, None, "2026-13-45T99:00:00",
                         "Z", "\udcff"])
#: any JSON value, including the awkward ones: huge and non-finite numbers, deep nesting.
json_values = EDGES | st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


def envelope(headers: dict[str, Any] | None = None, properties: dict[str, Any] | None = None,
             body: Any = None, **top: Any) -> dict[str, Any]:
    raw_body = json.dumps(BODY if body is None else body).encode()
    found: dict[str, Any] = {
        "body": base64.b64encode(raw_body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": "tests.add", "id": TASK_ID, **(headers or {})},
        "properties": {"correlation_id": TASK_ID, "body_encoding": "base64",
                       "delivery_info": {"exchange": "", "routing_key": "celery"},
                       **(properties or {})},
    }
    found.update(top)
    return found


def only_message_errors(raw: bytes) -> None:
    try:
        decode(raw)
    except MessageError:
        pass


def test_the_valid_message_decodes() -> None:
    request, args, kwargs, embed = decode(json.dumps(envelope()).encode())
    assert (request.name, args, kwargs) == ("tests.add", [2, 40], {"y": 1})


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.dictionaries(st.sampled_from(HEADER_NAMES), json_values, min_size=1))
def test_headers_of_any_type(headers: dict[str, Any]) -> None:
    only_message_errors(json.dumps(envelope(headers=headers)).encode())


@FUZZ
@given(st.dictionaries(st.sampled_from(PROPERTY_NAMES), json_values, min_size=1))
def test_properties_of_any_type(properties: dict[str, Any]) -> None:
    only_message_errors(json.dumps(envelope(properties=properties)).encode())


@FUZZ
@given(st.dictionaries(st.sampled_from(("body", "content-type", "content-encoding", "headers",
                                        "properties")), json_values, min_size=1))
def test_envelope_fields_of_any_type(fields: dict[str, Any]) -> None:
    only_message_errors(json.dumps({**envelope(), **fields}).encode())


@FUZZ
@given(json_values)
def test_bodies_of_any_shape(body: Any) -> None:
    only_message_errors(json.dumps(envelope(body=body)).encode())


@FUZZ
@given(st.dictionaries(st.sampled_from(EMBED_NAMES), json_values, min_size=1),
       st.lists(json_values, max_size=3), st.dictionaries(json_values.filter(
           lambda v: isinstance(v, str)), json_values, max_size=3))
def test_canvas_embeds_of_any_shape(embed: dict[str, Any], args: list[Any],
                                    kwargs: dict[str, Any]) -> None:
    only_message_errors(json.dumps(envelope(body=[args, kwargs, embed])).encode())


@FUZZ
@given(st.sampled_from(EMBED_NAMES), st.dictionaries(
    st.sampled_from(("task", "args", "kwargs", "options", "subtask_type", "immutable")),
    json_values, min_size=1))
def test_signatures_of_any_shape(where: str, signature: dict[str, Any]) -> None:
    embed = {where: signature if where == "chord" else [signature]}
    only_message_errors(json.dumps(envelope(body=[[], {}, embed])).encode())


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(
    [None, "application/x-gzip", "application/x-bz2", "zlib", "bzip2", "application/x-nope"]),
    st.sampled_from(["application/json", "application/x-python-serialize", "text/plain"]))
def test_body_bytes_of_any_kind(body: bytes, compression: str | None, content_type: str) -> None:
    headers = {"compression": compression} if compression else {}
    message = envelope(headers=headers, **{"content-type": content_type})
    message["body"] = base64.b64encode(body).decode()
    only_message_errors(json.dumps(message).encode())


@FUZZ
@given(st.binary(max_size=300))
def test_raw_bytes(raw: bytes) -> None:
    only_message_errors(raw)


@pytest.mark.parametrize("raw", [
    # the cases that escaped before: a retries header read as infinity, nesting deeper than
    # the recursion limit (envelope, body and canvas), a body that is not UTF-8
    json.dumps(envelope()).replace('"lang"', '"retries": 1e999, "lang"').encode(),
    b'{"body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    json.dumps(envelope(body=[])).replace('"body": ""', '"body": ""').encode(),
    json.dumps({**envelope(), "body": base64.b64encode(
        b"[" * 100_000 + b"]" * 100_000).decode()}).encode(),
    json.dumps(envelope(body=[[], {}, {"chain": [{"task": "t", "options": {
        "link": [{"task": "u"}] * 2}}] * 3}])).encode(),
    json.dumps({**envelope(), "body": base64.b64encode(b"\xff\xfe").decode()}).encode(),
    json.dumps({**envelope(headers={"compression": "application/x-gzip"}),
                "body": base64.b64encode(zlib.compress(b"[" * 100_000)).decode()}).encode(),
    json.dumps({**envelope(headers={"compression": "application/x-bz2"}),
                "body": base64.b64encode(bz2.compress(b"{")).decode()}).encode(),
], ids=["infinite-retries", "deep-envelope", "empty-body", "deep-body", "valid-canvas",
        "not-utf8", "deep-compressed", "truncated-json"])
def test_known_bad_messages(raw: bytes) -> None:
    only_message_errors(raw)


def test_a_deep_canvas_is_refused_with_a_reason() -> None:
    chain: Any = {"task": "t"}
    for _ in range(200):
        chain = {"task": "celery.chain", "subtask_type": "chain", "kwargs": {"tasks": [chain]}}
    with pytest.raises(MessageError, match="nests deeper"):
        decode(json.dumps(envelope(body=[[], {}, {"chain": [chain]}])).encode())


@pytest.mark.parametrize(("headers", "reason"), [
    ({"retries": 1e999}, "'retries' must be a whole number"),
    ({"retries": -1}, "'retries' must be a whole number"),
    ({"timelimit": [float("inf"), None]}, "'timelimit' must be"),
    ({"group_index": "1"}, "'group_index' must be a whole number"),
    ({"eta": 5}, "header 'eta': bad timestamp"),
    ({"id": {"a": 1}}, "header 'id' must be a string"),
    ({"root_id": 7}, "header 'root_id' must be a string"),
])
def test_bad_headers_are_refused_with_a_reason(headers: dict[str, Any], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode(json.dumps(envelope(headers=headers)).encode())
