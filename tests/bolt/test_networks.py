"""User networks through netavark + aardvark-dns: names and aliases resolve on one
network, other networks are unreachable, published ports answer on 127.0.0.1 and on the
host's own address, and removal leaves no veth, firewall rule or DNS entry."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bolt.engine import ContainerIntent, Engine
from bolt.images.store import ImageStore
from bolt.runtime.intent import NetworkAttachment
from tests.bolt.conftest import Bolt, make_busybox_rootfs

pytestmark = [pytest.mark.root, pytest.mark.runtime]

GET = 'printf "GET /hostname HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {host} 80 | tail -n 1'


@pytest.fixture
def nets(bolt: Bolt) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for c in bolt.ps():
        bolt("rm", "-f", c["id"])
    for name in made:
        bolt.ok("network", "rm", name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _host_address() -> str:
    """An IPv4 address of this host other than loopback and Bolt's bridges."""
    out = json.loads(
        subprocess.run(["ip", "-4", "-j", "addr"], capture_output=True, text=True).stdout
    )
    for link in out:
        if link["ifname"] == "lo" or link["ifname"].startswith(("bolt", "podman", "cni")):
            continue
        for a in link.get("addr_info", []):
            if not ipaddress.ip_address(a["local"]).is_loopback:
                return str(a["local"])
    pytest.fail("this host has no non-loopback IPv4 address")


def _http(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/hostname", timeout=5) as r:
        return r.read().decode().strip()


def _kernel_traces(bolt: Bolt, net: dict) -> list[str]:
    """veths on the network's bridge, firewall rules naming its subnet, DNS entries."""
    found = []
    links = subprocess.run(
        ["ip", "-o", "link", "show", "master", net["bridge"]], capture_output=True, text=True
    )
    found += [f"veth {line.split(':')[1].strip()}" for line in links.stdout.splitlines()]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    found += [f"rule {r}" for r in rules.splitlines() if net["subnet"] in r or net["bridge"] in r]
    dns = bolt.root / "run" / "netavark" / "aardvark-dns" / net["name"]
    if dns.exists():
        found += [f"dns {line}" for line in dns.read_text().splitlines()[1:] if line.strip()]
    return found


def test_containers_on_a_network_reach_each_other_by_name_and_alias_and_no_other(
    bolt: Bolt, nets: list[str]
) -> None:
    nets += ["front", "other"]
    for n in nets:
        bolt.ok("network", "create", n)
    bolt.ok("run", "-d", "--name", "web1", "--network", "front", "--network-alias", "www",
            "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")  # fmt: skip
    web_ip = bolt.inspect("web1")["networks"]["front"]
    by_name = bolt(
        "run", "--rm", "--network", "front", "busybox", "sh", "-c", GET.format(host="web1")
    )
    by_alias = bolt(
        "run", "--rm", "--network", "front", "busybox", "sh", "-c", GET.format(host="www")
    )
    assert (by_name.stdout, by_alias.stdout) == ("web1\n", "web1\n"), (
        by_name.stderr + by_alias.stderr
    )
    outsider = bolt(
        "run", "--rm", "--network", "other", "busybox", "sh", "-c",
        f"nslookup web1 >/dev/null 2>&1 && echo resolved; {GET.format(host=web_ip)}; true",
    )  # fmt: skip
    assert outsider.returncode == 0 and outsider.stdout == "", outsider.stdout
    info = json.loads(bolt.ok("network", "inspect", "front"))[0]
    assert info["containers"] == {"web1": web_ip}
    assert ipaddress.ip_address(web_ip) in ipaddress.ip_network(info["subnet"])


def _forward_rules() -> list[str]:
    out = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True)
    return out.stdout.splitlines()


def _chains_of(name: str) -> list[str]:
    """netavark's per-network chains (named by a hash of the network's name) still there."""
    digest = hashlib.sha512(name.encode()).hexdigest().upper()[:13]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return [r for r in rules.splitlines() if r.startswith(":") and digest in r]


def test_isolation_holds_after_another_networks_last_container_leaves(
    bolt: Bolt, nets: list[str]
) -> None:
    """netavark 1.4 deletes the host-wide ``FORWARD -j NETAVARK_ISOLATION_1`` jump when
    any network's last container leaves; the other networks must stay isolated."""
    tag = os.urandom(3).hex()  # netavark's chains are named by network name, host-wide
    a, b, c = (f"iso{x}{tag}" for x in "abc")
    nets += [a, b, c]
    for n in nets:
        bolt.ok("network", "create", n)
    bolt.ok("run", "-d", "--name", "in-a", "--network", a, "busybox", "sleep", "60")
    bolt.ok("run", "-d", "--name", "in-b", "--network", b,
            "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")  # fmt: skip
    bolt.ok("run", "-d", "--name", "peer-b", "--network", b, "busybox", "sleep", "60")
    bolt.ok("run", "-d", "--name", "in-c", "--network", c, "busybox", "sleep", "60")
    b_ip = bolt.inspect("in-b")["networks"][b]
    bolt.ok("rm", "-f", "in-c")  # c's last container: netavark tears c down completely

    assert "-A FORWARD -j NETAVARK_ISOLATION_1" in _forward_rules()
    probe = f'printf "GET /hostname HTTP/1.0\\r\\n\\r\\n" | nc -w 2 {b_ip} 80 | tail -n 1'
    same_network = bolt("exec", "peer-b", "sh", "-c", probe)
    assert same_network.stdout == "in-b\n", same_network.stderr  # the probe itself works
    across = bolt("exec", "in-a", "sh", "-c", f"{probe}; true")
    assert (across.returncode, across.stdout) == (0, ""), across.stdout

    infos = {n: json.loads(bolt.ok("network", "inspect", n))[0] for n in nets}
    for cname in ("in-a", "in-b", "peer-b"):
        bolt.ok("rm", "-f", cname)
    for n, info in infos.items():
        assert (_kernel_traces(bolt, info), _chains_of(n)) == ([], []), n


def test_published_ports_serve_the_host_and_leave_nothing_after_rm(
    bolt: Bolt, nets: list[str]
) -> None:
    nets.append("pub")
    bolt.ok("network", "create", "pub")
    local, anywhere, spelled = _free_port(), _free_port(), _free_port()
    bolt.ok("run", "-d", "--name", "pubweb", "--network", "pub",
            "-p", f"127.0.0.1:{local}:80", "-p", f"{anywhere}:80",
            "-p", f"0.0.0.0:{spelled}:80",  # every address, spelled out as docker users do
            "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")  # fmt: skip
    assert _http_soon("127.0.0.1", local) == "pubweb"  # `run -d` returns before httpd listens
    for port in (anywhere, spelled):
        assert _http("127.0.0.1", port) == "pubweb"
        assert _http(_host_address(), port) == "pubweb"
    net = json.loads(bolt.ok("network", "inspect", "pub"))[0]
    assert _kernel_traces(bolt, net) != []  # while it runs there is a veth, rules, DNS
    ports = bolt.inspect("pubweb")["ports"]
    assert sorted(p["host_port"] for p in ports) == sorted([local, anywhere, spelled])
    netns = f"bolt-{bolt.inspect('pubweb')['id'][:24]}"  # named as `ip netns` lists it
    assert netns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    bolt.ok("rm", "-f", "pubweb")
    assert _kernel_traces(bolt, net) == []
    assert not Path("/run/netns", netns).exists()
    assert f"/run/netns/{netns}" not in Path("/proc/self/mountinfo").read_text()
    for port in (local, anywhere, spelled):
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))  # free again
    assert not Path(f"/sys/class/net/{net['bridge']}").exists()


def _http_soon(host: str, port: int, within: float = 5.0) -> str:
    """``_http`` once the server listens (a detached start returns before it does)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return _http(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_container_recreated_on_its_predecessors_address_answers_at_once(
    bolt: Bolt, nets: list[str]
) -> None:
    """The lowest free address is handed out, so a recreated container gets its
    predecessor's. The host's and the other containers' neighbour (ARP) entries for it
    outlive the old container by tens of seconds, so they must still be right; and the
    bridge's own address, the others' gateway, must not move as containers come and go."""
    nets.append("again")
    bolt.ok("network", "create", "again")
    bolt.ok("run", "-d", "--name", "stay", "--network", "again", "busybox", "sleep", "60")
    bridge = json.loads(bolt.ok("network", "inspect", "again"))[0]["bridge"]
    bridge_address = Path("/sys/class/net", bridge, "address")
    gateway_mac = bridge_address.read_text()
    port = _free_port()
    for name in ("first", "second"):
        bolt.ok("run", "-d", "--name", name, "--network", "again", "-p", f"127.0.0.1:{port}:80",
                "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")  # fmt: skip
        if name == "first":
            ip = bolt.inspect(name)["networks"]["again"]
        assert bolt.inspect(name)["networks"]["again"] == ip  # the address is reused
        assert _http_soon("127.0.0.1", port) == name
        assert bolt.ok("exec", "stay", "sh", "-c", GET.format(host=ip)) == f"{name}\n"
        assert bridge_address.read_text() == gateway_mac
        bolt.ok("rm", "-f", name)
    assert bridge_address.read_text() == gateway_mac


def test_network_none_host_and_container_modes(bolt: Bolt, nets: list[str]) -> None:
    none = bolt.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net")
    assert none.split() == ["lo"]
    host = bolt.ok("run", "--rm", "--network", "host", "busybox", "sh", "-c", "ls /sys/class/net")
    assert sorted(host.split()) == sorted(p.name for p in Path("/sys/class/net").iterdir())
    nets.append("shared")
    bolt.ok("network", "create", "shared")
    bolt.ok("run", "-d", "--name", "owner", "--network", "shared", "busybox", "sleep", "30")
    ip = bolt.inspect("owner")["networks"]["shared"]
    joined = bolt.ok(
        "run", "--rm", "--network", "container:owner", "busybox", "ip", "-4", "-o", "addr"
    )
    assert f"inet {ip}/" in joined


def test_network_rm_refuses_a_network_in_use(bolt: Bolt, nets: list[str]) -> None:
    nets.append("busy")
    bolt.ok("network", "create", "busy")
    bolt.ok("run", "-d", "--name", "user1", "--network", "busy", "busybox", "sleep", "30")
    refused = bolt("network", "rm", "busy")
    assert refused.returncode == 2 and "in use by user1" in refused.stderr
    assert bolt("network", "create", "busy").returncode == 2  # already exists
    assert "busy" in bolt.ok("network", "ls", "-q").split()


def test_network_setups_from_two_roots_at_once_all_succeed(
    bolt: Bolt, nets: list[str], tmp_path: Path
) -> None:
    """netavark serializes itself only per config directory: without Bolt's host-wide
    lock, setups on new networks from two roots at once race on the firewall chains
    ("Chain already exists"), and so do the last teardowns on a network."""
    other = tmp_path / "root2"
    ImageStore(other).import_path(
        make_busybox_rootfs(tmp_path / "rootfs"), "busybox:latest", config={"Cmd": ["/bin/sh"]}
    )
    engines = {"par0": Engine(bolt.root), "par1": Engine(other)}
    nets.append("par0")
    try:
        for net, eng in engines.items():
            eng.network_create(net)
        jobs = [(eng, net) for net, eng in engines.items() for _ in range(3)]

        def start(job: tuple[Engine, str]) -> str:
            eng, net = job
            intent = ContainerIntent(
                image="busybox",
                command=["sleep", "30"],
                network_mode="bridge",
                networks=(NetworkAttachment(net),),
            )
            return eng.run(intent).status

        with ThreadPoolExecutor(len(jobs)) as pool:
            assert list(pool.map(start, jobs)) == ["running"] * len(jobs)
        running = [(eng, c.id) for eng in engines.values() for c in eng.list()]
        with ThreadPoolExecutor(len(running)) as pool:
            list(pool.map(lambda job: job[0].remove(job[1], force=True), running))
        for net, eng in engines.items():
            assert eng.list() == []
            info = eng.network_inspect(net).describe()
            assert _kernel_traces(Bolt(eng.root, {}), info) == [], net
    finally:
        for c in engines["par1"].list():
            engines["par1"].remove(c.id, force=True)
        engines["par1"].network_remove("par1")
        for eng in engines.values():
            eng.close()


def test_rename_moves_the_dns_name_at_once(bolt: Bolt, nets: list[str]) -> None:
    nets.append("names")
    bolt.ok("network", "create", "names")
    bolt.ok("run", "-d", "--name", "oldname", "--network", "names", "--network-alias", "nick",
            "busybox", "sleep", "60")  # fmt: skip
    ip = bolt.inspect("oldname")["networks"]["names"]
    lookup = " ".join(
        f"nslookup {n} 2>/dev/null | grep -q 'Address.*{ip}' && echo {n}=yes || echo {n}=no;"
        for n in ("oldname", "newname", "nick")
    )

    def resolved() -> list[str]:
        out = bolt.ok("run", "--rm", "--network", "names", "busybox", "sh", "-c", lookup)
        return [line.split("=")[0] for line in out.split() if not line.endswith("=no")]

    assert resolved() == ["oldname", "nick"]
    bolt.ok("rename", "oldname", "newname")
    assert resolved() == ["newname", "nick"]
    assert bolt.ok("exec", "newname", "hostname").strip() != ""  # still running, reachable
    net = json.loads(bolt.ok("network", "inspect", "names"))[0]
    assert net["containers"] == {"newname": ip}
    bolt.ok("rm", "-f", "newname")
    assert _kernel_traces(bolt, net) == []
