"""A fake Riak node for tests, where no Riak runs: Riak's HTTP key/value API answered by a
thread of the test process (`kernel.testing.http_fake.FakeHTTP`) on a free loopback port::

    from kernel_riak.testing import RiakFake

    with RiakFake() as riak:
        riak.url("results")        # riak://127.0.0.1:PORT/results
        riak.objects("results")    # {key: FakeObject(body, content_type, meta, ...)}

What it answers, as Riak KV 2.x/3.x documents it (``/buckets/B/keys/K`` and
``/types/T/buckets/B/keys/K``): ``GET``/``HEAD`` (200 with ``Content-Type``, ``ETag``,
``Last-Modified``, ``X-Riak-Vclock`` and the ``X-Riak-Meta-*`` stored; 404), ``PUT`` (204;
``If-None-Match: *`` and ``If-Match: <ETag>`` answered 412 when they fail), ``DELETE`` (204,
or 404), ``GET /buckets/B/keys?keys=true`` and ``GET /ping``; with `credentials`, HTTP basic
auth (401 otherwise). A bucket behaves as Riak's default bucket type: ``allow_mult`` false,
the last write wins, no siblings. Conditions are checked before the write and not with it,
as Riak's documentation warns ("this does not prevent concurrent writes"): the fake does not
make them atomic. Nothing else of Riak is here (no siblings, quorums, secondary indexes,
search, data types, links).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from typing_extensions import Self

from kernel.testing.http_fake import FakeHTTP, Reply, Request

__all__ = ["FakeObject", "RiakFake"]


@dataclass
class FakeObject:
    """One stored object, as Riak keeps it: its body and what was sent with it."""

    body: bytes
    content_type: str
    meta: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    vclock: str = ""
    modified: float = 0.0


class RiakFake:
    """A fake Riak node on 127.0.0.1 (see the module's docstring for what it answers);
    `credentials` (user, password) turns on basic auth, `log` names a file each request is
    written to. Stopped and started again, it keeps its objects, as a node keeps its disk."""

    def __init__(self, *, credentials: tuple[str, str] | None = None,
                 port: int | None = None, log: Path | None = None) -> None:
        self.credentials = credentials
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], dict[str, FakeObject]] = {}
        self.http = FakeHTTP(self.answer, "the fake Riak", port=port, log=log)
        self.name, self.log = self.http.name, self.http.log

    @property
    def port(self) -> int:
        return self.http.port

    def url(self, bucket: str, *, user: str | None = None) -> str:
        auth = f"{quote(user, safe='')}:{quote(self._password(user), safe='')}@" if user else ""
        return f"riak://{auth}127.0.0.1:{self.port}/{bucket}"

    def _password(self, user: str) -> str:
        return self.credentials[1] if self.credentials and self.credentials[0] == user \
            else "wrong"

    def objects(self, bucket: str, bucket_type: str = "default") -> dict[str, FakeObject]:
        """What `bucket` holds now (a copy)."""
        with self._lock:
            return dict(self._buckets.get((bucket_type, bucket), {}))

    def start(self) -> Self:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ the API

    def answer(self, request: Request) -> Reply:
        if self.credentials and not self._authorised(request):
            return Reply(401, b"Unauthorized", {"WWW-Authenticate": 'Basic realm="Riak"'})
        parts = request.segments
        if parts == ["ping"]:
            return Reply(200, b"OK", {"Content-Type": "text/plain"})
        bucket_type = "default"
        if len(parts) >= 2 and parts[0] == "types":
            bucket_type, parts = parts[1], parts[2:]
        if len(parts) == 3 and parts[0] == "buckets" and parts[2] == "keys" \
                and request.method == "GET" and request.query.get("keys") == "true":
            with self._lock:
                keys = list(self._buckets.get((bucket_type, parts[1]), {}))
            return Reply.json(200, {"keys": keys})
        if len(parts) == 4 and parts[0] == "buckets" and parts[2] == "keys":
            where = (bucket_type, parts[1])
            if request.method in ("GET", "HEAD"):
                return self._read(where, parts[3])
            if request.method in ("PUT", "POST"):
                return self._store(where, parts[3], request)
            if request.method == "DELETE":
                with self._lock:
                    gone = self._buckets.get(where, {}).pop(parts[3], None)
                return Reply(204) if gone else _not_found()
        return Reply(400, b"the fake Riak does not answer this request\n")

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return (user, password) == self.credentials

    def _read(self, where: tuple[str, str], key: str) -> Reply:
        with self._lock:
            found = self._buckets.get(where, {}).get(key)
        if found is None:
            return _not_found()
        headers = {"Content-Type": found.content_type, "ETag": found.etag,
                   "X-Riak-Vclock": found.vclock,
                   "Last-Modified": formatdate(found.modified, usegmt=True),
                   **{f"X-Riak-Meta-{name}": value for name, value in found.meta.items()}}
        return Reply(200, found.body, headers)

    def _store(self, where: tuple[str, str], key: str, request: Request) -> Reply:
        # Riak checks a condition against the object it reads, then writes: two steps, so
        # two writers at the same instant can both pass (its docs say so); this does too.
        with self._lock:
            current = self._buckets.get(where, {}).get(key)
        if request.headers.get("if-none-match") == "*" and current is not None:
            return Reply(412, b"Precondition Failed\n")
        expected = request.headers.get("if-match")
        if expected is not None and (current is None or current.etag != expected):
            return Reply(412, b"Precondition Failed\n")
        meta = {name[len("x-riak-meta-"):].title(): value
                for name, value in request.headers.items() if name.startswith("x-riak-meta-")}
        stored = FakeObject(request.body, request.headers.get("content-type", "text/plain"),
                            meta, etag=f'"{base64.urlsafe_b64encode(os.urandom(12)).decode()}"',
                            vclock=base64.b64encode(os.urandom(18)).decode(),
                            modified=time.time())
        with self._lock:
            self._buckets.setdefault(where, {})[key] = stored
        return Reply(204)


def _not_found() -> Reply:
    return Reply(404, b"not found\n", {"Content-Type": "text/plain"})
