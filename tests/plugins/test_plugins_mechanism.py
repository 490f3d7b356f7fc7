"""The plugin mechanism: registration, autoload, disabling, conflicts, failure isolation and the
messages a user gets when a capability is missing. One test per behaviour."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import kernel.plugins
from kernel.distributions import PROVIDERS

from kernel import App
from kernel.errors import (
    CapabilityNotFound,
    ConfigurationError,
    PluginConflictError,
    PluginError,
)
from kernel.hookspecs import hookimpl
from kernel.interfaces.transport import Delivery, Outgoing, Transport
from kernel.plugins import PluginInfo, PluginManager
from kernel.specs import Options, TransportSpec

STD_ENTRY_POINTS = {"serializers", "compression"}


class NullTransport(Transport):
    def __init__(self, url: str, options: Options) -> None:
        self.url = url

    def publish(self, messages: Sequence[Outgoing]) -> None:
        pass

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        return []

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        pass

    def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        pass


def transport_plugin(class_name: str, *schemes: str) -> object:
    """A plugin object (its registration name is `class_name`) serving `schemes`."""

    def kernel_transports(self: object) -> Iterator[TransportSpec]:
        yield TransportSpec(schemes[0], schemes, NullTransport)

    return type(class_name, (), {"kernel_transports": hookimpl(kernel_transports)})()


class BrokenMQ:
    """Its registration hook raises; its other hooks must then never be called."""

    @hookimpl
    def kernel_transports(self) -> Iterator[TransportSpec]:
        raise RuntimeError("libbrokenmq.so: cannot open shared object file")
        yield  # pragma: no cover - makes this a generator like a real plugin's hook

    @hookimpl
    def kernel_task_options(self) -> list[str]:
        return ["broken_option"]


def info(manager: PluginManager, name: str) -> PluginInfo:
    found = {i.name: i for i in manager.infos()}
    assert name in found, f"{name!r} not listed; listed: {sorted(found)}"
    return found[name]


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KERNEL_PLUGIN_AUTOLOAD", "KERNEL_DISABLE_PLUGINS", "KERNEL_BROKER_URL",
                "KERNEL_RESULT_BACKEND"):
        monkeypatch.delenv(var, raising=False)


def test_programmatic_registration_needs_no_entry_point() -> None:
    app = App("t", autoload=False, plugins=[transport_plugin("TinyMQ", "tiny", "tinys")],
              broker="tiny://host")
    listed = info(app.plugins, "TinyMQ")
    assert (listed.status, listed.provides) == ("ok", {"transport": ["tiny (tiny, tinys)"]})
    assert isinstance(app.transport, NullTransport) and app.transport.url == "tiny://host"
    assert app.plugins.transports.get("tinys").name == "tiny"


def test_programmatic_plugins_sit_beside_entry_points() -> None:
    app = App("t", plugins=[transport_plugin("TinyMQ", "tiny")])
    names = {i.name for i in app.plugins.infos()}
    assert "TinyMQ" in names and STD_ENTRY_POINTS <= names


def test_autoload_false_skips_entry_points() -> None:
    app = App("t", autoload=False)
    assert app.plugins.infos() == []
    assert len(app.plugins.serializers) == 0


def test_env_autoload_0_skips_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNEL_PLUGIN_AUTOLOAD", "0")
    assert App("t").plugins.infos() == []
    monkeypatch.setenv("KERNEL_PLUGIN_AUTOLOAD", "1")
    assert STD_ENTRY_POINTS <= {i.name for i in App("t").plugins.infos()}


def test_disable_by_name_removes_its_capabilities() -> None:
    app = App("t", disable=["compression"])
    listed = info(app.plugins, "compression")
    assert (listed.status, listed.provides) == ("disabled", {})
    assert "zlib" not in app.plugins.compressors
    with pytest.raises(CapabilityNotFound, match="no compressor for 'zlib'"):
        app.codec.encode([1], compression="zlib")
    assert info(app.plugins, "serializers").status == "ok"


def test_env_disable_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNEL_DISABLE_PLUGINS", "compression, TinyMQ")
    app = App("t", plugins=[transport_plugin("TinyMQ", "tiny")])
    assert info(app.plugins, "compression").status == "disabled"
    assert info(app.plugins, "TinyMQ").status == "disabled"
    assert "tiny" not in app.plugins.transports
    assert "zlib" not in app.plugins.compressors


def test_disable_by_distribution_name() -> None:
    app = App("t", disable=["kernel"])
    from_kernel = [i for i in app.plugins.infos() if i.distribution == "kernel"]
    assert from_kernel and {i.status for i in from_kernel} == {"disabled"}


def test_two_plugins_claiming_one_scheme_name_both() -> None:
    plugins = [transport_plugin("FirstMQ", "mq"), transport_plugin("SecondMQ", "mq", "mqs")]
    with pytest.raises(PluginConflictError) as caught:
        PluginManager(plugins, autoload=False).transports  # noqa: B018
    message = str(caught.value)
    assert "'FirstMQ'" in message and "'SecondMQ'" in message and "'mq'" in message
    assert "disable one" in message
    with pytest.raises(PluginConflictError):
        App("t", autoload=False, plugins=plugins, broker="mq://")


def test_failing_registration_hook_is_isolated() -> None:
    app = App("t", plugins=[BrokenMQ(), transport_plugin("TinyMQ", "tiny")], broker="tiny://")
    broken = info(app.plugins, "BrokenMQ")
    assert broken.status == "failed" and broken.provides == {}
    assert broken.error == ("kernel_transports raised RuntimeError: libbrokenmq.so: cannot open "
                            "shared object file")
    assert info(app.plugins, "TinyMQ").status == "ok"
    assert isinstance(app.transport, NullTransport)
    assert "json" in app.plugins.serializers
    # none of its other hooks run: the option it would declare is unknown
    with pytest.raises(ConfigurationError, match="unknown task option"):
        app.task(broken_option=1)(lambda: None)


def test_selecting_a_failed_plugins_capability_names_the_failure() -> None:
    app = App("t", autoload=False, plugins=[BrokenMQ()], broker="brokenmq://h")
    with pytest.raises(CapabilityNotFound) as caught:
        app.transport  # noqa: B018 - the property connects
    message = str(caught.value)
    assert "no transport for 'brokenmq'" in message
    assert "'BrokenMQ'" in message and "libbrokenmq.so" in message


def test_failure_of_a_plugin_named_like_the_scheme_is_stated_plainly() -> None:
    manager = PluginManager(autoload=False)
    manager.register(BrokenMQ(), name="brokenmq")
    with pytest.raises(CapabilityNotFound,
                       match="the plugin that provides it failed to load: kernel_transports "
                             "raised RuntimeError"):
        manager.transports.get("brokenmq")


def test_a_scheme_of_a_plugin_switched_off_says_how_to_switch_it_on() -> None:
    with pytest.raises(CapabilityNotFound,
                       match=r"no transport for 'rediss'; the plugin 'redis' \(kernel-redis\) "
                             r"that provides it is switched off; switch it on by dropping "
                             r"-p no:redis") as caught:
        App("t", broker="rediss://:secret@cache:6380/0", disable=["redis"]).transport  # noqa: B018
    assert "install" not in str(caught.value), "installing what is installed changes nothing"


def test_a_scheme_of_a_distribution_not_installed_names_its_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel.plugins, "PROVIDERS", {**PROVIDERS, "transport": {
        "faraway": ("faraway", "kernel-faraway-not-installed", "faraway")}})
    with pytest.raises(CapabilityNotFound, match=r"no transport for 'faraway'; install "
                                                 r"kernel\[faraway\]"):
        App("t", broker="faraway://host").transport  # noqa: B018


def test_a_scheme_no_distribution_of_ours_provides_names_no_extra() -> None:
    with pytest.raises(CapabilityNotFound) as caught:
        App("t", broker="nosuchmq://host").transport  # noqa: B018
    message = str(caught.value)
    assert "no kernel plugin distribution provides a transport named 'nosuchmq'" in message
    assert "install" not in message and "available: " in message and "sqlite" in message


def test_installed_but_not_autoloaded_says_so() -> None:
    with pytest.raises(CapabilityNotFound, match="kernel-redis is installed but plugins are not "
                                                 "loaded from entry points"):
        App("t", autoload=False, broker="redis://host").transport  # noqa: B018


def test_typo_in_scheme_suggests_the_closest() -> None:
    app = App("t", autoload=False, broker="sqlit:///kernel.db",
              plugins=[transport_plugin("Sqlite", "sqlite"), transport_plugin("Memory", "memory")])
    with pytest.raises(CapabilityNotFound, match="did you mean 'sqlite'") as caught:
        app.transport  # noqa: B018
    assert "available: memory, sqlite" in str(caught.value)


def test_misspelt_hook_is_refused_with_a_suggestion() -> None:
    class Misspelt:
        @hookimpl
        def kernel_transport(self) -> list[Any]:
            return []

    with pytest.raises(PluginError, match="unknown hook 'kernel_transport' "
                                          r"\(did you mean 'kernel_transports'\?\)"):
        App("t", autoload=False, plugins=[Misspelt()])


def test_listing_twice_after_a_late_registration_lists_each_capability_once() -> None:
    manager = PluginManager([transport_plugin("TinyMQ", "tiny")], autoload=False)
    manager.infos()
    manager.register(transport_plugin("OtherMQ", "other"))
    assert info(manager, "TinyMQ").provides == {"transport": ["tiny"]}
    assert info(manager, "OtherMQ").provides == {"transport": ["other"]}
