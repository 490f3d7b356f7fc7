"""When a chord's header task fails, the body does not run and the chord's error callback fires
exactly once, at every nesting level; on the in-memory store, SQLite and Redis, and with a
result store that cannot count (the ``celery.chord_unlock`` fallback)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel import App, ChordError, chain, chord, group, hookimpl, states
from kernel.interfaces.results import ResultStoreCapabilities
from kernel.specs import Options, ResultStoreSpec
from kernel.std.memory.results import MemoryResultStore
from kernel.worker import Worker
from tests.worker.canvas_app import Book, drained, make_canvas_app, running
from tests.helpers import wait_for
from tests.worker.conftest import _url


class CannotCount(MemoryResultStore):
    """The in-memory store, declaring no atomic counter: chords fall back to chord_unlock."""

    capabilities = ResultStoreCapabilities(push_wait=True, atomic_counter=False,
                                           persistent=False, multi_process=False)


class CannotCountPlugin:
    @hookimpl
    def kernel_result_stores(self) -> Iterable[ResultStoreSpec]:
        def make(url: str, options: Options) -> CannotCount:
            return CannotCount(url.replace("nocount://", "memory://"), options)

        yield ResultStoreSpec("nocount", ("nocount",), make, CannotCount.capabilities)


@pytest.fixture(params=["memory", "sqlite", "redis", "memory-chord_unlock"])
def canvas(request: pytest.FixtureRequest, tmp_path: Path
           ) -> Iterator[tuple[App, Book, Worker]]:
    kind, _, fallback = request.param.partition("-")
    url = _url(kind, tmp_path)
    if not fallback:
        app, book = make_canvas_app(url)
    else:
        app, book = make_canvas_app(url, results=url.replace("memory", "nocount"),
                                    plugins=[CannotCountPlugin()],
                                    result_chord_retry_interval=0.02)
        assert not app.backend.store.capabilities.atomic_counter  # type: ignore[union-attr]
    with running(app) as worker:
        yield app, book, worker
    app.close()


def t(app: App, name: str) -> Any:
    return app.tasks[name]


def errbacks(book: Book, tag: str) -> list[str]:
    return [failed for seen, failed in book.errors if seen == tag]


def test_flat_chord(canvas: tuple[App, Book, Worker]) -> None:
    app, book, worker = canvas
    c = chord([t(app, "add").s(1, 1), t(app, "fail").s(), t(app, "add").s(2, 2)],
              t(app, "tsum").s())
    c.link_error(t(app, "on_error").s(tag="chord"))
    result = c.apply_async()
    with pytest.raises(ChordError, match="Dependency .* raised KeyError"):
        result.get(timeout=15)
    drained(app, worker)
    assert errbacks(book, "chord") == [result.id], "once, with the body's id"
    assert book.names["tsum"] == 0, "the body never ran"
    assert result.parent is not None and result.parent.completed_count() == 2


def test_chord_inside_a_chain(canvas: tuple[App, Book, Worker]) -> None:
    app, book, worker = canvas
    add, tsum = t(app, "add"), t(app, "tsum")
    c = chain(add.s(1, 1), chord([add.s(1), t(app, "fail").s()], tsum.s()), t(app, "mul").s(2))
    c.link_error(t(app, "on_error").s(tag="chain"))
    result = c.apply_async()
    with pytest.raises(ChordError):
        result.get(timeout=15)
    drained(app, worker)
    assert len(errbacks(book, "chain")) == 1
    assert result.parent is not None and result.parent.state == states.FAILURE
    assert errbacks(book, "chain") == [result.parent.id], "fired by the chord's body"
    assert book.names["tsum"] == 0 and book.names["mul"] == 0


def test_chord_inside_a_group_inside_a_chain(canvas: tuple[App, Book, Worker]) -> None:
    app, book, worker = canvas
    add, tsum, on_error = t(app, "add"), t(app, "tsum"), t(app, "on_error")
    inner = chord([add.s(1), t(app, "fail").s()], tsum.s())
    inner.link_error(on_error.s(tag="inner"))
    c = chain(add.s(1, 1), group(inner, add.s(5)), tsum.s())
    c.link_error(on_error.s(tag="outer"))
    result = c.apply_async()
    with pytest.raises(ChordError, match="Dependency .* raised ChordError"):
        result.get(timeout=15)
    drained(app, worker)
    assert len(errbacks(book, "inner")) == 1, "the inner chord's error callback, once"
    assert errbacks(book, "outer") == [result.id], "the outer chord's, once"
    assert book.names["tsum"] == 0


def test_a_failed_chain_inside_a_chord_header_counts_there(
        canvas: tuple[App, Book, Worker]) -> None:
    app, book, worker = canvas
    add = t(app, "add")
    c = chord([chain(t(app, "fail").s(), add.s(1)), add.s(2, 2)], t(app, "tsum").s())
    c.link_error(t(app, "on_error").s(tag="chord"))
    result = c.apply_async()
    with pytest.raises(ChordError):
        result.get(timeout=15)
    drained(app, worker)
    assert errbacks(book, "chord") == [result.id]
    assert book.names == {"fail": 1, "add": 1}


def test_a_revoked_header_task_fails_the_chord(canvas: tuple[App, Book, Worker]) -> None:
    app, book, worker = canvas
    add = t(app, "add")
    c = chord([add.s(1, 1), add.s(2, 2).set(expires=-1)], t(app, "tsum").s())
    c.link_error(t(app, "on_error").s(tag="chord"))
    result = c.apply_async()
    with pytest.raises(ChordError, match="TaskRevokedError"):
        result.get(timeout=15)
    drained(app, worker)
    assert errbacks(book, "chord") == [result.id]


def test_the_body_runs_once_when_the_header_succeeds(canvas: tuple[App, Book, Worker]) -> None:
    app, book, _ = canvas
    result = chord([t(app, "add").s(i, i) for i in range(20)], t(app, "tsum").s()).apply_async()
    assert result.get(timeout=15) == 380
    book.assert_each_once(21)


def test_a_header_task_revoked_before_it_starts_fails_the_chord(
        canvas: tuple[App, Book, Worker]) -> None:
    """Skipped by the worker's revocation check, it never reaches the middleware: the consumer
    counts it in its chord itself."""
    app, book, worker = canvas
    add = t(app, "add")
    doomed = add.s(2, 2)
    doomed_id = doomed.freeze().id
    app.control.revoke(doomed_id)
    assert worker.consumer is not None
    wait_for(lambda: any(doomed_id in getattr(getattr(f, "__self__", None), "revoked", {})
                         for f in worker.consumer.filters),  # type: ignore[union-attr]
             timeout=10, message="the worker's revocation check knows the id")
    c = chord([add.s(1, 1), doomed], t(app, "tsum").s())
    c.link_error(t(app, "on_error").s(tag="chord"))
    result = c.apply_async()
    with pytest.raises(ChordError, match="TaskRevokedError"):
        result.get(timeout=15)
    drained(app, worker)
    assert errbacks(book, "chord") == [result.id]
    assert book.names.get("tsum", 0) == 0


def test_a_rejected_header_message_fails_the_chord(canvas: tuple[App, Book, Worker]) -> None:
    """A header member no worker knows is rejected by the consumer, and counted there."""
    from kernel import Signature

    app, book, worker = canvas
    c = chord([t(app, "add").s(1, 1), Signature("no.such.task", app=app)], t(app, "tsum").s())
    c.link_error(t(app, "on_error").s(tag="chord"))
    result = c.apply_async()
    with pytest.raises(ChordError):
        result.get(timeout=15)
    drained(app, worker)
    assert errbacks(book, "chord") == [result.id]
