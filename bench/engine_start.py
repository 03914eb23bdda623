#!/usr/bin/env python3
"""Per-container start cost through the library: 20 containers run to completion through
one ``bolt.engine.Engine`` in one process, against 20 raw ``crun run`` of the same
bundle shape, measured in one run.

Engine side: ``Engine.run_oneshot(ContainerIntent(image, ["/bin/true"], auto_remove=True))``
(image resolution, state row, overlay mount, config.json, a monitor forked by the
engine's monitor server, the runtime, the exit record and the removal).  Raw side:
``crun run --bundle B`` of the very bundles the Engine makes (``bolt.engine.containers.
prepare``, untimed: overlay root file system, /etc files, network namespace, seccomp,
cgroup), started as Bolt's monitor starts it (posix_spawn, crun's private mount
namespace on hybrid-cgroup hosts), and removed again untimed.  Rounds alternate the two
sides; each run starts after a pause (``--gap``, see bench/bolt_run.py for why).  The
goal: the Engine <= 1.3x raw crun per container.  Beside the wall-clock medians it
prints each side's CPU time (user+sys of the caller, its monitors and the runtime), which
a loaded machine disturbs less, and the load average.

Usage (as root): python bench/engine_start.py [--containers 20] [--gap 0.1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rootfs import busybox_rootfs
from bolt.engine import ContainerIntent, Engine, containers
from bolt.images.store import ImageStore
from bolt.runtime.layout import ContainerDir
from bolt.runtime.linux import unmount_below
from bolt.state.db import StateDB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.1)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/engine_start.py needs root", file=sys.stderr)
        return 4
    work = Path(tempfile.mkdtemp(prefix="bolt-bench-engine-"))
    try:
        return run(work, args.containers, args.gap)
    finally:
        unmount_below(work)  # what the runtimes left mounted in the scratch tree
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, count: int, gap: float) -> int:
    rootfs = busybox_rootfs(work / "rootfs")
    root = work / "bolt-root"
    ImageStore(root).import_path(rootfs, "bench:1", config={"Cmd": ["/bin/true"]})
    intent = ContainerIntent(image="bench:1", command=["/bin/true"], runtime="crun",
                             auto_remove=True)  # fmt: skip
    eng = Engine(root)
    eng.run_oneshot(intent)  # warm: the runtime probe, the image cache, imports
    null = os.open(os.devnull, os.O_RDWR)

    cpu = {"Engine.run_oneshot": 0.0, "crun run": 0.0}  # user+sys seconds per side

    def raw(i: int) -> float:
        db = StateDB(root)
        # the Engine's own bundle, untimed (made afresh: the Engine's spare is its own)
        row, rt, _ = containers.prepare(root, intent, db, use_spare=False)
        try:
            bundle = ContainerDir.of(root, row.id).bundle
            start, before = time.perf_counter(), _own_and_children_cpu()
            pid = rt.spawn("run", "--bundle", str(bundle), row.id, stdio=(null, null, null))
            _, status = os.waitpid(pid, 0)
            elapsed = time.perf_counter() - start
            cpu["crun run"] += _own_and_children_cpu() - before
        finally:
            containers.discard(root, db, row)
            db.close()
        if status != 0:
            raise SystemExit(f"crun run failed ({status})")
        return elapsed

    def engine() -> float:
        start, before = time.perf_counter(), time.process_time()
        code = eng.run_oneshot(intent)
        elapsed = time.perf_counter() - start
        cpu["Engine.run_oneshot"] += time.process_time() - before
        if code != 0:
            raise SystemExit(f"Engine.run_oneshot exited {code}")
        return elapsed

    raw(-1)
    server = eng._monitor_server().pid  # monitors are its children: their CPU is its cutime
    served_before = _process_cpu(server)
    samples: dict[str, list[float]] = {"Engine.run_oneshot": [], "crun run": []}
    for i in range(count):
        for name in list(samples) if i % 2 else list(reversed(samples)):
            time.sleep(gap)
            samples[name].append(engine() if name == "Engine.run_oneshot" else raw(i))
    os.close(null)
    time.sleep(1.5)  # the server reaps its last monitor within a second
    cpu["Engine.run_oneshot"] += _process_cpu(server) - served_before
    leftover = eng.list()
    eng.close()
    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    total = {k: sum(v) * 1000 for k, v in samples.items()}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{count} containers each, /bin/true in busybox, {os.cpu_count()} CPUs, "
          f"{gap * 1000:.0f} ms between runs, one process, load average {load}")  # fmt: skip
    print(f"{'contender':<22}{'median ms':>10}{'total ms':>10}{'CPU ms/run':>12}")
    for k in samples:
        print(f"{k:<22}{med[k]:>10.1f}{total[k]:>10.1f}{cpu[k] * 1000 / count:>12.1f}")
    print(f"\nEngine / raw crun per container: {med['Engine.run_oneshot'] / med['crun run']:.2f}x "
          f"wall (goal <= 1.3x), {cpu['Engine.run_oneshot'] / cpu['crun run']:.2f}x CPU "
          "(user+sys: the caller, its monitors and the runtime)")  # fmt: skip
    if leftover:
        print(f"warning: {len(leftover)} containers left", file=sys.stderr)
    return 0


def _own_and_children_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _process_cpu(pid: int) -> float:
    """A process's user+sys time and that of its reaped children (seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
