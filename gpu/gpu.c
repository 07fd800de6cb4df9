/*
 * gpu.c — the front door of the gpu/ module: choosing a backend, the
 * wrappers that dispatch through a table's backend, and the rules every
 * backend shares (descriptor checks, row-id checks, duplicate resolution).
 *
 * What is not here: moving bytes.  That is each backend's job (cpu.c,
 * and cuda.cu in builds with FRESHET_HAVE_CUDA; this file reaches the
 * latter only through cuda_int.h and probes for devices through
 * cuda_probe.cu, so that "auto" can say why it chose the CPU).  Without
 * CUDA, the benchmark helpers of cuda_bench.h are stubs here that say so.
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda_bench.h"
#include "gpu/cuda_int.h"
#include "gpu/gpu_int.h"

/* ------------------------------------------------------------------------
 * Backend choice
 * ---------------------------------------------------------------------- */

const struct gpu_backend *gpu_backend_cuda(void)
{
#ifdef FRESHET_HAVE_CUDA
	/* Whether or not a device is present: "cuda" and "auto" ask
	 * gpu_cuda_device_count() before they hand it out. */
	return gpu_cuda_backend();
#else
	return NULL;
#endif
}

int gpu_cuda_device_count(void)
{
#ifdef FRESHET_HAVE_CUDA
	static atomic_flag logged = ATOMIC_FLAG_INIT;
	const char *why = NULL;
	int n = gpu_cuda_probe_device_count(&why);

	if (n >= 0)
		return n;
	/* The runtime gives the same answer on every call, so say it once. */
	if (!atomic_flag_test_and_set(&logged))
		fr_log(n == -1 ? FR_LOG_INFO : FR_LOG_WARN, "gpu",
		       "CUDA device probe: %s; no CUDA device will be used",
		       why ? why : "unknown error");
	return 0;
#else
	return 0;
#endif
}

/* Why "auto" cannot pick cuda, or NULL when it can. */
static const char *gpu_cuda_unavailable(int *ndev)
{
	*ndev = 0;
#ifndef FRESHET_HAVE_CUDA
	return "this build has no CUDA support (FRESHET_CUDA=OFF or no nvcc)";
#else
	*ndev = gpu_cuda_device_count();
	if (*ndev == 0)
		return "no CUDA device is present";
	return NULL;
#endif
}

enum fr_err gpu_backend_select(const char *name,
			       const struct gpu_backend **out)
{
	static atomic_flag auto_logged = ATOMIC_FLAG_INIT;
	const char *why;
	int ndev;

	*out = NULL;
	if (!name)
		return fr_fail(FR_ERR_INVAL,
			       "gpu backend: expected \"cpu\", \"cuda\" or \"auto\", got none");
	if (strcmp(name, "cpu") == 0) {
		*out = gpu_backend_cpu();
		return FR_OK;
	}
	if (strcmp(name, "cuda") == 0) {
		why = gpu_cuda_unavailable(&ndev);
		if (why)
			return fr_fail(FR_ERR_UNSUPPORTED,
				       "gpu backend 'cuda': not available: %s",
				       why);
		*out = gpu_backend_cuda();
		return FR_OK;
	}
	if (strcmp(name, "auto") == 0) {
		why = gpu_cuda_unavailable(&ndev);
		if (!why) {
			*out = gpu_backend_cuda();
			if (!atomic_flag_test_and_set(&auto_logged))
				fr_log(FR_LOG_INFO, "gpu",
				       "backend auto: using cuda (%d device(s))",
				       ndev);
			return FR_OK;
		}
		*out = gpu_backend_cpu();
		if (!atomic_flag_test_and_set(&auto_logged))
			fr_log(FR_LOG_INFO, "gpu",
			       "backend auto: using cpu because %s (%d CUDA device(s) seen)",
			       why, ndev);
		return FR_OK;
	}
	return fr_fail(FR_ERR_INVAL,
		       "gpu backend '%s': expected \"cpu\", \"cuda\" or \"auto\"",
		       name);
}

/* ------------------------------------------------------------------------
 * Shared rules
 * ---------------------------------------------------------------------- */

static const char *gpu_desc_name(const struct gpu_table_desc *d)
{
	return d->name && d->name[0] ? d->name : "(unnamed)";
}

enum fr_err gpu_desc_check(const struct gpu_table_desc *d, size_t *row_bytes,
			   size_t *bytes)
{
	const char *name = gpu_desc_name(d);
	uint64_t rb, total;
	size_t elem;

	switch (d->dtype) {
	case GPU_F32:
		elem = 4;
		break;
	case GPU_F16:
		elem = 2;
		break;
	default:
		return fr_fail(FR_ERR_INVAL,
			       "table '%s': field 'dtype': expected f32 (%d) or f16 (%d), got %d",
			       name, GPU_F32, GPU_F16, (int)d->dtype);
	}
	if (d->dim == 0)
		return fr_fail(FR_ERR_INVAL,
			       "table '%s': field 'dim': expected > 0", name);
	if (d->rows == 0)
		return fr_fail(FR_ERR_INVAL,
			       "table '%s': field 'rows': expected > 0", name);
	rb = (uint64_t)d->dim * elem;   /* < 2^34: cannot overflow */
	if (!fr_mul_size(d->rows, rb, &total) || total > SIZE_MAX ||
	    rb > SIZE_MAX)
		return fr_fail(FR_ERR_TOOBIG,
			       "table '%s': %llu rows of %llu bytes overflow the address space",
			       name, (unsigned long long)d->rows,
			       (unsigned long long)rb);
	if (d->budget_bytes && total > d->budget_bytes)
		return fr_fail(FR_ERR_TOOBIG,
			       "table '%s': needs %llu bytes (%llu rows x %llu bytes), budget is %llu bytes",
			       name, (unsigned long long)total,
			       (unsigned long long)d->rows,
			       (unsigned long long)rb,
			       (unsigned long long)d->budget_bytes);
	*row_bytes = (size_t)rb;
	*bytes = (size_t)total;
	return FR_OK;
}

void gpu_base_init(struct gpu_table_base *b, const struct gpu_backend *be,
		   const struct gpu_table_desc *d, size_t row_bytes)
{
	b->be = be;
	b->rows = d->rows;
	b->dim = d->dim;
	b->dtype = d->dtype;
	b->row_bytes = row_bytes;
	b->host_bytes = NULL;
	/* Truncation is fine: the name is only for messages. */
	snprintf(b->name, sizeof(b->name), "%s", gpu_desc_name(d));
}

enum fr_err gpu_rows_check(const struct gpu_table_base *b,
			   const uint64_t *rows, size_t n)
{
	uint64_t max = 0;
	size_t i;

	/* A branch-free max first: the common, valid batch pays one
	 * streaming pass; only a bad batch looks for the culprit. */
	for (i = 0; i < n; i++)
		max = rows[i] > max ? rows[i] : max;
	if (n == 0 || max < b->rows)
		return FR_OK;
	for (i = 0; rows[i] < b->rows; i++)
		;
	return fr_fail(FR_ERR_RANGE,
		       "table '%s': rows[%zu] = %llu: expected a row id < %llu",
		       b->name, i, (unsigned long long)rows[i],
		       (unsigned long long)b->rows);
}

bool gpu_batch_in_order(const uint64_t *versions, size_t n)
{
	bool ordered = true;
	size_t i;

	if (!versions)
		return true;
	for (i = 1; i < n; i++)
		ordered &= versions[i] >= versions[i - 1];
	return ordered;
}

enum fr_err gpu_rowset_init(struct gpu_rowset *s, uint64_t rows)
{
	uint64_t words = rows / 64 + 1;

	s->rows = rows;
	s->bits = NULL;
	if (words > SIZE_MAX / sizeof(uint64_t))
		return fr_fail(FR_ERR_NOMEM, "row set of %llu rows is too large",
			       (unsigned long long)rows);
	s->bits = calloc((size_t)words, sizeof(uint64_t));
	if (!s->bits)
		return fr_fail(FR_ERR_NOMEM,
			       "row set of %llu rows: out of memory",
			       (unsigned long long)rows);
	return FR_OK;
}

void gpu_rowset_fini(struct gpu_rowset *s)
{
	free(s->bits);
	s->bits = NULL;
}

bool gpu_rowset_has_dups(struct gpu_rowset *s, const uint64_t *rows,
			 size_t n)
{
	uint64_t *bits = s->bits;
	bool dup = false;
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t m = 1ull << (rows[i] % 64);

		assert(rows[i] < s->rows);
		dup |= (bits[rows[i] / 64] & m) != 0;
		bits[rows[i] / 64] |= m;
	}
	for (i = 0; i < n; i++)
		bits[rows[i] / 64] &= ~(1ull << (rows[i] % 64));
	return dup;
}

struct gpu_entry {
	uint64_t row;
	size_t idx;
};

static int gpu_entry_cmp(const void *a, const void *b)
{
	const struct gpu_entry *x = a, *y = b;

	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

enum fr_err gpu_batch_winners(const uint64_t *rows, const uint64_t *versions,
			      size_t n, size_t **win, size_t *nwin)
{
	struct gpu_entry *e;
	size_t *w;
	size_t i, k = 0;

	*win = NULL;
	*nwin = 0;
	e = malloc((n ? n : 1) * sizeof(*e));
	w = malloc((n ? n : 1) * sizeof(*w));
	if (!e || !w) {
		free(e);
		free(w);
		return fr_fail(FR_ERR_NOMEM,
			       "apply batch of %zu rows: out of memory", n);
	}
	for (i = 0; i < n; i++) {
		e[i].row = rows[i];
		e[i].idx = i;
	}
	/* Batches that repeat rows are rare (the shard store coalesces), so
	 * a sort is plenty; within a row, entries stay in batch order. */
	qsort(e, n, sizeof(*e), gpu_entry_cmp);
	for (i = 0; i < n; i++) {
		size_t best = e[i].idx;

		while (i + 1 < n && e[i + 1].row == e[i].row) {
			i++;
			if (!versions || versions[e[i].idx] >= versions[best])
				best = e[i].idx;
		}
		w[k++] = best;
	}
	free(e);
	*win = w;
	*nwin = k;
	return FR_OK;
}

/* ------------------------------------------------------------------------
 * Wrappers
 * ---------------------------------------------------------------------- */

static const struct gpu_table_base *gpu_base(const struct gpu_table *t)
{
	return (const struct gpu_table_base *)t;
}

struct gpu_table *gpu_table_new(const struct gpu_backend *be,
				const struct gpu_table_desc *d,
				enum fr_err *err)
{
	enum fr_err dummy;

	if (!err)
		err = &dummy;
	if (!be || !d) {
		*err = fr_fail(FR_ERR_INVAL, "gpu_table_new: %s is NULL",
			       !be ? "backend" : "descriptor");
		return NULL;
	}
	return be->table_new(d, err);
}

void gpu_table_free(struct gpu_table *t)
{
	if (t)
		gpu_base(t)->be->table_free(t);
}

/* n * row_bytes must be addressable before a backend walks the batch. */
static enum fr_err gpu_batch_check(const struct gpu_table *t, size_t n,
				   const char *op)
{
	const struct gpu_table_base *b = gpu_base(t);
	uint64_t bytes;

	if (!fr_mul_size(n, b->row_bytes, &bytes) || bytes > SIZE_MAX)
		return fr_fail(FR_ERR_TOOBIG,
			       "table '%s': %s of %zu rows: expected n * %zu bytes to fit in memory",
			       b->name, op, n, b->row_bytes);
	return FR_OK;
}

enum fr_err gpu_apply(struct gpu_table *t, const uint64_t *rows,
		      const uint64_t *versions, const void *values, size_t n)
{
	enum fr_err e;

	assert(t);
	if (n == 0)
		return FR_OK;
	assert(rows && values);
	e = gpu_batch_check(t, n, "apply");
	if (e)
		return e;
	return gpu_base(t)->be->apply(t, rows, versions, values, n);
}

enum fr_err gpu_gather(struct gpu_table *t, const uint64_t *rows, size_t n,
		       void *out)
{
	enum fr_err e;

	assert(t);
	if (n == 0)
		return FR_OK;
	assert(rows && out);
	e = gpu_batch_check(t, n, "gather");
	if (e)
		return e;
	return gpu_base(t)->be->gather(t, rows, n, out);
}

enum fr_err gpu_restore(struct gpu_table *t, const uint64_t *rows,
			const void *values, size_t n)
{
	enum fr_err e;

	assert(t);
	if (n == 0)
		return FR_OK;
	assert(rows && values);
	e = gpu_batch_check(t, n, "restore");
	if (e)
		return e;
	return gpu_base(t)->be->restore(t, rows, values, n);
}

enum fr_err gpu_checksum(struct gpu_table *t, uint64_t *out)
{
	assert(t && out);
	return gpu_base(t)->be->checksum(t, out);
}

size_t gpu_row_bytes(const struct gpu_table *t)
{
	return gpu_base(t)->row_bytes;
}

uint64_t gpu_table_rows(const struct gpu_table *t)
{
	return gpu_base(t)->rows;
}

const struct gpu_backend *gpu_table_backend(const struct gpu_table *t)
{
	return gpu_base(t)->be;
}

void *gpu_table_host_bytes(struct gpu_table *t)
{
	return gpu_base(t)->host_bytes;
}

/* ------------------------------------------------------------------------
 * Benchmark helpers without CUDA (cuda_bench.h; cuda.cu has the real ones)
 * ---------------------------------------------------------------------- */

#ifndef FRESHET_HAVE_CUDA
static enum fr_err gpu_no_cuda(const char *what)
{
	return fr_fail(FR_ERR_UNSUPPORTED,
		       "%s: this build has no CUDA support (FRESHET_CUDA=OFF or no nvcc)",
		       what);
}

enum fr_err gpu_cuda_bench_device_name(int device, char *buf, size_t len)
{
	if (len)
		buf[0] = '\0';
	return gpu_no_cuda("cuda device name");
}

struct gpu_cuda_bench *gpu_cuda_bench_new(int device, size_t bytes,
					  enum fr_err *err)
{
	*err = gpu_no_cuda("cuda H2D baseline");
	return NULL;
}

void gpu_cuda_bench_free(struct gpu_cuda_bench *b)
{
	assert(!b);   /* _new never made one */
}

void *gpu_cuda_bench_host(struct gpu_cuda_bench *b)
{
	return NULL;
}

enum fr_err gpu_cuda_bench_h2d(struct gpu_cuda_bench *b, size_t bytes,
			       size_t calls, uint64_t *ns)
{
	*ns = 0;
	return gpu_no_cuda("cuda H2D baseline");
}

enum fr_err gpu_cuda_bench_scatter(struct gpu_table *t, const uint64_t *rows,
				   size_t n, size_t reps, uint64_t *ns)
{
	*ns = 0;
	return gpu_no_cuda("cuda scatter kernel");
}
#endif /* !FRESHET_HAVE_CUDA */
