"""Kernel workers on the Riak store (the fake of `kernel_riak.testing`, or a real node with
``KERNEL_TEST_RIAK_URL``): chords run on celery.chord_unlock, as Celery's Riak backend ran
them, the body getting every value in the header's order and a failed member failing it with
a ChordError naming it; a task that meets a record that does not decode fails with that
sentence, and the worker serves on."""

from __future__ import annotations

import pytest

from kernel.testing.store_workers import StoreWorkerSuite


class TestWorkersOnRiak(StoreWorkerSuite):

    @pytest.fixture
    def results_url(self, riak_url: str) -> str:
        return riak_url
