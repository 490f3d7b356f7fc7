"""One way to open a Redis client from a URL, shared by the transport, the result store and the
schedule store: redis-py retries with exponential backoff on connection errors and timeouts;
what still fails becomes `kernel.errors.ConnectionFailed` with a sentence, never a redis-py
traceback.

URLs:

* ``redis://[[user]:password@]host[:port][/db]``; ``rediss://`` the same over TLS;
* ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[?db=N]``: ask the
  Sentinels for the current master of `service` (and ask again after a failover);
  ``rediss+sentinel://`` talks TLS to the master and the Sentinels. The password is the
  master's; option ``sentinel_password`` is the Sentinels' own, if they have one.

TLS settings come from option ``ssl`` (a mapping, Celery's ``broker_use_ssl`` form) or the URL
query: ``ssl_cert_reqs`` (``required`` | ``optional`` | ``none``, or an ``ssl.CERT_*``),
``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.client import PubSub
from redis.retry import Retry
from redis.sentinel import Sentinel

from kernel.plugin import (
    ConfigurationError,
    ConnectionFailed,
    OptionReader,
    Options,
    mask_url,
    retry_within,
    tls_settings,
)


T = TypeVar("T")


def as_bytes(value: bytes | str) -> bytes:
    """A reply as bytes (the clients never decode responses; redis-py types them loosely)."""
    return value if isinstance(value, bytes) else value.encode()


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


#: the TLS settings a Redis URL or the ``ssl`` option takes (redis-py's names).
SSL_KEYS = ("ca_certs", "certfile", "keyfile", "cert_reqs", "check_hostname")


@dataclass
class Target:
    """A parsed Redis URL: where to connect and how."""

    tls: bool
    sentinels: list[tuple[str, int]] = field(default_factory=list)  # empty: a direct URL
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: dict[str, Any] = field(default_factory=dict)


def parse_url(url: str, options: Options) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "redis+sentinel", "rediss+sentinel"):
        raise ConfigurationError(
            f"{mask_url(url)!r} is not a Redis URL; write redis://host:port/db, "
            f"rediss://host:port/db or redis+sentinel://host:port/service?db=N")
    query = dict(parse_qsl(parts.query))
    settings = {k: query.pop(k) for k in [f"ssl_{key}" for key in SSL_KEYS] if k in query}
    given = options.get("ssl") or {}
    if not isinstance(given, dict):
        raise ConfigurationError(f"Redis option 'ssl' must be a mapping of "
                                 f"{', '.join('ssl_' + k for k in SSL_KEYS)}, got {given!r}")
    settings.update(given)
    target = Target(tls=parts.scheme.startswith("rediss"),
                    ssl=tls_settings(settings, f"the TLS settings of {mask_url(url)}",
                                     accept=SSL_KEYS, prefix="ssl_"))
    if target.ssl and not target.tls:
        raise ConfigurationError(f"TLS settings need a rediss:// URL, not {mask_url(url)!r}")
    if not parts.scheme.endswith("+sentinel"):
        return target
    creds, _, hosts = parts.netloc.rpartition("@")
    user, _, password = creds.partition(":")
    target.username, target.password = unquote(user) or None, unquote(password) or None
    path = parts.path.strip("/").split("/")
    target.service = unquote(path[0])
    try:
        target.db = int(query.pop("db", path[1] if len(path) > 1 else 0))
        for host in filter(None, hosts.split(",")):
            name, sep, port = host.rpartition(":")
            if not sep or port.endswith("]"):  # no port: "host" or "[::1]"
                name, port = host, ""
            target.sentinels.append((name.strip("[]"), int(port or 26379)))
    except ValueError:
        raise ConfigurationError(f"bad Sentinel URL {mask_url(url)!r}: the db and the ports "
                                 f"must be numbers") from None
    if not target.service or not target.sentinels or query:
        raise ConfigurationError(
            f"bad Sentinel URL {mask_url(url)!r}: write redis+sentinel://host:port[,host:port]/"
            f"service[?db=N]" + (f" (unknown parameters {sorted(query)})" if query else ""))
    return target


def open_client(url: str, options: Options) -> redis.Redis:
    """A thread-safe client (a connection pool) for `url`.

    Options: ``retries`` (6) and ``retry_backoff_cap`` (2 s): how hard redis-py retries a command
    on a connection error before `ConnectionFailed`; ``socket_connect_timeout`` (5 s);
    ``socket_timeout`` (None: blocking reads wait as long as the command asks); ``ssl``;
    ``sentinel_password``; ``worker_concurrency``: the pool keeps up to 100 connections more
    than that, since every slot of a worker (500 greenlets of ``-P gevent``) may write at once
    (redis-py's default of 100 would refuse the 101st with "Too many connections").
    """
    target = parse_url(url, options)
    reader = OptionReader(options, "Redis")
    retry = Retry(ExponentialBackoff(cap=reader.number("retry_backoff_cap", 2.0), base=0.05),
                  reader.integer("retries", 6, minimum=0))
    timeout = reader.duration("socket_timeout", None)
    connect_timeout = reader.number("socket_connect_timeout", 5.0, positive=True)
    common: dict[str, Any] = dict(
        retry=retry, retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        socket_keepalive=True, health_check_interval=30,
        max_connections=100 + reader.integer("worker_concurrency", 0, minimum=0), **target.ssl)
    if not target.sentinels:
        direct = urlunsplit(urlsplit(url)._replace(query=""))
        try:
            return redis.Redis.from_url(direct, **common)
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis URL {mask_url(url)!r}: {exc}") from None
    tls = {"ssl": True, **target.ssl} if target.tls else {}
    sentinel = Sentinel(target.sentinels, sentinel_kwargs={  # type: ignore[no-untyped-call, unused-ignore]
        "socket_connect_timeout": connect_timeout, "socket_timeout": connect_timeout,
        "password": options.get("sentinel_password"), **tls})
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call, unused-ignore]
        target.service, redis_class=redis.Redis, db=target.db, username=target.username,
        password=target.password, **{**common, **tls})
    return client


def open_bounded_client(url: str, options: Options, timeout: float) -> redis.Redis:
    """A client for calls that must end within `timeout` seconds (`within`): no retries of
    its own, and each attempt's connect and read wait a quarter of it, so that two attempts
    fit and a silent server (a network cut) fails an attempt instead of hanging it."""
    return open_client(url, {**options, "retries": 0, "socket_timeout": timeout / 4,
                             "socket_connect_timeout": timeout / 4})


def within(timeout: float, url: str, attempt: Callable[[], T]) -> T:
    """`attempt()` (on an `open_bounded_client`), tried again with backoff on connection
    errors while another attempt fits before `timeout` seconds; then `ConnectionFailed`."""
    def failed(exc: BaseException) -> ConnectionFailed:
        return ConnectionFailed(
            f"cannot reach Redis at {mask_url(url)} within {timeout:g} s ({exc}); check the "
            f"server is up and the URL is right, or allow longer (broker_connection_timeout)")

    # An attempt takes at most half the timeout (connect, then read): one starts only in the
    # first half, so the last ends in time.
    return retry_within(timeout / 2, attempt, (redis.ConnectionError, redis.TimeoutError),
                        failed)


@contextmanager
def reachable(url: str) -> Iterator[None]:
    """Turn redis-py's connection failures (after its retries) into `ConnectionFailed`."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ConnectionFailed(
            f"cannot reach Redis at {mask_url(url)} ({exc}); check the server is up and the URL "
            f"is right (a worker keeps retrying)") from exc


def close_quietly(closable: redis.Redis | PubSub) -> None:
    """Close a client or subscriber; one whose server is gone has nothing left to release."""
    try:
        closable.close()
    except redis.RedisError:
        pass
