"""A worker that requires signatures (``accept_content=["auth"]`` or ``["hmac"]``), on SQLite
(a real file, real worker threads, and a prefork worker process): it runs what a trusted key
signed, and sends everything else to the dead-letter queue with the reason in its log, serving
on. The bad messages are made the
way an attacker or a misconfigured client would: unsigned, altered after signing, signed by a
certificate the store does not hold, or by an expired one."""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess, running_worker
from kernel_signing.envelope import SEPARATOR
from kernel_signing.testing import Identity, Pki

AppFactory = Callable[..., App]
HERE = Path(__file__).parent


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    apps: list[App] = []

    def make(**config: Any) -> App:
        app = App("signed", broker=url, results=url,
                  config={"task_default_queue": "q", **config})

        @app.task(name="add")
        def add(x: int, y: int) -> int:
            return x + y

        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def x509_client(make_app: AppFactory, pki: Pki, identity: Identity | None = None) -> App:
    app = make_app(**pki.settings(identity))
    app.setup_security()
    return app


def tamper(app: App, task_id: str, change: Callable[[bytes], bytes]) -> None:
    """Send `add(2, 3)` signed, with `change` applied to the decoded envelope after signing."""
    outgoing, _, _ = app.producer.envelope("add", (2, 3), {}, {"task_id": task_id}, None)
    raw = change(base64.b64decode(outgoing.envelope.body))
    envelope = dataclasses.replace(outgoing.envelope, body=base64.b64encode(raw))
    app.transport.publish([dataclasses.replace(outgoing, envelope=envelope)])


def dead_lettered(app: App, task_id: str, reason: str) -> None:
    """`task_id` reaches the dead-letter queue of ``q``, `reason` in its recorded reason."""
    def dead() -> bool:
        return any(d.envelope.headers["id"] == task_id for d in app.transport.dead_letters("q"))

    wait_for(dead, 10, f"{task_id} in the dead-letter queue")
    [letter] = [d for d in app.transport.dead_letters("q") if d.envelope.headers["id"] == task_id]
    assert reason in letter.extra["reason"], letter.extra["reason"]


def refused(worker_app: App, task_id: str, reason: str,
            caplog: pytest.LogCaptureFixture) -> None:
    dead_lettered(worker_app, task_id, reason)
    assert any(task_id in r.getMessage() and reason in r.getMessage()
               for r in caplog.records if r.levelno >= logging.ERROR), "the reason is logged"


def test_a_worker_requiring_signatures_runs_signed_tasks_and_dead_letters_the_rest(
        make_app: AppFactory, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    worker_app = make_app(security_cert_store=str(pki.store))
    worker_app.setup_security()
    client = x509_client(make_app, pki)
    plain = make_app()
    untrusted = x509_client(make_app, pki, pki.untrusted)
    expired = x509_client(make_app, pki, pki.expired)
    with running_worker(worker_app, concurrency=2) as worker:
        assert client.tasks["add"].delay(2, 3).get(timeout=10) == 5
        plain.send_task("add", (1, 1), task_id="unsigned")
        refused(worker_app, "unsigned", "refusing content type 'application/json'", caplog)
        untrusted.send_task("add", (1, 1), task_id="untrusted")
        refused(worker_app, "untrusted", "not in the trusted store", caplog)
        expired.send_task("add", (1, 1), task_id="expired")
        refused(worker_app, "expired", "expired on", caplog)
        tamper(client, "tampered-body", lambda raw: raw.replace(b"[2,3]", b"[2,4]"))
        refused(worker_app, "tampered-body", "does not match the body", caplog)
        # auth (Celery's format) does not sign the inner content type: kernel refuses
        # one that can run code unless pickle is in accept_content.
        tamper(client, "tampered-type", lambda raw: raw.replace(
            b"application/json", b"application/x-python-serialize"))
        refused(worker_app, "tampered-type", "refusing content type", caplog)
        tamper(client, "truncated", lambda raw: raw.split(SEPARATOR)[0])
        refused(worker_app, "truncated", "not auth-signed", caplog)
        assert client.tasks["add"].delay(20, 22).get(timeout=10) == 42, "it serves on"
        assert worker.consumer is not None and worker.consumer.alive()


def test_a_prefork_worker_requiring_signatures(make_app: AppFactory, pki: Pki,
                                               tmp_path: Path) -> None:
    """Each prefork child decodes on its own: the signer's settings, made by setup_security in
    the worker's process, reach the children, which verify what they fetch."""
    url = f"sqlite:///{tmp_path / 'k.db'}"
    client = x509_client(make_app, pki)
    with WorkerProcess("signed_tasks:app", broker=url, results=url, path=HERE,
                       log=tmp_path / "worker.log", pool="prefork", concurrency=2,
                       queues=["q"], loglevel="info",
                       env={"KERNEL_SIGNING_TEST_STORE": str(pki.store)}) as worker:
        worker.wait_ready()
        results = [client.tasks["add"].delay(i, i) for i in range(6)]
        assert [r.get(timeout=20) for r in results] == [2 * i for i in range(6)]
        make_app().send_task("add", (1, 1), task_id="unsigned")
        dead_lettered(client, "unsigned", "refusing content type 'application/json'")
        tamper(client, "tampered-body", lambda raw: raw.replace(b"[2,3]", b"[2,4]"))
        dead_lettered(client, "tampered-body", "does not match the body")
        x509_client(make_app, pki, pki.untrusted).send_task("add", (1, 1), task_id="untrusted")
        dead_lettered(client, "untrusted", "not in the trusted store")
        assert client.tasks["add"].delay(20, 22).get(timeout=20) == 42, "it serves on"
        log = worker.output()
        assert all(reason in log for reason in ("does not match the body",
                                                 "not in the trusted store")), worker.tail()
        assert worker.running


def test_signed_and_compressed_tasks_run(make_app: AppFactory, pki: Pki) -> None:
    worker_app = make_app(security_cert_store=str(pki.store))
    worker_app.setup_security()
    client = x509_client(make_app, pki)
    with running_worker(worker_app, concurrency=1):
        result = client.tasks["add"].apply_async((2, 3), compression="zlib")
        assert result.get(timeout=10) == 5


def test_hmac_with_rotated_keys(make_app: AppFactory,
                                caplog: pytest.LogCaptureFixture) -> None:
    current, previous = "the current secret, 32 bytes....", "the previous secret, 32 bytes..."
    signed_by = {"task_serializer": "hmac", "accept_content": ["hmac"]}
    worker_app = make_app(hmac_keys=[current, previous], **signed_by)
    old_client = make_app(hmac_keys=[previous], **signed_by)
    new_client = make_app(hmac_keys=[current], **signed_by)
    stranger = make_app(hmac_keys=["a secret nobody here shares"], **signed_by)
    with running_worker(worker_app, concurrency=2) as worker:
        assert old_client.tasks["add"].delay(1, 2).get(timeout=10) == 3
        assert new_client.tasks["add"].delay(3, 4).get(timeout=10) == 7
        stranger.send_task("add", (1, 1), task_id="stranger")
        refused(worker_app, "stranger", "not in hmac_keys", caplog)
        tamper(new_client, "hmac-type", lambda raw: raw.replace(
            b"application/json", b"application/x-yaml"))
        refused(worker_app, "hmac-type", "hmac signature does not match", caplog)
        make_app().send_task("add", (1, 1), task_id="hmac-unsigned")
        refused(worker_app, "hmac-unsigned", "refusing content type", caplog)
        assert worker.consumer is not None and worker.consumer.alive()


def test_a_worker_whose_signer_settings_are_unusable_does_not_start(
        make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app(accept_content=["auth"], security_cert_store=str(tmp_path / "empty"))
    with pytest.raises(ConfigurationError, match="holds no certificate"), \
            running_worker(app, concurrency=1):
        pytest.fail("the worker started")
