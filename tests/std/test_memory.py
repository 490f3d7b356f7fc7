"""The in-memory transport and result store: the conformance suites, plus what only memory does
(process-global brokers by name, honest capabilities, no polling)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.app import App
from kernel.errors import ConfigurationError
from kernel.interfaces.transport import Outgoing
from kernel.std.memory.results import MemoryResultStore
from kernel.std.memory.transport import MemoryTransport
from kernel.std.memory.ratelimit import MemoryRateLimitStore
from kernel.testing.broadcast import BroadcastSuite
from kernel.testing.ratelimit import RateLimitStoreSuite
from kernel.testing.results import ResultStoreSuite
from kernel.testing.transport import TransportSuite, make_envelope


@pytest.fixture
def url() -> str:
    return f"memory://test-{uuid.uuid4().hex}"


class TestMemoryTransport(TransportSuite):
    lease_seconds = 0.5

    @pytest.fixture
    def transport(self, url: str) -> Iterator[MemoryTransport]:
        t = MemoryTransport(url, {})
        yield t
        t.close()

    @pytest.fixture
    def other_transport(self, url: str) -> MemoryTransport:
        return MemoryTransport(url, {})

    @pytest.fixture
    def short_lease_transport(self, url: str) -> MemoryTransport:
        return MemoryTransport(url, {"lease_seconds": self.lease_seconds})


class TestMemoryBroadcast(BroadcastSuite):
    transport = TestMemoryTransport.transport
    other_transport = TestMemoryTransport.other_transport


class TestMemoryRateLimitStore(RateLimitStoreSuite):
    @pytest.fixture
    def store(self, url: str) -> MemoryRateLimitStore:
        return MemoryRateLimitStore(url, {})

    @pytest.fixture
    def other_store(self, url: str) -> MemoryRateLimitStore:
        return MemoryRateLimitStore(url, {})


class TestMemoryResultStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, url: str) -> MemoryResultStore:
        return MemoryResultStore(url, {})


def test_same_name_is_one_broker_and_names_are_apart(url: str) -> None:
    producer, consumer = MemoryTransport(url, {}), MemoryTransport(url, {})
    stranger = MemoryTransport(url + "-other", {})
    producer.publish([Outgoing("q", make_envelope(1))])
    assert stranger.fetch(["q"], 1, 0) == [], "a broker of another name saw the message"
    assert [d.envelope.headers["id"] for d in consumer.fetch(["q"], 1, 1)] == ["m-1"]


def test_result_stores_share_by_name(url: str) -> None:
    MemoryResultStore(url, {}).set([("k", b"v")], None)
    assert MemoryResultStore(url, {}).get("k") == b"v"
    assert MemoryResultStore(url + "-other", {}).get("k") is None


def test_capabilities_are_honest(url: str) -> None:
    assert MemoryTransport(url, {}).capabilities.multi_process is False
    store = MemoryResultStore(url, {})
    assert store.capabilities.push_wait and store.capabilities.atomic_counter
    assert not store.capabilities.persistent and not store.capabilities.multi_process


def test_app_and_in_process_consumer_share_the_broker(url: str) -> None:
    app = App("memtest", broker=url, autoload=True)
    app.transport.publish([Outgoing("celery", make_envelope(7))])
    got = MemoryTransport(url, {}).fetch(["celery"], 1, 1)
    assert [d.envelope.headers["id"] for d in got] == ["m-7"]
    assert isinstance(app.backend.store, MemoryResultStore), \
        "a memory broker should give a memory result store by default"


def test_blocked_fetch_is_woken_by_a_later_delay_ending(url: str) -> None:
    """A fetch already waiting when a delayed message is published wakes when it is due."""
    t = MemoryTransport(url, {})
    due = time.time() + 0.3
    timer = threading.Timer(0.05, lambda: t.publish(
        [Outgoing("q", make_envelope(1), not_before=due)]))
    timer.start()
    got = t.fetch(["q"], 1, 5)
    timer.join()
    assert time.time() >= due and [d.envelope.headers["id"] for d in got] == ["m-1"]


def test_stale_delivery_cannot_touch_a_redelivered_message(url: str) -> None:
    short = MemoryTransport(url, {"lease_seconds": 0.2})
    other = MemoryTransport(url, {})
    short.publish([Outgoing("q", make_envelope(1))])
    stale = short.fetch(["q"], 1, 1)[0]
    fresh = other.fetch(["q"], 1, 5)[0]
    assert fresh.delivery_count == 2
    short.reject(stale, requeue=True)  # the stale holder gives it back: must change nothing
    short.extend_lease([stale], 60)
    assert other.fetch(["q"], 1, 0.3) == [], "a stale reject requeued a message held elsewhere"
    other.ack([fresh])
    assert other.size("q") == 0


def test_bad_url_is_a_sentence() -> None:
    with pytest.raises(ConfigurationError, match="memory://"):
        MemoryTransport("redis://x", {})
    with pytest.raises(ConfigurationError, match="positive number"):
        MemoryTransport("memory://", {"lease_seconds": "soon"})


def test_entry_module_stays_light() -> None:
    code = "import sys, kernel.std.memory; print('kernel.std.memory.transport' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


BROKEN = textwrap.dedent('''
    import time
    import uuid
    import pytest
    from kernel.std.memory.results import MemoryResultStore
    from kernel.std.memory.transport import MemoryTransport
    from kernel.testing import ResultStoreSuite, TransportSuite

    class Base(TransportSuite):
        lease_seconds = 0.3
        kind = MemoryTransport

        @pytest.fixture
        def url(self):
            return f"memory://{uuid.uuid4().hex}"

        @pytest.fixture
        def transport(self, url):
            return self.kind(url, {})

        @pytest.fixture
        def other_transport(self, url):
            return self.kind(url, {})

        @pytest.fixture
        def short_lease_transport(self, url):
            return self.kind(url, {"lease_seconds": self.lease_seconds})

    class FlatPriority(MemoryTransport):
        def publish(self, messages):
            super().publish([type(m)(m.queue, m.envelope, 0, m.not_before) for m in messages])

    class Impatient(MemoryTransport):
        def fetch(self, queues, limit, timeout):
            return super().fetch(queues, limit, 0)

    class Spinner(MemoryTransport):
        def fetch(self, queues, limit, timeout):
            end = time.monotonic() + timeout
            while True:
                got = super().fetch(queues, limit, 0)
                if got or time.monotonic() >= end:
                    return got

    class CountingRelease(MemoryTransport):
        def release(self, deliveries):
            for d in deliveries:
                self.reject(d, requeue=True)

    class Forgetful(MemoryTransport):
        def reject(self, delivery, *, requeue, reason=""):
            if requeue:
                return super().reject(delivery, requeue=True, reason=reason)
            self.ack([delivery])

    class NoExtend(MemoryTransport):
        def extend_lease(self, deliveries, seconds):
            pass

    class EarlyDelay(MemoryTransport):
        def publish(self, messages):
            super().publish([type(m)(m.queue, m.envelope, m.priority, None) for m in messages])

    class TestFlatPriority(Base):
        kind = FlatPriority

    class TestImpatient(Base):
        kind = Impatient

    class TestSpinner(Base):
        kind = Spinner

    class TestCountingRelease(Base):
        kind = CountingRelease

    class TestForgetful(Base):
        kind = Forgetful

    class TestNoExtend(Base):
        kind = NoExtend

    class TestEarlyDelay(Base):
        kind = EarlyDelay

    class RacyCounter(MemoryResultStore):
        def incr(self, key, amount=1, expires=None):
            value = int(self.get(key) or 0) + amount
            time.sleep(0.0005)
            self.set([(key, str(value).encode())], expires)
            return value

    class Immortal(MemoryResultStore):
        def set(self, items, expires):
            super().set(items, None)

    class Replacing(MemoryResultStore):
        def add(self, items, expires):
            self.set(items, expires)

    class RacyAdd(MemoryResultStore):
        def add(self, items, expires):
            for key, value in items:
                if self.get(key) is None:
                    time.sleep(0.001)
                    self.set([(key, value)], expires)

    class StoreBase(ResultStoreSuite):
        kind = MemoryResultStore
        expiry_grace = 0.5

        @pytest.fixture
        def store(self):
            return self.kind(f"memory://{uuid.uuid4().hex}", {})

    class TestRacyCounter(StoreBase):
        kind = RacyCounter

    class TestImmortal(StoreBase):
        kind = Immortal

    class TestReplacing(StoreBase):
        kind = Replacing

    class TestRacyAdd(StoreBase):
        kind = RacyAdd
''')

#: each broken implementation, and the suite test that must catch it.
CAUGHT = {
    "TestFlatPriority::test_priorities": "priorities",
    "TestImpatient::test_fetch_waits_for_the_timeout": "blocks until the timeout",
    "TestSpinner::test_fetch_does_not_spin": "busy-polling",
    "TestCountingRelease::test_release_does_not_count": "undoes the count",
    "TestForgetful::test_dead_letter": "dead_letters(queue)",
    "TestNoExtend::test_extend_lease_keeps_message": "extend_lease moves",
    "TestEarlyDelay::test_delayed_delivery": "not_before",
    "TestRacyCounter::test_incr_under_threads": "one atomic step",
    "TestImmortal::test_expiry": "past their expiry",
    "TestReplacing::test_add_stores_only_where_nothing_is": "only keys that hold nothing",
    "TestRacyAdd::test_add_under_threads_keeps_the_first": "one atomic step",
}


def test_suites_catch_broken_storage(tmp_path: Path) -> None:
    (tmp_path / "test_broken_storage.py").write_text(BROKEN)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider",
         *[f"test_broken_storage.py::{test}" for test in CAUGHT]],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "1000"})  # keep the summary lines whole
    failed = dict(re.findall(r"^FAILED test_broken_storage.py::(\w+::\w+) - (.*)$",
                             run.stdout, re.M))
    for test, hint in CAUGHT.items():
        assert test in failed, f"the suite did not catch {test.split('::')[0]}:\n{run.stdout}"
        assert hint in failed[test], f"{test} failed without its hint: {failed[test]}"
