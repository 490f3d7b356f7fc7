"""The systemd units and the Kubernetes example under contrib/: each unit passes
``systemd-analyze verify``, and its command lines, run as systemd would run them (specifiers
expanded, paths moved into tmp_path, ``kernel`` this checkout's), start real workers that
serve and stop warmly; the Kubernetes probes' commands, run against a worker started with the
manifest's command, succeed while it serves and the ping fails once it stopped."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from kernel import App
from kernel.testing.servers import need_binary
from kernel.testing.transport import wait_for
from kernel.worker.pidfile import alive, read_pid
from tests.workerops.conftest import TASKS

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
KERNEL = f"{shlex.quote(sys.executable)} -m kernel"
UNITS = sorted(p.name for p in (CONTRIB / "systemd").glob("*.service"))


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(CONTRIB / "systemd" / name)
    return parser


def here(text: str, tmp_path: Path) -> str:
    """A command or setting moved into tmp_path, with this checkout's kernel."""
    text = text.replace("/srv/proj/.venv/bin/kernel", KERNEL)
    for path in ("/var/log/kernel/", "/run/kernel/", "/run/", "/srv/proj/"):
        text = text.replace(path, f"{tmp_path}/")
    return text.replace("/srv/proj", str(tmp_path))


def specifiers(text: str, instance: str = "") -> str:
    """systemd's own expansion of %i, %H and %%."""
    out, chars = [], iter(text)
    for char in chars:
        if char == "%":
            key = next(chars)
            out.append({"i": instance, "H": socket.gethostname(), "%": "%"}[key])
        else:
            out.append(char)
    return "".join(out)


def project(tmp_path: Path) -> dict[str, str]:
    """The units' project in tmp_path: tasks.py, a SQLite broker; the environment."""
    (tmp_path / "tasks.py").write_text(textwrap.dedent(TASKS.format(config={})))
    url = f"sqlite:///{tmp_path / 'kernel.db'}"
    return {**os.environ, "PYTHONPATH": str(tmp_path), "KERNEL_BROKER_URL": url,
            "KERNEL_RESULT_BACKEND": url}


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_verifies(name: str, tmp_path: Path) -> None:
    verify = need_binary("systemd-analyze")
    text = (CONTRIB / "systemd" / name).read_text()
    # Where systemd-analyze can check it: an executable kernel, users that exist here.
    text = text.replace("/srv/proj/.venv/bin/kernel", shutil.which("true") or "/bin/true")
    text = text.replace("User=kernel", "User=root").replace("Group=kernel", "Group=root")
    (tmp_path / name).write_text(text)
    done = subprocess.run([verify, "verify", str(tmp_path / name)], capture_output=True,
                          text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


@pytest.mark.parametrize(("name", "instance"), [("kernel-worker.service", ""),
                                                ("kernel-worker@.service", "w7")])
def test_the_worker_units_start_a_worker(name: str, instance: str, tmp_path: Path) -> None:
    env = project(tmp_path)
    command = shlex.split(here(specifiers(unit(name)["Service"]["ExecStart"], instance),
                               tmp_path))
    log = tmp_path / "journal.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: any("ready." in p.read_text() for p in [log, *tmp_path.glob("w7*.log")])
                 or worker.poll() is not None, 60, f"the unit's worker to be ready; {command}")
        assert worker.poll() is None, log.read_text()
        app = App("c", broker=env["KERNEL_BROKER_URL"], results=env["KERNEL_RESULT_BACKEND"])
        try:
            assert app.send_task("ops.add", (2, 2)).get(timeout=30) == 4
        finally:
            app.close()
        if instance:
            assert (tmp_path / "w7.log").exists() and (tmp_path / "w7-1.log").exists()
            assert (tmp_path / "kernel-w7.beat").exists()
    finally:
        worker.send_signal(getattr(signal, unit(name)["Service"]["KillSignal"]))
        assert worker.wait(60) == 0, [p.read_text() for p in [log, *tmp_path.glob("w7*.log")]]


def test_the_multi_unit_starts_and_stopwaits_its_nodes(tmp_path: Path) -> None:
    env = project(tmp_path)
    conf = {}
    for line in (CONTRIB / "systemd" / "kernel.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            conf[key] = here(shlex.split(value)[0], tmp_path)
    conf["KERNEL_BIN"] = KERNEL
    conf.pop("KERNEL_BROKER_URL"), conf.pop("KERNEL_RESULT_BACKEND")
    service = unit("kernel-multi.service")["Service"]

    def run(key: str) -> str:
        line = here(specifiers(service[key]), tmp_path)
        done = subprocess.run(shlex.split(line), cwd=tmp_path, env={**env, **conf},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run("ExecStart")
    pids = [read_pid(tmp_path / f"kernel{i}.pid") for i in (1, 2, 3)]
    try:
        assert all(pid and alive(pid) for pid in pids)
        wait_for(lambda: "concurrency 8" in (tmp_path / "kernel1.log").read_text(), 60,
                 "node 1 to start with its own -c:1 8")
        assert "concurrency 4" in (tmp_path / "kernel2.log").read_text()
        out = run("ExecStop")
        assert "> Waiting for 3 nodes" in out
        assert not any(alive(pid) for pid in pids if pid)
    finally:
        for pid in pids:
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_kubernetes_probes_answer_for_a_running_worker(redis_url: str,
                                                           tmp_path: Path) -> None:
    manifest = yaml.safe_load((CONTRIB / "kubernetes" / "worker.yaml").read_text())
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["terminationGracePeriodSeconds"] > 30, "more than worker_shutdown_timeout"
    env = project(tmp_path)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "tasks.py").rename(tmp_path / "proj" / "tasks.py")
    pod_name = f"worker-{os.getpid()}"
    env.update(POD_NAME=pod_name, KERNEL_BROKER_URL=redis_url, KERNEL_RESULT_BACKEND=redis_url)

    def local(args: list[str]) -> list[str]:
        args = [a.replace("$(POD_NAME)", pod_name).replace("/tmp/kernel.beat",
                                                           str(tmp_path / "beat")) for a in args]
        return [*shlex.split(KERNEL), *args[1:]] if args[0] == "kernel" else args

    def probe(kind: str) -> int:
        command = local(container[kind]["exec"]["command"])
        script = command[-1].replace("kernel ", f"{KERNEL} ", 1)
        return subprocess.run([*command[:-1], script], env=env, cwd=tmp_path,
                              capture_output=True, timeout=60).returncode

    log = tmp_path / "pod.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(local(container["command"]), cwd=tmp_path, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: '"ready."' in log.read_text() or "ready.\"" in log.read_text()
                 or worker.poll() is not None, 60, "the pod's worker to be ready")
        assert worker.poll() is None, log.read_text()
        assert probe("startupProbe") == 0, "kernel inspect ping answers for the pod's worker"
        assert probe("livenessProbe") == 0, "the heartbeat file is fresh"
    finally:
        worker.send_signal(signal.SIGTERM)  # what Kubernetes sends
        assert worker.wait(pod["terminationGracePeriodSeconds"]) == 0, log.read_text()
    assert probe("startupProbe") != 0, "a stopped worker does not answer the ping"
