"""The kernel's conformance suite against gcp-storage-emulator, expiry by Custom-Time included.
The emulator ignores generation preconditions, so the store runs there with
``gcs_conditional_writes = False`` (counters not atomic, chords by ``celery.chord_unlock``);
the preconditions kernel sends are checked in test_store.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kernel.testing.results import AWKWARD_KEYS, ResultStoreSuite
from kernel_gcs.store import GCSStore
from conftest import REAL


class TestGCSStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, gcs_url: str, gcs_options: dict[str, Any]) -> Iterator[GCSStore]:
        s = GCSStore(gcs_url, gcs_options)
        yield s
        s.close()

    if not REAL:
        def test_add_under_threads_keeps_the_first(self, store: GCSStore, key: str) -> None:
            """Replaced on the emulator: it stores an upload with ``ifGenerationMatch=0`` on
            top of an object, where Cloud Storage answers 412, so no add is atomic there."""
            bucket = store.client()
            bucket.blob(key).upload_from_string(b"first", if_generation_match=0)
            bucket.blob(key).upload_from_string(b"second", if_generation_match=0)
            assert store.get(key) == b"second", (
                "gcp-storage-emulator now honours ifGenerationMatch: run the suite with "
                "gcs_conditional_writes on and drop this override")

        def test_awkward_keys(self, store: GCSStore, key: str) -> None:
            """Replaced on the emulator: it maps the names ``a/b``, ``a%2Fb`` and ``a\\b`` to
            one file, so a download of one gets another's bytes (Cloud Storage keeps them
            apart). Every other awkward key is checked as the suite checks them."""
            items = [(f"{key}{k}", b"%d" % n) for n, k in enumerate(AWKWARD_KEYS)
                     if "%" not in k and "\\" not in k]
            store.set(items, None)
            assert [store.get(k) for k, _ in items] == [v for _, v in items]
            store.delete([k for k, _ in items])
            assert all(store.get(k) is None for k, _ in items)
