"""`kernel.plugin.mask_url`, what banners, logs and errors show of a URL: no password, no
secret query parameter or connection-string field, also when the password holds an unquoted
"/" (AWS secret keys do), which ends a URL's host part early."""

from __future__ import annotations

import pytest

from kernel.plugin import mask_url


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:pw@h:1/0", "redis://:**@h:1/0"),
    ("db+postgresql://u:pw@h/db", "db+postgresql://u:**@h/db"),
    ("redis://h:1/0", "redis://h:1/0"),
    ("dynamodb://@localhost:8000", "dynamodb://**@localhost:8000"),
    ("dynamodb://AKID:ab/cd+ef@127.0.0.1:8000/t", "dynamodb://AKID:**@127.0.0.1:8000/t"),
    ("dynamodb://AKID:a/b/c@us-east-1/t?read=1", "dynamodb://AKID:**@us-east-1/t?read=1"),
    ("file:///tmp/a@b", "file:///tmp/a@b"),
    ("s3://bucket/a@b", "s3://bucket/a@b"),
    ("mongodb://h/db?password=pw", "mongodb://h/db?password=**"),
    ("azureblockblob://AccountName=a;AccountKey=x/y==;EndpointSuffix=s",
     "azureblockblob://AccountName=a;AccountKey=**;EndpointSuffix=s"),
])
def test_secrets_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
