"""The codec pipeline: serializer → compressor → signer, and back, negotiated per message.

The sender picks the serializer and compressor; the receiver reads them from the content type and
the ``compression`` header, and refuses content types outside ``accept_content`` and compressions
outside ``accept_compression`` (every installed one unless set). A body shorter than
``task_compression_min_bytes`` is sent uncompressed, without a ``compression`` header.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kernel.errors import CompressionDisallowed, ContentDisallowed, DecodeError, MessageError
from kernel.interfaces.codec import Compressor, Serializer, Signer
from kernel.plugins import Registry
from kernel.specs import CompressorSpec, SerializerSpec


class Codec:
    def __init__(
        self,
        serializers: Registry[SerializerSpec],
        compressors: Registry[CompressorSpec],
        accept: Iterable[str] = ("json",),
        signer: Signer | None = None,
        accept_compression: Iterable[str] | None = None,
        compression_min_bytes: int = 0,
    ) -> None:
        self._serializer_specs = serializers
        self._compressor_specs = compressors
        self._by_type = {spec.content_type: spec for spec in serializers.values()}
        self._by_mime = {spec.mime: spec for spec in compressors.values()}
        self._serializers: dict[str, Serializer] = {}
        self._compressors: dict[str, Compressor] = {}
        self.signer = signer
        #: accepted content types (names are translated; unknown names are taken as MIME types).
        self.accept = frozenset(
            serializers.get(a).content_type if a in serializers else a for a in accept
        )
        #: accepted compressors' names (names, aliases or headers given); None: every one.
        self.accept_compression = None if accept_compression is None else frozenset(
            self._by_mime[a].name if a in self._by_mime else compressors.get(a).name
            for a in accept_compression)
        self.compression_min_bytes = compression_min_bytes

    def serializer(self, name: str) -> Serializer:
        found = self._serializers.get(name)
        if found is None:
            found = self._serializers[name] = self._serializer_specs.get(name).factory()
        return found

    def compressor(self, name: str) -> Compressor:
        """The compressor registered as `name` or under it as an alias, built on first use."""
        found = self._compressors.get(name)
        if found is None:
            found = self._compressors[name] = self._compressor_specs.get(name).factory()
        return found

    def encode(
        self, obj: Any, serializer: str = "json", compression: str | None = None
    ) -> tuple[bytes, str, str, str | None]:
        """Return ``(body, content_type, content_encoding, compression_header)``."""
        ser = self.serializer(serializer)
        data = ser.dumps(obj)
        mime = None
        if compression and len(data) >= self.compression_min_bytes:
            comp = self.compressor(compression)
            data, mime = comp.compress(data), comp.mime
        if self.signer is not None:
            data = self.signer.sign(data)
        return data, ser.content_type, ser.content_encoding, mime

    def decode(self, body: bytes, content_type: str, compression: str | None = None) -> Any:
        """Decode a body; `ContentDisallowed` or `DecodeError` with the reason when it can't,
        never another error: a serializer, compressor or signer that breaks its contract and
        raises something else is reported as such."""
        try:
            return self._decode(body, content_type, compression)
        except MessageError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug must not stop a worker thread
            raise DecodeError(f"decoding a {content_type!r} body failed with "
                              f"{type(exc).__name__}: {exc} (a codec plugin should raise "
                              f"DecodeError here)") from None

    def _decode(self, body: bytes, content_type: str, compression: str | None) -> Any:
        if not isinstance(content_type, str) or not isinstance(compression, (str, type(None))):
            raise DecodeError("content type and compression header must be strings")
        if content_type not in self.accept:
            raise ContentDisallowed(content_type, self.accept)
        spec = self._by_type.get(content_type)
        if spec is None:
            raise DecodeError(f"no serializer installed for content type {content_type!r}")
        if self.signer is not None:
            body = self.signer.verify(body)
        if compression:
            comp_spec = self._by_mime.get(compression) or (
                self._compressor_specs.get(compression) if compression in self._compressor_specs
                else None)
            if comp_spec is None:
                raise DecodeError(f"no compressor installed for compression {compression!r}")
            if (self.accept_compression is not None
                    and comp_spec.name not in self.accept_compression):
                raise CompressionDisallowed(compression, self.accept_compression)
            body = self.compressor(comp_spec.name).decompress(body)
        return self.serializer(spec.name).loads(body)
