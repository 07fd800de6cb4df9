/*
 * store.c — the versioned host store: one model's tables in RAM with a
 * (version, origin) per row, last-writer-wins apply, per-shard version
 * vectors, the "rows changed since V" index, digests and the summary hash.
 *
 * Not here: the undo ring and rollback (undo.c), snapshots (snapshot.c),
 * the vector type itself (vv.c), anything about peers or the wire.  The
 * store is owned by one thread and has no lock.
 *
 * Why the store is a CRDT: a row is written iff its (version, origin) is
 * lexicographically greater than what the row holds, and a vector entry
 * only ever rises to the max of what covers promised.  Both are max
 * operations, so any order of any set of batches — repeats included —
 * ends in the same bytes and the same vectors.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "shard/shard_int.h"

#define INDEX_CAP_DEFAULT 65536u
/* Compact an origin's index once dead entries outnumber live ones by this
 * much: amortised O(1) per write, and small indexes are left alone. */
#define INDEX_SLACK 64u

/* ========================================================================
 * Digests and the summary
 * ===================================================================== */

/*
 * Canonical entry encoding, little-endian: table u32, shard u32, epoch
 * u64, n u32, then n x (origin u32, version u64).  Significance is
 * advisory (it steers scheduling, not correctness) and is left out, so two
 * nodes holding the same rows agree on the hash even if they weighed
 * their updates differently.
 */
uint64_t shard_digest_entry_hash(const struct shard_digest_entry *e)
{
	uint8_t buf[20 + SHARD_VV_MAX * 12];
	uint32_t n = e->vv ? e->vv->n : 0;
	size_t off = 0;

	/* Vectors never exceed SHARD_VV_MAX (vv_advance refuses), so one
	 * stack buffer always fits. */
	if (n > SHARD_VV_MAX)
		n = SHARD_VV_MAX;
	memcpy(buf + off, &e->table, 4);
	off += 4;
	memcpy(buf + off, &e->shard, 4);
	off += 4;
	memcpy(buf + off, &e->rollback_epoch, 8);
	off += 8;
	memcpy(buf + off, &n, 4);
	off += 4;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(buf + off, &e->vv->e[i].origin, 4);
		off += 4;
		memcpy(buf + off, &e->vv->e[i].version, 8);
		off += 8;
	}
	return XXH3_64bits(buf, off);
}

/* splitmix64's finaliser: a bijection, so the sum of mixed hashes has no
 * linear relation to the raw XXH3 outputs. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t empty_entry_hash(uint32_t table, uint32_t shard)
{
	struct shard_digest_entry e = {
		.table = table, .shard = shard, .vv = NULL,
	};

	return shard_digest_entry_hash(&e);
}

/*
 * The summary is sum over every shard of mix(hash) - mix(hash of the same
 * shard when empty).  Every shard is included, but a never-written shard
 * contributes exactly 0, so a new store needs no pass over all its shards
 * (a model may have 64 tables x 2^20 shards) and two stores with equal
 * entries still have equal summaries.  Updating one shard is O(1).
 */
void shard_sh_changed(struct shard_store *st, uint32_t table, uint32_t shard)
{
	struct shard_sh *sh = shard_sh_at(st, table, shard);
	struct shard_digest_entry e;
	uint64_t old, h;

	shard_store_digest_entry(st, table, shard, &e);
	h = shard_digest_entry_hash(&e);
	old = sh->hash_valid ? sh->hash : empty_entry_hash(table, shard);
	st->summary += mix64(h) - mix64(old);
	sh->hash = h;
	sh->hash_valid = true;
	sh->seq = ++st->change_seq;
}

void shard_store_digest_entry(const struct shard_store *st, uint32_t table,
			      uint32_t shard, struct shard_digest_entry *out)
{
	const struct shard_sh *sh;

	memset(out, 0, sizeof(*out));
	out->table = table;
	out->shard = shard;
	if (table >= st->def.ntables || shard >= st->def.shards)
		return;
	sh = shard_sh_at(st, table, shard);
	out->vv = &sh->vv;
	out->rollback_epoch = sh->epoch;
	out->significance = sh->significance;
}

uint64_t shard_store_summary(const struct shard_store *st)
{
	return st->summary;
}

uint64_t shard_store_change_seq(const struct shard_store *st)
{
	return st->change_seq;
}

uint64_t shard_store_shard_seq(const struct shard_store *st, uint32_t table,
			       uint32_t shard)
{
	if (table >= st->def.ntables || shard >= st->def.shards)
		return 0;
	return shard_sh_at(st, table, shard)->seq;
}

/* ========================================================================
 * Life cycle
 * ===================================================================== */

struct shard_store *shard_store_alloc(const struct shard_model_def *def,
				      const struct shard_store_opts *opts,
				      enum fr_err *err)
{
	struct shard_store *st;
	enum fr_err e;

	e = shard_model_validate(def);
	if (e)
		goto out_err;
	e = FR_ERR_NOMEM;
	st = calloc(1, sizeof(*st));
	if (!st) {
		fr_fail(e, "model '%s': store struct", def->name);
		goto out_err;
	}
	st->def = *def;
	if (opts)
		st->opts = *opts;
	if (st->opts.index_cap == 0)
		st->opts.index_cap = INDEX_CAP_DEFAULT;
	st->tabs = calloc(def->ntables, sizeof(*st->tabs));
	st->sh = calloc((size_t)def->ntables * def->shards, sizeof(*st->sh));
	if (!st->tabs || !st->sh) {
		fr_fail(e, "model '%s': %u x %u shard records", def->name,
			def->ntables, def->shards);
		goto out_free_store;
	}
	for (uint32_t t = 0; t < def->ntables; t++) {
		struct shard_tab *tab = &st->tabs[t];

		tab->rows = def->tables[t].rows;
		tab->row_bytes = shard_row_bytes(&def->tables[t]);
		/* calloc: a new store is all zero rows at version 0, and
		 * untouched pages cost no RAM until written. */
		tab->data = calloc(tab->rows, tab->row_bytes);
		tab->ver = calloc(tab->rows, sizeof(*tab->ver));
		tab->org = calloc(tab->rows, sizeof(*tab->org));
		if (!tab->data || !tab->ver || !tab->org) {
			fr_fail(e, "model '%s' table '%s': %llu rows x %zu bytes",
				def->name, def->tables[t].name,
				(unsigned long long)tab->rows, tab->row_bytes);
			goto out_free_store;
		}
	}
	*err = FR_OK;
	return st;

out_free_store:
	shard_store_free(st);
out_err:
	*err = e;
	return NULL;
}

struct shard_store *shard_store_new(const struct shard_model_def *def,
				    const struct shard_store_opts *opts,
				    enum fr_err *err)
{
	return shard_store_alloc(def, opts, err);
}

void shard_store_free(struct shard_store *st)
{
	if (!st)
		return;
	if (st->sh) {
		size_t nsh = (size_t)st->def.ntables * st->def.shards;

		for (size_t i = 0; i < nsh; i++) {
			shard_vv_fini(&st->sh[i].vv);
			shard_index_fini(&st->sh[i].idx);
			shard_undo_free(st->sh[i].undo);
		}
		free(st->sh);
	}
	if (st->tabs) {
		for (uint32_t t = 0; t < st->def.ntables; t++) {
			free(st->tabs[t].data);
			free(st->tabs[t].ver);
			free(st->tabs[t].org);
		}
		free(st->tabs);
	}
	free(st->revoked);
	free(st);
}

const struct shard_model_def *shard_store_def(const struct shard_store *st)
{
	return &st->def;
}

/* ========================================================================
 * Changed-rows index
 * ===================================================================== */

void shard_index_fini(struct shard_index *idx)
{
	for (uint32_t i = 0; i < idx->n; i++)
		free(idx->o[i].e);
	free(idx->o);
	memset(idx, 0, sizeof(*idx));
}

static struct shard_idx_origin *idx_find(const struct shard_index *idx,
					 uint32_t origin, uint32_t *pos)
{
	uint32_t lo = 0, hi = idx->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (idx->o[mid].origin < origin)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos)
		*pos = lo;
	return lo < idx->n && idx->o[lo].origin == origin ? &idx->o[lo] : NULL;
}

static struct shard_idx_origin *idx_get(struct shard_index *idx,
					uint32_t origin)
{
	struct shard_idx_origin *io;
	uint32_t pos;

	io = idx_find(idx, origin, &pos);
	if (io)
		return io;
	if (idx->n == idx->cap) {
		uint32_t cap = idx->cap ? idx->cap * 2 : 2;
		struct shard_idx_origin *o;

		o = realloc(idx->o, (size_t)cap * sizeof(*o));
		if (!o)
			return NULL;
		idx->o = o;
		idx->cap = cap;
	}
	memmove(&idx->o[pos + 1], &idx->o[pos],
		(size_t)(idx->n - pos) * sizeof(*idx->o));
	memset(&idx->o[pos], 0, sizeof(idx->o[pos]));
	idx->o[pos].origin = origin;
	idx->n++;
	return &idx->o[pos];
}

static bool idx_reserve(struct shard_idx_origin *io, uint32_t want)
{
	struct shard_idx_ent *e;
	uint32_t cap;

	if (want <= io->cap)
		return true;
	cap = io->cap ? io->cap : 16;
	while (cap < want)
		cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
	e = realloc(io->e, (size_t)cap * sizeof(*e));
	if (!e)
		return false;
	io->e = e;
	io->cap = cap;
	return true;
}

static inline bool ent_live(const struct shard_tab *tab,
			    const struct shard_idx_origin *io,
			    const struct shard_idx_ent *e)
{
	return tab->ver[e->row] == e->version && tab->org[e->row] == io->origin;
}

static void idx_compact(const struct shard_tab *tab,
			struct shard_idx_origin *io)
{
	uint32_t k = 0;

	for (uint32_t j = 0; j < io->n; j++)
		if (ent_live(tab, io, &io->e[j]))
			io->e[k++] = io->e[j];
	io->n = k;
	io->live = k;
}

/*
 * Drop the oldest half, widened to the end of a run of equal versions so
 * that "no entry has version <= horizon" holds exactly: a query with
 * since[o] == horizon then needs nothing that was dropped.
 */
static void idx_trim(const struct shard_tab *tab, struct shard_idx_origin *io,
		     uint32_t cap)
{
	while (io->n > cap) {
		uint32_t k = io->n / 2, dead_live = 0;

		if (k == 0)
			k = 1;
		while (k < io->n && io->e[k].version == io->e[k - 1].version)
			k++;
		for (uint32_t j = 0; j < k; j++)
			dead_live += ent_live(tab, io, &io->e[j]);
		if (io->e[k - 1].version > io->horizon)
			io->horizon = io->e[k - 1].version;
		io->live -= dead_live;
		memmove(io->e, io->e + k, (size_t)(io->n - k) * sizeof(*io->e));
		io->n -= k;
	}
}

/* Called after row's state went from (oldv, oldo) to (newv, newo). */
static void idx_note_write(struct shard_store *st, struct shard_sh *sh,
			   const struct shard_tab *tab, uint64_t row,
			   uint64_t oldv, uint32_t oldo, uint64_t newv,
			   uint32_t newo)
{
	struct shard_index *idx = &sh->idx;
	struct shard_idx_origin *io;
	uint32_t lo, hi;

	if (idx->broken)
		return;
	if (oldv > 0) {
		io = idx_find(idx, oldo, NULL);
		/* The old state had a live entry iff it was above horizon.
		 * Compact here too: an origin whose rows are all being
		 * overwritten by another sees no inserts of its own. */
		if (io && oldv > io->horizon && io->live > 0) {
			io->live--;
			if (io->n > 2 * (uint64_t)io->live + INDEX_SLACK)
				idx_compact(tab, io);
		}
	}
	io = idx_get(idx, newo);
	if (!io)
		goto out_broken;
	if (newv <= io->horizon)
		return;         /* older than the index reaches: queries scan */
	if (!idx_reserve(io, io->n + 1))
		goto out_broken;
	/* Arrivals are mostly in version order: search only when not last. */
	lo = io->n;
	if (io->n && io->e[io->n - 1].version > newv) {
		lo = 0;
		hi = io->n;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (io->e[mid].version <= newv)
				lo = mid + 1;
			else
				hi = mid;
		}
		memmove(&io->e[lo + 1], &io->e[lo],
			(size_t)(io->n - lo) * sizeof(*io->e));
	}
	io->e[lo].version = newv;
	io->e[lo].row = row;
	io->n++;
	io->live++;
	if (io->n > 2 * (uint64_t)io->live + INDEX_SLACK)
		idx_compact(tab, io);
	if (io->n > st->opts.index_cap)
		idx_trim(tab, io, st->opts.index_cap);
	return;

out_broken:
	/* Out of memory: stop trusting the index for this shard; queries
	 * scan until the next rebuild. */
	shard_index_fini(idx);
	idx->broken = true;
}

static int cmp_idx_ent(const void *a, const void *b)
{
	const struct shard_idx_ent *x = a, *y = b;

	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

enum fr_err shard_index_rebuild(struct shard_store *st, uint32_t table,
				uint32_t shard)
{
	struct shard_sh *sh = shard_sh_at(st, table, shard);
	const struct shard_tab *tab = &st->tabs[table];
	uint32_t S = st->def.shards;
	struct shard_index *idx = &sh->idx;

	shard_index_fini(idx);
	for (uint64_t row = shard; row < tab->rows; row += S) {
		struct shard_idx_origin *io;

		if (tab->ver[row] == 0)
			continue;
		io = idx_get(idx, tab->org[row]);
		if (!io || !idx_reserve(io, io->n + 1))
			goto out_nomem;
		io->e[io->n].version = tab->ver[row];
		io->e[io->n].row = row;
		io->n++;
		io->live++;
	}
	for (uint32_t i = 0; i < idx->n; i++) {
		struct shard_idx_origin *io = &idx->o[i];

		qsort(io->e, io->n, sizeof(*io->e), cmp_idx_ent);
		if (io->n > st->opts.index_cap)
			idx_trim(tab, io, st->opts.index_cap);
	}
	return FR_OK;

out_nomem:
	shard_index_fini(idx);
	idx->broken = true;
	return fr_fail(FR_ERR_NOMEM, "table %u shard %u: changed-rows index",
		       table, shard);
}

/* ========================================================================
 * Rows changed since a vector
 * ===================================================================== */

void shard_changes_init(struct shard_changes *out)
{
	memset(out, 0, sizeof(*out));
}

void shard_changes_fini(struct shard_changes *out)
{
	if (!out)
		return;
	free(out->c);
	shard_changes_init(out);
}

static enum fr_err changes_push(struct shard_changes *out, uint64_t row,
				uint64_t version, uint32_t origin)
{
	if (out->n == out->cap) {
		uint32_t cap = out->cap ? out->cap * 2 : 64;
		struct shard_change *c;

		if (out->cap > UINT32_MAX / 2)
			return fr_fail(FR_ERR_TOOBIG, "changes: more than 2^31 rows");
		c = realloc(out->c, (size_t)cap * sizeof(*c));
		if (!c)
			return fr_fail(FR_ERR_NOMEM, "changes: %u rows", cap);
		out->c = c;
		out->cap = cap;
	}
	out->c[out->n].row = row;
	out->c[out->n].version = version;
	out->c[out->n].origin = origin;
	out->n++;
	return FR_OK;
}

static int cmp_change(const void *a, const void *b)
{
	const struct shard_change *x = a, *y = b;

	if (x->origin != y->origin)
		return x->origin < y->origin ? -1 : 1;
	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

static void sort_changes(struct shard_change *c, uint32_t n)
{
	/* Both paths usually produce sorted runs already: check first. */
	for (uint32_t i = 1; i < n; i++)
		if (cmp_change(&c[i - 1], &c[i]) > 0) {
			qsort(c, n, sizeof(*c), cmp_change);
			return;
		}
}

static enum fr_err check_ts(const struct shard_store *st, uint32_t table,
			    uint32_t shard)
{
	if (table >= st->def.ntables)
		return fr_fail(FR_ERR_RANGE,
			       "model '%s': table %u out of range [0, %u)",
			       st->def.name, table, st->def.ntables);
	if (shard >= st->def.shards)
		return fr_fail(FR_ERR_RANGE,
			       "model '%s': shard %u out of range [0, %u)",
			       st->def.name, shard, st->def.shards);
	return FR_OK;
}

enum fr_err shard_store_changes_scan(const struct shard_store *st,
				     uint32_t table, uint32_t shard,
				     const struct shard_vv *since,
				     struct shard_changes *out)
{
	const struct shard_tab *tab;
	uint32_t last_org = 0;
	uint64_t last_v = 0;
	enum fr_err err;

	err = check_ts(st, table, shard);
	if (err)
		return err;
	tab = &st->tabs[table];
	out->n = 0;
	out->full_scan = true;
	for (uint64_t row = shard; row < tab->rows; row += st->def.shards) {
		uint64_t v = tab->ver[row];
		uint32_t o = tab->org[row];

		if (v == 0)
			continue;
		/* Rows of one origin cluster; cache the last lookup. */
		if (o != last_org || last_org == 0) {
			last_org = o;
			last_v = shard_vv_get(since, o);
		}
		if (v <= last_v)
			continue;
		err = changes_push(out, row, v, o);
		if (err)
			return err;
	}
	if (out->n > 1)
		sort_changes(out->c, out->n);
	return FR_OK;
}

enum fr_err shard_store_changes_since(const struct shard_store *st,
				      uint32_t table, uint32_t shard,
				      const struct shard_vv *since,
				      struct shard_changes *out)
{
	const struct shard_index *idx;
	const struct shard_tab *tab;
	enum fr_err err;

	err = check_ts(st, table, shard);
	if (err)
		return err;
	idx = &shard_sh_at(st, table, shard)->idx;
	tab = &st->tabs[table];
	if (idx->broken)
		return shard_store_changes_scan(st, table, shard, since, out);
	for (uint32_t i = 0; i < idx->n; i++)
		if (shard_vv_get(since, idx->o[i].origin) < idx->o[i].horizon)
			return shard_store_changes_scan(st, table, shard, since,
							out);
	out->n = 0;
	out->full_scan = false;
	for (uint32_t i = 0; i < idx->n; i++) {
		const struct shard_idx_origin *io = &idx->o[i];
		uint64_t v = shard_vv_get(since, io->origin);
		uint32_t lo = 0, hi = io->n, first = out->n;

		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (io->e[mid].version <= v)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (uint32_t j = lo; j < io->n; j++) {
			if (!ent_live(tab, io, &io->e[j]))
				continue;
			err = changes_push(out, io->e[j].row, io->e[j].version,
					   io->origin);
			if (err)
				return err;
		}
		/* Equal versions are in arrival order; order them by row. */
		if (out->n - first > 1)
			sort_changes(out->c + first, out->n - first);
	}
	return FR_OK;
}

/* ========================================================================
 * Apply
 * ===================================================================== */

/*
 * Check everything before touching anything, so an invalid batch changes
 * nothing.  FR_ERR_RANGE for an index outside its range, FR_ERR_INVAL for
 * a malformed batch, FR_ERR_TOOBIG when covers would push the vector past
 * SHARD_VV_MAX origins.  Version 0 and origin 0 are what a never-written
 * row holds, so no batch may carry them: a row at version 0 would never
 * count as changed and could not spread.
 */
static enum fr_err validate_batch(const struct shard_store *st,
				  const struct shard_batch *b)
{
	const struct shard_tab *tab;
	const struct shard_sh *sh;
	uint32_t fresh = 0;
	enum fr_err err;

	if (!b)
		return fr_fail(FR_ERR_INVAL, "batch is NULL");
	err = check_ts(st, b->table, b->shard);
	if (err)
		return err;
	tab = &st->tabs[b->table];
	if (b->n > 0 && (!b->rows || !b->versions || !b->origins || !b->values))
		return fr_fail(FR_ERR_INVAL,
			       "batch table %u shard %u: n %u but rows, versions, origins or values is NULL",
			       b->table, b->shard, b->n);
	for (uint32_t i = 0; i < b->n; i++) {
		uint64_t row = b->rows[i];

		if (row >= tab->rows)
			return fr_fail(FR_ERR_RANGE,
				       "batch table '%s' shard %u: rows[%u] = %llu out of range [0, %llu)",
				       st->def.tables[b->table].name, b->shard,
				       i, (unsigned long long)row,
				       (unsigned long long)tab->rows);
		if (row % st->def.shards != b->shard)
			return fr_fail(FR_ERR_INVAL,
				       "batch table '%s' shard %u: rows[%u] = %llu belongs to shard %u",
				       st->def.tables[b->table].name, b->shard,
				       i, (unsigned long long)row,
				       shard_of_row(row, st->def.shards));
		if (b->versions[i] == 0)
			return fr_fail(FR_ERR_INVAL,
				       "batch table '%s' shard %u: versions[%u] is 0; expected >= 1",
				       st->def.tables[b->table].name, b->shard,
				       i);
		if (b->origins[i] == 0)
			return fr_fail(FR_ERR_INVAL,
				       "batch table '%s' shard %u: origins[%u] is 0; expected a node id >= 1",
				       st->def.tables[b->table].name, b->shard,
				       i);
	}
	if (b->ncovers > SHARD_VV_MAX)
		return fr_fail(FR_ERR_RANGE,
			       "batch table %u shard %u: ncovers %u out of range [0, %d]",
			       b->table, b->shard, b->ncovers, SHARD_VV_MAX);
	if (b->ncovers > 0 && !b->covers)
		return fr_fail(FR_ERR_INVAL,
			       "batch table %u shard %u: ncovers %u but covers is NULL",
			       b->table, b->shard, b->ncovers);
	sh = shard_sh_at(st, b->table, b->shard);
	for (uint32_t i = 0; i < b->ncovers; i++) {
		uint32_t o = b->covers[i].origin;
		bool seen = false;

		if (o == 0)
			return fr_fail(FR_ERR_INVAL,
				       "batch table %u shard %u: covers[%u].origin is 0; expected a node id >= 1",
				       b->table, b->shard, i);
		if (b->covers[i].version == 0 || shard_vv_get(&sh->vv, o) > 0)
			continue;
		for (uint32_t j = 0; j < i && !seen; j++)
			seen = b->covers[j].origin == o &&
			       b->covers[j].version > 0;
		fresh += !seen;
	}
	if (sh->vv.n + fresh > SHARD_VV_MAX)
		return fr_fail(FR_ERR_TOOBIG,
			       "batch table %u shard %u: covers would make %u origins; at most %d per shard",
			       b->table, b->shard, sh->vv.n + fresh,
			       SHARD_VV_MAX);
	return FR_OK;
}

enum fr_err shard_store_apply(struct shard_store *st,
			      const struct shard_batch *b,
			      struct shard_apply_result *res, uint8_t *won)
{
	struct shard_apply_result r = { 0 };
	struct shard_tab *tab;
	struct shard_sh *sh;
	const uint8_t *values;
	bool changed = false;
	enum fr_err err;

	if (res)
		*res = r;
	err = validate_batch(st, b);
	if (err)
		return err;
	tab = &st->tabs[b->table];
	sh = shard_sh_at(st, b->table, b->shard);
	values = b->values;
	for (uint32_t i = 0; i < b->n; i++) {
		uint64_t row = b->rows[i], v = b->versions[i];
		uint32_t o = b->origins[i];
		uint64_t cv = tab->ver[row];
		uint32_t co = tab->org[row];
		uint8_t *dst = tab->data + row * tab->row_bytes;

		if (won)
			won[i] = 0;
		if (st->nrevoked && shard_store_is_revoked(st, v)) {
			r.refused++;
			continue;
		}
		if (v < cv || (v == cv && o <= co)) {
			r.stale++;
			continue;
		}
		if (st->opts.undo_bytes_per_shard) {
			struct shard_undo_hdr h = {
				.row = row,
				.old_version = cv, .old_origin = co,
				.new_version = v, .new_origin = o,
			};

			shard_undo_push(st, b->table, b->shard, &h, dst);
		} else {
			/* No ring: nothing written can be rolled back. */
			shard_undo_lose(st, sh, UINT64_MAX);
		}
		memcpy(dst, values + (size_t)i * tab->row_bytes, tab->row_bytes);
		tab->ver[row] = v;
		tab->org[row] = o;
		idx_note_write(st, sh, tab, row, cv, co, v, o);
		if (b->significance) {
			float s = b->significance[i];

			/* Advisory and only growing: ignore what is not a
			 * finite non-negative magnitude. */
			if (isfinite(s) && s > 0)
				sh->significance += s;
		}
		r.applied++;
		if (won)
			won[i] = 1;
		changed = true;
	}
	/* A row written twice in this batch: only the final winner keeps
	 * its flag, so a mirror applying won rows ends byte-identical. */
	if (won && r.applied)
		for (uint32_t i = 0; i < b->n; i++)
			if (won[i] && (tab->ver[b->rows[i]] != b->versions[i] ||
				       tab->org[b->rows[i]] != b->origins[i]))
				won[i] = 0;
	/* Only covers advance the vector: a row from origin o says nothing
	 * about o's other rows.  A cover inside a revoked range (T, R]
	 * promises revoked writes, which we refuse; it stands for T. */
	for (uint32_t i = 0; i < b->ncovers; i++) {
		uint64_t v = shard_revoked_clamp(st, b->covers[i].version);
		uint32_t o = b->covers[i].origin;

		if (v <= shard_vv_get(&sh->vv, o))
			continue;
		err = shard_vv_advance(&sh->vv, o, v);
		if (err)
			break;          /* only NOMEM: a smaller vector is safe */
		changed = true;
	}
	if (changed)
		shard_sh_changed(st, b->table, b->shard);
	if (res)
		*res = r;
	return err;
}

/* ========================================================================
 * Read access
 * ===================================================================== */

const void *shard_store_row(const struct shard_store *st, uint32_t table,
			    uint64_t row)
{
	if (table >= st->def.ntables || row >= st->tabs[table].rows)
		return NULL;
	return st->tabs[table].data + row * st->tabs[table].row_bytes;
}

const void *shard_store_table_data(const struct shard_store *st,
				   uint32_t table)
{
	if (table >= st->def.ntables)
		return NULL;
	return st->tabs[table].data;
}

void shard_store_row_version(const struct shard_store *st, uint32_t table,
			     uint64_t row, uint64_t *version,
			     uint32_t *origin)
{
	uint64_t v = 0;
	uint32_t o = 0;

	if (table < st->def.ntables && row < st->tabs[table].rows) {
		v = st->tabs[table].ver[row];
		o = st->tabs[table].org[row];
	}
	if (version)
		*version = v;
	if (origin)
		*origin = o;
}

const struct shard_vv *shard_store_vv(const struct shard_store *st,
				      uint32_t table, uint32_t shard)
{
	if (table >= st->def.ntables || shard >= st->def.shards)
		return NULL;
	return &shard_sh_at(st, table, shard)->vv;
}

uint64_t shard_store_table_checksum(const struct shard_store *st,
				    uint32_t table)
{
	if (table >= st->def.ntables)
		return 0;
	return XXH3_64bits(st->tabs[table].data,
			   st->tabs[table].rows * st->tabs[table].row_bytes);
}
