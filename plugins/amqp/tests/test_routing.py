"""Routing on the real RabbitMQ: ``task_queues`` with direct, topic and fanout exchanges and
their bindings, routes by exchange and routing key, a real Celery 5 client routing with the same
settings landing its tasks in the same queues a kernel worker consumes, and a queue name RabbitMQ
refuses as one sentence."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import amqp
import pytest

from kernel import App, ConfigurationError
from kernel.testing.transport import wait_for
from kernel.testing.workers import running_worker


@pytest.fixture
def exchanges(url: str) -> Iterator[Callable[[str], str]]:
    """Unique exchange names, deleted at teardown."""
    names: list[str] = []

    def make(prefix: str) -> str:
        names.append(f"{prefix}-{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield make
    parts = url.split("://", 1)[1].split("@")
    user, _, password = parts[0].partition(":")
    host = parts[1].split("/")[0]
    connection = amqp.Connection(host=host, userid=user, password=password)
    connection.connect()
    try:
        channel = connection.channel()
        for name in names:
            channel.exchange_delete(name)
    finally:
        connection.close()


def settings(media: str, fan: str, jobs: str, images: str, videos: str, audit_a: str,
             audit_b: str, direct_q: str) -> dict[str, Any]:
    return {
        "task_queues": [
            {"name": images, "exchange": media, "exchange_type": "topic",
             "routing_key": "media.image.#"},
            {"name": videos, "exchange": media, "exchange_type": "topic",
             "routing_key": "media.video.*"},
            {"name": audit_a, "exchange": fan, "exchange_type": "fanout"},
            {"name": audit_b, "exchange": fan, "exchange_type": "fanout"},
            {"name": direct_q, "exchange": jobs, "exchange_type": "direct",
             "routing_key": "job.run"}],
        "task_routes": {"media.resize": {"exchange": media, "routing_key": "media.image.png"},
                        "media.encode": {"exchange": media, "routing_key": "media.video.mp4"},
                        # Celery needs a routing key to publish to a named exchange
                        "audit.*": {"exchange": fan, "routing_key": "audit"},
                        "jobs.*": {"queue": direct_q}},
    }


def test_topic_fanout_and_direct_exchanges_route_on_rabbitmq(
        url: str, new_queue: Callable[[str], str], exchanges: Callable[[str], str]) -> None:
    names = [exchanges("media"), exchanges("fan"), exchanges("jobs")]
    queues = [new_queue(p) for p in ("images", "videos", "audit-a", "audit-b", "direct")]
    app = App("routing", broker=url, results=None, config=settings(*names, *queues))
    try:
        app.send_task("media.resize")
        app.send_task("media.encode")
        app.send_task("audit.login")
        app.send_task("jobs.nightly")
        app.send_task("other", exchange=names[0], routing_key="media.image.gif.large")
        images, videos, audit_a, audit_b, direct_q = queues
        wait_for(lambda: app.transport.size(images) == 2, 10, "two image tasks by topic")
        assert [app.transport.size(q) for q in queues] == [2, 1, 1, 1, 1], \
            "topic patterns, a fanout to both its queues, and the direct queue"
    finally:
        app.close()


def test_a_celery_clients_routes_and_kernels_land_in_the_same_queues(
        url: str, new_queue: Callable[[str], str], exchanges: Callable[[str], str],
        celery: Any, tmp_path: Path) -> None:
    from kombu import Exchange, Queue

    media, fan, jobs = exchanges("media"), exchanges("fan"), exchanges("jobs")
    images, videos, audit_a, audit_b, direct_q = (new_queue(p) for p in
                                                  ("images", "videos", "audit-a", "audit-b",
                                                   "direct"))
    conf = settings(media, fan, jobs, images, videos, audit_a, audit_b, direct_q)
    client = celery.Celery("routing-client", broker=url)
    client.conf.task_queue_max_priority = 10  # kernel declares queues with priorities
    client.conf.task_routes = conf["task_routes"]
    client.conf.task_default_queue = direct_q  # not Celery's "celery", shared by other tests
    topic, fanout = Exchange(media, type="topic"), Exchange(fan, type="fanout")
    client.conf.task_queues = [Queue(images, topic, routing_key="media.image.#"),
                               Queue(videos, topic, routing_key="media.video.*"),
                               Queue(audit_a, fanout), Queue(audit_b, fanout),
                               Queue(direct_q, Exchange(jobs, type="direct"),
                                     routing_key="job.run")]
    app = App("routing", broker=url, results=f"sqlite:///{tmp_path / 'r.db'}", config=conf)
    seen: list[tuple[str, str]] = []

    def recorder(name: str) -> Callable[[str], None]:
        return lambda origin: seen.append((name, origin))

    for name in ("media.resize", "media.encode", "audit.login", "jobs.nightly"):
        app.task(recorder(name), name=name)

    try:
        # kernel's sends first: they declare the exchanges, as a Celery worker does as it
        # starts (a Celery client routing by exchange declares only its default queue).
        for name in ("media.resize", "media.encode", "audit.login", "jobs.nightly"):
            app.send_task(name, args=("kernel",))
            client.send_task(name, args=("celery",))
        sizes = [app.transport.size(q) for q in (images, videos, audit_a, audit_b, direct_q)]
        assert sizes == [2, 2, 2, 2, 2], f"Celery's and kernel's copies: {sizes}"
        with running_worker(app, concurrency=2):  # every queue of task_queues, as Celery's
            wait_for(lambda: len(seen) == 10, 20, "the kernel worker ran all ten tasks")
        assert sorted(seen) == sorted([(n, o) for n in ("media.resize", "media.encode",
                                                        "audit.login", "audit.login",
                                                        "jobs.nightly")
                                       for o in ("celery", "kernel")]), \
            "the fanout task ran once from each of its two queues, the others once"
    finally:
        client.close()
        app.close()


def test_a_queue_name_rabbitmq_refuses_is_one_sentence(
        url: str, new_queue: Callable[[str], str]) -> None:
    app = App("refused", broker=url, results=None)
    try:
        with pytest.raises(ConfigurationError, match="RabbitMQ refused to declare the queue "
                                                     "'amq.kernel-test'.*queue names starting "
                                                     "with 'amq.' are reserved"):
            app.send_task("t", queue="amq.kernel-test")
        ok = new_queue("after-refusal")
        app.send_task("t", queue=ok)  # the app carries on
        assert app.transport.size(ok) == 1
    finally:
        app.close()
