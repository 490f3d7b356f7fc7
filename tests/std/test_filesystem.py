"""The file-system result store: the conformance suite, plus what files must survive: other
processes counting at once, keys that are not file names, and directories that cannot be used."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.errors import ConfigurationError, ConnectionFailed
from kernel.std.filesystem.store import FileResultStore, directory_from_url, filename
from kernel.testing.results import ResultStoreSuite


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'results'}"


class TestFileResultStore(ResultStoreSuite):
    @pytest.fixture
    def store(self, url: str) -> Iterator[FileResultStore]:
        s = FileResultStore(url, {"fsync": False})
        yield s
        s.close()


class TestFileResultStoreWithFsync(TestFileResultStore):
    """The default: every write flushed to disk. Same guarantees, slower."""

    @pytest.fixture
    def store(self, url: str) -> Iterator[FileResultStore]:
        s = FileResultStore(url, {})
        yield s
        s.close()


COUNTER = textwrap.dedent("""
    import json, sys
    from kernel.std.filesystem.store import FileResultStore
    store = FileResultStore(sys.argv[1], {"fsync": False})
    print(json.dumps([store.incr("chord") for _ in range(int(sys.argv[2]))]))
""")


def test_counter_is_atomic_across_processes(url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, url, "150"],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    seen = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        seen += [int(v) for v in out.strip().strip("[]").split(",")]
    assert sorted(seen) == list(range(1, 301)), "two processes saw the same counter value"


def test_file_names_are_safe_and_distinct() -> None:
    keys = ["a/b", "a%2Fb", "..", ".", ".x", "x" * 1000, "y" * 1000, "A\x00B", "é"]
    names = [filename(k) for k in keys]
    assert len(set(names)) == len(keys), "two keys share a file"
    for name in names:
        assert "/" not in name and "\x00" not in name and not name.startswith(".")
        assert len(name.encode()) <= 255


def test_writes_leave_no_temporary_files(url: str, tmp_path: Path) -> None:
    store = FileResultStore(url, {"fsync": False})
    store.set([(f"k{i}", b"v") for i in range(20)], None)
    store.incr("n")
    leftovers = [p for p in os.listdir(tmp_path / "results") if p.startswith(".tmp")]
    assert not leftovers


def test_sweep_removes_only_expired_files(url: str, tmp_path: Path) -> None:
    store = FileResultStore(url, {"fsync": False})
    store.set([("old", b"1")], -1)  # already expired
    store.set([("new", b"2")], 60)
    store.set([("kept", b"3")], None)
    assert store.sweep() == 1
    assert sorted(p for p in os.listdir(tmp_path / "results") if not p.startswith(".")) == [
        "kept", "new"]


def test_relative_and_absolute_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert directory_from_url("file:///srv/results") == "/srv/results"
    assert directory_from_url("file://results/here") == "results/here"
    monkeypatch.chdir(tmp_path)
    FileResultStore("file://rel/dir", {}).set([("k", b"v")], None)
    assert (tmp_path / "rel" / "dir" / "k").exists()
    with pytest.raises(ConfigurationError, match="file:///absolute/dir"):
        FileResultStore("file://", {})


def test_unusable_directory_is_a_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    with pytest.raises(ConnectionFailed) as info:
        FileResultStore(f"file://{blocker / 'results'}", {})
    assert str(blocker) in str(info.value) and "choose another" in str(info.value)


def test_foreign_file_is_reported(url: str, tmp_path: Path) -> None:
    store = FileResultStore(url, {})
    (tmp_path / "results" / "intruder").write_bytes(b"hello")
    with pytest.raises(Exception, match="not a kernel result file"):
        store.get("intruder")


def test_entry_module_stays_light() -> None:
    code = ("import sys, kernel.std.filesystem; "
            "print('kernel.std.filesystem.store' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
