"""``python -m tests.bench [--quick] [--json PATH] [--only kernel,celery,...]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from tests.bench import env

SYSTEMS = ("kernel", "celery", "dramatiq", "huey", "redis-py", "kernel-sqlite")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Benchmark kernel against Celery, Dramatiq and Huey on one Redis.")
    parser.add_argument("--quick", action="store_true",
                        help="small counts and one run: a smoke test in well under a minute")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--only", metavar="A,B", help=f"systems to run, of: {', '.join(SYSTEMS)}")
    parser.add_argument("--runs", type=int, metavar="N", help="runs per measurement (median)")
    parser.add_argument("--redis-url", default=os.environ.get(env.REDIS_URL,
                                                              env.DEFAULT_REDIS_URL),
                        help="the Redis database to use; it is FLUSHed between runs "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in (args.only or ",".join(SYSTEMS)).split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SYSTEMS))
    if unknown or not chosen:
        parser.error(f"unknown system(s) {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(SYSTEMS)}")
    args.systems = chosen
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ[env.REDIS_URL] = args.redis_url  # read by the task modules, here and in workers
    from tests.bench import report, scenarios, systems

    counts = scenarios.QUICK if args.quick else scenarios.FULL
    if args.runs:
        counts = replace(counts, runs=args.runs)
    console = Console(stderr=True)
    needs_redis = any(name != "kernel-sqlite" for name in args.systems)
    redis_info: dict[str, Any] | None = None
    if needs_redis:
        try:
            redis_info = env.redis_client().info("server")  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - any failure here means: no usable Redis
            console.print(f"[red]cannot reach Redis at {args.redis_url} ({exc}); start it, give "
                          f"--redis-url, or run --only kernel-sqlite[/red]")
            return 2
    classes: dict[str, Any] = {"kernel": systems.KernelRedis, **systems.PEERS,
                               "kernel-sqlite": systems.KernelSqlite}
    chosen = [classes[name](counts.io_concurrency) for name in args.systems if name in classes]
    try:
        samples = scenarios.Bench(chosen, counts, "redis-py" in args.systems,
                                  lambda line: console.print(line, highlight=False)).run()
    finally:
        for system in chosen:
            system.close()
    rows = report.build(samples)
    environment = report.environment(redis_info)
    configs = {s.name: s.configs for s in chosen}
    report.render(rows, environment, configs, Console(width=None if sys.stdout.isatty() else 200))
    if args.json:
        args.json.write_text(json.dumps(
            {"environment": environment, "counts": scenarios.counts_dict(counts),
             "configs": configs, "rows": rows}, indent=2) + "\n")
    return 0
