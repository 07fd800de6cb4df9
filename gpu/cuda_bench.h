/*
 * cuda_bench.h — the few CUDA runtime calls bench/bench_apply.c needs for
 * its baselines, behind plain C so the bench stays C.  Private to gpu/ and
 * bench/; nothing in the node uses it.
 *
 * Every function exists in every build: without CUDA (FRESHET_CUDA=OFF or
 * no nvcc) each returns FR_ERR_UNSUPPORTED (NULL for _new) with a detail
 * saying so.  CUDA errors come back as FR_ERR_GPU with the runtime's text
 * in the detail, as everywhere in gpu/.
 *
 * Threads: as a table, one thread at a time per object.
 */
#ifndef FRESHET_GPU_CUDA_BENCH_H
#define FRESHET_GPU_CUDA_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "gpu/gpu.h"

/* The name of CUDA device `device` (cudaGetDeviceProperties), copied into
 * buf (len bytes, NUL-terminated, truncated if need be). */
enum fr_err gpu_cuda_bench_device_name(int device, char *buf, size_t len);

/* The H2D baseline: a pinned host buffer and a device buffer of `bytes`
 * each on `device`, and a stream of their own.  Free with _free (NULL
 * does nothing). */
struct gpu_cuda_bench;
struct gpu_cuda_bench *gpu_cuda_bench_new(int device, size_t bytes,
					  enum fr_err *err);
void gpu_cuda_bench_free(struct gpu_cuda_bench *b);

/* The pinned host buffer (bytes long, borrowed until _free), so a caller
 * can time a host memcpy into pinned memory, the staging cost of apply. */
void *gpu_cuda_bench_host(struct gpu_cuda_bench *b);

/* `calls` cudaMemcpyAsync H2D copies of `bytes` (<= the buffer) from the
 * pinned buffer, back to back on the object's stream, then one stream
 * synchronize.  *ns: host wall time of the whole, as bench_apply times an
 * apply sample. */
enum fr_err gpu_cuda_bench_h2d(struct gpu_cuda_bench *b, size_t bytes,
			       size_t calls, uint64_t *ns);

/* The cuda backend's scatter kernel alone on table t: rows[0..n) (distinct,
 * < the table's rows) and a byte pattern are put in device memory first
 * (not timed); then `reps` passes, each launching the kernel over the
 * batch in the chunks apply uses, are timed with CUDA events on the
 * table's stream.  *ns: elapsed device time of all passes.  The table's
 * rows named are overwritten with the pattern.  FR_ERR_INVAL when t is
 * not a cuda table. */
enum fr_err gpu_cuda_bench_scatter(struct gpu_table *t, const uint64_t *rows,
				   size_t n, size_t reps, uint64_t *ns);

#ifdef __cplusplus
}
#endif

#endif /* FRESHET_GPU_CUDA_BENCH_H */
