"""Running a worker in the background (``--detach``) and as another user (``--uid``,
``--gid``), the Unix way: fork twice (the worker is no session leader, so it never gets a
terminal back), a new session, the working directory and umask asked for, stdin on
/dev/null and stdout/stderr appended to the log file, so that even a crash before logging
is set up leaves its traceback there.

The user and group are switched before the log and pid files are checked, so that the files
are checked, and later written, as the user the worker runs as (as Celery does).
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

from kernel.errors import WorkerSetupError


def parse_umask(value: str) -> int:
    """``022`` or ``0o022`` (octal, as umask(1) takes it) -> 18."""
    try:
        mask = int(value.removeprefix("0o"), 8)
    except ValueError:
        raise WorkerSetupError(f"--umask {value!r} is not an octal number; give one such as "
                               f"022 or 0o027") from None
    if not 0 <= mask <= 0o777:
        raise WorkerSetupError(f"--umask {value!r} is outside 000..777")
    return mask


def user_ids(uid: str | None, gid: str | None) -> tuple[int | None, int | None]:
    """The numeric ids of a user and group given by name or number; a user without a group
    takes the user's primary group."""
    user = None
    if uid is not None:
        try:
            user = pwd.getpwuid(int(uid)) if uid.isdigit() else pwd.getpwnam(uid)
        except KeyError:
            raise WorkerSetupError(f"--uid {uid!r}: there is no such user on this "
                                   f"machine") from None
    group = None
    if gid is not None:
        try:
            group = int(gid) if gid.isdigit() else grp.getgrnam(gid).gr_gid
        except KeyError:
            raise WorkerSetupError(f"--gid {gid!r}: there is no such group on this "
                                   f"machine") from None
    elif user is not None:
        group = user.pw_gid
    return (user.pw_uid if user else None), group


def drop_privileges(uid: int | None, gid: int | None) -> None:
    """Become `uid`/`gid` (group first: once the user changed, the group can no longer)."""
    try:
        if gid is not None and gid != os.getgid():
            os.setgid(gid)
            os.setgroups([gid])
        if uid is not None and uid != os.getuid():
            name = pwd.getpwuid(uid).pw_name
            os.initgroups(name, gid if gid is not None else os.getgid())
            os.setuid(uid)
    except PermissionError:
        raise WorkerSetupError(f"cannot switch to user {uid} / group {gid}: only root may "
                               f"(start the worker as root, or leave out --uid/--gid)") from None


def change_directory(workdir: str | None) -> None:
    if workdir is not None:
        try:
            os.chdir(workdir)
        except OSError as exc:
            raise WorkerSetupError(f"--workdir {workdir}: {exc.strerror}; give a directory "
                                   f"that exists and the worker's user may enter") from None


def detach(output: Path | None) -> None:
    """Continue in the background: the calling process exits (status 0) and a grandchild,
    in a session of its own, returns from here, its stdout and stderr on `output`."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    out = null if output is None else os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                              0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for fd in {null, out}:
        if fd > 2:
            os.close(fd)
