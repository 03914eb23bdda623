"""Resource use of running containers, read from their cgroups (v1 or v2) and, for the
network, from ``/proc/<init>/net/dev`` inside their namespace; and their processes."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import NamedTuple

from bolt.runtime.cgroups import CGROUP_BASE
from bolt.state.db import ContainerRow


class Sample(NamedTuple):
    id: str
    name: str
    cpu_seconds: float
    memory: int
    memory_limit: int | None
    pids: int
    net_rx: int
    net_tx: int
    taken: float  # monotonic


class Stats(NamedTuple):
    id: str
    name: str
    cpu_percent: float
    cpu_seconds: float
    memory: int
    memory_limit: int | None
    pids: int
    net_rx: int
    net_tx: int


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v1(controller: str, cid: str, name: str) -> str | None:
    return _read(Path(CGROUP_BASE) / controller / "bolt" / cid / name)


def _v2(cid: str, name: str) -> str | None:
    for base in (Path(CGROUP_BASE), Path(CGROUP_BASE) / "unified"):
        text = _read(base / "bolt" / cid / name)
        if text is not None:
            return text
    return None


def _net(pid: int | None) -> tuple[int, int]:
    rx = tx = 0
    text = _read(Path(f"/proc/{pid}/net/dev")) if pid else None
    for line in (text or "").splitlines()[2:]:
        iface, _, data = line.partition(":")
        fields = data.split()
        if iface.strip() != "lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def sample(row: ContainerRow) -> Sample:
    cid = row.id
    cpu = _v1("cpuacct", cid, "cpuacct.usage") or _v1("cpu,cpuacct", cid, "cpuacct.usage")
    if cpu is not None:
        cpu_seconds = int(cpu) / 1e9
    else:
        stat = dict(line.split() for line in (_v2(cid, "cpu.stat") or "").splitlines() if line)
        cpu_seconds = int(stat.get("usage_usec", 0)) / 1e6
    memory = _v1("memory", cid, "memory.usage_in_bytes") or _v2(cid, "memory.current") or "0"
    limit = _v1("memory", cid, "memory.limit_in_bytes") or _v2(cid, "memory.max")
    limit_value = int(limit) if limit and limit.isdigit() and int(limit) < 1 << 62 else None
    pids = _v1("pids", cid, "pids.current") or _v2(cid, "pids.current") or "0"
    rx, tx = _net(row.pid)
    return Sample(cid, row.name, cpu_seconds, int(memory), limit_value, int(pids), rx, tx,
                  time.monotonic())  # fmt: skip


def between(first: Sample, second: Sample) -> Stats:
    elapsed = max(1e-6, second.taken - first.taken)
    percent = 100.0 * (second.cpu_seconds - first.cpu_seconds) / elapsed
    return Stats(second.id, second.name, round(max(0.0, percent), 2), second.cpu_seconds,
                 second.memory, second.memory_limit, second.pids, second.net_rx, second.net_tx)  # fmt: skip


def processes(row: ContainerRow) -> list[int]:
    """The pids in the container's cgroup."""
    for rel in ("pids", "memory", "cpuacct", "unified", ""):
        text = _read(Path(CGROUP_BASE) / rel / "bolt" / row.id / "cgroup.procs")
        if text is not None:
            return sorted(int(p) for p in text.split())
    return []


def process_row(pid: int) -> dict[str, object] | None:
    """pid, uid, state, cpu time and command line of one process."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
        uid = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("Uid:"))
        ticks = int(stat[11]) + int(stat[12])
        import os

        cmd = (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
            .strip()
        )
        return {"pid": pid, "uid": uid, "state": stat[0],
                "cpu_seconds": ticks / os.sysconf("SC_CLK_TCK"), "command": cmd}  # fmt: skip
    return None
