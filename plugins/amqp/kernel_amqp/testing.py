"""A private RabbitMQ node for tests that stop, restart or reconfigure the broker, never the
shared one (other tests and other people's runs use it): its own node name, ports, directory
and configuration, started with RabbitMQ's own scripts as the current user (the Debian wrapper
in /usr/sbin would switch to the rabbitmq user and its directories). A node may also listen for
TLS (`make_certificates` makes a throwaway CA with the ``openssl`` binary). Tests that need one
skip when the scripts or openssl are missing, except under CI (``CI`` set), where that is a
failure (`kernel.testing.servers.unavailable`).

Shipped with kernel-amqp, so that kernel's own fault suite and other distributions' tests start
a private node the same way: ``RabbitNode(tmp_path).start()``, then ``kill`` / ``start`` it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import amqp

from kernel.testing.servers import ServerProcess, free_port, listening, need_binary, unavailable

__all__ = ["RabbitNode", "make_certificates", "scripts"]

#: where the scripts live (Debian, Ubuntu and RabbitMQ's generic unix package).
SCRIPT_DIRS = (os.environ.get("RABBITMQ_SCRIPTS", ""), "/usr/lib/rabbitmq/bin",
               "/usr/lib/rabbitmq/sbin", "/opt/rabbitmq/sbin")


def make_certificates(directory: Path) -> Path:
    """A throwaway CA (ca.crt), a server certificate for 127.0.0.1 and localhost (server.crt,
    server.key) and a client certificate (client.crt, client.key), all signed by the CA."""
    openssl = need_binary("openssl")
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
    unavailable("needs RabbitMQ's scripts (rabbitmq-server, rabbitmqctl) to run a private node; "
            "set RABBITMQ_SCRIPTS to their directory")


class RabbitNode(ServerProcess):
    """``RabbitNode(directory, config="consumer_timeout = 2000").start()``; `config` lines go
    into rabbitmq.conf, `advanced` is an Erlang term for advanced.config. With `certificates`
    (a `make_certificates` directory) the node also listens for TLS on `tls_port`, with the
    server certificate, and accepts only clients that show a certificate of the same CA. Its
    output goes to ``server.out`` in `directory`, RabbitMQ's own log to ``log/``; `stop` (the
    script stops the node properly on SIGTERM) or `kill` it."""

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
        self.nodename = f"kernel-test-{uuid.uuid4().hex[:8]}@localhost"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq.conf").write_text(f"loopback_users.guest = true\n{config}\n")
        (directory / "advanced.config").write_text(advanced + "\n")
        super().__init__(
            [str(self.bin / "rabbitmq-server")], log=directory / "server.out",
            probe=self.answers, start_timeout=90, grace=60,
            name=f"RabbitMQ node {self.nodename}",
            env={"HOME": str(directory),  # the Erlang cookie the node and rabbitmqctl share
                 "RABBITMQ_NODENAME": self.nodename,
                 "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                 "RABBITMQ_NODE_PORT": str(self.port),
                 "RABBITMQ_DIST_PORT": str(free_port()),
                 "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
                 "RABBITMQ_LOG_BASE": str(directory / "log"),
                 "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
                 "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
                 "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config")})

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def tls_url(self) -> str:
        assert self.tls_port is not None, "the node was made without certificates"
        return f"amqps://guest:guest@127.0.0.1:{self.tls_port}//"

    def answers(self) -> bool:
        """RabbitMQ accepts an AMQP login (the port alone opens before it does), and listens
        for TLS when it should."""
        conn = amqp.Connection(f"127.0.0.1:{self.port}", userid="guest", password="guest",
                               connect_timeout=1)
        try:
            conn.connect()
        except Exception:  # noqa: BLE001 - not up yet, whatever the reason
            return False
        finally:
            try:
                conn.collect()
            except Exception:  # noqa: BLE001 - nothing to release
                pass
        return self.tls_port is None or listening(self.tls_port)()

    def ctl(self, *args: str) -> str:
        done = subprocess.run([str(self.bin / "rabbitmqctl"), "-n", self.nodename, *args],
                              env=self.environment(), capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    def messages(self, queue: str) -> int:
        """Messages the node has in `queue`, ready or delivered and not yet acknowledged (0 if
        there is no such queue). A call of rabbitmqctl: a second or two."""
        for line in self.ctl("list_queues", "--quiet", "--no-table-headers",
                             "name", "messages").splitlines():
            name, _, count = line.rpartition("\t")
            if name == queue:
                return int(count)
        return 0
