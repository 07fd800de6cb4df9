/*
 * test_shard_store.c — CUnit suite for the versioned store (shard/store.c,
 * vv.c, snapshot.c): last-writer-wins, duplicates and won[] flags, invalid
 * batches changing nothing, order-independence (a property test over
 * random batches), the docs/design.md §2 two-origin case, the changed-rows index
 * against brute force on both its paths, digests and the summary, and
 * snapshots (round trip and corrupted files).  Rollback is in
 * test_shard_undo.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <xxhash.h>

#include "shard/shard.h"
#include "shard_testutil.h"
#include "unit_main.h"

/* ----------------------------------------------------------------------
 * Helpers
 * -------------------------------------------------------------------- */

/* The per-element step of this suite's row values (see fill_value). */
#define VALUE_STEP 0.25f

/* A batch with its own storage. */
struct tb {
	struct shard_batch b;
	uint32_t dim;
	uint64_t rows[64], vers[64];
	uint32_t orgs[64];
	float sig[64];
	float *vals;
	struct shard_vv_ent covers[8];
};

static void tb_init(struct tb *t, uint32_t shard, uint32_t dim)
{
	memset(t, 0, sizeof(*t));
	t->dim = dim;
	t->vals = calloc(64, dim * sizeof(float));
	CU_ASSERT_FATAL(t->vals != NULL);
	t->b = (struct shard_batch){
		.table = 0, .shard = shard,
		.rows = t->rows, .versions = t->vers, .origins = t->orgs,
		.significance = t->sig, .values = t->vals, .covers = t->covers,
	};
}

static void tb_fini(struct tb *t)
{
	free(t->vals);
	t->vals = NULL;
}

static void tb_row(struct tb *t, uint64_t row, uint64_t ver, uint32_t org)
{
	uint32_t i = t->b.n++;

	CU_ASSERT_FATAL(i < 64);
	t->rows[i] = row;
	t->vers[i] = ver;
	t->orgs[i] = org;
	t->sig[i] = 1.0f;
	fill_value(t->vals + (size_t)i * t->dim, t->dim, row, ver, org,
		   VALUE_STEP);
}

static void tb_cover(struct tb *t, uint32_t org, uint64_t ver)
{
	CU_ASSERT_FATAL(t->b.ncovers < 8);
	t->covers[t->b.ncovers].origin = org;
	t->covers[t->b.ncovers].version = ver;
	t->b.ncovers++;
}

static void expect_row(const struct shard_store *st, uint64_t row,
		       uint64_t ver, uint32_t org, uint32_t dim)
{
	float want[256];
	uint64_t v;
	uint32_t o;

	shard_store_row_version(st, 0, row, &v, &o);
	CU_ASSERT_EQUAL(v, ver);
	CU_ASSERT_EQUAL(o, org);
	if (ver == 0)
		memset(want, 0, dim * sizeof(float));
	else
		fill_value(want, dim, row, ver, org, VALUE_STEP);
	CU_ASSERT(memcmp(shard_store_row(st, 0, row), want,
			 dim * sizeof(float)) == 0);
}

/* The answer computed here from public reads only. */
static void brute_changes(const struct shard_store *st, uint32_t shard,
			  const struct shard_vv *since,
			  struct shard_changes *out)
{
	const struct shard_model_def *d = shard_store_def(st);

	out->n = 0;
	for (uint64_t row = shard; row < d->tables[0].rows; row += d->shards) {
		uint64_t v;
		uint32_t o;

		shard_store_row_version(st, 0, row, &v, &o);
		if (v == 0 || v <= shard_vv_get(since, o))
			continue;
		if (out->n == out->cap) {
			out->cap = out->cap ? 2 * out->cap : 64;
			out->c = realloc(out->c, out->cap * sizeof(*out->c));
			CU_ASSERT_FATAL(out->c != NULL);
		}
		out->c[out->n].row = row;
		out->c[out->n].version = v;
		out->c[out->n].origin = o;
		out->n++;
	}
	if (out->n > 1)
		qsort(out->c, out->n, sizeof(*out->c), cmp_change);
}

static bool changes_equal(const struct shard_changes *a,
			  const struct shard_changes *b)
{
	if (a->n != b->n)
		return false;
	/* Field by field: the struct has tail padding. */
	for (uint32_t i = 0; i < a->n; i++)
		if (cmp_change(&a->c[i], &b->c[i]) != 0)
			return false;
	return true;
}

/* same_rows, and the same version vectors (entry by entry) and summary. */
static bool stores_equal(const struct shard_store *a,
			 const struct shard_store *b)
{
	const struct shard_model_def *d = shard_store_def(a);

	if (!same_rows(a, b))
		return false;
	for (uint32_t s = 0; s < d->shards; s++) {
		const struct shard_vv *x = shard_store_vv(a, 0, s);
		const struct shard_vv *y = shard_store_vv(b, 0, s);

		if (!shard_vv_equal(x, y) || x->n != y->n)
			return false;
		for (uint32_t i = 0; i < x->n; i++)
			if (x->e[i].origin != y->e[i].origin ||
			    x->e[i].version != y->e[i].version)
				return false;
	}
	return shard_store_summary(a) == shard_store_summary(b);
}

static uint64_t apply_ok(struct shard_store *st, const struct tb *t,
			 uint8_t *won)
{
	struct shard_apply_result r;

	CU_ASSERT_EQUAL(shard_store_apply(st, &t->b, &r, won), FR_OK);
	return r.applied;
}

/* Apply a batch of t's holding the one row (row, ver, org); returns how
 * many rows were applied (0 or 1). */
static uint64_t apply_row(struct shard_store *st, struct tb *t, uint64_t row,
			  uint64_t ver, uint32_t org)
{
	t->b.n = 0;
	tb_row(t, row, ver, org);
	return apply_ok(st, t, NULL);
}

/* ----------------------------------------------------------------------
 * Version vectors
 * -------------------------------------------------------------------- */

static void test_vv(void)
{
	struct shard_vv a, b;

	shard_vv_init(&a);
	shard_vv_init(&b);
	CU_ASSERT_EQUAL(shard_vv_get(&a, 5), 0);
	CU_ASSERT_EQUAL(shard_vv_advance(&a, 5, 10), FR_OK);
	CU_ASSERT_EQUAL(shard_vv_advance(&a, 2, 7), FR_OK);
	CU_ASSERT_EQUAL(shard_vv_advance(&a, 5, 3), FR_OK);     /* no-op */
	CU_ASSERT_EQUAL(shard_vv_advance(&a, 9, 0), FR_OK);     /* no entry */
	CU_ASSERT_EQUAL(a.n, 2);
	CU_ASSERT_EQUAL(a.e[0].origin, 2);
	CU_ASSERT_EQUAL(shard_vv_get(&a, 5), 10);
	CU_ASSERT_EQUAL(shard_vv_get(&a, 2), 7);
	CU_ASSERT_EQUAL(shard_vv_copy(&b, &a), FR_OK);
	CU_ASSERT(shard_vv_equal(&a, &b));
	CU_ASSERT(shard_vv_dominates(&a, &b));
	CU_ASSERT_EQUAL(shard_vv_advance(&b, 7, 1), FR_OK);
	CU_ASSERT(!shard_vv_equal(&a, &b));
	CU_ASSERT(shard_vv_dominates(&b, &a));
	CU_ASSERT(!shard_vv_dominates(&a, &b));
	CU_ASSERT_EQUAL(shard_vv_advance(&a, 2, 8), FR_OK);
	CU_ASSERT(!shard_vv_dominates(&a, &b));
	CU_ASSERT(!shard_vv_dominates(&b, &a));
	for (uint32_t o = 100; a.n < SHARD_VV_MAX; o++)
		CU_ASSERT_EQUAL_FATAL(shard_vv_advance(&a, o, 1), FR_OK);
	CU_ASSERT_EQUAL(shard_vv_advance(&a, 99, 1), FR_ERR_TOOBIG);
	CU_ASSERT(errmsg_has("at most 256 origins"));
	CU_ASSERT_EQUAL(shard_vv_advance(&a, 100, 50), FR_OK);  /* existing */
	CU_ASSERT_EQUAL(shard_vv_get(&a, 100), 50);
	shard_vv_fini(&a);
	shard_vv_fini(&b);
	shard_vv_fini(NULL);
}

/* ----------------------------------------------------------------------
 * Last-writer-wins
 * -------------------------------------------------------------------- */

static void test_lww(void)
{
	struct shard_model_def d;
	struct shard_store *st;
	struct shard_apply_result r;
	struct tb t;

	make_def(&d, 40, 8, 4);
	st = new_store(&d, 0, 0);
	expect_row(st, 5, 0, 0, 8);

	tb_init(&t, 1, 8);
	CU_ASSERT_EQUAL(apply_row(st, &t, 5, 100, 2), 1);
	expect_row(st, 5, 100, 2, 8);

	/* Older: stale.  Same (version, origin): stale. */
	t.b.n = 0;
	tb_row(&t, 5, 99, 3);
	tb_row(&t, 5, 100, 2);
	CU_ASSERT_EQUAL(shard_store_apply(st, &t.b, &r, NULL), FR_OK);
	CU_ASSERT_EQUAL(r.applied, 0);
	CU_ASSERT_EQUAL(r.stale, 2);
	CU_ASSERT_EQUAL(r.refused, 0);
	expect_row(st, 5, 100, 2, 8);

	/* Equal version: the larger origin wins, the smaller loses. */
	CU_ASSERT_EQUAL(apply_row(st, &t, 5, 100, 1), 0);
	expect_row(st, 5, 100, 2, 8);
	CU_ASSERT_EQUAL(apply_row(st, &t, 5, 100, 3), 1);
	expect_row(st, 5, 100, 3, 8);

	/* Newer wins whatever the origin. */
	t.b.n = 0;
	tb_row(&t, 5, 101, 1);
	tb_row(&t, 9, 7, 1);
	CU_ASSERT_EQUAL(apply_ok(st, &t, NULL), 2);
	expect_row(st, 5, 101, 1, 8);
	expect_row(st, 9, 7, 1, 8);
	expect_row(st, 1, 0, 0, 8);     /* untouched neighbours */
	expect_row(st, 13, 0, 0, 8);

	/* Rows never advance the vector; covers do, by max. */
	CU_ASSERT_EQUAL(shard_store_vv(st, 0, 1)->n, 0);
	t.b.n = 0;
	tb_cover(&t, 1, 50);
	tb_cover(&t, 1, 40);
	CU_ASSERT_EQUAL(apply_ok(st, &t, NULL), 0);     /* n == 0: covers only */
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(st, 0, 1), 1), 50);
	CU_ASSERT_EQUAL(shard_store_vv(st, 0, 1)->n, 1);
	CU_ASSERT_EQUAL(shard_store_vv(st, 0, 0)->n, 0);

	/* Read accessors refuse out-of-range ids. */
	CU_ASSERT_PTR_NULL(shard_store_row(st, 0, 40));
	CU_ASSERT_PTR_NULL(shard_store_row(st, 1, 0));
	CU_ASSERT_PTR_NULL(shard_store_table_data(st, 1));
	CU_ASSERT_PTR_NULL(shard_store_vv(st, 0, 4));
	CU_ASSERT_STRING_EQUAL(shard_store_def(st)->name, "m");
	tb_fini(&t);
	shard_store_free(st);
	shard_store_free(NULL);
}

static void test_duplicates_and_won(void)
{
	struct shard_model_def d;
	struct shard_store *st;
	struct shard_apply_result r;
	uint8_t won[64];
	struct tb t;

	make_def(&d, 64, 4, 2);
	st = new_store(&d, 0, 0);
	tb_init(&t, 0, 4);
	tb_row(&t, 2, 10, 1);   /* 0: overwritten by 2 in this batch */
	tb_row(&t, 4, 10, 1);   /* 1: final */
	tb_row(&t, 2, 12, 2);   /* 2: final for row 2 */
	tb_row(&t, 2, 11, 3);   /* 3: stale against 2 */
	tb_row(&t, 6, 5, 1);    /* 4: overwritten by 5 */
	tb_row(&t, 6, 5, 2);    /* 5: final (tie broken by origin) */
	tb_row(&t, 6, 5, 2);    /* 6: exact repeat: stale */
	tb_row(&t, 8, 9, 1);    /* 7: final */
	memset(won, 0xee, sizeof(won));
	CU_ASSERT_EQUAL(shard_store_apply(st, &t.b, &r, won), FR_OK);
	CU_ASSERT_EQUAL(r.applied, 6);
	CU_ASSERT_EQUAL(r.stale, 2);
	{
		const uint8_t want[8] = { 0, 1, 1, 0, 0, 1, 0, 1 };

		CU_ASSERT(memcmp(won, want, 8) == 0);
	}
	expect_row(st, 2, 12, 2, 4);
	expect_row(st, 4, 10, 1, 4);
	expect_row(st, 6, 5, 2, 4);
	expect_row(st, 8, 9, 1, 4);

	/* Again: everything stale, nothing won. */
	CU_ASSERT_EQUAL(shard_store_apply(st, &t.b, &r, won), FR_OK);
	CU_ASSERT_EQUAL(r.applied, 0);
	CU_ASSERT_EQUAL(r.stale, 8);
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(won[i], 0);
	tb_fini(&t);
	shard_store_free(st);
}

/* ----------------------------------------------------------------------
 * Invalid batches change nothing
 * -------------------------------------------------------------------- */

struct fingerprint {
	uint64_t checksum, summary, seq, vv0, vv1;
	uint32_t vvn;
};

static void fp_take(const struct shard_store *st, struct fingerprint *f)
{
	memset(f, 0, sizeof(*f));       /* padding, for memcmp */
	f->checksum = shard_store_table_checksum(st, 0);
	f->summary = shard_store_summary(st);
	f->seq = shard_store_change_seq(st);
	f->vvn = shard_store_vv(st, 0, 1)->n;
	f->vv0 = shard_vv_get(shard_store_vv(st, 0, 1), 1);
	f->vv1 = shard_vv_get(shard_store_vv(st, 0, 1), 2);
}

static void expect_invalid(struct shard_store *st, const struct shard_batch *b,
			   enum fr_err code, const char *detail)
{
	struct fingerprint before, after;
	struct shard_apply_result r = { 7, 7, 7 };
	uint8_t won[64];

	fp_take(st, &before);
	CU_ASSERT_EQUAL(shard_store_apply(st, b, &r, won), code);
	CU_ASSERT(errmsg_has(detail));
	CU_ASSERT_EQUAL(r.applied + r.stale + r.refused, 0);
	fp_take(st, &after);
	CU_ASSERT(memcmp(&before, &after, sizeof(before)) == 0);
}

static void test_invalid_batches(void)
{
	struct shard_model_def d;
	struct shard_store *st;
	struct shard_vv_ent many[SHARD_VV_MAX + 1];
	struct tb t;

	make_def(&d, 40, 4, 4);
	st = new_store(&d, 0, 1 << 16);
	tb_init(&t, 1, 4);
	tb_row(&t, 1, 10, 1);
	tb_cover(&t, 1, 10);
	CU_ASSERT_EQUAL(apply_ok(st, &t, NULL), 1);

	/* A good first row followed by a bad one: nothing is written. */
	t.b.n = 0;
	t.b.ncovers = 0;
	tb_row(&t, 5, 20, 2);
	tb_row(&t, 40, 20, 2);
	tb_cover(&t, 2, 20);
	expect_invalid(st, &t.b, FR_ERR_RANGE, "rows[1] = 40 out of range [0, 40)");
	t.rows[1] = 6;
	expect_invalid(st, &t.b, FR_ERR_INVAL, "rows[1] = 6 belongs to shard 2");
	t.rows[1] = 9;
	fill_value(t.vals + 4, 4, 9, 20, 2, VALUE_STEP);
	t.vers[1] = 0;
	expect_invalid(st, &t.b, FR_ERR_INVAL, "versions[1] is 0");
	t.vers[1] = 20;
	t.orgs[1] = 0;
	expect_invalid(st, &t.b, FR_ERR_INVAL, "origins[1] is 0");
	t.orgs[1] = 2;

	t.b.table = 1;
	expect_invalid(st, &t.b, FR_ERR_RANGE, "table 1 out of range [0, 1)");
	t.b.table = 0;
	t.b.shard = 4;
	expect_invalid(st, &t.b, FR_ERR_RANGE, "shard 4 out of range [0, 4)");
	t.b.shard = 1;
	t.b.values = NULL;
	expect_invalid(st, &t.b, FR_ERR_INVAL, "is NULL");
	t.b.values = t.vals;
	t.b.rows = NULL;
	expect_invalid(st, &t.b, FR_ERR_INVAL, "is NULL");
	t.b.rows = t.rows;

	t.b.covers = NULL;
	expect_invalid(st, &t.b, FR_ERR_INVAL, "covers is NULL");
	t.b.covers = t.covers;
	t.covers[0].origin = 0;
	expect_invalid(st, &t.b, FR_ERR_INVAL, "covers[0].origin is 0");
	t.covers[0].origin = 2;
	t.b.ncovers = SHARD_VV_MAX + 1;
	t.b.covers = many;
	for (uint32_t i = 0; i <= SHARD_VV_MAX; i++) {
		many[i].origin = 1000 + i;
		many[i].version = 1;
	}
	expect_invalid(st, &t.b, FR_ERR_RANGE, "ncovers 257 out of range [0, 256]");
	/* 256 new origins on top of the 1 held: 257 would result. */
	t.b.ncovers = SHARD_VV_MAX;
	expect_invalid(st, &t.b, FR_ERR_TOOBIG, "covers would make 257 origins");
	/* A repeated origin counts once: 255 new + 1 = 256 fits. */
	many[0].origin = many[1].origin;
	CU_ASSERT_EQUAL(shard_store_apply(st, &t.b, NULL, NULL), FR_OK);
	CU_ASSERT_EQUAL(shard_store_vv(st, 0, 1)->n, SHARD_VV_MAX);
	expect_row(st, 9, 20, 2, 4);
	expect_invalid(st, NULL, FR_ERR_INVAL, "batch is NULL");
	tb_fini(&t);
	shard_store_free(st);
}

/* ----------------------------------------------------------------------
 * Order independence: the store is a CRDT
 * -------------------------------------------------------------------- */

#define PROP_BATCHES 200

static void random_batch(struct tb *t, const struct shard_model_def *d)
{
	uint32_t shard = (uint32_t)rnd(d->shards);
	uint32_t rows_in = (uint32_t)(d->tables[0].rows / d->shards);
	uint32_t n = 1 + (uint32_t)rnd(12);

	tb_init(t, shard, d->tables[0].dim);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t row = shard + d->shards * rnd(rows_in);

		tb_row(t, row, 1 + rnd(60), 1 + (uint32_t)rnd(3));
		if (rnd(4) == 0)        /* duplicates inside the batch */
			tb_row(t, row, 1 + rnd(60), 1 + (uint32_t)rnd(3));
	}
	for (uint32_t i = rnd(3); i > 0; i--)
		tb_cover(t, 1 + (uint32_t)rnd(3), 1 + rnd(80));
}

static void shuffle(uint32_t *a, uint32_t n)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = (uint32_t)rnd(i), x = a[i - 1];

		a[i - 1] = a[j];
		a[j] = x;
	}
}

static void test_property_order(void)
{
	struct shard_model_def d;
	struct shard_store *a, *b;
	static struct tb batches[PROP_BATCHES];
	uint32_t order[PROP_BATCHES];
	uint8_t *mirror;
	size_t rb;
	uint8_t won[64];
	struct tb t;

	make_def(&d, 48, 6, 4);
	rb = shard_row_bytes(&d.tables[0]);
	a = new_store(&d, 0, 1 << 14);
	b = new_store(&d, 8, 0);        /* tiny index: must not matter */
	mirror = calloc(d.tables[0].rows, rb);
	CU_ASSERT_FATAL(mirror != NULL);
	for (uint32_t i = 0; i < PROP_BATCHES; i++) {
		random_batch(&batches[i], &d);
		order[i] = i;
	}
	/* A, in one order; a mirror follows using only won rows. */
	shuffle(order, PROP_BATCHES);
	for (uint32_t i = 0; i < PROP_BATCHES; i++) {
		const struct tb *x = &batches[order[i]];
		const uint8_t *vals = x->b.values;

		apply_ok(a, x, won);
		for (uint32_t j = 0; j < x->b.n; j++)
			if (won[j])
				memcpy(mirror + x->rows[j] * rb, vals + j * rb, rb);
	}
	CU_ASSERT(memcmp(mirror, shard_store_table_data(a, 0),
			 d.tables[0].rows * rb) == 0);
	/* B, in another order, a third of the batches twice. */
	shuffle(order, PROP_BATCHES);
	for (uint32_t i = 0; i < PROP_BATCHES; i++) {
		apply_ok(b, &batches[order[i]], NULL);
		if (rnd(3) == 0)
			apply_ok(b, &batches[order[rnd(i + 1)]], NULL);
	}
	CU_ASSERT(stores_equal(a, b));
	CU_ASSERT_EQUAL(shard_store_table_checksum(a, 0),
			shard_store_table_checksum(b, 0));
	/* Every row holds the maximum (version, origin) offered for it. */
	for (uint64_t row = 0; row < d.tables[0].rows; row++) {
		uint64_t bv = 0;
		uint32_t bo = 0;

		for (uint32_t i = 0; i < PROP_BATCHES; i++)
			for (uint32_t j = 0; j < batches[i].b.n; j++)
				if (batches[i].rows[j] == row &&
				    (batches[i].vers[j] > bv ||
				     (batches[i].vers[j] == bv &&
				      batches[i].orgs[j] > bo))) {
					bv = batches[i].vers[j];
					bo = batches[i].orgs[j];
				}
		expect_row(a, row, bv, bo, d.tables[0].dim);
	}
	/* One more change on B only: the summaries part. */
	tb_init(&t, 2, d.tables[0].dim);
	tb_cover(&t, 3, 1000);
	apply_ok(b, &t, NULL);
	CU_ASSERT_NOT_EQUAL(shard_store_summary(a), shard_store_summary(b));
	/* ... and meet again once A hears of it too. */
	apply_ok(a, &t, NULL);
	CU_ASSERT_EQUAL(shard_store_summary(a), shard_store_summary(b));
	tb_fini(&t);
	for (uint32_t i = 0; i < PROP_BATCHES; i++)
		tb_fini(&batches[i]);
	free(mirror);
	shard_store_free(a);
	shard_store_free(b);
}

/* ----------------------------------------------------------------------
 * Rows changed since a vector
 * -------------------------------------------------------------------- */

/* docs/design.md §2: a peer that has seen A's 100 must still receive B's
 * later-arriving 99. */
static void test_design_two_origins(void)
{
	const uint32_t A = 1, B = 2;
	struct shard_model_def d;
	struct shard_store *st;
	struct shard_changes c;
	struct shard_vv peer;
	struct tb t;

	make_def(&d, 16, 2, 2);
	st = new_store(&d, 0, 0);
	tb_init(&t, 0, 2);
	tb_row(&t, 4, 100, A);
	tb_cover(&t, A, 100);
	apply_ok(st, &t, NULL);

	shard_vv_init(&peer);
	shard_vv_advance(&peer, A, 100);        /* the peer has seen A's 100 */
	shard_changes_init(&c);
	CU_ASSERT_EQUAL(shard_store_changes_since(st, 0, 0, &peer, &c), FR_OK);
	CU_ASSERT_EQUAL(c.n, 0);

	t.b.n = 0;
	t.b.ncovers = 0;
	tb_row(&t, 6, 99, B);                   /* arrives later */
	tb_cover(&t, B, 99);
	apply_ok(st, &t, NULL);
	CU_ASSERT_EQUAL(shard_store_changes_since(st, 0, 0, &peer, &c), FR_OK);
	CU_ASSERT_FALSE(c.full_scan);
	CU_ASSERT_EQUAL_FATAL(c.n, 1);
	CU_ASSERT_EQUAL(c.c[0].row, 6);
	CU_ASSERT_EQUAL(c.c[0].version, 99);
	CU_ASSERT_EQUAL(c.c[0].origin, B);
	/* A scalar "max version 100" would have hidden it. */
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(st, 0, 0), A), 100);
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(st, 0, 0), B), 99);
	CU_ASSERT_EQUAL(shard_store_changes_since(st, 0, 2, &peer, &c),
			FR_ERR_RANGE);
	CU_ASSERT_EQUAL(shard_store_changes_scan(st, 1, 0, &peer, &c),
			FR_ERR_RANGE);
	shard_changes_fini(&c);
	shard_vv_fini(&peer);
	tb_fini(&t);
	shard_store_free(st);
}

/* Compare the index answer, the scan answer and the brute force for a
 * random `since` near the shard's vector. */
static void check_queries(const struct shard_store *st, uint32_t shards,
			  uint64_t lag, bool want_index, int *nfull)
{
	struct shard_changes x, y, z;
	struct shard_vv since;

	shard_changes_init(&x);
	shard_changes_init(&y);
	shard_changes_init(&z);
	shard_vv_init(&since);
	for (uint32_t s = 0; s < shards; s++) {
		const struct shard_vv *vv = shard_store_vv(st, 0, s);

		since.n = 0;
		for (uint32_t i = 0; i < vv->n; i++) {
			uint64_t v = vv->e[i].version;

			shard_vv_advance(&since, vv->e[i].origin,
					 v > lag ? v - rnd(lag + 1) : rnd(v + 1));
		}
		CU_ASSERT_EQUAL(shard_store_changes_since(st, 0, s, &since, &x),
				FR_OK);
		CU_ASSERT_EQUAL(shard_store_changes_scan(st, 0, s, &since, &y),
				FR_OK);
		brute_changes(st, s, &since, &z);
		CU_ASSERT(changes_equal(&x, &z));
		CU_ASSERT(changes_equal(&y, &z));
		CU_ASSERT(y.full_scan);
		if (want_index)
			CU_ASSERT_FALSE(x.full_scan);
		*nfull += x.full_scan;
	}
	shard_vv_fini(&since);
	shard_changes_fini(&x);
	shard_changes_fini(&y);
	shard_changes_fini(&z);
}

/* Writes in rounds with a rising clock, as real origins do, with some
 * late arrivals; covers follow each origin's clock. */
static void random_history(struct shard_store *st,
			   const struct shard_model_def *d, uint32_t rounds,
			   uint64_t *now)
{
	uint32_t rows_in = (uint32_t)(d->tables[0].rows / d->shards);
	struct tb t;

	for (uint32_t k = 0; k < rounds; k++) {
		uint32_t shard = (uint32_t)rnd(d->shards);
		uint32_t org = 1 + (uint32_t)rnd(4);
		uint32_t n = 1 + (uint32_t)rnd(20);

		tb_init(&t, shard, d->tables[0].dim);
		*now += 1 + rnd(3);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t v = *now;

			if (rnd(8) == 0)        /* a late arrival */
				v = v > 50 ? v - rnd(50) : v;
			tb_row(&t, shard + d->shards * rnd(rows_in), v, org);
		}
		tb_cover(&t, org, *now);
		apply_ok(st, &t, NULL);
		tb_fini(&t);
	}
}

static void test_changes_index_vs_scan(void)
{
	struct shard_model_def d;
	struct shard_store *st, *tiny;
	uint64_t now = 1000;
	int nfull = 0;

	make_def(&d, 2048, 2, 4);
	st = new_store(&d, 0, 0);
	for (int round = 0; round < 6; round++) {
		random_history(st, &d, 150, &now);
		check_queries(st, d.shards, 200, true, &nfull);
	}
	CU_ASSERT_EQUAL(nfull, 0);
	/* Old vectors ask for nearly everything: still the index. */
	check_queries(st, d.shards, UINT64_MAX / 2, true, &nfull);
	CU_ASSERT_EQUAL(nfull, 0);

	/* A tiny index: old vectors fall back to scanning, recent ones
	 * still use the index, and all answers stay exact. */
	now = 1000;
	tiny = new_store(&d, 16, 0);
	for (int round = 0; round < 6; round++) {
		random_history(tiny, &d, 150, &now);
		check_queries(tiny, d.shards, 2000, false, &nfull);
	}
	CU_ASSERT(nfull > 0);
	nfull = 0;
	check_queries(tiny, d.shards, 0, true, &nfull);  /* since == vv */
	CU_ASSERT_EQUAL(nfull, 0);
	shard_store_free(st);
	shard_store_free(tiny);
}

/* ----------------------------------------------------------------------
 * Digests and the summary
 * -------------------------------------------------------------------- */

static void test_digest(void)
{
	struct shard_model_def d;
	struct shard_store *a, *b;
	struct shard_digest_entry ea, eb;
	uint64_t s0, seq, h0;
	struct tb t;

	make_def(&d, 32, 2, 4);
	a = new_store(&d, 0, 0);
	b = new_store(&d, 0, 0);
	s0 = shard_store_summary(a);
	CU_ASSERT_EQUAL(s0, shard_store_summary(b));
	CU_ASSERT_EQUAL(shard_store_change_seq(a), 0);
	shard_store_digest_entry(a, 0, 3, &ea);
	CU_ASSERT_EQUAL(ea.table, 0);
	CU_ASSERT_EQUAL(ea.shard, 3);
	CU_ASSERT_EQUAL(ea.vv->n, 0);
	CU_ASSERT_EQUAL(ea.rollback_epoch, 0);
	h0 = shard_digest_entry_hash(&ea);
	shard_store_digest_entry(a, 0, 2, &eb);
	CU_ASSERT_NOT_EQUAL(h0, shard_digest_entry_hash(&eb));

	/* Rows with no covers: the entry (vector) is unchanged, but the
	 * shard is marked as changed for gossip. */
	tb_init(&t, 3, 2);
	tb_row(&t, 7, 10, 1);
	t.sig[0] = 2.5f;
	apply_ok(a, &t, NULL);
	seq = shard_store_change_seq(a);
	CU_ASSERT(seq > 0);
	CU_ASSERT_EQUAL(shard_store_shard_seq(a, 0, 3), seq);
	CU_ASSERT_EQUAL(shard_store_shard_seq(a, 0, 2), 0);
	CU_ASSERT_EQUAL(shard_store_summary(a), s0);
	shard_store_digest_entry(a, 0, 3, &ea);
	CU_ASSERT_EQUAL(ea.significance, 2.5);
	CU_ASSERT_EQUAL(shard_digest_entry_hash(&ea), h0);

	/* A cover changes the entry, the hash and the summary. */
	t.b.n = 0;
	tb_cover(&t, 1, 10);
	apply_ok(a, &t, NULL);
	CU_ASSERT(shard_store_shard_seq(a, 0, 3) > seq);
	shard_store_digest_entry(a, 0, 3, &ea);
	CU_ASSERT_NOT_EQUAL(shard_digest_entry_hash(&ea), h0);
	CU_ASSERT_NOT_EQUAL(shard_store_summary(a), s0);

	/* B gets the same vector by another route (no rows, different
	 * significance): equal entries, equal summaries. */
	apply_ok(b, &t, NULL);
	shard_store_digest_entry(b, 0, 3, &eb);
	CU_ASSERT(shard_vv_equal(ea.vv, eb.vv));
	CU_ASSERT_EQUAL(eb.significance, 0.0);
	CU_ASSERT_EQUAL(shard_digest_entry_hash(&ea),
			shard_digest_entry_hash(&eb));
	CU_ASSERT_EQUAL(shard_store_summary(a), shard_store_summary(b));

	/* The same vector on another shard is a different entry. */
	t.b.shard = 1;
	apply_ok(b, &t, NULL);
	CU_ASSERT_NOT_EQUAL(shard_store_summary(a), shard_store_summary(b));
	apply_ok(a, &t, NULL);
	CU_ASSERT_EQUAL(shard_store_summary(a), shard_store_summary(b));

	/* The epoch is part of the entry. */
	eb.rollback_epoch = 1;
	CU_ASSERT_NOT_EQUAL(shard_digest_entry_hash(&ea),
			    shard_digest_entry_hash(&eb));
	eb.rollback_epoch = 0;
	eb.significance = 99;
	CU_ASSERT_EQUAL(shard_digest_entry_hash(&ea),
			shard_digest_entry_hash(&eb));
	tb_fini(&t);
	shard_store_free(a);
	shard_store_free(b);
}

/* ----------------------------------------------------------------------
 * Snapshots
 * -------------------------------------------------------------------- */

static char tmpdir[512];

static uint8_t *read_all(const char *path, size_t *len)
{
	struct stat sb;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(fstat(fd, &sb) == 0);
	p = malloc(sb.st_size);
	CU_ASSERT_FATAL(p != NULL);
	CU_ASSERT_FATAL(read(fd, p, sb.st_size) == sb.st_size);
	close(fd);
	*len = sb.st_size;
	return p;
}

static void write_all(const char *path, const uint8_t *p, size_t len)
{
	int fd;

	/* A fresh file each time: truncating one ext4 is still writing
	 * back makes the next open wait for the disk. */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, p, len) == (ssize_t)len);
	close(fd);
}

static enum fr_err load_err(const char *path)
{
	enum fr_err err = FR_OK;
	uint64_t lsn = 0;
	struct shard_store *st = shard_store_load(path, NULL, &lsn, &err);

	CU_ASSERT_PTR_NULL(st);
	shard_store_free(st);
	return err;
}

static void test_snapshot(void)
{
	struct shard_model_def d;
	struct shard_store *a, *b;
	struct shard_rollback_report rep;
	char path[600], bad[600];
	uint64_t now = 100, lsn = 0;
	uint8_t *file, *copy;
	size_t len;
	enum fr_err err;
	int nfull = 0;

	make_tmpdir(tmpdir, sizeof(tmpdir), "store");
	snprintf(path, sizeof(path), "%s/snap", tmpdir);
	snprintf(bad, sizeof(bad), "%s/bad", tmpdir);
	make_def(&d, 300, 3, 5);
	d.ntables = 2;
	d.priority = 7;
	snprintf(d.tables[1].name, sizeof(d.tables[1].name), "h");
	d.tables[1].rows = 10;
	d.tables[1].dim = 5;
	d.tables[1].dtype = SHARD_F16;
	a = new_store(&d, 0, 1 << 16);
	random_history(a, &d, 200, &now);
	/* Epochs and revoked ranges travel too. */
	CU_ASSERT(shard_store_rollback(a, now - 30, now - 20, 4, NULL, NULL,
				       &rep) == FR_OK);
	shard_rollback_report_fini(&rep);
	CU_ASSERT(shard_store_rollback(a, now + 10, now + 20, 5, NULL, NULL,
				       &rep) == FR_OK);
	shard_rollback_report_fini(&rep);

	CU_ASSERT_EQUAL(shard_store_load(path, NULL, &lsn, &err), NULL);
	CU_ASSERT_EQUAL(err, FR_ERR_NOTFOUND);
	CU_ASSERT_EQUAL_FATAL(shard_store_snapshot(a, path, 4242), FR_OK);
	b = shard_store_load(path, NULL, &lsn, &err);
	CU_ASSERT_EQUAL_FATAL(err, FR_OK);
	CU_ASSERT_FATAL(b != NULL);
	CU_ASSERT_EQUAL(lsn, 4242);
	CU_ASSERT(memcmp(shard_store_def(a), shard_store_def(b),
			 sizeof(struct shard_model_def)) == 0);
	CU_ASSERT(stores_equal(a, b));
	CU_ASSERT(memcmp(shard_store_table_data(a, 1), shard_store_table_data(b, 1),
			 10 * 5 * 2) == 0);
	CU_ASSERT_EQUAL(shard_store_rollback_epoch(b), 5);
	for (uint32_t s = 0; s < d.shards; s++) {
		struct shard_digest_entry ea, eb;

		shard_store_digest_entry(a, 0, s, &ea);
		shard_store_digest_entry(b, 0, s, &eb);
		CU_ASSERT_EQUAL(ea.rollback_epoch, eb.rollback_epoch);
		CU_ASSERT_EQUAL(ea.rollback_epoch, 5);
		CU_ASSERT_EQUAL(ea.significance, eb.significance);
	}
	for (uint64_t v = now - 40; v < now + 30; v++)
		CU_ASSERT_EQUAL(shard_store_is_revoked(a, v),
				shard_store_is_revoked(b, v));
	CU_ASSERT(shard_store_is_revoked(b, now - 25));
	CU_ASSERT(shard_store_is_revoked(b, now + 20));
	CU_ASSERT_FALSE(shard_store_is_revoked(b, now + 10));
	/* The loaded store's index answers like the original. */
	check_queries(b, d.shards, 100, true, &nfull);
	CU_ASSERT_EQUAL(nfull, 0);
	/* Snapshot of the loaded store: the same bytes (bar nothing). */
	snprintf(bad, sizeof(bad), "%s/again", tmpdir);
	CU_ASSERT_EQUAL(shard_store_snapshot(b, bad, 4242), FR_OK);
	file = read_all(path, &len);
	{
		size_t len2;
		uint8_t *f2 = read_all(bad, &len2);

		CU_ASSERT(len == len2 && memcmp(file, f2, len) == 0);
		free(f2);
	}
	unlink(bad);
	snprintf(bad, sizeof(bad), "%s/bad", tmpdir);

	/* Corruption: every single-byte flip is refused, with a named
	 * error, never a crash. */
	copy = malloc(len);
	CU_ASSERT_FATAL(copy != NULL);
	for (size_t i = 0; i < len; i += (i < 200 || i > len - 400) ? 1 : 7) {
		memcpy(copy, file, len);
		copy[i] ^= 0x40;
		write_all(bad, copy, len);
		err = load_err(bad);
		CU_ASSERT(err == FR_ERR_CHECKSUM || err == FR_ERR_CORRUPT ||
			  err == FR_ERR_MAGIC || err == FR_ERR_VERSION);
		if (i == 0) {
			CU_ASSERT_EQUAL(err, FR_ERR_MAGIC);
			CU_ASSERT(errmsg_has("magic"));
		}
		if (i == 4) {
			CU_ASSERT_EQUAL(err, FR_ERR_VERSION);
			CU_ASSERT(errmsg_has("format"));
		}
		if (i == len - 1 || i == 24 + 80 + 2 * 80 + 10) {
			/* the trailer; a byte of row data */
			CU_ASSERT_EQUAL(err, FR_ERR_CHECKSUM);
			CU_ASSERT(errmsg_has("checksum"));
		}
	}
	/* Truncated at every length, and extended. */
	for (size_t n = 0; n < len; n += (n < 100 || n > len - 100) ? 1 : 13) {
		write_all(bad, file, n);
		err = load_err(bad);
		CU_ASSERT_EQUAL(err, FR_ERR_CORRUPT);
	}
	CU_ASSERT(errmsg_has("truncated"));
	memcpy(copy, file, len);
	write_all(bad, file, len);
	{
		int fd = open(bad, O_WRONLY | O_APPEND);

		CU_ASSERT(write(fd, "x", 1) == 1);
		close(fd);
	}
	CU_ASSERT_EQUAL(load_err(bad), FR_ERR_CORRUPT);
	/* A consistent file (right checksum) with a bad model inside. */
	memcpy(copy, file, len);
	copy[24 + 64 + 4] = 0;  /* shards = 0 (low byte of 5) */
	{
		uint64_t sum = XXH3_64bits(copy, len - 8);

		memcpy(copy + len - 8, &sum, 8);
	}
	write_all(bad, copy, len);
	CU_ASSERT_EQUAL(load_err(bad), FR_ERR_CORRUPT);
	CU_ASSERT(errmsg_has("model definition: model 'm': shards 0"));

	unlink(bad);
	unlink(path);
	CU_ASSERT_EQUAL(rmdir(tmpdir), 0);
	free(copy);
	free(file);
	shard_store_free(a);
	shard_store_free(b);
}

static const struct fr_unit_test tests[] = {
	{ "version vectors", test_vv },
	{ "last writer wins", test_lww },
	{ "duplicates and won", test_duplicates_and_won },
	{ "invalid batches", test_invalid_batches },
	{ "property: order independence", test_property_order },
	{ "DESIGN 2: two origins", test_design_two_origins },
	{ "changes: index vs scan", test_changes_index_vs_scan },
	{ "digests and summary", test_digest },
	{ "snapshots", test_snapshot },
};

int main(void)
{
	return shard_suite_main("shard_store", 0x9e3779b97f4a7c15ull, tests,
				FR_UNIT_COUNT(tests));
}
