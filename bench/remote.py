#!/usr/bin/env python3
"""Remote ``gpu info --json``: the agent over QUIC, against ``ssh localhost nvctl gpu info
--json`` (Debian's openssh-server on loopback, key auth) and the agent's HTTPS API, in one
run on the same nvsim GPUs; then one command fanned out to many agents against as many
parallel ssh runs.

It measures two different things, and says which it prints:

1. **One warm request** (the < 2 ms goal): a call on a connection that is already open and
   authenticated, as a library user, `gpu watch --remote`, the dashboard or a fan-out
   keeps it.  QUIC with the agent's reading cache (the default), QUIC against a second
   agent with ``--read-cache-ms 0`` (NVML on every call), and the agent's HTTPS API with
   keep-alive; the three are interleaved in rounds and each reports p50/p99 and the CPU
   time per request on the client and on the agent.
2. **One CLI call**: what a shell script pays, a new process each time.  `nvctl --remote`
   (Python start-up and imports, UDP socket, TLS 1.3 handshake, the key proof, the call,
   exit) against `ssh localhost nvctl gpu info --json` (Debian's openssh-server on
   loopback, key auth, ControlMaster off: a fresh connection each time, as a fan-out
   script would) and a local `nvctl gpu info --json`, interleaved; CPU is the children's.

Load averages are printed before and after each part (the machine is shared).

    .venv/bin/python bench/remote.py [--calls 300] [--rounds 6] [--ssh-calls 20] [--agents 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
NVCTL = str(BIN / "nvctl")


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def row(name: str, lat_s: list[float], wall_s: float) -> dict[str, float]:
    r = {
        "p50_ms": pct(lat_s, 50) * 1000,
        "p99_ms": pct(lat_s, 99) * 1000,
        "req_s": len(lat_s) / wall_s,
    }
    print(
        f"  {name:<34} p50 {r['p50_ms']:8.2f} ms   p99 {r['p99_ms']:8.2f} ms   {r['req_s']:8.1f} req/s"
    )
    return r


def start_agent(
    env: dict[str, str], http: bool, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen[str], int, int]:
    args = [NVCTL, "agent", "serve", "--listen", "127.0.0.1:0", *extra]
    if http:
        args += ["--http", "127.0.0.1:0"]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    port = hport = 0
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline and not (port and (hport or not http)):
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if m := re.search(r"QUIC on [\d.]+:(\d+)", line):
                port = int(m[1])
            if m := re.search(r"HTTPS on [\d.]+:(\d+)", line):
                hport = int(m[1])
    if not port:
        raise SystemExit("the agent did not start")
    return proc, port, hport


def start_sshd(tmp: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        raise SystemExit("sshd is missing: ./project.sh setup installs openssh-server")
    d = tmp / "ssh"
    d.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True
    )
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "id")], check=True)
    (d / "authorized_keys").write_text((d / "id.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = d / "sshd_config"
    conf.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\n"
        f"PermitRootLogin prohibit-password\nPidFile {d / 'pid'}\nUsePAM no\n"
        "StrictModes no\nAcceptEnv NVSIM_STATE LD_LIBRARY_PATH NVCTL_STATE_DIR\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(conf)], stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return proc, port, d


def ssh_cmd(port: int, d: Path, env: dict[str, str]) -> list[str]:
    remote = (
        f"NVSIM_STATE={env['NVSIM_STATE']} LD_LIBRARY_PATH={env.get('LD_LIBRARY_PATH', '')} "
        f"NVCTL_STATE_DIR={env['NVCTL_STATE_DIR']} {NVCTL} gpu info --json"
    )
    return ["ssh", "-q", "-p", str(port), "-i", str(d / "id"), "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile={d / 'known'}", "-o", "ControlMaster=no",
            "-o", "BatchMode=yes", "root@127.0.0.1", remote]  # fmt: skip


def cpu_of(pid: int) -> float:
    """User+system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load() -> str:
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


class Warm:
    """One contender of the warm-request race: a call on a connection that is already open."""

    def __init__(self, name: str, agent_pid: int, call: Callable[[], None]) -> None:
        self.name, self.agent_pid, self.call = name, agent_pid, call
        self.lat: list[float] = []
        self.cpu_client = self.cpu_agent = self.wall = 0.0

    def round(self, n: int) -> None:
        c0, a0, t0 = self_cpu(), cpu_of(self.agent_pid), time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            self.call()
            self.lat.append(time.perf_counter() - t)
        self.wall += time.perf_counter() - t0
        self.cpu_client += self_cpu() - c0
        self.cpu_agent += cpu_of(self.agent_pid) - a0

    def report(self) -> dict[str, float]:
        r = row(self.name, self.lat, self.wall)
        n = len(self.lat)
        r["cpu_client_ms"] = 1000 * self.cpu_client / n
        r["cpu_agent_ms"] = 1000 * self.cpu_agent / n
        print(f"  {'':<34} CPU per request: client {r['cpu_client_ms']:.2f} ms, "
              f"agent {r['cpu_agent_ms']:.2f} ms")  # fmt: skip
        return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300, help="warm calls per contender")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds they are split in")
    ap.add_argument("--ssh-calls", type=int, default=20)
    ap.add_argument("--agents", type=int, default=50)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    env = dict(os.environ)
    env["NVSIM_STATE"] = str(tmp / "nvsim")
    subprocess.run([str(BIN / "nvsim"), "up", "--gpus", "2", "--model", "rtx4090"], env=env,
                   check=True, capture_output=True)  # fmt: skip
    env.update(json.loads(subprocess.run([str(BIN / "nvsim"), "env", "--format", "json"], env=env,
                                         check=True, capture_output=True, text=True).stdout))  # fmt: skip
    agent_env = dict(
        env, NVCTL_STATE_DIR=str(tmp / "agent"), NVCTL_CONFIG_DIR=str(tmp / "agent-cfg")
    )
    client_env = dict(
        env, NVCTL_STATE_DIR=str(tmp / "client"), NVCTL_CONFIG_DIR=str(tmp / "client-cfg")
    )
    procs: list[subprocess.Popen[str]] = []
    sshd = None
    try:
        agent, port, hport = start_agent(agent_env, http=True)
        # the same agent state, with the reading cache off: every read calls NVML
        nocache, nc_port, _ = start_agent(agent_env, http=False, extra=["--read-cache-ms", "0"])
        procs += [agent, nocache]
        pub = subprocess.run([NVCTL, "remote", "keygen"], env=client_env, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
        subprocess.run([NVCTL, "agent", "authorize", pub, "--role", "viewer"], env=agent_env,
                       check=True, capture_output=True)  # fmt: skip
        token = subprocess.run([NVCTL, "agent", "token", "create", "bench", "--role", "viewer"],
                               env=agent_env, check=True, capture_output=True,
                               text=True).stdout.strip().splitlines()[-1]  # fmt: skip
        endpoint, nc_endpoint = f"127.0.0.1:{port}", f"127.0.0.1:{nc_port}"
        for ep in (endpoint, nc_endpoint):
            first = subprocess.run([NVCTL, "--remote", ep, "--accept-new-host", "gpu", "info", "--json"],
                                   env=client_env, capture_output=True, text=True)  # fmt: skip
            assert first.returncode == 0, first.stderr
        local = subprocess.run(
            [NVCTL, "gpu", "info", "--json"], env=agent_env, capture_output=True, text=True
        )
        assert len(json.loads(first.stdout)["gpus"]) == len(json.loads(local.stdout)["gpus"]) == 2

        print(f"remote `gpu info --json`, 2 nvsim GPUs, loopback ({os.cpu_count()} CPUs)")
        print(f"1. one warm request: a call on a connection already open and authenticated "
              f"({a.calls} calls each, in {a.rounds} interleaved rounds; {load()})")  # fmt: skip
        results = bench_warm(client_env, endpoint, nc_endpoint, hport, token, a,
                             {"quic": agent.pid, "nocache": nocache.pid})  # fmt: skip
        print(f"   ({load()})")
        sshd, sport, sdir = start_sshd(tmp)
        print(f"2. one CLI call: a new process, connection, TLS handshake, key proof, the call "
              f"and exit ({a.ssh_calls} each, interleaved; {load()})")  # fmt: skip
        results.update(bench_cold(client_env, endpoint, env, agent_env, sport, sdir, a.ssh_calls))
        print(f"   ({load()})")
        q, s, c = results["quic"], results["ssh"], results["cli"]
        print(f"   warm QUIC p50 {q['p50_ms']:.2f} ms (goal < 2 ms); ssh/warm QUIC "
              f"{s['p50_ms'] / q['p50_ms']:.0f}x (goal >= 50x); ssh/`nvctl --remote` CLI "
              f"{s['p50_ms'] / c['p50_ms']:.1f}x; HTTPS/QUIC warm "
              f"{results['https']['p50_ms'] / q['p50_ms']:.2f}; NVML each time/cached "
              f"{results['nocache']['p50_ms'] / q['p50_ms']:.2f}")  # fmt: skip

        if a.agents:
            bench_fanout(a.agents, env, client_env, tmp, procs, sport, sdir, agent_env)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if sshd is not None:
            sshd.terminate()
        subprocess.run([str(BIN / "nvsim"), "down"], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_warm(client_env: dict[str, str], endpoint: str, nc_endpoint: str, hport: int,
               token: str, a: argparse.Namespace, pids: dict[str, int]) -> dict[str, dict[str, float]]:  # fmt: skip
    os.environ["NVCTL_CONFIG_DIR"] = client_env["NVCTL_CONFIG_DIR"]
    import httpx

    from nvcontrol.remote import keys, trust
    from nvcontrol.remote.target import TrustOptions

    loop = asyncio.new_event_loop()
    client = loop.run_until_complete(trust.connect(endpoint, keys.load(), TrustOptions()))
    nc_client = loop.run_until_complete(trust.connect(nc_endpoint, keys.load(), TrustOptions()))
    http = httpx.Client(verify=False, headers={"Authorization": f"Bearer {token}"})
    url = f"https://127.0.0.1:{hport}/api/call/gpu_info"

    def quic_call(c: Any) -> Callable[[], None]:
        return lambda: loop.run_until_complete(c.send_command("gpu_info", {"selector": None}))

    def https_call() -> None:
        http.post(url, json={"selector": None}).raise_for_status()

    racers = {
        "quic": Warm("QUIC, warm connection", pids["quic"], quic_call(client)),
        "nocache": Warm("QUIC, warm, NVML every call", pids["nocache"], quic_call(nc_client)),
        "https": Warm("HTTPS API, keep-alive", pids["quic"], https_call),
    }
    for r in racers.values():  # warm-up
        for _ in range(20):
            r.call()
    per = max(1, a.calls // a.rounds)
    for _ in range(a.rounds):
        for r in racers.values():
            r.round(per)
    results = {k: r.report() for k, r in racers.items()}

    async def in_flight() -> float:
        t0 = time.perf_counter()
        n = 0

        async def worker() -> None:
            nonlocal n
            while time.perf_counter() - t0 < 3:
                await client.send_command("gpu_info", {"selector": None})
                n += 1

        await asyncio.gather(*(worker() for _ in range(8)))
        return n / (time.perf_counter() - t0)

    conc = loop.run_until_complete(in_flight())
    print(f"  {'QUIC, 8 calls in flight':<34} {conc:8.1f} req/s")
    results["quic"]["req_s_8"] = conc
    http.close()
    for c in (client, nc_client):
        loop.run_until_complete(c.close())
    loop.close()
    return results


def bench_cold(client_env: dict[str, str], endpoint: str, env: dict[str, str],
               agent_env: dict[str, str], sport: int, sdir: Path, calls: int) -> dict[str, dict[str, float]]:  # fmt: skip
    racers = {
        "cli": ("nvctl --remote (new process each)",
                [NVCTL, "--remote", endpoint, "gpu", "info", "--json"], client_env),
        "ssh": ("ssh localhost nvctl gpu info --json", ssh_cmd(sport, sdir, agent_env), env),
        "local": ("nvctl gpu info --json (local, no network)",
                  [NVCTL, "gpu", "info", "--json"], agent_env),
    }  # fmt: skip
    lat: dict[str, list[float]] = {k: [] for k in racers}
    cpu: dict[str, float] = dict.fromkeys(racers, 0.0)
    wall: dict[str, float] = dict.fromkeys(racers, 0.0)
    for _ in range(calls):
        for k, (name, cmd, e) in racers.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            done = subprocess.run(cmd, env=e, capture_output=True, text=True)
            dt = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            lat[k].append(dt)
            wall[k] += dt
            cpu[k] += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed: {done.stderr}")
            assert len(json.loads(done.stdout)["gpus"]) == 2
    out = {}
    for k, (name, _cmd, _e) in racers.items():
        out[k] = row(name, lat[k], wall[k])
        out[k]["cpu_client_ms"] = 1000 * cpu[k] / calls
        print(f"  {'':<34} CPU per call (the client's processes): {out[k]['cpu_client_ms']:.0f} ms")
    return out


def bench_fanout(n: int, env: dict[str, str], client_env: dict[str, str], tmp: Path,
                 procs: list[subprocess.Popen[str]], sport: int, sdir: Path,
                 agent_env: dict[str, str]) -> None:  # fmt: skip
    print(f"fan-out: one `gpu info --json` to {n} agents on loopback")
    pub = subprocess.run([NVCTL, "remote", "keygen", "--show"], env=client_env, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    endpoints = []
    t = time.perf_counter()
    for i in range(n):
        e = dict(
            env, NVCTL_STATE_DIR=str(tmp / f"fan{i}"), NVCTL_CONFIG_DIR=str(tmp / f"fan{i}-cfg")
        )
        subprocess.run([NVCTL, "agent", "authorize", pub, "--role", "viewer"], env=e, check=True,
                       capture_output=True)  # fmt: skip
        p, port, _ = start_agent(e, http=False)
        procs.append(p)
        endpoints.append(f"127.0.0.1:{port}")
    print(f"  started {n} agents in {time.perf_counter() - t:.1f} s")
    hosts = tmp / "hosts"
    hosts.write_text("\n".join(endpoints) + "\n")
    pin = subprocess.run([NVCTL, "--hosts-file", str(hosts), "--accept-new-host", "gpu", "list"],
                         env=client_env, capture_output=True, text=True)  # fmt: skip
    assert pin.returncode == 0, pin.stderr
    times = []
    for _ in range(3):
        t = time.perf_counter()
        done = subprocess.run([NVCTL, "--hosts-file", str(hosts), "gpu", "info", "--json"],
                              env=client_env, capture_output=True, text=True)  # fmt: skip
        times.append(time.perf_counter() - t)
        assert done.returncode == 0, done.stderr
        docs = json.loads(done.stdout)["hosts"]
        assert len(docs) == n and all(d["exit_code"] == 0 for d in docs)
    fan = statistics.median(times)
    cmd = (
        " ".join(ssh_cmd(sport, sdir, agent_env)[:-1])
        + " '"
        + ssh_cmd(sport, sdir, agent_env)[-1]
        + "'"
    )
    t = time.perf_counter()
    par = subprocess.run(["bash", "-c", f"for i in $(seq {n}); do {cmd} >/dev/null & done; wait"],
                         capture_output=True, text=True)  # fmt: skip
    ssh_par = time.perf_counter() - t
    assert par.returncode == 0, par.stderr
    print(f"  nvctl --hosts-file ({n} agents)        {fan:8.2f} s (median of 3, one process)")
    print(f"  {n} parallel `ssh localhost nvctl ...`   {ssh_par:8.2f} s")
    print(f"  fan-out vs parallel ssh: {ssh_par / fan:.1f}x")


if __name__ == "__main__":
    main()
