/*
 * Event sets.  Python appends events to each GPU's ring (`events`, `event_head` = total
 * ever appended); an event set keeps, per registered GPU, the mask of wanted types and a
 * cursor into that ring.  Registration starts the cursor at the current head, so a set sees
 * only events appended after it registered, each exactly once and in order.  A reader that
 * falls more than a ring behind skips to the oldest event still in the ring.  Waiting polls
 * the heads every 5 ms until an event arrives or the timeout passes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "nvsim_internal.h"

#define EVENT_SET_MAGIC 0x4e56534d45565453ULL /* "NVSMEVTS" */
#define POLL_INTERVAL_MS 5u

struct registration {
    unsigned long long mask;
    uint64_t next; /* next ring sequence number to look at */
    int active;
};

struct nvmlEventSet_st {
    unsigned long long magic;
    pthread_mutex_t lock;
    struct registration regs[NVSIM_MAX_GPUS];
};

static int valid_set(nvmlEventSet_t set)
{
    return set != NULL && set->magic == EVENT_SET_MAGIC;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    NVSIM_ENTER_SYSTEM();
    NVSIM_NONNULL(set);
    struct nvmlEventSet_st *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NVML_ERROR_MEMORY;
    s->magic = EVENT_SET_MAGIC;
    pthread_mutex_init(&s->lock, NULL);
    *set = s;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    NVSIM_ENTER_SYSTEM();
    if (!valid_set(set))
        return NVML_ERROR_INVALID_ARGUMENT;
    set->magic = 0;
    pthread_mutex_destroy(&set->lock);
    free(set);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long *eventTypes)
{
    NVSIM_ENTER(device);
    NVSIM_NONNULL(eventTypes);
    *eventTypes = NVSIM_SUPPORTED_EVENTS;
    return NVML_SUCCESS;
}

static uint64_t ring_head(const nvsim_gpu_t *g)
{
    return __atomic_load_n(&g->event_head, __ATOMIC_ACQUIRE);
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes,
                                      nvmlEventSet_t set)
{
    NVSIM_ENTER(device);
    if (!valid_set(set))
        return NVML_ERROR_INVALID_ARGUMENT;
    if (eventTypes == 0 || (eventTypes & ~(unsigned long long)NVSIM_SUPPORTED_EVENTS) != 0)
        return NVML_ERROR_NOT_SUPPORTED;
    struct registration *r = &set->regs[nvsim_index_of(device)];
    pthread_mutex_lock(&set->lock);
    if (!r->active) {
        r->next = ring_head(g);
        r->active = 1;
    }
    r->mask |= eventTypes;
    pthread_mutex_unlock(&set->lock);
    return NVML_SUCCESS;
}

/* Take the next wanted event of any registered GPU; 1 if one was found. */
static int take_event(nvmlEventSet_t set, nvmlEventData_t *data)
{
    const nvsim_state_t *st = nvsim_st();
    if (st == NULL)
        return 0;
    int found = 0;
    pthread_mutex_lock(&set->lock);
    unsigned int count = nvsim_gpu_count(st);
    for (unsigned int i = 0; i < count && !found; i++) {
        struct registration *r = &set->regs[i];
        if (!r->active)
            continue;
        const nvsim_gpu_t *g = &st->gpus[i];
        uint64_t head = ring_head(g);
        if (r->next > head) /* the ring was reset (a new `nvsim up`) */
            r->next = head;
        else if (head - r->next > NVSIM_EVENT_RING)
            r->next = head - NVSIM_EVENT_RING;
        while (r->next < head) {
            const nvsim_event_t *slot = &g->events[r->next % NVSIM_EVENT_RING];
            nvsim_event_t ev = {__atomic_load_n(&slot->type, __ATOMIC_RELAXED),
                                __atomic_load_n(&slot->data, __ATOMIC_RELAXED), 0};
            r->next++;
            if ((ev.type & r->mask) == 0)
                continue;
            data->device = &nvsim_devices[i];
            data->eventType = ev.type;
            data->eventData = ev.type == NVSIM_EVENT_XID_CRITICAL ? ev.data : 0;
            data->gpuInstanceId = 0xFFFFFFFFu;
            data->computeInstanceId = 0xFFFFFFFFu;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&set->lock);
    return found;
}

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

nvmlReturn_t nvsim_event_wait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
    NVSIM_TRY(nvsim_check_init());
    if (!valid_set(set) || data == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        if (take_event(set, data))
            return NVML_SUCCESS;
        if (nvsim_check_init() != NVML_SUCCESS)
            return NVML_ERROR_UNINITIALIZED;
        long long left = deadline - monotonic_ms();
        if (left <= 0)
            return NVML_ERROR_TIMEOUT;
        long long nap = left < POLL_INTERVAL_MS ? left : POLL_INTERVAL_MS;
        struct timespec ts = {0, (long)(nap * 1000000L)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
}

nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms)
{ /* _v2 */
    return nvsim_event_wait(set, data, timeoutms);
}
