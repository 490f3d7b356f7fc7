"""Typed records that registration hooks return.

A plugin describes what it provides with these records; the kernel collects them into immutable
registries (`kernel.plugins.Registry`). Factories are called lazily, on first use, so a plugin's
entry-point module stays light: it may name a heavy client library only inside a factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernel.errors import PluginError
from kernel.interfaces.bootstep import Bootstep
from kernel.interfaces.pool import PoolCapabilities
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.interfaces.transport import TransportCapabilities

if TYPE_CHECKING:
    from kernel.interfaces import (
        Compressor,
        Pool,
        RateLimitStore,
        ResultStore,
        ScheduleStore,
        Serializer,
        Signer,
        Transport,
    )
    from kernel.interfaces.middleware import Middleware

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
    #: other names it answers to in ``task_compression`` (kombu's aliases: "gzip" for zlib).
    aliases: tuple[str, ...] = ()
    kind: str = field(default="compressor", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class SignerSpec:
    """``SignerSpec("auth", factory, "application/data")``: the name a serializer setting or
    ``accept_content`` uses, a factory taking the signer's plugin settings, and the content type
    its signed messages carry."""

    name: str
    factory: Callable[[Options], Signer]
    content_type: str
    kind: str = field(default="signer", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True)
class PoolSpec:
    name: str
    factory: Callable[..., Pool]
    capabilities: PoolCapabilities = PoolCapabilities()
    #: for a pool that must change the process before anything else runs (gevent's and
    #: eventlet's monkey-patching): called with no arguments, by ``kernel worker -P NAME``
    #: before it imports the app and by the worker before it starts. It MUST be idempotent,
    #: MUST raise `ConfigurationError` with a sentence when it is too late (threads or
    #: sockets exist), and returns what it did, for the banner ("gevent 26.9: monkey-patched
    #: at start-up").
    patch: Callable[[], str] | None = None
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
    """A worker bootstep: its name and its class, or ``"module:Class"`` to import it only when
    a worker starts (so listing plugins or making an App never imports a worker)."""

    name: str
    step: type[Bootstep[Any]] | str
    kind: str = field(default="bootstep", init=False)

    @classmethod
    def of(cls, step: type[Bootstep[Any]]) -> BootstepSpec:
        return cls(step.name, step)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name,)

    def load(self) -> type[Bootstep[Any]]:
        """The step class; `PluginError` when it cannot be imported or is named otherwise."""
        from importlib import import_module

        step = self.step
        if isinstance(step, str):
            module, _, attr = step.partition(":")
            try:
                step = getattr(import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise PluginError(f"bootstep {self.name!r}: cannot import {self.step} "
                                  f"({exc})") from exc
        if not (isinstance(step, type) and issubclass(step, Bootstep)):
            raise PluginError(f"bootstep {self.name!r}: {step!r} is not a Bootstep class")
        if getattr(step, "name", None) != self.name:
            raise PluginError(f"bootstep {self.name!r} is registered with the class "
                              f"{step.__qualname__}, whose name is "
                              f"{getattr(step, 'name', None)!r}")
        return step


@dataclass(frozen=True)
class MiddlewareSpec:
    name: str
    factory: Callable[[], Middleware]
    #: names of middleware this one goes before: its before-hook runs before theirs and its
    #: after-hook after theirs (names no installed plugin provides are ignored).
    before: tuple[str, ...] = ()
    #: names of middleware this one goes after.
    after: tuple[str, ...] = ()
    kind: str = field(default="middleware", init=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True)
class SettingSpec:
    """A setting a plugin reads, accepted by ``App(config=...)`` and checked like kernel's own:
    ``SettingSpec("s3_bucket", str, None, "the bucket results go to")``.

    `type` is what a value must be (a class, or a union such as ``str | None``); `secret`
    values are masked wherever settings are shown. The App passes a plugin's own settings to
    the factories of what that plugin registers, in their options, under these names.
    """

    name: str
    type: Any
    default: Any
    doc: str
    secret: bool = False
    kind: str = field(default="setting", init=False)

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
    | SettingSpec
)
