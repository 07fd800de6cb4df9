/*
 * cuda.cu — the CUDA table backend: a table lives in device memory, and
 * every op is staged through pinned host memory onto one CUDA stream per
 * table, so the node needs no GPU thread of its own.
 *
 * Pipeline (docs/gpu.md draws it):
 *
 *   apply/restore   host: resolve repeated rows -> copy ids and values
 *                   into staging slot s (pinned, one of two) -> enqueue
 *                   H2D(s) -> record slot s's event -> enqueue the scatter
 *                   kernel -> return (no synchronisation).
 *                   Before writing slot s again the host waits on its
 *                   event, i.e. until the H2D that read it has finished:
 *                   while the device copies and scatters batch k, the host
 *                   fills the other slot with batch k+1; only when both
 *                   slots are in flight does the caller wait.
 *   gather          H2D ids -> gather kernel -> D2H rows -> synchronise
 *                   the stream -> copy out.  The same stream, so a gather
 *                   runs after every earlier apply, whole.
 *   checksum        synchronise, then D2H the table in slot-sized chunks
 *                   (double-buffered through the two slots) into an XXH3
 *                   streaming state: equal to the CPU backend's checksum
 *                   for equal bytes.
 *
 * Batches larger than a slot are cut into chunks; chunks of one batch run
 * in stream order.  Inside one kernel rows are written in no particular
 * order, so a chunk must not name a row twice: batches whose versions are
 * out of order are resolved whole on the host (gpu_batch_winners, as
 * cpu.c does); batches in order (the usual case) are checked per chunk
 * with the row bitmap and, only when a chunk repeats a row, reduced to
 * each row's last entry, which is the winner in an ordered batch.
 *
 * Errors: every CUDA call is checked.  Work that fails after an op has
 * returned (an apply's copy or kernel) is found by the next op on the
 * table (cudaStreamQuery or the event it waits on).  Any CUDA error
 * leaves the table's contents unknown, so the table is marked broken: the
 * error is logged once, with the runtime's text, and that op and every
 * later one return FR_ERR_GPU.  The owner frees it and builds a new one
 * from the host store.  Nothing here exits.
 *
 * Values arrive in the table's dtype (f16 already converted on the host by
 * fr_f32_to_f16_n), so the kernels move bytes and never convert.
 *
 * What is not here: the shared rules (gpu.c), device choice for "auto"
 * (gpu.c), the device probe (cuda_probe.cu).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <xxhash.h>

extern "C" {
#include "gpu/gpu_int.h"
}
#include "gpu/cuda_bench.h"
#include "gpu/cuda_int.h"

/* Bytes of each of the two pinned apply staging slots (and of their
 * device twins): ids and values of one chunk.  Also the chunk of a
 * checksum's D2H.  Override with -DFR_CUDA_STAGE_BYTES=... in
 * CMAKE_CUDA_FLAGS. */
#ifndef FR_CUDA_STAGE_BYTES
#define FR_CUDA_STAGE_BYTES (8u << 20)
#endif
/* Bytes of the gather staging buffer (ids, then the rows read back);
 * lookups are small, larger gathers take several round trips. */
#ifndef FR_CUDA_GATHER_BYTES
#define FR_CUDA_GATHER_BYTES (1u << 20)
#endif

/* A chunk's entry count reaches the kernels as a u32 (at most a slot's
 * bytes / 10), and a slot must hold the 16-byte pad before the values. */
static_assert(FR_CUDA_STAGE_BYTES >= 64 &&
		      (unsigned long long)FR_CUDA_STAGE_BYTES <= (1ull << 32),
	      "FR_CUDA_STAGE_BYTES: expected 64 bytes to 4 GiB");
static_assert(FR_CUDA_GATHER_BYTES >= 64 &&
		      (unsigned long long)FR_CUDA_GATHER_BYTES <= (1ull << 32),
	      "FR_CUDA_GATHER_BYTES: expected 64 bytes to 4 GiB");

/* Elements per row the kernels index: a lane steps c += 32 through a row
 * in a u32, which must not wrap (2^31 f32 elements: 8 GiB rows). */
#define CUDA_DIM_MAX (1u << 31)

#define CUDA_THREADS 256
#define CUDA_BLOCKS_PER_SM 4   /* grid guess if the occupancy query fails */
#define CUDA_UNROLL 4          /* rows each thread group has in flight */

struct cuda_slot {
	uint8_t *h_buf;      /* pinned: ids (u64), then values at 16-aligned */
	uint8_t *d_buf;      /* device twin, read by the kernel */
	cudaEvent_t copied;  /* the last transfer touching h_buf is done */
};

struct cuda_table {
	struct gpu_table_base base;
	int device;
	cudaStream_t stream;
	uint8_t *d_data;
	size_t bytes;
	/* Kernel shape: rows move as `per` elements of `vec` bytes, by
	 * groups of 2^gshift threads, at most max_blocks blocks. */
	unsigned vec;
	uint32_t per;
	uint32_t gshift;
	uint32_t max_blocks;
	struct cuda_slot slot[2];
	unsigned next;       /* the slot the next chunk uses */
	size_t stage_rows;   /* entries per apply chunk */
	size_t stage_bytes;  /* bytes of each slot */
	uint8_t *h_gather;
	uint8_t *d_gather;
	size_t gather_rows;
	size_t gather_bytes;
	struct gpu_rowset seen;
	bool broken;         /* a CUDA error: contents unknown, refuse ops */
	char why[192];       /* what broke it, for later refusals */
};

static const struct gpu_backend *cuda_backend_ptr(void);

static struct cuda_table *cuda_table(struct gpu_table *t)
{
	return (struct cuda_table *)t;
}

static size_t cuda_align16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

/* ------------------------------------------------------------------------
 * Kernels
 *
 * A chunk of m distinct rows; each row is `per` elements of type V (16,
 * 8, 4 or 2 bytes: the widest that divides the row, so every access is
 * aligned — the table is 256-aligned and value blocks 16-aligned).  A
 * group of 2^gshift lanes (<= a warp) moves one row, lanes on consecutive
 * elements so a warp's accesses coalesce; groups stride over the chunk
 * and keep CUDA_UNROLL rows' loads in flight before the stores.
 * ---------------------------------------------------------------------- */

template <typename V>
__global__ void __launch_bounds__(CUDA_THREADS)
cuda_scatter_kern(V *__restrict__ table, const uint64_t *__restrict__ ids,
		  const V *__restrict__ vals, uint32_t m, uint32_t per,
		  uint32_t gshift)
{
	const uint32_t g = 1u << gshift;
	const uint32_t lane = threadIdx.x & (g - 1);
	const uint32_t ngroups = (gridDim.x * blockDim.x) >> gshift;
	uint32_t base = (blockIdx.x * blockDim.x + threadIdx.x) >> gshift;

	for (; base < m; base += CUDA_UNROLL * ngroups) {
		uint64_t id[CUDA_UNROLL];
		bool ok[CUDA_UNROLL];

#pragma unroll
		for (int k = 0; k < CUDA_UNROLL; k++) {
			uint32_t r = base + (uint32_t)k * ngroups;

			ok[k] = r < m;
			id[k] = ok[k] ? ids[r] : 0;
		}
		for (uint32_t c = lane; c < per; c += g) {
			V v[CUDA_UNROLL];

#pragma unroll
			for (int k = 0; k < CUDA_UNROLL; k++)
				if (ok[k])
					v[k] = vals[(size_t)(base + (uint32_t)k * ngroups) *
						    per + c];
#pragma unroll
			for (int k = 0; k < CUDA_UNROLL; k++)
				if (ok[k])
					table[id[k] * per + c] = v[k];
		}
	}
}

template <typename V>
__global__ void __launch_bounds__(CUDA_THREADS)
cuda_gather_kern(const V *__restrict__ table, const uint64_t *__restrict__ ids,
		 V *__restrict__ out, uint32_t m, uint32_t per, uint32_t gshift)
{
	const uint32_t g = 1u << gshift;
	const uint32_t lane = threadIdx.x & (g - 1);
	const uint32_t ngroups = (gridDim.x * blockDim.x) >> gshift;
	uint32_t base = (blockIdx.x * blockDim.x + threadIdx.x) >> gshift;

	for (; base < m; base += CUDA_UNROLL * ngroups) {
		uint64_t id[CUDA_UNROLL];
		bool ok[CUDA_UNROLL];

#pragma unroll
		for (int k = 0; k < CUDA_UNROLL; k++) {
			uint32_t r = base + (uint32_t)k * ngroups;

			ok[k] = r < m;
			id[k] = ok[k] ? ids[r] : 0;
		}
		for (uint32_t c = lane; c < per; c += g) {
			V v[CUDA_UNROLL];

#pragma unroll
			for (int k = 0; k < CUDA_UNROLL; k++)
				if (ok[k])
					v[k] = table[id[k] * per + c];
#pragma unroll
			for (int k = 0; k < CUDA_UNROLL; k++)
				if (ok[k])
					out[(size_t)(base + (uint32_t)k * ngroups) *
					    per + c] = v[k];
		}
	}
}

/* The kernel for t's element width; scatter or gather. */
static const void *cuda_kernel(const struct cuda_table *t, bool scatter)
{
	switch (t->vec) {
	case 16:
		return scatter ? (const void *)cuda_scatter_kern<uint4>
			       : (const void *)cuda_gather_kern<uint4>;
	case 8:
		return scatter ? (const void *)cuda_scatter_kern<uint2>
			       : (const void *)cuda_gather_kern<uint2>;
	case 4:
		return scatter ? (const void *)cuda_scatter_kern<uint32_t>
			       : (const void *)cuda_gather_kern<uint32_t>;
	default:
		return scatter ? (const void *)cuda_scatter_kern<uint16_t>
			       : (const void *)cuda_gather_kern<uint16_t>;
	}
}

/* Enqueue one kernel over m rows on t's stream: scatter d_rows (m rows,
 * packed) into the table at d_ids, or gather the table at d_ids into
 * d_rows.  cudaLaunchKernel returns this launch's own error, so no stale
 * "last error" from elsewhere on the thread is picked up. */
static cudaError_t cuda_launch(const struct cuda_table *t, bool scatter,
			       const void *d_ids, void *d_rows, uint32_t m)
{
	uint32_t per_block = CUDA_THREADS >> t->gshift;
	uint64_t blocks = ((uint64_t)m + per_block - 1) / per_block;
	void *table = t->d_data, *ids = (void *)d_ids, *rows = d_rows;
	uint32_t per = t->per, gshift = t->gshift;
	void *args[6] = { &table, &ids, &rows, &m, &per, &gshift };

	if (blocks > t->max_blocks)
		blocks = t->max_blocks;
	return cudaLaunchKernel(cuda_kernel(t, scatter),
				dim3((unsigned)blocks), dim3(CUDA_THREADS),
				args, 0, t->stream);
}

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

/* A CUDA call on table t failed: the table is broken from now on.  Log
 * the runtime's text once (later ops are refused before they reach
 * CUDA) and return FR_ERR_GPU with it in the detail. */
static enum fr_err cuda_fail(struct cuda_table *t, const char *op,
			     const char *call, cudaError_t ce)
{
	/* Clear the thread's last-error slot; a sticky error stays in the
	 * context whatever we do, and every table will meet it. */
	(void)cudaGetLastError();
	t->broken = true;
	snprintf(t->why, sizeof(t->why), "%s: %s (%s)", call,
		 cudaGetErrorString(ce), cudaGetErrorName(ce));
	fr_log(FR_LOG_ERROR, "gpu",
	       "table '%s' (cuda device %d): %s: %s; the table is unusable until re-created",
	       t->base.name, t->device, op, t->why);
	return fr_fail(FR_ERR_GPU, "table '%s': %s: CUDA error in %s",
		       t->base.name, op, t->why);
}

/* Not a CUDA error, but a batch cut short after some chunks were queued
 * leaves the table mirroring no version of the store: broken as well. */
static enum fr_err cuda_fail_partial(struct cuda_table *t, const char *op,
				     enum fr_err e)
{
	t->broken = true;
	snprintf(t->why, sizeof(t->why), "a batch was cut short: %s",
		 fr_errmsg());
	fr_log(FR_LOG_ERROR, "gpu", "table '%s': %s: %s", t->base.name, op,
	       t->why);
	return fr_fail(e, "table '%s': %s: %s", t->base.name, op, t->why);
}

/* Every op starts here: refuse a broken table; make t's device current
 * for this thread (ops may come from different threads, one at a time);
 * surface a failure of earlier asynchronous work. */
static enum fr_err cuda_enter(struct cuda_table *t, const char *op)
{
	cudaError_t ce;

	if (t->broken)
		return fr_fail(FR_ERR_GPU,
			       "table '%s': %s: refused: an earlier CUDA error left the table unusable (%s); free and re-create it",
			       t->base.name, op, t->why);
	ce = cudaSetDevice(t->device);
	if (ce != cudaSuccess)
		return cuda_fail(t, op, "cudaSetDevice", ce);
	ce = cudaStreamQuery(t->stream);
	if (ce != cudaSuccess && ce != cudaErrorNotReady)
		return cuda_fail(t, op, "earlier work on the table's stream", ce);
	return FR_OK;
}

/* ------------------------------------------------------------------------
 * Apply and restore
 * ---------------------------------------------------------------------- */

/* Copy m entries into a slot: entry k is rows[k] / values + k * rb, or,
 * with idx, rows[idx[k]] / values + idx[k] * rb. */
static void cuda_copy_in(uint64_t *h_ids, uint8_t *h_vals,
			 const uint64_t *rows, const uint8_t *values,
			 const size_t *idx, size_t m, size_t rb)
{
	size_t k;

	if (!idx) {
		memcpy(h_ids, rows, m * sizeof(*h_ids));
		memcpy(h_vals, values, m * rb);
		return;
	}
	for (k = 0; k < m; k++) {
		h_ids[k] = rows[idx[k]];
		memcpy(h_vals + k * rb, values + idx[k] * rb, rb);
	}
}

/* Stage and enqueue one chunk of m entries (m <= stage_rows).  Without
 * idx, rows and values point at the chunk and, unless `distinct`, the
 * chunk is checked for repeats; with idx (distinct rows, from
 * gpu_batch_winners) they point at the whole batch. */
static enum fr_err cuda_chunk(struct cuda_table *t, const char *op,
			      const uint64_t *rows, const uint8_t *values,
			      const size_t *idx, size_t m, bool distinct)
{
	struct cuda_slot *s = &t->slot[t->next];
	size_t rb = t->base.row_bytes, voff, nwin;
	size_t *win = NULL;
	cudaError_t ce;
	enum fr_err e;

	/* Host-only work first, while the slot may still be in flight. */
	if (!idx && !distinct && m > 1 &&
	    gpu_rowset_has_dups(&t->seen, rows, m)) {
		/* In an ordered batch a row's last entry wins. */
		e = gpu_batch_winners(rows, NULL, m, &win, &nwin);
		if (e)
			return e;
		idx = win;
		m = nwin;
	}
	/* The H2D that last read this slot must be done before we write it:
	 * the only place an apply waits. */
	ce = cudaEventSynchronize(s->copied);
	if (ce != cudaSuccess) {
		free(win);
		return cuda_fail(t, op, "cudaEventSynchronize (staging slot)",
				 ce);
	}
	voff = cuda_align16(m * sizeof(uint64_t));
	cuda_copy_in((uint64_t *)s->h_buf, s->h_buf + voff, rows, values, idx,
		     m, rb);
	free(win);

	ce = cudaMemcpyAsync(s->d_buf, s->h_buf, voff + m * rb,
			     cudaMemcpyHostToDevice, t->stream);
	if (ce != cudaSuccess)
		return cuda_fail(t, op, "cudaMemcpyAsync (host to device)", ce);
	ce = cudaEventRecord(s->copied, t->stream);
	if (ce != cudaSuccess)
		return cuda_fail(t, op, "cudaEventRecord", ce);
	ce = cuda_launch(t, true, s->d_buf, s->d_buf + voff, (uint32_t)m);
	if (ce != cudaSuccess)
		return cuda_fail(t, op, "scatter kernel launch", ce);
	t->next ^= 1;
	return FR_OK;
}

/* Write a validated batch.  versions NULL: batch order decides (restore,
 * or an apply without versions). */
static enum fr_err cuda_put(struct cuda_table *t, const char *op,
			    const uint64_t *rows, const uint64_t *versions,
			    const uint8_t *values, size_t n)
{
	size_t rb = t->base.row_bytes, off, m, nwin;
	size_t *win = NULL;
	bool distinct = false;
	enum fr_err e = FR_OK;

	if (versions && n > 1 && !gpu_batch_in_order(versions, n)) {
		/* Out of order: a repeat's winner may sit in an earlier
		 * chunk than its loser, so resolve the whole batch. */
		if (gpu_rowset_has_dups(&t->seen, rows, n)) {
			e = gpu_batch_winners(rows, versions, n, &win, &nwin);
			if (e)
				return e;
			n = nwin;
		}
		distinct = true;
	}
	for (off = 0; off < n; off += m) {
		m = n - off < t->stage_rows ? n - off : t->stage_rows;
		if (win)
			e = cuda_chunk(t, op, rows, values, win + off, m, true);
		else
			e = cuda_chunk(t, op, rows + off, values + off * rb,
				       NULL, m, distinct);
		if (e)
			break;
	}
	free(win);
	if (e && !t->broken && off > 0)
		return cuda_fail_partial(t, op, e);
	return e;
}

static enum fr_err cuda_apply(struct gpu_table *gt, const uint64_t *rows,
			      const uint64_t *versions, const void *values,
			      size_t n)
{
	struct cuda_table *t = cuda_table(gt);
	enum fr_err e;

	e = cuda_enter(t, "apply");
	if (e)
		return e;
	e = gpu_rows_check(&t->base, rows, n);
	if (e)
		return e;
	return cuda_put(t, "apply", rows, versions, (const uint8_t *)values,
			n);
}

static enum fr_err cuda_restore(struct gpu_table *gt, const uint64_t *rows,
				const void *values, size_t n)
{
	struct cuda_table *t = cuda_table(gt);
	enum fr_err e;

	e = cuda_enter(t, "restore");
	if (e)
		return e;
	e = gpu_rows_check(&t->base, rows, n);
	if (e)
		return e;
	/* Unconditional, in batch order: a repeated row ends with its last
	 * entry, as on the CPU. */
	return cuda_put(t, "restore", rows, NULL, (const uint8_t *)values, n);
}

/* ------------------------------------------------------------------------
 * Gather and checksum
 * ---------------------------------------------------------------------- */

static enum fr_err cuda_gather(struct gpu_table *gt, const uint64_t *rows,
			       size_t n, void *out)
{
	struct cuda_table *t = cuda_table(gt);
	size_t rb = t->base.row_bytes, off, m, voff;
	uint8_t *o = (uint8_t *)out;
	cudaError_t ce;
	enum fr_err e;

	e = cuda_enter(t, "gather");
	if (e)
		return e;
	e = gpu_rows_check(&t->base, rows, n);
	if (e)
		return e;
	for (off = 0; off < n; off += m) {
		m = n - off < t->gather_rows ? n - off : t->gather_rows;
		voff = cuda_align16(m * sizeof(uint64_t));
		memcpy(t->h_gather, rows + off, m * sizeof(uint64_t));
		ce = cudaMemcpyAsync(t->d_gather, t->h_gather, voff,
				     cudaMemcpyHostToDevice, t->stream);
		if (ce != cudaSuccess)
			return cuda_fail(t, "gather",
					 "cudaMemcpyAsync (host to device)", ce);
		ce = cuda_launch(t, false, t->d_gather, t->d_gather + voff,
				 (uint32_t)m);
		if (ce != cudaSuccess)
			return cuda_fail(t, "gather", "gather kernel launch",
					 ce);
		ce = cudaMemcpyAsync(t->h_gather + voff, t->d_gather + voff,
				     m * rb, cudaMemcpyDeviceToHost, t->stream);
		if (ce != cudaSuccess)
			return cuda_fail(t, "gather",
					 "cudaMemcpyAsync (device to host)", ce);
		/* Also waits for every apply queued before: none is seen
		 * in part. */
		ce = cudaStreamSynchronize(t->stream);
		if (ce != cudaSuccess)
			return cuda_fail(t, "gather", "cudaStreamSynchronize",
					 ce);
		memcpy(o + off * rb, t->h_gather + voff, m * rb);
	}
	return FR_OK;
}

/* Enqueue the D2H of checksum chunk k into slot k % 2. */
static cudaError_t cuda_sum_chunk(struct cuda_table *t, size_t k,
				  size_t *len)
{
	struct cuda_slot *s = &t->slot[k % 2];
	size_t off = k * t->stage_bytes;
	cudaError_t ce;

	*len = t->bytes - off < t->stage_bytes ? t->bytes - off
					       : t->stage_bytes;
	ce = cudaMemcpyAsync(s->h_buf, t->d_data + off, *len,
			     cudaMemcpyDeviceToHost, t->stream);
	if (ce == cudaSuccess)
		ce = cudaEventRecord(s->copied, t->stream);
	return ce;
}

static enum fr_err cuda_checksum(struct gpu_table *gt, uint64_t *out)
{
	struct cuda_table *t = cuda_table(gt);
	size_t nch, k, len[2] = { 0, 0 };
	XXH3_state_t *st;
	cudaError_t ce;
	enum fr_err e;

	e = cuda_enter(t, "checksum");
	if (e)
		return e;
	ce = cudaStreamSynchronize(t->stream);
	if (ce != cudaSuccess)
		return cuda_fail(t, "checksum", "cudaStreamSynchronize", ce);
	st = XXH3_createState();
	if (!st || XXH3_64bits_reset(st) != XXH_OK) {
		XXH3_freeState(st);
		return fr_fail(FR_ERR_NOMEM, "table '%s': checksum: out of memory",
			       t->base.name);
	}
	/* Slot k % 2 takes chunk k; chunk k+1 is in flight while chunk k is
	 * hashed.  Both slots are idle after the synchronise above. */
	nch = (t->bytes + t->stage_bytes - 1) / t->stage_bytes;
	ce = cuda_sum_chunk(t, 0, &len[0]);
	for (k = 0; k < nch && ce == cudaSuccess; k++) {
		if (k + 1 < nch) {
			ce = cuda_sum_chunk(t, k + 1, &len[(k + 1) % 2]);
			if (ce != cudaSuccess)
				break;
		}
		ce = cudaEventSynchronize(t->slot[k % 2].copied);
		if (ce != cudaSuccess)
			break;
		XXH3_64bits_update(st, t->slot[k % 2].h_buf, len[k % 2]);
	}
	if (ce != cudaSuccess) {
		XXH3_freeState(st);
		return cuda_fail(t, "checksum", "device to host copy", ce);
	}
	*out = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return FR_OK;
}

/* ------------------------------------------------------------------------
 * Table lifetime
 * ---------------------------------------------------------------------- */

static void cuda_table_free(struct gpu_table *gt)
{
	struct cuda_table *t = cuda_table(gt);
	int i;

	if (!t)
		return;
	/* Best effort: on a broken context these fail, and there is
	 * nothing better to do than let go of what we hold. */
	(void)cudaSetDevice(t->device);
	if (t->stream)
		(void)cudaStreamSynchronize(t->stream);
	for (i = 0; i < 2; i++) {
		if (t->slot[i].copied)
			(void)cudaEventDestroy(t->slot[i].copied);
		(void)cudaFreeHost(t->slot[i].h_buf);
		(void)cudaFree(t->slot[i].d_buf);
	}
	(void)cudaFreeHost(t->h_gather);
	(void)cudaFree(t->d_gather);
	(void)cudaFree(t->d_data);
	if (t->stream)
		(void)cudaStreamDestroy(t->stream);
	(void)cudaGetLastError();
	gpu_rowset_fini(&t->seen);
	free(t);
}

/* Kernel shape and staging sizes for rows of rb bytes in a table of
 * `rows` rows.  A slot never holds more entries than the table has rows
 * (a small table gets small buffers; a batch that repeats rows just takes
 * more chunks). */
static void cuda_size(struct cuda_table *t, size_t rb, uint64_t rows, int sms)
{
	uint32_t g = 1;

	t->vec = rb % 16 == 0 ? 16 : rb % 8 == 0 ? 8 : rb % 4 == 0 ? 4 : 2;
	t->per = (uint32_t)(rb / t->vec);   /* <= dim: fits */
	t->gshift = 0;
	while (g < t->per && g < 32) {
		g <<= 1;
		t->gshift++;
	}
	t->max_blocks = (uint32_t)(sms > 0 ? sms : 1) * CUDA_BLOCKS_PER_SM;

	t->stage_rows = (FR_CUDA_STAGE_BYTES - 16) / (sizeof(uint64_t) + rb);
	if (t->stage_rows == 0)
		t->stage_rows = 1;
	if (t->stage_rows > rows)
		t->stage_rows = (size_t)rows;
	t->stage_bytes = cuda_align16(t->stage_rows * sizeof(uint64_t)) +
			 t->stage_rows * rb;
	t->gather_rows = (FR_CUDA_GATHER_BYTES - 16) / (sizeof(uint64_t) + rb);
	if (t->gather_rows == 0)
		t->gather_rows = 1;
	if (t->gather_rows > rows)
		t->gather_rows = (size_t)rows;
	t->gather_bytes = cuda_align16(t->gather_rows * sizeof(uint64_t)) +
			  t->gather_rows * rb;
}

/* A grid that is resident at once (a persistent grid-stride loop, no
 * second wave): blocks per SM from the occupancy calculator for this
 * table's scatter kernel (48 registers on sm_90 gives 5 of 256 threads;
 * capping registers at 32 for 8 blocks made ptxas spill).  The gather
 * kernel has no more registers, so the same grid serves it.  On a failed
 * query the CUDA_BLOCKS_PER_SM guess stands. */
static void cuda_size_grid(struct cuda_table *t, int sms)
{
	int nb = 0;

	if (sms > 0 &&
	    cudaOccupancyMaxActiveBlocksPerMultiprocessor(
		    &nb, cuda_kernel(t, true), CUDA_THREADS, 0) == cudaSuccess &&
	    nb > 0)
		t->max_blocks = (uint32_t)sms * (uint32_t)nb;
	else
		(void)cudaGetLastError();
}

/* A CUDA failure while building table `t` (not yet returned to anyone):
 * log the runtime's text and say which call.  An allocation failure is a
 * refusal (`oom`: FR_ERR_TOOBIG for device memory, FR_ERR_NOMEM for
 * pinned host memory), not a broken device. */
static enum fr_err cuda_new_fail(const struct cuda_table *t, const char *call,
				 size_t bytes, cudaError_t ce, enum fr_err oom)
{
	char size[40] = "";

	(void)cudaGetLastError();
	if (bytes)
		snprintf(size, sizeof(size), " of %zu bytes", bytes);
	fr_log(ce == cudaErrorMemoryAllocation ? FR_LOG_WARN : FR_LOG_ERROR,
	       "gpu", "table '%s' (cuda device %d): %s%s: %s (%s)",
	       t->base.name, t->device, call, size, cudaGetErrorString(ce),
	       cudaGetErrorName(ce));
	if (ce == cudaErrorMemoryAllocation)
		return fr_fail(oom,
			       "table '%s': %s of %zu bytes on device %d failed: %s",
			       t->base.name, call, bytes, t->device,
			       cudaGetErrorString(ce));
	return fr_fail(FR_ERR_GPU, "table '%s': %s on device %d: CUDA error: %s",
		       t->base.name, call, t->device, cudaGetErrorString(ce));
}

static struct gpu_table *cuda_table_new(const struct gpu_table_desc *d,
					enum fr_err *err)
{
	struct gpu_table_desc dd = *d;
	struct cuda_table *t = NULL;
	size_t rb, bytes, free_b = 0, total_b = 0;
	uint64_t need, staging;
	char budget[48];
	int ndev = 0, sms = 0, i;
	cudaError_t ce;
	enum fr_err e;

	/* The budget is checked below, beside the device's free memory, so
	 * one message names both. */
	dd.budget_bytes = 0;
	e = gpu_desc_check(&dd, &rb, &bytes);
	if (e)
		goto out;
	if (d->dim > CUDA_DIM_MAX) {
		e = fr_fail(FR_ERR_INVAL,
			    "table '%s': field 'dim': expected at most %u elements per row on the cuda backend, got %u",
			    d->name && d->name[0] ? d->name : "(unnamed)",
			    CUDA_DIM_MAX, d->dim);
		goto out;
	}
	t = (struct cuda_table *)calloc(1, sizeof(*t));
	if (!t) {
		e = fr_fail(FR_ERR_NOMEM, "table '%s': out of memory",
			    d->name ? d->name : "(unnamed)");
		goto out;
	}
	gpu_base_init(&t->base, cuda_backend_ptr(), d, rb);
	t->device = d->device;
	t->bytes = bytes;

	/* The probe logs, once, why there is no device. */
	ndev = gpu_cuda_device_count();
	if (ndev == 0) {
		e = fr_fail(FR_ERR_UNSUPPORTED,
			    "table '%s': no CUDA device is present",
			    t->base.name);
		goto out_free;
	}
	if (d->device < 0 || d->device >= ndev) {
		e = fr_fail(FR_ERR_INVAL,
			    "table '%s': field 'device': expected a CUDA device ordinal in [0, %d), got %d",
			    t->base.name, ndev, d->device);
		goto out_free;
	}
	ce = cudaSetDevice(d->device);
	if (ce == cudaSuccess)
		ce = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount,
					    d->device);
	if (ce == cudaSuccess)
		ce = cudaMemGetInfo(&free_b, &total_b);
	if (ce != cudaSuccess) {
		e = cuda_new_fail(t, "cudaSetDevice/cudaMemGetInfo", 0, ce,
				  FR_ERR_GPU);
		goto out_free;
	}
	cuda_size(t, rb, d->rows, sms);
	cuda_size_grid(t, sms);
	staging = 2 * (uint64_t)t->stage_bytes + t->gather_bytes;
	if (!fr_add_size(bytes, staging, &need))
		need = UINT64_MAX;
	if (d->budget_bytes)
		snprintf(budget, sizeof(budget), "budget %llu bytes",
			 (unsigned long long)d->budget_bytes);
	else
		snprintf(budget, sizeof(budget), "no budget set");
	if ((d->budget_bytes && bytes > d->budget_bytes) || need > free_b) {
		e = fr_fail(FR_ERR_TOOBIG,
			    "table '%s': needs %llu bytes (%llu rows x %zu bytes) plus %llu bytes of staging; device %d has %llu bytes free (%s)",
			    t->base.name, (unsigned long long)bytes,
			    (unsigned long long)d->rows, rb,
			    (unsigned long long)staging, d->device,
			    (unsigned long long)free_b, budget);
		goto out_free;
	}

	ce = cudaStreamCreateWithFlags(&t->stream, cudaStreamNonBlocking);
	if (ce != cudaSuccess) {
		e = cuda_new_fail(t, "cudaStreamCreate", 0, ce, FR_ERR_GPU);
		goto out_free;
	}
	ce = cudaMalloc((void **)&t->d_data, bytes);
	if (ce != cudaSuccess) {
		e = cuda_new_fail(t, "cudaMalloc (table)", bytes, ce,
				  FR_ERR_TOOBIG);
		goto out_free;
	}
	for (i = 0; i < 2; i++) {
		struct cuda_slot *s = &t->slot[i];

		ce = cudaMalloc((void **)&s->d_buf, t->stage_bytes);
		if (ce != cudaSuccess) {
			e = cuda_new_fail(t, "cudaMalloc (staging)",
					  t->stage_bytes, ce, FR_ERR_TOOBIG);
			goto out_free;
		}
		ce = cudaHostAlloc((void **)&s->h_buf, t->stage_bytes,
				   cudaHostAllocDefault);
		if (ce != cudaSuccess) {
			e = cuda_new_fail(t, "cudaHostAlloc (staging)",
					  t->stage_bytes, ce, FR_ERR_NOMEM);
			goto out_free;
		}
		ce = cudaEventCreateWithFlags(&s->copied,
					      cudaEventDisableTiming);
		if (ce != cudaSuccess) {
			e = cuda_new_fail(t, "cudaEventCreate", 0, ce,
					  FR_ERR_GPU);
			goto out_free;
		}
	}
	ce = cudaMalloc((void **)&t->d_gather, t->gather_bytes);
	if (ce != cudaSuccess) {
		e = cuda_new_fail(t, "cudaMalloc (gather staging)",
				  t->gather_bytes, ce, FR_ERR_TOOBIG);
		goto out_free;
	}
	ce = cudaHostAlloc((void **)&t->h_gather, t->gather_bytes,
			   cudaHostAllocDefault);
	if (ce != cudaSuccess) {
		e = cuda_new_fail(t, "cudaHostAlloc (gather staging)",
				  t->gather_bytes, ce, FR_ERR_NOMEM);
		goto out_free;
	}
	e = gpu_rowset_init(&t->seen, d->rows);
	if (e)
		goto out_free;
	/* Zero, and wait, so a device fault shows here, not later. */
	ce = cudaMemsetAsync(t->d_data, 0, bytes, t->stream);
	if (ce == cudaSuccess)
		ce = cudaStreamSynchronize(t->stream);
	if (ce != cudaSuccess) {
		e = cuda_new_fail(t, "cudaMemset (zero the table)", bytes,
				  ce, FR_ERR_GPU);
		goto out_free;
	}
	fr_log(FR_LOG_DEBUG, "gpu",
	       "table '%s': %zu bytes on cuda device %d, %zu-byte rows as %u x %u B, staging 2 x %zu + %zu bytes",
	       t->base.name, bytes, t->device, rb, t->per, t->vec,
	       t->stage_bytes, t->gather_bytes);
	*err = FR_OK;
	return (struct gpu_table *)t;

out_free:
	cuda_table_free((struct gpu_table *)t);
out:
	*err = e;
	return NULL;
}

/* ------------------------------------------------------------------------
 * Backend table
 * ---------------------------------------------------------------------- */

/* Positional: C++ (nvcc) has no designated initialisers before C++20. */
static const struct gpu_backend cuda_backend = {
	"cuda",           /* name */
	cuda_table_new,   /* table_new */
	cuda_table_free,  /* table_free */
	cuda_apply,       /* apply */
	cuda_gather,      /* gather */
	cuda_restore,     /* restore */
	cuda_checksum,    /* checksum */
};

static const struct gpu_backend *cuda_backend_ptr(void)
{
	return &cuda_backend;
}

extern "C" const struct gpu_backend *gpu_cuda_backend(void)
{
	return &cuda_backend;
}

/* ------------------------------------------------------------------------
 * Benchmark helpers (gpu/cuda_bench.h)
 * ---------------------------------------------------------------------- */

static enum fr_err cuda_bench_fail(const char *what, cudaError_t ce)
{
	(void)cudaGetLastError();
	fr_log(FR_LOG_ERROR, "gpu", "bench: %s: %s (%s)", what,
	       cudaGetErrorString(ce), cudaGetErrorName(ce));
	return fr_fail(FR_ERR_GPU, "%s: CUDA error: %s", what,
		       cudaGetErrorString(ce));
}

extern "C" enum fr_err gpu_cuda_bench_device_name(int device, char *buf,
						   size_t len)
{
	cudaDeviceProp p;
	cudaError_t ce;

	if (len)
		buf[0] = '\0';
	ce = cudaGetDeviceProperties(&p, device);
	if (ce != cudaSuccess)
		return cuda_bench_fail("cudaGetDeviceProperties", ce);
	snprintf(buf, len, "%s", p.name);
	return FR_OK;
}

struct gpu_cuda_bench {
	int device;
	size_t bytes;
	cudaStream_t stream;
	void *h_buf;
	void *d_buf;
};

extern "C" void gpu_cuda_bench_free(struct gpu_cuda_bench *b)
{
	if (!b)
		return;
	(void)cudaSetDevice(b->device);
	if (b->stream) {
		(void)cudaStreamSynchronize(b->stream);
		(void)cudaStreamDestroy(b->stream);
	}
	(void)cudaFreeHost(b->h_buf);
	(void)cudaFree(b->d_buf);
	(void)cudaGetLastError();
	free(b);
}

extern "C" struct gpu_cuda_bench *gpu_cuda_bench_new(int device, size_t bytes,
						     enum fr_err *err)
{
	struct gpu_cuda_bench *b;
	cudaError_t ce;

	b = (struct gpu_cuda_bench *)calloc(1, sizeof(*b));
	if (!b) {
		*err = fr_fail(FR_ERR_NOMEM, "bench: out of memory");
		return NULL;
	}
	b->device = device;
	b->bytes = bytes;
	ce = cudaSetDevice(device);
	if (ce == cudaSuccess)
		ce = cudaStreamCreateWithFlags(&b->stream,
					       cudaStreamNonBlocking);
	if (ce == cudaSuccess)
		ce = cudaHostAlloc(&b->h_buf, bytes, cudaHostAllocDefault);
	if (ce == cudaSuccess)
		ce = cudaMalloc(&b->d_buf, bytes);
	if (ce != cudaSuccess) {
		*err = cuda_bench_fail("H2D baseline buffers", ce);
		gpu_cuda_bench_free(b);
		return NULL;
	}
	/* Touch every page, so no first-use cost lands in a timed copy. */
	memset(b->h_buf, 0x5a, bytes);
	*err = FR_OK;
	return b;
}

extern "C" void *gpu_cuda_bench_host(struct gpu_cuda_bench *b)
{
	return b->h_buf;
}

extern "C" enum fr_err gpu_cuda_bench_h2d(struct gpu_cuda_bench *b,
					  size_t bytes, size_t calls,
					  uint64_t *ns)
{
	uint64_t t0;
	cudaError_t ce = cudaSuccess;
	size_t c;

	if (bytes > b->bytes)
		return fr_fail(FR_ERR_RANGE,
			       "bench: H2D of %zu bytes: the buffer holds %zu",
			       bytes, b->bytes);
	ce = cudaSetDevice(b->device);
	if (ce != cudaSuccess)
		return cuda_bench_fail("cudaSetDevice", ce);
	t0 = fr_mono_ns();
	for (c = 0; c < calls && ce == cudaSuccess; c++)
		ce = cudaMemcpyAsync(b->d_buf, b->h_buf, bytes,
				     cudaMemcpyHostToDevice, b->stream);
	if (ce == cudaSuccess)
		ce = cudaStreamSynchronize(b->stream);
	*ns = fr_mono_ns() - t0;
	if (ce != cudaSuccess)
		return cuda_bench_fail("H2D baseline copy", ce);
	return FR_OK;
}

extern "C" enum fr_err gpu_cuda_bench_scatter(struct gpu_table *gt,
					      const uint64_t *rows, size_t n,
					      size_t reps, uint64_t *ns)
{
	struct cuda_table *t = cuda_table(gt);
	cudaEvent_t ev[2] = { NULL, NULL };
	uint8_t *d_ids = NULL, *d_vals = NULL, *h_ids = NULL;
	size_t rb, r, off, m;
	float ms = 0;
	cudaError_t ce;
	enum fr_err e;

	*ns = 0;
	if (!gt || gpu_table_backend(gt) != &cuda_backend)
		return fr_fail(FR_ERR_INVAL,
			       "bench: scatter: the table is not a cuda table");
	e = cuda_enter(t, "bench scatter");
	if (e)
		return e;
	e = gpu_rows_check(&t->base, rows, n);
	if (e || n == 0)
		return e;
	rb = t->base.row_bytes;
	/* Buffers first: failing to get them leaves the table as it was. */
	ce = cudaMalloc((void **)&d_ids, n * sizeof(uint64_t));
	if (ce == cudaSuccess)
		ce = cudaMalloc((void **)&d_vals, n * rb);
	if (ce == cudaSuccess)
		ce = cudaHostAlloc((void **)&h_ids, n * sizeof(uint64_t),
				   cudaHostAllocDefault);
	if (ce == cudaSuccess)
		ce = cudaEventCreate(&ev[0]);
	if (ce == cudaSuccess)
		ce = cudaEventCreate(&ev[1]);
	if (ce != cudaSuccess) {
		e = cuda_bench_fail("bench scatter buffers", ce);
		goto out_free;
	}
	/* The ids go on the table's stream, from pinned memory: a plain
	 * cudaMemcpy from pageable memory may return before its DMA has
	 * landed, and nothing orders a non-blocking stream after it. */
	memcpy(h_ids, rows, n * sizeof(uint64_t));
	ce = cudaMemcpyAsync(d_ids, h_ids, n * sizeof(uint64_t),
			     cudaMemcpyHostToDevice, t->stream);
	if (ce == cudaSuccess)
		ce = cudaMemsetAsync(d_vals, 0x5a, n * rb, t->stream);
	if (ce == cudaSuccess)
		ce = cudaEventRecord(ev[0], t->stream);
	/* The chunks apply would launch, each a kernel of its own. */
	for (r = 0; r < reps && ce == cudaSuccess; r++)
		for (off = 0; off < n && ce == cudaSuccess; off += m) {
			m = n - off < t->stage_rows ? n - off : t->stage_rows;
			ce = cuda_launch(t, true, d_ids + off * sizeof(uint64_t),
					 d_vals + off * rb, (uint32_t)m);
		}
	if (ce == cudaSuccess)
		ce = cudaEventRecord(ev[1], t->stream);
	if (ce == cudaSuccess)
		ce = cudaEventSynchronize(ev[1]);
	if (ce == cudaSuccess)
		ce = cudaEventElapsedTime(&ms, ev[0], ev[1]);
	if (ce == cudaSuccess)
		*ns = (uint64_t)((double)ms * 1e6);
	else
		e = cuda_fail(t, "bench scatter", "scatter kernel timing", ce);
out_free:
	/* Nothing may still read what is freed below. */
	(void)cudaStreamSynchronize(t->stream);
	if (ev[0])
		(void)cudaEventDestroy(ev[0]);
	if (ev[1])
		(void)cudaEventDestroy(ev[1]);
	(void)cudaFreeHost(h_ids);
	(void)cudaFree(d_vals);
	(void)cudaFree(d_ids);
	(void)cudaGetLastError();
	return e;
}
