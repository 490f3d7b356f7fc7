"""Where a task goes: ``task_routes`` and ``task_queues`` resolved as Celery resolves them.

The rules (Celery's routing guide): a send's own ``queue``/``exchange``/``routing_key``/
``priority`` win, then the task's options, then the first router in ``task_routes`` that
answers, then ``task_default_queue``. A router is a dict (task names, glob patterns such as
``"feed.tasks.*"``, or compiled regular expressions, mapped to options or a queue name), a
function ``(name, args, kwargs, options, task=None, **kw)`` or an object with such a
``route_for_task`` method (or a ``module:attr`` string naming one), or a list of these, tried
in order. A queue named in ``task_queues`` brings its exchange and routing key; one that is
not is created with its own direct exchange, unless ``task_create_missing_queues`` is off.
A route naming an exchange and no queue lands in the queues ``task_queues`` binds to that
exchange for that routing key (direct: the same key; topic: a matching pattern; fanout: all).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, NamedTuple

from kernel.config_sources import import_object
from kernel.errors import ConfigurationError, RoutingError
from kernel.interfaces.transport import Binding, topic_matches

if TYPE_CHECKING:
    from kernel.config import Config

EXCHANGE_TYPES = ("direct", "topic", "fanout")
Router = Callable[..., Any]


class Route(NamedTuple):
    """Where one message goes: the queue kernel delivers to, and for brokers with exchanges the
    exchange and routing key (None: the queue's own), and a priority from the route."""

    queue: str
    exchange: str | None = None
    routing_key: str | None = None
    priority: int | None = None


class Routes:
    """One configuration's routers and queues, compiled once."""

    def __init__(self, conf: Config) -> None:
        self.conf = conf
        self.compiled_from = (conf.task_routes, conf.task_queues, conf.task_default_queue,
                              conf.task_create_missing_queues)
        self.default_queue = conf.task_default_queue
        self.create_missing = conf.task_create_missing_queues
        self.bindings = queues_from(conf)
        self.by_queue: dict[str, list[Binding]] = {}
        for binding in self.bindings:
            self.by_queue.setdefault(binding.queue, []).append(binding)
        if conf.task_queues is None:  # Celery's default: the default queue alone
            self.declared = False
            default = Binding(self.default_queue, conf.task_default_exchange or self.default_queue,
                              conf.task_default_exchange_type,
                              conf.task_default_routing_key or self.default_queue)
            if default.exchange != default.queue or default.routing_key != default.queue:
                self.by_queue[default.queue] = [default]
                self.bindings = [default]
        else:
            self.declared = True
        self.routers = routers_from(conf.task_routes)
        #: nothing to resolve: the fast path of every send.
        self.trivial = not self.routers and not self.by_queue

    def current(self, conf: Config) -> bool:
        """Whether these are still `conf`'s routes (its routing settings are the same)."""
        routes, queues, default, create = self.compiled_from
        return (conf is self.conf and conf.task_routes is routes and conf.task_queues is queues
                and conf.task_default_queue is default
                and conf.task_create_missing_queues is create)

    def queue_names(self) -> list[str]:
        """The queues a worker consumes without -Q: those of ``task_queues``, in order, else
        the default queue."""
        if not self.declared:
            return [self.default_queue]
        return list(dict.fromkeys(binding.queue for binding in self.bindings))

    def route(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
              options: Mapping[str, Any], queue: str | None = None,
              priority: int | None = None) -> Route:
        """The route of one send: `options` (the send's), then the task's `queue` and
        `priority`, then the routers, then the default queue."""
        if self.trivial and options.get("exchange") is None:
            sent = options.get("priority")
            return Route(options.get("queue") or queue or self.default_queue, None,
                         options.get("routing_key"), priority if sent is None else sent)
        wanted = {key: options.get(key) for key in ("queue", "exchange", "routing_key",
                                                     "priority")}
        for key, value in (("queue", queue), ("priority", priority)):
            if wanted[key] is None:
                wanted[key] = value
        if wanted["queue"] is None and wanted["exchange"] is None:
            found = self.lookup(name, args, kwargs, options)
            for key, value in found.items():
                if wanted.get(key) is None:
                    wanted[key] = value
        return self.resolve(name, wanted)

    def lookup(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
               options: Mapping[str, Any]) -> dict[str, Any]:
        """The first router's answer, as a dict of options; {} if none answers."""
        for router in self.routers:
            try:
                answer = router(name, args, kwargs, options, task=None)
            except Exception as exc:  # noqa: BLE001 - a user's router, named in one sentence
                raise RoutingError(f"task_routes: the router {describe(router)} raised "
                                   f"{type(exc).__name__}: {exc} while routing task {name!r}; "
                                   f"fix the router (it returns a dict of options, a queue "
                                   f"name or None)") from exc
            if answer is None:
                continue
            if isinstance(answer, str):
                return {"queue": answer}
            if isinstance(answer, Mapping):
                return as_options(answer, f"the route of task {name!r}")
            raise RoutingError(f"task_routes: the router {describe(router)} returned "
                               f"{answer!r} for task {name!r}; a router returns a dict of "
                               f"options (queue, exchange, routing_key, priority), a queue "
                               f"name or None")
        return {}

    def resolve(self, name: str, wanted: Mapping[str, Any]) -> Route:
        queue, exchange = wanted.get("queue"), wanted.get("exchange")
        key, priority = wanted.get("routing_key"), wanted.get("priority")
        if queue is None and exchange is not None:
            bound = self.bound_to(exchange, key)
            if not bound:
                raise RoutingError(
                    f"task {name!r} is routed to exchange {exchange!r} with routing key "
                    f"{key!r}, and no queue in task_queues is bound to it; add the queue "
                    f"(its exchange and routing_key) to task_queues, or route by queue")
            return Route(bound[0], exchange, key, priority)
        queue = queue or self.default_queue
        bindings = self.by_queue.get(queue)
        if bindings is None:
            if self.declared and not self.create_missing or (
                    not self.declared and not self.create_missing and queue != self.default_queue):
                raise RoutingError(
                    f"task {name!r} is routed to queue {queue!r}, which is not in task_queues "
                    f"and task_create_missing_queues is off; add it to task_queues or turn "
                    f"task_create_missing_queues on")
            return Route(queue, exchange, key, priority)
        first = bindings[0]
        own = first.exchange == queue and first.exchange_type == "direct"
        return Route(queue, exchange or (None if own else first.exchange),
                     key if key is not None else (None if own and first.routing_key == queue
                                                  else first.routing_key), priority)

    def bound_to(self, exchange: str, key: str | None) -> list[str]:
        """The queues `task_queues` binds to `exchange` that take routing key `key`."""
        found = []
        for b in self.bindings:
            if b.exchange != exchange:
                continue
            if (b.exchange_type == "fanout" or b.exchange_type == "topic"
                    and topic_matches(b.routing_key, key or "") or b.routing_key == (key or "")):
                found.append(b.queue)
        return list(dict.fromkeys(found))


# ------------------------------------------------------------------------------ routers


def routers_from(setting: Any) -> list[Router]:
    """``task_routes`` as a list of router functions."""
    if setting is None:
        return []
    items = list(setting) if isinstance(setting, (list, tuple)) else [setting]
    return [router_from(item) for item in items]


def router_from(item: Any) -> Router:
    if isinstance(item, str):
        item = import_object(item)
        if isinstance(item, type):
            item = item()
    if isinstance(item, Mapping):
        return MapRoute(item)
    method = getattr(item, "route_for_task", None)
    if callable(method):
        return _Method(method)
    if callable(item):
        router: Router = item
        return router
    raise ConfigurationError(f"task_routes: {item!r} is not a router; give a dict of task "
                             f"names or patterns, a function (name, args, kwargs, options, "
                             f"task=None, **kw), an object with route_for_task, or a list")


class _Method:
    """An object's ``route_for_task``, called with the arguments Celery gives it."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method

    def __call__(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
                 options: Mapping[str, Any], task: Any = None, **kw: Any) -> Any:
        return self.method(name, args, kwargs, options, task=task, **kw)

    def __repr__(self) -> str:
        return describe(self.method)


class MapRoute:
    """A dict router: exact names first, then glob patterns and regular expressions in order."""

    def __init__(self, table: Mapping[Any, Any]) -> None:
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[Callable[[str], bool], Any]] = []
        for key, value in table.items():
            if isinstance(key, re.Pattern):
                self.patterns.append((_regex(key), value))
            elif isinstance(key, str) and any(c in key for c in "*?["):
                self.patterns.append((_glob(key), value))
            elif isinstance(key, str):
                self.exact[key] = value
            else:
                raise ConfigurationError(f"task_routes: the key {key!r} is not a task name, a "
                                         f"glob pattern or a compiled regular expression")

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.exact:
            return self.exact[name]
        for matches, value in self.patterns:
            if matches(name):
                return value
        return None

    def __repr__(self) -> str:
        return "(a dict)"


def _glob(pattern: str) -> Callable[[str], bool]:
    return lambda name: fnmatchcase(name, pattern)


def _regex(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda name: pattern.match(name) is not None


def as_options(route: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A route's dict, its ``queue`` as a name (a kombu Queue gives its name and exchange)."""
    out = {key: route[key] for key in ("queue", "exchange", "routing_key", "priority")
           if route.get(key) is not None}
    queue = out.get("queue")
    if queue is not None and not isinstance(queue, str):
        out["queue"] = getattr(queue, "name", None)
        if not isinstance(out["queue"], str):
            raise ConfigurationError(f"{what}: queue {queue!r} is not a queue name")
    exchange = out.get("exchange")
    if exchange is not None and not isinstance(exchange, str):
        out["exchange"] = getattr(exchange, "name", str(exchange))
    return out


def describe(router: Any) -> str:
    name = getattr(router, "__qualname__", None)
    module = getattr(router, "__module__", None)
    return f"{module}.{name}" if name and module else repr(router)


# ------------------------------------------------------------------------------ queues


def queues_from(conf: Config) -> list[Binding]:
    """``task_queues`` as bindings: a list of dicts (``name``, ``exchange``, ``exchange_type``,
    ``routing_key``, ``bindings``: a list of ``{exchange, exchange_type, routing_key}``) or of
    kombu ``Queue`` objects, or a dict of queue names to such dicts (Celery 3's form)."""
    setting = conf.task_queues
    if setting is None:
        return []
    if isinstance(setting, Mapping):
        items: Iterable[Any] = [{"name": name, **(value or {})} for name, value in
                                setting.items()]
    elif isinstance(setting, (list, tuple, set, frozenset)):
        items = setting
    else:
        raise ConfigurationError(f"setting 'task_queues' must be a list of queues (dicts or "
                                 f"kombu Queue objects), got {setting!r}")
    out: list[Binding] = []
    for item in items:
        out += _bindings_of(item)
    return out


def _bindings_of(item: Any) -> list[Binding]:
    if isinstance(item, str):
        return [Binding(item, item, "direct", item)]
    if isinstance(item, Mapping):
        name = item.get("name")
        extra = [(b.get("exchange"), b.get("exchange_type"), b.get("routing_key"))
                 for b in item.get("bindings") or ()]
        exchange, kind = item.get("exchange"), item.get("exchange_type")
        key = item.get("routing_key")
    else:  # a kombu Queue, as Celery's configurations hold them
        name = getattr(item, "name", None)
        exchange = getattr(item, "exchange", None)
        kind = getattr(exchange, "type", None)
        key = getattr(item, "routing_key", None)
        extra = [(getattr(b, "exchange", None), getattr(getattr(b, "exchange", None), "type",
                                                        None), getattr(b, "routing_key", None))
                 for b in getattr(item, "bindings", None) or ()]
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"task_queues: {item!r} has no queue name; give each queue a "
                                 f"name")
    found = []
    pairs = extra or [(exchange, kind, key)]
    for ex, ex_type, rk in pairs:
        ex_name = getattr(ex, "name", ex) or name
        ex_kind = ex_type or getattr(ex, "type", None) or "direct"
        if ex_kind not in EXCHANGE_TYPES:
            raise ConfigurationError(f"task_queues: queue {name!r} has exchange type "
                                     f"{ex_kind!r}; kernel declares "
                                     f"{', '.join(EXCHANGE_TYPES)} exchanges")
        found.append(Binding(name, str(ex_name), ex_kind,
                             "" if ex_kind == "fanout" else str(rk if rk is not None else name)))
    return found
