/*
 * ECC memory and its bookkeeping: ECC mode and error counters, page retirement and row
 * remapping.  `ecc_mode` says whether a board has ECC memory at all (the calls answer
 * NOT_SUPPORTED when not, as on a GeForce RTX 3060) and whether ECC is on (an RTX 4090
 * has ECC memory, off by default; an H100 has it on).  Counters need ECC on.  The model
 * injects no memory errors, so every counter reads zero.  Boards from Ampere on remap rows
 * instead of retiring pages, so page retirement answers NOT_SUPPORTED everywhere here and
 * row remapping answers on the boards with ECC on.
 */
#include <string.h>

#include "nvsim_internal.h"

#define REMAP_BANKS 640u /* banks in the histogram; all in the "max" bucket: no spare row used */

static nvmlReturn_t has_ecc(const nvsim_gpu_t *g)
{
    return g->ecc_mode == NVSIM_ECC_MODE_NONE ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
}

static nvmlReturn_t ecc_on(const nvsim_gpu_t *g)
{
    return g->ecc_mode == NVSIM_ECC_MODE_ENABLED ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
}

static nvmlEnableState_t ecc_state(const nvsim_gpu_t *g)
{
    return g->ecc_mode == NVSIM_ECC_MODE_ENABLED ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
}

nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, nvmlEnableState_t *current,
                                  nvmlEnableState_t *pending)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(has_ecc(g));
    NVSIM_NONNULL(current);
    NVSIM_NONNULL(pending);
    *current = *pending = ecc_state(g);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDefaultEccMode(nvmlDevice_t device, nvmlEnableState_t *defaultMode)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(has_ecc(g));
    NVSIM_NONNULL(defaultMode);
    *defaultMode = ecc_state(g);
    return NVML_SUCCESS;
}

static nvmlReturn_t check_counter(nvmlMemoryErrorType_t errorType, nvmlEccCounterType_t counterType)
{
    if ((unsigned int)errorType >= NVML_MEMORY_ERROR_TYPE_COUNT ||
        (unsigned int)counterType >= NVML_ECC_COUNTER_TYPE_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                         nvmlEccCounterType_t counterType,
                                         unsigned long long *eccCounts)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(ecc_on(g));
    NVSIM_NONNULL(eccCounts);
    NVSIM_TRY(check_counter(errorType, counterType));
    *eccCounts = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDetailedEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                            nvmlEccCounterType_t counterType,
                                            nvmlEccErrorCounts_t *eccCounts)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(ecc_on(g));
    NVSIM_NONNULL(eccCounts);
    NVSIM_TRY(check_counter(errorType, counterType));
    memset(eccCounts, 0, sizeof *eccCounts);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryErrorCounter(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                             nvmlEccCounterType_t counterType,
                                             nvmlMemoryLocation_t locationType,
                                             unsigned long long *count)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(ecc_on(g));
    NVSIM_NONNULL(count);
    NVSIM_TRY(check_counter(errorType, counterType));
    if ((unsigned int)locationType >= NVML_MEMORY_LOCATION_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t device, nvmlPageRetirementCause_t cause,
                                       unsigned int *pageCount, unsigned long long *addresses)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetRetiredPages_v2(nvmlDevice_t device, nvmlPageRetirementCause_t cause,
                                          unsigned int *pageCount, unsigned long long *addresses,
                                          unsigned long long *timestamps)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t device,
                                                    nvmlEnableState_t *isPending)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int *corrRows,
                                       unsigned int *uncRows, unsigned int *isPending,
                                       unsigned int *failureOccurred)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(ecc_on(g));
    NVSIM_NONNULL(corrRows);
    NVSIM_NONNULL(uncRows);
    NVSIM_NONNULL(isPending);
    NVSIM_NONNULL(failureOccurred);
    *corrRows = *uncRows = *isPending = *failureOccurred = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetRowRemapperHistogram(nvmlDevice_t device,
                                               nvmlRowRemapperHistogramValues_t *values)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(ecc_on(g));
    NVSIM_NONNULL(values);
    memset(values, 0, sizeof *values);
    values->max = REMAP_BANKS; /* every bank still has all of its spare rows */
    return NVML_SUCCESS;
}
