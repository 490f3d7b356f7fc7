"""The example project as its users run it: ``kernel worker -A proj`` (prefork) charging the
orders the site places with delay_on_commit, its results in django-celery-results' admin."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django_celery_results.models import TaskResult
from orders.models import Order
from orders.services import place_order
from proj import kernel_app

from kernel.testing.transport import wait_for
from kernel.testing.workers import WorkerProcess

from conftest import DATA, ROOT


@pytest.fixture(scope="module")
def worker() -> Iterator[WorkerProcess]:
    process = WorkerProcess("proj", broker=kernel_app.conf.broker_url, path=ROOT, cwd=ROOT,
                            pool="prefork", concurrency=2, loglevel="info",
                            log=DATA / "worker.log")
    process.start()
    process.wait_ready(60)
    yield process
    process.stop()


def test_the_app_takes_its_settings_from_django() -> None:
    assert kernel_app.conf.result_backend == "django-db"
    assert kernel_app.conf.broker_url.startswith("sqlite:///")
    assert kernel_app.conf.result_extended is True


def test_an_order_is_charged_once_committed(worker: WorkerProcess) -> None:
    order = place_order("a book")
    wait_for(lambda: Order.objects.get(pk=order.pk).paid, 30,
             f"the worker to charge the order; see {DATA / 'worker.log'}")
    row = TaskResult.objects.get(task_name="orders.tasks.charge", task_args=f"[{order.pk}]")
    assert row.status == "SUCCESS" and "charged order" in row.result


def test_a_rolled_back_order_sends_nothing() -> None:
    queued = kernel_app.transport.size("celery")
    with pytest.raises(RuntimeError), transaction.atomic():
        place_order("never")
        raise RuntimeError("the payment form was invalid")
    assert kernel_app.transport.size("celery") == queued
    assert not Order.objects.filter(item="never").exists()


def test_the_admin_lists_the_results(worker: WorkerProcess) -> None:
    order = place_order("a lamp")
    wait_for(lambda: Order.objects.get(pk=order.pk).paid, 30, "the order to be charged")
    admin = User.objects.create_superuser(f"admin-{uuid.uuid4().hex[:6]}", "a@example.com", "pw")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/django_celery_results/taskresult/")
    assert page.status_code == 200 and "orders.tasks.charge" in page.content.decode()
