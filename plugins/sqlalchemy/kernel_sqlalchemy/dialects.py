"""What differs between the dialects the stores support (PostgreSQL, MySQL/MariaDB, SQLite):
column types, upserts and the server's clock."""

from __future__ import annotations

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


def upsert(conn: Connection, table: sa.Table, key: str | tuple[str, ...],
           rows: list[dict[str, Any]], replace_when: sa.ColumnElement[bool] | None) -> None:
    """Insert `rows`; where `key` (a column, or the columns of the primary key) is taken,
    replace the row if `replace_when` holds for it (None: never). One statement per batch:
    looking and storing are one atomic step."""
    keys = (key,) if isinstance(key, str) else key
    # Every row of one batch names the same columns (one executemany).
    columns = [c for c in rows[0] if c not in keys]
    dialect = conn.dialect.name
    stmt: sa.Executable
    if dialect in ("postgresql", "sqlite"):
        insert = (postgresql.insert(table) if dialect == "postgresql"
                  else sqlite.insert(table))
        if replace_when is None:
            stmt = insert.on_conflict_do_nothing(index_elements=[table.c[k] for k in keys])
        else:
            stmt = insert.on_conflict_do_update(
                index_elements=[table.c[k] for k in keys],
                set_={c: insert.excluded[c] for c in columns}, where=replace_when)
    elif dialect in ("mysql", "mariadb"):
        minsert = mysql.insert(table)
        if replace_when is None:
            stmt = minsert.prefix_with("IGNORE")
        elif isinstance(replace_when, sa.True_):
            stmt = minsert.on_duplicate_key_update({c: minsert.inserted[c] for c in columns})
        else:
            # MySQL assigns left to right, each seeing the ones before: the columns the
            # condition reads (date_done, expires_at) go last.
            ordered = sorted(columns, key=lambda c: c in ("date_done", "expires_at"))
            stmt = minsert.on_duplicate_key_update([
                (c, sa.case((replace_when, minsert.inserted[c]), else_=table.c[c]))
                for c in ordered])
            # PyMySQL's executemany cannot bind parameters after VALUES (the condition's).
            for row in rows:
                conn.execute(stmt, row)
            return
    else:
        raise ConfigurationError(f"kernel-sqlalchemy supports PostgreSQL, "
                                 f"MySQL/MariaDB and SQLite, not {dialect}")
    conn.execute(stmt, rows)


def server_time(dialect: str) -> sa.ColumnElement[float]:
    """The database server's clock as unix time (seconds, a float): one clock for every
    process and host that shares the database."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", sa.func.clock_timestamp()), sa.Double)
    if dialect in ("mysql", "mariadb"):
        return sa.cast(sa.func.unix_timestamp(sa.func.now(6)), sa.Double)
    # SQLite's julianday keeps milliseconds; unix time began at Julian day 2440587.5.
    return sa.cast((sa.func.julianday("now") - 2440587.5) * 86400.0, sa.Double)
