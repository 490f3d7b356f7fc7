"""Entry point of kernel-yaml (``kernel.plugins``: ``yaml``). Kept light: PyYAML itself is
imported by the factory, when a codec first needs the serializer."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, SerializerSpec, hookimpl

#: Celery's (kombu's) content type for YAML bodies.
CONTENT_TYPE = "application/x-yaml"


@hookimpl
def kernel_serializers() -> Iterable[SerializerSpec]:
    yield SerializerSpec("yaml", CONTENT_TYPE, Lazy("kernel_yaml.serializer:YamlSerializer"))
