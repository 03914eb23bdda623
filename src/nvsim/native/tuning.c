/*
 * Clock tuning: per-pstate clock offsets (and the deprecated VF-offset API, which works on
 * pstate 0) and locked clocks.
 *
 * Offset setters snap to the model's step (round half away from zero) and only then check
 * the range, so a value just outside the range that snaps inside it is accepted, as the
 * driver does.  Locked-clock setters accept NVML_CLOCK_LIMIT_ID_TDP (the base clock for
 * graphics, the top memory clock for memory) and NVML_CLOCK_LIMIT_ID_UNLIMITED (the maximum
 * clock) and store the resolved MHz values.
 */
#include "nvsim_internal.h"

/* ---- clock offsets ------------------------------------------------------------------ */

struct offset_domain {
    const int32_t *value; /* the offset's field in `g` (cast back only by set_offset) */
    int min, max;
    unsigned int step;
};

static nvmlReturn_t offset_domain(const nvsim_gpu_t *g, nvmlClockType_t type, unsigned int pstate,
                                  struct offset_domain *out)
{
    if (!nvsim_pstate_ok(g, pstate))
        return NVML_ERROR_INVALID_ARGUMENT;
    const nvsim_pstate_t *ps = &g->pstates[pstate];
    if (type == NVML_CLOCK_GRAPHICS) {
        *out = (struct offset_domain){&ps->gpc_offset_mhz, g->gpc_offset_min, g->gpc_offset_max,
                                      g->gpc_offset_step};
    } else if (type == NVML_CLOCK_MEM) {
        *out = (struct offset_domain){&ps->mem_offset_mhz, g->mem_offset_min, g->mem_offset_max,
                                      g->mem_offset_step};
    } else {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    return NVML_SUCCESS;
}

static long long snap(long long value, unsigned int step)
{
    if (step <= 1)
        return value;
    long long half = step / 2, s = step;
    return value >= 0 ? (value + half) / s * s : -((-value + half) / s * s);
}

static nvmlReturn_t set_offset(nvsim_gpu_t *g, nvmlClockType_t type, unsigned int pstate,
                               long long offset)
{
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_CLOCK_OFFSETS));
    struct offset_domain d;
    NVSIM_TRY(offset_domain(g, type, pstate, &d));
    long long snapped = snap(offset, d.step);
    if (snapped < d.min || snapped > d.max)
        return NVML_ERROR_INVALID_ARGUMENT;
    NVSIM_TRY(nvsim_write_begin());
    NVSIM_STORE(*(int32_t *)d.value, (int32_t)snapped);
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetClockOffsets(nvmlDevice_t device, nvmlClockOffset_t *info)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(info);
    if (info->version != nvmlClockOffset_v1)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_CLOCK_OFFSETS));
    struct offset_domain d;
    NVSIM_TRY(offset_domain(g, info->type, (unsigned int)info->pstate, &d));
    info->clockOffsetMHz = *d.value;
    info->minClockOffsetMHz = d.min;
    info->maxClockOffsetMHz = d.max;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetClockOffsets(nvmlDevice_t device, nvmlClockOffset_t *info)
{
    NVSIM_ENTER_LIVE(device);
    NVSIM_NONNULL(info);
    if (info->version != nvmlClockOffset_v1)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    return set_offset(g, info->type, (unsigned int)info->pstate, info->clockOffsetMHz);
}

/* The deprecated VF-offset API works on pstate 0. */
static nvmlReturn_t vf_offset(const nvsim_gpu_t *g, nvmlClockType_t type, int *offset)
{
    NVSIM_NONNULL(offset);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_CLOCK_OFFSETS));
    struct offset_domain d;
    NVSIM_TRY(offset_domain(g, type, 0, &d));
    *offset = *d.value;
    return NVML_SUCCESS;
}

static nvmlReturn_t vf_range(const nvsim_gpu_t *g, nvmlClockType_t type, int *min, int *max)
{
    NVSIM_NONNULL(min);
    NVSIM_NONNULL(max);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_CLOCK_OFFSETS));
    struct offset_domain d;
    NVSIM_TRY(offset_domain(g, type, 0, &d));
    *min = d.min;
    *max = d.max;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpcClkVfOffset(nvmlDevice_t device, int *offset)
{
    NVSIM_ENTER(device);
    return vf_offset(g, NVML_CLOCK_GRAPHICS, offset);
}

nvmlReturn_t nvmlDeviceGetMemClkVfOffset(nvmlDevice_t device, int *offset)
{
    NVSIM_ENTER(device);
    return vf_offset(g, NVML_CLOCK_MEM, offset);
}

nvmlReturn_t nvmlDeviceSetGpcClkVfOffset(nvmlDevice_t device, int offset)
{
    NVSIM_ENTER_LIVE(device);
    return set_offset(g, NVML_CLOCK_GRAPHICS, 0, offset);
}

nvmlReturn_t nvmlDeviceSetMemClkVfOffset(nvmlDevice_t device, int offset)
{
    NVSIM_ENTER_LIVE(device);
    return set_offset(g, NVML_CLOCK_MEM, 0, offset);
}

nvmlReturn_t nvmlDeviceGetGpcClkMinMaxVfOffset(nvmlDevice_t device, int *minOffset,
                                               int *maxOffset)
{
    NVSIM_ENTER(device);
    return vf_range(g, NVML_CLOCK_GRAPHICS, minOffset, maxOffset);
}

nvmlReturn_t nvmlDeviceGetMemClkMinMaxVfOffset(nvmlDevice_t device, int *minOffset,
                                               int *maxOffset)
{
    NVSIM_ENTER(device);
    return vf_range(g, NVML_CLOCK_MEM, minOffset, maxOffset);
}

/* ---- locked clocks ------------------------------------------------------------------ */

/* Lowest pstate minimum of the graphics (mem = 0) or memory (mem = 1) clock. */
static unsigned int lowest_clock(const nvsim_gpu_t *g, int mem)
{
    unsigned int lo = 0;
    int any = 0;
    for (unsigned int p = 0; p < NVSIM_MAX_PSTATES; p++) {
        const nvsim_pstate_t *ps = &g->pstates[p];
        if (!ps->supported)
            continue;
        unsigned int v = mem ? ps->min_mem_mhz : ps->min_gpc_mhz;
        if (!any || v < lo)
            lo = v;
        any = 1;
    }
    return lo;
}

static unsigned int resolve_limit(unsigned int mhz, unsigned int tdp, unsigned int max)
{
    if (mhz == NVML_CLOCK_LIMIT_ID_TDP)
        return tdp;
    if (mhz == NVML_CLOCK_LIMIT_ID_UNLIMITED)
        return max;
    return mhz;
}

static nvmlReturn_t lock_clocks(nvsim_gpu_t *g, int mem, unsigned int min, unsigned int max)
{
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_LOCKED_CLOCKS));
    unsigned int top = mem ? g->max_mem_mhz : g->max_gpc_mhz;
    unsigned int tdp = mem ? g->max_mem_mhz : g->base_gpc_mhz;
    min = resolve_limit(min, tdp, top);
    max = resolve_limit(max, tdp, top);
    if (min > max || min < lowest_clock(g, mem) || max > top)
        return NVML_ERROR_INVALID_ARGUMENT;
    /* both bounds in one write section: the model never sees a half-set range */
    NVSIM_TRY(nvsim_write_begin());
    if (mem) {
        NVSIM_STORE(g->locked_mem_min, min);
        NVSIM_STORE(g->locked_mem_max, max);
    } else {
        NVSIM_STORE(g->locked_gpc_min, min);
        NVSIM_STORE(g->locked_gpc_max, max);
    }
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}

static nvmlReturn_t unlock_clocks(nvsim_gpu_t *g, int mem)
{
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_LOCKED_CLOCKS));
    NVSIM_TRY(nvsim_write_begin());
    if (mem) {
        NVSIM_STORE(g->locked_mem_min, 0u);
        NVSIM_STORE(g->locked_mem_max, 0u);
    } else {
        NVSIM_STORE(g->locked_gpc_min, 0u);
        NVSIM_STORE(g->locked_gpc_max, 0u);
    }
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetGpuLockedClocks(nvmlDevice_t device, unsigned int minGpuClockMHz,
                                          unsigned int maxGpuClockMHz)
{
    NVSIM_ENTER_LIVE(device);
    return lock_clocks(g, 0, minGpuClockMHz, maxGpuClockMHz);
}

nvmlReturn_t nvmlDeviceResetGpuLockedClocks(nvmlDevice_t device)
{
    NVSIM_ENTER_LIVE(device);
    return unlock_clocks(g, 0);
}

nvmlReturn_t nvmlDeviceSetMemoryLockedClocks(nvmlDevice_t device, unsigned int minMemClockMHz,
                                             unsigned int maxMemClockMHz)
{
    NVSIM_ENTER_LIVE(device);
    return lock_clocks(g, 1, minMemClockMHz, maxMemClockMHz);
}

nvmlReturn_t nvmlDeviceResetMemoryLockedClocks(nvmlDevice_t device)
{
    NVSIM_ENTER_LIVE(device);
    return unlock_clocks(g, 1);
}
