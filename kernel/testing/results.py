"""Conformance suite for result stores (`kernel.interfaces.results.ResultStore`).

Subclass it in your plugin's tests and give it a fixture returning a fresh instance::

    from kernel.testing import ResultStoreSuite

    class TestMyStore(ResultStoreSuite):
        @pytest.fixture
        def store(self):
            s = MyStore(URL, {})
            yield s
            s.close()

Tests use fresh keys (the `key` fixture), so one server serves them all, also under
pytest-xdist. Counter and wait tests follow the declared capabilities: ``atomic_counter``
is proven with threads, ``push_wait`` with a tighter latency bound. Every failure message ends
with what to check.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from kernel.interfaces.results import ResultStore
from kernel.testing.transport import at_once, wait_for, wake_latency

__all__ = ["ResultStoreSuite", "app_stores"]

S = TypeVar("S", bound=ResultStore)


@contextmanager
def app_stores(kind: type[S], name: str) -> Iterator[Callable[..., S]]:
    """``make(url, **config)`` for the block: the store (of type `kind`) an App named `name`
    with that config would use; the Apps are closed after it."""
    from kernel.app import App

    apps: list[App] = []

    def make(url: str, **config: Any) -> S:
        app = App(name, broker="memory://", results=url, config=config)
        apps.append(app)
        store = app.backend.store
        assert isinstance(store, kind), f"{url} gave a {type(store).__name__}, not a {kind}"
        return store

    try:
        yield make
    finally:
        for app in apps:
            app.close()

#: keys a store must keep apart and give back, whatever its naming rules.
AWKWARD_KEYS = ("a/b", "a%2Fb", "a\\b", ".", "..", ".hidden", "sp ace", "colon:star*?",
                "żółw-日本", "k" * 200)


class ResultStoreSuite:
    """The guarantees of `kernel.interfaces.results.ResultStore`, one test each."""

    #: how long after its expiry a value may still be read before the expiry tests fail
    #: (raise it for a store whose expiry has a coarse clock).
    expiry_grace: float = 5.0

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def store(self) -> Iterator[ResultStore]:
        pytest.fail("override the `store` fixture to return a fresh instance of your result "
                    "store (and close it afterwards)")
        yield  # pragma: no cover

    @pytest.fixture
    def key(self) -> str:
        return f"suite-{uuid.uuid4().hex}"

    # ------------------------------------------------------------------ basics

    def test_set_then_get(self, store: ResultStore, key: str) -> None:
        store.set([(key, b'{"status": "SUCCESS"}')], None)
        assert store.get(key) == b'{"status": "SUCCESS"}', \
            "get must return what set stored; check set writes and get reads the same key"

    def test_get_missing_is_none(self, store: ResultStore, key: str) -> None:
        assert store.get(key) is None, "get of a key never stored must return None"

    def test_overwrite(self, store: ResultStore, key: str) -> None:
        store.set([(key, b"first")], None)
        store.set([(key, b"second")], None)
        assert store.get(key) == b"second", "set must replace the previous value"

    def test_delete(self, store: ResultStore, key: str) -> None:
        store.set([(key, b"v"), (key + "-kept", b"w")], None)
        store.delete([key])
        assert store.get(key) is None, "a deleted key must read as None"
        assert store.get(key + "-kept") == b"w", "delete must forget only the keys given"
        store.delete([key, key + "-never"])  # deleting missing keys is a no-op

    def test_batch_set(self, store: ResultStore, key: str) -> None:
        items = [(f"{key}-{n}", b"value-%d" % n) for n in range(100)]
        store.set(items, None)
        missing = [k for k, v in items if store.get(k) != v]
        assert not missing, f"{len(missing)} of 100 keys of one batch were not stored " \
            f"(first: {missing[:1]}); check set stores every item of the batch"

    def test_binary_values(self, store: ResultStore, key: str) -> None:
        values = {key + "-all": bytes(range(256)), key + "-empty": b"",
                  key + "-big": bytes(range(256)) * 4096}
        store.set(list(values.items()), None)
        for k, v in values.items():
            got = store.get(k)
            assert isinstance(got, bytes), f"get must return bytes, not {type(got).__name__}"
            assert got == v, f"the value of {k!r} changed on the way; stores keep opaque " \
                "bytes: check nothing decodes them as text and an empty value is not 'missing'"

    def test_awkward_keys(self, store: ResultStore, key: str) -> None:
        items = [(f"{key}{k}", b"%d" % n) for n, k in enumerate(AWKWARD_KEYS)]
        store.set(items, None)
        wrong = [k for k, v in items if store.get(k) != v]
        assert not wrong, f"keys {wrong[:3]!r} did not come back with their own values; " \
            "check keys with '/', '.', unicode or great length are encoded, not mangled " \
            "into each other"
        store.delete([k for k, _ in items])
        assert all(store.get(k) is None for k, _ in items), "awkward keys must delete too"

    def test_add_stores_only_where_nothing_is(self, store: ResultStore, key: str) -> None:
        store.set([(key, b"SUCCESS")], None)
        store.add([(key, b"PENDING"), (key + "-new", b"PENDING")], None)
        assert store.get(key) == b"SUCCESS", \
            "add replaced a stored value; it must store only keys that hold nothing"
        assert store.get(key + "-new") == b"PENDING", "add must store a key that held nothing"
        store.delete([key])
        store.add([(key, b"again")], None)
        assert store.get(key) == b"again", "add must store a key whose value was deleted"

    def test_add_stores_over_an_expired_value(self, store: ResultStore, key: str) -> None:
        store.set([(key, b"old")], 0.2)
        wait_for(lambda: store.get(key) is None, 0.2 + self.expiry_grace,
                 "an expired value to read as None")
        store.add([(key, b"new")], 0.5)
        assert store.get(key) == b"new", "add must treat an expired value as nothing stored"
        wait_for(lambda: store.get(key) is None, 0.5 + self.expiry_grace,
                 "a value stored by add with an expiry to expire; check add sets it")

    def test_add_under_threads_keeps_the_first(self, store: ResultStore, key: str) -> None:
        keys = [f"{key}-{n}" for n in range(20)]

        def adding(thread: int) -> list[bytes | None]:
            seen = []
            for k in keys:  # what each thread reads right after its add: the one value stored
                store.add([(k, str(thread).encode())], None)
                seen.append(store.get(k))
            return seen

        seen = at_once(adding, 4)
        changed = [k for n, k in enumerate(keys) if len({mine[n] for mine in seen}) > 1]
        assert not changed, \
            f"keys {changed[:3]} changed after an add had stored them; check add looks and " \
            f"stores in one atomic step"

    # ------------------------------------------------------------------ expiry

    def test_expiry(self, store: ResultStore, key: str) -> None:
        expires = 0.5
        store.set([(key + "-forever", b"long")], None)
        written = time.monotonic()
        store.set([(key, b"short")], expires)
        value = store.get(key)
        if time.monotonic() - written < expires:
            assert value == b"short", "a value with an expiry vanished before it was due; " \
                "check the expiry is seconds from now, not an absolute time"
        wait_for(lambda: store.get(key) is None, expires + self.expiry_grace,
                 "an expired value to read as None; check get ignores (or the store drops) "
                 "values past their expiry")
        assert store.get(key + "-forever") == b"long", \
            "a value stored without expiry must stay"

    def test_cleanup_deletes_only_expired_records(self, store: ResultStore, key: str) -> None:
        store.set([(key + "-forever", b"long")], None)
        store.set([(key, b"short")], 0.2)
        wait_for(lambda: store.get(key) is None, 0.2 + self.expiry_grace,
                 "an expired value to read as None")
        removed = store.cleanup()
        assert isinstance(removed, dict) and all(
            isinstance(n, int) and n >= 0 for n in removed.values()), \
            "cleanup must return how many records it deleted, by kind"
        assert store.get(key) is None, "an expired record must stay gone after cleanup"
        assert store.get(key + "-forever") == b"long", "cleanup must keep live records"

    # ------------------------------------------------------------------ counters

    def test_incr(self, store: ResultStore, key: str) -> None:
        assert store.incr(key) == 1, "incr of a missing counter must start from 0"
        assert store.incr(key) == 2, "incr must add 1 by default"
        assert store.incr(key, 5) == 7, "incr must add `amount`"
        assert store.incr(key, -3) == 4, "incr must accept a negative amount"

    def test_incr_expires(self, store: ResultStore, key: str) -> None:
        assert store.incr(key, 1, expires=0.5) == 1
        wait_for(lambda: store.get(key) is None, 0.5 + self.expiry_grace,
                 "a counter with an expiry to read as None; check incr sets the expiry")
        assert store.incr(key) == 1, "an expired counter must start again from 0"

    def test_incr_under_threads(self, store: ResultStore, key: str) -> None:
        threads, rounds = 4, 50
        if not store.capabilities.atomic_counter:
            seen = [store.incr(key) for _ in range(rounds)]
            assert seen == list(range(1, rounds + 1)), "incr from one thread must count 1, 2, 3"
            return
        counted = at_once(lambda _: [store.incr(key) for _ in range(rounds)], threads)
        seen_all = [n for mine in counted for n in mine]
        assert sorted(seen_all) == list(range(1, threads * rounds + 1)), \
            "capabilities.atomic_counter is declared, yet concurrent incr calls saw the same " \
            "value or lost an increment; check incr reads and writes in one atomic step"

    # ------------------------------------------------------------------ chords

    def test_chord_part_completes_once_in_index_order(self, store: ResultStore,
                                                      key: str) -> None:
        if not store.capabilities.atomic_counter:
            pytest.skip("chord_part needs capabilities.atomic_counter")
        members = 20
        store.chord_start(key, [f"t{i}" for i in range(members)], None)
        got = at_once(lambda i: store.chord_part(key, i, f"t{i}", b'[1,"t%d"]' % i, None),
                      members)
        completed = [found for found in got if found is not None]
        assert len(completed) == 1, (
            f"{len(completed)} calls completed the chord, exactly one must: check the count "
            f"and the read of every entry happen in one atomic step")
        assert completed[0] == [b'[1,"t%d"]' % i for i in range(members)], (
            "the completing call must get every entry, ordered by index")

    def test_chord_part_counts_a_redelivered_member_once(self, store: ResultStore,
                                                         key: str) -> None:
        if not store.capabilities.atomic_counter:
            pytest.skip("chord_part needs capabilities.atomic_counter")
        store.chord_start(key, ["a", "b"], None)
        assert store.chord_part(key, 0, "a", b"first", None) is None
        assert store.chord_part(key, 0, "a", b"first", None) is None, (
            "the same task and index counted twice completed a chord of 2; check redeliveries "
            "are recognised by (task_id, index)")
        assert store.chord_part(key, 1, "b", b"second", None) == [b"first", b"second"]
        assert store.chord_part(key, 1, "c", b"late", None) is None, (
            "a call after the chord completed must get None")

    # ------------------------------------------------------------------ waiting

    def test_wait_returns_when_set(self, store: ResultStore, key: str) -> None:
        # What a read costs now, on this machine: waking may take a few of them on top of
        # the push or the polling interval (an emulator on a busy machine answers slowly).
        reads = []
        for _ in range(3):
            began = time.monotonic()
            store.get(key)
            reads.append(time.monotonic() - began)
        read = sorted(reads)[1]
        got, latency = wake_latency(lambda: store.wait(key, 10),
                                    lambda: store.set([(key, b"done")], None))
        assert got == b"done", "wait must return the value another thread set meanwhile"
        bound = (0.15 if store.capabilities.push_wait else 0.5) + 4 * read
        assert latency < bound, f"wait returned {latency:.3f}s after the value was set " \
            f"(bound {bound:.3f}s, a read taking {read:.3f}s); " + (
                "capabilities.push_wait is declared: check set wakes waiters"
                if store.capabilities.push_wait else "check the polling interval stays short")

    def test_wait_returns_existing_value_at_once(self, store: ResultStore, key: str) -> None:
        store.set([(key, b"there")], None)
        start = time.monotonic()
        assert store.wait(key, 10) == b"there", "wait must return a value already stored"
        assert time.monotonic() - start < 0.5, "wait for a stored value must not block"

    def test_wait_times_out(self, store: ResultStore, key: str) -> None:
        start = time.monotonic()
        got = store.wait(key, 0.5)
        elapsed = time.monotonic() - start
        assert got is None, "wait must return None when nothing is set before the timeout"
        assert 0.4 <= elapsed < 2.5, f"wait(timeout=0.5) returned after {elapsed:.3f}s; " \
            "check it blocks for the timeout, neither returning early nor much later"

    def test_wait_unless_skips_the_value_already_seen(self, store: ResultStore,
                                                     key: str) -> None:
        store.set([(key, b"PENDING")], None)
        assert store.wait(key, 0.3, unless=b"PENDING") is None, (
            "hint: wait(unless=v) must not return while the stored value is still v")
        got, latency = wake_latency(lambda: store.wait(key, 10, unless=b"PENDING"),
                                    lambda: store.set([(key, b"SUCCESS")], None))
        assert got == b"SUCCESS", "hint: wait(unless=v) returns the next, different value"
        bound = 0.15 if store.capabilities.push_wait else 0.5
        assert latency < bound, (f"wait(unless=...) returned {latency:.3f}s after the change "
                                 f"(bound {bound}s); check changes wake or are polled often")

    def test_close_twice(self, store: ResultStore) -> None:
        store.close()
        store.close()
