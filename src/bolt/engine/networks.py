"""User networks: definitions in ``state.db``, addresses handed out here, and netavark
(``bolt.runtime.netavark``) doing the kernel work for each attached container.

Several Bolt roots (and podman, which also uses netavark) may share one host, so what is
global to the host is made unique:

* bridge names are ``bolt`` + a hash of the root and the network name;
* each root has its own netavark config directory (and so its own aardvark-dns);
* subnets are claimed in a host-wide registry (``/run/bolt-networks``, under a lock),
  skipping every subnet a host route or address already covers; a claim whose root is
  gone is reclaimed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from bolt.errors import InvalidInput, NotFound
from bolt.runtime import netavark
from bolt.runtime.intent import NETWORK_NAME_RE, ContainerIntent, NetworkAttachment
from bolt.runtime.layout import ContainerDir
from bolt.state.db import ContainerRow, StateDB, now

REGISTRY = Path(os.environ.get("BOLT_NETWORK_REGISTRY", "/run/bolt-networks"))
POOL = ipaddress.IPv4Network("10.213.0.0/16")  # /24s are handed out from here
DEFAULT_NETWORK = "bolt"
_COLUMNS = "name, id, subnet, gateway, bridge, internal, labels, created"


class NetworkInfo(NamedTuple):
    name: str
    id: str
    subnet: str
    gateway: str
    bridge: str
    internal: bool
    labels: dict[str, str]
    created: float
    containers: dict[str, str]  # container name -> its address

    def describe(self) -> dict[str, Any]:
        return {**self._asdict(), "driver": "bridge"}


class Attached(NamedTuple):
    netns: str
    ips: list[str]
    nameservers: list[str]


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    REGISTRY.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(REGISTRY / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _config_dir(root: Path) -> str:
    return str(root / "run" / "netavark")


def _bridge_name(root: Path, name: str) -> str:
    return "bolt" + hashlib.sha256(f"{root}\0{name}".encode()).hexdigest()[:10]


def _host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network a route or address of the host covers."""
    found: list[ipaddress.IPv4Network] = []
    for args in (["-4", "-j", "route", "show", "table", "all"], ["-4", "-j", "addr"]):
        proc = subprocess.run(["ip", *args], capture_output=True, text=True)
        try:
            entries = json.loads(proc.stdout or "[]")
        except ValueError:
            continue
        for e in entries:
            items = [e.get("dst")] + [
                f"{a['local']}/{a['prefixlen']}" for a in e.get("addr_info", []) if "local" in a
            ]
            for item in items:
                if not item or item == "default":
                    continue
                with contextlib.suppress(ValueError):
                    net = ipaddress.ip_network(item, strict=False)
                    if isinstance(net, ipaddress.IPv4Network) and net.prefixlen > 0:
                        found.append(net)
    return found


def _bound_addresses() -> list[ipaddress.IPv4Network]:
    """Addresses with a UDP socket bound to them (a DNS server such as an aardvark-dns
    left over from a removed root keeps its address after its bridge is gone)."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            local = line.split()[1].split(":")[0]
            ip = ipaddress.IPv4Address(bytes.fromhex(local)[::-1])
            if not ip.is_unspecified and not ip.is_loopback:
                found.append(ipaddress.IPv4Network(ip))
    return found


def _claims() -> dict[str, dict[str, Any]]:
    """subnet -> claim, dropping claims whose Bolt root no longer exists."""
    out = {}
    for entry in REGISTRY.glob("*_*"):
        try:
            claim = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue
        if not (Path(claim["root"]) / "state.db").exists():
            entry.unlink(missing_ok=True)
            continue
        out[entry.name.replace("_", "/")] = claim
    return out


def _claim_subnet(root: Path, name: str, wanted: str | None) -> ipaddress.IPv4Network:
    taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = [
        ipaddress.ip_network(s) for s in _claims()
    ]
    taken += _host_networks() + _bound_addresses()
    if wanted is not None:
        try:
            subnet = ipaddress.ip_network(wanted)
        except ValueError:
            raise InvalidInput(f"--subnet: {wanted!r} is not a network (CIDR)") from None
        if not isinstance(subnet, ipaddress.IPv4Network) or not 8 <= subnet.prefixlen <= 29:
            raise InvalidInput(f"--subnet: {wanted} must be IPv4, /8 to /29")
        clash = [t for t in taken if t.overlaps(subnet)]
        if clash:
            raise InvalidInput(f"--subnet: {wanted} overlaps {clash[0]}, already in use")
        candidates: list[ipaddress.IPv4Network] = [subnet]
    else:
        candidates = [
            s
            for s in POOL.subnets(new_prefix=24)
            if not any(t.overlaps(s) for t in taken)  # type: ignore[arg-type]
        ]
        if not candidates:
            raise InvalidInput(f"no free /24 left in {POOL}", hint="give --subnet")
    subnet = candidates[0]
    (REGISTRY / str(subnet).replace("/", "_")).write_text(
        json.dumps({"root": str(root), "name": name})
    )
    return subnet


def _release_subnet(root: Path, subnet: str) -> None:
    entry = REGISTRY / subnet.replace("/", "_")
    with contextlib.suppress(OSError, ValueError):
        if json.loads(entry.read_text())["root"] == str(root):
            entry.unlink()


def _info(db: StateDB, r: tuple[Any, ...]) -> NetworkInfo:
    members = {}
    for row in db.all():
        ip = row.details_dict.get("networks", {}).get(r[0])
        if ip:
            members[row.name] = ip
    return NetworkInfo(
        name=r[0], id=r[1], subnet=r[2], gateway=r[3], bridge=r[4], internal=bool(r[5]),
        labels=json.loads(r[6]), created=r[7], containers=members,
    )  # fmt: skip


def get(db: StateDB, name: str) -> NetworkInfo:
    r = db.conn.execute(
        f"SELECT {_COLUMNS} FROM networks WHERE name=? OR id=?", (name, name)
    ).fetchone()
    if r is None:
        raise NotFound(f"no such network: {name}", hint="list networks with 'bolt network ls'")
    return _info(db, r)


def list_networks(db: StateDB, labels: dict[str, str]) -> list[NetworkInfo]:
    rows = db.conn.execute(f"SELECT {_COLUMNS} FROM networks ORDER BY created").fetchall()
    nets = [_info(db, r) for r in rows]
    return [n for n in nets if all(n.labels.get(k) == v for k, v in labels.items())]


def create(
    root: Path,
    db: StateDB,
    name: str,
    subnet: str | None = None,
    internal: bool = False,
    labels: dict[str, str] | None = None,
) -> NetworkInfo:
    if not NETWORK_NAME_RE.match(name) or name in ("none", "host", "bridge", "private"):
        raise InvalidInput(
            f"network name {name!r} is invalid", hint="use [a-zA-Z0-9][a-zA-Z0-9_.-]*"
        )
    if db.conn.execute("SELECT 1 FROM networks WHERE name=?", (name,)).fetchone():
        raise InvalidInput(f"network {name} already exists")
    with _host_lock():
        net = _claim_subnet(root, name, subnet)
        gateway = str(next(net.hosts()))
        try:
            db.conn.execute(
                f"INSERT INTO networks ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                (name, os.urandom(32).hex(), str(net), gateway, _bridge_name(root, name),
                 int(internal), json.dumps(labels or {}), now()),
            )  # fmt: skip
        except Exception:
            _release_subnet(root, str(net))
            raise
    return get(db, name)


def remove(root: Path, db: StateDB, name: str) -> None:
    net = get(db, name)
    if net.containers:
        raise InvalidInput(
            f"network {net.name} is in use by {', '.join(sorted(net.containers))}",
            hint="remove those containers first",
        )
    if os.path.exists(f"/sys/class/net/{net.bridge}"):
        subprocess.run(["ip", "link", "delete", net.bridge], capture_output=True)
    db.conn.execute("DELETE FROM networks WHERE name=?", (net.name,))
    with _host_lock():
        _release_subnet(root, net.subnet)


def prune(root: Path, db: StateDB) -> list[str]:
    removed = []
    for net in list_networks(db, {}):
        if not net.containers:
            remove(root, db, net.name)
            removed.append(net.name)
    return removed


def _netavark_host_ip(host_ip: str) -> str:
    """netavark matches a published port's host address literally: every address is the
    empty string, so ``0.0.0.0:H:C`` (docker's spelling of it) and ``[::]:H:C`` become that,
    or their forwarding rule would match no packet."""
    if host_ip and ipaddress.ip_address(host_ip).is_unspecified:
        return ""
    return host_ip


def _free_port(protocol: str, host_ip: str) -> int:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))
        return int(s.getsockname()[1])


def _address(net: NetworkInfo, wanted: str | None, field: str) -> str:
    subnet = ipaddress.ip_network(net.subnet)
    used = {net.gateway, *net.containers.values()}
    if wanted is not None:
        if ipaddress.ip_address(wanted) not in subnet or wanted == net.gateway:
            raise InvalidInput(
                f"{field}: {wanted} is not a free address of {net.name} ({net.subnet})"
            )
        if wanted in used:
            raise InvalidInput(f"{field}: {wanted} is already used on {net.name}")
        return wanted
    for host in subnet.hosts():
        if str(host) not in used:
            return str(host)
    raise InvalidInput(f"network {net.name} has no free address left")


def mac_address(ip: str) -> str:
    """The container's MAC address on a network: a function of its address there, as
    docker's bridge driver long made it.  Addresses are reused (the lowest free one is
    handed out), and the host's and the other containers' neighbour entries for an
    address outlive its container: with a fresh random MAC, a recreated container that
    got its predecessor's address was unreachable until those entries expired (measured:
    47 s for its published port).  Locally administered (0x02), unicast."""
    return "02:b0:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def attach(root: Path, db: StateDB, row: ContainerRow, intent: ContainerIntent) -> Attached:
    """Give the (recorded, not yet started) container its addresses and set its
    namespace up; recorded in the row before netavark runs, so a crash is undone by the
    container's removal."""
    wanted = list(intent.networks) or [NetworkAttachment(DEFAULT_NETWORK)]
    lock_path = root / "run" / "network.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        options: dict[str, Any] = {
            "container_id": row.id,
            "container_name": row.name,
            "port_mappings": [],
            "networks": {},
            "network_info": {},
            "dns_servers": list(intent.dns) or None,
        }
        addresses: dict[str, str] = {}
        for i, attachment in enumerate(wanted):
            try:
                net = get(db, attachment.name)
            except NotFound:
                if attachment.name != DEFAULT_NETWORK:
                    raise NotFound(
                        f"--network: no such network: {attachment.name}",
                        hint=f"create it with 'bolt network create {attachment.name}'",
                    ) from None
                net = create(root, db, DEFAULT_NETWORK)
            ip = _address(net, attachment.ip, "--ip")
            addresses[net.name] = ip
            options["networks"][net.name] = {
                "static_ips": [ip],
                "static_mac": mac_address(ip),
                "aliases": [row.id[:12], *attachment.aliases],  # netavark adds the name
                "interface_name": f"eth{i}",
            }
            options["network_info"][net.name] = {
                "name": net.name,
                "id": net.id,
                "driver": "bridge",
                "network_interface": net.bridge,
                "subnets": [{"subnet": net.subnet, "gateway": net.gateway}],
                "ipv6_enabled": False,
                "internal": net.internal,
                "dns_enabled": True,
                "ipam_options": {"driver": "host-local"},
                # as docker does: a container on one network cannot reach another's
                "options": {"isolate": "true"},
            }
        ports = []
        for p in intent.ports:
            host_port = p.host_port or _free_port(p.protocol, p.host_ip)
            ports.append(
                {"host_ip": _netavark_host_ip(p.host_ip), "container_port": p.container_port,
                 "host_port": host_port, "range": 1, "protocol": p.protocol}
            )  # fmt: skip
        options["port_mappings"] = ports
        details = {**row.details_dict, "networks": addresses, "ports": ports}
        db.update(row.id, details=json.dumps(details))
    finally:
        os.close(fd)
    answer = netavark.setup_container(
        ContainerDir.of(root, row.id), row.id, options, _config_dir(root)
    )
    servers: list[str] = []
    for status in answer.values():
        servers += [s for s in status.get("dns_server_ips", []) if s not in servers]
    return Attached(
        netns=str(netavark.NETNS_DIR / netavark.netns_name(row.id)),
        ips=list(addresses.values()),
        nameservers=servers,
    )
