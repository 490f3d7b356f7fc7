"""Compression as Celery reads and writes it: every compressor under kombu's ``compression``
header and names, framed as the library kombu calls for that header reads and writes it (a
Celery worker decompresses what kernel sends, and the other way: kernel-redis's
test_compression_interop.py runs a real one), the size threshold under which nothing is
compressed, which compressions a worker accepts, and the sentence a missing library gives."""

from __future__ import annotations

import bz2
import gzip
import lzma
import subprocess
import sys
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import pytest

if sys.version_info >= (3, 14):  # the zstd kombu uses: the standard library's, or its backport
    from compression import zstd
else:
    from backports import zstd

from kernel import App
from kernel.codec import Codec
from kernel.errors import CompressionDisallowed

Codec_ = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]
#: kernel's name → (kombu's header, kombu's other names for it, the compress and decompress
#: functions kombu registers under that header).
KOMBU: dict[str, tuple[str, tuple[str, ...], Codec_]] = {
    "zlib": ("application/x-gzip", ("gzip",), (zlib.compress, zlib.decompress)),
    "bzip2": ("application/x-bz2", ("bzip",), (bz2.compress, bz2.decompress)),
    "lzma": ("application/x-lzma", ("xz",), (lzma.compress, lzma.decompress)),
    "zstd": ("application/zstd", ("zstandard",), (zstd.compress, zstd.decompress)),
    "brotli": ("application/x-brotli", (), (brotli.compress, brotli.decompress)),
}
BODY = b'[[2, 40], {"text": "' + b"kernel " * 300 + b'"}, {"callbacks": null}]'


def codec(**config: Any) -> Codec:
    return App("t", config=config).codec


@pytest.mark.parametrize("name", KOMBU)
def test_every_compressor_is_named_and_framed_as_kombu_reads_it(name: str) -> None:
    header, aliases, (compress, decompress) = KOMBU[name]
    c = codec()
    for alias in (name, *aliases):
        body, _, _, mime = c.encode({"x": "y" * 500}, "json", alias)
        assert mime == header, f"{alias}: the compression header Celery looks up"
        assert decompress(body) == b'{"x":"' + b"y" * 500 + b'"}'
    # and kernel reads what kombu writes, by header and by any of kombu's names
    for given in (header, name, *aliases):
        assert c.decode(compress(BODY), "application/json", given)[0] == [2, 40]


def test_a_real_gzip_stream_under_kombus_gzip_header_is_read_too() -> None:
    """kombu writes zlib framing under application/x-gzip; a producer writing gzip's own
    framing there is read as well."""
    assert codec().decode(gzip.compress(b"[1, 2]"), "application/json",
                          "application/x-gzip") == [1, 2]


@pytest.mark.parametrize("name", KOMBU)
def test_under_the_threshold_a_body_is_sent_uncompressed_without_a_header(name: str) -> None:
    c = codec(task_compression_min_bytes=1024)
    small, ctype, _, mime = c.encode(["x" * 1000], "json", name)
    assert mime is None and small == b'["' + b"x" * 1000 + b'"]', "1004 bytes: under 1 KiB"
    assert c.decode(small, ctype, mime) == ["x" * 1000]
    big, _, _, mime = c.encode(["x" * 1022], "json", name)
    assert mime == KOMBU[name][0] and len(big) < 1024, "1026 bytes: compressed"


def test_the_threshold_defaults_to_compressing_every_body_as_celery() -> None:
    assert App("t").conf.task_compression_min_bytes == 0
    assert codec().encode([], "json", "zlib")[3] == "application/x-gzip"


def test_a_task_sent_under_the_threshold_travels_without_a_compression_header() -> None:
    app = App("t", broker="memory://", results=None,
              config={"task_compression": "zstd", "task_compression_min_bytes": 200,
                      "task_default_queue": "q"})
    try:
        app.send_task("t.small", ("tiny",))
        app.send_task("t.big", ("x" * 300,))
        headers = [d.envelope.headers.get("compression")
                   for d in app.transport.fetch("q", 2, 1.0)]
        assert headers == [None, "application/zstd"], headers
    finally:
        app.close()


def test_every_installed_compression_is_accepted_unless_accept_compression_is_set() -> None:
    body, ctype, _, mime = codec().encode([1], "json", "brotli")
    assert codec().decode(body, ctype, mime) == [1]
    only = codec(accept_compression=["gzip", "application/zstd"])
    assert only.accept_compression == frozenset({"zlib", "zstd"})
    with pytest.raises(CompressionDisallowed, match=r"refusing compression "
                                                    r"'application/x-brotli': accepted are "
                                                    r"zlib, zstd; add it to accept_compression"):
        only.decode(body, ctype, mime)
    assert only.decode(*codec().encode([2], "json", "zlib")[:2], "application/x-gzip") == [2]


def test_a_missing_library_says_which_extra_to_install() -> None:
    code = ("import sys; sys.modules['brotli'] = None; sys.modules['backports.zstd'] = None; "
            "sys.modules['compression.zstd'] = None\n"
            "from kernel.std.compression import BrotliCompressor, ZstdCompressor\n"
            "from kernel.errors import ConfigurationError\n"
            "for make in (BrotliCompressor, ZstdCompressor):\n"
            "    try: make()\n"
            "    except ConfigurationError as exc: print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [
        "the brotli compressor needs a library that is not installed: "
        "pip install 'kernel[brotli]'",
        "the zstd compressor needs a library that is not installed: pip install 'kernel[zstd]'",
    ]
