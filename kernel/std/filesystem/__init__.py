"""A result store in a directory (std plugin ``filesystem``): ``file:///abs/dir`` or
``file://relative/dir``, one file per key. Several processes may share the directory; it needs
no server. Kept light: the implementation is imported on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, hookimpl


RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec(
        "filesystem", ("file",),
        Lazy("kernel.std.filesystem.store:FileResultStore"), RESULT_STORE_CAPABILITIES
    )
