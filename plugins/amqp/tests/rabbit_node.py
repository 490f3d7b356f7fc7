"""A private RabbitMQ node for tests that stop, restart or reconfigure the broker, never the
shared one (other tests and other people's runs use it): its own node name, ports, directory
and configuration, started with RabbitMQ's own scripts as the current user (the Debian wrapper
in /usr/sbin would switch to the rabbitmq user and its directories). Tests that need one skip
when the scripts are not installed, except under CI (``CI`` set), where that is a failure."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import amqp
import pytest

from kernel.testing.transport import wait_for

#: where the scripts live (Debian, Ubuntu and RabbitMQ's generic unix package).
SCRIPT_DIRS = (os.environ.get("RABBITMQ_SCRIPTS", ""), "/usr/lib/rabbitmq/bin",
               "/usr/lib/rabbitmq/sbin", "/opt/rabbitmq/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scripts() -> Path:
    for directory in filter(None, SCRIPT_DIRS):
        if (Path(directory) / "rabbitmq-server").exists():
            return Path(directory)
    found = shutil.which("rabbitmq-server")
    if found is not None and "sbin" not in found:
        return Path(found).parent
    message = ("needs RabbitMQ's scripts (rabbitmq-server, rabbitmqctl) to run a private node; "
               "set RABBITMQ_SCRIPTS to their directory")
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


class RabbitNode:
    """``RabbitNode(directory, config="consumer_timeout = 2000").start()``; `config` lines go
    into rabbitmq.conf, `advanced` is an Erlang term for advanced.config."""

    def __init__(self, directory: Path, *, config: str = "", advanced: str = "[].") -> None:
        self.bin = scripts()
        self.directory = directory
        self.port = free_port()
        self.name = f"kernel-test-{uuid.uuid4().hex[:8]}@localhost"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq.conf").write_text(f"loopback_users.guest = true\n{config}\n")
        (directory / "advanced.config").write_text(advanced + "\n")
        self.env = {
            **os.environ,
            "HOME": str(directory),  # the Erlang cookie the node and rabbitmqctl share
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> RabbitNode:
        log = (self.directory / "server.out").open("wb")
        self.process = subprocess.Popen([str(self.bin / "rabbitmq-server")], env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.wait_until_up(90)
        return self

    def answers(self) -> bool:
        """RabbitMQ accepts an AMQP login (the port alone opens before it does)."""
        assert self.process is not None and self.process.poll() is None, \
            f"rabbitmq-server exited; see {self.directory / 'server.out'} and its log/"
        conn = amqp.Connection(f"127.0.0.1:{self.port}", userid="guest", password="guest",
                               connect_timeout=1)
        try:
            conn.connect()
            return True
        except Exception:  # noqa: BLE001 - not up yet, whatever the reason
            return False
        finally:
            try:
                conn.collect()
            except Exception:  # noqa: BLE001 - nothing to release
                pass

    def wait_until_up(self, timeout: float) -> None:
        wait_for(self.answers, timeout, f"RabbitMQ node {self.name} to accept logins",
                 interval=0.2)

    def ctl(self, *args: str) -> str:
        done = subprocess.run([str(self.bin / "rabbitmqctl"), "-n", self.name, *args],
                              env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.ctl("stop")
            self.process.wait(60)
        except (AssertionError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None
