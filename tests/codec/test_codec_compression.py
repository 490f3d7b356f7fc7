"""Compression as Celery reads and writes it: every compressor under kombu's ``compression``
header and names (so a Celery worker decompresses what kernel sends, and the other way), the
size threshold under which nothing is compressed, which compressions a worker accepts, and the
sentence a missing library gives."""

from __future__ import annotations

import gzip
import subprocess
import sys
from typing import Any

import pytest
from kombu import compression as kombu

from kernel import App
from kernel.codec import Codec
from kernel.errors import CompressionDisallowed

#: kernel's name → (kombu's header, kombu's other names for it).
KOMBU: dict[str, tuple[str, tuple[str, ...]]] = {
    "zlib": ("application/x-gzip", ("gzip",)),
    "bzip2": ("application/x-bz2", ("bzip",)),
    "lzma": ("application/x-lzma", ("xz",)),
    "zstd": ("application/zstd", ("zstandard",)),
    "brotli": ("application/x-brotli", ()),
}
BODY = b'[[2, 40], {"text": "' + b"kernel " * 300 + b'"}, {"callbacks": null}]'


def codec(**config: Any) -> Codec:
    return App("t", config=config).codec


@pytest.mark.parametrize("name", KOMBU)
def test_every_compressor_is_named_and_framed_as_kombu_reads_it(name: str) -> None:
    header, aliases = KOMBU[name]
    c = codec()
    for alias in (name, *aliases):
        body, _, _, mime = c.encode({"x": "y" * 500}, "json", alias)
        assert mime == header, f"{alias}: the compression header Celery looks up"
        assert kombu.decompress(body, mime) == b'{"x":"' + b"y" * 500 + b'"}'
    # and kernel reads what kombu writes, by header and by any of kombu's names
    for given in (header, name, *aliases):
        assert c.decode(kombu.compress(BODY, header)[0], "application/json", given)[0] == [2, 40]


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
