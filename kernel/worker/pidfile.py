"""A worker's pid file (``--pidfile``): the process id of the worker running under it, so that
``kernel multi stop`` and init scripts find it, and so that two workers never run under one.

A pid file whose process is gone (a worker that was killed) is stale: the next worker takes it
over, saying so. One whose process runs refuses the start with a sentence.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from kernel.errors import WorkerSetupError


def read_pid(path: Path) -> int | None:
    """The process id `path` names; None if there is no such file or it holds no number."""
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise WorkerSetupError(f"cannot read the pid file {path}: {exc.strerror}") from None
    return int(text) if text.isdigit() and int(text) > 0 else None


def alive(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Pidfile:
    """``Pidfile(path).acquire()`` writes this process's id, `release` removes it again."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).absolute()

    def check(self) -> None:
        """Refuse, with a sentence, if a running process holds the pid file."""
        pid = read_pid(self.path)
        if pid is not None and pid != os.getpid() and alive(pid):
            raise WorkerSetupError(
                f"the pid file {self.path} names process {pid}, which is running: another "
                f"worker runs under it; stop that one first (kill -TERM {pid}, or kernel "
                f"multi stop) or give this worker another --pidfile")

    def writable(self) -> None:
        """Refuse, with a sentence, if the pid file could not be written (its directory is
        missing or read-only), without writing it."""
        probe = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        self._open(probe, self.path)
        probe.unlink()

    def acquire(self) -> str | None:
        """Write this process's id, taking over a stale file (what is returned says so);
        `WorkerSetupError` if a running process holds it or it cannot be written."""
        self.check()
        pid = read_pid(self.path)
        note = None
        if self.path.exists() and pid != os.getpid():
            note = (f"took over the pid file {self.path}: "
                    + (f"process {pid} is gone" if pid else "it named no process"))
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._open(self.path, self.path)
        return note

    def _open(self, path: Path, named: Path) -> None:
        try:
            # O_EXCL: of two workers starting at once under one file, one wins, the other
            # hears why below.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            self.check()  # the other one's
            raise WorkerSetupError(f"the pid file {named} was created by another process "
                                   f"while this worker started; try again") from None
        except OSError as exc:
            hint = "the directory does not exist" if exc.errno == errno.ENOENT else exc.strerror
            raise WorkerSetupError(
                f"cannot write the pid file {named} ({hint}); give --pidfile a path in a "
                f"directory that exists and that the worker's user may write") from None
        with os.fdopen(fd, "w") as out:
            out.write(f"{os.getpid()}\n")

    def release(self) -> None:
        """Remove the file if it still names this process."""
        with contextlib.suppress(OSError, WorkerSetupError):
            if read_pid(self.path) == os.getpid():
                self.path.unlink()
