/*
 * test_shard_undo.c — CUnit suite for the undo ring and rollback
 * (shard/undo.c): rows in (T, R] return byte-exact to their value at <= T
 * (against a reference store that never saw the revoked writes), rows
 * above R stay, revoked versions are refused afterwards, a short ring
 * gives FR_ERR_NOUNDO with that shard untouched, restored_cb reports
 * exactly the restored rows, the changed-rows index stays exact, and the
 * version vector is lowered so peers resend writes this node skipped.
 * The undo horizon: a rollback to any T at or above it never reports a
 * noundo shard (a property over random histories with tiny rings,
 * rollbacks, resets and snapshot reloads), and just below it can.  Reset
 * of a noundo shard followed by a full transfer ends byte-identical to a
 * node that could roll back.
 */
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
#define VALUE_STEP 0.5f

/* One write: a row at a version from an origin (its value follows). */
struct wr {
	uint64_t row, ver;
	uint32_t org;
};

/* Apply writes (all of one shard) as one batch, with optional covers. */
static enum fr_err apply_writes(struct shard_store *st, const struct wr *w,
				uint32_t n, const struct shard_vv_ent *covers,
				uint32_t ncovers, struct shard_apply_result *res)
{
	const struct shard_model_def *d = shard_store_def(st);
	uint32_t dim = d->tables[0].dim;
	uint64_t rows[64], vers[64];
	uint32_t orgs[64];
	float *vals = calloc(64, dim * sizeof(float));
	struct shard_batch b = { 0 };
	enum fr_err err;

	CU_ASSERT_FATAL(n <= 64 && vals != NULL);
	for (uint32_t i = 0; i < n; i++) {
		rows[i] = w[i].row;
		vers[i] = w[i].ver;
		orgs[i] = w[i].org;
		fill_value(vals + (size_t)i * dim, dim, w[i].row, w[i].ver,
			   w[i].org, VALUE_STEP);
	}
	b.shard = n ? shard_of_row(w[0].row, d->shards) : 0;
	b.n = n;
	b.rows = rows;
	b.versions = vers;
	b.origins = orgs;
	b.values = vals;
	b.ncovers = ncovers;
	b.covers = covers;
	err = shard_store_apply(st, &b, res, NULL);
	free(vals);
	return err;
}

static void apply1(struct shard_store *st, uint64_t row, uint64_t ver,
		   uint32_t org, uint32_t cover_org, uint64_t cover_ver)
{
	struct wr w = { row, ver, org };
	struct shard_vv_ent c = { cover_org, cover_ver };

	CU_ASSERT_EQUAL(apply_writes(st, &w, 1, &c, cover_org ? 1 : 0, NULL),
			FR_OK);
}

/* changes_since equals a brute force from public reads, for a few
 * vectors per shard. */
static bool index_exact(const struct shard_store *st)
{
	const struct shard_model_def *d = shard_store_def(st);
	struct shard_changes c;
	struct shard_vv since;
	bool ok = true;

	shard_changes_init(&c);
	shard_vv_init(&since);
	for (uint32_t s = 0; s < d->shards && ok; s++)
		for (int k = 0; k < 4 && ok; k++) {
			uint32_t n = 0, m = 0;

			since.n = 0;
			for (uint32_t o = 1; o <= 3; o++)
				shard_vv_advance(&since, o, k ? rnd(400) : 0);
			ok = shard_store_changes_since(st, 0, s, &since, &c) ==
			     FR_OK;
			for (uint64_t r = s; ok && r < d->tables[0].rows;
			     r += d->shards) {
				uint64_t v;
				uint32_t o;

				shard_store_row_version(st, 0, r, &v, &o);
				if (v == 0 || v <= shard_vv_get(&since, o))
					continue;
				n++;
				/* each such row appears exactly once */
				m = 0;
				for (uint32_t i = 0; i < c.n; i++)
					m += c.c[i].row == r &&
					     c.c[i].version == v &&
					     c.c[i].origin == o;
				ok = m == 1;
			}
			ok = ok && n == c.n;
			for (uint32_t i = 1; ok && i < c.n; i++)
				ok = cmp_change(&c.c[i - 1], &c.c[i]) < 0;
		}
	shard_vv_fini(&since);
	shard_changes_fini(&c);
	return ok;
}

/* ----------------------------------------------------------------------
 * A random history and its reference
 * -------------------------------------------------------------------- */

#define HIST_MAX 400

struct hist {
	uint32_t nb;
	struct wr w[HIST_MAX][8];
	uint32_t n[HIST_MAX];
};

/* Batches in rising version order (as one stream of publishes arrives),
 * rows of one shard per batch, three origins; versions from *now up. */
static void make_hist(struct hist *h, const struct shard_model_def *d,
		      uint32_t nb, uint64_t *now)
{
	uint32_t rows_in = (uint32_t)(d->tables[0].rows / d->shards);

	h->nb = nb;
	for (uint32_t b = 0; b < nb; b++) {
		uint32_t s = (uint32_t)rnd(d->shards);

		*now += 1 + rnd(2);
		h->n[b] = 1 + (uint32_t)rnd(8);
		for (uint32_t i = 0; i < h->n[b]; i++) {
			h->w[b][i].row = s + d->shards * rnd(rows_in);
			h->w[b][i].ver = *now;
			h->w[b][i].org = 1 + (uint32_t)rnd(3);
		}
	}
}

struct range {
	uint64_t t, r;
};

static bool revoked_by(const struct range *rs, uint32_t nr, uint64_t v)
{
	for (uint32_t i = 0; i < nr; i++)
		if (v > rs[i].t && v <= rs[i].r)
			return true;
	return false;
}

/* Apply the history's writes that no range revokes: what a node that
 * never saw the revoked writes holds. */
static void apply_filtered(struct shard_store *st, const struct hist *h,
			   const struct range *rs, uint32_t nr)
{
	for (uint32_t b = 0; b < h->nb; b++) {
		struct wr keep[8];
		uint32_t k = 0;

		for (uint32_t i = 0; i < h->n[b]; i++)
			if (!revoked_by(rs, nr, h->w[b][i].ver))
				keep[k++] = h->w[b][i];
		if (k)
			CU_ASSERT_EQUAL(apply_writes(st, keep, k, NULL, 0, NULL),
					FR_OK);
	}
}

static void apply_hist(struct shard_store *st, const struct hist *h)
{
	for (uint32_t b = 0; b < h->nb; b++)
		CU_ASSERT_EQUAL(apply_writes(st, h->w[b], h->n[b], NULL, 0,
					     NULL), FR_OK);
}

/* ----------------------------------------------------------------------
 * restored_cb recorder
 * -------------------------------------------------------------------- */

struct rec_cb {
	uint32_t calls;
	uint64_t nrows;
	uint64_t rows[4096];
	uint8_t vals[4096][16];         /* first 16 bytes of each value */
	size_t row_bytes;
	bool bad;
};

static void record_cb(uint32_t table, const uint64_t *rows,
		      const void *values, uint32_t n, void *arg)
{
	struct rec_cb *r = arg;

	r->calls++;
	if (table != 0 || n == 0)
		r->bad = true;
	for (uint32_t i = 0; i < n && r->nrows < 4096; i++) {
		r->rows[r->nrows] = rows[i];
		memcpy(r->vals[r->nrows],
		       (const uint8_t *)values + (size_t)i * r->row_bytes, 16);
		r->nrows++;
	}
}

/* ----------------------------------------------------------------------
 * Tests
 * -------------------------------------------------------------------- */

static void test_rollback_matches_reference(void)
{
	static struct hist h;
	struct shard_model_def d;
	struct shard_store *st, *before, *ref;
	struct shard_rollback_report rep;
	struct range rs[1];
	struct rec_cb *cb = calloc(1, sizeof(*cb));
	uint64_t now = 0;
	uint64_t restored_rows = 0;

	CU_ASSERT_FATAL(cb != NULL);
	make_def(&d, 256, 4, 4);
	cb->row_bytes = 16;
	make_hist(&h, &d, 300, &now);
	st = new_store(&d, 0, 1 << 20);
	before = new_store(&d, 0, 0);
	apply_hist(st, &h);
	apply_hist(before, &h);
	rs[0].t = now / 3;
	rs[0].r = 2 * now / 3;
	ref = new_store(&d, 0, 0);
	apply_filtered(ref, &h, rs, 1);
	CU_ASSERT_FALSE(same_rows(st, ref));    /* the range mattered */

	CU_ASSERT_EQUAL(shard_store_rollback(st, rs[0].t, rs[0].r, 7, record_cb,
					     cb, &rep), FR_OK);
	CU_ASSERT(same_rows(st, ref));
	CU_ASSERT_EQUAL(rep.nnoundo, 0);
	CU_ASSERT(rep.shards_restored > 0 && rep.shards_restored <= d.shards);
	CU_ASSERT_EQUAL(shard_store_rollback_epoch(st), 7);
	for (uint32_t s = 0; s < d.shards; s++) {
		struct shard_digest_entry e;

		shard_store_digest_entry(st, 0, s, &e);
		CU_ASSERT_EQUAL(e.rollback_epoch, 7);
	}
	/* restored_cb: exactly the rows whose state changed, each once,
	 * with its final bytes; rows above R untouched. */
	CU_ASSERT_FALSE(cb->bad);
	for (uint64_t r = 0; r < d.tables[0].rows; r++) {
		uint64_t vb, va;
		uint32_t ob, oa, hits = 0;

		shard_store_row_version(before, 0, r, &vb, &ob);
		shard_store_row_version(st, 0, r, &va, &oa);
		if (vb > rs[0].r || vb <= rs[0].t) {
			CU_ASSERT(va == vb && oa == ob);
			CU_ASSERT(memcmp(shard_store_row(st, 0, r),
					 shard_store_row(before, 0, r), 16) == 0);
		} else {
			CU_ASSERT(va <= rs[0].t);
			restored_rows++;
		}
		for (uint64_t i = 0; i < cb->nrows; i++)
			if (cb->rows[i] == r) {
				hits++;
				CU_ASSERT(memcmp(cb->vals[i],
						 shard_store_row(st, 0, r), 16) == 0);
			}
		CU_ASSERT_EQUAL(hits, (vb > rs[0].t && vb <= rs[0].r) ? 1 : 0);
	}
	CU_ASSERT(restored_rows > 0);
	CU_ASSERT_EQUAL(rep.rows_restored, restored_rows);
	CU_ASSERT_EQUAL(cb->nrows, restored_rows);
	CU_ASSERT(index_exact(st));
	shard_rollback_report_fini(&rep);
	shard_rollback_report_fini(&rep);       /* twice is harmless */
	free(cb);
	shard_store_free(st);
	shard_store_free(before);
	shard_store_free(ref);
}

/* Several rollbacks between further writes, a tiny index (so the index
 * is rebuilt and trimmed), each time against the reference. */
static void test_rollback_sequence(void)
{
	static struct hist h;
	struct shard_model_def d;
	struct shard_store *st;
	struct shard_rollback_report rep;
	struct range rs[6];
	uint32_t nr = 0;
	uint64_t now = 0;

	make_def(&d, 120, 2, 3);
	st = new_store(&d, 8, 1 << 20);
	for (int round = 0; round < 6; round++) {
		struct shard_store *ref = new_store(&d, 0, 0);
		uint64_t start = now;
		struct hist *part = malloc(sizeof(*part));

		CU_ASSERT_FATAL(part != NULL);
		make_hist(part, &d, 60, &now);
		/* Append this round's writes to the full history. */
		for (uint32_t b = 0; b < part->nb && h.nb < HIST_MAX; b++) {
			h.n[h.nb] = part->n[b];
			memcpy(h.w[h.nb], part->w[b], sizeof(part->w[b]));
			h.nb++;
		}
		/* Writes the store already refuses do nothing. */
		for (uint32_t b = 0; b < part->nb; b++)
			apply_writes(st, part->w[b], part->n[b], NULL, 0, NULL);
		free(part);
		/* Sometimes a range reaching back past earlier rounds. */
		rs[nr].t = round % 2 ? start / 2 : start + (now - start) / 3;
		rs[nr].r = round % 2 ? start + (now - start) / 2 : now - 5;
		CU_ASSERT_EQUAL(shard_store_rollback(st, rs[nr].t, rs[nr].r,
						     10 + round, NULL, NULL,
						     &rep), FR_OK);
		CU_ASSERT_EQUAL(rep.nnoundo, 0);
		shard_rollback_report_fini(&rep);
		nr++;
		apply_filtered(ref, &h, rs, nr);
		CU_ASSERT(same_rows(st, ref));
		CU_ASSERT(index_exact(st));
		shard_store_free(ref);
	}
	CU_ASSERT_EQUAL(shard_store_rollback_epoch(st), 15);
	shard_store_free(st);
}

static void test_refused_after_rollback(void)
{
	struct shard_model_def d;
	struct shard_store *st;
	struct shard_rollback_report rep;
	struct shard_apply_result res;
	struct wr w[2] = { { 4, 150, 1 }, { 8, 120, 2 } };
	struct shard_vv_ent cov[2] = { { 1, 150 }, { 2, 250 } };
	uint64_t sum, seq;

	make_def(&d, 16, 4, 4);
	st = new_store(&d, 0, 4096);
	apply1(st, 4, 50, 1, 1, 50);
	apply1(st, 4, 150, 1, 1, 150);          /* revoked below */
	apply1(st, 8, 300, 2, 2, 300);          /* above R: stays */
	CU_ASSERT_EQUAL(shard_store_rollback(st, 100, 200, 1, NULL, NULL, &rep),
			FR_OK);
	CU_ASSERT_EQUAL(rep.rows_restored, 1);
	CU_ASSERT_EQUAL(rep.shards_restored, 1);
	shard_rollback_report_fini(&rep);
	CU_ASSERT(shard_store_is_revoked(st, 101));
	CU_ASSERT(shard_store_is_revoked(st, 200));
	CU_ASSERT_FALSE(shard_store_is_revoked(st, 100));
	CU_ASSERT_FALSE(shard_store_is_revoked(st, 201));
	{
		uint64_t v;
		uint32_t o;

		shard_store_row_version(st, 0, 4, &v, &o);
		CU_ASSERT(v == 50 && o == 1);
		shard_store_row_version(st, 0, 8, &v, &o);
		CU_ASSERT(v == 300 && o == 2);
	}
	/* Row 4 went back to 50, and before 150 arrived the shard held
	 * nothing of origin 2: origin 2 may have written row 4 in (50, T]
	 * without this node storing it (150 was newer), so both entries
	 * come down to 50 and peers resend from there. */
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(st, 0, 0), 1), 50);
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(st, 0, 0), 2), 50);

	/* Revoked versions are refused and change nothing. */
	sum = shard_store_table_checksum(st, 0);
	seq = shard_store_change_seq(st);
	CU_ASSERT_EQUAL(apply_writes(st, w, 2, NULL, 0, &res), FR_OK);
	CU_ASSERT_EQUAL(res.refused, 2);
	CU_ASSERT_EQUAL(res.applied, 0);
	CU_ASSERT_EQUAL(res.stale, 0);
	CU_ASSERT_EQUAL(shard_store_table_checksum(st, 0), sum);
	CU_ASSERT_EQUAL(shard_store_change_seq(st), seq);
	CU_ASSERT(index_exact(st));
	/* A cover inside the range counts only up to T. */
	CU_ASSERT_EQUAL(apply_writes(st, NULL, 0, cov, 1, &res), FR_OK);
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(st, 0, 0), 1), 100);
	/* A later version applies normally. */
	w[0].ver = 201;
	w[1].ver = 400;
	CU_ASSERT_EQUAL(apply_writes(st, w, 2, cov, 2, &res), FR_OK);
	CU_ASSERT_EQUAL(res.applied, 2);
	CU_ASSERT_EQUAL(res.refused, 0);
	CU_ASSERT_NOT_EQUAL(shard_store_table_checksum(st, 0), sum);
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(st, 0, 0), 1), 100);
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(st, 0, 0), 2), 250);

	/* T >= R is refused and revokes nothing. */
	memset(&rep, 0xff, sizeof(rep));
	CU_ASSERT_EQUAL(shard_store_rollback(st, 500, 500, 2, NULL, NULL, &rep),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("target cut 500 must be below revoke-until 500"));
	CU_ASSERT_EQUAL(rep.nnoundo, 0);
	CU_ASSERT_PTR_NULL(rep.noundo);
	CU_ASSERT_EQUAL(shard_store_rollback(st, 600, 10, 2, NULL, NULL, NULL),
			FR_ERR_INVAL);
	CU_ASSERT_FALSE(shard_store_is_revoked(st, 550));
	CU_ASSERT_EQUAL(shard_store_rollback_epoch(st), 1);
	/* Overlapping ranges merge. */
	CU_ASSERT_EQUAL(shard_store_rollback(st, 180, 260, 3, NULL, NULL, NULL),
			FR_OK);
	CU_ASSERT(shard_store_is_revoked(st, 101));
	CU_ASSERT(shard_store_is_revoked(st, 201));
	CU_ASSERT(shard_store_is_revoked(st, 260));
	CU_ASSERT_FALSE(shard_store_is_revoked(st, 261));
	{
		uint64_t v;

		shard_store_row_version(st, 0, 4, &v, NULL);
		CU_ASSERT_EQUAL(v, 50);         /* 201 revoked, back to 50 */
	}
	shard_store_free(st);
}

static void test_noundo(void)
{
	struct shard_model_def d;
	struct shard_store *st, *copy;
	struct shard_rollback_report rep;
	const size_t rb = 4 * 4;
	/* Room for 8 records of (32-byte header + 16 bytes). */
	const uint64_t budget = 8 * (32 + rb);

	make_def(&d, 64, 4, 4);
	st = new_store(&d, 0, budget);
	copy = new_store(&d, 0, 0);
	/* Shard 1: a hot row rewritten 30 times inside (100, 200]. */
	for (struct shard_store *x = st; x; x = x == st ? copy : NULL) {
		apply1(x, 1, 90, 1, 1, 90);
		for (uint64_t v = 101; v <= 130; v++)
			apply1(x, 1, v, 1, 1, v);
		/* Shard 2: one change in range; shard 3: none. */
		apply1(x, 2, 50, 2, 2, 50);
		apply1(x, 2, 150, 2, 2, 150);
		apply1(x, 3, 60, 1, 0, 0);
	}
	CU_ASSERT_EQUAL(shard_store_rollback(st, 100, 200, 4, NULL, NULL, &rep),
			FR_ERR_NOUNDO);
	CU_ASSERT(errmsg_has("table 0 shard 1"));
	CU_ASSERT_EQUAL_FATAL(rep.nnoundo, 1);
	CU_ASSERT_EQUAL(rep.noundo[0].table, 0);
	CU_ASSERT_EQUAL(rep.noundo[0].shard, 1);
	CU_ASSERT_EQUAL(rep.shards_restored, 1);
	CU_ASSERT_EQUAL(rep.rows_restored, 1);
	shard_rollback_report_fini(&rep);
	CU_ASSERT_PTR_NULL(rep.noundo);
	{
		struct shard_digest_entry e1, e2, c1;
		uint64_t v;

		/* Shard 1 untouched: row, vector, epoch. */
		CU_ASSERT(memcmp(shard_store_row(st, 0, 1),
				 shard_store_row(copy, 0, 1), rb) == 0);
		shard_store_row_version(st, 0, 1, &v, NULL);
		CU_ASSERT_EQUAL(v, 130);
		shard_store_digest_entry(st, 0, 1, &e1);
		shard_store_digest_entry(copy, 0, 1, &c1);
		CU_ASSERT(shard_vv_equal(e1.vv, c1.vv));
		CU_ASSERT_EQUAL(shard_vv_get(e1.vv, 1), 130);
		CU_ASSERT_EQUAL(e1.rollback_epoch, 0);
		/* Shard 2 restored, epoch 4. */
		shard_store_row_version(st, 0, 2, &v, NULL);
		CU_ASSERT_EQUAL(v, 50);
		shard_store_digest_entry(st, 0, 2, &e2);
		CU_ASSERT_EQUAL(e2.rollback_epoch, 4);
	}
	shard_store_free(st);

	/* Undo disabled: shards with rows in range are all noundo, the
	 * others still take the epoch. */
	st = new_store(&d, 0, 0);
	apply1(st, 2, 150, 2, 2, 150);
	apply1(st, 3, 60, 1, 0, 0);
	CU_ASSERT_EQUAL(shard_store_rollback(st, 100, 200, 4, NULL, NULL, &rep),
			FR_ERR_NOUNDO);
	CU_ASSERT_EQUAL_FATAL(rep.nnoundo, 1);
	CU_ASSERT_EQUAL(rep.noundo[0].shard, 2);
	CU_ASSERT_EQUAL(rep.rows_restored, 0);
	shard_rollback_report_fini(&rep);
	{
		struct shard_digest_entry e;

		shard_store_digest_entry(st, 0, 3, &e);
		CU_ASSERT_EQUAL(e.rollback_epoch, 4);
		shard_store_digest_entry(st, 0, 2, &e);
		CU_ASSERT_EQUAL(e.rollback_epoch, 0);
	}
	shard_store_free(st);

	/* A row bigger than the whole budget: nothing can be kept. */
	st = new_store(&d, 0, 40);
	apply1(st, 2, 150, 2, 2, 150);
	CU_ASSERT_EQUAL(shard_store_rollback(st, 100, 200, 4, NULL, NULL, NULL),
			FR_ERR_NOUNDO);
	shard_store_free(st);
	shard_store_free(copy);
}

/*
 * The vector after a rollback.  Origin O wrote row 4 at 80 (<= T); origin
 * P wrote it at 150 (revoked).  X saw 80 then 150; Y saw 150 first, so
 * O's 80 was stale there and never stored.  After the rollback X holds
 * 80, Y what it held before 150 (nothing).  Y's vector must no longer
 * claim O's 80, so that a pull from X brings it; then X and Y agree.
 */
static void test_vv_after_rollback(void)
{
	const uint32_t O = 1, P = 2;
	struct shard_model_def d;
	struct shard_store *x, *y;
	struct shard_changes c;
	struct shard_vv stale;
	uint32_t found = 0;

	make_def(&d, 16, 4, 2);
	x = new_store(&d, 0, 1 << 12);
	y = new_store(&d, 0, 1 << 12);
	apply1(x, 6, 40, O, O, 40);     /* both hold an older row of O's */
	apply1(y, 6, 40, O, O, 40);
	apply1(x, 4, 80, O, O, 100);
	apply1(x, 4, 150, P, P, 150);
	apply1(y, 4, 150, P, P, 150);
	apply1(y, 4, 80, O, O, 100);    /* stale at Y */
	CU_ASSERT(same_rows(x, y));
	CU_ASSERT(shard_vv_equal(shard_store_vv(x, 0, 0),
				 shard_store_vv(y, 0, 0)));
	CU_ASSERT_EQUAL(shard_store_rollback(x, 100, 200, 1, NULL, NULL, NULL),
			FR_OK);
	CU_ASSERT_EQUAL(shard_store_rollback(y, 100, 200, 1, NULL, NULL, NULL),
			FR_OK);
	CU_ASSERT_FALSE(same_rows(x, y));
	/* With Y's old claim O:100 X would send nothing. */
	shard_vv_init(&stale);
	shard_vv_advance(&stale, O, 100);
	shard_vv_advance(&stale, P, 100);
	shard_changes_init(&c);
	CU_ASSERT_EQUAL(shard_store_changes_since(x, 0, 0, &stale, &c), FR_OK);
	CU_ASSERT_EQUAL(c.n, 0);
	/* Y's clamped vector asks for it. */
	CU_ASSERT(shard_vv_get(shard_store_vv(y, 0, 0), O) < 80);
	CU_ASSERT_EQUAL(shard_store_changes_since(x, 0, 0,
						  shard_store_vv(y, 0, 0), &c),
			FR_OK);
	for (uint32_t i = 0; i < c.n; i++) {
		struct wr w = { c.c[i].row, c.c[i].version, c.c[i].origin };

		found += w.row == 4 && w.ver == 80 && w.org == O;
		CU_ASSERT_EQUAL(apply_writes(y, &w, 1, NULL, 0, NULL), FR_OK);
	}
	CU_ASSERT_EQUAL(found, 1);
	CU_ASSERT(same_rows(x, y));
	/* X's own vector is still honest about what it holds (no entry in
	 * (T, R]) but need not drop below what it held before 150. */
	CU_ASSERT(shard_vv_get(shard_store_vv(x, 0, 0), O) >= 80);
	CU_ASSERT(shard_vv_get(shard_store_vv(x, 0, 0), P) <= 100);
	shard_changes_fini(&c);
	shard_vv_fini(&stale);
	shard_store_free(x);
	shard_store_free(y);
}

/* ----------------------------------------------------------------------
 * Undo horizon and reset
 * -------------------------------------------------------------------- */

/* Bytes of one undo record for a table of dim f32s: the 32-byte record
 * header plus the row. */
static uint64_t rec_bytes(uint32_t dim)
{
	return 32 + 4 * (uint64_t)dim;
}

/* The newest version any row of table 0 holds (shard s, or all if s is
 * UINT32_MAX). */
static uint64_t newest_row(const struct shard_store *st, uint32_t s)
{
	const struct shard_model_def *d = shard_store_def(st);
	uint64_t top = 0;

	for (uint64_t r = 0; r < d->tables[0].rows; r++) {
		uint64_t v;

		if (s != UINT32_MAX && shard_of_row(r, d->shards) != s)
			continue;
		shard_store_row_version(st, 0, r, &v, NULL);
		if (v > top)
			top = v;
	}
	return top;
}

static char tmpdir[512];

/* A fresh store's horizon is 0 while rings hold everything; a full ring
 * raises it to the newest record it forgot, and a rollback to exactly
 * that cut works while one just below it cannot.  Writes bigger than the
 * budget and disabled undo count as forgotten. */
static void test_horizon_basic(void)
{
	struct shard_model_def d;
	struct shard_store *st, *twin;
	struct shard_rollback_report rep;
	uint64_t v;

	make_def(&d, 16, 4, 4);
	st = new_store(&d, 0, 8 * rec_bytes(4));         /* 8 records */
	twin = new_store(&d, 0, 8 * rec_bytes(4));
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 0);
	for (uint64_t ver = 1; ver <= 8; ver++) {
		apply1(st, 1, ver, 1, 1, ver);
		apply1(twin, 1, ver, 1, 1, ver);
	}
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 0); /* all 8 held */
	for (uint64_t ver = 9; ver <= 20; ver++) {
		apply1(st, 1, ver, 1, 1, ver);
		apply1(twin, 1, ver, 1, 1, ver);
	}
	/* Records of 13..20 are held; 1..12 were pushed out. */
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 12);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(twin), 12);
	/* Other shards' writes within their own rings change nothing. */
	apply1(st, 2, 30, 2, 2, 30);
	apply1(twin, 2, 30, 2, 2, 30);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 12);

	/* Just below the horizon: row 1 must go back to 11, whose record
	 * is gone. */
	CU_ASSERT_EQUAL(shard_store_rollback(st, 11, 25, 1, NULL, NULL, &rep),
			FR_ERR_NOUNDO);
	CU_ASSERT_EQUAL_FATAL(rep.nnoundo, 1);
	CU_ASSERT_EQUAL(rep.noundo[0].shard, 1);
	shard_rollback_report_fini(&rep);
	shard_store_row_version(st, 0, 1, &v, NULL);
	CU_ASSERT_EQUAL(v, 20);                         /* untouched */
	/* At the horizon: back to 12, byte-exact. */
	CU_ASSERT_EQUAL(shard_store_rollback(twin, 12, 25, 1, NULL, NULL,
					     &rep), FR_OK);
	CU_ASSERT_EQUAL(rep.nnoundo, 0);
	CU_ASSERT_EQUAL(rep.rows_restored, 1);
	shard_rollback_report_fini(&rep);
	shard_store_row_version(twin, 0, 1, &v, NULL);
	CU_ASSERT_EQUAL(v, 12);
	{
		float want[4];

		fill_value(want, 4, 1, 12, 1, VALUE_STEP);
		CU_ASSERT(memcmp(shard_store_row(twin, 0, 1), want,
				 sizeof(want)) == 0);
	}
	shard_store_free(st);
	shard_store_free(twin);

	/* A record bigger than the budget is never kept. */
	st = new_store(&d, 0, rec_bytes(4) - 1);
	apply1(st, 3, 40, 1, 1, 40);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 40);
	apply1(st, 3, 41, 1, 1, 41);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 41);
	CU_ASSERT_EQUAL(shard_store_rollback(st, 40, 50, 1, NULL, NULL, NULL),
			FR_ERR_NOUNDO);
	shard_store_free(st);

	/* Undo disabled: 0 until something is written, then no cut. */
	st = new_store(&d, 0, 0);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 0);
	apply1(st, 3, 40, 1, 1, 40);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), INT64_MAX);
	shard_store_free(st);
}

/*
 * A forgotten record an earlier rollback revoked is still needed: row 1
 * holds 15, then 50; rollback (10, 20] leaves it (50 is above R), so
 * walking back from 50 passes 15 in any later rollback that revokes 50.
 * Once 15's record is gone, the horizon must cover 50, not only 15 —
 * whether the record left the ring before the first rollback (rule 2b in
 * undo.c) or after it (2a) — and a write on top of a revoked version
 * that a noundo shard still holds must be covered as well (2c).
 */
static void test_horizon_revoked_history(void)
{
	struct shard_model_def d;
	struct shard_store *st;
	struct shard_rollback_report rep;

	make_def(&d, 16, 4, 4);
	for (int after = 0; after < 2; after++) {
		/* Room for 2 records, then 3. */
		st = new_store(&d, 0, (2 + (uint64_t)after) * rec_bytes(4));
		apply1(st, 1, 15, 1, 1, 15);
		apply1(st, 1, 50, 1, 1, 50);
		if (!after) {
			apply1(st, 5, 60, 1, 1, 60);   /* pushes out 0 -> 15 */
			CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 15);
		}
		CU_ASSERT_EQUAL(shard_store_rollback(st, 10, 20, 1, NULL, NULL,
						     &rep), FR_OK);
		CU_ASSERT_EQUAL(rep.nnoundo, 0);
		shard_rollback_report_fini(&rep);
		if (after) {
			CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 0);
			apply1(st, 5, 60, 1, 1, 60);
			apply1(st, 5, 61, 1, 1, 61);   /* pushes out 0 -> 15 */
		}
		CU_ASSERT(shard_store_undo_horizon(st) >= 50);
		/* 30 is above 15 yet the rollback cannot be done. */
		CU_ASSERT_EQUAL(shard_store_rollback(st, 30, 55, 2, NULL, NULL,
						     &rep), FR_ERR_NOUNDO);
		CU_ASSERT_EQUAL(rep.nnoundo, 1);
		shard_rollback_report_fini(&rep);
		/* Shard 1 still holds 50, now revoked: a write on top of it
		 * cannot be rolled back either. */
		apply1(st, 1, 70, 1, 1, 70);
		CU_ASSERT(shard_store_undo_horizon(st) >= 70);
		CU_ASSERT_EQUAL(shard_store_rollback(st, 65, 75, 3, NULL, NULL,
						     NULL), FR_ERR_NOUNDO);
		shard_store_free(st);
	}
}

/* A store loaded from a snapshot has no undo history for what it loaded:
 * its horizon is the newest row version; writes after the load are
 * undoable again. */
static void test_horizon_snapshot_floor(void)
{
	struct shard_model_def d;
	struct shard_store *st, *ld;
	struct shard_store_opts o = { .undo_bytes_per_shard = 1 << 16 };
	char path[600];
	enum fr_err err;
	uint64_t lsn;

	make_tmpdir(tmpdir, sizeof(tmpdir), "undo");
	snprintf(path, sizeof(path), "%s/snap", tmpdir);
	make_def(&d, 32, 4, 4);
	st = new_store(&d, 0, 1 << 16);
	apply1(st, 1, 10, 1, 1, 10);
	apply1(st, 2, 35, 2, 2, 35);
	apply1(st, 1, 20, 1, 1, 20);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(st), 0);
	CU_ASSERT_EQUAL(shard_store_snapshot(st, path, 7), FR_OK);
	shard_store_free(st);

	for (int below = 1; below >= 0; below--) {
		ld = shard_store_load(path, &o, &lsn, &err);
		CU_ASSERT_EQUAL_FATAL(err, FR_OK);
		CU_ASSERT_FATAL(ld != NULL);
		CU_ASSERT_EQUAL(shard_store_undo_horizon(ld), 35);
		apply1(ld, 1, 40, 1, 1, 40);
		apply1(ld, 2, 45, 2, 2, 45);
		CU_ASSERT_EQUAL(shard_store_undo_horizon(ld), 35);
		if (below) {
			/* Row 2 would have to go back past its loaded 35. */
			CU_ASSERT_EQUAL(shard_store_rollback(ld, 34, 50, 1, NULL,
							     NULL, NULL),
					FR_ERR_NOUNDO);
		} else {
			uint64_t v1, v2;

			CU_ASSERT_EQUAL(shard_store_rollback(ld, 35, 50, 1, NULL,
							     NULL, NULL), FR_OK);
			shard_store_row_version(ld, 0, 1, &v1, NULL);
			shard_store_row_version(ld, 0, 2, &v2, NULL);
			CU_ASSERT(v1 == 20 && v2 == 35);
		}
		shard_store_free(ld);
	}
	/* Undo disabled: the loaded rows' newest version still bounds it;
	 * the first write makes it UINT64_MAX. */
	o.undo_bytes_per_shard = 0;
	ld = shard_store_load(path, &o, &lsn, &err);
	CU_ASSERT_FATAL(ld != NULL);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(ld), 35);
	apply1(ld, 3, 40, 1, 1, 40);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(ld), INT64_MAX);
	shard_store_free(ld);
	unlink(path);
	CU_ASSERT_EQUAL(rmdir(tmpdir), 0);
}

/* Rollbacks, resets and reloads over one random store; `now` is the
 * newest version handed out so far. */
struct prop_stats {
	uint32_t checked;       /* rollbacks with T >= horizon */
	uint32_t restored;      /* ... that restored rows */
	uint32_t below;         /* rollbacks with T < horizon */
	uint32_t below_noundo;  /* ... that reported noundo */
	uint32_t resets, reloads;
};

static void prop_write(struct shard_store *st, uint64_t *now)
{
	const struct shard_model_def *d = shard_store_def(st);
	uint32_t s = (uint32_t)rnd(d->shards);
	uint32_t per = (uint32_t)(d->tables[0].rows / d->shards);
	struct wr w[4];
	struct shard_vv_ent cov;
	uint32_t n = 1 + (uint32_t)rnd(4);

	*now += 1 + rnd(3);
	for (uint32_t i = 0; i < n; i++) {
		w[i].row = s + (uint64_t)d->shards * rnd(per);
		w[i].org = 1 + (uint32_t)rnd(3);
		/* Mostly new; sometimes late (stale, refused or winning
		 * over an older row). */
		w[i].ver = rnd(5) || *now <= 12 ? *now : *now - rnd(12);
	}
	cov.origin = w[0].org;
	cov.version = w[0].ver;
	CU_ASSERT_EQUAL(apply_writes(st, w, n, &cov, (uint32_t)rnd(2), NULL),
			FR_OK);
}

static void prop_rollback(struct shard_store *st, uint64_t *now,
			  uint64_t *epoch, struct prop_stats *ps)
{
	struct shard_rollback_report rep;
	uint64_t h = shard_store_undo_horizon(st), t, r;
	enum fr_err err;

	if (h <= *now && rnd(3))
		t = h + rnd(*now - h + 3);
	else
		t = rnd(*now + 1);
	r = rnd(4) ? t + 1 + rnd(*now + 8 - (t < *now ? t : *now)) :
		     t + 1 + rnd(4);
	err = shard_store_rollback(st, t, r, ++*epoch, NULL, NULL, &rep);
	if (t >= h) {
		ps->checked++;
		ps->restored += rep.rows_restored > 0;
		CU_ASSERT_EQUAL(err, FR_OK);
		CU_ASSERT_EQUAL(rep.nnoundo, 0);
		if (rep.nnoundo)
			fprintf(stderr,
				"\n  rollback (%llu, %llu] with horizon %llu: %u noundo\n",
				(unsigned long long)t, (unsigned long long)r,
				(unsigned long long)h, rep.nnoundo);
	} else {
		ps->below++;
		ps->below_noundo += rep.nnoundo > 0;
		CU_ASSERT(err == FR_OK || err == FR_ERR_NOUNDO);
	}
	/* Half the noundo shards are repaired at once, the others keep
	 * their revoked rows for a while (and take writes on top). */
	for (uint32_t i = 0; i < rep.nnoundo; i++)
		if (rnd(2)) {
			CU_ASSERT_EQUAL(shard_store_reset_shard(st, 0,
							       rep.noundo[i].shard,
							       *epoch, NULL, NULL,
							       NULL), FR_OK);
			ps->resets++;
		}
	shard_rollback_report_fini(&rep);
	if (r > *now && rnd(2))
		*now = r;               /* revoke-until is usually "now" */
}

/* After a reset: no row of shard s holds a revoked version, the vector
 * is empty and the horizon covers every row left in the shard. */
static void prop_reset(struct shard_store *st, uint64_t epoch,
		       struct prop_stats *ps)
{
	const struct shard_model_def *d = shard_store_def(st);
	uint32_t s = (uint32_t)rnd(d->shards);
	uint64_t z, revoked = 0, after = 0;

	for (uint64_t r = s; r < d->tables[0].rows; r += d->shards) {
		uint64_t v;

		shard_store_row_version(st, 0, r, &v, NULL);
		revoked += shard_store_is_revoked(st, v);
	}
	CU_ASSERT_EQUAL(shard_store_reset_shard(st, 0, s, epoch, NULL, NULL,
					       &z), FR_OK);
	CU_ASSERT_EQUAL(z, revoked);
	for (uint64_t r = s; r < d->tables[0].rows; r += d->shards) {
		uint64_t v;

		shard_store_row_version(st, 0, r, &v, NULL);
		after += shard_store_is_revoked(st, v);
	}
	CU_ASSERT_EQUAL(after, 0);
	CU_ASSERT_EQUAL(shard_store_vv(st, 0, s)->n, 0);
	CU_ASSERT(shard_store_undo_horizon(st) >= newest_row(st, s));
	ps->resets++;
}

/* Snapshot and load back: the loaded store's horizon is its newest row
 * version, whatever the old one was. */
static struct shard_store *prop_reload(struct shard_store *st,
				       const char *path, uint64_t undo,
				       struct prop_stats *ps)
{
	struct shard_store_opts o = { .undo_bytes_per_shard = undo };
	struct shard_store *ld;
	enum fr_err err;

	CU_ASSERT_EQUAL_FATAL(shard_store_snapshot(st, path, 1), FR_OK);
	ld = shard_store_load(path, &o, NULL, &err);
	CU_ASSERT_EQUAL_FATAL(err, FR_OK);
	CU_ASSERT_FATAL(ld != NULL);
	CU_ASSERT(same_rows(st, ld));
	CU_ASSERT_EQUAL(shard_store_undo_horizon(ld), newest_row(ld, UINT32_MAX));
	shard_store_free(st);
	ps->reloads++;
	return ld;
}

/*
 * The horizon's promise over random histories: tiny rings (0 to 16
 * records, or undo off), several shards and origins, late writes, and
 * between writes rollbacks at random cuts (below the horizon too, so that
 * rings hold revoked history and shards stay noundo), resets and snapshot
 * reloads.  Every rollback with T >= the horizon must restore every
 * shard; the horizon never comes down within one store.
 */
static void test_horizon_property(void)
{
	static const uint32_t recs[] = { 0, 1, 2, 3, 4, 6, 10, 16 };
	struct prop_stats ps = { 0 };
	char path[600];

	make_tmpdir(tmpdir, sizeof(tmpdir), "undo");
	snprintf(path, sizeof(path), "%s/snap", tmpdir);
	for (int trial = 0; trial < 300; trial++) {
		struct shard_model_def d;
		struct shard_store *st;
		uint32_t shards = 1 + (uint32_t)rnd(3);
		uint32_t dim = 1 + (uint32_t)rnd(2);
		uint32_t nrec = recs[rnd(sizeof(recs) / sizeof(recs[0]))];
		uint64_t undo, now = 0, epoch = 0, last = 0;
		int steps = 40 + (int)rnd(120);

		if (rnd(12) == 0)
			undo = 0;                       /* undo off */
		else if (nrec == 0)
			undo = 1 + rnd(rec_bytes(dim) - 1);  /* too small */
		else
			undo = nrec * rec_bytes(dim) + rnd(rec_bytes(dim));
		make_def(&d, shards * (3 + rnd(6)), dim, shards);
		st = new_store(&d, rnd(2) ? 4 : 0, undo);
		for (int i = 0; i < steps; i++) {
			uint64_t op = rnd(100), h;

			if (op < 72) {
				prop_write(st, &now);
			} else if (op < 90) {
				prop_rollback(st, &now, &epoch, &ps);
			} else if (op < 97) {
				prop_reset(st, epoch, &ps);
			} else {
				st = prop_reload(st, path, undo, &ps);
				last = 0;
			}
			h = shard_store_undo_horizon(st);
			CU_ASSERT(h >= last);
			last = h;
		}
		shard_store_free(st);
	}
	fprintf(stderr, "\n  horizon property: %u rollbacks at or above it (%u restoring rows), %u below (%u noundo), %u resets, %u reloads\n",
		ps.checked, ps.restored, ps.below, ps.below_noundo, ps.resets,
		ps.reloads);
	/* The runs exercised what they claim to. */
	CU_ASSERT(ps.checked > 300);
	CU_ASSERT(ps.restored > 100);
	CU_ASSERT(ps.below_noundo > 50);
	CU_ASSERT(ps.resets > 50);
	CU_ASSERT(ps.reloads > 20);
	unlink(path);
	CU_ASSERT_EQUAL(rmdir(tmpdir), 0);
}

/* Apply a history with covers: each batch's origins up to its version,
 * as local publishes promise. */
static void apply_hist_covered(struct shard_store *st, const struct hist *h)
{
	for (uint32_t b = 0; b < h->nb; b++) {
		struct shard_vv_ent cov[3];
		uint32_t nc = 0;

		for (uint32_t o = 1; o <= 3; o++)
			for (uint32_t i = 0; i < h->n[b]; i++)
				if (h->w[b][i].org == o) {
					cov[nc].origin = o;
					cov[nc].version = h->w[b][i].ver;
					nc++;
					break;
				}
		CU_ASSERT_EQUAL(apply_writes(st, h->w[b], h->n[b], cov, nc,
					     NULL), FR_OK);
	}
}

/* Send shard s of `from` to `to` as a pull would: every row changed
 * since `since`, with its version, origin and value, covering `from`'s
 * vector.  An empty `since` makes it a full transfer. */
static void pull_shard(const struct shard_store *from, struct shard_store *to,
		       uint32_t s, const struct shard_vv *since)
{
	const struct shard_model_def *d = shard_store_def(from);
	size_t rb = shard_row_bytes(&d->tables[0]);
	const struct shard_vv *vv = shard_store_vv(from, 0, s);
	struct shard_changes c;
	struct shard_batch b = { 0 };
	struct shard_apply_result res;
	uint64_t *rows, *vers;
	uint32_t *orgs;
	uint8_t *vals;

	shard_changes_init(&c);
	CU_ASSERT_EQUAL_FATAL(shard_store_changes_since(from, 0, s, since, &c),
			      FR_OK);
	rows = calloc(c.n + 1, sizeof(*rows));
	vers = calloc(c.n + 1, sizeof(*vers));
	orgs = calloc(c.n + 1, sizeof(*orgs));
	vals = calloc(c.n + 1, rb);
	CU_ASSERT_FATAL(rows && vers && orgs && vals);
	for (uint32_t i = 0; i < c.n; i++) {
		rows[i] = c.c[i].row;
		vers[i] = c.c[i].version;
		orgs[i] = c.c[i].origin;
		memcpy(vals + i * rb, shard_store_row(from, 0, c.c[i].row), rb);
	}
	b.table = 0;
	b.shard = s;
	b.n = c.n;
	b.rows = rows;
	b.versions = vers;
	b.origins = orgs;
	b.values = vals;
	b.ncovers = vv->n;
	b.covers = vv->e;
	CU_ASSERT_EQUAL(shard_store_apply(to, &b, &res, NULL), FR_OK);
	CU_ASSERT_EQUAL(res.refused, 0);
	free(rows);
	free(vers);
	free(orgs);
	free(vals);
	shard_changes_fini(&c);
}

static void full_transfer(const struct shard_store *from,
			  struct shard_store *to, uint32_t s)
{
	struct shard_vv empty;

	shard_vv_init(&empty);
	pull_shard(from, to, s, &empty);
	shard_vv_fini(&empty);
}

/* Records every call of a reset's callback: rows, whether they ascend and
 * whether every value byte is zero. */
struct zero_cb {
	uint32_t calls;
	uint64_t n;
	uint64_t rows[1024];
	size_t row_bytes;
	bool bad;
};

static void zero_cb_fn(uint32_t table, const uint64_t *rows,
		       const void *values, uint32_t n, void *arg)
{
	struct zero_cb *z = arg;
	const uint8_t *v = values;

	z->calls++;
	if (table != 0 || n == 0)
		z->bad = true;
	for (uint32_t i = 0; i < n; i++) {
		if (z->n > 0 && z->n < 1024 && rows[i] <= z->rows[z->n - 1])
			z->bad = true;
		if (z->n < 1024)
			z->rows[z->n] = rows[i];
		z->n++;
	}
	for (size_t i = 0; i < (size_t)n * z->row_bytes; i++)
		if (v[i])
			z->bad = true;
}

/*
 * Two nodes with the same history roll back; B's tiny ring makes it
 * report noundo shards.  B resets each and takes a full transfer of it
 * from A: afterwards the table is byte-identical to A's and each repaired
 * shard's digest entry equals A's.  A later rollback at or above both
 * horizons keeps them identical (B's dropped ring restores nothing
 * stale).  A bad table or shard is refused and changes nothing.
 */
static void test_reset_then_transfer(void)
{
	static struct hist h;
	struct shard_model_def d;
	struct shard_store *a, *b;
	struct shard_rollback_report ra, rb;
	struct zero_cb *z = calloc(1, sizeof(*z));
	uint64_t now = 0, t, r, sum, seq, n;

	CU_ASSERT_FATAL(z != NULL);
	make_def(&d, 96, 4, 4);
	z->row_bytes = 16;
	make_hist(&h, &d, 200, &now);
	a = new_store(&d, 0, 1 << 20);
	b = new_store(&d, 0, 6 * rec_bytes(4));
	apply_hist_covered(a, &h);
	apply_hist_covered(b, &h);
	CU_ASSERT(same_rows(a, b));
	t = now / 3;
	r = 2 * now / 3;
	CU_ASSERT(shard_store_undo_horizon(a) <= t);
	CU_ASSERT(shard_store_undo_horizon(b) > t);
	CU_ASSERT_EQUAL(shard_store_rollback(a, t, r, 5, NULL, NULL, &ra),
			FR_OK);
	CU_ASSERT_EQUAL(ra.nnoundo, 0);
	CU_ASSERT_EQUAL(shard_store_rollback(b, t, r, 5, NULL, NULL, &rb),
			FR_ERR_NOUNDO);
	CU_ASSERT_FATAL(rb.nnoundo > 0);
	CU_ASSERT_FALSE(same_rows(a, b));

	/* Bad indexes: FR_ERR_RANGE, nothing changed. */
	sum = shard_store_table_checksum(b, 0);
	seq = shard_store_change_seq(b);
	n = 99;
	CU_ASSERT_EQUAL(shard_store_reset_shard(b, 1, 0, 6, zero_cb_fn, z, &n),
			FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("table 1 out of range [0, 1)"));
	CU_ASSERT_EQUAL(shard_store_reset_shard(b, 0, 4, 6, zero_cb_fn, z, &n),
			FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("shard 4 out of range [0, 4)"));
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(z->calls, 0);
	CU_ASSERT_EQUAL(shard_store_table_checksum(b, 0), sum);
	CU_ASSERT_EQUAL(shard_store_change_seq(b), seq);
	CU_ASSERT_EQUAL(shard_store_rollback_epoch(b), 5);

	for (uint32_t i = 0; i < rb.nnoundo; i++) {
		uint32_t s = rb.noundo[i].shard;
		uint64_t want = 0, zeroed;
		struct shard_digest_entry ea, eb;

		CU_ASSERT_EQUAL(rb.noundo[i].table, 0);
		memset(z, 0, sizeof(*z));
		z->row_bytes = 16;
		for (uint64_t row = s; row < d.tables[0].rows; row += d.shards) {
			uint64_t v;

			shard_store_row_version(b, 0, row, &v, NULL);
			want += v > t && v <= r;
		}
		CU_ASSERT(want > 0);
		CU_ASSERT_EQUAL(shard_store_reset_shard(b, 0, s, 5, zero_cb_fn,
						       z, &zeroed), FR_OK);
		CU_ASSERT_EQUAL(zeroed, want);
		CU_ASSERT_EQUAL(z->calls, 1);
		CU_ASSERT_EQUAL(z->n, want);
		CU_ASSERT_FALSE(z->bad);
		for (uint64_t k = 0; k < z->n && k < 1024; k++) {
			uint64_t v;
			uint32_t o;
			static const uint8_t zero[16];

			shard_store_row_version(b, 0, z->rows[k], &v, &o);
			CU_ASSERT(v == 0 && o == 0);
			CU_ASSERT(memcmp(shard_store_row(b, 0, z->rows[k]), zero,
					 16) == 0);
		}
		shard_store_digest_entry(b, 0, s, &eb);
		CU_ASSERT_EQUAL(eb.vv->n, 0);
		CU_ASSERT_EQUAL(eb.rollback_epoch, 5);
		CU_ASSERT(shard_store_undo_horizon(b) >= newest_row(b, s));

		full_transfer(a, b, s);
		shard_store_digest_entry(a, 0, s, &ea);
		shard_store_digest_entry(b, 0, s, &eb);
		CU_ASSERT(shard_vv_equal(ea.vv, eb.vv));
		CU_ASSERT_EQUAL(ea.rollback_epoch, eb.rollback_epoch);
		CU_ASSERT_EQUAL(shard_digest_entry_hash(&ea),
				shard_digest_entry_hash(&eb));
	}
	CU_ASSERT(same_rows(a, b));
	CU_ASSERT_EQUAL(shard_store_table_checksum(a, 0),
			shard_store_table_checksum(b, 0));
	CU_ASSERT(index_exact(b));
	shard_rollback_report_fini(&ra);
	shard_rollback_report_fini(&rb);

	/* Further writes, then a rollback both can do: still identical. */
	make_hist(&h, &d, 40, &now);
	apply_hist_covered(a, &h);
	apply_hist_covered(b, &h);
	t = shard_store_undo_horizon(a) > shard_store_undo_horizon(b) ?
		    shard_store_undo_horizon(a) : shard_store_undo_horizon(b);
	CU_ASSERT_FATAL(t < now);
	CU_ASSERT_EQUAL(shard_store_rollback(a, t, now, 6, NULL, NULL, &ra),
			FR_OK);
	CU_ASSERT_EQUAL(shard_store_rollback(b, t, now, 6, NULL, NULL, &rb),
			FR_OK);
	CU_ASSERT(ra.rows_restored > 0);
	CU_ASSERT_EQUAL(ra.rows_restored, rb.rows_restored);
	CU_ASSERT(same_rows(a, b));
	shard_rollback_report_fini(&ra);
	shard_rollback_report_fini(&rb);
	free(z);
	shard_store_free(a);
	shard_store_free(b);
}

/*
 * Why a reset drops the shard's ring.  Row 0 holds 10 (origin 2), 20, 41,
 * and after row 1's writes 51 (origin 1); B's ring of 8 records has lost
 * 41's record, so rollback (40, 60] is noundo on B and restores row 0 to
 * 20 on A.  B resets and takes A's shard.  Rollback (15, 30] then takes
 * A back to 10 (origin 2) and B to never written, since B received 20 on
 * an empty row.  B's vector must come down so that a pull brings 10: it
 * is clamped by the checkpoint before that write, which has to be one
 * taken after the reset (empty), not the ring's last one from before it
 * (origin 2 at 10, which would keep 10 from ever being sent).
 */
static void test_reset_drops_history(void)
{
	struct shard_model_def d;
	struct shard_store *a, *b;
	struct shard_rollback_report rep;
	uint64_t v;
	uint32_t o;

	make_def(&d, 8, 4, 1);
	/* A's ring holds all 13 writes, B's the last 8; both take
	 * checkpoints often (every 3 and every 2 records). */
	a = new_store(&d, 0, 13 * rec_bytes(4));
	b = new_store(&d, 0, 8 * rec_bytes(4));
	for (struct shard_store *x = a; x; x = x == a ? b : NULL) {
		apply1(x, 0, 10, 2, 2, 10);
		apply1(x, 0, 20, 1, 1, 20);
		apply1(x, 0, 41, 1, 1, 41);
		for (uint64_t ver = 42; ver <= 50; ver++)
			apply1(x, 1, ver, 1, 1, ver);
		apply1(x, 0, 51, 1, 1, 51);
	}
	CU_ASSERT_EQUAL(shard_store_undo_horizon(a), 0);
	CU_ASSERT_EQUAL(shard_store_undo_horizon(b), 43);
	CU_ASSERT_EQUAL(shard_store_rollback(a, 40, 60, 1, NULL, NULL, NULL),
			FR_OK);
	CU_ASSERT_EQUAL(shard_store_rollback(b, 40, 60, 1, NULL, NULL, &rep),
			FR_ERR_NOUNDO);
	CU_ASSERT_EQUAL(rep.nnoundo, 1);
	shard_rollback_report_fini(&rep);
	shard_store_row_version(a, 0, 0, &v, &o);
	CU_ASSERT(v == 20 && o == 1);
	CU_ASSERT_EQUAL(shard_store_reset_shard(b, 0, 0, 1, NULL, NULL, &v),
			FR_OK);
	CU_ASSERT_EQUAL(v, 2);                  /* rows 0 and 1 */
	full_transfer(a, b, 0);
	CU_ASSERT(same_rows(a, b));

	CU_ASSERT_EQUAL(shard_store_rollback(a, 15, 30, 2, NULL, NULL, NULL),
			FR_OK);
	CU_ASSERT_EQUAL(shard_store_rollback(b, 15, 30, 2, NULL, NULL, NULL),
			FR_OK);
	shard_store_row_version(a, 0, 0, &v, &o);
	CU_ASSERT(v == 10 && o == 2);
	shard_store_row_version(b, 0, 0, &v, &o);
	CU_ASSERT(v == 0 && o == 0);
	CU_ASSERT(shard_vv_get(shard_store_vv(b, 0, 0), 2) < 10);
	pull_shard(a, b, 0, shard_store_vv(b, 0, 0));
	CU_ASSERT(same_rows(a, b));
	shard_store_free(a);
	shard_store_free(b);
}

static const struct fr_unit_test tests[] = {
	{ "rollback matches reference", test_rollback_matches_reference },
	{ "rollback sequence", test_rollback_sequence },
	{ "refused after rollback", test_refused_after_rollback },
	{ "noundo", test_noundo },
	{ "vector after rollback", test_vv_after_rollback },
	{ "horizon basic", test_horizon_basic },
	{ "horizon after revoked history", test_horizon_revoked_history },
	{ "horizon of a loaded snapshot", test_horizon_snapshot_floor },
	{ "horizon property", test_horizon_property },
	{ "reset then full transfer", test_reset_then_transfer },
	{ "reset drops the ring", test_reset_drops_history },
};

int main(void)
{
	return shard_suite_main("shard_undo", 0x2545f4914f6cdd1dull, tests,
				FR_UNIT_COUNT(tests));
}
