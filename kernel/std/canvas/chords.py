"""Chords on the worker (std plugin ``canvas``): counting header members as they finish and
sending the body exactly once, or failing it exactly once; and what happens to the canvas
around a task that fails or ends without running.

Counting goes through the result store's `ResultStore.chord_part` (Celery's keys under
``celery-taskset-meta-<gid>``: the client writes the size ``.s`` before the header is sent). It
needs ``capabilities.atomic_counter``; with a store that cannot count, the client sends Celery's
``celery.chord_unlock`` task instead, which checks the members' results and retries itself
until they are all ready.

When a header member fails (FAILURE or REVOKED), the body does not run: once every member has
finished, the body is *abandoned*. Every task it would have sent is recorded as FAILURE with a
`ChordError` naming the failed member, and the error callbacks of the tasks that would have
started are sent, once. A body that is itself a member of an outer chord counts there as a
failed member, so the outer chord's error callbacks fire too, at any depth. The same holds for
a failed chain step: the steps after it are recorded as failed (their error callbacks are not
sent: the chain's own were, by the step that failed), and one that belongs to a chord counts
there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kernel import states
from kernel.canvas import Signature, group, signature
from kernel.errors import ChordError
from kernel.interfaces.middleware import Call, Middleware
from kernel.records import exception_from_dict, group_key
from kernel.result import AsyncResult, from_tuple
from kernel.std.middleware.callbacks import send_errbacks

if TYPE_CHECKING:
    from kernel.app import App

log = logging.getLogger("kernel.worker")


def count(app: App, group_id: str, index: int | None, task_id: str, state: str, value: Any,
          body: Mapping[str, Any], lineage: Mapping[str, Any]) -> None:
    """Count a finished header member; the last one sends (or abandons) the body."""
    store = app.backend.store
    if store is None or not store.capabilities.atomic_counter or store.capabilities.chord_unlock:
        return  # the client sent celery.chord_unlock instead
    entry = app.backend.chord_entry(task_id, state, value)
    entries = store.chord_part(group_key(group_id), index, task_id, entry,
                               app.conf.result_expires)
    if entries is not None:
        finish(app, signature(body, app),
               [app.backend.chord_outcome(e) for e in entries], lineage)


def finish(app: App, body: Signature, outcomes: Sequence[tuple[str, str, Any]],
           lineage: Mapping[str, Any]) -> None:
    """Every header member finished: send the body with their values, in order, or abandon
    it if one of them failed."""
    for task_id, state, value in outcomes:
        if state in states.PROPAGATE_STATES:
            exc = exception_from_dict(value) if isinstance(value, dict) else value
            abandon(app, body, ChordError(f"Dependency {task_id} raised {exc!r}"), lineage)
            return
    body.apply_async(([value for _, _, value in outcomes],), **lineage)


def abandon(app: App, sig: Signature, exc: BaseException, lineage: Mapping[str, Any],
            *, errbacks: bool = True) -> None:
    """`sig` will never run: fail every task it would send (see the module docstring)."""
    sig.run((), {}, Abandoner(app, exc, lineage, errbacks))


def abandon_chain(app: App, steps: Iterable[Mapping[str, Any]] | None, exc: BaseException,
                  lineage: Mapping[str, Any]) -> None:
    """The rest of a chain (as embedded: last step first) after a step that failed, in the
    order they would have run, so the chain's own result is the last one written."""
    for step in reversed(list(steps or ())):
        abandon(app, signature(step, app), exc, lineage, errbacks=False)


class Abandoner:
    """The `Sender` for a signature that will never run: each task it would send is recorded
    as failed with `exc` and sends its error callbacks (if `errbacks`); one that belongs to a
    chord counts there; the chain after it is abandoned in turn."""

    def __init__(self, app: App, exc: BaseException, lineage: Mapping[str, Any],
                 errbacks: bool) -> None:
        self.app = app
        self.exc = exc
        self.lineage = lineage
        self.errbacks = errbacks

    def send(self, sigs: Sequence[Signature], args: Sequence[Any],
             kwargs: Mapping[str, Any]) -> list[AsyncResult[Any]]:
        return [self._fail(sig) for sig in sigs]

    def chord(self, header: group, body: Signature, args: Sequence[Any],
              kwargs: Mapping[str, Any]) -> None:
        # The header never runs either: recorded as failed, counted nowhere.
        quiet = Abandoner(self.app, self.exc, self.lineage, errbacks=False)
        header.send_members(args, kwargs, quiet, chord_body=None)
        body.run(([],), {}, self)

    def _fail(self, sig: Signature) -> AsyncResult[Any]:
        app, opts = self.app, sig.options
        task_id = str(sig.call((), {})[3]["task_id"])
        root_id = self.lineage.get("root_id")
        if app.conf.result_backend and not opts.get("ignore_result"):
            extra = {k: v for k, v in (("group_id", opts.get("group_id")),
                                       ("parent_id", self.lineage.get("parent_id"))) if v}
            app.backend.store_result(task_id, states.FAILURE, self.exc, extra=extra)
        if self.errbacks:
            send_errbacks(app, opts.get("link_error"), task_id, root_id)
        own = {"parent_id": task_id, "root_id": root_id or task_id}
        if opts.get("chord") and opts.get("group_id"):
            count(app, opts["group_id"], opts.get("group_index"), task_id, states.FAILURE,
                  self.exc, opts["chord"], own)
        abandon_chain(app, opts.get("chain"), self.exc, own)
        return AsyncResult(task_id, app)


class CountChords(Middleware):
    """After a task ended (not when it will be retried): count it in its chord, and abandon
    the rest of its chain if it did not succeed."""

    name = "chord"
    critical = True

    def after(self, call: Call) -> None:
        if call.state not in states.READY_STATES:
            return
        request = call.request
        lineage = {"parent_id": request.id, "root_id": request.root_id or request.id}
        if call.state != states.SUCCESS:
            abandon_chain(call.app, call.embed.get("chain"), call.value, lineage)
        body = call.embed.get("chord")
        if body and request.group_id:
            count(call.app, request.group_id, request.group_index, request.id, call.state,
                  call.value, body, lineage)


def unlock(app: App, group_id: str, body: Mapping[str, Any], members: Sequence[Any],
           lineage: Mapping[str, Any]) -> bool:
    """``celery.chord_unlock``'s check: True once every member is ready and the body was
    sent (or abandoned); False to try again later."""
    results = [from_tuple(m, app) for m in members]
    if not all(r.ready() for r in results):
        return False
    outcomes = [(r.id, r.state, r.result) for r in results]  # type: ignore[union-attr]
    log.debug("chord %s: all %d members ready", group_id, len(results))
    finish(app, signature(body, app), outcomes, lineage)
    return True
