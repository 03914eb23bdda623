"""The binary layout of nvsim's shared state file — the one contract between Python and C.

Everything nvsim knows about its virtual GPUs lives in one memory-mapped file
(``$NVSIM_STATE/state``).  The C library (``libnvidia-ml.so.1``) maps it and serves
NVML calls from it; the Python model (the tick daemon and the ``nvsim`` CLI) maps the
same file and moves the physics forward.  Containers that get the state directory
bind-mounted see the same GPUs.

This module is the single source of truth for the layout: the C header
``nvsim_layout.h`` is generated from these ctypes structures at build time
(:func:`c_header`), so the two sides cannot drift apart.

Ownership of fields (who writes what) — readers may read everything:

* ``static``   written once by ``nvsim up`` (identity, ranges, model limits).
* ``setting``  written by NVML setters in C (and by ``nvsim reset``); the model reads them.
* ``dynamic``  written by the Python model on every tick; C getters read them.
* ``control``  written by the ``nvsim`` CLI (load, faults); the model reads them.
* ``events``   appended by Python under ``fcntl.lockf`` on the file; C only reads.

All integers are little-endian native, naturally aligned; the file is never resized
after ``nvsim up``.
"""

from __future__ import annotations

import ctypes
from ctypes import c_char, c_double, c_int32, c_uint32, c_uint64

MAGIC = b"NVSIM\x00\x01\x00"
LAYOUT_VERSION = 2
MAX_GPUS = 16
MAX_PSTATES = 16  # NVML_MAX_GPU_PERF_PSTATES
MAX_FANS = 4
MAX_PROCS = 16
EVENT_RING = 64

# Feature bits (``Gpu.features``): a model that lacks one answers NOT_SUPPORTED.
FEAT_FANS = 1 << 0  # fans can be read
FEAT_FAN_CONTROL = 1 << 1  # fans can be set (policy, speed)
FEAT_CLOCK_OFFSETS = 1 << 2  # nvmlDeviceGet/SetClockOffsets and VF offsets
FEAT_LOCKED_CLOCKS = 1 << 3  # nvmlDeviceSetGpuLockedClocks / MemoryLockedClocks
FEAT_POWER_LIMIT = 1 << 4  # power limit set
FEAT_PERSISTENCE = 1 << 5  # persistence mode set
FEAT_ENCODER = 1 << 6  # NVENC: encoder utilization, sessions, stats
# 1 << 7 was "ECC memory"; ``Gpu.ecc_mode`` says that now
FEAT_MEM_TEMP = 1 << 8  # memory temperature sensor / threshold
FEAT_COMPUTE_MODE = 1 << 9  # compute mode set
FEAT_DECODER = 1 << 10  # NVDEC: decoder utilization
FEAT_JPEG = 1 << 11  # NVJPG: JPEG decoder utilization
FEAT_OFA = 1 << 12  # optical flow accelerator utilization
FEAT_MIG = 1 << 13  # Multi-Instance GPU capable (MIG mode reads, here always disabled)

# Event types as NVML defines them (nvmlEventType*).
EVENT_SINGLE_BIT_ECC = 0x1
EVENT_DOUBLE_BIT_ECC = 0x2
EVENT_PSTATE = 0x4
EVENT_XID_CRITICAL = 0x8
EVENT_CLOCK = 0x10
EVENT_POWER_SOURCE_CHANGE = 0x80
EVENT_MIG_CONFIG_CHANGE = 0x100
EVENT_CLOCK_CHANGE = 0x200  # not an NVML type; internal
SUPPORTED_EVENTS = EVENT_PSTATE | EVENT_XID_CRITICAL | EVENT_CLOCK

# Clocks-event (throttle) reasons, as nvmlClocksEventReason*.
REASON_GPU_IDLE = 0x1
REASON_APP_CLOCKS = 0x2
REASON_SW_POWER_CAP = 0x4
REASON_HW_SLOWDOWN = 0x8
REASON_SYNC_BOOST = 0x10
REASON_SW_THERMAL = 0x20
REASON_HW_THERMAL = 0x40
REASON_HW_POWER_BRAKE = 0x80
REASON_DISPLAY_CLOCKS = 0x100
SUPPORTED_REASONS = (
    REASON_GPU_IDLE
    | REASON_APP_CLOCKS
    | REASON_SW_POWER_CAP
    | REASON_HW_SLOWDOWN
    | REASON_SW_THERMAL
    | REASON_HW_THERMAL
    | REASON_HW_POWER_BRAKE
)

# Fan control policy (nvmlFanControlPolicy_t).
FAN_POLICY_AUTO = 0  # NVML_FAN_POLICY_TEMPERATURE_CONTINOUS_SW
FAN_POLICY_MANUAL = 1  # NVML_FAN_POLICY_MANUAL

# ECC mode (``Gpu.ecc_mode``): whether the board has ECC memory and whether it is on.
ECC_MODE_NONE = 0  # no ECC: the ECC calls answer NOT_SUPPORTED
ECC_MODE_DISABLED = 1  # ECC-capable memory, ECC off
ECC_MODE_ENABLED = 2

PROC_COMPUTE = 1
PROC_GRAPHICS = 2

LOST_NONE = 0
LOST_YES = 1

# How an installed driver bundle misbehaves (``Header.driver_fault``, set by ``nvsim driver
# install`` from the bundle's manifest, cleared by a rollback).
DRIVER_FAULT_NVML = 1 << 0  # nvmlInit answers DRIVER_NOT_LOADED (the module did not load)
DRIVER_FAULT_XID = 1 << 1  # the daemon reports Xid 119 (GSP RPC timeout) on GPU 0 each second


class Fan(ctypes.Structure):
    _fields_ = [
        ("policy", c_uint32),  # setting: FAN_POLICY_*
        ("target_pct", c_uint32),  # setting when manual; dynamic (model's choice) when auto
        ("speed_pct", c_double),  # dynamic: actual speed, lags the target
        ("rpm", c_uint32),  # dynamic
        ("_pad", c_uint32),
    ]


class Pstate(ctypes.Structure):
    _fields_ = [
        ("supported", c_uint32),  # static: 1 if this pstate exists
        ("min_gpc_mhz", c_uint32),  # static
        ("max_gpc_mhz", c_uint32),  # static
        ("min_mem_mhz", c_uint32),  # static
        ("max_mem_mhz", c_uint32),  # static
        ("gpc_offset_mhz", c_int32),  # setting
        ("mem_offset_mhz", c_int32),  # setting
        ("_pad", c_uint32),
    ]


class Process(ctypes.Structure):
    _fields_ = [
        ("pid", c_uint32),  # 0 = empty slot
        ("kind", c_uint32),  # PROC_COMPUTE | PROC_GRAPHICS bits
        ("used_bytes", c_uint64),
        ("sm_util", c_uint32),  # control: this process's share of the load, percent
        ("_pad", c_uint32),
    ]


class Event(ctypes.Structure):
    _fields_ = [
        ("type", c_uint64),  # EVENT_*
        ("data", c_uint64),  # Xid code for EVENT_XID_CRITICAL
        ("time_us", c_uint64),  # CLOCK_REALTIME microseconds
    ]


class Gpu(ctypes.Structure):
    _fields_ = [
        # --- static: identity -------------------------------------------------
        ("name", c_char * 96),
        ("uuid", c_char * 96),  # "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        ("serial", c_char * 32),
        ("pci_bus_id", c_char * 32),  # "00000000:01:00.0" (NVML's 16-char form)
        ("vbios", c_char * 32),
        ("board_part_number", c_char * 32),
        ("model_key", c_char * 32),  # nvsim model name, e.g. "rtx4090"
        ("pci_domain", c_uint32),
        ("pci_bus", c_uint32),
        ("pci_device", c_uint32),
        ("pci_device_id", c_uint32),  # (device << 16) | 0x10DE
        ("pci_subsystem_id", c_uint32),
        ("brand", c_uint32),  # nvmlBrandType_t
        ("arch", c_uint32),  # nvmlDeviceArchitecture_t
        ("cc_major", c_uint32),
        ("cc_minor", c_uint32),
        ("minor_number", c_uint32),
        ("features", c_uint32),  # FEAT_* bits
        ("board_id", c_uint32),
        ("inforom_image", c_char * 16),  # "" = the board reports no inforom
        ("inforom_oem", c_char * 16),
        ("inforom_ecc", c_char * 16),  # "" on boards without ECC
        ("inforom_pwr", c_char * 16),
        ("gpu_cores", c_uint32),  # CUDA cores
        ("mem_bus_width", c_uint32),  # bits
        ("nvlink_links", c_uint32),  # 0 = no NVLink
        ("ecc_mode", c_uint32),  # ECC_MODE_*
        ("irq", c_uint32),
        ("_pad0", c_uint32),
        ("bar1_total", c_uint64),  # bytes
        ("sensor_noise_pct", c_double),  # amplitude of the power and temperature sensors' noise
        # --- static: memory, pcie ----------------------------------------------
        ("mem_total", c_uint64),  # bytes
        ("mem_reserved", c_uint64),  # bytes (v2 memory info)
        ("pcie_max_gen", c_uint32),
        ("pcie_max_width", c_uint32),
        # --- static: power -----------------------------------------------------
        ("power_min_mw", c_uint32),  # limit constraints
        ("power_max_mw", c_uint32),
        ("power_default_mw", c_uint32),
        ("power_idle_mw", c_uint32),  # model: draw at idle
        ("power_full_mw", c_uint32),  # model: draw at 100% load, stock clocks
        # --- static: thermal ---------------------------------------------------
        ("temp_shutdown", c_uint32),
        ("temp_slowdown", c_uint32),
        ("temp_mem_max", c_uint32),
        ("temp_gpu_max", c_uint32),
        ("temp_acoustic_min", c_uint32),
        ("temp_acoustic_max", c_uint32),
        ("temp_acoustic_cur", c_uint32),  # setting (target temperature)
        # --- static: clocks ----------------------------------------------------
        ("max_gpc_mhz", c_uint32),  # nvmlDeviceGetMaxClockInfo(GRAPHICS/SM)
        ("max_mem_mhz", c_uint32),
        ("max_video_mhz", c_uint32),
        ("base_gpc_mhz", c_uint32),  # default application clock
        ("boost_gpc_mhz", c_uint32),  # typical boost under load at stock settings
        ("gpc_offset_min", c_int32),  # offset ranges (MHz, NVML units)
        ("gpc_offset_max", c_int32),
        ("mem_offset_min", c_int32),
        ("mem_offset_max", c_int32),
        ("gpc_offset_step", c_uint32),  # setters snap to multiples of this
        ("mem_offset_step", c_uint32),
        ("pstates", Pstate * MAX_PSTATES),  # index = pstate number
        # --- static: fans ------------------------------------------------------
        ("fan_count", c_uint32),
        ("fan_min_pct", c_uint32),
        ("fan_max_pct", c_uint32),
        ("fan_max_rpm", c_uint32),
        ("fans", Fan * MAX_FANS),
        # --- hidden model parameters (never exposed through NVML) --------------
        ("stable_gpc_offset", c_int32),  # above this, under load, the GPU faults
        ("stable_mem_offset", c_int32),
        # --- settings (written by C setters) -----------------------------------
        ("power_limit_mw", c_uint32),
        ("locked_gpc_min", c_uint32),  # 0/0 = not locked
        ("locked_gpc_max", c_uint32),
        ("locked_mem_min", c_uint32),
        ("locked_mem_max", c_uint32),
        ("persistence", c_uint32),
        ("compute_mode", c_uint32),  # nvmlComputeMode_t
        ("settings_seq", c_uint32),  # bumped by every setter
        # --- control (written by the nvsim CLI) --------------------------------
        ("load_pct", c_uint32),  # requested load, 0..100
        ("load_mem_bytes", c_uint64),  # memory held by the load
        ("fault_thermal", c_uint32),  # 1 = cooling failure: temperature runs away
        ("lost", c_uint32),  # LOST_YES = GPU fell off the bus until reset
        # --- dynamic (written by the model) ------------------------------------
        ("temp_c", c_double),
        ("mem_temp_c", c_double),
        ("power_mw", c_double),
        ("energy_mj", c_double),  # total since up, millijoules
        ("gpc_mhz", c_uint32),
        ("sm_mhz", c_uint32),
        ("mem_mhz", c_uint32),
        ("video_mhz", c_uint32),
        ("util_gpu", c_uint32),
        ("util_mem", c_uint32),
        ("util_enc", c_uint32),
        ("util_dec", c_uint32),
        ("mem_used", c_uint64),  # bytes
        ("pstate", c_uint32),
        ("reasons", c_uint64),  # current clocks-event reasons
        ("pcie_gen", c_uint32),
        ("pcie_width", c_uint32),
        ("pcie_tx_kbs", c_uint32),
        ("pcie_rx_kbs", c_uint32),
        ("instability", c_double),  # model: accumulated over-limit stress
        ("noise_state", c_uint64),  # model: the sensors' noise generator (seeded at up)
        ("xid_count", c_uint32),
        ("_pad2", c_uint32),
        ("procs", Process * MAX_PROCS),
        # --- events ------------------------------------------------------------
        ("event_head", c_uint64),  # total events ever appended; slot = n % EVENT_RING
        ("events", Event * EVENT_RING),
    ]


class Header(ctypes.Structure):
    _fields_ = [
        ("magic", c_char * 8),
        ("layout_version", c_uint32),
        ("gpu_count", c_uint32),
        ("driver_version", c_char * 32),  # e.g. "575.64.03"
        ("nvml_version", c_char * 32),  # e.g. "12.575.64.03"
        ("driver_major", c_uint32),  # 575: gates functions newer than the driver
        ("driver_minor", c_uint32),
        ("cuda_version", c_uint32),  # e.g. 12090 for 12.9
        ("daemon_pid", c_uint32),
        ("tick_us", c_uint64),  # CLOCK_REALTIME of the model's last tick
        ("start_us", c_uint64),  # when `nvsim up` ran
        ("time_scale", c_double),  # model speed-up factor (1.0 = real time)
        ("seq", c_uint64),  # seqlock: odd while a writer is inside (see state.py)
        ("down", c_uint32),  # set by `nvsim down`: clients get errors, not old values
        ("driver_fault", c_uint32),  # DRIVER_FAULT_* of the installed driver (nvsim driver)
        ("daemon_pidns", c_uint64),  # inode of the daemon's PID namespace (0 = unknown)
    ]


class State(ctypes.Structure):
    _fields_ = [("header", Header), ("gpus", Gpu * MAX_GPUS)]


STATE_SIZE = ctypes.sizeof(State)

_C_TYPES = {
    c_uint32: "uint32_t",
    c_int32: "int32_t",
    c_uint64: "uint64_t",
    c_double: "double",
}


def _c_field(name: str, ctype: object) -> str:
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Array):
        elem = ctype._type_
        if elem is c_char:
            return f"    char {name}[{ctype._length_}];"
        inner = _c_field(name, elem).rstrip(";")
        return f"{inner}[{ctype._length_}];"
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
        return f"    nvsim_{ctype.__name__.lower()}_t {name};"
    return f"    {_C_TYPES[ctype]} {name};"  # type: ignore[index]


def _c_struct(struct: type[ctypes.Structure]) -> str:
    lines = ["typedef struct {"]
    for name, ctype in struct._fields_:  # type: ignore[misc]
        lines.append(_c_field(name, ctype))
    lines.append(f"}} nvsim_{struct.__name__.lower()}_t;")
    lines.append(
        f"_Static_assert(sizeof(nvsim_{struct.__name__.lower()}_t) == "
        f'{ctypes.sizeof(struct)}, "layout of {struct.__name__}");'
    )
    return "\n".join(lines)


def c_header() -> str:
    """The C declarations of this layout, with static size checks."""
    consts = {
        k: v
        for k, v in globals().items()
        if k.isupper() and isinstance(v, int) and not k.startswith("_") and k != "STATE_SIZE"
    }
    out = [
        "/* Generated from nvsim/layout.py by nvsim.build — do not edit. */",
        "#pragma once",
        "#include <stdint.h>",
        "",
    ]
    out += [
        f"#define NVSIM_{k} {v}ULL" if v > 0x7FFFFFFF else f"#define NVSIM_{k} {v}"
        for k, v in consts.items()
    ]
    out.append(f'#define NVSIM_MAGIC "{MAGIC.decode("latin-1").encode("unicode_escape").decode()}"')
    out.append("")
    for struct in (Fan, Pstate, Process, Event, Gpu, Header, State):
        out.append(_c_struct(struct))
        out.append("")
    return "\n".join(out)
