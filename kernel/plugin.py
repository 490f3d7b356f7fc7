"""The one door for plugin authors: everything a plugin imports from kernel, besides the
contracts it implements (`kernel.interfaces`) and the suites that test it (`kernel.testing`).

A plugin is a module with hook implementations, named by an entry point of group
``kernel.plugins`` in its distribution's ``pyproject.toml``. The module stays light: it
returns records naming lazy factories, and the heavy client library is imported only when a
capability is first used::

    from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

    @hookimpl
    def kernel_result_stores():
        yield ResultStoreSpec("kv", ("kv",), Lazy("kernel_kv.store:KvStore"),
                              ResultStoreCapabilities(atomic_counter=True))

    @hookimpl
    def kernel_settings():
        yield SettingSpec("kv_bucket", str, "results", "the bucket results are kept in")

and its implementation reads its options with the helpers here::

    class KvStore(ResultStore):
        def __init__(self, url, options):
            reader = OptionReader(options, "kv result store")
            self.timeout = reader.number("socket_timeout", 5.0, positive=True)
            self.bucket = reader.text("kv_bucket", "results")

``kernel plugins new NAME --provides KIND`` writes a working distribution to start from;
docs/plugin-authoring.md walks through it. Every hook is documented in `kernel.hookspecs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kernel.errors import (
    CompressionDisallowed,
    ConfigurationError,
    ConnectionFailed,
    ContentDisallowed,
    DecodeError,
    KernelError,
    MessageError,
    MissingCapability,
    PluginError,
    ResultRefused,
    ResultTooLarge,
)
from kernel.fields import GroupFields, RecordFields, TaskFields, key_kind
from kernel.hookspecs import hookimpl
from kernel.interfaces.pool import PoolCapabilities
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.interfaces.transport import (
    DEAD_LETTER_SUFFIX,
    MAX_PRIORITY,
    TransportCapabilities,
    clamp_priority,
    exchange_type,
    topic_matches,
)
from kernel.message import Envelope
from kernel.parsing import (
    TLS_KEYS,
    OptionReader,
    mask_url,
    parse_duration,
    tls_settings,
    url_query,
    verify_mode,
)
from kernel.records import GROUP_KEY_PREFIX, TASK_KEY_PREFIX, group_key, task_key
from kernel.specs import (
    BootstepSpec,
    CompressorSpec,
    Lazy,
    MiddlewareSpec,
    Options,
    PoolSpec,
    RateLimitStoreSpec,
    ResultStoreSpec,
    ScheduleStoreSpec,
    SerializerSpec,
    SettingSpec,
    SignerSpec,
    TransportSpec,
)

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "GROUP_KEY_PREFIX",
    "MAX_PRIORITY",
    "TASK_KEY_PREFIX",
    "TLS_KEYS",
    "BootstepSpec",
    "CompressorSpec",
    "ConfigurationError",
    "ConnectionFailed",
    "CompressionDisallowed",
    "ContentDisallowed",
    "DecodeError",
    "Envelope",
    "GroupFields",
    "KernelError",
    "Lazy",
    "MessageError",
    "MiddlewareSpec",
    "MissingCapability",
    "OptionReader",
    "Options",
    "PluginError",
    "ResultRefused",
    "ResultTooLarge",
    "PoolCapabilities",
    "PoolSpec",
    "RecordFields",
    "RateLimitStoreSpec",
    "ResultStoreCapabilities",
    "ResultStoreSpec",
    "ScheduleStoreSpec",
    "SerializerSpec",
    "SettingSpec",
    "SignerSpec",
    "TransportCapabilities",
    "TaskFields",
    "TransportSpec",
    "clamp_priority",
    "group_key",
    "hookimpl",
    "key_kind",
    "mask_url",
    "retry_within",
    "parse_duration",
    "task_key",
    "tls_settings",
    "exchange_type",
    "topic_matches",
    "url_query",
    "verify_mode",
]


T = TypeVar("T")


def retry_within(timeout: float, attempt: Callable[[], T],
                 retry_on: tuple[type[BaseException], ...],
                 failed: Callable[[BaseException], KernelError]) -> T:
    """`attempt()`, tried again with a backoff (50 ms doubling to 500 ms) while it raises one
    of `retry_on` and `timeout` seconds have not passed; then `failed(last error)` is raised,
    chained to it. For a store that MUST give up within ``connection_timeout``: give each
    attempt a socket timeout well below `timeout`, and retry only what is safe to send twice."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        try:
            return attempt()
        except retry_on as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise failed(exc) from exc
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.5)
