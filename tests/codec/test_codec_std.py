"""The std serializers and compressors pass the conformance suites plugin authors run."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

import pytest

from kernel.interfaces.codec import Compressor, Serializer
from kernel.std.compression import (
    BrotliCompressor,
    Bzip2Compressor,
    LzmaCompressor,
    ZlibCompressor,
    ZstdCompressor,
)
from kernel.std.serializers import JsonSerializer, PickleSerializer
from kernel.testing import CompressorSuite, SerializerSuite
from kernel.testing.codec import JSON_LIKE_SAMPLES


@dataclass(frozen=True)
class Point:
    x: int
    y: int


class TestJson(SerializerSuite):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return JsonSerializer()

    @pytest.fixture
    def samples(self) -> Sequence[Any]:
        # the kombu >= 5.3 type markers carry these back as their own types
        return [*JSON_LIKE_SAMPLES,
                datetime(2026, 11, 24, 0, 14, 8, 671543, tzinfo=timezone.utc),
                date(2026, 11, 24), time(13, 45), Decimal("0.1"),
                uuid.UUID("4caf4d74-1b2c-4d3e-8f90-a1b2c3d4e5f6"), b"utf-8 text", b"\xff\x00"]


class TestPickle(SerializerSuite):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return PickleSerializer()

    @pytest.fixture
    def samples(self) -> Sequence[Any]:
        return [*JSON_LIKE_SAMPLES, (1, "tuple"), {1, 2}, frozenset({"a"}), {1: "int key"},
                Point(1, 2), 3 + 4j, b"\x00bytes", datetime(2026, 1, 1), Decimal("1.5")]


class TestZlib(CompressorSuite):
    @pytest.fixture
    def compressor(self) -> Compressor:
        return ZlibCompressor()


class TestBzip2(CompressorSuite):
    @pytest.fixture
    def compressor(self) -> Compressor:
        return Bzip2Compressor()


class TestLzma(CompressorSuite):
    @pytest.fixture
    def compressor(self) -> Compressor:
        return LzmaCompressor()


class TestZstd(CompressorSuite):
    @pytest.fixture
    def compressor(self) -> Compressor:
        return ZstdCompressor()


class TestBrotli(CompressorSuite):
    @pytest.fixture
    def compressor(self) -> Compressor:
        return BrotliCompressor()
