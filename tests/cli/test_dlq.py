"""``kernel dlq list / replay / purge`` on the embedded SQLite broker."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import Result

from kernel import App
from kernel.interfaces.transport import Outgoing
from kernel.message import Envelope


def kill(client: App, n: int, reason: str) -> list[str]:
    """Publish `n` messages and reject them into the dead-letter queue with `reason`."""
    ids = [f"dead-{i}" for i in range(n)]
    t = client.transport
    t.publish([Outgoing("celery", Envelope(b"[[], {}, {}]", {"task": "x.y", "id": i}))
               for i in ids])
    for delivery in t.fetch(["celery"], n, 1.0):
        t.reject(delivery, requeue=False, reason=reason)
    return ids


def test_list_shows_ids_tasks_and_reasons(invoke: Callable[..., Result], client: App) -> None:
    ids = kill(client, 2, "task 'x.y' is not registered")
    result = invoke("dlq", "list")
    assert result.exit_code == 0, result.output
    for task_id in ids:
        assert task_id in result.output
    assert "is not registered" in result.output and "x.y" in result.output


def test_replay_sends_dead_letters_back_to_their_queue(invoke: Callable[..., Result],
                                                       client: App) -> None:
    ids = kill(client, 3, "poison")
    result = invoke("dlq", "replay", "-Q", "celery")
    assert result.exit_code == 0, result.output
    assert "3 messages replayed" in result.output
    assert client.transport.dead_letters("celery") == []
    back = client.transport.fetch(["celery"], 10, 1.0)
    assert sorted(d.envelope.headers["id"] for d in back) == ids
    assert all(d.delivery_count == 1 for d in back), "a replayed message starts afresh"


def test_purge_deletes_dead_letters_only(invoke: Callable[..., Result], client: App) -> None:
    kill(client, 2, "poison")
    client.transport.publish([Outgoing("celery", Envelope(b"[[], {}, {}]",
                                                          {"task": "x.y", "id": "alive"}))])
    result = invoke("dlq", "purge", "-f")
    assert result.exit_code == 0, result.output
    assert "2 dead letters deleted" in result.output
    assert client.transport.dead_letters("celery") == []
    assert client.transport.size("celery") == 1
