/*
 * Processes on a GPU (from the state's process table) and process names from /proc.
 *
 * The list calls follow NVML's size protocol: *infoCount holds the capacity of `infos` on
 * entry and the number of processes on return; when the capacity is too small (or `infos`
 * is NULL while there are processes) the call returns NVML_ERROR_INSUFFICIENT_SIZE with the
 * needed count and writes nothing else.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nvsim_internal.h"

nvmlReturn_t nvsim_running_processes(nvmlDevice_t device, unsigned int *count, void *infos,
                                     size_t elem_size, uint32_t kind, int with_instances,
                                     const char *fn, int *cache)
{
    nvsim_gpu_t *g;
    NVSIM_TRY(nvsim_enter(fn, cache, device, &g, 0));
    NVSIM_NONNULL(count);
    /* Snapshot the table first so the count and the entries agree. */
    nvsim_process_t procs[NVSIM_MAX_PROCS];
    unsigned int n = 0;
    for (unsigned int i = 0; i < NVSIM_MAX_PROCS; i++) {
        nvsim_process_t p = g->procs[i];
        if (p.pid != 0 && (p.kind & kind))
            procs[n++] = p;
    }
    if (*count < n || (infos == NULL && n > 0)) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < n; i++) {
        char *slot = (char *)infos + i * elem_size;
        memset(slot, 0, elem_size);
        if (with_instances) {
            nvmlProcessInfo_t *info = (nvmlProcessInfo_t *)slot;
            info->pid = procs[i].pid;
            info->usedGpuMemory = procs[i].used_bytes;
            info->gpuInstanceId = 0xFFFFFFFFu; /* no MIG */
            info->computeInstanceId = 0xFFFFFFFFu;
        } else {
            nvmlProcessInfo_v1_t *info = (nvmlProcessInfo_v1_t *)slot;
            info->pid = procs[i].pid;
            info->usedGpuMemory = procs[i].used_bytes;
        }
    }
    *count = n;
    return NVML_SUCCESS;
}

#define PROCESS_LIST(name, kind)                                                          \
    nvmlReturn_t name(nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos) \
    {                                                                                     \
        static int cache = -1;                                                            \
        return nvsim_running_processes(device, infoCount, infos, sizeof *infos, (kind), 1, \
                                       __func__, &cache);                                 \
    }

PROCESS_LIST(nvmlDeviceGetComputeRunningProcesses, NVSIM_PROC_COMPUTE)   /* _v3 */
PROCESS_LIST(nvmlDeviceGetGraphicsRunningProcesses, NVSIM_PROC_GRAPHICS) /* _v3 */
PROCESS_LIST(nvmlDeviceGetMPSComputeRunningProcesses, 0)                 /* _v3: no MPS server */

/*
 * One sample per listed process that holds load (`nvsim load --pid`), stamped with the
 * model's last tick: its share of the SM load, and memory-controller load in the ratio the
 * model uses for the whole GPU.  A client passing the last stamp it saw gets NOT_FOUND
 * until the next tick, as the driver answers when no newer sample exists.
 */
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *utilization,
                                             unsigned int *processSamplesCount,
                                             unsigned long long lastSeenTimeStamp)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(processSamplesCount);
    unsigned long long stamp = nvsim_st()->header.tick_us;
    nvmlProcessUtilizationSample_t samples[NVSIM_MAX_PROCS];
    unsigned int n = 0;
    for (unsigned int i = 0; i < NVSIM_MAX_PROCS && stamp > lastSeenTimeStamp; i++) {
        const nvsim_process_t *p = &g->procs[i];
        if (p->pid == 0 || p->sm_util == 0)
            continue;
        unsigned int sm = p->sm_util < 100 ? p->sm_util : 100;
        samples[n++] = (nvmlProcessUtilizationSample_t){
            .pid = p->pid, .timeStamp = stamp, .smUtil = sm, .memUtil = sm * 3 / 5};
    }
    if (n == 0)
        return NVML_ERROR_NOT_FOUND;
    if (utilization == NULL || *processSamplesCount < n) {
        *processSamplesCount = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    memcpy(utilization, samples, n * sizeof samples[0]);
    *processSamplesCount = n;
    return NVML_SUCCESS;
}

/* The executable path from /proc/PID/cmdline, else the short name from /proc/PID/comm. */
nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length)
{
    NVSIM_ENTER_SYSTEM();
    NVSIM_NONNULL(name);
    if (length == 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    char path[64], buf[4096];
    ssize_t got = -1;
    const char *sources[] = {"cmdline", "comm"};
    for (size_t s = 0; s < 2 && got <= 0; s++) {
        snprintf(path, sizeof path, "/proc/%u/%s", pid, sources[s]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        got = read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    if (got <= 0)
        return NVML_ERROR_NOT_FOUND;
    buf[got] = '\0';
    buf[strcspn(buf, "\n")] = '\0'; /* comm ends in a newline; cmdline's argv[0] in a NUL */
    size_t n = strlen(buf);
    if (n >= length)
        n = length - 1; /* truncated, like the driver */
    memcpy(name, buf, n);
    name[n] = '\0';
    return NVML_SUCCESS;
}
