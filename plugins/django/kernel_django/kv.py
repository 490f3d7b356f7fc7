"""kernel's own keys (chord members, revocations, unique claims, counters) in one table beside
django-celery-results' (``kernel_kv``, the columns kernel-sqlalchemy's table has, plus the
integer of a counter). Imported once Django's apps are loaded: a model needs the registry."""

from __future__ import annotations

from django.db import DatabaseError, connections, models

from kernel.plugin import ConnectionFailed
from kernel_django.setup import describe, masked

TABLE = "kernel_kv"


class KernelKV(models.Model):  # type: ignore[misc]  # Django is untyped here
    """One key. Not a migrated model: the store creates the table where it is missing, so a
    project needs no app of kernel's in INSTALLED_APPS."""

    key = models.CharField(max_length=512, primary_key=True)
    value = models.BinaryField(null=True)
    #: a counter's value (`incr`), kept as a number so the database adds to it.
    number = models.BigIntegerField(null=True)
    #: seconds since the epoch after which the key reads as absent (None: never).
    expires_at = models.FloatField(null=True, db_index=True)

    class Meta:
        app_label = "kernel_django"
        db_table = TABLE
        managed = False


def create_table(alias: str) -> None:
    """Create ``kernel_kv`` in database `alias` unless it is there."""
    conn = connections[alias]
    try:
        with conn.cursor() as cursor:
            if TABLE in conn.introspection.table_names(cursor):
                return
        with conn.schema_editor() as editor:
            editor.create_model(KernelKV)
    except DatabaseError as exc:
        with conn.cursor() as cursor:  # another process created it meanwhile
            if TABLE in conn.introspection.table_names(cursor):
                return
        raise ConnectionFailed(f"the django-db result store cannot create {TABLE} in "
                               f"{describe(alias)}: {masked(alias, exc)}") from None
