"""Where and how a worker logs: stderr or a log file (``--logfile``), text or JSON lines
(``--log-format json``).

The file name takes Celery's node-name placeholders (`kernel.worker.nodenames`), expanded in
each process: ``--logfile=%n%I.log`` gives one file per process, ``w1.log`` for the worker's
main process and ``w1-1.log``, ``w1-2.log`` for its prefork children.

JSON lines carry, on every record a task logs while it runs, the task's id and name
(``task_id``, ``task_name``), so a log pipeline can follow one task across workers.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kernel.errors import WorkerSetupError
from kernel.message import current_request
from kernel.worker.nodenames import node_format

#: the text format; `kernel.testing.workers` reads its records by this layout.
TEXT = "[%(asctime)s %(levelname)s/%(processName)s] %(message)s"


@dataclass(frozen=True)
class LogSetup:
    """A worker's logging: level, file (a template, None: stderr) and format."""

    level: str = "INFO"
    file: str | None = None
    format: str = "text"

    def path(self, nodename: str, index: int | None = None) -> Path | None:
        return None if self.file is None else Path(node_format(self.file, nodename, index))

    def check(self, nodename: str) -> None:
        """Fail now, with a sentence, if the main process's log file cannot be opened (before
        a detached worker loses its terminal)."""
        path = self.path(nodename)
        if path is not None:
            _open(path).close()

    def apply(self, nodename: str, index: int | None = None) -> None:
        """Log this process's records as set up here (replacing a handler set up before)."""
        path = self.path(nodename, index)
        handler: logging.Handler = logging.StreamHandler(sys.stderr) if path is None \
            else _open(path)
        handler.setFormatter(JsonFormatter() if self.format == "json"
                             else logging.Formatter(TEXT))
        root = logging.getLogger()
        for old in [h for h in root.handlers if getattr(h, "kernel_worker", False)]:
            root.removeHandler(old)
            old.close()
        handler.kernel_worker = True  # type: ignore[attr-defined]  # ours, to replace
        if path is not None or not root.handlers:
            root.addHandler(handler)  # on stderr, a handler the application set up wins
        else:
            handler.close()
        root.setLevel(self.level.upper())


def _open(path: Path) -> logging.handlers.WatchedFileHandler:
    """A handler that appends to `path` and reopens it once logrotate moved it away."""
    try:
        return logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise WorkerSetupError(
            f"cannot open the log file {path}: {exc.strerror or exc}; give --logfile a path "
            f"in a directory that exists and that the worker's user may write") from None


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, process, pid, message;
    ``task_id`` and ``task_name`` while a task runs; ``exc`` with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "message": record.getMessage(),
        }
        request = current_request.get()
        if request is not None:
            line["task_id"], line["task_name"] = request.id, request.name
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=repr)


def setup_logging(level: str) -> None:
    """Text records on stderr at `level` (unless the application set up its own handler)."""
    LogSetup(level).apply("")
