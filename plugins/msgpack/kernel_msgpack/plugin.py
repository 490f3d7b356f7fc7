"""Entry point of kernel-msgpack (``kernel.plugins``: ``msgpack``). Kept light: msgpack itself
is imported by the factory, when a codec first needs the serializer."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, SerializerSpec, hookimpl

#: Celery's (kombu's) content type for msgpack bodies.
CONTENT_TYPE = "application/x-msgpack"


@hookimpl
def kernel_serializers() -> Iterable[SerializerSpec]:
    yield SerializerSpec("msgpack", CONTENT_TYPE,
                         Lazy("kernel_msgpack.serializer:MsgpackSerializer"))
