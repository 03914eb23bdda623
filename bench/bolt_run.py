#!/usr/bin/env python3
"""Start-up cost of ``bolt run --rm IMG /bin/true`` against its peers, measured in one run.

Contenders, interleaved round by round in a shuffled order:

* ``bolt run --rm`` with crun (``auto`` here) and with ``--runtime runc``, and
  ``bolt run -d --rm`` (crun), which returns once the container has started;
* raw ``crun run`` and raw ``runc run`` of a bundle with the same root file system and the
  ``config.json`` Bolt's generator writes for the same request, started the way Bolt's
  monitor starts them (``OciRuntime.spawn``: posix_spawn, crun in the private mount
  namespace it needs on hybrid-cgroup hosts), so no launcher cost is added to them;
* ``podman run --rm --rootfs`` of the same root file system (``--network none`` to match
  Bolt's loopback-only default, runc because podman's crun fails on hybrid cgroups, and a
  private CONTAINERS_CONF with the ulimits this host needs; nothing in /etc is changed).

Bolt's bytecode is compiled first, as an installed package would be.  Each run starts
after a pause (``--gap``, default 0.1 s), so every contender meets the kernel in the same
idle state: on cgroup v1 the first task migration after a quiet spell waits for an RCU
grace period (~15 ms here), and one that follows another container start within a grace
period does not, which would favour whichever contender runs right after another.
``--gap 0`` measures back-to-back starts instead.  Prints the median and 90th
percentile of each contender and the ratios the goals are stated in: bolt <= 1.5x the raw
runtime it uses, and podman >= 5x bolt.

Usage (as root): python bench/bolt_run.py [--rounds N] [--gap SECONDS]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bolt
from _rootfs import busybox_rootfs
from bolt.runtime.driver import make_runtime
from bolt.runtime.linux import unmount_below
from bolt.runtime.ocispec import generate
from bolt.runtime.spec import ContainerSpec, validate

BOLT = str(Path(sys.executable).parent / "bolt")
PODMAN_CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:4])}... failed ({proc.returncode}): {proc.stderr.decode()[-400:]}"
        )
    return elapsed


def raw_bundle(work: Path, rootfs: Path) -> Path:
    bundle = work / "bundle"
    bundle.mkdir()
    spec = validate(
        ContainerSpec(
            id="0" * 64,
            name="bench",
            rootfs=str(rootfs),
            args=("/bin/true",),
            env=("PATH=/bin",),
            cgroups_path="/bolt-bench/raw",
        )
    )
    (bundle / "config.json").write_text(json.dumps(generate(spec)))
    return bundle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.1, help="pause before each run (s)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/bolt_run.py needs root", file=sys.stderr)
        return 4
    for tool in ("crun", "runc", "podman", "busybox"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (./project.sh setup installs it)", file=sys.stderr)
            return 3
    compileall.compile_dir(str(Path(bolt.__file__).parent), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="bolt-bench-"))
    try:
        return run(work, args.rounds, args.gap)
    finally:
        unmount_below(work)  # what the runtimes left mounted in the scratch tree
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, rounds: int, gap: float) -> int:
    rootfs = busybox_rootfs(work / "rootfs")
    env = dict(os.environ, BOLT_ROOT=str(work / "bolt-root"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [BOLT, "image", "import", str(rootfs), "-t", "bench:1"],
        env=env,
        check=True,
        capture_output=True,
    )
    bundle = raw_bundle(work, rootfs)
    (work / "containers.conf").write_text(PODMAN_CONF)
    podman_env = dict(os.environ, CONTAINERS_CONF=str(work / "containers.conf"))
    counter = iter(range(1_000_000))

    def raw(name: str) -> float:
        rt = make_runtime(name, work)._replace(state_root=str(work / f"state-{name}"))
        errors = work / f"{name}.err"
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(errors, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        start = time.perf_counter()
        pid = rt.spawn(
            "run", "--bundle", str(bundle), f"bench-{name}-{next(counter)}", stdio=(null, null, err)
        )
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
        os.close(null)
        os.close(err)
        if status != 0:
            raise SystemExit(f"{name} run failed ({status}): {errors.read_text()[-400:]}")
        return elapsed

    contenders: dict[str, Callable[[], float]] = {
        "bolt run (crun)": lambda: timed([BOLT, "run", "--rm", "bench:1", "/bin/true"], env),
        "bolt run (runc)": lambda: timed(
            [BOLT, "run", "--rm", "--runtime", "runc", "bench:1", "/bin/true"], env
        ),
        "bolt run -d (crun)": lambda: timed(
            [BOLT, "run", "-d", "--rm", "bench:1", "/bin/true"], env
        ),
        "crun run": lambda: raw("crun"),
        "runc run": lambda: raw("runc"),
        "podman run (runc)": lambda: timed(
            [
                "podman",
                "--root",
                str(work / "pm-root"),
                "--runroot",
                str(work / "pm-run"),
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "run",
                "--rm",
                "--network",
                "none",
                "--rootfs",
                str(rootfs),
                "/bin/true",
            ],
            podman_env,
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for round_no in range(rounds + 2):
        order = list(contenders)
        random.shuffle(order)
        for name in order:
            time.sleep(gap)
            elapsed = contenders[name]()
            if round_no >= 2:  # two warm-up rounds
                samples[name].append(elapsed)
    med = {name: statistics.median(xs) * 1000 for name, xs in samples.items()}
    p90 = {name: sorted(xs)[int(len(xs) * 0.9) - 1] * 1000 for name, xs in samples.items()}
    print(
        f"{rounds} interleaved rounds, /bin/true in busybox, {os.cpu_count()} CPUs, "
        f"{gap * 1000:.0f} ms between runs"
    )
    print(f"{'contender':<20}{'median ms':>10}{'p90 ms':>10}")
    for name in contenders:
        print(f"{name:<20}{med[name]:>10.1f}{p90[name]:>10.1f}")
    print()
    ratios = {
        "bolt(crun) / crun run": med["bolt run (crun)"] / med["crun run"],
        "bolt(runc) / runc run": med["bolt run (runc)"] / med["runc run"],
        "podman / bolt(crun)": med["podman run (runc)"] / med["bolt run (crun)"],
        "podman / bolt(runc)": med["podman run (runc)"] / med["bolt run (runc)"],
        "podman / bolt -d(crun)": med["podman run (runc)"] / med["bolt run -d (crun)"],
    }
    for label, value in ratios.items():
        print(f"{label:<24}{value:>6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
