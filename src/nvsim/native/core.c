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

nvsim_state_t *volatile nvsim_state = NULL;
int nvsim_writable = 0;

unsigned int nvsim_visible[NVSIM_MAX_GPUS];
unsigned int nvsim_visible_count = 0;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int init_refcount = 0;

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
           st->header.layout_version == NVSIM_LAYOUT_VERSION &&
           st->header.gpu_count <= NVSIM_MAX_GPUS;
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
    nvsim_visible_count = 0;
    for (unsigned int i = 0; i < st->header.gpu_count; i++) {
        int seen = chosen == NULL;
        if (!seen) {
            snprintf(probe, sizeof probe, "%s/nvidia%u", chosen, st->gpus[i].minor_number);
            seen = access(probe, F_OK) == 0;
        }
        if (seen)
            nvsim_visible[nvsim_visible_count++] = i;
    }
}

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
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void *map = mmap(NULL, sizeof(nvsim_state_t), prot, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return NVML_ERROR_DRIVER_NOT_LOADED;
    if (!state_valid(map)) {
        munmap(map, sizeof(nvsim_state_t));
        return NVML_ERROR_DRIVER_NOT_LOADED;
    }
    nvsim_writable = writable;
    find_visible(path, map);
    __atomic_store_n(&nvsim_state, (nvsim_state_t *)map, __ATOMIC_RELEASE);
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
        init_refcount++;
    pthread_mutex_unlock(&init_lock);
    return ret;
}

nvmlReturn_t nvmlInit(void) /* exported as nvmlInit_v2 by nvml.h */
{
    return nvmlInitWithFlags(0);
}

nvmlReturn_t nvmlShutdown(void)
{
    nvmlReturn_t ret = NVML_SUCCESS;
    pthread_mutex_lock(&init_lock);
    if (init_refcount == 0) {
        ret = NVML_ERROR_UNINITIALIZED;
    } else if (--init_refcount == 0) {
        nvsim_state_t *st = nvsim_state;
        __atomic_store_n(&nvsim_state, (nvsim_state_t *)NULL, __ATOMIC_RELEASE);
        munmap(st, sizeof(nvsim_state_t));
    }
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
    return __atomic_load_n(&nvsim_state, __ATOMIC_ACQUIRE) != NULL ? NVML_SUCCESS
                                                                   : NVML_ERROR_UNINITIALIZED;
}

static nvsim_gpu_t *gpu_of(nvmlDevice_t device)
{
    nvsim_state_t *st = nvsim_state;
    uintptr_t p = (uintptr_t)device;
    uintptr_t base = (uintptr_t)&nvsim_devices[0];
    if (st == NULL || p < base || p >= (uintptr_t)&nvsim_devices[NVSIM_MAX_GPUS] ||
        (p - base) % sizeof(struct nvmlDevice_st) != 0)
        return NULL;
    unsigned int index = device->index;
    if (index >= st->header.gpu_count)
        return NULL;
    return &st->gpus[index];
}

nvmlReturn_t nvsim_enter(const char *fn, int *cache, nvmlDevice_t device, nvsim_gpu_t **gpu,
                         int allow_lost)
{
    NVSIM_TRY(nvsim_check_init());
    NVSIM_TRY(nvsim_gate(fn, cache));
    nvsim_gpu_t *g = gpu_of(device);
    if (g == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!allow_lost && g->lost == NVSIM_LOST_YES)
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
    if (geteuid() != 0 || !nvsim_writable)
        return NVML_ERROR_NO_PERMISSION;
    return NVML_SUCCESS;
}

void nvsim_settings_changed(nvsim_gpu_t *gpu)
{
    __atomic_add_fetch(&gpu->settings_seq, 1, __ATOMIC_SEQ_CST);
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
