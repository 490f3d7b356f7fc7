"""The same three tasks on both sides of a store's Celery interop tests: ``interop.add(x, y)``,
``interop.tsum(values)`` (a chord's body) and ``interop.boom(text)`` (raises KeyError), as a
kernel App (`kernel_tasks`), as the source of a Celery worker's module (`celery_tasks_source`,
for `kernel.testing.workers.celery_workers`), and a Celery client (`celery_client`)::

    with running_worker(kernel_tasks(broker, backend, queue)):
        ...
    worker = celery_worker("ctasks", celery_tasks_source(broker, backend, queue), queue)

Both sides write Celery's extended results (``result_extended``) and retry a chord's unlock
every 0.2 s, so a test waits for a chord no longer than it must.

`CeleryInteropSuite` holds the tests a key-value store's plugin runs against real Celery
(results, failures, saved groups and chords, each both ways); a plugin subclasses it and gives
the fixtures that name its store for each side (`kernel_backend`, `celery_backend`) beside the
usual ``redis_url`` and ``celery_worker``::

    class TestInterop(CeleryInteropSuite):
        @pytest.fixture
        def kernel_backend(self, url, options):
            return url, options           # kernel's URL and settings
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel.app import App
from kernel.canvas import Signature, chord
from kernel.result import GroupResult
from kernel.testing.workers import CeleryWorkerProcess, running_worker

#: what both sides are configured with, besides the broker, backend and queue.
SHARED_CONF: dict[str, Any] = {"result_extended": True, "result_chord_retry_interval": 0.2}

_CELERY_MODULE = """\
{setup}
from celery import Celery
app = Celery("ctasks", broker={broker!r}, backend={backend!r})
app.conf.task_default_queue = {queue!r}
app.conf.worker_hijack_root_logger = False
app.conf.update({conf!r})

@app.task(name="interop.add")
def add(x, y):
    return x + y

@app.task(name="interop.tsum")
def tsum(values):
    return sum(values)

@app.task(name="interop.boom")
def boom(text):
    raise KeyError(text)
"""


def celery_tasks_source(broker: str, backend: str, queue: str, *, setup: str = "",
                        **conf: Any) -> str:
    """A Celery worker's module with the three tasks; `setup` runs first (``django.setup()``),
    `conf` adds to `SHARED_CONF`."""
    return _CELERY_MODULE.format(setup=textwrap.dedent(setup), broker=broker, backend=backend,
                                 queue=queue, conf={**SHARED_CONF, **conf})


def kernel_tasks(broker: str, backend: str, queue: str, **config: Any) -> App:
    """A kernel App with the three tasks; `config` adds to `SHARED_CONF`."""
    app = App("kernel-side", broker=broker, results=backend,
              config={"task_default_queue": queue, **SHARED_CONF, **config})

    @app.task(name="interop.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="interop.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    @app.task(name="interop.boom")
    def boom(text: str) -> None:
        raise KeyError(text)

    return app


def celery_client(broker: str, backend: str, queue: str, **conf: Any) -> Any:
    """A Celery app that sends to `queue` and reads `backend` (Celery is imported here: kernel
    does not depend on it)."""
    import celery

    capp = celery.Celery("celery-side", broker=broker, backend=backend)
    capp.conf.task_default_queue = queue
    capp.conf.result_extended = True
    capp.conf.update(conf)
    return capp


Backend = tuple[str, dict[str, Any]]


class CeleryInteropSuite:
    """Celery and kernel on one store (Redis carries the tasks): each side's results, failures,
    saved groups and chords read or run by the other. Fixtures to give: `kernel_backend` (URL
    and settings of kernel's store), `celery_backend` (Celery's ``result_backend`` and conf for
    the same objects; by default the same), ``redis_url`` and ``celery_worker``
    (`kernel.testing.workers.celery_workers`)."""

    @pytest.fixture
    def kernel_backend(self) -> Backend:
        pytest.fail("override the `kernel_backend` fixture: (URL, settings) of kernel's store")

    @pytest.fixture
    def celery_backend(self, kernel_backend: Backend) -> Backend:
        return kernel_backend

    @pytest.fixture
    def queue(self) -> str:
        return f"interop-{uuid.uuid4().hex}"

    @pytest.fixture
    def celery_on_queue(self, redis_url: str, celery_backend: Backend, queue: str,
                        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]
                        ) -> CeleryWorkerProcess:
        url, conf = celery_backend
        return celery_worker("ctasks", celery_tasks_source(redis_url, url, queue, **conf), queue)

    @pytest.fixture
    def kernel_worker(self, redis_url: str, kernel_backend: Backend,
                      queue: str) -> Iterator[App]:
        url, config = kernel_backend
        kapp = kernel_tasks(redis_url, url, queue, **config)
        with running_worker(kapp, concurrency=4):
            yield kapp
        kapp.close()

    @pytest.fixture
    def kernel_client(self, redis_url: str, kernel_backend: Backend,
                      queue: str) -> Iterator[App]:
        url, config = kernel_backend
        kapp = App("kernel-client", broker=redis_url, results=url,
                   config={"task_default_queue": queue, **SHARED_CONF, **config})
        yield kapp
        kapp.close()

    @pytest.fixture
    def celery_app(self, redis_url: str, celery_backend: Backend, queue: str) -> Iterator[Any]:
        url, conf = celery_backend
        capp = celery_client(redis_url, url, queue, **conf)
        yield capp
        capp.close()

    def test_a_celery_workers_results_read_through_kernel(
            self, kernel_client: App, celery_on_queue: CeleryWorkerProcess) -> None:
        result = kernel_client.send_task("interop.add", (2, 3))
        assert result.get(timeout=40) == 5, f"see {celery_on_queue.log}"
        meta = kernel_client.backend.get_meta(result.id)
        assert meta is not None and meta["status"] == "SUCCESS"
        assert meta["name"] == "interop.add" and meta["args"] == [2, 3], \
            "the extended fields Celery wrote read back as the record's"
        failed = kernel_client.send_task("interop.boom", ("gone",))
        with pytest.raises(KeyError):
            failed.get(timeout=40)
        assert "KeyError" in (failed.traceback or ""), "Celery's traceback is read"

    def test_a_kernel_workers_results_read_through_celery(self, celery_app: Any,
                                                          kernel_worker: App,
                                                          queue: str) -> None:
        result = celery_app.send_task("interop.add", (4, 5))
        assert result.get(timeout=30) == 9
        assert result.name == "interop.add" and result.args == [4, 5], \
            "kernel wrote Celery's extended fields"
        failed = celery_app.send_task("interop.boom", ("lost",))
        with pytest.raises(KeyError):
            failed.get(timeout=30)
        assert failed.state == "FAILURE" and "KeyError" in failed.traceback
        # Sent by kernel, read by Celery: the PENDING record a kernel client writes on send.
        pending = kernel_worker.send_task("interop.nowhere", (), queue=queue + "-idle")
        assert celery_app.AsyncResult(pending.id).state == "PENDING"
        pending.forget()

    def test_saved_groups_read_both_ways(self, kernel_client: App, celery_app: Any) -> None:
        import celery.result

        ids = [uuid.uuid4().hex for _ in range(3)]
        mine = GroupResult(uuid.uuid4().hex, [kernel_client.AsyncResult(i) for i in ids],
                           app=kernel_client)
        mine.save()
        theirs = celery.result.GroupResult(uuid.uuid4().hex,
                                           [celery_app.AsyncResult(i) for i in ids],
                                           app=celery_app)
        theirs.save()
        restored = celery.result.GroupResult.restore(mine.id, app=celery_app)
        assert [r.id for r in restored.results] == ids, "Celery restores a group kernel saved"
        back = GroupResult.restore(theirs.id, kernel_client)
        assert back is not None and [r.id for r in back.results] == ids, \
            "kernel restores a group Celery saved"
        celery_app.backend.delete_group(mine.id)
        assert GroupResult.restore(mine.id, kernel_client) is None

    def test_a_celery_chord_runs_on_kernel_workers(self, celery_app: Any,
                                                   kernel_worker: App) -> None:
        import celery

        add, tsum = celery_app.signature("interop.add"), celery_app.signature("interop.tsum")
        result = celery.chord([add.clone((i, i)) for i in range(6)], tsum).apply_async()
        assert result.get(timeout=60) == 30, "kernel's workers finished Celery's chord"

    def test_a_kernel_chord_runs_on_a_celery_worker(
            self, kernel_client: App, celery_on_queue: CeleryWorkerProcess) -> None:
        def sig(name: str, *args: Any) -> Signature:
            return Signature(f"interop.{name}", args, app=kernel_client)

        body = chord([sig("add", i, i) for i in range(6)], sig("tsum")).apply_async()
        assert body.get(timeout=60) == 30, \
            f"the Celery worker finished kernel's chord; see {celery_on_queue.log}"



class SerializerInteropSuite:
    """Celery and kernel exchanging tasks and results in one serializer on Redis, both ways:
    a kernel client's task runs on a real Celery worker and its result reads back in kernel,
    and a Celery client's runs on a kernel worker. ``interop.add(left, right)`` concatenates
    two lists, so every value in them travels there and back. Give `serializer`, `left`,
    `right` and the fixtures ``broker`` (a Redis URL) and ``celery_worker``
    (`kernel.testing.workers.celery_workers`)."""

    serializer: str = ""
    left: list[Any] = []
    right: list[Any] = []

    @property
    def conf(self) -> dict[str, Any]:
        """Both sides send and store results in the serializer and accept nothing else (so
        nothing passes as json)."""
        name = self.serializer
        return {"task_serializer": name, "result_serializer": name, "accept_content": [name]}

    @pytest.fixture
    def queue(self) -> str:
        return f"{self.serializer}-interop-{uuid.uuid4().hex}"

    @pytest.fixture
    def kernel_worker(self, broker: str, queue: str) -> Iterator[App]:
        kapp = kernel_tasks(broker, broker, queue, **self.conf)
        with running_worker(kapp, concurrency=2):
            yield kapp
        kapp.close()

    def test_a_kernel_clients_task_runs_on_a_celery_worker(
            self, broker: str, queue: str,
            celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
        worker = celery_worker("ctasks", celery_tasks_source(broker, broker, queue,
                                                             **self.conf), queue)
        kapp = App("kernel-client", broker=broker, results=broker,
                   config={"task_default_queue": queue, **self.conf})
        try:
            result = kapp.send_task("interop.add", (self.left, self.right))
            assert result.get(timeout=40) == self.left + self.right, f"see {worker.log}"
            meta = kapp.backend.get_meta(result.id)
            assert meta is not None and meta["status"] == "SUCCESS"
        finally:
            kapp.close()

    def test_a_celery_clients_task_runs_on_a_kernel_worker(self, broker: str, queue: str,
                                                           kernel_worker: App) -> None:
        capp = celery_client(broker, broker, queue, **self.conf)
        try:
            sent = capp.send_task("interop.add", (self.left, self.right))
            assert sent.get(timeout=40) == self.left + self.right, \
                f"Celery reads kernel's {self.serializer} result"
            message = kernel_worker.AsyncResult(sent.id)
            assert message.get(timeout=5) == self.left + self.right
        finally:
            capp.close()


__all__ = ["SHARED_CONF", "CeleryInteropSuite", "SerializerInteropSuite", "celery_client",
           "celery_tasks_source", "kernel_tasks"]
