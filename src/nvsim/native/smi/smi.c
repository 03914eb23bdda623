/*
 * nvidia-smi: argument parsing, loading the driver library, selecting GPUs (-i), the
 * readings every output mode shares, the default table and -L.
 *
 * Supported: nvidia-smi [-i ID[,ID...]] [-L | -q [-x] | --query-gpu=FIELDS
 * --format=csv[,noheader][,nounits]].  ID is an index, a UUID or a PCI bus id.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smi.h"

#define LIBRARY "libnvidia-ml.so.1"
#define MAX_GPUS 64

static void *library;

void *smi_sym(const char *name)
{
    return dlsym(library, name);
}

void smi_na(smi_value_t *v)
{
    snprintf(v->text, sizeof v->text, "N/A");
    v->ok = 0;
}

void smi_setf(smi_value_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->text, sizeof v->text, fmt, ap);
    va_end(ap);
    v->ok = 1;
}

/* ---- shared readings ------------------------------------------------------------------ */

int smi_temperature(nvmlDevice_t h, unsigned int *celsius)
{
    typedef nvmlReturn_t (*fn)(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned int *);
    return NVML(nvmlDeviceGetTemperature, fn, h, NVML_TEMPERATURE_GPU, celsius) == NVML_SUCCESS;
}

/* v2 memory info when the driver has it (reserved apart), else v1. */
int smi_memory(nvmlDevice_t h, unsigned long long *total, unsigned long long *reserved,
               unsigned long long *used, unsigned long long *free_bytes)
{
    typedef nvmlReturn_t (*v2_fn)(nvmlDevice_t, nvmlMemory_v2_t *);
    typedef nvmlReturn_t (*v1_fn)(nvmlDevice_t, nvmlMemory_t *);
    nvmlMemory_v2_t m2 = {.version = nvmlMemory_v2};
    if (NVML(nvmlDeviceGetMemoryInfo_v2, v2_fn, h, &m2) == NVML_SUCCESS) {
        *total = m2.total, *reserved = m2.reserved, *used = m2.used, *free_bytes = m2.free;
        return 1;
    }
    nvmlMemory_t m1;
    if (NVML(nvmlDeviceGetMemoryInfo, v1_fn, h, &m1) != NVML_SUCCESS)
        return 0;
    *total = m1.total, *reserved = 0, *used = m1.used, *free_bytes = m1.free;
    return 1;
}

const char *smi_pstate(nvmlDevice_t h, char *buf, size_t size)
{
    typedef nvmlReturn_t (*fn)(nvmlDevice_t, nvmlPstates_t *);
    nvmlPstates_t p;
    if (NVML(nvmlDeviceGetPerformanceState, fn, h, &p) != NVML_SUCCESS || p == NVML_PSTATE_UNKNOWN)
        return "N/A";
    snprintf(buf, size, "P%d", (int)p);
    return buf;
}

const char *smi_enabled(nvmlEnableState_t s)
{
    return s == NVML_FEATURE_ENABLED ? "Enabled" : "Disabled";
}

const char *smi_compute_mode(nvmlComputeMode_t mode)
{
    switch (mode) {
    case NVML_COMPUTEMODE_DEFAULT: return "Default";
    case NVML_COMPUTEMODE_EXCLUSIVE_THREAD: return "Exclusive_Thread";
    case NVML_COMPUTEMODE_PROHIBITED: return "Prohibited";
    case NVML_COMPUTEMODE_EXCLUSIVE_PROCESS: return "Exclusive_Process";
    default: return "N/A";
    }
}

const char *smi_brand(nvmlBrandType_t brand)
{
    switch (brand) {
    case NVML_BRAND_GEFORCE: return "GeForce";
    case NVML_BRAND_QUADRO: return "Quadro";
    case NVML_BRAND_TESLA: return "Tesla";
    case NVML_BRAND_NVIDIA: return "NVIDIA";
    case NVML_BRAND_NVIDIA_RTX: return "NVIDIA RTX";
    case NVML_BRAND_TITAN: return "Titan";
    default: return "N/A";
    }
}

const char *smi_arch(nvmlDeviceArchitecture_t arch)
{
    switch (arch) {
    case NVML_DEVICE_ARCH_KEPLER: return "Kepler";
    case NVML_DEVICE_ARCH_MAXWELL: return "Maxwell";
    case NVML_DEVICE_ARCH_PASCAL: return "Pascal";
    case NVML_DEVICE_ARCH_VOLTA: return "Volta";
    case NVML_DEVICE_ARCH_TURING: return "Turing";
    case NVML_DEVICE_ARCH_AMPERE: return "Ampere";
    case NVML_DEVICE_ARCH_ADA: return "Ada Lovelace";
    case NVML_DEVICE_ARCH_HOPPER: return "Hopper";
    case 10: return "Blackwell"; /* NVML_DEVICE_ARCH_BLACKWELL in newer headers */
    default: return "N/A";
    }
}

const char *smi_driver_version(void)
{
    static char version[96];
    typedef nvmlReturn_t (*fn)(char *, unsigned int);
    if (NVML(nvmlSystemGetDriverVersion, fn, version, sizeof version) != NVML_SUCCESS)
        snprintf(version, sizeof version, "N/A");
    return version;
}

const char *smi_cuda_version(char *buf, size_t size)
{
    typedef nvmlReturn_t (*fn)(int *);
    int v;
    if (NVML(nvmlSystemGetCudaDriverVersion_v2, fn, &v) != NVML_SUCCESS &&
        NVML(nvmlSystemGetCudaDriverVersion, fn, &v) != NVML_SUCCESS)
        return "N/A";
    snprintf(buf, size, "%d.%d", v / 1000, (v % 1000) / 10);
    return buf;
}

const char *smi_now(char *buf, size_t size)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, size, "%a %b %e %H:%M:%S %Y", &tm);
    return buf;
}

unsigned int smi_processes(nvmlDevice_t h, int graphics, nvmlProcessInfo_t *infos,
                           unsigned int max)
{
    typedef nvmlReturn_t (*list_fn)(nvmlDevice_t, unsigned int *, void *);
    static const char *const names[2][3] = {
        {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
         "nvmlDeviceGetComputeRunningProcesses"},
        {"nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v2",
         "nvmlDeviceGetGraphicsRunningProcesses"}};
    for (int v = 0; v < 2; v++) { /* _v3 and _v2 fill the same 24-byte entries */
        list_fn fn = (list_fn)smi_sym(names[graphics][v]);
        unsigned int count = max;
        if (fn != NULL)
            return fn(h, &count, infos) == NVML_SUCCESS ? count : 0;
    }
    list_fn v1 = (list_fn)smi_sym(names[graphics][2]);
    nvmlProcessInfo_v1_t old[64];
    unsigned int count = max < 64 ? max : 64;
    if (v1 == NULL || v1(h, &count, old) != NVML_SUCCESS)
        return 0;
    for (unsigned int i = 0; i < count; i++)
        infos[i] = (nvmlProcessInfo_t){.pid = old[i].pid, .usedGpuMemory = old[i].usedGpuMemory,
                                       .gpuInstanceId = 0xFFFFFFFFu,
                                       .computeInstanceId = 0xFFFFFFFFu};
    return count;
}

/* ---- -L ----------------------------------------------------------------------------- */

int smi_list(smi_gpu_t *gpus, unsigned int n)
{
    for (unsigned int i = 0; i < n; i++)
        printf("GPU %u: %s (UUID: %s)\n", gpus[i].index, gpus[i].name, gpus[i].uuid);
    return SMI_OK;
}

/* ---- the default table -------------------------------------------------------------- */

#define RULE "+-----------------------------------------+------------------------+----------------------+"
#define WIDE "+-----------------------------------------------------------------------------------------+"

static void row3(const char *a, const char *b, const char *c)
{
    printf("|%-41s|%-24s|%-22s|\n", a, b, c);
}

static void gpu_rows(const smi_gpu_t *g)
{
    nvmlDevice_t h = g->handle;
    char a[64], b[64], c[64], perf[8], fan[16] = " N/A", temp[16] = "  N/A", use[32] = "N/A",
                                    cap[32] = "N/A";
    nvmlEnableState_t pm, cur, pend;
    const char *pers =
        NVML(nvmlDeviceGetPersistenceMode, state_fn, h, &pm) == NVML_SUCCESS
            ? (pm == NVML_FEATURE_ENABLED ? "On" : "Off")
            : "N/A";
    const char *ecc = "N/A";
    if (NVML(nvmlDeviceGetEccMode, pair_fn, h, &cur, &pend) == NVML_SUCCESS) {
        ecc = "Off";
        unsigned long long errors;
        typedef nvmlReturn_t (*ecc_fn)(nvmlDevice_t, nvmlMemoryErrorType_t, nvmlEccCounterType_t,
                                       unsigned long long *);
        static char count[24];
        if (cur == NVML_FEATURE_ENABLED &&
            NVML(nvmlDeviceGetTotalEccErrors, ecc_fn, h, NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                 NVML_VOLATILE_ECC, &errors) == NVML_SUCCESS) {
            snprintf(count, sizeof count, "%llu", errors);
            ecc = count;
        }
    }
    nvmlEnableState_t disp;
    const char *disp_a = NVML(nvmlDeviceGetDisplayActive, state_fn, h, &disp) == NVML_SUCCESS
                             ? (disp == NVML_FEATURE_ENABLED ? "On" : "Off")
                             : "N/A";
    snprintf(a, sizeof a, "%4u  %-30.30s%4s ", g->index, g->name, pers);
    snprintf(b, sizeof b, "%19s %3s ", g->bus_id, disp_a);
    snprintf(c, sizeof c, "%21s ", ecc);
    row3(a, b, c);

    unsigned int u, t, mw, cap_mw;
    if (NVML(nvmlDeviceGetFanSpeed, uint_fn, h, &u) == NVML_SUCCESS)
        snprintf(fan, sizeof fan, "%3u%%", u);
    if (smi_temperature(h, &t))
        snprintf(temp, sizeof temp, "%5uC", t);
    if (NVML(nvmlDeviceGetPowerUsage, uint_fn, h, &mw) == NVML_SUCCESS)
        snprintf(use, sizeof use, "%uW", (mw + 500) / 1000);
    if (NVML(nvmlDeviceGetEnforcedPowerLimit, uint_fn, h, &cap_mw) == NVML_SUCCESS)
        snprintf(cap, sizeof cap, "%uW", (cap_mw + 500) / 1000);
    snprintf(a, sizeof a, "%4s%6s%6s%16s / %5s ", fan, temp, smi_pstate(h, perf, sizeof perf),
             use, cap);
    unsigned long long total, reserved, used, free_bytes;
    if (smi_memory(h, &total, &reserved, &used, &free_bytes))
        snprintf(b, sizeof b, "%8lluMiB / %6lluMiB ", used >> 20, total >> 20);
    else
        snprintf(b, sizeof b, "%22s ", "N/A");
    nvmlUtilization_t util;
    typedef nvmlReturn_t (*util_rates_fn)(nvmlDevice_t, nvmlUtilization_t *);
    char gpu_util[16] = "N/A";
    if (NVML(nvmlDeviceGetUtilizationRates, util_rates_fn, h, &util) == NVML_SUCCESS)
        snprintf(gpu_util, sizeof gpu_util, "%u%%", util.gpu);
    nvmlComputeMode_t mode;
    typedef nvmlReturn_t (*mode_fn)(nvmlDevice_t, nvmlComputeMode_t *);
    const char *compute = NVML(nvmlDeviceGetComputeMode, mode_fn, h, &mode) == NVML_SUCCESS
                              ? smi_compute_mode(mode)
                              : "N/A";
    snprintf(c, sizeof c, "%8s%13s ", gpu_util, compute);
    row3(a, b, c);

    unsigned int mig_cur, mig_pend;
    typedef nvmlReturn_t (*mig_fn)(nvmlDevice_t, unsigned int *, unsigned int *);
    const char *mig = NVML(nvmlDeviceGetMigMode, mig_fn, h, &mig_cur, &mig_pend) == NVML_SUCCESS
                          ? (mig_cur ? "Enabled" : "Disabled")
                          : "N/A";
    snprintf(c, sizeof c, "%21s ", mig);
    row3("", "", c);
    puts(RULE);
}

static void process_rows(const smi_gpu_t *gpus, unsigned int n)
{
    int any = 0;
    for (unsigned int i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            nvmlProcessInfo_t infos[64];
            unsigned int count = smi_processes(gpus[i].handle, k, infos, 64);
            for (unsigned int p = 0; p < count; p++) {
                char name[256] = "N/A", mem[32] = "N/A";
                typedef nvmlReturn_t (*pname_fn)(unsigned int, char *, unsigned int);
                NVML(nvmlSystemGetProcessName, pname_fn, infos[p].pid, name, sizeof name);
                if (infos[p].usedGpuMemory != (unsigned long long)NVML_VALUE_NOT_AVAILABLE)
                    snprintf(mem, sizeof mem, "%lluMiB", infos[p].usedGpuMemory >> 20);
                printf("|%5u%6s%5s%10u%7s   %-37.37s%15s |\n", gpus[i].index, "N/A", "N/A",
                       infos[p].pid, k == 0 ? "C" : "G", name, mem);
                any = 1;
            }
        }
    }
    if (!any)
        printf("|  %-87s|\n", "No running processes found");
}

int smi_table(smi_gpu_t *gpus, unsigned int n)
{
    char now[64], cuda[16], head[128];
    printf("%s       \n", smi_now(now, sizeof now));
    puts(WIDE);
    const char *driver = smi_driver_version();
    snprintf(head, sizeof head, " NVIDIA-SMI %-23sDriver Version: %-15sCUDA Version: %-9s",
             driver, driver, smi_cuda_version(cuda, sizeof cuda));
    printf("|%-89s|\n", head);
    puts("|-----------------------------------------+------------------------+----------------------+");
    row3(" GPU  Name                 Persistence-M", " Bus-Id          Disp.A",
         " Volatile Uncorr. ECC");
    row3(" Fan  Temp   Perf          Pwr:Usage/Cap", "           Memory-Usage",
         " GPU-Util  Compute M.");
    row3("", "", "               MIG M.");
    puts("|=========================================+========================+======================|");
    for (unsigned int i = 0; i < n; i++)
        gpu_rows(&gpus[i]);
    printf("%91s\n", "");
    puts(WIDE);
    printf("|%-89s|\n", " Processes:");
    printf("|%5s%6s%5s%10s%7s   %-37s%15s |\n", "GPU", "GI", "CI", "PID", "Type", "Process name",
           "GPU Memory");
    printf("|%5s%6s%5s%10s%7s   %-37s%15s |\n", "", "ID", "ID", "", "", "", "Usage     ");
    puts("|=========================================================================================|");
    process_rows(gpus, n);
    puts(WIDE);
    return SMI_OK;
}

/* ---- GPUs and their selection --------------------------------------------------------- */

static void read_identity(smi_gpu_t *g)
{
    nvmlDevice_t h = g->handle;
    if (NVML(nvmlDeviceGetName, str_fn, h, g->name, sizeof g->name) != NVML_SUCCESS)
        snprintf(g->name, sizeof g->name, "N/A");
    if (NVML(nvmlDeviceGetUUID, str_fn, h, g->uuid, sizeof g->uuid) != NVML_SUCCESS)
        snprintf(g->uuid, sizeof g->uuid, "N/A");
    g->has_serial = NVML(nvmlDeviceGetSerial, str_fn, h, g->serial, sizeof g->serial) ==
                    NVML_SUCCESS;
    if (NVML(nvmlDeviceGetVbiosVersion, str_fn, h, g->vbios, sizeof g->vbios) != NVML_SUCCESS)
        snprintf(g->vbios, sizeof g->vbios, "N/A");
    g->has_part = NVML(nvmlDeviceGetBoardPartNumber, str_fn, h, g->part, sizeof g->part) ==
                  NVML_SUCCESS;
    typedef nvmlReturn_t (*pci_fn)(nvmlDevice_t, nvmlPciInfo_t *);
    if (NVML(nvmlDeviceGetPciInfo_v3, pci_fn, h, &g->pci) == NVML_SUCCESS)
        snprintf(g->bus_id, sizeof g->bus_id, "%s", g->pci.busId);
    else
        snprintf(g->bus_id, sizeof g->bus_id, "N/A");
    if (NVML(nvmlDeviceGetMinorNumber, uint_fn, h, &g->minor) != NVML_SUCCESS)
        g->minor = g->index;
    if (NVML(nvmlDeviceGetBoardId, uint_fn, h, &g->board_id) != NVML_SUCCESS)
        g->board_id = 0;
    typedef nvmlReturn_t (*brand_fn)(nvmlDevice_t, nvmlBrandType_t *);
    typedef nvmlReturn_t (*arch_fn)(nvmlDevice_t, nvmlDeviceArchitecture_t *);
    g->has_brand = NVML(nvmlDeviceGetBrand, brand_fn, h, &g->brand) == NVML_SUCCESS;
    g->has_arch = NVML(nvmlDeviceGetArchitecture, arch_fn, h, &g->arch) == NVML_SUCCESS;
}

/* Whether one -i id names GPU `g`: its index, UUID or PCI bus id (any domain width). */
static int matches(const smi_gpu_t *g, const char *id)
{
    char *end;
    unsigned long index = strtoul(id, &end, 10);
    if (*id != '\0' && *end == '\0')
        return index == g->index;
    if (strcasecmp(id, g->uuid) == 0)
        return 1;
    const char *tail = g->bus_id; /* compare from the bus number on, domain as a number */
    unsigned int d1, b1, v1, d2, b2, v2;
    if (sscanf(tail, "%x:%x:%x", &d1, &b1, &v1) == 3 &&
        (sscanf(id, "%x:%x:%x", &d2, &b2, &v2) == 3 ||
         (sscanf(id, "%x:%x", &b2, &v2) == 2 && (d2 = 0, 1))))
        return d1 == d2 && b1 == b2 && v1 == v2 && strchr(id, ':') != NULL;
    return 0;
}

static int usage(const char *why)
{
    fprintf(stderr, "%s\n\nUsage: nvidia-smi [-i ID[,ID]] [-L | -q [-x] | "
                    "--query-gpu=FIELDS --format=csv[,noheader][,nounits]]\n", why);
    return SMI_INVALID_ARGUMENT;
}

static int nvml_failure(nvmlReturn_t r)
{
    if (r == NVML_ERROR_DRIVER_NOT_LOADED) {
        puts("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
             "Make sure that the latest NVIDIA driver is installed and running.");
        return SMI_DRIVER_NOT_LOADED;
    }
    if (r == NVML_ERROR_NO_PERMISSION) {
        puts("Failed to initialize NVML: Insufficient Permissions");
        return SMI_NO_PERMISSION;
    }
    typedef const char *(*err_fn)(nvmlReturn_t);
    err_fn err = (err_fn)smi_sym("nvmlErrorString");
    printf("Failed to initialize NVML: %s\n", err != NULL ? err(r) : "Unknown Error");
    return SMI_OTHER;
}

int main(int argc, char **argv)
{
    const char *ids = NULL, *fields = NULL, *format = NULL;
    int list = 0, query = 0, xml = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-L") == 0 || strcmp(a, "--list-gpus") == 0)
            list = 1;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--query") == 0)
            query = 1;
        else if (strcmp(a, "-x") == 0 || strcmp(a, "--xml-format") == 0)
            xml = 1;
        else if (strcmp(a, "-i") == 0 || strcmp(a, "--id") == 0) {
            if (++i >= argc)
                return usage("Option -i needs an argument.");
            ids = argv[i];
        } else if (strncmp(a, "--id=", 5) == 0)
            ids = a + 5;
        else if (strncmp(a, "--query-gpu=", 12) == 0)
            fields = a + 12;
        else if (strcmp(a, "--query-gpu") == 0 && i + 1 < argc)
            fields = argv[++i];
        else if (strncmp(a, "--format=", 9) == 0)
            format = a + 9;
        else if (strcmp(a, "--format") == 0 && i + 1 < argc)
            format = argv[++i];
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage("nvidia-smi (nvsim's virtual driver)");
            return SMI_OK;
        } else
            return usage("Invalid combination of input arguments. Please run 'nvidia-smi -h' "
                         "for help.");
    }
    if ((fields != NULL) != (format != NULL) || (list + query > 1) || (fields && (list || query)))
        return usage("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.");
    if (xml && !query)
        return usage("-x needs -q.");

    library = dlopen(LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        puts("NVIDIA-SMI couldn't find libnvidia-ml.so library in your system. Please make "
             "sure that the NVIDIA Display Driver is properly installed and present in your "
             "system.");
        return SMI_LIBRARY_NOT_FOUND;
    }
    typedef nvmlReturn_t (*void_fn)(void);
    typedef nvmlReturn_t (*count_fn)(unsigned int *);
    typedef nvmlReturn_t (*handle_fn)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t r = NVML(nvmlInit_v2, void_fn);
    if (r != NVML_SUCCESS)
        return nvml_failure(r);
    unsigned int count = 0;
    NVML(nvmlDeviceGetCount_v2, count_fn, &count);
    if (count > MAX_GPUS)
        count = MAX_GPUS;
    static smi_gpu_t all[MAX_GPUS], chosen[MAX_GPUS];
    unsigned int n = 0;
    for (unsigned int i = 0; i < count; i++) {
        all[i].index = i;
        if (NVML(nvmlDeviceGetHandleByIndex_v2, handle_fn, i, &all[i].handle) != NVML_SUCCESS)
            continue;
        read_identity(&all[i]);
    }
    if (ids == NULL) {
        memcpy(chosen, all, count * sizeof all[0]);
        n = count;
    } else {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", ids);
        for (char *save = NULL, *id = strtok_r(buf, ",", &save); id != NULL;
             id = strtok_r(NULL, ",", &save)) {
            unsigned int found = 0;
            for (unsigned int i = 0; i < count && !found; i++)
                if (matches(&all[i], id) && n < MAX_GPUS)
                    chosen[n++] = all[i], found = 1;
            if (!found) {
                printf("No devices were found\n");
                NVML(nvmlShutdown, void_fn);
                return SMI_NOT_FOUND;
            }
        }
    }
    if (count == 0 && !fields) {
        printf("No devices were found\n");
        NVML(nvmlShutdown, void_fn);
        return SMI_NOT_FOUND;
    }
    int rc;
    if (list)
        rc = smi_list(chosen, n);
    else if (query)
        rc = smi_report(chosen, n, count, xml);
    else if (fields)
        rc = smi_query(chosen, n, fields, format);
    else
        rc = smi_table(chosen, n);
    NVML(nvmlShutdown, void_fn);
    return rc;
}
