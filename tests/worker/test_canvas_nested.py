"""Canvases nested several levels deep, on the in-memory store, SQLite and Redis: the final
result, and every task run exactly once (counted by task id as each one runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kernel import App, Signature, chain, chord, group
from kernel.worker import Worker
from tests.worker.canvas_app import Book


def chain_of_groups_of_chains_ending_in_a_chord(t: Any) -> Signature:
    # [1+1 -> *10, 2+2 -> *10] = [20, 40] -> 60 -> [60+1, 60+2] -> 123
    return chain(group(chain(t.add.s(1, 1), t.mul.s(10)), chain(t.add.s(2, 2), t.mul.s(10))),
                 t.tsum.s(), chord([t.add.s(1), t.add.s(2)], t.tsum.s()))


def group_of_chords(t: Any) -> Signature:
    return group(chord([t.add.s(1, 1), t.add.s(2, 2)], t.tsum.s()),
                 chord([t.add.s(3, 3)], t.tsum.s()), t.add.s(0, 0))


def chord_of_chains_and_a_nested_group(t: Any) -> Signature:
    # header flattened: [20, 4, 6, 8]
    return chord([chain(t.add.s(1, 1), t.mul.s(10)), group(t.add.s(2, 2), t.add.s(3, 3)),
                  t.add.s(4, 4)], t.tsum.s())


def chord_in_a_chord_header(t: Any) -> Signature:
    return chord([chord([t.add.s(1, 1), t.add.s(2, 2)], t.tsum.s()), t.add.s(5, 5)], t.tsum.s())


def chain_through_a_chord_with_a_chain_body(t: Any) -> Signature:
    # 3 -> [4, 5] -> 9 -> 18 -> 19
    return chain(t.add.s(1, 2), chord([t.add.s(1), t.add.s(2)], chain(t.tsum.s(), t.mul.s(2))),
                 t.add.s(1))


def group_of_chains_through_chords_in_a_chain(t: Any) -> Signature:
    # [2 -> [3, 4] -> 7, 20] -> 27
    return chain(group(chain(t.add.s(1, 1), chord([t.add.s(1), t.add.s(2)], t.tsum.s())),
                       t.add.s(10, 10)), t.tsum.s())


def chain_ending_in_a_group_inside_a_chord(t: Any) -> Signature:
    # the chain's group counts as one member: its list of results
    return chord([chain(t.add.s(1, 1), group(t.add.s(1), t.add.s(2))), t.add.s(0, 0)],
                 t.listing.s())


SHAPES: list[tuple[Callable[[Any], Signature], Any, int]] = [
    (chain_of_groups_of_chains_ending_in_a_chord, 123, 8),
    (group_of_chords, [6, 6, 0], 6),
    (chord_of_chains_and_a_nested_group, 38, 6),
    (chord_in_a_chord_header, 16, 5),
    (chain_through_a_chord_with_a_chain_body, 19, 6),
    (group_of_chains_through_chords_in_a_chain, 27, 6),
    (chain_ending_in_a_group_inside_a_chord, [[[3, 4], 0]], 5),
]


class Tasks:
    def __init__(self, app: App) -> None:
        for name in ("add", "mul", "tsum", "listing"):
            setattr(self, name, app.tasks[name])


@pytest.mark.parametrize(("shape", "expected", "runs"), SHAPES, ids=[s[0].__name__ for s in SHAPES])
def test_nested_canvas(canvas: tuple[App, Book, Worker], shape: Callable[[Any], Signature],
                       expected: Any, runs: int) -> None:
    app, book, _ = canvas
    result = shape(Tasks(app)).apply_async()
    assert result.get(timeout=20) == expected
    book.assert_each_once(runs)
