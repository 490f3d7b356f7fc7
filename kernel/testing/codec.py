"""Conformance suites for serializers, compressors and signers (`kernel.interfaces.codec`).

Subclass a suite in your plugin's tests and give it a fixture returning a fresh instance::

    from kernel.testing import SerializerSuite
    from kernel.testing.codec import JSON_LIKE_SAMPLES

    class TestMsgpack(SerializerSuite):
        @pytest.fixture
        def serializer(self):
            return MsgpackSerializer()

        @pytest.fixture
        def samples(self):          # what your format promises to carry back unchanged
            return [*JSON_LIKE_SAMPLES, b"raw bytes"]

    class TestZstd(CompressorSuite):
        @pytest.fixture
        def compressor(self):
            return ZstdCompressor()

    class TestHmac(SignerSuite):
        @pytest.fixture
        def signer(self):
            return HmacSigner(b"key")

        @pytest.fixture
        def other_signer(self):     # the same scheme with a key the first one does not trust
            return HmacSigner(b"another key")

Override ``unsupported`` (a value your serializer refuses) and ``garbage`` (bytes that are not
your format) when the defaults do not fit. Every failure message ends with what to fix.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from kernel.errors import DecodeError, KernelError
from kernel.interfaces.codec import Compressor, Serializer, Signer
from kernel.testing.transport import at_once

__all__ = ["JSON_LIKE_SAMPLES", "CompressorSuite", "SerializerSuite", "SignerSuite",
           "refused_body_is_dead_lettered"]

#: values every serializer that claims to carry JSON's data model must return unchanged.
JSON_LIKE_SAMPLES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -7,
    2**53,
    3.25,
    -0.5,
    "",
    "plain ascii",
    "unicode: żółw, 日本語, emoji 🐢, nul \x00 and quotes \"'",
    [],
    [1, "two", 3.0, None, [True, False]],
    {},
    {"args": [2, 40], "kwargs": {"y": 3}, "embed": {"callbacks": None, "chain": [{"a": 1}]}},
    {"deep": [[[[{"k": ["v"]}]]]]},
    ["x" * 10_000],
)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (so 1 never passes for True or 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_decode_errors(
    decode: Callable[[bytes], object], bodies: Iterable[bytes], verb: str, shown: int | None = None
) -> list[str]:
    """What each body did instead of making `decode` raise DecodeError (empty: all raised it);
    a body is shown up to `shown` bytes."""
    wrong = []
    for data in bodies:
        try:
            decode(data)
        except DecodeError:
            continue
        except Exception as exc:  # noqa: BLE001 - the point is which type escapes
            wrong.append(f"{data[:shown]!r} raised {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{data[:shown]!r} {verb} without an error")
    return wrong


def _in_threads(work: Callable[[int], bool], workers: int = 8, rounds: int = 40) -> list[int]:
    """Run `work(i)` for many i on several threads at once; return the i whose result was False."""

    def run(worker: int) -> list[int]:
        return [i for i in range(worker * rounds, (worker + 1) * rounds) if not work(i)]

    return [i for found in at_once(run, workers) for i in found]


class SerializerSuite:
    """Conformance tests for a `kernel.interfaces.codec.Serializer`."""

    @pytest.fixture
    def serializer(self) -> Serializer:
        raise NotImplementedError("give your SerializerSuite subclass a `serializer` fixture "
                                  "returning a fresh instance")

    @pytest.fixture
    def samples(self) -> Sequence[Any]:
        """Values the serializer promises to return unchanged (same types, same values)."""
        return JSON_LIKE_SAMPLES

    @pytest.fixture
    def unsupported(self) -> Any:
        """A value the serializer cannot carry; a lock fits json, pickle, msgpack and yaml."""
        return threading.Lock()

    @pytest.fixture
    def garbage(self) -> Sequence[bytes]:
        """Bodies that are not in the serializer's format."""
        return (b"", b"{not: valid", b"\x80\x04\x95garbage\xff", b"\xff\xfe\xfd\x00\xc1")

    def test_declares_name_content_type_and_encoding(self, serializer: Serializer) -> None:
        assert isinstance(serializer, Serializer), (
            "the object lacks part of the Serializer protocol (name, content_type, "
            "content_encoding, dumps, loads) → fix: define all five")
        for attr in ("name", "content_type", "content_encoding"):
            value = getattr(serializer, attr)
            assert isinstance(value, str) and value, (
                f"{attr} is {value!r} → fix: set a non-empty string; it travels in every message")

    def test_round_trips_samples(self, serializer: Serializer, samples: Sequence[Any]) -> None:
        wrong = []
        for value in samples:
            data = serializer.dumps(value)
            assert isinstance(data, bytes), (
                f"dumps({_short(value)}) returned {type(data).__name__} → fix: return bytes")
            back = serializer.loads(data)
            if not _same(back, value):
                wrong.append(f"{_short(value)} came back as {_short(back)}")
        assert not wrong, ("values changed on the way through → fix the encoder/decoder, or drop "
                           "them from your `samples` fixture if the format cannot carry them: "
                           + "; ".join(wrong))

    @pytest.mark.parametrize("nested", [False, True], ids=["top-level", "nested"])
    def test_dumps_of_unsupported_value_names_its_type(
        self, serializer: Serializer, unsupported: Any, nested: bool
    ) -> None:
        value = {"kwargs": {"x": [unsupported]}} if nested else unsupported
        with pytest.raises((TypeError, ValueError, KernelError)) as caught:
            serializer.dumps(value)
        type_name = type(unsupported).__name__
        assert type_name in str(caught.value), (
            f"the error {str(caught.value)!r} does not name the type {type_name!r} → fix: say "
            f"which type cannot be encoded, so the user knows which argument to change")

    def test_loads_of_garbage_raises_decode_error(
        self, serializer: Serializer, garbage: Sequence[bytes]
    ) -> None:
        wrong = _not_decode_errors(serializer.loads, garbage, "decoded")
        assert not wrong, ("loads must raise kernel.errors.DecodeError for input it cannot decode "
                           "→ fix: catch the library's errors and raise DecodeError from them: "
                           + "; ".join(wrong))

    def test_loads_of_truncated_body_raises_decode_error(self, serializer: Serializer) -> None:
        data = serializer.dumps({"numbers": list(range(50)), "text": "x" * 100})
        with pytest.raises(DecodeError):
            serializer.loads(data[: len(data) // 2])

    def test_is_thread_safe(self, serializer: Serializer, samples: Sequence[Any]) -> None:
        values = list(samples)

        def round_trip(i: int) -> bool:
            value = values[i % len(values)]
            return _same(serializer.loads(serializer.dumps(value)), value)

        wrong = _in_threads(round_trip)
        assert not wrong, (f"{len(wrong)} round trips gave wrong values when run on 8 threads at "
                           f"once → fix: keep no per-call state on the serializer instance")


class CompressorSuite:
    """Conformance tests for a `kernel.interfaces.codec.Compressor`."""

    @pytest.fixture
    def compressor(self) -> Compressor:
        raise NotImplementedError("give your CompressorSuite subclass a `compressor` fixture "
                                  "returning a fresh instance")

    @pytest.fixture
    def garbage(self) -> Sequence[bytes]:
        """Inputs that are not compressed data in the compressor's format."""
        return (b"this is not compressed data, " * 3, b"\x00\x01\x02\x03", b"\xff" * 64)

    @staticmethod
    def _payloads() -> list[bytes]:
        rng = random.Random(7)
        return [
            b"x",
            b'[[2, 40], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]',
            rng.randbytes(4096),
            bytes(range(256)) * 64,
        ]

    def test_declares_name_and_mime(self, compressor: Compressor) -> None:
        assert isinstance(compressor, Compressor), (
            "the object lacks part of the Compressor protocol (name, mime, compress, decompress)"
            " → fix: define all four")
        for attr in ("name", "mime"):
            value = getattr(compressor, attr)
            assert isinstance(value, str) and value, (
                f"{attr} is {value!r} → fix: set a non-empty string; `mime` is the message's "
                f"compression header")

    def test_round_trip(self, compressor: Compressor) -> None:
        for data in self._payloads():
            packed = compressor.compress(data)
            assert isinstance(packed, bytes), "compress must return bytes → fix the return type"
            assert compressor.decompress(packed) == data, (
                f"{len(data)} bytes did not survive compress/decompress → fix the codec")

    def test_empty_input(self, compressor: Compressor) -> None:
        assert compressor.decompress(compressor.compress(b"")) == b"", (
            "an empty body must round-trip to b'' → fix compress/decompress for zero bytes")

    def test_large_input(self, compressor: Compressor) -> None:
        text = b"".join(b'{"id": %d, "name": "task number %d"},' % (i, i) for i in range(60_000))
        data = text + random.Random(3).randbytes(512 * 1024)
        packed = compressor.compress(data)
        assert compressor.decompress(packed) == data, (
            f"a {len(data) // 1024} KiB body did not round-trip → fix streaming/buffer handling")
        packed_text = compressor.compress(text)
        assert len(packed_text) < len(text) // 2, (
            f"highly repetitive data shrank only to {len(packed_text)} of {len(text)} bytes → "
            f"fix: the compressor does not seem to compress")

    def test_garbage_raises_decode_error(
        self, compressor: Compressor, garbage: Sequence[bytes]
    ) -> None:
        truncated = compressor.compress(b"truncated " * 500)[:20]
        wrong = _not_decode_errors(compressor.decompress, [*garbage, truncated], "decompressed", 24)
        assert not wrong, ("decompress must raise kernel.errors.DecodeError for corrupt input → "
                           "fix: catch the library's errors and raise DecodeError from them: "
                           + "; ".join(wrong))

    def test_is_thread_safe(self, compressor: Compressor) -> None:
        payloads = self._payloads()

        def round_trip(i: int) -> bool:
            data = payloads[i % len(payloads)]
            return compressor.decompress(compressor.compress(data)) == data

        wrong = _in_threads(round_trip)
        assert not wrong, (f"{len(wrong)} round trips failed on 8 threads at once → fix: keep no "
                           f"shared (de)compression state on the instance")


class SignerSuite:
    """The guarantees of `kernel.interfaces.codec.Signer`, one test each."""

    @pytest.fixture
    def signer(self) -> Signer:
        pytest.fail("override the `signer` fixture to return your signer")

    @pytest.fixture
    def other_signer(self) -> Signer:
        pytest.fail("override the `other_signer` fixture to return a signer of the same kind "
                    "whose key `signer` does not accept")

    @staticmethod
    def _payloads() -> list[tuple[bytes, str, str]]:
        return [(b"", "application/json", "utf-8"), (b"x", "application/x-yaml", "utf-8"),
                (b'[[2, 40], {}, {"callbacks": null}]', "application/json", "utf-8"),
                (bytes(range(256)) * 40, "application/x-msgpack", "binary")]

    def test_declares_a_name(self, signer: Signer) -> None:
        assert isinstance(signer, Signer), (
            "the object lacks part of the Signer protocol (name, content_encoding, serializer, "
            "sign, verify) → fix: define all of them")
        assert isinstance(signer.name, str) and signer.name, "name must be a non-empty string"
        assert isinstance(signer.serializer, str) and signer.serializer, (
            "serializer must name the serializer whose output is signed, e.g. 'json'")

    def test_verify_returns_what_was_signed(self, signer: Signer) -> None:
        for body, content_type, content_encoding in self._payloads():
            signed = signer.sign(body, content_type, content_encoding)
            assert isinstance(signed, bytes) and signed != body, (
                "sign must return bytes that carry a signature → fix the return value")
            assert tuple(signer.verify(signed)) == (body, content_type, content_encoding), (
                f"{len(body)} bytes of {content_type} did not survive sign/verify → fix verify "
                f"to return exactly the body, content type and encoding sign was given")

    def test_unsigned_and_tampered_bodies_are_refused(self, signer: Signer) -> None:
        body = b'{"task": "transfer", "amount": 10}'
        signed = signer.sign(body, "application/json", "utf-8")
        tampered = [body, b"", signed[: len(signed) // 2], signed + b"x"]
        for at in (0, len(signed) // 3, len(signed) // 2, len(signed) - 1):
            tampered.append(signed[:at] + bytes([signed[at] ^ 1]) + signed[at + 1:])
        wrong = _not_decode_errors(signer.verify, [t for t in tampered if t != signed],
                                   "verified")
        assert not wrong, ("verify must raise kernel.errors.DecodeError for an unsigned, "
                           "tampered or truncated body → fix: check the whole signature before "
                           "returning anything: " + "; ".join(wrong))

    def test_another_key_is_refused(self, signer: Signer, other_signer: Signer) -> None:
        wrong = _not_decode_errors(
            signer.verify, [other_signer.sign(b"payload", "application/json", "utf-8")],
            "verified")
        assert not wrong, ("a body signed with a key the signer does not trust was accepted → "
                           "fix: verify with the signer's own key(s) only: " + "; ".join(wrong))

    def test_is_thread_safe(self, signer: Signer) -> None:
        payloads = self._payloads()

        def round_trip(i: int) -> bool:
            body, content_type, content_encoding = payloads[i % len(payloads)]
            signed = signer.sign(body, content_type, content_encoding)
            return signer.verify(signed).body == body

        wrong = _in_threads(round_trip)
        assert not wrong, (f"{len(wrong)} sign/verify round trips failed on 8 threads at once "
                           f"→ fix: keep no shared hashing state on the instance")


def refused_body_is_dead_lettered(directory: Path, caplog: pytest.LogCaptureFixture,
                                  serializer: str, body: bytes, reason: str,
                                  logged: str) -> None:
    """A worker that accepts `serializer` alone (SQLite in `directory`, real worker threads)
    runs its tasks, sends a message of `body` under that serializer's content type to the
    dead-letter queue with `reason` in the dead letter and `logged` in the log, and serves on:
    how a serializer plugin proves it refuses what a broken or hostile producer wrote."""
    from kernel import App
    from kernel.interfaces import Outgoing
    from kernel.message import Envelope
    from kernel.testing.transport import wait_for
    from kernel.testing.workers import running_worker

    url = f"sqlite:///{directory / 'k.db'}"
    app = App(f"{serializer}-worker", broker=url, results=url,
              config={"task_default_queue": "q", "task_serializer": serializer,
                      "result_serializer": serializer, "accept_content": [serializer]})
    app.task(name="add")(lambda x, y: x + y)
    try:
        content_type = app.codec.serializer(serializer).content_type
        app.transport.publish([Outgoing("q", Envelope(
            body, {"lang": "py", "task": "add", "id": "hostile"},
            {"correlation_id": "hostile"}, content_type, "utf-8"))])
        with caplog.at_level(logging.INFO), running_worker(app, concurrency=2) as worker:
            assert app.tasks["add"].delay([1], [2]).get(timeout=10) == [1, 2]
            [dead] = wait_for(lambda: app.transport.dead_letters("q"), 10, "the dead letter")
            assert reason in dead.extra["reason"], dead.extra["reason"]
            assert app.tasks["add"].delay(2, 2).get(timeout=10) == 4, "the worker serves on"
            assert worker.consumer is not None and worker.consumer.alive()
        assert logged in caplog.text
    finally:
        app.close()
