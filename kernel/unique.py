"""Unique tasks: a second send while the first is pending or running returns the first's
result handle instead of a duplicate.

The claim is a counter in the result store (``kernel-unique-<task>-<digest>``, atomic where the
store declares ``atomic_counter``): the sender that counts 1 owns it, records its task id beside
it, and publishes; the others read that id. The worker releases the claim when the task ends (not
on a retry); ``unique_for`` seconds bound it in any case, so a lost worker never locks forever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kernel.errors import ConfigurationError

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.task import Task

#: the header that carries the claim key to the worker (and through retries).
HEADER = "kernel_unique"
#: how long a claim lives when the task sets neither unique_for nor an expiry.
DEFAULT_FOR = 3600.0
#: how long a second sender waits for the owner to record its task id.
ID_WAIT = 0.5


def key_for(task: Task[Any, Any], args: Sequence[Any], kwargs: dict[str, Any]) -> str | None:
    """The claim key of this call, or None when the task is not unique."""
    opts = task.options
    if not (opts.unique or opts.unique_key or opts.unique_for):
        return None
    if opts.unique_key is not None:
        identity = str(opts.unique_key(*args, **kwargs))
    else:
        identity = json.dumps([list(args), kwargs], sort_keys=True, default=repr)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"kernel-unique-{task.name}-{digest}"


def claim(app: App, key: str, task_id: str, ttl: float) -> str | None:
    """Take the claim for `task_id`; None if taken, else the id of the task that holds it."""
    store = app.backend.store
    if store is None or not store.capabilities.atomic_counter:
        raise ConfigurationError("unique tasks need a result store with an atomic counter "
                                 "(sqlite, redis, memory, filesystem)")
    for _ in range(3):
        if store.incr(key, 1, ttl) == 1:
            store.set([(key + ".id", task_id.encode())], ttl)
            return None
        # The owner records its id right after counting 1; none after a moment means the
        # claim lapsed (the id expired first) or its sender died: take it over.
        holder = store.get(key + ".id") or store.wait(key + ".id", ID_WAIT)
        if holder is not None:
            return holder.decode()
        release(app, key)
    raise ConfigurationError(f"cannot take the unique-task claim {key}: other senders keep "
                             f"taking it; try again")


def release(app: App, key: str) -> None:
    store = app.backend.store
    if store is not None:
        store.delete([key, key + ".id"])
