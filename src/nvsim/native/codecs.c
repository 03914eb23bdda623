/*
 * The video and vision engines: NVENC (encoder utilization, sessions, capacity, and the
 * frame-buffer-capture statistics that ride on it), NVDEC, NVJPG and the optical flow
 * accelerator.  A board without an engine answers NOT_SUPPORTED for it, as the driver does
 * (H100 has decoders and JPEG but no encoder; GeForce boards have no NVJPG here).  No
 * simulated client encodes, so session lists are empty and the engines idle unless the
 * state says otherwise.
 */
#include <string.h>

#include "nvsim_internal.h"

#define CODEC_SAMPLING_US 167000u /* the window the driver reports for engine utilization */

static nvmlReturn_t engine_util(const nvsim_gpu_t *g, uint32_t feature, unsigned int value,
                                unsigned int *utilization, unsigned int *samplingPeriodUs)
{
    NVSIM_TRY(nvsim_feature(g, feature));
    NVSIM_NONNULL(utilization);
    NVSIM_NONNULL(samplingPeriodUs);
    *utilization = value;
    *samplingPeriodUs = CODEC_SAMPLING_US;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                             unsigned int *samplingPeriodUs)
{
    NVSIM_ENTER(device);
    return engine_util(g, NVSIM_FEAT_ENCODER, g->util_enc, utilization, samplingPeriodUs);
}

nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                             unsigned int *samplingPeriodUs)
{
    NVSIM_ENTER(device);
    return engine_util(g, NVSIM_FEAT_DECODER, g->util_dec, utilization, samplingPeriodUs);
}

nvmlReturn_t nvmlDeviceGetJpgUtilization(nvmlDevice_t device, unsigned int *utilization,
                                         unsigned int *samplingPeriodUs)
{
    NVSIM_ENTER(device);
    return engine_util(g, NVSIM_FEAT_JPEG, 0, utilization, samplingPeriodUs);
}

nvmlReturn_t nvmlDeviceGetOfaUtilization(nvmlDevice_t device, unsigned int *utilization,
                                         unsigned int *samplingPeriodUs)
{
    NVSIM_ENTER(device);
    return engine_util(g, NVSIM_FEAT_OFA, 0, utilization, samplingPeriodUs);
}

nvmlReturn_t nvmlDeviceGetEncoderStats(nvmlDevice_t device, unsigned int *sessionCount,
                                       unsigned int *averageFps, unsigned int *averageLatency)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_ENCODER));
    NVSIM_NONNULL(sessionCount);
    NVSIM_NONNULL(averageFps);
    NVSIM_NONNULL(averageLatency);
    *sessionCount = *averageFps = *averageLatency = 0;
    return NVML_SUCCESS;
}

/* Session lists follow the size protocol; there are never any sessions. */
static nvmlReturn_t no_sessions(const nvsim_gpu_t *g, unsigned int *sessionCount)
{
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_ENCODER));
    NVSIM_NONNULL(sessionCount);
    *sessionCount = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEncoderSessions(nvmlDevice_t device, unsigned int *sessionCount,
                                          nvmlEncoderSessionInfo_t *sessionInfos)
{
    NVSIM_ENTER(device);
    return no_sessions(g, sessionCount);
}

nvmlReturn_t nvmlDeviceGetEncoderCapacity(nvmlDevice_t device, nvmlEncoderType_t encoderQueryType,
                                          unsigned int *encoderCapacity)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_ENCODER));
    NVSIM_NONNULL(encoderCapacity);
    if ((unsigned int)encoderQueryType > NVML_ENCODER_QUERY_AV1)
        return NVML_ERROR_INVALID_ARGUMENT;
    *encoderCapacity = 100; /* percent of the encoder free: nothing is encoding */
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFBCStats(nvmlDevice_t device, nvmlFBCStats_t *fbcStats)
{
    NVSIM_ENTER(device);
    NVSIM_TRY(nvsim_feature(g, NVSIM_FEAT_ENCODER));
    NVSIM_NONNULL(fbcStats);
    memset(fbcStats, 0, sizeof *fbcStats);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFBCSessions(nvmlDevice_t device, unsigned int *sessionCount,
                                      nvmlFBCSessionInfo_t *sessionInfo)
{
    NVSIM_ENTER(device);
    return no_sessions(g, sessionCount);
}
