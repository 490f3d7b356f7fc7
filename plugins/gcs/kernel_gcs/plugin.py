"""Entry point of kernel-gcs (``kernel.plugins``: ``gcs``). Kept light: google-cloud-storage and
the store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``gs://bucket/base/path?gcs_project=P&ttl=S``.
SCHEMES = ("gs",)

#: Counters are compare-and-swap uploads on the object's generation (``ifGenerationMatch``;
#: adds are ``ifGenerationMatch=0``); waiting polls. Chords are counted in the bucket, not in
#: Firestore as Celery's backend counts them (see docs/stores/gcs.md).
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("gcs", SCHEMES, Lazy("kernel_gcs.store:GCSStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's names (celery.backends.gcs); the URL's parts and query fill them in.
    yield SettingSpec("gcs_bucket", str | None, None, "the bucket results are kept in")
    yield SettingSpec("gcs_project", str | None, None,
                      "the bucket's project; unset, the credentials' own")
    yield SettingSpec("gcs_base_path", str, "",
                      "the folder every object's name starts with (joined with /)")
    yield SettingSpec("gcs_ttl", int | float, 0,
                      "seconds records are kept instead of result_expires, also by the "
                      "bucket's lifecycle Delete rule on Custom-Time, which must exist "
                      "(0: result_expires, and no rule needed)")
    yield SettingSpec("gcs_threadpool_maxsize", int, 10,
                      "connections kept to Cloud Storage per process")
    # kernel's
    yield SettingSpec("gcs_create_bucket", bool, False,
                      "create the bucket when it is missing (Celery never does)")
    yield SettingSpec("gcs_conditional_writes", bool, True,
                      "use generation preconditions for adds and counters; off for an "
                      "emulator that ignores them (gcp-storage-emulator): counters are then "
                      "not atomic")
