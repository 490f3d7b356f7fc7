"""One way to open a Redis client from a URL, shared by the transport and the result store:
redis-py retries with exponential backoff on connection errors and timeouts; what still fails
becomes `kernel.errors.ConnectionFailed` with a sentence, never a redis-py traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from kernel.errors import ConfigurationError, ConnectionFailed
from kernel.specs import Options


def safe_url(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def as_bytes(value: bytes | str) -> bytes:
    """A reply as bytes (the clients never decode responses; redis-py types them loosely)."""
    return value if isinstance(value, bytes) else value.encode()


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def number(options: Options, name: str, default: float) -> float:
    value = options.get(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"Redis option {name!r} must be a number, got {value!r}") from None


def open_client(url: str, options: Options) -> redis.Redis:
    """A thread-safe client (a connection pool) for `url`.

    Options: ``retries`` (6) and ``retry_backoff_cap`` (2 s): how hard redis-py retries a command
    on a connection error before `ConnectionFailed`; ``socket_connect_timeout`` (5 s);
    ``socket_timeout`` (None: blocking reads wait as long as the command asks).
    """
    if urlsplit(url).scheme not in ("redis", "rediss"):
        raise ConfigurationError(f"{safe_url(url)!r} is not a Redis URL; write "
                                 f"redis://host:port/db or rediss://host:port/db")
    retry = Retry(ExponentialBackoff(cap=number(options, "retry_backoff_cap", 2.0), base=0.05),
                  int(number(options, "retries", 6)))
    timeout = options.get("socket_timeout")
    try:
        return redis.Redis.from_url(
            url, retry=retry, retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            socket_connect_timeout=number(options, "socket_connect_timeout", 5.0),
            socket_timeout=None if timeout is None else float(timeout),
            socket_keepalive=True, health_check_interval=30)
    except ValueError as exc:
        raise ConfigurationError(f"bad Redis URL {safe_url(url)!r}: {exc}") from None


@contextmanager
def reachable(url: str) -> Iterator[None]:
    """Turn redis-py's connection failures (after its retries) into `ConnectionFailed`."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ConnectionFailed(
            f"cannot reach Redis at {safe_url(url)} ({exc}); check the server is up and the URL "
            f"is right (a worker keeps retrying)") from exc
