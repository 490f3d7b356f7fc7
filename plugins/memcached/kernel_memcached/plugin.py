"""Entry point of kernel-memcached (``kernel.plugins``: ``memcached``). Kept light: pymemcache
and the store are imported by the factory, on first use."""

from __future__ import annotations

from collections.abc import Iterable

from kernel.plugin import Lazy, ResultStoreCapabilities, ResultStoreSpec, SettingSpec, hookimpl

#: Celery's: ``cache+memcached://host:port/`` (``memcache``, ``pymemcache`` and ``pylibmc`` name
#: the same backend there).
SCHEMES = ("cache+memcached", "cache+memcache", "cache+pymemcache", "cache+pylibmc")

#: memcached's incr is atomic; waiting polls (memcached has no notifications).
RESULT_STORE_CAPABILITIES = ResultStoreCapabilities(
    push_wait=False, atomic_counter=True, persistent=True, multi_process=True)


@hookimpl
def kernel_result_stores() -> Iterable[ResultStoreSpec]:
    yield ResultStoreSpec("memcached", SCHEMES, Lazy("kernel_memcached.store:MemcachedStore"),
                          RESULT_STORE_CAPABILITIES)


@hookimpl
def kernel_settings() -> Iterable[SettingSpec]:
    yield SettingSpec("cache_backend_options", dict, {},
                      "Celery's options of the Memcached client (connect_timeout, timeout, "
                      "no_delay, max_pool_size)")
