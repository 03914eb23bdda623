#!/usr/bin/env python3
"""A TCP service through a tunnel: ``nvctl remote forward`` (the agent's QUIC listener)
against ``ssh -N -L`` (Debian's openssh on loopback, key auth), in one run, to the same
local HTTP server: the latency of a small GET on a fresh TCP connection (a new tunnel
stream / a new ssh channel each time) and the time of a large download.  Rounds alternate
between the two, medians are shown, with the CPU time (user+sys) each side's processes
spent (agent + forwarder; sshd + ssh).

    .venv/bin/python bench/tunnel.py [--gets 40] [--mb 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from remote import BIN, NVCTL, start_agent, start_sshd


def cpu_s(pid: int) -> float:
    """user+sys of a process and its reaped children, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[float, int]:
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    size = len(conn.getresponse().read())
    conn.close()
    return time.perf_counter() - began, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gets", type=int, default=40)
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tunnel-"))
    www = tmp / "www"
    www.mkdir()
    (www / "small").write_bytes(b"x" * 512)
    (www / "big").write_bytes(os.urandom(a.mb << 20))

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, directory=str(www), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    web = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    web_port = web.server_address[1]

    env = dict(os.environ, NVSIM_STATE=str(tmp / "nvsim"))
    subprocess.run([str(BIN / "nvsim"), "up", "--gpus", "1"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    env.update(json.loads(subprocess.run([str(BIN / "nvsim"), "env", "--format", "json"],
                                         env=env, check=True, capture_output=True,
                                         text=True).stdout))  # fmt: skip
    agent_env = dict(env, NVCTL_STATE_DIR=str(tmp / "agent"), NVCTL_CONFIG_DIR=str(tmp / "acfg"))
    client_env = dict(env, NVCTL_STATE_DIR=str(tmp / "client"), NVCTL_CONFIG_DIR=str(tmp / "ccfg"))
    procs: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    try:
        agent, qport, _ = start_agent(agent_env, False, ("--tunnel-map", "web=127.0.0.1"))
        procs.append(agent)
        pub = subprocess.run([NVCTL, "remote", "keygen"], env=client_env, check=True,
                             capture_output=True, text=True).stdout.splitlines()[-1]  # fmt: skip
        subprocess.run([NVCTL, "agent", "authorize", pub, "--role", "operator"], env=agent_env,
                       check=True, capture_output=True)  # fmt: skip
        fwd = subprocess.Popen([NVCTL, "remote", "forward", "0", f"bolt://web:{web_port}",
                                "--remote", f"127.0.0.1:{qport}", "--accept-new-host"],
                               env=client_env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        procs.append(fwd)
        assert fwd.stdout is not None
        select.select([fwd.stdout], [], [], 60)
        m = re.search(r"127\.0\.0\.1:(\d+) ->", fwd.stdout.readline())
        if m is None:
            raise SystemExit("nvctl remote forward did not start")
        ours_port = int(m[1])

        sshd, sport, sdir = start_sshd(tmp)
        procs.append(sshd)
        ssh_port = free_port()
        ssh = subprocess.Popen(["ssh", "-N", "-p", str(sport), "-i", str(sdir / "id"),
                                "-o", "StrictHostKeyChecking=no", "-o",
                                f"UserKnownHostsFile={sdir / 'known'}", "-o", "BatchMode=yes",
                                "-o", "ExitOnForwardFailure=yes",
                                "-L", f"127.0.0.1:{ssh_port}:127.0.0.1:{web_port}",
                                "root@127.0.0.1"])  # fmt: skip
        procs.append(ssh)
        for _ in range(100):
            try:
                get(ssh_port, "/small")
                get(ours_port, "/small")
                break
            except OSError:
                time.sleep(0.1)

        sides = {"nvctl remote forward": ours_port, "ssh -L": ssh_port}
        lat: dict[str, list[float]] = {k: [] for k in sides}
        big: dict[str, list[float]] = {k: [] for k in sides}
        cpu0 = {"nvctl remote forward": cpu_s(agent.pid) + cpu_s(fwd.pid),
                "ssh -L": cpu_s(ssh.pid) + cpu_s(sshd.pid)}  # fmt: skip
        for _ in range(a.rounds):
            for name, port in sides.items():
                for _ in range(a.gets // a.rounds):
                    lat[name].append(get(port, "/small")[0])
                seconds, size = get(port, "/big")
                assert size == a.mb << 20
                big[name].append(seconds)
        ours_cpu = cpu_s(agent.pid) + cpu_s(fwd.pid)
        ssh.terminate()  # its sshd child exits: that CPU time lands in sshd's children
        _pid, _status, usage = os.wait4(ssh.pid, 0)
        ssh.returncode = 0
        time.sleep(0.5)
        cpu = {"nvctl remote forward": ours_cpu,
               "ssh -L": usage.ru_utime + usage.ru_stime + cpu_s(sshd.pid)}  # fmt: skip
        load = os.getloadavg()[0]
        print(
            f"load average {load:.1f}; {a.gets} GETs of 512 B and {a.rounds} x {a.mb} MB each side"
        )
        print(f"{'side':24} {'GET p50 ms':>11} {'download MB/s':>14} {'CPU s':>7}")
        for name in sides:
            p50 = statistics.median(lat[name]) * 1000
            rate = a.mb / statistics.median(big[name])
            used = cpu[name] - cpu0[name]
            print(f"{name:24} {p50:11.2f} {rate:14.1f} {used:7.2f}")
        ours, peer = "nvctl remote forward", "ssh -L"
        print(f"ratio (ours / ssh): GET latency {statistics.median(lat[ours]) / statistics.median(lat[peer]):.2f}x, "
              f"download time {statistics.median(big[ours]) / statistics.median(big[peer]):.2f}x, "
              f"CPU {(cpu[ours] - cpu0[ours]) / max(cpu[peer] - cpu0[peer], 1e-3):.2f}x")  # fmt: skip
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        web.shutdown()
        subprocess.run([str(BIN / "nvsim"), "down"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
