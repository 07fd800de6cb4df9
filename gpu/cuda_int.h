/*
 * cuda_int.h — private to gpu/: how gpu.c reaches the CUDA backend that
 * cuda.cu defines.  Plain C declarations with C linkage, no CUDA type, so
 * gpu.c (C) and cuda.cu (C++ under nvcc) agree on them.
 *
 * What is not here: the backend's structs (private to cuda.cu) and the
 * benchmark helpers (gpu/cuda_bench.h).
 */
#ifndef FRESHET_GPU_CUDA_INT_H
#define FRESHET_GPU_CUDA_INT_H

#ifdef __cplusplus
extern "C" {
#endif

struct gpu_backend;

/* The CUDA backend's function table (static storage, never NULL).  Only
 * in builds with FRESHET_HAVE_CUDA; gpu_backend_cuda() returns it. */
const struct gpu_backend *gpu_cuda_backend(void);

#ifdef __cplusplus
}
#endif

#endif /* FRESHET_GPU_CUDA_INT_H */
