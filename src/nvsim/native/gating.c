/*
 * Driver gating: nvsim pretends to be driver header.driver_major (e.g. 535).  A function
 * that first shipped in a later driver branch answers NVML_ERROR_FUNCTION_NOT_FOUND, the
 * code pynvml raises (as NVMLError_FunctionNotFound) when the symbol is missing from an
 * older libnvidia-ml.so.1.  Functions not listed here exist in every branch nvsim models
 * (R450 and later).
 *
 * Branches follow the NVML API reference: the per-branch archives at
 * docs.nvidia.com/deploy/archive/R<branch>/nvml-api/ (Device Queries / Device Commands
 * function lists, e.g. nvmlPciInfoExt_v1_t first listed in R550) and the change log at
 * docs.nvidia.com/deploy/nvml-api/change-log.html, read against the CUDA toolkit that
 * shipped each branch (11.4 = R470, 11.6 = R510, 11.8 = R520, 12.2 = R535, 12.4 = R550,
 * 12.5 = R555, 12.7 = R565).  Entries marked "approx." could not be pinned to a document
 * page and may be one branch early or late.
 */
#include <string.h>

#include "nvsim_internal.h"

struct gate {
    const char *name;
    unsigned int branch;
};

static const struct gate gates[] = {
    /* CUDA 11.4 / R470: process info v2, VF offsets, PCIe speed */
    {"nvmlDeviceGetComputeRunningProcesses_v2", 470},
    {"nvmlDeviceGetGraphicsRunningProcesses_v2", 470},
    {"nvmlDeviceGetMPSComputeRunningProcesses_v2", 470},
    {"nvmlDeviceGetGpcClkVfOffset", 470},
    {"nvmlDeviceGetMemClkVfOffset", 470},
    {"nvmlDeviceSetGpcClkVfOffset", 470},
    {"nvmlDeviceSetMemClkVfOffset", 470},
    {"nvmlDeviceGetPcieSpeed", 470},     /* approx. */
    {"nvmlDeviceGetNumFans", 470},       /* approx. */
    /* CUDA 11.6 / R510: memory info v2, process info v3, pstate ranges, VF offset ranges */
    {"nvmlDeviceGetMemoryInfo_v2", 510},
    {"nvmlDeviceGetComputeRunningProcesses_v3", 510},
    {"nvmlDeviceGetGraphicsRunningProcesses_v3", 510},
    {"nvmlDeviceGetMPSComputeRunningProcesses_v3", 510},
    {"nvmlDeviceGetGpcClkMinMaxVfOffset", 510},
    {"nvmlDeviceGetMemClkMinMaxVfOffset", 510},
    {"nvmlDeviceGetMinMaxClockOfPState", 510},
    {"nvmlDeviceGetSupportedPerformanceStates", 510},
    {"nvmlDeviceGetGpuMaxPcieLinkGeneration", 510}, /* approx. */
    /* CUDA 11.8 / R520: fan control */
    {"nvmlDeviceGetTargetFanSpeed", 520},
    {"nvmlDeviceGetMinMaxFanSpeed", 520},
    {"nvmlDeviceGetFanControlPolicy_v2", 520},
    {"nvmlDeviceSetFanControlPolicy", 520},
    {"nvmlDeviceSetFanSpeed_v2", 520},
    {"nvmlDeviceSetDefaultFanSpeed_v2", 520},
    /* CUDA 12.2 / R535: "clocks event reasons" replace "clocks throttle reasons" */
    {"nvmlDeviceGetCurrentClocksEventReasons", 535},
    {"nvmlDeviceGetSupportedClocksEventReasons", 535},
    /* CUDA 12.4 / R550 */
    {"nvmlDeviceGetPciInfoExt", 550},
    /* CUDA 12.5 / R555: per-pstate clock offsets, fan RPM, scoped power limit */
    {"nvmlDeviceGetClockOffsets", 555},
    {"nvmlDeviceSetClockOffsets", 555},
    {"nvmlDeviceGetFanSpeedRPM", 555},
    {"nvmlDeviceSetPowerManagementLimit_v2", 555},
    /* CUDA 12.7 / R565: versioned temperature query */
    {"nvmlDeviceGetTemperatureV", 565}, /* approx. */
};

unsigned int nvsim_gate_branch(const char *fn)
{
    for (size_t i = 0; i < sizeof gates / sizeof gates[0]; i++)
        if (strcmp(gates[i].name, fn) == 0)
            return gates[i].branch;
    return 0;
}

nvmlReturn_t nvsim_gate(const char *fn, int *cache)
{
    int branch = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (branch < 0) {
        branch = (int)nvsim_gate_branch(fn);
        __atomic_store_n(cache, branch, __ATOMIC_RELAXED);
    }
    nvsim_state_t *st = nvsim_state;
    if (branch != 0 && st != NULL && st->header.driver_major < (unsigned int)branch)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    return NVML_SUCCESS;
}
