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
#: the run ended without a result of its own (`Task.replace`: the replacement writes it).
IGNORED = "IGNORED"

#: REJECTED is final here (unlike Celery, which never records it): the message was refused
#: (unknown task, undecodable body, too many deliveries) and will not run, so `get` raises.
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED, REJECTED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED, REJECTED})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED, REJECTED})
