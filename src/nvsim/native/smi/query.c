/*
 * --query-gpu=FIELDS --format=csv[,noheader][,nounits]: one CSV line per GPU.
 *
 * As NVIDIA's tool does: values are separated by ", "; the header names each field as
 * asked, with its unit in brackets ("memory.used [MiB]"); values carry the unit after a
 * space ("1024 MiB") unless nounits; a value the driver cannot give reads "[N/A]".  An
 * unknown field is an error (exit 2) before anything is printed.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "smi.h"

typedef void (*field_fn)(const smi_gpu_t *g, smi_value_t *v);

struct field {
    const char *names; /* the name and its aliases, separated by '|' */
    const char *unit;  /* "" when the value has none */
    field_fn read;
};

static void uint_of(smi_value_t *v, nvmlReturn_t r, unsigned long long value)
{
    if (r == NVML_SUCCESS)
        smi_setf(v, "%llu", value);
    else
        smi_na(v);
}

#define UINT_FIELD(fname, call)                                                     \
    static void fname(const smi_gpu_t *g, smi_value_t *v)                            \
    {                                                                               \
        unsigned int x = 0;                                                         \
        nvmlDevice_t h = g->handle;                                                 \
        nvmlReturn_t r = (call); /* before x is read */                             \
        uint_of(v, r, x);                                                           \
    }

#define CLOCK_FIELD(fname, getter, type)                                           \
    static void fname(const smi_gpu_t *g, smi_value_t *v)                            \
    {                                                                               \
        unsigned int x = 0;                                                         \
        nvmlReturn_t r = NVML(getter, clock_fn, g->handle, (type), &x);             \
        uint_of(v, r, x);                                                           \
    }

#define MW_FIELD(fname, getter)                                                     \
    static void fname(const smi_gpu_t *g, smi_value_t *v)                            \
    {                                                                               \
        unsigned int mw;                                                            \
        if (NVML(getter, uint_fn, g->handle, &mw) == NVML_SUCCESS)                  \
            smi_setf(v, "%.2f", mw / 1000.0);                                       \
        else                                                                        \
            smi_na(v);                                                              \
    }

static void f_index(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "%u", g->index); }
static void f_name(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "%s", g->name); }
static void f_uuid(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "%s", g->uuid); }
static void f_bus_id(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "%s", g->bus_id); }
static void f_vbios(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "%s", g->vbios); }
static void f_driver(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "%s", smi_driver_version()); }
static void f_serial(const smi_gpu_t *g, smi_value_t *v)
{
    if (g->has_serial)
        smi_setf(v, "%s", g->serial);
    else
        smi_na(v);
}
static void f_domain(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "0x%04X", g->pci.domain); }
static void f_bus(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "0x%02X", g->pci.bus); }
static void f_device(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "0x%02X", g->pci.device); }
static void f_device_id(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "0x%08X", g->pci.pciDeviceId); }
static void f_sub_id(const smi_gpu_t *g, smi_value_t *v) { smi_setf(v, "0x%08X", g->pci.pciSubSystemId); }

static void f_count(const smi_gpu_t *g, smi_value_t *v)
{
    typedef nvmlReturn_t (*count_fn)(unsigned int *);
    unsigned int n = 0;
    nvmlReturn_t r = NVML(nvmlDeviceGetCount_v2, count_fn, &n);
    uint_of(v, r, n);
}

static void f_timestamp(const smi_gpu_t *g, smi_value_t *v)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y/%m/%d %H:%M:%S", &tm);
    smi_setf(v, "%s.%03ld", buf, (long)(tv.tv_usec / 1000));
}

static void f_pstate(const smi_gpu_t *g, smi_value_t *v)
{
    char buf[8];
    const char *p = smi_pstate(g->handle, buf, sizeof buf);
    if (strcmp(p, "N/A") == 0)
        smi_na(v);
    else
        smi_setf(v, "%s", p);
}

static void f_temp(const smi_gpu_t *g, smi_value_t *v)
{
    unsigned int t;
    if (smi_temperature(g->handle, &t))
        smi_setf(v, "%u", t);
    else
        smi_na(v);
}

static void f_mem_temp(const smi_gpu_t *g, smi_value_t *v)
{
    typedef nvmlReturn_t (*fv_fn)(nvmlDevice_t, int, nvmlFieldValue_t *);
    nvmlFieldValue_t fv = {.fieldId = NVML_FI_DEV_MEMORY_TEMP};
    if (NVML(nvmlDeviceGetFieldValues, fv_fn, g->handle, 1, &fv) == NVML_SUCCESS &&
        fv.nvmlReturn == NVML_SUCCESS)
        smi_setf(v, "%u", fv.value.uiVal);
    else
        smi_na(v);
}

static void memory_part(const smi_gpu_t *g, smi_value_t *v, int which)
{
    unsigned long long part[4];
    if (!smi_memory(g->handle, &part[0], &part[1], &part[2], &part[3]))
        smi_na(v);
    else
        smi_setf(v, "%llu", part[which] >> 20);
}
static void f_mem_total(const smi_gpu_t *g, smi_value_t *v) { memory_part(g, v, 0); }
static void f_mem_reserved(const smi_gpu_t *g, smi_value_t *v) { memory_part(g, v, 1); }
static void f_mem_used(const smi_gpu_t *g, smi_value_t *v) { memory_part(g, v, 2); }
static void f_mem_free(const smi_gpu_t *g, smi_value_t *v) { memory_part(g, v, 3); }

static void utilization(const smi_gpu_t *g, smi_value_t *v, int memory)
{
    typedef nvmlReturn_t (*fn)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlUtilization_t u;
    if (NVML(nvmlDeviceGetUtilizationRates, fn, g->handle, &u) == NVML_SUCCESS)
        smi_setf(v, "%u", memory ? u.memory : u.gpu);
    else
        smi_na(v);
}
static void f_util_gpu(const smi_gpu_t *g, smi_value_t *v) { utilization(g, v, 0); }
static void f_util_mem(const smi_gpu_t *g, smi_value_t *v) { utilization(g, v, 1); }

static void codec(const smi_gpu_t *g, smi_value_t *v, const char *symbol)
{
    unsigned int u, period;
    util_fn fn = (util_fn)smi_sym(symbol);
    if (fn != NULL && fn(g->handle, &u, &period) == NVML_SUCCESS)
        smi_setf(v, "%u", u);
    else
        smi_na(v);
}
static void f_util_enc(const smi_gpu_t *g, smi_value_t *v) { codec(g, v, "nvmlDeviceGetEncoderUtilization"); }
static void f_util_dec(const smi_gpu_t *g, smi_value_t *v) { codec(g, v, "nvmlDeviceGetDecoderUtilization"); }

UINT_FIELD(f_fan, NVML(nvmlDeviceGetFanSpeed, uint_fn, h, &x))
UINT_FIELD(f_gen_cur, NVML(nvmlDeviceGetCurrPcieLinkGeneration, uint_fn, h, &x))
UINT_FIELD(f_gen_max, NVML(nvmlDeviceGetMaxPcieLinkGeneration, uint_fn, h, &x))
UINT_FIELD(f_width_cur, NVML(nvmlDeviceGetCurrPcieLinkWidth, uint_fn, h, &x))
UINT_FIELD(f_width_max, NVML(nvmlDeviceGetMaxPcieLinkWidth, uint_fn, h, &x))
CLOCK_FIELD(f_clk_gr, nvmlDeviceGetClockInfo, NVML_CLOCK_GRAPHICS)
CLOCK_FIELD(f_clk_sm, nvmlDeviceGetClockInfo, NVML_CLOCK_SM)
CLOCK_FIELD(f_clk_mem, nvmlDeviceGetClockInfo, NVML_CLOCK_MEM)
CLOCK_FIELD(f_clk_video, nvmlDeviceGetClockInfo, NVML_CLOCK_VIDEO)
CLOCK_FIELD(f_max_gr, nvmlDeviceGetMaxClockInfo, NVML_CLOCK_GRAPHICS)
CLOCK_FIELD(f_max_sm, nvmlDeviceGetMaxClockInfo, NVML_CLOCK_SM)
CLOCK_FIELD(f_max_mem, nvmlDeviceGetMaxClockInfo, NVML_CLOCK_MEM)
MW_FIELD(f_power_draw, nvmlDeviceGetPowerUsage)
MW_FIELD(f_power_limit, nvmlDeviceGetPowerManagementLimit)
MW_FIELD(f_power_enforced, nvmlDeviceGetEnforcedPowerLimit)
MW_FIELD(f_power_default, nvmlDeviceGetPowerManagementDefaultLimit)

static void power_constraint(const smi_gpu_t *g, smi_value_t *v, int max)
{
    unsigned int lo, hi;
    if (NVML(nvmlDeviceGetPowerManagementLimitConstraints, util_fn, g->handle, &lo, &hi) ==
        NVML_SUCCESS)
        smi_setf(v, "%.2f", (max ? hi : lo) / 1000.0);
    else
        smi_na(v);
}
static void f_power_min(const smi_gpu_t *g, smi_value_t *v) { power_constraint(g, v, 0); }
static void f_power_max(const smi_gpu_t *g, smi_value_t *v) { power_constraint(g, v, 1); }

static void enable_state(smi_value_t *v, nvmlReturn_t r, nvmlEnableState_t s)
{
    if (r == NVML_SUCCESS)
        smi_setf(v, "%s", smi_enabled(s));
    else
        smi_na(v);
}
static void f_persistence(const smi_gpu_t *g, smi_value_t *v)
{
    nvmlEnableState_t s = NVML_FEATURE_DISABLED;
    nvmlReturn_t r = NVML(nvmlDeviceGetPersistenceMode, state_fn, g->handle, &s);
    enable_state(v, r, s);
}
static void f_display_mode(const smi_gpu_t *g, smi_value_t *v)
{
    nvmlEnableState_t s = NVML_FEATURE_DISABLED;
    nvmlReturn_t r = NVML(nvmlDeviceGetDisplayMode, state_fn, g->handle, &s);
    enable_state(v, r, s);
}
static void f_power_mgmt(const smi_gpu_t *g, smi_value_t *v)
{
    nvmlEnableState_t s = NVML_FEATURE_DISABLED;
    nvmlReturn_t r = NVML(nvmlDeviceGetPowerManagementMode, state_fn, g->handle, &s);
    enable_state(v, r, s);
}
static void ecc(const smi_gpu_t *g, smi_value_t *v, int pending)
{
    nvmlEnableState_t cur = NVML_FEATURE_DISABLED, pend = NVML_FEATURE_DISABLED;
    nvmlReturn_t r = NVML(nvmlDeviceGetEccMode, pair_fn, g->handle, &cur, &pend);
    enable_state(v, r, pending ? pend : cur);
}
static void f_ecc_cur(const smi_gpu_t *g, smi_value_t *v) { ecc(g, v, 0); }
static void f_ecc_pend(const smi_gpu_t *g, smi_value_t *v) { ecc(g, v, 1); }

static void f_compute_mode(const smi_gpu_t *g, smi_value_t *v)
{
    typedef nvmlReturn_t (*fn)(nvmlDevice_t, nvmlComputeMode_t *);
    nvmlComputeMode_t m;
    if (NVML(nvmlDeviceGetComputeMode, fn, g->handle, &m) == NVML_SUCCESS)
        smi_setf(v, "%s", smi_compute_mode(m));
    else
        smi_na(v);
}

static void f_reasons(const smi_gpu_t *g, smi_value_t *v)
{
    typedef nvmlReturn_t (*fn)(nvmlDevice_t, unsigned long long *);
    unsigned long long r;
    if (NVML(nvmlDeviceGetCurrentClocksEventReasons, fn, g->handle, &r) == NVML_SUCCESS ||
        NVML(nvmlDeviceGetCurrentClocksThrottleReasons, fn, g->handle, &r) == NVML_SUCCESS)
        smi_setf(v, "0x%016llX", r);
    else
        smi_na(v);
}

static void f_mig(const smi_gpu_t *g, smi_value_t *v)
{
    unsigned int cur, pend;
    if (NVML(nvmlDeviceGetMigMode, util_fn, g->handle, &cur, &pend) == NVML_SUCCESS)
        smi_setf(v, "%s", cur ? "Enabled" : "Disabled");
    else
        smi_na(v);
}

static const struct field fields[] = {
    {"timestamp", "", f_timestamp},
    {"driver_version", "", f_driver},
    {"count", "", f_count},
    {"index", "", f_index},
    {"name|gpu_name", "", f_name},
    {"serial|gpu_serial", "", f_serial},
    {"uuid|gpu_uuid", "", f_uuid},
    {"pci.bus_id|gpu_bus_id", "", f_bus_id},
    {"pci.domain", "", f_domain},
    {"pci.bus", "", f_bus},
    {"pci.device", "", f_device},
    {"pci.device_id", "", f_device_id},
    {"pci.sub_device_id", "", f_sub_id},
    {"pcie.link.gen.current|pcie.link.gen.gpucurrent", "", f_gen_cur},
    {"pcie.link.gen.max|pcie.link.gen.gpumax", "", f_gen_max},
    {"pcie.link.width.current", "", f_width_cur},
    {"pcie.link.width.max", "", f_width_max},
    {"vbios_version", "", f_vbios},
    {"display_mode", "", f_display_mode},
    {"persistence_mode", "", f_persistence},
    {"fan.speed", "%", f_fan},
    {"pstate", "", f_pstate},
    {"clocks_event_reasons.active|clocks_throttle_reasons.active", "", f_reasons},
    {"memory.total", "MiB", f_mem_total},
    {"memory.reserved", "MiB", f_mem_reserved},
    {"memory.used", "MiB", f_mem_used},
    {"memory.free", "MiB", f_mem_free},
    {"compute_mode", "", f_compute_mode},
    {"utilization.gpu", "%", f_util_gpu},
    {"utilization.memory", "%", f_util_mem},
    {"utilization.encoder", "%", f_util_enc},
    {"utilization.decoder", "%", f_util_dec},
    {"ecc.mode.current", "", f_ecc_cur},
    {"ecc.mode.pending", "", f_ecc_pend},
    {"temperature.gpu", "", f_temp},
    {"temperature.memory", "", f_mem_temp},
    {"power.management", "", f_power_mgmt},
    {"power.draw|power.draw.instant|power.draw.average", "W", f_power_draw},
    {"power.limit", "W", f_power_limit},
    {"enforced.power.limit", "W", f_power_enforced},
    {"power.default_limit", "W", f_power_default},
    {"power.min_limit", "W", f_power_min},
    {"power.max_limit", "W", f_power_max},
    {"clocks.current.graphics|clocks.gr", "MHz", f_clk_gr},
    {"clocks.current.sm|clocks.sm", "MHz", f_clk_sm},
    {"clocks.current.memory|clocks.mem", "MHz", f_clk_mem},
    {"clocks.current.video|clocks.video", "MHz", f_clk_video},
    {"clocks.max.graphics|clocks.max.gr", "MHz", f_max_gr},
    {"clocks.max.sm", "MHz", f_max_sm},
    {"clocks.max.memory|clocks.max.mem", "MHz", f_max_mem},
    {"mig.mode.current", "", f_mig},
};

/* The field named `name` (case-insensitive, as NVIDIA's tool accepts it), or NULL. */
static const struct field *find(const char *name)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *p = fields[i].names;
        while (*p != '\0') {
            size_t len = strcspn(p, "|");
            if (strlen(name) == len && strncasecmp(p, name, len) == 0)
                return &fields[i];
            p += len + (p[len] == '|');
        }
    }
    return NULL;
}

#define MAX_FIELDS 64

int smi_query(smi_gpu_t *gpus, unsigned int n, const char *list, const char *format)
{
    int header = 1, units = 1, csv = 0;
    char fmt[128];
    snprintf(fmt, sizeof fmt, "%s", format);
    for (char *save = NULL, *opt = strtok_r(fmt, ",", &save); opt != NULL;
         opt = strtok_r(NULL, ",", &save)) {
        while (*opt == ' ')
            opt++;
        if (strcmp(opt, "csv") == 0)
            csv = 1;
        else if (strcmp(opt, "noheader") == 0)
            header = 0;
        else if (strcmp(opt, "nounits") == 0)
            units = 0;
        else {
            printf("\"%s\" is not a valid format option.\n", opt);
            return SMI_INVALID_ARGUMENT;
        }
    }
    if (!csv) {
        printf("Only CSV output is supported: use --format=csv.\n");
        return SMI_INVALID_ARGUMENT;
    }
    char names[2048];
    snprintf(names, sizeof names, "%s", list);
    const struct field *chosen[MAX_FIELDS];
    const char *asked[MAX_FIELDS];
    size_t k = 0;
    for (char *save = NULL, *name = strtok_r(names, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save)) {
        while (*name == ' ')
            name++;
        if (*name == '\0')
            continue;
        const struct field *f = find(name);
        if (f == NULL) {
            printf("Field \"%s\" is not a valid field to query.\n", name);
            return SMI_INVALID_ARGUMENT;
        }
        if (k == MAX_FIELDS) {
            printf("Too many fields to query (at most %d).\n", MAX_FIELDS);
            return SMI_INVALID_ARGUMENT;
        }
        chosen[k] = f;
        asked[k++] = name;
    }
    if (k == 0) {
        printf("No fields to query.\n");
        return SMI_INVALID_ARGUMENT;
    }
    if (header) {
        for (size_t i = 0; i < k; i++) {
            printf("%s%s", i ? ", " : "", asked[i]);
            if (units && chosen[i]->unit[0] != '\0')
                printf(" [%s]", chosen[i]->unit);
        }
        putchar('\n');
    }
    for (unsigned int g = 0; g < n; g++) {
        for (size_t i = 0; i < k; i++) {
            smi_value_t v;
            chosen[i]->read(&gpus[g], &v);
            const char *unit = chosen[i]->unit;
            if (!v.ok)
                printf("%s[N/A]", i ? ", " : "");
            else
                printf("%s%s%s%s", i ? ", " : "", v.text, units && unit[0] ? " " : "",
                       units ? unit : "");
        }
        putchar('\n');
    }
    return SMI_OK;
}
