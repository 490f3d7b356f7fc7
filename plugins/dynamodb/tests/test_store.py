"""What the DynamoDB store adds beyond the suite: Celery's items, the table created and its
time to live turned on as Celery does, records over the item limit, expiry on an emulator
without a time-to-live API, and one sentence for each fault: a missing table, a creation or
credentials refused, throttling that does not end, an item that is not a record."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import botocore.awsrequest
import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, DecodeError, KernelError
from kernel.testing.transport import wait_for
from kernel_dynamodb.store import PART_SIZE, DynamoDBStore, item_id
from kernel_dynamodb.testing import Dynalite, MotoServer

Make = Callable[..., DynamoDBStore]


def table_of(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def raw(server: MotoServer | Dynalite, url: str, key: str) -> dict[str, Any] | None:
    found = server.client().get_item(  # type: ignore[attr-defined]
        TableName=table_of(url), Key={"id": {"S": item_id(key)}}, ConsistentRead=True)
    item: dict[str, Any] | None = found.get("Item")
    return item


def count(server: MotoServer, url: str) -> int:
    pages = server.client().get_paginator("scan")  # type: ignore[attr-defined]
    return sum(page["Count"] for page in pages.paginate(TableName=table_of(url)))


def test_records_are_celerys_items(moto: MotoServer) -> None:
    url = moto.url(f"layout-{uuid.uuid4().hex[:8]}")
    store = DynamoDBStore(url, {})
    try:
        key = f"celery-task-meta-{uuid.uuid4()}"
        before = time.time()
        store.set([(key, b'{"status": "SUCCESS"}')], None)
        store.set([(key + "-x", b"v")], 60)
        item = raw(moto, url, key)
        assert item is not None and item["id"] == {"S": f"b'{key}'"}, \
            "Celery's backend writes the text of the key's bytes as the id"
        assert item["result"] == {"B": b'{"status": "SUCCESS"}'} and "ttl" not in item
        assert float(item["timestamp"]["N"]) >= before
        expiring = raw(moto, url, key + "-x")
        assert expiring is not None
        assert before + 60 <= int(expiring["ttl"]["N"]) <= time.time() + 61, \
            "ttl: Unix time in whole seconds, never before the expiry"
        assert store.incr("counter", 3) == 3
        counter = raw(moto, url, "counter")
        assert counter is not None and counter["chord_count"] == {"N": "3"}
    finally:
        store.close()


def test_the_table_is_created_as_celery_creates_it(moto: MotoServer) -> None:
    url = moto.url(f"made-{uuid.uuid4().hex[:8]}", "read=3&write=4")
    store = DynamoDBStore(url, {})
    try:
        store.set([("k", b"v")], None)
        client: Any = moto.client()
        table = client.describe_table(TableName=table_of(url))["Table"]
        assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
        assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
        throughput = table["ProvisionedThroughput"]
        assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (3, 4)
        ttl = client.describe_time_to_live(TableName=table_of(url))["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}, \
            "DynamoDB deletes expired records itself"
        assert store.expires_itself and store.cleanup() == {}
    finally:
        store.close()


def test_a_negative_ttl_seconds_keeps_records(moto: MotoServer) -> None:
    url = moto.url(f"keep-{uuid.uuid4().hex[:8]}", "ttl_seconds=-1")
    store = DynamoDBStore(url, {})
    try:
        store.set([("k", b"v")], 0.1)
        time.sleep(1.2)  # past the expiry asked for, which ttl_seconds=-1 overrides
        assert store.get("k") == b"v"
        item = raw(moto, url, "k")
        assert item is not None and "ttl" not in item
        ttl = moto.client().describe_time_to_live(  # type: ignore[attr-defined]
            TableName=table_of(url))["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "DISABLED"
    finally:
        store.close()


def test_a_record_over_the_item_limit_is_kept_in_parts(moto: MotoServer) -> None:
    url = moto.url(f"big-{uuid.uuid4().hex[:8]}")
    store = DynamoDBStore(url, {})
    try:
        value = os.urandom(PART_SIZE * 3 + 17)
        store.set([("big", value)], None)
        assert store.get("big") == value
        store.add([("big", value[::-1])], None)
        assert store.get("big") == value, "add leaves a live record kept in parts alone"
        first = raw(moto, url, "big")
        assert first is not None and first["parts"] == {"N": "3"}
        assert count(moto, url) == 4, "the first part and three more"
        store.delete(["big"])
        assert store.get("big") is None
        assert count(moto, url) == 0, "deleting a record deletes its parts"
    finally:
        store.close()


def test_without_a_time_to_live_api_cleanup_deletes_what_expired(dynalite: Dynalite) -> None:
    """dynalite has no UpdateTimeToLive: expired items stay there, reads ignore them, and
    cleanup (``kernel results cleanup``) deletes them."""
    url = dynalite.url(f"nottl-{uuid.uuid4().hex[:8]}")
    store = DynamoDBStore(url, {})
    try:
        store.set([("gone-1", b"a"), ("gone-2", b"b")], 0.1)
        store.set([("kept", b"c")], None)
        store.set([("later", b"d")], 3600)
        assert not store.expires_itself
        wait_for(lambda: store.get("gone-1") is None, 5, "the expired record to read as None")
        assert raw(dynalite, url, "gone-1") is not None, "still in the table"
        assert store.cleanup() == {"records": 2}
        assert raw(dynalite, url, "gone-1") is None
        assert store.get("kept") == b"c" and store.get("later") == b"d"
        assert store.cleanup() == {"records": 0}
    finally:
        store.close()


def test_a_missing_table_with_creation_off(moto: MotoServer, make_store: Make) -> None:
    store = make_store(moto.url(f"absent-{uuid.uuid4().hex[:8]}"), dynamodb_create_table=False)
    with pytest.raises(ConfigurationError, match=r"table 'absent-\w+' does not exist at "
                       r"http://127\.0\.0\.1:\d+ and dynamodb_create_table is off; create it"):
        store.get("celery-task-meta-x")


@pytest.fixture(scope="module")
def checking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto that checks credentials against its IAM (the first three requests, which make
    the user below, go unchecked)."""
    with MotoServer(tmp_path_factory.mktemp("moto-auth"),
                    env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as server:
        yield server


def test_denied_credentials(checking: MotoServer) -> None:
    iam = boto3.client("iam", endpoint_url=checking.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    iam.put_user_policy(UserName="reader", PolicyName="describe-only", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive"]}]}))
    secret = quote(key["SecretAccessKey"], safe="")
    reader = DynamoDBStore(
        f"dynamodb://{key['AccessKeyId']}:{secret}@127.0.0.1:{checking.port}/refused", {})
    with pytest.raises(ConfigurationError) as info:
        reader.get("celery-task-meta-x")
    assert "creating it was refused (AccessDenied" in str(info.value)
    assert "allow dynamodb:CreateTable" in str(info.value)
    assert key["SecretAccessKey"] not in str(info.value)
    stranger = DynamoDBStore(f"dynamodb://nobody:wrong@127.0.0.1:{checking.port}/t", {})
    with pytest.raises(ConfigurationError, match="refused the credentials for the table 't' "
                       r"\(InvalidClientTokenId\); check the access key and secret"):
        stranger.set([("k", b"v")], None)


class Reply:
    """An answer from DynamoDB that this test makes up (moto never throttles): botocore parses
    it as it would the real one."""

    def __init__(self, status: int, code: str) -> None:
        self.status = status
        self.body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                                "message": "made up by the test"}).encode()

    def response(self, url: str) -> botocore.awsrequest.AWSResponse:
        class Raw:
            def __init__(self, body: bytes) -> None:
                self._body = body

            def stream(self, **_: Any) -> Iterator[bytes]:
                yield self._body

        return botocore.awsrequest.AWSResponse(url, self.status, {}, Raw(self.body))


def refuse(store: DynamoDBStore, operation: str, replies: list[Reply]) -> list[str]:
    """The next requests of `operation` answered with `replies`, one each; the operations
    answered, in order."""
    answered: list[str] = []

    def before_send(request: botocore.awsrequest.AWSPreparedRequest,
                    **_: Any) -> botocore.awsrequest.AWSResponse | None:
        if not replies:
            return None
        answered.append(operation)
        return replies.pop(0).response(request.url)

    store.table.client().meta.events.register(f"before-send.dynamodb.{operation}", before_send)
    return answered


def test_throttling_and_5xx_are_sent_again(moto: MotoServer) -> None:
    store = DynamoDBStore(moto.url(f"busy-{uuid.uuid4().hex[:8]}"), {})
    try:
        store.set([("k", b"v")], None)
        answered = refuse(store, "GetItem", [
            Reply(400, "ProvisionedThroughputExceededException"),
            Reply(400, "ThrottlingException"), Reply(500, "InternalServerError")])
        assert store.get("k") == b"v" and len(answered) == 3, "sent again, with a backoff"
        refuse(store, "UpdateItem", [Reply(400, "ProvisionedThroughputExceededException")])
        assert store.incr("n") == 1, "a throttled update was not applied: sent again"
        refuse(store, "UpdateItem", [Reply(500, "InternalServerError")])
        with pytest.raises(KernelError, match="InternalServerError"):
            store.incr("n")  # it may have counted: not sent again
        assert store.incr("n") == 2
    finally:
        store.close()


def test_throttling_that_does_not_end(moto: MotoServer) -> None:
    store = DynamoDBStore(moto.url(f"busy-{uuid.uuid4().hex[:8]}"), {"connection_timeout": 1})
    try:
        store.set([("k", b"v")], None)
        refuse(store, "GetItem", [Reply(400, "ProvisionedThroughputExceededException")] * 1000)
        start = time.monotonic()
        with pytest.raises(ConnectionFailed, match=r"did not take a request for the table "
                           r"'busy-\w+' within 1 s \(ProvisionedThroughputExceededException"):
            store.get("k")
        assert time.monotonic() - start < 3
    finally:
        store.close()


def test_unprocessed_items_are_sent_again(moto: MotoServer) -> None:
    """BatchWriteItem under throttling leaves items unprocessed: made up here by sending the
    first request's second half back as unprocessed (moto processes everything)."""
    store = DynamoDBStore(moto.url(f"batch-{uuid.uuid4().hex[:8]}"), {})
    try:
        store.set([("warm", b"up")], None)
        client = store.table.client()
        calls: list[dict[str, Any]] = []

        def sent(params: dict[str, Any], **_: Any) -> None:
            calls.append(params)

        def after_call(parsed: dict[str, Any], **_: Any) -> None:
            if len(calls) == 1:
                [(table, writes)] = calls[0]["RequestItems"].items()
                parsed["UnprocessedItems"] = {table: writes[len(writes) // 2:]}

        client.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", sent)
        client.meta.events.register("after-call.dynamodb.BatchWriteItem", after_call)
        items = [(f"b-{n}", b"%d" % n) for n in range(20)]
        store.set(items, None)
        assert len(calls) == 2, "the unprocessed half was sent again"
        assert all(store.get(k) == v for k, v in items)
    finally:
        store.close()


def test_an_item_that_is_not_a_record(moto: MotoServer, make_store: Make) -> None:
    url = moto.url(f"odd-{uuid.uuid4().hex[:8]}")
    store = make_store(url)
    store.set([("warm", b"up")], None)
    client: Any = moto.client()
    task = uuid.uuid4().hex
    client.put_item(TableName=table_of(url), Item={
        "id": {"S": item_id(f"celery-task-meta-{task}")}, "result": {"S": "text"},
        "timestamp": {"N": "1"}})
    with pytest.raises(KernelError, match=r"holds a 'result' that is not binary .*delete it"):
        store.get(f"celery-task-meta-{task}")
    client.put_item(TableName=table_of(url), Item={"id": {"S": item_id("bare")}})
    with pytest.raises(KernelError, match="has neither 'result' nor 'chord_count'"):
        store.get("bare")
    other = uuid.uuid4().hex
    client.put_item(TableName=table_of(url), Item={
        "id": {"S": item_id(f"celery-task-meta-{other}")}, "result": {"B": b"\x00garbage"},
        "timestamp": {"N": "1"}})
    app = App("odd", broker="memory://", results=url)
    try:
        with pytest.raises(DecodeError):
            app.AsyncResult(other).get(timeout=2)
    finally:
        app.close()


def _child(store: DynamoDBStore, key: str, clients: Any) -> None:
    store.set([(key, str(os.getpid()).encode())], 30)
    ok = store.get(key) == str(os.getpid()).encode()
    clients.put(id(store.table.client()))
    os._exit(0 if ok else 1)


def test_a_forked_child_uses_a_client_of_its_own(moto: MotoServer) -> None:
    store = DynamoDBStore(moto.url(f"fork-{uuid.uuid4().hex[:8]}"), {})
    try:
        store.set([("parent", b"p")], 30)
        parent_client = store.table.client()
        context = multiprocessing.get_context("fork")
        clients = context.Queue()
        process = context.Process(target=_child,
                                  args=(store, f"child-{uuid.uuid4().hex}", clients))
        process.start()
        process.join(30)
        assert process.exitcode == 0, "the child stored and read through a client of its own"
        assert store.table.client() is parent_client and store.get("parent") == b"p", \
            "the parent's client survived the child"
    finally:
        store.close()


def test_the_table_is_made_again_after_an_emulator_reset(tmp_path: Path) -> None:
    """moto keeps tables in memory: restarted, the table is gone; the store creates it
    again and serves on (what was in it is lost with it)."""
    with MotoServer(tmp_path) as server:
        store = DynamoDBStore(server.url("reset"), {"connection_timeout": 10})
        try:
            store.set([("k", b"before")], None)
            server.restart()
            store.set([("k", b"after")], None)
            assert store.get("k") == b"after"
            assert store.incr(f"c-{uuid.uuid4().hex}") == 1
        finally:
            store.close()
