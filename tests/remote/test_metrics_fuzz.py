"""``/metrics`` in Prometheus' format, and an agent that survives garbage."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bolt.network import framing, identity, quic
from tests.remote.agent_fixture import Agent

pytestmark = [pytest.mark.nvsim]


def _get(agent: Agent, path: str) -> str:
    return agent.get(path)


def test_metrics_parse_with_prometheus_and_pass_promtool(agent: Agent) -> None:
    c = agent.client("operator")
    assert (
        agent.remote(c, "power", "limit", "-i", "1", "--watts", "333", "--window", "0").returncode
        == 0
    )
    text = _get(agent, "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    temps = families["DCGM_FI_DEV_GPU_TEMP"].samples
    assert {s.labels["gpu"] for s in temps} == {"0", "1"}
    for s in temps:
        assert (
            s.labels["UUID"].startswith("GPU-")
            and s.labels["modelName"] == "NVIDIA GeForce RTX 4090"
        )
        assert s.labels["Hostname"] == socket.gethostname()
    for name in ("DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK",
                 "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
                 "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FAN_SPEED"):  # fmt: skip
        assert len(families[name].samples) == 2, name
    tx = {s.labels["result"]: s.value for s in families["nvcontrol_transactions"].samples
          if s.name == "nvcontrol_transactions_total"}  # fmt: skip
    assert tx["ok"] == 1
    # the sampler reads every second: the new limit shows within a few
    for _ in range(20):
        text = _get(agent, "/metrics")
        limits = {s.labels["gpu"]: s.value for f in text_string_to_metric_families(text)
                  if f.name == "nvcontrol_power_limit_watts" for s in f.samples}  # fmt: skip
        if limits.get("1") == 333:
            break
        asyncio.run(asyncio.sleep(0.5))
    assert limits["1"] == 333 and limits["0"] == 450
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: ./project.sh setup installs Debian's prometheus"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    # Exit 1 is a format error; 3 means lint findings only.  The decided result: one
    # finding per dcgm-exporter family, for its camelCase label `modelName` (kept, as
    # dcgm-exporter's dashboards group by it), and nothing else; our own metrics are clean.
    assert checked.returncode == 3, checked.stdout + checked.stderr
    findings = {ln for ln in (checked.stdout + checked.stderr).splitlines() if ln.strip()}
    # (promtool lints families that have samples: memory temperature has none on nvsim)
    dcgm = {ln.split("{")[0] for ln in text.splitlines() if ln.startswith("DCGM_FI_DEV_")}
    camel = "label names should be written in 'snake_case' not 'camelCase'"
    assert findings == {f"{name} {camel}" for name in dcgm}
    energy = {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION_total"}
    assert energy <= dcgm and len(dcgm) == 13  # 12 gauges with readings on nvsim, 1 counter


def _energy(agent: Agent) -> dict[str, tuple[str, dict[str, float]]]:
    """Every energy series of a scrape: {sample name: (family type, {gpu: mJ})}."""
    out: dict[str, tuple[str, dict[str, float]]] = {}
    for f in text_string_to_metric_families(agent.get("/metrics")):
        for smp in f.samples:
            if smp.name.startswith("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"):
                out.setdefault(smp.name, (f.type, {}))[1][smp.labels["gpu"]] = smp.value
    return out


def test_energy_is_a_counter_and_dcgm_exporters_name_stays(agent: Agent) -> None:
    first = _energy(agent)
    kind, counted = first["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION_total"]
    assert kind == "counter" and set(counted) == {"0", "1"}
    assert all(v > 0 for v in counted.values())
    gauge_kind, plain = first["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
    assert gauge_kind == "gauge" and plain == counted  # one reading, both names
    local = json.loads(agent.gpus.nvctl("gpu", "info", "--json").stdout)["gpus"]
    # mJ from NVML's J; the sampler's reading is at most a few seconds old
    for g in local:
        assert 0 <= g["power"]["energy_j"] * 1000 - counted[str(g["index"])] < 10 * 1000 * 1000
    asyncio.run(asyncio.sleep(2.2))  # two sampler ticks
    later = _energy(agent)["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION_total"][1]
    assert all(later[k] > counted[k] for k in counted)  # the GPUs draw power: it only rises


def test_an_xid_injected_in_nvsim_shows_in_dcgm_xid_errors(agent: Agent) -> None:
    def xids() -> dict[str, float]:
        return {
            smp.labels["gpu"]: smp.value
            for f in text_string_to_metric_families(agent.get("/metrics"))
            if f.name == "DCGM_FI_DEV_XID_ERRORS"
            for smp in f.samples
        }

    assert xids() == {"0": 0, "1": 0}
    agent.gpus.run("fault", "1", "xid", "13")
    for _ in range(20):
        if xids().get("1") == 13:
            break
        asyncio.run(asyncio.sleep(0.3))
    assert xids() == {"0": 0, "1": 13}


async def _client(agent: Agent, key: object) -> quic.QuicClient:
    cert = (agent.tmp / "agent-state" / "agent" / "cert.pem").read_text()
    return await quic.QuicClient.connect(agent.endpoint, key=key, pinned_cert=cert)


def test_garbage_datagrams_and_frames_never_crash_the_agent(agent: Agent) -> None:
    c = agent.client("viewer")
    key = identity.load_client_key(c.config / "client_key.pem")

    async def main() -> None:
        good = await _client(agent, key)
        # 1. random UDP datagrams of every size, and some that look like QUIC long headers
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rnd = __import__("random").Random(1)
        for i in range(3000):
            size = rnd.choice([1, 5, 20, 100, 1200, 1500, 60000]) if i % 3 else 1200
            data = bytes(rnd.getrandbits(8) for _ in range(min(size, 2000)))
            if i % 5 == 0:
                data = b"\xc0\x00\x00\x00\x01" + data[5:]  # long header, version 1
            sock.sendto(data, ("127.0.0.1", agent.port))
        sock.close()
        assert len((await good.send_command("gpu_list", {"selector": None}))["gpus"]) == 2

        # 2. authenticated streams carrying garbage, truncated and oversized frames
        cases = [
            b"\xff\xff\xff\xff",  # a 4 GiB frame
            b'\x00\x00\x00\x05{"t":',  # cut off
            b"\x00\x00\x00\x03abc",  # not JSON
            framing.HEADER.pack(2) + b"[]",
            b"\x00\x00",  # half a header, then the stream ends
        ]
        for payload in cases:
            bad = await _client(agent, key)
            sid = bad._proto._quic.get_next_available_stream_id()
            bad._open(sid)
            bad._proto._quic.send_stream_data(sid, payload, end_stream=True)
            bad._proto.transmit()
            for _ in range(40):
                if bad._proto.terminated is not None:
                    break
                await asyncio.sleep(0.05)
            assert bad._proto.terminated is not None, payload
            await bad.close()
            # the connection that behaved keeps working
            assert len((await good.send_command("gpu_list", {"selector": None}))["gpus"]) == 2
        # 3. well-formed calls with wrong arguments are errors, not crashes
        for params in ({"selector": 5}, {"nope": 1}, {"selector": "x" * 10000}):
            with pytest.raises(quic.RemoteError) as err:
                await good.send_command("power_status", params)
            assert err.value.error["code"] == 2
        with pytest.raises(quic.RemoteError):
            await good.send_command("no_such_method", {})
        await good.close()

    asyncio.run(main())
    assert agent.proc is not None and agent.proc.poll() is None
    assert os.path.exists(f"/proc/{agent.proc.pid}")


def test_https_api_takes_bearer_tokens_with_their_role(agent: Agent) -> None:
    import json
    import urllib.error

    def post(path: str, body: dict, token: str | None) -> tuple[int, dict]:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(
            f"https://127.0.0.1:{agent.http_port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {token}"} if token else {}),
        )
        try:
            with urllib.request.urlopen(req, context=ctx) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    viewer = agent.admin("token", "create", "v", "--role", "viewer").stdout.splitlines()[-1]
    status, doc = post("/api/call/gpu_list", {"selector": None}, viewer)
    assert status == 200 and len(doc["result"]["gpus"]) == 2
    status, doc = post("/api/call/reset_power", {"selector": None}, viewer)
    assert status == 403 and "role viewer may not" in doc["error"]["message"]
    assert post("/api/call/gpu_list", {}, None)[0] == 401
    assert post("/api/call/gpu_list", {}, "nvt_forged")[0] == 401
    assert agent.admin("token", "revoke", "v").returncode == 0
    assert post("/api/call/gpu_list", {"selector": None}, viewer)[0] == 401
