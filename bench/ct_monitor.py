#!/usr/bin/env python3
"""CPU cost of watching GPUs live: ``nvctl ct monitor`` against nvitop and gpustat, on the
same nvsim GPUs, in one run.

* full screen: ``nvctl ct monitor`` (Textual, fed by an agent's ``/api/stream``, one
  sample a second) against ``nvitop --monitor --interval 1``, each in its own pseudo
  terminal of the same size;
* text: ``nvctl ct monitor --plain`` against ``gpustat --interval 1``, stdout a pipe.

Each viewer runs for ``--seconds`` (default 20) after a warm-up of 3 s; we read its
user+system CPU time from /proc at the start and at the end of that window, so start-up is
left out.  The agent's own CPU over the window is reported too (it samples whether or not
anyone watches; the stream adds the fan-out).  Rounds interleave the contenders; medians
are printed, with the ratio peer / nvctl (above 1: nvctl is cheaper) and the load average.

    .venv/bin/python bench/ct_monitor.py [--gpus 2] [--seconds 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
WARMUP_S = 3.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def run_viewer(argv: list[str], env: dict[str, str], tty: bool, seconds: float) -> float:
    """CPU seconds the viewer spent per second of watching."""
    if tty:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        proc = subprocess.Popen(argv, env=dict(env, TERM="xterm-256color"), stdin=slave,
                                stdout=slave, stderr=slave, start_new_session=True)  # fmt: skip
        os.close(slave)
        reader = threading.Thread(target=drain, args=(master,), daemon=True)
    else:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        reader = threading.Thread(target=drain, args=(proc.stdout.fileno(),), daemon=True)
    reader.start()
    try:
        time.sleep(WARMUP_S)
        assert proc.poll() is None, f"{argv[0]} exited early ({proc.returncode})"
        began = cpu_s(proc.pid)
        time.sleep(seconds)
        assert proc.poll() is None, f"{argv[0]} exited early ({proc.returncode})"
        used = cpu_s(proc.pid) - began
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if tty else proc.kill()
        proc.wait()
        if tty:
            os.close(master)
    return used / seconds


def start_agent(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([str(BIN / "nvctl"), "agent", "serve", "--listen", "127.0.0.1:0",
                             "--http", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if m := re.search(r"HTTPS on [\d.]+:(\d+)", line):
                threading.Thread(target=drain, args=(proc.stdout.fileno(),), daemon=True).start()
                return proc, int(m[1])
    raise SystemExit("the agent did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ct-monitor-"))
    nvsim = [str(BIN / "nvsim"), "--state", str(tmp / "nvsim")]
    subprocess.run([*nvsim, "up", "--gpus", str(args.gpus), "--model", "rtx4090"], check=True,
                   capture_output=True)  # fmt: skip
    env = dict(os.environ)
    env.update(json.loads(subprocess.run([*nvsim, "env", "--format", "json"], check=True,
                                         capture_output=True, text=True).stdout))  # fmt: skip
    env["NVCTL_STATE_DIR"], env["NVCTL_CONFIG_DIR"] = str(tmp / "state"), str(tmp / "config")
    agent, port = start_agent(env)
    try:
        made = subprocess.run([str(BIN / "nvctl"), "agent", "token", "create", "bench",
                               "--role", "viewer"], env=env, capture_output=True, text=True,
                              check=True)  # fmt: skip
        viewer_env = dict(env, NVCTL_TOKEN=made.stdout.strip().splitlines()[-1])
        url = f"https://127.0.0.1:{port}"
        monitor = [str(BIN / "nvctl"), "ct", "monitor", "--url", url]
        cases = {
            "full screen: nvctl ct monitor": (monitor, True),
            "full screen: nvitop -m -i 1": ([str(BIN / "nvitop"), "-m", "--interval", "1"], True),
            "text: nvctl ct monitor --plain": ([*monitor, "--plain"], False),
            "text: gpustat -i 1": ([str(BIN / "gpustat"), "--interval", "1"], False),
        }
        cpu: dict[str, list[float]] = {k: [] for k in cases}
        agent_cpu: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.rounds):
            for name, (argv, tty) in cases.items():
                a0, t0 = cpu_s(agent.pid), time.monotonic()
                cpu[name].append(run_viewer(argv, viewer_env, tty, args.seconds))
                agent_cpu[name].append((cpu_s(agent.pid) - a0) / (time.monotonic() - t0))
        med = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"{args.gpus} nvsim GPUs, {args.seconds:g} s per viewer, {args.rounds} rounds; "
              f"CPU per second of watching (median), agent's CPU alongside")  # fmt: skip
        for name in cases:
            print(f"  {name:34s} {1000 * med[name]:6.1f} ms/s   "
                  f"(agent {1000 * statistics.median(agent_cpu[name]):5.1f} ms/s)")  # fmt: skip
        full = med["full screen: nvitop -m -i 1"] / med["full screen: nvctl ct monitor"]
        text = med["text: gpustat -i 1"] / med["text: nvctl ct monitor --plain"]
        print(f"ratio nvitop / nvctl ct monitor (full screen): {full:.2f}")
        print(f"ratio gpustat / nvctl ct monitor --plain (text): {text:.2f}")
        print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        subprocess.run([*nvsim, "down"], capture_output=True)


if __name__ == "__main__":
    main()
