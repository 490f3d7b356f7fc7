"""A small HTTP service in a thread of the test's own process, on a free loopback port: the
boundary a fake of a service that cannot run here sits at (the service's own REST API, so the
real client library and kernel's store speak HTTP to it as to the service)::

    from kernel.testing.http_fake import FakeHTTP, Reply, Request

    def answer(request: Request) -> Reply:
        if request.method == "GET" and request.segments == ["ping"]:
            return Reply.json(200, {"ok": True})
        return Reply(404)

    with FakeHTTP(answer, "my service") as server:
        client.get(server.base_url + "/ping")
        server.stop()    # connections refused now: the service is down
        server.start()   # the same port again

`answer` runs on the server's threads (one per connection), so the fake guards its state
with a lock of its own. Only what a fake answers exists: a test's fake says in its module
docstring which parts of the service it models, and must not answer what the real service
would refuse.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from typing_extensions import Self

from kernel.testing.servers import free_port

__all__ = ["FakeHTTP", "Reply", "Request"]


@dataclass(frozen=True)
class Request:
    """One request as the fake sees it: `segments` is the path split at ``/`` and each part
    percent-decoded (so a key holding ``/`` stays one segment), `query` its parameters (the
    last value of each), `headers` with lower-case names."""

    method: str
    path: str
    segments: list[str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    """What the fake answers: a status, headers, a body."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(value).encode(),
                   {"Content-Type": "application/json", **(headers or {})})


class FakeHTTP:
    """`answer` served on 127.0.0.1 (a free port, or `port`) by a thread of this process,
    from `start` to `stop`; `name` is what failures call it, `log` the file each request is
    appended to (with its status), for failure messages to point to."""

    def __init__(self, answer: Callable[[Request], Reply], name: str, *,
                 port: int | None = None, log: Path | None = None) -> None:
        self.answer = answer
        self.name = name
        self.host = "127.0.0.1"
        self.port = port or free_port()
        #: each request and the status answered, one line each (os.devnull: nowhere).
        self.log = log or Path(os.devnull)
        self._logging = log is not None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<FakeHTTP {self.name} on {self.host}:{self.port}>"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        if self._server is not None:
            return self
        self.log.parent.mkdir(parents=True, exist_ok=True)
        server = _Server((self.host, self.port),
                         _handler(self.answer, self.log if self._logging else None))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"fake {self.name}",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering, as a server that went down: the listening socket and every open
        connection are closed, so new connections are refused and kept-alive ones reset."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its open connections, to drop them on `stop`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int],
                 handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            open_now, self._open = self._open, set()
        for connection in open_now:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed by its client meanwhile
            connection.close()


def _handler(answer: Callable[[Request], Reply],
             log: Path | None) -> type[BaseHTTPRequestHandler]:
    written = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the services' clients expect
        # Headers and body go out in two writes: without this, Nagle's algorithm holds the
        # second back for the client's delayed ACK (40 ms a request).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                method=self.command, path=parts.path,
                segments=[unquote(s) for s in parts.path.split("/")[1:]],
                query={k: v[-1] for k, v in parse_qs(parts.query,
                                                     keep_blank_values=True).items()},
                headers={k.lower(): v for k, v in self.headers.items()}, body=body)
            try:
                reply = answer(request)
            except Exception as exc:  # noqa: BLE001 - a bug in the fake: say so, as a 500
                reply = Reply(500, f"the fake failed: {type(exc).__name__}: {exc}".encode())
            if log is not None:
                with written, log.open("a") as out:
                    out.write(f"{time.time():.3f} {self.command} {self.path} "
                              f"{reply.status}\n")
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass  # a fake's access log is noise in a test's output

    return Handler
