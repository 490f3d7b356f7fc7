"""The result stores' table: for each store, `RESULTS` task results stored and then read back,
one call each from one process, by kernel's store and by Celery's backend for the same URL on
the same server, alternating within each run (median of the runs); and the round trip of a
kernel worker (Redis broker, solo pool) whose results go to PostgreSQL against one whose
results go to Redis.

Rows (ids as in the JSON):
  results.<store>      stored and read back per second: 2 x RESULTS operations / seconds
  rtt.results.<store>  submit -> result of sequential calls, p50 ms (redis and postgresql,
                       and postgresql.async_commit: synchronous_commit=off)

Servers: Redis, PostgreSQL and MariaDB as they run here (a database ``kernel_bench`` is created
on each), SQLite in a temporary file; memcached, pouchdb-server and nx-27017 (a MongoDB
wire-protocol server on SQLite, not MongoDB: its row compares clients, not servers) are started
on free ports when installed (``.ci/run`` and the plugins' test extras install them), else
their rows say why they are missing. So are the cloud stores' emulators: moto's server (S3,
and DynamoDB one request at a time, as kernel-dynamodb's tests run it: its row too compares
clients), Azurite and gcp-storage-emulator (Celery's side of the GCS row is GCSBackendBase, its
GCS backend without the Firestore chord counter, which needs Firestore). kernel-django has no
row: it needs a Django project. A store whose plugin or Celery backend cannot be loaded has "-" for
that system, with the reason.

The elasticsearch row runs noida-db (Elasticsearch 8's REST API, a reimplementation: the row
compares clients) and the opensearch row osmem-server, with kernel alone: Celery has no
OpenSearch backend and its Elasticsearch one is refused by OpenSearch (406). Cassandra has no
row: no CQL server runs here, and a row on mockylla (kernel-cassandra's in-process fake) would
time mockylla's CQL parser, not a store.

The cosmosdb row runs @vercel/cosmosdb-server (plain HTTP, behind kernel-cosmosdb's
`CosmosProxy`, the one way Celery's client can reach it unpatched) and has kernel alone:
Celery's backend reads a task's item before storing its result, and this emulator answers
that read of a missing item with 500 (Cosmos DB answers 404), so Celery's round fails there.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import env
from tests.bench.systems import Kernel

RESULTS = 1_000
RTT_CALLS = 200
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
MYSQL = "mysql+pymysql://root@127.0.0.1:3306"
DATABASE = "kernel_bench"
#: the store names, in the table's order.
STORES = ("redis", "postgresql", "mariadb", "sqlite", "memcached", "couchdb", "mongodb", "s3",
          "azureblockblob", "gcs", "dynamodb", "cosmosdb", "elasticsearch", "opensearch")


@dataclass(frozen=True)
class Store:
    name: str
    #: the same store for each system: kernel's URL and Celery's.
    kernel_url: str
    celery_url: str
    #: settings for each side (the object stores' buckets and endpoints).
    kernel_config: dict[str, Any] = field(default_factory=dict)
    celery_conf: dict[str, Any] = field(default_factory=dict)


def _database(base: str, postgres: bool) -> str:
    """`base`/kernel_bench (a SQLAlchemy URL), the database created if missing."""
    import sqlalchemy as sa

    admin = sa.create_engine(f"{base}/{'postgres' if postgres else ''}",
                             isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            if postgres:
                if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                    {"d": DATABASE}).scalar():
                    conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
            else:
                conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {DATABASE}"))
    finally:
        admin.dispose()
    return f"{base}/{DATABASE}"


@contextmanager
def stores(names: list[str], log: Callable[[str], None]) -> Iterator[list[Store]]:
    """The stores of `names` that can run here, their servers started for the block."""
    found: list[Store] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stores-")))
        for name in names:
            try:
                found.append(_start(name, tmp, stack))
            except BaseException as exc:  # noqa: BLE001 - a missing server drops its row only
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                # (the plugins' server helpers say "not installed" with pytest's skip)
                log(f"results.{name}: left out ({type(exc).__name__}: {exc})")
        yield found


def _start(name: str, tmp: Path, stack: ExitStack) -> Store:
    if name == "redis":
        url = env.redis_url()
        return Store(name, url, url)
    if name == "postgresql":
        url = "db+" + _database(PG, postgres=True)
        return Store(name, url, url)
    if name == "mariadb":
        url = "db+" + _database(MYSQL, postgres=False)
        return Store(name, url, url)
    if name == "sqlite":
        url = f"db+sqlite:///{tmp / 'results.db'}"
        return Store(name, url, url)
    if name == "memcached":
        from kernel_memcached.testing import MemcachedServer

        (tmp / "memcached").mkdir()
        memcached = stack.enter_context(MemcachedServer(tmp / "memcached"))
        return Store(name, memcached.url, memcached.url)
    if name == "couchdb":
        from kernel_couchdb.testing import PouchServer

        pouch = stack.enter_context(PouchServer(tmp / "pouchdb"))
        return Store(name, pouch.url("bench_kernel"), pouch.url("bench_celery"))
    if name == "mongodb":
        from kernel_mongodb.testing import NxServer

        nx = stack.enter_context(NxServer(tmp / "nx-27017"))
        return Store(name, nx.url("bench_kernel"), nx.url("bench_celery"))
    if name == "dynamodb":
        from kernel_dynamodb.testing import MotoServer

        moto = stack.enter_context(MotoServer(tmp / "moto"))
        return Store(name, moto.url("bench_kernel"), moto.url("bench_celery"))
    if name == "cosmosdb":
        from kernel_cosmosdb.testing import CosmosProxy, CosmosServer

        server = stack.enter_context(CosmosServer(tmp / "cosmosdb", tls=False))
        proxy = stack.enter_context(CosmosProxy(server.port))
        # Celery reads no query: its items go to its default database, celerydb.
        return Store(name, proxy.url() + "?cosmosdbsql_database_name=bench_kernel",
                     proxy.url())
    if name == "s3":
        from kernel_s3.testing import MotoServer

        moto = stack.enter_context(MotoServer(tmp / "moto"))
        for bucket in ("bench-kernel", "bench-celery"):
            moto.client().create_bucket(Bucket=bucket)
        return Store(name, "s3://", "s3://", moto.options("bench-kernel"),
                     moto.options("bench-celery"))
    if name == "azureblockblob":
        from kernel_azure_blob.testing import Azurite

        azurite = stack.enter_context(Azurite(tmp / "azurite"))
        return Store(name, azurite.url(), azurite.url(),
                     {"azureblockblob_container_name": "bench-kernel"},
                     {"azureblockblob_container_name": "bench-celery"})
    if name == "gcs":
        import os

        from google.cloud import storage
        from kernel_gcs.testing import GCSEmulator

        gcs = stack.enter_context(GCSEmulator(tmp / "gcs"))
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.host  # the client's own endpoint setting
        client = storage.Client(project="test")
        for bucket in ("bench-kernel", "bench-celery"):
            client.create_bucket(bucket)
        # the emulator ignores preconditions: kernel is told so (a plain set and get either way)
        return Store(name, gcs.url("bench-kernel"),
                     "celery.backends.gcs:GCSBackendBase+" + gcs.url("bench-celery"),
                     {"gcs_conditional_writes": False})
    if name in ("elasticsearch", "opensearch"):
        from kernel_elasticsearch.testing import NoidaServer, OsmemServer

        server = stack.enter_context(
            NoidaServer(tmp / "noida") if name == "elasticsearch" else OsmemServer(tmp / "osmem"))
        # Celery's side as Celery would be configured: its backend speaks elasticsearch://.
        return Store(name, server.url("bench-kernel"),
                     server.url("bench-celery").replace("opensearch://", "elasticsearch://"))
    raise ValueError(f"unknown store {name!r}")


def _kernel_round(url: str, config: dict[str, Any]
                  ) -> tuple[Callable[[list[str]], None], Callable[[], None]]:
    from kernel import App

    app = App("bench-results", broker="memory://", results=url, config=config)
    backend = app.backend

    def run(ids: list[str]) -> None:
        for task_id in ids:
            backend.store_result(task_id, "SUCCESS", 1)
        for task_id in ids:
            meta = backend.get_meta(task_id)
            assert meta is not None and meta["status"] == "SUCCESS", meta

    return run, app.close


def _celery_round(url: str, conf: dict[str, Any]
                  ) -> tuple[Callable[[list[str]], None], Callable[[], None]]:
    from celery import Celery

    app = Celery("bench-results", broker="memory://", backend=url)
    app.conf.update(conf)
    backend = app.backend

    def run(ids: list[str]) -> None:
        for task_id in ids:
            backend.store_result(task_id, 1, "SUCCESS")
        for task_id in ids:
            meta = backend.get_task_meta(task_id)
            assert meta["status"] == "SUCCESS", meta

    return run, app.close


SYSTEMS = {"kernel": _kernel_round, "celery": _celery_round}


def measure(names: list[str], runs: int, results: int, calls: int,
            log: Callable[[str], None]) -> dict[str, Any]:
    """The table: {"rows": [{"id", "unit", "values": {system: median}, "why": {...}}]}."""
    rows: list[dict[str, Any]] = []
    with stores(names, log) as found:
        for store in found:
            values: dict[str, list[float]] = {}
            why: dict[str, str] = {}
            rounds: dict[str, tuple[Callable[[list[str]], None], Callable[[], None]]] = {}
            for system, make in SYSTEMS.items():
                try:
                    rounds[system] = make(store.kernel_url, store.kernel_config) \
                        if system == "kernel" else make(store.celery_url, store.celery_conf)
                    rounds[system][0]([uuid.uuid4().hex for _ in range(10)])  # warm
                except Exception as exc:  # noqa: BLE001 - the row says why
                    why[system] = f"{type(exc).__name__}: {exc}"[:200]
                    log(f"results.{store.name}: no {system} ({why[system]})")
                    failed = rounds.pop(system, None)  # made, but its warm-up failed
                    if failed is not None:
                        failed[1]()
            try:
                for _ in range(runs):
                    for system, (run, _close) in rounds.items():
                        ids = [uuid.uuid4().hex for _ in range(results)]
                        began = time.perf_counter()
                        run(ids)
                        values.setdefault(system, []).append(
                            2 * results / (time.perf_counter() - began))
            finally:
                for _run, close in rounds.values():
                    close()
            medians = {k: statistics.median(v) for k, v in values.items()}
            log(f"results.{store.name}: " + ", ".join(f"{k} {v:,.0f}/s"
                                                        for k, v in medians.items()))
            rows.append({"id": f"results.{store.name}", "unit": "/s", "values": medians,
                         "why": why})
        if calls:  # 0: the stores alone
            rows.extend(_round_trips(found, calls, log))
    return {"results": results, "runs": runs, "rows": rows}


def _round_trips(found: list[Store], calls: int,
                 log: Callable[[str], None]) -> list[dict[str, Any]]:
    """A kernel worker on Redis whose results go to each of Redis and PostgreSQL: p50 ms of
    `calls` sequential calls."""
    import os

    from tests.bench.brokers import Redis

    os.environ[env.BROKER] = "redis"  # the worker's task module reads it
    rows = []
    by_name = {s.name: s for s in found}
    # PostgreSQL twice: as it comes (each commit waits for the disk) and with the store's
    # connections not waiting (synchronous_commit=off: Redis's trade, docs/stores/sqlalchemy.md).
    variants = [("redis", "redis", ""), ("postgresql", "postgresql", ""),
                ("postgresql.async_commit", "postgresql",
                 "?options=-c%20synchronous_commit%3Doff")]
    for name, base, query in variants:
        store = by_name.get(base)
        if store is None:
            continue
        broker = Redis()
        system = Kernel(broker, 1, results=store.kernel_url + query)
        broker.reset(system)
        worker = system.start_worker("one")
        try:
            system.call(60)  # the worker is up
            took = []
            for _ in range(calls):
                began = time.perf_counter()
                system.call(30)
                took.append((time.perf_counter() - began) * 1000)
            worker.check_alive()
        finally:
            worker.stop()
            system.close()
            broker.close()
        p50 = statistics.median(took)
        log(f"rtt.results.{name}: p50 {p50:.2f} ms")
        rows.append({"id": f"rtt.results.{name}", "unit": "ms", "values": {"kernel": p50},
                     "why": {}})
    return rows


def render(table: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    out = Table(title=f"Result stores: {table['results']:,} results stored and read back "
                      f"(median of {table['runs']}); round trips with results in the store")
    for column in ("row", "kernel", "Celery", "kernel / Celery"):
        out.add_column(column, justify="left" if column == "row" else "right")
    for row in table["rows"]:
        values = row["values"]
        kernel, celery = values.get("kernel"), values.get("celery")
        unit = row["unit"]
        ratio = "-" if kernel is None or celery is None else f"{kernel / celery:.2f}x"
        out.add_row(f"{row['id']} {unit}", _fmt(kernel, unit), _fmt(celery, unit), ratio)
    by_id = {row["id"]: row["values"].get("kernel") for row in table["rows"]}
    redis = by_id.get("rtt.results.redis")
    console.print(out)
    for row_id, what in (("rtt.results.postgresql", "PostgreSQL"),
                         ("rtt.results.postgresql.async_commit",
                          "PostgreSQL, synchronous_commit=off")):
        pg = by_id.get(row_id)
        if pg and redis:
            console.print(f"round trip with results in {what} / in Redis: {pg / redis:.2f}x "
                          f"(target: under 2x)")


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if unit == "ms" else f"{value:,.0f}"
