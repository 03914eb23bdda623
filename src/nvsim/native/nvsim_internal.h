/*
 * Internal interface shared by the C files of nvsim's libnvidia-ml.so.1.
 *
 * The library serves NVML calls from the shared state file (see nvsim/layout.py).  Every
 * getter reads the live mapping; setters write only `setting` fields and bump
 * `settings_seq`.  Nothing here is exported beyond the NVML symbols themselves.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <nvml.h>

#include "nvsim_layout.h"

#define NVSIM_HIDDEN __attribute__((visibility("hidden")))

/* nvmlDevice_t points at one of these: stable for the life of the process. */
struct nvmlDevice_st {
    unsigned int index;
};

NVSIM_HIDDEN extern struct nvmlDevice_st nvsim_devices[NVSIM_MAX_GPUS];

/* The mapped state while the init refcount is above zero, NULL otherwise. */
NVSIM_HIDDEN extern nvsim_state_t *volatile nvsim_state;
/* The GPUs this process sees (their state indexes, in order) and how many: see
 * find_visible in core.c.  Enumeration goes through this list. */
NVSIM_HIDDEN extern unsigned int nvsim_visible[NVSIM_MAX_GPUS];
NVSIM_HIDDEN extern unsigned int nvsim_visible_count;
/* Whether the mapping is writable (the file opened O_RDWR). */
NVSIM_HIDDEN extern int nvsim_writable;

/* UNINITIALIZED unless nvmlInit succeeded. */
NVSIM_HIDDEN nvmlReturn_t nvsim_check_init(void);

/*
 * FUNCTION_NOT_FOUND when the pretended driver predates `fn` (see gating.c).  `cache`
 * is a per-call-site slot (initialised to -1) holding the table lookup.
 */
NVSIM_HIDDEN nvmlReturn_t nvsim_gate(const char *fn, int *cache);

/* The first driver branch that has `fn`, 0 when every supported driver has it. */
NVSIM_HIDDEN unsigned int nvsim_gate_branch(const char *fn);

/*
 * Common entry of a device function: initialised, not gated away, valid handle and,
 * unless `allow_lost`, a GPU that is still on the bus.  On success *gpu is its state.
 */
NVSIM_HIDDEN nvmlReturn_t nvsim_enter(const char *fn, int *cache, nvmlDevice_t device,
                                      nvsim_gpu_t **gpu, int allow_lost);

/* Entry of a setter after nvsim_enter: feature bit, then root, then a writable mapping. */
NVSIM_HIDDEN nvmlReturn_t nvsim_setter(const nvsim_gpu_t *gpu, uint32_t feature);

/* NOT_SUPPORTED unless the model has every bit of `feature`. */
NVSIM_HIDDEN nvmlReturn_t nvsim_feature(const nvsim_gpu_t *gpu, uint32_t feature);

/* Record that a setting changed (the model watches this counter). */
NVSIM_HIDDEN void nvsim_settings_changed(nvsim_gpu_t *gpu);

/* Copy a NUL-terminated field of at most `max` bytes; INSUFFICIENT_SIZE if it does not fit. */
NVSIM_HIDDEN nvmlReturn_t nvsim_copy_string(char *dst, unsigned int length, const char *src,
                                            size_t max);

/* Index of a device handle (no validation: use after nvsim_enter). */
NVSIM_HIDDEN unsigned int nvsim_index_of(nvmlDevice_t device);

/* CLOCK_REALTIME in microseconds. */
NVSIM_HIDDEN long long nvsim_now_us(void);

/* Round a non-negative model value to the unsigned integer NVML reports. */
NVSIM_HIDDEN unsigned int nvsim_round_u(double value);

/* The power limit in force (the setting, or the default before anything was set). */
NVSIM_HIDDEN unsigned int nvsim_power_limit(const nvsim_gpu_t *gpu);

/* Whether the model has performance state `pstate`. */
static inline int nvsim_pstate_ok(const nvsim_gpu_t *gpu, unsigned int pstate)
{
    return pstate < NVSIM_MAX_PSTATES && gpu->pstates[pstate].supported;
}

/* Shared by the versioned entry points of one function. */
NVSIM_HIDDEN nvmlReturn_t nvsim_running_processes(nvmlDevice_t device, unsigned int *count,
                                                  void *infos, size_t elem_size,
                                                  uint32_t kind, int with_instances,
                                                  const char *fn, int *cache);
NVSIM_HIDDEN nvmlReturn_t nvsim_event_wait(nvmlEventSet_t set, nvmlEventData_t *data,
                                           unsigned int timeout_ms);
NVSIM_HIDDEN nvmlReturn_t nvsim_pci_info(nvmlDevice_t device, nvmlPciInfo_t *pci,
                                         const char *fn, int *cache);

/*
 * Device entry as a statement: declares `nvsim_gpu_t *g` and returns early on error.
 * Use NVSIM_ENTER_ANY for calls that still answer when the GPU is lost.
 */
#define NVSIM_ENTER_IMPL(device, allow_lost)                                         \
    nvsim_gpu_t *g = NULL;                                                           \
    do {                                                                             \
        static int nvsim_gate_cache_ = -1;                                           \
        nvmlReturn_t nvsim_r_ = nvsim_enter(__func__, &nvsim_gate_cache_, (device), &g, \
                                            (allow_lost));                           \
        if (nvsim_r_ != NVML_SUCCESS)                                                \
            return nvsim_r_;                                                         \
    } while (0)
#define NVSIM_ENTER(device) NVSIM_ENTER_IMPL(device, 0)
#define NVSIM_ENTER_ANY(device) NVSIM_ENTER_IMPL(device, 1)

/* Entry of a function without a device: initialised and not gated away. */
#define NVSIM_ENTER_SYSTEM()                                                  \
    do {                                                                      \
        static int nvsim_gate_cache_ = -1;                                    \
        nvmlReturn_t nvsim_r_ = nvsim_check_init();                           \
        if (nvsim_r_ == NVML_SUCCESS)                                         \
            nvsim_r_ = nvsim_gate(__func__, &nvsim_gate_cache_);              \
        if (nvsim_r_ != NVML_SUCCESS)                                         \
            return nvsim_r_;                                                  \
    } while (0)

#define NVSIM_TRY(expr)                         \
    do {                                        \
        nvmlReturn_t nvsim_t_ = (expr);         \
        if (nvsim_t_ != NVML_SUCCESS)           \
            return nvsim_t_;                    \
    } while (0)

#define NVSIM_NONNULL(ptr)                      \
    do {                                        \
        if ((ptr) == NULL)                      \
            return NVML_ERROR_INVALID_ARGUMENT; \
    } while (0)

/* A device getter that returns one field of the GPU's state, converted to `type`. */
#define NVSIM_FIELD_GETTER(fn, type, field)                  \
    nvmlReturn_t fn(nvmlDevice_t device, type *out)          \
    {                                                        \
        NVSIM_ENTER(device);                                 \
        NVSIM_NONNULL(out);                                  \
        *out = (type)g->field;                               \
        return NVML_SUCCESS;                                 \
    }
