"""`mask_url`: what banners, logs and errors show of a URL never holds its secret."""

from __future__ import annotations

import pytest

from kernel.plugin import mask_url


@pytest.mark.parametrize("url, shown", [
    ("redis://:pw@h:6379/0", "redis://:**@h:6379/0"),
    ("redis://user:pw@h:6379/0?ssl_cert_reqs=none", "redis://user:**@h:6379/0?ssl_cert_reqs=none"),
    # no path: the query follows the host directly, and the password is masked all the same
    ("redis://:pw@h:6379?db=2", "redis://:**@h:6379?db=2"),
    ("cosmosdbsql://:k%2Bey@127.0.0.1:8081?scheme=https", "cosmosdbsql://:**@127.0.0.1:8081?scheme=https"),
    ("cosmosdbsql://k%2Bey@acct.documents.azure.com", "cosmosdbsql://**@acct.documents.azure.com"),
    ("sqs://h/q?token=abc&region=x", "sqs://h/q?token=**&region=x"),
    ("azureblockblob://DefaultEndpointsProtocol=http;AccountName=a;AccountKey=s3;",
     "azureblockblob://DefaultEndpointsProtocol=http;AccountName=a;AccountKey=**;"),
    ("memory://", "memory://"),
])
def test_secrets_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
