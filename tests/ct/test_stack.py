"""nvctl ct end to end, as root, on nvsim with two GPUs: one started stack for the module
(tests run in file order; the last ones stop it and start it again from the cache)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.ct.conftest import REPO, Stack

pytestmark = [pytest.mark.root, pytest.mark.runtime, pytest.mark.nvsim, pytest.mark.slow,
              pytest.mark.timeout(1800)]  # fmt: skip

DAEMONS = ("gpu-manager", "gpu-monitor", "web-interface")


def test_start_brings_all_four_services_up_healthy(stack: Stack) -> None:
    assert stack.first_start is not None
    out = stack.first_start.stdout + stack.first_start.stderr
    print(f"first ct start: {stack.first_start_s:.1f} s ({'; '.join(stack.notes) or 'no cache'})")
    assert "GPU management services started" in out
    assert f"dashboard: http://127.0.0.1:{stack.web_port}/" in out
    doc = stack.status()
    by = {s["service"]: s for s in doc["services"]}
    assert list(by) == ["gpu-manager", "gpu-monitor", "driver-updater", "web-interface"]
    for name in DAEMONS:
        assert by[name]["state"] == "running" and by[name]["health"] == "healthy", by[name]
        assert by[name]["restarts"] == 0 and by[name]["uptime_s"] > 0
    # driver-updater is a job: it ran its survey and exited 0
    assert by["driver-updater"]["state"] == "exited" and by["driver-updater"]["exit_code"] == 0
    logs = stack.ct("logs", "driver-updater", check=True).stdout
    assert '"staged": []' in logs


def test_status_and_json_agree_with_bolt_surge_status(stack: Stack) -> None:
    ours = stack.status()
    surge = json.loads(
        stack.bolt("surge", "-f", str(stack.file), "status", "--json", check=True).stdout
    )
    assert [(s["service"], s["name"], s["state"], s["health"], s["restarts"]) for s in ours["services"]] == [
        (s["service"], s["name"], s["status"], s["health"], s["restart_count"]) for s in surge
    ]  # fmt: skip
    assert len(ours["gpus"]) == 2
    host = json.loads(stack.nvsim.nvctl("gpu", "list", "--json", check=True).stdout)["gpus"]
    assert [g["uuid"] for g in ours["gpus"]] == [g["uuid"] for g in host]
    for g in ours["gpus"]:
        assert g["model"] == "NVIDIA GeForce RTX 4090"
        assert g["temperature_c"] is not None and g["power_w"] is not None
        assert g["clocks_mhz"]["graphics"] and g["offsets_mhz"]["graphics"] is not None
        assert g["services"] == ["gpu-manager", "gpu-monitor"]
    text = stack.ct("status", check=True).stdout
    for name in ("gpu-manager", "gpu-monitor", "driver-updater", "web-interface", "RTX 4090"):
        assert name in text


def _web(stack: Stack, path: str) -> str:
    url = f"http://127.0.0.1:{stack.web_port}{path}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        return str(resp.read().decode())


def test_web_interface_serves_live_gpu_data_from_gpu_manager(stack: Stack) -> None:
    assert "<html" in _web(stack, "/").lower()
    uuids = [g["uuid"] for g in stack.status()["gpus"]]
    stack.nvsim.run("load", "1", "90")
    try:
        deadline = time.monotonic() + 30
        while True:
            metrics = _web(stack, "/metrics")
            util = re.search(
                rf'DCGM_FI_DEV_GPU_UTIL\{{[^}}]*UUID="{uuids[1]}"[^}}]*\}} (\S+)', metrics
            )
            if (util and float(util.group(1)) >= 50) or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        stack.nvsim.run("load", "1", "0")
    for uuid in uuids:
        line = next(line for line in metrics.splitlines()
                    if line.startswith("DCGM_FI_DEV_GPU_TEMP{") and uuid in line)  # fmt: skip
        assert 'Hostname="nvcontrol-gpu-manager-1"' in line  # sampled inside gpu-manager
    assert util is not None and float(util.group(1)) >= 50  # the load is live on the page


def test_overclock_through_the_stack_is_visible_on_the_host(stack: Stack) -> None:
    before = stack.offsets()
    proc = stack.ct("exec", "gpu-manager", "--",
                    "nvidia-settings", "-a", "[gpu:0]/GPUMemoryTransferRateOffset[3]=1000")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    after = stack.offsets()
    assert after[0]["memory"] == 500 and after[1] == before[1]
    assert stack.status()["gpus"][0]["offsets_mhz"]["memory"] == 500
    bad = stack.ct("exec", "gpu-manager", "--", "nvidia-settings", "-a", "[gpu:0]/GPUFanSpeed[3]=1")
    assert bad.returncode == 2 and stack.offsets() == after  # exit code passed through


def test_snapshot_restore_brings_back_gpu_settings_and_container_files(stack: Stack) -> None:
    created = stack.ct("snapshot", "create", "stable-config")
    assert created.returncode == 0, created.stderr
    saved = stack.offsets()
    listed = json.loads(stack.ct("snapshot", "list", "--json", check=True).stdout)["snapshots"]
    assert [s["name"] for s in listed] == ["stable-config"]
    assert set(listed[0]["providers"]) == {"containers", "nvcontrol.gpu-config"}

    stack.ct("exec", "gpu-manager", "--", "sh", "-c", "echo changed > /etc/ct-marker", check=True)
    stack.ct("exec", "gpu-manager", "--", "nvidia-settings", "-a",
             "[gpu:1]/GPUGraphicsClockOffset[3]=100", check=True)  # fmt: skip
    assert stack.offsets() != saved

    restored = stack.ct("snapshot", "restore", "stable-config")
    assert restored.returncode == 0, restored.stderr
    assert stack.offsets() == saved
    stack.wait_healthy()
    gone = stack.ct("exec", "gpu-manager", "--", "cat", "/etc/ct-marker")
    assert gone.returncode == 1 and "No such file" in gone.stderr
    assert stack.ct("snapshot", "delete", "stable-config").returncode == 0
    assert json.loads(stack.ct("snapshot", "list", "--json", check=True).stdout)["snapshots"] == []


def _example(stack: Stack, code: str) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], cwd=stack.directory, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_seed_example_update_drivers_runs_the_driver_updater(stack: Stack) -> None:
    proc = _example(stack, "import asyncio\nfrom examples.commands.container import update_drivers\n"
                           "asyncio.run(update_drivers())")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Driver update completed successfully" in proc.stdout
    logs = stack.ct("logs", "driver-updater", check=True).stdout
    assert logs.count('"staged": []') == 2  # the start's run and this one


def test_seed_example_overclock_gpu_applies_and_restores_on_failure(stack: Stack) -> None:
    stack.wait_healthy()
    run = ("import asyncio\nfrom examples.gpu.management import GpuManager\n"
           "async def main():\n    m = await GpuManager.new()\n"
           "    await m.overclock_gpu(1, {memory}, 0)\nasyncio.run(main())")  # fmt: skip
    ok = _example(stack, run.format(memory=400))
    assert ok.returncode == 0, ok.stderr
    assert "Overclocking applied successfully" in ok.stdout
    assert stack.offsets()[1]["memory"] == 200
    stack.ct("snapshot", "delete", "pre-overclock", check=True)

    before = time.time()
    failed = _example(stack, run.format(memory=99999))  # out of range: nvctl refuses it
    assert failed.returncode == 1 and "ExecError" in failed.stderr
    assert stack.offsets()[1]["memory"] == 200
    after = stack.wait_healthy()
    read_at = time.time()
    # the restore ran: it restarted the snapshot's containers, so each daemon started during
    # the example (its start time, not its uptime against an earlier one: the stack may
    # itself be only seconds old)
    assert all(read_at - s["uptime_s"] > before - 1 for s in after["services"]
               if s["service"] in DAEMONS)  # fmt: skip
    stack.ct("snapshot", "delete", "pre-overclock", check=True)


def test_seed_example_remote_gpu_control_over_quic(stack: Stack) -> None:
    from examples.remote_gpu_control import remote_gpu_control

    from bolt.network import identity

    doc = stack.wait_healthy()
    address = json.loads(stack.bolt("surge", "-f", str(stack.file), "status", "--json",
                                    check=True).stdout)[0]["networks"]  # fmt: skip
    ip = next(iter(address.values())).split("/")[0]
    assert doc["services"][0]["service"] == "gpu-manager"
    key, stranger = identity.new_client_key(), identity.new_client_key()
    stack.ct("exec", "gpu-manager", "--", "nvctl", "agent", "authorize",
             identity.public_line(key), "--role", "operator", check=True)  # fmt: skip
    cert_path = json.loads(stack.ct("exec", "gpu-manager", "--", "nvctl", "agent", "identity",
                                    "--json", check=True).stdout)["certificate"]  # fmt: skip
    pem = stack.ct("exec", "gpu-manager", "--", "cat", cert_path, check=True).stdout
    params = {"selector": "1", "graphics_mhz": 30, "memory_mhz": None, "pstate": "P0",
              "options": {"window_s": 0, "confirm": False, "confirm_timeout_s": 0,
                          "temp_guard_c": None}}  # fmt: skip
    result = asyncio.run(remote_gpu_control(f"{ip}:3000", params, key=key, pinned_cert=pem))
    assert result is not None
    assert stack.offsets()[1]["graphics"] == 30
    with pytest.raises(Exception, match=r"(?i)not authori|unknown key|denied|refused"):
        asyncio.run(remote_gpu_control(f"{ip}:3000", params, key=stranger, pinned_cert=pem))


def test_monitor_streams_samples_from_gpu_monitor(stack: Stack) -> None:
    stack.wait_healthy()
    proc = stack.ct("monitor", "--count", "2", "--interval", "0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 2
    uuids = [g["uuid"] for g in stack.status()["gpus"]]
    for doc in lines:
        assert [g["uuid"] for g in doc["gpus"]] == uuids
        assert all(g["temperature_c"] > 0 and g["power_w"] > 0 for g in doc["gpus"])
    text = stack.ct("monitor", "--count", "1", check=True).stdout
    assert "GPU 0" in text and "GPU 1" in text


def test_stop_leaves_nothing_and_start_again_reuses_cached_images(stack: Stack) -> None:
    stopped = stack.ct("stop", "-t", "2")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stack.bolt("ps", "-a", "--json", check=True).stdout) == []
    networks = stack.bolt("network", "ls", check=True).stdout
    assert "nvcontrol_default" not in networks
    assert (
        all(s["state"] == "absent" for s in stack.status()["services"])
        or stack.status()["services"] == []
    )
    began = time.monotonic()
    again = stack.ct("start", timeout=600)
    seconds = time.monotonic() - began
    assert again.returncode == 0, again.stderr
    print(f"second ct start (cached images): {seconds:.1f} s; first: {stack.first_start_s:.1f} s")
    assert "building" not in again.stderr and "bootstrapping" not in again.stderr
    assert "built: none (all cached)" in again.stdout
    stack.wait_healthy()
