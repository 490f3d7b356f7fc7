"""``python -m tests.bench [--quick] [--json PATH] [--broker redis,rabbitmq] [--only A,B]``.

With more than one broker, each broker's table is measured by a child process of its own (the
peers' task modules bind to one broker when imported), one after the other, and this process
prints every table at the end."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from tests.bench import env

SYSTEMS = ("kernel", "celery", "dramatiq", "huey", "kernel-sqlite", "redis-py", "py-amqp",
           "boto3")
#: measured unless --broker says otherwise; SQS (on moto's server, which the bench starts) only
#: when asked: ``--broker sqs``.
BROKERS = ("redis", "rabbitmq")
KNOWN_BROKERS = (*BROKERS, "sqs")
#: RabbitMQ's enqueue and drain rows publish and drain this many tasks (Redis's: 10,000 and
#: 20,000). Its per-call enqueue waits for a confirm on disk (~1,400/s here) and Celery's solo
#: worker drains ~600/s there: 20,000 of each, three runs, would take the bench far too long.
RABBITMQ_TASKS = 5_000
#: SQS's enqueue and drain rows: moto's server answers ~70 calls a second here (14 ms each),
#: which bounds every system on it.
SQS_TASKS = 500


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Benchmark kernel against Celery, Dramatiq and Huey on Redis and RabbitMQ.")
    parser.add_argument("--quick", action="store_true",
                        help="small counts and one run: a smoke test in well under a minute")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--markdown", type=Path, metavar="PATH",
                        help="also write the tables as Markdown (for docs/benchmarks.md)")
    parser.add_argument("--broker", default=",".join(BROKERS), metavar="A,B",
                        help=f"brokers to measure on, of: {', '.join(KNOWN_BROKERS)} "
                             f"(default: {', '.join(BROKERS)}; sqs runs on a moto server "
                             f"the bench starts)")
    parser.add_argument("--only", metavar="A,B", help=f"systems to run, of: {', '.join(SYSTEMS)}")
    parser.add_argument("--runs", type=int, metavar="N", help="runs per measurement (median)")
    parser.add_argument("--rabbitmq-tasks", type=int, default=RABBITMQ_TASKS, metavar="N",
                        help="tasks per enqueue and drain row on RabbitMQ (default: "
                             "%(default)s, so that both brokers fit in 10 minutes; Redis's "
                             "rows use 10,000 and 20,000)")
    parser.add_argument("--sqs-tasks", type=int, default=SQS_TASKS, metavar="N",
                        help="tasks per enqueue and drain row on SQS (default: %(default)s)")
    parser.add_argument("--backlog", type=int, metavar="N",
                        help="tasks in the backlog row on Redis (default: 1,000,000; with "
                             "--quick 2,000; 0 leaves the row out)")
    parser.add_argument("--redis-url", default=os.environ.get(env.REDIS_URL,
                                                              env.DEFAULT_REDIS_URL),
                        help="the Redis database to use; it is FLUSHed between runs "
                             "(default: %(default)s)")
    parser.add_argument("--amqp-url", default=os.environ.get(env.AMQP_URL, env.DEFAULT_AMQP_URL),
                        help="the RabbitMQ to use; the benchmark's queues are purged between "
                             "runs (default: %(default)s)")
    parser.add_argument("--stores", metavar="A,B",
                        help="result stores of the stores table, kernel against Celery "
                             "(default: every store of tests/bench/stores.py, elasticsearch "
                             "and opensearch included; 'none' leaves the table out; it needs "
                             "kernel in --only)")
    parser.add_argument("--codecs", metavar="A,B",
                        help="serializers, compressors and signers of the codecs table, "
                             "kernel against kombu and Celery's auth serializer (default: all "
                             "of json, pickle, msgpack, yaml, zlib, bzip2, lzma, zstd, brotli, "
                             "auth, hmac; 'none' leaves the table out)")
    args = parser.parse_args(argv)
    args.systems = _choose(parser, "system", args.only or ",".join(SYSTEMS), SYSTEMS)
    args.brokers = _choose(parser, "broker", args.broker, KNOWN_BROKERS)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.rabbitmq_tasks < 1 or args.sqs_tasks < 1:
        parser.error("--rabbitmq-tasks and --sqs-tasks must be at least 1")
    if args.backlog is not None and args.backlog < 0:
        parser.error("--backlog must be 0 (no backlog row) or more")
    from tests.bench.stores import STORES

    args.stores = [] if args.stores == "none" else _choose(
        parser, "store", args.stores or ",".join(STORES), STORES)
    from tests.bench.codecs import COMPRESSORS, SERIALIZERS, SIGNERS

    known = (*SERIALIZERS, *COMPRESSORS, *SIGNERS)
    args.codecs = [] if args.codecs == "none" else _choose(
        parser, "codec", args.codecs or ",".join(known), known)
    return args


def _choose(parser: argparse.ArgumentParser, what: str, given: str,
            known: tuple[str, ...]) -> list[str]:
    chosen = [s.strip() for s in given.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        parser.error(f"unknown {what}(s) {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(known)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Read by the task modules, here and in the workers.
    os.environ[env.REDIS_URL] = args.redis_url
    os.environ[env.AMQP_URL] = args.amqp_url
    from tests.bench import brokers, report, scenarios

    counts = scenarios.QUICK if args.quick else scenarios.FULL
    if args.runs:
        counts = replace(counts, runs=args.runs)
    console = Console(stderr=True)
    # Brokers with systems to run or their bare client wanted.
    on = [name for name in args.brokers if any(plan(name, args.systems))]
    if not on:
        console.print(f"[red]nothing to measure: none of {', '.join(args.systems)} runs on "
                      f"{' or '.join(brokers.BROKERS[name].title for name in args.brokers)}"
                      f"[/red]")
        return 2
    tables, failed = [], []
    for name in on:
        table = (measure(name, args, counts_on(name, counts, args), console) if len(on) == 1
                 else measure_in_child(name, args))
        if table is None:
            failed.append(name)  # said why on stderr; the other brokers' tables still count
            continue
        tables.append(table)
    if not tables:
        return 2
    store_table = None
    if args.stores and "kernel" in args.systems:  # once, after every broker's table
        from tests.bench import stores

        store_table = stores.measure(
            args.stores, counts.runs, 100 if args.quick else stores.RESULTS,
            20 if args.quick else stores.RTT_CALLS,
            lambda line: console.print(line, highlight=False))
    codec_table = None
    if args.codecs:  # no server: measured once, after the brokers' tables
        from tests.bench import codecs

        codec_table = codecs.measure(args.codecs, counts.runs,
                                     lambda line: console.print(line, highlight=False))
    environment = report.environment({t["broker"]: t["server"] for t in tables})
    out = Console(width=None if sys.stdout.isatty() else 200)
    for table in tables:
        report.render(table, out)
    if store_table is not None:
        from tests.bench import stores

        stores.render(store_table, out)
    if codec_table is not None:
        from tests.bench import codecs

        codecs.render(codec_table, out)
    report.render_environment(environment, out)
    if args.json:
        args.json.write_text(json.dumps(
            {"environment": environment, "tables": tables, "stores": store_table,
             "codecs": codec_table},
            indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text("\n".join(report.markdown(table) for table in tables))
    if failed:
        console.print(f"[red]no table for {', '.join(failed)}: see the error above[/red]")
        return 2
    return 0


def plan(broker: str, names: list[str]) -> tuple[list[str], bool]:
    """Of `names`, the systems that run on `broker`, and whether its bare client is wanted."""
    from tests.bench import brokers, systems

    return ([n for n in names if n in systems.ALL and broker in systems.ALL[n].brokers],
            brokers.BROKERS[broker].bare in names)


def counts_on(broker: str, counts: Any, args: argparse.Namespace) -> Any:
    if broker == "rabbitmq" and not args.quick:
        return replace(counts, enqueue=args.rabbitmq_tasks, drain=args.rabbitmq_tasks)
    if broker == "sqs" and not args.quick:
        return replace(counts, enqueue=args.sqs_tasks, drain=args.sqs_tasks)
    return counts


def measure(name: str, args: argparse.Namespace, counts: Any,
            console: Console) -> dict[str, Any] | None:
    """One broker's table, or None after saying why it cannot be measured."""
    from tests.bench import brokers, report, scale, scenarios, systems

    os.environ[env.BROKER] = name
    wanted, raw = plan(name, args.systems)
    broker_class = brokers.BROKERS[name]
    needs_server = raw or any(n != "kernel-sqlite" for n in wanted)
    try:
        broker = broker_class()
        server = broker.server() if needs_server else None
        if needs_server:
            broker.redis.ping()  # the counter lives in Redis on every broker
    except Exception as exc:  # noqa: BLE001 - any failure here means: no usable server
        console.print(f"[red]cannot reach {broker_class.title} or the counter's Redis "
                      f"({args.amqp_url if name == 'rabbitmq' else args.redis_url}, "
                      f"{args.redis_url}): {exc}. Start it, give --redis-url / --amqp-url, or "
                      f"leave it out with --broker[/red]")
        return None
    at_scale = scale.QUICK if args.quick else scale.FULL
    if args.backlog is not None:
        at_scale = replace(at_scale, backlog=args.backlog)
    chosen: list[Any] = []
    try:
        chosen += [systems.ALL[n](broker, counts.io_concurrency) for n in wanted]
        samples = scenarios.Bench(broker, chosen, counts, raw,
                                  lambda line: console.print(line, highlight=False),
                                  at_scale).run()
    finally:
        for system in chosen:
            system.close()
        broker.close()
    return {"broker": name, "server": server, "bare": broker_class.bare,
            "counts": scenarios.counts_dict(counts), "scale": asdict(at_scale),
            "configs": {s.name: s.configs for s in chosen}
            | ({broker_class.bare: {"all": broker_class.bare_config}} if raw else {}),
            "rows": report.build(samples, name, broker_class.bare)}


def measure_in_child(name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """`measure` in a fresh process: its progress goes to stderr, its table comes back."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "table.json"
        argv = [sys.executable, "-m", "tests.bench", "--broker", name, "--json", str(out),
                "--stores", "none",
                "--only", ",".join(args.systems), "--redis-url", args.redis_url,
                "--amqp-url", args.amqp_url, "--rabbitmq-tasks", str(args.rabbitmq_tasks),
                "--sqs-tasks", str(args.sqs_tasks),
                *(["--quick"] if args.quick else []),
                *(["--runs", str(args.runs)] if args.runs else []),
                *(["--backlog", str(args.backlog)] if args.backlog is not None else [])]
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            return None
        table: dict[str, Any] = json.loads(out.read_text())["tables"][0]
        return table
