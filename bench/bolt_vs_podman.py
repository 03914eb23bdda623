#!/usr/bin/env python3
"""``bolt run --rm`` and ``bolt run -d --network NAME -p ...`` against ``podman run`` with
the same flags, interleaved in one run.

* ``run --rm IMG /bin/true``: Bolt's default network is a private loopback, so podman
  gets ``--network none``;
* ``run -d --network benchnet -p 127.0.0.1:PORT:80 IMG sleep 30``: a user network on
  both sides (netavark + aardvark-dns for both), a published port; the container is
  removed after each timed start (not timed).

podman runs from a private ``--root``/``--runroot``/``--network-config-dir`` with runc
and cgroupfs (its crun fails on hybrid cgroups here) and the ulimits this host needs;
the host's podman configuration is not touched.  Prints medians and the ratios.

Usage (as root): python bench/bolt_vs_podman.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rootfs import busybox_rootfs
from bolt.runtime.linux import unmount_below

BOLT = str(Path(sys.executable).parent / "bolt")
PODMAN_CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])}... failed: {proc.stderr.decode()[-400:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/bolt_vs_podman.py needs root", file=sys.stderr)
        return 4
    work = Path(tempfile.mkdtemp(prefix="bolt-bench-podman-"))
    env = dict(os.environ, BOLT_ROOT=str(work / "bolt-root"))
    (work / "containers.conf").write_text(PODMAN_CONF)
    podman = ["podman", "--root", str(work / "pm-root"), "--runroot", str(work / "pm-run"),
              "--network-config-dir", str(work / "pm-net"), "--runtime", "runc",
              "--cgroup-manager", "cgroupfs"]  # fmt: skip
    penv = dict(os.environ, CONTAINERS_CONF=str(work / "containers.conf"))
    try:
        rootfs = busybox_rootfs(work / "rootfs")
        subprocess.run([BOLT, "image", "import", str(rootfs), "-t", "bench:1"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([BOLT, "network", "create", "benchnet"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run([*podman, "network", "create", "benchnet"], env=penv, check=True,
                       capture_output=True)  # fmt: skip
        return run(args.rounds, rootfs, env, podman, penv)
    finally:
        subprocess.run([BOLT, "rm", "-f", *_ids(env)], env=env, capture_output=True)
        subprocess.run([BOLT, "network", "rm", "benchnet"], env=env, capture_output=True)
        subprocess.run([*podman, "rm", "-af"], env=penv, capture_output=True)
        subprocess.run([*podman, "network", "rm", "-f", "benchnet"], env=penv, capture_output=True)
        unmount_below(work)  # what the runtimes left mounted in the scratch tree
        shutil.rmtree(work, ignore_errors=True)


def _ids(env: dict[str, str]) -> list[str]:
    out = subprocess.run([BOLT, "ps", "-aq"], env=env, capture_output=True, text=True)
    return out.stdout.split()


def run(rounds: int, rootfs: Path, env: dict[str, str], podman: list[str],
        penv: dict[str, str]) -> int:  # fmt: skip
    def bolt_d() -> float:
        t = timed([BOLT, "run", "-d", "--name", "b", "--network", "benchnet",
                   "-p", f"127.0.0.1:{_free_port()}:80", "bench:1", "sleep", "30"], env)  # fmt: skip
        subprocess.run([BOLT, "rm", "-f", "b"], env=env, capture_output=True)
        return t

    def podman_d() -> float:
        t = timed([*podman, "run", "-d", "--name", "p", "--network", "benchnet",
                   "-p", f"127.0.0.1:{_free_port()}:80", "--rootfs", str(rootfs),
                   "sleep", "30"], penv)  # fmt: skip
        subprocess.run([*podman, "rm", "-f", "-t", "0", "p"], env=penv, capture_output=True)
        return t

    contenders = {
        "bolt run --rm": lambda: timed([BOLT, "run", "--rm", "bench:1", "/bin/true"], env),
        "podman run --rm": lambda: timed(
            [*podman, "run", "--rm", "--network", "none", "--rootfs", str(rootfs), "/bin/true"],
            penv,
        ),
        "bolt run -d -p": bolt_d,
        "podman run -d -p": podman_d,
    }
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    for round_no in range(rounds + 1):
        order = list(contenders)
        random.shuffle(order)
        for name in order:
            time.sleep(0.1)
            elapsed = contenders[name]()
            if round_no:  # one warm-up round
                samples[name].append(elapsed)
    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    print(f"{rounds} interleaved rounds, busybox, {os.cpu_count()} CPUs")
    print(f"{'contender':<20}{'median ms':>10}")
    for k in contenders:
        print(f"{k:<20}{med[k]:>10.1f}")
    print()
    print(f"podman / bolt, run --rm:          {med['podman run --rm'] / med['bolt run --rm']:.2f}x")
    print(
        f"podman / bolt, run -d --network -p: {med['podman run -d -p'] / med['bolt run -d -p']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
