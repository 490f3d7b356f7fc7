"""The Django project the plugin's tests run in: PostgreSQL as ``default``, a SQLite file as
``sqlite`` (``KERNEL_DJANGO_SQLITE``, set by conftest.py), django-celery-results and the admin,
and a ``shop`` app whose tasks.py autodiscovery finds."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

_pg = urlsplit(os.environ.get("KERNEL_PG_TEST_URL", "postgresql://postgres@127.0.0.1:5432"))

SECRET_KEY = "kernel-django-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "django_test_urls"
ALLOWED_HOSTS = ["testserver", "localhost"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_celery_results",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("KERNEL_DJANGO_PG_DATABASE", "kernel_django_tests"),
        "USER": _pg.username or "postgres",
        "PASSWORD": _pg.password or "",
        "HOST": _pg.hostname or "127.0.0.1",
        "PORT": _pg.port or 5432,
        "OPTIONS": {"connect_timeout": 3},
    },
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("KERNEL_DJANGO_SQLITE", "kernel-django-tests.sqlite3"),
        "OPTIONS": {"timeout": 30},
    },
    # Never migrated: what a project that forgot `migrate django_celery_results` has.
    "unmigrated": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("KERNEL_DJANGO_SQLITE", "kernel-django-tests.sqlite3")
        + "-unmigrated",
    },
}

# What App.config_from_object("django.conf:settings", namespace="KERNEL") reads.
KERNEL_BROKER_URL = os.environ.get("KERNEL_TEST_BROKER", "memory://")
KERNEL_RESULT_BACKEND = "django-db"
KERNEL_TASK_DEFAULT_QUEUE = os.environ.get("KERNEL_TEST_QUEUE", "from-django-settings")
KERNEL_RESULT_EXTENDED = True
