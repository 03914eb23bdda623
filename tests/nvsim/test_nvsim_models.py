"""The GPU catalog and per-board identity: realistic, deterministic, distinct."""

from __future__ import annotations

import re

import pynvml
import pytest

from nvsim import layout, models
from tests.nvsim.helpers import make_gpu


@pytest.mark.parametrize("gpu_model", list(models.CATALOG.values()), ids=list(models.CATALOG))
def test_every_model_is_internally_consistent(gpu_model: models.GpuModel) -> None:
    gpu = make_gpu(gpu_model)
    assert gpu.name.decode().startswith("NVIDIA ")
    assert gpu.power_min_mw < gpu.power_default_mw <= gpu.power_max_mw
    assert gpu.power_idle_mw < gpu.power_full_mw <= gpu.power_default_mw
    assert gpu.base_gpc_mhz <= gpu.boost_gpc_mhz <= gpu.max_gpc_mhz
    assert gpu.temp_slowdown < gpu.temp_shutdown
    assert gpu.pstates[0].supported and gpu.pstates[0].max_mem_mhz == gpu.max_mem_mhz
    assert gpu.pci_device_id & 0xFFFF == 0x10DE
    assert gpu.power_limit_mw == gpu.power_default_mw
    has_offsets = bool(gpu.features & layout.FEAT_CLOCK_OFFSETS)
    assert (gpu.gpc_offset_step > 0) == has_offsets
    assert (gpu.fan_count > 0) == bool(gpu.features & layout.FEAT_FANS)


def test_names_and_enums_match_what_nvml_reports_for_the_real_boards() -> None:
    rtx4090, h100 = make_gpu(models.RTX4090), make_gpu(models.H100)
    assert rtx4090.name == b"NVIDIA GeForce RTX 4090"
    assert rtx4090.arch == pynvml.NVML_DEVICE_ARCH_ADA
    assert rtx4090.brand == pynvml.NVML_BRAND_GEFORCE
    assert (rtx4090.cc_major, rtx4090.cc_minor) == (8, 9)
    assert rtx4090.pci_device_id == 0x268410DE
    assert (rtx4090.power_min_mw, rtx4090.power_default_mw, rtx4090.power_max_mw) == (
        150_000,
        450_000,
        600_000,
    )
    assert h100.name == b"NVIDIA H100 80GB HBM3"
    assert h100.arch == pynvml.NVML_DEVICE_ARCH_HOPPER
    assert h100.brand == pynvml.NVML_BRAND_NVIDIA
    assert h100.fan_count == 0 and h100.ecc_mode == layout.ECC_MODE_ENABLED
    assert h100.nvlink_links == 18 and h100.features & layout.FEAT_MIG
    assert h100.mem_total > 80 * 10**9
    assert [p for p in range(layout.MAX_PSTATES) if h100.pstates[p].supported] == [0]
    rtx5090, rtx3060 = make_gpu(models.RTX5090), make_gpu(models.RTX3060)
    assert rtx5090.arch == pynvml.NVML_DEVICE_ARCH_BLACKWELL and rtx5090.pcie_max_gen == 5
    assert rtx3060.arch == pynvml.NVML_DEVICE_ARCH_AMPERE
    assert not rtx3060.features & layout.FEAT_FAN_CONTROL
    assert rtx3060.power_max_mw == rtx3060.power_default_mw


def test_identity_is_deterministic_per_seed_and_index() -> None:
    a, b = make_gpu(index=0, seed=7), make_gpu(index=0, seed=7)
    assert a.uuid == b.uuid and a.serial == b.serial and a.pci_bus_id == b.pci_bus_id
    assert re.fullmatch(
        rb"GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", a.uuid
    )
    assert re.fullmatch(rb"00000000:[0-9A-F]{2}:00\.0", a.pci_bus_id)
    others = [make_gpu(index=1, seed=7), make_gpu(index=0, seed=8)]
    assert len({g.uuid for g in [a, *others]}) == 3
    buses = [make_gpu(index=i, seed=3).pci_bus for i in range(layout.MAX_GPUS)]
    assert buses == sorted(buses) and len(set(buses)) == layout.MAX_GPUS and max(buses) <= 0xFF


def test_hidden_stable_offsets_vary_by_board_inside_the_model_range() -> None:
    boards = [make_gpu(index=i, seed=s) for i in range(4) for s in range(4)]
    gpcs = {g.stable_gpc_offset for g in boards}
    mems = {g.stable_mem_offset for g in boards}
    assert min(gpcs) >= 120 and max(gpcs) <= 210 and len(gpcs) > 4
    assert min(mems) >= 800 and max(mems) <= 1600 and len(mems) > 4


def test_restore_defaults_undoes_every_setting() -> None:
    gpu = make_gpu()
    gpu.pstates[0].gpc_offset_mhz, gpu.pstates[2].mem_offset_mhz = 150, 1000
    gpu.power_limit_mw = 300_000
    gpu.locked_gpc_min, gpu.locked_gpc_max = 1000, 1500
    gpu.fans[0].policy, gpu.fans[0].target_pct = layout.FAN_POLICY_MANUAL, 90
    gpu.persistence, gpu.compute_mode, gpu.temp_acoustic_cur = 1, 3, 70
    seq = gpu.settings_seq
    models.restore_defaults(gpu, models.RTX4090)
    assert gpu.pstates[0].gpc_offset_mhz == 0 and gpu.pstates[2].mem_offset_mhz == 0
    assert gpu.power_limit_mw == 450_000
    assert (gpu.locked_gpc_min, gpu.locked_gpc_max) == (0, 0)
    assert gpu.fans[0].policy == layout.FAN_POLICY_AUTO
    assert (gpu.persistence, gpu.compute_mode, gpu.temp_acoustic_cur) == (0, 0, 83)
    assert gpu.settings_seq == seq + 1


def test_models_are_found_by_alias_and_unknown_names_list_the_catalog() -> None:
    assert models.get_model("RTX4090") is models.RTX4090
    assert models.get_model("h100-sxm") is models.H100
    with pytest.raises(models.UnknownModel, match="rtx3060, rtx4090, rtx5090"):
        models.get_model("rtx2080")
