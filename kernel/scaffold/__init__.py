"""``kernel plugins new NAME --provides KIND``: write a plugin distribution that installs,
shows as ``ok`` in ``kernel plugins list`` and passes its own tests as generated, starting from
a small working implementation of KIND (templates in ``templates/``, one folder a kind and
``common/`` for what every distribution has)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from string import Template

from kernel.errors import ConfigurationError

TEMPLATES = Path(__file__).parent / "templates"
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Kind:
    #: the record kind it registers, as kernel.plugins names it ("result store").
    record: str
    #: the implementation module's name in the package.
    module: str
    summary: str
    capability_header: str
    #: rows of the README's capability table: (capability, what this one does).
    capabilities: tuple[tuple[str, str], ...]
    usage: str
    #: registered under a URL scheme (the plugin's name) rather than only by name.
    scheme: bool = True


KINDS: dict[str, Kind] = {
    "result-store": Kind(
        "result store", "store", "a result store for kernel", "declared",
        (("push_wait", "yes: a waiting client is woken by the write"),
         ("atomic_counter", "yes: chords count in it"),
         ("persistent", "no: results live in the process's memory"),
         ("multi_process", "no: one process only"),
         ("setting `${prefix}_key_prefix`", "a prefix put before every key")),
        "```python\napp = App(\"proj\", results=\"$name://results\", "
        "config={\"${prefix}_key_prefix\": \"proj-\"})\n```"),
    "transport": Kind(
        "transport", "transport", "a broker transport for kernel", "declared",
        (("delayed_delivery", "no: a countdown is refused"),
         ("priorities", "no: every message arrives, in order"),
         ("leases, dead_letter, broadcast", "no"),
         ("multi_process", "no: one process only"),
         ("inspect_queues", "yes: size and purge")),
        "```python\napp = App(\"proj\", broker=\"$name://main\")\n```"),
    "pool": Kind(
        "pool", "pool", "an execution pool for kernel", "declared",
        (("time limits, terminate, recycle_children, resize", "no: jobs run on threads"),
         ("isolated", "no: jobs run in the worker's process")),
        "```sh\nkernel worker -A proj -P $name -c 8\n```", scheme=False),
    "serializer": Kind(
        "serializer", "serializer", "a serializer for kernel", "what it carries",
        (("content type", "`application/x-$name`"),
         ("values", "JSON's data model: null, booleans, numbers, strings, lists, objects")),
        "```python\napp = App(\"proj\", config={\"task_serializer\": \"$name\",\n"
        "                         \"accept_content\": [\"json\", \"$name\"]})\n```",
        scheme=False),
    "compressor": Kind(
        "compressor", "compressor", "a compressor for kernel", "what it does",
        (("compression header", "`application/x-$name`"), ("algorithm", "LZMA (xz)")),
        "```python\nadd.apply_async((2, 3), compression=\"$name\")\n```", scheme=False),
    "signer": Kind(
        "signer", "signer", "a message signer for kernel", "what it does",
        (("scheme", "HMAC-SHA256 over the body"),
         ("setting `${prefix}_keys`", "shared secrets, newest first (rotation)")),
        "```python\napp = App(\"proj\", config={\"${prefix}_keys\": [\"a long random secret\"]})\n"
        "```", scheme=False),
    "schedule-store": Kind(
        "schedule store", "schedule", "a beat schedule store for kernel", "declared",
        (("leader lease", "fenced; ends by itself when not renewed"),
         ("tick claims", "exactly once per (entry, due) across processes on the host"),
         ("persistent", "yes: one JSON file")),
        "```python\napp = App(\"proj\", config={\"beat_schedule_store\": "
        "\"$name:///var/lib/proj/schedule.json\"})\n```"),
}


def names(name: str) -> dict[str, str]:
    """The names a distribution called `name` uses: ``kv`` → kernel-kv, kernel_kv, Kv."""
    if not _NAME.match(name):
        raise ConfigurationError(f"plugin name {name!r} must be lowercase letters and digits, "
                                 f"words joined by dashes (e.g. kv or my-store)")
    prefix = name.replace("-", "_")
    return {"name": name, "prefix": prefix, "dist": f"kernel-{name}", "package": f"kernel_{prefix}",
            "Name": "".join(part.capitalize() for part in name.split("-"))}


def write_distribution(name: str, kind: str, path: Path) -> list[Path]:
    """Write the distribution `name` providing `kind` into `path` (which must not exist or be
    empty); the files written."""
    if kind not in KINDS:
        raise ConfigurationError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if path.exists() and any(path.iterdir()):
        raise ConfigurationError(f"{path} exists and is not empty; give --path a new directory")
    spec, values = KINDS[kind], names(name)
    values.update(
        kind=kind, kind_title=spec.record, module=spec.module,
        summary=Template(spec.summary).substitute(values).capitalize() + f" ({name}).",
        kernel_version=_kernel_version(),
        provides=f'"{spec.record}" = ["{name}"]',
        capability_header=spec.capability_header,
        capabilities="\n".join(f"| {Template(c).safe_substitute(values)} | "
                               f"{Template(d).safe_substitute(values)} |"
                               for c, d in spec.capabilities),
        usage=Template(spec.usage).substitute(values))
    package = path / values["package"]
    files = {
        path / "pyproject.toml": "common/pyproject.toml",
        path / "README.md": "common/README.md",
        package / "__init__.py": "common/__init__.py",
        package / "plugin.py": f"{kind}/plugin.py",
        package / f"{spec.module}.py": f"{kind}/{spec.module}.py",
        path / "tests" / "test_distribution.py": "common/test_distribution.py",
        path / "tests" / f"test_{spec.module}.py": f"{kind}/test_{spec.module}.py",
    }
    written = []
    for target, source in files.items():
        # Templates are named *.tmpl so that no tool takes them for code of kernel's own.
        text = (TEMPLATES / f"{source}.tmpl").read_text(encoding="utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(text).substitute(values), encoding="utf-8")
        written.append(target)
    (package / "py.typed").write_text("")
    return [*written, package / "py.typed"]


def _kernel_version() -> str:
    """The lower bound a new plugin puts on kernel: this kernel's major.minor."""
    major, minor, *_ = version("kernel").split(".")
    return f"{major}.{minor}"
