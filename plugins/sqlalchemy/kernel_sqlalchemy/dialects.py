"""What differs between the dialects the stores support (PostgreSQL, MySQL/MariaDB, SQLite):
column types, upserts and the server's clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from kernel.plugin import ConfigurationError


def binary() -> sa.types.TypeEngine[Any]:
    # MySQL's BLOB holds 64 KiB; results, tracebacks and entries may be larger.
    return sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def long_text() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def timestamp() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def exact_string(length: int) -> sa.types.TypeEngine[Any]:
    """Text compared byte for byte, as a key must be (MySQL's default collation folds case
    and accents)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")


class Upsert:
    """Insert rows of `columns`; where `key` (a column, or the columns of the primary key) is
    taken, replace the row if `replace_when` holds for it (None: never). Looking and storing
    are one atomic step. Built once and run many times: the values are bound by column name
    (`replace_when` may bind more), so SQLAlchemy compiles it once."""

    def __init__(self, dialect: str, table: sa.Table, key: str | tuple[str, ...],
                 columns: Sequence[str], replace_when: sa.ColumnElement[bool] | None) -> None:
        keys = (key,) if isinstance(key, str) else key
        values = {c: sa.bindparam(c, type_=table.c[c].type) for c in columns}
        updated = [c for c in columns if c not in keys]
        #: one statement per row: PyMySQL's executemany cannot bind parameters after VALUES
        #: (a condition's).
        self.per_row = False
        self.statement: sa.Insert
        if dialect in ("postgresql", "sqlite"):
            insert = (postgresql.insert(table) if dialect == "postgresql"
                      else sqlite.insert(table)).values(values)
            index = [table.c[k] for k in keys]
            self.statement = (
                insert.on_conflict_do_nothing(index_elements=index) if replace_when is None
                else insert.on_conflict_do_update(
                    index_elements=index, set_={c: insert.excluded[c] for c in updated},
                    where=replace_when))
        elif dialect in ("mysql", "mariadb"):
            minsert = mysql.insert(table).values(values)
            if replace_when is None:
                self.statement = minsert.prefix_with("IGNORE")
            elif isinstance(replace_when, sa.True_):
                self.statement = minsert.on_duplicate_key_update(
                    {c: minsert.inserted[c] for c in updated})
            else:
                # MySQL assigns left to right, each seeing the ones before: the columns the
                # condition reads (date_done, expires_at) go last.
                ordered = sorted(updated, key=lambda c: c in ("date_done", "expires_at"))
                self.statement = minsert.on_duplicate_key_update([
                    (c, sa.case((replace_when, minsert.inserted[c]), else_=table.c[c]))
                    for c in ordered])
                self.per_row = True
        else:
            raise ConfigurationError(f"kernel-sqlalchemy supports PostgreSQL, "
                                     f"MySQL/MariaDB and SQLite, not {dialect}")

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Store `rows` (each with the parameters `replace_when` binds)."""
        if self.per_row:
            for row in rows:
                conn.execute(self.statement, row)
        else:
            conn.execute(self.statement, rows)


def upsert(conn: Connection, table: sa.Table, key: str | tuple[str, ...],
           rows: list[dict[str, Any]], replace_when: sa.ColumnElement[bool] | None) -> None:
    """`rows` stored by an `Upsert` made for them (every row names the same columns)."""
    Upsert(conn.dialect.name, table, key, list(rows[0]), replace_when).run(conn, rows)


def server_time(dialect: str) -> sa.ColumnElement[float]:
    """The database server's clock as unix time (seconds, a float): one clock for every
    process and host that shares the database."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", sa.func.clock_timestamp()), sa.Double)
    if dialect in ("mysql", "mariadb"):
        return sa.cast(sa.func.unix_timestamp(sa.func.now(6)), sa.Double)
    # SQLite's julianday keeps milliseconds; unix time began at Julian day 2440587.5.
    return sa.cast((sa.func.julianday("now") - 2440587.5) * 86400.0, sa.Double)
