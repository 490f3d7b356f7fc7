"""Celery message protocol v2: the envelope, task headers and body, and the worker's view of them.

`Envelope` is the transport-neutral message (AMQP-like properties, headers, body bytes) with one
JSON form, kombu's Redis envelope, that any transport storing whole messages can use.
`build_task` makes the v2 headers and properties a Celery worker expects; `Request.from_envelope`
reads them back, treating every header but ``task`` and ``id`` as optional.
"""

from __future__ import annotations

import base64
import contextvars
import json
import math
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kernel.errors import DecodeError, MessageError

ARGSREPR_MAX = 1024
#: headers protocol v2 defines (and kombu adds); everything else is the user's or a plugin's.
PROTOCOL_HEADERS = frozenset({
    "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries",
    "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    "replaced_task_nesting", "stamped_headers", "stamps", "compression", "redelivered", "meth",
})
EMPTY_EMBED: dict[str, Any] = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
#: the client node name Celery writes in `origin`.
ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"


def new_id() -> str:
    """A random (version 4) UUID as text, as Celery's task ids; built from 16 random bytes
    without `uuid.UUID`, whose checks cost more than the bytes on every send."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


#: the first hex digit of a v4 UUID's fourth group: the RFC 4122 variant (10xx) over the low
#: two bits of a random digit.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
#: compact JSON (one encoder, not one per call as json.dumps with options builds).
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


@dataclass
class Envelope:
    """One message as it travels: body bytes plus AMQP-like metadata."""

    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)
    content_type: str = "application/json"
    content_encoding: str = "utf-8"

    def to_json(self, queue: str, exchange: str = "",
                properties: dict[str, Any] | None = None) -> bytes:
        """kombu's Redis envelope: the body base64-encoded, a uuid delivery tag; `properties`
        override the envelope's own in the JSON (a transport's wire form of one)."""
        props = {**self.properties, **properties} if properties else dict(self.properties)
        props.setdefault("delivery_info", {"exchange": exchange, "routing_key": queue})
        props["body_encoding"] = "base64"
        props.setdefault("delivery_tag", new_id())
        return _ENCODE({
            "body": base64.b64encode(self.body).decode("ascii"),
            "content-encoding": self.content_encoding,
            "content-type": self.content_type,
            "headers": self.headers,
            "properties": props,
        }).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Envelope:
        """Parse a kombu envelope; `DecodeError` with the reason when it is not one."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError, TypeError) as exc:
            raise DecodeError(f"message is not a JSON envelope ({exc}); it was not sent by a "
                              f"kernel or Celery producer") from None
        if not isinstance(raw, dict) or "body" not in raw:
            raise DecodeError("message envelope has no 'body'; it was not sent by a kernel or "
                              "Celery producer")
        props = raw.get("properties") or {}
        headers = raw.get("headers") or {}
        content_type = raw.get("content-type") or "application/json"
        content_encoding = raw.get("content-encoding") or "utf-8"
        if not isinstance(headers, dict) or not isinstance(props, dict):
            raise DecodeError("message headers/properties are not JSON objects")
        if not isinstance(content_type, str) or not isinstance(content_encoding, str):
            raise DecodeError("message content-type/content-encoding are not strings")
        body = raw["body"]
        try:
            if isinstance(body, str):
                if props.get("body_encoding", "utf-8") == "base64":
                    body_bytes = base64.b64decode(body, validate=True)
                else:
                    body_bytes = body.encode("utf-8")
            else:
                body_bytes = json.dumps(body).encode()
        except (ValueError, RecursionError) as exc:
            # A lone surrogate cannot be UTF-8, a deep body not be re-encoded.
            raise DecodeError(f"message body cannot be read ({type(exc).__name__}: "
                              f"{exc})") from None
        return cls(
            body=body_bytes,
            headers=headers,
            properties=props,
            content_type=content_type,
            content_encoding=content_encoding,
        )


# ---------------------------------------------------------------------------------------- time


def to_iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def from_iso(value: str | None) -> float | None:
    """ISO-8601 (Celery writes `+00:00`, kombu < 5.3 `Z`) to unix time; None stays None."""
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise TypeError
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    except (ValueError, TypeError, OverflowError, OSError):
        raise DecodeError(f"bad timestamp {_short(value)}: expected ISO-8601") from None


def absolute_time(
    now: float, countdown: float | None = None, at: datetime | float | None = None
) -> float | None:
    """An ETA or expiry given as seconds-from-now or as a datetime/unix time, as unix time."""
    if at is not None:
        if isinstance(at, datetime):
            return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp()
        return float(at)
    if countdown is not None:
        return now + (countdown.total_seconds() if isinstance(countdown, timedelta) else countdown)
    return None


def _repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= ARGSREPR_MAX else text[: ARGSREPR_MAX - 3] + "..."


# ---------------------------------------------------------------------------------------- build


def build_task(
    *,
    name: str,
    task_id: str,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    body: bytes,
    content_type: str,
    content_encoding: str,
    eta: float | None = None,
    expires: float | None = None,
    now: float,
    retries: int = 0,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    root_id: str | None = None,
    parent_id: str | None = None,
    group_id: str | None = None,
    group_index: int | None = None,
    shadow: str | None = None,
    ignore_result: bool = False,
    priority: int = 0,
    reply_to: str | None = None,
    compression: str | None = None,
    headers: dict[str, Any] | None = None,
) -> Envelope:
    """The v2 envelope for one task call, `body` already encoded."""
    h: dict[str, Any] = {
        "lang": "py",
        "task": name,
        "id": task_id,
        "shadow": shadow,
        "eta": to_iso(eta),
        "expires": to_iso(expires),
        "group": group_id,
        "group_index": group_index,
        "retries": retries,
        "timelimit": [time_limit, soft_time_limit],
        "root_id": root_id or task_id,
        "parent_id": parent_id,
        "argsrepr": _repr(tuple(args)),
        "kwargsrepr": _repr(kwargs),
        "origin": ORIGIN,
        "ignore_result": ignore_result,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    if compression:
        h["compression"] = compression
    if headers:
        h.update(headers)
    props: dict[str, Any] = {
        "correlation_id": task_id,
        "delivery_mode": 2,
        "priority": priority,
    }
    if reply_to:
        props["reply_to"] = reply_to
    if expires is not None:
        props["expiration"] = str(max(0, int((expires - now) * 1000)))
    return Envelope(body, h, props, content_type, content_encoding)


# ---------------------------------------------------------------------------------------- read


@dataclass
class Request:
    """What a worker needs to know about a task message, read from its headers only.

    The body (args, kwargs, embed) is decoded separately, in the process that runs the task.
    """

    id: str
    name: str
    headers: dict[str, Any]
    properties: dict[str, Any]
    eta: float | None = None
    expires: float | None = None
    retries: int = 0
    time_limit: float | None = None
    soft_time_limit: float | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    group_index: int | None = None
    ignore_result: bool = False
    #: set by the worker once the body is decoded (what a retry re-sends).
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    embed: dict[str, Any] = field(default_factory=dict)
    #: the queue the message came from.
    queue: str | None = None
    #: result tuples of the tasks sent while this one ran (the record's ``children``).
    children: list[Any] = field(default_factory=list)

    @property
    def delivery_info(self) -> dict[str, Any]:
        info = self.properties.get("delivery_info") or {}
        return {"exchange": info.get("exchange", ""), "routing_key": self.queue or
                info.get("routing_key"), "priority": self.properties.get("priority"),
                "redelivered": bool(self.headers.get("redelivered"))}

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Request:
        """Read and check the headers; `MessageError` (never another error) with the reason
        when a header a worker relies on is missing or of the wrong type."""
        h, props = envelope.headers, envelope.properties
        if not isinstance(h, dict) or not isinstance(props, dict):
            raise MessageError("message headers and properties must be objects")
        if "task" not in h:
            raise MessageError("message has no 'task' header: protocol v1 and foreign messages "
                               "are not supported; send with a Celery 4+ or kernel client")
        if "id" not in h:
            raise MessageError("message has no 'id' header; send with a Celery 4+ or kernel client")
        name, task_id = _text(h, "task"), _text(h, "id")
        if not name or not task_id:
            raise MessageError("headers 'task' and 'id' must not be empty")
        limits = h.get("timelimit") or (None, None)
        if not (isinstance(limits, (list, tuple)) and len(limits) == 2
                and all(v is None or _seconds(v) for v in limits)):
            raise MessageError(f"header 'timelimit' must be [hard, soft] in seconds or null, "
                               f"got {_short(limits)}")
        hard, soft = limits
        retries = h.get("retries") or 0
        if isinstance(retries, str) and retries.isdigit():
            retries = int(retries)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise MessageError(f"header 'retries' must be a whole number, got {_short(retries)}")
        group_index = h.get("group_index")
        if group_index is not None and (not isinstance(group_index, int)
                                        or isinstance(group_index, bool)):
            raise MessageError(f"header 'group_index' must be a whole number or null, got "
                               f"{_short(group_index)}")
        for key in ("delivery_info",):
            if props.get(key) is not None and not isinstance(props[key], dict):
                raise MessageError(f"property {key!r} must be an object, got {_short(props[key])}")
        for key in ("reply_to", "correlation_id"):
            if props.get(key) is not None and not isinstance(props[key], str):
                raise MessageError(f"property {key!r} must be a string, got {_short(props[key])}")
        return cls(
            id=task_id,
            name=name,
            headers=h,
            properties=props,
            eta=_time_header(h, "eta"),
            expires=_time_header(h, "expires"),
            retries=retries,
            time_limit=hard,
            soft_time_limit=soft,
            root_id=_text(h, "root_id", optional=True),
            parent_id=_text(h, "parent_id", optional=True),
            group_id=_text(h, "group", optional=True),
            group_index=group_index,
            ignore_result=bool(h.get("ignore_result")),
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _seconds(value: Any) -> bool:
    """A number of seconds: finite, not negative, not a bool."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def _text(headers: dict[str, Any], name: str, *, optional: bool = False) -> Any:
    value = headers.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise MessageError(f"header {name!r} must be a string, got {_short(value)}")
    return value


def _time_header(headers: dict[str, Any], name: str) -> float | None:
    try:
        return from_iso(headers.get(name))
    except DecodeError as exc:
        raise DecodeError(f"header {name!r}: {exc}") from None


#: the request of the task running in this thread or coroutine: `Task.request`, and the
#: parent_id/root_id of tasks it sends.
current_request: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "kernel_current_request", default=None)


def parse_body(payload: Any) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Check the decoded body is ``[args, kwargs, embed]``, the embed's canvas included (each
    callback, error callback, chain step and chord body a signature dict), and return it;
    `MessageError` with the reason otherwise."""
    if not isinstance(payload, (list, tuple)) or len(payload) != 3:
        kind = f"a {len(payload)}-element list" if isinstance(payload, (list, tuple)) else (
            type(payload).__name__)
        raise MessageError(f"task body must be [args, kwargs, embed], got {kind}")
    args, kwargs, embed = payload
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        raise MessageError("task body must be [list, dict, dict]: args is not a list or kwargs "
                           "not an object")
    if not all(isinstance(key, str) for key in kwargs):
        raise MessageError("task body: every keyword argument's name must be a string")
    if embed is not None and not isinstance(embed, dict):
        raise MessageError("task body must be [args, kwargs, embed]: embed is not an object")
    embed = dict(embed or {})
    for key in ("callbacks", "errbacks", "chain"):
        steps = embed.get(key)
        if steps is not None:
            if not isinstance(steps, (list, tuple)):
                raise MessageError(f"embed {key!r} must be a list of signatures, got "
                                   f"{_short(steps)}")
            for step in steps:
                check_signature(step, f"embed {key!r}")
    if embed.get("chord") is not None:
        check_signature(embed["chord"], "embed 'chord'")
    return list(args), kwargs, embed


#: how deep a canvas may nest in one message (Celery's own recursion limit is far lower).
MAX_CANVAS_DEPTH = 64


def check_signature(data: Any, where: str, depth: int = 0) -> None:
    """`MessageError` unless `data` is a signature dict a worker can act on (Celery's form:
    ``task``, and ``args`` / ``kwargs`` / ``options`` of the right types), its members too."""
    if depth > MAX_CANVAS_DEPTH:
        raise MessageError(f"{where}: the canvas nests deeper than {MAX_CANVAS_DEPTH} levels")
    if not isinstance(data, dict) or not isinstance(data.get("task"), str):
        raise MessageError(f"{where} must be a signature (an object with a 'task' name), got "
                           f"{_short(data)}")
    for key, kinds in (("args", (list, tuple)), ("kwargs", dict), ("options", dict)):
        if data.get(key) is not None and not isinstance(data[key], kinds):
            raise MessageError(f"{where}: signature {data['task']!r} has {key} of the wrong "
                               f"type, {_short(data[key])}")
    kind = data.get("subtask_type")
    if kind is not None and not isinstance(kind, str):
        raise MessageError(f"{where}: signature {data['task']!r} has a subtask_type that is "
                           f"not a string")
    kwargs = data.get("kwargs") or {}
    inner = f"{where} > {data['task']}"
    members: list[Any] = []
    if kind in ("chain", "group"):
        members = kwargs.get("tasks") or []
        if not isinstance(members, (list, tuple)):
            raise MessageError(f"{inner}: 'tasks' must be a list of signatures")
    elif kind == "chord":
        header = kwargs.get("header") or []
        members = [*(header if isinstance(header, (list, tuple)) else [header]),
                   kwargs.get("body")]
    elif kind in ("xmap", "xstarmap", "chunks"):
        members = [kwargs.get("task")]
        if not isinstance(kwargs.get("it"), (list, tuple)) or (
                kind == "chunks" and not (isinstance(kwargs.get("n"), int) and kwargs["n"] > 0)):
            raise MessageError(f"{inner}: needs 'it' (a list) and, for chunks, 'n' (a positive "
                               f"whole number)")
    options = data.get("options") or {}
    for key in ("link", "link_error"):
        linked = options.get(key)
        if linked is not None:
            members += linked if isinstance(linked, (list, tuple)) else [linked]
    for member in members:
        check_signature(member, inner, depth + 1)
