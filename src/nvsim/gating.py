"""Which NVML functions each pretended driver branch has: the one table of driver gating.

nvsim pretends to be driver ``header.driver_major`` (e.g. 535).  A real driver of an older
branch has no symbol for a function that first shipped later, so a client that looks the
symbol up falls back to an older variant (nvitop does this for
``nvmlDeviceGetTemperatureV`` and ``nvmlDeviceGetMemoryInfo_v2``).  nvsim does the same
in two ways, both from this table:

* the build links one library per branch in :func:`variant_branches`, whose linker version
  script hides every function newer than that branch (``nvsim up --driver`` installs the
  variant for its branch), so ``dlsym`` fails as on the real driver;
* every library, including the newest one, also answers ``NVML_ERROR_FUNCTION_NOT_FOUND``
  from a gated function when the state's branch is older (a client that loads a newer
  library against an older instance), through the C table :func:`c_header` generates.

Functions not listed exist in every branch nvsim models: :data:`MIN_BRANCH` (R450) and
later; ``nvsim up --driver`` refuses anything older, and every entry here is newer.

How the branches were found: the first nvidia-ml-py release whose pynvml binds the function
(releases are numbered after the driver branch whose nvml.h they wrap: 11.450.51,
11.470.66, 11.495.46, 11.510.69, 11.515.48, 11.525.84, 12.535.77, 12.550.52, 12.555.43,
12.560.30, 12.570.86) gives an upper bound; the NVML API reference archives and change log
were used where they say more (nvmlPciInfoExt_v1_t first appears in the R550 reference).
There are no bindings for R520 or R565, so a function first bound in 11.525 or 12.570 may
have shipped one branch earlier.
"""

from __future__ import annotations

MIN_BRANCH = 450

GATES: dict[str, int] = {
    # R470
    "nvmlDeviceGetComputeRunningProcesses_v2": 470,
    "nvmlDeviceGetGraphicsRunningProcesses_v2": 470,
    "nvmlDeviceGetMPSComputeRunningProcesses_v2": 470,
    # the branch usually cited for the VF-offset getters; first bound in 11.515 (GPC) and
    # 11.525 (memory), so they may have arrived later
    "nvmlDeviceGetGpcClkVfOffset": 470,
    "nvmlDeviceGetMemClkVfOffset": 470,
    # R510
    "nvmlDeviceGetMemoryInfo_v2": 510,
    "nvmlDeviceGetComputeRunningProcesses_v3": 510,
    "nvmlDeviceGetGraphicsRunningProcesses_v3": 510,
    "nvmlDeviceGetMPSComputeRunningProcesses_v3": 510,
    "nvmlDeviceGetNumFans": 510,
    "nvmlDeviceGetGspFirmwareMode": 510,  # GSP firmware arrived with R510
    "nvmlDeviceGetGspFirmwareVersion": 510,
    "nvmlDeviceGetRowRemapperHistogram": 510,
    # R515
    "nvmlDeviceSetGpcClkVfOffset": 515,
    "nvmlDeviceSetMemClkVfOffset": 515,  # bound in 11.525, set together with the GPC one
    "nvmlDeviceGetPcieSpeed": 515,
    "nvmlDeviceGetMinMaxClockOfPState": 515,
    "nvmlDeviceGetSupportedPerformanceStates": 515,
    "nvmlDeviceGetMinMaxFanSpeed": 515,
    "nvmlDeviceSetFanSpeed_v2": 515,
    "nvmlDeviceSetDefaultFanSpeed_v2": 515,
    "nvmlDeviceGetNumGpuCores": 515,
    "nvmlDeviceGetMemoryBusWidth": 515,
    "nvmlDeviceGetIrqNum": 515,
    "nvmlDeviceGetPcieLinkMaxSpeed": 515,
    # R520 (CUDA 11.8, first bound in 11.525): fan control policy
    "nvmlDeviceGetTargetFanSpeed": 520,
    "nvmlDeviceGetFanControlPolicy_v2": 520,
    "nvmlDeviceSetFanControlPolicy": 520,
    # R525
    "nvmlDeviceGetGpcClkMinMaxVfOffset": 525,
    "nvmlDeviceGetMemClkMinMaxVfOffset": 525,
    "nvmlDeviceGetGpuMaxPcieLinkGeneration": 525,
    # R535: "clocks event reasons" replace "clocks throttle reasons"; scoped power limit;
    # JPEG and optical-flow utilization
    "nvmlDeviceGetCurrentClocksEventReasons": 535,
    "nvmlDeviceGetSupportedClocksEventReasons": 535,
    "nvmlDeviceSetPowerManagementLimit_v2": 535,
    "nvmlDeviceGetJpgUtilization": 535,
    "nvmlDeviceGetOfaUtilization": 535,
    # R550
    "nvmlDeviceGetPciInfoExt": 550,
    # R555: per-pstate clock offsets
    "nvmlDeviceGetClockOffsets": 555,
    "nvmlDeviceSetClockOffsets": 555,
    # R565 (first bound in 12.570; no 12.565 binding exists)
    "nvmlDeviceGetFanSpeedRPM": 565,
    "nvmlDeviceGetTemperatureV": 565,
}


def hidden_in(branch: int) -> list[str]:
    """The functions a driver of ``branch`` does not have."""
    return sorted(name for name, first in GATES.items() if first > branch)


def variant_branches() -> list[int]:
    """The branches that see different symbol sets, oldest first; the last sees them all."""
    return sorted({MIN_BRANCH, *GATES.values()})


def variant_for(driver_major: int) -> int:
    """The library variant whose symbols are exactly those of ``driver_major``."""
    return max(b for b in variant_branches() if b <= max(driver_major, MIN_BRANCH))


def version_script(branch: int) -> str:
    """A GNU ld version script exporting everything but what ``branch`` lacks."""
    hidden = hidden_in(branch)
    local = "".join(f"    {name};\n" for name in hidden)
    return "{\n  global: *;\n" + (f"  local:\n{local}" if local else "") + "};\n"


def c_header() -> str:
    """The table gating.c consults at run time."""
    rows = "".join(f'    {{"{name}", {first}}},\n' for name, first in sorted(GATES.items()))
    return (
        "/* Generated from nvsim/gating.py by nvsim.build — do not edit. */\n"
        "#pragma once\n"
        f"#define NVSIM_MIN_BRANCH {MIN_BRANCH}\n"
        "static const struct gate gates[] = {\n" + rows + "};\n"
    )
