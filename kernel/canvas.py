"""The canvas: signatures and the primitives that compose them (chain, group, chord, chunks, map,
starmap), in Celery's dict form so any of them can ride in a message's embed unchanged and a
Celery worker runs what a kernel client sends, and the reverse.

A signature is ``{"task", "args", "kwargs", "options", "subtask_type", "immutable"}``. Composite
ones are named as Celery names them (``celery.chain`` with ``kwargs.tasks``, ``celery.group``,
``celery.chord`` with ``kwargs.header`` and ``kwargs.body``, ...).

How a composite travels (Celery's encoding, see the protocol reference):

* chain: only the first step is published; its embed ``chain`` holds the rest in reverse order.
  A group followed by another step becomes a chord whose body is that step.
* group: one message per member, with headers ``group`` (the group id) and ``group_index``.
* chord: the header is a group whose members carry the body in embed ``chord``; the client writes
  the header size under ``celery-taskset-meta-<gid>.s`` first, and the worker that finishes the
  last member sends the body (`kernel.chords`).

Options given to a composite (or set on it) apply to every task it sends, over the tasks' own;
``countdown`` and ``eta`` delay only what is sent at once (a chain's first step, a chord's
header). A member of a chord's header counts once: a chain counts through its last step, a
chord through its body, and nested groups are flattened into the header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from typing_extensions import Self

from kernel.errors import ConfigurationError, MissingCapability
from kernel.message import new_id
from kernel.options import SEND_OPTIONS, SendOptions
from kernel.records import group_key

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.result import AnyResult as Result
    from kernel.result import AsyncResult


#: options the canvas itself sets on the tasks it sends (ids, lineage, membership, embed).
MEMBERSHIP = ("group_id", "group_index", "chord")
LINEAGE = ("parent_id", "root_id")
_LISTS = ("link", "link_error")
#: delay only what is sent at once.
_DELAYS = ("countdown", "eta")

class Sender(Protocol):
    """Where a signature's tasks go when it runs: the broker (`Publisher`), or, for a signature
    that will never run because what it waited for failed, the failure path
    (`kernel.std.canvas.chords.Abandoner`)."""

    def send(self, sigs: Sequence[Signature], args: Sequence[Any],
             kwargs: Mapping[str, Any]) -> list[AsyncResult[Any]]:
        """Send each plain signature with `args` prepended (unless immutable)."""

    def chord(self, header: group, body: Signature, args: Sequence[Any],
              kwargs: Mapping[str, Any]) -> None:
        """Start a chord: its header (non-empty) with `body` in every member's embed."""


class Publisher:
    """Publishes tasks, several in one broker round trip where it can."""

    def __init__(self, app: App) -> None:
        self.app = app

    def send(self, sigs: Sequence[Signature], args: Sequence[Any],
             kwargs: Mapping[str, Any]) -> list[AsyncResult[Any]]:
        calls = [sig.call(args, kwargs) for sig in sigs]
        if len(calls) == 1:
            name, call_args, call_kwargs, options = calls[0]
            return [self.app.send_task(name, call_args, call_kwargs, **options)]
        return self.app.send_many(calls)

    def chord(self, header: group, body: Signature, args: Sequence[Any],
              kwargs: Mapping[str, Any]) -> None:
        prepare_chord(self.app, header, body)
        header.send_members(args, kwargs, self, body)


def prepare_chord(app: App, header: group, body: Signature) -> None:
    """Before a chord's header is sent: its size where the store counts, else the
    ``celery.chord_unlock`` task that waits for the header's results."""
    store = app.backend.store
    if store is None:
        raise ConfigurationError("a chord needs a result store to collect its header's "
                                 "results; set result_backend")
    caps = store.capabilities
    if not caps.atomic_counter and caps.multi_process and not caps.persistent:
        raise MissingCapability(
            f"a chord needs its header's results where a worker can read them; the result "
            f"store {type(store).__name__} sends each result only to the caller that waits "
            f"(rpc://) and cannot count: use a redis://, sqlite:// or database result backend")
    gid = str(header.options["task_id"])
    members = header.flat()
    if caps.atomic_counter and not caps.chord_unlock:
        key = group_key(gid)
        store.delete([key + ".c"])  # a finished chord's claim, should the id come back
        store.chord_start(key, [str(m.freeze().id) for m in members], app.conf.result_expires)
        return
    # Sent at once, not delayed at the broker: a kernel transport's delayed message waits for
    # a kernel consumer, and the chord may run on Celery workers alone. It retries itself.
    app.send_task("celery.chord_unlock", [gid, body],
                  {"result": [member.freeze().as_tuple() for member in members]},
                  queue=body.options.get("queue"))


def signature(data: Mapping[str, Any], app: App | None = None) -> Signature:
    """The signature for a dict (as found in a message), of the class its ``subtask_type``
    names; a `Signature` is returned as it is (bound to `app` if it had none)."""
    if isinstance(data, Signature):
        if data.app is None:
            data.app = app
        return data
    if not isinstance(data, Mapping) or "task" not in data:
        raise TypeError(f"not a signature: {data!r}; expected a dict with a 'task' key")
    cls = _KINDS.get(data.get("subtask_type"), Signature)
    return cls._from_dict(data, app)


def maybe_signature(data: Mapping[str, Any] | None, app: App | None = None) -> Signature | None:
    return None if data is None else signature(data, app)


class Signature(dict[str, Any]):
    """A task with (possibly partial) arguments and options; ``task.s(...)`` makes one."""

    def __init__(
        self,
        task: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        immutable: bool = False,
        subtask_type: str | None = None,
        app: App | None = None,
    ) -> None:
        super().__init__(task=task, args=list(args), kwargs=dict(kwargs or {}),
                         options=dict(options or {}), subtask_type=subtask_type,
                         immutable=immutable)
        self.app = app

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: App | None) -> Signature:
        return cls(data["task"], data.get("args") or (), data.get("kwargs"), data.get("options"),
                   immutable=bool(data.get("immutable")), subtask_type=data.get("subtask_type"),
                   app=app)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: App | None = None) -> Signature:
        return signature(data, app)

    def __reduce__(self) -> tuple[Any, ...]:
        # Travels as its dict (pickle too): the app is found again where it is used.
        return (signature, (dict(self),))

    def __repr__(self) -> str:
        call = ", ".join([*(repr(a) for a in self.args),
                          *(f"{k}={v!r}" for k, v in self.kwargs.items())])
        return f"{self.name}({call}){'!' if self.immutable else ''}"

    # ------------------------------------------------------------------ fields

    @property
    def name(self) -> str:
        return str(self["task"])

    @property
    def args(self) -> list[Any]:
        return self["args"]  # type: ignore[no-any-return]

    @property
    def kwargs(self) -> dict[str, Any]:
        return self["kwargs"]  # type: ignore[no-any-return]

    @property
    def options(self) -> dict[str, Any]:
        return self["options"]  # type: ignore[no-any-return]

    @property
    def immutable(self) -> bool:
        return bool(self["immutable"])

    @property
    def id(self) -> str | None:
        """The task id, once frozen (or given with ``set(task_id=...)``)."""
        return self.options.get("task_id")

    # ------------------------------------------------------------------ building

    def set(self, *, immutable: bool | None = None, **options: Any) -> Signature:
        """Set calling options (queue, countdown, priority, ...) in place; returns self."""
        if immutable is not None:
            self["immutable"] = immutable
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        self["immutable"] = immutable

    def clone(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Self:
        """A copy, with `args` before its own (partial application, as a parent's result
        comes first), `kwargs` merged and `options` set. Immutable signatures keep their
        arguments."""
        sig = type(self)._from_dict(self, self.app)
        assert isinstance(sig, type(self))
        for key in _LISTS:
            if key in sig.options:
                sig.options[key] = list(sig.options[key])
        if not self.immutable:
            sig["args"] = [*args, *self.args]
            sig["kwargs"] = {**self.kwargs, **(kwargs or {})}
        sig.options.update(options)
        return sig

    def link(self, callback: Signature) -> Signature:
        """Send `callback` with this task's return value once it succeeded."""
        self.options.setdefault("link", []).append(callback)
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """Send `errback` with this task's id if it fails."""
        self.options.setdefault("link_error", []).append(errback)
        return errback

    def __or__(self, other: Signature) -> Signature:  # type: ignore[override]
        if not isinstance(other, Signature):
            return NotImplemented
        return chain(self, other, app=self.app or other.app)

    # ------------------------------------------------------------------ sending

    def _app(self) -> App:
        if self.app is None:
            raise RuntimeError(f"signature {self.name!r} is not bound to an app; build it with "
                               f"task.s() or pass app=")
        return self.app

    def bake(self, options: Mapping[str, Any]) -> Self:
        """A copy with `options` over its own (``link`` and ``link_error`` add to its own):
        the form in which the canvas sends or embeds it."""
        sig = self.clone()
        for key, value in options.items():
            if value is None:
                continue
            if key in _LISTS:
                sig.options[key] = [*sig.options.get(key, ()), *_as_list(value)]
            else:
                sig.options[key] = value
        return sig

    def freeze(self, _id: str | None = None) -> Result:
        """Fix the task id now (`_id`, or a new one) and return the result handle, before
        anything is sent."""
        from kernel.result import AsyncResult

        if _id is not None:
            self.options["task_id"] = _id
        task_id = self.options.setdefault("task_id", new_id())
        return AsyncResult(task_id, self._app())

    def delay(self, *args: Any, **kwargs: Any) -> Result:
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
                    **options: Any) -> Result:
        """Send: `args` go before the signature's own (a parent's result comes first), unless
        the signature is immutable; `options` override the signature's own."""
        app = self._app()
        if app.conf.task_always_eager:
            return self.apply(args, kwargs)
        return self.bake(options).run(args, kwargs or {}, Publisher(app))

    def apply(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Result:
        """Run here and now (eager mode), as `Task.apply` does."""
        from kernel.result import EagerResult

        app = self._app()
        call_args, call_kwargs, _ = self.call(args, kwargs or {})[1:]
        task = app.tasks.get(self.name)
        if task is None:
            raise LookupError(f"task {self.name!r} is not registered in this app; eager mode "
                              f"runs only local tasks")
        result = task.apply(call_args, call_kwargs, task_id=self.id)
        value = result.result
        if result.successful():
            for callback in self.options.get("link") or ():
                signature(callback, app).apply((value,))
        return EagerResult(result.id, app, result.state, value, result.traceback)

    def call(self, args: Sequence[Any], kwargs: Mapping[str, Any]
             ) -> tuple[str, list[Any], dict[str, Any], SendOptions]:
        """``(name, args, kwargs, options)`` of the message this plain signature sends."""
        if self.immutable:
            call_args, call_kwargs = list(self.args), dict(self.kwargs)
        else:
            call_args, call_kwargs = [*args, *self.args], {**self.kwargs, **kwargs}
        # Options from Celery clients a message does not take (exchange, ...) are dropped.
        options = cast(SendOptions, {k: v for k, v in self.options.items()
                                     if k in SEND_OPTIONS})
        if "queue" not in options and self.options.get("routing_key"):
            options["queue"] = self.options["routing_key"]
        options.setdefault("task_id", self.options.setdefault("task_id", new_id()))
        return self.name, call_args, call_kwargs, options

    def run(self, args: Sequence[Any], kwargs: Mapping[str, Any], sender: Sender) -> Result:
        """Send through `sender` with the options already baked in."""
        return sender.send([self], args, kwargs)[0]

    def flat(self) -> list[Signature]:
        """The members this signature adds to a group it is in (a group adds its own)."""
        return [self]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _split(options: Mapping[str, Any], keys: Iterable[str]) -> tuple[dict[str, Any],
                                                                     dict[str, Any]]:
    """`options` cut in two: the given keys (that are set), and the rest."""
    keys = set(keys)
    taken = {k: v for k, v in options.items() if k in keys and v is not None}
    return taken, {k: v for k, v in options.items() if k not in keys}


class _Composite(Signature):
    """A signature whose ``kwargs`` hold other signatures."""

    def __init__(self, name: str, kind: str, kwargs: dict[str, Any],
                 options: Mapping[str, Any] | None, app: App | None) -> None:
        super().__init__(name, (), kwargs, options, subtask_type=kind, app=app)

    def _sigs(self, key: str) -> list[Signature]:
        # Members decoded from a message are plain dicts until first used.
        found = [signature(t, self.app) for t in self.kwargs.get(key) or ()]
        self.kwargs[key] = found
        return found

    def _sig(self, key: str) -> Signature:
        found = signature(self.kwargs[key], self.app)
        self.kwargs[key] = found
        return found

    def call(self, args: Sequence[Any], kwargs: Mapping[str, Any]
             ) -> tuple[str, list[Any], dict[str, Any], SendOptions]:
        raise TypeError(f"{self['subtask_type']} is not sent as one message")


class _Tasks(_Composite):
    """A composite of a list of signatures: ``X(a, b)``, ``X([a, b])`` or ``X(gen)``."""

    _name = _kind = ""

    def __init__(self, *tasks: Any, app: App | None = None,
                 options: Mapping[str, Any] | None = None) -> None:
        listed = list(tasks[0]) if len(tasks) == 1 and not isinstance(tasks[0], Mapping) else (
            list(tasks))
        sigs = [signature(t, app).clone() for t in listed]
        super().__init__(self._name, self._kind, {"tasks": sigs}, options,
                         app or next((s.app for s in sigs if s.app), None))

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: App | None) -> Signature:
        return cls(*(data.get("kwargs") or {}).get("tasks") or (), app=app,
                   options=data.get("options"))

    @property
    def tasks(self) -> list[Signature]:
        return self._sigs("tasks")

    def __call__(self, *args: Any, **kwargs: Any) -> Result:
        """``chain(...)()`` and ``group(...)()`` send, as Celery's do (its tutorials call them
        so): `delay`."""
        return self.apply_async(args, kwargs)


class chain(_Tasks):  # noqa: N801 - Celery's name, as users write it
    """Steps run one after another, each getting the previous one's result first:
    ``chain(add.s(1, 2), mul.s(3))`` or ``add.s(1, 2) | mul.s(3)``."""

    _name, _kind = "celery.chain", "chain"

    def __or__(self, other: Signature) -> Signature:  # type: ignore[override]
        if not isinstance(other, Signature):
            return NotImplemented
        extra = other.tasks if isinstance(other, chain) else [other]
        return chain(*self.tasks, *extra, app=self.app, options=self.options)

    def steps(self) -> list[Signature]:
        """The steps as sent: nested chains flattened, a group followed by a step turned into
        a chord with that step as its body, every id frozen."""
        flat: list[Signature] = []
        for task in self.tasks:
            flat.extend(task.steps() if isinstance(task, chain) else [task])
        out: list[Signature] = []
        for task in flat:
            task.freeze()  # before a chord copies it, so every call sees the same ids
            if out and isinstance(out[-1], group):
                out[-1] = chord(out[-1], task, app=self.app)
            else:
                out.append(task)
        return out

    def freeze(self, _id: str | None = None) -> Result:
        steps = self.steps()
        if not steps:
            raise ValueError("an empty chain has nothing to run")
        if _id is not None:
            steps[-1].freeze(_id)
        previous: Result | None = None
        for step in steps:
            result = step.freeze()
            if result.parent is None:
                result.parent = previous
            previous = result
        assert previous is not None
        return previous

    def run(self, args: Sequence[Any], kwargs: Mapping[str, Any], sender: Sender) -> Result:
        frozen = self.freeze(self.options.get("task_id"))
        steps = self.steps()
        _, rest = _split(self.options, ("task_id",))
        last_only, rest = _split(rest, (*MEMBERSHIP, "link"))
        first_only, rest = _split(rest, (*LINEAGE, *_DELAYS, "chain"))
        continuation = list(first_only.pop("chain", None) or ())
        if continuation:
            # The outer chain goes on after this one: its last step carries the membership.
            last_only = {k: v for k, v in last_only.items() if k not in MEMBERSHIP}
        baked = [step.bake(rest) for step in steps]
        baked[-1] = baked[-1].bake(last_only)
        embed = continuation + list(reversed(baked[1:]))
        baked[0].bake({**first_only, "chain": embed or None}).run(args, kwargs, sender)
        return frozen

    def apply(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Result:
        steps = self.steps()
        result = steps[0].apply(args, kwargs)
        for step in steps[1:]:
            result = step.apply((result.get(),))
        return result


class group(_Tasks):  # noqa: N801
    """Tasks run in parallel: ``group(add.s(i, i) for i in range(10))``; its result is a
    `GroupResult` whose ``get()`` is the list of their results, in order."""

    _name, _kind = "celery.group", "group"

    def __or__(self, other: Signature) -> Signature:  # type: ignore[override]
        if not isinstance(other, Signature):
            return NotImplemented
        return chord(self, other, app=self.app)

    def flat(self) -> list[Signature]:
        """Members with nested groups expanded in place (their options over the members')."""
        _, own = _split(self.options, ("task_id", *MEMBERSHIP, "chain"))
        out: list[Signature] = []
        for task in self.tasks:
            out.extend(sub.bake(own) if own else sub for sub in task.flat())
        return out

    def freeze(self, _id: str | None = None) -> Result:
        from kernel.result import GroupResult

        if _id is not None:
            self.options["task_id"] = _id
        gid = self.options.setdefault("task_id", new_id())
        for task in self.tasks:
            task.freeze()  # the originals: flat() may hand out copies
        return GroupResult(gid, [task.freeze() for task in self.flat()], self._app())

    def run(self, args: Sequence[Any], kwargs: Mapping[str, Any], sender: Sender) -> Result:
        continuation = self.options.get("chain")
        if continuation:
            # A group with steps after it (a chord's body inside a chain, say): the next step
            # waits for the whole group, as a chord body does.
            rest = {k: v for k, v in self.options.items() if k != "chain"}
            body = signature(continuation[-1], self.app)
            return chord(group(self.tasks, app=self.app, options=rest), body,
                         app=self.app).bake({"chain": continuation[:-1] or None}).run(
                args, kwargs, sender)
        if self.options.get("chord"):
            # Counted as one member of an outer chord: it ends when all its members did.
            membership, rest = _split(self.options, MEMBERSHIP)
            collect = Signature("celery.accumulate", kwargs={"index": 0}, app=self.app)
            return chord(group(self.tasks, app=self.app, options=rest), collect,
                         app=self.app).bake(membership).run(args, kwargs, sender)
        frozen = self.freeze()
        self.send_members(args, kwargs, sender, chord_body=None)
        return frozen

    def send_members(self, args: Sequence[Any], kwargs: Mapping[str, Any], sender: Sender,
                     chord_body: Signature | None) -> None:
        """Send every member with the group's id and its index (and `chord_body` in the embed
        when this is a chord's header); plain members go in one batch."""
        gid = self.options.setdefault("task_id", new_id())
        plain: list[Signature] = []
        for index, task in enumerate(self.flat()):
            member = task.bake({"group_id": gid, "group_index": index, "chord": chord_body})
            if not isinstance(member, _Composite):
                plain.append(member)
            else:
                member.run(args, kwargs, sender)
        if plain:
            sender.send(plain, args, kwargs)

    def apply(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Result:
        from kernel.result import GroupResult

        gid = self.options.setdefault("task_id", new_id())
        return GroupResult(gid, [t.apply(args, kwargs) for t in self.flat()], self._app())


class chord(_Composite):  # noqa: N801
    """A header group, then a body called once with the list of the header's results:
    ``chord([add.s(i, i) for i in range(10)], tsum.s())``. If a header task fails, the body
    does not run: it is recorded as failed (`ChordError`) and its error callbacks fire once."""

    def __init__(self, header: Any, body: Mapping[str, Any] | None = None, *,
                 app: App | None = None, options: Mapping[str, Any] | None = None) -> None:
        head = header if isinstance(header, group) else group(
            *([header] if isinstance(header, Mapping) else header), app=app)
        tail = None if body is None else signature(body, app).clone()
        super().__init__("celery.chord", "chord",
                         {"header": head, "body": tail, "kwargs": {}}, options,
                         app or head.app or (tail.app if tail is not None else None))

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: App | None) -> Signature:
        kwargs = data.get("kwargs") or {}
        return cls(signature(kwargs["header"], app), kwargs.get("body"), app=app,
                   options=data.get("options"))

    @property
    def header(self) -> group:
        found = self._sig("header")
        assert isinstance(found, group)
        return found

    @property
    def body(self) -> Signature:
        if self.kwargs.get("body") is None:
            raise ValueError("this chord has no body; give one: chord(header, body) or "
                             "chord(header)(body)")
        return self._sig("body")

    def __call__(self, body: Signature, **options: Any) -> Result:
        """``chord(header)(body)``: set the body and send."""
        self.kwargs["body"] = body.clone()
        return self.apply_async(**options)

    def link(self, callback: Signature) -> Signature:
        return self.body.link(callback)

    def link_error(self, errback: Signature) -> Signature:
        return self.body.link_error(errback)

    def flat(self) -> list[Signature]:
        return [self]

    def freeze(self, _id: str | None = None) -> Result:
        header = self.header.freeze()
        result = self.body.freeze(_id)
        result.parent = header
        return result

    def run(self, args: Sequence[Any], kwargs: Mapping[str, Any], sender: Sender) -> Result:
        frozen = self.freeze(self.options.get("task_id"))
        header = self.header
        _, rest = _split(self.options, ("task_id",))
        membership, rest = _split(rest, MEMBERSHIP)
        to_body, rest = _split(rest, ("chain", "link", "link_error"))
        to_header, rest = _split(rest, (*LINEAGE, *_DELAYS))
        gid = str(header.options["task_id"])
        # Nested in an outer chord, the body is what counts there; otherwise it names its
        # header's group, as Celery's clients write it.
        body = self.body.bake({**rest, **to_body, **(membership or {"group_id": gid})})
        if header.flat():
            sender.chord(header.bake({**rest, **to_header}), body, args, kwargs)
        else:
            body.run(([],), {}, sender)
        return frozen

    def apply(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Result:
        values = self.header.apply(args, kwargs).get()
        return self.body.apply((values,))


class chunks(_Composite):  # noqa: N801
    """`task` over the argument tuples of `it`, `n` per message: a group of ``celery.starmap``
    tasks, whose result is one list per chunk."""

    _made: list[Signature] | None = None

    def __init__(self, task: Mapping[str, Any], it: Iterable[Sequence[Any]], n: int, *,
                 app: App | None = None, options: Mapping[str, Any] | None = None) -> None:
        if int(n) < 1:
            raise ValueError(f"chunks need a size of at least 1, got {n!r}")
        sig = signature(task, app)
        super().__init__("celery.chunks", "chunks",
                         {"task": sig, "it": [list(i) for i in it], "n": int(n)}, options,
                         app or sig.app)

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: App | None) -> Signature:
        kw = data.get("kwargs") or {}
        return cls(kw["task"], kw["it"], kw["n"], app=app, options=data.get("options"))

    def clone(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Self:
        sig = super().clone(args, kwargs, **options)
        sig._made = self._parts()
        return sig

    def _parts(self) -> list[Signature]:
        # Made once, so freeze() and sending see the same task ids.
        parts = self._made
        if parts is None:
            task, items, n = self._sig("task"), self.kwargs["it"], self.kwargs["n"]
            parts = [xstarmap(task, items[i:i + n], app=self.app)
                     for i in range(0, len(items), n)]
            self._made = parts
        return parts

    def group(self) -> group:
        """The group of ``celery.starmap`` tasks this sends."""
        return group(self._parts(), app=self.app, options=self.options)

    def flat(self) -> list[Signature]:
        return self.group().flat()

    def freeze(self, _id: str | None = None) -> Result:
        self.options.setdefault("task_id", _id or new_id())
        for part in self._parts():
            part.freeze()
        return self.group().freeze()

    def run(self, args: Sequence[Any], kwargs: Mapping[str, Any], sender: Sender) -> Result:
        return self.group().run(args, kwargs, sender)

    def apply(self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Result:
        return self.group().apply(args, kwargs)


class xmap(Signature):  # noqa: N801
    """One message that calls `task` with each item of `it`, in the worker: ``task.map(it)``."""

    _builtin: str = "celery.map"
    _kind: str = "xmap"

    def __init__(self, task: Mapping[str, Any], it: Iterable[Any], *, app: App | None = None,
                 options: Mapping[str, Any] | None = None) -> None:
        sig = signature(task, app)
        super().__init__(self._builtin, (), {"task": sig, "it": list(it)}, options,
                         subtask_type=self._kind, app=app or sig.app)

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: App | None) -> Signature:
        kw = data.get("kwargs") or {}
        return cls(kw["task"], kw["it"], app=app, options=data.get("options"))


class xstarmap(xmap):  # noqa: N801
    """Like `xmap`, each item being the argument tuple: ``task.starmap(it)``."""

    _builtin = "celery.starmap"
    _kind = "xstarmap"


_KINDS: dict[Any, type[Signature]] = {
    "chain": chain, "group": group, "chord": chord, "chunks": chunks, "xmap": xmap,
    "xstarmap": xstarmap,
}
