"""The signed envelope of Celery's auth serializer, which both signers use.

Layout (facts of Celery's format): five fields joined by the two bytes ``00 01`` — the signer's
id (base64), the signature (base64), the inner content type, the inner content encoding, the
serialized body — and the whole base64-encoded, so the message body is ASCII text. The body is
last, so it may hold the separator; the other four cannot (base64 and MIME names never do).
"""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

from kernel.plugin import DecodeError

SEPARATOR = b"\x00\x01"


class Envelope(NamedTuple):
    signer: bytes
    signature: bytes
    content_type: str
    content_encoding: str
    body: bytes


def pack(envelope: Envelope) -> bytes:
    """The message body for `envelope`."""
    fields = [base64.b64encode(envelope.signer), base64.b64encode(envelope.signature),
              envelope.content_type.encode(), envelope.content_encoding.encode(), envelope.body]
    return base64.b64encode(SEPARATOR.join(fields))


def unpack(data: bytes, scheme: str) -> Envelope:
    """The envelope in a message body; `DecodeError` naming `scheme` if it is not one."""
    try:
        raw = base64.b64decode(data, validate=True)
        signer, signature, content_type, content_encoding, body = raw.split(SEPARATOR, 4)
        return Envelope(base64.b64decode(signer, validate=True),
                        base64.b64decode(signature, validate=True),
                        content_type.decode("ascii"), content_encoding.decode("ascii"), body)
    except (binascii.Error, ValueError, TypeError):
        # ValueError also covers too few fields and a non-ASCII content type.
        raise DecodeError(f"the message is not {scheme}-signed: its body is not a signed "
                          f"envelope (base64 of signer, signature, content type, encoding and "
                          f"body); the sender must sign with {scheme}") from None
