"""Files that several processes write at once: task modules of end-to-end tests book each run
of a task in one, and read it back to tell how often, where and when each task ran."""

from __future__ import annotations

import os
from pathlib import Path


def append_line(path: str | Path, line: str) -> None:
    """Append `line` and a newline to `path` (created if missing) in one write: appends of a
    short line from several processes never interleave, and the file outlives the brokers and
    stores a test stops."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)
