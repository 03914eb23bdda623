/*
 * nvsim's nvidia-smi: the command-line tool a driver installation ships, built only on the
 * NVML C ABI.  It dlopens libnvidia-ml.so.1 at run time (the virtual driver's, or a real
 * one), so it runs anywhere that library loads: on the host, and in a container whose CDI
 * spec mounts the library, with no Python inside.
 *
 * Functions are looked up one by one; a symbol the loaded driver lacks (an older branch)
 * reads as N/A, as a getter answering NOT_SUPPORTED does.
 */
#pragma once

#include <stddef.h>

#include <nvml.h>

/* NVIDIA's exit codes for nvidia-smi. */
enum {
    SMI_OK = 0,
    SMI_INVALID_ARGUMENT = 2,
    SMI_NOT_SUPPORTED = 3,
    SMI_NO_PERMISSION = 4,
    SMI_NOT_FOUND = 6,
    SMI_DRIVER_NOT_LOADED = 9,
    SMI_LIBRARY_NOT_FOUND = 12,
    SMI_GPU_LOST = 15,
    SMI_OTHER = 255,
};

/* The symbol `name` of the loaded library, or NULL when that driver has none. */
void *smi_sym(const char *name);

/* Call NVML function `fn` (a symbol name) through a pointer of the given type; a missing
 * symbol answers FUNCTION_NOT_FOUND. */
#define NVML(fn, type, ...)                                                                \
    (smi_sym(#fn) != NULL ? ((type)smi_sym(#fn))(__VA_ARGS__) : NVML_ERROR_FUNCTION_NOT_FOUND)

typedef nvmlReturn_t (*uint_fn)(nvmlDevice_t, unsigned int *);
typedef nvmlReturn_t (*str_fn)(nvmlDevice_t, char *, unsigned int);
typedef nvmlReturn_t (*clock_fn)(nvmlDevice_t, nvmlClockType_t, unsigned int *);
typedef nvmlReturn_t (*state_fn)(nvmlDevice_t, nvmlEnableState_t *);
typedef nvmlReturn_t (*pair_fn)(nvmlDevice_t, nvmlEnableState_t *, nvmlEnableState_t *);
typedef nvmlReturn_t (*util_fn)(nvmlDevice_t, unsigned int *, unsigned int *);

/* A text value: the reading, or "N/A" when the driver has none. */
typedef struct {
    char text[128];
    int ok;
} smi_value_t;

void smi_na(smi_value_t *v);
void smi_setf(smi_value_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What the tool knows of one GPU, read once per run (NVML codes kept where they matter). */
typedef struct {
    unsigned int index;
    nvmlDevice_t handle;
    char name[96], uuid[96], serial[64], vbios[64], part[64], bus_id[32];
    int has_serial, has_part;
    nvmlPciInfo_t pci;
    unsigned int minor, board_id;
    nvmlBrandType_t brand;
    int has_brand;
    nvmlDeviceArchitecture_t arch;
    int has_arch;
} smi_gpu_t;

/*
 * The compute (graphics = 0) or graphics (1) processes of a GPU, through the newest
 * process-list call the loaded driver has (_v3, _v2 with the same layout, or v1).  Returns
 * the count written to `infos` (capacity `max`); 0 when there are none or no call answers.
 */
unsigned int smi_processes(nvmlDevice_t h, int graphics, nvmlProcessInfo_t *infos,
                           unsigned int max);

/* Readings shared by the table, the queries and the report. */
int smi_temperature(nvmlDevice_t h, unsigned int *celsius);
int smi_memory(nvmlDevice_t h, unsigned long long *total, unsigned long long *reserved,
               unsigned long long *used, unsigned long long *free_bytes);
const char *smi_pstate(nvmlDevice_t h, char *buf, size_t size);
const char *smi_enabled(nvmlEnableState_t s);
const char *smi_compute_mode(nvmlComputeMode_t mode);
const char *smi_brand(nvmlBrandType_t brand);
const char *smi_arch(nvmlDeviceArchitecture_t arch);
/* Cuda driver version as "12.4", or "N/A". */
const char *smi_cuda_version(char *buf, size_t size);
const char *smi_driver_version(void);
/* ctime-style local time, as nvidia-smi prints it. */
const char *smi_now(char *buf, size_t size);

/* Output modes. */
int smi_table(smi_gpu_t *gpus, unsigned int n);
int smi_list(smi_gpu_t *gpus, unsigned int n);
int smi_query(smi_gpu_t *gpus, unsigned int n, const char *fields, const char *format);
int smi_report(smi_gpu_t *gpus, unsigned int n, unsigned int attached, int xml);
