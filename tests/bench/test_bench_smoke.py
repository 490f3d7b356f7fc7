"""The benchmark still runs: quick mode, kernel on SQLite only (no Redis, no peers needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_sqlite_run_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--quick", "--only", "kernel-sqlite",
         "--codecs", "json,zlib", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    (table,) = report["tables"]
    assert table["broker"] == "redis"  # the embedded default's column sits in Redis's table
    rows = {row["id"]: row for row in table["rows"]}
    assert set(rows) == {"enqueue.call", "enqueue.pipelined", "enqueue.batch", "drain.one",
                         "drain.events", "drain.two", "rtt.p50", "rtt.p99", "rtt.untracked.p50",
                         "rtt.untracked.p99", "rss.one", "rss.two"}
    for row in rows.values():
        assert row["median"]["kernel-sqlite"] > 0, row
    assert rows["rtt.p50"]["median"]["kernel-sqlite"] <= rows["rtt.p99"]["median"]["kernel-sqlite"]
    assert report["environment"]["cpu_count"] >= 1
    assert "drain, 1 process" in done.stdout  # the table
    codecs = {row["id"]: row for row in report["codecs"]["rows"]}
    assert set(codecs) == {f"codec.{name}.{size}" for name in ("json", "zlib")
                           for size in ("1KiB", "100KiB")}
    for row in codecs.values():
        assert row["values"]["kernel"] > 0, row
        # kombu's column needs kombu, which `nox -s bench` installs and `nox -s tests` not
        assert row["values"].get("celery", 0) > 0 or "kombu" in row["why"]["celery"], row
    assert codecs["codec.zlib.1KiB"]["bytes"]["kernel"] < 1024, "the body was compressed"
    assert "Codecs: encode + decode" in done.stdout


def test_unknown_system_is_a_sentence(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tests.bench", "--only", "kernle"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown system(s) kernle; choose from kernel," in done.stderr


def test_backlog_tenths_leave_out_start_up_and_span_their_tasks() -> None:
    from tests.bench.scale import _window

    # (time, tasks done, rss): nothing done for 2 s of start-up, then 100 tasks a second.
    samples = [(0.0, 0, 1), (1.0, 0, 1), (2.0, 0, 1)] + [
        (2.0 + i, 100 * i, 1) for i in range(1, 11)]
    first = _window(samples, 0, 100)
    assert first[0][0] == 2.0 and first[-1][1] >= 100  # from the last idle sample
    assert (first[-1][1] - first[0][1]) / (first[-1][0] - first[0][0]) == 100
    last = _window(samples, 900, 1000)
    assert last[0][1] <= 900 and last[-1][1] == 1000
