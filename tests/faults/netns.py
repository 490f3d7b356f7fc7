"""A network namespace of the test's own, linked to the host by a veth pair on a private /30, so
a server run inside it can be cut off from the host with ``ip link set <host end> down`` and
joined again with ``up``. Needs root and the ``ip`` binary (iproute2); otherwise the test skips,
or fails under CI (`kernel.testing.servers.unavailable`)."""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import uuid
from types import TracebackType

from typing_extensions import Self

from kernel.testing.servers import need_binary, unavailable

#: the /30 networks the namespace picks from (one not already on a host interface).
POOL = ipaddress.ip_network("10.250.0.0/16")


class Namespace:
    """``with Namespace() as ns:`` creates the namespace and the link; `prefix` runs a command
    inside it, `address` is the namespace's end (the host's is `host_address`). Leaving the
    block deletes the namespace and the link, whatever happened."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            unavailable("the network-cut scenario needs root (ip netns)")
        self.ip = need_binary("ip")
        tag = uuid.uuid4().hex[:8]
        self.name = f"kfault-{tag}"
        self.host_end = f"kf{tag}h"  # interface names: at most 15 characters
        self.inner_end = f"kf{tag}n"
        network = self._free_network()
        first, second = list(network.hosts())
        self.host_address, self.address = str(first), str(second)
        self.prefixlen = network.prefixlen

    def _free_network(self) -> ipaddress.IPv4Network:
        used = subprocess.run([self.ip, "-o", "-4", "addr"], capture_output=True, text=True,
                              check=True).stdout
        taken = [ipaddress.ip_interface(word).network for word in used.split()
                 if "/" in word and word[0].isdigit()]
        for _ in range(100):
            net = ipaddress.ip_network(
                f"{POOL[random.randrange(0, POOL.num_addresses, 4)]}/30")
            if not any(net.overlaps(other) for other in taken):
                return net  # type: ignore[return-value]
        raise AssertionError(f"no free /30 in {POOL}")

    @property
    def prefix(self) -> tuple[str, ...]:
        """The command that runs what follows it inside the namespace (and execs it)."""
        return (self.ip, "netns", "exec", self.name)

    def _run(self, *args: str) -> None:
        done = subprocess.run([self.ip, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"ip {' '.join(args)} failed: {done.stderr.strip()}"

    def __enter__(self) -> Self:
        try:
            self._run("netns", "add", self.name)
            self._run("link", "add", self.host_end, "type", "veth", "peer", "name",
                      self.inner_end, "netns", self.name)
            self._run("addr", "add", f"{self.host_address}/{self.prefixlen}", "dev",
                      self.host_end)
            self._run("link", "set", self.host_end, "up")
            inner = ("netns", "exec", self.name, self.ip)
            self._run(*inner, "addr", "add", f"{self.address}/{self.prefixlen}", "dev",
                      self.inner_end)
            self._run(*inner, "link", "set", self.inner_end, "up")
            self._run(*inner, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.delete()

    def cut(self) -> None:
        """Take the host's end of the link down: packets between host and namespace drop."""
        self._run("link", "set", self.host_end, "down")

    def restore(self) -> None:
        self._run("link", "set", self.host_end, "up")

    def delete(self) -> None:
        """Delete the link (both ends) and the namespace; safe to call again."""
        for args in (("link", "del", self.host_end), ("netns", "del", self.name)):
            subprocess.run([self.ip, *args], capture_output=True, timeout=30)
