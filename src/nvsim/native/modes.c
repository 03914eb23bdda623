/*
 * Device modes (persistence, compute, display, MIG, NVLink, virtualization, accounting,
 * operation mode, auto boost) and the harmless queries clients probe on every GPU.  A
 * simulated board has no display attached; a MIG-capable one (H100) has MIG disabled; the
 * NVLink count is the model's; none is a vGPU host.
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
    NVSIM_ENTER_LIVE(device);
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_PERSISTENCE));
    if (mode != NVML_FEATURE_ENABLED && mode != NVML_FEATURE_DISABLED)
        return NVML_ERROR_INVALID_ARGUMENT;
    NVSIM_TRY(nvsim_write_begin());
    NVSIM_STORE(g->persistence, (uint32_t)(mode == NVML_FEATURE_ENABLED));
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}

NVSIM_FIELD_GETTER(nvmlDeviceGetComputeMode, nvmlComputeMode_t, compute_mode)

nvmlReturn_t nvmlDeviceSetComputeMode(nvmlDevice_t device, nvmlComputeMode_t mode)
{
    NVSIM_ENTER_LIVE(device);
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_COMPUTE_MODE));
    if ((unsigned int)mode >= NVML_COMPUTEMODE_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (mode == NVML_COMPUTEMODE_EXCLUSIVE_THREAD)
        return NVML_ERROR_NOT_SUPPORTED; /* removed from every driver nvsim models */
    NVSIM_TRY(nvsim_write_begin());
    NVSIM_STORE(g->compute_mode, (uint32_t)mode);
    nvsim_settings_changed(g);
    nvsim_write_end();
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

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode,
                                  unsigned int *pendingMode)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_MIG));
    NVSIM_NONNULL(currentMode);
    NVSIM_NONNULL(pendingMode);
    *currentMode = *pendingMode = NVML_DEVICE_MIG_DISABLE;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *isMigDevice)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(isMigDevice);
    *isMigDevice = 0;
    return NVML_SUCCESS;
}

#define MIG_MAX_INSTANCES 7u /* seven GPU instances on an H100 */

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(count);
    *count = nvsim_feature(g, NVSIM_FEAT_MIG) == NVML_SUCCESS ? MIG_MAX_INSTANCES : 0;
    return NVML_SUCCESS;
}

/* MIG is disabled on every board, so there is no MIG device to hand out. */
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t *migDevice)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_MIG));
    return NVML_ERROR_NOT_FOUND;
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

static nvmlReturn_t nvlink(const nvsim_gpu_t *g, unsigned int link)
{
    if (g->nvlink_links == 0)
        return NVML_ERROR_NOT_SUPPORTED;
    return link < g->nvlink_links && link < NVML_NVLINK_MAX_LINKS ? NVML_SUCCESS
                                                                 : NVML_ERROR_INVALID_ARGUMENT;
}

/* Every link of an NVLink board is up (to the baseboard's NVSwitches). */
nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                      nvmlEnableState_t *isActive)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvlink(g, link));
    NVSIM_NONNULL(isActive);
    *isActive = NVML_FEATURE_ENABLED;
    return NVML_SUCCESS;
}

#define NVLINK_GENERATION 4u /* Hopper's fourth-generation NVLink */

nvmlReturn_t nvmlDeviceGetNvLinkVersion(nvmlDevice_t device, unsigned int link,
                                        unsigned int *version)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvlink(g, link));
    NVSIM_NONNULL(version);
    *version = NVLINK_GENERATION;
    return NVML_SUCCESS;
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

/* GPU operation modes exist on a few older Tesla boards only. */
nvmlReturn_t nvmlDeviceGetGpuOperationMode(nvmlDevice_t device, nvmlGpuOperationMode_t *current,
                                           nvmlGpuOperationMode_t *pending)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

/* Auto boost can be read and set only on Kepler-era boards. */
nvmlReturn_t nvmlDeviceGetAutoBoostedClocksEnabled(nvmlDevice_t device,
                                                   nvmlEnableState_t *isEnabled,
                                                   nvmlEnableState_t *defaultIsEnabled)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

/* ---- accounting: off, as after every driver load --------------------------------------- */

#define ACCOUNTING_BUFFER 4000u /* processes the driver keeps accounting records for */

nvmlReturn_t nvmlDeviceGetAccountingMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(mode);
    *mode = NVML_FEATURE_DISABLED;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetAccountingBufferSize(nvmlDevice_t device, unsigned int *bufferSize)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(bufferSize);
    *bufferSize = ACCOUNTING_BUFFER;
    return NVML_SUCCESS;
}

/* With accounting off the driver keeps no records: NOT_SUPPORTED, as it answers. */
nvmlReturn_t nvmlDeviceGetAccountingPids(nvmlDevice_t device, unsigned int *count,
                                         unsigned int *pids)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(count);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetAccountingStats(nvmlDevice_t device, unsigned int pid,
                                          nvmlAccountingStats_t *stats)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(stats);
    return NVML_ERROR_NOT_SUPPORTED;
}

/* ---- virtualization: a bare-metal driver, no vGPU host ------------------------------- */

nvmlReturn_t nvmlDeviceGetHostVgpuMode(nvmlDevice_t device, nvmlHostVgpuMode_t *pHostVgpuMode)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(pHostVgpuMode);
    *pHostVgpuMode = NVML_HOST_VGPU_MODE_NON_SRIOV;
    return NVML_SUCCESS;
}

#define NO_VGPU_LIST(name, type)                                                          \
    nvmlReturn_t name(nvmlDevice_t device, unsigned int *vgpuCount, type *list)           \
    {                                                                                     \
        NVSIM_ENTER(device);                                                              \
        return NVML_ERROR_NOT_SUPPORTED;                                                  \
    }

NO_VGPU_LIST(nvmlDeviceGetActiveVgpus, nvmlVgpuInstance_t)
NO_VGPU_LIST(nvmlDeviceGetCreatableVgpus, nvmlVgpuTypeId_t)
NO_VGPU_LIST(nvmlDeviceGetSupportedVgpus, nvmlVgpuTypeId_t)

nvmlReturn_t nvmlDeviceGetVgpuMetadata(nvmlDevice_t device, nvmlVgpuPgpuMetadata_t *pgpuMetadata,
                                       unsigned int *bufferSize)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetGridLicensableFeatures_v4(
    nvmlDevice_t device, nvmlGridLicensableFeatures_t *pGridLicensableFeatures)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

/* Attributes describe a MIG device; a full GPU handle has none. */
nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t device, nvmlDeviceAttributes_t *attributes)
{
    NVSIM_ENTER(device);
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetAdaptiveClockInfoStatus(nvmlDevice_t device,
                                                  unsigned int *adaptiveClockStatus)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(adaptiveClockStatus);
    *adaptiveClockStatus = NVML_ADAPTIVE_CLOCKING_INFO_STATUS_ENABLED;
    return NVML_SUCCESS;
}
