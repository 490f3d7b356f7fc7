"""A private RabbitMQ node for tests that stop, restart or reconfigure the broker, never the
shared one (other tests and other people's runs use it): its own node name, ports, directory
and configuration, started with RabbitMQ's own scripts as the current user (the Debian wrapper
in /usr/sbin would switch to the rabbitmq user and its directories). A node may also listen for
TLS (`make_certificates` makes a throwaway CA with the ``openssl`` binary). Tests that need one
skip when the scripts or openssl are missing, except under CI (``CI`` set), where that is a
failure."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path
from typing import NoReturn

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


def missing(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def make_certificates(directory: Path) -> Path:
    """A throwaway CA (ca.crt), a server certificate for 127.0.0.1 and localhost (server.crt,
    server.key) and a client certificate (client.crt, client.key), all signed by the CA."""
    openssl = shutil.which("openssl") or missing("needs the openssl binary on PATH")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    commands = ["req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 "
                "-subj /CN=kernel-test-ca"]
    for name, extensions in (("server", "-extfile san.ext"), ("client", "")):
        commands += [f"req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr "
                     f"-subj /CN={name}",
                     f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                     f"-out {name}.crt -days 1 {extensions}"]
    for command in commands:
        subprocess.run([openssl, *command.split()], cwd=directory, check=True,
                       capture_output=True)
    return directory


def scripts() -> Path:
    for directory in filter(None, SCRIPT_DIRS):
        if (Path(directory) / "rabbitmq-server").exists():
            return Path(directory)
    found = shutil.which("rabbitmq-server")
    if found is not None and "sbin" not in found:
        return Path(found).parent
    missing("needs RabbitMQ's scripts (rabbitmq-server, rabbitmqctl) to run a private node; "
            "set RABBITMQ_SCRIPTS to their directory")


class RabbitNode:
    """``RabbitNode(directory, config="consumer_timeout = 2000").start()``; `config` lines go
    into rabbitmq.conf, `advanced` is an Erlang term for advanced.config. With `certificates`
    (a `make_certificates` directory) the node also listens for TLS on `tls_port`, with the
    server certificate, and accepts only clients that show a certificate of the same CA."""

    def __init__(self, directory: Path, *, config: str = "", advanced: str = "[].",
                 certificates: Path | None = None) -> None:
        self.bin = scripts()
        self.directory = directory
        self.port = free_port()
        self.tls_port = free_port() if certificates else None
        if certificates:
            config += (f"\nlisteners.ssl.default = {self.tls_port}"
                       f"\nssl_options.cacertfile = {certificates / 'ca.crt'}"
                       f"\nssl_options.certfile = {certificates / 'server.crt'}"
                       f"\nssl_options.keyfile = {certificates / 'server.key'}"
                       f"\nssl_options.verify = verify_peer"
                       f"\nssl_options.fail_if_no_peer_cert = true")
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

    @property
    def tls_url(self) -> str:
        assert self.tls_port is not None, "the node was made without certificates"
        return f"amqps://guest:guest@127.0.0.1:{self.tls_port}//"

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

    def tls_listens(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.tls_port or 0), 1).close()
            return True
        except OSError:
            return False

    def wait_until_up(self, timeout: float) -> None:
        wait_for(self.answers, timeout, f"RabbitMQ node {self.name} to accept logins",
                 interval=0.2)
        if self.tls_port is not None:
            wait_for(self.tls_listens, 10, f"RabbitMQ node {self.name} to listen for TLS",
                     interval=0.1)

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
