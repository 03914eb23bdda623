"""A real agent for tests: nvsim GPUs, ``nvctl agent serve`` on ephemeral ports in a
temporary state dir, and clients with their own keys and config dirs."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import NvsimInstance, tool


@dataclass
class Client:
    config: Path
    env: dict[str, str]
    public: str = ""

    def nvctl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("nvctl"), *args], env=self.env, capture_output=True, text=True, **kw
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [tool("nvctl"), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@dataclass
class Agent:
    gpus: NvsimInstance
    tmp: Path
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    port: int = 0
    http_port: int = 0
    fingerprint: str = ""
    clients: list[Client] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                tool("nvctl"),
                "agent",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                *extra,
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline and not (self.port and self.http_port):
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if not ready:
                assert self.proc.poll() is None, "\n".join(self.lines)
                continue
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if m := re.search(r"QUIC on [\d.]+:(\d+) \(identity (\S+)\)", line):
                self.port, self.fingerprint = int(m[1]), m[2]
            if m := re.search(r"HTTPS on [\d.]+:(\d+)", line):
                self.http_port = int(m[1])
        assert self.port and self.http_port, "agent did not start:\n" + "".join(self.lines)

    def stop(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, _ = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
            self.lines.append(out or "")
        return "".join(self.lines)

    def get(self, path: str) -> str:
        """GET ``path`` from the agent's HTTPS listener (its certificate is self-signed)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        url = f"https://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, context=ctx) as r:
            return str(r.read().decode())

    def host(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``nvctl ...`` run locally on the agent's host (its state and config dirs)."""
        return subprocess.run([tool("nvctl"), *args], env=self.env, capture_output=True, text=True)

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``nvctl agent ...`` run on the agent's host (its state dir)."""
        return subprocess.run(
            [tool("nvctl"), "agent", *args], env=self.env, capture_output=True, text=True
        )

    def audit(self) -> list[dict[str, Any]]:
        done = self.admin("audit", "--json", "--limit", "1000")
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout)["audit"])

    def client(self, role: str | None = "operator", name: str | None = None) -> Client:
        """A client with its own key (authorized as ``role`` unless None) that already
        trusts this agent's identity."""
        name = name or f"c{len(self.clients)}"
        config = self.tmp / f"client-{name}"
        env = dict(self.gpus.env)
        env["NVCTL_CONFIG_DIR"] = str(config)
        env["NVCTL_STATE_DIR"] = str(self.tmp / f"client-state-{name}")
        c = Client(config, env)
        done = c.nvctl("remote", "keygen")
        assert done.returncode == 0, done.stderr
        c.public = done.stdout.strip().splitlines()[-1]
        if role is not None:
            auth = self.admin("authorize", c.public, "--role", role)
            assert auth.returncode == 0, auth.stderr
        self.clients.append(c)
        return c

    def remote(self, c: Client, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return c.nvctl(
            "--remote", self.endpoint, "--host-fingerprint", self.fingerprint, *args, **kw
        )


def make_agent(gpus: NvsimInstance, tmp: Path) -> Agent:
    env = dict(gpus.env)
    env["NVCTL_STATE_DIR"] = str(tmp / "agent-state")
    env["NVCTL_CONFIG_DIR"] = str(tmp / "agent-config")
    env.pop("NVCTL_DEBUG", None)
    os.makedirs(tmp, exist_ok=True)
    return Agent(gpus, tmp, env)
