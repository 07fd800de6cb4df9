/*
 * test_shard_undo.c — CUnit suite for the undo ring and rollback
 * (shard/undo.c): rows in (T, R] return byte-exact to their value at <= T
 * (against a reference store that never saw the revoked writes), rows
 * above R stay, revoked versions are refused afterwards, a short ring
 * gives FR_ERR_NOUNDO with that shard untouched, restored_cb reports
 * exactly the restored rows, the changed-rows index stays exact, and the
 * version vector is lowered so peers resend writes this node skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const struct fr_unit_test tests[] = {
	{ "rollback matches reference", test_rollback_matches_reference },
	{ "rollback sequence", test_rollback_sequence },
	{ "refused after rollback", test_refused_after_rollback },
	{ "noundo", test_noundo },
	{ "vector after rollback", test_vv_after_rollback },
};

int main(void)
{
	rng_state = 0x2545f4914f6cdd1dull; /* this suite's random stream */
	return fr_unit_main("shard_undo", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
