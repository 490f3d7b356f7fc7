"""The LZMA compressor: stateless and thread-safe, as `kernel.interfaces.codec.Compressor` asks."""

from __future__ import annotations

import lzma

from kernel.errors import DecodeError
from kernel_lzma.plugin import MIME


class LzmaCompressor:
    name = "lzma"
    mime = MIME

    def compress(self, data: bytes) -> bytes:
        return lzma.compress(data)

    def decompress(self, data: bytes) -> bytes:
        try:
            return lzma.decompress(data)
        except lzma.LZMAError as exc:
            # The contract: corrupt input is a DecodeError, which the worker reports and rejects.
            raise DecodeError(f"body is not valid LZMA data: {exc}") from None
