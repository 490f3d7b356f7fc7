"""Envelope <-> AMQP message.

On AMQP a task message is a real AMQP message, as Celery sends it: the body bytes, the content
type and encoding, the Envelope's headers as application headers and its properties as AMQP
basic properties. Properties AMQP has no field for travel in the ``x-kernel-properties``
header; the transport's own bookkeeping travels in ``x-kernel-*`` headers, and RabbitMQ's
``x-death`` records (added when a delayed message leaves its TTL queue). All of those are taken
out again on the way in, so a consumer sees the headers its producer wrote.
"""

from __future__ import annotations

from typing import Any

from amqp import Message

from kernel.plugin import Envelope

#: AMQP basic properties an Envelope may carry (content type/encoding and headers have fields).
AMQP_PROPERTIES = ("delivery_mode", "priority", "correlation_id", "reply_to", "expiration",
                   "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id")
#: kombu's Redis envelope bookkeeping: meaningless on AMQP, never sent.
REDIS_ONLY = ("body_encoding", "delivery_info", "delivery_tag")
EXTRA_PROPERTIES = "x-kernel-properties"
#: deliveries this message already had before it was given back by publishing a copy.
PREVIOUS_DELIVERIES = "x-kernel-deliveries"
DEAD_REASON = "x-kernel-reason"
BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue",
                  "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
                  "x-last-death-reason", "x-delivery-count")
OURS = (EXTRA_PROPERTIES, PREVIOUS_DELIVERIES, DEAD_REASON, *BROKER_HEADERS)
PERSISTENT, TRANSIENT = 2, 1


def to_message(envelope: Envelope, priority: int, *, delivery_mode: int = PERSISTENT,
               **bookkeeping: Any) -> Message:
    """The AMQP message for `envelope`: persistent (unless `delivery_mode` says otherwise), at
    `priority`, with `bookkeeping` headers (``x-kernel-*``) added to the producer's."""
    headers = dict(envelope.headers)
    props: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in envelope.properties.items():
        if name in AMQP_PROPERTIES:
            props[name] = value
        elif name not in REDIS_ONLY:
            extra[name] = value
    if extra:
        headers[EXTRA_PROPERTIES] = extra
    headers.update({k: v for k, v in bookkeeping.items() if v})
    props["delivery_mode"] = delivery_mode
    props["priority"] = priority
    return Message(body=envelope.body, content_type=envelope.content_type,
                   content_encoding=envelope.content_encoding, application_headers=headers,
                   **props)


def from_message(message: Message) -> tuple[Envelope, dict[str, Any]]:
    """The Envelope a producer sent, and the transport's bookkeeping headers beside it."""
    props = dict(message.properties)
    headers = dict(props.pop("application_headers", None) or {})
    content_type = props.pop("content_type", None) or "application/json"
    content_encoding = props.pop("content_encoding", None) or "utf-8"
    bookkeeping = {name: headers.pop(name) for name in OURS if name in headers}
    extra = bookkeeping.get(EXTRA_PROPERTIES)
    if isinstance(extra, dict):
        props.update(extra)
    info = message.delivery_info or {}
    props["delivery_info"] = {"exchange": info.get("exchange", ""),
                              "routing_key": info.get("routing_key", "")}
    body = message.body  # bytes: the transport's channels never decode bodies
    return Envelope(body=body.encode() if isinstance(body, str) else bytes(body),
                    headers=headers, properties=props, content_type=content_type,
                    content_encoding=content_encoding), bookkeeping
