"""What the SQS transport adds to the conformance suite, on moto's server: batched calls and long
polls, kombu's body, delays past SQS's 15 minutes in hops, FIFO groups and deduplication, the
dead-letter queue (kernel's, or a redrive policy's), missing queues, predefined queues, an
assumed role, refused credentials, throttling, an undecodable body and an emulator restart.

Throttling is made up at botocore's boundary (a ``before-send`` handler answers as SQS would):
moto never throttles. Everything else is moto's own answer."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.awsrequest
import pytest

from kernel.interfaces.transport import Outgoing
from kernel.plugin import ConfigurationError, ConnectionFailed, Envelope
from kernel.testing.transport import make_envelope, wait_for
from kernel_sqs.testing import SQSServer
from kernel_sqs.transport import SQSTransport

Make = Callable[..., SQSTransport]


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex}"


def calls(transport: SQSTransport, operation: str, queue: str | None = None) -> list[str]:
    """The `operation` requests this thread's client sends from now on (a list that grows)."""
    sent: list[str] = []
    client = transport.connection.client(queue)
    client.meta.events.register(f"before-call.sqs.{operation}",
                                lambda **_: sent.append(operation))
    return sent


def test_batched_receive_and_delete_and_a_long_poll(make_transport: Make, queue: str) -> None:
    transport = make_transport()
    transport.publish([Outgoing(queue, make_envelope(n)) for n in range(25)])
    receives, deletes = calls(transport, "ReceiveMessage"), calls(transport, "DeleteMessageBatch")
    got = transport.fetch([queue], 25, 5)
    assert len(got) == 25 and len(receives) == 3, "10 messages a ReceiveMessage"
    transport.ack(got)
    assert len(deletes) == 3, "10 receipts a DeleteMessageBatch"
    start = time.monotonic()
    assert transport.fetch([queue], 1, 1) == [] and len(receives) == 4, \
        "an idle fetch is one long poll, not a loop of short ones"
    assert time.monotonic() - start >= 0.9


def test_bodies_are_kombus(moto: SQSServer, make_transport: Make, queue: str) -> None:
    transport = make_transport()
    transport.publish([Outgoing(queue, make_envelope(1))])
    sqs = moto.aws_client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    [raw] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    envelope = json.loads(base64.b64decode(raw["Body"]))
    assert envelope["headers"]["id"] == "m-1", "kombu's default: base64 of the JSON envelope"
    assert envelope["properties"]["delivery_info"]["routing_key"] == queue
    plain = Envelope(b"[[2], {}, {}]", {"id": "plain", "task": "t"}).to_json(queue).decode()
    sqs.send_message(QueueUrl=url, MessageBody=plain)  # kombu with sqs_base64_encoding off
    got = wait_for(lambda: transport.fetch([queue], 2, 1), 10, "both messages")
    got += [] if len(got) == 2 else transport.fetch([queue], 1, 2)
    assert sorted(d.envelope.headers["id"] for d in got) == ["m-1", "plain"]


def test_a_delay_past_the_longest_goes_on_in_hops(make_transport: Make, queue: str) -> None:
    transport = make_transport(max_delay_seconds=1)
    due = time.time() + 3.5
    transport.publish([Outgoing(queue, make_envelope(1), not_before=due)])
    assert transport.size(queue) == 1, "waiting at the broker, counted as delayed"
    early = transport.fetch([queue], 1, 2.5)
    assert early == [], "not delivered before it is due, though each hop ends before"
    got = wait_for(lambda: transport.fetch([queue], 1, 1), 10, "the delayed message")
    arrived = time.time()
    assert arrived >= due, "never early"
    assert arrived - due < 1.5, f"on time after the last hop: {arrived - due:.2f} s late"
    assert got[0].delivery_count == 1, "the hops' receives do not count as deliveries"
    transport.ack(got)
    assert transport.fetch([queue], 1, 0) == [] and transport.size(queue) == 0, \
        "it runs once: every hop deleted the message it came from"


def test_fifo_groups_and_deduplication(moto: SQSServer, make_transport: Make) -> None:
    transport = make_transport()
    queue = f"f-{uuid.uuid4().hex[:12]}.fifo"
    first = make_envelope(1, task="orders.charge")
    retried = make_envelope(1, task="orders.charge", retries=1)
    own_group = make_envelope(2, MessageGroupId="customer-7")
    transport.publish([Outgoing(queue, first), Outgoing(queue, first),
                       Outgoing(queue, retried), Outgoing(queue, own_group)])
    sqs = moto.aws_client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue"])[
        "Attributes"]["FifoQueue"] == "true", "a .fifo name makes a FIFO queue"
    got = transport.fetch([queue], 10, 2)
    groups = [d.envelope.headers.get("MessageGroupId") or d.envelope.headers["task"]
              for d in got]
    assert [d.envelope.headers.get("retries") for d in got] == [None, 1, None], \
        "the same publish twice is one message (its dedup id is the task id and retries); " \
        f"a retry of the task is another: {groups}"
    transport.ack(got)
    with pytest.raises(ConfigurationError, match="takes no per-message delay"):
        transport.publish([Outgoing(queue, make_envelope(3), not_before=time.time() + 60)])


def test_kernels_dead_letter_queue_and_an_undecodable_body(
        moto: SQSServer, make_transport: Make, queue: str) -> None:
    transport = make_transport()
    transport.publish([Outgoing(queue, make_envelope(1))])
    sqs = moto.aws_client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="not an envelope at all")
    transport.publish([Outgoing(queue, make_envelope(2))])
    got = wait_for(lambda: transport.fetch([queue], 10, 1), 10, "the good messages")
    got += transport.fetch([queue], 10, 1) if len(got) < 2 else []
    assert [d.envelope.headers["id"] for d in got] == ["m-1", "m-2"], \
        "the undecodable body is set aside and the rest delivered"
    transport.reject(got[0], requeue=False, reason="poison: test")
    transport.ack(got[1:])
    dead = transport.dead_letters(queue)
    assert len(dead) == 2, "both in <queue>.dead"
    reasons = {d.envelope.headers.get("id", "undecodable"): d.extra["reason"] for d in dead}
    assert reasons["m-1"] == "poison: test"
    assert "not a JSON envelope" in reasons["undecodable"], reasons
    assert sqs.get_queue_url(QueueName=f"{queue}-dead")["QueueUrl"], \
        "kernel's <queue>.dead, named as kombu names it"
    assert len(transport.dead_letters(queue)) == 2, "reading leaves them there"
    assert transport.size(queue) == 0


def test_a_redrive_policy_of_the_users(moto: SQSServer, make_transport: Make,
                                       queue: str) -> None:
    sqs = moto.aws_client("sqs")
    target = sqs.create_queue(QueueName=f"{queue}-mine")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=queue, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn, "maxReceiveCount": "2"})})
    transport = make_transport(lease_seconds=1)
    transport.publish([Outgoing(queue, make_envelope(1)), Outgoing(queue, make_envelope(2))])
    got = transport.fetch([queue], 2, 2)
    transport.reject(got[0], requeue=False, reason="poison: mine")
    transport.reject(got[1], requeue=True)
    again = transport.fetch([queue], 1, 2)
    assert [d.envelope.headers["id"] for d in again] == ["m-2"]
    transport.reject(again[0], requeue=True)  # received twice: SQS moves it on the next receive
    assert transport.fetch([queue], 1, 1) == []
    dead = transport.dead_letters(queue)
    assert sorted(d.envelope.headers["id"] for d in dead) == ["m-1", "m-2"], \
        "kernel's dead letters go to the policy's queue, where SQS moved the other"
    reasons = {d.envelope.headers["id"]: d.extra["reason"] for d in dead}
    assert reasons["m-1"] == "poison: mine"
    assert "redrive policy" in reasons["m-2"]


def test_a_missing_queue_is_created_unless_predefined_queues_forbid(
        moto: SQSServer, make_transport: Make, queue: str) -> None:
    make_transport().publish([Outgoing(queue, make_envelope(1))])
    sqs = moto.aws_client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"]["VisibilityTimeout"] == "1800", "Celery's visibility_timeout default"
    predefined = make_transport(predefined_queues={
        "tasks": {"url": url, "access_key_id": "other", "secret_access_key": "keys"}})
    got = predefined.fetch(["tasks"], 1, 2)
    assert [d.envelope.headers["id"] for d in got] == ["m-1"], \
        "a predefined queue is reached at its URL, under kernel's name for it"
    predefined.ack(got)
    with pytest.raises(ConfigurationError, match="'elsewhere' is not in predefined_queues"):
        predefined.publish([Outgoing("elsewhere", make_envelope(2))])


def test_an_assumed_role(moto: SQSServer, make_transport: Make, queue: str) -> None:
    transport = make_transport(sts_role_arn="arn:aws:iam::123456789012:role/kernel")
    transport.publish([Outgoing(queue, make_envelope(1))])
    key = transport.connection.client()._request_signer._credentials.access_key
    assert key.startswith("ASIA"), "the role's temporary credentials sign the requests"
    assert len(transport.fetch([queue], 1, 2)) == 1


@pytest.fixture(scope="module")
def checking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQSServer]:
    """A moto that checks credentials against its IAM."""
    with SQSServer(tmp_path_factory.mktemp("moto-auth"),
                   env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        yield server


def test_refused_credentials_are_one_sentence(checking: SQSServer) -> None:
    transport = SQSTransport(f"sqs://nobody:wrong@127.0.0.1:{checking.port}", {})
    try:
        with pytest.raises(ConfigurationError, match=r"refused the credentials for the queue "
                           r"'q' \(InvalidClientTokenId\); check the access key"):
            transport.publish([Outgoing("q", make_envelope(1))])
    finally:
        transport.close()


class Throttled:
    """SQS's answer to a request over its rate (AWS JSON protocol), which botocore parses as
    it parses the real one."""

    def __call__(self, request: botocore.awsrequest.AWSPreparedRequest,
                 **_: Any) -> botocore.awsrequest.AWSResponse:
        body = json.dumps({"__type": "com.amazonaws.sqs#ThrottlingException",
                           "message": "Rate exceeded (made up by the test)"}).encode()

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield body

        return botocore.awsrequest.AWSResponse(request.url, 400, {}, Raw())


def throttle(transport: SQSTransport, operation: str, times: int) -> list[int]:
    left = [times]

    def answer(request: botocore.awsrequest.AWSPreparedRequest,
               **kw: Any) -> botocore.awsrequest.AWSResponse | None:
        if left[0] <= 0:
            return None
        left[0] -= 1
        return Throttled()(request, **kw)

    transport.connection.client().meta.events.register(f"before-send.sqs.{operation}", answer)
    return left


def test_throttling_is_sent_again_with_a_backoff(make_transport: Make, queue: str) -> None:
    transport = make_transport(connection_timeout=2)
    transport.publish([Outgoing(queue, make_envelope(0))])
    left = throttle(transport, "SendMessage", 3)
    transport.publish([Outgoing(queue, make_envelope(1))])
    assert left == [0], "three throttled answers, then sent"
    batched = throttle(transport, "SendMessageBatch", 2)
    transport.publish([Outgoing(queue, make_envelope(n)) for n in (2, 3)])
    assert batched == [0], "a batch too"
    throttle(transport, "SendMessage", 1000)
    start = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"did not take SendMessage on the queue "
                       r"'q-\w+' within 2 s \(ThrottlingException"):
        transport.publish([Outgoing(queue, make_envelope(4))])
    assert time.monotonic() - start < 4
    got = transport.fetch([queue], 10, 2)
    assert sorted(d.envelope.headers["id"] for d in got) == ["m-0", "m-1", "m-2", "m-3"], \
        "nothing lost, nothing twice"


def test_an_emulator_restart_under_a_transport(tmp_path: Path) -> None:
    """moto keeps nothing: after a restart the queue is made again and service goes on."""
    with SQSServer(tmp_path / "moto") as server:
        transport = SQSTransport(server.url, {"wait_time_seconds": 1, "connection_timeout": 10})
        try:
            transport.publish([Outgoing("restarts", make_envelope(1))])
            assert len(transport.fetch(["restarts"], 1, 2)) == 1
            server.restart()
            transport.publish([Outgoing("restarts", make_envelope(2))])
            got = transport.fetch(["restarts"], 1, 2)
            assert [d.envelope.headers["id"] for d in got] == ["m-2"]
        finally:
            transport.close()


def test_a_fifo_queues_redrive_target_is_fifo_too(moto: SQSServer, make_transport: Make) -> None:
    sqs = moto.aws_client("sqs")
    stem = f"f-{uuid.uuid4().hex[:12]}"
    target = sqs.create_queue(QueueName=f"{stem}-dlq.fifo",
                              Attributes={"FifoQueue": "true"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=f"{stem}.fifo", Attributes={"FifoQueue": "true", "RedrivePolicy":
                     json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})})
    transport = make_transport()
    transport.publish([Outgoing(f"{stem}.fifo", make_envelope(1))])
    [got] = transport.fetch([f"{stem}.fifo"], 1, 2)
    transport.reject(got, requeue=False, reason="poison: fifo")
    dead = transport.dead_letters(f"{stem}.fifo")
    assert [(d.envelope.headers["id"], d.extra["reason"]) for d in dead] == \
        [("m-1", "poison: fifo")], "a FIFO dead-letter queue takes it, in a group of its own"
