"""Helpers shared by kernel's own tests.

`wait_for` is the one in `kernel.testing`, so the conformance suites and our tests wait the same
way: on a condition with a deadline, never on a bare sleep.
"""

from __future__ import annotations

from kernel.testing.transport import wait_for

__all__ = ["wait_for"]
