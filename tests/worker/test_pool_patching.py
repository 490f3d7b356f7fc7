"""What the worker does for a pool whose plugin must change the process first (`PoolSpec.patch`:
kernel-gevent's and kernel-eventlet's monkey-patching) and for a pool of green slots
(`PoolCapabilities.green`): patched once, before the worker starts anything, said in the banner,
a refusal surfacing as the plugin's sentence; prefetch by slot. The pool here is the threads
pool under another name: what is tested is the worker's side, not a green library."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kernel import App, hookimpl
from kernel.errors import ConfigurationError
from kernel.interfaces.pool import PoolCapabilities
from kernel.specs import Lazy, PoolSpec
from kernel.worker import Worker
from kernel.worker.consumer import prefetch_bounds

GREEN = PoolCapabilities(soft_time_limit=True, resize=True, green=True)


class Patching:
    """A plugin whose pool records each patch, or refuses as a green library would."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls = 0
        self.refuse = refuse

    def patch(self) -> str:
        if self.refuse:
            raise ConfigurationError("greenlib must monkey-patch the process before any thread")
        self.calls += 1
        return "greenlib 1.0: monkey-patched before the app"

    @hookimpl
    def kernel_pools(self) -> Iterator[PoolSpec]:
        yield PoolSpec("greenish", Lazy("kernel.std.pools.threads:ThreadPool"), GREEN,
                       patch=self.patch)


def _app(plugin: Patching) -> App:
    url = f"memory://{uuid.uuid4().hex}"
    return App("patching", broker=url, results=url, plugins=[plugin],
               config={"task_default_queue": f"q-{uuid.uuid4().hex}"})


def test_the_worker_patches_once_before_it_starts_and_says_so_in_the_banner() -> None:
    plugin = Patching()
    app = _app(plugin)
    worker = Worker(app, pool="greenish", concurrency=1000)
    try:
        worker.start()
        worker._patch()  # run() patches before the banner, start() again: once is done
        assert plugin.calls == 1
        rows = dict(worker.banner_rows())
        assert rows["patched"] == "greenlib 1.0: monkey-patched before the app"
        assert rows["prefetch"] == "1000 (up to 2000 while tasks are short)"
    finally:
        worker.stop()


def test_a_refused_patch_stops_the_worker_with_the_plugins_sentence() -> None:
    app = _app(Patching(refuse=True))
    try:
        with pytest.raises(ConfigurationError, match="before any thread"):
            Worker(app, pool="greenish").start()
    finally:
        app.close()


def test_green_slots_hold_one_message_each_not_the_multiplier() -> None:
    # 1,000 slots and a multiplier of 4: 4,000 held by a threads pool, 1,000 by green slots,
    # and never more than one waiting per slot as the budget finds tasks short.
    plain = PoolCapabilities(resize=True)
    assert prefetch_bounds(1000, 4000, 0.05, plain) == (4000, 32000)
    assert prefetch_bounds(1000, 4000, 0.05, GREEN) == (1000, 2000)
    assert prefetch_bounds(1000, 4000, 0.0, GREEN) == (1000, 1000)
