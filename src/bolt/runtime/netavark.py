"""The network stack podman uses, driven through its JSON interface: netavark makes the
bridge, the veth pair, the firewall rules (NAT, port forwarding) and aardvark-dns entries
for one container's network namespace, and undoes them.

A container's attachment is written to ``network.json`` in its directory before netavark
is called, so whoever removes the container (the CLI, the engine, or its monitor with
``--rm``) can tear the same configuration down, even after a crash.  Network namespaces
are named ``bolt-<id>``: unique per container whatever Bolt root made them.

Every netavark call on the host runs under one host-wide lock (``HOST_LOCK``, the same
file for every Bolt root): netavark serializes itself only per config directory, and
two calls at once from different roots (or on a network without containers yet) race on
the shared firewall chains ("Chain already exists").

netavark 1.4's iptables driver removes the host-wide ``FORWARD -j NETAVARK_ISOLATION_1``
jump whenever one network's last container leaves, which silently ends the isolation of
every other network on the host.  Each teardown therefore puts the jump back, under the
same lock, while the isolation chain still holds another network's rules.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bolt.errors import BoltError, Unsupported
from bolt.runtime import linux
from bolt.runtime.layout import ContainerDir

NETNS_DIR = Path("/run/netns")
HOST_LOCK = Path("/run/bolt-netavark.lock")
ISOLATION_CHAIN = "NETAVARK_ISOLATION_1"
NET_ADDR_SET = "3"  # addr_assign_type of an address set by the user (include/linux/netdevice.h)
BINARY_DIRS = ("/usr/libexec/podman", "/usr/lib/podman", "/usr/local/libexec/podman")


def binary(name: str) -> str:
    for d in BINARY_DIRS:
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    raise Unsupported(
        f"{name} is not installed", hint="install the netavark and aardvark-dns packages"
    )


def netns_name(cid: str) -> str:
    return f"bolt-{cid[:24]}"


def create_netns(cid: str) -> str:
    """A new, named network namespace, as ``ip netns add`` makes it (``ip netns`` lists
    it); its path.  netavark brings its loopback up."""
    try:
        return linux.add_named_netns(str(NETNS_DIR), netns_name(cid))
    except OSError as exc:
        raise BoltError(f"cannot create network namespace {netns_name(cid)}: {exc}") from exc


def delete_netns(cid: str) -> None:
    with contextlib.suppress(OSError):
        linux.delete_named_netns(str(NETNS_DIR / netns_name(cid)))


def _ip(*args: str, check: bool = True) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise BoltError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    """Held around every netavark call, by every Bolt root on this host."""
    with _flocked(HOST_LOCK):
        yield


def _call(verb: str, netns: str, config: dict[str, Any], config_dir: str) -> dict[str, Any]:
    with host_lock():
        try:
            return _call_unlocked(verb, netns, config, config_dir)
        finally:
            if verb == "teardown":
                restore_isolation_jump()


def restore_isolation_jump() -> bool:
    """Put ``FORWARD -j NETAVARK_ISOLATION_1`` back where netavark inserts it (first) if
    it is gone while the chain still has rules: those belong to bridges that still have
    containers, whichever Bolt root (or podman) made them, as netavark drops a bridge's
    rules with its last container.  Whether it had to (called under ``host_lock``)."""
    if os.environ.get("NETAVARK_FW", "iptables") != "iptables":
        return False
    rules = _iptables("-S")
    if rules is None or f"-A FORWARD -j {ISOLATION_CHAIN}" in rules:
        return False
    if not any(r.startswith(f"-A {ISOLATION_CHAIN} ") for r in rules):
        return False  # no isolated bridge is in use: netavark's own state, nothing to keep
    _iptables("-I", "FORWARD", "1", "-j", ISOLATION_CHAIN)
    return True


def _iptables(*args: str) -> list[str] | None:
    """``iptables -w`` on the filter table (the binary netavark's driver runs, so the same
    backend); its output lines, or None when it failed (no iptables, no such chain)."""
    try:
        proc = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.splitlines() if proc.returncode == 0 else None


def _call_unlocked(
    verb: str, netns: str, config: dict[str, Any], config_dir: str
) -> dict[str, Any]:
    proc = subprocess.run(
        [
            binary("netavark"),
            "--config",
            config_dir,
            "--aardvark-binary",
            binary("aardvark-dns"),
            verb,
            netns,
        ],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NETAVARK_FW": os.environ.get("NETAVARK_FW", "iptables")},
    )
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip()
        try:
            message = json.loads(message).get("error", message)
        except (ValueError, AttributeError):
            pass
        raise BoltError(f"netavark {verb} failed: {message}")
    if verb != "setup" or not proc.stdout.strip():
        return {}
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def setup_container(
    cdir: ContainerDir, cid: str, config: dict[str, Any], config_dir: str
) -> dict[str, Any]:
    """Create the namespace and apply ``config`` (netavark's network options) to it;
    netavark's answer (interfaces, addresses, DNS servers)."""
    netns = str(NETNS_DIR / netns_name(cid))
    record = {"netns": netns, "config_dir": config_dir, "options": config}
    cdir.path.mkdir(parents=True, exist_ok=True)
    tmp = cdir.path / "network.json.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(cdir.network_record)
    os.makedirs(config_dir, exist_ok=True)
    create_netns(cid)
    with host_lock():
        answer = _call_unlocked("setup", netns, config, config_dir)
        for info in config.get("network_info", {}).values():
            pin_bridge_address(str(info["network_interface"]))
    return answer


def pin_bridge_address(bridge: str) -> None:
    """Keep the bridge's MAC address from changing as containers come and go.  A bridge
    whose address was never set takes the lowest address of its ports, so removing one
    container can change it, and every other container's neighbour entry for the gateway
    then names an address nobody has, until it expires (tens of seconds).  Setting the
    address once, to the one it has, makes the kernel keep it (netavark 1.9 does the same
    when it creates a bridge; 1.4 does not)."""
    sysfs = Path("/sys/class/net") / bridge
    try:
        if sysfs.joinpath("addr_assign_type").read_text().strip() == NET_ADDR_SET:
            return
        address = sysfs.joinpath("address").read_text().strip()
    except OSError:
        return  # no such bridge (netavark made none): nothing to keep
    _ip("link", "set", "dev", bridge, "address", address, check=False)


def teardown_container(cdir: ContainerDir) -> None:
    """Undo ``setup_container`` (nothing when the container had no bridge network)."""
    path = cdir.network_record
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    netns = str(record["netns"])
    try:
        if os.path.exists(netns):
            _call("teardown", netns, record["options"], str(record["config_dir"]))
    finally:
        cid = cdir.path.name
        delete_netns(cid)
        path.unlink(missing_ok=True)


def rename_container(cdir: ContainerDir, new_name: str) -> None:
    """Make aardvark-dns answer for ``new_name`` instead of the container's old name on
    every network it is attached to (its aliases stay).  netavark has no call for this,
    so its DNS entry is rewritten as netavark writes it (one line per container:
    ``id ipv4s ipv6s name,aliases...``), under netavark's own lock on those files, and
    aardvark-dns is told to reload (SIGHUP), as netavark does after each change."""
    try:
        record = json.loads(cdir.network_record.read_text())
    except (OSError, ValueError):
        return  # no bridge network: no DNS name
    options = record["options"]
    old, cid = options.get("container_name"), options["container_id"]
    config_dir = Path(record["config_dir"])
    dns_dir = config_dir / "aardvark-dns"
    with host_lock(), _flocked(config_dir / "aardvark.lock"):
        for network in options.get("networks", {}):
            _rename_entry(dns_dir / network, cid, old, new_name)
        _replace_text(cdir.network_record, json.dumps(
            {**record, "options": {**options, "container_name": new_name}}
        ))  # fmt: skip
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((dns_dir / "aardvark.pid").read_text().strip()), signal.SIGHUP)


def _rename_entry(path: Path, cid: str, old: str | None, new_name: str) -> None:
    try:
        lines = path.read_text().split("\n")
    except FileNotFoundError:
        return
    for i, line in enumerate(lines[1:], start=1):  # the first line: the gateways
        fields = line.split(" ")
        if len(fields) == 4 and fields[0] == cid:
            names = fields[3].split(",")
            if names and names[0] == old:
                names = names[1:]
            fields[3] = ",".join([new_name, *names])
            lines[i] = " ".join(fields)
    _replace_text(path, "\n".join(lines))


def _replace_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".bolt-tmp")
    tmp.write_text(text)
    tmp.replace(path)


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
