"""zlib and bzip2 compression (std plugin ``compression``), named on the wire as kombu does."""

from __future__ import annotations

import bz2
import zlib
from collections.abc import Iterable

from kernel.plugin import CompressorSpec, DecodeError, hookimpl


class ZlibCompressor:
    name = "zlib"
    mime = "application/x-gzip"  # kombu's name for zlib, kept for Celery interop

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes) -> bytes:
        try:
            return zlib.decompress(data)
        except zlib.error as exc:
            raise DecodeError(f"body is not valid zlib data: {exc}") from None


class Bzip2Compressor:
    name = "bzip2"
    mime = "application/x-bz2"

    def compress(self, data: bytes) -> bytes:
        return bz2.compress(data)

    def decompress(self, data: bytes) -> bytes:
        try:
            return bz2.decompress(data)
        except (OSError, ValueError) as exc:
            raise DecodeError(f"body is not valid bzip2 data: {exc}") from None


@hookimpl
def kernel_compressors() -> Iterable[CompressorSpec]:
    yield CompressorSpec("zlib", ZlibCompressor.mime, ZlibCompressor)
    yield CompressorSpec("bzip2", Bzip2Compressor.mime, Bzip2Compressor)
