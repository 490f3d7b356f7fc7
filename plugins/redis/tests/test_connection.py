"""Connection URLs beyond redis://: TLS (rediss://, with Celery-style ssl settings) against a
real TLS redis-server, and Sentinel (redis+sentinel://) against a real Sentinel; bad URLs and
settings are refused with a sentence."""

from __future__ import annotations

import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed
from kernel.interfaces.transport import Outgoing
from kernel.testing.servers import free_port, need_binary
from kernel.testing.transport import make_envelope, wait_for
from kernel_redis.connection import parse_url
from kernel_redis.results import RedisResultStore
from kernel_redis.schedule import RedisScheduleStore
from kernel_redis.transport import RedisTransport
from kernel_redis.testing import RedisServer

# ------------------------------------------------------------------------ parsing


def test_sentinel_url_names_hosts_service_db_and_password() -> None:
    target = parse_url("redis+sentinel://:pw%40x@10.0.0.1:26380,[::1]:26381,s3/mymaster?db=4", {})
    assert target.sentinels == [("10.0.0.1", 26380), ("::1", 26381), ("s3", 26379)]
    assert (target.service, target.db, target.password, target.tls) == ("mymaster", 4, "pw@x",
                                                                         False)
    assert parse_url("rediss+sentinel://h:1/svc/2", {}).db == 2
    assert parse_url("rediss+sentinel://h:1/svc/2", {}).tls


@pytest.mark.parametrize("url, complaint", [
    ("redis+sentinel://h:1/", "service"),
    ("redis+sentinel://h:x/svc", "must be numbers"),
    ("redis+sentinel://h:1/svc?db=1&colour=red", "colour"),
    ("memcached://h:1", "not a Redis URL"),
])
def test_bad_urls_are_refused_with_a_sentence(url: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        parse_url(url, {})


def test_ssl_settings_map_to_redis_py(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    target = parse_url("rediss://h:6380/0?ssl_cert_reqs=CERT_OPTIONAL",
                       {"ssl": {"ssl_ca_certs": str(ca), "ssl_check_hostname": "false"}})
    assert target.ssl == {"ssl_cert_reqs": ssl.CERT_OPTIONAL, "ssl_ca_certs": str(ca),
                          "ssl_check_hostname": False}
    with pytest.raises(ConfigurationError, match="ssl_ca_certs names '/no/ca.pem', which is "
                                                 "not a readable file"):
        parse_url("rediss://h", {"ssl": {"ssl_ca_certs": "/no/ca.pem"}})
    assert parse_url("rediss://h", {"ssl": {"ssl_cert_reqs": ssl.CERT_NONE}}).ssl == {
        "ssl_cert_reqs": ssl.CERT_NONE}
    with pytest.raises(ConfigurationError, match="required, optional or none"):
        parse_url("rediss://h", {"ssl": {"ssl_cert_reqs": "sometimes"}})
    with pytest.raises(ConfigurationError, match="unknown TLS setting 'ssl_ciphers'"):
        parse_url("rediss://h", {"ssl": {"ssl_ciphers": "ALL"}})
    with pytest.raises(ConfigurationError, match="need a rediss:// URL"):
        parse_url("redis://h?ssl_cert_reqs=none", {})


# ------------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    openssl = need_binary("openssl")
    d = tmp_path_factory.mktemp("tls")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for command in (
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=test-ca",
        "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt "
        "-days 1 -extfile san.ext",
    ):
        subprocess.run([openssl, *command.split()], cwd=d, check=True, capture_output=True)
    return d


@pytest.fixture(scope="module")
def tls_port(certificates: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    server = RedisServer(
        tmp_path_factory.mktemp("tls-redis"),
        extra=("--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no",
               "--tls-cert-file", str(certificates / "server.crt"),
               "--tls-key-file", str(certificates / "server.key"),
               "--tls-ca-cert-file", str(certificates / "ca.crt")),
        probe={"port": port, "ssl": True, "ssl_ca_certs": str(certificates / "ca.crt")})
    server.start()
    yield port
    server.kill()


def test_tls_transport_and_result_store(tls_port: int, certificates: Path) -> None:
    ca = str(certificates / "ca.crt")
    queue = f"tls-{uuid.uuid4().hex}"
    t = RedisTransport(f"rediss://127.0.0.1:{tls_port}/0",
                       {"ssl": {"ssl_cert_reqs": "required", "ssl_ca_certs": ca}})
    store = RedisResultStore(f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=required"
                             f"&ssl_ca_certs={ca}")
    try:
        t.publish([Outgoing(queue, make_envelope(1))])
        (got,) = t.fetch([queue], 1, 5)
        assert got.envelope.headers["id"] == "m-1"
        t.ack([got])
        store.set([("tls-key", b"v")], 60)
        assert store.get("tls-key") == b"v"
    finally:
        t.close()
        store.close()


def test_tls_refuses_a_server_it_cannot_verify(tls_port: int) -> None:
    t = RedisTransport(f"rediss://127.0.0.1:{tls_port}/0",
                       {"ssl": {"ssl_cert_reqs": "required"}, "retries": 0})
    try:
        with pytest.raises(ConnectionFailed, match="cannot reach Redis"):
            t.size("q")  # the test CA is not in the system store
    finally:
        t.close()


# ------------------------------------------------------------------------ Sentinel


@pytest.fixture(scope="module")
def sentinel_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    master = RedisServer(tmp_path_factory.mktemp("master")).start()
    directory = tmp_path_factory.mktemp("sentinel")
    config = directory / "sentinel.conf"
    config.write_text(f"sentinel monitor kernel-test 127.0.0.1 {master.port} 1\n")
    sentinel = RedisServer(directory, config=config, extra=("--sentinel",)).start()
    yield sentinel.port
    sentinel.kill()
    master.kill()


def test_sentinel_finds_the_master_for_every_capability(sentinel_port: int) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinel_port}/kernel-test?db=3"
    queue = f"sentinel-{uuid.uuid4().hex}"
    app = App("sentinel", broker=url, results=url, config={"task_default_queue": queue})
    schedule = RedisScheduleStore(url, {"schedule_key": f"sched-{queue}"})
    try:
        assert isinstance(app.transport, RedisTransport)
        app.transport.publish([Outgoing(queue, make_envelope(1))])
        (got,) = app.transport.fetch([queue], 1, 5)
        assert got.envelope.headers["id"] == "m-1"
        app.transport.ack([got])
        assert app.backend.store is not None
        app.backend.store.set([("sentinel-key", b"v")], 60)
        assert app.backend.store.get("sentinel-key") == b"v"
        assert schedule.acquire("beat", 10) == 1
    finally:
        schedule.close()
        app.close()


def test_unknown_sentinel_service_is_connection_failed(sentinel_port: int) -> None:
    t = RedisTransport(f"redis+sentinel://127.0.0.1:{sentinel_port}/nobody", {"retries": 0})
    try:
        with pytest.raises(ConnectionFailed, match="cannot reach Redis"):
            t.size("q")
    finally:
        t.close()


def test_a_subscription_survives_a_dropped_connection(redis_url: str,
                                                      raw_redis: redis.Redis) -> None:
    """Events and remote control keep flowing after Redis drops the subscriber's connection:
    the subscription reconnects and subscribes again by itself."""
    from kernel_redis.broadcast import RedisSubscription

    exchange = f"drop-{uuid.uuid4().hex[:10]}"
    transport = RedisTransport(redis_url, {})
    sub = transport.subscribe(exchange)
    try:
        assert isinstance(sub, RedisSubscription)
        host, port = sub._pubsub.connection._sock.getsockname()[:2]  # type: ignore[union-attr]
        assert raw_redis.client_kill(f"{host}:{port}"), "the subscriber's connection was not found"

        def delivered() -> bool:
            transport.broadcast(exchange, "k", make_envelope(1))
            return bool(sub.get(0.2))

        wait_for(delivered, timeout=10, message="a broadcast after the connection was killed")
    finally:
        sub.close()
        transport.close()


def test_a_store_keeps_a_connection_for_every_slot_of_a_big_worker(redis_url: str) -> None:
    # 500 greenlets of -P gevent may write results at once; redis-py alone keeps 100.
    app = App("slots", broker="memory://", results=redis_url,
              config={"worker_concurrency": 500})
    try:
        store = app.backend.store
        assert isinstance(store, RedisResultStore)
        assert store._client.connection_pool.max_connections >= 500
        assert store._writer.connection_pool.max_connections >= 500
    finally:
        app.close()
