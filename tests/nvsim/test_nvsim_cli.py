"""The ``nvsim`` command as users and the shared fixture run it: subprocesses, real files."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from nvsim import instance, layout
from nvsim.state import StateFile
from tests.conftest import NvsimInstance, tool
from tests.nvsim.helpers import wait_for

pytestmark = pytest.mark.nvsim

FAST = {"gpus": 2, "model": "rtx4090", "args": ["--time-scale", "20"]}


def nvsim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("nvsim"), *args], capture_output=True, text=True, env=env)


def assert_clean_error(res: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert res.returncode == code, res.stderr
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    for word in words:
        assert word in res.stderr


@pytest.mark.root
def test_up_creates_library_and_device_nodes_with_nvidia_numbers(nvsim_gpus: NvsimInstance) -> None:
    dev = nvsim_gpus.state / "dev"
    expected = {
        "nvidia0": (195, 0),
        "nvidia1": (195, 1),
        "nvidiactl": (195, 255),
        "nvidia-modeset": (195, 254),
        "nvidia-uvm": (instance.uvm_major(), 0),
        "nvidia-uvm-tools": (instance.uvm_major(), 1),
    }
    assert sorted(p.name for p in dev.iterdir()) == sorted(expected)
    for name, (major, minor) in expected.items():
        st = os.stat(dev / name)
        assert stat.S_ISCHR(st.st_mode)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor)
        assert stat.S_IMODE(st.st_mode) == 0o666
    lib = nvsim_gpus.state / "lib"
    assert (lib / "libnvidia-ml.so.1").stat().st_size > 0
    assert os.readlink(lib / "libnvidia-ml.so") == "libnvidia-ml.so.1"
    assert nvsim_gpus.status()["device_nodes"] == [str(dev / n) for n in expected]


def test_env_points_processes_at_the_instance(nvsim_gpus: NvsimInstance) -> None:
    state = str(nvsim_gpus.state.resolve())
    env = dict(nvsim_gpus.env, LD_LIBRARY_PATH="/opt/other")
    doc = json.loads(nvsim("--state", state, "env", "--format", "json", env=env).stdout)
    assert doc == {"NVSIM_STATE": state, "LD_LIBRARY_PATH": f"{state}/lib:/opt/other"}
    shell = nvsim("--state", state, "env").stdout
    probe = subprocess.run(
        ["bash", "-c", f'{shell}\necho "$NVSIM_STATE|$LD_LIBRARY_PATH"'],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert probe.stdout.strip() == f"{state}|{state}/lib:/opt/other"


def test_status_shows_identity_daemon_and_hidden_limits(nvsim_gpus: NvsimInstance) -> None:
    doc = nvsim_gpus.status()
    assert doc["daemon"]["alive"] and doc["daemon"]["ticks"] > 0
    assert doc["driver_version"] == instance.DEFAULT_DRIVER and doc["cuda_version"] == "13.0"
    assert [g["name"] for g in doc["gpus"]] == ["NVIDIA GeForce RTX 4090"] * 2
    assert len({g["uuid"] for g in doc["gpus"]}) == 2
    g0 = doc["gpus"][0]
    assert g0["pstate"] == "P8" and "gpu_idle" in g0["clocks_event_reasons"]
    assert 120 <= g0["hidden"]["stable_gpc_offset_mhz"] <= 210
    assert g0["offsets_mhz"]["P0"] == {"gpc": 0, "mem": 0}
    assert [f["policy"] for f in g0["fans"]] == ["auto", "auto"]
    table = nvsim_gpus.run("status").stdout
    assert g0["uuid"] in table and "running" in table


@pytest.mark.parametrize("nvsim_gpus", [FAST], indirect=True)
def test_load_heats_the_gpu_and_lists_its_process(nvsim_gpus: NvsimInstance) -> None:
    before = nvsim_gpus.status()["gpus"][0]
    out = nvsim_gpus.run("load", "0", "100", "--memory", "1024", "--pid", "4242").stdout
    assert "load 100%" in out and "pid 4242" in out

    def hot() -> bool:
        g = nvsim_gpus.status()["gpus"][0]
        return g["temperature_c"] > before["temperature_c"] + 20 and g["power_w"] > 300

    assert wait_for(hot)
    g0, g1 = nvsim_gpus.status()["gpus"]
    assert g0["pstate"] == "P0" and g0["utilization"]["gpu_pct"] == 100
    assert g0["processes"] == [{"pid": 4242, "used_mib": 1024}]
    assert g0["memory"]["used_mib"] >= 1024 + before["memory"]["used_mib"]
    assert g1["load_pct"] == 0 and g1["pstate"] == "P8"
    nvsim_gpus.run("load", g0["uuid"], "0", "--pid", "4242")
    assert wait_for(lambda: nvsim_gpus.status()["gpus"][0]["power_w"] < 50)
    assert nvsim_gpus.status()["gpus"][0]["processes"] == []


def test_lost_gpu_stays_lost_until_reset(nvsim_gpus: NvsimInstance) -> None:
    assert "fell off the bus" in nvsim_gpus.run("fault", "1", "lost").stdout
    g1 = nvsim_gpus.status()["gpus"][1]
    assert g1["lost"] and g1["xid_count"] == 1
    assert not nvsim_gpus.status()["gpus"][0]["lost"]
    bus_id = nvsim_gpus.status()["gpus"][1]["pci_bus_id"]
    nvsim_gpus.run("reset", bus_id[4:])  # the 4-digit-domain form names it too
    assert not nvsim_gpus.status()["gpus"][1]["lost"]


def test_xid_and_thermal_faults_show_in_status_and_reset_clears_them(
    nvsim_gpus: NvsimInstance,
) -> None:
    nvsim_gpus.run("fault", "0", "xid", "13")
    nvsim_gpus.run("fault", "0", "thermal")
    g0 = nvsim_gpus.status()["gpus"][0]
    assert g0["xid_count"] == 1 and g0["fault_thermal"] and not g0["lost"]
    with StateFile.open(nvsim_gpus.state) as sf:
        gpu = sf.gpus()[0]
        assert gpu.events[0].type == layout.EVENT_XID_CRITICAL and gpu.events[0].data == 13
        del gpu
    nvsim_gpus.run("reset")
    assert not nvsim_gpus.status()["gpus"][0]["fault_thermal"]


def test_reset_restores_every_setting_and_drops_the_load(nvsim_gpus: NvsimInstance) -> None:
    nvsim_gpus.run("load", "0", "80")
    with StateFile.open(nvsim_gpus.state) as sf:  # what NVML setters would have written
        gpu = sf.gpus()[0]
        gpu.pstates[0].gpc_offset_mhz = 150
        gpu.power_limit_mw = 200_000
        gpu.locked_gpc_min, gpu.locked_gpc_max = 900, 1200
        gpu.fans[0].policy, gpu.fans[0].target_pct = layout.FAN_POLICY_MANUAL, 95
        gpu.persistence = 1
        del gpu
    assert nvsim_gpus.run("reset", "0").stdout.strip().endswith("reset")
    g0 = nvsim_gpus.status()["gpus"][0]
    assert g0["offsets_mhz"]["P0"]["gpc"] == 0 and g0["power_limit_w"] == 450
    assert g0["locked_clocks"] is None and not g0["persistence"]
    assert g0["fans"][0]["policy"] == "auto"
    assert g0["load_pct"] == 0 and g0["processes"] == []


def test_bad_gpu_or_value_is_exit_2_without_traceback(nvsim_gpus: NvsimInstance) -> None:
    for args, words in [
        (("load", "7", "50"), ("no GPU '7'",)),
        (("load", "GPU-nope", "50"), ("no GPU 'GPU-nope'", "GPU-")),
        (("load", "0", "150"), ("out of range",)),
        (("load", "1", "50", "--memory", "999999"), ("MiB free", "999999 MiB")),
        (("fault", "0", "xid"), ("Xid code",)),
        (("reset", "3"), ("no GPU '3'",)),
        (("reset", "GPU-"), ("'GPU-' matches 2 GPUs",)),
    ]:
        assert_clean_error(nvsim_gpus.run(*args, check=False), 2, *words)
    usage = nvsim_gpus.run("fault", "0", "meteor", check=False)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_bad_up_input_is_exit_2_and_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "s"
    for args, words in [
        (("--model", "rtx2080"), ("unknown GPU model", "rtx4090")),
        (("--gpus", "0"), ("out of range",)),
        (("--gpus", "3", "--model", "rtx4090,h100"), ("2 models for 3 GPUs",)),
        (("--driver", "latest"), ("driver version",)),
        (("--time-scale", "0"), ("--time-scale",)),
        (("--time-scale", "nan"), ("--time-scale",)),
        (("--sensor-noise", "nan"), ("--sensor-noise", "out of range")),
        (("--sensor-noise", "11"), ("--sensor-noise", "0..10")),
        (("--driver", "440.100"), ("older than R450",)),
    ]:
        assert_clean_error(nvsim("--state", str(state), "up", *args), 2, *words)
    assert not state.exists()


def test_second_up_on_a_running_instance_is_refused(nvsim_gpus: NvsimInstance) -> None:
    pid = nvsim_gpus.status()["daemon"]["pid"]
    res = nvsim_gpus.run("up", "--gpus", "1", check=False)
    assert_clean_error(res, 1, "already up", str(pid))
    assert nvsim_gpus.status()["daemon"]["pid"] == pid and len(nvsim_gpus.status()["gpus"]) == 2


def test_commands_without_an_instance_are_exit_3_and_say_how_to_start(tmp_path: Path) -> None:
    for args in (("env",), ("status", "--json"), ("load", "0", "10"), ("reset",), ("down",)):
        assert_clean_error(nvsim("--state", str(tmp_path / "none"), *args), 3, "no nvsim instance")
    assert "nvsim --state" in nvsim("--state", str(tmp_path), "env").stderr


def test_down_stops_the_daemon_and_removes_what_up_created(tmp_path: Path) -> None:
    state = tmp_path / "nv"
    assert nvsim("--state", str(state), "up", "--gpus", "1").returncode == 0
    pid = json.loads(nvsim("--state", str(state), "status", "--json").stdout)["daemon"]["pid"]
    res = nvsim("--state", str(state), "down")
    assert res.returncode == 0 and f"stopped daemon {pid}" in res.stdout
    assert not instance.daemon_alive(pid) and not state.exists()


def test_daemon_exits_when_its_state_is_removed(tmp_path: Path) -> None:
    state = tmp_path / "nv"
    nvsim("--state", str(state), "up", "--gpus", "1")
    pid = json.loads(nvsim("--state", str(state), "status", "--json").stdout)["daemon"]["pid"]
    (state / "state").unlink()
    assert wait_for(lambda: not instance.daemon_alive(pid), timeout=5)
    nvsim("--state", str(state), "down")


def test_a_dead_daemon_is_reported_and_a_new_up_replaces_it(tmp_path: Path) -> None:
    state = tmp_path / "nv"
    nvsim("--state", str(state), "up", "--gpus", "1")
    pid = json.loads(nvsim("--state", str(state), "status", "--json").stdout)["daemon"]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not instance.daemon_alive(pid), timeout=5)
    assert_clean_error(nvsim("--state", str(state), "env"), 3, "not running", "daemon.log")
    assert nvsim("--state", str(state), "up", "--gpus", "1").returncode == 0
    assert nvsim("--state", str(state), "env").returncode == 0
    assert nvsim("--state", str(state), "down").returncode == 0


def test_state_dir_comes_from_option_after_subcommand_or_environment(tmp_path: Path) -> None:
    state = tmp_path / "nv"
    assert nvsim("up", "--state", str(state), "--gpus", "1", "--model", "h100").returncode == 0
    env = dict(os.environ, NVSIM_STATE=str(state))
    doc = json.loads(nvsim("status", "--json", env=env).stdout)
    assert doc["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3" and doc["gpus"][0]["fans"] == []
    assert nvsim("down", "--state", str(state)).returncode == 0


def test_seed_and_driver_choose_identity_and_versions(tmp_path: Path) -> None:
    docs = []
    for seed in ("1", "1", "2"):
        state = tmp_path / f"nv{len(docs)}"
        nvsim("--state", str(state), "up", "--seed", seed, "--driver", "550.54.14")
        docs.append(json.loads(nvsim("--state", str(state), "status", "--json").stdout))
        nvsim("--state", str(state), "down")
    uuids = [d["gpus"][0]["uuid"] for d in docs]
    assert uuids[0] == uuids[1] != uuids[2]
    assert docs[0]["nvml_version"] == "12.550.54.14" and docs[0]["cuda_version"] == "12.4"


@pytest.mark.root
def test_without_mknod_permission_up_works_and_says_there_are_no_device_nodes(
    tmp_path: Path,
) -> None:
    state = tmp_path / "nv"
    res = subprocess.run(
        ["setpriv", "--bounding-set=-mknod", tool("nvsim"), "--state", str(state), "up"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "no device nodes" in res.stderr and "needs root" in res.stderr
    assert list((state / "dev").iterdir()) == []
    assert json.loads(nvsim("--state", str(state), "status", "--json").stdout)["daemon"]["alive"]
    assert nvsim("--state", str(state), "down").returncode == 0


def test_state_dir_that_cannot_be_created_is_permission_denied_exit_4() -> None:
    res = nvsim("--state", "/sys/nvsim-test", "up")  # sysfs refuses even root
    assert_clean_error(res, 4, "cannot create /sys/nvsim-test", "--state")


def test_every_command_can_answer_in_json(tmp_path: Path) -> None:
    state = str(tmp_path / "nv")
    up = json.loads(nvsim("--state", state, "up", "--gpus", "2", "--json").stdout)
    assert [g["index"] for g in up["gpus"]] == [0, 1] and up["daemon"]["alive"]
    pid, uuid1 = up["daemon"]["pid"], up["gpus"][1]["uuid"]
    load = json.loads(nvsim("--state", state, "load", uuid1[:12], "50", "--json").stdout)
    assert load == {
        "changes": [
            {"index": 1, "uuid": uuid1, "change": "load 50%, 300 MiB held by no listed process"}
        ]
    }
    fault = json.loads(nvsim("--state", state, "fault", "1", "xid", "43", "--json").stdout)
    assert fault["changes"][0]["change"] == "Xid 43"
    reset = json.loads(nvsim("--state", state, "reset", "--json").stdout)
    assert [c["change"] for c in reset["changes"]] == ["reset", "reset"]
    down = json.loads(nvsim("--state", state, "down", "--json").stdout)
    assert f"stopped daemon {pid}" in down["done"]
