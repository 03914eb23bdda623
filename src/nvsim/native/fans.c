/*
 * Fans.  Reading needs FEAT_FANS (datacenter boards without fans answer NOT_SUPPORTED);
 * setting needs FEAT_FAN_CONTROL and root.  GetFanSpeed reports the measured speed, which
 * lags the target; GetTargetFanSpeed reports what the policy (or the user) asked for.
 */
#include "nvsim_internal.h"

static nvmlReturn_t fan_of(const nvsim_gpu_t *g, unsigned int fan, const nvsim_fan_t **out)
{
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_FANS));
    if (fan >= g->fan_count || fan >= NVSIM_MAX_FANS)
        return NVML_ERROR_INVALID_ARGUMENT;
    *out = &g->fans[fan];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNumFans(nvmlDevice_t device, unsigned int *numFans)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_FANS));
    NVSIM_NONNULL(numFans);
    *numFans = g->fan_count < NVSIM_MAX_FANS ? g->fan_count : NVSIM_MAX_FANS;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFanSpeed_v2(nvmlDevice_t device, unsigned int fan, unsigned int *speed)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(speed);
    const nvsim_fan_t *f;
    NVSIM_TRY(fan_of(g, fan, &f));
    *speed = nvsim_round_u(f->speed_pct);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(speed);
    const nvsim_fan_t *f;
    NVSIM_TRY(fan_of(g, 0, &f));
    *speed = nvsim_round_u(f->speed_pct);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTargetFanSpeed(nvmlDevice_t device, unsigned int fan,
                                         unsigned int *targetSpeed)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(targetSpeed);
    const nvsim_fan_t *f;
    NVSIM_TRY(fan_of(g, fan, &f));
    *targetSpeed = f->target_pct;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFanSpeedRPM(nvmlDevice_t device, nvmlFanSpeedInfo_t *fanSpeed)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(fanSpeed);
    if (fanSpeed->version != nvmlFanSpeedInfo_v1)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    const nvsim_fan_t *f;
    NVSIM_TRY(fan_of(g, fanSpeed->fan, &f));
    fanSpeed->speed = f->rpm;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMinMaxFanSpeed(nvmlDevice_t device, unsigned int *minSpeed,
                                         unsigned int *maxSpeed)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_FANS));
    NVSIM_NONNULL(minSpeed);
    NVSIM_NONNULL(maxSpeed);
    *minSpeed = g->fan_min_pct;
    *maxSpeed = g->fan_max_pct;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFanControlPolicy_v2(nvmlDevice_t device, unsigned int fan,
                                              nvmlFanControlPolicy_t *policy)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(policy);
    const nvsim_fan_t *f;
    NVSIM_TRY(fan_of(g, fan, &f));
    *policy = f->policy == NVSIM_FAN_POLICY_MANUAL ? NVML_FAN_POLICY_MANUAL
                                                   : NVML_FAN_POLICY_TEMPERATURE_CONTINOUS_SW;
    return NVML_SUCCESS;
}

/* ---- setters ------------------------------------------------------------------------ */

static nvmlReturn_t settable_fan(nvsim_gpu_t *g, unsigned int fan, nvsim_fan_t **out)
{
    NVSIM_TRY(nvsim_setter(g, NVSIM_FEAT_FANS | NVSIM_FEAT_FAN_CONTROL));
    const nvsim_fan_t *f;
    NVSIM_TRY(fan_of(g, fan, &f));
    *out = &g->fans[f - g->fans];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetFanSpeed_v2(nvmlDevice_t device, unsigned int fan, unsigned int speed)
{
    NVSIM_ENTER_LIVE(device);
    nvsim_fan_t *f;
    NVSIM_TRY(settable_fan(g, fan, &f));
    if (speed < g->fan_min_pct || speed > g->fan_max_pct)
        return NVML_ERROR_INVALID_ARGUMENT;
    /* target and policy in one write section: the model never applies one without the other */
    NVSIM_TRY(nvsim_write_begin());
    NVSIM_STORE(f->target_pct, speed);
    NVSIM_STORE(f->policy, (uint32_t)NVSIM_FAN_POLICY_MANUAL);
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetDefaultFanSpeed_v2(nvmlDevice_t device, unsigned int fan)
{
    NVSIM_ENTER_LIVE(device);
    nvsim_fan_t *f;
    NVSIM_TRY(settable_fan(g, fan, &f));
    NVSIM_TRY(nvsim_write_begin());
    NVSIM_STORE(f->policy, (uint32_t)NVSIM_FAN_POLICY_AUTO);
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetFanControlPolicy(nvmlDevice_t device, unsigned int fan,
                                           nvmlFanControlPolicy_t policy)
{
    NVSIM_ENTER_LIVE(device);
    nvsim_fan_t *f;
    NVSIM_TRY(settable_fan(g, fan, &f));
    uint32_t wanted;
    if (policy == NVML_FAN_POLICY_MANUAL)
        wanted = NVSIM_FAN_POLICY_MANUAL; /* holds the current target until told otherwise */
    else if (policy == NVML_FAN_POLICY_TEMPERATURE_CONTINOUS_SW)
        wanted = NVSIM_FAN_POLICY_AUTO;
    else
        return NVML_ERROR_INVALID_ARGUMENT;
    NVSIM_TRY(nvsim_write_begin());
    NVSIM_STORE(f->policy, wanted);
    nvsim_settings_changed(g);
    nvsim_write_end();
    return NVML_SUCCESS;
}
