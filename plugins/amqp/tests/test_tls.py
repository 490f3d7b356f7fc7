"""TLS (``amqps://``) against a real RabbitMQ TLS listener: the private node's (`private_node`,
with a throwaway CA from `make_certificates`; it asks every client for a certificate of that CA).
Tasks travel, a worker runs one and its result comes back over rpc://; a broker the client cannot
verify, a client the broker cannot verify and a plain port are refused with a `ConnectionFailed`
that says what to check; bad ssl settings are a `ConfigurationError` before anything connects."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest

from kernel import App
from kernel.plugin import ConfigurationError, ConnectionFailed
from kernel.interfaces.transport import Outgoing
from kernel.testing.transport import make_envelope
from kernel.testing.workers import running_worker
from kernel_amqp.rpc import RpcResultStore
from kernel_amqp.transport import AmqpTransport
from kernel_amqp.testing import RabbitNode


def trusting(certificates: Path, **overrides: Any) -> dict[str, Any]:
    """Celery's broker_use_ssl form: the test CA, the client certificate, the hostname checked
    (None: the URL's host, 127.0.0.1, which the server certificate names)."""
    return {"ca_certs": str(certificates / "ca.crt"),
            "certfile": str(certificates / "client.crt"),
            "keyfile": str(certificates / "client.key"),
            "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": None, **overrides}


def test_tasks_travel_over_amqps(private_node: RabbitNode, certificates: Path) -> None:
    queue = f"tls-{uuid.uuid4().hex[:12]}"
    # cert_reqs by name, as a config file can write it.
    t = AmqpTransport(private_node.tls_url, {"ssl": trusting(certificates, cert_reqs="required")})
    try:
        t.publish([Outgoing(queue, make_envelope(1))])
        (got,) = t.fetch([queue], 1, 5)
        assert got.envelope.headers["id"] == "m-1"
        t.ack([got])
        assert t.size(queue) == 0
        assert t._link is not None
        sock = t._link.raw.transport.sock
        assert isinstance(sock, ssl.SSLSocket) and sock.getpeercert()["subject"], \
            "amqps:// did not speak TLS"
    finally:
        t.close()


@pytest.mark.timeout(60)
def test_a_worker_runs_a_task_over_amqps_and_rpc_brings_the_result(
        private_node: RabbitNode, certificates: Path) -> None:
    queue = f"tls-{uuid.uuid4().hex[:12]}"
    tls = {"ssl": trusting(certificates)}
    # The rpc store takes the broker and its TLS settings from the app's broker settings, as
    # Celery's broker_use_ssl serves both: the CA is named once.
    app = App("tls", broker=private_node.tls_url, config={
        "task_default_queue": queue, "transport_options": tls, "result_backend": "rpc://"})

    @app.task(name="tls.add")
    def add(x: int, y: int) -> int:
        return x + y

    try:
        with running_worker(app, concurrency=1, queues=[queue]):
            assert add.delay(2, 3).get(timeout=20) == 5
            store = app.backend.store
            assert isinstance(store, RpcResultStore) and store.broker == private_node.tls_url
    finally:
        app.close()


def test_a_broker_the_client_cannot_verify_is_refused(private_node: RabbitNode,
                                                      certificates: Path) -> None:
    # No ca_certs: only the system's trust store, which does not know the test CA.
    t = AmqpTransport(private_node.tls_url,
                      {"ssl": {"cert_reqs": ssl.CERT_REQUIRED}, "max_retries": 3})
    try:
        with pytest.raises(ConnectionFailed,
                           match=r"certificate was not accepted .*check the ssl option: ca_certs"):
            t.size("anything")
    finally:
        t.close()


def test_a_certificate_for_another_name_is_refused(private_node: RabbitNode,
                                                   certificates: Path) -> None:
    t = AmqpTransport(private_node.tls_url, {"ssl": trusting(
        certificates, server_hostname="broker.example.com")})
    try:
        with pytest.raises(ConnectionFailed, match="server_hostname a name in that certificate"):
            t.size("anything")
    finally:
        t.close()


def test_a_client_without_a_certificate_is_refused_by_the_broker(
        private_node: RabbitNode, certificates: Path) -> None:
    t = AmqpTransport(private_node.tls_url, {"ssl": {"ca_certs": str(certificates / "ca.crt")},
                                             "max_retries": 0})
    try:
        with pytest.raises(ConnectionFailed, match="certfile and keyfile"):
            t.size("anything")
    finally:
        t.close()


def test_amqps_on_the_plain_port_says_so(private_node: RabbitNode) -> None:
    t = AmqpTransport(f"amqps://guest:guest@127.0.0.1:{private_node.port}//", {"max_retries": 0})
    try:
        with pytest.raises(ConnectionFailed, match="RabbitMQ's TLS listener"):
            t.size("anything")
    finally:
        t.close()


@pytest.mark.parametrize(("ssl_option", "complaint"), [
    ("yes", "option ssl must be True or a mapping"),
    ({"ca_cert": "x"}, "unknown TLS setting 'ca_cert' in option ssl"),
    ({"ca_certs": "/nonexistent/ca.crt"}, "ca_certs names '/nonexistent/ca.crt', which is not"),
    ({"cert_reqs": "sometimes"}, "cert_reqs must be ssl.CERT_REQUIRED"),
    ({"keyfile": __file__}, "keyfile needs certfile"),
    ({"cert_reqs": ssl.CERT_NONE, "server_hostname": "h"}, "cert_reqs CERT_NONE skips"),
])
def test_bad_ssl_settings_are_refused_before_connecting(ssl_option: object,
                                                        complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        AmqpTransport("amqps://127.0.0.1:1//", {"ssl": ssl_option})
    with pytest.raises(ConfigurationError, match=complaint):
        RpcResultStore("rpc://", {"broker_url": "amqps://127.0.0.1:1//", "ssl": ssl_option})


@pytest.mark.parametrize(("options", "complaint"), [
    ({"heartbeat": "often"}, "RabbitMQ transport option 'heartbeat' must be a number of at "
                             "least 0, got 'often'"),
    ({"heartbeat": -1}, "option 'heartbeat' must be a number of at least 0"),
    ({"max_priority": "high"}, "option 'max_priority' must be a whole number"),
    ({"queue_type": "stream"}, "queue_type must be one of"),
])
def test_bad_transport_options_are_refused_with_a_sentence(options: dict[str, object],
                                                           complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        AmqpTransport("amqp://127.0.0.1:1//", options)


def test_a_bad_reply_queue_expiry_is_refused_with_a_sentence() -> None:
    with pytest.raises(ConfigurationError, match="rpc:// result store option "
                                                 "'reply_queue_expires' must be a number of at "
                                                 "least 1"):
        RpcResultStore("rpc://", {"broker_url": "amqp://127.0.0.1:1//",
                                  "reply_queue_expires": 0})
