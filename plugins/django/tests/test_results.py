"""The django-db store beyond the suite: rows in django-celery-results' layout (which its admin
lists), expiry and cleanup, and bad input answered with one sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django_celery_results.models import GroupResult as GroupRow
from django_celery_results.models import TaskResult

from kernel import App, ConfigurationError, GroupResult
from kernel.plugin import DecodeError

pytestmark = pytest.mark.integration


def test_a_task_row_is_what_celery_writes(alias: str, make_app: Callable[..., App]) -> None:
    app = make_app(f"django-db://{alias}", result_extended=True)
    task_id = uuid.uuid4().hex
    app.backend.store_result(task_id, "SUCCESS", {"n": [1, 2]},
                             extra={"name": "shop.checkout", "args": [7], "kwargs": {"a": 1},
                                    "worker": "w1@host", "retries": 2})
    row = TaskResult.objects.using(alias).get(task_id=task_id)
    assert (row.status, row.content_type, row.content_encoding) == (
        "SUCCESS", "application/json", "utf-8")
    assert json.loads(row.result) == {"n": [1, 2]}, "result: the serializer's text, as Celery's"
    assert json.loads(row.meta)["children"] == []
    assert (row.task_name, json.loads(row.task_args), json.loads(row.task_kwargs),
            row.worker) == ("shop.checkout", [7], {"a": 1}, "w1@host")
    assert row.date_done is not None and row.date_created is not None
    meta = app.backend.get_meta(task_id)
    assert meta is not None and meta["result"] == {"n": [1, 2]} and meta["retries"] == 2, \
        "what has no column of its own (retries) comes back from meta"
    assert app.AsyncResult(task_id).get(timeout=5) == {"n": [1, 2]}


def test_started_and_failed_rows(alias: str, make_app: Callable[..., App]) -> None:
    app = make_app(f"django-db://{alias}")
    task_id = uuid.uuid4().hex
    app.backend.store_result(task_id, "STARTED", None)
    started = TaskResult.objects.using(alias).get(task_id=task_id)
    assert started.date_started is not None, "STARTED sets date_started, as Celery does"
    try:
        raise KeyError("gone")
    except KeyError as exc:
        app.backend.store_result(task_id, "FAILURE", exc, traceback="Traceback: KeyError")
    row = TaskResult.objects.using(alias).get(task_id=task_id)
    assert row.status == "FAILURE" and row.traceback == "Traceback: KeyError"
    assert json.loads(row.result)["exc_type"] == "KeyError"
    assert row.date_started == started.date_started, "a later write keeps date_started"
    with pytest.raises(KeyError):
        app.AsyncResult(task_id).get(timeout=5)


def test_a_saved_group_row(alias: str, make_app: Callable[..., App]) -> None:
    app = make_app(f"django-db://{alias}")
    ids = [uuid.uuid4().hex for _ in range(2)]
    saved = GroupResult(uuid.uuid4().hex, [app.AsyncResult(i) for i in ids], app=app).save()
    row = GroupRow.objects.using(alias).get(group_id=saved.id)
    assert row.content_type == "application/json"
    assert json.loads(row.result) == [[saved.id, None], [[[i, None], None] for i in ids]]
    restored = GroupResult.restore(saved.id, app)
    assert restored is not None and [r.id for r in restored.results] == ids
    saved.delete()
    assert not GroupRow.objects.using(alias).filter(group_id=saved.id).exists()


def test_expired_rows_read_as_nothing_and_cleanup_deletes_them(
        alias: str, make_app: Callable[..., App]) -> None:
    app = make_app(f"django-db://{alias}", result_expires=3600)
    old, new = uuid.uuid4().hex, uuid.uuid4().hex
    app.backend.store_result(old, "SUCCESS", 1)
    app.backend.store_result(new, "SUCCESS", 2)
    saved = GroupResult(uuid.uuid4().hex, [app.AsyncResult(old)], app=app).save()
    past = timezone.now() - timedelta(hours=2)
    TaskResult.objects.using(alias).filter(task_id=old).update(date_done=past)
    GroupRow.objects.using(alias).filter(group_id=saved.id).update(date_done=past)
    assert app.AsyncResult(old).state == "UNKNOWN", "a row older than result_expires is gone"
    assert GroupResult.restore(saved.id, app) is None
    app.backend.store_result(old, "PENDING", None)  # a late PENDING may take an expired row
    assert app.AsyncResult(old).state == "PENDING"
    TaskResult.objects.using(alias).filter(task_id=old).update(date_done=past)
    store = app.backend.store
    assert store is not None
    deleted = store.cleanup()
    assert deleted["task"] >= 1 and deleted["group"] >= 1 and "kv" in deleted
    assert not TaskResult.objects.using(alias).filter(task_id=old).exists()
    assert app.AsyncResult(new).get(timeout=5) == 2, "live rows stay"


def test_kernel_results_cleanup_runs_on_the_django_store(sqlite_alias: str) -> None:
    app = App("cleanup", broker="memory://", results="django-db://sqlite",
              config={"result_expires": 60})
    task_id = uuid.uuid4().hex
    app.backend.store_result(task_id, "SUCCESS", 1)
    TaskResult.objects.using("sqlite").filter(task_id=task_id).update(
        date_done=timezone.now() - timedelta(days=2))  # past the CLI's default day
    app.close()
    env = {**os.environ, "KERNEL_BROKER_URL": "memory://",
           "KERNEL_RESULT_BACKEND": "django-db://sqlite"}
    done = subprocess.run([sys.executable, "-m", "kernel", "results", "cleanup"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deleted expired records:" in done.stdout
    assert not TaskResult.objects.using("sqlite").filter(task_id=task_id).exists()


def test_a_row_that_does_not_decode_is_one_sentence(alias: str,
                                                    make_app: Callable[..., App]) -> None:
    app = make_app(f"django-db://{alias}")
    task_id = uuid.uuid4().hex
    TaskResult.objects.using(alias).create(task_id=task_id, status="SUCCESS", result="{nope",
                                           content_type="application/json",
                                           content_encoding="utf-8")
    with pytest.raises(DecodeError, match=f"the result of task {task_id} does not decode with "
                       "the result serializer 'json'"):
        app.AsyncResult(task_id).get(timeout=5)


def test_unapplied_migrations_say_which_command_to_run(make_app: Callable[..., App]) -> None:
    with pytest.raises(ConfigurationError, match="django-celery-results' migrations are not "
                       "applied there; run python manage.py migrate django_celery_results "
                       "--database unmigrated"):
        make_app("django-db://unmigrated").backend  # noqa: B018
    with pytest.raises(ConfigurationError, match="names database 'nowhere', which DATABASES "
                       "does not define"):
        make_app("django-db://nowhere").backend  # noqa: B018


def _run_unconfigured(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_django_not_configured_is_one_sentence() -> None:
    done = _run_unconfigured("""
        from kernel import App
        from kernel.plugin import KernelError
        try:
            App("x", broker="memory://", results="django-db").backend
        except KernelError as exc:
            print(exc)
    """)
    assert done.stdout.startswith("Django is not configured: set DJANGO_SETTINGS_MODULE"), \
        done.stdout + done.stderr


def test_django_celery_results_not_installed_is_one_sentence(tmp_path: object) -> None:
    done = _run_unconfigured("""
        from django.conf import settings
        settings.configure(INSTALLED_APPS=[], DATABASES={"default": {
            "ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
        from kernel import App
        from kernel.plugin import KernelError
        try:
            App("x", broker="memory://", results="django-db").backend
        except KernelError as exc:
            print(exc)
    """)
    assert "add 'django_celery_results' to INSTALLED_APPS, then run python manage.py migrate " \
        "django_celery_results" in done.stdout, done.stdout + done.stderr


def test_credentials_are_masked_in_errors() -> None:
    done = _run_unconfigured("""
        from django.conf import settings
        settings.configure(INSTALLED_APPS=["django_celery_results"], DATABASES={"default": {
            "ENGINE": "django.db.backends.postgresql", "NAME": "x", "USER": "kernel",
            "PASSWORD": "s3cret-pw", "HOST": "127.0.0.1", "PORT": 1,
            "OPTIONS": {"connect_timeout": 1}}})
        from kernel import App
        from kernel.plugin import KernelError
        app = App("x", broker="memory://", results="django-db")
        try:
            app.backend
        except KernelError as exc:
            print(type(exc).__name__, exc)
    """)
    assert done.stdout.startswith("ConnectionFailed the django-db result store cannot reach "
                                  "database 'default' (postgresql://kernel:**@127.0.0.1:1/x)"), \
        done.stdout + done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr


def test_the_admin_lists_kernels_results(pg_alias: str, make_app: Callable[..., App]) -> None:
    app = make_app("django-db", result_extended=True)
    task_id = uuid.uuid4().hex
    app.backend.store_result(task_id, "SUCCESS", {"total": 42}, extra={"name": "shop.checkout"})
    admin = User.objects.create_superuser(f"admin-{uuid.uuid4().hex[:8]}", "a@example.com",
                                          "pw")
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/django_celery_results/taskresult/", {"q": task_id})
    assert listing.status_code == 200
    assert task_id in listing.content.decode() and "shop.checkout" in listing.content.decode()
    row = TaskResult.objects.get(task_id=task_id)
    page = client.get(f"/admin/django_celery_results/taskresult/{row.pk}/change/")
    assert page.status_code == 200 and "total" in page.content.decode()
