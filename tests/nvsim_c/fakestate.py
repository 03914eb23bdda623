"""A hand-filled nvsim state file, so the C library can be tested without the model.

:func:`create` writes ``<dir>/state`` with plausible values for two kinds of board (a
GeForce-like card with fans and overclocking, a datacenter card without fans) and returns a
:class:`FakeState` whose ``gpus`` are live ctypes views of the mapped file: assigning a field
changes what the library reports on its next call, exactly as a model tick would.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from nvsim import layout

MIB = 1024 * 1024
GEFORCE = "geforce"
DATACENTER = "datacenter"

GEFORCE_FEATURES = (
    layout.FEAT_FANS
    | layout.FEAT_FAN_CONTROL
    | layout.FEAT_CLOCK_OFFSETS
    | layout.FEAT_LOCKED_CLOCKS
    | layout.FEAT_POWER_LIMIT
    | layout.FEAT_PERSISTENCE
    | layout.FEAT_ENCODER
    | layout.FEAT_DECODER
    | layout.FEAT_OFA
    | layout.FEAT_COMPUTE_MODE
)
DATACENTER_FEATURES = (
    layout.FEAT_LOCKED_CLOCKS
    | layout.FEAT_POWER_LIMIT
    | layout.FEAT_PERSISTENCE
    | layout.FEAT_MEM_TEMP
    | layout.FEAT_COMPUTE_MODE
    | layout.FEAT_DECODER
    | layout.FEAT_JPEG
    | layout.FEAT_OFA
    | layout.FEAT_MIG
)


def _fill_geforce(g: layout.Gpu, index: int) -> None:
    g.name = b"NVIDIA GeForce RTX 4090"
    g.vbios = b"95.02.18.80.5F"
    g.board_part_number = b"900-1G136-2530-000"
    g.model_key = b"rtx4090"
    g.pci_device_id = (0x2684 << 16) | 0x10DE
    g.pci_subsystem_id = 0x167C10DE
    g.brand, g.arch, g.cc_major, g.cc_minor = 5, 8, 8, 9
    g.features = GEFORCE_FEATURES
    g.ecc_mode = layout.ECC_MODE_DISABLED
    g.gpu_cores, g.mem_bus_width, g.bar1_total = 16384, 384, 256 * MIB
    g.inforom_image, g.inforom_oem, g.inforom_ecc = b"G002.0000.00.03", b"2.0", b"6.16"
    g.mem_total, g.mem_reserved = 24564 * MIB, 333 * MIB
    g.pcie_max_gen, g.pcie_max_width = 4, 16
    g.power_min_mw, g.power_max_mw, g.power_default_mw = 150_000, 600_000, 450_000
    g.power_idle_mw, g.power_full_mw = 25_000, 440_000
    g.temp_shutdown, g.temp_slowdown, g.temp_gpu_max, g.temp_mem_max = 92, 89, 87, 0
    g.temp_acoustic_min, g.temp_acoustic_cur, g.temp_acoustic_max = 60, 83, 90
    g.max_gpc_mhz, g.max_mem_mhz, g.max_video_mhz = 3105, 10501, 2415
    g.base_gpc_mhz, g.boost_gpc_mhz = 2235, 2745
    g.gpc_offset_min, g.gpc_offset_max, g.gpc_offset_step = -200, 1000, 15
    g.mem_offset_min, g.mem_offset_max, g.mem_offset_step = -2000, 6000, 2
    for p, (lo, hi, mem) in {
        0: (210, 3105, 10501),
        2: (210, 3105, 10251),
        5: (210, 2070, 810),
        8: (210, 1035, 405),
    }.items():
        g.pstates[p].supported = 1
        g.pstates[p].min_gpc_mhz, g.pstates[p].max_gpc_mhz = lo, hi
        g.pstates[p].min_mem_mhz = g.pstates[p].max_mem_mhz = mem
    g.fan_count, g.fan_min_pct, g.fan_max_pct, g.fan_max_rpm = 2, 30, 100, 3000
    for f in range(2):
        g.fans[f].policy = layout.FAN_POLICY_AUTO
        g.fans[f].target_pct, g.fans[f].speed_pct, g.fans[f].rpm = 36, 35.6, 1068
    g.power_limit_mw = g.power_default_mw
    g.compute_mode = 0
    g.temp_c, g.mem_temp_c, g.power_mw, g.energy_mj = 41.6, 0.0, 30_412.4, 123_456_789.0
    g.gpc_mhz, g.sm_mhz, g.mem_mhz, g.video_mhz = 210, 210, 405, 555
    g.util_gpu, g.util_mem, g.util_enc, g.util_dec = 3, 1, 7, 9
    g.mem_used = 512 * MIB
    g.pstate = 8
    g.reasons = layout.REASON_GPU_IDLE
    g.pcie_gen, g.pcie_width, g.pcie_tx_kbs, g.pcie_rx_kbs = 1, 16, 1200, 3400


def _fill_datacenter(g: layout.Gpu, index: int) -> None:
    g.name = b"NVIDIA H100 80GB HBM3"
    g.vbios = b"96.00.74.00.0B"
    g.board_part_number = b"692-2G520-0200-000"
    g.model_key = b"h100"
    g.pci_device_id = (0x2330 << 16) | 0x10DE
    g.pci_subsystem_id = 0x16C110DE
    g.brand, g.arch, g.cc_major, g.cc_minor = 14, 9, 9, 0
    g.features = DATACENTER_FEATURES
    g.ecc_mode = layout.ECC_MODE_ENABLED
    g.gpu_cores, g.mem_bus_width, g.bar1_total = 16896, 5120, 131072 * MIB
    g.nvlink_links = 18
    g.inforom_image, g.inforom_oem, g.inforom_ecc = b"G520.0200.00.05", b"2.1", b"7.16"
    g.mem_total, g.mem_reserved = 81559 * MIB, 536 * MIB
    g.pcie_max_gen, g.pcie_max_width = 5, 16
    g.power_min_mw, g.power_max_mw, g.power_default_mw = 200_000, 700_000, 700_000
    g.power_idle_mw, g.power_full_mw = 70_000, 690_000
    g.temp_shutdown, g.temp_slowdown, g.temp_gpu_max, g.temp_mem_max = 92, 90, 87, 95
    g.max_gpc_mhz, g.max_mem_mhz, g.max_video_mhz = 1980, 2619, 1545
    g.base_gpc_mhz, g.boost_gpc_mhz = 1590, 1980
    g.pstates[0].supported = 1
    g.pstates[0].min_gpc_mhz, g.pstates[0].max_gpc_mhz = 345, 1980
    g.pstates[0].min_mem_mhz = g.pstates[0].max_mem_mhz = 2619
    g.power_limit_mw = g.power_default_mw
    g.temp_c, g.mem_temp_c, g.power_mw, g.energy_mj = 33.2, 38.7, 71_000.0, 5_000.0
    g.gpc_mhz, g.sm_mhz, g.mem_mhz, g.video_mhz = 345, 345, 2619, 765
    g.mem_used = 0
    g.pstate = 0
    g.pcie_gen, g.pcie_width = 5, 16


_FILL = {GEFORCE: _fill_geforce, DATACENTER: _fill_datacenter}


@dataclass
class FakeState:
    directory: Path
    _map: mmap.mmap
    state: layout.State

    @property
    def path(self) -> Path:
        return self.directory / "state"

    @property
    def header(self) -> layout.Header:
        return self.state.header

    def gpu(self, index: int) -> layout.Gpu:
        return self.state.gpus[index]

    def append_event(self, index: int, event_type: int, data: int = 0) -> None:
        """Append to a GPU's event ring the way the model does (slot first, then head)."""
        g = self.gpu(index)
        slot = g.events[g.event_head % layout.EVENT_RING]
        slot.type, slot.data, slot.time_us = event_type, data, 0
        g.event_head += 1

    def close(self) -> None:
        del self.state
        self._map.close()


def create(
    directory: Path, kinds: tuple[str, ...] = (GEFORCE, GEFORCE), driver: str = "575.64.03"
) -> FakeState:
    """Write ``directory/state`` with one GPU per entry of ``kinds`` and map it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "state"
    with open(path, "wb") as f:
        f.write(b"\0" * layout.STATE_SIZE)
    os.chmod(path, 0o644)
    fd = os.open(path, os.O_RDWR)
    try:
        mapped = mmap.mmap(fd, layout.STATE_SIZE)
    finally:
        os.close(fd)
    state = layout.State.from_buffer(mapped)
    h = state.header
    # c_char arrays stop at the first NUL on assignment; the magic contains NULs.
    ctypes.memmove(ctypes.addressof(h), layout.MAGIC, len(layout.MAGIC))
    h.layout_version = layout.LAYOUT_VERSION
    h.gpu_count = len(kinds)
    major, minor, _ = driver.split(".")
    h.driver_version = driver.encode()
    h.nvml_version = f"12.{driver}".encode()
    h.driver_major, h.driver_minor = int(major), int(minor)
    h.cuda_version = 12090
    h.time_scale = 1.0
    for i, kind in enumerate(kinds):
        g = state.gpus[i]
        _FILL[kind](g, i)
        g.uuid = f"GPU-{i:08x}-1111-2222-3333-{0xABCDEF000000 + i:012x}".encode()
        g.serial = f"13240{i:05d}".encode()
        g.pci_domain, g.pci_bus, g.pci_device = 0, 0x01 + i * 0x40, 0
        g.pci_bus_id = f"00000000:{g.pci_bus:02X}:00.0".encode()
        g.minor_number = i
        g.board_id = 0x100 + i
    return FakeState(directory=directory, _map=mapped, state=state)


def set_driver(fake: FakeState, version: str) -> None:
    major, minor, _ = version.split(".")
    fake.header.driver_version = version.encode()
    fake.header.driver_major, fake.header.driver_minor = int(major), int(minor)
