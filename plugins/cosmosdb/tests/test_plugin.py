"""The plugin as users meet it: found through its entry point for Celery's cosmosdbsql://, light
to import (listing plugins imports no azure module), declaring what it registers, clear about
bad URLs and settings, and never showing the account key."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed
from kernel.testing import check_distribution
from kernel_cosmosdb.settings import CosmosSettings
from kernel_cosmosdb.store import CosmosDBStore
from kernel_cosmosdb.testing import KEY

LISTS_PLUGINS = """
import json, sys
from kernel.cli import main
sys.argv = ["kernel", "plugins", "list", "--json"]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules
                        if m.split(".")[0] == "azure" or m == "kernel_cosmosdb.store")),
      file=sys.stderr)
"""


def test_kernel_plugins_list_shows_it_and_imports_no_azure_module() -> None:
    done = subprocess.run([sys.executable, "-c", LISTS_PLUGINS], capture_output=True,
                          text=True, check=True)
    [info] = [i for i in json.loads(done.stdout) if i["name"] == "cosmosdb"]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == "kernel-cosmosdb"
    imported = json.loads(done.stderr.strip().splitlines()[-1])
    assert imported == [], f"`kernel plugins list` must not import azure-cosmos: {imported}"


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_app_selects_the_store_by_celerys_scheme_and_passes_celerys_settings(
        cosmos_url: str) -> None:
    app = App("plugin-test", broker="memory://", results=cosmos_url,
              config={"cosmosdbsql_collection_name": "kernelcol",
                      "cosmosdbsql_consistency_level": "Eventual"})
    try:
        store = app.backend.store
        assert isinstance(store, CosmosDBStore)
        assert store.settings.container == "kernelcol"
        assert store.settings.consistency_level == "Eventual"
        assert store.settings.max_retry_attempts == 9 and store.settings.max_retry_wait_time == 30
    finally:
        app.close()


def test_celerys_url_form() -> None:
    key = quote(KEY, safe="")
    cloud = CosmosSettings.parse(f"cosmosdbsql://:{key}@acct.documents.azure.com")
    assert cloud.endpoint == "https://acct.documents.azure.com:443" and cloud.key == KEY
    assert (cloud.database, cloud.container, cloud.consistency_level) == \
        ("celerydb", "celerycol", "Session"), "Celery's defaults"
    assert cloud.verify_tls and cloud.endpoint_discovery, "TLS is verified unless told not to"
    assert CosmosSettings.parse(f"cosmosdbsql://{key}@h:8081").endpoint == "http://h:8081", \
        "another port is plain HTTP, as in Celery; the key may be the user part"
    emulator = CosmosSettings.parse(f"cosmosdbsql://:{key}@127.0.0.1:8081?scheme=https"
                                    f"&tls_verify=false")
    assert emulator.endpoint == "https://127.0.0.1:8081" and not emulator.verify_tls


@pytest.mark.parametrize("url, match", [
    ("cosmosdbsql://", "not a Cosmos DB URL"),
    ("cosmosdbsql://acct.documents.azure.com", "no account key"),
    ("cosmosdbsql://:k@h:port", "port"),
    ("cosmosdbsql://:k@h?scheme=ftp", "must be https or http"),
    ("cosmosdbsql://:k@h?cosmosdbsql_consistency_level=Firm", "not one of Cosmos DB's"),
    ("cosmosdbsql://:k@h?cosmosdbsql_collection_name=a/b", "not a Cosmos DB resource name"),
])
def test_a_bad_url_is_refused_with_a_sentence(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CosmosDBStore(url, {})


def test_the_key_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    url = f"cosmosdbsql://:{quote(KEY, safe='')}@127.0.0.1:1?scheme=https"
    store = CosmosDBStore(url, {"connection_timeout": 0.5})
    secrets = (KEY, quote(KEY, safe=""))
    caplog.set_level(logging.DEBUG)
    try:
        assert not any(s in repr(store) or s in repr(store.settings) for s in secrets)
        with pytest.raises(ConnectionFailed) as info:
            store.get("celery-task-meta-x")
        assert "cannot reach Cosmos DB" in str(info.value)
        assert not any(s in str(info.value) for s in secrets), "the key in an error"
        assert not any(s in caplog.text for s in secrets), "the key in a log line"
    finally:
        store.close()


def test_the_key_is_in_no_log_line_of_a_working_store(cosmos_url: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # azure-core logs each request and its headers there
    store = CosmosDBStore(cosmos_url, {})
    try:
        store.set([("k", b"v")], None)
        assert store.get("k") == b"v"
    finally:
        store.close()
    assert "Request URL" in caplog.text, "the client's request log was captured"
    assert KEY not in caplog.text and quote(KEY, safe="") not in caplog.text
