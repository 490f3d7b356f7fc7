"""The plugin distributions of this repository (``plugins/*``) and what each provides, so that
a capability no installed plugin serves gets the right sentence: ``install kernel[redis]`` for
one of ours that is not installed, "switched off" for one that is disabled, and no extra at all
for a name none of ours provides.

One source of truth: each distribution's ``pyproject.toml`` declares its extra and what it
provides under ``[tool.kernel]``; tests/meta/test_meta_distributions.py checks this table, the
root extras and the uv sources against those files, and each plugin's own tests check its
``[tool.kernel]`` against what it registers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Distribution:
    #: the distribution's name on PyPI, e.g. "kernel-redis".
    name: str
    #: the extra of ``kernel`` that installs it: ``kernel[redis]``.
    extra: str
    #: its entry point's name in group ``kernel.plugins`` (what ``-p no:NAME`` takes).
    entry_point: str
    #: kind of record ("transport", "result store", ...) → the keys it registers.
    provides: Mapping[str, tuple[str, ...]]
    #: other extras of ``kernel`` that install it with an extra of its own, for the keys
    #: that need it: ``kernel[opensearch]`` is ``kernel-elasticsearch[opensearch]``.
    other_extras: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


_REDIS = ("redis", "rediss", "redis+sentinel", "rediss+sentinel")
_SQL = ("db+postgresql", "db+postgresql+psycopg", "db+postgresql+psycopg2", "db+mysql",
        "db+mysql+pymysql", "db+mysql+mysqldb", "db+mariadb", "db+mariadb+pymysql", "db+sqlite")

DISTRIBUTIONS: tuple[Distribution, ...] = (
    Distribution("kernel-amqp", "amqp", "amqp", {
        "transport": ("amqp", "amqps", "pyamqp"),
        "result store": ("rpc",),
    }),
    Distribution("kernel-arangodb", "arangodb", "arangodb", {
        "result store": ("arangodb",),
    }),
    Distribution("kernel-azure-blob", "azureblockblob", "azureblockblob", {
        "result store": ("azureblockblob",),
    }),
    Distribution("kernel-cassandra", "cassandra", "cassandra", {
        "result store": ("cassandra",),
    }),
    Distribution("kernel-cosmosdb", "cosmosdbsql", "cosmosdb", {
        "result store": ("cosmosdbsql",),
    }),
    Distribution("kernel-couchbase", "couchbase", "couchbase", {
        "result store": ("couchbase",),
    }),
    Distribution("kernel-couchdb", "couchdb", "couchdb", {
        "result store": ("couchdb",),
    }),
    Distribution("kernel-django", "django", "django", {
        "result store": ("django-db",),
    }),
    Distribution("kernel-dynamodb", "dynamodb", "dynamodb", {
        "result store": ("dynamodb",),
    }),
    Distribution("kernel-elasticsearch", "elasticsearch", "elasticsearch", {
        "result store": ("elasticsearch", "elasticsearch+http", "elasticsearch+https",
                         "opensearch", "opensearch+http", "opensearch+https"),
    }, other_extras={"opensearch": ("opensearch", "opensearch+http", "opensearch+https")}),
    Distribution("kernel-eventlet", "eventlet", "eventlet", {
        "pool": ("eventlet",),
    }),
    Distribution("kernel-gcs", "gcs", "gcs", {
        "result store": ("gs",),
    }),
    Distribution("kernel-gevent", "gevent", "gevent", {
        "pool": ("gevent",),
    }),
    Distribution("kernel-memcached", "memcached", "memcached", {
        "result store": ("cache+memcached", "cache+memcache", "cache+pymemcache",
                         "cache+pylibmc"),
    }),
    Distribution("kernel-mongodb", "mongodb", "mongodb", {
        "result store": ("mongodb", "mongodb+srv"),
    }),
    Distribution("kernel-msgpack", "msgpack", "msgpack", {
        "serializer": ("msgpack",),
    }),
    Distribution("kernel-redis", "redis", "redis", {
        "transport": _REDIS,
        "result store": _REDIS,
        "schedule store": _REDIS,
        "rate-limit store": _REDIS,
    }),
    Distribution("kernel-riak", "riak", "riak", {
        "result store": ("riak",),
    }),
    Distribution("kernel-s3", "s3", "s3", {
        "result store": ("s3",),
    }),
    Distribution("kernel-signing", "signing", "signing", {
        "signer": ("auth", "hmac"),
    }),
    Distribution("kernel-sqlalchemy", "sqlalchemy", "sqlalchemy", {
        "result store": _SQL,
        "schedule store": _SQL,
    }),
    Distribution("kernel-sqs", "sqs", "sqs", {
        "transport": ("sqs",),
    }),
    Distribution("kernel-yaml", "yaml", "yaml", {
        "serializer": ("yaml",),
    }),
)


def _providers() -> Mapping[str, Mapping[str, tuple[str, str, str]]]:
    table: dict[str, dict[str, tuple[str, str, str]]] = {}
    for dist in DISTRIBUTIONS:
        extra_of = {key: extra for extra, keys in dist.other_extras.items() for key in keys}
        for kind, keys in dist.provides.items():
            for key in keys:
                table.setdefault(kind, {})[key] = (dist.entry_point, dist.name,
                                                   extra_of.get(key, dist.extra))
    return MappingProxyType({kind: MappingProxyType(keys) for kind, keys in table.items()})


#: kind → key → (entry point, distribution, extra).
PROVIDERS = _providers()
