/*
 * Facts about the board that do not change while it runs: BAR1 aperture, memory bus,
 * core count, interrupt line, PCIe link limit, bus type, bridge chips, the inforom and the
 * GSP firmware.  Values come from the model's static fields (see nvsim/models.py).
 */
#include <stdio.h>
#include <string.h>

#include "nvsim_internal.h"

#define BAR1_USED_BYTES (5ull << 20) /* what the driver maps through BAR1 on an idle board */
#define GSP_VERSION_LENGTH 80u       /* NVML_GSP_FIRMWARE_VERSION_BUF_SIZE */

nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device, nvmlBAR1Memory_t *bar1Memory)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(bar1Memory);
    unsigned long long total = g->bar1_total;
    unsigned long long used = total < BAR1_USED_BYTES ? total : BAR1_USED_BYTES;
    bar1Memory->bar1Total = total;
    bar1Memory->bar1Used = used;
    bar1Memory->bar1Free = total - used;
    return NVML_SUCCESS;
}

NVSIM_FIELD_GETTER(nvmlDeviceGetMemoryBusWidth, unsigned int, mem_bus_width)
NVSIM_FIELD_GETTER(nvmlDeviceGetNumGpuCores, unsigned int, gpu_cores)
NVSIM_FIELD_GETTER(nvmlDeviceGetIrqNum, unsigned int, irq)

/* The NVML_PCIE_LINK_MAX_SPEED_* code of the board's top generation (gen N is code N). */
nvmlReturn_t nvmlDeviceGetPcieLinkMaxSpeed(nvmlDevice_t device, unsigned int *maxSpeed)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(maxSpeed);
    if (g->pcie_max_gen == 0 || g->pcie_max_gen > NVML_PCIE_LINK_MAX_SPEED_64000MBPS)
        return NVML_ERROR_NOT_SUPPORTED;
    *maxSpeed = g->pcie_max_gen;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMultiGpuBoard(nvmlDevice_t device, unsigned int *multiGpuBool)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(multiGpuBool);
    *multiGpuBool = 0; /* every modelled board carries one GPU */
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetBusType(nvmlDevice_t device, nvmlBusType_t *type)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(type);
    *type = NVML_BUS_TYPE_PCIE; /* an SXM module is a PCIe device too */
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetBridgeChipInfo(nvmlDevice_t device,
                                         nvmlBridgeChipHierarchy_t *bridgeHierarchy)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(bridgeHierarchy);
    bridgeHierarchy->bridgeCount = 0; /* no PLX or BR04 bridge on any modelled board */
    return NVML_SUCCESS;
}

/* ---- inforom ------------------------------------------------------------------------ */

static nvmlReturn_t inforom_string(const char *field, size_t size, char *version,
                                   unsigned int length)
{
    if (field[0] == '\0')
        return NVML_ERROR_NOT_SUPPORTED;
    return nvsim_copy_string(version, length, field, size);
}

nvmlReturn_t nvmlDeviceGetInforomImageVersion(nvmlDevice_t device, char *version,
                                              unsigned int length)
{
    NVSIM_ENTER(device);
    return inforom_string(g->inforom_image, sizeof g->inforom_image, version, length);
}

nvmlReturn_t nvmlDeviceGetInforomVersion(nvmlDevice_t device, nvmlInforomObject_t object,
                                         char *version, unsigned int length)
{
    NVSIM_ENTER(device);
    switch (object) {
    case NVML_INFOROM_OEM:
        return inforom_string(g->inforom_oem, sizeof g->inforom_oem, version, length);
    case NVML_INFOROM_ECC:
        return inforom_string(g->inforom_ecc, sizeof g->inforom_ecc, version, length);
    case NVML_INFOROM_POWER:
        return inforom_string(g->inforom_pwr, sizeof g->inforom_pwr, version, length);
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
}

/* A stable checksum of the board's inforom configuration (FNV-1a over its versions). */
nvmlReturn_t nvmlDeviceGetInforomConfigurationChecksum(nvmlDevice_t device,
                                                       unsigned int *checksum)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(checksum);
    if (g->inforom_image[0] == '\0')
        return NVML_ERROR_NOT_SUPPORTED;
    uint32_t h = 2166136261u;
    const char *parts[] = {g->inforom_image, g->inforom_oem, g->inforom_ecc, g->inforom_pwr};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        for (size_t i = 0; i < 16 && parts[p][i] != '\0'; i++)
            h = (h ^ (unsigned char)parts[p][i]) * 16777619u;
    *checksum = h;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceValidateInforom(nvmlDevice_t device)
{
    NVSIM_ENTER(device);
    return g->inforom_image[0] == '\0' ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
}

/* ---- GSP firmware ------------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetGspFirmwareMode(nvmlDevice_t device, unsigned int *isEnabled,
                                          unsigned int *defaultMode)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(isEnabled);
    NVSIM_NONNULL(defaultMode);
    *isEnabled = *defaultMode = 1; /* every modelled board runs GSP firmware by default */
    return NVML_SUCCESS;
}

/* The firmware ships with the driver and carries its version. */
nvmlReturn_t nvmlDeviceGetGspFirmwareVersion(nvmlDevice_t device, char *version)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(version);
    const nvsim_state_t *st = nvsim_st();
    return nvsim_copy_string(version, GSP_VERSION_LENGTH, st->header.driver_version,
                             sizeof st->header.driver_version);
}
