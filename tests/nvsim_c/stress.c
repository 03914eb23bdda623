/*
 * Reader stress for test_sanitizers.py, built with AddressSanitizer or ThreadSanitizer
 * together with the library:
 *
 *   - a writer process (forked before any thread starts) plays the model: under the state
 *     file's lock it moves header.seq to odd, writes util_gpu and util_mem of every GPU to
 *     the same new value, and moves seq back to even, as fast as it can; the readers start
 *     after its first write (the state file's own two utilizations differ);
 *   - 8 reader threads loop over nvmlInit / getters on every GPU / nvmlShutdown, so the
 *     refcount keeps dropping to zero and coming back while other threads read;
 *   - one setter thread changes locked clocks and the power limit.
 *
 * A reader that ever sees util_gpu != util_mem saw half a write: the seqlock failed.  Any
 * failed call that must succeed, or any sanitizer report, fails the run.
 *
 * usage: stress STATE_FILE SECONDS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nvml.h>

#include "nvsim_layout.h"

#define READERS 8

static double seconds;
static int failures, torn, calls;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, nvmlReturn_t r)
{
    fprintf(stderr, "%s -> %d\n", what, (int)r);
    __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
}

static void writer(const char *path, double until, int ready)
{
    int fd = open(path, O_RDWR);
    nvsim_state_t *st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd < 0 || st == MAP_FAILED)
        _exit(3);
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    struct flock unlock = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
    for (uint32_t k = 1; now() < until; k++) {
        /* a writer without the lock would tear readings itself: say so instead */
        while (fcntl(fd, F_SETLKW, &lock) != 0)
            if (errno != EINTR)
                _exit(4);
        /* seqlock write side: odd, then a fence so no data store moves above it */
        __atomic_add_fetch(&st->header.seq, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        for (uint32_t i = 0; i < st->header.gpu_count && i < NVSIM_MAX_GPUS; i++) {
            __atomic_store_n(&st->gpus[i].util_gpu, k % 101, __ATOMIC_RELAXED);
            for (volatile int spin = 0; spin < 50; spin++) {
            }
            __atomic_store_n(&st->gpus[i].util_mem, k % 101, __ATOMIC_RELAXED);
        }
        __atomic_add_fetch(&st->header.seq, 1, __ATOMIC_RELEASE);
        fcntl(fd, F_SETLK, &unlock);
        if (ready >= 0) { /* the state's own two utilizations differ until this first write */
            close(ready);
            ready = -1;
        }
    }
    _exit(0);
}

static void *reader(void *arg)
{
    double until = now() + seconds;
    while (now() < until) {
        nvmlReturn_t r = nvmlInit_v2();
        if (r != NVML_SUCCESS) {
            fail("nvmlInit_v2", r);
            break;
        }
        unsigned int count = 0;
        if ((r = nvmlDeviceGetCount_v2(&count)) != NVML_SUCCESS)
            fail("nvmlDeviceGetCount_v2", r);
        for (int round = 0; round < 20; round++) {
            for (unsigned int i = 0; i < count; i++) {
                nvmlDevice_t h;
                nvmlUtilization_t u;
                nvmlMemory_t m;
                nvmlPciInfo_t pci;
                char name[96];
                unsigned int t;
                if ((r = nvmlDeviceGetHandleByIndex_v2(i, &h)) != NVML_SUCCESS) {
                    fail("nvmlDeviceGetHandleByIndex_v2", r);
                    continue;
                }
                if ((r = nvmlDeviceGetUtilizationRates(h, &u)) != NVML_SUCCESS)
                    fail("nvmlDeviceGetUtilizationRates", r);
                else if (u.gpu != u.memory)
                    __atomic_add_fetch(&torn, 1, __ATOMIC_RELAXED);
                if ((r = nvmlDeviceGetMemoryInfo(h, &m)) != NVML_SUCCESS || m.used > m.total)
                    fail("nvmlDeviceGetMemoryInfo", r);
                if ((r = nvmlDeviceGetPciInfo_v3(h, &pci)) != NVML_SUCCESS)
                    fail("nvmlDeviceGetPciInfo_v3", r);
                if ((r = nvmlDeviceGetName(h, name, sizeof name)) != NVML_SUCCESS)
                    fail("nvmlDeviceGetName", r);
                if ((r = nvmlDeviceGetTemperature(h, NVML_TEMPERATURE_GPU, &t)) != NVML_SUCCESS)
                    fail("nvmlDeviceGetTemperature", r);
                __atomic_add_fetch(&calls, 6, __ATOMIC_RELAXED);
            }
        }
        if ((r = nvmlShutdown()) != NVML_SUCCESS)
            fail("nvmlShutdown", r);
    }
    return arg;
}

static void *setter(void *arg)
{
    double until = now() + seconds;
    if (nvmlInit_v2() != NVML_SUCCESS)
        return arg;
    nvmlDevice_t h;
    nvmlDeviceGetHandleByIndex_v2(0, &h);
    for (unsigned int k = 0; now() < until; k++) {
        nvmlReturn_t r = nvmlDeviceSetGpuLockedClocks(h, 600 + k % 300, 1500 + k % 300);
        if (r != NVML_SUCCESS)
            fail("nvmlDeviceSetGpuLockedClocks", r);
        r = nvmlDeviceSetPowerManagementLimit(h, 300000 + (k % 100) * 1000);
        if (r != NVML_SUCCESS)
            fail("nvmlDeviceSetPowerManagementLimit", r);
    }
    nvmlDeviceResetGpuLockedClocks(h);
    nvmlShutdown();
    return arg;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    seconds = atof(argv[2]);
    int ready[2];
    if (pipe(ready) != 0)
        return 2;
    pid_t child = fork();
    if (child == 0) {
        close(ready[0]);
        writer(argv[1], now() + seconds + 0.5, ready[1]);
    }
    close(ready[1]);
    char byte;
    while (read(ready[0], &byte, 1) < 0 && errno == EINTR) {
    } /* EOF: the writer has written once (or died, which its exit status shows) */
    close(ready[0]);
    pthread_t threads[READERS + 1];
    for (int i = 0; i < READERS; i++)
        pthread_create(&threads[i], NULL, reader, NULL);
    pthread_create(&threads[READERS], NULL, setter, NULL);
    for (int i = 0; i <= READERS; i++)
        pthread_join(threads[i], NULL);
    int status = 0;
    waitpid(child, &status, 0);
    printf("%d calls, %d torn readings, %d failures, writer exit %d\n", calls, torn, failures,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return failures == 0 && torn == 0 && calls > 0 && WIFEXITED(status) &&
                   WEXITSTATUS(status) == 0
               ? 0
               : 1;
}
