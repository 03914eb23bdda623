/*
 * Library life cycle: finding and mapping the state file, the init refcount, device
 * handles, error strings and the small helpers every other file uses.
 *
 * The state file is looked up at each 0 -> 1 transition of the init refcount:
 *   1. $NVSIM_STATE/state when NVSIM_STATE is set;
 *   2. <directory of this .so>/../state when it exists (nvsim copies the library into
 *      $NVSIM_STATE/lib, so a container with the state directory mounted needs no env);
 *   3. /run/nvsim/state.
 * A missing file or a bad magic/layout version answers NVML_ERROR_DRIVER_NOT_LOADED, which
 * is what a machine without the NVIDIA driver says.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nvsim_internal.h"

#define DEFAULT_STATE "/run/nvsim/state"

struct nvmlDevice_st nvsim_devices[NVSIM_MAX_GPUS] = {
    {0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {11}, {12}, {13}, {14}, {15},
};
_Static_assert(NVSIM_MAX_GPUS == 16, "handle table matches MAX_GPUS");
_Static_assert(sizeof(nvsim_gpu_t) % sizeof(uint64_t) == 0, "GPU state copies in words");

/*
 * State files stay mapped after nvmlShutdown: a thread still inside a getter when another
 * thread shuts down keeps reading valid memory.  A later init that finds the same file
 * (same device and inode) reuses its mapping; a new instance's file gets a new one.  Up to
 * MAX_MAPPINGS are kept; beyond that the oldest one that is not current is unmapped, so a
 * client that re-initialises against hundreds of instances does not grow without bound
 * (no thread can still be reading a mapping that many generations old).
 */
#define MAX_MAPPINGS 64

struct mapping {
    dev_t dev;
    ino_t ino;
    int writable;
    unsigned long long generation; /* 0 = free slot */
    nvsim_state_t *state;
};

nvsim_state_t *nvsim_state = NULL; /* the mapping of the current (or last) init */
static int state_fd = -1;          /* its descriptor, for the write lock; under write_lock */
static int state_writable = 0;
static struct mapping mappings[MAX_MAPPINGS]; /* guarded by init_lock */
static unsigned long long generations = 0;

unsigned int nvsim_visible[NVSIM_MAX_GPUS];
unsigned int nvsim_visible_count = 0;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int init_refcount = 0; /* written under init_lock, read atomically */

/* Serialises C writers of this process; the file lock serialises them with the model. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- locating and mapping the state file ---------------------------------------- */

static int state_path(char *out, size_t size)
{
    const char *env = getenv("NVSIM_STATE");
    if (env != NULL && env[0] != '\0')
        return snprintf(out, size, "%s/state", env) < (int)size ? 0 : -1;

    Dl_info info;
    if (dladdr((void *)&nvsim_check_init, &info) != 0 && info.dli_fname != NULL) {
        char lib[PATH_MAX];
        if (realpath(info.dli_fname, lib) != NULL) {
            char *slash = strrchr(lib, '/');
            if (slash != NULL) {
                *slash = '\0';
                if (snprintf(out, size, "%s/../state", lib) < (int)size && access(out, F_OK) == 0)
                    return 0;
            }
        }
    }
    return snprintf(out, size, "%s", DEFAULT_STATE) < (int)size ? 0 : -1;
}

static int state_valid(const nvsim_state_t *st)
{
    return memcmp(st->header.magic, NVSIM_MAGIC, sizeof st->header.magic) == 0 &&
           st->header.layout_version == NVSIM_LAYOUT_VERSION;
}

/*
 * Which GPUs this process sees, decided as the real driver's NVML does: those whose
 * /dev/nvidiaN node (N = the GPU's minor number) is present.  The nodes are looked for in
 * the instance's dev/ beside the state file (the host), else in /dev (a container, into
 * which CDI put only the chosen GPUs' nodes).  Where neither has nvidiactl (an instance
 * made without root, which has no nodes), every GPU is visible.
 */
static void find_visible(const char *state_file, const nvsim_state_t *st)
{
    char dir[PATH_MAX], probe[PATH_MAX + 32];
    const char *chosen = NULL;
    const char *slash = strrchr(state_file, '/');
    int len = slash != NULL ? (int)(slash - state_file) : 0;
    if (snprintf(dir, sizeof dir, "%.*s/dev", len, state_file) < (int)sizeof dir &&
        snprintf(probe, sizeof probe, "%s/nvidiactl", dir) < (int)sizeof probe &&
        access(probe, F_OK) == 0)
        chosen = dir;
    else if (access("/dev/nvidiactl", F_OK) == 0)
        chosen = "/dev";
    unsigned int count = nvsim_gpu_count(st), seen_count = 0;
    for (unsigned int i = 0; i < count; i++) {
        int seen = chosen == NULL;
        if (!seen) {
            snprintf(probe, sizeof probe, "%s/nvidia%u", chosen, st->gpus[i].minor_number);
            seen = access(probe, F_OK) == 0;
        }
        if (seen) /* atomic: other threads may enumerate while one re-initialises */
            __atomic_store_n(&nvsim_visible[seen_count++], i, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&nvsim_visible_count, seen_count, __ATOMIC_RELEASE);
}

/* Map (or find the mapping of) the state file; called under init_lock. */
static nvmlReturn_t map_state(void)
{
    char path[PATH_MAX];
    if (state_path(path, sizeof path) != 0)
        return NVML_ERROR_DRIVER_NOT_LOADED;

    int writable = 1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        writable = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return errno == EACCES ? NVML_ERROR_NO_PERMISSION : NVML_ERROR_DRIVER_NOT_LOADED;

    struct stat sb;
    if (fstat(fd, &sb) != 0 || (size_t)sb.st_size < sizeof(nvsim_state_t)) {
        close(fd);
        return NVML_ERROR_DRIVER_NOT_LOADED;
    }
    struct mapping *m = NULL, *slot = NULL;
    for (size_t i = 0; i < MAX_MAPPINGS && m == NULL; i++) {
        struct mapping *c = &mappings[i];
        if (c->generation != 0 && c->dev == sb.st_dev && c->ino == sb.st_ino &&
            c->writable >= writable)
            m = c;
        else if ((c->generation == 0 || c->state != nvsim_state) &&
                 (slot == NULL || c->generation < slot->generation))
            slot = c; /* free, or the oldest that is not current */
    }
    if (m == NULL) {
        int prot = PROT_READ | (writable ? PROT_WRITE : 0);
        void *map = mmap(NULL, sizeof(nvsim_state_t), prot, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED || slot == NULL) {
            if (map != MAP_FAILED)
                munmap(map, sizeof(nvsim_state_t));
            close(fd);
            return NVML_ERROR_DRIVER_NOT_LOADED;
        }
        if (slot->generation != 0)
            munmap(slot->state, sizeof(nvsim_state_t));
        *slot = (struct mapping){sb.st_dev, sb.st_ino, writable, 0, map};
        m = slot;
    }
    m->generation = ++generations;
    if (!state_valid(m->state) || nvsim_instance_down(m->state) ||
        (m->state->header.driver_fault & NVSIM_DRIVER_FAULT_NVML)) {
        close(fd); /* a driver bundle whose module "did not load": see nvsim/driver.py */
        return NVML_ERROR_DRIVER_NOT_LOADED;
    }
    pthread_mutex_lock(&write_lock);
    if (state_fd >= 0)
        close(state_fd);
    state_fd = fd;
    __atomic_store_n(&state_writable, m->writable && writable, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&write_lock);
    find_visible(path, m->state);
    __atomic_store_n(&nvsim_state, m->state, __ATOMIC_RELEASE);
    return NVML_SUCCESS;
}

/* ---- init / shutdown ---------------------------------------------------------------- */

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags; /* NO_GPUS / NO_ATTACH change nothing: the state file is all there is */
    nvmlReturn_t ret = NVML_SUCCESS;
    pthread_mutex_lock(&init_lock);
    if (init_refcount == 0)
        ret = map_state();
    if (ret == NVML_SUCCESS)
        __atomic_store_n(&init_refcount, init_refcount + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&init_lock);
    return ret;
}

nvmlReturn_t nvmlInit(void) /* exported as nvmlInit_v2 by nvml.h */
{
    return nvmlInitWithFlags(0);
}

/* The mapping stays: see `struct mapping`. */
nvmlReturn_t nvmlShutdown(void)
{
    nvmlReturn_t ret = NVML_SUCCESS;
    pthread_mutex_lock(&init_lock);
    if (init_refcount == 0)
        ret = NVML_ERROR_UNINITIALIZED;
    else
        __atomic_store_n(&init_refcount, init_refcount - 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&init_lock);
    return ret;
}

const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_VGPU_ECC_NOT_SUPPORTED:
        return "The requested vgpu operation is not available because ECC is enabled";
    case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Insufficient resources";
    case NVML_ERROR_FREQ_NOT_SUPPORTED: return "Frequency not supported";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_DEPRECATED: return "Deprecated";
    case NVML_ERROR_NOT_READY: return "Not ready";
    case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
    case NVML_ERROR_INVALID_STATE: return "Invalid state";
    case NVML_ERROR_RESET_TYPE_NOT_SUPPORTED: return "Reset type not supported";
    case NVML_ERROR_UNKNOWN: return "Unknown Error";
    }
    return "Unknown Error";
}

/* ---- helpers ------------------------------------------------------------------------ */

nvmlReturn_t nvsim_check_init(void)
{
    return __atomic_load_n(&init_refcount, __ATOMIC_ACQUIRE) > 0 ? NVML_SUCCESS
                                                                 : NVML_ERROR_UNINITIALIZED;
}

nvsim_state_t *nvsim_st(void)
{
    return __atomic_load_n(&nvsim_state, __ATOMIC_ACQUIRE);
}

unsigned int nvsim_gpu_count(const nvsim_state_t *st)
{
    unsigned int n = __atomic_load_n(&st->header.gpu_count, __ATOMIC_RELAXED);
    return n < NVSIM_MAX_GPUS ? n : NVSIM_MAX_GPUS;
}

int nvsim_instance_down(const nvsim_state_t *st)
{
    return __atomic_load_n(&st->header.down, __ATOMIC_RELAXED) != 0;
}

/* ---- the seqlock ---------------------------------------------------------------------- */

#define SEQLOCK_SPINS 256         /* busy retries before asking whether a writer lives */
#define SEQLOCK_PATIENCE_NS 1000000000LL /* a live writer stalled this long: read anyway */

static long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Whether a writer is inside `st` now: a thread of this process holding write_lock, or
 * another process holding the state file's lock.  An odd seq with neither is what a writer
 * killed inside leaves; readers then stop waiting for it.
 */
static int writer_inside(const nvsim_state_t *st)
{
    if (st != nvsim_st())
        return 0; /* an old instance's mapping: nobody writes there any more */
    if (pthread_mutex_trylock(&write_lock) != 0)
        return 1;
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int held = state_fd >= 0 && fcntl(state_fd, F_GETLK, &lk) == 0 && lk.l_type != F_UNLCK;
    pthread_mutex_unlock(&write_lock);
    return held;
}

void nvsim_read_gpu(const nvsim_state_t *st, unsigned int index, nvsim_gpu_t *out)
{
    const uint64_t *src = (const uint64_t *)&st->gpus[index];
    uint64_t *dst = (uint64_t *)out;
    const size_t words = sizeof(nvsim_gpu_t) / sizeof(uint64_t);
    long long since = 0;
    uint64_t waited_on = 0; /* the odd seq `since` times: patience is per write */
    for (int spin = 0;; spin++) {
        uint64_t before = __atomic_load_n(&st->header.seq, __ATOMIC_ACQUIRE);
        if (before & 1) {
            if (spin < SEQLOCK_SPINS)
                continue;
            /* A busy writer makes seq odd again and again; only one write that stays
             * inside the whole patience counts as stalled, never the sum of many. */
            if (since == 0 || before != waited_on) {
                since = monotonic_ns();
                waited_on = before;
            }
            if (writer_inside(st) && monotonic_ns() - since < SEQLOCK_PATIENCE_NS) {
                sched_yield(); /* the writer may be waiting for this CPU */
                continue;
            }
            /* No writer inside now.  If seq moved, one finished (or began) meanwhile:
             * start over.  If not, the one that made it odd died: read what is there. */
            if (__atomic_load_n(&st->header.seq, __ATOMIC_ACQUIRE) != before)
                continue;
        }
        for (size_t w = 0; w < words; w++)
            dst[w] = __atomic_load_n(&src[w], __ATOMIC_RELAXED);
        if (before & 1)
            return; /* no live writer will finish: this is as consistent as it gets */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&st->header.seq, __ATOMIC_RELAXED) == before)
            return;
    }
}

nvmlReturn_t nvsim_write_begin(void)
{
    pthread_mutex_lock(&write_lock);
    nvsim_state_t *st = nvsim_st();
    if (state_fd < 0 || st == NULL || !state_writable) {
        pthread_mutex_unlock(&write_lock);
        return NVML_ERROR_NO_PERMISSION;
    }
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    while (fcntl(state_fd, F_SETLKW, &lk) != 0) {
        if (errno != EINTR) {
            pthread_mutex_unlock(&write_lock);
            return NVML_ERROR_UNKNOWN;
        }
    }
    /* odd: a write is under way (a writer that died left it odd already) */
    uint64_t seq = __atomic_load_n(&st->header.seq, __ATOMIC_RELAXED);
    __atomic_store_n(&st->header.seq, seq + ((seq & 1) ? 2 : 1), __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return NVML_SUCCESS;
}

void nvsim_write_end(void)
{
    nvsim_state_t *st = nvsim_st();
    __atomic_add_fetch(&st->header.seq, 1, __ATOMIC_RELEASE);
    struct flock lk = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    fcntl(state_fd, F_SETLK, &lk);
    pthread_mutex_unlock(&write_lock);
}

static __thread nvsim_gpu_t snapshot; /* what one getter call reads */

/* The live GPU of a handle in `st`, or NULL when the handle is not ours or out of range. */
static nvsim_gpu_t *gpu_of(nvsim_state_t *st, nvmlDevice_t device, unsigned int *index)
{
    uintptr_t p = (uintptr_t)device;
    uintptr_t base = (uintptr_t)&nvsim_devices[0];
    if (st == NULL || p < base || p >= (uintptr_t)&nvsim_devices[NVSIM_MAX_GPUS] ||
        (p - base) % sizeof(struct nvmlDevice_st) != 0)
        return NULL;
    *index = device->index;
    if (*index >= nvsim_gpu_count(st))
        return NULL;
    return &st->gpus[*index];
}

nvmlReturn_t nvsim_enter(const char *fn, int *cache, nvmlDevice_t device, nvsim_gpu_t **gpu,
                         int flags)
{
    NVSIM_TRY(nvsim_check_init());
    NVSIM_TRY(nvsim_gate(fn, cache));
    nvsim_state_t *st = nvsim_st();
    unsigned int index;
    nvsim_gpu_t *live = gpu_of(st, device, &index);
    if (live == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (nvsim_instance_down(st))
        return NVML_ERROR_GPU_IS_LOST; /* the instance went down under this client */
    nvsim_gpu_t *g = live;
    if (!(flags & NVSIM_LIVE)) {
        nvsim_read_gpu(st, index, &snapshot);
        g = &snapshot;
    }
    if (!(flags & NVSIM_ALLOW_LOST) && __atomic_load_n(&g->lost, __ATOMIC_RELAXED) == NVSIM_LOST_YES)
        return NVML_ERROR_GPU_IS_LOST;
    *gpu = g;
    return NVML_SUCCESS;
}

nvmlReturn_t nvsim_feature(const nvsim_gpu_t *gpu, uint32_t feature)
{
    return (gpu->features & feature) == feature ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvsim_setter(const nvsim_gpu_t *gpu, uint32_t feature)
{
    NVSIM_TRY(nvsim_feature(gpu, feature));
    if (geteuid() != 0 || !__atomic_load_n(&state_writable, __ATOMIC_RELAXED))
        return NVML_ERROR_NO_PERMISSION;
    return NVML_SUCCESS;
}

void nvsim_settings_changed(nvsim_gpu_t *gpu)
{
    __atomic_add_fetch(&gpu->settings_seq, 1, __ATOMIC_RELAXED);
}

nvmlReturn_t nvsim_copy_string(char *dst, unsigned int length, const char *src, size_t max)
{
    NVSIM_NONNULL(dst);
    size_t n = strnlen(src, max);
    if ((size_t)length < n + 1)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return NVML_SUCCESS;
}

unsigned int nvsim_index_of(nvmlDevice_t device)
{
    return device->index;
}

long long nvsim_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

unsigned int nvsim_round_u(double value)
{
    if (!(value > 0.0))
        return 0;
    if (value >= 4294967295.0)
        return 4294967295u;
    return (unsigned int)lround(value);
}

unsigned int nvsim_power_limit(const nvsim_gpu_t *gpu)
{
    return gpu->power_limit_mw != 0 ? gpu->power_limit_mw : gpu->power_default_mw;
}
