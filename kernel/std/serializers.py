"""The json and pickle serializers (std plugin ``json``).

JSON follows kombu ≥ 5.3: values JSON cannot hold travel as ``{"__type__": T, "__value__": V}``
(datetime, date, time, decimal, uuid, bytes), so Celery peers read them back as the same types.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import pickle
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from kernel.plugin import DecodeError, SerializerSpec, hookimpl


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"__type__": "datetime", "__value__": value.isoformat()}
    if isinstance(value, dt.date):
        return {"__type__": "date", "__value__": value.isoformat()}
    if isinstance(value, dt.time):
        return {"__type__": "time", "__value__": value.isoformat()}
    if isinstance(value, Decimal):
        return {"__type__": "decimal", "__value__": str(value)}
    if isinstance(value, uuid.UUID):
        return {"__type__": "uuid", "__value__": {"hex": value.hex}}
    if isinstance(value, (bytes, bytearray)):
        try:
            return {"__type__": "bytes", "__value__": bytes(value).decode("utf-8")}
        except UnicodeDecodeError:
            return {"__type__": "base64", "__value__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(
        f"a {type(value).__name__} cannot be sent as JSON; pass plain values, or enable a "
        f"serializer that can carry it (pickle, msgpack) for this task"
    )


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": Decimal,
    "uuid": lambda v: uuid.UUID(hex=v["hex"]),
    "bytes": lambda v: v.encode("utf-8"),
    "base64": lambda v: base64.b64decode(v, validate=True),
}


def _object_hook(obj: dict[str, Any]) -> Any:
    kind = obj.get("__type__")
    if kind is not None and "__value__" in obj and len(obj) == 2:
        decoder = _DECODERS.get(kind)
        if decoder is not None:
            try:
                return decoder(obj["__value__"])
            except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
                raise DecodeError(f"bad {kind!r} value {obj['__value__']!r} in a "
                                  f"{{'__type__': ...}} marker: {exc}") from None
    return obj


class JsonSerializer:
    name = "json"
    content_type = "application/json"
    content_encoding = "utf-8"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(default=_default, separators=(",", ":"))
        self._decoder = json.JSONDecoder(object_hook=_object_hook)

    def dumps(self, obj: Any) -> bytes:
        return self._encoder.encode(obj).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        try:
            return self._decoder.decode(data.decode("utf-8") if isinstance(data, bytes) else data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise DecodeError(f"body is not valid JSON: {type(exc).__name__}: {exc}") from None


class PickleSerializer:
    """Unsafe: unpickling runs code chosen by the sender. Never accepted unless configured."""

    name = "pickle"
    content_type = "application/x-python-serialize"
    content_encoding = "binary"

    def dumps(self, obj: Any) -> bytes:
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError) as exc:
            # PicklingError is neither TypeError nor ValueError; the contract asks for those.
            raise TypeError(f"cannot pickle this {type(obj).__name__}: {exc}") from None

    def loads(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)  # noqa: S301 - opt-in via accept_content
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a decode error
            raise DecodeError(f"body is not a valid pickle: {exc}") from None


@hookimpl
def kernel_serializers() -> Iterable[SerializerSpec]:
    yield SerializerSpec("json", JsonSerializer.content_type, JsonSerializer)
    yield SerializerSpec("pickle", PickleSerializer.content_type, PickleSerializer, unsafe=True)
