/*
 * cpu.c — the CPU table backend: a table is one zeroed, aligned host
 * allocation of rows * row_bytes, and every op is a loop over row ids.
 * It is always built, serves lookups when no GPU is present, and is the
 * reference the CUDA backend is checked against (tests/unit/gpu_vectors.c).
 *
 * What is not here: the rules (range checks, which duplicate wins) — those
 * live in gpu.c and are shared with every backend.
 *
 * Speed: an apply writes whole rows at random ids into a table far larger
 * than the cache, so it is bound by DRAM writes; bench/bench_apply compares
 * it with a memcpy of the same bytes into the same table.  Measured there
 * (1M x 256 B rows, batches >= 4 MiB, apply/memcpy): a plain memcpy per
 * row 0.38-0.40; with a write prefetch 16 rows ahead 0.46-0.48; with
 * non-temporal stores, which skip the read-for-ownership of lines that
 * are overwritten whole, 0.50-0.53 (SSE2, 16-byte stores) and 0.55-0.68
 * (AVX, 32-byte stores; one 64-byte AVX-512 store per line was slower).
 * Per line, all loads come before the stores.  A table of 2 MiB or more
 * is 2 MiB-aligned and advised onto transparent huge pages, so a random
 * row rarely misses the TLB: ~10% in a bare loop, within the noise of the
 * bench.  Sorting the ids was far slower (qsort costs more than it saves).
 * Repeated rows are looked for only when the batch's versions are out of
 * order (writing in batch order is otherwise already right); that bitmap
 * pass costs about 0.07 of the ratio.
 * Rows that are not whole lines take memcpy with the prefetch.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_HAVE_NT 1
#endif

#include "gpu/gpu_int.h"

#define CPU_HUGE_PAGE (2u << 20)
#define CPU_LINE 64
/* How many entries ahead the memcpy path prefetches; 16 beat 8. */
#define CPU_PREFETCH_AHEAD 16

struct cpu_table;

/* Write rows[idx[k]] (or rows[k] when idx is NULL) from values, k < n. */
typedef void (*cpu_put_fn)(struct cpu_table *t, const uint64_t *rows,
			   const size_t *idx, const uint8_t *values, size_t n);

struct cpu_table {
	struct gpu_table_base base;
	uint8_t *data;
	size_t bytes;
	struct gpu_rowset seen;   /* repeated rows; allocated when first needed */
	cpu_put_fn put;
};

static struct cpu_table *cpu_table(struct gpu_table *t)
{
	return (struct cpu_table *)t;
}

/* ------------------------------------------------------------------------
 * Row writers
 * ---------------------------------------------------------------------- */

static void cpu_put_memcpy(struct cpu_table *t, const uint64_t *rows,
			   const size_t *idx, const uint8_t *values, size_t n)
{
	size_t rb = t->base.row_bytes;
	size_t k;

	for (k = 0; k < n; k++) {
		size_t j = idx ? idx[k] : k;

		if (k + CPU_PREFETCH_AHEAD < n) {
			size_t a = idx ? idx[k + CPU_PREFETCH_AHEAD]
				       : k + CPU_PREFETCH_AHEAD;
			const uint8_t *p = t->data + rows[a] * rb;
			size_t off;

			/* The first few lines; the hardware follows the rest. */
			for (off = 0; off < rb && off < 4 * CPU_LINE;
			     off += CPU_LINE)
				__builtin_prefetch(p + off, 1, 0);
		}
		memcpy(t->data + rows[j] * rb, values + j * rb, rb);
	}
}

#ifdef CPU_HAVE_NT
/* Non-temporal writers: row_bytes is a multiple of 64 and the table is
 * 64-aligned, so every destination line is written whole.  The sfence
 * orders the streamed lines before the call returns, so a later gather
 * (or another thread after the caller's own synchronisation) sees them. */
static void cpu_put_sse2(struct cpu_table *t, const uint64_t *rows,
			 const size_t *idx, const uint8_t *values, size_t n)
{
	size_t rb = t->base.row_bytes;
	size_t k, off;

	for (k = 0; k < n; k++) {
		size_t j = idx ? idx[k] : k;
		uint8_t *d = t->data + rows[j] * rb;
		const uint8_t *s = values + j * rb;

		for (off = 0; off < rb; off += CPU_LINE) {
			const __m128i *sv = (const __m128i *)(s + off);
			__m128i *dv = (__m128i *)(d + off);
			__m128i a = _mm_loadu_si128(sv);
			__m128i b = _mm_loadu_si128(sv + 1);
			__m128i c = _mm_loadu_si128(sv + 2);
			__m128i e = _mm_loadu_si128(sv + 3);

			_mm_stream_si128(dv, a);
			_mm_stream_si128(dv + 1, b);
			_mm_stream_si128(dv + 2, c);
			_mm_stream_si128(dv + 3, e);
		}
	}
	_mm_sfence();
}

__attribute__((target("avx")))
static void cpu_put_avx(struct cpu_table *t, const uint64_t *rows,
			const size_t *idx, const uint8_t *values, size_t n)
{
	size_t rb = t->base.row_bytes;
	size_t k, off;

	for (k = 0; k < n; k++) {
		size_t j = idx ? idx[k] : k;
		uint8_t *d = t->data + rows[j] * rb;
		const uint8_t *s = values + j * rb;

		for (off = 0; off < rb; off += CPU_LINE) {
			const __m256i *sv = (const __m256i *)(s + off);
			__m256i *dv = (__m256i *)(d + off);
			__m256i a = _mm256_loadu_si256(sv);
			__m256i b = _mm256_loadu_si256(sv + 1);

			_mm256_stream_si256(dv, a);
			_mm256_stream_si256(dv + 1, b);
		}
	}
	_mm_sfence();
}
#endif /* CPU_HAVE_NT */

static cpu_put_fn cpu_put_choose(size_t row_bytes)
{
#ifdef CPU_HAVE_NT
	if (row_bytes % CPU_LINE == 0)
		return __builtin_cpu_supports("avx") ? cpu_put_avx
						     : cpu_put_sse2;
#endif
	return cpu_put_memcpy;
}

/* ------------------------------------------------------------------------
 * Backend ops
 * ---------------------------------------------------------------------- */

static struct gpu_table *cpu_table_new(const struct gpu_table_desc *d,
				       enum fr_err *err);

static void cpu_table_free(struct gpu_table *gt)
{
	struct cpu_table *t = cpu_table(gt);

	if (!t)
		return;
	gpu_rowset_fini(&t->seen);
	free(t->data);
	free(t);
}

static enum fr_err cpu_apply(struct gpu_table *gt, const uint64_t *rows,
			     const uint64_t *versions, const void *values,
			     size_t n)
{
	struct cpu_table *t = cpu_table(gt);
	size_t *win, nwin;
	enum fr_err e;

	e = gpu_rows_check(&t->base, rows, n);
	if (e)
		return e;
	if (n < 2 || gpu_batch_in_order(versions, n)) {
		t->put(t, rows, NULL, values, n);
		return FR_OK;
	}
	/* Versions out of order: only a repeated row makes that matter. */
	if (!t->seen.bits) {
		e = gpu_rowset_init(&t->seen, t->base.rows);
		if (e)
			return e;
	}
	if (!gpu_rowset_has_dups(&t->seen, rows, n)) {
		t->put(t, rows, NULL, values, n);
		return FR_OK;
	}
	e = gpu_batch_winners(rows, versions, n, &win, &nwin);
	if (e)
		return e;
	t->put(t, rows, win, values, nwin);
	free(win);
	return FR_OK;
}

static enum fr_err cpu_gather(struct gpu_table *gt, const uint64_t *rows,
			      size_t n, void *out)
{
	struct cpu_table *t = cpu_table(gt);
	size_t rb = t->base.row_bytes;
	uint8_t *o = out;
	enum fr_err e;
	size_t k;

	e = gpu_rows_check(&t->base, rows, n);
	if (e)
		return e;
	for (k = 0; k < n; k++) {
		if (k + CPU_PREFETCH_AHEAD < n)
			__builtin_prefetch(t->data +
					   rows[k + CPU_PREFETCH_AHEAD] * rb, 0, 0);
		memcpy(o + k * rb, t->data + rows[k] * rb, rb);
	}
	return FR_OK;
}

static enum fr_err cpu_restore(struct gpu_table *gt, const uint64_t *rows,
			       const void *values, size_t n)
{
	struct cpu_table *t = cpu_table(gt);
	enum fr_err e;

	e = gpu_rows_check(&t->base, rows, n);
	if (e)
		return e;
	/* In batch order, so a repeated row ends with its last entry. */
	t->put(t, rows, NULL, values, n);
	return FR_OK;
}

static enum fr_err cpu_checksum(struct gpu_table *gt, uint64_t *out)
{
	struct cpu_table *t = cpu_table(gt);

	*out = XXH3_64bits(t->data, t->bytes);
	return FR_OK;
}

static const struct gpu_backend cpu_backend = {
	.name = "cpu",
	.table_new = cpu_table_new,
	.table_free = cpu_table_free,
	.apply = cpu_apply,
	.gather = cpu_gather,
	.restore = cpu_restore,
	.checksum = cpu_checksum,
};

const struct gpu_backend *gpu_backend_cpu(void)
{
	return &cpu_backend;
}

static struct gpu_table *cpu_table_new(const struct gpu_table_desc *d,
				       enum fr_err *err)
{
	struct cpu_table *t;
	size_t row_bytes, bytes, align;
	void *p;
	enum fr_err e;

	e = gpu_desc_check(d, &row_bytes, &bytes);
	if (e)
		goto out;
	t = calloc(1, sizeof(*t));
	if (!t) {
		e = fr_fail(FR_ERR_NOMEM, "table '%s': out of memory",
			    d->name ? d->name : "(unnamed)");
		goto out;
	}
	gpu_base_init(&t->base, &cpu_backend, d, row_bytes);
	t->bytes = bytes;
	t->put = cpu_put_choose(row_bytes);
	align = bytes >= CPU_HUGE_PAGE ? CPU_HUGE_PAGE : CPU_LINE;
	if (posix_memalign(&p, align, bytes) != 0) {
		e = fr_fail(FR_ERR_NOMEM,
			    "table '%s': cannot allocate %zu bytes of host memory",
			    t->base.name, bytes);
		goto out_free_table;
	}
	t->data = p;
	t->base.host_bytes = p;
#ifdef MADV_HUGEPAGE
	/* Only whole huge pages inside our allocation; advisory, so a
	 * refusal costs speed, not correctness. */
	if (align == CPU_HUGE_PAGE)
		(void)madvise(p, bytes & ~((size_t)CPU_HUGE_PAGE - 1),
			      MADV_HUGEPAGE);
#endif
	/* Zeroing also faults every page in now, at registration, rather
	 * than during the first applies. */
	memset(p, 0, bytes);
	*err = FR_OK;
	return (struct gpu_table *)t;

out_free_table:
	free(t);
out:
	*err = e;
	return NULL;
}
