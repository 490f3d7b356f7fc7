"""The codec pipeline: serializer → signer → compressor, and back, negotiated per message.

The sender picks the serializer and compressor; the receiver reads them from the content type and
the ``compression`` header, and refuses content types outside ``accept_content`` and compressions
outside ``accept_compression`` (every installed one unless set). A body shorter than
``task_compression_min_bytes`` is sent uncompressed, without a ``compression`` header. A
signer's name stands where a serializer's would (``task_serializer="auth"``,
``accept_content=["auth"]``): the message then carries the signer's content type, and the
serializer's inside the signed envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kernel.errors import (
    CapabilityNotFound,
    CompressionDisallowed,
    ConfigurationError,
    ContentDisallowed,
    DecodeError,
    MessageError,
)
from kernel.interfaces.codec import Compressor, Serializer, Signer
from kernel.plugins import Registry
from kernel.specs import CompressorSpec, Options, SerializerSpec, SignerSpec


class Codec:
    def __init__(
        self,
        serializers: Registry[SerializerSpec],
        compressors: Registry[CompressorSpec],
        accept: Iterable[str] = ("json",),
        signers: Registry[SignerSpec] | None = None,
        signer_options: Callable[[str], Options] = lambda name: {},
        accept_compression: Iterable[str] | None = None,
        compression_min_bytes: int = 0,
    ) -> None:
        self._serializer_specs = serializers
        self._compressor_specs = compressors
        self._signer_specs = signers
        self._signer_options = signer_options
        self._by_type = {spec.content_type: spec for spec in serializers.values()}
        self._by_mime = {spec.mime: spec for spec in compressors.values()}
        self._signer_by_type = {spec.content_type: spec for spec in
                                (signers.values() if signers is not None else ())}
        # Looked up on every encode: a set, so that json tasks pay next to nothing for signing.
        self._signer_names = frozenset(spec.name for spec in self._signer_by_type.values())
        self._serializers: dict[str, Serializer] = {}
        self._compressors: dict[str, Compressor] = {}
        self._signers: dict[str, Signer] = {}
        #: accepted content types (names are translated; unknown names are taken as MIME types).
        self.accept = frozenset(self._content_type_of(a) for a in accept)
        # Inside a trusted signature: what is accepted, and every serializer that cannot run
        # code (Celery's auth accepts any, pickle included; kernel wants pickle listed).
        self._accept_signed = self.accept | {
            spec.content_type for spec in serializers.values() if not spec.unsafe}
        #: accepted compressors' names (names, aliases or headers given); None: every one.
        self.accept_compression = None if accept_compression is None else frozenset(
            self._by_mime[a].name if a in self._by_mime else compressors.get(a).name
            for a in accept_compression)
        self.compression_min_bytes = compression_min_bytes

    def _content_type_of(self, name: str) -> str:
        if name in self._serializer_specs:
            return self._serializer_specs.get(name).content_type
        if self._signer_specs is not None and (
                name in self._signer_specs or self._signer_specs.offered(name)):
            # A signer's name whose plugin is missing: the sentence saying what to install.
            return self._signer_specs.get(name).content_type
        return name

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

    def signer(self, name: str) -> Signer:
        """The signer registered as `name`, built from its plugin's settings on first use
        (`CapabilityNotFound` saying what to install if none is)."""
        found = self._signers.get(name)
        if found is None:
            if self._signer_specs is None:
                raise ConfigurationError(f"no signer {name!r}: this codec has no signers")
            spec = self._signer_specs.get(name)
            found = self._signers[name] = spec.factory(self._signer_options(name))
        return found

    def build_accepted_signers(self) -> None:
        """Build now every signer ``accept_content`` names (a worker starting): settings it
        cannot use are a `ConfigurationError` at start, not a refusal of every signed message."""
        for spec in self._signer_by_type.values():
            if spec.content_type in self.accept:
                self.signer(spec.name)

    def encode(
        self, obj: Any, serializer: str = "json", compression: str | None = None
    ) -> tuple[bytes, str, str, str | None]:
        """Return ``(body, content_type, content_encoding, compression_header)``. A signer's
        name as `serializer` signs what its own serializer makes, before compression."""
        if serializer in self._signer_names:
            signer = self.signer(serializer)
            ser = self.serializer(signer.serializer)
            data = signer.sign(ser.dumps(obj), ser.content_type, ser.content_encoding)
            assert self._signer_specs is not None
            content_type = self._signer_specs.get(serializer).content_type
            content_encoding = signer.content_encoding
        else:
            try:
                ser = self.serializer(serializer)
            except CapabilityNotFound:
                if self._signer_specs is not None and self._signer_specs.offered(serializer):
                    self._signer_specs.get(serializer)  # "no signer 'auth'; install ..."
                raise
            data, content_type, content_encoding = (
                ser.dumps(obj), ser.content_type, ser.content_encoding)
        mime = None
        if compression and len(data) >= self.compression_min_bytes:
            comp = self.compressor(compression)
            data, mime = comp.compress(data), comp.mime
        return data, content_type, content_encoding, mime

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
        signer_spec = self._signer_by_type.get(content_type)
        if signer_spec is None and content_type not in self._by_type:
            raise DecodeError(f"no serializer installed for content type {content_type!r}")
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
        if signer_spec is not None:
            try:
                signer = self.signer(signer_spec.name)
            except ConfigurationError as exc:
                # Every signed message would fail alike: the reason each one is refused.
                raise DecodeError(f"cannot verify {signer_spec.name!r} signatures: {exc}") from None
            body, content_type, _ = signer.verify(body)
            if content_type not in self._accept_signed:
                raise ContentDisallowed(content_type, self._accept_signed)
        spec = self._by_type.get(content_type)
        if spec is None:
            raise DecodeError(f"no serializer installed for content type {content_type!r}")
        return self.serializer(spec.name).loads(body)
