/*
 * test_gpu_cuda.c — the CUDA backend's CUnit run (CTest label "cuda"): the
 * shared vectors of gpu_vectors.c on cuda, then cuda against the cpu
 * backend byte for byte — random batches with repeated rows resolved by
 * version, f16 values converted once on the host for both, batches that
 * span several staging chunks, out-of-range ids that must write nothing,
 * refusals at registration (budget, free memory, device ordinal), and
 * many queued applies read back by one gather (stream order).
 *
 * With no CUDA in the build, or no device, it prints why and exits 77,
 * which CTest counts as skipped — never as passed.
 *
 * What is not here: the cpu backend's own cases and backend choice
 * without a device (test_gpu.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <CUnit/Basic.h>

#include "gpu/cuda_bench.h"
#include "gpu/gpu.h"
#include "gpu_vectors.h"
#include "unit_main.h"

#define SKIP 77

static const struct gpu_backend *cu_be;

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t dtype_bytes(enum gpu_dtype dt)
{
	return dt == GPU_F16 ? 2 : 4;
}

/* Random values for n rows of dim elements in the table's dtype: f32 as
 * random bits (no conversion anywhere, so any bits must survive), f16 as
 * random floats converted by fr_f32_to_f16_n — once, for both backends. */
static void fill_values(uint64_t *seed, void *out, size_t n, uint32_t dim,
			enum gpu_dtype dt)
{
	size_t i, cnt = n * dim;
	uint32_t *bits = out;
	float *f;

	if (dt == GPU_F32) {
		for (i = 0; i < cnt; i++)
			bits[i] = (uint32_t)rng(seed);
		return;
	}
	f = malloc(cnt * sizeof(*f));
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (i = 0; i < cnt; i++) {
		/* Mostly ordinary magnitudes, some huge, tiny or odd bits. */
		uint64_t r = rng(seed);

		if (r % 16 == 0) {
			uint32_t b = (uint32_t)(r >> 32);

			memcpy(&f[i], &b, sizeof(b));
		} else {
			f[i] = (float)((double)(int64_t)(r >> 11) /
				       (double)(1ull << 40)) *
			       ((r & 0x300) == 0x300 ? 1e4f : 1.0f);
		}
	}
	fr_f32_to_f16_n(f, out, cnt);
	free(f);
}

/* ------------------------------------------------------------------------
 * A cuda table beside a cpu table of the same shape
 * ---------------------------------------------------------------------- */

struct pair {
	struct gpu_table *gpu;
	struct gpu_table *cpu;
	uint64_t rows;
	uint32_t dim;
	enum gpu_dtype dtype;
	size_t rb;
};

static void pair_new(struct pair *p, const char *name, uint64_t rows,
		     uint32_t dim, enum gpu_dtype dt)
{
	struct gpu_table_desc d = {
		.name = name, .rows = rows, .dim = dim, .dtype = dt,
		.device = 0, .budget_bytes = 0,
	};
	enum fr_err e = FR_ERR_INVAL;

	p->rows = rows;
	p->dim = dim;
	p->dtype = dt;
	p->rb = (size_t)dim * dtype_bytes(dt);
	p->gpu = gpu_table_new(cu_be, &d, &e);
	if (e)
		fprintf(stderr, "cuda table '%s': %s\n", name, fr_errmsg());
	CU_ASSERT_EQUAL_FATAL(e, FR_OK);
	p->cpu = gpu_table_new(gpu_backend_cpu(), &d, &e);
	CU_ASSERT_EQUAL_FATAL(e, FR_OK);
	CU_ASSERT_PTR_EQUAL(gpu_table_backend(p->gpu), cu_be);
	CU_ASSERT_EQUAL(gpu_row_bytes(p->gpu), p->rb);
}

static void pair_free(struct pair *p)
{
	gpu_table_free(p->gpu);
	gpu_table_free(p->cpu);
}

static uint64_t sum_of(struct gpu_table *t)
{
	uint64_t s = 0;
	enum fr_err e = gpu_checksum(t, &s);

	if (e)
		fprintf(stderr, "checksum: %s\n", fr_errmsg());
	CU_ASSERT_EQUAL(e, FR_OK);
	return s;
}

/* Equal checksums; with `full`, also equal gathers of every row. */
static void pair_expect(struct pair *p, bool full)
{
	const size_t block = 65536;
	uint64_t *ids;
	uint8_t *a, *b;
	size_t off, m, i;
	int same = 1;

	CU_ASSERT_EQUAL(sum_of(p->gpu), sum_of(p->cpu));
	if (!full)
		return;
	m = p->rows < block ? (size_t)p->rows : block;
	ids = malloc(m * sizeof(*ids));
	a = malloc(m * p->rb);
	b = malloc(m * p->rb);
	CU_ASSERT_FATAL(ids && a && b);
	for (off = 0; off < p->rows; off += m) {
		size_t k = p->rows - off < m ? (size_t)(p->rows - off) : m;

		for (i = 0; i < k; i++)
			ids[i] = off + i;
		memset(a, 0xa5, k * p->rb);
		CU_ASSERT_EQUAL(gpu_gather(p->gpu, ids, k, a), FR_OK);
		CU_ASSERT_EQUAL(gpu_gather(p->cpu, ids, k, b), FR_OK);
		same &= memcmp(a, b, k * p->rb) == 0;
	}
	CU_ASSERT(same);
	free(b);
	free(a);
	free(ids);
}

static void pair_apply(struct pair *p, const uint64_t *ids,
		       const uint64_t *vers, const void *vals, size_t n)
{
	enum fr_err e = gpu_apply(p->gpu, ids, vers, vals, n);

	if (e)
		fprintf(stderr, "cuda apply: %s\n", fr_errmsg());
	CU_ASSERT_EQUAL(e, FR_OK);
	CU_ASSERT_EQUAL(gpu_apply(p->cpu, ids, vers, vals, n), FR_OK);
}

static void pair_restore(struct pair *p, const uint64_t *ids,
			 const void *vals, size_t n)
{
	CU_ASSERT_EQUAL(gpu_restore(p->gpu, ids, vals, n), FR_OK);
	CU_ASSERT_EQUAL(gpu_restore(p->cpu, ids, vals, n), FR_OK);
}

/* A batch of room for n entries of rb-byte rows: ids, versions, values. */
struct batch {
	uint64_t *ids, *vers;
	uint8_t *vals;
};

static void batch_new(struct batch *b, size_t n, size_t rb)
{
	b->ids = malloc(n * sizeof(*b->ids));
	b->vers = malloc(n * sizeof(*b->vers));
	b->vals = malloc(n * rb);
	CU_ASSERT_FATAL(b->ids && b->vers && b->vals);
}

static void batch_free(struct batch *b)
{
	free(b->vals);
	free(b->vers);
	free(b->ids);
}

/* ------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------- */

static void test_select(void)
{
	const struct gpu_backend *be = NULL;

	CU_ASSERT_EQUAL(gpu_backend_select("cuda", &be), FR_OK);
	CU_ASSERT_PTR_EQUAL(be, cu_be);
	CU_ASSERT_STRING_EQUAL(cu_be->name, "cuda");
	be = NULL;
	CU_ASSERT_EQUAL(gpu_backend_select("auto", &be), FR_OK);
	CU_ASSERT_PTR_EQUAL(be, cu_be);
	CU_ASSERT(gpu_cuda_device_count() > 0);
}

/* Every kernel width: 16-byte (256, 512, 80 B rows), 8-byte (8, 24 B),
 * 4-byte (12 B) and 2-byte (2, 6 B) elements. */
static const struct {
	const char *name;
	uint64_t rows;
	uint32_t dim;
	enum gpu_dtype dtype;
} shapes[] = {
	{ "rnd_f32x64", 3000, 64, GPU_F32 },
	{ "rnd_f32x128", 1000, 128, GPU_F32 },
	{ "rnd_f32x3", 5000, 3, GPU_F32 },
	{ "rnd_f32x2", 4000, 2, GPU_F32 },
	{ "rnd_f32x6", 700, 6, GPU_F32 },
	{ "rnd_f16x40", 2000, 40, GPU_F16 },
	{ "rnd_f16x3", 900, 3, GPU_F16 },
	{ "rnd_f16x1", 64, 1, GPU_F16 },
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

/* Random batches up to twice the table's rows (so repeats abound and a
 * batch spans chunks: a small table gets small staging slots), with
 * versions out of order, in order, absent, and restores. */
static void test_random_vs_cpu(void)
{
	uint64_t seed = 0xc0ffee1234ull;
	size_t k, round, i;

	for (k = 0; k < NSHAPES; k++) {
		struct pair p;
		struct batch b;
		size_t cap;

		pair_new(&p, shapes[k].name, shapes[k].rows, shapes[k].dim,
			 shapes[k].dtype);
		cap = 2 * (size_t)p.rows;
		batch_new(&b, cap, p.rb);
		for (round = 0; round < 24; round++) {
			size_t n = 1 + rng(&seed) % cap;
			unsigned kind = (unsigned)(round % 4);
			uint64_t span = 1 + rng(&seed) % p.rows;

			for (i = 0; i < n; i++) {
				b.ids[i] = rng(&seed) % span;
				b.vers[i] = kind == 2 ? i / 3 : rng(&seed) % 5;
			}
			fill_values(&seed, b.vals, n, p.dim, p.dtype);
			switch (kind) {
			case 0:   /* versions in no order, ties */
				pair_apply(&p, b.ids, b.vers, b.vals, n);
				break;
			case 1:   /* no versions: later entries win */
				pair_apply(&p, b.ids, NULL, b.vals, n);
				break;
			case 2:   /* rising versions with ties */
				pair_apply(&p, b.ids, b.vers, b.vals, n);
				break;
			default:
				pair_restore(&p, b.ids, b.vals, n);
				break;
			}
			pair_expect(&p, round % 6 == 5);
		}
		pair_expect(&p, true);
		batch_free(&b);
		pair_free(&p);
	}
}

/* f16 values: the same halves on both, bit for bit, gathered back. */
static void test_f16_same_bits(void)
{
	struct pair p;
	const uint32_t dim = 24;
	const size_t n = 500;
	uint64_t seed = 77, ids[500];
	uint16_t *half = malloc(n * dim * sizeof(*half));
	uint16_t *got = malloc(n * dim * sizeof(*got));
	float *f = malloc(n * dim * sizeof(*f)), *back = malloc(n * dim * sizeof(*back));
	size_t i;

	CU_ASSERT_FATAL(half && got && f && back);
	pair_new(&p, "f16_bits", 600, dim, GPU_F16);
	for (i = 0; i < n * dim; i++) {
		uint32_t b = (uint32_t)rng(&seed);

		/* Every other input in f16's range, from below its smallest
		 * subnormal (2^-25) to past its largest (2^16), with low
		 * mantissa bits that make rounding ties; the rest any bits. */
		if (i % 2)
			b = (b & 0x8000ffffu) |
			    ((0x66u + (uint32_t)(i % 0x2a)) << 23);
		memcpy(&f[i], &b, sizeof(b));
	}
	fr_f32_to_f16_n(f, half, n * dim);
	for (i = 0; i < n; i++)
		ids[i] = (i * 7) % 600;
	pair_apply(&p, ids, NULL, half, n);
	CU_ASSERT_EQUAL(gpu_gather(p.gpu, ids, n, got), FR_OK);
	CU_ASSERT(memcmp(got, half, n * dim * sizeof(*half)) == 0);
	fr_f16_to_f32_n(got, back, n * dim);
	fr_f16_to_f32_n(half, f, n * dim);
	CU_ASSERT(memcmp(back, f, n * dim * sizeof(*f)) == 0);
	pair_expect(&p, true);
	pair_free(&p);
	free(back);
	free(f);
	free(got);
	free(half);
}

/* Batches of tens of MiB: several 8 MiB staging chunks per batch, and a
 * 64 MiB table whose checksum and gathers take many chunks too.  Repeats
 * sit in different chunks of one batch. */
static void test_large_batches(void)
{
	const uint64_t rows = 262144;     /* x 256 B = 64 MiB */
	const size_t n = 150000;          /* x 256 B = 37.5 MiB */
	struct pair p;
	struct batch b;
	uint64_t seed = 0xfeed;
	uint8_t *out = malloc(256);
	size_t i;

	CU_ASSERT_FATAL(out != NULL);
	batch_new(&b, n, 256);
	pair_new(&p, "large", rows, 64, GPU_F32);
	pair_expect(&p, false);   /* zero, 64 MiB through the checksum */

	/* Distinct rows, random order. */
	for (i = 0; i < n; i++) {
		b.ids[i] = (i * 104729u) % rows;
		b.vers[i] = i;
	}
	fill_values(&seed, b.vals, n, 64, GPU_F32);
	pair_apply(&p, b.ids, b.vers, b.vals, n);
	pair_expect(&p, true);

	/* In order, each row of 0..50000 three times, 50000 entries apart:
	 * the copies land in different chunks; the last must win. */
	for (i = 0; i < n; i++) {
		b.ids[i] = i % 50000;
		b.vers[i] = 10 + i;
	}
	fill_values(&seed, b.vals, n, 64, GPU_F32);
	pair_apply(&p, b.ids, b.vers, b.vals, n);
	CU_ASSERT_EQUAL(gpu_gather(p.gpu, &b.ids[7], 1, out), FR_OK);
	CU_ASSERT(memcmp(out, b.vals + (100000 + 7) * 256, 256) == 0);
	pair_expect(&p, true);

	/* Versions falling: the first copy wins although a later chunk
	 * writes the row again. */
	for (i = 0; i < n; i++)
		b.vers[i] = n - i;
	fill_values(&seed, b.vals, n, 64, GPU_F32);
	pair_apply(&p, b.ids, b.vers, b.vals, n);
	CU_ASSERT_EQUAL(gpu_gather(p.gpu, &b.ids[7], 1, out), FR_OK);
	CU_ASSERT(memcmp(out, b.vals + 7 * 256, 256) == 0);
	pair_expect(&p, true);

	/* Random repeats, no versions; then a large restore. */
	for (i = 0; i < n; i++)
		b.ids[i] = rng(&seed) % rows;
	fill_values(&seed, b.vals, n, 64, GPU_F32);
	pair_apply(&p, b.ids, NULL, b.vals, n);
	pair_expect(&p, false);
	fill_values(&seed, b.vals, n, 64, GPU_F32);
	pair_restore(&p, b.ids, b.vals, n);
	pair_expect(&p, true);

	pair_free(&p);
	batch_free(&b);
	free(out);
}

/* A bad id anywhere in a multi-chunk batch refuses the whole batch before
 * any chunk is queued; a bad gather leaves out untouched. */
static void test_range_writes_nothing(void)
{
	const uint64_t rows = 100000;
	const size_t n = 80000;           /* x 512 B: five chunks */
	struct pair p;
	struct batch b;
	uint64_t seed = 5, before;
	uint8_t *out = malloc(2 * 512);
	size_t i;
	int clean = 1;

	CU_ASSERT_FATAL(out != NULL);
	batch_new(&b, n, 512);
	pair_new(&p, "range", rows, 128, GPU_F32);
	for (i = 0; i < n; i++)
		b.ids[i] = i;
	fill_values(&seed, b.vals, n, 128, GPU_F32);
	pair_apply(&p, b.ids, NULL, b.vals, n);
	before = sum_of(p.gpu);

	fill_values(&seed, b.vals, n, 128, GPU_F32);
	b.ids[n - 1] = rows;
	CU_ASSERT_EQUAL(gpu_apply(p.gpu, b.ids, NULL, b.vals, n), FR_ERR_RANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "range"));
	CU_ASSERT_EQUAL(gpu_restore(p.gpu, b.ids, b.vals, n), FR_ERR_RANGE);
	b.ids[n - 1] = n - 1;
	b.ids[n / 2] = UINT64_MAX;
	CU_ASSERT_EQUAL(gpu_apply(p.gpu, b.ids, NULL, b.vals, n), FR_ERR_RANGE);
	CU_ASSERT_EQUAL(sum_of(p.gpu), before);
	CU_ASSERT_EQUAL(sum_of(p.gpu), sum_of(p.cpu));

	b.ids[0] = 3;
	b.ids[1] = rows + 1;
	memset(out, 0x3c, 2 * 512);
	CU_ASSERT_EQUAL(gpu_gather(p.gpu, b.ids, 2, out), FR_ERR_RANGE);
	for (i = 0; i < 2 * 512; i++)
		clean &= out[i] == 0x3c;
	CU_ASSERT(clean);

	/* Still healthy: the next batch applies. */
	b.ids[n / 2] = n / 2;
	b.ids[1] = 1;
	pair_apply(&p, b.ids, NULL, b.vals, n);
	pair_expect(&p, true);
	pair_free(&p);
	batch_free(&b);
	free(out);
}

static void test_refusals(void)
{
	struct gpu_table_desc d = {
		.name = "cuda_budget", .rows = 1000, .dim = 64,
		.dtype = GPU_F32, .device = 0, .budget_bytes = 255999,
	};
	enum fr_err e = FR_OK;
	struct gpu_table *t;
	char num[32];

	/* Over the budget: names the table, the bytes, the free memory. */
	t = gpu_table_new(cu_be, &d, &e);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_EQUAL(e, FR_ERR_TOOBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "cuda_budget"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "needs 256000 bytes"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "bytes free"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "budget 255999"));
	gpu_table_free(t);

	/* Past the device's memory (256 TiB): refused before any cudaMalloc. */
	d.name = "cuda_huge";
	d.budget_bytes = 0;
	d.rows = 1ull << 40;
	t = gpu_table_new(cu_be, &d, &e);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_EQUAL(e, FR_ERR_TOOBIG);
	snprintf(num, sizeof(num), "needs %llu bytes",
		 (unsigned long long)(1ull << 40) * 256);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "cuda_huge"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), num));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "device 0 has"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "bytes free"));
	gpu_table_free(t);

	/* Device ordinals that do not exist. */
	d.name = "cuda_dev";
	d.rows = 10;
	d.device = gpu_cuda_device_count();
	t = gpu_table_new(cu_be, &d, &e);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_EQUAL(e, FR_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "device"));
	d.device = -1;
	t = gpu_table_new(cu_be, &d, &e);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_EQUAL(e, FR_ERR_INVAL);

	/* Rows wider than the kernels index (2^31 elements), refused before
	 * anything is allocated. */
	d.name = "cuda_wide";
	d.rows = 1;
	d.dim = (1u << 31) + 1;
	t = gpu_table_new(cu_be, &d, &e);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_EQUAL(e, FR_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "cuda_wide"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "'dim'"));
	d.dim = 64;
	d.rows = 10;

	/* And the device still works after the refusals. */
	d.device = 0;
	t = gpu_table_new(cu_be, &d, &e);
	CU_ASSERT_EQUAL(e, FR_OK);
	CU_ASSERT_PTR_NOT_NULL(t);
	gpu_table_free(t);
}

/* Thousands of applies queued back to back (each returns at once), then
 * one gather: it must see all of them, in call order. */
static void test_stream_order(void)
{
	const uint64_t rows = 4096;
	const uint32_t dim = 32;
	const size_t rb = dim * 4;
	struct pair p;
	uint64_t seed = 31337, ids[64], vers[64], all_ids[4096];
	uint8_t vals[64 * 128];
	uint8_t *model = calloc(rows, rb), *out = malloc(rows * rb);
	uint32_t v;
	size_t call, i;

	CU_ASSERT_FATAL(model && out);
	pair_new(&p, "order", rows, dim, GPU_F32);
	for (call = 0; call < 3000; call++) {
		size_t n = 1 + rng(&seed) % 64;

		for (i = 0; i < n; i++) {
			ids[i] = rng(&seed) % rows;
			vers[i] = call;
		}
		fill_values(&seed, vals, n, dim, GPU_F32);
		if (call % 10 == 9) {
			CU_ASSERT_EQUAL(gpu_restore(p.gpu, ids, vals, n), FR_OK);
		} else {
			CU_ASSERT_EQUAL(gpu_apply(p.gpu, ids, vers, vals, n),
					FR_OK);
		}
		for (i = 0; i < n; i++)
			memcpy(model + ids[i] * rb, vals + i * rb, rb);
	}
	/* One row rewritten by 500 calls of one entry: the last stays. */
	ids[0] = 7;
	for (call = 0; call < 500; call++) {
		for (i = 0; i < dim; i++) {
			v = (uint32_t)(call * 1000 + i);
			memcpy(vals + i * 4, &v, 4);
		}
		CU_ASSERT_EQUAL(gpu_apply(p.gpu, ids, NULL, vals, 1), FR_OK);
	}
	memcpy(model + 7 * rb, vals, rb);
	for (i = 0; i < rows; i++)
		all_ids[i] = i;
	CU_ASSERT_EQUAL(gpu_gather(p.gpu, all_ids, rows, out), FR_OK);
	CU_ASSERT(memcmp(out, model, rows * rb) == 0);
	CU_ASSERT_EQUAL(sum_of(p.gpu), XXH3_64bits(model, rows * rb));
	pair_free(&p);
	free(out);
	free(model);
}

/* Freeing a table with work still queued waits for it, then lets go. */
static void test_free_with_work_queued(void)
{
	struct gpu_table_desc d = {
		.name = "queued", .rows = 100000, .dim = 64,
		.dtype = GPU_F32, .device = 0,
	};
	enum fr_err e = FR_ERR_INVAL;
	struct gpu_table *t = gpu_table_new(cu_be, &d, &e);
	uint64_t seed = 9;
	struct batch b;
	size_t i;

	CU_ASSERT_EQUAL_FATAL(e, FR_OK);
	batch_new(&b, 100000, 256);
	for (i = 0; i < 100000; i++)
		b.ids[i] = 99999 - i;
	fill_values(&seed, b.vals, 100000, 64, GPU_F32);
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(gpu_apply(t, b.ids, NULL, b.vals, 100000),
				FR_OK);
	gpu_table_free(t);
	batch_free(&b);
}

/* The benchmark's scatter (gpu_cuda_bench_scatter): the ids it copies to
 * the device land before its kernels read them, over several chunks, and
 * exactly the rows named get the 0x5a pattern. */
static void test_bench_scatter(void)
{
	const uint64_t rows = 100000;
	const size_t n = 40000;           /* x 512 B: three chunks */
	struct gpu_table_desc d = {
		.name = "bench", .rows = rows, .dim = 128,
		.dtype = GPU_F32, .device = 0,
	};
	enum fr_err e = FR_ERR_INVAL;
	struct gpu_table *t = gpu_table_new(cu_be, &d, &e), *c;
	uint64_t ns = 1, *ids = malloc(n * sizeof(*ids)), other[2];
	uint8_t *out = malloc(n * 512);
	size_t i;
	int pattern = 1, zero = 1;

	CU_ASSERT_EQUAL_FATAL(e, FR_OK);
	CU_ASSERT_FATAL(ids && out);
	for (i = 0; i < n; i++)
		ids[i] = (n - 1 - i) * 2;    /* even rows, falling */
	CU_ASSERT_EQUAL(gpu_cuda_bench_scatter(t, ids, n, 2, &ns), FR_OK);
	CU_ASSERT_EQUAL(gpu_gather(t, ids, n, out), FR_OK);
	for (i = 0; i < n * 512; i++)
		pattern &= out[i] == 0x5a;
	CU_ASSERT(pattern);
	other[0] = 1;                       /* odd rows: untouched */
	other[1] = 2 * n + 1;
	CU_ASSERT_EQUAL(gpu_gather(t, other, 2, out), FR_OK);
	for (i = 0; i < 2 * 512; i++)
		zero &= out[i] == 0;
	CU_ASSERT(zero);
	ids[3] = rows;
	CU_ASSERT_EQUAL(gpu_cuda_bench_scatter(t, ids, n, 1, &ns),
			FR_ERR_RANGE);
	c = gpu_table_new(gpu_backend_cpu(), &d, &e);
	CU_ASSERT_EQUAL_FATAL(e, FR_OK);
	CU_ASSERT_EQUAL(gpu_cuda_bench_scatter(c, other, 2, 1, &ns),
			FR_ERR_INVAL);
	gpu_table_free(c);
	gpu_table_free(t);
	free(out);
	free(ids);
}

/* One table past 4 GiB or 2^32 elements: rows around each 2^k byte
 * offset (k = 32..36) and at both ends are written and gathered back, and
 * the checksum equals XXH3 of the same bytes built on the host, so a
 * 32-bit offset or element index anywhere (kernels, chunked checksum)
 * shows as a wrong row or a wrong sum.  A device with too little free
 * memory (and the emulator, which has 1 GiB) refuses the table with
 * FR_ERR_TOOBIG; that case is skipped, saying so. */
#define BIG_MAXW 20
static void big_case(const char *name, uint64_t rows, uint32_t dim,
		     enum gpu_dtype dt)
{
	struct gpu_table_desc d = {
		.name = name, .rows = rows, .dim = dim, .dtype = dt,
		.device = 0,
	};
	const size_t rb = (size_t)dim * dtype_bytes(dt), chunk = 1 << 20;
	uint64_t ids[BIG_MAXW], seed = rows, off, got = 0, k;
	uint8_t vals[BIG_MAXW * 512], out[BIG_MAXW * 512], *buf;
	enum fr_err e = FR_ERR_INVAL;
	struct gpu_table *t;
	XXH3_state_t *st;
	size_t n = 0, i, j;
	bool dirty = false;

	CU_ASSERT_FATAL(rb <= 512);
	t = gpu_table_new(cu_be, &d, &e);
	if (!t) {
		CU_ASSERT_EQUAL(e, FR_ERR_TOOBIG);
		printf("\n    %s skipped: %s\n", name, fr_errmsg());
		return;
	}
	ids[n++] = 0;
	ids[n++] = rows - 1;
	for (k = 32; k <= 36; k++) {
		uint64_t r = (1ull << k) / rb;

		for (j = 0; j < 3; j++)
			if (r - 1 + j > 0 && r - 1 + j < rows - 1 &&
			    n < BIG_MAXW)
				ids[n++] = r - 1 + j;
	}
	fill_values(&seed, vals, n, dim, dt);
	CU_ASSERT_EQUAL(gpu_apply(t, ids, NULL, vals, n), FR_OK);
	memset(out, 0xa5, n * rb);
	CU_ASSERT_EQUAL(gpu_gather(t, ids, n, out), FR_OK);
	CU_ASSERT(memcmp(out, vals, n * rb) == 0);

	/* The expected sum: zeros, with the written rows laid over them. */
	buf = calloc(1, chunk);
	st = XXH3_createState();
	CU_ASSERT_FATAL(buf && st && XXH3_64bits_reset(st) == XXH_OK);
	for (off = 0; off < rows * rb; off += chunk) {
		size_t len = rows * rb - off < chunk ? (size_t)(rows * rb - off)
						    : chunk;

		if (dirty)
			memset(buf, 0, chunk);
		dirty = false;
		for (i = 0; i < n; i++) {
			uint64_t a = ids[i] * rb;
			uint64_t lo = a > off ? a : off;
			uint64_t hi = a + rb < off + len ? a + rb : off + len;

			if (lo >= hi)
				continue;
			memcpy(buf + (lo - off), vals + i * rb + (lo - a),
			       (size_t)(hi - lo));
			dirty = true;
		}
		XXH3_64bits_update(st, buf, len);
	}
	CU_ASSERT_EQUAL(gpu_checksum(t, &got), FR_OK);
	CU_ASSERT_EQUAL(got, XXH3_64bits_digest(st));
	XXH3_freeState(st);
	free(buf);
	gpu_table_free(t);
}

static void test_big_offsets(void)
{
	/* 4.6 GB: byte offsets past 2^32, 16-byte elements. */
	big_case("big_f32x128", 9000000, 128, GPU_F32);
	/* 8.6 GB: 2-byte elements, element indices past 2^32. */
	big_case("big_f16x3", 1431655800ull, 3, GPU_F16);
}

#ifdef FRESHET_CUDA_EMU
/* emu.cpp: the n-th cudaMemcpyAsync from now fails (0: the next one)
 * with cudaErrorIllegalAddress; -1: none. */
extern long emu_fail_copy_at;

/* A CUDA error marks the table broken: that op and every later one are
 * FR_ERR_GPU with the runtime's text, the table frees cleanly, and a new
 * table works.  Failures at the first and a later chunk of an apply, in
 * a gather and in a checksum's second chunk.  Emulator only: a real
 * device cannot be made to fail on cue. */
static void test_broken_after_cuda_error(void)
{
	struct gpu_table_desc d = {
		.name = "broken", .rows = 100000, .dim = 64,
		.dtype = GPU_F32, .device = 0,
	};
	static const long fail_at[] = { 0, 1, 0, 1 };
	const size_t n = 80000;           /* x 256 B: three chunks */
	uint64_t seed = 3, sum, *ids = malloc(n * sizeof(*ids));
	uint8_t *vals = malloc(n * 256);
	enum fr_err e = FR_ERR_INVAL;
	struct gpu_table *t;
	size_t i, op;

	CU_ASSERT_FATAL(ids && vals);
	for (i = 0; i < n; i++)
		ids[i] = i;
	fill_values(&seed, vals, n, 64, GPU_F32);
	for (op = 0; op < 4; op++) {
		t = gpu_table_new(cu_be, &d, &e);
		CU_ASSERT_EQUAL_FATAL(e, FR_OK);
		CU_ASSERT_EQUAL(gpu_apply(t, ids, NULL, vals, 1000), FR_OK);
		emu_fail_copy_at = fail_at[op];
		switch (op) {
		case 0:   /* the first chunk's copy */
			e = gpu_apply(t, ids, NULL, vals, 10);
			break;
		case 1:   /* the second chunk's copy, the first queued */
			e = gpu_apply(t, ids, NULL, vals, n);
			break;
		case 2:
			e = gpu_gather(t, ids, 10, vals);
			break;
		default:  /* 25.6 MB: the second 8 MiB chunk's copy */
			e = gpu_checksum(t, &sum);
			break;
		}
		emu_fail_copy_at = -1;
		CU_ASSERT_EQUAL(e, FR_ERR_GPU);
		CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "broken"));
		CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "emulated error"));
		/* Every later op is refused, naming the first error. */
		CU_ASSERT_EQUAL(gpu_gather(t, ids, 1, vals), FR_ERR_GPU);
		CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "refused"));
		CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "emulated error"));
		CU_ASSERT_EQUAL(gpu_apply(t, ids, NULL, vals, 1), FR_ERR_GPU);
		CU_ASSERT_EQUAL(gpu_restore(t, ids, vals, 1), FR_ERR_GPU);
		CU_ASSERT_EQUAL(gpu_checksum(t, &sum), FR_ERR_GPU);
		gpu_table_free(t);
	}
	/* A table built afterwards is healthy. */
	t = gpu_table_new(cu_be, &d, &e);
	CU_ASSERT_EQUAL_FATAL(e, FR_OK);
	CU_ASSERT_EQUAL(gpu_apply(t, ids, NULL, vals, 10), FR_OK);
	CU_ASSERT_EQUAL(gpu_checksum(t, &sum), FR_OK);
	gpu_table_free(t);
	free(vals);
	free(ids);
}
#endif

static const struct fr_unit_test cuda_tests[] = {
	{ "select cuda and auto", test_select },
	{ "random batches equal the cpu backend", test_random_vs_cpu },
	{ "f16 halves bit for bit", test_f16_same_bits },
	{ "batches over several staging chunks", test_large_batches },
	{ "out-of-range ids write nothing", test_range_writes_nothing },
	{ "refusals at registration", test_refusals },
	{ "many applies, one gather", test_stream_order },
	{ "free with work queued", test_free_with_work_queued },
	{ "bench scatter", test_bench_scatter },
	{ "tables past 4 GiB and 2^32 elements", test_big_offsets },
#ifdef FRESHET_CUDA_EMU
	{ "a CUDA error breaks the table", test_broken_after_cuda_error },
#endif
};

int main(void)
{
	int ndev;

	/* The device probe says at info level why it found no device. */
	fr_log_set_level(FR_LOG_INFO);
	cu_be = gpu_backend_cuda();
	if (!cu_be) {
		fprintf(stderr, "test_gpu_cuda: SKIPPED: this build has no CUDA backend (configured with FRESHET_CUDA=OFF, or no nvcc was found)\n");
		return SKIP;
	}
	ndev = gpu_cuda_device_count();
	if (ndev == 0) {
		fprintf(stderr, "test_gpu_cuda: SKIPPED: no CUDA device is present (the gpu probe's log line says what the CUDA runtime answered)\n");
		return SKIP;
	}
	printf("test_gpu_cuda: %d CUDA device(s); tables on device 0\n", ndev);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return FR_UNIT_EXIT_SETUP;
	if (!gpu_vectors_add_suite(cu_be) ||
	    !fr_unit_add_suite("cuda", NULL, NULL, cuda_tests,
			       FR_UNIT_COUNT(cuda_tests))) {
		CU_cleanup_registry();
		return FR_UNIT_EXIT_SETUP;
	}
	return fr_unit_run_all();
}
