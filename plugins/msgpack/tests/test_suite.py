"""kernel-msgpack's serializer passes kernel's SerializerSuite, and round-trips every value it
promises (hypothesis), byte for byte as kombu's msgpack does."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu import serialization as kombu

from kernel.interfaces.codec import Serializer
from kernel.testing import SerializerSuite
from kernel.testing.codec import JSON_LIKE_SAMPLES
from kernel_msgpack.serializer import MsgpackSerializer

#: what kernel-msgpack promises to carry back unchanged: JSON's model (ints in msgpack's 64
#: bits, str keys) and bytes.
scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=False) | st.text() | st.binary())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 is not True, b"" is not "")."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


class TestMsgpack(SerializerSuite):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return MsgpackSerializer()

    @pytest.fixture
    def samples(self) -> Sequence[Any]:
        return [*JSON_LIKE_SAMPLES, b"utf-8 text", b"\xff\x00", [b"", {"k": b"\x00"}],
                2**64 - 1, -(2**63)]


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_promised_value_round_trips(value: Any) -> None:
    serializer = MsgpackSerializer()
    assert same(serializer.loads(serializer.dumps(value)), value)


@settings(max_examples=200, deadline=None)
@given(values)
def test_the_bytes_are_kombus_both_ways(value: Any) -> None:
    """What kernel writes kombu reads as the same value, and the bytes are the same bytes."""
    ours = MsgpackSerializer().dumps(value)
    content_type, encoding, theirs = kombu.dumps(value, "msgpack")
    assert (content_type, encoding) == ("application/x-msgpack", "binary")
    assert ours == theirs
    assert same(kombu.loads(ours, content_type, encoding, accept={content_type}), value)


def test_tuples_arrive_as_lists_as_from_celery() -> None:
    serializer = MsgpackSerializer()
    assert serializer.loads(serializer.dumps((1, ("a", b"b")))) == [1, ["a", b"b"]]


@pytest.mark.parametrize("value", [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                                   dt.date(2026, 1, 1), dt.time(12), uuid.uuid4(),
                                   Decimal("0.1")], ids=lambda v: type(v).__name__)
def test_values_kombus_msgpack_cannot_carry_are_refused_with_a_sentence(value: Any) -> None:
    with pytest.raises(TypeError, match=f"a {type(value).__name__} cannot be sent as msgpack: "
                                        f"Celery's msgpack .* use the json serializer"):
        MsgpackSerializer().dumps({"kwargs": {"when": value}})


def test_an_int_beyond_64_bits_is_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="outside msgpack's 64 bits"):
        MsgpackSerializer().dumps([2**64])


def test_trailing_bytes_are_a_decode_error() -> None:
    from kernel.plugin import DecodeError

    with pytest.raises(DecodeError, match="bytes follow the first"):
        MsgpackSerializer().loads(MsgpackSerializer().dumps([1]) + b"\x01")
