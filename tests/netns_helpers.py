"""A second machine on this one, for the shared-nothing cluster test.

* `Veth`: a network namespace of its own joined to this machine by a veth pair on a private /30
  (10.231.N.1 on this side, 10.231.N.2 inside): the worker node's only address is the one inside,
  and the only peer it can reach is this side's address (no route beyond, no other interface).
* `worker_wrap`: the command prefix that starts a process in that network namespace, under a host
  name of its own, *and* in a mount namespace of its own, where the driver's folders are hidden under empty tmpfs mounts and the
  worker's own data folder is mounted at the data root's path (a real cluster mounts its data
  volume at the same path on every node, e.g. /mnt/data).

Everything made here is removed by what made it (`Veth.delete`: the processes left in the
namespace, the veth pair, the namespace); every command is bounded by a timeout. Needs root or
CAP_NET_ADMIN + CAP_SYS_ADMIN: `namespaces_unavailable` says why not, for the test's skip reason.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NET_PREFIX = "10.231"  # a private range; each namespace takes one /30 in 10.231.N.0/30


def _run(cmd: list[str], timeout: float = 20, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return proc


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine has an address or a route in (any namespace's host side)."""
    out = _run(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    out += _run(["ip", "-4", "route", "show"], check=False).stdout
    nets = []
    for word in out.split():
        with contextlib.suppress(ValueError):
            if "/" in word:
                nets.append(ipaddress.ip_network(word, strict=False))
    return nets


def _free_slash30() -> tuple[str, str]:
    """(this side, inside) of the first 10.231.N.0/30 that no address or route here overlaps."""
    used = _used_networks()
    for n in range(64):  # bounded: 64 test namespaces at once would be a leak to look at
        net = ipaddress.ip_network(f"{NET_PREFIX}.{n}.0/30")
        if not any(net.overlaps(u) for u in used):
            hosts = list(net.hosts())
            return str(hosts[0]), str(hosts[1])
    raise RuntimeError(f"no free /30 in {NET_PREFIX}.0-63.0: are earlier test namespaces left over? (`ip netns list`)")


@dataclass
class Veth:
    """A network namespace and the veth pair that joins it to this machine (see the module)."""

    name: str = ""
    host_ip: str = ""
    ns_ip: str = ""
    host_if: str = ""
    ns_if: str = ""
    created: bool = False

    def create(self) -> "Veth":
        suffix = secrets.token_hex(3)
        self.name = f"sst-{suffix}"
        self.host_if, self.ns_if = f"sst{suffix}h", f"sst{suffix}n"  # interface names: 15 characters at most
        self.host_ip, self.ns_ip = _free_slash30()
        _run(["ip", "netns", "add", self.name])
        self.created = True
        try:
            _run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", self.name])
            _run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if])
            _run(["ip", "link", "set", self.host_if, "up"])
            _run(["ip", "-n", self.name, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if])
            _run(["ip", "-n", self.name, "link", "set", self.ns_if, "up"])
            _run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        except Exception:
            self.delete()
            raise
        return self

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def pids(self) -> set[int]:
        """The processes in the namespace (every one of them was started by the test)."""
        if not self.created:
            return set()
        out = _run(["ip", "netns", "pids", self.name], check=False).stdout
        return {int(p) for p in out.split() if p.isdigit()}

    def reachable(self, port: int, timeout: float = 30) -> None:
        """Wait until a process in the namespace opens a TCP connection to this side's address at
        ``port`` (the link is up and routed), bounded."""
        import sys

        probe = f"import socket; socket.create_connection(({self.host_ip!r}, {port}), timeout=2).close()"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _run([*self.exec_prefix(), sys.executable, "-c", probe], check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the namespace {self.name} does not reach {self.host_ip}:{port} after {timeout:.0f}s")

    def delete(self) -> list[str]:
        """Remove what `create` made: the processes still in the namespace (SIGKILL), the veth pair
        (deleting one end deletes both), the namespace. Returns what is still there (to assert on)."""
        if not self.created:
            return []
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        _run(["ip", "link", "del", self.host_if], check=False)
        _run(["ip", "netns", "del", self.name], check=False)
        left = []
        if self.name in _run(["ip", "netns", "list"], check=False).stdout.split():
            left.append(f"network namespace {self.name}")
        if _run(["ip", "link", "show", self.host_if], check=False).returncode == 0:
            left.append(f"interface {self.host_if}")
        self.created = bool(left)
        return left


def namespaces_unavailable() -> str | None:
    """Why this machine cannot give the test its second machine (None when it can): `ip netns add`
    needs CAP_NET_ADMIN (and CAP_SYS_ADMIN for its mount), the worker's mount namespace CAP_SYS_ADMIN."""
    import shutil

    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"no `{tool}` command on this machine (iproute2, util-linux)"
    probe = f"sst-probe-{secrets.token_hex(3)}"
    made = _run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return (f"network namespaces are not permitted here (`ip netns add` failed: {made.stderr.strip()}); "
                "the shared-nothing test needs root or CAP_NET_ADMIN and CAP_SYS_ADMIN")
    try:
        mnt = _run(["ip", "netns", "exec", probe, "unshare", "--mount", "--uts", "--propagation", "private", "--",
                    "mount", "-t", "tmpfs", "-o", "size=1m", "sst-probe", "/mnt"], check=False)
        if mnt.returncode != 0:
            return (f"mount namespaces are not permitted here (`unshare --mount` + tmpfs failed: "
                    f"{mnt.stderr.strip()}); the shared-nothing test needs CAP_SYS_ADMIN")
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


def worker_wrap(veth: Veth, hide: list[Path], binds: dict[Path, Path], hostname: str) -> list[str]:
    """A command prefix: run in ``veth``'s network namespace, under a host name of its own (a UTS
    namespace), and in a private mount namespace where each folder of ``hide`` is an empty tmpfs
    (what is written there stays in memory and goes with the namespace) and each ``binds`` target
    shows its source folder instead. Mounts made there never reach this machine's namespace
    (`--propagation private`)."""
    lines = ["set -eu", f"hostname {shlex.quote(hostname)}"]
    for folder in hide:
        lines.append(f"mount -t tmpfs -o size=64m,mode=0755 sst-hidden {shlex.quote(str(folder))}")
    for target, source in binds.items():
        lines.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}")
    lines.append('exec "$@"')
    return [*veth.exec_prefix(), "unshare", "--mount", "--uts", "--propagation", "private", "--",
            "/bin/sh", "-c", "\n".join(lines), "sst-worker"]
