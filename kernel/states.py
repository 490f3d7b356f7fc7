"""Task states, as Celery names them on the wire.

`UNKNOWN` is kernel's addition: a task id the result store has never heard of, told apart from
`PENDING` (sent and waiting) when the producer records sent tasks.
"""

from __future__ import annotations

PENDING = "PENDING"
UNKNOWN = "UNKNOWN"
SENT = "SENT"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
REJECTED = "REJECTED"

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
