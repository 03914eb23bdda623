/*
 * -q (the text report) and -q -x (the same report as NVIDIA's nvsmi_log XML).  One walk
 * over each GPU feeds both: every entry has the label the text report prints and the tag
 * the XML uses, so the two cannot disagree.  Text: labels padded so the colons line up,
 * four spaces per level.  XML: <nvidia_smi_log> with one <gpu id="BUS ID"> per GPU, tab
 * indented, values escaped.
 */
#include <stdio.h>
#include <string.h>

#include "smi.h"

#define LABEL_WIDTH 42

static int as_xml;
static int depth;

static void indent(void)
{
    for (int i = 0; i < depth; i++)
        fputs(as_xml ? "\t" : "    ", stdout);
}

static void xml_text(const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<': fputs("&lt;", stdout); break;
        case '>': fputs("&gt;", stdout); break;
        case '&': fputs("&amp;", stdout); break;
        case '"': fputs("&quot;", stdout); break;
        default: putchar(*s);
        }
    }
}

static void open_section(const char *label, const char *tag)
{
    indent();
    if (as_xml)
        printf("<%s>\n", tag);
    else
        printf("%s\n", label);
    depth++;
}

static void close_section(const char *tag)
{
    depth--;
    if (as_xml) {
        indent();
        printf("</%s>\n", tag);
    }
}

static void entry(const char *label, const char *tag, const char *value)
{
    indent();
    if (as_xml) {
        printf("<%s>", tag);
        xml_text(value);
        printf("</%s>\n", tag);
    } else {
        printf("%-*s: %s\n", LABEL_WIDTH - 4 * depth, label, value);
    }
}

static void entryv(const char *label, const char *tag, const smi_value_t *v)
{
    entry(label, tag, v->ok ? v->text : "N/A");
}

/* ---- readings ------------------------------------------------------------------------ */

static void ull_unit(smi_value_t *v, nvmlReturn_t r, unsigned long long x, const char *unit)
{
    if (r == NVML_SUCCESS)
        smi_setf(v, "%llu%s", x, unit);
    else
        smi_na(v);
}

/* `x` by pointer: read only after the call that fills it (an argument `r` of this call). */
static void uint_unit(smi_value_t *v, nvmlReturn_t r, const unsigned int *x, const char *unit)
{
    ull_unit(v, r, r == NVML_SUCCESS ? *x : 0, unit);
}

static void watts(smi_value_t *v, nvmlReturn_t r, const unsigned int *mw)
{
    if (r == NVML_SUCCESS)
        smi_setf(v, "%.2f W", *mw / 1000.0);
    else
        smi_na(v);
}

static void enable_pair(const char *label, const char *tag, const char *cur_tag,
                        const char *pend_tag, nvmlReturn_t r, nvmlEnableState_t cur,
                        nvmlEnableState_t pend)
{
    open_section(label, tag);
    entry("Current", cur_tag, r == NVML_SUCCESS ? smi_enabled(cur) : "N/A");
    entry("Pending", pend_tag, r == NVML_SUCCESS ? smi_enabled(pend) : "N/A");
    close_section(tag);
}

static void clocks(nvmlDevice_t h, const char *label, const char *tag, const char *getter)
{
    static const struct {
        const char *label, *tag;
        nvmlClockType_t type;
    } kinds[] = {{"Graphics", "graphics_clock", NVML_CLOCK_GRAPHICS},
                 {"SM", "sm_clock", NVML_CLOCK_SM},
                 {"Memory", "mem_clock", NVML_CLOCK_MEM},
                 {"Video", "video_clock", NVML_CLOCK_VIDEO}};
    clock_fn fn = (clock_fn)smi_sym(getter);
    open_section(label, tag);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        unsigned int mhz = 0;
        smi_value_t v;
        uint_unit(&v, fn ? fn(h, kinds[i].type, &mhz) : NVML_ERROR_FUNCTION_NOT_FOUND, &mhz,
                  " MHz");
        entryv(kinds[i].label, kinds[i].tag, &v);
    }
    close_section(tag);
}

static void processes(nvmlDevice_t h)
{
    typedef nvmlReturn_t (*pname_fn)(unsigned int, char *, unsigned int);
    int any = 0;
    for (int k = 0; k < 2; k++) {
        nvmlProcessInfo_t infos[64];
        unsigned int count = smi_processes(h, k, infos, 64);
        for (unsigned int p = 0; p < count; p++) {
            if (!any)
                open_section("Processes", "processes");
            any = 1;
            char name[256] = "N/A", pid[16], mem[32] = "N/A";
            NVML(nvmlSystemGetProcessName, pname_fn, infos[p].pid, name, sizeof name);
            snprintf(pid, sizeof pid, "%u", infos[p].pid);
            if (infos[p].usedGpuMemory != (unsigned long long)NVML_VALUE_NOT_AVAILABLE)
                snprintf(mem, sizeof mem, "%llu MiB", infos[p].usedGpuMemory >> 20);
            /* XML: one <process_info> each; text: the pid line heads its details */
            if (as_xml)
                open_section("", "process_info");
            entry("GPU instance ID", "gpu_instance_id", "N/A");
            entry("Compute instance ID", "compute_instance_id", "N/A");
            entry("Process ID", "pid", pid);
            depth += !as_xml;
            entry("Type", "type", k == 0 ? "C" : "G");
            entry("Name", "process_name", name);
            entry("Used GPU Memory", "used_memory", mem);
            if (as_xml)
                close_section("process_info");
            else
                depth--;
        }
    }
    if (any)
        close_section("processes");
    else if (as_xml) {
        indent();
        puts("<processes>");
        indent();
        puts("</processes>");
    } else
        entry("Processes", "processes", "None");
}

static void gpu_report(const smi_gpu_t *g)
{
    nvmlDevice_t h = g->handle;
    smi_value_t v;
    char buf[128];
    nvmlEnableState_t s1, s2;
    unsigned int u1 = 0, u2 = 0;
    nvmlReturn_t r;

    entry("Product Name", "product_name", g->name);
    entry("Product Brand", "product_brand", g->has_brand ? smi_brand(g->brand) : "N/A");
    entry("Product Architecture", "product_architecture", g->has_arch ? smi_arch(g->arch) : "N/A");
    r = NVML(nvmlDeviceGetDisplayMode, state_fn, h, &s1);
    entry("Display Mode", "display_mode", r == NVML_SUCCESS ? smi_enabled(s1) : "N/A");
    r = NVML(nvmlDeviceGetDisplayActive, state_fn, h, &s1);
    entry("Display Active", "display_active", r == NVML_SUCCESS ? smi_enabled(s1) : "N/A");
    r = NVML(nvmlDeviceGetPersistenceMode, state_fn, h, &s1);
    entry("Persistence Mode", "persistence_mode", r == NVML_SUCCESS ? smi_enabled(s1) : "N/A");
    r = NVML(nvmlDeviceGetAccountingMode, state_fn, h, &s1);
    entry("Accounting Mode", "accounting_mode", r == NVML_SUCCESS ? smi_enabled(s1) : "N/A");
    r = NVML(nvmlDeviceGetAccountingBufferSize, uint_fn, h, &u1);
    uint_unit(&v, r, &u1, "");
    entryv("Accounting Mode Buffer Size", "accounting_mode_buffer_size", &v);
    enable_pair("Driver Model", "driver_model", "current_dm", "pending_dm",
                NVML_ERROR_NOT_SUPPORTED, 0, 0);
    entry("Serial Number", "serial", g->has_serial ? g->serial : "N/A");
    entry("GPU UUID", "uuid", g->uuid);
    snprintf(buf, sizeof buf, "%u", g->minor);
    entry("Minor Number", "minor_number", buf);
    entry("VBIOS Version", "vbios_version", g->vbios);
    r = NVML(nvmlDeviceGetMultiGpuBoard, uint_fn, h, &u1);
    entry("MultiGPU Board", "multigpu_board", r == NVML_SUCCESS ? (u1 ? "Yes" : "No") : "N/A");
    snprintf(buf, sizeof buf, "0x%x", g->board_id);
    entry("Board ID", "board_id", buf);
    entry("GPU Part Number", "gpu_part_number", g->has_part ? g->part : "N/A");

    open_section("Inforom Version", "inforom_version");
    typedef nvmlReturn_t (*iv_fn)(nvmlDevice_t, nvmlInforomObject_t, char *, unsigned int);
    r = NVML(nvmlDeviceGetInforomImageVersion, str_fn, h, buf, sizeof buf);
    entry("Image Version", "img_version", r == NVML_SUCCESS ? buf : "N/A");
    static const struct {
        const char *label, *tag;
        nvmlInforomObject_t obj;
    } objs[] = {{"OEM Object", "oem_object", NVML_INFOROM_OEM},
                {"ECC Object", "ecc_object", NVML_INFOROM_ECC},
                {"Power Management Object", "pwr_object", NVML_INFOROM_POWER}};
    for (size_t i = 0; i < 3; i++) {
        r = NVML(nvmlDeviceGetInforomVersion, iv_fn, h, objs[i].obj, buf, sizeof buf);
        entry(objs[i].label, objs[i].tag, r == NVML_SUCCESS ? buf : "N/A");
    }
    close_section("inforom_version");
    open_section("GPU Operation Mode", "gpu_operation_mode");
    entry("Current", "current_gom", "N/A");
    entry("Pending", "pending_gom", "N/A");
    close_section("gpu_operation_mode");

    open_section("PCI", "pci");
    snprintf(buf, sizeof buf, as_xml ? "%02X" : "0x%02X", g->pci.bus);
    entry("Bus", "pci_bus", buf);
    snprintf(buf, sizeof buf, as_xml ? "%02X" : "0x%02X", g->pci.device);
    entry("Device", "pci_device", buf);
    snprintf(buf, sizeof buf, as_xml ? "%04X" : "0x%04X", g->pci.domain);
    entry("Domain", "pci_domain", buf);
    snprintf(buf, sizeof buf, as_xml ? "%08X" : "0x%08X", g->pci.pciDeviceId);
    entry("Device Id", "pci_device_id", buf);
    entry("Bus Id", "pci_bus_id", g->bus_id);
    snprintf(buf, sizeof buf, as_xml ? "%08X" : "0x%08X", g->pci.pciSubSystemId);
    entry("Sub System Id", "pci_sub_system_id", buf);
    open_section("GPU Link Info", "pci_gpu_link_info");
    open_section("PCIe Generation", "pcie_gen");
    uint_unit(&v, NVML(nvmlDeviceGetMaxPcieLinkGeneration, uint_fn, h, &u1), &u1, "");
    entryv("Max", "max_link_gen", &v);
    uint_unit(&v, NVML(nvmlDeviceGetCurrPcieLinkGeneration, uint_fn, h, &u1), &u1, "");
    entryv("Current", "current_link_gen", &v);
    close_section("pcie_gen");
    open_section("Link Width", "link_widths");
    uint_unit(&v, NVML(nvmlDeviceGetMaxPcieLinkWidth, uint_fn, h, &u1), &u1, "x");
    entryv("Max", "max_link_width", &v);
    uint_unit(&v, NVML(nvmlDeviceGetCurrPcieLinkWidth, uint_fn, h, &u1), &u1, "x");
    entryv("Current", "current_link_width", &v);
    close_section("link_widths");
    close_section("pci_gpu_link_info");
    close_section("pci");

    uint_unit(&v, NVML(nvmlDeviceGetFanSpeed, uint_fn, h, &u1), &u1, " %");
    entryv("Fan Speed", "fan_speed", &v);
    entry("Performance State", "performance_state", smi_pstate(h, buf, sizeof buf));

    unsigned long long total, reserved, used, free_bytes;
    int have = smi_memory(h, &total, &reserved, &used, &free_bytes);
    open_section("FB Memory Usage", "fb_memory_usage");
    const struct {
        const char *label, *tag;
        unsigned long long bytes;
    } mem[] = {{"Total", "total", total}, {"Reserved", "reserved", reserved},
               {"Used", "used", used}, {"Free", "free", free_bytes}};
    for (size_t i = 0; i < 4; i++) {
        ull_unit(&v, have ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED, have ? mem[i].bytes >> 20 : 0,
                  " MiB");
        entryv(mem[i].label, mem[i].tag, &v);
    }
    close_section("fb_memory_usage");
    typedef nvmlReturn_t (*bar1_fn)(nvmlDevice_t, nvmlBAR1Memory_t *);
    nvmlBAR1Memory_t bar1;
    r = NVML(nvmlDeviceGetBAR1MemoryInfo, bar1_fn, h, &bar1);
    open_section("BAR1 Memory Usage", "bar1_memory_usage");
    ull_unit(&v, r, r == NVML_SUCCESS ? bar1.bar1Total >> 20 : 0, " MiB");
    entryv("Total", "total", &v);
    ull_unit(&v, r, r == NVML_SUCCESS ? bar1.bar1Used >> 20 : 0, " MiB");
    entryv("Used", "used", &v);
    ull_unit(&v, r, r == NVML_SUCCESS ? bar1.bar1Free >> 20 : 0, " MiB");
    entryv("Free", "free", &v);
    close_section("bar1_memory_usage");
    typedef nvmlReturn_t (*mode_fn)(nvmlDevice_t, nvmlComputeMode_t *);
    nvmlComputeMode_t cm;
    r = NVML(nvmlDeviceGetComputeMode, mode_fn, h, &cm);
    entry("Compute Mode", "compute_mode", r == NVML_SUCCESS ? smi_compute_mode(cm) : "N/A");

    open_section("Utilization", "utilization");
    typedef nvmlReturn_t (*rates_fn)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlUtilization_t util;
    r = NVML(nvmlDeviceGetUtilizationRates, rates_fn, h, &util);
    ull_unit(&v, r, r == NVML_SUCCESS ? util.gpu : 0, " %");
    entryv("Gpu", "gpu_util", &v);
    ull_unit(&v, r, r == NVML_SUCCESS ? util.memory : 0, " %");
    entryv("Memory", "memory_util", &v);
    uint_unit(&v, NVML(nvmlDeviceGetEncoderUtilization, util_fn, h, &u1, &u2), &u1, " %");
    entryv("Encoder", "encoder_util", &v);
    uint_unit(&v, NVML(nvmlDeviceGetDecoderUtilization, util_fn, h, &u1, &u2), &u1, " %");
    entryv("Decoder", "decoder_util", &v);
    close_section("utilization");

    r = NVML(nvmlDeviceGetEccMode, pair_fn, h, &s1, &s2);
    enable_pair("ECC Mode", "ecc_mode", "current_ecc", "pending_ecc", r, s1, s2);

    open_section("Temperature", "temperature");
    uint_unit(&v, smi_temperature(h, &u1) ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED, &u1, " C");
    entryv("GPU Current Temp", "gpu_temp", &v);
    typedef nvmlReturn_t (*thr_fn)(nvmlDevice_t, nvmlTemperatureThresholds_t, unsigned int *);
    static const struct {
        const char *label, *tag;
        nvmlTemperatureThresholds_t which;
    } thr[] = {{"GPU Shutdown Temp", "gpu_temp_max_threshold", NVML_TEMPERATURE_THRESHOLD_SHUTDOWN},
               {"GPU Slowdown Temp", "gpu_temp_slow_threshold", NVML_TEMPERATURE_THRESHOLD_SLOWDOWN},
               {"GPU Max Operating Temp", "gpu_temp_max_gpu_threshold",
                NVML_TEMPERATURE_THRESHOLD_GPU_MAX},
               {"GPU Target Temperature", "gpu_target_temperature",
                NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_CURR},
               {"Memory Max Operating Temp", "gpu_temp_max_mem_threshold",
                NVML_TEMPERATURE_THRESHOLD_MEM_MAX}};
    for (size_t i = 0; i < sizeof thr / sizeof thr[0]; i++) {
        uint_unit(&v, NVML(nvmlDeviceGetTemperatureThreshold, thr_fn, h, thr[i].which, &u1), &u1,
                  " C");
        entryv(thr[i].label, thr[i].tag, &v);
    }
    close_section("temperature");

    open_section("GPU Power Readings", "gpu_power_readings");
    entry("Power State", "power_state", smi_pstate(h, buf, sizeof buf));
    watts(&v, NVML(nvmlDeviceGetPowerUsage, uint_fn, h, &u1), &u1);
    entryv("Power Draw", "power_draw", &v);
    watts(&v, NVML(nvmlDeviceGetEnforcedPowerLimit, uint_fn, h, &u1), &u1);
    entryv("Current Power Limit", "current_power_limit", &v);
    watts(&v, NVML(nvmlDeviceGetPowerManagementLimit, uint_fn, h, &u1), &u1);
    entryv("Requested Power Limit", "requested_power_limit", &v);
    watts(&v, NVML(nvmlDeviceGetPowerManagementDefaultLimit, uint_fn, h, &u1), &u1);
    entryv("Default Power Limit", "default_power_limit", &v);
    r = NVML(nvmlDeviceGetPowerManagementLimitConstraints, util_fn, h, &u1, &u2);
    watts(&v, r, &u1);
    entryv("Min Power Limit", "min_power_limit", &v);
    watts(&v, r, &u2);
    entryv("Max Power Limit", "max_power_limit", &v);
    close_section("gpu_power_readings");

    clocks(h, "Clocks", "clocks", "nvmlDeviceGetClockInfo");
    clocks(h, "Applications Clocks", "applications_clocks", "nvmlDeviceGetApplicationsClock");
    clocks(h, "Max Clocks", "max_clocks", "nvmlDeviceGetMaxClockInfo");
    processes(h);
}

int smi_report(smi_gpu_t *gpus, unsigned int n, unsigned int attached, int xml)
{
    char now[64], cuda[16], count[16];
    as_xml = xml;
    depth = 0;
    snprintf(count, sizeof count, "%u", attached);
    if (xml) {
        puts("<?xml version=\"1.0\" ?>");
        puts("<!DOCTYPE nvidia_smi_log SYSTEM \"nvsmi_device_v12.dtd\">");
        puts("<nvidia_smi_log>");
        depth = 1;
    } else {
        puts("\n==============NVSMI LOG==============\n");
    }
    entry("Timestamp", "timestamp", smi_now(now, sizeof now));
    entry("Driver Version", "driver_version", smi_driver_version());
    entry("CUDA Version", "cuda_version", smi_cuda_version(cuda, sizeof cuda));
    if (!xml)
        putchar('\n');
    entry("Attached GPUs", "attached_gpus", count);
    for (unsigned int i = 0; i < n; i++) {
        if (xml) {
            indent();
            fputs("<gpu id=\"", stdout);
            xml_text(gpus[i].bus_id);
            puts("\">");
        } else {
            printf("GPU %s\n", gpus[i].bus_id);
        }
        depth++;
        gpu_report(&gpus[i]);
        depth--;
        if (xml) {
            indent();
            puts("</gpu>");
        } else {
            putchar('\n');
        }
    }
    if (xml)
        puts("</nvidia_smi_log>");
    return SMI_OK;
}
