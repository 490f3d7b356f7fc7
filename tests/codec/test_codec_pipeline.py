"""The codec pipeline: which content a worker accepts, and how the compression header is read."""

from __future__ import annotations

import bz2
import json
import pickle
import zlib
from typing import Any

import pytest

from kernel import App
from kernel.codec import Codec
from kernel.errors import CapabilityNotFound, ContentDisallowed, DecodeError

PICKLE = "application/x-python-serialize"


def codec(**config: Any) -> Codec:
    return App("t", config=config).codec


def test_accept_content_defaults_to_json_only() -> None:
    app = App("t")
    assert app.conf.accept_content == ("json",)
    assert app.codec.accept == frozenset({"application/json"})


def test_pickle_body_is_refused_by_default_with_how_to_allow_it() -> None:
    body = pickle.dumps([[1], {}, {}])
    with pytest.raises(ContentDisallowed) as caught:
        codec().decode(body, PICKLE)
    message = str(caught.value)
    assert PICKLE in message
    assert "accept_content" in message


def test_pickle_is_decoded_once_enabled_by_name() -> None:
    body = pickle.dumps([(1, 2), {"at": {3}}, {}])
    assert codec(accept_content=["json", "pickle"]).decode(body, PICKLE) == [
        (1, 2), {"at": {3}}, {}]


def test_accept_content_also_takes_mime_types() -> None:
    assert codec(accept_content=[PICKLE]).decode(pickle.dumps("x"), PICKLE) == "x"


def test_enabling_pickle_keeps_json_only_if_listed() -> None:
    with pytest.raises(ContentDisallowed):
        codec(accept_content=["pickle"]).decode(b"[1]", "application/json")


def test_sender_may_encode_pickle_even_if_it_does_not_accept_it() -> None:
    body, ctype, cenc, mime = codec().encode({"k": (1,)}, "pickle")
    assert (ctype, cenc, mime) == (PICKLE, "binary", None)
    assert pickle.loads(body) == {"k": (1,)}


def test_zlib_is_sent_under_kombus_gzip_name() -> None:
    body, ctype, _, mime = codec().encode([[2, 40], {}, {}], compression="zlib")
    assert mime == "application/x-gzip" and ctype == "application/json"
    assert json.loads(zlib.decompress(body)) == [[2, 40], {}, {}]


def test_kombu_gzip_header_body_is_zlib_decompressed() -> None:
    # what a Celery client sends with compression="zlib"
    body = zlib.compress(b'[[2, 40], {}, {"chain": null}]')
    assert codec().decode(body, "application/json", "application/x-gzip") == [
        [2, 40], {}, {"chain": None}]


def test_bzip2_header_and_short_names_are_understood() -> None:
    body = bz2.compress(b"[1, 2]")
    assert codec().decode(body, "application/json", "application/x-bz2") == [1, 2]
    assert codec().decode(body, "application/json", "bzip2") == [1, 2]


def test_unknown_compression_is_a_decode_error_sentence() -> None:
    with pytest.raises(DecodeError,
                       match="no compressor installed for compression 'application/x-snappy'"):
        codec().decode(b"\xff\x06\x00\x00sNaPpY", "application/json", "application/x-snappy")


def test_corrupt_compressed_body_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="zlib"):
        codec().decode(b"not zlib at all", "application/json", "application/x-gzip")


def test_accepted_content_type_without_a_serializer_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="no serializer installed for content type"):
        codec(accept_content=["json", "application/cbor"]).decode(
            b"\x83\x80\xa0\xa0", "application/cbor")


def test_unknown_serializer_name_names_what_is_installed() -> None:
    with pytest.raises(CapabilityNotFound, match=r"no serializer for 'cbor'; no kernel "
                                                 r"plugin distribution provides a serializer "
                                                 r"named 'cbor'; available: json, "):
        codec().encode([1], "cbor")


@pytest.mark.parametrize("name", ["msgpack", "yaml"])
def test_a_serializer_of_ours_that_is_switched_off_says_how_to_get_it(name: str) -> None:
    with pytest.raises(CapabilityNotFound, match=rf"no serializer for '{name}'; (install "
                                                 rf"kernel\[{name}\]|the plugin '{name}' "
                                                 rf"\(kernel-{name}\) that provides it is "
                                                 rf"switched off)"):
        App("t", disable=[name]).codec.encode([1], name)


def test_encode_then_decode_through_every_std_pair() -> None:
    value = [[1, "two"], {"three": 3.0}, {"callbacks": None}]
    c = codec(accept_content=["json", "pickle"])
    for serializer in ("json", "pickle"):
        for compression in (None, "zlib", "bzip2", "lzma", "zstd", "brotli"):
            body, ctype, _, mime = c.encode(value, serializer, compression)
            assert c.decode(body, ctype, mime) == value, (serializer, compression)


@pytest.mark.parametrize("config", [{"task_serializer": "auth"}, {"accept_content": ["auth"]}])
def test_celerys_auth_without_kernel_signing_says_what_to_install(
        config: dict[str, Any]) -> None:
    app = App("t", disable=["signing"], config=config)
    with pytest.raises(CapabilityNotFound, match=r"no signer for 'auth'.*(kernel\[signing\]|"
                                                 r"kernel-signing)"):
        app.codec.encode([[1], {}, {}], app.conf.task_serializer)
