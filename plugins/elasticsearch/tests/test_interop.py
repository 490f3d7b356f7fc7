"""Celery 5 (its Elasticsearch backend, on elasticsearch-py 8) and kernel on one index of
noida-db, or of the server ``KERNEL_TEST_ELASTICSEARCH_URL`` names (results), and one Redis
(broker): each side's results, failures, saved groups and chords (``celery.chord_unlock``, as
Celery's backend runs them) read or run by the other, and records both ways in both
of Celery's layouts (``elasticsearch_save_meta_as_text`` on and off).

OpenSearch is not here: Celery has no OpenSearch backend, and its Elasticsearch backend's client
(elasticsearch-py 8 and 9) is refused by OpenSearch (406 on its ``compatible-with`` media type),
by osmem-server as by a real one; ``test_celerys_backend_is_refused_by_opensearch`` holds that.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from kernel.testing.interop import Backend, CeleryInteropSuite

if not os.environ.get("CI"):  # under CI a missing Celery is a failure, not a skip
    pytest.importorskip("celery", reason="interop tests need celery[elasticsearch]")

import celery  # noqa: E402

pytestmark = pytest.mark.timeout(120)


class TestCeleryInterop(CeleryInteropSuite):
    @pytest.fixture
    def kernel_backend(self, elasticsearch_url: str) -> Backend:
        return elasticsearch_url, {}


@pytest.mark.parametrize("as_text", [True, False], ids=["meta-as-text", "meta-as-object"])
def test_records_read_both_ways_in_both_layouts(elasticsearch_url: str, as_text: bool) -> None:
    """Each side's records, successes and failures, read by the other, with
    ``elasticsearch_save_meta_as_text`` on and off (both sides configured alike).

    Only through the backends: in the object layout the index maps every field of a record
    (``result.args``...) by the first value it sees, so real workers with extended results
    fail on a later record whose field differs in type (Celery's own worker stops with a
    ``document_parsing_exception`` then, as on a real Elasticsearch)."""
    from kernel import App

    conf = {"elasticsearch_save_meta_as_text": as_text}
    kapp = App("layouts", broker="memory://", results=elasticsearch_url, config=conf)
    capp: Any = celery.Celery("layouts", backend=elasticsearch_url)
    capp.conf.update(conf)
    try:
        kapp.backend.store_result("k-ok", "SUCCESS", {"n": [1, 2]})
        kapp.backend.store_result("k-bad", "FAILURE", KeyError("lost"), traceback="Trace k")
        capp.backend.store_result("c-ok", {"n": [3]}, "SUCCESS")
        capp.backend.store_result("c-bad", KeyError("gone"), "FAILURE", traceback="Trace c")
        source = capp.backend.server.get(index=capp.backend.index,
                                         id="celery-task-meta-k-ok")["_source"]
        assert isinstance(source["result"], str if as_text else dict), source
        theirs = capp.backend.get_task_meta("k-ok")
        assert theirs["status"] == "SUCCESS" and theirs["result"] == {"n": [1, 2]}
        failed = capp.backend.get_task_meta("k-bad")
        assert failed["status"] == "FAILURE" and isinstance(failed["result"], KeyError)
        assert failed["traceback"] == "Trace k"
        mine = kapp.backend.get_meta("c-ok")
        assert mine is not None and mine["result"] == {"n": [3]}
        bad = kapp.AsyncResult("c-bad")
        with pytest.raises(KeyError, match="gone"):
            bad.get(timeout=5)
        assert bad.traceback == "Trace c"
    finally:
        kapp.close()
        capp.close()


def test_celerys_backend_is_refused_by_opensearch(opensearch_url: str) -> None:
    app = celery.Celery("refused", backend=opensearch_url.replace("opensearch://",
                                                                  "elasticsearch://"))
    try:
        with pytest.raises(Exception, match="406|compatible-with") as info:
            app.backend.store_result("t", 1, "SUCCESS")
        assert type(info.value).__name__ in {"ApiError", "UnsupportedProductError"}, info.value
    finally:
        app.close()


def test_celery_reads_kernels_document_layout(elasticsearch_url: str) -> None:
    """The document a kernel App writes is what Celery's backend reads, field by field."""
    from kernel import App

    kapp = App("layout", broker="memory://", results=elasticsearch_url)
    capp: Any = celery.Celery("layout", backend=elasticsearch_url)
    try:
        kapp.backend.store_result("t-layout", "SUCCESS", {"n": 5})
        source = capp.backend.server.get(index=capp.backend.index,
                                         id="celery-task-meta-t-layout")["_source"]
        assert set(source) == {"result", "@timestamp", "kernel_expires"}, source
        assert isinstance(source["result"], str) and source["@timestamp"].endswith("Z")
        assert abs(source["kernel_expires"] / 1000 - time.time() - 86400) < 60, \
            "result_expires (a day) as a deadline in Unix milliseconds"
        assert capp.backend.get_task_meta("t-layout")["result"] == {"n": 5}
    finally:
        kapp.close()
        capp.close()
