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

A result store on object storage (a bucket of blobs) subclasses `ObjectStore` and implements
only its client's primitives (read, write, conditional writes, delete, list); the kit builds
the contract on them (`kernel.objectstore`). A pool of green threads (gevent, eventlet)
subclasses `GreenPool` and gives it its library's few primitives (`GreenLibrary`) and a
`Patcher` that monkey-patches the process early (`kernel.greenpool`).

``kernel plugins new NAME --provides KIND`` writes a working distribution to start from;
docs/plugin-authoring.md walks through it. Every hook is documented in `kernel.hookspecs`.
"""

from __future__ import annotations

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
from kernel.greenpool import GreenLibrary, GreenPool, Patcher
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
from kernel.objectstore import (
    EXPIRES_METADATA,
    ContainerMissing,
    Lost,
    ObjectListing,
    ObjectStore,
    StoredObject,
    Throttled,
    Unreached,
    format_deadline,
    parse_deadline,
)
from kernel.parsing import (
    TLS_KEYS,
    OptionReader,
    aws_error,
    mask_url,
    parse_duration,
    tls_settings,
    url_query,
    verify_mode,
)
from kernel.records import GROUP_KEY_PREFIX, TASK_KEY_PREFIX, group_key, task_key
from kernel.supervision import retry_within
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
    "EXPIRES_METADATA",
    "GROUP_KEY_PREFIX",
    "MAX_PRIORITY",
    "TASK_KEY_PREFIX",
    "TLS_KEYS",
    "BootstepSpec",
    "CompressorSpec",
    "ConfigurationError",
    "ContainerMissing",
    "ConnectionFailed",
    "CompressionDisallowed",
    "ContentDisallowed",
    "DecodeError",
    "Envelope",
    "GreenLibrary",
    "GreenPool",
    "GroupFields",
    "KernelError",
    "Lazy",
    "Lost",
    "MessageError",
    "MiddlewareSpec",
    "MissingCapability",
    "ObjectListing",
    "ObjectStore",
    "OptionReader",
    "Options",
    "Patcher",
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
    "StoredObject",
    "TransportCapabilities",
    "TaskFields",
    "Throttled",
    "TransportSpec",
    "Unreached",
    "clamp_priority",
    "group_key",
    "hookimpl",
    "key_kind",
    "aws_error",
    "mask_url",
    "retry_within",
    "parse_deadline",
    "parse_duration",
    "task_key",
    "tls_settings",
    "exchange_type",
    "format_deadline",
    "topic_matches",
    "url_query",
    "verify_mode",
]
