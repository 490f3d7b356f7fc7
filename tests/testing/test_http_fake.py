"""kernel.testing.http_fake: a fake service's HTTP answered from a thread on loopback, stopped
as a server goes down (new connections refused, kept-alive ones dropped), started again on its
port, each request logged where asked."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from kernel.testing.http_fake import FakeHTTP, Reply, Request


def answer(request: Request) -> Reply:
    if request.segments[:1] == ["echo"]:
        return Reply.json(200, {"method": request.method, "segments": request.segments,
                                "query": request.query, "body": request.body.decode(),
                                "header": request.headers.get("x-test")})
    raise RuntimeError("no such route")


def ask(connection: http.client.HTTPConnection, method: str, path: str,
        body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read()


def test_requests_reach_the_answer_as_they_were_sent(tmp_path: Path) -> None:
    with FakeHTTP(answer, "echo", log=tmp_path / "requests.log") as server:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
        status, body = ask(connection, "PUT", "/echo/a%2Fb/c?x=1", b"hi", {"X-Test": "yes"})
        assert status == 200 and json.loads(body) == {
            "method": "PUT", "segments": ["echo", "a/b", "c"], "query": {"x": "1"},
            "body": "hi", "header": "yes"}, "a %2F stays inside its segment"
        status, body = ask(connection, "GET", "/other")
        assert status == 500 and b"RuntimeError: no such route" in body, \
            "a bug in the fake is a 500 saying so, not a hang"
        connection.close()
    lines = (tmp_path / "requests.log").read_text().splitlines()
    assert [line.split()[1:] for line in lines] == [
        ["PUT", "/echo/a%2Fb/c?x=1", "200"], ["GET", "/other", "500"]]


def test_stop_is_a_server_gone_and_start_brings_it_back_on_its_port() -> None:
    server = FakeHTTP(answer, "echo").start()
    kept = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        assert ask(kept, "GET", "/echo")[0] == 200  # a kept-alive connection now
        server.stop()
        assert not server.running
        with pytest.raises((http.client.HTTPException, OSError)):
            ask(kept, "GET", "/echo")
        with pytest.raises(ConnectionRefusedError):
            ask(http.client.HTTPConnection(server.host, server.port, timeout=5), "GET", "/echo")
        server.start()
        again = http.client.HTTPConnection(server.host, server.port, timeout=5)
        assert ask(again, "GET", "/echo")[0] == 200, "the same port again"
        again.close()
    finally:
        kept.close()
        server.stop()
