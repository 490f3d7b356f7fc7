"""The plugin as users meet it: found through its entry point for Celery's sqs://, light to
import (``kernel plugins list`` imports no boto3), reading Celery's URL forms and transport
options, naming queues as kombu does, clear about bad settings, and never showing a
credential."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed
from kernel.testing import check_distribution
from kernel_sqs.connection import read_settings
from kernel_sqs.names import entity_name
from kernel_sqs.testing import SQSServer
from kernel_sqs.transport import SQSTransport


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_kernel_plugins_list_imports_no_boto3() -> None:
    code = ("import sys, runpy; sys.argv = ['kernel', 'plugins', 'list', '--json']\n"
            "try:\n    runpy.run_module('kernel', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('boto3', 'botocore', 'kernel_sqs.transport') "
            "if m in sys.modules)\n"
            "print('\\nHEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    listing, heavy = out.rsplit("\nHEAVY ", 1)
    [info] = [i for i in json.loads(listing) if i["name"] == "sqs"]
    assert info["status"] == "ok" and info["distribution"] == "kernel-sqs", info
    assert heavy.strip() == "[]", f"listing plugins imported {heavy.strip()}"


def test_app_selects_the_transport_by_celerys_scheme(sqs_url: str) -> None:
    app = App("plugin-test", broker=sqs_url, results=None,
              config={"transport_options": {"region": "eu-west-1"}})
    try:
        transport = app.transport
        assert isinstance(transport, SQSTransport)
        assert transport.settings.region == "eu-west-1", "Celery's option name 'region'"
        assert transport.lease_seconds == 30.0, "the worker's lease: worker_lease_seconds"
    finally:
        app.close()


def test_queue_names_are_kombus() -> None:
    """kombu's table (dots to dashes, other punctuation to underscores, ``.fifo`` kept) is the
    oracle: a Celery client and a kernel worker must meet on one SQS queue."""
    from kombu.transport.SQS import CHARS_REPLACE_TABLE

    for name in ["celery", "celery.high", "a:b/c@d", "x-y_z", "tasks.fifo", "t.x.fifo",
                 "with space", "q" + string.punctuation.replace(" ", "")[:20]]:
        stem, fifo = (name[:-5], ".fifo") if name.endswith(".fifo") else (name, "")
        kombus = stem.translate(CHARS_REPLACE_TABLE) + fifo
        if " " in name:
            with pytest.raises(ConfigurationError, match="has no SQS name"):
                entity_name(name)
            continue
        assert entity_name(name) == kombus, name
    assert entity_name("celery", "prod-") == "prod-celery", "queue_name_prefix goes first"
    assert entity_name("orders.fifo.dead") == "orders-fifo-dead", \
        "a FIFO queue's dead letters go to a standard queue"
    with pytest.raises(ConfigurationError, match="up to 80"):
        entity_name("q" * 81)


def test_celerys_url_forms_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    chain = read_settings("sqs://", {})
    assert (chain.key, chain.secret, chain.endpoint) == (None, None, None), \
        "sqs:// takes boto3's credential chain and the region's endpoint"
    keys = read_settings("sqs://AKID:se%2Fcr%2Bet@", {"region": "ap-south-1"})
    assert (keys.key, keys.secret, keys.region) == ("AKID", "se/cr+et", "ap-south-1")
    local = read_settings("sqs://a:b@localhost:4566", {})
    assert local.endpoint == "http://localhost:4566", "kombu's form: the host is the endpoint"
    assert read_settings("sqs://a:b@h:1", {"is_secure": True}).endpoint == "https://h:1"
    assert read_settings("sqs://", {"endpoint_url": "http://e:9"}).endpoint == "http://e:9"
    full = read_settings("sqs://", {
        "queue_name_prefix": "p-", "visibility_timeout": 60, "wait_time_seconds": 20,
        "polling_interval": 0.5, "sts_role_arn": "arn:aws:iam::123456789012:role/r",
        "predefined_queues": {"celery": {"url": "https://sqs.x/1/celery",
                                         "access_key_id": "k", "secret_access_key": "s"}}})
    assert (full.prefix, full.visibility_timeout, full.wait_time_seconds,
            full.polling_interval) == ("p-", 60, 20, 0.5)
    assert full.sts_role_arn == "arn:aws:iam::123456789012:role/r"
    assert full.predefined["celery"].url == "https://sqs.x/1/celery"
    assert full.predefined["celery"].key == "k"


def test_the_endpoint_from_boto3s_own_variable(moto: SQSServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto.endpoint)
    transport = SQSTransport("sqs://testing:testing@", {"wait_time_seconds": 0})
    try:
        assert transport.size("env-endpoint") == 0
        assert moto.aws_client("sqs").get_queue_url(QueueName="env-endpoint")["QueueUrl"], \
            "the queue was made on the endpoint AWS_ENDPOINT_URL_SQS names"
    finally:
        transport.close()


@pytest.mark.parametrize(("url", "options", "match"), [
    ("sqs://onlykey@", {}, "only one of the access key"),
    ("sqs://a:b@h:port", {}, "port .* is not a number"),
    ("amqp://", {}, "not an SQS URL"),
    ("sqs://", {"wait_time_seconds": 21}, "0 to 20"),
    ("sqs://", {"visibility_timeout": "long"}, "visibility_timeout"),
    ("sqs://", {"predefined_queues": {"q": {}}}, r"must give the queue's 'url'"),
    ("sqs://", {"predefined_queues": {"q.fifo": {"url": "https://x/1/q"}}}, "end in .fifo"),
])
def test_bad_settings_are_refused_with_a_sentence(url: str, options: dict[str, object],
                                                  match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        SQSTransport(url, options)


def test_credentials_never_shown() -> None:
    transport = SQSTransport("sqs://AKIDSHOWNOT:s3cr3t%2Fkey@127.0.0.1:1",
                             {"connection_timeout": 0.5})
    try:
        assert "s3cr3t" not in repr(transport) and "AKIDSHOWNOT" not in repr(transport)
        with pytest.raises(ConnectionFailed) as info:
            transport.size("q")
        message = str(info.value)
        assert "s3cr3t" not in message and "AKIDSHOWNOT" not in message
        assert "did not take" in message and "127.0.0.1:1" in message, message
    finally:
        transport.close()


def test_events_and_remote_control_say_they_are_unavailable(sqs_url: str) -> None:
    """SQS has no fanout: ``kernel inspect`` and ``kernel events`` refuse with a sentence."""
    for command in (["inspect", "ping"], ["events", "--timeout", "1"]):
        done = subprocess.run([sys.executable, "-m", "kernel", "--broker", sqs_url, *command],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0, done.stdout
        assert "this broker cannot broadcast" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
