"""The plugin as users meet it: found through its entry point for Celery's s3://, configured by
Celery's settings, light to import, clear about bad URLs and settings, never showing a secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed
from kernel.testing import check_distribution
from kernel_s3.store import S3Store


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_listing_plugins_imports_no_boto3() -> None:
    code = ("import sys\nfrom kernel.cli import main\n"
            "try:\n    main(['plugins', 'list'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('boto3', 'botocore', 'kernel_s3.store') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert "s3" in done.stdout, done.stdout + done.stderr
    assert "LOADED []" in done.stdout, "kernel plugins list must not import boto3: " + \
        done.stdout[-300:]


def test_app_selects_the_store_by_celerys_scheme_and_settings(
        s3_options: dict[str, Any]) -> None:
    app = App("plugin-test", broker="memory://", results="s3://", config=s3_options)
    try:
        store = app.backend.store
        assert isinstance(store, S3Store) and store.bucket == s3_options["s3_bucket"]
        store.set([("k", b"v")], None)
        assert store.get("k") == b"v"
    finally:
        app.close()


def test_the_url_may_name_the_bucket_and_base_path() -> None:
    store = S3Store("s3://results/celery/", {})
    assert (store.bucket, store.prefix) == ("results", "celery/")
    assert store.object_name("celery-task-meta-1") == "celery/celery-task-meta-1"


def test_the_base_path_is_joined_as_celery_joins_it() -> None:
    store = S3Store("s3://", {"s3_bucket": "b", "s3_base_path": "results-"})
    assert store.object_name("celery-task-meta-1") == "results-celery-task-meta-1"


@pytest.mark.parametrize("url, options, match", [
    ("s3://", {}, "needs a bucket: set s3_bucket"),
    ("s3://a", {"s3_bucket": "b"}, "names the bucket 'a' and s3_bucket 'b'"),
    ("s3://key:secret@bucket", {}, "credentials go in s3_access_key_id"),
    ("s3://", {"s3_bucket": "b", "s3_access_key_id": "AKIA"}, "only one of"),
])
def test_bad_settings_are_refused_with_a_sentence(url: str, options: dict[str, Any],
                                                  match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        S3Store(url, options)
    assert "secret" not in str(info.value).replace("s3_secret_access_key", "")


def test_credentials_are_never_shown() -> None:
    store = S3Store("s3://", {"s3_bucket": "b", "s3_endpoint_url": "http://127.0.0.1:1",
                              "s3_region": "us-east-1", "s3_access_key_id": "AKIAKERNELTEST",
                              "s3_secret_access_key": "s3cretValue", "connection_timeout": 0.5})
    assert "s3cretValue" not in repr(store) and "AKIAKERNELTEST" not in repr(store)
    with pytest.raises(ConnectionFailed) as info:
        store.get("celery-task-meta-x")
    text = str(info.value)
    assert "s3cretValue" not in text and "AKIAKERNELTEST" not in text
    assert "cannot read 'celery-task-meta-x' in the S3 bucket 'b' at http://127.0.0.1:1" in text
