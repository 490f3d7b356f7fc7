"""Routing as Celery resolves it: ``task_routes`` (dicts with names, globs and regexes, router
functions and objects, lists), send options, ``task_queues`` bindings on a broker without
exchanges (the in-memory one: kernel delivers to the queue the binding names), and the
sentences for what cannot be routed."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from kernel import App, ConfigurationError
from kernel.errors import RoutingError
from kernel.interfaces.transport import Binding
from kernel.worker import Worker


@pytest.fixture
def make() -> Iterator[Any]:
    apps: list[App] = []

    def build(**config: Any) -> App:
        url = f"memory://{uuid.uuid4().hex}"
        app = App("routes", broker=url, results=url, config=config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


def landed(app: App, *queues: str) -> dict[str, int]:
    return {queue: app.transport.size(queue) for queue in queues}


def by_video(name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
             options: Mapping[str, Any], task: Any = None, **kw: Any) -> Any:
    """A router function as Celery's guide writes them."""
    if name.startswith("video."):
        return {"queue": "video", "priority": 7}
    return None


class ByArgs:
    """A router object: routes on the arguments."""

    def route_for_task(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
                       options: Mapping[str, Any], task: Any = None, **kw: Any) -> Any:
        return "big" if args and args[0] > 100 else None


def test_dict_routes_exact_glob_and_regex(make: Any) -> None:
    app = make(task_routes={"feed.tasks.import_feed": {"queue": "feeds"},
                            "feed.tasks.*": "feed-other",
                            re.compile(r"(image|audio)\.tasks\..*"): {"queue": "media"}})
    for name in ("feed.tasks.import_feed", "feed.tasks.parse", "image.tasks.resize",
                 "audio.tasks.mix", "other.task"):
        app.send_task(name)
    assert landed(app, "feeds", "feed-other", "media", "celery") == {
        "feeds": 1, "feed-other": 1, "media": 2, "celery": 1}


def test_routers_in_a_list_the_first_answer_wins(make: Any) -> None:
    app = make(task_routes=[by_video, f"{__name__}:ByArgs", {"*": {"queue": "rest"}}])
    app.send_task("video.encode")
    app.send_task("calc.add", args=[500])
    app.send_task("calc.add", args=[1])
    assert landed(app, "video", "big", "rest") == {"video": 1, "big": 1, "rest": 1}
    [message] = app.transport.fetch(["video"], 1, 1)
    assert message.envelope.properties.get("priority") == 7, "a route's priority is used"


def test_the_send_then_the_task_then_the_routes(make: Any) -> None:
    app = make(task_routes={"t.*": {"queue": "routed"}})

    @app.task(name="t.own", queue="own-queue")
    def own() -> None: ...

    @app.task(name="t.plain")
    def plain() -> None: ...

    own.delay()
    plain.delay()
    plain.apply_async(queue="sent")
    plain.s().set(queue="sig").apply_async()
    assert landed(app, "own-queue", "routed", "sent", "sig") == {
        "own-queue": 1, "routed": 1, "sent": 1, "sig": 1}


def test_task_queues_bindings_decide_the_queue_of_an_exchange_route(make: Any) -> None:
    app = make(task_queues=[
        {"name": "images", "exchange": "media", "exchange_type": "topic",
         "routing_key": "media.image.#"},
        {"name": "videos", "exchange": "media", "exchange_type": "topic",
         "routing_key": "media.video.*"},
        {"name": "direct-q", "exchange": "jobs", "routing_key": "job.a"}],
        task_routes={"img.*": {"exchange": "media", "routing_key": "media.image.png.big"}})
    app.send_task("img.resize")
    app.send_task("vid", exchange="media", routing_key="media.video.mp4")
    app.send_task("job", exchange="jobs", routing_key="job.a")
    app.send_task("to-queue", queue="videos")
    assert landed(app, "images", "videos", "direct-q") == {"images": 1, "videos": 2,
                                                             "direct-q": 1}
    with pytest.raises(RoutingError, match="task 'x' is routed to exchange 'media' with routing "
                                           "key 'nothing.here', and no queue in task_queues is "
                                           "bound to it"):
        app.send_task("x", exchange="media", routing_key="nothing.here")


def test_task_queues_as_kombu_queues_and_a_worker_consumes_them_all(make: Any) -> None:
    kombu = pytest.importorskip("kombu")
    media = kombu.Exchange("media", type="direct")
    app = make(task_queues=(kombu.Queue("default", kombu.Exchange("default"),
                                        routing_key="default"),
                            kombu.Queue("videos", media, routing_key="media.video")),
               task_default_queue="default")
    routes = app.producer.routes()
    assert routes.bindings == [Binding("default", "default", "direct", "default"),
                               Binding("videos", "media", "direct", "media.video")]
    worker = Worker(app, pool="solo", concurrency=1)
    assert worker.options.queues == ("default", "videos"), \
        "without -Q a worker consumes every queue of task_queues, as Celery's"


def test_missing_queues_are_created_unless_turned_off(make: Any) -> None:
    app = make(task_queues=[{"name": "only"}], task_create_missing_queues=False)
    app.send_task("t", queue="only")
    with pytest.raises(RoutingError, match="task 't' is routed to queue 'elsewhere', which is "
                                           "not in task_queues and task_create_missing_queues "
                                           "is off"):
        app.send_task("t", queue="elsewhere")
    lax = make(task_queues=[{"name": "only"}])
    lax.send_task("t", queue="elsewhere")
    assert landed(lax, "elsewhere") == {"elsewhere": 1}


def test_a_router_that_raises_or_answers_nonsense_is_one_sentence(make: Any) -> None:
    def broken(name: str, *args: Any, **kwargs: Any) -> Any:
        raise KeyError("tenant")

    app = make(task_routes=[broken])
    with pytest.raises(RoutingError, match="task_routes: the router .*broken raised KeyError: "
                                           "'tenant' while routing task 'proj.add'; fix the "
                                           "router"):
        app.send_task("proj.add")
    odd = make(task_routes=[lambda *a, **k: 42])
    with pytest.raises(RoutingError, match="returned 42 for task 'proj.add'; a router returns a "
                                           "dict of options"):
        odd.send_task("proj.add")
    with pytest.raises(ConfigurationError, match="task_routes: 3 is not a router"):
        make(task_routes=[3]).send_task("proj.add")
    with pytest.raises(ConfigurationError, match="queue 'h' has exchange type 'headers'; kernel "
                                                 "declares direct, topic, fanout exchanges"):
        make(task_queues=[{"name": "h", "exchange_type": "headers"}]).send_task("x")


def test_routing_options_are_send_options(make: Any) -> None:
    app = make()
    with pytest.raises(TypeError, match="unknown sending option\\(s\\): routing_ky"):
        app.send_task("t", routing_ky="x")
    app.send_task("t", exchange=None, routing_key="celery")
    assert landed(app, "celery") == {"celery": 1}
