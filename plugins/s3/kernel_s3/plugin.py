"""Entry point of kernel-s3 (``kernel.plugins``: ``s3``). Kept light: boto3 and the store are
imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``s3://`` (the bucket and base path come from the settings below); kernel also
#: reads ``s3://bucket/base/path``.
SCHEMES = ("s3",)

#: Counters are compare-and-swap writes on the object's ETag (``If-Match``; adds are
#: ``If-None-Match: *``); waiting polls. Chords run with ``celery.chord_unlock``, as Celery's
#: S3 backend runs them (it cannot count), so Celery and kernel workers share them.
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True,
    chord_unlock=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("s3", SCHEMES, Lazy("kernel_s3.store:S3Store"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # Celery's names (celery.backends.s3), then kernel's two.
    yield SettingSpec("s3_bucket", str | None, None, "the bucket results are kept in")
    yield SettingSpec("s3_base_path", str | None, None,
                      "what every object's name starts with (joined as it is: end it with /)")
    yield SettingSpec("s3_endpoint_url", str | None, None,
                      "the S3 endpoint (an S3-compatible service or an emulator); unset, "
                      "boto3's own: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS")
    yield SettingSpec("s3_region", str | None, None,
                      "the bucket's region; unset, boto3's (AWS_REGION, ~/.aws/config)")
    yield SettingSpec("s3_access_key_id", str | None, None,
                      "the access key; unset, boto3's credential chain (environment, "
                      "~/.aws/credentials, an instance or task role)", secret=True)
    yield SettingSpec("s3_secret_access_key", str | None, None,
                      "the secret key that goes with s3_access_key_id", secret=True)
    yield SettingSpec("s3_create_bucket", bool, False,
                      "create the bucket when it is missing (Celery never does)")
    yield SettingSpec("s3_conditional_writes", bool, True,
                      "use S3's conditional writes (If-None-Match, If-Match) for adds and "
                      "counters; off for a service that ignores them (s3rver): counters are "
                      "then not atomic")
