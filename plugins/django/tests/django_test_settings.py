"""The Django project the plugin's tests run in: PostgreSQL as ``default``, MariaDB/MySQL as
``mysql`` (``KERNEL_MYSQL_TEST_URL``, through PyMySQL), a SQLite file as ``sqlite``
(``KERNEL_DJANGO_SQLITE``, set by conftest.py), django-celery-results and the admin, and a
``shop`` app whose tasks.py autodiscovery finds."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pymysql

# Django's MySQL backend is written for mysqlclient (a C extension with no Linux wheel);
# PyMySQL stands in for it under its module name, as Django's documentation allows.
pymysql.install_as_MySQLdb()

_pg = urlsplit(os.environ.get("KERNEL_PG_TEST_URL", "postgresql://postgres@127.0.0.1:5432"))
_my = urlsplit(os.environ.get("KERNEL_MYSQL_TEST_URL", "mysql://root@127.0.0.1:3306"))

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
    "mysql": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": os.environ.get("KERNEL_DJANGO_MYSQL_DATABASE", "kernel_django_tests"),
        "USER": _my.username or "root",
        "PASSWORD": _my.password or "",
        "HOST": _my.hostname or "127.0.0.1",
        "PORT": _my.port or 3306,
        "OPTIONS": {"connect_timeout": 3, "charset": "utf8mb4"},
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
