"""TLS to RabbitMQ: the ``ssl`` option and what a failed handshake means.

An ``amqps://`` URL turns TLS on (kombu's pyamqp transport then defaults to port 5671) and
verifies the broker against the system's trust store; so does an ``ssl`` option on any amqp URL.
The option is Celery's ``broker_use_ssl`` form: True, or a mapping of `KEYS`, handed to py-amqp,
which builds the client's TLS context from it. The hostname in the broker's certificate is only
checked when ``server_hostname`` is set (None: the URL's host), as in Celery.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from kernel.plugin import ConfigurationError, ConnectionFailed, tls_settings

#: the keys of the ``ssl`` mapping (py-amqp's names, as in Celery's broker_use_ssl).
KEYS = ("ca_certs", "certfile", "keyfile", "cert_reqs", "server_hostname", "ciphers")


def ssl_option(options: Mapping[str, Any]) -> bool | dict[str, Any]:
    """The ``ssl`` option checked and ready for py-amqp: False (the URL decides), True, or a
    fresh mapping (kombu fills in ``server_hostname`` in place). Raises `ConfigurationError`
    for a value py-amqp would choke on only at the first connect."""
    value = options.get("ssl")
    if value is None or isinstance(value, bool):
        return bool(value)
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"option ssl must be True or a mapping of {', '.join(KEYS)} "
                                 f"(Celery's broker_use_ssl form), got {value!r}")
    return tls_settings(value, "option ssl", accept=KEYS)


def handshake_failed(exc: ssl.SSLError, where: str) -> ConnectionFailed:
    """A `ConnectionFailed` that says what to check after a failed TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectionFailed(
            f"cannot connect to RabbitMQ at {where}: its TLS certificate was not accepted "
            f"({exc.verify_message}); check the ssl option: ca_certs must name the CA that "
            f"signed the broker's certificate (without it only the system's trust store counts) "
            f"and server_hostname a name in that certificate")
    return ConnectionFailed(
        f"cannot connect to RabbitMQ at {where}: the TLS handshake failed ({exc.reason or exc}); "
        f"check that the port is RabbitMQ's TLS listener (5671 unless configured; 5672 is plain "
        f"AMQP) and the ssl option (certfile and keyfile when the broker asks for a client "
        f"certificate, ciphers)")
