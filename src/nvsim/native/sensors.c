/*
 * Live readings and their limits: memory, utilization, temperature, power and PCIe.  All
 * values come straight from the mapping (the model's last tick); the two setters here
 * (power limit, acoustic temperature target) write `setting` fields only.
 */
#include <math.h>
#include <string.h>

#include "nvsim_internal.h"

/* ---- memory ------------------------------------------------------------------------- */

/* v1 counts the reserved memory as used, as the real driver does; v2 reports it apart. */
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(memory);
    unsigned long long total = g->mem_total;
    unsigned long long used = g->mem_used + g->mem_reserved;
    if (used > total)
        used = total;
    memory->total = total;
    memory->used = used;
    memory->free = total - used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(memory);
    if (memory->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    unsigned long long total = g->mem_total;
    unsigned long long reserved = g->mem_reserved < total ? g->mem_reserved : total;
    unsigned long long used = g->mem_used;
    if (used > total - reserved)
        used = total - reserved;
    memory->total = total;
    memory->reserved = reserved;
    memory->used = used;
    memory->free = total - reserved - used;
    return NVML_SUCCESS;
}

/* ---- utilization -------------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(utilization);
    utilization->gpu = g->util_gpu;
    utilization->memory = g->util_mem;
    return NVML_SUCCESS;
}

/* ---- temperature -------------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType,
                                      unsigned int *temp)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(temp);
    if (sensorType != NVML_TEMPERATURE_GPU)
        return NVML_ERROR_INVALID_ARGUMENT;
    *temp = nvsim_round_u(g->temp_c);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t device, nvmlTemperature_t *temperature)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(temperature);
    if (temperature->version != nvmlTemperature_v1)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (temperature->sensorType != NVML_TEMPERATURE_GPU)
        return NVML_ERROR_INVALID_ARGUMENT;
    temperature->temperature = (int)lround(g->temp_c);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device,
                                               nvmlTemperatureThresholds_t thresholdType,
                                               unsigned int *temp)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(temp);
    int acoustic = g->temp_acoustic_max != 0;
    switch (thresholdType) {
    case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: *temp = g->temp_shutdown; break;
    case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: *temp = g->temp_slowdown; break;
    case NVML_TEMPERATURE_THRESHOLD_MEM_MAX:
        NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_MEM_TEMP));
        *temp = g->temp_mem_max;
        break;
    case NVML_TEMPERATURE_THRESHOLD_GPU_MAX: *temp = g->temp_gpu_max; break;
    case NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MIN:
        if (!acoustic)
            return NVML_ERROR_NOT_SUPPORTED;
        *temp = g->temp_acoustic_min;
        break;
    case NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_CURR:
        if (!acoustic)
            return NVML_ERROR_NOT_SUPPORTED;
        *temp = g->temp_acoustic_cur;
        break;
    case NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MAX:
        if (!acoustic)
            return NVML_ERROR_NOT_SUPPORTED;
        *temp = g->temp_acoustic_max;
        break;
    case NVML_TEMPERATURE_THRESHOLD_GPS_CURR: return NVML_ERROR_NOT_SUPPORTED;
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
    return NVML_SUCCESS;
}

/* Only the acoustic target can be set; the protection thresholds are fixed by the board. */
nvmlReturn_t nvmlDeviceSetTemperatureThreshold(nvmlDevice_t device,
                                               nvmlTemperatureThresholds_t thresholdType,
                                               int *temp)
{
    NVSIM_ENTER_LIVE(device);
    if ((unsigned int)thresholdType >= NVML_TEMPERATURE_THRESHOLD_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (thresholdType != NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_CURR || g->temp_acoustic_max == 0)
        return NVML_ERROR_NOT_SUPPORTED;
    NVSIM_TRY(nvsim_setter(g, 0));
    NVSIM_NONNULL(temp);
    if (*temp < (int)g->temp_acoustic_min || *temp > (int)g->temp_acoustic_max)
        return NVML_ERROR_INVALID_ARGUMENT;
    NVSIM_TRY(nvsim_write_begin());
    NVSIM_STORE(g->temp_acoustic_cur, (uint32_t)*temp);
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}

/* ---- power -------------------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(power);
    *power = nvsim_round_u(g->power_mw);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(energy);
    *energy = g->energy_mj > 0.0 ? (unsigned long long)g->energy_mj : 0ULL;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(limit);
    *limit = nvsim_power_limit(g);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(limit);
    *limit = nvsim_power_limit(g);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t device,
                                                          unsigned int *minLimit,
                                                          unsigned int *maxLimit)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(minLimit);
    NVSIM_NONNULL(maxLimit);
    *minLimit = g->power_min_mw;
    *maxLimit = g->power_max_mw;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device,
                                                      unsigned int *defaultLimit)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(defaultLimit);
    *defaultLimit = g->power_default_mw;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(mode);
    *mode = NVML_FEATURE_ENABLED;
    return NVML_SUCCESS;
}

static nvmlReturn_t set_power_limit(nvsim_gpu_t *g, unsigned int limit)
{
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_POWER_LIMIT));
    if (limit < g->power_min_mw || limit > g->power_max_mw)
        return NVML_ERROR_INVALID_ARGUMENT;
    NVSIM_TRY(nvsim_write_begin());
    NVSIM_STORE(g->power_limit_mw, limit);
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetPowerManagementLimit(nvmlDevice_t device, unsigned int limit)
{
    NVSIM_ENTER_LIVE(device);
    return set_power_limit(g, limit);
}

nvmlReturn_t nvmlDeviceSetPowerManagementLimit_v2(nvmlDevice_t device,
                                                  nvmlPowerValue_v2_t *powerValue)
{
    NVSIM_ENTER_LIVE(device);
    NVSIM_NONNULL(powerValue);
    if (powerValue->version != nvmlPowerValue_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (powerValue->powerScope >= NVML_POWER_SCOPE_COUNT)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (powerValue->powerScope != NVML_POWER_SCOPE_GPU)
        return NVML_ERROR_NOT_SUPPORTED; /* a discrete board has no module or memory scope */
    return set_power_limit(g, powerValue->powerValueMw);
}

/* ---- PCIe --------------------------------------------------------------------------- */

NVSIM_FIELD_GETTER(nvmlDeviceGetCurrPcieLinkGeneration, unsigned int, pcie_gen)
NVSIM_FIELD_GETTER(nvmlDeviceGetCurrPcieLinkWidth, unsigned int, pcie_width)
NVSIM_FIELD_GETTER(nvmlDeviceGetMaxPcieLinkGeneration, unsigned int, pcie_max_gen)
NVSIM_FIELD_GETTER(nvmlDeviceGetGpuMaxPcieLinkGeneration, unsigned int, pcie_max_gen)
NVSIM_FIELD_GETTER(nvmlDeviceGetMaxPcieLinkWidth, unsigned int, pcie_max_width)

nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t device, nvmlPcieUtilCounter_t counter,
                                         unsigned int *value)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(value);
    switch (counter) {
    case NVML_PCIE_UTIL_TX_BYTES: *value = g->pcie_tx_kbs; return NVML_SUCCESS;
    case NVML_PCIE_UTIL_RX_BYTES: *value = g->pcie_rx_kbs; return NVML_SUCCESS;
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
}

nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, unsigned int *value)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(value);
    *value = 0; /* a simulated link never replays */
    return NVML_SUCCESS;
}

/* Per-lane transfer rate of the current link generation, in MT/s as the driver reports. */
nvmlReturn_t nvmlDeviceGetPcieSpeed(nvmlDevice_t device, unsigned int *pcieSpeed)
{
    static const unsigned int per_gen[] = {0, 2500, 5000, 8000, 16000, 32000, 64000};
    NVSIM_ENTER(device);
    NVSIM_NONNULL(pcieSpeed);
    unsigned int gen = g->pcie_gen;
    if (gen == 0 || gen >= sizeof per_gen / sizeof per_gen[0])
        return NVML_ERROR_NOT_SUPPORTED;
    *pcieSpeed = per_gen[gen];
    return NVML_SUCCESS;
}
