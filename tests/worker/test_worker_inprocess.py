"""The worker run in this process on the in-memory broker: lifecycle, bootsteps, middleware,
canvas forms from Celery clients, expiry, ETA, acks and shutdown."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import App, TaskRevokedError, hookimpl, states
from kernel.canvas import Signature
from kernel.errors import ConfigurationError
from kernel.interfaces import Bootstep
from kernel.specs import BootstepSpec, MiddlewareSpec
from kernel.interfaces.bootstep import Deps
from kernel.interfaces.middleware import Middleware
from kernel.worker import Blueprint, Worker
from kernel.worker.steps import ConsumerStep, PoolStep
from tests.helpers import wait_for


def make_app(*plugins: object, url: str | None = None, **config: Any) -> App:
    url = url or f"memory://{uuid.uuid4().hex}"
    config.setdefault("task_default_queue", f"q-{uuid.uuid4().hex}")
    app = App("inproc", broker=url, results=url, plugins=plugins, config=config)

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="mul")
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task(name="fail")
    def fail() -> None:
        raise KeyError("boom")

    @app.task(name="record")
    def record(*args: Any) -> list[Any]:
        events.append(("record", args, time.time()))
        return list(args)

    @app.task(name="wait_for_release")
    def wait_for_release() -> str:
        started.set()
        release.wait(10)
        return "released"

    @app.task(name="at_most_once", acks_late=False)
    def at_most_once() -> int:
        started.set()
        release.wait(10)
        return app.transport.size(app.conf.task_default_queue)

    events: list[Any] = []
    started, release = threading.Event(), threading.Event()
    app.ran, app.started, app.release = events, started, release  # type: ignore[attr-defined]
    return app


@pytest.fixture
def app(broker_url: str) -> Iterator[App]:
    """The features below hold on every broker: in-memory, SQLite and Redis."""
    app = make_app(url=broker_url)
    yield app
    app.close()


def run_worker(app: App, **options: Any) -> Worker:
    worker = Worker(app, pool=options.pop("pool", "threads"),
                    concurrency=options.pop("concurrency", 2), shutdown_timeout=5, **options)
    worker.start()
    return worker


def test_tasks_run_and_results_come_back(app: App) -> None:
    worker = run_worker(app)
    try:
        assert app.tasks["add"].delay(2, 3).get(timeout=10) == 5
        with pytest.raises(KeyError):
            app.tasks["fail"].delay().get(timeout=10)
    finally:
        worker.stop()


@pytest.fixture
def lifecycle() -> list[tuple[str, Any]]:
    """The lifecycle hooks a worker called, in order, with what each could see."""
    seen: list[tuple[str, Any]] = []

    class Observer:
        @hookimpl
        def kernel_worker_init(self, worker: Worker) -> None:
            seen.append(("init", worker.consumer))

        @hookimpl
        def kernel_worker_ready(self, worker: Worker) -> None:
            seen.append(("ready", worker.consumer))

        @hookimpl
        def kernel_worker_shutdown(self, worker: Worker) -> None:
            seen.append(("shutdown", worker.nodename))

    app = make_app(Observer())
    run_worker(app, nodename="obs@host").stop()
    assert [name for name, _ in seen] == ["init", "ready", "shutdown"]
    return seen


def test_hook_kernel_worker_init(lifecycle: list[tuple[str, Any]]) -> None:
    assert lifecycle[0] == ("init", None), "init runs before any bootstep started"


def test_hook_kernel_worker_ready(lifecycle: list[tuple[str, Any]]) -> None:
    assert type(lifecycle[1][1]).__name__ == "Consumer", "ready runs once the consumer exists"


def test_hook_kernel_worker_shutdown(lifecycle: list[tuple[str, Any]]) -> None:
    assert lifecycle[2] == ("shutdown", "obs@host")


def test_hook_kernel_bootsteps_injects_what_a_step_requires() -> None:
    log: list[Any] = []

    class Probe(Bootstep[str]):
        name = "probe"
        requires = (ConsumerStep, PoolStep)

        def start(self, deps: Deps) -> str:
            consumer = deps[ConsumerStep]
            log.append(("start", type(consumer).__name__, deps[PoolStep].active,
                        consumer._stopped))
            self.consumer = consumer
            return "probe-value"

        def stop(self) -> None:
            # Stopped before the consumer it requires: it still runs here.
            log.append(("stop", self.consumer._stopped))

    class Plugin:
        @hookimpl
        def kernel_bootsteps(self) -> Any:
            yield BootstepSpec.of(Probe)

    app = make_app(Plugin())
    worker = run_worker(app)
    assert '"probe" -> "consumer"' in worker.graph_dot()
    worker.stop()
    assert log == [("start", "Consumer", 0, False), ("stop", False)]


def test_a_step_may_use_only_what_it_requires() -> None:
    class Sneaky(Bootstep[None]):
        name = "sneaky"
        requires = (PoolStep,)

        def start(self, deps: Deps) -> None:
            deps[ConsumerStep]

    class Plugin:
        @hookimpl
        def kernel_bootsteps(self) -> Any:
            yield BootstepSpec.of(Sneaky)

    worker = Worker(make_app(Plugin()), pool="threads", concurrency=1)
    with pytest.raises(ConfigurationError, match="uses 'consumer' without requiring it"):
        worker.start()


def test_blueprint_refuses_cycles_and_missing_steps_with_a_sentence() -> None:
    class A(Bootstep[None]):
        name = "a"

    class B(Bootstep[None]):
        name, requires = "b", (A,)

    A.requires = (B,)

    class Nowhere(Bootstep[None]):
        name = "nowhere"

    class C(Bootstep[None]):
        name, requires = "c", (Nowhere,)

    with pytest.raises(ConfigurationError, match="cycle: a -> b -> a"):
        Blueprint([A, B])
    with pytest.raises(ConfigurationError, match="'c' requires 'nowhere'"):
        Blueprint([C])


def test_hook_kernel_middleware_runs_in_order_and_a_failing_one_is_isolated() -> None:
    order: list[str] = []

    class Outer(Middleware):
        name = "outer"

        def before(self, call: Any) -> None:
            order.append("outer.before")

        def after(self, call: Any) -> None:
            order.append(f"outer.after:{call.state}")

    class Broken(Middleware):
        name = "broken"

        def before(self, call: Any) -> None:
            raise RuntimeError("middleware bug")

    class Plugin:
        @hookimpl
        def kernel_middleware(self) -> Any:
            yield MiddlewareSpec("outer", Outer, before=("broken",))
            yield MiddlewareSpec("broken", Broken)

    app = make_app(Plugin())
    worker = run_worker(app)
    try:
        assert app.tasks["add"].delay(1, 1).get(timeout=10) == 2
    finally:
        worker.stop()
    assert order == ["outer.before", "outer.after:SUCCESS"]


def test_celery_style_chain_and_callbacks_run(app: App) -> None:
    worker = run_worker(app)
    run = uuid.uuid4().hex  # fixed ids, but never those of an earlier run on a shared Redis
    try:
        # chain(add(1, 2), mul(10), add(5)) as a Celery client encodes it: the rest reversed.
        last = Signature("add", [5], options={"task_id": f"last-step-{run}"})
        middle = Signature("mul", [10])
        app.send_task("add", (1, 2), chain=[last, middle])
        assert app.AsyncResult(f"last-step-{run}").get(timeout=10) == 35
        # link / link_error
        cb = Signature("record", [], options={"task_id": f"callback-{run}"})
        app.tasks["add"].apply_async((2, 2), link=cb)
        assert app.AsyncResult(f"callback-{run}").get(timeout=10) == [4]
        eb = Signature("record", [], options={"task_id": f"errback-{run}"})
        failed = app.tasks["fail"].apply_async(link_error=eb)
        assert app.AsyncResult(f"errback-{run}").get(timeout=10) == [failed.id]
    finally:
        worker.stop()


def test_a_task_revoked_before_the_worker_starts_never_runs(app: App) -> None:
    revoked = app.tasks["record"].delay("revoked")
    revoked.revoke()
    worker = run_worker(app)
    try:
        assert app.tasks["add"].delay(1, 1).get(timeout=10) == 2
        with pytest.raises(TaskRevokedError):
            revoked.get(timeout=10)
        assert not app.ran  # type: ignore[attr-defined]
    finally:
        worker.stop()


def test_an_expired_task_is_not_run_and_is_recorded_revoked(app: App) -> None:
    result = app.tasks["record"].apply_async(("late",), expires=-1)
    worker = run_worker(app)
    try:
        with pytest.raises(TaskRevokedError, match="expired"):
            result.get(timeout=10)
        assert result.state == states.REVOKED
        assert app.tasks["add"].delay(1, 1).get(timeout=10) == 2
        assert not app.ran  # type: ignore[attr-defined]
    finally:
        worker.stop()


def test_countdown_runs_no_earlier_than_its_eta(app: App) -> None:
    worker = run_worker(app)
    try:
        sent = time.time()
        result = app.tasks["record"].apply_async(("eta",), countdown=0.5)
        result.get(timeout=10)
        ran_at = app.ran[0][2]  # type: ignore[attr-defined]
        assert ran_at >= sent + 0.5
    finally:
        worker.stop()


def test_acks_late_false_settles_the_message_before_the_task_runs(app: App) -> None:
    worker = run_worker(app)
    try:
        result = app.tasks["at_most_once"].delay()
        app.release.set()  # type: ignore[attr-defined]
        assert result.get(timeout=10) == 0, "the message was acked before the task ran"
    finally:
        worker.stop()


def test_warm_shutdown_finishes_running_tasks_and_gives_prefetched_ones_back(app: App) -> None:
    worker = run_worker(app, concurrency=1, prefetch_multiplier=4)
    running = app.tasks["wait_for_release"].delay()
    assert app.started.wait(10)  # type: ignore[attr-defined]
    queued = [app.tasks["add"].delay(i, i) for i in range(3)]
    wait_for(lambda: worker.consumer is not None and worker.consumer.held == 4, 10,
             "the worker should prefetch the three queued tasks")
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    app.release.set()  # type: ignore[attr-defined]
    stopper.join(10)
    assert not stopper.is_alive()
    assert running.get(timeout=1) == "released"
    assert app.transport.size(app.conf.task_default_queue) == 3, (
        "prefetched tasks go back to the broker")
    assert all(r.state == states.PENDING for r in queued)


def test_eager_mode_runs_inline() -> None:
    app = App("eager", broker="memory://eager", config={"task_always_eager": True})

    @app.task
    def double(x: int) -> int:
        return 2 * x

    assert double.delay(21).get() == 42


def test_asyncio_pool_awaits_async_tasks_on_its_loop_and_runs_sync_ones() -> None:
    import asyncio

    app = make_app()
    loops: list[int] = []

    @app.task(name="async_double")
    async def async_double(x: int) -> int:
        loops.append(id(asyncio.get_running_loop()))
        await asyncio.sleep(0.01)
        return 2 * x

    worker = run_worker(app, pool="asyncio", concurrency=20)
    try:
        results = [async_double.delay(i) for i in range(40)] + [app.tasks["add"].delay(1, 2)]
        assert [r.get(timeout=20) for r in results] == [2 * i for i in range(40)] + [3]
        assert len(set(loops)) == 1, "every async task ran on the pool's one event loop"
    finally:
        worker.stop()
    app.close()


def test_pending_means_sent_and_unknown_means_never_seen() -> None:
    app = make_app()
    sent = app.tasks["add"].delay(1, 1)
    assert sent.state == states.PENDING
    assert app.AsyncResult("never-sent").state == states.UNKNOWN
    quiet = make_app(task_track_sent=False)
    assert quiet.tasks["add"].delay(1, 1).state == states.PENDING
    assert quiet.AsyncResult("never-sent").state == states.PENDING, "Celery's meaning"
    app.close()
    quiet.close()


def test_a_send_never_writes_pending_over_a_record() -> None:
    """A send's PENDING record goes only where no record is: in a network cut a timed-out
    send's write can reach the store after the worker stored the result."""
    app = make_app()
    app.backend.store_result("done-already", states.SUCCESS, 4)
    app.tasks["add"].apply_async((2, 2), task_id="done-already")
    assert app.AsyncResult("done-already").state == states.SUCCESS
    assert app.AsyncResult("done-already").get(timeout=1) == 4
    app.close()


def test_get_of_a_task_just_sent_waits_without_reading_first(app: App) -> None:
    """The client wrote the PENDING record itself: reading it back before waiting would only
    cost a round trip (the wait reads whatever is newer)."""
    worker = run_worker(app)  # first: starting reads the revocation log in this thread
    store, me = app.backend.store, threading.get_ident()
    calls: list[str] = []
    for name in ("get", "wait"):
        real = getattr(store, name)

        def traced(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            if threading.get_ident() == me:
                calls.append(_name)
            return _real(*args, **kwargs)

        setattr(store, name, traced)
    try:
        result = app.tasks["add"].delay(2, 2)
        assert result.get(timeout=10) == 4
        assert calls[0] == "wait", calls
        calls.clear()
        assert result.get(timeout=10) == 4  # done and known: no store call at all
        assert app.AsyncResult(result.id).get(timeout=10) == 4  # not sent here: read first
        assert calls[0] == "get", calls
    finally:
        worker.stop()


def test_eager_tasks_see_their_request() -> None:
    app = App("eager-req", broker="memory://eager-req", config={"task_always_eager": True})

    @app.task(bind=True)
    def whoami(self: Any) -> str:
        return str(self.request.id)

    result = whoami.delay()
    assert result.get() == result.id


def test_bad_rates_and_stateful_options_without_a_store_fail_at_definition() -> None:
    app = App("defs", broker="memory://defs", config={"result_backend": None})
    with pytest.raises(ConfigurationError, match="N/s, N/m or N/h"):
        app.task(rate_limit="fast")(lambda: None)
    with pytest.raises(ConfigurationError, match="set rate_limit_store"):
        app.task(global_rate_limit="5/s")(lambda: None)
    with pytest.raises(ConfigurationError, match="set result_backend"):
        app.task(unique=True)(lambda: None)
