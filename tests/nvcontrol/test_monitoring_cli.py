"""nvctl gpu list/info/watch on nvsim: what users see, in text and JSON, and the errors."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import NvsimInstance, tool

pytestmark = pytest.mark.nvsim


def test_list_json_names_every_gpu_with_identity(nvsim_gpus: NvsimInstance) -> None:
    doc = json.loads(nvsim_gpus.nvctl("gpu", "list", "--json", check=True).stdout)
    status = nvsim_gpus.status()
    assert [g["uuid"] for g in doc["gpus"]] == [g["uuid"] for g in status["gpus"]]
    assert doc["driver"]["driver_version"]
    assert all(g["memory_total_mib"] > 20000 for g in doc["gpus"])


def test_list_table_shows_names_and_uuids(nvsim_gpus: NvsimInstance) -> None:
    out = nvsim_gpus.nvctl("gpu", "list", check=True).stdout
    doc = json.loads(nvsim_gpus.nvctl("gpu", "list", "--json", check=True).stdout)
    for g in doc["gpus"]:
        assert g["uuid"] in out
    assert "RTX 4090" in out


def test_info_selects_by_uuid_prefix_and_pci_id(nvsim_gpus: NvsimInstance) -> None:
    gpus = json.loads(nvsim_gpus.nvctl("gpu", "list", "--json", check=True).stdout)["gpus"]
    second = gpus[1]
    by_uuid = json.loads(
        nvsim_gpus.nvctl("gpu", "info", "-i", second["uuid"][:12], "--json", check=True).stdout
    )
    by_pci = json.loads(
        nvsim_gpus.nvctl(
            "gpu", "info", "--gpu", second["pci_bus_id"][4:], "--json", check=True
        ).stdout
    )
    assert [g["uuid"] for g in by_uuid["gpus"]] == [second["uuid"]]
    assert [g["uuid"] for g in by_pci["gpus"]] == [second["uuid"]]


def test_info_reports_ranges_offsets_and_limits(nvsim_gpus: NvsimInstance) -> None:
    info = json.loads(nvsim_gpus.nvctl("gpu", "info", "-i", "0", "--json", check=True).stdout)[
        "gpus"
    ][0]
    p = info["power"]
    assert p["min_limit_w"] < p["default_limit_w"] <= p["max_limit_w"]
    assert p["limit_pct_of_default"] == pytest.approx(100.0)
    assert info["offsets"]["api"] == "clock_offsets"
    p0 = info["offsets"]["pstates"]["P0"]["graphics"]
    assert p0["min_mhz"] < 0 < p0["max_mhz"] and p0["offset_mhz"] == 0
    assert "P0" in info["pstates"] and info["pstates"]["P0"]["graphics_mhz"][1] > 2000
    assert info["fans"] and info["fans"][0]["policy"] == "auto"
    assert info["temperature"]["thresholds"]["slowdown_c"] > 80
    assert info["pcie"]["max_generation"] >= 4


@pytest.mark.parametrize("nvsim_gpus", [{"gpus": 1, "model": "h100"}], indirect=True)
def test_h100_without_fans_or_offsets_shows_na_not_errors(nvsim_gpus: NvsimInstance) -> None:
    res = nvsim_gpus.nvctl("gpu", "info", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)["gpus"][0]
    assert info["fans"] == []
    assert info["offsets"]["api"] is None
    text = nvsim_gpus.nvctl("gpu", "info", check=True).stdout
    assert "N/A" in text and "Traceback" not in text


def test_watch_json_emits_one_object_per_sample(nvsim_gpus: NvsimInstance) -> None:
    nvsim_gpus.run("load", "0", "100")
    res = nvsim_gpus.nvctl(
        "gpu", "watch", "--json", "--count", "3", "--interval", "0.2", check=True
    )
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 3
    samples = [json.loads(line) for line in lines]
    assert all(len(s["gpus"]) == 2 for s in samples)
    assert samples[0]["time"] < samples[2]["time"]
    assert samples[-1]["gpus"][0]["gpu_util_pct"] > samples[-1]["gpus"][1]["gpu_util_pct"]


def test_watch_table_prints_samples(nvsim_gpus: NvsimInstance) -> None:
    out = nvsim_gpus.nvctl("gpu", "watch", "--count", "2", "--interval", "0.1", check=True).stdout
    assert out.count("RTX 4090") == 4


def test_unknown_gpu_is_a_clear_error_exit_2(nvsim_gpus: NvsimInstance) -> None:
    res = nvsim_gpus.nvctl("gpu", "info", "-i", "GPU-doesnotexist")
    assert res.returncode == 2
    assert "no GPU matches" in res.stderr and "Traceback" not in res.stderr
    res = nvsim_gpus.nvctl("gpu", "watch", "-i", "5", "--count", "1")
    assert res.returncode == 2 and "no GPU with index 5" in res.stderr


def test_lost_gpu_shows_as_lost_in_watch(nvsim_gpus: NvsimInstance) -> None:
    nvsim_gpus.run("fault", "1", "lost")
    doc = json.loads(nvsim_gpus.nvctl("gpu", "watch", "--json", "--count", "1", check=True).stdout)
    assert doc["gpus"][1] == {"index": 1, "uuid": doc["gpus"][1]["uuid"], "lost": True}
    assert doc["gpus"][0]["lost"] is False


@pytest.mark.parametrize("with_library", [False, True], ids=["no-library", "library-no-driver"])
def test_no_driver_says_how_to_start_nvsim_exit_3(tmp_path, with_library: bool) -> None:
    from nvsim.build import library_path

    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "NVSIM_STATE")}
    env["NVSIM_STATE"] = str(tmp_path / "nothing-here")
    if with_library:
        env["LD_LIBRARY_PATH"] = str(library_path().parent)
    res = subprocess.run([tool("nvctl"), "gpu", "list"], env=env, capture_output=True, text=True)
    assert res.returncode == 3, res.stderr
    assert "no NVIDIA driver found" in res.stderr
    assert "nvsim up" in res.stderr and "Traceback" not in res.stderr
