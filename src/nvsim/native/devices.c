/*
 * System queries, device enumeration (handles by index, UUID, serial, PCI bus id) and the
 * static identity of each GPU (name, UUID, PCI info, VBIOS, ...).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "nvsim_internal.h"

/* ---- system ------------------------------------------------------------------------- */

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    NVSIM_ENTER_SYSTEM();
    const nvsim_state_t *st = nvsim_st();
    return nvsim_copy_string(version, length, st->header.driver_version,
                             sizeof st->header.driver_version);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    NVSIM_ENTER_SYSTEM();
    const nvsim_state_t *st = nvsim_st();
    return nvsim_copy_string(version, length, st->header.nvml_version,
                             sizeof st->header.nvml_version);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
    NVSIM_ENTER_SYSTEM();
    NVSIM_NONNULL(cudaDriverVersion);
    *cudaDriverVersion = (int)nvsim_st()->header.cuda_version;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

/* ---- enumeration -------------------------------------------------------------------- */

/*
 * Enumeration is fixed at init, as the real driver's is: the visible list (find_visible in
 * core.c) holds state indexes in rising order.  A gpu_count that grows afterwards adds no
 * GPU; one that shrinks cuts the list, so the GPUs counted are the visible ones still below
 * the (clamped) gpu_count, and every index handed out is one a getter may read.
 */
static unsigned int visible_live(void)
{
    unsigned int count = nvsim_gpu_count(nvsim_st()), n = nvsim_visible_n(), live = 0;
    while (live < n && nvsim_visible_at(live) < count)
        live++;
    return live;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount) /* _v2 */
{
    NVSIM_ENTER_SYSTEM();
    NVSIM_NONNULL(deviceCount);
    *deviceCount = visible_live();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) /* _v2 */
{
    NVSIM_ENTER_SYSTEM();
    NVSIM_NONNULL(device);
    if (index >= nvsim_visible_n())
        return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int gpu = nvsim_visible_at(index); /* read once: a re-init may rewrite it */
    if (gpu >= nvsim_gpu_count(nvsim_st()))
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &nvsim_devices[gpu];
    return NVML_SUCCESS;
}

/* The first GPU whose fixed-size string field `offset` equals `want`. */
static nvmlReturn_t find_by_string(size_t offset, size_t size, const char *want,
                                   nvmlDevice_t *device, int skip_geforce)
{
    NVSIM_NONNULL(want);
    NVSIM_NONNULL(device);
    const nvsim_state_t *st = nvsim_st();
    unsigned int count = nvsim_gpu_count(st);
    for (unsigned int v = 0; v < nvsim_visible_n(); v++) {
        unsigned int i = nvsim_visible_at(v);
        if (i >= count)
            continue;
        const char *field = (const char *)&st->gpus[i] + offset;
        if (skip_geforce && st->gpus[i].brand == NVML_BRAND_GEFORCE)
            continue;
        if (strnlen(field, size) < size && strcmp(field, want) == 0) {
            *device = &nvsim_devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    NVSIM_ENTER_SYSTEM();
    return find_by_string(offsetof(nvsim_gpu_t, uuid), sizeof(((nvsim_gpu_t *)0)->uuid), uuid,
                          device, 0);
}

nvmlReturn_t nvmlDeviceGetHandleBySerial(const char *serial, nvmlDevice_t *device)
{
    NVSIM_ENTER_SYSTEM();
    /* GeForce boards report no serial number, so none can be found by one */
    return find_by_string(offsetof(nvsim_gpu_t, serial), sizeof(((nvsim_gpu_t *)0)->serial),
                          serial, device, 1);
}

/*
 * Parse "[domain:]bus:device[.function]" in hex, any case, e.g. "00000000:01:00.0",
 * "0000:01:00.0" or "01:00.0".  Returns 0 on success.
 */
static int parse_bus_id(const char *text, unsigned int *domain, unsigned int *bus,
                        unsigned int *dev)
{
    unsigned int a, b, c, fn = 0;
    int used = 0;
    while (isspace((unsigned char)*text))
        text++;
    if (sscanf(text, "%x:%x:%x%n", &a, &b, &c, &used) == 3) {
        *domain = a, *bus = b, *dev = c;
    } else if (sscanf(text, "%x:%x%n", &b, &c, &used) == 2) {
        *domain = 0, *bus = b, *dev = c;
    } else {
        return -1;
    }
    text += used;
    if (*text == '.') {
        int more = 0;
        if (sscanf(text + 1, "%x%n", &fn, &more) != 1)
            return -1;
        text += 1 + more;
    }
    while (isspace((unsigned char)*text))
        text++;
    return (*text == '\0' && fn == 0) ? 0 : -1;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device) /* _v2 */
{
    NVSIM_ENTER_SYSTEM();
    NVSIM_NONNULL(pciBusId);
    NVSIM_NONNULL(device);
    unsigned int domain, bus, dev;
    if (parse_bus_id(pciBusId, &domain, &bus, &dev) != 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    const nvsim_state_t *st = nvsim_st();
    unsigned int count = nvsim_gpu_count(st);
    for (unsigned int v = 0; v < nvsim_visible_n(); v++) {
        unsigned int i = nvsim_visible_at(v);
        if (i >= count)
            continue;
        const nvsim_gpu_t *g = &st->gpus[i];
        if (g->pci_domain == domain && g->pci_bus == bus && g->pci_device == dev) {
            *device = &nvsim_devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    NVSIM_ENTER_ANY(device);
    NVSIM_NONNULL(index);
    /* the position among the visible GPUs, as a container's NVML numbers them */
    for (unsigned int v = 0; v < nvsim_visible_n(); v++) {
        if (nvsim_visible_at(v) == nvsim_index_of(device)) {
            *index = v;
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_INVALID_ARGUMENT;
}

/* ---- identity ----------------------------------------------------------------------- */

#define COPY_FIELD(g, field, dst, len) nvsim_copy_string((dst), (len), (g)->field, sizeof (g)->field)

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    NVSIM_ENTER(device);
    return COPY_FIELD(g, name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    NVSIM_ENTER_ANY(device);
    return COPY_FIELD(g, uuid, uuid, length);
}

/* GeForce boards have no serial number in their inforom: the driver answers NOT_SUPPORTED. */
nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length)
{
    NVSIM_ENTER(device);
    if (g->brand == NVML_BRAND_GEFORCE)
        return NVML_ERROR_NOT_SUPPORTED;
    return COPY_FIELD(g, serial, serial, length);
}

nvmlReturn_t nvmlDeviceGetVbiosVersion(nvmlDevice_t device, char *version, unsigned int length)
{
    NVSIM_ENTER(device);
    return COPY_FIELD(g, vbios, version, length);
}

nvmlReturn_t nvmlDeviceGetBoardPartNumber(nvmlDevice_t device, char *partNumber,
                                          unsigned int length)
{
    NVSIM_ENTER(device);
    return COPY_FIELD(g, board_part_number, partNumber, length);
}

NVSIM_FIELD_GETTER(nvmlDeviceGetBrand, nvmlBrandType_t, brand)
NVSIM_FIELD_GETTER(nvmlDeviceGetArchitecture, nvmlDeviceArchitecture_t, arch)
NVSIM_FIELD_GETTER(nvmlDeviceGetMinorNumber, unsigned int, minor_number)
NVSIM_FIELD_GETTER(nvmlDeviceGetBoardId, unsigned int, board_id)

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(major);
    NVSIM_NONNULL(minor);
    *major = (int)g->cc_major;
    *minor = (int)g->cc_minor;
    return NVML_SUCCESS;
}

/* ---- PCI ---------------------------------------------------------------------------- */

nvmlReturn_t nvsim_pci_info(nvmlDevice_t device, nvmlPciInfo_t *pci, const char *fn, int *cache)
{
    nvsim_gpu_t *g;
    NVSIM_TRY(nvsim_enter(fn, cache, device, &g, NVSIM_ALLOW_LOST));
    NVSIM_NONNULL(pci);
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0",
             g->pci_domain & 0xFFFF, g->pci_bus & 0xFF, g->pci_device & 0x1F);
    snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.0", g->pci_domain,
             g->pci_bus & 0xFF, g->pci_device & 0x1F);
    pci->domain = g->pci_domain;
    pci->bus = g->pci_bus;
    pci->device = g->pci_device;
    pci->pciDeviceId = g->pci_device_id;
    pci->pciSubSystemId = g->pci_subsystem_id;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci) /* _v3 */
{
    static int cache = -1;
    return nvsim_pci_info(device, pci, __func__, &cache);
}

nvmlReturn_t nvmlDeviceGetPciInfoExt(nvmlDevice_t device, nvmlPciInfoExt_t *pci)
{
    NVSIM_ENTER_ANY(device);
    NVSIM_NONNULL(pci);
    if (pci->version != nvmlPciInfoExt_v1)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    pci->domain = g->pci_domain;
    pci->bus = g->pci_bus;
    pci->device = g->pci_device;
    pci->pciDeviceId = g->pci_device_id;
    pci->pciSubSystemId = g->pci_subsystem_id;
    pci->baseClass = 0x03; /* display controller */
    pci->subClass = g->brand == NVML_BRAND_GEFORCE ? 0x00 : 0x02; /* VGA or 3D controller */
    snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.0", g->pci_domain,
             g->pci_bus & 0xFF, g->pci_device & 0x1F);
    return NVML_SUCCESS;
}
