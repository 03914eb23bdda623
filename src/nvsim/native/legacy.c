/*
 * The older, unversioned or lower-versioned entry points that clients built against older
 * headers still call.  nvml.h renames the plain names to their newest versions unless
 * NVML_NO_UNVERSIONED_FUNC_DEFS is defined, so this file defines it and declares each old
 * symbol under its real name.  Each forwards to the current implementation, adapting the
 * smaller structs of the old ABI.
 */
#define NVML_NO_UNVERSIONED_FUNC_DEFS
#include <string.h>

#include "nvsim_internal.h"

nvmlReturn_t nvmlInit(void)
{
    return nvmlInitWithFlags(0);
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount)
{
    return nvmlDeviceGetCount_v2(deviceCount);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByPciBusId_v2(pciBusId, device);
}

/*
 * Versions 1 and 2 of nvmlPciInfo_t: a 16-byte bus id and 16 reserved bytes at the end,
 * 52 bytes in all (v2 changed only the bus id's format).  The current struct is 68 bytes,
 * so these entry points fill a v3 struct of their own and copy out the old layout.
 */
typedef struct {
    char busId[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    unsigned int reserved[4];
} pci_info_v2_t;
_Static_assert(sizeof(pci_info_v2_t) == 52, "nvmlPciInfo_t v1/v2 is 52 bytes");

static nvmlReturn_t pci_info_v2(nvmlDevice_t device, void *out, const char *fn, int *cache)
{
    NVSIM_NONNULL(out);
    nvmlPciInfo_t full;
    NVSIM_TRY(nvsim_pci_info(device, &full, fn, cache));
    pci_info_v2_t old;
    memset(&old, 0, sizeof old);
    memcpy(old.busId, full.busIdLegacy, sizeof old.busId);
    old.domain = full.domain;
    old.bus = full.bus;
    old.device = full.device;
    old.pciDeviceId = full.pciDeviceId;
    old.pciSubSystemId = full.pciSubSystemId;
    memcpy(out, &old, sizeof old);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    static int cache = -1;
    return pci_info_v2(device, pci, __func__, &cache);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    static int cache = -1;
    return pci_info_v2(device, pci, __func__, &cache);
}

/* Version 1 of nvmlEventData_t ends after eventData. */
nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms)
{
    NVSIM_NONNULL(data);
    nvmlEventData_t full;
    nvmlReturn_t ret = nvsim_event_wait(set, &full, timeoutms);
    if (ret == NVML_SUCCESS) {
        data->device = full.device;
        data->eventType = full.eventType;
        data->eventData = full.eventData;
    }
    return ret;
}

#define PROCESS_LIST(name, kind, type, with_instances)                                     \
    nvmlReturn_t name(nvmlDevice_t device, unsigned int *infoCount, type *infos)           \
    {                                                                                      \
        static int cache = -1;                                                             \
        return nvsim_running_processes(device, infoCount, infos, sizeof *infos, (kind),    \
                                       (with_instances), __func__, &cache);                \
    }

PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses, NVSIM_PROC_COMPUTE, nvmlProcessInfo_v1_t, 0)
PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses, NVSIM_PROC_GRAPHICS, nvmlProcessInfo_v1_t, 0)
PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses, 0, nvmlProcessInfo_v1_t, 0)
PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses_v2, NVSIM_PROC_COMPUTE, nvmlProcessInfo_v2_t, 1)
PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses_v2, NVSIM_PROC_GRAPHICS, nvmlProcessInfo_v2_t, 1)
PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v2, 0, nvmlProcessInfo_v2_t, 1)

nvmlReturn_t nvmlDeviceGetDriverModel(nvmlDevice_t device, nvmlDriverModel_t *current,
                                      nvmlDriverModel_t *pending)
{
    return nvmlDeviceGetDriverModel_v2(device, current, pending);
}
