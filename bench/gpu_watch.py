#!/usr/bin/env python3
"""CPU cost of monitoring: ``nvctl gpu watch --json`` against gpustat's and nvitop's own
query loops, on the same nvsim GPUs, in one run.

Each contender runs as its own process taking samples back to back (no sleeping), and we
read that process's user+system CPU time.  Two figures per tool:

* whole run: one process taking N samples (default 100), start-up included;
* per 100 samples: the marginal cost, from a run of 10*N samples minus a run of one
  sample (the long run keeps the kernel's CPU-time accounting granularity out of it).

Ratios are tool / nvctl: above 1 means nvctl is cheaper.

    .venv/bin/python bench/gpu_watch.py [--gpus 2] [--samples 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent

GPUSTAT_LOOP = """
import sys, gpustat
for _ in range(int(sys.argv[1])):
    gpustat.new_query()
"""

# nvitop's TUI refresh: a snapshot of every device and of its processes.
NVITOP_LOOP = """
import sys
from nvitop import Device
devices = Device.all()
for _ in range(int(sys.argv[1])):
    for d in devices:
        d.as_snapshot()
        d.processes()
"""


def cpu_of(cmd: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def contenders(n: int) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "nvctl": [
            str(BIN / "nvctl"),
            "gpu",
            "watch",
            "--json",
            "--interval",
            "0",
            "--count",
            str(n),
        ],
        "gpustat": [py, "-c", GPUSTAT_LOOP, str(n)],
        "nvitop": [py, "-c", NVITOP_LOOP, str(n)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    long = 10 * args.samples
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "nvsim"
        nvsim = [str(BIN / "nvsim"), "--state", str(state)]
        subprocess.run([*nvsim, "up", "--gpus", str(args.gpus), "--model", "rtx4090"], check=True)
        try:
            env = dict(os.environ)
            env.update(json.loads(subprocess.check_output([*nvsim, "env", "--format", "json"])))
            subprocess.run([*nvsim, "load", "0", "60"], check=True)
            runs = {n: {k: [] for k in contenders(1)} for n in (1, args.samples, long)}
            for _ in range(args.rounds):  # interleaved, so drift hits everyone alike
                for n, per_tool in runs.items():
                    for name, cmd in contenders(n).items():
                        per_tool[name].append(cpu_of(cmd, env))
        finally:
            subprocess.run([*nvsim, "down"], check=False)

    med = {n: {k: statistics.median(v) for k, v in per.items()} for n, per in runs.items()}
    total = med[args.samples]
    per100 = {k: max(med[long][k] - med[1][k], 1e-9) / (long - 1) * 100 for k in total}
    print(f"{args.gpus} nvsim GPUs, median of {args.rounds} interleaved rounds")
    print(
        f"{'tool':<10}{f'CPU s / {args.samples}-sample run':>26}{'ratio':>8}{'CPU s / 100 samples':>22}{'ratio':>8}"
    )
    for name in total:
        print(
            f"{name:<10}{total[name]:>26.3f}{total[name] / total['nvctl']:>8.2f}"
            f"{per100[name]:>22.4f}{per100[name] / per100['nvctl']:>8.2f}"
        )
    print("ratios are tool / nvctl: above 1.00 means nvctl uses less CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
