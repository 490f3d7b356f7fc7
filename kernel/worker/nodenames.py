"""Celery's placeholders in node names and in the file names derived from them.

In a node name (``-n w1@%h``): ``%h`` the host name with its domain, ``%n`` the host name
alone, ``%d`` the domain. In a file name (``--logfile``, ``--pidfile``): ``%p`` (or ``%N``)
the full node name (``w1@host.example.com``), ``%n`` its name part (``w1``), ``%h`` its host
part (``host.example.com``), ``%d`` that host's domain (``example.com``), ``%i`` the pool
process's number (0 in the worker's main process, 1... in prefork children) and ``%I`` the
same with a dash (``-1``; nothing in the main process). ``%%`` is a percent sign; an unknown
placeholder stays as written.
"""

from __future__ import annotations

import socket


def _expand(template: str, values: dict[str, str]) -> str:
    out, chars = [], iter(template)
    for char in chars:
        if char != "%":
            out.append(char)
            continue
        key = next(chars, "")
        out.append(values.get(key, f"%{key}"))
    return "".join(out)


def host_format(name: str, hostname: str | None = None) -> str:
    """A node name with the host placeholders filled in (``w1@%h`` -> ``w1@vm.example.com``)."""
    host = hostname or socket.gethostname()
    short, _, domain = host.partition(".")
    return _expand(name, {"h": host, "n": short, "d": domain, "%": "%"})


def node_format(template: str, nodename: str, index: int | None = None, *,
                processes: bool = True) -> str:
    """A file name for node `nodename` and pool process `index` (None: the main process).
    Without `processes` (``kernel multi``, which leaves them to each worker), ``%i``, ``%I``
    and ``%%`` stay as written."""
    name, _, host = nodename.rpartition("@") if "@" in nodename else (nodename, "", "")
    values = {"p": nodename, "N": nodename, "n": name, "h": host, "d": host.partition(".")[2]}
    if processes:
        values.update({"i": str(index or 0), "I": f"-{index}" if index else "", "%": "%"})
    return _expand(template, values)
