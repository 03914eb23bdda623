"""``nvsim driver``: versioned driver bundles that install by switching the virtual
driver's version, keep the previous one for a rollback, and can be made broken."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import NvsimInstance, tool
from tests.nvsim.helpers import wait_for

pytestmark = pytest.mark.nvsim


def smi_version(nv: NvsimInstance) -> str:
    out = subprocess.run(
        [str(nv.state / "bin" / "nvidia-smi"), "--query-gpu=driver_version",
         "--format=csv,noheader"], env=nv.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.split()[0]


def nvml_view(nv: NvsimInstance) -> dict[str, object]:
    """What a fresh NVML client sees: the driver version and each GPU (or why not)."""
    proc = nv.nvctl("gpu", "list", "--json")
    if proc.returncode:
        return {"exit": proc.returncode, "stderr": proc.stderr}
    return json.loads(proc.stdout)


def pack(nv: NvsimInstance, tmp: Path, version: str, *extra: str) -> Path:
    out = tmp / f"{version}{'-'.join(extra)}.tar.gz"
    nv.run("driver", "pack", version, "-o", str(out), *extra)
    return out


def driver_json(nv: NvsimInstance, *args: str) -> dict:
    return json.loads(nv.run("driver", *args, "--json").stdout)


def test_install_switches_the_version_nvml_and_nvidia_smi_report_and_rollback_returns(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    nv = nvsim_gpus
    before = smi_version(nv)
    bundle = pack(nv, tmp_path, "575.64.03")
    verified = json.loads(nv.run("driver", "verify", str(bundle), "--json").stdout)
    assert verified["manifest"]["architectures"] == ["ampere", "ada", "hopper", "blackwell"]

    doc = driver_json(nv, "install", str(bundle))
    assert doc["current"]["version"] == "575.64.03" and doc["previous"]["version"] == before
    assert smi_version(nv) == "575.64.03"
    assert nv.status()["driver_version"] == "575.64.03"
    lib = (nv.state / "lib" / "libnvidia-ml.so.1").read_bytes()
    assert lib == (nv.state / "drivers" / "575.64.03" / "lib" / "libnvidia-ml.so.1").read_bytes()

    back = driver_json(nv, "rollback")
    assert back["current"]["version"] == before and smi_version(nv) == before
    assert driver_json(nv, "status")["previous"]["version"] == "575.64.03"


def test_a_bundle_without_a_gpus_architecture_leaves_that_gpu_unbound_until_rollback(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    nv = nvsim_gpus
    doc = driver_json(nv, "install", str(pack(nv, tmp_path, "550.54.14", "--arch", "ampere")))
    assert len(doc["current"]["unbound"]) == 2  # two Ada GPUs
    lost = nvml_view(nv)
    assert lost["exit"] == 6 and "lost" in str(lost["stderr"])  # ExitCode.GPU_LOST
    driver_json(nv, "rollback")
    assert len(nvml_view(nv)["gpus"]) == 2  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", ["gpu-missing", "nvml", "xid"])
def test_a_broken_bundle_fails_what_a_health_check_looks_at(
    nvsim_gpus: NvsimInstance, tmp_path: Path, fault: str
) -> None:
    nv = nvsim_gpus
    driver_json(nv, "install", str(pack(nv, tmp_path, "575.64.03", "--fault", fault)))
    view = nvml_view(nv)
    if fault == "gpu-missing":
        assert view["exit"] == 6 and "GPU 1 " in str(view["stderr"])
    elif fault == "nvml":
        assert view["exit"] == 3 and "not loaded" in str(view["stderr"])
    else:
        wait_for(lambda: nv.status()["gpus"][0]["xid_count"] >= 2, timeout=10)
    driver_json(nv, "rollback")
    assert len(nvml_view(nv)["gpus"]) == 2  # type: ignore[arg-type]
    assert nv.status()["driver_fault"] == 0  # the rolled-back driver reports no more Xids


def test_an_altered_bundle_is_refused_and_nothing_changes(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    nv = nvsim_gpus
    before = smi_version(nv)
    good = pack(nv, tmp_path, "575.64.03")
    (tmp_path / "bad.tar.gz").write_bytes(good.read_bytes())
    (tmp_path / "bad.tar.gz.sha256").write_text("0" * 64 + "  bad.tar.gz\n")
    refused = nv.run("driver", "verify", str(tmp_path / "bad.tar.gz"), check=False)
    assert refused.returncode == 2 and "checksum mismatch" in refused.stderr

    # A member changed inside the tar: SHA256SUMS no longer matches; install refuses.
    altered = tmp_path / "altered.tar.gz"
    with tarfile.open(good) as src, tarfile.open(altered, "w:gz") as dst:
        for info in src:
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "bin/nvidia-smi":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(info, io.BytesIO(data))
    res = nv.run("driver", "install", str(altered), check=False)
    assert res.returncode == 2 and "SHA256SUMS" in res.stderr and "Traceback" not in res.stderr
    assert smi_version(nv) == before and driver_json(nv, "status")["previous"] is None
    assert nv.run("driver", "pack", "575.64.03", "--arch", "blackwell", "-o",
                  str(tmp_path / "x.tar.gz"), check=False).returncode == 0  # fmt: skip
    old = nv.run("driver", "pack", "550.54.14", "--arch", "blackwell", check=False)
    assert old.returncode == 2 and "570" in old.stderr


def test_a_switch_killed_half_way_is_finished_by_the_next_command(
    nvsim_gpus: NvsimInstance, tmp_path: Path
) -> None:
    nv = nvsim_gpus
    bundle = pack(nv, tmp_path, "575.64.03")
    marker = tmp_path / "paused"
    env = {**nv.env, "NVSIM_DRIVER_TEST_PAUSE": str(marker)}
    proc = subprocess.Popen([tool("nvsim"), "--state", str(nv.state), "driver", "install",
                             str(bundle)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    wait_for(marker.exists, timeout=30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((nv.state / "driver.json").read_text())["pending"]  # what the kill left
    doc = driver_json(nv, "status")
    assert doc["current"]["version"] == "575.64.03" and smi_version(nv) == "575.64.03"
    assert json.loads((nv.state / "driver.json").read_text())["pending"] is None
