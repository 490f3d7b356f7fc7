"""Callbacks (std plugin ``middleware``): after a success, link callbacks and the next step of
a chain get the return value; after a failure or a rejection, the error callbacks get the
failed task's id (Celery's publish form)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kernel import states
from kernel.canvas import Signature, signature
from kernel.interfaces.middleware import Call, Middleware
from kernel.message import new_id

if TYPE_CHECKING:
    from kernel.app import App

#: the states whose error callbacks are sent.
ERROR_STATES = frozenset({states.FAILURE, states.REJECTED})


class SendCallbacks(Middleware):
    name = "callbacks"
    critical = True

    def after(self, call: Call) -> None:
        request, embed = call.request, call.embed
        if call.state == states.SUCCESS:
            # The caller's reply_to goes along, so a chain's last result reaches it (rpc).
            lineage: dict[str, Any] = {"parent_id": request.id,
                                       "root_id": request.root_id or request.id,
                                       "reply_to": request.properties.get("reply_to")}
            for sig in embed.get("callbacks") or ():
                Signature.from_dict(sig, call.app).apply_async((call.value,), **lineage)
            chain = embed.get("chain") or []
            if chain:
                step = Signature.from_dict(chain[-1], call.app)
                step.apply_async((call.value,), chain=chain[:-1] or None, **lineage)
        elif call.state in ERROR_STATES:
            send_errbacks(call.app, embed.get("errbacks"), request.id, request.root_id)


def send_errbacks(app: App, errbacks: Iterable[Mapping[str, Any]] | None, failed_id: str,
                  root_id: str | None) -> None:
    """Celery's publish form: each error callback gets the failed task's id."""
    for errback in errbacks or ():
        signature(errback, app).apply_async((failed_id,), parent_id=failed_id,
                                            root_id=root_id or failed_id)


def children(call: Call) -> list[Any]:
    """Result tuples of the tasks this run sent and will send (callbacks, the next chain
    step), for its record's ``children``; their ids are fixed here, before they are sent."""
    found = list(call.request.children)
    if call.state == states.SUCCESS:
        after = [*(call.embed.get("callbacks") or ()), *(call.embed.get("chain") or [])[-1:]]
        for sig in after:
            if isinstance(sig, dict) and not sig.get("subtask_type"):
                task_id = sig.setdefault("options", {}).setdefault("task_id", new_id())
                found.append([[task_id, None], None])
    return found
