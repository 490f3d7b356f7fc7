"""The msgpack serializer, byte for byte what kombu writes and reads for Celery.

kombu packs with ``use_bin_type=True`` (bytes travel as msgpack ``bin``, text as ``str``) and
unpacks with ``raw=False`` and msgpack's strict map keys. Its msgpack carries no datetimes, dates,
times, UUIDs or Decimals (kombu raises on them): kernel refuses them too, at send time, with a
sentence, rather than inventing a marker a Celery worker would hand to the task as a dict.

Guarantees: JSON's data model (None, bools, ints in [-2**63, 2**64), floats, str, lists, dicts
with str keys) and bytes come back unchanged; tuples come back as lists, as from Celery.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import msgpack

from kernel.plugin import DecodeError

from kernel_msgpack.plugin import CONTENT_TYPE

_NOT_IN_KOMBU = (dt.datetime, dt.date, dt.time, uuid.UUID, Decimal)


def _refuse(value: Any) -> Any:
    """msgpack's ``default``: called only for a value msgpack has no type for, so it costs the
    common case nothing."""
    name = type(value).__name__
    if isinstance(value, int):  # msgpack hands over the ints its 64 bits cannot hold
        raise ValueError("an int outside msgpack's 64 bits ([-2**63, 2**64)) cannot be sent as "
                         "msgpack; send it as a string, or use json")
    if isinstance(value, _NOT_IN_KOMBU):
        raise TypeError(f"a {name} cannot be sent as msgpack: Celery's msgpack (kombu's) carries "
                        f"none; send it as a string (e.g. isoformat()/str()), or use the json "
                        f"serializer, which carries it as kombu's {{'__type__': ...}} marker")
    raise TypeError(f"a {name} cannot be sent as msgpack; pass plain values (None, bools, "
                    f"numbers, str, bytes, lists, dicts with str keys), or pickle for this task")


class MsgpackSerializer:
    """Stateless: `msgpack.packb`/`unpackb` make their own buffers per call (thread safe)."""

    name = "msgpack"
    content_type = CONTENT_TYPE
    content_encoding = "binary"

    def dumps(self, obj: Any) -> bytes:
        try:
            data: bytes = msgpack.packb(obj, use_bin_type=True, default=_refuse)
        except ValueError as exc:  # msgpack's own, e.g. a structure nested too deep
            raise ValueError(f"this value cannot be sent as msgpack: {exc}") from None
        return data

    def loads(self, data: bytes) -> Any:
        try:
            return msgpack.unpackb(data, raw=False)
        except msgpack.ExtraData:
            raise DecodeError("body is not one msgpack value: bytes follow the first") from None
        except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
            raise DecodeError(f"body is not valid msgpack: {type(exc).__name__}: {exc}") from None
