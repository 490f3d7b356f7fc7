"""The file-system result store: one file per key in one directory.

A file is a small header (magic, expiry as unix time, 0 for none) and the value. Writes go to a
temporary file that replaces the old one in one step, so a reader sees the old value or the new
one, never half of either. Every change that must not interleave with another process's
(replacing, deleting, counting, sweeping expired files) runs under an exclusive ``flock`` on the
directory's ``.lock`` file; reads take no lock.

Key → file name: percent-encoding of everything but letters, digits and ``_.-~`` (a leading dot
is encoded too, so names never clash with the store's own dot-files); a name too long for a file
system keeps a readable prefix and ends in ``#`` and the key's SHA-256, ``#`` being a character
the encoding never leaves.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import quote

from kernel.errors import ConfigurationError, ConnectionFailed, DecodeError
from kernel.interfaces.results import ResultStore
from kernel.specs import Options
from kernel.std.filesystem import RESULT_STORE_CAPABILITIES

MAGIC = b"KRS1"
HEADER = struct.Struct("<4sd")
MAX_NAME = 200
#: expired files are looked for by a write at most this often (reads ignore them meanwhile).
SWEEP_EVERY = 300.0


def directory_from_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "file" or not rest.strip("/"):
        raise ConfigurationError(f"{url!r} does not name a directory; write file:///absolute/dir "
                                 f"or file://relative/dir")
    return rest.split("?", 1)[0]


def filename(key: str) -> str:
    name = quote(key, safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > MAX_NAME:
        name = f"{name[:100]}#{hashlib.sha256(key.encode()).hexdigest()}"
    return name


class FileResultStore(ResultStore):
    """``file:///abs/dir`` or ``file://relative/dir`` (created if missing).

    Option ``fsync`` (True): flush every write to the disk before `set` returns; turn it off
    for speed where losing the last results in a power cut is acceptable.
    """

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = options or {}
        self.url = url
        self.directory = directory_from_url(url)
        self._fsync = bool(options.get("fsync", True))
        self._lock_path = os.path.join(self.directory, ".lock")
        self._next_sweep = time.monotonic() + SWEEP_EVERY
        try:
            os.makedirs(self.directory, exist_ok=True)
            with self._locked():
                pass
        except OSError as exc:
            raise self._failure(exc, "open") from None

    def __repr__(self) -> str:
        return f"<FileResultStore {self.directory}>"

    # ------------------------------------------------------------------ plumbing

    def _failure(self, exc: OSError, doing: str) -> ConnectionFailed:
        return ConnectionFailed(
            f"cannot {doing} the result directory {self.directory} ({exc.strerror or exc}); make "
            f"sure it is a directory this user may write to, or choose another in the URL")

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, filename(key))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A descriptor per use: flock belongs to an open file, which a fork would share.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _stage(self, value: bytes, expires_at: float | None) -> str:
        """Write a complete file under a temporary name; the caller moves it into place."""
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(HEADER.pack(MAGIC, expires_at or 0.0))
                f.write(value)
                if self._fsync:
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def _sync_directory(self) -> None:
        if self._fsync:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _read(self, path: str) -> tuple[bytes, float | None] | None:
        """(value, expiry) of one file, or None if there is no such file."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failure(exc, "read") from None
        if len(data) < HEADER.size or data[:4] != MAGIC:
            raise DecodeError(f"{path} is not a kernel result file; remove it, or give the "
                              f"result store a directory of its own")
        _, expires_at = HEADER.unpack_from(data)
        return data[HEADER.size:], (expires_at or None)

    @staticmethod
    def _live(found: tuple[bytes, float | None] | None, now: float) -> bytes | None:
        if found is None or (found[1] is not None and found[1] <= now):
            return None
        return found[0]

    # ------------------------------------------------------------------ the contract

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=True)

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        self._store(items, expires, replace=False)

    def _store(self, items: Sequence[tuple[str, bytes]], expires: float | None,
               replace: bool) -> None:
        if not items:
            return
        now = time.time()
        expires_at = None if expires is None else now + expires
        staged: list[tuple[str, str]] = []
        try:
            for key, value in items:
                staged.append((self._stage(value, expires_at), self._path(key)))
            with self._locked():
                for tmp, path in staged:
                    if replace or self._live(self._read(path), now) is None:
                        os.replace(tmp, path)
                    else:
                        os.unlink(tmp)
            self._sync_directory()
        except OSError as exc:
            for tmp, _ in staged:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            raise self._failure(exc, "write to") from None
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY
            self.sweep()

    def get(self, key: str) -> bytes | None:
        return self._live(self._read(self._path(key)), time.time())

    def delete(self, keys: Sequence[str]) -> None:
        try:
            with self._locked():
                for key in keys:
                    try:
                        os.unlink(self._path(key))
                    except FileNotFoundError:
                        pass
        except OSError as exc:
            raise self._failure(exc, "delete from") from None

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        path = self._path(key)
        try:
            with self._locked():
                now = time.time()
                found = self._read(path)
                current = self._live(found, now)
                value = (int(current) if current else 0) + amount
                if expires is not None:
                    expires_at: float | None = now + expires
                else:
                    expires_at = found[1] if found is not None and current is not None else None
                os.replace(self._stage(str(value).encode(), expires_at), path)
            self._sync_directory()
        except OSError as exc:
            raise self._failure(exc, "write to") from None
        return value

    def cleanup(self) -> dict[str, int]:
        return {"records": self.sweep()}

    def sweep(self) -> int:
        """Delete the files of expired keys; return how many. Run by `set` now and then."""
        removed = 0
        now = time.time()
        with os.scandir(self.directory) as entries:
            names = [e.name for e in entries if not e.name.startswith(".")]
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                if self._live(self._read(path), now) is not None:
                    continue
                with self._locked():
                    # Looked again under the lock: it may have been set anew meanwhile.
                    found = self._read(path)
                    if found is not None and self._live(found, now) is None:
                        os.unlink(path)
                        removed += 1
            except (DecodeError, OSError, ConnectionFailed):
                continue
        return removed
