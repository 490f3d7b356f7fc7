"""Entry point of kernel-django (``kernel.plugins``: ``django``). Kept light: Django is
imported by the hooks only once a process uses Django (``DJANGO_SETTINGS_MODULE`` set, or
its settings configured), so apps that do not use Django pay nothing for the plugin."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, hookimpl

if TYPE_CHECKING:
    from kernel.interfaces.middleware import Call

#: Celery's URL for django-celery-results' database backend (``django-db://ALIAS`` names a
#: database of DATABASES, kernel's addition).
SCHEMES = ("django-db",)

#: counters are atomic (a row lock per chord, one transaction per member), and chords are
#: counted in django-celery-results' ``ChordCounter`` as Celery's django-db backend counts
#: them (no ``celery.chord_unlock``), so Celery and kernel workers share them.
CAPABILITIES = ResultStoreCapabilities(push_wait=False, atomic_counter=True, persistent=True,
                                       multi_process=True, chord_unlock=False)


def uses_django() -> bool:
    """This process uses Django: its settings module is named or its settings configured."""
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        return True
    conf = sys.modules.get("django.conf")
    return bool(conf is not None and conf.settings.configured)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("django", SCHEMES, Lazy("kernel_django.results:DjangoResultStore"),
                          CAPABILITIES)


@hookimpl
def kernel_autodiscover_packages(app: Any) -> Iterable[str]:
    if not uses_django():
        return []
    from kernel_django.setup import installed_apps

    return installed_apps()


@hookimpl
def kernel_on_commit(app: Any, callback: Callable[[], object]) -> bool | None:
    if not uses_django():
        return None
    from kernel_django.setup import on_commit

    on_commit(callback)
    return True


@hookimpl
def kernel_worker_init(worker: Any) -> None:
    # Celery's fixup does the same: a worker of a Django project loads Django's apps first,
    # so task modules can import models.
    if uses_django():
        from kernel_django.setup import start_django

        start_django(worker=True)


@hookimpl
def kernel_task_prerun(call: Call) -> None:
    _close_old_connections()


@hookimpl
def kernel_task_postrun(call: Call) -> None:
    _close_old_connections()


def _close_old_connections() -> None:
    # As Django does around each request: connections past CONN_MAX_AGE or broken are
    # closed, so a database restart costs one task an error, not the worker all of them.
    if "django.db" in sys.modules and uses_django():
        from kernel_django.setup import close_old_connections

        close_old_connections()


def _after_fork_in_child() -> None:
    if "django.db" in sys.modules:
        from kernel_django.setup import forget_inherited_connections

        forget_inherited_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
