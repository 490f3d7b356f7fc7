"""Codec contracts: serializers, compressors and signers.

The kernel chains them into one pipeline (`kernel.codec.Codec`): serialize, then sign, then
compress (the order of Celery's ``auth`` serializer, which kombu compresses like any other);
the reverse on the way in. Each piece MUST be stateless and thread-safe.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable


@runtime_checkable
class Serializer(Protocol):
    #: short name used in configuration, e.g. "json".
    name: str
    #: MIME type written to the message's content-type, e.g. "application/json".
    content_type: str
    #: "utf-8" for text formats, "binary" otherwise.
    content_encoding: str

    def dumps(self, obj: Any) -> bytes:
        """Encode. MUST raise `kernel.errors.KernelError` subclass or TypeError/ValueError for a
        value it cannot encode, naming the value's type."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode. MUST raise `kernel.errors.DecodeError` for input it cannot decode, and MUST
        NOT execute code from the input unless the serializer is documented as unsafe (pickle)."""
        ...


@runtime_checkable
class Compressor(Protocol):
    #: short name, e.g. "zlib".
    name: str
    #: the value of the message's `compression` header, e.g. "application/x-gzip".
    mime: str

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes:
        """MUST raise `kernel.errors.DecodeError` for corrupt input."""
        ...


class Unsigned(NamedTuple):
    """What a signature wrapped: the serialized body and the content type and encoding of the
    serializer that made it."""

    body: bytes
    content_type: str
    content_encoding: str


@runtime_checkable
class Signer(Protocol):
    """A signer wraps a serialized body, with its content type, in a signed envelope; a message
    so signed carries the signer's content type (the spec's), the serializer's travels inside.
    A task is signed when its serializer is the signer's name (``task_serializer="auth"``)."""

    #: short name used in configuration, e.g. "auth".
    name: str
    #: the message's content-encoding while signed, e.g. "utf-8".
    content_encoding: str
    #: the serializer whose output it signs (a name, e.g. "json").
    serializer: str

    def sign(self, body: bytes, content_type: str, content_encoding: str) -> bytes:
        """Return the envelope carrying `body`, its content type and encoding, and the
        signature."""
        ...

    def verify(self, data: bytes) -> Unsigned:
        """Return what was signed; MUST raise `kernel.errors.DecodeError`, with a sentence saying
        why, if the envelope is malformed or the signature missing, wrong, or made by a key the
        signer does not trust, and MUST check the signature before returning anything."""
        ...
