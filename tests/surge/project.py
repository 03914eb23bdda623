"""A Surge project under test: the ``bolt surge`` CLI on a private state root, and the
checks that ``down`` left nothing behind (containers, mounts, veths, bridges, firewall
rules, netns, cgroups, processes)."""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bolt.conftest import leftover_resources, processes_with_arg
from tests.conftest import tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Project:
    root: Path
    directory: Path
    env: dict[str, str]
    name: str  # the project's name: unique, as bridges and netns are global to the host
    marker: str  # in every service's command line, to find stray processes

    @property
    def file(self) -> Path:
        return self.directory / "Boltfile.toml"

    def surge_argv(self, *args: str) -> list[str]:
        """``bolt surge`` on this project's file and root, with ``args``."""
        return [tool("bolt"), "--root", str(self.root), "surge", "-f", str(self.file), *args]

    def surge(
        self, *args: str, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.surge_argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"bolt surge {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
            )
        return proc

    def ps(self) -> list[dict[str, Any]]:
        return json.loads(self.surge("ps", "--json", "-a", check=True).stdout)

    def by_service(self) -> dict[str, dict[str, Any]]:
        return {c["service"]: c for c in self.ps()}

    def engine_state(self) -> dict[str, Any]:
        """What the project has on the host now: container ids, bridges, veths, netns."""
        from bolt.engine import Engine

        with Engine(self.root) as eng:
            containers = eng.list(all=True, labels={"bolt.surge.project": self.name})
            networks = [
                n for n in eng.network_list() if n.labels.get("bolt.surge.project") == self.name
            ]
        bridges = [n.bridge for n in networks]
        veths = []
        for bridge in bridges:
            out = subprocess.run(
                ["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True
            )
            # "12: veth0@if2: ..." -> "12: veth0@": names are reused, index and name are not
            veths += [line.split("@")[0] + "@" for line in out.stdout.splitlines()]
        return {
            "ids": [c.id for c in containers],
            "bridges": bridges,
            "subnets": [n.subnet for n in networks],
            "veths": veths,
        }

    def leftovers(self, before: dict[str, Any]) -> list[str]:
        """Everything of ``before`` (an ``engine_state``) that still exists."""
        from bolt.runtime.netavark import NETNS_DIR, netns_name

        found = [f"container {c['name']}" for c in self.ps()]
        for cid in before["ids"]:
            found += leftover_resources(self.root, cid)
            if (NETNS_DIR / netns_name(cid)).exists():
                found.append(f"netns {netns_name(cid)}")
        for link in before["bridges"]:
            if subprocess.run(["ip", "link", "show", link], capture_output=True).returncode == 0:
                found.append(f"link {link}")
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        found += [
            f"veth {v}"
            for v in before["veths"]
            if any(line.startswith(v) for line in links.splitlines())
        ]
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        rules += subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
        for needle in [*before["bridges"], *before["subnets"]]:
            if needle and needle in rules:
                found.append(f"firewall rule mentioning {needle}")
        found += [f"process {pid}" for pid in processes_with_arg(self.marker)]
        # the root's DNS server stops with its last network
        dns = str(self.root / "run" / "netavark")
        found += [f"aardvark-dns {pid}" for pid in processes_with_arg(dns)]
        return found
