/*
 * gpu_vectors.h — the shared test vectors every table backend must pass
 * byte-for-byte (STYLE: "shared vectors that every table backend must
 * pass").  Expected bytes come from a tiny reference model in plain
 * arrays, not from any backend, so the CPU backend is checked as strictly
 * as the CUDA one will be.
 *
 * Running them on another backend is one call, e.g. for CUDA:
 *     return gpu_vectors_run(gpu_backend_cuda()) == 0 ? 0 : 1;
 * after skipping (exit 77) when gpu_cuda_device_count() is 0.
 */
#ifndef FRESHET_TEST_GPU_VECTORS_H
#define FRESHET_TEST_GPU_VECTORS_H

#include <CUnit/CUnit.h>

#include "gpu/gpu.h"

/* Add the vectors for be to the current CUnit registry as one suite named
 * "vectors/<be->name>".  The tests read be from a static, so one backend
 * per registry run.  Returns the suite, or NULL on a CUnit error. */
CU_pSuite gpu_vectors_add_suite(const struct gpu_backend *be);

/* Whole run: create a registry, add the vectors for be, run them verbosely,
 * clean up.  Returns the number of failed assertions (0: all passed), or
 * -1 when CUnit itself failed or be is NULL. */
int gpu_vectors_run(const struct gpu_backend *be);

#endif /* FRESHET_TEST_GPU_VECTORS_H */
