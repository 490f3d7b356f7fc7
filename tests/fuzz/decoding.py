"""The whole path from the bytes a broker holds to what a worker runs, as the worker takes it:
the kombu envelope (`Envelope.from_json`), the v2 headers (`Request.from_envelope`), the body
through the codec (serializer, compressor) and its shape, canvas included (`parse_body`).

The fuzzers (tests/fuzz/test_fuzz_decoding.py with hypothesis, fuzz_atheris.py coverage-guided)
hold it to one promise: `decode` returns, or raises `MessageError`, never anything else."""

from __future__ import annotations

from typing import Any

from kernel import App
from kernel.message import Envelope, Request, parse_body

#: an App whose codec accepts every std serializer the fuzzers try (pickle is left out: it
#: runs code by design, which no fuzzer should do).
APP = App("fuzz", broker="memory://fuzz", results=None, autoload=True,
          config={"accept_content": ["json"]})


def decode(raw: bytes) -> tuple[Request, list[Any], dict[str, Any], dict[str, Any]]:
    envelope = Envelope.from_json(raw)
    request = Request.from_envelope(envelope)
    compression = envelope.headers.get("compression")
    decoded = APP.codec.decode(envelope.body, envelope.content_type, compression)
    args, kwargs, embed = parse_body(decoded)
    return request, args, kwargs, embed
