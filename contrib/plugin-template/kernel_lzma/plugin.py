"""The plugin module kernel loads through the ``kernel.plugins`` entry point.

Keep it light: kernel imports it whenever it lists or loads plugins, so the implementation (and
any third-party library it needs) is imported only inside the factory, on first use.
"""

from __future__ import annotations

from collections.abc import Iterable

from kernel import hookimpl
from kernel.interfaces.codec import Compressor
from kernel.specs import CompressorSpec

#: the value of the message's ``compression`` header, as kombu names LZMA.
MIME = "application/x-lzma"


def make_compressor() -> Compressor:
    from kernel_lzma.compressor import LzmaCompressor

    return LzmaCompressor()


@hookimpl
def kernel_compressors() -> Iterable[CompressorSpec]:
    yield CompressorSpec("lzma", MIME, make_compressor)
