/*
 * Device modes (persistence, compute, display, ECC, MIG, virtualization) and the harmless
 * queries clients probe on every GPU.  A simulated discrete board has no display attached,
 * no MIG and no NVLink.
 */
#include "nvsim_internal.h"

static nvmlEnableState_t enabled(uint32_t flag)
{
    return flag ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(mode);
    *mode = enabled(g->persistence);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t mode)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_PERSISTENCE));
    if (mode != NVML_FEATURE_ENABLED && mode != NVML_FEATURE_DISABLED)
        return NVML_ERROR_INVALID_ARGUMENT;
    g->persistence = mode == NVML_FEATURE_ENABLED;
    nvsim_settings_changed(g);
    return NVML_SUCCESS;
}

NVSIM_FIELD_GETTER(nvmlDeviceGetComputeMode, nvmlComputeMode_t, compute_mode)

nvmlReturn_t nvmlDeviceSetComputeMode(nvmlDevice_t device, nvmlComputeMode_t mode)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_COMPUTE_MODE));
    if ((unsigned int)mode >= NVML_COMPUTEMODE_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (mode == NVML_COMPUTEMODE_EXCLUSIVE_THREAD)
        return NVML_ERROR_NOT_SUPPORTED; /* removed from every driver nvsim models */
    g->compute_mode = (uint32_t)mode;
    nvsim_settings_changed(g);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDisplayMode(nvmlDevice_t device, nvmlEnableState_t *display)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(display);
    *display = NVML_FEATURE_DISABLED;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t device, nvmlEnableState_t *isActive)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(isActive);
    *isActive = NVML_FEATURE_DISABLED;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, nvmlEnableState_t *current,
                                  nvmlEnableState_t *pending)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_ECC));
    NVSIM_NONNULL(current);
    NVSIM_NONNULL(pending);
    *current = *pending = NVML_FEATURE_ENABLED;
    return NVML_SUCCESS;
}

/* ECC boards report zero errors: the model does not inject memory errors. */
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                         nvmlEccCounterType_t counterType,
                                         unsigned long long *eccCounts)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_ECC));
    NVSIM_NONNULL(eccCounts);
    if ((unsigned int)errorType >= NVML_MEMORY_ERROR_TYPE_COUNT ||
        (unsigned int)counterType >= NVML_ECC_COUNTER_TYPE_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    *eccCounts = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode,
                                  unsigned int *pendingMode)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *isMigDevice)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(isMigDevice);
    *isMigDevice = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(count);
    *count = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t *migDevice)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

/* No handle nvsim gives out is a MIG device handle. */
nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t migDevice,
                                                          nvmlDevice_t *device)
{
    NVSIM_ENTER(migDevice);
    return NVML_ERROR_INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                      nvmlEnableState_t *isActive)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetVirtualizationMode(nvmlDevice_t device,
                                             nvmlGpuVirtualizationMode_t *pVirtualMode)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(pVirtualMode);
    *pVirtualMode = NVML_GPU_VIRTUALIZATION_MODE_NONE;
    return NVML_SUCCESS;
}

/* WDDM/TCC driver models exist on Windows only. */
nvmlReturn_t nvmlDeviceGetDriverModel(nvmlDevice_t device, nvmlDriverModel_t *current,
                                      nvmlDriverModel_t *pending) /* _v2 */
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}
