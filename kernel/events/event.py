"""One event as Celery sends it (``reference/celery-protocol.md`` §4): its fields, the Lamport
clock, the routing key, and the envelope it travels in; and the reverse, with the checks that
turn a malformed message into a logged reason instead of a crash."""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from kernel.errors import DecodeError
from kernel.message import Envelope

#: what every worker event names as its software (Flower shows it).
SW_IDENT = "py-kernel"
#: task events a worker buffers and sends together, as one ``task.multi`` message.
MULTI = "task.multi"
#: a message bigger than this is not read (a receiver must not be made to hold gigabytes).
MAX_MESSAGE = 4 * 1024 * 1024


class Clock:
    """A Lamport clock: ``forward`` for each event sent, ``adjust`` from each one received.

    `forward` takes no lock (it runs for every task event): `itertools.count` hands out each
    value once, whatever the thread; `adjust` (rare: a remote-control request, a receiver)
    replaces the counter under a lock."""

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self._last = 0
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        return self._last

    def forward(self) -> int:
        self._last = value = next(self._count)
        return value

    def adjust(self, other: Any) -> int:
        """Move past `other` (an event's clock); a value that is not a number is ignored."""
        if isinstance(other, int) and not isinstance(other, bool):
            with self._lock:
                self._last = max(self._last, other) + 1
                self._count = itertools.count(self._last + 1)
        return self._last


_offset = [0.0, -1.0]  # hours west of UTC, and until when (monotonic) that holds


def utcoffset() -> float:
    """Hours west of UTC, as Celery 5.7 sends it (true division of the zone's offset); looked
    up once a minute, not per event (DST changes on the hour)."""
    now = time.monotonic()
    if now >= _offset[1]:
        zone = time.altzone if time.localtime().tm_isdst > 0 else time.timezone
        _offset[:] = [zone / 3600, now + 60.0]
    return _offset[0]


def routing_key(event_type: str) -> str:
    """``task-succeeded`` → ``task.succeeded``."""
    return event_type.replace("-", ".")


def client_hostname() -> str:
    """The hostname a client's events carry (Celery: ``gen<pid>@<host>``)."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


def make(event_type: str, hostname: str, clock: int, **fields: Any) -> dict[str, Any]:
    """An event with the fields every event carries."""
    fields.update(hostname=hostname, utcoffset=utcoffset(), pid=os.getpid(), clock=clock,
                  timestamp=time.time(), type=event_type)
    return fields


def envelope(body: dict[str, Any] | list[dict[str, Any]], hostname: str) -> Envelope:
    return Envelope(json.dumps(body, default=repr, separators=(",", ":")).encode(),
                    {"hostname": hostname}, {"delivery_mode": 1})


def unpack(envelope: Envelope) -> Iterator[dict[str, Any]]:
    """The events in one message (a dict, or a list of them: ``task.multi``); `DecodeError`
    with the reason when it holds none."""
    if len(envelope.body) > MAX_MESSAGE:
        raise DecodeError(f"event message of {len(envelope.body):,} bytes is over "
                          f"{MAX_MESSAGE:,}; not read")
    if envelope.content_type not in ("application/json", ""):
        raise DecodeError(f"event message has content type {envelope.content_type!r}; "
                          f"events are JSON")
    try:
        body = json.loads(envelope.body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError(f"event message is not JSON ({exc})") from None
    for event in body if isinstance(body, list) else [body]:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise DecodeError("event has no 'type' (it must be a JSON object with a string "
                              "'type')")
        if not isinstance(event.get("hostname", ""), str):
            raise DecodeError(f"event {event['type']} has a 'hostname' that is not a string")
        timestamp = event.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, (int, float)):
            raise DecodeError(f"event {event['type']} has a 'timestamp' that is not a number")
        yield event
