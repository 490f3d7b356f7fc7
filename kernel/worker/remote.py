"""The worker's remote-control commands (``reference/celery-protocol.md`` §5.4), by Celery's
names, arguments and reply shapes.

A command is either the node's (answered by the process that supervises: ping, stats, pool
size, shutdown) or a consumer's (``local``: what it holds and runs, its rate and time limits,
its queues, its events switch). A consumer's command runs on every consumer of the node: in
the worker's own process for the in-process pools, in each consumer child for prefork (asked
through the pool, `Pool.ask_consumers`), and the answers are merged into the node's one reply.

Arguments are checked against each command's declared types before it runs (a wrong type is an
error reply) and are only ever data: no command evaluates, unpickles or imports what it is
sent.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import resource
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Any

import kernel
from kernel.config import Config
from kernel.parsing import mask_setting, mask_url, parse_rate
from kernel.worker.revocations import Revocations

if TYPE_CHECKING:
    from kernel.worker.consumer import Held
    from kernel.worker.worker import Worker

#: how long a revocation sent as a command is remembered (as `kernel.control`'s default).
REVOKE_EXPIRES = 7 * 86400.0
#: seconds a node waits for its consumer children's answers.
ASK_TIMEOUT = 2.0

Merge = Callable[[list[Any]], Any]


class BadArguments(ValueError):
    """A command's arguments are not what it takes."""


@dataclass(frozen=True)
class Command:
    name: str
    fn: Callable[..., Any]
    #: inspect (reads) or control (acts).
    kind: str
    #: runs on every consumer, answers merged with `merge`.
    local: bool
    merge: Merge
    #: argument name → the types it may have.
    params: dict[str, tuple[type, ...]]
    #: a change that consumer processes started later get too (`Pool.ask_consumers`).
    standing: bool = False
    #: a consumer's command that the supervising process of consumer children runs on itself
    #: too, first: it changes a task's options, which the node reports (``registered``).
    node_too: bool = False


COMMANDS: dict[str, Command] = {}


def _first(values: list[Any]) -> Any:
    return values[0] if values else {"error": "no consumer answered"}


def _concat(values: list[Any]) -> list[Any]:
    return [item for value in values if isinstance(value, list) for item in value]


def _union(values: list[Any]) -> list[Any]:
    return sorted({item for value in values if isinstance(value, list) for item in value})


def _dicts(values: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for value in values:
        if isinstance(value, dict):
            merged.update(value)
    return merged


def _queues(values: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for queue in _concat(values):
        seen.setdefault(queue["name"], queue)
    return list(seen.values())


def _local_stats(values: list[Any]) -> dict[str, Any]:
    total: dict[str, int] = {}
    processed = 0
    for value in values:
        for name, count in value.get("total", {}).items():
            total[name] = total.get(name, 0) + count
        processed += value.get("processed", 0)
    return {"total": total, "processed": processed,
            "prefetch_count": sum(v.get("prefetch_count", 0) for v in values),
            "waiting": sum(v.get("waiting", 0) for v in values)}


_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
          "list": (list,), "dict": (dict,), "ids": (str, list), "any": (object,)}


def command(kind: str, *, local: bool = False, merge: Merge = _first, standing: bool = False,
            aliases: Iterable[str] = (), node_too: bool = False,
            **params: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        types = {name: _TYPES[t] for name, t in params.items()}
        for name in (fn.__name__, *aliases):
            COMMANDS[name] = Command(name, fn, kind, local, merge, types, standing, node_too)
        return fn
    return register


def check(cmd: Command, arguments: Any) -> dict[str, Any]:
    """The arguments `cmd` gets: declared ones of the right type, None for null; unknown
    ones are ignored (Celery's clients send some a command does not read)."""
    if arguments is None:
        return {}
    if not isinstance(arguments, dict):
        raise BadArguments(f"arguments must be an object, got {type(arguments).__name__}")
    out = {}
    for name, value in arguments.items():
        types = cmd.params.get(name)
        if types is None or value is None:
            continue
        if types == (bool,) and type(value) is int and value in (0, 1):
            value = bool(value)  # Celery's clients send flags as 0/1 (Flower: terminate=1)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types
                                            and types != (object,)):
            wanted = " or ".join(t.__name__ for t in types)
            raise BadArguments(f"argument {name!r} of {cmd.name} must be {wanted}, got "
                               f"{type(value).__name__}")
        out[name] = value
    return out


def run_local(worker: Worker, name: str, arguments: dict[str, Any]) -> Any:
    """A consumer's command on this process's worker (in a prefork child: asked by the node)."""
    cmd = COMMANDS[name]
    try:
        return cmd.fn(worker, **arguments)
    except Exception as exc:  # noqa: BLE001 - the answer says what went wrong
        return {"error": f"{type(exc).__name__}: {exc}"}


# ------------------------------------------------------------------ what a consumer holds


def _request(held: Held, worker: Worker, safe: bool = False) -> dict[str, Any]:
    r = held.request
    h = r.headers
    return {"id": r.id, "name": r.name, "args": h.get("argsrepr") if safe else r.args or
            h.get("argsrepr"), "kwargs": h.get("kwargsrepr") if safe else r.kwargs or
            h.get("kwargsrepr"), "type": r.name, "hostname": worker.nodename,
            "time_start": (time.time() - (time.monotonic() - held.started)
                           if held.started else None), "acknowledged": not held.acks_late,
            "delivery_info": r.delivery_info, "worker_pid": os.getpid(),
            "priority": r.properties.get("priority")}


@command("inspect", local=True, merge=_concat, aliases=("dump_active",), safe="bool")
def active(worker: Worker, safe: bool = False) -> list[dict[str, Any]]:
    consumer = worker.local_consumer()
    return [_request(h, worker, safe) for h in consumer.running_now()]


@command("inspect", local=True, merge=_concat, aliases=("dump_reserved",))
def reserved(worker: Worker) -> list[dict[str, Any]]:
    consumer = worker.local_consumer()
    return [_request(h, worker, True) for h in consumer.waiting_now()
            if h.request.eta is None or h.request.eta <= time.time()]


@command("inspect", local=True, merge=_concat, aliases=("dump_schedule",))
def scheduled(worker: Worker) -> list[dict[str, Any]]:
    consumer = worker.local_consumer()
    return [{"eta": datetime.fromtimestamp(h.request.eta, timezone.utc).isoformat(),
             "priority": h.request.properties.get("priority") or 0,
             "request": _request(h, worker, True)}
            for h in consumer.waiting_now()
            if h.request.eta is not None and h.request.eta > time.time()]


@command("inspect", local=True, merge=_union, aliases=("dump_revoked",))
def revoked(worker: Worker) -> list[str]:
    step = worker.step(Revocations)
    return sorted(step.revoked) if step is not None else []


@command("inspect", local=True, merge=_dicts, ids="ids", task_id="ids")
def query_task(worker: Worker, ids: str | list[str] | None = None,
               task_id: str | list[str] | None = None) -> dict[str, Any]:
    wanted = set(_ids(ids)) | set(_ids(task_id))
    consumer = worker.local_consumer()
    found: dict[str, Any] = {}
    for word, helds in (("active", consumer.running_now()), ("reserved", consumer.waiting_now())):
        for h in helds:
            if h.request.id in wanted:
                state = "scheduled" if word == "reserved" and h.request.eta and \
                    h.request.eta > time.time() else word
                found[h.request.id] = [state, _request(h, worker, True)]
    return found


@command("inspect", local=True, merge=_queues)
def active_queues(worker: Worker) -> list[dict[str, Any]]:
    return [_queue_info(name) for name in worker.local_consumer().queues]


@command("inspect", local=True, merge=_local_stats)
def local_stats(worker: Worker) -> dict[str, Any]:
    consumer = worker.local_consumer()
    counters = consumer.counters
    return {"total": dict(counters.by_task), "processed": counters.processed,
            "prefetch_count": consumer.prefetch, "waiting": len(consumer.waiting_now())}


def _queue_info(name: str) -> dict[str, Any]:
    exchange = {"name": name, "type": "direct", "arguments": None, "durable": True,
                "passive": False, "auto_delete": False, "delivery_mode": None,
                "no_declare": False}
    return {"name": name, "exchange": exchange, "routing_key": name, "queue_arguments": None,
            "binding_arguments": None, "consumer_arguments": None, "durable": True,
            "exclusive": False, "auto_delete": False, "no_ack": False, "alias": None,
            "bindings": [], "no_declare": None, "expires": None, "message_ttl": None,
            "max_length": None, "max_length_bytes": None, "max_priority": None}


def _ids(value: str | Iterable[str] | None) -> list[str]:
    ids = [value] if isinstance(value, str) else list(value or ())
    if not all(isinstance(i, str) for i in ids):
        raise BadArguments("task ids must be strings")
    return ids


# ------------------------------------------------------------------ what a consumer does


@command("control", local=True, standing=True, task_id="ids", terminate="bool", signal="str")
def revoke(worker: Worker, task_id: str | list[str] | None = None, terminate: bool = False,
           signal: str = "SIGTERM") -> dict[str, Any]:
    ids = _ids(task_id)
    _signal_number(signal)
    step = worker.step(Revocations)
    if step is None:
        return {"error": "this worker runs without the revocations step"}
    stopped = [i for i in ids if step.add(i, terminate, time.time() + REVOKE_EXPIRES)]
    what = ", ".join(ids) or "nothing"
    return {"ok": f"tasks {what} flagged as revoked"
            + (f"; terminated {', '.join(stopped)}" if stopped else "")}


@command("control", local=True, task_id="ids", signal="str")
def terminate(worker: Worker, signal: str = "SIGTERM",
              task_id: str | list[str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = revoke(worker, task_id, terminate=True, signal=signal)
    return answer


def _signal_number(name: str) -> int:
    if not isinstance(name, str):
        raise BadArguments("signal must be a name such as 'SIGTERM'")
    key = name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"
    number = getattr(signal, key, None)
    if not isinstance(number, int):
        raise BadArguments(f"unknown signal {name!r}")
    return number


@command("control", local=True, standing=True, node_too=True, task_name="str",
         rate_limit="any")
def rate_limit(worker: Worker, task_name: str = "", rate_limit: Any = None) -> dict[str, str]:
    task = worker.app.tasks.get(task_name)
    if task is None:
        return {"error": f"unknown task {task_name!r}"}
    if rate_limit in (None, "", 0, "0"):
        # "" (not None, "the app's setting"): off even where task_default_rate_limit is set.
        new = "" if worker.app.conf.task_default_rate_limit else None
    elif isinstance(rate_limit, (str, int, float)) and not isinstance(rate_limit, bool):
        parse_rate(str(rate_limit))  # a bad rate is an error reply, not a broken limiter
        new = str(rate_limit)
    else:
        raise BadArguments("rate_limit must be a rate such as '10/s' or null")
    task.options = dataclasses.replace(task.options, rate_limit=new)
    if worker.consumer is not None:  # not in a process that only supervises
        worker.consumer.forget_limits(task_name)
    return {"ok": f"rate limit of {task_name} set to {new}" if new else
            f"rate limit of {task_name} disabled"}


@command("control", local=True, standing=True, node_too=True, task_name="str",
         soft="float", hard="float")
def time_limit(worker: Worker, task_name: str = "", soft: float | None = None,
               hard: float | None = None) -> dict[str, str]:
    task = worker.app.tasks.get(task_name)
    if task is None:
        return {"error": f"unknown task {task_name!r}"}
    task.options = dataclasses.replace(task.options, soft_time_limit=soft, time_limit=hard)
    return {"ok": f"time limits of {task_name} set to soft {soft}, hard {hard}"}


@command("control", local=True, standing=True)
def enable_events(worker: Worker) -> dict[str, str]:
    worker.app.events.task_events = True
    return {"ok": "task events enabled"}


@command("control", local=True, standing=True)
def disable_events(worker: Worker) -> dict[str, str]:
    worker.app.events.task_events = False
    return {"ok": "task events disabled"}


@command("control", local=True, standing=True, queue="str", exchange="str", exchange_type="str",
         routing_key="str")
def add_consumer(worker: Worker, queue: str = "", **_: Any) -> dict[str, str]:
    if not queue:
        raise BadArguments("add_consumer needs a queue")
    consumer = worker.local_consumer()
    if queue in consumer.queues:
        return {"ok": f"already consuming from {queue!r}"}
    consumer.set_queues([*consumer.queues, queue])
    return {"ok": f"add consumer {queue}"}


@command("control", local=True, standing=True, queue="str")
def cancel_consumer(worker: Worker, queue: str = "") -> dict[str, str]:
    consumer = worker.local_consumer()
    if queue not in consumer.queues:
        return {"error": f"not consuming from {queue!r}"}
    if len(consumer.queues) == 1:
        return {"error": f"{queue!r} is the last queue this worker consumes; stop the "
                         f"worker instead"}
    consumer.set_queues([q for q in consumer.queues if q != queue])
    return {"ok": f"no longer consuming from {queue}"}


# ------------------------------------------------------------------ the node's own


@command("inspect")
def ping(worker: Worker) -> dict[str, str]:
    return {"ok": "pong"}


@command("inspect")
def clock(worker: Worker) -> dict[str, int]:
    return {"clock": worker.app.events.clock.value}


@command("inspect")
def stats(worker: Worker) -> dict[str, Any]:
    local = _local_stats(worker.ask("local_stats", {}))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conf = worker.app.conf
    return {
        "total": local["total"], "pid": os.getpid(), "clock": str(worker.app.events.clock.value),
        "uptime": int(time.monotonic() - worker.started_at),
        "pool": worker.pool.info(),
        "broker": _broker(conf),
        "prefetch_count": local["prefetch_count"],
        "rusage": {"utime": usage.ru_utime, "stime": usage.ru_stime,
                   "maxrss": usage.ru_maxrss, "minflt": usage.ru_minflt,
                   "majflt": usage.ru_majflt, "nvcsw": usage.ru_nvcsw,
                   "nivcsw": usage.ru_nivcsw},
        "sw_ident": "py-kernel", "sw_ver": kernel.__version__, "sw_sys": platform.system(),
        **({"autoscaler": worker.autoscaler.info()} if worker.autoscaler else {}),
    }


def _broker(conf: Config) -> dict[str, Any]:
    """The broker as Celery's stats show it: where, as whom (never the password)."""
    url = urlsplit(conf.broker_url)
    try:
        port = url.port
    except ValueError:
        port = None
    return {"hostname": url.hostname or mask_url(conf.broker_url), "userid": url.username,
            "virtual_host": url.path.lstrip("/") or "/", "port": port,
            "transport": url.scheme, "insist": False, "ssl": url.scheme.endswith("s"),
            "connect_timeout": conf.broker_connection_timeout, "transport_options": {},
            "login_method": None, "uri_prefix": None, "heartbeat": None,
            "failover_strategy": None, "alternates": []}


@command("inspect", aliases=("dump_tasks",), taskinfoitems="list", builtins="bool")
def registered(worker: Worker, taskinfoitems: list[str] | None = None,
               builtins: bool = False) -> list[str]:
    names = sorted(n for n in worker.app.tasks if builtins or not n.startswith("celery."))
    out = []
    for name in names:
        options = worker.app.tasks[name].options
        attrs = [f"{item}={getattr(options, item)}" for item in taskinfoitems or ()
                 if isinstance(item, str) and getattr(options, item, None) is not None]
        out.append(f"{name} [{' '.join(attrs)}]" if attrs else name)
    return out


@command("inspect", aliases=("dump_conf",), with_defaults="bool")
def conf(worker: Worker, with_defaults: bool = False) -> dict[str, Any]:
    current, default = worker.app.conf, Config()
    out: dict[str, Any] = {}
    for name in sorted(Config.names()):
        value = getattr(current, name)
        if not with_defaults and value == getattr(default, name):
            continue
        out[name] = mask_setting(name, value)
    return out



@command("inspect")
def report(worker: Worker) -> dict[str, str]:
    conf = worker.app.conf
    lines = [f"software -> kernel:{kernel.__version__} ({platform.system()})",
             f"python -> {platform.python_version()} ({platform.python_implementation()})",
             f"platform -> {platform.platform()}",
             f"broker -> {mask_url(conf.broker_url)}",
             f"results -> {mask_url(conf.result_backend) if conf.result_backend else 'disabled'}",
             f"pool -> {worker.options.pool}, concurrency {worker.options.concurrency}",
             f"plugins -> {', '.join(sorted(i.name for i in worker.app.plugins.infos()))}"]
    return {"ok": "\n".join(lines)}


@command("control")
def heartbeat(worker: Worker) -> None:
    worker.beat()


@command("control", n="int")
def pool_grow(worker: Worker, n: int = 1) -> dict[str, str]:
    if n < 1:
        raise BadArguments("n must be at least 1")
    worker.resize(n)
    return {"ok": f"pool will grow by {n}"}


@command("control", n="int")
def pool_shrink(worker: Worker, n: int = 1) -> dict[str, str]:
    if n < 1:
        raise BadArguments("n must be at least 1")
    if worker.options.concurrency - n < 1:
        return {"error": f"cannot shrink by {n}: the pool has {worker.options.concurrency}"}
    worker.resize(-n)
    return {"ok": f"pool will shrink by {n}"}


@command("control", modules="list", reload="bool", reloader="any")
def pool_restart(worker: Worker, **_: Any) -> dict[str, str]:
    """Each process replaced after its job; the new ones import the task modules afresh."""
    if not worker.app.conf.worker_pool_restarts:
        return {"error": "pool restarts are not enabled: set worker_pool_restarts = True, "
                         "or restart the worker"}
    worker.restart_pool()
    return {"ok": "reload started"}


@command("control", max="int", min="int")
def autoscale(worker: Worker, max: int | None = None,  # noqa: A002 - Celery's names
              min: int | None = None) -> dict[str, str]:  # noqa: A002
    if max is None or min is None or not 1 <= min <= max:
        raise BadArguments("autoscale needs max and min with max >= min >= 1")
    worker.autoscale(max, min)
    return {"ok": f"autoscale now max={max} min={min}"}


@command("control", msg="str")
def shutdown(worker: Worker, msg: str = "") -> dict[str, str]:
    worker.request_shutdown()
    return {"ok": "shutting down"}


@command("control", from_node="str", revoked="dict")
def hello(worker: Worker, from_node: str = "", revoked: dict[str, Any] | None = None) -> Any:
    if from_node == worker.nodename:
        return None  # Celery's workers greet themselves too: no answer, as theirs
    return {"revoked": {}, "clock": worker.app.events.clock.value}


def matches(nodename: str, destination: Any, pattern: Any, matcher: Any) -> bool:
    """Is a request for this node (§5.2 targeting)? Destination first, then pattern."""
    if destination:
        return isinstance(destination, list) and nodename in destination
    if isinstance(pattern, str) and pattern and matcher in ("glob", "pcre"):
        if matcher == "glob":
            return fnmatchcase(nodename, pattern)
        try:
            return re.search(pattern, nodename) is not None
        except re.error:
            return False
    return True
