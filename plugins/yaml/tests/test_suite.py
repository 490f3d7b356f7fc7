"""kernel-yaml's serializer passes kernel's SerializerSuite, round-trips every value it promises
(hypothesis) to and from kombu's YAML, and refuses object-building tags with a sentence."""

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
from kernel.plugin import DecodeError
from kernel.testing import SerializerSuite
from kernel.testing.codec import JSON_LIKE_SAMPLES
from kernel_yaml.serializer import YamlSerializer

#: YAML timestamps carry offsets in whole minutes and years of four digits.
zones = st.none() | st.builds(lambda m: dt.timezone(dt.timedelta(minutes=m)),
                              st.integers(-23 * 60 - 59, 23 * 60 + 59))
datetimes = st.datetimes(min_value=dt.datetime(1000, 1, 1), timezones=zones)
#: what kernel-yaml promises to carry back unchanged.
keys = st.text() | st.integers()
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
           | st.binary() | datetimes | st.dates(min_value=dt.date(1000, 1, 1)))
values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5)
                   | st.sets(st.integers() | st.text(), max_size=5)),
    max_leaves=30)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 is not True, a date is not a datetime),
    and datetimes in the same zone."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, dt.datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


class TestYaml(SerializerSuite):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return YamlSerializer()

    @pytest.fixture
    def samples(self) -> Sequence[Any]:
        return [*JSON_LIKE_SAMPLES, b"utf-8 text", b"\xff\x00", 2**100, {1: "int key"}, {1, 2},
                dt.datetime(2026, 11, 24, 0, 14, 8, 671543, tzinfo=dt.timezone.utc),
                dt.datetime(2026, 11, 24, 0, 14), dt.date(2026, 11, 24), "yes", "1.0", "null"]

    def test_loads_of_truncated_body_raises_decode_error(self, serializer: Serializer) -> None:
        """YAML has no framing: half of a block-style document (what Celery writes) is often a
        valid shorter one, so the suite's check cannot hold for this format. What holds: a cut
        inside a scalar, a flow collection or a tag is refused."""
        for whole in (serializer.dumps({"text": "x" * 100, "raw": b"\xff" * 60}),
                      b'{"numbers": [1, 2, 3], "text": "quoted"}'):
            with pytest.raises(DecodeError):
                serializer.loads(whole[: len(whole) // 2])


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_promised_value_round_trips(value: Any) -> None:
    serializer = YamlSerializer()
    assert same(serializer.loads(serializer.dumps(value)), value)


@settings(max_examples=200, deadline=None)
@given(values)
def test_kombu_reads_what_kernel_writes_and_kernel_what_kombu_writes(value: Any) -> None:
    content_type, encoding, theirs = kombu.dumps(value, "yaml")
    assert (content_type, encoding) == ("application/x-yaml", "utf-8")
    assert same(YamlSerializer().loads(theirs.encode("utf-8")), value)
    ours = YamlSerializer().dumps(value)
    assert same(kombu.loads(ours, content_type, encoding, accept={content_type}), value)


@pytest.mark.parametrize("value", [dt.time(12), uuid.uuid4(), Decimal("0.1"), frozenset({1})],
                         ids=lambda v: type(v).__name__)
def test_values_kombus_yaml_cannot_carry_are_refused_with_a_sentence(value: Any) -> None:
    with pytest.raises(TypeError, match=f"a {type(value).__name__} cannot be sent as YAML: "
                                        f"Celery's YAML .* use json"):
        YamlSerializer().dumps({"kwargs": {"x": [value]}})


@pytest.mark.parametrize("body", [
    b"!!python/object/apply:os.system [echo owned]",
    b"- !!python/object:collections.OrderedDict {}\n",
    b"args: !!python/name:os.system\n",
    b"!!python/tuple [1, 2]",
])
def test_tags_that_would_construct_objects_are_refused_with_a_sentence(body: bytes) -> None:
    with pytest.raises(DecodeError, match=r"the YAML body was refused: could not determine a "
                                          r"constructor for the tag .*python/.* safe loader "
                                          r"only"):
        YamlSerializer().loads(body)


def test_an_empty_body_is_a_decode_error_not_none() -> None:
    with pytest.raises(DecodeError, match="body is empty"):
        YamlSerializer().loads(b"")
