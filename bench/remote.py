#!/usr/bin/env python3
"""Remote ``gpu info --json``: the agent over QUIC, against ``ssh localhost nvctl gpu info
--json`` (Debian's openssh-server on loopback, key auth) and the agent's HTTPS API, in one
run on the same nvsim GPUs; then one command fanned out to many agents against as many
parallel ssh runs.

QUIC and HTTPS are timed warm (one connection kept open, as `nvctl --remote` library users
and the dashboard do); ssh is what a shell script does: one ssh process per call (with
ControlMaster off: a fresh connection each time, as a fan-out script would).  The cold
`nvctl --remote` CLI (a new process and connection per call) is shown too.

    .venv/bin/python bench/remote.py [--calls 300] [--ssh-calls 20] [--agents 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    env: dict[str, str], http: bool, extra: tuple[str, ...] = ()
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
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
        procs.append(agent)
        pub = subprocess.run([NVCTL, "remote", "keygen"], env=client_env, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
        subprocess.run([NVCTL, "agent", "authorize", pub, "--role", "viewer"], env=agent_env,
                       check=True, capture_output=True)  # fmt: skip
        token = subprocess.run([NVCTL, "agent", "token", "create", "bench", "--role", "viewer"],
                               env=agent_env, check=True, capture_output=True,
                               text=True).stdout.strip().splitlines()[-1]  # fmt: skip
        endpoint = f"127.0.0.1:{port}"
        first = subprocess.run([NVCTL, "--remote", endpoint, "--accept-new-host", "gpu", "info", "--json"],
                               env=client_env, capture_output=True, text=True)  # fmt: skip
        assert first.returncode == 0, first.stderr
        local = subprocess.run(
            [NVCTL, "gpu", "info", "--json"], env=agent_env, capture_output=True, text=True
        )
        assert len(json.loads(first.stdout)["gpus"]) == len(json.loads(local.stdout)["gpus"]) == 2

        print(f"remote `gpu info --json`, 2 nvsim GPUs, loopback ({os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f})")  # fmt: skip
        results: dict[str, dict[str, float]] = {}
        results["quic"] = bench_quic(client_env, endpoint, a.calls)
        results["https"] = bench_https(hport, token, a.calls)
        results["cli"] = bench_procs("nvctl --remote (new process each)",
                                     [NVCTL, "--remote", endpoint, "gpu", "info", "--json"],
                                     client_env, a.ssh_calls)  # fmt: skip
        sshd, sport, sdir = start_sshd(tmp)
        results["ssh"] = bench_procs("ssh localhost nvctl gpu info --json",
                                     ssh_cmd(sport, sdir, agent_env), env, a.ssh_calls)  # fmt: skip
        q, s = results["quic"], results["ssh"]
        print(f"  QUIC vs ssh: {s['p50_ms'] / q['p50_ms']:.0f}x faster at p50 "
              f"(goal: p50 < 2 ms warm and >= 50x); HTTPS/QUIC p50 "
              f"{results['https']['p50_ms'] / q['p50_ms']:.2f}")  # fmt: skip

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


def bench_quic(client_env: dict[str, str], endpoint: str, calls: int) -> dict[str, float]:
    os.environ["NVCTL_CONFIG_DIR"] = client_env["NVCTL_CONFIG_DIR"]
    from nvcontrol.remote import keys, trust
    from nvcontrol.remote.target import TrustOptions

    async def go() -> dict[str, float]:
        client = await trust.connect(endpoint, keys.load(), TrustOptions())
        for _ in range(20):
            await client.send_command("gpu_info", {"selector": None})
        lat = []
        t0 = time.perf_counter()
        for _ in range(calls):
            t = time.perf_counter()
            await client.send_command("gpu_info", {"selector": None})
            lat.append(time.perf_counter() - t)
        wall = time.perf_counter() - t0
        r = row("QUIC, warm connection", lat, wall)
        t0 = time.perf_counter()
        n = 0

        async def worker() -> None:
            nonlocal n
            while time.perf_counter() - t0 < 3:
                await client.send_command("gpu_info", {"selector": None})
                n += 1

        await asyncio.gather(*(worker() for _ in range(8)))
        conc = n / (time.perf_counter() - t0)
        print(f"  {'QUIC, 8 calls in flight':<34} {conc:8.1f} req/s")
        r["req_s_8"] = conc
        await client.close()
        return r

    return asyncio.run(go())


def bench_https(hport: int, token: str, calls: int) -> dict[str, float]:
    import httpx

    url = f"https://127.0.0.1:{hport}/api/call/gpu_info"
    with httpx.Client(verify=False, headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(20):
            c.post(url, json={"selector": None}).raise_for_status()
        lat = []
        t0 = time.perf_counter()
        for _ in range(calls):
            t = time.perf_counter()
            c.post(url, json={"selector": None}).raise_for_status()
            lat.append(time.perf_counter() - t)
        return row("HTTPS API, keep-alive", lat, time.perf_counter() - t0)


def bench_procs(name: str, cmd: list[str], env: dict[str, str], calls: int) -> dict[str, float]:
    lat = []
    t0 = time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lat.append(time.perf_counter() - t)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed: {done.stderr}")
        assert len(json.loads(done.stdout)["gpus"]) == 2
    return row(name, lat, time.perf_counter() - t0)


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
