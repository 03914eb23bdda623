/*
 * Clock readings: current/max/application clocks, the supported clock lists, performance
 * states and clocks-event (throttle) reasons.  The settings that move clocks (offsets,
 * locked clocks) live in tuning.c.
 */
#include "nvsim_internal.h"

#define GRAPHICS_CLOCK_STEP_MHZ 15u /* spacing of the supported graphics clock list */
#define MAX_CLOCK_LIST 512u

/* ---- current, maximum, application clocks ------------------------------------------ */

static nvmlReturn_t current_clock(const nvsim_gpu_t *g, nvmlClockType_t type, unsigned int *mhz)
{
    switch (type) {
    case NVML_CLOCK_GRAPHICS: *mhz = g->gpc_mhz; break;
    case NVML_CLOCK_SM: *mhz = g->sm_mhz; break;
    case NVML_CLOCK_MEM: *mhz = g->mem_mhz; break;
    case NVML_CLOCK_VIDEO: *mhz = g->video_mhz; break;
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
    return NVML_SUCCESS;
}

static nvmlReturn_t max_clock(const nvsim_gpu_t *g, nvmlClockType_t type, unsigned int *mhz)
{
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM: *mhz = g->max_gpc_mhz; break;
    case NVML_CLOCK_MEM: *mhz = g->max_mem_mhz; break;
    case NVML_CLOCK_VIDEO: *mhz = g->max_video_mhz; break;
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
    return NVML_SUCCESS;
}

/* Default application clocks: base graphics clock, top memory and video clocks. */
static nvmlReturn_t app_clock(const nvsim_gpu_t *g, nvmlClockType_t type, unsigned int *mhz)
{
    if (type == NVML_CLOCK_GRAPHICS || type == NVML_CLOCK_SM) {
        *mhz = g->base_gpc_mhz;
        return NVML_SUCCESS;
    }
    return max_clock(g, type, mhz);
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(clock);
    return current_clock(g, type, clock);
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                       unsigned int *clock)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(clock);
    return max_clock(g, type, clock);
}

nvmlReturn_t nvmlDeviceGetApplicationsClock(nvmlDevice_t device, nvmlClockType_t clockType,
                                            unsigned int *clockMHz)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(clockMHz);
    return app_clock(g, clockType, clockMHz);
}

nvmlReturn_t nvmlDeviceGetDefaultApplicationsClock(nvmlDevice_t device, nvmlClockType_t clockType,
                                                   unsigned int *clockMHz)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(clockMHz);
    return app_clock(g, clockType, clockMHz);
}

nvmlReturn_t nvmlDeviceGetMaxCustomerBoostClock(nvmlDevice_t device, nvmlClockType_t clockType,
                                                unsigned int *clockMHz)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(clockMHz);
    return max_clock(g, clockType, clockMHz);
}

nvmlReturn_t nvmlDeviceGetClock(nvmlDevice_t device, nvmlClockType_t clockType,
                                nvmlClockId_t clockId, unsigned int *clockMHz)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(clockMHz);
    switch (clockId) {
    case NVML_CLOCK_ID_CURRENT: return current_clock(g, clockType, clockMHz);
    case NVML_CLOCK_ID_APP_CLOCK_TARGET:
    case NVML_CLOCK_ID_APP_CLOCK_DEFAULT: return app_clock(g, clockType, clockMHz);
    case NVML_CLOCK_ID_CUSTOMER_BOOST_MAX: return max_clock(g, clockType, clockMHz);
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
}

/* ---- clock lists -------------------------------------------------------------------- */

/* Fill `out` (capacity *count) from `list` (n entries) with NVML's size protocol. */
static nvmlReturn_t return_list(unsigned int *count, unsigned int *out, const unsigned int *list,
                                unsigned int n)
{
    if (*count < n || (out == NULL && n > 0)) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < n; i++)
        out[i] = list[i];
    *count = n;
    return NVML_SUCCESS;
}

/* The distinct top memory clocks of the supported pstates, highest first. */
static unsigned int memory_clocks(const nvsim_gpu_t *g, unsigned int *list)
{
    unsigned int n = 0;
    for (unsigned int p = 0; p < NVSIM_MAX_PSTATES; p++) {
        if (!g->pstates[p].supported)
            continue;
        unsigned int mhz = g->pstates[p].max_mem_mhz, i = 0;
        while (i < n && list[i] != mhz)
            i++;
        if (i < n)
            continue;
        for (i = n; i > 0 && list[i - 1] < mhz; i--)
            list[i] = list[i - 1];
        list[i] = mhz;
        n++;
    }
    return n;
}

nvmlReturn_t nvmlDeviceGetSupportedMemoryClocks(nvmlDevice_t device, unsigned int *count,
                                                unsigned int *clocksMHz)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(count);
    unsigned int list[NVSIM_MAX_PSTATES];
    return return_list(count, clocksMHz, list, memory_clocks(g, list));
}

/* Graphics clocks usable with one memory clock: its pstates' range in 15 MHz steps, downwards. */
nvmlReturn_t nvmlDeviceGetSupportedGraphicsClocks(nvmlDevice_t device, unsigned int memoryClockMHz,
                                                  unsigned int *count, unsigned int *clocksMHz)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(count);
    unsigned int lo = 0, hi = 0, found = 0;
    for (unsigned int p = 0; p < NVSIM_MAX_PSTATES; p++) {
        const nvsim_pstate_t *ps = &g->pstates[p];
        if (!ps->supported || ps->max_mem_mhz != memoryClockMHz)
            continue;
        lo = found ? (ps->min_gpc_mhz < lo ? ps->min_gpc_mhz : lo) : ps->min_gpc_mhz;
        hi = ps->max_gpc_mhz > hi ? ps->max_gpc_mhz : hi;
        found = 1;
    }
    if (!found)
        return NVML_ERROR_NOT_FOUND;
    unsigned int list[MAX_CLOCK_LIST], n = 0;
    for (unsigned int mhz = hi; n < MAX_CLOCK_LIST; mhz -= GRAPHICS_CLOCK_STEP_MHZ) {
        list[n++] = mhz;
        if (mhz < lo + GRAPHICS_CLOCK_STEP_MHZ)
            break;
    }
    return return_list(count, clocksMHz, list, n);
}

/* ---- performance states ------------------------------------------------------------- */

NVSIM_FIELD_GETTER(nvmlDeviceGetPerformanceState, nvmlPstates_t, pstate)
NVSIM_FIELD_GETTER(nvmlDeviceGetPowerState, nvmlPstates_t, pstate)

nvmlReturn_t nvmlDeviceGetSupportedPerformanceStates(nvmlDevice_t device, nvmlPstates_t *pstates,
                                                     unsigned int size)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(pstates);
    unsigned int n = 0;
    for (unsigned int p = 0; p < NVSIM_MAX_PSTATES; p++) {
        if (!g->pstates[p].supported)
            continue;
        if (n >= size)
            return NVML_ERROR_INSUFFICIENT_SIZE;
        pstates[n++] = (nvmlPstates_t)p;
    }
    for (unsigned int i = n; i < size && i < NVML_MAX_GPU_PERF_PSTATES; i++)
        pstates[i] = NVML_PSTATE_UNKNOWN;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMinMaxClockOfPState(nvmlDevice_t device, nvmlClockType_t type,
                                              nvmlPstates_t pstate, unsigned int *minClockMHz,
                                              unsigned int *maxClockMHz)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(minClockMHz);
    NVSIM_NONNULL(maxClockMHz);
    if (!nvsim_pstate_ok(g, (unsigned int)pstate))
        return NVML_ERROR_INVALID_ARGUMENT;
    const nvsim_pstate_t *ps = &g->pstates[pstate];
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM:
        *minClockMHz = ps->min_gpc_mhz;
        *maxClockMHz = ps->max_gpc_mhz;
        return NVML_SUCCESS;
    case NVML_CLOCK_MEM:
        *minClockMHz = ps->min_mem_mhz;
        *maxClockMHz = ps->max_mem_mhz;
        return NVML_SUCCESS;
    case NVML_CLOCK_VIDEO: return NVML_ERROR_NOT_SUPPORTED;
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
}

/* ---- clocks-event (throttle) reasons ------------------------------------------------ */

NVSIM_FIELD_GETTER(nvmlDeviceGetCurrentClocksEventReasons, unsigned long long, reasons)
NVSIM_FIELD_GETTER(nvmlDeviceGetCurrentClocksThrottleReasons, unsigned long long, reasons)

nvmlReturn_t nvmlDeviceGetSupportedClocksEventReasons(nvmlDevice_t device,
                                                      unsigned long long *supported)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(supported);
    *supported = NVSIM_SUPPORTED_REASONS;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetSupportedClocksThrottleReasons(nvmlDevice_t device,
                                                         unsigned long long *supported)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(supported);
    *supported = NVSIM_SUPPORTED_REASONS;
    return NVML_SUCCESS;
}
