"""The brokers a run is on: how to empty them between runs, fill a system's queue fast (copies
of one message the system sent itself, with fresh ids), and the bare client's ceiling (the
``limit`` rows). The counter every task body increments is in Redis on both brokers."""

from __future__ import annotations

import json
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.bench import env

if TYPE_CHECKING:
    from tests.bench.systems import System

#: messages per pipeline (Redis) or per prefetch window (RabbitMQ) in the bare client's rows.
PIPELINE = 100
#: messages per Redis pipeline when filling a queue.
CHUNK = 1000
Record = Callable[[str, str, float], None]


def fresh_ids(ids: list[bytes]) -> list[bytes]:
    """New uuid4s in place of `ids` (same length, so JSON and pickled forms stay valid)."""
    return [str(uuid.uuid4()).encode() for _ in ids]


def replace_all(data: bytes, old: list[bytes], new: list[bytes]) -> bytes:
    for a, b in zip(old, new, strict=True):
        data = data.replace(a, b)
    return data


class Broker(ABC):
    name: str
    #: how tables and messages name it.
    title: str
    #: the bare client measured in the ``limit`` rows, and what it does there.
    bare: str
    bare_config: str

    def __init__(self) -> None:
        self.redis: Any = env.redis_client()

    def env(self) -> dict[str, str]:
        """What a worker subprocess needs to find this broker."""
        return {env.BROKER: self.name}

    def count(self) -> int:
        return int(self.redis.get(env.COUNTER_KEY) or 0)

    @abstractmethod
    def server(self) -> str:
        """The server's version (raises if it cannot be reached)."""

    @abstractmethod
    def reset(self, system: System) -> None:
        """Empty `system`'s queues and the counter (the next run starts from nothing)."""

    @abstractmethod
    def prequeue(self, system: System, n: int, task: str) -> None:
        """Fill `system`'s queue with `n` tasks as fast as possible (untimed set-up)."""

    @abstractmethod
    def sample(self, system: System) -> tuple[bytes, dict[str, Any]]:
        """One noop message exactly as `system` puts it on this broker: bytes and properties."""

    @abstractmethod
    def limit(self, n: int, message: tuple[bytes, dict[str, Any]], record: Record) -> None:
        """The bare client on `message` (see `sample`) `n` times: publish and fetch one at a
        time and pipelined, and a bare consumer loop; `record(row, name, per second)`."""

    def close(self) -> None:
        self.redis.close()


def timed(n: int, body: Callable[[], Any]) -> float:
    start = time.perf_counter()
    body()
    return n / (time.perf_counter() - start)


class Redis(Broker):
    name = "redis"
    title = "Redis"
    bare = "redis-py"
    bare_config = ("LPUSH, BRPOP, each one at a time and in pipelines of 100; drain: BRPOP + "
                   "json.loads + INCR")

    def server(self) -> str:
        return str(self.redis.info("server")["redis_version"])

    def reset(self, system: System) -> None:
        self.redis.flushdb()

    def prequeue(self, system: System, n: int, task: str) -> None:
        system.redis_prequeue(n, task)

    def copy_messages(self, n: int, push: Callable[[Any, list[bytes]], None],
                      ids: list[bytes]) -> None:
        """Call ``push(pipe, new_ids)`` `n` times in pipelines, each with fresh ids for `ids`."""
        pipe = self.redis.pipeline(transaction=False)
        for i in range(n):
            push(pipe, fresh_ids(ids))
            if i % CHUNK == CHUNK - 1:
                pipe.execute()
        pipe.execute()

    def sample(self, system: System) -> tuple[bytes, dict[str, Any]]:
        self.reset(system)
        system.enqueue(1)
        # kernel's queue is a priority sub-list (kombu's layout), so look the list up.
        (key,) = [k for k in self.redis.keys(f"{system.queues[0]}*")
                  if self.redis.type(k) == b"list"]
        raw: bytes = self.redis.lindex(key, 0)
        self.reset(system)
        return raw, {}

    def limit(self, n: int, message: tuple[bytes, dict[str, Any]], record: Record) -> None:
        raw = message[0]  # Redis holds the whole envelope as one string
        client, queue = self.redis, "bench_raw"

        def pipelined(command: Callable[[Any], None]) -> None:
            for start in range(0, n, PIPELINE):
                pipe = client.pipeline(transaction=False)
                for _ in range(min(PIPELINE, n - start)):
                    command(pipe)
                pipe.execute()

        def consume() -> None:
            for _ in range(n):
                json.loads(client.brpop(queue, 1)[1])
                client.incr(env.COUNTER_KEY)

        client.flushdb()
        record("enqueue.call", self.bare, timed(n, lambda: [client.lpush(queue, raw)
                                                            for _ in range(n)]))
        record("limit.fetch", self.bare, timed(n, lambda: [client.brpop(queue, 1)
                                                           for _ in range(n)]))
        record("enqueue.batch", self.bare,
               timed(n, lambda: pipelined(lambda pipe: pipe.lpush(queue, raw))))
        record("limit.fetch_pipelined", self.bare,
               timed(n, lambda: pipelined(lambda pipe: pipe.brpop(queue, 1))))
        pipelined(lambda pipe: pipe.lpush(queue, raw))
        record("drain.one", self.bare, timed(n, consume))
        client.flushdb()


class RabbitMQ(Broker):
    name = "rabbitmq"
    title = "RabbitMQ"
    bare = "py-amqp"
    bare_config = ("publish with a confirm each / without confirms, then one round trip; "
                   "basic_get + ack one at a time / consume with prefetch 100; drain: consume "
                   "(prefetch 100) + json.loads + INCR + ack")

    def __init__(self) -> None:
        super().__init__()
        from kombu import Connection

        self.url = env.amqp_url()
        self.kombu: Any = Connection(self.url, connect_timeout=4)
        self.kombu.ensure_connection(max_retries=1)
        self.conn: Any = self.kombu.connection  # the py-amqp connection itself
        self.channel: Any = self.conn.channel()

    def env(self) -> dict[str, str]:
        return {**super().env(), env.AMQP_URL: self.url}

    def server(self) -> str:
        version = self.conn.server_properties.get("version", "?")
        return version.decode() if isinstance(version, bytes) else str(version)

    def _fresh_channel(self) -> Any:
        if not self.channel.is_open:
            self.channel = self.conn.channel()
        return self.channel

    def _declared(self, queue: str) -> Any:
        """`queue`'s passive declare (message and consumer counts), or None if it does not
        exist."""
        from amqp.exceptions import NotFound

        try:
            return self._fresh_channel().queue_declare(queue, passive=True)
        except NotFound:
            return None  # RabbitMQ closed the channel; the next call opens another

    def depth(self, queue: str) -> int | None:
        """Messages ready in `queue`, or None if it does not exist."""
        declared = self._declared(queue)
        return None if declared is None else int(declared.message_count)

    def reset(self, system: System) -> None:
        self.redis.flushdb()
        deadline = time.monotonic() + 30
        for queue in system.queues:
            # A killed worker's deliveries return to the queue once RabbitMQ has dropped its
            # connection: wait for that, so the purge takes them too.
            while (declared := self._declared(queue)) and declared.consumer_count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{queue} still has a consumer after its worker died")
                time.sleep(0.01)
            if declared and declared.message_count:
                self._fresh_channel().queue_purge(queue)

    def wait_depth(self, queue: str, n: int, what: str) -> None:
        deadline = time.monotonic() + 60
        while (self.depth(queue) or 0) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {queue} holds {self.depth(queue)} of {n} messages")
            time.sleep(0.01)

    def take(self, queue: str, what: str) -> Any:
        """The one message `queue` holds (acked: it is gone from the queue)."""
        self.wait_depth(queue, 1, what)
        message = self._fresh_channel().basic_get(queue)
        self.channel.basic_ack(message.delivery_tag)
        return message

    def sample(self, system: System) -> tuple[bytes, dict[str, Any]]:
        self.reset(system)
        system.enqueue(1)
        message = self.take(system.queues[0], system.name)
        return message.body, dict(message.properties)

    def prequeue(self, system: System, n: int, task: str) -> None:
        import amqp

        queue = system.queues[0]
        system.enqueue(1, task)
        message = self.take(queue, system.name)
        ids = system.message_ids(message)
        channel = self._fresh_channel()
        for _ in range(n):
            pairs = [(old, str(uuid.uuid4())) for old in ids]
            channel.basic_publish(amqp.Message(swap(message.body, pairs),
                                               **swap(message.properties, pairs)),
                                  exchange="", routing_key=queue)
        self.wait_depth(queue, n, system.name)

    def limit(self, n: int, message: tuple[bytes, dict[str, Any]], record: Record) -> None:
        import amqp

        body, props = message
        queue = "bench_raw"
        confirmed = self.conn.channel()
        confirmed.confirm_select()
        acked = [0]
        confirmed.events["basic_ack"].add(lambda tag, multiple: acked.__setitem__(0, tag))
        confirmed.queue_declare(queue, durable=True, auto_delete=False)
        confirmed.queue_purge(queue)
        channel = self._fresh_channel()

        def publish_confirmed() -> None:
            """Each publish waits for RabbitMQ's confirm, as kernel's `delay` does."""
            for sent in range(1, n + 1):
                confirmed.basic_publish(amqp.Message(body, **props), exchange="",
                                        routing_key=queue)
                while acked[0] < sent:
                    self.conn.drain_events(timeout=10)

        def publish(on: Any) -> None:
            for _ in range(n):
                on.basic_publish(amqp.Message(body, **props), exchange="", routing_key=queue)

        def get_each() -> None:
            for _ in range(n):
                got = channel.basic_get(queue)
                channel.basic_ack(got.delivery_tag)

        def consume(work: Callable[[Any], None]) -> None:
            done = 0

            def on_message(got: Any) -> None:
                nonlocal done
                work(got)
                channel.basic_ack(got.delivery_tag)
                done += 1

            channel.basic_qos(0, PIPELINE, False)
            tag = channel.basic_consume(queue, callback=on_message)
            while done < n:
                self.conn.drain_events(timeout=10)
            channel.basic_cancel(tag)

        def publish_unconfirmed() -> None:
            publish(channel)
            self.wait_depth(queue, n, self.bare)

        def body_work(got: Any) -> None:
            json.loads(got.body)
            self.redis.incr(env.COUNTER_KEY)

        record("enqueue.call", self.bare, timed(n, publish_confirmed))
        record("limit.fetch", self.bare, timed(n, get_each))
        unconfirmed = timed(n, publish_unconfirmed)  # the ceiling of both rows
        record("enqueue.batch", self.bare, unconfirmed)
        record("enqueue.unconfirmed", self.bare, unconfirmed)
        record("limit.fetch_pipelined", self.bare, timed(n, lambda: consume(lambda got: None)))
        publish_unconfirmed()
        record("drain.one", self.bare, timed(n, lambda: consume(body_work)))
        confirmed.queue_delete(queue)
        confirmed.close()
        self.redis.flushdb()

    def close(self) -> None:
        super().close()
        self.kombu.release()


def swap(value: Any, pairs: list[tuple[str, str]]) -> Any:
    """`value` with each old id of `pairs` replaced by its new one in every string inside."""
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
        return value
    if isinstance(value, bytes):
        return replace_all(value, [a.encode() for a, _ in pairs], [b.encode() for _, b in pairs])
    if isinstance(value, dict):
        return {k: swap(v, pairs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(swap(v, pairs) for v in value)
    return value


class SQS(Broker):
    """moto's SQS server of the bench's own (kernel-sqs's test emulator, its receives atomic),
    started here and given to the workers as ``sqs://...@127.0.0.1:PORT``; the counter and
    results in Redis."""

    name = "sqs"
    title = "SQS (moto)"
    bare = "boto3"
    bare_config = ("SendMessage / ReceiveMessage one at a time, and 10 a call (the batch "
                   "APIs); drain: receive 10 + json.loads + INCR + DeleteMessageBatch")

    def __init__(self) -> None:
        super().__init__()
        import tempfile
        from pathlib import Path

        from kernel_sqs.testing import SQSServer

        self.dir = tempfile.TemporaryDirectory(prefix="kernel-bench-sqs-")
        # moto allows one purge a minute per queue, as SQS does, unless told otherwise.
        self.moto = SQSServer(Path(self.dir.name), env={
            "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"}).start()
        self.url = self.moto.url
        os.environ[env.SQS_URL] = self.url  # the task modules the driver imports read it
        self.sqs: Any = self.moto.aws_client("sqs")

    def env(self) -> dict[str, str]:
        return {**super().env(), env.SQS_URL: self.url}

    def server(self) -> str:
        from importlib.metadata import version

        return f"moto {version('moto')}"

    def queue_url(self, queue: str) -> str:
        return str(self.sqs.create_queue(QueueName=queue)["QueueUrl"])

    def reset(self, system: System) -> None:
        self.redis.flushdb()
        for queue in system.queues:
            self.sqs.purge_queue(QueueUrl=self.queue_url(queue))  # held messages too

    def take(self, queue: str) -> dict[str, Any]:
        url = self.queue_url(queue)
        deadline = time.monotonic() + 30
        while not (got := self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
                   .get("Messages")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{queue}: no message arrived")
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        return dict(got[0])

    def sample(self, system: System) -> tuple[bytes, dict[str, Any]]:
        self.reset(system)
        system.enqueue(1)
        body = self.take(system.queues[0])["Body"].encode()
        self.reset(system)
        return body, {}

    def prequeue(self, system: System, n: int, task: str) -> None:
        import base64

        queue = system.queues[0]
        system.enqueue(1, task)
        body = base64.b64decode(self.take(queue)["Body"])
        message = json.loads(body)
        ids = [message["headers"]["id"].encode(),
               message["properties"]["delivery_tag"].encode()]
        url = self.queue_url(queue)
        for start in range(0, n, 10):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": base64.b64encode(
                    replace_all(body, ids, fresh_ids(ids))).decode()}
                for i in range(min(10, n - start))])

    def limit(self, n: int, message: tuple[bytes, dict[str, Any]], record: Record) -> None:
        import base64

        body = message[0].decode()
        url = self.queue_url("bench_raw")
        sqs = self.sqs

        def receive(count: int) -> None:
            got = 0
            while got < n:
                got += len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count,
                                               WaitTimeSeconds=1).get("Messages") or [])

        def batches() -> None:
            for start in range(0, n, 10):
                sqs.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "MessageBody": body} for i in range(min(10, n - start))])

        def consume() -> None:
            done = 0
            while done < n:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1).get("Messages") or []
                for m in got:
                    json.loads(base64.b64decode(m["Body"]))
                    self.redis.incr(env.COUNTER_KEY)
                if got:
                    sqs.delete_message_batch(QueueUrl=url, Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(got)])
                done += len(got)

        sqs.purge_queue(QueueUrl=url)
        record("enqueue.call", self.bare, timed(n, lambda: [
            sqs.send_message(QueueUrl=url, MessageBody=body) for _ in range(n)]))
        record("limit.fetch", self.bare, timed(n, lambda: receive(1)))
        sqs.purge_queue(QueueUrl=url)
        record("enqueue.batch", self.bare, timed(n, batches))
        record("limit.fetch_pipelined", self.bare, timed(n, lambda: receive(10)))
        sqs.purge_queue(QueueUrl=url)
        batches()
        record("drain.one", self.bare, timed(n, consume))
        sqs.purge_queue(QueueUrl=url)
        self.redis.flushdb()

    def close(self) -> None:
        super().close()
        self.moto.stop()
        self.dir.cleanup()


BROKERS: dict[str, type[Broker]] = {"redis": Redis, "rabbitmq": RabbitMQ, "sqs": SQS}
