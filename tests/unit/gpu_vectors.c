/*
 * gpu_vectors.c — backend-independent test vectors for gpu/gpu.h.  Every
 * expectation is computed by a reference model of plain byte arrays (or
 * written out by hand), never by asking a backend, so a backend passes
 * only when its bytes equal the model's.
 *
 * Shapes cover rows that are whole cache lines (256 B, the CPU backend's
 * streaming path), rows that are not (12 B, 80 B) and the smallest row
 * (one f16).  Random batches come from a fixed-seed generator so every
 * backend sees the same bytes.
 *
 * What is not here: backend choice and device probing (test_gpu.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <CUnit/Basic.h>

#include "gpu_vectors.h"
#include "unit_main.h"

static const struct gpu_backend *vec_be;

struct vec_shape {
	const char *name;
	uint64_t rows;
	uint32_t dim;
	enum gpu_dtype dtype;
};

static const struct vec_shape vec_shapes[] = {
	{ "vec_f32x64", 37, 64, GPU_F32 },  /* 256-byte rows: whole lines */
	{ "vec_f32x3", 50, 3, GPU_F32 },    /* 12-byte rows */
	{ "vec_f16x40", 29, 40, GPU_F16 },  /* 80-byte rows */
	{ "vec_f16x1", 8, 1, GPU_F16 },     /* 2-byte rows */
};
#define VEC_NSHAPES (sizeof(vec_shapes) / sizeof(vec_shapes[0]))

static size_t vec_row_bytes(const struct vec_shape *s)
{
	return (size_t)s->dim * (s->dtype == GPU_F16 ? 2 : 4);
}

/* ------------------------------------------------------------------------
 * Reference model
 * ---------------------------------------------------------------------- */

struct vec_ref {
	uint8_t *bytes;
	uint64_t rows;
	size_t rb;
};

static void vec_ref_init(struct vec_ref *r, const struct vec_shape *s)
{
	r->rows = s->rows;
	r->rb = vec_row_bytes(s);
	r->bytes = calloc(r->rows, r->rb);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->bytes);
}

static void vec_ref_fini(struct vec_ref *r)
{
	free(r->bytes);
	r->bytes = NULL;
}

/* The header's rule, the slow obvious way: entry i is written unless
 * another entry of the same row has a higher version, or an equal version
 * and a later place in the batch.  NULL versions are all equal. */
static void vec_ref_apply(struct vec_ref *r, const uint64_t *rows,
			  const uint64_t *versions, const uint8_t *values,
			  size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		uint64_t vi = versions ? versions[i] : 0;
		int wins = 1;

		for (j = 0; j < n && wins; j++) {
			uint64_t vj = versions ? versions[j] : 0;

			if (j != i && rows[j] == rows[i] &&
			    (vj > vi || (vj == vi && j > i)))
				wins = 0;
		}
		if (wins)
			memcpy(r->bytes + rows[i] * r->rb, values + i * r->rb,
			       r->rb);
	}
}

static void vec_ref_restore(struct vec_ref *r, const uint64_t *rows,
			    const uint8_t *values, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		memcpy(r->bytes + rows[i] * r->rb, values + i * r->rb, r->rb);
}

/* xorshift64*: fixed seeds, same stream on every backend and host. */
static uint64_t vec_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void vec_fill(uint64_t *s, uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(vec_rand(s) >> 56);
}

static struct gpu_table *vec_new(const struct vec_shape *s)
{
	struct gpu_table_desc d = {
		.name = s->name,
		.rows = s->rows,
		.dim = s->dim,
		.dtype = s->dtype,
		.device = 0,
		.budget_bytes = 0,
	};
	enum fr_err e = FR_ERR_INVAL;
	struct gpu_table *t = gpu_table_new(vec_be, &d, &e);

	CU_ASSERT_EQUAL(e, FR_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

static uint64_t vec_checksum(struct gpu_table *t)
{
	uint64_t sum = 0;

	CU_ASSERT_EQUAL(gpu_checksum(t, &sum), FR_OK);
	return sum;
}

/* The table must equal the model: a gather of every row in order, one in
 * reverse order with a repeated id, and the checksum. */
static void vec_expect(struct gpu_table *t, const struct vec_ref *r)
{
	size_t n = (size_t)r->rows, i;
	uint64_t *ids = malloc((n + 1) * sizeof(*ids));
	uint8_t *out = malloc((n + 1) * r->rb);

	CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	for (i = 0; i < n; i++)
		ids[i] = i;
	CU_ASSERT_EQUAL(gpu_gather(t, ids, n, out), FR_OK);
	CU_ASSERT(memcmp(out, r->bytes, n * r->rb) == 0);

	for (i = 0; i < n; i++)
		ids[i] = n - 1 - i;
	ids[n] = n / 2;
	CU_ASSERT_EQUAL(gpu_gather(t, ids, n + 1, out), FR_OK);
	for (i = 0; i <= n; i++)
		CU_ASSERT(memcmp(out + i * r->rb, r->bytes + ids[i] * r->rb,
				 r->rb) == 0);

	CU_ASSERT_EQUAL(vec_checksum(t), XXH3_64bits(r->bytes, n * r->rb));
	free(out);
	free(ids);
}

/* Apply n entries to the table and to the model alike (gpu_apply must
 * accept them); the table must then equal the model. */
static void vec_apply_both(struct gpu_table *t, struct vec_ref *r,
			   const uint64_t *ids, const uint64_t *versions,
			   const uint8_t *values, size_t n)
{
	CU_ASSERT_EQUAL(gpu_apply(t, ids, versions, values, n), FR_OK);
	vec_ref_apply(r, ids, versions, values, n);
	vec_expect(t, r);
}

/* One shape's table, its model, and a batch of room for cap entries. */
struct vec_run {
	struct gpu_table *t;
	struct vec_ref r;
	size_t rb;
	uint64_t *ids, *vers;
	uint8_t *vals;
};

static void vec_run_init(struct vec_run *v, const struct vec_shape *s,
			 size_t cap)
{
	v->t = vec_new(s);
	v->rb = vec_row_bytes(s);
	v->ids = malloc(cap * sizeof(*v->ids));
	v->vers = malloc(cap * sizeof(*v->vers));
	v->vals = malloc(cap * v->rb);
	CU_ASSERT_FATAL(v->ids && v->vers && v->vals);
	vec_ref_init(&v->r, s);
}

static void vec_run_fini(struct vec_run *v)
{
	vec_ref_fini(&v->r);
	free(v->vals);
	free(v->vers);
	free(v->ids);
	gpu_table_free(v->t);
}

/* ------------------------------------------------------------------------
 * Vectors
 * ---------------------------------------------------------------------- */

static void vec_test_new_zeroed(void)
{
	size_t k;

	for (k = 0; k < VEC_NSHAPES; k++) {
		const struct vec_shape *s = &vec_shapes[k];
		struct gpu_table *t = vec_new(s);
		struct vec_ref r;

		vec_ref_init(&r, s);
		CU_ASSERT_EQUAL(gpu_row_bytes(t), vec_row_bytes(s));
		CU_ASSERT_EQUAL(gpu_table_rows(t), s->rows);
		CU_ASSERT_PTR_EQUAL(gpu_table_backend(t), vec_be);
		vec_expect(t, &r);
		vec_ref_fini(&r);
		gpu_table_free(t);
	}
}

static void vec_test_apply_overwrite(void)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	size_t k;

	for (k = 0; k < VEC_NSHAPES; k++) {
		const struct vec_shape *s = &vec_shapes[k];
		struct vec_run v;
		size_t n = 0, i;

		vec_run_init(&v, s, s->rows);

		/* Into the empty table: every other row, scattered order. */
		for (i = 1; i < s->rows; i += 2) {
			v.ids[n] = (i * 7) % s->rows;
			v.vers[n] = 100 + n;
			n++;
		}
		vec_fill(&seed, v.vals, n * v.rb);
		vec_apply_both(v.t, &v.r, v.ids, v.vers, v.vals, n);

		/* Overwrite: half the rows again, plus rows never written. */
		n = 0;
		for (i = 0; i < s->rows; i += 2)
			v.ids[n++] = i;
		for (i = 0; i < n; i++)
			v.vers[i] = 1000 + i;
		vec_fill(&seed, v.vals, n * v.rb);
		vec_apply_both(v.t, &v.r, v.ids, v.vers, v.vals, n);

		/* A later batch wins even with a lower version: the table
		 * mirrors the store, it does not second-guess it. */
		v.ids[0] = 0;
		v.vers[0] = 1;
		vec_fill(&seed, v.vals, v.rb);
		vec_apply_both(v.t, &v.r, v.ids, v.vers, v.vals, 1);

		/* An empty batch changes nothing. */
		vec_apply_both(v.t, &v.r, v.ids, v.vers, v.vals, 0);
		vec_run_fini(&v);
	}
}

static void vec_test_duplicates(void)
{
	/* Written out by hand, not by the model: row 5 has versions 10, 12,
	 * 12 (the later 12, entry 3, wins); row 3 has 9 then 4 (the earlier
	 * entry 1 wins); row 7 appears once. */
	static const uint64_t ids[] = { 5, 3, 5, 5, 3, 7 };
	static const uint64_t vers[] = { 10, 9, 12, 12, 4, 1 };
	static const uint64_t want_ids[] = { 5, 3, 7 };
	static const size_t want_entry[] = { 3, 1, 5 };
	/* No versions: the last entry of each row wins. */
	static const uint64_t ids2[] = { 2, 6, 2, 2 };
	static const uint64_t want2_ids[] = { 2, 6 };
	static const size_t want2_entry[] = { 3, 1 };
	/* Versions that never decrease, with a tie on row 4: entry 3. */
	static const uint64_t ids3[] = { 4, 4, 1, 4 };
	static const uint64_t vers3[] = { 1, 2, 2, 2 };
	static const uint64_t want3_ids[] = { 4, 1 };
	static const size_t want3_entry[] = { 3, 2 };
	static const struct {
		size_t n, nwant;
		const uint64_t *ids, *vers, *want_ids;
		const size_t *want_entry;
	} cases[] = {
		{ 6, 3, ids, vers, want_ids, want_entry },
		{ 4, 2, ids2, NULL, want2_ids, want2_entry },
		{ 4, 2, ids3, vers3, want3_ids, want3_entry },
	};
	uint64_t seed = 42;
	size_t k, c, i;

	for (k = 0; k < VEC_NSHAPES; k++) {
		const struct vec_shape *s = &vec_shapes[k];
		struct gpu_table *t = vec_new(s);
		size_t rb = vec_row_bytes(s);
		uint8_t *vals = malloc(6 * rb), *out = malloc(3 * rb);
		struct vec_ref r;

		CU_ASSERT_FATAL(vals && out);
		vec_ref_init(&r, s);
		for (c = 0; c < FR_UNIT_COUNT(cases); c++) {
			size_t n = cases[c].n, nwant = cases[c].nwant;
			const size_t *want = cases[c].want_entry;

			/* Distinct bytes per entry so the winner is
			 * identifiable (0x10 + i, 0x20 + i, 0x30 + i). */
			vec_fill(&seed, vals, n * rb);
			for (i = 0; i < n; i++)
				vals[i * rb] = (uint8_t)(0x10 * (c + 1) + i);
			CU_ASSERT_EQUAL(gpu_apply(t, cases[c].ids,
						  cases[c].vers, vals, n),
					FR_OK);
			CU_ASSERT_EQUAL(gpu_gather(t, cases[c].want_ids, nwant,
						   out), FR_OK);
			for (i = 0; i < nwant; i++)
				CU_ASSERT(memcmp(out + i * rb,
						 vals + want[i] * rb, rb) == 0);
			vec_ref_apply(&r, cases[c].ids, cases[c].vers, vals, n);
			vec_expect(t, &r);
		}
		vec_ref_fini(&r);
		free(out);
		free(vals);
		gpu_table_free(t);
	}
}

/* Random batches with many repeats and version ties, some without
 * versions, some restores; the whole table is compared after each. */
static void vec_test_random(void)
{
	uint64_t seed = 0x1234567887654321ull;
	size_t k, round, i;

	for (k = 0; k < VEC_NSHAPES; k++) {
		const struct vec_shape *s = &vec_shapes[k];
		size_t cap = 2 * s->rows;
		struct vec_run v;

		vec_run_init(&v, s, cap);
		for (round = 0; round < 40; round++) {
			size_t n = 1 + vec_rand(&seed) % cap;
			unsigned kind = (unsigned)(vec_rand(&seed) % 4);

			for (i = 0; i < n; i++) {
				v.ids[i] = vec_rand(&seed) % s->rows;
				v.vers[i] = vec_rand(&seed) % 4;
			}
			vec_fill(&seed, v.vals, n * v.rb);
			if (kind == 0) {
				CU_ASSERT_EQUAL(gpu_restore(v.t, v.ids, v.vals,
							    n), FR_OK);
				vec_ref_restore(&v.r, v.ids, v.vals, n);
				vec_expect(v.t, &v.r);
			} else {
				vec_apply_both(v.t, &v.r, v.ids,
					       kind == 1 ? NULL : v.vers,
					       v.vals, n);
			}
		}
		vec_run_fini(&v);
	}
}

static void vec_test_gather_range(void)
{
	const struct vec_shape *s = &vec_shapes[0];
	struct gpu_table *t = vec_new(s);
	size_t rb = vec_row_bytes(s), i;
	uint64_t ids[3] = { 0, s->rows - 1, s->rows };
	uint64_t far[1] = { UINT64_MAX };
	uint8_t *out = malloc(3 * rb);
	int clean = 1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	memset(out, 0xa5, 3 * rb);
	CU_ASSERT_EQUAL(gpu_gather(t, ids, 3, out), FR_ERR_RANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), s->name));
	CU_ASSERT_EQUAL(gpu_gather(t, far, 1, out), FR_ERR_RANGE);
	for (i = 0; i < 3 * rb; i++)
		clean &= out[i] == 0xa5;
	CU_ASSERT(clean);
	free(out);
	gpu_table_free(t);
}

static void vec_test_apply_range(void)
{
	uint64_t seed = 7;
	size_t k;

	for (k = 0; k < VEC_NSHAPES; k++) {
		const struct vec_shape *s = &vec_shapes[k];
		struct gpu_table *t = vec_new(s);
		size_t rb = vec_row_bytes(s), i;
		uint64_t ids[5], vers[5] = { 5, 5, 5, 5, 5 };
		uint8_t *vals = malloc(s->rows * rb);
		uint64_t *all = malloc(s->rows * sizeof(*all));
		uint64_t before;
		struct vec_ref r;

		CU_ASSERT_FATAL(vals && all);
		vec_ref_init(&r, s);
		for (i = 0; i < s->rows; i++)
			all[i] = i;
		vec_fill(&seed, vals, s->rows * rb);
		CU_ASSERT_EQUAL(gpu_apply(t, all, NULL, vals, s->rows), FR_OK);
		vec_ref_apply(&r, all, NULL, vals, s->rows);
		before = vec_checksum(t);

		/* Bad id last, after a repeat; bad id first; far away. */
		ids[0] = 1; ids[1] = 0; ids[2] = 1; ids[3] = s->rows;
		vec_fill(&seed, vals, 4 * rb);
		CU_ASSERT_EQUAL(gpu_apply(t, ids, vers, vals, 4), FR_ERR_RANGE);
		CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), s->name));
		ids[0] = s->rows + 3;
		CU_ASSERT_EQUAL(gpu_apply(t, ids, NULL, vals, 3), FR_ERR_RANGE);
		ids[0] = UINT64_MAX;
		CU_ASSERT_EQUAL(gpu_apply(t, ids, NULL, vals, 1), FR_ERR_RANGE);
		CU_ASSERT_EQUAL(vec_checksum(t), before);
		vec_expect(t, &r);

		/* The table still applies correctly after the refusals,
		 * both a batch of distinct rows and one with repeats. */
		ids[0] = 0; ids[1] = 1;
		vec_apply_both(t, &r, ids, NULL, vals, 2);
		ids[0] = 1; ids[1] = 0; ids[2] = 1;
		vec_fill(&seed, vals, 3 * rb);
		vec_apply_both(t, &r, ids, vers, vals, 3);

		vec_ref_fini(&r);
		free(all);
		free(vals);
		gpu_table_free(t);
	}
}

static void vec_test_restore(void)
{
	static const uint64_t ids[] = { 1, 2, 3 };
	static const uint64_t vers[] = { 100, 100, 100 };
	static const uint64_t rids[] = { 2, 3, 2 };
	uint64_t seed = 99;
	size_t k;

	for (k = 0; k < VEC_NSHAPES; k++) {
		const struct vec_shape *s = &vec_shapes[k];
		struct gpu_table *t = vec_new(s);
		size_t rb = vec_row_bytes(s);
		uint8_t *vals = malloc(3 * rb), *out = malloc(rb);
		uint64_t bad[2] = { 0, s->rows }, before;
		struct vec_ref r;

		CU_ASSERT_FATAL(vals && out);
		vec_ref_init(&r, s);
		vec_fill(&seed, vals, 3 * rb);
		CU_ASSERT_EQUAL(gpu_apply(t, ids, vers, vals, 3), FR_OK);
		vec_ref_apply(&r, ids, vers, vals, 3);

		/* Restore ignores versions; a repeated row gets its last
		 * entry (row 2 <- entry 2). */
		vec_fill(&seed, vals, 3 * rb);
		CU_ASSERT_EQUAL(gpu_restore(t, rids, vals, 3), FR_OK);
		CU_ASSERT_EQUAL(gpu_gather(t, &rids[0], 1, out), FR_OK);
		CU_ASSERT(memcmp(out, vals + 2 * rb, rb) == 0);
		vec_ref_restore(&r, rids, vals, 3);
		vec_expect(t, &r);

		before = vec_checksum(t);
		CU_ASSERT_EQUAL(gpu_restore(t, bad, vals, 2), FR_ERR_RANGE);
		CU_ASSERT_EQUAL(vec_checksum(t), before);
		vec_expect(t, &r);

		vec_ref_fini(&r);
		free(out);
		free(vals);
		gpu_table_free(t);
	}
}

/* f32 input, its binary16 bits, and those bits widened back: IEEE round
 * to nearest even, as x86 F16C computes it. */
static const struct {
	uint32_t in, half, back;
} vec_f16_cases[] = {
	{ 0x00000000, 0x0000, 0x00000000 },  /* 0 */
	{ 0x80000000, 0x8000, 0x80000000 },  /* -0 */
	{ 0x3f800000, 0x3c00, 0x3f800000 },  /* 1 */
	{ 0xc0200000, 0xc100, 0xc0200000 },  /* -2.5 */
	{ 0x477fe000, 0x7bff, 0x477fe000 },  /* 65504, largest half */
	{ 0x477fef00, 0x7bff, 0x477fe000 },  /* 65519 rounds down */
	{ 0x477ff000, 0x7c00, 0x7f800000 },  /* 65520: tie, to infinity */
	{ 0x49742400, 0x7c00, 0x7f800000 },  /* 1e6 */
	{ 0xc9742400, 0xfc00, 0xff800000 },  /* -1e6 */
	{ 0xc7800000, 0xfc00, 0xff800000 },  /* -65536 */
	{ 0x3f801000, 0x3c00, 0x3f800000 },  /* 1 + 2^-11: tie, to even */
	{ 0x3f803000, 0x3c02, 0x3f804000 },  /* 1 + 3*2^-11: tie, up */
	{ 0x45001000, 0x6800, 0x45000000 },  /* 2049: tie, to even */
	{ 0x45003000, 0x6802, 0x45004000 },  /* 2051: tie, up */
	{ 0x33800000, 0x0001, 0x33800000 },  /* 2^-24, smallest subnormal */
	{ 0x33000000, 0x0000, 0x00000000 },  /* 2^-25: tie, to zero */
	{ 0x33c00000, 0x0002, 0x34000000 },  /* 1.5*2^-24: tie, up */
	{ 0x38800000, 0x0400, 0x38800000 },  /* 2^-14, smallest normal */
	{ 0x387fc000, 0x03ff, 0x387fc000 },  /* largest subnormal */
	{ 0x387fda40, 0x03ff, 0x387fc000 },  /* 6.1e-5 */
	{ 0x322bcc77, 0x0000, 0x00000000 },  /* 1e-8 underflows */
	{ 0x3dcccccd, 0x2e66, 0x3dccc000 },  /* 0.1 */
	{ 0x40490fd0, 0x4248, 0x40490000 },  /* 3.14159 */
	{ 0x7f800000, 0x7c00, 0x7f800000 },  /* inf */
	{ 0xff800000, 0xfc00, 0xff800000 },  /* -inf */
	{ 0x7fc00000, 0x7e00, 0x7fc00000 },  /* quiet NaN */
	{ 0x7f800001, 0x7e00, 0x7fc00000 },  /* signalling NaN, quieted */
	{ 0xffa00000, 0xff00, 0xffe00000 },  /* -sNaN, top payload kept */
	{ 0x7fbfe000, 0x7fff, 0x7fffe000 },  /* NaN, full half payload */
};
#define VEC_NF16 (sizeof(vec_f16_cases) / sizeof(vec_f16_cases[0]))

static void vec_test_f16(void)
{
	const struct vec_shape s = { "vec_f16_round", 4, VEC_NF16, GPU_F16 };
	struct gpu_table *t = vec_new(&s);
	float in[VEC_NF16], back[VEC_NF16];
	uint16_t half[VEC_NF16], got[VEC_NF16];
	uint64_t row = 2, rows4[4] = { 0, 1, 2, 3 };
	uint16_t all[4 * VEC_NF16];
	size_t i;

	for (i = 0; i < VEC_NF16; i++)
		memcpy(&in[i], &vec_f16_cases[i].in, sizeof(float));
	fr_f32_to_f16_n(in, half, VEC_NF16);
	for (i = 0; i < VEC_NF16; i++)
		CU_ASSERT_EQUAL(half[i], vec_f16_cases[i].half);

	CU_ASSERT_EQUAL(gpu_apply(t, &row, NULL, half, 1), FR_OK);
	memset(got, 0xee, sizeof(got));
	CU_ASSERT_EQUAL(gpu_gather(t, &row, 1, got), FR_OK);
	CU_ASSERT(memcmp(got, half, sizeof(half)) == 0);
	CU_ASSERT_EQUAL(gpu_gather(t, rows4, 4, all), FR_OK);
	for (i = 0; i < 4 * VEC_NF16; i++)
		CU_ASSERT_EQUAL(all[i], i / VEC_NF16 == 2 ?
				vec_f16_cases[i % VEC_NF16].half : 0);

	fr_f16_to_f32_n(got, back, VEC_NF16);
	for (i = 0; i < VEC_NF16; i++) {
		uint32_t b;

		memcpy(&b, &back[i], sizeof(b));
		CU_ASSERT_EQUAL(b, vec_f16_cases[i].back);
	}
	gpu_table_free(t);
}

static void vec_test_budget(void)
{
	struct gpu_table_desc d = {
		.name = "vec_budget", .rows = 1000, .dim = 64,
		.dtype = GPU_F32, .budget_bytes = 255999,
	};
	enum fr_err e = FR_OK;
	struct gpu_table *t;

	t = gpu_table_new(vec_be, &d, &e);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_EQUAL(e, FR_ERR_TOOBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "vec_budget"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "256000"));
	gpu_table_free(t);

	d.budget_bytes = 256000;     /* exactly fits */
	t = gpu_table_new(vec_be, &d, &e);
	CU_ASSERT_EQUAL(e, FR_OK);
	CU_ASSERT_PTR_NOT_NULL(t);
	gpu_table_free(t);

	d.budget_bytes = 0;          /* no budget, but no address space */
	d.rows = 1ull << 62;
	t = gpu_table_new(vec_be, &d, &e);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_EQUAL(e, FR_ERR_TOOBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "vec_budget"));
	gpu_table_free(t);
}

static void vec_test_invalid(void)
{
	static const struct {
		uint64_t rows;
		uint32_t dim;
		int dtype;
		const char *field;
	} bad[] = {
		{ 10, 0, GPU_F32, "dim" },
		{ 0, 4, GPU_F16, "rows" },
		{ 10, 4, 0, "dtype" },
		{ 10, 4, 3, "dtype" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gpu_table_desc d = {
			.name = "vec_invalid", .rows = bad[i].rows,
			.dim = bad[i].dim, .dtype = (enum gpu_dtype)bad[i].dtype,
		};
		enum fr_err e = FR_OK;
		struct gpu_table *t = gpu_table_new(vec_be, &d, &e);

		CU_ASSERT_PTR_NULL(t);
		CU_ASSERT_EQUAL(e, FR_ERR_INVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), bad[i].field));
		gpu_table_free(t);
	}
}

/* ------------------------------------------------------------------------
 * Registration
 * ---------------------------------------------------------------------- */

CU_pSuite gpu_vectors_add_suite(const struct gpu_backend *be)
{
	static char name[64];
	static const struct fr_unit_test tests[] = {
		{ "new table is zero", vec_test_new_zeroed },
		{ "apply and overwrite", vec_test_apply_overwrite },
		{ "duplicates resolved by version", vec_test_duplicates },
		{ "random batches match the model", vec_test_random },
		{ "gather out of range", vec_test_gather_range },
		{ "apply out of range changes nothing", vec_test_apply_range },
		{ "restore ignores versions", vec_test_restore },
		{ "f16 round trip", vec_test_f16 },
		{ "budget refusal", vec_test_budget },
		{ "invalid descriptors", vec_test_invalid },
	};

	if (!be)
		return NULL;
	vec_be = be;
	snprintf(name, sizeof(name), "vectors/%s", be->name);
	return fr_unit_add_suite(name, NULL, NULL, tests, FR_UNIT_COUNT(tests));
}

int gpu_vectors_run(const struct gpu_backend *be)
{
	int failures;

	if (!be)
		return -1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return -1;
	if (!gpu_vectors_add_suite(be)) {
		CU_cleanup_registry();
		return -1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures;
}
