"""A bolt:// endpoint reached from another host through the agent's QUIC listener, with
an authorized key only (root: a second network namespace plays the remote host).

The agent runs on this host with nvsim and ``--tunnel-map web=HOST_IP`` (outside a project
network a name needs a mapping); a small HTTP server on the host's side of the link stands
in for the service, and counts every connection it accepts."""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NvsimInstance, tool
from tests.netns import RemoteHost, remote_host
from tests.remote.agent_fixture import Agent, Client, make_agent

pytestmark = [pytest.mark.root, pytest.mark.nvsim]

BODY = b"served behind the agent\n"


class _Service(ThreadingHTTPServer):
    accepted = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.accepted += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Setup:
    remote: RemoteHost
    agent: Agent
    service: _Service

    @property
    def endpoint(self) -> str:
        return f"{self.remote.host_ip}:{self.agent.port}"

    @property
    def target(self) -> str:
        return f"bolt://web:{self.service.server_address[1]}"


@pytest.fixture
def setup(nvsim_gpus: NvsimInstance, tmp_path: Path) -> Iterator[Setup]:
    with remote_host() as remote:
        service = _Service((remote.host_ip, 0), _Handler)
        threading.Thread(target=service.serve_forever, daemon=True).start()
        agent = make_agent(nvsim_gpus, tmp_path / "agent")
        agent.start("--listen", f"{remote.host_ip}:0", "--tunnel-map", f"web={remote.host_ip}")
        try:
            yield Setup(remote, agent, service)
        finally:
            log = agent.stop()
            service.shutdown()
            service.server_close()
            assert "Traceback" not in log, log


def _forward(s: Setup, c: Client) -> tuple[subprocess.Popen[str], int]:
    """``nvctl remote forward 0 bolt://web:PORT`` run on the remote host; its local port."""
    proc = s.remote.popen(tool("nvctl"), "remote", "forward", "0", s.target, "--remote",
                          s.endpoint, "--host-fingerprint", s.agent.fingerprint,
                          env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    m = re.search(r"forwarding 127\.0\.0\.1:(\d+) -> bolt://web:\d+ through", line)
    if m is None:
        proc.kill()
        raise AssertionError(f"forward did not start: {line!r} {proc.communicate()}")
    return proc, int(m[1])


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _out, err = proc.communicate(timeout=30)
    return err


def test_an_operator_key_reaches_the_service_from_the_remote_host(setup: Setup) -> None:
    c = setup.agent.client("operator")
    proc, port = _forward(setup, c)
    try:
        for _ in range(2):  # two TCP connections: two tunnels on one QUIC connection
            got = setup.remote.run("curl", "-sS", "-m", "20", f"http://127.0.0.1:{port}/x")
            assert got.returncode == 0, got.stderr
            assert got.stdout == BODY.decode()
    finally:
        err = _stop(proc)
    assert setup.service.accepted == 2
    assert "Traceback" not in err
    tunnels = [e for e in setup.agent.audit() if e["action"] in ("tunnel", "tunnel_closed")]
    assert [e["action"] for e in reversed(tunnels)] == ["tunnel", "tunnel_closed"] * 2
    assert all(e["result"] == "ok" and e["role"] == "operator" for e in tunnels)
    assert tunnels[0]["params"]["target"] == setup.target
    sizes = re.fullmatch(r"(\d+) bytes to the service, (\d+) back; ended: closed",
                         tunnels[0]["message"])  # fmt: skip
    assert sizes is not None and int(sizes[1]) > 0 and int(sizes[2]) > len(BODY)


def test_an_unknown_key_is_refused_and_nothing_reaches_the_service(setup: Setup) -> None:
    stranger = setup.agent.client(None)
    done = setup.remote.run(tool("nvctl"), "remote", "forward", "0", setup.target, "--remote",
                            setup.endpoint, "--host-fingerprint", setup.agent.fingerprint,
                            env=stranger.env)  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "not authorized here (unknown key)" in done.stderr
    assert "forwarding" not in done.stdout  # it never listened
    assert setup.service.accepted == 0


_LIBRARY = """
import asyncio, json, sys
from bolt.network import identity, quic
async def main(endpoint, pem, target, key_path):
    key = identity.load_client_key(__import__("pathlib").Path(key_path))
    client = await quic.QuicClient.connect(endpoint, key=key, pinned_cert=pem)
    try:
        await client.open_tunnel(target)
        print(json.dumps({"opened": True}))
    except quic.RemoteError as err:
        print(json.dumps({"opened": False, "error": err.error}))
    finally:
        await client.close()
asyncio.run(main(*sys.argv[1:]))
"""


def test_a_viewer_key_is_refused_by_the_client_and_by_the_agent(setup: Setup) -> None:
    viewer = setup.agent.client("viewer")
    done = setup.remote.run(tool("nvctl"), "remote", "forward", "0", setup.target, "--remote",
                            setup.endpoint, "--host-fingerprint", setup.agent.fingerprint,
                            env=viewer.env)  # fmt: skip
    assert done.returncode == 4 and "role is viewer" in done.stderr, done.stderr
    # The agent refuses on its own too (a client that skips the check gets nowhere).
    pem = Path(
        json.loads(setup.agent.admin("identity", "--json").stdout)["certificate"]
    ).read_text()
    key_path = str(viewer.config / "client_key.pem")
    asked = setup.remote.run(sys.executable, "-c", _LIBRARY, setup.endpoint, pem, setup.target,
                             key_path, env=viewer.env)  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["opened"] is False and answer["error"]["code"] == 4
    assert "role viewer may not open tunnels" in answer["error"]["message"]
    time.sleep(0.2)
    assert setup.service.accepted == 0
    denied = [e for e in setup.agent.audit() if e["action"] == "tunnel"]
    assert [(e["result"], e["role"], e["exit_code"]) for e in denied] == [("denied", "viewer", 4)]
