"""nvctl ct end to end, as root, on nvsim with two GPUs: one started stack for the module
(tests run in file order; the last ones stop it and start it again from the cache)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.bolt_capsules.conftest import PLUGIN as BLOCKER_PLUGIN
from tests.conftest import tool
from tests.ct.conftest import REPO, Stack
from tests.netns import remote_host

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


def test_seed_surge_run_gpu_manager_nvidia_smi(stack: Stack) -> None:
    """The seed's ``bolt surge run gpu-manager -- nvidia-smi``, as written: a one-off
    container with the service's configuration sees both GPUs through the injected driver."""
    table = stack.bolt("surge", "-f", str(stack.file), "run", "gpu-manager", "--", "nvidia-smi")
    assert table.returncode == 0, table.stderr
    host = json.loads(stack.nvsim.nvctl("gpu", "list", "--json", check=True).stdout)
    assert "NVIDIA-SMI" in table.stdout and host["driver"]["driver_version"] in table.stdout
    listed = stack.bolt("surge", "-f", str(stack.file), "run", "--rm", "gpu-manager", "--",
                        "nvidia-smi", "-L")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    uuids = re.findall(r"\(UUID: (GPU-[0-9a-f-]+)\)", listed.stdout)
    assert uuids == [g["uuid"] for g in host["gpus"]], listed.stdout
    failing = stack.bolt("surge", "-f", str(stack.file), "run", "--rm", "gpu-manager", "--",
                         "nvidia-smi", "-i", "7")  # fmt: skip
    # no GPU 7: nvidia-smi's own answer and exit code come through
    assert failing.returncode == 6 and "No devices were found" in failing.stdout


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
    # the stream is a viewer-level read: the monitor made itself a viewer token inside
    # gpu-monitor, kept it owner-only, and reuses it
    kept = Path(stack.env["NVCTL_STATE_DIR"]) / "ct-monitor" / "nvcontrol.json"
    assert kept.stat().st_mode & 0o777 == 0o600
    first = kept.read_text()
    text = stack.ct("monitor", "--count", "1", check=True).stdout
    assert "GPU 0" in text and "GPU 1" in text
    assert kept.read_text() == first
    tokens = stack.ct("exec", "gpu-monitor", "--", "nvctl", "agent", "token", "list", "--json",
                      check=True).stdout  # fmt: skip
    roles = {t["name"]: t["role"] for t in json.loads(tokens)["tokens"] if t["active"]}
    assert roles == {json.loads(first)["name"]: "viewer"}


def _client(stack: Stack, name: str) -> tuple[dict[str, str], str]:
    """A client's environment (its own key and config dir) and its public-key line."""
    env = {**stack.env, "NVCTL_CONFIG_DIR": str(stack.root.parent / f"client-{name}"),
           "NVCTL_STATE_DIR": str(stack.root.parent / f"client-state-{name}")}  # fmt: skip
    done = subprocess.run([tool("nvctl"), "remote", "keygen"], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return env, done.stdout.strip().splitlines()[-1]


def test_a_bolt_endpoint_is_reachable_from_another_host_through_the_agent(stack: Stack) -> None:
    from bolt.network import identity

    stack.wait_healthy()
    manager = json.loads(stack.bolt("surge", "-f", str(stack.file), "status", "--json",
                                    check=True).stdout)[0]  # fmt: skip
    udp = [p for p in manager["ports"] if p["protocol"] == "udp"]
    assert [p["container_port"] for p in udp] == [3000]  # the quic listener, published
    agent = json.loads(stack.ct("exec", "gpu-manager", "--", "nvctl", "agent", "identity",
                                "--json", check=True).stdout)  # fmt: skip
    # the agent's identity is the project's, made by Surge and kept under its root
    made = (stack.root / "quic" / "nvcontrol" / "listener" / "cert.pem").read_text()
    assert agent["fingerprint"] == identity.cert_fingerprint(identity.load_cert(made))
    assert stack.first_start is not None  # `ct start` told where the listener is
    assert "quic listener: 0.0.0.0:" in stack.first_start.stdout
    assert f"identity {agent['fingerprint']} (gpu-manager)" in stack.first_start.stdout
    operator_env, operator_key = _client(stack, "operator")
    stranger_env, _ = _client(stack, "stranger")
    stack.ct("exec", "gpu-manager", "--", "nvctl", "agent", "authorize", operator_key,
             "--role", "operator", check=True)  # fmt: skip
    with remote_host() as remote:
        via = f"{remote.host_ip}:{udp[0]['host_port']}"
        argv = [tool("nvctl"), "remote", "forward", "0", "bolt://web-interface:8080",
                "--remote", via, "--host-fingerprint", agent["fingerprint"]]  # fmt: skip
        refused = remote.run(*argv, env=stranger_env)
        assert refused.returncode == 4 and "not authorized" in refused.stderr, refused.stderr
        proc = remote.popen(*argv, env=operator_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            m = re.search(r"forwarding 127\.0\.0\.1:(\d+) -> bolt://web-interface:8080", line)
            assert m is not None, (line, proc.stderr)
            got = remote.run("curl", "-sS", "-m", "30", f"http://127.0.0.1:{m[1]}/metrics")
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
    assert got.returncode == 0, got.stderr
    # web-interface, reached by its service name inside the project, answered with the
    # GPU data it got from gpu-manager over the verified hop
    assert (
        "DCGM_FI_DEV_GPU_TEMP" in got.stdout and 'Hostname="nvcontrol-gpu-manager-1"' in got.stdout
    )
    audit = json.loads(stack.ct("exec", "gpu-manager", "--", "nvctl", "agent", "audit", "--json",
                                check=True).stdout)["audit"]  # fmt: skip
    opened = [e for e in audit if e["action"] == "tunnel"]
    assert opened and opened[0]["result"] == "ok"
    assert opened[0]["params"]["target"] == "bolt://web-interface:8080"


# ------------------------------------------------------------------ snapshots: kill -9


def test_kill_during_snapshot_restore_is_repaired_by_the_next_command(
    stack: Stack, tmp_path: Path
) -> None:
    """The restore is killed after its commit decision (the containers and the GPUs are
    restored, the test-blocker provider's commit is still waiting): the next ``ct snapshot``
    command rolls it forward, and both the GPU settings and the container file are the
    snapshot's."""
    stack.wait_healthy()
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    env = {**stack.env, "PYTHONPATH": str(BLOCKER_PLUGIN), "CAPSULE_BLOCKER_DIR": str(blocker)}
    argv = [tool("nvctl"), "ct", "-f", str(stack.file), "--root", str(stack.root), "snapshot"]
    subprocess.run([*argv, "create", "kill-restore"], env=env, check=True, capture_output=True)
    saved = stack.offsets()
    stack.ct("exec", "gpu-manager", "--", "sh", "-c", "echo changed > /etc/kill-marker", check=True)
    stack.ct("exec", "gpu-manager", "--", "nvidia-settings", "-a",
             "[gpu:0]/GPUGraphicsClockOffset[3]=60", check=True)  # fmt: skip
    assert stack.offsets() != saved

    (blocker / "block-commit").touch()
    proc = subprocess.Popen([*argv, "restore", "kill-restore"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (blocker / "in-commit").exists():
        assert proc.poll() is None, f"the restore ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "the restore never reached the blocker's commit"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (blocker / "block-commit").unlink()

    repaired = subprocess.run([*argv, "list"], env=env, capture_output=True, text=True)
    assert repaired.returncode == 0, repaired.stderr
    assert "rolled forward" in repaired.stderr
    assert (blocker / "calls").read_text().split() == ["prepare", "commit", "commit", "finish"]
    assert stack.offsets() == saved
    stack.wait_healthy()
    gone = stack.ct("exec", "gpu-manager", "--", "cat", "/etc/kill-marker")
    assert gone.returncode == 1 and "No such file" in gone.stderr
    again = subprocess.run([*argv, "list"], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stderr == ""  # nothing left to repair
    subprocess.run([*argv, "delete", "kill-restore"], env=env, check=True, capture_output=True)


# ------------------------------------------------------------------ driver updates


def _bundle(stack: Stack, directory: Path, version: str, *extra: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"nvsim-driver-{version}.tar.gz"
    stack.nvsim.run("driver", "pack", version, "-o", str(out), *extra)
    return out


def _driver(stack: Stack) -> str:
    """The driver version the host's nvidia-smi reports."""
    smi = stack.nvsim.state / "bin" / "nvidia-smi"
    out = subprocess.run([str(smi), "--query-gpu=driver_version", "--format=csv,noheader"],
                         env=stack.env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    versions = set(out.split())
    assert len(versions) == 1, out
    return versions.pop()


def _update(stack: Stack, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = stack.ct("update", *args, "--json")
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else {})


def _clean_drivers(stack: Stack) -> None:
    for path in (stack.directory / "drivers").glob("nvsim-driver-*"):
        path.unlink()


def _update_snapshots(stack: Stack) -> list[dict[str, Any]]:
    listed = json.loads(stack.ct("snapshot", "list", "--json", check=True).stdout)["snapshots"]
    return [s for s in listed if s["trigger"] == "before_driver_update"]


def test_update_with_a_bad_package_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    before = _driver(stack)
    nothing = stack.ct("update", "--install")
    assert nothing.returncode == 2 and "no driver package is staged" in nothing.stderr
    try:
        bad = _bundle(stack, tmp_path / "bad", "580.105.08")
        bad.with_name(bad.name + ".sha256").write_text("0" * 64 + f"  {bad.name}\n")
        proc, doc = _update(stack, "--package", str(bad), "--install")
        assert proc.returncode == 2, proc.stderr
        assert doc["problems"][0]["check"] == "checksum" and "install" not in doc

        ampere = _bundle(stack, tmp_path / "ampere", "550.54.14", "--arch", "ampere")
        proc, doc = _update(stack, "--package", str(ampere), "--install")
        assert proc.returncode == 2, proc.stderr
        assert [p["check"] for p in doc["problems"]] == ["architecture", "architecture"]
        assert "GPU 0" in doc["problems"][0]["message"] and "ada" in doc["problems"][0]["message"]
        assert _driver(stack) == before and _update_snapshots(stack) == []

        text = stack.ct("update", "--package", str(ampere))
        assert text.returncode == 2 and "error: architecture: GPU 1" in text.stderr
    finally:
        _clean_drivers(stack)


def test_update_whose_health_check_fails_is_rolled_back(stack: Stack, tmp_path: Path) -> None:
    before = _driver(stack)
    try:
        broken = _bundle(stack, tmp_path, "580.126.09", "--fault", "xid")
        checked, doc = _update(stack, "--package", str(broken))  # without --install: checks only
        assert checked.returncode == 0 and doc["result"] == "ready to install", checked.stderr
        assert _driver(stack) == before

        proc, doc = _update(stack, "--version", "580.126.09", "--install")
        assert proc.returncode == 5, proc.stderr
        assert doc["install"]["rolled_back"] and "Xid 119 on GPU 0" in doc["install"]["cause"]
        assert doc["install"]["driver"] == before and _driver(stack) == before
        snaps = _update_snapshots(stack)
        assert [s["name"] for s in snaps] == [doc["install"]["snapshot"]]
        host = json.loads(stack.nvsim.nvctl("gpu", "list", "--json", check=True).stdout)
        assert host["driver"]["driver_version"] == before and len(host["gpus"]) == 2
    finally:
        _clean_drivers(stack)
        for s in _update_snapshots(stack):
            stack.ct("snapshot", "delete", s["name"], check=True)


def test_update_installs_a_good_package_and_the_host_sees_the_new_version(
    stack: Stack, tmp_path: Path
) -> None:
    before = _driver(stack)
    try:
        good = _bundle(stack, tmp_path, "580.105.08")
        proc = stack.ct("update", "--package", str(good), "--install")
        assert proc.returncode == 0, proc.stderr
        assert f"driver 580.105.08 installed (was {before})" in proc.stdout
        assert _driver(stack) == "580.105.08"
        host = json.loads(stack.nvsim.nvctl("gpu", "list", "--json", check=True).stdout)
        assert host["driver"]["driver_version"] == "580.105.08" and len(host["gpus"]) == 2
        again, _ = _update(stack, "--version", "580.105.08", "--install")
        assert again.returncode == 2 and "already installed" in again.stderr
    finally:
        _clean_drivers(stack)
        for s in _update_snapshots(stack):
            stack.ct("snapshot", "delete", s["name"], check=True)
        stack.nvsim.run("driver", "rollback", check=False)
    assert _driver(stack) == before


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
