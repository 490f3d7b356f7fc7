"""Private @vercel/cosmosdb-server processes (an Azure Cosmos DB SQL API emulator from npm) for
tests, each on a free loopback port, in memory::

    from kernel_cosmosdb.testing import CosmosServer, CosmosProxy

    server = CosmosServer(tmp_path).start()       # HTTPS, its own self-signed certificate
    server.url()      # cosmosdbsql://:KEY@127.0.0.1:PORT?scheme=https&tls_verify=false&...

    plain = CosmosServer(tmp_path, tls=False).start()
    proxy = CosmosProxy(plain.port).start()
    proxy.url()       # cosmosdbsql://:KEY@127.0.0.1:PROXY_PORT   (Celery's form: plain HTTP)
    proxy.fail_next(429, count=2, headers={"x-ms-retry-after-ms": "100"})

`CosmosProxy` exists because the emulator serving plain HTTP still advertises
``https://`` endpoints, which both azure-cosmos and pydocumentdb (Celery's client) then use; the
proxy forwards every request and advertises its own ``http://`` address, as a plain-HTTP server
would, and answers with injected faults on demand (the emulator never throttles and checks no
key).

Node and the emulator's ``cli.js`` are found at ``KERNEL_COSMOSDB_SERVER`` (the path of
``cli.js``) or where ``.ci/run`` installs it (``build/npm`` of the repository); without them the
test skips, or fails under ``CI`` (`kernel.testing.servers.unavailable`). Set
``KERNEL_COSMOSDB_TEST_URL`` to run the tests that take a URL against a real account instead.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from typing_extensions import Self

from kernel.testing.servers import ServerProcess, free_port, unavailable

__all__ = ["KEY", "CosmosProxy", "CosmosServer", "cosmosdb_server"]

#: any key will do (the emulator checks none); this one holds / + = to prove the URL encoding.
KEY = "+//+a2VybmVsIHRlc3Qga2V5IGZvciB0aGUgZW11bGF0b3I="

#: where .ci/run installs it: build/npm of the repository this package sits in.
PROJECT_CLI = (Path(__file__).resolve().parents[3] / "build" / "npm" / "node_modules" / "@vercel"
               / "cosmosdb-server" / "lib" / "cli.js")


#: the emulator through its own API rather than its cli.js, which cannot ask for keep-alive:
#: without it every request is a new connection (and a new TLS handshake).
LAUNCH = """
const [lib, host, port, tls] = process.argv.slice(1);
const { createHttpServer, createHttpsServer } = require(lib);
const server = (tls === "tls" ? createHttpsServer : createHttpServer)({ keepAlive: true });
server.listen(Number(port), host, () => console.log(`ready on ${host}:${port} (${tls})`));
"""


def cosmosdb_server() -> list[str]:
    """The command that runs the emulator, before its host, port and ``tls`` or ``plain``
    (see the module's docstring for where it is looked for)."""
    cli = Path(os.environ.get("KERNEL_COSMOSDB_SERVER") or PROJECT_CLI)
    node = shutil.which("node")
    if not node or not cli.exists():
        unavailable(f"needs node and @vercel/cosmosdb-server: npm install --prefix build/npm "
                    f"@vercel/cosmosdb-server@1.0.1 (looked for {cli})")
    return [node, "-e", LAUNCH, str(cli.parent)]


class CosmosServer(ServerProcess):
    """``CosmosServer(tmp_path).start()``: the emulator on 127.0.0.1, HTTPS with its bundled
    self-signed certificate (``tls=False``: plain HTTP, for `CosmosProxy`). Its data is in
    memory: a restart starts empty."""

    def __init__(self, directory: Path, *, tls: bool = True, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [*cosmosdb_server(), self.host, str(self.port), "tls" if tls else "plain"],
            log=directory / f"cosmosdb-server-{self.port}.log", probe=self.answers,
            cwd=directory, start_timeout=30,
            name=f"cosmosdb-server on {self.host}:{self.port}")

    def url(self, **options: str) -> str:
        """Its ``cosmosdbsql://`` URL; `options` go in the query."""
        query = {"scheme": "https", "tls_verify": "false", "endpoint_discovery": "false"} \
            if self.tls else {"endpoint_discovery": "false"}
        query.update(options)
        suffix = "&".join(f"{k}={v}" for k, v in query.items())
        return f"cosmosdbsql://:{quote(KEY, safe='')}@{self.host}:{self.port}" + \
            (f"?{suffix}" if suffix else "")

    def answers(self) -> bool:
        scheme = "https" if self.tls else "http"
        context = None
        if self.tls:  # its own self-signed certificate
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(f"{scheme}://{self.host}:{self.port}/", timeout=1,
                                    context=context) as r:
            return bool(r.status == 200)


def nodelay(sock: socket.socket) -> None:
    """Headers and body go in separate writes: without this, Nagle's algorithm holds the
    second until the peer's delayed ACK (40 ms a request on a kept-alive connection)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class CosmosProxy:
    """A plain-HTTP front for a ``tls=False`` `CosmosServer` on `upstream_port`: see the
    module's docstring. `requests` counts what it forwarded and answered."""

    def __init__(self, upstream_port: int, *, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.upstream_port = upstream_port
        self.requests = 0
        self._faults: list[tuple[int, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def url(self) -> str:
        return f"cosmosdbsql://:{quote(KEY, safe='')}@{self.host}:{self.port}"

    def fail_next(self, status: int, *, count: int = 1, headers: Mapping[str, str] | None = None,
                  body: bytes = b'{"code": "Injected", "message": "injected by CosmosProxy"}'
                  ) -> None:
        """Answer the next `count` requests with `status` (and `headers`), forwarding none."""
        with self._lock:
            self._faults.extend([(status, dict(headers or {}), body)] * count)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> tuple[int, dict[str, str], bytes] | None:
        with self._lock:
            self.requests += 1
            return self._faults.pop(0) if self._faults else None

    def start(self) -> Self:
        proxy = self
        advertised = f"https://{self.host}:{self.upstream_port}".encode()
        own = f"http://{self.host}:{self.port}".encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive both ways: one upstream per client
            upstream: http.client.HTTPConnection | None = None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request_body = self.rfile.read(length) if length else b""
                fault = proxy._next_fault()
                if fault is None:
                    answer = self._ask(request_body)
                    if answer is None:  # the emulator is down: as if nothing listened
                        self.close_connection = True
                        return
                    status, headers, body = answer
                else:
                    status, headers, body = fault
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _ask(self, request_body: bytes) -> tuple[int, dict[str, str], bytes] | None:
                """The emulator's answer, or None if it cannot be reached. A kept-alive
                connection the emulator closed meanwhile (Node closes idle ones after 5 s)
                is opened again once."""
                for _ in range(2):
                    fresh = self.upstream is None
                    try:
                        if self.upstream is None:
                            self.upstream = http.client.HTTPConnection(
                                proxy.host, proxy.upstream_port, timeout=30)
                            self.upstream.connect()
                            nodelay(self.upstream.sock)
                        self.upstream.request(self.command, self.path, request_body,
                                              {k: v for k, v in self.headers.items()
                                               if k.lower() != "host"})
                        answer = self.upstream.getresponse()
                        body = answer.read().replace(advertised, own)
                    except (OSError, http.client.HTTPException):
                        if self.upstream is not None:
                            self.upstream.close()
                        self.upstream = None
                        if fresh:
                            return None
                        continue
                    headers = {k: v.replace(advertised.decode(), own.decode())
                               for k, v in answer.getheaders()
                               if k.lower() not in ("content-length", "connection",
                                                    "transfer-encoding", "keep-alive")}
                    return answer.status, headers, body
                return None

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

            def setup(self) -> None:
                super().setup()
                nodelay(self.connection)

            def finish(self) -> None:
                super().finish()
                if self.upstream is not None:
                    self.upstream.close()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name=f"cosmos-proxy-{self.port}").start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
