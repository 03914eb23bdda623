/*
 * Driver gating at run time: a function that first shipped in a later driver branch than
 * header.driver_major answers NVML_ERROR_FUNCTION_NOT_FOUND, the code pynvml raises (as
 * NVMLError_FunctionNotFound) when the symbol is missing from an older libnvidia-ml.so.1.
 * The table is generated from nvsim/gating.py, which also hides those symbols in the
 * per-branch library variants, so both kinds of gating agree by construction.
 */
#include <string.h>

#include "nvsim_internal.h"

struct gate {
    const char *name;
    unsigned int branch;
};

#include "nvsim_gates.h"

unsigned int nvsim_gate_branch(const char *fn)
{
    for (size_t i = 0; i < sizeof gates / sizeof gates[0]; i++)
        if (strcmp(gates[i].name, fn) == 0)
            return gates[i].branch;
    return 0;
}

nvmlReturn_t nvsim_gate(const char *fn, int *cache)
{
    int branch = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (branch < 0) {
        branch = (int)nvsim_gate_branch(fn);
        __atomic_store_n(cache, branch, __ATOMIC_RELAXED);
    }
    const nvsim_state_t *st = nvsim_st();
    if (branch != 0 && st != NULL && st->header.driver_major < (unsigned int)branch)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    return NVML_SUCCESS;
}
