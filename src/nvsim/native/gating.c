/*
 * Driver gating: nvsim pretends to be driver header.driver_major (e.g. 535).  A function
 * that first shipped in a later driver branch answers NVML_ERROR_FUNCTION_NOT_FOUND, the
 * code pynvml raises (as NVMLError_FunctionNotFound) when the symbol is missing from an
 * older libnvidia-ml.so.1.  Functions not listed here exist in every branch nvsim models
 * (R450 and later).
 *
 * How the branches were found: the first nvidia-ml-py release whose pynvml binds the
 * function (releases are numbered after the driver branch whose nvml.h they wrap:
 * 11.450.51, 11.470.66, 11.495.46, 11.510.69, 11.515.48, 11.525.84, 12.535.77, 12.550.52,
 * 12.555.43, 12.560.30, 12.570.86) gives an upper bound; the NVML API reference archives
 * (docs.nvidia.com/deploy/archive/R<branch>/nvml-api/) and the change log
 * (docs.nvidia.com/deploy/nvml-api/change-log.html) were used where they say more, e.g.
 * nvmlPciInfoExt_v1_t first appears in the R550 reference.  Notes per entry say where the
 * binding and the branch differ.  There are no bindings for R520 or R565, so a function
 * first bound in 11.525 or 12.570 may have shipped one branch earlier.
 */
#include <string.h>

#include "nvsim_internal.h"

struct gate {
    const char *name;
    unsigned int branch;
};

static const struct gate gates[] = {
    /* R470 */
    {"nvmlDeviceGetComputeRunningProcesses_v2", 470},
    {"nvmlDeviceGetGraphicsRunningProcesses_v2", 470},
    {"nvmlDeviceGetMPSComputeRunningProcesses_v2", 470},
    /* R470 is the branch usually cited for the VF-offset getters; their first bindings are
     * 11.515 (GPC) and 11.525 (memory), so they may have arrived later */
    {"nvmlDeviceGetGpcClkVfOffset", 470},
    {"nvmlDeviceGetMemClkVfOffset", 470},
    /* R510 */
    {"nvmlDeviceGetMemoryInfo_v2", 510},
    {"nvmlDeviceGetComputeRunningProcesses_v3", 510},
    {"nvmlDeviceGetGraphicsRunningProcesses_v3", 510},
    {"nvmlDeviceGetMPSComputeRunningProcesses_v3", 510},
    {"nvmlDeviceGetNumFans", 510},
    /* R515 */
    {"nvmlDeviceSetGpcClkVfOffset", 515},
    {"nvmlDeviceSetMemClkVfOffset", 515}, /* bound in 11.525, set together with the GPC one */
    {"nvmlDeviceGetPcieSpeed", 515},
    {"nvmlDeviceGetMinMaxClockOfPState", 515},
    {"nvmlDeviceGetSupportedPerformanceStates", 515},
    {"nvmlDeviceGetMinMaxFanSpeed", 515},
    {"nvmlDeviceSetFanSpeed_v2", 515},
    {"nvmlDeviceSetDefaultFanSpeed_v2", 515},
    /* R520 (CUDA 11.8, first bound in 11.525): fan control policy */
    {"nvmlDeviceGetTargetFanSpeed", 520},
    {"nvmlDeviceGetFanControlPolicy_v2", 520},
    {"nvmlDeviceSetFanControlPolicy", 520},
    /* R525 */
    {"nvmlDeviceGetGpcClkMinMaxVfOffset", 525},
    {"nvmlDeviceGetMemClkMinMaxVfOffset", 525},
    {"nvmlDeviceGetGpuMaxPcieLinkGeneration", 525},
    /* R535: "clocks event reasons" replace "clocks throttle reasons"; scoped power limit */
    {"nvmlDeviceGetCurrentClocksEventReasons", 535},
    {"nvmlDeviceGetSupportedClocksEventReasons", 535},
    {"nvmlDeviceSetPowerManagementLimit_v2", 535},
    /* R550 */
    {"nvmlDeviceGetPciInfoExt", 550},
    /* R555: per-pstate clock offsets */
    {"nvmlDeviceGetClockOffsets", 555},
    {"nvmlDeviceSetClockOffsets", 555},
    /* R565 (first bound in 12.570; no 12.565 binding exists) */
    {"nvmlDeviceGetFanSpeedRPM", 565},
    {"nvmlDeviceGetTemperatureV", 565},
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
    const nvsim_state_t *st = nvsim_st();
    if (branch != 0 && st != NULL && st->header.driver_major < (unsigned int)branch)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    return NVML_SUCCESS;
}
