"""Each canvas primitive on the in-memory store, SQLite and Redis: the final result, and every
task of the canvas run exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from kernel import App, GroupResult, chain, chord, group, states
from kernel.worker import Worker
from tests.helpers import wait_for
from tests.worker.canvas_app import Book, drained, make_canvas_app


def task(app: App, name: str) -> Any:
    return app.tasks[name]


def test_signature_partial_args_immutable_and_options(canvas: tuple[App, Book, Worker]) -> None:
    app, book, _ = canvas
    add = task(app, "add")
    partial = add.s(10)
    assert partial.delay(5).get(timeout=10) == 15, "call args come before the partial ones"
    assert add.si(1, 2).apply_async((100,)).get(timeout=10) == 3, "immutable ignores args"
    sig = add.s(2, 2).set(countdown=0.01, priority=3)
    assert sig.options["priority"] == 3
    clone = sig.clone(task_id="fixed-" + app.conf.task_default_queue)
    assert clone.apply_async().get(timeout=10) == 4
    assert clone.id is not None and app.AsyncResult(clone.id).get(timeout=10) == 4
    book.assert_each_once(3)


def test_link_and_link_error(canvas: tuple[App, Book, Worker]) -> None:
    app, book, worker = canvas
    add, fail, on_error = task(app, "add"), task(app, "fail"), task(app, "on_error")
    sig = add.s(1, 1)
    callback = add.s(10)
    callback.freeze()
    sig.link(callback)
    first = sig.apply_async()
    assert first.get(timeout=10) == 2
    assert app.AsyncResult(callback.id).get(timeout=10) == 12, "the callback got the value"
    bad = fail.s()
    bad.link_error(on_error.s(tag="once"))
    failed = bad.apply_async()
    with pytest.raises(KeyError):
        failed.get(timeout=10)
    drained(app, worker)
    assert book.errors == [("once", failed.id)], "the errback gets the failed task's id"


def test_chain(canvas: tuple[App, Book, Worker]) -> None:
    app, book, _ = canvas
    add, mul = task(app, "add"), task(app, "mul")
    result = chain(add.s(1, 2), mul.s(10), add.si(5, 5), add.s(1)).apply_async()
    assert result.get(timeout=10) == 11
    assert result.parent is not None and result.parent.get(timeout=10) == 10
    assert result.parent.parent.parent.get(timeout=10) == 3  # type: ignore[union-attr]
    piped = (add.s(2, 2) | mul.s(3) | add.s(1)).delay()
    assert piped.get(timeout=10) == 13
    book.assert_each_once(7)


def test_group_result_join_save_and_restore(canvas: tuple[App, Book, Worker]) -> None:
    app, book, _ = canvas
    add = task(app, "add")
    result = group(add.s(i, i) for i in range(10)).apply_async()
    assert isinstance(result, GroupResult) and len(result) == 10
    assert result.join(timeout=10) == [2 * i for i in range(10)]
    assert result.ready() and result.successful() and result.completed_count() == 10
    result.save()
    restored = GroupResult.restore(result.id, app)
    assert restored is not None and [r.id for r in restored] == [r.id for r in result]
    assert restored.get(timeout=10) == [2 * i for i in range(10)]
    restored.delete()
    assert GroupResult.restore(result.id, app) is None
    partial = group(add.s(1), add.s(2)).apply_async((100,))
    assert partial.get(timeout=10) == [101, 102], "group args go to every member"
    book.assert_each_once(12)


def test_group_members_carry_group_id_and_index(canvas: tuple[App, Book, Worker]) -> None:
    app, _, _ = canvas
    seen: list[tuple[str | None, int | None]] = []

    @app.task(name="whoami", bind=True)
    def whoami(self: Any) -> None:
        seen.append((self.request.group_id, self.request.group_index))

    result = group(whoami.s() for _ in range(3)).apply_async()
    result.join(timeout=10)
    assert sorted(seen, key=lambda s: s[1] or 0) == [(result.id, 0), (result.id, 1),
                                                      (result.id, 2)]


def test_chord(canvas: tuple[App, Book, Worker]) -> None:
    app, book, _ = canvas
    add, tsum = task(app, "add"), task(app, "tsum")
    result = chord([add.s(i, i) for i in range(10)], tsum.s()).apply_async()
    assert result.get(timeout=10) == 90
    assert isinstance(result.parent, GroupResult) and result.parent.get(timeout=10) == [
        2 * i for i in range(10)], "the header's results, in order"
    assert chord(group(add.s(1, 1), add.s(2, 2)))(tsum.s()).get(timeout=10) == 6
    book.assert_each_once(14)


def test_chord_with_an_empty_header_calls_the_body_with_nothing(
        canvas: tuple[App, Book, Worker]) -> None:
    app, book, _ = canvas
    assert chord([], task(app, "tsum").s()).apply_async().get(timeout=10) == 0
    book.assert_each_once(1)


def test_chunks_map_and_starmap(canvas: tuple[App, Book, Worker]) -> None:
    app, _, _ = canvas
    add, tsum = task(app, "add"), task(app, "tsum")
    parts = add.chunks([(i, i) for i in range(10)], 3).apply_async()
    assert parts.get(timeout=10) == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]
    assert tsum.map([[1, 2], [3, 4]]).delay().get(timeout=10) == [3, 7]
    assert add.starmap([(1, 2), (3, 4)]).delay().get(timeout=10) == [3, 7]


def test_replace_takes_the_task_id_and_the_chain_after_it(
        canvas: tuple[App, Book, Worker]) -> None:
    app, book, _ = canvas
    becomes_add, mul = task(app, "becomes_add"), task(app, "mul")
    result = chain(becomes_add.s(4), mul.s(10)).apply_async()
    assert result.get(timeout=10) == 80
    assert result.parent is not None and result.parent.get(timeout=10) == 8, (
        "the replaced task's id holds the replacement's result")
    grouped = task(app, "becomes_group").delay(3)
    assert grouped.get(timeout=10) == [0, 2, 4], "a group replacement collects into a list"
    # A replacement runs under the id of the task it replaced: count by task name.
    assert book.names == {"becomes_add": 1, "add": 1 + 3, "mul": 1, "becomes_group": 1}


def test_collect_walks_the_tasks_a_task_sent(canvas: tuple[App, Book, Worker]) -> None:
    app, _, _ = canvas
    add = task(app, "add")
    first = add.s(1, 1)
    first.link(add.s(10))
    root = first.apply_async()
    values = [value for _, value in root.collect(timeout=10)]
    assert values == [2, 12]
    assert root.children and root.children[0].get(timeout=10) == 12


def test_retries_in_the_header_delay_the_body(canvas: tuple[App, Book, Worker]) -> None:
    app, book, _ = canvas
    flaky, add, tsum = task(app, "flaky"), task(app, "add"), task(app, "tsum")
    result = chord([flaky.s(100, 2), add.s(1, 1)], tsum.s()).apply_async()
    assert result.get(timeout=15) == 102, "the body waited for the retried member's result"
    assert book.names["tsum"] == 1 and book.names["flaky"] == 3
    assert result.parent is not None and result.parent[0].state == states.SUCCESS


def test_a_failed_chain_step_fails_the_steps_after_it(canvas: tuple[App, Book, Worker]) -> None:
    app, book, worker = canvas
    add, fail = task(app, "add"), task(app, "fail")
    result = chain(add.s(1, 1), fail.s(), add.s(1), add.s(2)).apply_async()
    with pytest.raises(KeyError):
        result.get(timeout=10)
    assert result.parent is not None and result.parent.state == states.FAILURE
    drained(app, worker)
    assert book.names == {"add": 1, "fail": 1}, "the steps after the failure never ran"


def test_eager_canvas(broker_url: str) -> None:
    app, book = make_canvas_app(broker_url, task_always_eager=True)
    add, tsum = task(app, "add"), task(app, "tsum")
    assert chain(add.s(1, 1), add.s(2)).apply_async().get() == 4
    assert group(add.s(1, 1), add.s(2, 2)).apply_async().get() == [2, 4]
    assert chord([add.s(1, 1), add.s(2, 2)], tsum.s()).apply_async().get() == 6
    wait_for(lambda: book.names["add"] == 6, 1, "eager tasks run inline")
    app.close()
