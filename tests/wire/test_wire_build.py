"""What kernel's client puts on the wire, compared with what Celery 5.7 sends (§1.8, §1.9, §1.4).

Messages are captured by a transport registered programmatically, which also proves that
`App(plugins=[...])` can provide a broker with no entry point at all.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest

from kernel import App
from kernel.hookspecs import hookimpl
from kernel.interfaces.transport import Delivery, Outgoing, Transport, TransportCapabilities
from kernel.message import Envelope, Request, from_iso, parse_body
from kernel.specs import Options, TransportSpec

from .test_wire_parse import FULL_HEADERS, MINIMAL


class CaptureTransport(Transport):
    """Keeps what is published; delivers nothing."""

    capabilities = TransportCapabilities(multi_process=False, inspect_queues=False)

    def __init__(self, url: str, options: Options) -> None:
        self.url = url
        self.published: list[Outgoing] = []

    def publish(self, messages: Sequence[Outgoing]) -> None:
        self.published.extend(messages)

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        return []

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        pass

    def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        pass


class CapturePlugin:
    @hookimpl
    def kernel_transports(self) -> Any:
        yield TransportSpec("capture", ("capture",), CaptureTransport,
                            CaptureTransport.capabilities)


@pytest.fixture
def app() -> App:
    app = App("t", plugins=[CapturePlugin()], broker="capture://")

    @app.task(name="tasks.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="tasks.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task(name="tasks.fail")
    def fail() -> None:
        raise RuntimeError("fails")

    return app


def sent(app: App) -> list[Outgoing]:
    transport = app.transport
    assert isinstance(transport, CaptureTransport)
    return transport.published


def test_capture_broker_has_no_result_store_so_results_are_off(app: App) -> None:
    assert app.conf.result_backend is None
    assert isinstance(app.transport, CaptureTransport)
    assert app.plugins.transports.get("capture").name == "capture"


def test_apply_async_with_most_options_matches_celery(app: App) -> None:
    before = time.time()
    result = app.tasks["tasks.add"].apply_async(
        (2,), {"y": 3}, countdown=60, expires=120, priority=5, time_limit=30, soft_time_limit=20,
        shadow="shadowname", headers={"custom": "hdr"}, ignore_result=True)
    after = time.time()
    [out] = sent(app)
    env = out.envelope
    h = env.headers
    assert set(h) == set(FULL_HEADERS), (
        f"extra: {set(h) - set(FULL_HEADERS)}, missing: {set(FULL_HEADERS) - set(h)}")
    assert h["task"] == "tasks.add" and h["id"] == result.id == h["root_id"]
    assert h["lang"] == "py" and h["parent_id"] is None and h["retries"] == 0
    assert h["timelimit"] == [30, 20]
    assert h["shadow"] == "shadowname" and h["custom"] == "hdr" and h["ignore_result"] is True
    assert h["argsrepr"] == "(2,)" and h["kwargsrepr"] == "{'y': 3}"
    for key, offset in (("eta", 60), ("expires", 120)):
        assert h[key].endswith("+00:00"), h[key]
        stamp = from_iso(h[key])
        assert stamp is not None and before + offset <= stamp <= after + offset
    props = env.properties
    assert props["correlation_id"] == result.id
    assert props["expiration"] == "120000"
    assert props["priority"] == 5 and props["delivery_mode"] == 2
    assert env.content_type == "application/json" and env.content_encoding == "utf-8"
    assert json.loads(env.body) == [[2], {"y": 3}, {"callbacks": None, "errbacks": None,
                                                   "chain": None, "chord": None}]
    # the broker holds it until the countdown passes
    assert out.queue == "celery" and out.priority == 5
    assert out.not_before is not None and before + 60 <= out.not_before <= after + 60


def test_envelope_json_is_kombus_redis_envelope(app: App) -> None:
    app.tasks["tasks.add"].delay(2, 40)
    [out] = sent(app)
    raw = json.loads(out.envelope.to_json("celery"))
    assert set(raw) == set(MINIMAL)
    assert raw["content-type"] == "application/json" and raw["content-encoding"] == "utf-8"
    assert json.loads(base64.b64decode(raw["body"])) == [[2, 40], {}, {
        "callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    props = raw["properties"]
    assert props["body_encoding"] == "base64"
    assert props["delivery_info"] == {"exchange": "", "routing_key": "celery"}
    assert isinstance(props["delivery_tag"], str) and props["delivery_tag"]
    assert set(MINIMAL["properties"]) <= set(props)
    assert {"lang", "task", "id"} <= set(raw["headers"])


def test_envelope_json_round_trips(app: App) -> None:
    app.tasks["tasks.add"].apply_async((1, 2), queue="q1", headers={"x": [1, "two"]})
    [out] = sent(app)
    data = out.envelope.to_json(out.queue)
    back = Envelope.from_json(data)
    assert back.body == out.envelope.body
    assert back.headers == out.envelope.headers
    assert (back.content_type, back.content_encoding) == (
        out.envelope.content_type, out.envelope.content_encoding)
    assert back.properties["delivery_info"]["routing_key"] == "q1"
    request = Request.from_envelope(back)
    assert request.name == "tasks.add" and request.headers["x"] == [1, "two"]
    # each serialization gets its own delivery tag, as kombu does
    assert json.loads(out.envelope.to_json("q1"))["properties"]["delivery_tag"] != (
        back.properties["delivery_tag"])


def test_link_and_link_error_land_in_embed_as_signature_dicts(app: App) -> None:
    add, mul, fail = (app.tasks[n] for n in ("tasks.add", "tasks.mul", "tasks.fail"))
    add.apply_async((2, 3), link=mul.s(10), link_error=fail.si())
    [out] = sent(app)
    _, _, embed = parse_body(json.loads(out.envelope.body))
    keys = {"task", "args", "kwargs", "options", "subtask_type", "immutable"}  # §1.4
    assert embed["callbacks"] == [{"task": "tasks.mul", "args": [10], "kwargs": {}, "options": {},
                                   "subtask_type": None, "immutable": False}]
    assert embed["errbacks"] == [{"task": "tasks.fail", "args": [], "kwargs": {}, "options": {},
                                  "subtask_type": None, "immutable": True}]
    assert set(embed["callbacks"][0]) == set(embed["errbacks"][0]) == keys
    assert embed["chain"] is None and embed["chord"] is None


def test_several_links_keep_their_order(app: App) -> None:
    add, mul = app.tasks["tasks.add"], app.tasks["tasks.mul"]
    add.apply_async((1, 1), link=[mul.s(2), mul.s(3).set(queue="other")])
    [out] = sent(app)
    _, _, embed = parse_body(json.loads(out.envelope.body))
    assert [cb["args"] for cb in embed["callbacks"]] == [[2], [3]]
    assert embed["callbacks"][1]["options"] == {"queue": "other"}


def test_compressed_body_is_marked_with_kombus_header(app: App) -> None:
    app.tasks["tasks.add"].apply_async((2, 40), compression="zlib")
    [out] = sent(app)
    assert out.envelope.headers["compression"] == "application/x-gzip"
    decoded = app.codec.decode(out.envelope.body, out.envelope.content_type,
                               out.envelope.headers["compression"])
    assert decoded[0] == [2, 40]


def test_task_ids_and_delivery_tags_are_version_4_uuids(app: App) -> None:
    """Celery and its dashboards parse task ids as UUIDs: every id kernel makes is a random
    RFC 4122 version 4 UUID in its canonical text form, and none repeats."""
    import uuid

    from kernel.message import new_id

    ids = [new_id() for _ in range(2000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122) and str(parsed) == text
    assert len(set(ids)) == len(ids)
    app.tasks["tasks.add"].delay(1, 2)
    [out] = sent(app)
    tag = json.loads(out.envelope.to_json("celery"))["properties"]["delivery_tag"]
    assert uuid.UUID(tag).version == 4 and uuid.UUID(out.envelope.headers["id"]).version == 4


def test_to_json_properties_override_the_envelopes_own_on_the_wire_only(app: App) -> None:
    app.tasks["tasks.add"].apply_async((1, 2), priority=3)
    [out] = sent(app)
    raw = json.loads(out.envelope.to_json("celery", properties={"priority": 6}))
    assert raw["properties"]["priority"] == 6
    assert out.envelope.properties["priority"] == 3
