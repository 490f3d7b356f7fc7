"""Typed records that registration hooks return.

A plugin describes what it provides with these records; the kernel collects them into immutable
registries (`kernel.plugins.Registry`). Factories are called lazily, on first use, so a plugin's
entry-point module stays light: it may name a heavy client library only inside a factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernel.interfaces.pool import PoolCapabilities
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.interfaces.transport import TransportCapabilities

if TYPE_CHECKING:
    from kernel.interfaces import (
        Bootstep,
        Compressor,
        Pool,
        RateLimitStore,
        ResultStore,
        ScheduleStore,
        Serializer,
        Signer,
        Transport,
    )
    from kernel.worker.middleware import Middleware

#: options from configuration (e.g. `transport_options`), passed to factories untouched.
Options = Mapping[str, Any]


@dataclass(frozen=True)
class Lazy:
    """A factory that imports ``"module:attribute"`` only when called, then calls it with the
    same arguments: how an entry-point module names a heavy implementation without importing it.
    """

    path: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from importlib import import_module

        module, _, name = self.path.partition(":")
        return getattr(import_module(module), name)(*args, **kwargs)


@dataclass(frozen=True)
class TransportSpec:
    name: str
    #: URL schemes this transport serves, e.g. ("redis", "rediss").
    schemes: tuple[str, ...]
    factory: Callable[[str, Options], Transport]
    capabilities: TransportCapabilities = TransportCapabilities()
    kind: str = field(default="transport", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.schemes


@dataclass(frozen=True)
class ResultStoreSpec:
    name: str
    schemes: tuple[str, ...]
    factory: Callable[[str, Options], ResultStore]
    capabilities: ResultStoreCapabilities = ResultStoreCapabilities()
    kind: str = field(default="result store", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.schemes


@dataclass(frozen=True)
class SerializerSpec:
    name: str
    content_type: str
    factory: Callable[[], Serializer]
    #: unsafe serializers (pickle) can run code from the message; never accepted by default.
    unsafe: bool = False
    kind: str = field(default="serializer", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True)
class CompressorSpec:
    name: str
    #: the `compression` header value, e.g. "application/x-gzip" for zlib (kombu's spelling).
    mime: str
    factory: Callable[[], Compressor]
    kind: str = field(default="compressor", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True)
class SignerSpec:
    name: str
    factory: Callable[[Options], Signer]
    kind: str = field(default="signer", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True)
class PoolSpec:
    name: str
    factory: Callable[..., Pool]
    capabilities: PoolCapabilities = PoolCapabilities()
    kind: str = field(default="pool", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True)
class ScheduleStoreSpec:
    name: str
    schemes: tuple[str, ...]
    factory: Callable[[str, Options], ScheduleStore]
    kind: str = field(default="schedule store", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.schemes


@dataclass(frozen=True)
class RateLimitStoreSpec:
    name: str
    schemes: tuple[str, ...]
    factory: Callable[[str, Options], RateLimitStore]
    kind: str = field(default="rate-limit store", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.schemes


@dataclass(frozen=True)
class BootstepSpec:
    step: type[Bootstep]
    kind: str = field(default="bootstep", init=False)

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.step.name,)


@dataclass(frozen=True)
class MiddlewareSpec:
    name: str
    factory: Callable[[], Middleware]
    #: lower runs earlier before a task (and later after it).
    order: int = 500
    kind: str = field(default="middleware", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name,)


AnySpec = (
    TransportSpec
    | ResultStoreSpec
    | SerializerSpec
    | CompressorSpec
    | SignerSpec
    | PoolSpec
    | ScheduleStoreSpec
    | RateLimitStoreSpec
    | BootstepSpec
    | MiddlewareSpec
)
