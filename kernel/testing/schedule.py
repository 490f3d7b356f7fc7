"""Conformance suite for schedule stores (`kernel.interfaces.schedule.ScheduleStore`).

Subclass it and give it two fixtures: a store on a fresh namespace, and a second instance on the
same namespace (it stands for another beat process). The suite's `namespace` fixture hands out a
fresh name per test; use it as your key prefix, table name or directory, so one server serves
every test, also under pytest-xdist::

    from kernel.testing import ScheduleStoreSuite

    class TestMySchedule(ScheduleStoreSuite):
        @pytest.fixture
        def store(self, namespace):
            s = MyScheduleStore(URL, {"prefix": namespace})
            yield s
            s.close()

        @pytest.fixture
        def other_store(self, namespace):
            s = MyScheduleStore(URL, {"prefix": namespace})
            yield s
            s.close()

Races run on eight threads over both instances. Every failure message ends with what to check.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator

import pytest

from kernel.interfaces.schedule import EntryState, ScheduleStore
from kernel.testing.transport import at_once, wait_for

__all__ = ["ScheduleStoreSuite"]

#: entry names a store must keep apart and give back, whatever its naming rules.
AWKWARD_NAMES = ("every minute", "a:b", "a", ":b", "a/b", "a%2Fb", "a\\b", ".", "..",
                 "żółw-日本", "tab\there", "n" * 200)

#: a due time with a fraction a float keeps but a 14-digit decimal rendering would not.
DUE = 1_767_225_600.123456


class ScheduleStoreSuite:
    """The guarantees of `kernel.interfaces.schedule.ScheduleStore`, one test each."""

    #: the lease the expiry test lets lapse, in seconds.
    short_ttl: float = 1.0
    #: how long after its ttl a lease nobody renews may still be held (raise it for a store
    #: whose clock is coarse).
    lease_grace: float = 5.0

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def namespace(self) -> str:
        return f"suite-{uuid.uuid4().hex}"

    @pytest.fixture
    def store(self, namespace: str) -> Iterator[ScheduleStore]:
        pytest.fail("override the `store` fixture to return an instance of your schedule "
                    "store on the fresh `namespace` (and close it afterwards)")
        yield  # pragma: no cover

    @pytest.fixture
    def other_store(self, namespace: str) -> Iterator[ScheduleStore]:
        pytest.fail("override the `other_store` fixture to return a second instance on the "
                    "same `namespace` as `store` (another beat process sharing the schedule)")
        yield  # pragma: no cover

    def holding(self, store: ScheduleStore, owner: str = "leader") -> int:
        token = store.acquire(owner, 30)
        assert token is not None, "acquire on a lease nobody holds must take it; check a " \
            "fresh namespace starts without a holder"
        return token

    # ------------------------------------------------------------------ the lease

    def test_one_of_eight_racing_owners_wins(self, store: ScheduleStore,
                                             other_store: ScheduleStore) -> None:
        stores = (store, other_store)
        tokens = at_once(lambda n: stores[n % 2].acquire(f"owner-{n}", 30), 8)
        winners = [n for n, token in enumerate(tokens) if token is not None]
        assert len(winners) == 1, f"{len(winners)} of eight racing owners got the lease " \
            f"(tokens {tokens}), exactly one may; check acquire tests and takes the lease in " \
            "one atomic step, not a read followed by a write"
        loser = (winners[0] + 1) % 8
        assert stores[loser % 2].acquire(f"owner-{loser}", 30) is None, \
            "a held lease must refuse every other owner"

    def test_renewing_keeps_the_token(self, store: ScheduleStore,
                                      other_store: ScheduleStore) -> None:
        token = store.acquire("a", 5)
        assert token is not None, "acquire on a fresh namespace must take the lease"
        assert store.acquire("a", 30) == token, "renewing by the holder must keep its token; " \
            "check acquire recognises the holder and only extends its lease"
        assert other_store.acquire("a", 30) == token, "the owner name decides who holds the " \
            "lease, not the instance: the same owner through another connection renews too"
        leader = other_store.leader()
        assert leader is not None and leader.expires_in > 5, \
            f"a renewal for 30 s must restart the lease's ttl (it expires in " \
            f"{leader and leader.expires_in} s); check acquire sets the new ttl when renewing"
        assert other_store.acquire("b", 30) is None, "renewals must not free the lease"

    def test_an_unrenewed_lease_ends_within_its_ttl(self, store: ScheduleStore,
                                                    other_store: ScheduleStore) -> None:
        ttl = self.short_ttl
        started = time.monotonic()
        first = store.acquire("a", ttl)
        assert first is not None, "acquire on a fresh namespace must take the lease"
        refused = other_store.acquire("b", 30)
        if time.monotonic() - started < ttl:
            assert refused is None, "another owner got the lease before its ttl ended; check " \
                "the ttl is in seconds and the lease is checked before it is given"
        taken: list[int] = []

        def take_over() -> bool:
            token = other_store.acquire("b", 30)
            taken.extend([] if token is None else [token])
            return token is not None

        wait_for(take_over, ttl + self.lease_grace, "a lease nobody renews to end, so "
                 "another owner can take it; check the lease expires by itself after its ttl")
        second = taken[0]
        elapsed = time.monotonic() - started
        assert elapsed >= ttl * 0.9, f"the lease ended after {elapsed:.2f} s, before its ttl " \
            f"of {ttl} s; check the ttl is seconds, not a smaller unit"
        assert second > first, f"the next holder got token {second} after {first}: tokens " \
            "must grow across expiries; check the token counter is kept apart from the lease " \
            "and never expires with it"
        assert not store.claim("tick", DUE, first), "the lapsed holder's token claimed a " \
            "tick: a leader paused past its lease must not send; check claim compares the " \
            "token with the current holder's"

    def test_release_lets_another_owner_in_with_a_larger_token(
            self, store: ScheduleStore, other_store: ScheduleStore) -> None:
        first = self.holding(store, "a")
        store.release("a")
        second = other_store.acquire("b", 30)
        assert second is not None, "after release the lease must be free at once"
        assert second > first, f"token {second} after {first}: every new holder must get a " \
            "larger token, also after a release; check release keeps the token counter"
        other_store.release("b")
        third = store.acquire("a", 30)
        assert third is not None and third > second, f"an owner taking the lease again after " \
            f"a release got {third} after {second}: a new holding needs a new, larger token"

    def test_release_by_a_non_holder_does_nothing(self, store: ScheduleStore,
                                                  other_store: ScheduleStore) -> None:
        token = self.holding(store, "a")
        other_store.release("b")
        store.release("b")
        assert other_store.acquire("b", 30) is None, "a release by an owner that does not " \
            "hold the lease freed it; check release compares the owner first, atomically"
        assert store.acquire("a", 30) == token, "a release by another owner changed the " \
            "holder's token"
        store.release("a")
        store.release("a")  # no holder any more: still nothing to do, and no error

    def test_leader_reports_the_holder(self, store: ScheduleStore,
                                       other_store: ScheduleStore) -> None:
        assert store.leader() is None, "a fresh namespace must have no leader"
        token = self.holding(store, "beat@host-1")
        for instance in (store, other_store):
            leader = instance.leader()
            assert leader is not None and (leader.owner, leader.token) == ("beat@host-1",
                                                                           token), \
                f"leader() said {leader}; it must name the holder and its token, through " \
                "every instance"
            assert 0 < leader.expires_in <= 31, f"expires_in {leader.expires_in} for a 30 s " \
                "lease; it must be the seconds left, by the store's clock"
        store.release("beat@host-1")
        assert other_store.leader() is None, "after release there must be no leader"

    # ------------------------------------------------------------------ ticks

    def test_one_claim_per_tick_among_racing_claimants(self, store: ScheduleStore,
                                                       other_store: ScheduleStore) -> None:
        token = self.holding(store)
        stores = (store, other_store)
        for round_ in range(10):
            due = DUE + 60 * round_

            def claim(n: int, due: float = due) -> bool:
                return stores[n % 2].claim("tick", due, token)

            won = at_once(claim, 8)
            assert won.count(True) == 1, f"{won.count(True)} of eight racing claims of one " \
                f"tick succeeded, exactly one must; check claim compares the last due and " \
                f"records the new one in one atomic step"
        assert other_store.states() == {"tick": EntryState(DUE + 540, 10)}, \
            "ten claimed ticks must leave last_run at the last due and run_count 10"

    def test_claim_is_refused_for_an_earlier_or_equal_due(self, store: ScheduleStore) -> None:
        token = self.holding(store)
        assert store.claim("tick", DUE, token), "the first claim of a tick must succeed"
        assert not store.claim("tick", DUE, token), "the same tick was claimed twice; check " \
            "claim refuses a due <= the last claimed one"
        assert not store.claim("tick", DUE - 0.5, token), "an earlier tick was claimed after " \
            "a later one; check the comparison is <=, on numbers, not strings"
        assert store.claim("tick", DUE + 0.25, token), "a later tick must be claimable, " \
            "fractions of a second included"
        assert store.claim("tock", DUE - 3600, token), "entries are independent: one's " \
            "earlier tick is claimable when another ran later"
        assert store.states() == {"tick": EntryState(DUE + 0.25, 2),
                                  "tock": EntryState(DUE - 3600, 1)}, \
            f"states() said {store.states()}; each successful claim sets last_run=due exactly " \
            "(no rounding) and adds one to run_count, refused ones change nothing"

    def test_a_stale_token_cannot_claim(self, store: ScheduleStore,
                                        other_store: ScheduleStore) -> None:
        old = self.holding(store, "old")
        assert store.claim("tick", DUE, old), "the holder's claim must succeed"
        store.release("old")
        assert not store.claim("tick", DUE + 60, old), "a claim with a released token " \
            "succeeded; with no holder every claim must be refused"
        new = self.holding(other_store, "new")
        assert not store.claim("tick", DUE + 60, old), "a stale token claimed a tick after " \
            "the lease moved; check claim compares the token with the current holder's in " \
            "the same atomic step"
        assert not other_store.claim("tick", DUE + 60, new + 1), "a token never handed out " \
            "claimed a tick"
        assert other_store.claim("tick", DUE + 60, new), "the new holder's claim must succeed"
        assert store.states() == {"tick": EntryState(DUE + 60, 2)}, \
            "refused claims must not change the entry's state"

    def test_states_are_seen_by_every_instance(self, store: ScheduleStore,
                                               other_store: ScheduleStore) -> None:
        assert store.states() == {}, "a fresh namespace must have no tick state"
        token = self.holding(store)
        store.claim("a", 10.0, token)
        other_store.claim("a", 20.0, token)
        other_store.claim("b", 15.5, token)
        expected = {"a": EntryState(20.0, 2), "b": EntryState(15.5, 1)}
        for instance in (store, other_store):
            got = instance.states()
            assert got == expected, f"states() said {got}; every instance must see every " \
                "claim at once (no cache of its own)"
            assert all(isinstance(s.last_run, float) and isinstance(s.run_count, int)
                       for s in got.values()), "last_run must be a float, run_count an int"

    def test_bad_due_is_refused(self, store: ScheduleStore) -> None:
        token = self.holding(store)
        for due in (math.nan, math.inf, -math.inf):
            with pytest.raises(ValueError) as info:
                store.claim("tick", due, token)
            assert str(info.value), "the ValueError must say what is wrong"
        assert store.states() == {}, "a refused due must not be recorded"

    # ------------------------------------------------------------------ entries

    def test_entries_put_overwrite_remove(self, store: ScheduleStore,
                                          other_store: ScheduleStore) -> None:
        assert store.entries() == {}, "a fresh namespace must have no entries"
        versions = [store.version()]

        def changed(what: str) -> None:
            versions.append(other_store.version())
            assert versions[-1] > versions[-2], f"version() did not grow after {what} " \
                f"({versions}); check every put and remove moves it, seen by every instance"

        store.put_entry("a", b'{"task": "report"}')
        changed("a put")
        assert other_store.entries() == {"a": b'{"task": "report"}'}, \
            "an entry put through one instance must be read through another"
        store.put_entry("binary", bytes(range(256)))
        changed("a second put")
        store.put_entry("empty", b"")
        changed("a put of empty data")
        token = self.holding(store)
        store.claim("a", DUE, token)
        other_store.put_entry("a", b"new")
        changed("an overwrite")
        assert store.entries()["a"] == b"new", "put_entry must replace an entry's data"
        assert store.states()["a"] == EntryState(DUE, 1), \
            "replacing an entry's data must keep its tick state"
        assert store.remove_entry("a") is True, "remove_entry of an entry must return True"
        changed("a remove")
        got = other_store.entries()
        assert got == {"binary": bytes(range(256)), "empty": b""}, \
            f"entries() said {got}; data is opaque bytes (kept exactly, an empty value is " \
            "an entry) and a removed entry is gone"
        assert all(isinstance(data, bytes) for data in got.values()), "data must be bytes"

    def test_version_stays_put_without_a_change(self, store: ScheduleStore,
                                                other_store: ScheduleStore) -> None:
        store.put_entry("a", b"x")
        before = store.version()
        token = self.holding(store)
        store.claim("a", DUE, token)
        store.entries()
        other_store.states()
        assert store.remove_entry("never-there") is False, \
            "remove_entry of a missing entry must return False"
        assert other_store.version() == before, "version() moved without a change to the " \
            "entries (a claim, a read or a remove of nothing): beat would re-read every tick"

    def test_removing_an_entry_forgets_its_state(self, store: ScheduleStore,
                                                 other_store: ScheduleStore) -> None:
        token = self.holding(store)
        store.put_entry("tick", b"x")
        store.claim("tick", DUE, token)
        other_store.remove_entry("tick")
        assert "tick" not in store.states(), "remove_entry must forget the entry's tick state"
        store.put_entry("tick", b"x")
        assert store.claim("tick", DUE - 60, token), "an entry added again starts afresh: " \
            "its earlier ticks are claimable"

    def test_awkward_entry_names(self, store: ScheduleStore,
                                 other_store: ScheduleStore) -> None:
        token = self.holding(store)
        for n, name in enumerate(AWKWARD_NAMES):
            store.put_entry(name, b"%d" % n)
            assert store.claim(name, float(n + 1), token), f"a claim of {name!r} was refused"
        entries, states = other_store.entries(), other_store.states()
        assert entries == {name: b"%d" % n for n, name in enumerate(AWKWARD_NAMES)}, \
            f"entries came back as {sorted(entries)!r}; check names with spaces, colons, " \
            "slashes, unicode or great length are encoded, not mangled into each other"
        assert states == {name: EntryState(float(n + 1), 1)
                          for n, name in enumerate(AWKWARD_NAMES)}, \
            "tick states of awkward names were mixed up; check states use the same encoding"

    # ------------------------------------------------------------------ the rest

    def test_bad_ttl_is_refused(self, store: ScheduleStore) -> None:
        for ttl in (0, -1.0, math.nan, math.inf):
            with pytest.raises(ValueError) as info:
                store.acquire("a", ttl)
            assert str(info.value), "the ValueError must say what is wrong"
        assert store.leader() is None, "a refused acquire must not take the lease"

    def test_close_twice(self, store: ScheduleStore) -> None:
        store.close()
        store.close()
