"""The SQLite transport and result store: the conformance suites, plus what a shared file must
survive: several OS processes consuming at once, a consumer killed holding messages, delays kept
in the file, forks, and paths that are not usable."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.app import App
from kernel.errors import ConfigurationError, ConnectionFailed
from kernel.interfaces.transport import Delivery, Outgoing
from kernel.std.sqlite.db import path_from_url
from kernel.std.sqlite.results import SqliteResultStore
from kernel.std.sqlite.transport import SqliteTransport
from kernel.std.sqlite.ratelimit import SqliteRateLimitStore
from kernel.testing.broadcast import BroadcastSuite
from kernel.testing.ratelimit import RateLimitStoreSuite
from kernel.testing.results import ResultStoreSuite
from kernel.testing.transport import TransportSuite, make_envelope
from tests.helpers import wait_for


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kernel.db'}"


class TestSqliteTransport(TransportSuite):
    lease_seconds = 0.5

    @pytest.fixture
    def transport(self, url: str) -> Iterator[SqliteTransport]:
        t = SqliteTransport(url, {})
        yield t
        t.close()

    @pytest.fixture
    def other_transport(self, url: str) -> Iterator[SqliteTransport]:
        t = SqliteTransport(url, {})
        yield t
        t.close()

    @pytest.fixture
    def short_lease_transport(self, url: str) -> Iterator[SqliteTransport]:
        t = SqliteTransport(url, {"lease_seconds": self.lease_seconds})
        yield t
        t.close()


class TestSqliteBroadcast(BroadcastSuite):
    transport = TestSqliteTransport.transport
    other_transport = TestSqliteTransport.other_transport


class TestSqliteRateLimitStore(RateLimitStoreSuite):
    @pytest.fixture
    def store(self, url: str) -> Iterator[SqliteRateLimitStore]:
        s = SqliteRateLimitStore(url, {})
        yield s
        s.close()

    other_store = store


class TestSqliteResultStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, url: str) -> Iterator[SqliteResultStore]:
        s = SqliteResultStore(url, {})
        yield s
        s.close()


# ------------------------------------------------------------------------ other processes

CHILD = textwrap.dedent("""
    import json, sys, time
    from kernel.std.sqlite.transport import SqliteTransport
    from kernel.std.sqlite.results import SqliteResultStore
    from kernel.interfaces.transport import Outgoing
    from kernel.testing.transport import make_envelope
    url, queue, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
    t = SqliteTransport(url, {"lease_seconds": lease})
    print("ready", flush=True)
    command, _, arg = sys.stdin.readline().strip().partition(" ")
    if command == "drain":            # consume until the queue stays empty, acking each batch
        first = t.fetch([queue], 10, 5.0)  # both processes hold a batch before either drains
        print("started", flush=True)
        sys.stdin.readline()
        t.ack(first)
        seen = [d.envelope.headers["id"] for d in first]
        while True:
            batch = t.fetch([queue], 10, 1.0)
            if not batch:
                break
            seen += [d.envelope.headers["id"] for d in batch]
            t.ack(batch)
        print(json.dumps(seen), flush=True)
    elif command == "hold":           # take messages and never settle them
        before = time.time()
        held = t.fetch([queue], int(arg), 5)
        print(json.dumps({"ids": [d.envelope.headers["id"] for d in held], "before": before}),
              flush=True)
        sys.stdin.readline()
    elif command == "publish":
        at = time.time()
        t.publish([Outgoing(queue, make_envelope(int(arg)))])
        print(json.dumps(at), flush=True)
    elif command == "incr":           # the queue argument names the counter
        s = SqliteResultStore(url, {})
        print(json.dumps([s.incr(queue) for _ in range(int(arg))]), flush=True)
    elif command == "set":
        s = SqliteResultStore(url, {})
        at = time.time()
        s.set([(queue, arg.encode())], None)
        print(json.dumps(at), flush=True)
""")


class Child:
    """A Python process running `CHILD` against one database file."""

    def __init__(self, url: str, queue: str, lease: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, queue, str(lease)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line, f"child exited early with code {self.proc.wait(10)}"
        return line

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def result(self) -> object:
        return json.loads(self.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.close()


def ids(deliveries: list[Delivery]) -> list[str]:
    return [d.envelope.headers["id"] for d in deliveries]


def test_two_processes_share_the_queue_without_loss_or_duplicates(
        url: str, children: list[Child]) -> None:
    n = 2000
    producer = SqliteTransport(url, {})
    for start in range(0, n, 250):
        producer.publish([Outgoing("work", make_envelope(i)) for i in range(start, start + 250)])
    children += [Child(url, "work"), Child(url, "work")]
    for child in children:
        child.send("drain")
    for child in children:
        assert child.readline() == "started"
    for child in children:
        child.send("go")
    first, second = (set(child.result()) for child in children)  # type: ignore[call-overload]
    assert not first & second, f"{len(first & second)} messages went to both processes"
    assert first | second == {f"m-{i}" for i in range(n)}, "messages were lost"
    assert first and second, "one process got nothing: the test did not exercise sharing"
    assert producer.size("work") == 0


def test_killed_consumer_messages_return_after_the_lease(
        url: str, children: list[Child]) -> None:
    lease = 1.0
    producer = SqliteTransport(url, {})
    producer.publish([Outgoing("work", make_envelope(i)) for i in range(5)])
    holder = Child(url, "work", lease)
    children.append(holder)
    holder.send("hold 5")
    held = holder.result()
    assert isinstance(held, dict) and len(held["ids"]) == 5
    os.kill(holder.proc.pid, signal.SIGKILL)
    holder.proc.wait(10)
    got: list[Delivery] = []

    def all_back() -> bool:
        got.extend(producer.fetch(["work"], 5 - len(got), 0.5))
        return len(got) == 5

    wait_for(all_back, 10, "the killed consumer's messages to come back")
    assert time.time() >= held["before"] + lease, "messages came back before the lease ended"
    assert sorted(ids(got)) == sorted(held["ids"])
    assert all(d.delivery_count == 2 for d in got), "the lost delivery must be counted"


def test_publish_from_another_process_wakes_a_blocked_fetch(
        url: str, children: list[Child]) -> None:
    consumer = SqliteTransport(url, {})
    publisher = Child(url, "work")
    children.append(publisher)
    publisher.send("publish 1")
    got = consumer.fetch(["work"], 1, 10)
    arrived = time.time()
    published = publisher.result()
    assert ids(got) == ["m-1"]
    assert isinstance(published, float) and arrived - published < 0.5, \
        "a fetch waiting on another process's publish must poll often enough to see it"


def test_counter_is_atomic_across_processes(url: str, children: list[Child]) -> None:
    children += [Child(url, "chord-counter"), Child(url, "chord-counter")]
    for child in children:
        child.send("incr 200")
    seen = [v for child in children for v in child.result()]  # type: ignore[attr-defined]
    assert sorted(seen) == list(range(1, 401)), "two processes saw the same counter value"


def test_wait_sees_a_result_written_by_another_process(url: str, children: list[Child]) -> None:
    store = SqliteResultStore(url, {})
    writer = Child(url, "task-meta-1")
    children.append(writer)
    writer.send("set done")
    value = store.wait("task-meta-1", 10)
    returned = time.time()
    written = writer.result()
    assert value == b"done"
    assert isinstance(written, float) and returned - written < 0.5


# ------------------------------------------------------------------------ the file

def test_delays_live_in_the_file(url: str) -> None:
    publisher = SqliteTransport(url, {})
    due = time.time() + 0.5
    publisher.publish([Outgoing("later", make_envelope(1), not_before=due)])
    publisher.close()
    consumer = SqliteTransport(url, {})  # a new connection: nothing held in memory
    assert consumer.fetch(["later"], 1, 0.1) == [], "a delayed message was visible early"
    assert consumer.size("later") == 1
    got = consumer.fetch(["later"], 1, 5)
    assert ids(got) == ["m-1"] and time.time() >= due


def test_forked_child_uses_its_own_connection(url: str) -> None:
    transport = SqliteTransport(url, {})
    transport.publish([Outgoing("q", make_envelope(0))])  # the parent's connection is open
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            transport.publish([Outgoing("q", make_envelope(1))])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, "the forked child could not publish"
    assert sorted(ids(transport.fetch(["q"], 5, 1))) == ["m-0", "m-1"]


def test_transport_and_results_share_one_file(url: str) -> None:
    transport, store = SqliteTransport(url, {}), SqliteResultStore(url, {})
    transport.publish([Outgoing("q", make_envelope(1))])
    store.set([("k", b"v")], None)
    assert ids(transport.fetch(["q"], 1, 1)) == ["m-1"] and store.get("k") == b"v"


def test_a_file_made_before_deliveries_had_claims_keeps_its_messages(url: str,
                                                                     tmp_path: Path) -> None:
    # A broker file an earlier version wrote: its table lacks the claim column.
    envelope = make_envelope(1).to_json("q")
    with sqlite3.connect(tmp_path / "kernel.db") as raw:
        raw.execute("CREATE TABLE kernel_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "queue TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, "
                    "not_before REAL NOT NULL DEFAULT 0, ready INTEGER NOT NULL, "
                    "lease_owner TEXT, lease_until REAL, "
                    "delivery_count INTEGER NOT NULL DEFAULT 0, reason TEXT, "
                    "payload BLOB NOT NULL)")
        raw.execute("INSERT INTO kernel_messages (queue, ready, payload) VALUES ('q', 1, ?)",
                    (envelope,))
    transport = SqliteTransport(url, {})
    first = transport.fetch(["q"], 1, 1)
    assert ids(first) == ["m-1"]
    transport.release(first)
    again = transport.fetch(["q"], 1, 1)
    transport.release(first)
    assert transport.fetch(["q"], 1, 0.2) == [], "the stale release was told apart"
    transport.ack(again)
    assert transport.size("q") == 0


def test_undecodable_row_goes_to_the_dead_letter_queue(url: str, tmp_path: Path) -> None:
    transport = SqliteTransport(url, {})
    with sqlite3.connect(tmp_path / "kernel.db") as raw:
        raw.execute("INSERT INTO kernel_messages (queue, ready, payload) "
                    "VALUES ('q', 1, 'not json')")
    assert transport.fetch(["q"], 1, 0.2) == []
    dead = transport.dead_letters("q")
    assert len(dead) == 1 and "JSON" in dead[0].extra["reason"]


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert path_from_url("sqlite://") == "kernel.db"
    assert path_from_url("sqlite:///data/k.db") == "data/k.db"
    assert path_from_url("sqlite:////var/k.db") == "/var/k.db"
    monkeypatch.chdir(tmp_path)
    SqliteTransport("sqlite://", {}).close()
    assert (tmp_path / "kernel.db").exists(), "sqlite:// must mean ./kernel.db"
    with pytest.raises(ConfigurationError, match="sqlite:///"):
        SqliteTransport("sqlite://host/x.db", {})


def test_unwritable_path_is_a_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    with pytest.raises(ConnectionFailed) as info:
        SqliteTransport(f"sqlite:///{blocker / 'kernel.db'}", {})
    message = str(info.value)
    assert str(blocker) in message and "make sure its directory exists" in message
    assert "Traceback" not in message


def test_a_file_that_is_not_a_database_is_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    for make in (SqliteTransport, SqliteResultStore):
        with pytest.raises(ConfigurationError, match="is not a usable SQLite database"):
            make(f"sqlite:///{path}", {})


def test_bad_option_is_a_sentence(url: str) -> None:
    with pytest.raises(ConfigurationError, match="lease_seconds"):
        SqliteTransport(url, {"lease_seconds": 0})


def test_app_selects_sqlite_through_the_entry_point(url: str) -> None:
    app = App("sqlite-test", broker=url)
    assert isinstance(app.transport, SqliteTransport)
    assert isinstance(app.backend.store, SqliteResultStore)
    app.close()


def test_entry_module_stays_light() -> None:
    code = ("import sys, kernel.std.sqlite; "
            "print([m for m in ('kernel.std.sqlite.transport', 'kernel.std.sqlite.results', "
            "'kernel.std.sqlite.db', 'sqlite3') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing the entry module imported {out.stdout}"


OPEN_AT_ONCE = textwrap.dedent("""
    import os, sys, time
    from kernel.std.sqlite.transport import SqliteTransport
    folder, go = sys.argv[1], sys.argv[2]
    while not os.path.exists(go):  # all start together
        time.sleep(0.001)
    for n in range(40):  # 40 new files, each opened by every process at about the same time
        SqliteTransport(f"sqlite:///{folder}/fresh{n}.db").close()
    print("opened")
""")


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    # A prefork worker's children do exactly this with the default broker: switching a new
    # file to WAL is answered "locked" at once while another connection does the same.
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, str(tmp_path), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    go.touch()
    results = [p.communicate(timeout=60) for p in procs]
    assert [out.strip() for out, _ in results] == ["opened"] * 6, [err for _, err in results]
