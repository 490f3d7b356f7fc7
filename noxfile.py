"""Development sessions. ``nox -s tests`` is the README's (and CI's) test command.

- tests: the kernel's test suite, in parallel.
- plugins: each distribution under plugins/ in its own virtualenv (session plugin-<name>), so a
  plugin cannot lean on another plugin's dependencies; template: contrib/plugin-template alike;
  django-example: contrib/django-example, a Django project with kernel-django.
- lint (ruff, one configuration for the whole tree), types (mypy --strict over kernel and every
  distribution's package, one configuration), bench (tests/bench), docs (every Markdown link
  resolves).
- faults: the fault suite (tests/faults): real brokers killed, restarted and cut off under load,
  each scenario's figures printed as the table docs/reliability.md holds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).resolve().parent
PLUGIN_DIRS = sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))
TEMPLATE = ROOT / "contrib" / "plugin-template"


@nox.session
def tests(session: nox.Session) -> None:
    """The kernel's tests: ``nox -s tests -- -k cli`` passes arguments to pytest. kernel-redis
    is installed too: the worker features are proven on Redis as well as on the std brokers,
    and the solar extra (ephem), which solar schedules are tested with."""
    # The plugin by path, not as the extra: without uv, pip does not see the workspace.
    session.install("-e", ".[test,solar]", "-e", "plugins/redis")
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session
def faults(session: nox.Session) -> None:
    """The fault suite: kill -9 of workers and prefork children, broker restarts, the result
    store going away, a network cut, a paused worker; on SQLite, Redis and RabbitMQ servers of
    its own. Scenarios share nothing, so they run two at a time. The figures go to
    build/faults/figures.jsonl (``KERNEL_FAULTS_FIGURES``) and the table ends the output."""
    session.install("-e", ".[test]", "-e", "plugins/redis", "-e", "plugins/amqp")
    session.run("pytest", "tests/faults", "-n", "2", *session.posargs)


@nox.session(venv_backend="none")
def plugins(session: nox.Session) -> None:
    """Every plugin's tests, each in its own virtualenv (one plugin-<name> session each), as
    separate nox runs `KERNEL_PLUGIN_JOBS` at a time (3 by default: they wait on their servers
    more than they compute); each run's output is printed as it ends."""
    if not PLUGIN_DIRS:
        session.log("no plugins yet: nothing matches plugins/*/pyproject.toml")
        return
    jobs = max(1, int(os.environ.get("KERNEL_PLUGIN_JOBS", "3")))
    logs = ROOT / "build" / "nox-plugins"
    logs.mkdir(parents=True, exist_ok=True)

    def run(name: str) -> tuple[str, int, Path, float]:
        began, log = time.monotonic(), logs / f"{name}.log"
        with log.open("wb") as out:
            code = subprocess.run(
                [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", name,
                 "--", *session.posargs], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                check=False).returncode
        return name, code, log, time.monotonic() - began

    failed = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = [pool.submit(run, f"plugin-{path.name}") for path in PLUGIN_DIRS]
        for done in as_completed(runs):
            name, code, log, took = done.result()
            print(log.read_text(errors="replace"), flush=True)
            session.log(f"{name} {'passed' if code == 0 else f'FAILED ({code})'} in {took:.0f} s")
            if code:
                failed.append(name)
    if failed:
        session.error(f"failed: {', '.join(failed)} (logs in {logs.relative_to(ROOT)})")


def _tested_with(path: Path) -> list[str]:
    """The sibling plugins a plugin's tests need (``[tool.kernel] test-with``), e.g. the broker
    of its interop tests."""
    text = (path / "pyproject.toml").read_text()
    found = re.search(r"^test-with\s*=\s*\[([^\]]*)\]", text, re.MULTILINE)
    names = re.findall(r'"([^"]+)"', found.group(1)) if found else []
    return [arg for name in names for arg in ("-e", str(ROOT / "plugins" / name))]


def _no_deps_test(path: Path) -> list[str]:
    """Test requirements a plugin installs without their dependencies (``[tool.kernel]
    no-deps-test``): mockylla, whose scylla-driver would overwrite cassandra-driver's files."""
    text = (path / "pyproject.toml").read_text()
    found = re.search(r"^no-deps-test\s*=\s*\[([^\]]*)\]", text, re.MULTILINE)
    return re.findall(r'"([^"]+)"', found.group(1)) if found else []


def _with_extras(path: Path) -> str:
    """`path` with its optional extras but the tests' (drivers: kernel-sqlalchemy[postgres]),
    so mypy checks a plugin against every client it can use."""
    text = (path / "pyproject.toml").read_text()
    section = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[|\Z)", text,
                        re.MULTILINE | re.DOTALL)
    names = re.findall(r"^([A-Za-z][\w-]*)\s*=", section.group(1), re.MULTILINE) if section else []
    extras = sorted(set(names) - {"test"})
    return f"{path}[{','.join(extras)}]" if extras else str(path)


def _define_plugin_session(name: str, path: Path) -> None:
    def plugin(session: nox.Session) -> None:
        session.install("-e", ".[test]", *_tested_with(path))
        session.install("-e", f"{path}[test]")
        if no_deps := _no_deps_test(path):
            session.install("--no-deps", *no_deps)
        session.chdir(path)
        session.run("pytest", *session.posargs)

    plugin.__doc__ = f"Tests of {path.relative_to(ROOT)} in a virtualenv of its own."
    nox.session(name=name)(plugin)


for _path in PLUGIN_DIRS:
    _define_plugin_session(f"plugin-{_path.name}", _path)
_define_plugin_session("template", TEMPLATE)


@nox.session(name="django-example")
def django_example(session: nox.Session) -> None:
    """contrib/django-example's tests: the Django project as its users run it (a prefork
    worker, delay_on_commit, the results admin), on SQLite alone."""
    session.install("-e", ".[test]", "-e", "plugins/django[test]")
    session.chdir(ROOT / "contrib" / "django-example")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict over kernel and the package of every distribution, all installed in one
    venv so each is checked against the others' real types."""
    session.install("-e", ".[test,solar]", *(arg for p in [*PLUGIN_DIRS, TEMPLATE] for arg in
                                       ("-e", _with_extras(p))))
    packages = [str(pkg.relative_to(ROOT)) for p in [*PLUGIN_DIRS, TEMPLATE]
                for pkg in sorted(p.glob("kernel_*"))]
    session.run("mypy", "--strict", "kernel", *packages, *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing of the message decoding path (tests/fuzz/fuzz_atheris.py) for
    a bounded time: ``nox -s fuzz -- -max_total_time=600`` for longer."""
    session.install("-e", ".", "atheris")
    session.run("python", "tests/fuzz/fuzz_atheris.py", "-rss_limit_mb=2048",
                *(session.posargs or ["-max_total_time=60"]), env={"PYTHONPATH": str(ROOT)})


@nox.session
def bench(session: nox.Session) -> None:
    """``python -m tests.bench`` against Celery, Dramatiq and Huey on the Redis at
    127.0.0.1:6379/9 (FLUSHed between runs) and the RabbitMQ at 127.0.0.1:5672 (and, with
    ``--broker sqs``, against Celery on a moto server of its own), then the
    result stores against Celery's backends and the codecs against kombu's: ``nox -s bench --
    --quick --broker redis --only kernel,celery --stores redis,postgresql --codecs json,zstd``."""
    # Compiled as pip compiles them for users (uv does not by default): otherwise every worker
    # process, prefork children included, compiles its imports from source at start-up.
    compiled = {"UV_COMPILE_BYTECODE": "1"}
    session.install("-e", ".[test]", "-e", "plugins/redis", "-e", "plugins/amqp",
                    "-e", "plugins/sqs", "-e", "plugins/sqlalchemy[postgres,mysql]",
                    "-e", "plugins/memcached",
                    "-e", "plugins/couchdb", "-e", "plugins/mongodb", "nx-27017==0.8.1",
                    "-e", "plugins/dynamodb", "-e", "plugins/cosmosdb", "-e", "plugins/s3",
                    "-e", "plugins/azure-blob", "-e", "plugins/gcs", "-e", "plugins/msgpack",
                    "-e", "plugins/yaml", "-e", "plugins/signing",
                    "-e", "plugins/elasticsearch[opensearch]", "noida-db==0.2.3",
                    "osmem-server==0.1.6", "-e", "plugins/gevent", "-e", "plugins/eventlet",
                    env=compiled)
    # The codecs table: kombu's msgpack and yaml use the same libraries (msgpack, PyYAML, which
    # the plugins bring), its zstd and brotli those of kernel[zstd,brotli], Celery's auth
    # serializer kernel-signing's (cryptography).
    session.install("backports.zstd>=1.0; python_version < '3.14'", "brotli>=1.1", env=compiled)
    # Celery's result backends for the stores table use the same drivers and clients; the
    # emulators of the cloud stores' rows (moto's server, gcp-storage-emulator; Azurite and
    # the Cosmos DB emulator are npm's, from .ci/run) run their rows.
    # (Celery's Elasticsearch backend runs on elasticsearch-py 8 only.)
    session.install("celery[redis,sqs,sqlalchemy,dynamodb,s3,azureblockblob,gcs,elasticsearch]",
                    "elasticsearch>=8.12,<9", "pycouchdb",
                    "pydocumentdb", "dramatiq[redis,rabbitmq]", "huey", "redis", "gevent",
                    "eventlet", "psutil", "rich", "moto[server]", "gcp-storage-emulator",
                    env=compiled)
    # kernel's own packages are editable installs, compiled here alike.
    session.run("python", "-m", "compileall", "-q", "kernel", "plugins", "tests/bench",
                silent=True)
    session.run("python", "-m", "tests.bench", *session.posargs)


#: a Markdown link or image: [text](target) — the target up to a space or the closing paren.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def broken_links(files: list[Path]) -> list[str]:
    """Relative links whose file does not exist, as ``file: target`` lines."""
    broken = []
    for md in files:
        text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.S)
        for target in _LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (http:, mailto:) or an anchor in the same page
            if not (md.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{md.relative_to(ROOT)}: {target}")
    return broken


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """Check that every relative link in README.md and docs/ points at an existing file."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = broken_links(files)
    if broken:
        session.error("broken links:\n" + "\n".join(broken))
    session.log(f"{len(files)} Markdown files, every relative link resolves")
