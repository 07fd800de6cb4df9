/*
 * undo.c — the per-shard undo ring, revoked version ranges, and rollback
 * (docs/design.md §6).
 *
 * Every write that wins last-writer-wins first pushes the row's previous
 * (version, origin, bytes) here.  A rollback directive {T, R, epoch} walks
 * each shard's ring newest to oldest and puts every row whose version is
 * in (T, R] back to its value at <= T; from then on apply refuses versions
 * in (T, R].  A shard whose ring no longer reaches back is left untouched
 * and reported, to be repaired by a full transfer from a rolled-back peer:
 * shard_store_reset_shard clears what it cannot trust before that.  How
 * far back the rings reach is tracked as it changes (undo_lost, the undo
 * horizon), so a caller can tell beforehand which cuts are reachable.
 *
 * Not here: deciding when to roll back (witness/, topology/), telling a
 * table mirror (the caller's restored_cb), persisting the ring (it lives in
 * RAM only: after a restart every shard with rows in (T, R] is "noundo").
 */
#include <stdlib.h>
#include <string.h>

#include "shard/shard_int.h"

/* ========================================================================
 * Revoked ranges
 * ===================================================================== */

/* Index of the first range with r >= version (the only one that can hold
 * it, since ranges are disjoint and sorted). */
static uint32_t revoked_lower(const struct shard_store *st, uint64_t version)
{
	uint32_t lo = 0, hi = st->nrevoked;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (st->revoked[mid].r < version)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t shard_revoked_clamp(const struct shard_store *st, uint64_t version)
{
	uint32_t i;

	if (st->nrevoked == 0)
		return version;
	i = revoked_lower(st, version);
	if (i < st->nrevoked && st->revoked[i].t < version)
		return st->revoked[i].t;
	return version;
}

enum fr_err shard_revoked_add(struct shard_store *st, uint64_t t, uint64_t r)
{
	uint32_t i, j;

	if (st->nrevoked == st->caprevoked) {
		uint32_t cap = st->caprevoked ? st->caprevoked * 2 : 4;
		struct shard_range *a;

		a = realloc(st->revoked, (size_t)cap * sizeof(*a));
		if (!a)
			return fr_fail(FR_ERR_NOMEM, "revoked ranges: %u", cap);
		st->revoked = a;
		st->caprevoked = cap;
	}
	/* Ranges [i, j) overlap or touch (t, r]; they merge into one. */
	i = revoked_lower(st, t);
	j = i;
	while (j < st->nrevoked && st->revoked[j].t <= r) {
		if (st->revoked[j].t < t)
			t = st->revoked[j].t;
		if (st->revoked[j].r > r)
			r = st->revoked[j].r;
		j++;
	}
	if (j == i) {
		memmove(&st->revoked[i + 1], &st->revoked[i],
			(size_t)(st->nrevoked - i) * sizeof(*st->revoked));
		st->nrevoked++;
	} else {
		memmove(&st->revoked[i + 1], &st->revoked[j],
			(size_t)(st->nrevoked - j) * sizeof(*st->revoked));
		st->nrevoked -= j - i - 1;
	}
	st->revoked[i].t = t;
	st->revoked[i].r = r;
	return FR_OK;
}

bool shard_store_is_revoked(const struct shard_store *st, uint64_t version)
{
	return shard_revoked_clamp(st, version) != version;
}

uint64_t shard_store_rollback_epoch(const struct shard_store *st)
{
	return st->epoch;
}

/* ========================================================================
 * The ring
 * ===================================================================== */

static inline uint8_t *rec_at(const struct shard_undo *u, uint32_t i)
{
	return u->recs + (size_t)((u->head + i) % u->cap) * u->rec_bytes;
}

void shard_undo_free(struct shard_undo *u)
{
	if (!u)
		return;
	for (uint32_t i = 0; i < u->nckpt; i++)
		shard_vv_fini(&u->ckpt[i].vv);
	free(u->ckpt);
	free(u->recs);
	free(u);
}

/* Grow the record array (doubling, up to max_recs), unrolling the circle
 * so the oldest record lands in slot 0. */
static bool ring_grow(struct shard_undo *u)
{
	uint32_t cap = u->cap ? u->cap * 2 : 16;
	uint8_t *recs;

	if (cap > u->max_recs || cap < u->cap)
		cap = u->max_recs;
	recs = malloc((size_t)cap * u->rec_bytes);
	if (!recs)
		return false;
	for (uint32_t i = 0; i < u->n; i++)
		memcpy(recs + (size_t)i * u->rec_bytes, rec_at(u, i),
		       u->rec_bytes);
	free(u->recs);
	u->recs = recs;
	u->cap = cap;
	u->head = 0;
	return true;
}

/*
 * Checkpoints: the vector at every max_recs/32-th push, so a rollback can
 * look up (a lower bound of) what this node held when a revoked write
 * arrived.  Only the newest checkpoint at or before the oldest record is
 * needed from the past, so there are at most about 33.  The closer they
 * are, the tighter the bound and the less peers resend after a rollback
 * (bench_rollback: one every max_recs/4 made a rollback of a 2.8 MB update
 * pull 74-120 MB between 9 nodes; one every max_recs/32, none).
 */
static void ckpt_maybe(struct shard_undo *u, const struct shard_vv *vv)
{
	uint64_t every = u->max_recs / 32 ? u->max_recs / 32 : 1;
	uint64_t oldest = u->next_seq - u->n;
	struct shard_undo_ckpt *c;

	while (u->nckpt >= 2 && u->ckpt[1].seq <= oldest) {
		shard_vv_fini(&u->ckpt[0].vv);
		memmove(&u->ckpt[0], &u->ckpt[1],
			(size_t)(u->nckpt - 1) * sizeof(*u->ckpt));
		u->nckpt--;
	}
	if (u->nckpt && u->next_seq - u->ckpt[u->nckpt - 1].seq < every)
		return;
	if (u->nckpt == u->capckpt) {
		uint32_t cap = u->capckpt ? u->capckpt * 2 : 4;

		c = realloc(u->ckpt, (size_t)cap * sizeof(*c));
		if (!c)
			return;     /* an older checkpoint is a safe bound */
		u->ckpt = c;
		u->capckpt = cap;
	}
	c = &u->ckpt[u->nckpt];
	shard_vv_init(&c->vv);
	if (shard_vv_copy(&c->vv, vv) != FR_OK) {
		shard_vv_fini(&c->vv);
		return;
	}
	c->seq = u->next_seq;
	u->nckpt++;
}

/* The newest version any row of (table, shard) holds now. */
static uint64_t shard_rows_newest(const struct shard_store *st,
				  uint32_t table, uint32_t shard)
{
	const struct shard_tab *tab = &st->tabs[table];
	uint64_t top = 0;

	for (uint64_t row = shard; row < tab->rows; row += st->def.shards)
		if (tab->ver[row] > top)
			top = tab->ver[row];
	return top;
}

/*
 * How far back the ring reaches: undo_lost.
 *
 * A rollback (T, R] fails for a shard when walking some row back from its
 * version in (T, R] through revoked writes reaches a revoked write whose
 * record is not in the ring (rollback_shard below).  undo_lost is kept so
 * that this cannot happen when T >= undo_lost:
 *
 *  1. Every write the ring does not hold raises it to that write's
 *     version: a record pushed out of a full ring, a write not recorded
 *     (record bigger than the budget, allocation failure), every row a
 *     snapshot loaded (snapshot.c), every row whose history a reset
 *     dropped (shard_store_reset_shard).  A missing record of a version
 *     the new range revokes then cannot exist: it is <= undo_lost <= T.
 *
 *  2. A missing record is also needed, whatever T, when an earlier
 *     rollback revoked its version: a later rollback walks a row down
 *     through revoked writes until one is not revoked.  Call a missing
 *     record whose version is revoked "tainted".  Once undo_lost is at
 *     least the version its row held when it became tainted, a walk for a
 *     rollback with T >= undo_lost stops at that version at the latest
 *     (it is not in (T, R]) — unless an earlier range also revokes that
 *     version or a write on top of it, which the same rules catch:
 *       a. a record leaves the ring while its version is revoked: raise
 *          to its row's current version (ring_forget_oldest);
 *       b. a rollback (T, R] with T < undo_lost may revoke versions whose
 *          records are missing, or versions (a)-(c) raised undo_lost to:
 *          raise to the newest version any row of the shard holds
 *          (shard_store_rollback), since which rows is not known; a shard
 *          a rollback left untouched (noundo) is treated the same way;
 *       c. a write on top of a revoked version (a row of a noundo shard
 *          not reset yet) raises it to the new write's version, because
 *          walking back from that write passes the revoked one
 *          (shard_undo_push).
 *     A rollback with T >= undo_lost revokes nothing at or below it, so
 *     it cannot undo what (a)-(c) established.
 *
 * This is conservative: (2) raises undo_lost for rows whose history merely
 * might pass a tainted record.  Without earlier rollbacks only (1)
 * applies and undo_lost is exactly the newest write the ring lacks.
 */
static void ring_forget_oldest(struct shard_store *st, struct shard_sh *sh,
			       uint32_t table, struct shard_undo *u)
{
	struct shard_undo_hdr h;

	memcpy(&h, rec_at(u, 0), sizeof(h));
	shard_undo_lose(st, sh, h.new_version);
	if (st->nrevoked && shard_store_is_revoked(st, h.new_version))
		shard_undo_lose(st, sh, st->tabs[table].ver[h.row]);   /* 2a */
	u->head = (u->head + 1) % u->cap;
	u->n--;
}

void shard_undo_push(struct shard_store *st, uint32_t table, uint32_t shard,
		     const struct shard_undo_hdr *h, const void *old_value)
{
	struct shard_sh *sh = shard_sh_at(st, table, shard);
	size_t row_bytes = st->tabs[table].row_bytes;
	struct shard_undo *u = sh->undo;
	uint8_t *rec;

	if (st->nrevoked && shard_store_is_revoked(st, h->old_version))
		shard_undo_lose(st, sh, h->new_version);                /* 2c */
	if (!u) {
		uint64_t max;

		u = calloc(1, sizeof(*u));
		if (!u)
			goto out_lost;
		u->rec_bytes = sizeof(*h) + row_bytes;
		max = st->opts.undo_bytes_per_shard / u->rec_bytes;
		u->max_recs = max > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)max;
		sh->undo = u;
	}
	/* A record bigger than the whole budget is not kept: the row's
	 * history simply does not reach back, which rollback detects. */
	if (u->max_recs == 0)
		goto out_lost;
	if (u->n == u->cap && u->cap < u->max_recs && !ring_grow(u) &&
	    u->cap == 0)
		goto out_lost;
	ckpt_maybe(u, &sh->vv);
	if (u->n == u->cap)             /* full: forget the oldest */
		ring_forget_oldest(st, sh, table, u);
	rec = rec_at(u, u->n);
	memcpy(rec, h, sizeof(*h));
	memcpy(rec + sizeof(*h), old_value, row_bytes);
	u->n++;
	u->next_seq++;
	return;

out_lost:
	shard_undo_lose(st, sh, h->new_version);                        /* 1 */
}

uint64_t shard_store_undo_horizon(const struct shard_store *st)
{
	/* undo_lost is UINT64_MAX with undo off (store.c); say it in a
	 * form a signed 64-bit field holds. */
	return st->undo_horizon > INT64_MAX ? INT64_MAX : st->undo_horizon;
}

/* The newest checkpoint taken at or before record seq, or NULL. */
static const struct shard_vv *ckpt_for(const struct shard_undo *u,
				       uint64_t seq)
{
	uint32_t lo = 0, hi = u->nckpt;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (u->ckpt[mid].seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &u->ckpt[lo - 1].vv : NULL;
}

/* ========================================================================
 * Rollback
 * ===================================================================== */

/* One row being restored: its simulated state during the walk. */
struct sim_row {
	uint64_t row;
	uint64_t ver;
	uint32_t org;
	uint64_t seq;               /* the oldest record applied to it */
	const uint8_t *val;         /* restored bytes (inside the ring) */
};

struct sim {
	uint32_t n, cap;            /* rows, in row order */
	struct sim_row *r;
	uint32_t mask;              /* open addressing: slot -> index + 1 */
	uint32_t *slot;
};

static inline bool in_range(uint64_t v, uint64_t t, uint64_t r)
{
	return v > t && v <= r;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t hash_row(uint64_t row)
{
	row *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(row >> 32);
}

static void sim_fini(struct sim *s)
{
	free(s->r);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

static struct sim_row *sim_find(const struct sim *s, uint64_t row)
{
	for (uint32_t h = hash_row(row) & s->mask;; h = (h + 1) & s->mask) {
		uint32_t k = s->slot[h];

		if (k == 0)
			return NULL;
		if (s->r[k - 1].row == row)
			return &s->r[k - 1];
	}
}

/*
 * Collect the shard's rows whose current version is in (t, r], in row
 * order.  From the index when it reaches back to t for every origin
 * (O(rows in range)), else by scanning the shard.
 */
static enum fr_err rows_in_range(const struct shard_store *st,
				 uint32_t table, uint32_t shard, uint64_t t,
				 uint64_t r, uint64_t **out, uint32_t *nout)
{
	const struct shard_sh *sh = shard_sh_at(st, table, shard);
	const struct shard_tab *tab = &st->tabs[table];
	uint64_t *rows = NULL, *nr;
	uint32_t n = 0, cap = 0;
	bool scan = sh->idx.broken;

	for (uint32_t i = 0; i < sh->idx.n && !scan; i++)
		scan = sh->idx.o[i].horizon > t;
	if (scan) {
		for (uint64_t row = shard; row < tab->rows;
		     row += st->def.shards) {
			if (!in_range(tab->ver[row], t, r))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				nr = realloc(rows, (size_t)cap * sizeof(*rows));
				if (!nr)
					goto out_nomem;
				rows = nr;
			}
			rows[n++] = row;
		}
	} else {
		for (uint32_t i = 0; i < sh->idx.n; i++) {
			const struct shard_idx_origin *io = &sh->idx.o[i];
			uint32_t lo = 0, hi = io->n;

			while (lo < hi) {
				uint32_t mid = lo + (hi - lo) / 2;

				if (io->e[mid].version <= t)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (uint32_t j = lo; j < io->n && io->e[j].version <= r;
			     j++) {
				uint64_t row = io->e[j].row;

				if (tab->ver[row] != io->e[j].version ||
				    tab->org[row] != io->origin)
					continue;   /* dead entry */
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					nr = realloc(rows,
						     (size_t)cap * sizeof(*rows));
					if (!nr)
						goto out_nomem;
					rows = nr;
				}
				rows[n++] = row;
			}
		}
		if (n > 1)
			qsort(rows, n, sizeof(*rows), cmp_u64);
	}
	*out = rows;
	*nout = n;
	return FR_OK;

out_nomem:
	free(rows);
	return fr_fail(FR_ERR_NOMEM, "rollback: rows of table %u shard %u",
		       table, shard);
}

static enum fr_err sim_init(struct sim *s, const struct shard_tab *tab,
			    const uint64_t *rows, uint32_t n)
{
	uint32_t size = 4;

	memset(s, 0, sizeof(*s));
	while (size < 2 * (uint64_t)n)
		size *= 2;
	s->r = calloc(n ? n : 1, sizeof(*s->r));
	s->slot = calloc(size, sizeof(*s->slot));
	if (!s->r || !s->slot) {
		sim_fini(s);
		return fr_fail(FR_ERR_NOMEM, "rollback: %u rows to restore", n);
	}
	s->mask = size - 1;
	s->n = n;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = hash_row(rows[i]) & s->mask;

		s->r[i].row = rows[i];
		s->r[i].ver = tab->ver[rows[i]];
		s->r[i].org = tab->org[rows[i]];
		while (s->slot[h])
			h = (h + 1) & s->mask;
		s->slot[h] = i + 1;
	}
	return FR_OK;
}

static void ckpt_clamp_all(struct shard_undo *u, const struct shard_vv *vv)
{
	for (uint32_t c = 0; c < u->nckpt; c++) {
		struct shard_vv *cv = &u->ckpt[c].vv;
		uint32_t k = 0;

		for (uint32_t j = 0; j < cv->n; j++) {
			uint64_t lim = shard_vv_get(vv, cv->e[j].origin);
			uint64_t v = cv->e[j].version < lim ? cv->e[j].version : lim;

			if (v == 0)
				continue;
			cv->e[k].origin = cv->e[j].origin;
			cv->e[k].version = v;
			k++;
		}
		cv->n = k;
	}
}

/*
 * What happens to the shard's version vector.  Its promise — "V[o] = k:
 * this shard holds every row origin o wrote at a version <= k, or a newer
 * value of it" — reads revoked writes as never written.  Two things can
 * break it:
 *
 *  1. V[o] inside a revoked range promises revoked writes.  Harmless on
 *     its own, but it would make digests differ between nodes that hold
 *     the same rows, and covers in a revoked range are clamped to its
 *     start on apply, so the entry is clamped the same way.
 *
 *  2. Skipped writes.  Say origin o wrote row x at 80 <= T, and this node
 *     received x first at 150 from origin p (in (T, R]), then a cover for
 *     o up to 100: o's 80 was never stored because 150 was newer — fine
 *     until the rollback puts x back to what it held before 150, say 50.
 *     A peer that received 80 first now holds 80, we hold 50, and with
 *     V[o] = 100 nobody would ever send us 80.  Clamping to T does not
 *     help (80 <= T).  A write u from o we may have skipped satisfies
 *     u > v0 (the version x is restored to) and u > a[o], where a is the
 *     vector just before the first revoked write to x arrived (at that
 *     moment x held v0, so everything of o's at or below a[o] was already
 *     in x's history).  So V[o] = min(V[o], max(v0, a[o])) over restored
 *     rows lets peers resend exactly what may be missing.  a is not kept
 *     per record; the ring's checkpoints give a lower bound of it (they
 *     were taken earlier and vectors only rise between rollbacks), which
 *     only makes the clamp more conservative.  Without a checkpoint the
 *     bound is v0.  The checkpoints are clamped along with the vector so
 *     they stay lower bounds for the next rollback.
 */
static void clamp_vv(const struct shard_store *st, struct shard_sh *sh,
		     const struct sim *s)
{
	struct shard_vv *vv = &sh->vv;
	uint32_t k;

	for (uint32_t j = 0; j < vv->n; j++) {
		uint32_t o = vv->e[j].origin;
		uint64_t lim = vv->e[j].version;

		for (uint32_t i = 0; s && i < s->n; i++) {
			const struct shard_vv *ck = ckpt_for(sh->undo,
							     s->r[i].seq);
			uint64_t a = ck ? shard_vv_get(ck, o) : 0;
			uint64_t b = s->r[i].ver > a ? s->r[i].ver : a;

			if (b < lim)
				lim = b;
		}
		vv->e[j].version = shard_revoked_clamp(st, lim);
	}
	/* Drop entries clamped to 0 (a vector never holds 0 entries). */
	k = 0;
	for (uint32_t j = 0; j < vv->n; j++)
		if (vv->e[j].version > 0)
			vv->e[k++] = vv->e[j];
	vv->n = k;
	if (sh->undo)
		ckpt_clamp_all(sh->undo, vv);
}

static enum fr_err report_noundo(struct shard_rollback_report *rep,
				 uint32_t table, uint32_t shard)
{
	if (rep->nnoundo == rep->capnoundo) {
		uint32_t cap = rep->capnoundo ? rep->capnoundo * 2 : 8;
		struct shard_ref *a;

		a = realloc(rep->noundo, (size_t)cap * sizeof(*a));
		if (!a)
			return fr_fail(FR_ERR_NOMEM, "rollback report: %u shards",
				       cap);
		rep->noundo = a;
		rep->capnoundo = cap;
	}
	rep->noundo[rep->nnoundo].table = table;
	rep->noundo[rep->nnoundo].shard = shard;
	rep->nnoundo++;
	return FR_OK;
}

void shard_rollback_report_fini(struct shard_rollback_report *rep)
{
	if (!rep)
		return;
	free(rep->noundo);
	memset(rep, 0, sizeof(*rep));
}

/*
 * One shard.  The rows to restore are those whose version is in (t, r];
 * each walks back through the ring past every revoked version (this range
 * or an earlier one) to the newest write no rollback revoked.  Rows that
 * still hold a version revoked by an earlier rollback are in shards that
 * rollback already reported as noundo; they wait for their full transfer.
 * *ok is false when the history does not reach back (then nothing in the
 * shard changed).  Errors are allocation failures, also with nothing
 * changed.
 */
static enum fr_err rollback_shard(struct shard_store *st, uint32_t table,
				  uint32_t shard, uint64_t t, uint64_t r,
				  uint64_t epoch, shard_restored_fn cb,
				  void *cb_arg, uint64_t *restored, bool *ok)
{
	struct shard_sh *sh = shard_sh_at(st, table, shard);
	struct shard_tab *tab = &st->tabs[table];
	struct shard_undo *u = sh->undo;
	struct shard_vv before;
	uint64_t *rows = NULL;
	uint8_t *vals = NULL;
	struct sim s = { 0 };
	uint32_t n = 0;
	enum fr_err err;
	bool changed;

	*ok = false;
	*restored = 0;
	err = rows_in_range(st, table, shard, t, r, &rows, &n);
	if (err)
		return err;
	if (n > 0 && (!u || u->n == 0))
		goto out_free_rows;             /* nothing to restore from */
	if (n > 0) {
		err = sim_init(&s, tab, rows, n);
		if (err)
			goto out_free_rows;
		vals = malloc((size_t)n * tab->row_bytes);
		if (!vals) {
			err = fr_fail(FR_ERR_NOMEM,
				      "rollback: %u rows of table %u shard %u",
				      n, table, shard);
			goto out_free_sim;
		}
		/* Newest to oldest: a record applies when the row's
		 * simulated state is what the record wrote. */
		for (uint32_t i = u->n; i-- > 0;) {
			const uint8_t *rec = rec_at(u, i);
			struct shard_undo_hdr h;
			struct sim_row *x;

			memcpy(&h, rec, sizeof(h));
			/* Any revoked version, not only (t, r]: going back
			 * from a row in (t, r] may pass a write that an
			 * earlier rollback revoked but did not undo because
			 * something newer than its R covered it then. */
			if (!shard_store_is_revoked(st, h.new_version))
				continue;
			x = sim_find(&s, h.row);
			if (!x || x->ver != h.new_version ||
			    x->org != h.new_origin)
				continue;
			x->ver = h.old_version;
			x->org = h.old_origin;
			x->val = rec + sizeof(h);
			x->seq = u->next_seq - u->n + i;
		}
		for (uint32_t i = 0; i < n; i++)
			if (shard_store_is_revoked(st, s.r[i].ver))
				goto out_free_vals;     /* history too short */
	}

	/* Commit: nothing below can fail. */
	shard_vv_init(&before);
	changed = shard_vv_copy(&before, &sh->vv) != FR_OK;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *dst = tab->data + s.r[i].row * tab->row_bytes;

		memcpy(dst, s.r[i].val, tab->row_bytes);
		memcpy(vals + (size_t)i * tab->row_bytes, s.r[i].val,
		       tab->row_bytes);
		tab->ver[s.r[i].row] = s.r[i].ver;
		tab->org[s.r[i].row] = s.r[i].org;
	}
	clamp_vv(st, sh, n ? &s : NULL);
	changed = changed || n > 0 || !shard_vv_equal(&before, &sh->vv) ||
		  epoch > sh->epoch;
	shard_vv_fini(&before);
	if (epoch > sh->epoch)
		sh->epoch = epoch;
	if (n > 0)
		shard_index_rebuild(st, table, shard);  /* NOMEM: scans */
	if (changed)
		shard_sh_changed(st, table, shard);
	if (n > 0 && cb)
		cb(table, rows, vals, n, cb_arg);
	*restored = n;
	*ok = true;

out_free_vals:
	free(vals);
out_free_sim:
	sim_fini(&s);
out_free_rows:
	free(rows);
	return err;
}

enum fr_err shard_store_rollback(struct shard_store *st, uint64_t target_t,
				 uint64_t revoke_r, uint64_t epoch,
				 shard_restored_fn restored_cb, void *cb_arg,
				 struct shard_rollback_report *rep)
{
	struct shard_rollback_report local;
	enum fr_err err, ret = FR_OK;

	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	if (target_t >= revoke_r)
		return fr_fail(FR_ERR_INVAL,
			       "rollback: target cut %llu must be below revoke-until %llu",
			       (unsigned long long)target_t,
			       (unsigned long long)revoke_r);
	/* First, so that it alone can fail before anything changes. */
	err = shard_revoked_add(st, target_t, revoke_r);
	if (err)
		return err;
	for (uint32_t t = 0; t < st->def.ntables; t++)
		for (uint32_t s = 0; s < st->def.shards; s++) {
			struct shard_sh *sh = shard_sh_at(st, t, s);
			bool tainted = target_t < sh->undo_lost;
			uint64_t n;
			bool ok;

			err = rollback_shard(st, t, s, target_t, revoke_r,
					     epoch, restored_cb, cb_arg, &n,
					     &ok);
			/* Rule 2b above ring_forget_oldest. */
			if (tainted || !ok)
				shard_undo_lose(st, sh,
						shard_rows_newest(st, t, s));
			if (ok) {
				rep->rows_restored += n;
				rep->shards_restored += n > 0;
				continue;
			}
			/* Out of memory leaves the shard untouched: it
			 * needs the same repair as a short history. */
			err = report_noundo(rep, t, s);
			if (err && ret == FR_OK)
				ret = err;
		}
	if (epoch > st->epoch)
		st->epoch = epoch;
	if (ret == FR_OK && rep->nnoundo)
		ret = fr_fail(FR_ERR_NOUNDO,
			      "rollback (%llu, %llu]: undo history of %u shard(s) does not reach back (first: table %u shard %u); they need a full transfer",
			      (unsigned long long)target_t,
			      (unsigned long long)revoke_r, rep->nnoundo,
			      rep->noundo[0].table, rep->noundo[0].shard);
	if (rep == &local)
		shard_rollback_report_fini(&local);
	return ret;
}

/* ========================================================================
 * Reset of a noundo shard
 * ===================================================================== */

/*
 * The repair half of a rollback for a shard whose ring did not reach
 * back: rows still holding revoked versions go back to never written and
 * the vector is emptied so that peers send the whole shard again.
 *
 * The ring is dropped with them.  What it holds describes the shard as it
 * was before the reset: records of revoked writes to rows that are now
 * zero (harmless, they no longer match any row) and, worse, checkpoints
 * of the vector this call empties.  clamp_vv reads the checkpoint before
 * a record as "what the shard already held when that write came"; for a
 * write from the full transfer landing on a zeroed row, an old checkpoint
 * would claim origins up to versions the row never got, so a later
 * rollback of that write would leave the row at zero with the vector
 * still claiming them, and peers would never resend them
 * (test_reset_drops_history).  A new ring takes its first checkpoint from
 * the emptied vector.  Keeping the records of rows left alone would not
 * buy much: the shard is here because part of its history was already
 * gone.  So history starts again from the rows as they are after the
 * reset, and undo_lost rises to the newest of them (rule 1 above
 * ring_forget_oldest); zeroed rows are at version 0, which no range
 * revokes, so a walk stops there.
 */
enum fr_err shard_store_reset_shard(struct shard_store *st, uint32_t table,
				    uint32_t shard, uint64_t epoch,
				    shard_restored_fn cb, void *cb_arg,
				    uint64_t *zeroed)
{
	struct shard_tab *tab;
	struct shard_sh *sh;
	uint64_t *rows = NULL;
	uint8_t *zeros = NULL;
	uint64_t n = 0, k = 0, kept = 0;
	bool changed;

	if (zeroed)
		*zeroed = 0;
	if (table >= st->def.ntables)
		return fr_fail(FR_ERR_RANGE,
			       "reset: model '%s': table %u out of range [0, %u)",
			       st->def.name, table, st->def.ntables);
	if (shard >= st->def.shards)
		return fr_fail(FR_ERR_RANGE,
			       "reset: model '%s': shard %u out of range [0, %u)",
			       st->def.name, shard, st->def.shards);
	tab = &st->tabs[table];
	sh = shard_sh_at(st, table, shard);
	for (uint64_t row = shard; row < tab->rows; row += st->def.shards) {
		if (st->nrevoked && shard_store_is_revoked(st, tab->ver[row]))
			n++;
		else if (tab->ver[row] > kept)
			kept = tab->ver[row];
	}
	/* Everything that can fail, before anything changes.  n <= rows, and
	 * rows * row_bytes fits (shard_model_validate). */
	if (n > 0) {
		rows = malloc((size_t)n * sizeof(*rows));
		zeros = cb ? calloc((size_t)n, tab->row_bytes) : NULL;
		if (!rows || (cb && !zeros)) {
			free(rows);
			free(zeros);
			return fr_fail(FR_ERR_NOMEM,
				       "reset: table '%s' shard %u: %llu rows to zero",
				       st->def.tables[table].name, shard,
				       (unsigned long long)n);
		}
	}

	for (uint64_t row = shard; row < tab->rows && k < n;
	     row += st->def.shards) {
		if (!shard_store_is_revoked(st, tab->ver[row]))
			continue;
		memset(tab->data + row * tab->row_bytes, 0, tab->row_bytes);
		tab->ver[row] = 0;
		tab->org[row] = 0;
		rows[k++] = row;
	}
	changed = n > 0 || sh->vv.n > 0 || epoch > sh->epoch;
	sh->vv.n = 0;
	if (epoch > sh->epoch)
		sh->epoch = epoch;
	if (epoch > st->epoch)
		st->epoch = epoch;
	shard_undo_free(sh->undo);
	sh->undo = NULL;
	shard_undo_lose(st, sh, kept);
	if (n > 0)
		shard_index_rebuild(st, table, shard);  /* NOMEM: scans */
	if (changed)
		shard_sh_changed(st, table, shard);
	/* restored_fn counts in uint32_t: a (theoretical) shard of more than
	 * 2^31 zeroed rows is reported in pieces, still in row order. */
	for (uint64_t i = 0; cb && i < n;) {
		uint32_t m = n - i > (1u << 31) ? (1u << 31) : (uint32_t)(n - i);

		cb(table, rows + i, zeros, m, cb_arg);
		i += m;
	}
	if (zeroed)
		*zeroed = n;
	free(zeros);
	free(rows);
	return FR_OK;
}
