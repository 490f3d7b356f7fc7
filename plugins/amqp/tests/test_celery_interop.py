"""A real Celery 5 app and a kernel app on one RabbitMQ call each other's workers by task name.

Results stay on each side's own store, so each test checks the task's side effect: a file.
Celery shares the queues when it declares them with the same priority range
(``task_queue_max_priority = 10``)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernel import App
from kernel.testing.transport import wait_for
from kernel.testing.workers import CeleryWorkerProcess
from kernel.testing.workers import running_worker


def touch(path: str, text: str) -> None:
    Path(path).write_text(text)


def written(path: Path) -> str:
    """The file's text once there is some: `write_text` creates the file before it writes."""
    return path.read_text() if path.exists() else ""


def test_celery_client_calls_a_kernel_worker(url: str, tmp_path: Path,
                                             new_queue: Callable[[str], str],
                                             celery: Any) -> None:
    queue = new_queue("interop-in")
    app = App("interop", broker=url, results=f"sqlite:///{tmp_path / 'results.db'}",
              config={"task_default_queue": queue})

    @app.task(name="interop.add")
    def add(x: int, y: int, path: str) -> int:
        touch(path, f"{x + y} {time.time()}")
        return x + y

    client = celery.Celery("client", broker=url)
    client.conf.task_queue_max_priority = 10
    try:
        with running_worker(app, concurrency=2, queues=[queue]):
            now, later = tmp_path / "now", tmp_path / "later"
            client.send_task("interop.add", args=(2, 3, str(now)), queue=queue)
            sent = time.time()
            client.send_task("interop.add", args=(4, 5, str(later)), queue=queue, countdown=1)
            text = wait_for(lambda: written(now), 15, "the kernel worker ran add(2, 3) sent by "
                                                       "Celery")
            assert text.split()[0] == "5"
            # Celery's countdown is an ETA header: the kernel worker hands it to the broker's
            # delay cascade instead of holding it, and runs it once due.
            text = wait_for(lambda: written(later), 15, "the kernel worker ran the countdown "
                                                         "task sent by Celery")
            result, ran_at = text.split()
            assert result == "9" and float(ran_at) >= sent + 1, "a countdown task ran early"
    finally:
        client.close()
        app.close()


CELERY_TASKS = textwrap.dedent("""
    from pathlib import Path
    from celery import Celery

    app = Celery("celerytasks", broker={url!r})
    app.conf.task_queue_max_priority = 10

    @app.task(name="interop.mul")
    def mul(x, y, path):
        Path(path).write_text(str(x * y))
        return x * y
""")


def test_kernel_client_calls_a_celery_worker(
        url: str, tmp_path: Path, new_queue: Callable[[str], str],
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    queue = new_queue("interop-out")
    celery_worker("celerytasks", CELERY_TASKS.format(url=url), queue)
    app = App("interop", broker=url, results=f"sqlite:///{tmp_path / 'results.db'}")
    try:
        out = tmp_path / "out"
        app.send_task("interop.mul", (6, 7, str(out)), queue=queue)
        assert wait_for(lambda: written(out), 30,
                        "the Celery worker ran mul(6, 7) sent by kernel") == "42"
    finally:
        app.close()
