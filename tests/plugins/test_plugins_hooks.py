"""Each registration, configuration and CLI hook, exercised through a programmatic plugin: what the
plugin returns is what the App's registries, tasks and command collection see.

(The worker lifecycle hooks are tested with the worker, in tests/worker/.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import click
import pytest

import kernel.std.serializers
from kernel import App
from kernel.codec import Codec
from kernel.errors import ConfigurationError, ContentDisallowed, DecodeError, PluginError
from kernel.fields import RecordFields
from kernel.hookspecs import hookimpl
from kernel.interfaces import Bootstep, PoolCapabilities, ResultStoreCapabilities, Unsigned
from kernel.interfaces.transport import TransportCapabilities
from kernel.specs import (
    BootstepSpec,
    CompressorSpec,
    MiddlewareSpec,
    Options,
    PoolSpec,
    ResultStoreSpec,
    RateLimitStoreSpec,
    ScheduleStoreSpec,
    SerializerSpec,
    SettingSpec,
    SignerSpec,
    TransportSpec,
)
from kernel.worker.pipeline import ordered
from kernel.worker.steps import ConsumerStep


def make(hook_name: str, result: Any, name: str = "") -> object:
    """A plugin object (registered as `name`) whose only hook, `hook_name`, returns `result`."""

    def impl(self: object) -> Any:
        return result

    impl.__name__ = hook_name
    return type(name or f"Plugin_{hook_name}", (), {hook_name: hookimpl(impl)})()


def unbuilt(*args: Any) -> Any:
    raise AssertionError("a factory must not run before the capability is used")


def app_with(plugin: object, **kwargs: Any) -> App:
    return App("t", autoload=False, plugins=[plugin], **kwargs)


def provides(app: App) -> dict[str, list[str]]:
    [info] = app.plugins.infos()
    assert info.status == "ok", info.error
    return info.provides


def provides_of(app: App, plugin: str) -> dict[str, list[str]]:
    [info] = [i for i in app.plugins.infos() if i.name == plugin]
    assert info.status == "ok", info.error
    return info.provides


# ------------------------------------------------------------------ registration hooks


def test_hook_kernel_transports() -> None:
    spec = TransportSpec("amqp", ("amqp", "amqps"), unbuilt,
                         TransportCapabilities(delayed_delivery=True, dead_letter=True))
    app = app_with(make("kernel_transports", [spec]))
    assert app.plugins.transports.get("amqps") is spec
    assert provides(app) == {"transport": ["amqp (amqp, amqps)"]}


def test_hook_kernel_result_stores() -> None:
    built: list[tuple[str, Options]] = []

    def factory(url: str, options: Options) -> Any:
        built.append((url, options))
        return None

    spec = ResultStoreSpec("kv", ("kv",), factory, ResultStoreCapabilities(push_wait=True))
    app = App("t", autoload=False, broker="kv://h/1",
              config={"result_backend_options": {"ttl": 5}, "transport_options": {"tls": 1}},
              plugins=[make("kernel_result_stores", [spec]), kernel.std.serializers])
    # a broker scheme a result store also serves becomes the result backend by default
    assert app.conf.result_backend == "kv://h/1"
    assert app.plugins.result_stores.get("kv").capabilities.push_wait
    assert built == []  # lazily: nothing is built until results are used
    # the store's options, plus where the broker is and how to connect to it (stores such as
    # rpc:// work through it), how long a write may wait for an unreachable server, and what
    # a store of Celery's columns needs: the result serializer's record fields, the age
    # results are kept and how many tasks may run at once
    assert app.backend.store is None and len(built) == 1
    url, options = built[0]
    fields = options.pop("record_fields")
    assert isinstance(fields, RecordFields) and fields.serializer.name == "json"
    assert (url, options) == (
        "kv://h/1", {"broker_url": "kv://h/1", "broker_options": {"tls": 1},
                     "connection_timeout": app.conf.broker_connection_timeout,
                     "result_expires": app.conf.result_expires,
                     "worker_concurrency": app.conf.worker_concurrency, "ttl": 5})


class ReversedJson:
    """A toy serializer: JSON text reversed (proves the codec calls the plugin's object)."""

    name = "rjson"
    content_type = "application/x-rjson"
    content_encoding = "utf-8"

    def dumps(self, obj: Any) -> bytes:
        import json

        return json.dumps(obj).encode()[::-1]

    def loads(self, data: bytes) -> Any:
        import json

        return json.loads(data[::-1])


def test_hook_kernel_serializers() -> None:
    app = app_with(make("kernel_serializers",
                        [SerializerSpec("rjson", ReversedJson.content_type, ReversedJson)]),
                   config={"accept_content": ["rjson"]})
    body, ctype, _, _ = app.codec.encode([[1], {"a": 2}, {}], "rjson")
    assert ctype == "application/x-rjson" and body.startswith(b"]")
    assert app.codec.decode(body, ctype) == [[1], {"a": 2}, {}]
    assert provides(app) == {"serializer": ["rjson"]}


class Rot1:
    name = "rot1"
    mime = "application/x-rot1"

    def compress(self, data: bytes) -> bytes:
        return bytes((b + 1) % 256 for b in data)

    def decompress(self, data: bytes) -> bytes:
        return bytes((b - 1) % 256 for b in data)


def test_hook_kernel_compressors() -> None:
    app = App("t", plugins=[make("kernel_compressors",
                                 [CompressorSpec("rot1", Rot1.mime, Rot1)])])
    body, _, _, header = app.codec.encode({"k": 1}, "json", "rot1")
    assert header == "application/x-rot1" and body == bytes(b + 1 for b in b'{"k":1}')
    assert app.codec.decode(body, "application/json", header) == {"k": 1}


class KeyByteSigner:
    """A toy signer: the key byte, then the inner content type, then the body."""

    name = "keybyte"
    content_encoding = "binary"
    serializer = "json"

    def __init__(self, key: int) -> None:
        self.key = key

    def sign(self, body: bytes, content_type: str, content_encoding: str) -> bytes:
        return bytes([self.key]) + content_type.encode() + b"\n" + body

    def verify(self, data: bytes) -> Unsigned:
        if not data or data[0] != self.key:
            raise DecodeError("message signature does not match this worker's key")
        content_type, _, body = data[1:].partition(b"\n")
        return Unsigned(body, content_type.decode(), "utf-8")


def test_hook_kernel_signers_sign_the_tasks_of_their_serializer_name() -> None:
    spec = SignerSpec("keybyte", lambda options: KeyByteSigner(options["key"]),
                      "application/x-keybyte")
    plugin = make("kernel_signers", [spec])
    app = App("t", plugins=[plugin])
    found = app.plugins.signers.get("keybyte")
    assert found is spec

    def codec(key: int) -> Codec:
        return Codec(app.plugins.serializers, app.plugins.compressors, accept=["keybyte"],
                     signers=app.plugins.signers, signer_options=lambda name: {"key": key})

    sending, receiving = codec(7), codec(9)
    body, ctype, cenc, _ = sending.encode([1, 2], "keybyte")
    assert (ctype, cenc) == ("application/x-keybyte", "binary")
    assert body == b"\x07application/json\n[1,2]"
    assert sending.decode(body, ctype) == [1, 2]
    with pytest.raises(DecodeError, match="signature"):
        receiving.decode(body, ctype)
    with pytest.raises(ContentDisallowed):
        sending.decode(b"[1,2]", "application/json")


def test_hook_kernel_pools() -> None:
    spec = PoolSpec("greenlets", unbuilt, PoolCapabilities(hard_time_limit=True, resize=True))
    app = app_with(make("kernel_pools", [spec]))
    assert app.plugins.pools.get("greenlets").capabilities.resize
    assert provides(app) == {"pool": ["greenlets"]}


def test_hook_kernel_schedule_stores() -> None:
    spec = ScheduleStoreSpec("etcd", ("etcd", "etcds"), unbuilt)
    app = app_with(make("kernel_schedule_stores", [spec]))
    assert app.plugins.schedule_stores.get("etcds") is spec
    assert provides(app) == {"schedule store": ["etcd (etcd, etcds)"]}


def test_hook_kernel_rate_limit_stores() -> None:
    spec = RateLimitStoreSpec("etcd", ("etcd", "etcds"), unbuilt)
    app = app_with(make("kernel_rate_limit_stores", [spec]))
    assert app.plugins.rate_limit_stores.get("etcds") is spec
    assert provides(app) == {"rate-limit store": ["etcd (etcd, etcds)"]}


class Metrics(Bootstep[None]):
    name = "metrics"
    requires = (ConsumerStep,)


def test_hook_kernel_bootsteps() -> None:
    app = app_with(make("kernel_bootsteps", [BootstepSpec.of(Metrics)]))
    assert app.plugins.bootsteps.get("metrics").load() is Metrics
    assert provides(app) == {"bootstep": ["metrics"]}


def test_a_bootstep_named_by_path_is_imported_only_when_loaded() -> None:
    lazy = BootstepSpec("metrics", f"{__name__}:Metrics")
    assert lazy.load() is Metrics
    with pytest.raises(PluginError, match="whose name is 'metrics'"):
        BootstepSpec("other", f"{__name__}:Metrics").load()
    with pytest.raises(PluginError, match="cannot import"):
        BootstepSpec("gone", "tests.plugins.no_such_module:Step").load()


def test_hook_kernel_middleware() -> None:
    spec = MiddlewareSpec("timing", unbuilt, before=("results",))
    app = app_with(make("kernel_middleware", [spec]))
    assert app.plugins.middleware.get("timing").before == ("results",)
    assert provides(app) == {"middleware": ["timing"]}


def test_middleware_is_placed_by_name_whatever_the_registration_order() -> None:
    specs = [MiddlewareSpec(name, unbuilt, before=before, after=after)
             for name, before, after in (("c", (), ("b",)), ("a", ("b",), ()), ("b", (), ()),
                                         ("z", ("a", "absent"), ()))]
    assert [s.name for s in ordered(specs)] == ["z", "a", "b", "c"]
    assert [s.name for s in ordered(reversed(specs))] == ["z", "a", "b", "c"]
    loop = [MiddlewareSpec("x", unbuilt, before=("y",)), MiddlewareSpec("y", unbuilt,
                                                                        before=("x",))]
    with pytest.raises(ConfigurationError, match="contradict"):
        ordered(loop)


class SettingsPlugin:
    """A plugin that declares settings and serves the ``kv`` result store with them."""

    @hookimpl
    def kernel_settings(self) -> Any:
        yield SettingSpec("kv_bucket", str, "results", "where results go")
        yield SettingSpec("kv_secret", str | None, None, "the password", secret=True)
        yield SettingSpec("kv_ttl", float, 60.0, "seconds a result lives")

    @hookimpl
    def kernel_result_stores(self) -> Any:
        yield ResultStoreSpec("kv", ("kv",), lambda url, options: ("kv-store", options))


def test_hook_kernel_settings() -> None:
    app = App("t", autoload=False, plugins=[SettingsPlugin()], broker="memory://",
              config={"kv_bucket": "mine", "kv_secret": "s3cr3t", "kv_ttl": 5})
    assert (app.conf.kv_bucket, app.conf.get("kv_ttl")) == ("mine", 5)
    assert app.conf.get("kv_secret") == "s3cr3t"
    assert provides_of(app, "SettingsPlugin")["setting"] == ["kv_bucket", "kv_secret", "kv_ttl"]
    assert app.conf.public(["kv_secret"])["kv_secret"] == "**"


def test_plugin_settings_are_checked_like_kernels_own() -> None:
    def build(config: dict[str, Any]) -> App:
        return App("t", autoload=False, plugins=[SettingsPlugin()], broker="memory://",
                   config=config)

    assert build({}).conf.kv_bucket == "results", "a setting not given has its default"
    with pytest.raises(ConfigurationError, match="unknown setting 'kv_buckte'; did you mean "
                                                 "'kv_bucket'"):
        build({"kv_buckte": "x"})
    with pytest.raises(ConfigurationError, match="setting 'kv_ttl' must be float, got 'soon'"):
        build({"kv_ttl": "soon"})
    with pytest.raises(ConfigurationError, match="'worker_concurrency' must be int"):
        build({"worker_concurrency": "2"})


def test_a_plugins_factories_get_its_own_settings_only() -> None:
    other = make("kernel_settings", [SettingSpec("other_thing", int, 1, "not kv's")],
                 name="other")
    app = App("t", autoload=False, plugins=[SettingsPlugin(), other, kernel.std.serializers],
              broker="memory://", results="kv://", config={"kv_bucket": "b", "other_thing": 2})
    kind, options = app.backend.store  # type: ignore[misc]
    assert kind == "kv-store"
    assert (options["kv_bucket"], options["kv_secret"], options["kv_ttl"]) == ("b", None, 60.0)
    assert "other_thing" not in options


def test_a_plugin_may_not_take_a_setting_kernel_has() -> None:
    greedy = make("kernel_settings", [SettingSpec("broker_url", str, "", "mine")], name="greedy")
    with pytest.raises(PluginError, match="declares the setting 'broker_url', which is "
                                          "kernel's own"):
        App("t", autoload=False, plugins=[greedy])


def test_registration_hook_may_return_a_generator_or_a_list() -> None:
    def gen() -> Iterator[PoolSpec]:
        yield PoolSpec("a", unbuilt)
        yield PoolSpec("b", unbuilt)

    for result in (gen(), [PoolSpec("a", unbuilt), PoolSpec("b", unbuilt)], None):
        app = app_with(make("kernel_pools", result))
        assert sorted(app.plugins.pools) == ([] if result is None else ["a", "b"])


# ------------------------------------------------------------------ configuration and CLI


def test_hook_kernel_task_options() -> None:
    app = app_with(make("kernel_task_options", ["tenant_quota"]))

    @app.task(tenant_quota=600, max_retries=1)
    def job() -> None: ...

    assert job.options.extra == {"tenant_quota": 600}
    assert job.options.max_retries == 1
    with pytest.raises(ConfigurationError, match="unknown task option.*tenant_quot.*tenant_quota"):
        app.task(tenant_quot=1)


def test_hook_kernel_app_created() -> None:
    seen: list[App] = []

    class Configure:
        @hookimpl
        def kernel_app_created(self, app: App) -> None:
            seen.append(app)
            app.conf.result_expires = 60

            @app.task(name="plugin.ping")
            def ping() -> str:
                return "pong"

    app = App("t", autoload=False, plugins=[Configure()])
    assert seen == [app]
    assert app.conf.result_expires == 60
    assert "plugin.ping" in app.tasks


def test_hook_kernel_cli_commands() -> None:
    @click.command("dlq")
    def dlq() -> None:
        """Show dead letters."""

    @click.command("top")
    def top() -> None:
        """Show running tasks."""

    app = App("t", autoload=False, plugins=[make("kernel_cli_commands", [dlq], "Dlq"),
                                            make("kernel_cli_commands", [top], "Top")])
    collected: Sequence[Sequence[click.Command]] = app.plugins.hook.kernel_cli_commands()
    names = sorted(cmd.name for found in collected for cmd in found if cmd.name)
    assert names == ["dlq", "top"]


def test_hook_kernel_autodiscover_packages(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "__init__.py").write_text("")
    (tmp_path / "inventory" / "jobs.py").write_text("IMPORTED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    asked: list[App] = []

    class Framework:
        @hookimpl
        def kernel_autodiscover_packages(self, app: App) -> list[str]:
            asked.append(app)
            return ["inventory"]

    app = App("t", autoload=False, plugins=[Framework()])
    app.autodiscover_tasks(related_name="jobs")
    assert asked == [], "the plugin is asked when the modules are imported, not before"
    assert app.import_discovered() == ["inventory.jobs"]
    assert asked == [app]


def test_hook_kernel_on_commit() -> None:
    pending: list[Any] = []

    class Transactions:
        @hookimpl
        def kernel_on_commit(self, app: App, callback: Any) -> bool:
            pending.append(callback)
            return True

    app = App("t", broker="memory://", results="memory://", plugins=[Transactions()])

    @app.task(name="t.ping")
    def ping(n: int) -> int:
        return n

    ping.delay_on_commit(1)
    ping.apply_async_on_commit((2,), queue="elsewhere")
    assert len(pending) == 2 and app.transport.size("celery") == 0, \
        "nothing is sent before the transaction commits"
    for commit in pending:
        commit()
    assert app.transport.size("celery") == 1 and app.transport.size("elsewhere") == 1
    bare = App("t", broker="memory://", results="memory://")
    with pytest.raises(ConfigurationError, match="no installed plugin knows your transactions; "
                       "install kernel\\[django\\]"):
        bare.task(ping.fn, name="t.ping").delay_on_commit(1)
