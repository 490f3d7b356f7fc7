"""The bootstep contract: a worker component started and stopped in dependency order.

A step names the steps it needs in `requires`; the blueprint starts those first and passes what
their `start` returned as keyword arguments named after them. Steps never set attributes on
the worker.

Built-in steps and what they provide: `app` (App), `config` (Config), `broker` (Transport),
`results` (ResultStore or None), `pool` (Pool), `consumer` (the consume loop).
"""

from __future__ import annotations

from typing import Any, ClassVar


class Bootstep:
    #: unique name; other steps require it by this name.
    name: ClassVar[str]
    #: names of steps that MUST be started before this one; their values are passed to `start`.
    requires: ClassVar[tuple[str, ...]] = ()

    def start(self, **deps: Any) -> Any:
        """Start the component; return what dependent steps receive (or None)."""
        return None

    def stop(self) -> None:
        """Stop the component. Called in reverse start order, also after a failed start of a later
        step. MUST NOT raise for a component that is already stopped."""
