"""A second network namespace that plays a remote host (root): a veth pair to this host on
a /30 of its own, with unique names, removed again when the block ends."""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.bolt.conftest import require_root

POOL = ipaddress.ip_network("10.251.0.0/16")  # private; /30 blocks picked at random


@dataclass(frozen=True)
class RemoteHost:
    name: str  # the network namespace
    host_if: str
    host_ip: str  # this host's address on the link: what the remote host connects to
    peer_ip: str

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run(self.argv(*argv), **kw)

    def popen(self, *argv: str, **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*argv), text=True, **kw)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _free_block() -> ipaddress.IPv4Network:
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    taken = [ipaddress.ip_interface(w).network for w in used.split() if "/" in w and "." in w]
    for _ in range(100):
        block = list(POOL.subnets(new_prefix=30))[secrets.randbelow(2**14)]
        if not any(block.overlaps(t) for t in taken):
            return block
    raise RuntimeError("no free /30 in the test pool")


@contextlib.contextmanager
def remote_host() -> Iterator[RemoteHost]:
    require_root()
    tag = secrets.token_hex(4)
    name, host_if, peer_if = f"bolt-remote-{tag}", f"rh{tag}", f"rp{tag}"
    block = _free_block()
    host_ip, peer_ip = (str(a) for a in list(block.hosts())[:2])
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        _ip("link", "set", peer_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{peer_ip}/30", "dev", peer_if)
        _ip("-n", name, "link", "set", peer_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield RemoteHost(name, host_if, host_ip, peer_ip)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
