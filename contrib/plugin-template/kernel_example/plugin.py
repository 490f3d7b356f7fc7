"""The plugin's entry point: ``example`` in group ``kernel.plugins``.

Light: the store is imported by its factory, when an App first needs it.
"""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: what the store promises; the conformance suite holds it to each one.
CAPABILITIES = ResultStoreCapabilities(push_wait=True, atomic_counter=True, persistent=False,
                                       multi_process=False)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("example", ("example",), Lazy("kernel_example.store:ExampleResultStore"),
                          CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    # App(config={"example_key_prefix": ...}) sets it; the factory finds it in its options.
    yield SettingSpec("example_key_prefix", str, "", "a prefix put before every key it stores")
