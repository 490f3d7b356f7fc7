"""What users give tasks: the options of ``@app.task`` (`TaskOptions`) and of a send
(`SendOptions`, one typed definition for ``apply_async``, ``send_task``, ``send_many`` and
signatures)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from difflib import get_close_matches
from typing import Any

from typing_extensions import TypedDict


@dataclass(frozen=True)
class TaskOptions:
    """Options given to ``@app.task``; None means "the app's setting"."""

    queue: str | None = None
    max_retries: int | None = 3
    acks_late: bool | None = None
    reject_on_worker_lost: bool | None = None
    ignore_result: bool | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    #: at most this often per worker: "10/s", "100/m", "1000/h".
    rate_limit: str | None = None
    #: at most this often across every worker (through the result store's atomic counter).
    global_rate_limit: str | None = None
    serializer: str | None = None
    compression: str | None = None
    priority: int | None = None
    bind: bool = False
    #: exception types that retry the task automatically (with the backoff below).
    autoretry_for: tuple[type[BaseException], ...] = ()
    #: seconds before a retry when neither countdown nor eta is given (and no backoff).
    default_retry_delay: float = 180.0
    #: exponential backoff for automatic retries: True (factor 1 s) or the factor in seconds;
    #: the n-th retry waits factor * 2**n, capped at retry_backoff_max.
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600.0
    #: full jitter: the wait is drawn uniformly from [0, backoff], so retries spread out.
    retry_jitter: bool = True
    #: a second send while this one is pending or running returns this one's result.
    unique: bool = False
    #: what makes two calls the same (default: the arguments); implies unique.
    unique_key: Callable[..., Any] | None = None
    #: seconds the uniqueness lasts at most (default one hour); implies unique.
    unique_for: float | None = None
    #: options added by plugins (`kernel_task_options`), untouched by the kernel.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls) if f.name != "extra")


class SendOptions(TypedDict, total=False):
    """Every option a send takes (``apply_async``, ``send_task``, ``send_many``, signatures);
    None means "the task's or the app's default"."""

    #: the task's id (default: a new uuid).
    task_id: str | None
    #: run no earlier than this many seconds from now (delayed at the broker).
    countdown: float | None
    #: run no earlier than this time (a datetime, or unix time).
    eta: datetime | float | None
    #: skip the task once this time passed (seconds from now, or a datetime).
    expires: float | datetime | None
    queue: str | None
    #: the exchange and routing key (AMQP; elsewhere the queue ``task_queues`` binds to
    #: them), as Celery's send options; see docs/user-guide/routing.md.
    exchange: str | None
    routing_key: str | None
    #: 0..9, a higher number first, where the broker has priorities.
    priority: int | None
    #: extra message headers (the user's own; kept through retries).
    headers: dict[str, Any] | None
    serializer: str | None
    compression: str | None
    time_limit: float | None
    soft_time_limit: float | None
    ignore_result: bool | None
    #: callbacks: signatures sent with this task's return value on success.
    link: Any
    #: error callbacks: signatures sent with this task's id on failure.
    link_error: Any
    #: the name shown for the task in logs and monitors.
    shadow: str | None
    parent_id: str | None
    root_id: str | None
    group_id: str | None
    group_index: int | None
    #: how many times this task was retried already (set by retries).
    retries: int | None
    #: the rest of a chain, last step first (set by the canvas).
    chain: Any
    #: the chord body this task is a header member of (set by the canvas).
    chord: Any
    #: where results go back to (rpc://); default: the result store's own address.
    reply_to: str | None


#: the names of `SendOptions`, for the check that turns a misspelt option into a sentence.
SEND_OPTIONS = frozenset(SendOptions.__optional_keys__)


def check_send_options(options: Iterable[str]) -> None:
    """TypeError, with the closest name, for options that are not send options."""
    unknown = sorted(set(options) - SEND_OPTIONS)
    if unknown:
        close = get_close_matches(unknown[0], sorted(SEND_OPTIONS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"unknown sending option(s): {', '.join(unknown)}{hint}")


def annotations_for(annotations: Any, name: str) -> dict[str, Any]:
    """What ``task_annotations`` sets on task `name`, as Celery reads it: a dict of task names
    (``"*"`` for every task) to options, an object with ``annotate(task_name)`` returning a
    dict or None, or a list of these (an earlier one winning, as in Celery)."""
    if annotations is None:
        return {}
    items = list(annotations) if isinstance(annotations, (list, tuple)) else [annotations]
    found: dict[str, Any] = {}
    for item in reversed(items):
        if isinstance(item, Mapping):
            for key in ("*", name):
                value = item.get(key)
                if isinstance(value, Mapping):
                    found.update(value)
        elif callable(getattr(item, "annotate", None)):
            value = item.annotate(name)
            if isinstance(value, Mapping):
                found.update(value)
        else:
            raise ValueError(f"task_annotations: {item!r} is neither a dict of task names nor "
                             f"an object with annotate(); give one of those or a list of them")
    unknown = sorted(set(found) - TaskOptions.names())
    if unknown:
        verb = "is not a task option" if len(unknown) == 1 else "are not task options"
        raise ValueError(f"task_annotations for {name!r} set {', '.join(unknown)}, which "
                         f"{verb}; known: {', '.join(sorted(TaskOptions.names()))}")
    return found
