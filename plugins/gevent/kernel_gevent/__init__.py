"""kernel-gevent: the gevent pool (``kernel worker -P gevent``).

`patch()` monkey-patches the process for a program that runs a gevent worker without the
command line; call it first thing, before anything opens a connection or starts a thread.
"""

from kernel_gevent.patching import patch

__all__ = ["patch"]
