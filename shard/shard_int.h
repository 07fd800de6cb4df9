/*
 * shard_int.h — private structs and helpers shared by store.c, undo.c and
 * snapshot.c.  Nothing outside shard/ includes this file; the public
 * contract is shard.h.
 *
 * Layout of a store (one model):
 *
 *   struct shard_store
 *     tabs[t]          one contiguous row-major data array per table, plus
 *                      per-row ver[] and org[] (version 0 / origin 0 means
 *                      "never written")
 *     sh[t*shards+s]   per (table, shard): version vector, rollback epoch,
 *                      significance, cached digest-entry hash, change seq,
 *                      the changed-rows index, the undo ring and how far
 *                      back that ring cannot reach (undo_lost)
 *     revoked[]        version ranges (T, R] revoked by rollbacks, sorted
 *                      and merged, model-wide
 *
 * Rows of shard s are s, s+S, s+2S, ... (row % S == s).
 */
#ifndef FRESHET_SHARD_INT_H
#define FRESHET_SHARD_INT_H

#include "shard/shard.h"

/* ------------------------------------------------------------------------
 * Changed-rows index
 *
 * Per (table, shard, origin): (version, row) pairs sorted by version
 * (equal versions in arrival order).  An entry is live iff the row's
 * current (version, origin) is (entry.version, origin); overwritten rows
 * leave dead entries behind that compaction removes.  Invariant: every row
 * whose current state is (v, o) with v > horizon holds exactly one live
 * entry, and no entry has version <= horizon.  So a query with
 * since[o] >= horizon is answered from the index alone.
 * ---------------------------------------------------------------------- */
struct shard_idx_ent {
	uint64_t version;
	uint64_t row;
};

struct shard_idx_origin {
	uint32_t origin;
	uint32_t n, cap;
	uint32_t live;
	uint64_t horizon;           /* entries <= horizon were dropped */
	struct shard_idx_ent *e;    /* owned */
};

struct shard_index {
	uint32_t n, cap;            /* origins, sorted by origin */
	struct shard_idx_origin *o; /* owned */
	bool broken;                /* out of memory once: queries scan */
};

/* ------------------------------------------------------------------------
 * Undo ring (undo.c)
 *
 * All rows of one (table, shard) have the same size, so records are fixed
 * size and the ring is a circular array of them, grown lazily up to
 * budget / record size.  Every record has a sequence number (pushes so
 * far); checkpoints remember the shard's version vector at some pushes so
 * a rollback can tell what the node already held when a revoked write
 * arrived (see the comment above shard_store_rollback in undo.c).
 *
 * What the ring cannot give back is summed up in shard_sh.undo_lost, a
 * version that only rises: a rollback whose target cut T is at or above
 * it finds every record it needs in this shard's ring.  The store keeps
 * the maximum over its shards (shard_store_undo_horizon).  The rules that
 * raise it are explained above ring_forget_oldest in undo.c.
 * ---------------------------------------------------------------------- */
struct shard_undo_hdr {
	uint64_t row;
	uint64_t old_version;
	uint64_t new_version;
	uint32_t old_origin;
	uint32_t new_origin;
};

struct shard_undo_ckpt {
	uint64_t seq;               /* taken just before record `seq` was pushed */
	struct shard_vv vv;
};

struct shard_undo {
	size_t rec_bytes;           /* header + row bytes */
	uint32_t max_recs;          /* budget / rec_bytes */
	uint32_t cap;               /* records allocated (<= max_recs) */
	uint32_t head;              /* slot of the oldest record */
	uint32_t n;                 /* records held */
	uint64_t next_seq;          /* seq of the next push; oldest = next_seq - n */
	uint8_t *recs;              /* cap * rec_bytes, owned */
	uint32_t nckpt, capckpt;
	struct shard_undo_ckpt *ckpt; /* sorted by seq, owned */
};

/* ------------------------------------------------------------------------
 * Store
 * ---------------------------------------------------------------------- */
struct shard_tab {
	uint64_t rows;
	size_t row_bytes;
	uint8_t *data;              /* rows * row_bytes */
	uint64_t *ver;              /* rows */
	uint32_t *org;              /* rows */
};

struct shard_sh {
	struct shard_vv vv;
	uint64_t epoch;             /* rollback epoch */
	double significance;
	uint64_t hash;              /* digest-entry hash, when hash_valid */
	bool hash_valid;
	uint64_t seq;               /* change_seq at the last change */
	struct shard_index idx;
	struct shard_undo *undo;    /* NULL until the first push */
	uint64_t undo_lost;         /* a rollback to T >= this finds its records
				     * in `undo` (undo.c); only rises */
};

struct shard_range {
	uint64_t t, r;              /* revoked: t < version <= r */
};

struct shard_store {
	struct shard_model_def def;
	struct shard_store_opts opts;   /* defaults resolved */
	struct shard_tab *tabs;         /* def.ntables */
	struct shard_sh *sh;            /* def.ntables * def.shards */
	uint64_t summary;
	uint64_t change_seq;
	uint64_t epoch;                 /* model rollback epoch */
	uint64_t undo_horizon;          /* max of every shard's undo_lost */
	uint32_t nrevoked, caprevoked;
	struct shard_range *revoked;    /* sorted by t, disjoint, merged */
};

static inline struct shard_sh *shard_sh_at(const struct shard_store *st,
					   uint32_t table, uint32_t shard)
{
	return &st->sh[(size_t)table * st->def.shards + shard];
}

/* Rows in shard s of a table with `rows` rows and S shards. */
static inline uint64_t shard_rows_in(uint64_t rows, uint32_t shards,
				     uint32_t s)
{
	return rows > s ? (rows - s - 1) / shards + 1 : 0;
}

/* store.c */
struct shard_store *shard_store_alloc(const struct shard_model_def *def,
				      const struct shard_store_opts *opts,
				      enum fr_err *err);
/* Recompute one shard's digest-entry hash, fold it into the summary and
 * bump the change counters. */
void shard_sh_changed(struct shard_store *st, uint32_t table,
		      uint32_t shard);
/* Drop and rebuild one shard's index from its rows (horizon 0, then
 * trimmed to index_cap).  On FR_ERR_NOMEM the index is left empty with
 * every known origin's horizon raised to the maximum, so queries scan. */
enum fr_err shard_index_rebuild(struct shard_store *st, uint32_t table,
				uint32_t shard);
void shard_index_fini(struct shard_index *idx);

/* undo.c */
/* Raise a shard's undo_lost (and the store's horizon) to at least
 * version. */
static inline void shard_undo_lose(struct shard_store *st,
				   struct shard_sh *sh, uint64_t version)
{
	if (version > sh->undo_lost)
		sh->undo_lost = version;
	if (version > st->undo_horizon)
		st->undo_horizon = version;
}

/* Remember row h->row's previous value (old_value, row_bytes of table)
 * before a write that won last-writer-wins overwrites it; the shard's
 * vector must still be the one from before the batch (for checkpoints).
 * Call it with undo enabled only, before the row changes.  A failed
 * allocation is not an error for the caller: the record is simply not
 * kept and undo_lost says so. */
void shard_undo_push(struct shard_store *st, uint32_t table, uint32_t shard,
		     const struct shard_undo_hdr *h, const void *old_value);
void shard_undo_free(struct shard_undo *u);
/* Insert (t, r] into the store's revoked list, merging overlaps. */
enum fr_err shard_revoked_add(struct shard_store *st, uint64_t t,
			      uint64_t r);
/* The start t of the revoked range holding version, or version itself
 * when it is not revoked. */
uint64_t shard_revoked_clamp(const struct shard_store *st, uint64_t version);

/* vv.c */
/* Clamp vv[o] to at most lim for one origin (no-op when absent). */
void shard_vv_clamp(struct shard_vv *vv, uint32_t origin, uint64_t lim);

#endif /* FRESHET_SHARD_INT_H */
