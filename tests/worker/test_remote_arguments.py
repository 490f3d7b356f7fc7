"""Remote-control arguments as Celery's clients send them (`kernel.worker.remote.check`)."""

from __future__ import annotations

import pytest

from kernel.worker import remote


def test_flags_sent_as_0_or_1_are_bools() -> None:
    # Flower's revoke button sends terminate=1 (its strtobool gives ints).
    revoke = remote.COMMANDS["revoke"]
    assert remote.check(revoke, {"task_id": "t", "terminate": 1}) == {"task_id": "t",
                                                                       "terminate": True}
    assert remote.check(revoke, {"terminate": 0}) == {"terminate": False}
    with pytest.raises(remote.BadArguments, match="must be bool"):
        remote.check(revoke, {"terminate": 2})
    with pytest.raises(remote.BadArguments, match="must be bool"):
        remote.check(revoke, {"terminate": "yes"})
