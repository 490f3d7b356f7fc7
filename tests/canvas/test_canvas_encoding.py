"""How the canvas looks on the wire: Celery's signature dicts and embeds, read off the
messages a kernel client publishes (in-memory broker, no worker), so a Celery worker runs what
kernel sends. Formats: the protocol reference, sections 1.4, 1.5, 1.10, 1.11 and 3.6."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import (
    App,
    ConfigurationError,
    Signature,
    chain,
    chord,
    chunks,
    group,
    signature,
    xmap,
    xstarmap,
)
from kernel.records import group_key


@pytest.fixture
def app() -> Iterator[App]:
    url = f"memory://{uuid.uuid4().hex}"
    app = App("wire", broker=url, results=url, config={"task_default_queue": "q"})

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    yield app
    app.close()


def sent(app: App) -> list[tuple[dict[str, Any], list[Any]]]:
    """Every message on the queue: (headers, decoded [args, kwargs, embed])."""
    out = []
    for delivery in app.transport.fetch(["q"], 1000, 0.1):
        env = delivery.envelope
        out.append((env.headers, app.codec.decode(env.body, env.content_type,
                                                  env.headers.get("compression"))))
    return out


def test_signature_dict_is_celerys(app: App) -> None:
    sig = app.tasks["add"].s(2).set(queue="other")
    assert json.loads(json.dumps(sig)) == {
        "task": "add", "args": [2], "kwargs": {}, "options": {"queue": "other"},
        "subtask_type": None, "immutable": False}
    assert app.tasks["add"].si(1, 2)["immutable"] is True


def test_clone_puts_new_args_first_and_keeps_immutable_args(app: App) -> None:
    add = app.tasks["add"]
    assert add.s(2).clone((1,))["args"] == [1, 2]
    assert add.si(2).clone((1,))["args"] == [2]


def test_signature_from_a_dict_gets_its_class(app: App) -> None:
    add = app.tasks["add"]
    for sig, cls in [(chain(add.s(1, 1), add.s(2)), chain), (group(add.s(1, 1)), group),
                     (chord([add.s(1, 1)], add.s(2)), chord), (add.map([1]), xmap),
                     (add.starmap([(1, 1)]), xstarmap), (add.chunks([(1, 1)], 1), chunks),
                     (add.s(1, 1), Signature)]:
        again = signature(json.loads(json.dumps(sig)), app)
        assert type(again) is cls and json.loads(json.dumps(again)) == json.loads(json.dumps(sig))


def test_composite_dicts_are_named_as_celery_names_them(app: App) -> None:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    c = json.loads(json.dumps(chord([add.s(1, 1)], tsum.s())))
    assert (c["task"], c["subtask_type"]) == ("celery.chord", "chord")
    assert set(c["kwargs"]) == {"header", "body", "kwargs"}
    assert (c["kwargs"]["header"]["task"], c["kwargs"]["header"]["subtask_type"]) == (
        "celery.group", "group")
    assert c["kwargs"]["header"]["kwargs"]["tasks"][0]["task"] == "add"
    ch = json.loads(json.dumps(chain(add.s(1, 1), tsum.s())))
    assert (ch["task"], [t["task"] for t in ch["kwargs"]["tasks"]]) == (
        "celery.chain", ["add", "tsum"]), "forward order inside a chain signature"


def test_pipe_builds_chains_and_chords(app: App) -> None:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    assert type(add.s(1, 1) | add.s(2)) is chain
    assert len((add.s(1, 1) | add.s(2) | add.s(3)).tasks) == 3  # type: ignore[attr-defined]
    assert type(group(add.s(1, 1)) | tsum.s()) is chord


def test_chain_publishes_the_first_step_with_the_rest_reversed(app: App) -> None:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    result = chain(add.s(1, 2), add.s(3), add.s(4), tsum.si([1, 2])).apply_async()
    [(headers, (args, _, embed))] = sent(app)
    assert headers["task"] == "add" and args == [1, 2]
    assert headers["root_id"] == headers["id"]
    assert [(s["task"], s["args"], s["immutable"]) for s in embed["chain"]] == [
        ("tsum", [[1, 2]], True), ("add", [4], False), ("add", [3], False)]
    assert embed["chain"][0]["options"]["task_id"] == result.id, "ids fixed in advance"
    assert result.parent.parent.parent.id == headers["id"]  # type: ignore[union-attr]


def test_group_members_carry_group_and_group_index(app: App) -> None:
    add = app.tasks["add"]
    result = group(add.s(i, i) for i in range(3)).apply_async()
    messages = sent(app)
    assert [(h["group"], h["group_index"]) for h, _ in messages] == [
        (result.id, 0), (result.id, 1), (result.id, 2)]
    assert [h["id"] for h, _ in messages] == [r.id for r in result.results]  # type: ignore[union-attr]


def test_chord_writes_its_size_then_sends_members_with_the_body(app: App) -> None:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    result = chord([add.s(1, 2), add.s(3, 4)], tsum.s()).apply_async()
    gid = result.parent.id  # type: ignore[union-attr]
    assert app.backend.store.get(group_key(gid) + ".s") == b"2"  # type: ignore[union-attr]
    messages = sent(app)
    assert [(h["group"], h["group_index"]) for h, _ in messages] == [(gid, 0), (gid, 1)]
    body = messages[0][1][2]["chord"]
    assert (body["task"], body["args"], body["immutable"]) == ("tsum", [], False)
    assert body["options"]["task_id"] == result.id and body["options"]["group_id"] == gid


def test_a_group_followed_by_a_step_becomes_a_chord(app: App) -> None:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s()).apply_async()
    [(_, (_, _, embed))] = sent(app)
    [step] = embed["chain"]
    assert step["subtask_type"] == "chord" and step["task"] == "celery.chord"
    assert step["kwargs"]["body"]["task"] == "tsum"


def test_link_and_link_error_go_to_callbacks_and_errbacks(app: App) -> None:
    add = app.tasks["add"]
    sig = add.s(1, 1)
    sig.link(add.s(10))
    sig.link_error(add.si(0, 0))
    sig.apply_async()
    [(_, (_, _, embed))] = sent(app)
    assert [s["args"] for s in embed["callbacks"]] == [[10]]
    assert [s["immutable"] for s in embed["errbacks"]] == [True]


def test_chunks_send_starmap_tasks(app: App) -> None:
    app.tasks["add"].chunks([(i, i) for i in range(5)], 2).apply_async()
    messages = sent(app)
    assert [h["task"] for h, _ in messages] == ["celery.starmap"] * 3
    assert [body[1]["it"] for _, body in messages] == [[[0, 0], [1, 1]], [[2, 2], [3, 3]],
                                                       [[4, 4]]]
    assert messages[0][1][1]["task"]["task"] == "add" and messages[0][1][0] == []


def test_map_is_one_celery_map_message(app: App) -> None:
    app.tasks["tsum"].map([[1], [2]]).apply_async()
    [(headers, (args, kwargs, _))] = sent(app)
    assert headers["task"] == "celery.map" and args == [] and kwargs["it"] == [[1], [2]]


def test_builtin_tasks_are_registered(app: App) -> None:
    assert {"celery.chord_unlock", "celery.map", "celery.starmap", "celery.chunks",
            "celery.group", "celery.chain", "celery.chord", "celery.accumulate"} <= set(app.tasks)


def test_a_chord_without_a_result_store_is_refused(app: App) -> None:
    quiet = App("none", broker=f"memory://{uuid.uuid4().hex}", config={"result_backend": None})
    with pytest.raises(ConfigurationError, match="a chord needs a result store"):
        chord([Signature("add", (1, 1), app=quiet)], Signature("tsum", app=quiet)).apply_async()
    quiet.close()


def test_a_chord_on_a_store_that_only_answers_its_caller_is_refused() -> None:
    """rpc://-like stores (results go to the waiting client, nothing counts): no worker could
    ever collect the header, so the chord is refused before anything is sent."""
    from kernel import hookimpl
    from kernel.errors import MissingCapability
    from kernel.interfaces.results import ResultStoreCapabilities
    from kernel.specs import Options, ResultStoreSpec
    from kernel.std.memory.results import MemoryResultStore

    class ReplyOnly(MemoryResultStore):
        capabilities = ResultStoreCapabilities(push_wait=True, atomic_counter=False,
                                               persistent=False, multi_process=True)

    class Plugin:
        @hookimpl
        def kernel_result_stores(self) -> Iterator[ResultStoreSpec]:
            def make(url: str, options: Options) -> ReplyOnly:
                return ReplyOnly(url.replace("reply://", "memory://"), options)

            yield ResultStoreSpec("reply", ("reply",), make, ReplyOnly.capabilities)

    name = uuid.uuid4().hex
    app = App("rpc-like", broker=f"memory://{name}", results=f"reply://{name}",
              plugins=[Plugin()], config={"task_default_queue": "q"})
    add = app.task(name="add")(lambda x, y: x + y)
    with pytest.raises(MissingCapability, match="rpc://"):
        chord([add.s(1, 1)], add.s(2)).apply_async()
    assert app.transport.size("q") == 0, "nothing may be sent"
