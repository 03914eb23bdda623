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

/*
 * The mapping of the current (or, after nvmlShutdown, the last) init; NULL before the first
 * successful init.  Mappings are never unmapped, so a pointer read once stays valid.  Read
 * it with nvsim_st().
 */
NVSIM_HIDDEN extern nvsim_state_t *nvsim_state;
NVSIM_HIDDEN nvsim_state_t *nvsim_st(void);
/* The GPUs this process sees (their state indexes, in order) and how many: see
 * find_visible in core.c.  Enumeration goes through this list. */
NVSIM_HIDDEN extern unsigned int nvsim_visible[NVSIM_MAX_GPUS];
NVSIM_HIDDEN extern unsigned int nvsim_visible_count;
#define nvsim_visible_n() __atomic_load_n(&nvsim_visible_count, __ATOMIC_ACQUIRE)
#define nvsim_visible_at(k) __atomic_load_n(&nvsim_visible[(k)], __ATOMIC_RELAXED)

/* UNINITIALIZED unless nvmlInit succeeded (and nvmlShutdown has not undone it). */
NVSIM_HIDDEN nvmlReturn_t nvsim_check_init(void);

/* header.gpu_count, re-read and clamped to the handle table at every use. */
NVSIM_HIDDEN unsigned int nvsim_gpu_count(const nvsim_state_t *st);

/* Whether `nvsim down` has retired this state (clients then get errors, not old values). */
NVSIM_HIDDEN int nvsim_instance_down(const nvsim_state_t *st);

/*
 * Copy GPU `index` consistently: header.seq is a seqlock (odd while a writer is inside),
 * so the copy never holds half a model tick or half a setter's write.
 */
NVSIM_HIDDEN void nvsim_read_gpu(const nvsim_state_t *st, unsigned int index, nvsim_gpu_t *out);

/*
 * A setter's write section: excludes the other threads of this process and, through the
 * state file's lock, the model and the nvsim CLI; makes header.seq odd until
 * nvsim_write_end().  NO_PERMISSION on a read-only mapping.
 */
NVSIM_HIDDEN nvmlReturn_t nvsim_write_begin(void);
NVSIM_HIDDEN void nvsim_write_end(void);

/* A store into the shared mapping (other threads copy it word by word meanwhile). */
#define NVSIM_STORE(lvalue, value) __atomic_store_n(&(lvalue), (value), __ATOMIC_RELAXED)

/*
 * FUNCTION_NOT_FOUND when the pretended driver predates `fn` (see gating.c).  `cache`
 * is a per-call-site slot (initialised to -1) holding the table lookup.
 */
NVSIM_HIDDEN nvmlReturn_t nvsim_gate(const char *fn, int *cache);

/* The first driver branch that has `fn`, 0 when every supported driver has it. */
NVSIM_HIDDEN unsigned int nvsim_gate_branch(const char *fn);

/* Flags of nvsim_enter. */
#define NVSIM_ALLOW_LOST 1 /* answer even when the GPU fell off the bus */
#define NVSIM_LIVE 2       /* the live GPU in the mapping (setters), not a snapshot */

/*
 * Common entry of a device function: initialised, not gated away, valid handle, the
 * instance not down and, unless NVSIM_ALLOW_LOST, a GPU that is still on the bus.  On
 * success *gpu is a consistent snapshot of its state private to this thread (or, with
 * NVSIM_LIVE, the shared state itself).
 */
NVSIM_HIDDEN nvmlReturn_t nvsim_enter(const char *fn, int *cache, nvmlDevice_t device,
                                      nvsim_gpu_t **gpu, int flags);

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
 * Device entry as a statement: declares `g` and returns early on error.  Getters use
 * NVSIM_ENTER (a const snapshot; NVSIM_ENTER_ANY also answers for a lost GPU); setters use
 * NVSIM_ENTER_LIVE and write between nvsim_write_begin() and nvsim_write_end().
 */
#define NVSIM_ENTER_IMPL(qual, device, flags)                                           \
    qual nvsim_gpu_t *g = NULL;                                                         \
    do {                                                                                \
        static int nvsim_gate_cache_ = -1;                                              \
        nvsim_gpu_t *nvsim_g_ = NULL;                                                   \
        nvmlReturn_t nvsim_r_ = nvsim_enter(__func__, &nvsim_gate_cache_, (device),     \
                                            &nvsim_g_, (flags));                        \
        if (nvsim_r_ != NVML_SUCCESS)                                                   \
            return nvsim_r_;                                                            \
        g = nvsim_g_;                                                                   \
    } while (0);                                                                        \
    (void)g
#define NVSIM_ENTER(device) NVSIM_ENTER_IMPL(const, device, 0)
#define NVSIM_ENTER_ANY(device) NVSIM_ENTER_IMPL(const, device, NVSIM_ALLOW_LOST)
#define NVSIM_ENTER_LIVE(device) NVSIM_ENTER_IMPL(, device, NVSIM_LIVE)

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
