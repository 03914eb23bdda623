#!/usr/bin/env python3
"""``bolt surge up -d`` / ``down`` against ``podman-compose up -d`` / ``down``, in one run.

The same project both ways: N busybox services on the project's bridge network, each a
shell that exits at once on SIGTERM (so ``down`` measures the tool, not a 10 s stop
timeout), every fourth depending on the one before it (dependency order is part of the
work).  Bolt reads a Boltfile.toml; podman-compose (Debian's package) the equivalent
docker-compose.yml, with podman in a private storage root, runc and cgroupfs as this host
needs.  Both tools return from ``up -d`` once every container has started; the script then
checks that all N are running.  Rounds alternate which tool goes first.

Prints the median of each, per size, with the CPU time (user + sys) of each tool's process
tree that the tool waits for (containers and their monitors are not in it), the load
average while it ran, and the ratios podman-compose / bolt (goal: >= 5 for ``up`` at 20
services).

Usage (as root): python bench/surge_up.py [--sizes 4,20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rootfs import busybox_rootfs
from bolt.runtime.linux import unmount_below

BOLT = str(Path(sys.executable).parent / "bolt")
PODMAN_CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
SERVICE_CMD = "trap 'exit 0' TERM; while true; do sleep 1; done"


def project(n: int, name: str) -> tuple[str, str]:
    """The Boltfile and the compose file of one N-service project."""
    toml = [f'project = "{name}"\n']
    yaml = ["services:\n"]
    for i in range(n):
        dep = f"s{i - 1}" if i % 4 == 3 else None
        toml.append(f'[services.s{i}]\nimage = "bench-busybox:1"\n')
        toml.append(f'command = ["sh", "-c", "{SERVICE_CMD}"]\n')
        yaml.append(f"  s{i}:\n    image: localhost/bench-busybox:1\n")
        yaml.append(f'    command: ["sh", "-c", "{SERVICE_CMD}"]\n')
        if dep:
            toml.append(f'depends_on = ["{dep}"]\n')
            yaml.append(f"    depends_on: [{dep}]\n")
    return "".join(toml), "".join(yaml)


LOADS: list[float] = []
CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], env: dict[str, str], cwd: Path, tool: str = "") -> float:
    """Wall seconds of ``cmd``; its CPU seconds go to ``CPU[tool]``, the load to ``LOADS``."""
    LOADS.append(os.getloadavg()[0])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    CPU.setdefault(tool, []).append(used)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
        )
    return elapsed


def running_bolt(env: dict[str, str], cwd: Path) -> int:
    out = subprocess.run(
        [BOLT, "surge", "ps", "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(1 for c in json.loads(out) if c["status"] == "running")


def running_podman(podman: list[str], name: str) -> int:
    out = subprocess.run(
        [
            *podman,
            "ps",
            "--filter",
            f"label=io.podman.compose.project={name}",
            "--format",
            "{{.Names}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,20")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    for tool in ("podman", "podman-compose", "runc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (./project.sh setup installs it)")
    # bytecode compiled first, as an installed package has it (the environment here may
    # say PYTHONDONTWRITEBYTECODE, and pydantic's own modules are compiled the same way)
    import pydantic

    import bolt

    for package in (bolt, pydantic):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="surge-bench-"))
    try:
        run_all(work, [int(s) for s in args.sizes.split(",")], args.rounds)
    finally:
        # podman-compose's down keeps the network, and a failed round may leave containers:
        # everything in the private podman root goes before the root itself
        podman = ["podman", *podman_args(work)]
        subprocess.run([*podman, "rm", "-af", "-t", "0"], capture_output=True)
        subprocess.run([*podman, "network", "prune", "-f"], capture_output=True)
        env = dict(os.environ, BOLT_ROOT=str(work / "bolt-root"))
        for proj in work.glob("p*"):
            subprocess.run(
                [BOLT, "surge", "down", "-t", "0"], env=env, cwd=proj, capture_output=True
            )
        # podman keeps its storage (and any container it could not remove) mounted
        subprocess.run([*podman, "system", "reset", "-f"], capture_output=True)
        unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)


def podman_args(work: Path) -> list[str]:
    return [
        "--root", str(work / "pm-root"), "--runroot", str(work / "pm-run"),
        "--runtime", "runc", "--cgroup-manager", "cgroupfs",
    ]  # fmt: skip


def run_all(work: Path, sizes: list[int], rounds: int) -> None:
    rootfs = busybox_rootfs(work / "rootfs")
    env = dict(os.environ, BOLT_ROOT=str(work / "bolt-root"))
    subprocess.run(
        [BOLT, "image", "import", str(rootfs), "-t", "bench-busybox:1"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (work / "containers.conf").write_text(PODMAN_CONF)
    os.environ["CONTAINERS_CONF"] = env["CONTAINERS_CONF"] = str(work / "containers.conf")
    podman_global = podman_args(work)
    podman = ["podman", *podman_global]
    with tarfile.open(work / "rootfs.tar", "w") as tar:
        tar.add(rootfs, arcname=".")
    subprocess.run(
        [*podman, "import", str(work / "rootfs.tar"), "localhost/bench-busybox:1"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tag = str(os.getpid())
    print(f"{'services':>8}  {'tool':<16} {'up -d (s)':>10} {'down (s)':>10}   (medians)")
    ratios: dict[int, tuple[float, float]] = {}
    for n in sizes:
        name = f"sb{tag}n{n}"
        proj = work / f"p{n}"
        proj.mkdir()
        boltfile, compose = project(n, name)
        (proj / "Boltfile.toml").write_text(boltfile)
        (proj / "docker-compose.yml").write_text(compose)
        pc = ["podman-compose", "--podman-args", " ".join(podman_global), "-p", name]
        times: dict[str, dict[str, list[float]]] = {
            "bolt surge": {"up": [], "down": []},
            "podman-compose": {"up": [], "down": []},
        }
        for r in range(rounds):
            order = ["bolt surge", "podman-compose"]
            if r % 2:
                order.reverse()
            for tool in order:
                if tool == "bolt surge":
                    up = timed([BOLT, "surge", "up", "-d"], env, proj, f"{n} bolt up")
                    times[tool]["up"].append(up)
                    running = running_bolt(env, proj)
                    times[tool]["down"].append(timed([BOLT, "surge", "down", "-t", "5"], env, proj))
                else:
                    times[tool]["up"].append(timed([*pc, "up", "-d"], env, proj, f"{n} pc up"))
                    running = running_podman(podman, name)
                    times[tool]["down"].append(timed([*pc, "down", "-t", "5"], env, proj))
                if running != n:  # podman-compose ignores a failed `podman run`: say so
                    print(f"warning: {tool}, round {r + 1}: {running} of {n} running after up -d")
        med = {
            t: (statistics.median(v["up"]), statistics.median(v["down"])) for t, v in times.items()
        }
        for tool, (u, d) in med.items():
            key = f"{n} {'bolt' if tool == 'bolt surge' else 'pc'} up"
            cpu = statistics.median(CPU[key])
            print(f"{n:>8}  {tool:<16} {u:>10.2f} {d:>10.2f}   up CPU {cpu:.2f} s")
        ratios[n] = (
            med["podman-compose"][0] / med["bolt surge"][0],
            med["podman-compose"][1] / med["bolt surge"][1],
        )
    print()
    print(
        f"load average (1 min) at each command: median {statistics.median(LOADS):.1f}, "
        f"min {min(LOADS):.1f}, max {max(LOADS):.1f} ({os.cpu_count()} CPUs)"
    )
    for n, (u, d) in ratios.items():
        print(f"{n:>3} services: podman-compose / bolt surge = {u:.1f}x (up -d), {d:.1f}x (down)")
    if 20 in ratios:
        verdict = "met" if ratios[20][0] >= 5 else "NOT met"
        print(f"goal (up >= 5x faster at 20 services): {verdict}")


if __name__ == "__main__":
    main()
