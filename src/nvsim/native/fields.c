/*
 * nvmlDeviceGetFieldValues: batched reads.  Each entry gets its own nvmlReturn, valueType
 * and timestamp; an id nvsim does not serve gets NVML_ERROR_NOT_SUPPORTED in its entry
 * while the call itself succeeds.
 *
 * Served ids:
 *   NVML_FI_DEV_ECC_CURRENT, _PENDING            the ECC mode (NOT_SUPPORTED without ECC)
 *   NVML_FI_DEV_MEMORY_TEMP                      memory temperature, FEAT_MEM_TEMP only
 *   NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION, _ENERGY mJ since `nvsim up`
 *   NVML_FI_DEV_NVLINK_LINK_COUNT                the board's NVLink links (18 on H100 SXM)
 *   NVML_FI_DEV_PCIE_REPLAY_COUNTER, _ROLLOVER_  0
 *   NVML_FI_DEV_POWER_AVERAGE, _INSTANT          mW (the model keeps one power reading)
 *   NVML_FI_DEV_POWER_MIN_LIMIT, _MAX_, _DEFAULT_ mW, the limit constraints
 *   NVML_FI_DEV_POWER_CURRENT_LIMIT, _REQUESTED_ mW, the limit in force
 *   NVML_FI_DEV_TEMPERATURE_{SHUTDOWN,SLOWDOWN,MEM_MAX,GPU_MAX}_TLIMIT
 *                                                the threshold on the T.Limit scale (degrees
 *                                                below the max operating temperature; <= 0)
 *   NVML_FI_DEV_GPU_TEMP                         die temperature with sub-degree precision
 * Not served (NOT_SUPPORTED): the NVML_FI_DEV_PERF_POLICY_* and
 * NVML_FI_DEV_CLOCKS_EVENT_REASON_* time counters (the state keeps only the current reason
 * mask, no accumulated time), the PCIe byte counters, NVLink, ECC counters and the rest.
 */
#include <string.h>

#include "nvsim_internal.h"

static void set_uint(nvmlFieldValue_t *v, unsigned int x)
{
    v->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
    v->value.uiVal = x;
}

static void set_ull(nvmlFieldValue_t *v, unsigned long long x)
{
    v->valueType = NVML_VALUE_TYPE_UNSIGNED_LONG_LONG;
    v->value.ullVal = x;
}

static void set_int(nvmlFieldValue_t *v, int x)
{
    v->valueType = NVML_VALUE_TYPE_SIGNED_INT;
    v->value.siVal = x;
}

static nvmlReturn_t field(const nvsim_gpu_t *g, nvmlFieldValue_t *v)
{
    switch (v->fieldId) {
    case NVML_FI_DEV_ECC_CURRENT:
    case NVML_FI_DEV_ECC_PENDING:
        if (g->ecc_mode == NVSIM_ECC_MODE_NONE)
            return NVML_ERROR_NOT_SUPPORTED;
        set_uint(v, g->ecc_mode == NVSIM_ECC_MODE_ENABLED);
        break;
    case NVML_FI_DEV_NVLINK_LINK_COUNT: set_uint(v, g->nvlink_links); break;
    case NVML_FI_DEV_MEMORY_TEMP:
        NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_MEM_TEMP));
        set_uint(v, nvsim_round_u(g->mem_temp_c));
        break;
    case NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION:
    case NVML_FI_DEV_ENERGY:
        set_ull(v, g->energy_mj > 0.0 ? (unsigned long long)g->energy_mj : 0ULL);
        break;
    case NVML_FI_DEV_PCIE_REPLAY_COUNTER:
    case NVML_FI_DEV_PCIE_REPLAY_ROLLOVER_COUNTER: set_uint(v, 0); break;
    case NVML_FI_DEV_POWER_AVERAGE:
    case NVML_FI_DEV_POWER_INSTANT: set_uint(v, nvsim_round_u(g->power_mw)); break;
    case NVML_FI_DEV_POWER_MIN_LIMIT: set_uint(v, g->power_min_mw); break;
    case NVML_FI_DEV_POWER_MAX_LIMIT: set_uint(v, g->power_max_mw); break;
    case NVML_FI_DEV_POWER_DEFAULT_LIMIT: set_uint(v, g->power_default_mw); break;
    case NVML_FI_DEV_POWER_CURRENT_LIMIT:
    case NVML_FI_DEV_POWER_REQUESTED_LIMIT: set_uint(v, nvsim_power_limit(g)); break;
    case NVML_FI_DEV_TEMPERATURE_SHUTDOWN_TLIMIT:
        set_int(v, (int)g->temp_gpu_max - (int)g->temp_shutdown);
        break;
    case NVML_FI_DEV_TEMPERATURE_SLOWDOWN_TLIMIT:
        set_int(v, (int)g->temp_gpu_max - (int)g->temp_slowdown);
        break;
    case NVML_FI_DEV_TEMPERATURE_MEM_MAX_TLIMIT:
        NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_MEM_TEMP));
        set_int(v, (int)g->temp_gpu_max - (int)g->temp_mem_max);
        break;
    case NVML_FI_DEV_TEMPERATURE_GPU_MAX_TLIMIT: set_int(v, 0); break;
    case NVML_FI_DEV_GPU_TEMP:
        v->valueType = NVML_VALUE_TYPE_DOUBLE;
        v->value.dVal = g->temp_c;
        break;
    default: return NVML_ERROR_NOT_SUPPORTED;
    }
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int valuesCount,
                                      nvmlFieldValue_t *values)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(values);
    if (valuesCount <= 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    long long now = nvsim_now_us();
    for (int i = 0; i < valuesCount; i++) {
        nvmlFieldValue_t *v = &values[i];
        memset(&v->value, 0, sizeof v->value);
        v->timestamp = now;
        v->latencyUsec = 0;
        v->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
        v->nvmlReturn = field(g, v);
    }
    return NVML_SUCCESS;
}
