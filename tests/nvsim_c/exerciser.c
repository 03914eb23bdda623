/*
 * A C client of the library, run under valgrind by test_memcheck.py: it walks every family
 * of calls (enumeration, readings, setters, processes, field values, events, errors) on
 * every GPU and exits non-zero if a call that must succeed does not.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nvml.h>

static int failures = 0;

#define MUST(call)                                                                  \
    do {                                                                            \
        nvmlReturn_t r_ = (call);                                                   \
        if (r_ != NVML_SUCCESS) {                                                   \
            fprintf(stderr, "%s:%d %s -> %s\n", __FILE__, __LINE__, #call,         \
                    nvmlErrorString(r_));                                           \
            failures++;                                                             \
        }                                                                           \
    } while (0)

#define EXPECT(call, want)                                                          \
    do {                                                                            \
        nvmlReturn_t r_ = (call);                                                   \
        if (r_ != (want)) {                                                         \
            fprintf(stderr, "%s:%d %s -> %s, wanted %s\n", __FILE__, __LINE__,      \
                    #call, nvmlErrorString(r_), nvmlErrorString(want));             \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static void exercise(nvmlDevice_t h)
{
    char text[128];
    unsigned int u, list[256], count;
    unsigned long long ull;
    nvmlDevice_t again;

    MUST(nvmlDeviceGetName(h, text, sizeof text));
    MUST(nvmlDeviceGetUUID(h, text, sizeof text));
    MUST(nvmlDeviceGetHandleByUUID(text, &again));
    nvmlPciInfo_t pci;
    MUST(nvmlDeviceGetPciInfo(h, &pci));
    MUST(nvmlDeviceGetHandleByPciBusId(pci.busIdLegacy, &again));
    nvmlMemory_t mem;
    MUST(nvmlDeviceGetMemoryInfo(h, &mem));
    nvmlMemory_v2_t mem2 = {.version = nvmlMemory_v2};
    MUST(nvmlDeviceGetMemoryInfo_v2(h, &mem2));
    nvmlUtilization_t util;
    MUST(nvmlDeviceGetUtilizationRates(h, &util));
    MUST(nvmlDeviceGetPowerUsage(h, &u));
    MUST(nvmlDeviceGetTotalEnergyConsumption(h, &ull));
    MUST(nvmlDeviceGetCurrentClocksEventReasons(h, &ull));
    count = 256;
    MUST(nvmlDeviceGetSupportedMemoryClocks(h, &count, list));
    count = 256;
    MUST(nvmlDeviceGetSupportedGraphicsClocks(h, list[0], &count, list));
    nvmlPstates_t pstates[NVML_MAX_GPU_PERF_PSTATES];
    MUST(nvmlDeviceGetSupportedPerformanceStates(h, pstates, NVML_MAX_GPU_PERF_PSTATES));

    nvmlClockOffset_t offset = {.version = nvmlClockOffset_v1, .type = NVML_CLOCK_GRAPHICS,
                                .pstate = NVML_PSTATE_0, .clockOffsetMHz = 107};
    MUST(nvmlDeviceSetClockOffsets(h, &offset));
    MUST(nvmlDeviceGetClockOffsets(h, &offset));
    if (offset.clockOffsetMHz != 105) {
        fprintf(stderr, "offset %d, wanted 105\n", offset.clockOffsetMHz);
        failures++;
    }
    MUST(nvmlDeviceSetPowerManagementLimit(h, 300000));
    EXPECT(nvmlDeviceSetPowerManagementLimit(h, 1), NVML_ERROR_INVALID_ARGUMENT);
    MUST(nvmlDeviceSetFanSpeed_v2(h, 0, 70));
    MUST(nvmlDeviceSetDefaultFanSpeed_v2(h, 0));
    MUST(nvmlDeviceSetGpuLockedClocks(h, 1000, 2000));
    MUST(nvmlDeviceResetGpuLockedClocks(h));

    nvmlProcessInfo_t procs[4];
    count = 0;
    MUST(nvmlDeviceGetComputeRunningProcesses(h, &count, NULL));
    count = 4;
    MUST(nvmlDeviceGetGraphicsRunningProcesses(h, &count, procs));

    nvmlFieldValue_t fields[3] = {
        {.fieldId = NVML_FI_DEV_POWER_INSTANT},
        {.fieldId = NVML_FI_DEV_GPU_TEMP},
        {.fieldId = 12345},
    };
    MUST(nvmlDeviceGetFieldValues(h, 3, fields));
    EXPECT(fields[2].nvmlReturn, NVML_ERROR_NOT_SUPPORTED);

    nvmlEventSet_t set;
    nvmlEventData_t data;
    MUST(nvmlEventSetCreate(&set));
    MUST(nvmlDeviceRegisterEvents(h, nvmlEventTypeXidCriticalError, set));
    EXPECT(nvmlEventSetWait(set, &data, 10), NVML_ERROR_TIMEOUT);
    MUST(nvmlEventSetFree(set));
}

int main(void)
{
    unsigned int count;
    char text[256];
    MUST(nvmlInit());
    MUST(nvmlInit());
    MUST(nvmlSystemGetDriverVersion(text, sizeof text));
    MUST(nvmlSystemGetProcessName((unsigned int)getpid(), text, sizeof text));
    MUST(nvmlDeviceGetCount(&count));
    for (unsigned int i = 0; i < count; i++) {
        nvmlDevice_t h;
        MUST(nvmlDeviceGetHandleByIndex(i, &h));
        exercise(h);
    }
    MUST(nvmlShutdown());
    MUST(nvmlShutdown());
    EXPECT(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
    printf("%u GPUs exercised, %d failures\n", count, failures);
    return failures != 0;
}
