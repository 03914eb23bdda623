"""The catalog of GPU models nvsim can pretend to be, and how one is written into the state.

A :class:`GpuModel` holds what a board is: its identity as NVML reports it, memory, PCIe,
power limits, thermal thresholds, clock tables, offset ranges and fans.  The numbers follow
the retail boards (names exactly as ``nvidia-smi`` prints them, PCI device ids, power
limits); where the vendor publishes nothing (VBIOS strings, part numbers) they are
plausible inventions.

:func:`init_gpu` writes one model into a :class:`nvsim.layout.Gpu`.  Everything that
differs between two boards of the same model (UUID, serial, PCI bus, and the hidden
overclock headroom the physical model uses) is derived from a seed and the GPU index, so
tests are reproducible.  :func:`restore_defaults` is what a GPU reset does to the settings.

Nothing here does I/O.
"""

from __future__ import annotations

import ctypes
import hashlib
from dataclasses import dataclass, field

from nvsim import layout

# nvmlBrandType_t and nvmlDeviceArchitecture_t values from nvml.h.
BRAND_GEFORCE = 5
BRAND_NVIDIA = 14
ARCH_AMPERE = 7
ARCH_ADA = 8
ARCH_HOPPER = 9
ARCH_BLACKWELL = 10

NVIDIA_VENDOR = 0x10DE
MIB = 1024 * 1024
FIRST_IRQ = 130  # MSI vectors the kernel hands the boards, in enumeration order
AMBIENT_C = 30.0  # air temperature around every board (the model's thermal floor)

_GEFORCE_FEATURES = (
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


@dataclass(frozen=True)
class PstateClocks:
    """One performance state's clock ranges in MHz (memory runs at one clock per state)."""

    min_gpc: int
    max_gpc: int
    mem: int


@dataclass(frozen=True)
class GpuModel:
    key: str
    name: str
    pci_device: int
    pci_subsystem: int
    brand: int
    arch: int
    compute_capability: tuple[int, int]
    features: int
    mem_total_mib: int
    mem_reserved_mib: int
    pcie_gen: int
    pcie_width: int
    # Power in watts: limit constraints, and what the board draws idle and at full load.
    power_min_w: int
    power_default_w: int
    power_max_w: int
    power_idle_w: int
    power_full_w: int
    # Thermal thresholds in °C; 0 where the board reports none.
    temp_shutdown: int
    temp_slowdown: int
    temp_gpu_max: int
    temp_mem_max: int
    acoustic: tuple[int, int, int]  # min, default target, max; zeros when unsupported
    # Clocks in MHz.
    max_gpc: int
    max_mem: int
    max_video: int
    base_gpc: int
    boost_gpc: int  # what the board sustains under load at stock settings
    pstates: dict[int, PstateClocks]
    # Offsets in NVML units (MHz of the clock NVML reports) and the steps setters snap to.
    gpc_offset_range: tuple[int, int]
    mem_offset_range: tuple[int, int]
    gpc_offset_step: int
    mem_offset_step: int
    # Fans: count, min/max percent, rpm at 100 %.
    fans: tuple[int, int, int, int]
    vbios: str
    board_part_number: str
    gpu_cores: int
    mem_bus_width: int  # bits
    bar1_mib: int
    ecc_mode: int  # layout.ECC_MODE_*
    # inforom image, OEM, ECC and power object versions ("" where the board has none)
    inforom: tuple[str, str, str, str]
    nvlink_links: int = 0
    # Hidden headroom: above these offsets, under load, the board crashes.  Each GPU gets
    # its own value inside the range, derived from its UUID.
    stable_gpc_range: tuple[int, int] = (0, 0)
    stable_mem_range: tuple[int, int] = (0, 0)
    aliases: tuple[str, ...] = field(default=())


def _geforce_pstates(max_gpc: int, p0_mem: int, p2_mem: int) -> dict[int, PstateClocks]:
    return {
        0: PstateClocks(210, max_gpc, p0_mem),
        2: PstateClocks(210, max_gpc, p2_mem),
        5: PstateClocks(210, max_gpc * 2 // 3, 810),
        8: PstateClocks(210, max_gpc // 3, 405),
    }


RTX4090 = GpuModel(
    key="rtx4090",
    name="NVIDIA GeForce RTX 4090",
    pci_device=0x2684,
    pci_subsystem=0x167C10DE,
    brand=BRAND_GEFORCE,
    arch=ARCH_ADA,
    compute_capability=(8, 9),
    features=_GEFORCE_FEATURES,
    mem_total_mib=24564,
    mem_reserved_mib=341,
    pcie_gen=4,
    pcie_width=16,
    power_min_w=150,
    power_default_w=450,
    power_max_w=600,
    power_idle_w=22,
    power_full_w=420,
    temp_shutdown=92,
    temp_slowdown=89,
    temp_gpu_max=88,
    temp_mem_max=0,
    acoustic=(65, 83, 88),
    max_gpc=3105,
    max_mem=10501,
    max_video=2415,
    base_gpc=2235,
    boost_gpc=2730,
    pstates=_geforce_pstates(3105, 10501, 10251),
    gpc_offset_range=(-1000, 1000),
    mem_offset_range=(-2000, 6000),
    gpc_offset_step=15,
    mem_offset_step=1,
    fans=(2, 30, 100, 3000),
    vbios="95.02.18.80.87",
    board_part_number="900-1G136-2530-000",
    gpu_cores=16384,
    mem_bus_width=384,
    bar1_mib=256,
    ecc_mode=layout.ECC_MODE_DISABLED,
    inforom=("G002.0000.00.03", "2.0", "6.16", ""),
    stable_gpc_range=(120, 210),
    stable_mem_range=(800, 1600),
    aliases=("4090",),
)

RTX5090 = GpuModel(
    key="rtx5090",
    name="NVIDIA GeForce RTX 5090",
    pci_device=0x2B85,
    pci_subsystem=0x20E810DE,
    brand=BRAND_GEFORCE,
    arch=ARCH_BLACKWELL,
    compute_capability=(12, 0),
    features=_GEFORCE_FEATURES,
    mem_total_mib=32607,
    mem_reserved_mib=468,
    pcie_gen=5,
    pcie_width=16,
    power_min_w=400,
    power_default_w=575,
    power_max_w=600,
    power_idle_w=30,
    power_full_w=545,
    temp_shutdown=95,
    temp_slowdown=92,
    temp_gpu_max=90,
    temp_mem_max=0,
    acoustic=(65, 83, 88),
    max_gpc=3090,
    max_mem=14001,
    max_video=3090,
    base_gpc=2017,
    boost_gpc=2790,
    pstates=_geforce_pstates(3090, 14001, 13801),
    gpc_offset_range=(-1000, 1000),
    mem_offset_range=(-2000, 6000),
    gpc_offset_step=15,
    mem_offset_step=1,
    fans=(2, 30, 100, 3100),
    vbios="98.02.2E.00.D1",
    board_part_number="900-1G144-2530-000",
    gpu_cores=21760,
    mem_bus_width=512,
    bar1_mib=32768,
    ecc_mode=layout.ECC_MODE_DISABLED,
    inforom=("G005.0000.00.01", "2.1", "7.16", ""),
    stable_gpc_range=(150, 300),
    stable_mem_range=(1000, 2000),
    aliases=("5090",),
)

# The RTX 3060 stands for a board with fewer features: its vendor locks fan control (fans
# can be read, not set), the power limit cannot be raised above the default, the offset
# range is narrow, and it reports no memory temperature.
RTX3060 = GpuModel(
    key="rtx3060",
    name="NVIDIA GeForce RTX 3060",
    pci_device=0x2504,
    pci_subsystem=0x397D1462,
    brand=BRAND_GEFORCE,
    arch=ARCH_AMPERE,
    compute_capability=(8, 6),
    features=_GEFORCE_FEATURES & ~layout.FEAT_FAN_CONTROL,
    mem_total_mib=12288,
    mem_reserved_mib=245,
    pcie_gen=4,
    pcie_width=16,
    power_min_w=100,
    power_default_w=170,
    power_max_w=170,
    power_idle_w=13,
    power_full_w=160,
    temp_shutdown=98,
    temp_slowdown=95,
    temp_gpu_max=93,
    temp_mem_max=0,
    acoustic=(60, 83, 91),
    max_gpc=2100,
    max_mem=7501,
    max_video=1950,
    base_gpc=1320,
    boost_gpc=1875,
    pstates=_geforce_pstates(2100, 7501, 7251),
    gpc_offset_range=(-500, 500),
    mem_offset_range=(-1000, 1500),
    gpc_offset_step=15,
    mem_offset_step=1,
    fans=(2, 30, 100, 3300),
    vbios="94.06.25.00.4E",
    board_part_number="V397-001R",
    gpu_cores=3584,
    mem_bus_width=192,
    bar1_mib=256,
    ecc_mode=layout.ECC_MODE_NONE,
    inforom=("G001.0000.03.03", "2.0", "", ""),
    stable_gpc_range=(80, 160),
    stable_mem_range=(500, 1000),
    aliases=("3060",),
)

# H100 SXM5: no fans (the chassis cools it), no clock offsets, ECC HBM3 with a memory
# temperature sensor, one performance state, video decoders but no encoder, 18 NVLinks.
H100 = GpuModel(
    key="h100",
    name="NVIDIA H100 80GB HBM3",
    pci_device=0x2330,
    pci_subsystem=0x16C110DE,
    brand=BRAND_NVIDIA,
    arch=ARCH_HOPPER,
    compute_capability=(9, 0),
    features=(
        layout.FEAT_LOCKED_CLOCKS
        | layout.FEAT_POWER_LIMIT
        | layout.FEAT_PERSISTENCE
        | layout.FEAT_MEM_TEMP
        | layout.FEAT_COMPUTE_MODE
        | layout.FEAT_DECODER  # NVDEC and NVJPG; no NVENC on H100
        | layout.FEAT_JPEG
        | layout.FEAT_OFA
        | layout.FEAT_MIG
    ),
    mem_total_mib=81559,
    mem_reserved_mib=584,
    pcie_gen=5,
    pcie_width=16,
    power_min_w=200,
    power_default_w=700,
    power_max_w=700,
    power_idle_w=70,
    power_full_w=650,
    temp_shutdown=92,
    temp_slowdown=89,
    temp_gpu_max=87,
    temp_mem_max=95,
    acoustic=(0, 0, 0),
    max_gpc=1980,
    max_mem=2619,
    max_video=1755,
    base_gpc=1590,
    boost_gpc=1980,
    pstates={0: PstateClocks(345, 1980, 2619)},
    gpc_offset_range=(0, 0),
    mem_offset_range=(0, 0),
    gpc_offset_step=0,
    mem_offset_step=0,
    fans=(0, 0, 0, 0),
    vbios="96.00.74.00.0D",
    board_part_number="692-2G520-0200-000",
    gpu_cores=16896,
    mem_bus_width=5120,
    bar1_mib=131072,
    ecc_mode=layout.ECC_MODE_ENABLED,
    inforom=("G520.0200.00.05", "2.1", "7.16", ""),
    nvlink_links=18,  # the SXM5 part: 18 fourth-generation links
    aliases=("h100-sxm", "h100-80gb"),
)

CATALOG: dict[str, GpuModel] = {m.key: m for m in (RTX4090, RTX5090, RTX3060, H100)}


class UnknownModel(ValueError):
    """The name matches no model in the catalog."""


def get_model(name: str) -> GpuModel:
    """Look a model up by key or alias, case-insensitively."""
    wanted = name.strip().lower().replace(" ", "")
    for model in CATALOG.values():
        if wanted == model.key or wanted in model.aliases:
            return model
    known = ", ".join(sorted(CATALOG))
    raise UnknownModel(f"unknown GPU model {name!r} (known: {known})")


# --- per-board identity -------------------------------------------------------------


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


def make_uuid(seed: int, index: int) -> str:
    h = _digest("nvsim-uuid", seed, index).hex()
    return f"GPU-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def make_serial(seed: int, index: int) -> str:
    n = int.from_bytes(_digest("nvsim-serial", seed, index)[:8], "little")
    return f"1{n % 10**12:012d}"


def pci_bus(seed: int, index: int) -> int:
    """Buses rise with the index, as NVML enumerates in PCI order; the seed shifts them."""
    return 0x01 + (seed % 15) + index * 0x10


def stable_offsets(model: GpuModel, uuid: str) -> tuple[int, int]:
    """The hidden offsets (gpc, mem) this board survives under load."""
    h = _digest("nvsim-silicon", uuid)
    lo, hi = model.stable_gpc_range
    gpc = lo + int.from_bytes(h[0:4], "little") % (hi - lo + 1)
    lo, hi = model.stable_mem_range
    mem = lo + int.from_bytes(h[4:8], "little") % (hi - lo + 1)
    return gpc, mem


def _set_str(gpu: layout.Gpu, name: str, value: str) -> None:
    setattr(gpu, name, value.encode())


def init_gpu(
    gpu: layout.Gpu, model: GpuModel, index: int, seed: int, sensor_noise_pct: float = 0.0
) -> None:
    """Write the static description of one board, its default settings and an idle state.

    ``sensor_noise_pct`` is the amplitude of the noise on the power and temperature
    readings (see :mod:`nvsim.model`); the noise sequence is derived from the seed.
    """
    ctypes_zero(gpu)
    gpu.sensor_noise_pct = sensor_noise_pct
    gpu.noise_state = int.from_bytes(_digest("nvsim-noise", seed, index)[:8], "little") | 1
    uuid = make_uuid(seed, index)
    bus = pci_bus(seed, index)
    _set_str(gpu, "name", model.name)
    _set_str(gpu, "uuid", uuid)
    _set_str(gpu, "serial", make_serial(seed, index))
    _set_str(gpu, "pci_bus_id", f"00000000:{bus:02X}:00.0")
    _set_str(gpu, "vbios", model.vbios)
    _set_str(gpu, "board_part_number", model.board_part_number)
    _set_str(gpu, "model_key", model.key)
    gpu.pci_domain, gpu.pci_bus, gpu.pci_device = 0, bus, 0
    gpu.pci_device_id = (model.pci_device << 16) | NVIDIA_VENDOR
    gpu.pci_subsystem_id = model.pci_subsystem
    gpu.brand, gpu.arch = model.brand, model.arch
    gpu.cc_major, gpu.cc_minor = model.compute_capability
    gpu.minor_number = index
    gpu.features = model.features
    gpu.board_id = bus << 8
    image, oem, ecc, pwr = model.inforom
    _set_str(gpu, "inforom_image", image)
    _set_str(gpu, "inforom_oem", oem)
    _set_str(gpu, "inforom_ecc", ecc)
    _set_str(gpu, "inforom_pwr", pwr)
    gpu.gpu_cores, gpu.mem_bus_width = model.gpu_cores, model.mem_bus_width
    gpu.nvlink_links, gpu.ecc_mode = model.nvlink_links, model.ecc_mode
    gpu.bar1_total = model.bar1_mib * MIB
    gpu.irq = FIRST_IRQ + index
    gpu.mem_total = model.mem_total_mib * MIB
    gpu.mem_reserved = model.mem_reserved_mib * MIB
    gpu.pcie_max_gen, gpu.pcie_max_width = model.pcie_gen, model.pcie_width
    gpu.power_min_mw = model.power_min_w * 1000
    gpu.power_max_mw = model.power_max_w * 1000
    gpu.power_default_mw = model.power_default_w * 1000
    gpu.power_idle_mw = model.power_idle_w * 1000
    gpu.power_full_mw = model.power_full_w * 1000
    gpu.temp_shutdown, gpu.temp_slowdown = model.temp_shutdown, model.temp_slowdown
    gpu.temp_gpu_max, gpu.temp_mem_max = model.temp_gpu_max, model.temp_mem_max
    gpu.temp_acoustic_min, _, gpu.temp_acoustic_max = model.acoustic
    gpu.max_gpc_mhz, gpu.max_mem_mhz = model.max_gpc, model.max_mem
    gpu.max_video_mhz = model.max_video
    gpu.base_gpc_mhz, gpu.boost_gpc_mhz = model.base_gpc, model.boost_gpc
    gpu.gpc_offset_min, gpu.gpc_offset_max = model.gpc_offset_range
    gpu.mem_offset_min, gpu.mem_offset_max = model.mem_offset_range
    gpu.gpc_offset_step, gpu.mem_offset_step = model.gpc_offset_step, model.mem_offset_step
    for number, clocks in model.pstates.items():
        ps = gpu.pstates[number]
        ps.supported = 1
        ps.min_gpc_mhz, ps.max_gpc_mhz = clocks.min_gpc, clocks.max_gpc
        ps.min_mem_mhz = ps.max_mem_mhz = clocks.mem
    gpu.fan_count, gpu.fan_min_pct, gpu.fan_max_pct, gpu.fan_max_rpm = model.fans
    if model.features & layout.FEAT_CLOCK_OFFSETS:
        gpu.stable_gpc_offset, gpu.stable_mem_offset = stable_offsets(model, uuid)
    restore_defaults(gpu, model)
    _idle_state(gpu, model)


def ctypes_zero(gpu: layout.Gpu) -> None:
    ctypes.memset(ctypes.addressof(gpu), 0, ctypes.sizeof(gpu))


def restore_defaults(gpu: layout.Gpu, model: GpuModel) -> None:
    """Put every setting back to the board's default, as a GPU reset does."""
    for ps in gpu.pstates:
        ps.gpc_offset_mhz = 0
        ps.mem_offset_mhz = 0
    gpu.power_limit_mw = gpu.power_default_mw
    gpu.locked_gpc_min = gpu.locked_gpc_max = 0
    gpu.locked_mem_min = gpu.locked_mem_max = 0
    gpu.persistence = 0
    gpu.compute_mode = 0  # NVML_COMPUTEMODE_DEFAULT
    gpu.temp_acoustic_cur = model.acoustic[1]
    for fan in gpu.fans:
        fan.policy = layout.FAN_POLICY_AUTO
        fan.target_pct = gpu.fan_min_pct
    gpu.settings_seq += 1


def _idle_state(gpu: layout.Gpu, model: GpuModel) -> None:
    """A plausible idle reading before the first tick, so early readers see sane values."""
    idle = max(model.pstates)
    gpu.pstate = idle
    gpu.gpc_mhz = gpu.sm_mhz = model.pstates[idle].min_gpc
    gpu.mem_mhz = model.pstates[idle].mem
    gpu.video_mhz = gpu.gpc_mhz * model.max_video // model.max_gpc
    gpu.temp_c = AMBIENT_C + 4.0
    gpu.mem_temp_c = AMBIENT_C + 6.0
    gpu.power_mw = float(gpu.power_idle_mw)
    gpu.reasons = layout.REASON_GPU_IDLE
    gpu.pcie_gen, gpu.pcie_width = 1, model.pcie_width
    gpu.mem_used = base_memory(gpu)
    for i in range(gpu.fan_count):
        gpu.fans[i].speed_pct = float(gpu.fan_min_pct)
        gpu.fans[i].rpm = gpu.fan_min_pct * gpu.fan_max_rpm // 100


def base_memory(gpu: layout.Gpu) -> int:
    """Memory the driver itself holds on an idle board (bytes)."""
    return int(gpu.mem_total // 200)
