"""The real Flower (2.x) as a process for interop tests: ``python -m celery flower`` on a free
loopback port against a broker, with its HTTP API open (``FLOWER_UNAUTHENTICATED_API``), and
helpers to call that API.

::

    from kernel.testing.flower import Flower

    with Flower(URL, log=tmp_path / "flower.log", app="proj", path=tmp_path) as flower:
        workers = flower.get_json("/api/workers?refresh=1")
        status, body = flower.post(f"/api/worker/pool/grow/{node}", {"n": 1})

`app` is a Celery app module (``-A``) in `path`: Flower's task endpoints (rate limit, time
limit) answer 404 for task names its own Celery app does not register. Flower is always
stopped at the end of the block, and a failure names its log.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kernel.testing.servers import ServerProcess, free_port
from kernel.testing.workers import _on_path

__all__ = ["Flower"]


class Flower(ServerProcess):
    """Flower on ``127.0.0.1:<port>`` (a free one unless given), up once it serves HTTP
    (``/healthcheck`` answers 200). `args` are more Flower options (``--inspect_timeout=2000``),
    `env` more environment."""

    def __init__(self, broker: str, *, log: Path, app: str | None = None,
                 path: Path | None = None, port: int | None = None,
                 args: tuple[str, ...] = (), env: Mapping[str, str | None] | None = None,
                 start_timeout: float = 30.0) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "celery", *(["-A", app] if app else []),
                   f"--broker={broker}", "flower", f"--port={self.port}",
                   "--address=127.0.0.1", *args]
        super().__init__(command, log=log, probe=self._serves, cwd=path,
                         start_timeout=start_timeout, grace=10.0, name=f"flower :{self.port}",
                         env={"FLOWER_UNAUTHENTICATED_API": "true", "PYTHONUNBUFFERED": "1",
                              "PYTHONPATH": _on_path(path), **(env or {})})

    def _serves(self) -> bool:
        return self.request("GET", "/healthcheck")[0] == 200

    def request(self, method: str, path: str, data: Mapping[str, Any] | None = None,
                timeout: float = 15.0) -> tuple[int, str]:
        """``(HTTP status, body text)`` of one request; `data` is sent form-encoded (what
        Flower's handlers read with ``get_argument``). A refused connection is status 0."""
        body = urllib.parse.urlencode(dict(data or {})).encode() if method != "GET" else None
        request = urllib.request.Request(self.base + path, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, ConnectionError):
            return 0, ""

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)

    def get_json(self, path: str) -> Any:
        """The JSON body of ``GET path``; fails (naming Flower's log) unless it is a 200."""
        status, text = self.get(path)
        assert status == 200, f"GET {path} answered {status}: {text[:500]}; {self.where()}"
        return json.loads(text)

    def post(self, path: str, data: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """``POST path`` with form `data`: ``(status, body)``, the body parsed if it is JSON
        (Flower's errors are plain text)."""
        status, text = self.request("POST", path, data)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text
