"""Codec contracts: serializers, compressors and signers.

The kernel chains them into one pipeline (`kernel.codec.Codec`): serialize, then compress, then
sign; the reverse on the way in. Each piece MUST be stateless and thread-safe.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


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


@runtime_checkable
class Signer(Protocol):
    name: str

    def sign(self, data: bytes) -> bytes:
        """Return `data` wrapped with a signature."""
        ...

    def verify(self, data: bytes) -> bytes:
        """Return the original data; MUST raise `kernel.errors.DecodeError` if the signature is
        missing or wrong."""
        ...
