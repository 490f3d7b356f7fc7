"""A kernel client's chords on kernel workers over Elasticsearch: they run on
celery.chord_unlock (as Celery's Elasticsearch backend's do), the body gets every value in the
header's order, and a failed member fails the body with a ChordError naming it; a document
that does not decode, read by a task, is that task's failure in one sentence, and the worker
serves on."""

from __future__ import annotations

import pytest

from kernel import App
from kernel.testing.store_workers import StoreWorkerSuite


class TestWorkersOnElasticsearch(StoreWorkerSuite):
    undecodable = r"holds no text 'result' .* delete it"

    def plant(self, app: App, task_id: str) -> None:
        # A document in Celery's index whose `result` is not the text Celery writes there.
        store = app.backend.store
        store.flavour.write(store._client(), store.index,  # type: ignore[union-attr]
                            f"celery-task-meta-{task_id}", {"result": ["not", "text"]})

    @pytest.fixture
    def results_url(self, elasticsearch_url: str) -> str:
        return elasticsearch_url
