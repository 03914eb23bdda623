"""The web-interface's proxy verifies the agent it forwards to: the right certificate
passes, another identity gets a 502 and no request, and no certificate at all stops it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bolt.network import identity
from tests.ct.conftest import free_port
from tests.remote.agent_fixture import Agent

pytestmark = [pytest.mark.nvsim]


@contextmanager
def _proxy(agent: Agent, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    full = {**agent.env, "API_ENDPOINT": f"bolt://127.0.0.1:{agent.http_port}", **env}
    proc = subprocess.Popen([sys.executable, "-m", "nvcontrol.ct.webproxy", "--listen",
                             f"127.0.0.1:{port}"], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/nothing", timeout=2).close()
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "the proxy did not start"
                time.sleep(0.2)
                continue
            break
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _cert(agent: Agent) -> Path:
    return Path(json.loads(agent.admin("identity", "--json").stdout)["certificate"])


def test_the_proxy_forwards_to_the_agent_whose_certificate_it_holds(agent: Agent) -> None:
    with _proxy(agent, {"API_CERT": str(_cert(agent))}) as url:
        status, body = _get(url + "/metrics")
    assert status == 200 and "DCGM_FI_DEV_GPU_TEMP" in body


def test_a_wrong_agent_identity_is_refused_and_nothing_is_forwarded(
    agent: Agent, tmp_path: Path
) -> None:
    _key, other = identity.new_server_identity("impostor", ["127.0.0.1"])
    (tmp_path / "other.pem").write_text(identity.cert_pem(other))
    with _proxy(agent, {"BOLT_QUIC_TRUST": str(tmp_path / "other.pem")}) as url:
        status, body = _get(url + "/api/call/gpu_list")
    assert status == 502
    # refused in the TLS handshake: no HTTP request was sent to that peer
    error = json.loads(body)["error"]
    assert "is not the project's agent" in error and "certificate does not verify" in error


def test_without_a_certificate_the_proxy_does_not_start(agent: Agent) -> None:
    env = {**agent.env, "API_ENDPOINT": f"bolt://127.0.0.1:{agent.http_port}"}
    env.pop("BOLT_QUIC_TRUST", None)
    env.pop("API_CERT", None)
    done = subprocess.run([sys.executable, "-m", "nvcontrol.ct.webproxy", "--listen",
                           f"127.0.0.1:{free_port()}"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "no certificate to verify gpu-manager with" in done.stderr
