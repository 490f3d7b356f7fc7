"""The compressors (std plugin ``compression``), named on the wire as kombu does, so Celery reads
what kernel compresses and kernel what Celery does.

==========  ==========================  ==================  ==================================
name        ``compression`` header      also named          needs
==========  ==========================  ==================  ==================================
zlib        ``application/x-gzip``      gzip                (stdlib)
bzip2       ``application/x-bz2``       bzip                (stdlib)
lzma        ``application/x-lzma``      xz                  (stdlib)
zstd        ``application/zstd``        zstandard           ``kernel[zstd]`` before Python 3.14
brotli      ``application/x-brotli``                        ``kernel[brotli]``
==========  ==========================  ==================  ==================================

kombu's "gzip" is zlib's format under a gzip MIME type; kernel keeps that (a Celery worker
decompresses ``application/x-gzip`` with zlib) and reads gzip's own framing there too. The
third-party libraries are imported when the compressor is first built: a worker without one
refuses such a message with the sentence saying what to install.
"""

from __future__ import annotations

import bz2
import lzma
import sys
import zlib
from collections.abc import Callable, Iterable
from types import ModuleType

from kernel.plugin import CompressorSpec, ConfigurationError, DecodeError, hookimpl

#: zlib's window bits that read both zlib's and gzip's framing (32 + 15).
_ZLIB_OR_GZIP = 47


class ZlibCompressor:
    name = "zlib"
    mime = "application/x-gzip"  # kombu's name for zlib, kept for Celery interop

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes) -> bytes:
        try:
            return zlib.decompress(data, _ZLIB_OR_GZIP)
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


class LzmaCompressor:
    """The xz container, as kombu writes (`lzma.compress`'s default); reading detects xz and
    the legacy ``.lzma`` format."""

    name = "lzma"
    mime = "application/x-lzma"

    def compress(self, data: bytes) -> bytes:
        return lzma.compress(data)

    def decompress(self, data: bytes) -> bytes:
        try:
            return lzma.decompress(data)
        except lzma.LZMAError as exc:
            raise DecodeError(f"body is not valid lzma/xz data: {exc}") from None


def _library(import_it: Callable[[], ModuleType], compressor: str, extra: str) -> ModuleType:
    try:
        return import_it()
    except ImportError:
        raise ConfigurationError(f"the {compressor} compressor needs a library that is not "
                                 f"installed: pip install 'kernel[{extra}]'") from None


def _import_zstd() -> ModuleType:
    if sys.version_info >= (3, 14):
        from compression import zstd
    else:
        from backports import zstd
    return zstd


def _import_brotli() -> ModuleType:
    import brotli

    module: ModuleType = brotli
    return module


class ZstdCompressor:
    """Zstandard at its default level (3, as kombu), on ``compression.zstd`` (Python 3.14) or its
    backport."""

    name = "zstd"
    mime = "application/zstd"

    def __init__(self) -> None:
        zstd = _library(_import_zstd, "zstd", "zstd")
        self._compress: Callable[[bytes], bytes] = zstd.compress
        self._decompress: Callable[[bytes], bytes] = zstd.decompress
        self._error: type[Exception] = zstd.ZstdError

    def compress(self, data: bytes) -> bytes:
        return self._compress(data)

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._decompress(data)
        except self._error as exc:
            raise DecodeError(f"body is not valid zstd data: {exc}") from None


class BrotliCompressor:
    """Brotli at quality 5: kombu compresses at the library's default, 11, which takes tens of
    times as long for bodies a few percent smaller; any quality decompresses alike."""

    name = "brotli"
    mime = "application/x-brotli"
    quality = 5

    def __init__(self) -> None:
        brotli = _library(_import_brotli, "brotli", "brotli")
        self._brotli = brotli
        self._error: type[Exception] = brotli.error

    def compress(self, data: bytes) -> bytes:
        packed: bytes = self._brotli.compress(data, quality=self.quality)
        return packed

    def decompress(self, data: bytes) -> bytes:
        try:
            unpacked: bytes = self._brotli.decompress(data)
        except self._error as exc:
            raise DecodeError(f"body is not valid brotli data: {exc}") from None
        return unpacked


@hookimpl
def kernel_compressors() -> Iterable[CompressorSpec]:
    yield CompressorSpec("zlib", ZlibCompressor.mime, ZlibCompressor, aliases=("gzip",))
    yield CompressorSpec("bzip2", Bzip2Compressor.mime, Bzip2Compressor, aliases=("bzip",))
    yield CompressorSpec("lzma", LzmaCompressor.mime, LzmaCompressor, aliases=("xz",))
    yield CompressorSpec("zstd", ZstdCompressor.mime, ZstdCompressor, aliases=("zstandard",))
    yield CompressorSpec("brotli", BrotliCompressor.mime, BrotliCompressor)
