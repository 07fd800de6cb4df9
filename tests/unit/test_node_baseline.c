/*
 * test_node_baseline.c — CUnit suite for the baseline's lag buffer
 * (node/baseline.c), driven by a fake clock: nothing is released before
 * the lag and everything after, in version order and in runs of one
 * table; two versions of one row both reach the backend, older first; a
 * row noted as served is never overwritten by an older queued value; the
 * cut follows min(now - lag, oldest queued - 1) and only rises as time
 * passes; a rollback drops exactly the queued rows in (T, R]; an overflow
 * counts what it leaves out, freezes the cut and asks for a catch-up only
 * once the lag has passed the newest row left out; bad ids queue nothing;
 * and a randomized run matches a reference that keeps every push.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "node/baseline.h"
#include "testutil.h"
#include "unit_main.h"

/* ----------------------------------------------------------------------
 * Helpers
 * -------------------------------------------------------------------- */

#define LAG 100u
#define V(ms, l) FR_HLC_MAKE((ms), (l))
#define HORIZON(now) FR_HLC_MAKE((now) - LAG, 0xffff)

/* Two tables: t0 has 16 rows of 8 bytes, t1 8 rows of 16 bytes. */
static const uint64_t shape_rows[2] = { 16, 8 };
static const size_t shape_bytes[2] = { 8, 16 };

static struct node_baseline *mk(uint64_t max_bytes)
{
	enum fr_err err = FR_ERR_IO;
	struct node_baseline *bl = node_baseline_new(2, shape_rows, shape_bytes, LAG,
					   max_bytes, &err);

	CU_ASSERT_EQUAL(err, FR_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(bl);
	return bl;
}

/* A row's value: its first 8 bytes are the version, the next 8 (t1) the
 * row id, so every byte delivered can be checked. */
static void fill(uint32_t table, uint64_t row, uint64_t ver, void *out)
{
	memcpy(out, &ver, 8);
	if (shape_bytes[table] > 8)
		memcpy((char *)out + 8, &row, 8);
}

/* Push one row with its canonical value. */
static enum fr_err push1(struct node_baseline *bl, uint32_t table, uint64_t row,
			 uint64_t ver)
{
	unsigned char val[16];

	fill(table, row, ver, val);
	return node_baseline_push(bl, table, &row, &ver, val, 1);
}

/* What the release fn saw: every run and every row, flattened. */
#define REC_MAX 4096
struct rec {
	uint32_t nruns;
	uint32_t run_table[REC_MAX], run_n[REC_MAX];
	uint32_t n;
	uint32_t table[REC_MAX];
	uint64_t row[REC_MAX], ver[REC_MAX];
	bool bad_value;   /* a value did not match fill() */
};

static void rec_cb(uint32_t table, const uint64_t *rows,
		   const uint64_t *versions, const void *values, uint32_t n,
		   void *arg)
{
	struct rec *r = arg;
	unsigned char want[16];

	CU_ASSERT_FATAL(r->nruns < REC_MAX && r->n + n <= REC_MAX);
	CU_ASSERT(n > 0);
	r->run_table[r->nruns] = table;
	r->run_n[r->nruns++] = n;
	for (uint32_t i = 0; i < n; i++) {
		fill(table, rows[i], versions[i], want);
		if (memcmp(want, (const char *)values + i * shape_bytes[table],
			   shape_bytes[table]) != 0)
			r->bad_value = true;
		r->table[r->n] = table;
		r->row[r->n] = rows[i];
		r->ver[r->n++] = versions[i];
	}
}

static void rec_reset(struct rec *r)
{
	memset(r, 0, sizeof(*r));
}

static struct rec the_rec;

/* The bytes one queued row of table t costs (measured, as the per-row
 * overhead is the implementation's). */
static uint64_t row_cost(uint32_t t)
{
	struct node_baseline *bl = mk(1u << 20);
	struct node_baseline_stats s;

	CU_ASSERT_EQUAL(push1(bl, t, 0, V(1000, 0)), FR_OK);
	node_baseline_get_stats(bl, &s);
	node_baseline_free(bl);
	CU_ASSERT(s.queued_rows == 1 && s.queued_bytes > shape_bytes[t]);
	return s.queued_bytes;
}

/* ----------------------------------------------------------------------
 * Tests
 * -------------------------------------------------------------------- */

static void test_new_invalid(void)
{
	uint64_t rows0[2] = { 16, 0 };
	size_t bytes0[2] = { 8, 0 };
	enum fr_err err;

	CU_ASSERT_PTR_NULL(node_baseline_new(0, shape_rows, shape_bytes, LAG, 100,
					&err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("ntables"));
	CU_ASSERT_PTR_NULL(node_baseline_new(2, shape_rows, shape_bytes, 0, 100,
					&err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("lag_ms"));
	CU_ASSERT_PTR_NULL(node_baseline_new(2, shape_rows, shape_bytes, LAG, 0,
					&err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("max_bytes"));
	CU_ASSERT_PTR_NULL(node_baseline_new(2, rows0, shape_bytes, LAG, 100,
					&err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("table 1: rows"));
	CU_ASSERT_PTR_NULL(node_baseline_new(2, shape_rows, bytes0, LAG, 100,
					&err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("table 1: row_bytes"));
	node_baseline_free(NULL);
}

static void test_release_timing(void)
{
	struct node_baseline *bl = mk(1u << 20);
	struct node_baseline_stats s;
	struct rec *r = &the_rec;

	rec_reset(r);
	/* Pushed out of order; released in version order. */
	CU_ASSERT_EQUAL(push1(bl, 0, 3, V(1005, 0)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 1, V(1000, 7)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 2, V(1000, 9)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 4, V(1003, 0)), FR_OK);

	/* Before the lag (and while now < lag at all) nothing moves. */
	CU_ASSERT_EQUAL(node_baseline_release(bl, 50, rec_cb, r), 0);
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1099, rec_cb, r), 0);
	CU_ASSERT_EQUAL(r->n, 0);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 1), 0);

	/* At exactly now - lag == phys, both rows of ms 1000 go. */
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1100, rec_cb, r), 2);
	CU_ASSERT_EQUAL(r->n, 2);
	CU_ASSERT(r->row[0] == 1 && r->ver[0] == V(1000, 7));
	CU_ASSERT(r->row[1] == 2 && r->ver[1] == V(1000, 9));
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 2), V(1000, 9));
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 3), 0);

	CU_ASSERT_EQUAL(node_baseline_release(bl, 1102, rec_cb, r), 0);
	CU_ASSERT_EQUAL(node_baseline_release(bl, 100000, rec_cb, r), 2);
	CU_ASSERT_EQUAL(r->n, 4);
	CU_ASSERT(r->row[2] == 4 && r->ver[2] == V(1003, 0));
	CU_ASSERT(r->row[3] == 3 && r->ver[3] == V(1005, 0));
	CU_ASSERT_FALSE(r->bad_value);

	node_baseline_get_stats(bl, &s);
	CU_ASSERT_EQUAL(s.queued_rows, 0);
	CU_ASSERT_EQUAL(s.queued_bytes, 0);
	CU_ASSERT_EQUAL(s.released_rows, 4);
	CU_ASSERT_EQUAL(s.lag_ms, LAG);
	CU_ASSERT_EQUAL(s.max_bytes, 1u << 20);
	CU_ASSERT_FALSE(s.overflowed);
	node_baseline_free(bl);
}

static void test_runs_by_table(void)
{
	struct node_baseline *bl = mk(1u << 20);
	struct rec *r = &the_rec;
	uint64_t rows[3] = { 5, 6, 7 }, vers[3] = { V(1000, 1), V(1000, 2),
						    V(1000, 3) };
	unsigned char vals[3 * 8];

	rec_reset(r);
	for (int i = 0; i < 3; i++)
		fill(0, rows[i], vers[i], vals + i * 8);
	CU_ASSERT_EQUAL(node_baseline_push(bl, 0, rows, vers, vals, 3), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 1, 2, V(1001, 0)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 1, 7, V(1001, 1)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 9, V(1002, 0)), FR_OK);

	CU_ASSERT_EQUAL(node_baseline_release(bl, 2000, rec_cb, r), 6);
	CU_ASSERT_EQUAL(r->nruns, 3);
	CU_ASSERT(r->run_table[0] == 0 && r->run_n[0] == 3);
	CU_ASSERT(r->run_table[1] == 1 && r->run_n[1] == 2);
	CU_ASSERT(r->run_table[2] == 0 && r->run_n[2] == 1);
	CU_ASSERT(r->row[3] == 2 && r->row[4] == 7 && r->row[5] == 9);
	CU_ASSERT_FALSE(r->bad_value);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 1, 7), V(1001, 1));
	node_baseline_free(bl);
}

static void test_row_ordering(void)
{
	struct node_baseline *bl = mk(1u << 20);
	struct rec *r = &the_rec;

	rec_reset(r);
	/* Two versions of one row in one release: both, older first. */
	CU_ASSERT_EQUAL(push1(bl, 1, 3, V(1000, 0)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 1, 3, V(1004, 2)), FR_OK);
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1200, rec_cb, r), 2);
	CU_ASSERT(r->row[0] == 3 && r->ver[0] == V(1000, 0));
	CU_ASSERT(r->row[1] == 3 && r->ver[1] == V(1004, 2));
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 1, 3), V(1004, 2));

	/* The same across two releases. */
	rec_reset(r);
	CU_ASSERT_EQUAL(push1(bl, 0, 8, V(1300, 0)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 8, V(1350, 0)), FR_OK);
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1420, rec_cb, r), 1);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 8), V(1300, 0));
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1450, rec_cb, r), 1);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 8), V(1350, 0));
	CU_ASSERT(r->n == 2 && r->ver[1] == V(1350, 0));

	/* An older version pushed after a newer one was served never
	 * reaches the backend. */
	CU_ASSERT_EQUAL(push1(bl, 0, 8, V(1340, 0)), FR_OK);
	CU_ASSERT_EQUAL(node_baseline_release(bl, 5000, rec_cb, r), 0);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 8), V(1350, 0));
	node_baseline_free(bl);
}

static void test_served_guard(void)
{
	struct node_baseline *bl = mk(1u << 20);
	struct rec *r = &the_rec;
	uint64_t row = 4, ver = V(1002, 0), rows2[2] = { 5, 99 },
		 vers2[2] = { V(1, 0), V(2, 0) };
	struct node_baseline_stats s;

	rec_reset(r);
	CU_ASSERT_EQUAL(push1(bl, 0, 4, V(1000, 0)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 4, V(1005, 0)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 6, V(1001, 0)), FR_OK);
	/* A catch-up wrote row 4 at 1002: the 1000 value must not follow,
	 * the 1005 one must. */
	node_baseline_note_served(bl, 0, &row, &ver, 1);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 4), V(1002, 0));
	CU_ASSERT_EQUAL(node_baseline_release(bl, 5000, rec_cb, r), 2);
	CU_ASSERT_EQUAL(r->n, 2);
	CU_ASSERT(r->row[0] == 6 && r->ver[0] == V(1001, 0));
	CU_ASSERT(r->row[1] == 4 && r->ver[1] == V(1005, 0));
	node_baseline_get_stats(bl, &s);
	CU_ASSERT_EQUAL(s.queued_rows, 0);
	CU_ASSERT_EQUAL(s.queued_bytes, 0);
	CU_ASSERT_EQUAL(s.released_rows, 2);

	/* A rollback's restore may lower a served version; an id out of
	 * range is ignored and the rest recorded. */
	ver = V(900, 0);
	node_baseline_note_served(bl, 0, &row, &ver, 1);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 4), V(900, 0));
	node_baseline_note_served(bl, 0, rows2, vers2, 2);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 5), V(1, 0));
	node_baseline_note_served(bl, 7, rows2, vers2, 2);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 7, 5), 0);
	CU_ASSERT_EQUAL(node_baseline_served_version(bl, 0, 99), 0);
	node_baseline_free(bl);
}

static void test_cut(void)
{
	struct node_baseline *bl = mk(1u << 20);
	struct rec *r = &the_rec;
	uint64_t prev = 0;

	rec_reset(r);
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 50), 0);            /* now < lag */
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1000), HORIZON(1000));

	CU_ASSERT_EQUAL(push1(bl, 0, 1, V(1000, 5)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 1, 1, V(1040, 0)), FR_OK);
	/* Queued rows newer than now - lag do not hold the cut. */
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1050), HORIZON(1050));
	/* Due but not released yet: the oldest queued holds it at -1. */
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1200), V(1000, 4));
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1120, rec_cb, r), 1);
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1120), HORIZON(1120));
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1200), V(1040, 0) - 1);

	/* Monotone as time passes, with rows arriving as they are made. */
	for (uint64_t now = 1120; now < 3000; now += 7) {
		uint64_t c;

		if (now % 3 == 0)
			CU_ASSERT_EQUAL(push1(bl, 0, now % 16, V(now, now % 5)),
					FR_OK);
		c = node_baseline_cut(bl, now);
		CU_ASSERT(c >= prev);
		CU_ASSERT(c <= HORIZON(now));
		prev = c;
		if (now % 2 == 0) {
			node_baseline_release(bl, now, rec_cb, r);
			c = node_baseline_cut(bl, now);
			CU_ASSERT(c >= prev);
			CU_ASSERT_EQUAL(c, HORIZON(now));
			prev = c;
		}
	}
	node_baseline_free(bl);
}

static void test_revoke(void)
{
	struct node_baseline *bl = mk(1u << 20);
	struct rec *r = &the_rec;
	struct node_baseline_stats s, s0;
	uint32_t n = 0;

	rec_reset(r);
	for (uint64_t i = 1; i <= 10; i++)
		CU_ASSERT_EQUAL(push1(bl, (uint32_t)(i % 2), i % 8,
				      V(1000 + i, 0)), FR_OK);
	node_baseline_get_stats(bl, &s0);
	node_baseline_revoke(bl, V(1003, 0), V(1007, 0));
	node_baseline_revoke(bl, V(1009, 0), V(1008, 0));          /* empty */
	node_baseline_get_stats(bl, &s);
	CU_ASSERT_EQUAL(s.revoked_rows, 4);
	CU_ASSERT_EQUAL(s.queued_rows, 6);
	/* Left: t1 rows 1, 3, 9 and t0 rows 2, 8, 10. */
	CU_ASSERT_EQUAL(s.queued_bytes, 3 * row_cost(0) + 3 * row_cost(1));
	CU_ASSERT_EQUAL(s0.queued_bytes, 5 * row_cost(0) + 5 * row_cost(1));
	CU_ASSERT_EQUAL(node_baseline_release(bl, 5000, rec_cb, r), 6);
	{
		const uint64_t want[6] = { 1, 2, 3, 8, 9, 10 };

		for (uint32_t i = 0; i < r->n && i < 6; i++, n++)
			CU_ASSERT_EQUAL(r->ver[i], V(1000 + want[i], 0));
	}
	CU_ASSERT_EQUAL(n, 6);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT_EQUAL(s.queued_bytes, 0);
	node_baseline_free(bl);
}

static void test_overflow(void)
{
	uint64_t cost = row_cost(0);
	struct node_baseline *bl = mk(2 * cost);       /* room for two t0 rows */
	struct rec *r = &the_rec;
	struct node_baseline_stats s;
	uint64_t frozen;

	rec_reset(r);
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1000, rec_cb, r), 0);
	CU_ASSERT_EQUAL(push1(bl, 0, 0, V(1000, 0)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 1, V(1001, 0)), FR_OK);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT(!s.overflowed && s.queued_rows == 2 &&
		  s.queued_bytes == 2 * cost);

	/* The third does not fit: left out, counted, cut frozen at what
	 * the last release saw. */
	CU_ASSERT_EQUAL(push1(bl, 0, 2, V(1002, 0)), FR_OK);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT(s.overflowed && s.overflows == 1 && s.overflow_rows == 1);
	CU_ASSERT_EQUAL(s.queued_rows, 2);
	frozen = node_baseline_cut(bl, 1050);
	CU_ASSERT_EQUAL(frozen, HORIZON(1000));
	CU_ASSERT_FALSE(node_baseline_catchup_due(bl, 1050));

	/* Releases go on; the cut stays. */
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1100, rec_cb, r), 1);
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1100), frozen);
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1500), frozen);

	/* There is room again: queued.  Full again: left out, newest
	 * left out now 1010; a second overflow is not counted twice. */
	CU_ASSERT_EQUAL(push1(bl, 0, 3, V(1003, 0)), FR_OK);
	CU_ASSERT_EQUAL(push1(bl, 0, 4, V(1010, 0)), FR_OK);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT_EQUAL(s.queued_rows, 2);
	CU_ASSERT_EQUAL(s.overflow_rows, 2);
	CU_ASSERT_EQUAL(s.overflows, 1);
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1105), frozen);

	/* Due only once the lag has passed the newest row left out. */
	CU_ASSERT_FALSE(node_baseline_catchup_due(bl, 1102));
	CU_ASSERT_FALSE(node_baseline_catchup_due(bl, 1109));
	CU_ASSERT_TRUE(node_baseline_catchup_due(bl, 1110));
	/* Done before it is due: ignored, still overflowed. */
	node_baseline_catchup_done(bl, 1105);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT(s.overflowed && s.catchups == 0);

	CU_ASSERT_EQUAL(node_baseline_catchup_cut(bl, 1110), HORIZON(1110));
	CU_ASSERT(node_baseline_catchup_cut(bl, 1110) >= V(1010, 0));
	node_baseline_catchup_done(bl, 1110);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT(!s.overflowed && s.catchups == 1);
	CU_ASSERT_FALSE(node_baseline_catchup_due(bl, 1200));
	/* The cut moves again: held by the queued rows until released. */
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1110), V(1001, 0) - 1);
	CU_ASSERT_EQUAL(node_baseline_release(bl, 1110, rec_cb, r), 2);
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 1110), HORIZON(1110));
	node_baseline_free(bl);
}

static void test_overflow_tiny(void)
{
	struct node_baseline *bl = mk(1);               /* nothing ever fits */
	struct rec *r = &the_rec;
	struct node_baseline_stats s;
	uint64_t rows[3] = { 1, 2, 3 }, vers[3] = { V(2000, 0), V(1500, 0),
						    V(2100, 0) };
	unsigned char vals[3 * 16] = { 0 };

	rec_reset(r);
	CU_ASSERT_EQUAL(node_baseline_release(bl, 2000, rec_cb, r), 0);
	CU_ASSERT_EQUAL(node_baseline_push(bl, 1, rows, vers, vals, 3), FR_OK);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT(s.overflowed && s.overflow_rows == 3 && s.overflows == 1);
	CU_ASSERT(s.queued_rows == 0 && s.queued_bytes == 0);
	/* A left-out row older than the cut lowers it: the cut is a lower
	 * bound of what is served. */
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 3000), V(1500, 0) - 1);
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 9000), V(1500, 0) - 1);
	CU_ASSERT_FALSE(node_baseline_catchup_due(bl, 2199));
	CU_ASSERT_TRUE(node_baseline_catchup_due(bl, 2200));
	node_baseline_catchup_done(bl, 2200);
	CU_ASSERT_EQUAL(node_baseline_cut(bl, 2200), HORIZON(2200));
	CU_ASSERT_EQUAL(node_baseline_release(bl, 9000, rec_cb, r), 0);
	/* A new overflow counts as a second one. */
	CU_ASSERT_EQUAL(push1(bl, 0, 0, V(2300, 0)), FR_OK);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT(s.overflowed && s.overflows == 2 && s.overflow_rows == 4);
	node_baseline_free(bl);
}

static void test_bad_ids(void)
{
	struct node_baseline *bl = mk(1u << 20);
	struct node_baseline_stats s;
	uint64_t rows[3] = { 1, 16, 2 }, vers[3] = { 1, 2, 3 };
	unsigned char vals[3 * 16] = { 0 };

	fr_errclear();
	CU_ASSERT_EQUAL(node_baseline_push(bl, 0, rows, vers, vals, 3),
			FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("row 16"));
	CU_ASSERT_EQUAL(node_baseline_push(bl, 2, rows, vers, vals, 1),
			FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("table 2"));
	rows[1] = 8;                               /* t1 has 8 rows */
	CU_ASSERT_EQUAL(node_baseline_push(bl, 1, rows, vers, vals, 3),
			FR_ERR_RANGE);
	CU_ASSERT_EQUAL(node_baseline_push(bl, 0, rows, vers, vals, 0), FR_OK);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT(s.queued_rows == 0 && s.queued_bytes == 0 &&
		  !s.overflowed && s.overflow_rows == 0);
	node_baseline_free(bl);
}

/* Randomized model check against a reference that keeps every push:
 * after release(now), each row's served version is the newest pushed
 * version with phys <= now - lag, its bytes are that push's, and every
 * pushed version <= the cut is served (or superseded). */
#define MC_STEPS 3000
#define MC_PUSH_MAX (MC_STEPS * 4)

struct mc_push {
	uint32_t table;
	uint64_t row, ver;
};

struct mc_state {
	uint64_t served[2][16];
	bool order_bad;     /* a row got an older version over a newer */
	bool bad_value;
};

static void mc_cb(uint32_t table, const uint64_t *rows,
		  const uint64_t *versions, const void *values, uint32_t n,
		  void *arg)
{
	struct mc_state *m = arg;
	unsigned char want[16];

	for (uint32_t i = 0; i < n; i++) {
		if (versions[i] <= m->served[table][rows[i]])
			m->order_bad = true;
		m->served[table][rows[i]] = versions[i];
		fill(table, rows[i], versions[i], want);
		if (memcmp(want, (const char *)values + i * shape_bytes[table],
			   shape_bytes[table]) != 0)
			m->bad_value = true;
	}
}

static void test_model_check(void)
{
	struct node_baseline *bl = mk(1ull << 30);
	struct mc_push *log = calloc(MC_PUSH_MAX, sizeof(*log));
	struct mc_state *m = calloc(1, sizeof(*m));
	uint64_t last[2][16] = { { 0 } };
	uint64_t now = 10000, npush = 0, mismatches = 0, cut_bad = 0;
	struct node_baseline_stats s;

	CU_ASSERT_FATAL(log != NULL && m != NULL);
	rng_state = 0x9e3779b97f4a7c15ull;
	for (int step = 0; step < MC_STEPS; step++) {
		uint32_t k = (uint32_t)rnd(4);

		now += rnd(25);
		for (uint32_t j = 0; j < k; j++) {
			struct mc_push *p = &log[npush];
			uint64_t phys;
			unsigned char val[16];

			p->table = (uint32_t)rnd(2);
			p->row = rnd(shape_rows[p->table]);
			/* Mostly fresh, sometimes late (older than the
			 * horizon); per row always newer, as in the store. */
			phys = rnd(8) == 0 ? now - rnd(3 * LAG) : now;
			p->ver = FR_HLC_MAKE(phys, rnd(8));
			if (p->ver <= last[p->table][p->row])
				p->ver = last[p->table][p->row] + 1;
			last[p->table][p->row] = p->ver;
			fill(p->table, p->row, p->ver, val);
			CU_ASSERT_EQUAL(node_baseline_push(bl, p->table, &p->row,
						      &p->ver, val, 1), FR_OK);
			npush++;
		}
		if (rnd(3) != 0)
			continue;
		node_baseline_release(bl, now, mc_cb, m);

		/* Reference: newest pushed version per row that is due. */
		{
			uint64_t want[2][16] = { { 0 } };
			uint64_t cut = node_baseline_cut(bl, now);

			for (uint64_t i = 0; i < npush; i++) {
				const struct mc_push *p = &log[i];

				if (FR_HLC_PHYS(p->ver) + LAG <= now &&
				    p->ver > want[p->table][p->row])
					want[p->table][p->row] = p->ver;
				if (p->ver <= cut &&
				    m->served[p->table][p->row] < p->ver)
					cut_bad++;
			}
			for (uint32_t t = 0; t < 2; t++)
				for (uint64_t row = 0; row < shape_rows[t];
				     row++) {
					mismatches += want[t][row] !=
						      m->served[t][row];
					mismatches +=
						node_baseline_served_version(bl, t,
									row) !=
						want[t][row];
				}
			CU_ASSERT(cut <= HORIZON(now));
		}
	}
	CU_ASSERT(npush > MC_STEPS);
	CU_ASSERT_EQUAL(mismatches, 0);
	CU_ASSERT_EQUAL(cut_bad, 0);
	CU_ASSERT_FALSE(m->order_bad);
	CU_ASSERT_FALSE(m->bad_value);
	node_baseline_get_stats(bl, &s);
	CU_ASSERT_FALSE(s.overflowed);
	CU_ASSERT_EQUAL(s.overflow_rows, 0);
	CU_ASSERT(s.released_rows > 0 && s.released_rows <= npush);
	free(log);
	free(m);
	node_baseline_free(bl);
}

static const struct fr_unit_test tests[] = {
	{ "new rejects bad shapes", test_new_invalid },
	{ "release order and timing", test_release_timing },
	{ "runs grouped by table", test_runs_by_table },
	{ "per-row ordering", test_row_ordering },
	{ "served-version guard", test_served_guard },
	{ "cut", test_cut },
	{ "revoke drops (t, r]", test_revoke },
	{ "overflow and catch-up", test_overflow },
	{ "overflow with no room at all", test_overflow_tiny },
	{ "bad table or row", test_bad_ids },
	{ "model check", test_model_check },
};

int main(void)
{
	fr_log_set_level(FR_LOG_ERROR);
	return fr_unit_main("node_baseline", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
