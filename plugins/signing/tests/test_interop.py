"""Celery 5's auth serializer and kernel's, on one Redis broker: a Celery client's signed task
runs on a kernel worker that requires signatures (and one signed by a certificate kernel does
not trust is dead-lettered), and a kernel client's signed task runs on a real Celery worker
set up with ``app.setup_security()``, compressed too."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.testing.interop import celery_client, celery_tasks_source, kernel_tasks
from kernel.testing.transport import wait_for
from kernel.testing.workers import CeleryWorkerProcess, celery_workers, running_worker
from kernel_signing.testing import Identity, Pki

pytestmark = pytest.mark.timeout(120)

#: Celery reads results with result_accept_content, which follows accept_content (auth only)
#: unless set: results are plain json on both sides.
RESULTS_JSON = {"result_accept_content": ["json"]}


@pytest.fixture
def queue() -> str:
    return f"signing-interop-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def celery_store(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Celery refuses to load a store holding an expired certificate: its own, without it."""
    store = tmp_path_factory.mktemp("celery-store")
    for identity in (pki.signer, pki.colleague):
        shutil.copy(identity.cert_path, store)
    return store


def celery_security(identity: Identity, store: Path) -> dict[str, Any]:
    return {"security_key": str(identity.key_path),
            "security_certificate": str(identity.cert_path),
            "security_cert_store": str(store), "task_serializer": "auth",
            "accept_content": ["auth"], **RESULTS_JSON}


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[[str, str, str], CeleryWorkerProcess]]:
    with celery_workers(tmp_path) as start:
        yield start


@pytest.fixture
def kernel_worker(redis_url: str, queue: str, pki: Pki) -> Iterator[App]:
    kapp = kernel_tasks(redis_url, redis_url, queue, security_cert_store=str(pki.store))
    kapp.setup_security()
    with running_worker(kapp, concurrency=2):
        yield kapp
    kapp.transport.purge(queue + ".dead")
    kapp.close()


def celery_signing_client(redis_url: str, queue: str, identity: Identity, store: Path) -> Any:
    """A Celery client signing as `identity`. Celery registers its auth serializer in kombu's
    process-wide registry: the last one set up signs for every Celery app of the process."""
    capp = celery_client(redis_url, redis_url, queue, **celery_security(identity, store))
    capp.setup_security()
    return capp


def test_a_celery_clients_signed_task_runs_on_a_kernel_worker_requiring_signatures(
        redis_url: str, queue: str, pki: Pki, celery_store: Path, kernel_worker: App) -> None:
    capp = celery_signing_client(redis_url, queue, pki.signer, celery_store)
    try:
        assert capp.send_task("interop.add", (2, 3)).get(timeout=30) == 5
        assert capp.send_task("interop.add", (4, 5), compression="zlib").get(timeout=30) == 9
    finally:
        capp.close()


def test_a_celery_client_signing_with_an_untrusted_certificate_is_dead_lettered(
        redis_url: str, queue: str, pki: Pki, celery_store: Path, kernel_worker: App) -> None:
    stranger = celery_signing_client(redis_url, queue, pki.untrusted, celery_store)
    try:
        stranger.send_task("interop.add", (1, 1), task_id="celery-untrusted")
        [dead] = wait_for(lambda: kernel_worker.transport.dead_letters(queue), 20,
                          "the untrusted Celery message in the dead-letter queue")
        assert dead.envelope.headers["id"] == "celery-untrusted"
        assert "not in the trusted store" in dead.extra["reason"]
        kclient = kernel_tasks(redis_url, redis_url, queue, **pki.settings())
        kclient.setup_security()
        assert kclient.send_task("interop.add", (20, 22)).get(timeout=30) == 42, "serving on"
        kclient.close()
    finally:
        stranger.close()


def test_a_kernel_clients_signed_task_runs_on_a_celery_worker(
        redis_url: str, queue: str, pki: Pki, celery_store: Path,
        celery_worker: Callable[[str, str, str], CeleryWorkerProcess]) -> None:
    source = celery_tasks_source(redis_url, redis_url, queue,
                                 **celery_security(pki.signer, celery_store))
    worker = celery_worker("csigned", source + "\napp.setup_security()\n", queue)
    kapp = App("kernel-client", broker=redis_url, results=redis_url,
               config={"task_default_queue": queue, **pki.settings(pki.colleague)})
    kapp.setup_security()
    try:
        assert kapp.send_task("interop.add", (2, 3)).get(timeout=40) == 5, f"see {worker.log}"
        compressed = kapp.send_task("interop.add", (6, 7), compression="zlib")
        assert compressed.get(timeout=40) == 13, f"see {worker.log}"
    finally:
        kapp.close()
