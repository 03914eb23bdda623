#!/usr/bin/env python3
"""Time to commit a GPU change across 8 nvsim GPUs: ``nvctl overclock apply --no-confirm``
and ``nvctl snapshot restore``, against the same NVML writes done raw through pynvml in one
process (no validation, no read-back, no journal, no stability watch), in one run.

Each contender is a fresh process, timed wall-clock from start to exit.  nvctl's stability
window is set short (``--window``) and printed beside the figures; "overhead" is nvctl's
time minus that window — the cost of validation, the durable journal, read-back, the
event set and the commit.  Ratios are nvctl overhead / raw pynvml.

    .venv/bin/python bench/gpu_control.py [--gpus 8] [--rounds 5] [--window 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

# The peer: what a bare script does to apply the same offsets (two writes per GPU).
RAW_OFFSETS = """
import ctypes, sys, pynvml
gpc, mem = int(sys.argv[1]), int(sys.argv[2])
pynvml.nvmlInit()
fn = pynvml._nvmlGetFunctionPointer("nvmlDeviceSetClockOffsets")
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    for kind, value in ((pynvml.NVML_CLOCK_GRAPHICS, gpc), (pynvml.NVML_CLOCK_MEM, mem)):
        info = pynvml.c_nvmlClockOffset_t()
        info.version = pynvml.nvmlClockOffset_v1
        info.type, info.pstate, info.clockOffsetMHz = kind, 0, value
        assert fn(h, ctypes.byref(info)) == 0
pynvml.nvmlShutdown()
"""

# The peer of a restore: the same fields nvctl has to put back (offsets, power, fans).
RAW_RESTORE = """
import ctypes, pynvml
pynvml.nvmlInit()
fn = pynvml._nvmlGetFunctionPointer("nvmlDeviceSetClockOffsets")
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    for kind in (pynvml.NVML_CLOCK_GRAPHICS, pynvml.NVML_CLOCK_MEM):
        info = pynvml.c_nvmlClockOffset_t()
        info.version = pynvml.nvmlClockOffset_v1
        info.type, info.pstate, info.clockOffsetMHz = kind, 0, 0
        assert fn(h, ctypes.byref(info)) == 0
    pynvml.nvmlDeviceSetPowerManagementLimit(h, pynvml.nvmlDeviceGetPowerManagementDefaultLimit(h))
    for fan in range(pynvml.nvmlDeviceGetNumFans(h)):
        pynvml.nvmlDeviceSetDefaultFanSpeed_v2(h, fan)
pynvml.nvmlShutdown()
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({done.returncode}): {done.stderr}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--window", type=float, default=0.2)
    args = ap.parse_args()
    nvctl, py, window = str(BIN / "nvctl"), sys.executable, str(args.window)
    times: dict[str, list[float]] = {
        k: [] for k in ("apply", "raw apply", "restore", "raw restore")
    }

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "nvsim"
        nvsim = [str(BIN / "nvsim"), "--state", str(state)]
        subprocess.run(
            [*nvsim, "up", "--gpus", str(args.gpus), "--model", "rtx4090"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        try:
            env = dict(os.environ)
            env.update(json.loads(subprocess.check_output([*nvsim, "env", "--format", "json"])))
            env["NVCTL_STATE_DIR"] = str(Path(tmp) / "nvctl-state")
            env["NVCTL_CONFIG_DIR"] = str(Path(tmp) / "nvctl-config")
            subprocess.run(
                [nvctl, "snapshot", "create", "stock"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            change = [nvctl, "power", "limit", "--watts", "400", "--no-confirm", "--window", "0"]
            fans = [nvctl, "fan", "set", "all", "70", "--no-confirm", "--window", "0"]
            for r in range(args.rounds):  # interleaved, so drift hits everyone alike
                gpc, mem = str(30 + 15 * (r % 4)), str(100 + 50 * r)
                times["apply"].append(
                    timed(
                        [nvctl, "overclock", "apply", "--gpu-offset", gpc, "--memory-offset", mem,
                         "--no-confirm", "--window", window],
                        env,
                    )
                )  # fmt: skip
                times["raw apply"].append(timed([py, "-c", RAW_OFFSETS, gpc, mem], env))
                timed(change, env)
                timed(fans, env)
                times["restore"].append(
                    timed(
                        [nvctl, "snapshot", "restore", "stock", "--no-confirm", "--window", window],
                        env,
                    )
                )
                subprocess.run([nvctl, "overclock", "apply", "--gpu-offset", gpc, "--no-confirm",
                                "--window", "0"], env=env, check=True, capture_output=True)  # fmt: skip
                timed(change, env)
                timed(fans, env)
                times["raw restore"].append(timed([py, "-c", RAW_RESTORE], env))
                subprocess.run([nvctl, "snapshot", "restore", "stock", "--no-confirm", "--window", "0"],
                               env=env, check=True, capture_output=True)  # fmt: skip
        finally:
            subprocess.run([*nvsim, "down"], check=False, stdout=subprocess.DEVNULL)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{args.gpus} nvsim GPUs, median of {args.rounds} rounds, stability window {args.window:g} s"
    )
    print(f"{'operation':<26}{'nvctl s':>10}{'overhead s':>12}{'raw pynvml s':>14}{'ratio':>8}")
    for op in ("apply", "restore"):
        overhead = med[op] - args.window
        print(
            f"{'overclock apply' if op == 'apply' else 'snapshot restore':<26}{med[op]:>10.3f}"
            f"{overhead:>12.3f}{med['raw ' + op]:>14.3f}{overhead / med['raw ' + op]:>8.2f}"
        )
    print(
        "overhead = nvctl time - window; ratio = overhead / raw pynvml (both whole processes, "
        "interpreter start included)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
