"""Settings, with their defaults and the check that turns a typo into a sentence."""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from kernel.errors import ConfigurationError

DEFAULT_URL = "sqlite:///kernel.db"


@dataclass
class Config:
    """Every setting kernel reads. Names follow Celery's lowercase settings where one exists."""

    #: where task messages go; the embedded SQLite default needs no server.
    broker_url: str = DEFAULT_URL
    #: where results go; None disables results.
    result_backend: str | None = DEFAULT_URL
    transport_options: dict[str, Any] = field(default_factory=dict)
    result_backend_options: dict[str, Any] = field(default_factory=dict)
    #: where global rate limits keep their shared token buckets; None: the result backend's URL.
    rate_limit_store: str | None = None

    task_serializer: str = "json"
    result_serializer: str = "json"
    #: serializers (names or content types) a worker decodes; pickle must be added explicitly.
    accept_content: tuple[str, ...] = ("json",)
    task_compression: str | None = None

    task_default_queue: str = "celery"
    task_default_priority: int = 0
    task_acks_late: bool = True
    #: a task whose process died is given back to the broker (at-least-once), not failed.
    task_reject_on_worker_lost: bool = True
    #: after this many deliveries a message goes to the dead-letter queue instead of running.
    task_max_deliveries: int = 10
    task_time_limit: float | None = None
    task_soft_time_limit: float | None = None
    task_ignore_result: bool = False
    task_track_started: bool = False
    #: write a PENDING record when a task is sent, so a result tells PENDING (sent, waiting)
    #: from UNKNOWN (never heard of); one result-store write per send (batched in send_many).
    task_track_sent: bool = True
    #: run tasks inline in `delay` (tests); results are kept in memory.
    task_always_eager: bool = False
    task_eager_propagates: bool = True
    result_expires: float | None = 86400.0
    #: result extended records (name, args, kwargs, worker, retries, queue), as Celery's option.
    result_extended: bool = False
    #: seconds between the checks of ``celery.chord_unlock``, the chord fallback for result
    #: stores that cannot count.
    result_chord_retry_interval: float = 1.0

    worker_pool: str = "prefork"
    worker_concurrency: int = 0  # 0: the number of CPUs
    #: messages held per pool slot (prefetch = concurrency x multiplier).
    worker_prefetch_multiplier: int = 4
    #: seconds of work per pool slot a worker may prefetch beyond the multiplier when tasks are
    #: short (measured), up to 32 messages a slot; 0 holds exactly concurrency x multiplier.
    worker_prefetch_budget: float = 0.05
    worker_max_tasks_per_child: int | None = None
    worker_max_memory_per_child: int | None = None  # KiB
    #: seconds a warm shutdown waits for running tasks before giving them back.
    worker_shutdown_timeout: float = 30.0
    #: seconds a fetched message stays leased; the worker renews it every third of that.
    worker_lease_seconds: float = 30.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> Config:
        """Defaults, then ``KERNEL_BROKER_URL`` / ``KERNEL_RESULT_BACKEND``, then `values`, then
        `overrides`; an unknown name is an error that suggests the closest one."""
        merged: dict[str, Any] = {}
        env = {"broker_url": "KERNEL_BROKER_URL", "result_backend": "KERNEL_RESULT_BACKEND"}
        for key, var in env.items():
            if var in os.environ:
                merged[key] = os.environ[var] or None
        merged.update(values or {})
        merged.update({k: v for k, v in overrides.items() if v is not None})
        names = {f.name for f in dataclasses.fields(cls)}
        for key in merged:
            if key not in names:
                close = get_close_matches(key, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigurationError(f"unknown setting {key!r}{hint}")
        if "accept_content" in merged:
            merged["accept_content"] = tuple(merged["accept_content"])
        return cls(**merged)

    def public(self) -> dict[str, Any]:
        """Settings with credentials in URLs masked, for banners, logs and `conf`."""
        out = dataclasses.asdict(self)
        for key in ("broker_url", "result_backend", "rate_limit_store"):
            if out[key]:
                out[key] = mask_url(out[key])
        return out


def first_set(*values: Any) -> Any:
    """The first value that is not None: a call's option, then the task's, then the app's."""
    return next((value for value in values if value is not None), None)


def mask_url(url: str) -> str:
    """``redis://user:secret@host`` → ``redis://user:**@host``; never print a password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:**@{host}" if ":" in creds else f"{scheme}://**@{host}"


_VERIFY_MODES = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL,
                 "none": ssl.CERT_NONE}


def verify_mode(value: Any, setting: str) -> ssl.VerifyMode:
    """A TLS ``cert_reqs`` setting (Celery's ``broker_use_ssl`` form): an ``ssl.CERT_*``
    constant or its name (``required``, ``CERT_REQUIRED``, ...); `setting` names it in the
    error."""
    if isinstance(value, ssl.VerifyMode):
        return value
    name = str(value).lower().removeprefix("cert_")
    if name not in _VERIFY_MODES:
        raise ConfigurationError(f"{setting} must be ssl.CERT_REQUIRED, CERT_OPTIONAL or "
                                 f"CERT_NONE (or required, optional or none), got {value!r}")
    return _VERIFY_MODES[name]
