"""Django as the plugin needs it: configured, its apps loaded, django-celery-results installed
and migrated; each missing piece is one sentence saying what to do."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction

from kernel.plugin import ConfigurationError, ConnectionFailed, mask_url

log = logging.getLogger("kernel.django")

_starting = threading.Lock()
#: connections a forked child inherited: never closed nor collected here, since closing one
#: (or letting the driver's finaliser run) ends the parent's session on the server.
_inherited: list[Any] = []


def start_django(worker: bool = False) -> None:
    """Django's settings read and its apps loaded (``django.setup()``, once)."""
    if apps.ready:
        return
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigurationError(
            "Django is not configured: set DJANGO_SETTINGS_MODULE to your settings module "
            "(e.g. os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings') in "
            "proj/kernel.py), or call django.conf.settings.configure() first")
    if apps.loading:
        raise ConfigurationError(
            "kernel's Django store was used while Django loads its apps (from a models.py "
            "or an AppConfig); use it once django.setup() has finished")
    with _starting:
        if apps.ready:
            return
        try:
            django.setup()
        except (ImproperlyConfigured, ImportError) as exc:
            module = os.environ.get("DJANGO_SETTINGS_MODULE", "settings.configure()")
            raise ConfigurationError(f"Django cannot start with DJANGO_SETTINGS_MODULE="
                                     f"{module}: {exc}") from None
    if worker and settings.DEBUG:
        log.warning("Django's DEBUG is on: every query a task runs is kept in memory; turn "
                    "DEBUG off for workers")


def require_results_app() -> None:
    """Django started, with django-celery-results among its apps."""
    start_django()
    if not apps.is_installed("django_celery_results"):
        raise ConfigurationError(
            "the django-db result store keeps results in django-celery-results' tables: add "
            "'django_celery_results' to INSTALLED_APPS, then run python manage.py migrate "
            "django_celery_results")


def describe(alias: str) -> str:
    """A database of DATABASES for errors and logs, its password masked."""
    conf = settings.DATABASES.get(alias, {})
    engine = str(conf.get("ENGINE", "")).rsplit(".", 1)[-1]
    user, password = conf.get("USER") or "", conf.get("PASSWORD") or ""
    host = conf.get("HOST") or ""
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    creds = f"{user}{':' + str(password) if password else ''}@" if user or password else ""
    where = f"{engine}://{creds}{host}{port}/{conf.get('NAME', '')}" if host else \
        f"{engine}:{conf.get('NAME', '')}"
    return f"database {alias!r} ({mask_url(where)})"


def masked(alias: str, exc: BaseException) -> str:
    """The text of a driver's error with the database's password taken out."""
    text = str(exc).strip() or type(exc).__name__
    password = settings.DATABASES.get(alias, {}).get("PASSWORD")
    return text.replace(str(password), "**") if password else text


def check_tables(alias: str, tables: list[str]) -> None:
    """`tables` exist in database `alias`; else say which migration to run."""
    conn = connections[alias]
    for attempt in (1, 2):
        try:
            with conn.cursor() as cursor:
                present = set(conn.introspection.table_names(cursor))
            break
        except DatabaseError as exc:
            if attempt == 2 or conn.in_atomic_block:
                raise ConnectionFailed(f"the django-db result store cannot reach "
                                       f"{describe(alias)}: {masked(alias, exc)}") from None
            conn.close()  # a connection the server dropped: once more on a new one
    missing = [t for t in tables if t not in present]
    if missing:
        migrate = "python manage.py migrate django_celery_results" + (
            "" if alias == "default" else f" --database {alias}")
        raise ConfigurationError(
            f"{describe(alias)} has no table {', '.join(missing)}: django-celery-results' "
            f"migrations are not applied there; run {migrate}")


def installed_apps() -> list[str]:
    """The packages of INSTALLED_APPS (what ``autodiscover_tasks()`` searches)."""
    start_django()
    return [config.name for config in apps.get_app_configs()]


def on_commit(callback: Callable[[], object]) -> None:
    """`callback` when the transaction open in this thread commits: on the default database
    if one is open there, else on the database that has one (at once if none has)."""
    start_django()
    open_on = [conn.alias for conn in connections.all(initialized_only=True)
               if conn.in_atomic_block]
    using = "default" if "default" in open_on or not open_on else open_on[0]
    transaction.on_commit(callback, using=using)


def close_old_connections() -> None:
    if not apps.ready:
        return
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()


def forget_inherited_connections() -> None:
    """After a fork, in the child: the connections of the parent's thread are dropped without
    a word to the server (Django opens new ones), and kept referenced so that no finaliser
    closes them."""
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is None:
            continue
        _inherited.append(raw)
        conn.connection = None
        conn.in_atomic_block = False
        conn.savepoint_ids = []
        conn.needs_rollback = False
        conn.closed_in_transaction = False
        conn.run_on_commit = []
