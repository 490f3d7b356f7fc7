"""Entry point of kernel-elasticsearch (``kernel.plugins``: ``elasticsearch``). Kept light: the
clients (elasticsearch-py, opensearch-py) and the store are imported by the factory, on first
use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``elasticsearch://host:port/index`` (HTTP) and ``elasticsearch+https://`` (Celery
#: reads the scheme after the ``+``); OpenSearch alike, through opensearch-py.
ELASTICSEARCH_SCHEMES = ("elasticsearch", "elasticsearch+http", "elasticsearch+https")
OPENSEARCH_SCHEMES = ("opensearch", "opensearch+http", "opensearch+https")

#: Counters are writes checked by sequence number (``if_seq_no``/``if_primary_term``: a
#: conflict is read again and retried); adds are ``op_type=create``; waiting polls. Chords run
#: on ``celery.chord_unlock``, as Celery's Elasticsearch backend (which has no counter) runs
#: them, so Celery and kernel workers share them.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("elasticsearch", ELASTICSEARCH_SCHEMES,
                          Lazy("kernel_elasticsearch.store:ElasticsearchStore"),
                          RESULT_STORE_CAPABILITIES)
    yield ResultStoreSpec("opensearch", OPENSEARCH_SCHEMES,
                          Lazy("kernel_elasticsearch.store:OpenSearchStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's names (celery.backends.elasticsearch); they apply to opensearch:// too.
    yield SettingSpec("elasticsearch_retry_on_timeout", bool, False,
                      "send a request again when it timed out (reads and plain writes; "
                      "a counter's conditional write is never sent twice)")
    yield SettingSpec("elasticsearch_max_retries", int, 3,
                      "how many times the client sends a request again on another failure")
    yield SettingSpec("elasticsearch_timeout", int | float, 10,
                      "seconds one request waits (at most connection_timeout, except cleanup's)")
    yield SettingSpec("elasticsearch_save_meta_as_text", bool, True,
                      "keep a task's record as its serialized text in 'result' (Celery's "
                      "default); off: as an object whose result and traceback are text")
