"""The plugin as users meet it: found through its entry point for Celery's dynamodb://, light to
import (``kernel plugins list`` imports no boto3), reading Celery's URL forms, clear about bad
URLs, and never showing a credential."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed, mask_url
from kernel.testing import check_distribution
from kernel_dynamodb.connection import parse_target, shown_url
from kernel_dynamodb.store import DynamoDBStore
from kernel_dynamodb.testing import MotoServer


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_kernel_plugins_list_imports_no_boto3() -> None:
    code = ("import sys, runpy; sys.argv = ['kernel', 'plugins', 'list', '--json']\n"
            "try:\n    runpy.run_module('kernel', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('boto3', 'botocore', 'kernel_dynamodb.store') "
            "if m in sys.modules)\n"
            "print('\\nHEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    listing, heavy = out.rsplit("\nHEAVY ", 1)
    [info] = [i for i in json.loads(listing) if i["name"] == "dynamodb"]
    assert info["status"] == "ok" and info["distribution"] == "kernel-dynamodb", info
    assert heavy.strip() == "[]", f"listing plugins imported {heavy.strip()}"


def test_app_selects_the_store_by_celerys_scheme(dynamodb_url: str) -> None:
    app = App("plugin-test", broker="memory://", results=dynamodb_url)
    try:
        assert isinstance(app.backend.store, DynamoDBStore)
    finally:
        app.close()


def test_celerys_url_forms() -> None:
    full = parse_target("dynamodb://AKID:se%2Fcret@us-west-2/results?read=5&write=7", None)
    assert (full.region, full.endpoint, full.table) == ("us-west-2", None, "results")
    assert (full.key, full.secret, full.read, full.write) == ("AKID", "se/cret", 5, 7)
    local = parse_target("dynamodb://@localhost:8000", None)
    assert (local.endpoint, local.region, local.table, local.key) == \
        ("http://localhost:8000", "us-east-1", "celery", None), "Celery's DynamoDB Local form"
    assert parse_target("dynamodb://@10.0.0.5:8000/t", None).endpoint == "http://10.0.0.5:8000"
    chain = parse_target("dynamodb://", None)
    assert (chain.region, chain.endpoint, chain.key, chain.read) == (None, None, None, 1)
    assert parse_target("dynamodb://@us-east-1/t", "http://127.0.0.1:9").endpoint == \
        "http://127.0.0.1:9", "the dynamodb_endpoint_url setting wins, as in Celery"
    assert parse_target("dynamodb://@us-east-1/t?ttl_seconds=-1", None).ttl_seconds == -1


@pytest.mark.parametrize(("url", "match"), [
    ("dynamodb://onlykey@us-east-1/t", "only one of the access key"),
    ("dynamodb://@localhost/t", "without its port"),
    ("dynamodb://@localhost:port/t", "port .* is not a number"),
    ("dynamodb://@us-east-1/t?read=0", "read capacity units"),
    ("dynamodb://@us-east-1/t?write=many", "write capacity units"),
    ("dynamodb://@us-east-1/t?ttl_seconds=1d", "ttl_seconds"),
    ("dynamo://@us-east-1/t", "not a DynamoDB URL"),
])
def test_a_bad_url_is_refused_with_a_sentence(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        DynamoDBStore(url, {})


def test_an_unquoted_secret_is_not_shown() -> None:
    with pytest.raises(ConfigurationError) as info:
        DynamoDBStore("dynamodb://AKID:ab/cd+ef@127.0.0.1:8000/t", {})
    assert "ab/cd" not in str(info.value) and "URL-quoted" in str(info.value)
    assert shown_url("dynamodb://AKID:ab/c@d@h:1/t") == "dynamodb://**@h:1/t"


def test_credentials_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    url = "dynamodb://AKIDSHOWNOT:s3cr3t%2Fkey@127.0.0.1:1/results"
    assert mask_url(url) == "dynamodb://AKIDSHOWNOT:**@127.0.0.1:1/results", \
        "banners and logs show URLs through mask_url"
    store = DynamoDBStore(url, {"connection_timeout": 0.5})
    assert "s3cr3t" not in repr(store) and "AKIDSHOWNOT" not in repr(store)
    caplog.set_level(logging.DEBUG, logger="kernel")
    with pytest.raises(ConnectionFailed) as info:
        store.get("celery-task-meta-x")
    message = str(info.value)
    assert "s3cr3t" not in message and "did not take a request" in message, message
    assert "s3cr3t" not in caplog.text


def test_celerys_endpoint_setting_through_the_app(moto: MotoServer,
                                                  make_store: Callable[..., DynamoDBStore],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = make_store("dynamodb://@eu-west-1/by-setting", dynamodb_endpoint_url=moto.endpoint)
    store.set([("k", b"v")], None)
    assert store.get("k") == b"v" and store.target.region == "eu-west-1"
    assert moto.endpoint in store.target.where(), "the setting's endpoint, the URL's region"


def test_the_endpoint_from_boto3s_own_variable(moto: MotoServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``AWS_ENDPOINT_URL_DYNAMODB`` (boto3's own setting) points a region URL at moto: the
    same URL runs against the cloud and an emulator."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = DynamoDBStore("dynamodb://@us-east-1/by-env", {})
    try:
        store.set([("k", b"v")], None)
        tables = moto.client().list_tables()["TableNames"]  # type: ignore[attr-defined]
        assert "by-env" in tables and store.get("k") == b"v"
        assert moto.endpoint in store.target.where()
    finally:
        store.close()
