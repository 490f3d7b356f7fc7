"""A CQL cluster for tests where none runs: mockylla (an in-process fake of cassandra-driver's
``Cluster.connect``), with every statement the store sends recorded::

    from kernel_cassandra.testing import FakeCluster

    with FakeCluster() as fake:
        fake.create_keyspace("results")
        ...                       # cassandra://127.0.0.1/results/<table>
        fake.statements           # [(CQL, parameters), ...] as the store sent them

Two things make the fake answer as a Cassandra node does, at its one entry point
(``MockSession.execute``), and nothing else is changed:

* it runs one statement at a time (a lock): each CQL statement, a lightweight transaction
  included, is atomic on a real node, while mockylla 0.5.0 reads and writes its rows from
  whatever thread calls it;
* it reads ``IF NOT EXISTS USING TTL n`` (CQL's order) as ``USING TTL n IF NOT EXISTS``,
  the only order mockylla's parser knows. The recorded statement is the one sent;
* ``CREATE TABLE IF NOT EXISTS`` of a table that exists does nothing, as on Cassandra, and
  ``CREATE TABLE`` of one raises the driver's ``AlreadyExists``, as a node answers (Celery's
  backend counts on it), where mockylla raises ``InvalidRequest`` for both.

mockylla must be installed without its dependencies, beside cassandra-driver (its own
dependency, scylla-driver, would overwrite cassandra-driver's files); `install_hint` says how.
"""

from __future__ import annotations

import re
import threading
from types import TracebackType
from typing import Any

from kernel.testing.servers import unavailable

__all__ = ["FakeCluster", "INSTALL_HINT"]

INSTALL_HINT = ("pip install --no-deps mockylla==0.5.0 (beside cassandra-driver; nox does it "
                "for plugins/cassandra)")

_LWT_THEN_TTL = re.compile(r"\s+IF NOT EXISTS\s+(USING TTL \d+)\s*$")
_CREATE_TABLE = re.compile(r"\s*CREATE\s+TABLE\s", re.IGNORECASE)
_CREATE_IF_NOT_EXISTS = re.compile(r"\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s", re.IGNORECASE)
#: mockylla's words for a table that is there.
_TABLE_EXISTS = re.compile(r"Table '(\w+)' already exists in keyspace '(\w+)'")


class FakeCluster:
    """mockylla for the block, recording what the store sends (see the module's docstring)."""

    def __init__(self) -> None:
        try:
            from mockylla import MockScyllaDB
            from mockylla.classes.session import MockSession
        except ImportError:
            unavailable(f"the Cassandra tests need mockylla: {INSTALL_HINT}")
        self._mock = MockScyllaDB()
        self._session_class = MockSession
        self._original = MockSession.execute
        self._lock = threading.Lock()
        #: (CQL, parameters) of every statement, in the order sent.
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def __enter__(self) -> FakeCluster:
        self._mock.__enter__()
        from cassandra import AlreadyExists, InvalidRequest

        original, lock, statements = self._original, self._lock, self.statements

        def execute(session: Any, query: Any, parameters: Any = None, *args: Any,
                    **kwargs: Any) -> Any:
            text = str(getattr(query, "query_string", query))
            with lock:
                statements.append((text, tuple(parameters or ())))
                try:
                    return original(session, _LWT_THEN_TTL.sub(r" \1 IF NOT EXISTS", text),
                                    parameters, *args, **kwargs)
                except InvalidRequest as exc:
                    exists = _TABLE_EXISTS.search(str(exc))
                    if exists is None or not _CREATE_TABLE.match(text):
                        raise
                    if _CREATE_IF_NOT_EXISTS.match(text):
                        return []
                    raise AlreadyExists(keyspace=exists[2], table=exists[1]) from None

        self._session_class.execute = execute
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._session_class.execute = self._original
        self._mock.__exit__(kind, exc, tb)

    def create_keyspace(self, name: str) -> None:
        from cassandra.cluster import Cluster

        cluster = Cluster(["127.0.0.1"])
        try:
            cluster.connect().execute(
                f"CREATE KEYSPACE IF NOT EXISTS {name} WITH REPLICATION = "
                f"{{'class': 'SimpleStrategy', 'replication_factor': 1}}")
        finally:
            cluster.shutdown()

    def sent(self, pattern: str) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements whose CQL matches `pattern` (a regular expression)."""
        return [s for s in self.statements if re.search(pattern, s[0])]
