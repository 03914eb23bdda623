"""The driver update pipeline without the stack: the pure core (which package, the checks,
the health verdict, the install machine) and the driver-updater job on real bundles in
temporary directories standing in for its volumes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from nvcontrol.ct import update, update_core, updater
from nvcontrol.ct.update_core import (
    CheckHealth,
    Done,
    Gpu,
    HealthSample,
    Install,
    InstallRun,
    RollBack,
    TakeSnapshot,
)
from tests.conftest import NvsimInstance, tool

ADA = [Gpu(0, "GPU-a", "NVIDIA GeForce RTX 4090", "ada"),
       Gpu(1, "GPU-b", "NVIDIA GeForce RTX 4090", "ada")]  # fmt: skip


def test_choose_takes_the_named_package_the_named_version_or_the_newest() -> None:
    staged = {"a.tar.gz": "575.64.03", "b.tar.gz": "580.95.05", "c.tar.gz": None}
    assert update_core.choose(staged, None, None) == "b.tar.gz"
    assert update_core.choose(staged, "575.64.03", None) == "a.tar.gz"
    assert update_core.choose(staged, None, "c.tar.gz") == "c.tar.gz"
    with pytest.raises(ValueError, match=r"no staged package has driver 1\.2"):
        update_core.choose(staged, "1.2", None)
    with pytest.raises(ValueError, match="no driver package is staged"):
        update_core.choose({}, None, None)


def test_every_gpu_must_have_an_architecture_the_branch_supports() -> None:
    assert update_core.check_architectures(["ampere", "ada"], ADA) == []
    problems = update_core.check_architectures(["ampere"], ADA)
    assert [p.check for p in problems] == ["architecture"] * 2
    assert "GPU 1" in problems[1].message and update_core.exit_code_of(problems) == 2
    missing = update_core.check_kernel_headers("6.1.0-x", present=False)
    assert update_core.exit_code_of(missing) == 3 and "6.1.0-x" in missing[0].message


def test_health_verdict_names_what_is_wrong() -> None:
    ok = HealthSample(None, "580.1.2", 2)
    assert update_core.judge_health(ok, 2, "580.1.2") == []
    bad = HealthSample(None, "580.1.2", 2, ("1 (GPU is lost)",), ((0, 119),))
    assert update_core.judge_health(bad, 2, "580.1.2") == [
        "GPU 1 (GPU is lost) does not answer (lost)", "Xid 119 on GPU 0"]  # fmt: skip
    assert update_core.judge_health(HealthSample(None, "575.1", 1), 2, "580.1.2") == [
        "the driver reports 575.1, not 580.1.2", "1 of 2 GPUs are visible"]  # fmt: skip
    down = update_core.judge_health(HealthSample("Driver Not Loaded", None, 0), 2, "580.1.2")
    assert down == ["NVML does not answer: Driver Not Loaded"]


def test_install_machine_snapshots_installs_checks_and_rolls_back_on_a_bad_check() -> None:
    run = InstallRun("580.2", "575.1")
    assert run.begin() == [TakeSnapshot()]
    assert run.snapshot_taken("s1") == [Install("580.2")]
    assert run.installed() == [CheckHealth()]
    assert run.health(["Xid 119 on GPU 0"]) == [RollBack("575.1", "Xid 119 on GPU 0")]
    done = run.rolled_back()
    assert done == [Done(False, True, "Xid 119 on GPU 0")] and done[0].exit_code == 5

    good = InstallRun("580.2", "575.1")
    good.begin(), good.snapshot_taken("s2"), good.installed()
    assert good.health([]) == [Done(True, False)] and Done(True, False).exit_code == 0


def test_install_machine_undoes_a_failed_install_but_not_a_failed_snapshot() -> None:
    early = InstallRun("580.2", "575.1")
    early.begin()
    assert early.failed("TakeSnapshot", "disk full") == [
        Done(False, False, "TakeSnapshot: disk full")]  # fmt: skip
    late = InstallRun("580.2", "575.1")
    late.begin(), late.snapshot_taken("s")
    assert late.failed("Install", "boom") == [RollBack("575.1", "Install: boom")]


def test_a_journaled_run_killed_after_the_install_resumes_at_the_health_check() -> None:
    run = InstallRun("580.2", "575.1")
    run.begin(), run.snapshot_taken("s")  # the journal is written in phase "installing"
    resumed, actions = InstallRun.resume(json.loads(json.dumps(run.to_json())))
    assert actions == [CheckHealth()] and resumed.snapshot == "s"
    assert resumed.health(["1 of 2 GPUs are visible"])[0] == RollBack("575.1",
                                                                      "1 of 2 GPUs are visible")  # fmt: skip
    before = InstallRun("580.2", "575.1")
    before.begin()
    assert InstallRun.resume(before.to_json())[1][0] == Done(
        False, False, "the update was interrupted before the install")  # fmt: skip


def test_real_machines_refuse_without_the_package_manager_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from basis.errors import Unsupported

    monkeypatch.setenv("NVSIM_STATE", str(tmp_path / "no-nvsim"))
    monkeypatch.delenv(update.ALLOW_ENV, raising=False)
    with pytest.raises(Unsupported, match="package manager is off") as err:
        update.backend()
    assert err.value.exit_code == 3


# ----------------------------------------------------------------- the container's job


def pack(out: Path, version: str, *extra: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool("nvsim"), "driver", "pack", version, "-o", str(out), *extra],
                   check=True, capture_output=True)  # fmt: skip
    return out


@pytest.fixture
def volumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``/drivers`` and ``/lib/modules`` (with this kernel's headers) as directories."""
    drivers, modules = tmp_path / "drivers", tmp_path / "modules"
    (modules / os.uname().release / "build").mkdir(parents=True)
    (modules / os.uname().release / "build" / "Makefile").write_text("# headers\n")
    drivers.mkdir()
    monkeypatch.setattr(updater, "DRIVERS", drivers)
    monkeypatch.setattr(updater, "MODULES", modules)
    monkeypatch.setenv(updater.GPUS_ENV, json.dumps([g.to_json() for g in ADA]))
    monkeypatch.setenv("NVSIM_STATE", str(tmp_path / "none"))  # restored after the test
    return drivers


def test_job_with_nothing_staged_reports_so_and_succeeds(volumes: Path) -> None:
    report, code = updater.run(None, None)
    assert code == 0 and report["staged"] == [] and report["result"] == "nothing staged"


def test_job_verifies_builds_and_tests_a_good_package(volumes: Path) -> None:
    pack(volumes / "nvsim-driver-580.105.08.tar.gz", "580.105.08")
    pack(volumes / "nvsim-driver-575.64.03.tar.gz", "575.64.03")
    report, code = updater.run(None, None)
    assert code == 0, report["problems"]
    assert report["package"] == "nvsim-driver-580.105.08.tar.gz"  # the newest
    assert report["result"] == "ready to install"
    assert report["checks"]["architectures"] == "2 GPU(s) supported"
    assert report["build"]["library"].startswith("loads, exports the NVML entry points")
    assert updater.run("575.64.03", None)[0]["package"] == "nvsim-driver-575.64.03.tar.gz"


def test_job_rejects_a_wrong_checksum_an_unsupported_architecture_and_missing_headers(
    volumes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = pack(volumes / "nvsim-driver-580.105.08.tar.gz", "580.105.08")
    good.with_name(good.name + ".sha256").write_text("0" * 64 + f"  {good.name}\n")
    report, code = updater.run(None, good.name)
    assert code == 2 and report["problems"][0]["check"] == "checksum"

    pack(volumes / "nvsim-driver-550.54.14.tar.gz", "550.54.14", "--arch", "ampere")
    report, code = updater.run("550.54.14", None)
    assert code == 2 and [p["check"] for p in report["problems"]] == ["architecture"] * 2

    pack(volumes / "nvsim-driver-575.64.03.tar.gz", "575.64.03")
    monkeypatch.setattr(updater, "MODULES", volumes.parent / "no-modules")
    report, code = updater.run("575.64.03", None)
    assert code == 3 and report["problems"][0]["check"] == "kernel-headers"


def test_staging_copies_the_package_with_its_checksum(tmp_path: Path) -> None:
    from basis.errors import InvalidInput, NotFound

    src = pack(tmp_path / "in" / "nvsim-driver-575.64.03.tar.gz", "575.64.03")
    drivers = tmp_path / "drivers"
    assert update.stage(src, drivers) == src.name
    assert (drivers / src.name).read_bytes() == src.read_bytes()
    assert (drivers / (src.name + ".sha256")).read_text().split()[1] == src.name
    with pytest.raises(NotFound):
        update.stage(tmp_path / "missing.tar.gz", drivers)
    (tmp_path / "x.deb").write_text("x")
    with pytest.raises(InvalidInput):
        update.stage(tmp_path / "x.deb", drivers)


@pytest.mark.nvsim
def test_an_install_killed_before_its_health_check_is_checked_and_rolled_back_next_time(
    nvsim_gpus: NvsimInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal says the driver was installed but never checked (the process died): the
    next ``nvctl ct update`` checks it first, finds a GPU missing, and rolls it back."""
    nv = nvsim_gpus
    before = json.loads(nv.run("driver", "status", "--json").stdout)["current"]["version"]
    broken = tmp_path / "nvsim-driver-580.126.09.tar.gz"
    nv.run("driver", "pack", "580.126.09", "--fault", "gpu-missing", "-o", str(broken))
    run = InstallRun("580.126.09", before)
    run.begin(), run.snapshot_taken("s")
    journal = Path(nv.env["NVCTL_STATE_DIR"]) / update.JOURNAL
    update._save(journal, {"run": run.to_json(), "gpus": 2})
    nv.run("driver", "install", str(broken))  # ...and then the process was killed
    for key, value in nv.env.items():
        monkeypatch.setenv(key, value)

    said: list[str] = []
    done = asyncio.run(update.repair(said.append))
    assert done is not None and done.rolled_back and done.exit_code == 5
    assert "GPU 1" in str(done.cause) and "does not answer" in str(done.cause)
    assert said[0] == "finishing the interrupted update to driver 580.126.09"
    after = json.loads(nv.run("driver", "status", "--json").stdout)["current"]["version"]
    assert after == before and not journal.exists()
    assert asyncio.run(update.repair(said.append)) is None  # nothing left to finish
