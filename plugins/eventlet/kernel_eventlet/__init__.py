"""kernel-eventlet: the eventlet pool (``kernel worker -P eventlet``).

Eventlet is deprecated upstream: new projects should use kernel-gevent (``-P gevent``) or the
asyncio pool (``-P asyncio``); docs/user-guide/pools.md says how to move. `patch()`
monkey-patches the process for a program that runs an eventlet worker without the command
line; call it first thing, before anything opens a connection or starts a thread.
"""

from kernel_eventlet.patching import patch

__all__ = ["patch"]
