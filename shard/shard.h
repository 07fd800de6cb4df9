/*
 * shard.h — the one public header of freshet's shard/ module.
 *
 * The data model (model -> tables -> shards -> rows), the versioned host
 * store that is every node's source of truth (last-writer-wins rows,
 * per-shard version vectors, the "rows changed since V" index, digests,
 * the undo ring and rollback), the write-ahead log and snapshots that make
 * it durable, and the wire codec for frames and row batches.
 *
 * Not here: sockets, peers, scheduling (gossip/), ZooKeeper (topology/),
 * GPU tables (gpu/).  Nothing in this module blocks on the network; only
 * the WAL's own writer thread calls fdatasync.
 *
 * Threads: a shard_store is owned by one thread (the node's loop thread)
 * and has no lock.  A shard_wal may be appended to from one thread and has
 * its own writer thread inside.  The codec functions are pure.
 */
#ifndef FRESHET_SHARD_H
#define FRESHET_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* ========================================================================
 * Schema
 * ===================================================================== */
#define SHARD_NAME_MAX 63        /* bytes, excluding the NUL */
#define SHARD_TABLES_MAX 64      /* tables per model */
#define SHARD_SHARDS_MAX 1048576 /* shards per model */
#define SHARD_DIM_MAX 65536      /* floats per row */

enum shard_dtype {
	SHARD_F32 = 1,
	SHARD_F16 = 2,
};

struct shard_table_def {
	char name[SHARD_NAME_MAX + 1];
	uint64_t rows;
	uint32_t dim;
	enum shard_dtype dtype;
};

struct shard_model_def {
	char name[SHARD_NAME_MAX + 1];
	uint32_t priority;            /* larger = more urgent */
	uint32_t shards;              /* every table is cut into this many */
	uint32_t ntables;
	struct shard_table_def tables[SHARD_TABLES_MAX];
};

/* Bytes per element (4 or 2); 0 for an unknown dtype. */
size_t shard_dtype_size(enum shard_dtype dt);
/* "f32"/"f16" <-> dtype; parse returns FR_ERR_INVAL for anything else. */
const char *shard_dtype_name(enum shard_dtype dt);
enum fr_err shard_dtype_parse(const char *s, enum shard_dtype *out);

/* Validate a model definition: names by the name rule (common.h), <= 63 bytes,
 * no duplicate table names, 1 <= ntables <= 64, 1 <= shards <= 2^20,
 * rows >= 1, 1 <= dim <= 65536, known dtype, rows*dim*size without
 * overflow.  On failure returns the code and a detail naming the field
 * (fr_errmsg()).  Borrows def. */
enum fr_err shard_model_validate(const struct shard_model_def *def);

/* Bytes of one row of table t (dim * dtype size). */
size_t shard_row_bytes(const struct shard_table_def *t);
/* Index of a table by name, or -1. */
int shard_model_table_index(const struct shard_model_def *def,
			    const char *name);
/* The shard a row belongs to: row % shards. */
static inline uint32_t shard_of_row(uint64_t row, uint32_t shards)
{
	return (uint32_t)(row % shards);
}

/* ========================================================================
 * Version vectors: for each origin node, the highest version from that
 * origin this shard holds without a gap.
 * ===================================================================== */
#define SHARD_VV_MAX 256    /* origins per shard; more is refused */

struct shard_vv_ent {
	uint32_t origin;
	uint64_t version;
};

struct shard_vv {
	uint32_t n;                 /* entries, sorted by origin */
	uint32_t cap;
	struct shard_vv_ent *e;     /* owned */
};

void shard_vv_init(struct shard_vv *vv);
void shard_vv_fini(struct shard_vv *vv);
/* The version for origin (0 if absent). */
uint64_t shard_vv_get(const struct shard_vv *vv, uint32_t origin);
/* vv[origin] = max(vv[origin], version).  FR_ERR_TOOBIG past SHARD_VV_MAX
 * origins, FR_ERR_NOMEM. */
enum fr_err shard_vv_advance(struct shard_vv *vv, uint32_t origin,
			     uint64_t version);
enum fr_err shard_vv_copy(struct shard_vv *dst, const struct shard_vv *src);
bool shard_vv_equal(const struct shard_vv *a, const struct shard_vv *b);
/* a >= b in every origin (a has seen everything b has). */
bool shard_vv_dominates(const struct shard_vv *a, const struct shard_vv *b);

/* ========================================================================
 * Row batches
 *
 * A batch is rows of one table and one shard.  Arrays are borrowed (a
 * decoded batch points into the frame it came from).  `covers` is the
 * promise that travels with a batch: after applying it, the shard holds
 * every row that origin covers[i].origin wrote at a version <=
 * covers[i].version (or a newer value of it); the store advances its
 * vector by exactly that and nothing more.  A local publish covers
 * (self, v); a pull reply covers each origin up to the last version it
 * included whole.
 * ===================================================================== */
struct shard_batch {
	uint32_t table;               /* index into the model's tables */
	uint32_t shard;
	uint32_t n;                   /* rows */
	const uint64_t *rows;         /* row ids, each with row % shards == shard */
	const uint64_t *versions;     /* per row */
	const uint32_t *origins;      /* per row: node id that stamped it */
	const float *significance;    /* per row, may be NULL (all 0) */
	const void *values;           /* n * row_bytes, table dtype */
	uint32_t ncovers;
	const struct shard_vv_ent *covers;
};

/* ========================================================================
 * The store: one model's tables in host RAM, with row versions.
 * ===================================================================== */
struct shard_store;

struct shard_store_opts {
	/* Entries per (shard, origin) kept in the changed-rows index before
	 * the oldest are dropped (queries older than that scan the shard).
	 * 0 means 65536. */
	uint32_t index_cap;
	/* Undo ring budget per shard in bytes; 0 disables undo. */
	uint64_t undo_bytes_per_shard;
};

/* Create an empty store (all rows zero, version 0, origin 0) for a valid
 * model.  def is copied.  Loop thread. */
struct shard_store *shard_store_new(const struct shard_model_def *def,
				    const struct shard_store_opts *opts,
				    enum fr_err *err);
void shard_store_free(struct shard_store *st);
const struct shard_model_def *shard_store_def(const struct shard_store *st);

struct shard_apply_result {
	uint32_t applied;    /* rows that won last-writer-wins and were written */
	uint32_t stale;      /* rows older than (or equal to) what we hold */
	uint32_t refused;    /* rows whose version a rollback revoked */
};

/* Apply a batch: each row is written iff (version, origin) is greater than
 * the row's current (version, origin) and the version is not revoked.  The
 * previous value goes to the undo ring.  Then the shard's vector advances
 * by b->covers (covers inside a revoked range advance only to its start).
 * If won is not NULL it gets b->n flags: won[i] = 1 when row i was written
 * and is still the latest in this batch (so a mirror can apply exactly
 * those).  The whole batch is validated first (table, shard, row range,
 * row % shards, n); an invalid batch changes nothing.  Loop thread.
 * n == 0 with covers is valid (it only advances the vector).  Version 0
 * and origin 0 are what never-written rows hold and are refused in rows
 * and covers (FR_ERR_INVAL); indexes out of range are FR_ERR_RANGE;
 * covers that would push the vector past SHARD_VV_MAX are FR_ERR_TOOBIG. */
enum fr_err shard_store_apply(struct shard_store *st,
			      const struct shard_batch *b,
			      struct shard_apply_result *res, uint8_t *won);

/* Read access for lookups and mirrors. */
const void *shard_store_row(const struct shard_store *st, uint32_t table,
			    uint64_t row);
/* Whole table data, rows * row_bytes, row-major by row id. */
const void *shard_store_table_data(const struct shard_store *st,
				   uint32_t table);
void shard_store_row_version(const struct shard_store *st, uint32_t table,
			     uint64_t row, uint64_t *version,
			     uint32_t *origin);
const struct shard_vv *shard_store_vv(const struct shard_store *st,
				      uint32_t table, uint32_t shard);
/* XXH3-64 of a table's bytes. */
uint64_t shard_store_table_checksum(const struct shard_store *st,
				    uint32_t table);

/* ------------------------------------------------------------------------
 * Rows changed since a vector.
 *
 * Every row of (table, shard) whose current (version, origin) has
 * version > since[origin], grouped by origin (ascending) and within an
 * origin by version (ascending), ties by row id.  Costs O(rows changed
 * since `since`) while `since` is within the index horizon; older vectors
 * fall back to scanning the shard (out->full_scan is set).
 * ---------------------------------------------------------------------- */
struct shard_change {
	uint64_t row;
	uint64_t version;
	uint32_t origin;
};

struct shard_changes {
	uint32_t n, cap;
	struct shard_change *c;   /* owned */
	bool full_scan;           /* the index did not reach back */
};

void shard_changes_init(struct shard_changes *out);
void shard_changes_fini(struct shard_changes *out);
enum fr_err shard_store_changes_since(const struct shard_store *st,
				      uint32_t table, uint32_t shard,
				      const struct shard_vv *since,
				      struct shard_changes *out);
/* The same answer by scanning every row: the reference the tests and the
 * benchmark compare against. */
enum fr_err shard_store_changes_scan(const struct shard_store *st,
				     uint32_t table, uint32_t shard,
				     const struct shard_vv *since,
				     struct shard_changes *out);

/* ------------------------------------------------------------------------
 * Digests
 * ---------------------------------------------------------------------- */
struct shard_digest_entry {
	uint32_t table;
	uint32_t shard;
	const struct shard_vv *vv;    /* borrowed from the store */
	uint64_t rollback_epoch;
	double significance;          /* sum of the significance of every row
				       * applied to this shard (only grows), so
				       * a peer can weigh what it is missing */
};

/* The digest entry of one shard (pointers valid until the next apply). */
void shard_store_digest_entry(const struct shard_store *st, uint32_t table,
			      uint32_t shard,
			      struct shard_digest_entry *out);
/* XXH3-64 of the canonical encoding of one entry. */
uint64_t shard_digest_entry_hash(const struct shard_digest_entry *e);
/* Per-model summary: a hash over every shard's entry hash, maintained
 * incrementally; two stores of the same model have equal summaries iff all
 * their digest entries are equal (up to 64-bit hash collisions). */
uint64_t shard_store_summary(const struct shard_store *st);
/* A counter that rises whenever any shard's digest entry changes, and
 * the counter value at which one shard's entry last changed: together they
 * let gossip list only shards changed since it last looked. */
uint64_t shard_store_change_seq(const struct shard_store *st);
uint64_t shard_store_shard_seq(const struct shard_store *st, uint32_t table,
			       uint32_t shard);

/* ------------------------------------------------------------------------
 * Rollback
 *
 * shard_store_rollback(T, R, epoch): every row whose version is in (T, R]
 * returns, byte-exact, to its latest earlier value with version <= T (from
 * the undo ring); afterwards versions in (T, R] are refused by apply.
 * Rows whose version is > R are left alone.  A shard whose undo ring does
 * not reach back far enough is left untouched and listed in `noundo`; the
 * others are restored and their rollback epoch set to `epoch`.  Restored
 * rows are reported through `restored_cb` so a table mirror can follow.
 * Returns FR_ERR_NOUNDO when any shard could not be restored, FR_OK when
 * all were, FR_ERR_INVAL when T >= R.  *rep (may be NULL) is overwritten;
 * restored_cb runs once per restored shard, rows ascending, values
 * contiguous, valid during the call.  A restored shard's vector may come
 * down (entries in a revoked range to its start, and below versions this
 * node may have skipped; see undo.c), so peers resend what it lacks.
 * ---------------------------------------------------------------------- */
struct shard_ref {
	uint32_t table;
	uint32_t shard;
};

struct shard_rollback_report {
	uint64_t rows_restored;
	uint32_t shards_restored;
	uint32_t nnoundo, capnoundo;
	struct shard_ref *noundo;   /* owned; shards needing a full transfer */
};

typedef void (*shard_restored_fn)(uint32_t table, const uint64_t *rows,
				  const void *values, uint32_t n, void *arg);

void shard_rollback_report_fini(struct shard_rollback_report *rep);
enum fr_err shard_store_rollback(struct shard_store *st, uint64_t target_t,
				 uint64_t revoke_r, uint64_t epoch,
				 shard_restored_fn restored_cb, void *cb_arg,
				 struct shard_rollback_report *rep);
/* The oldest target cut T a rollback can reach from the undo rings
 * alone: shard_store_rollback(T, R, ...) with T >= the horizon reports
 * no noundo shard.  It is the newest version among writes the rings do
 * not hold: records dropped from a full ring, writes too big for the
 * budget, rows whose history a reset dropped, and rows that were already
 * there when the store was made from a snapshot (a loaded store starts
 * with horizon = its newest row version).  After rollbacks it may be
 * higher: when a write the rings lack is (or becomes) revoked, the
 * horizon also covers the rows whose history may pass through it (see
 * undo.c).  It never comes down.  0 when every write since creation is
 * in a ring; INT64_MAX (2^63 - 1, newer than any version: no target is
 * reachable) when undo is disabled and anything was written since, so
 * that every reader (JSON, ZooKeeper) can hold it as a signed integer.
 * O(1).  Loop thread. */
uint64_t shard_store_undo_horizon(const struct shard_store *st);

/* Repair half of a rollback for a shard reported as noundo: every row of
 * (table, shard) whose current version is revoked goes back to never
 * written (zero bytes, version 0, origin 0), the shard's vector is
 * emptied (so peers send the whole shard again: a full transfer), its
 * rollback epoch rises to `epoch` and its index is rebuilt.  Rows with
 * versions not revoked keep their values (last-writer-wins lets the
 * transfer correct them).  The shard's undo ring is dropped (its records
 * describe rows as they were before the reset), so the undo horizon rises
 * to the newest version left in the shard; the model's rollback epoch
 * rises to `epoch` too.  Zeroed rows are reported through cb as in
 * shard_store_rollback (one call, rows ascending, values zero bytes; no
 * call when none).  *zeroed (may be NULL) gets how many rows were zeroed.
 * FR_ERR_RANGE for a bad table/shard, FR_ERR_NOMEM, each with nothing
 * changed.  Loop thread. */
enum fr_err shard_store_reset_shard(struct shard_store *st, uint32_t table,
				    uint32_t shard, uint64_t epoch,
				    shard_restored_fn cb, void *cb_arg,
				    uint64_t *zeroed);
/* Is a version revoked by any rollback this store has seen? */
bool shard_store_is_revoked(const struct shard_store *st, uint64_t version);
uint64_t shard_store_rollback_epoch(const struct shard_store *st);

/* ------------------------------------------------------------------------
 * Snapshots: the whole store (schema, rows, row versions, vectors, epochs,
 * revoked ranges) in one checksummed file, written to a temp name,
 * fsynced and renamed.  `lsn` is the WAL position the snapshot includes.
 * ---------------------------------------------------------------------- */
enum fr_err shard_store_snapshot(const struct shard_store *st,
				 const char *path, uint64_t lsn);
/* Load a snapshot; FR_ERR_NOTFOUND if there is none, FR_ERR_CHECKSUM /
 * FR_ERR_CORRUPT / FR_ERR_MAGIC / FR_ERR_VERSION on a bad file (detail
 * names what).  opts as for shard_store_new. */
struct shard_store *shard_store_load(const char *path,
				     const struct shard_store_opts *opts,
				     uint64_t *lsn, enum fr_err *err);

/* ========================================================================
 * Write-ahead log with group commit
 *
 * Records are opaque payloads numbered by a log sequence number (LSN,
 * from 1).  append() queues a record; the WAL's writer thread writes every
 * queued record and calls fdatasync once for the group, then reports the
 * durable LSN.  Segments are files `wal-<first lsn, 20 digits>.log` in dir.
 * On-disk record: u32 length of payload, u32 reserved 0, u64 lsn,
 * u64 XXH3-64 of (lsn bytes + payload), payload, zero padding to 8 bytes.
 * (The checksum is XXH3_64bits, seed 0, over the 8 little-endian lsn
 * bytes followed by the payload, as one stream.)  A segment is rolled
 * before a record would push it past segment_bytes, so segments exceed it
 * only by holding one record larger than that.
 *
 * Recovery order: load the snapshot (lsn S, or S = 0 without one),
 * shard_wal_replay(dir, S, ...), then shard_wal_open(dir, max(S, last_lsn)
 * + 1).  A snapshot must only cover LSNs that are already durable
 * (shard_wal_wait first), or a crash can leave it ahead of the log.
 * ===================================================================== */
struct shard_wal;

/* Called on the WAL writer thread whenever the durable LSN rises (once
 * per group, no WAL lock held).  It must not block or call back into the
 * WAL: copy the number, post it to a mailbox, return. */
typedef void (*shard_wal_durable_fn)(uint64_t durable_lsn, void *arg);

struct shard_wal_opts {
	uint64_t segment_bytes;       /* roll to a new segment past this; 0: 64 MiB */
	uint32_t max_record_bytes;    /* 0: 256 MiB */
	uint64_t max_queued_bytes;    /* append answers BUSY past this; 0: 1 GiB */
	shard_wal_durable_fn durable_cb;
	void *cb_arg;
};

/* Open (creating dir's log if needed) for appending after `next_lsn - 1`;
 * run shard_wal_replay first so next_lsn is known. */
struct shard_wal *shard_wal_open(const char *dir, uint64_t next_lsn,
				 const struct shard_wal_opts *opts,
				 enum fr_err *err);
/* Queue a record (copied); *lsn gets its number.  FR_ERR_BUSY when the
 * queue is over its byte bound (bytes appended but not yet durable; an
 * empty queue takes any record); FR_ERR_TOOBIG past max_record_bytes;
 * FR_ERR_IO once a write or sync has failed (the WAL stays failed).
 * One appending thread. */
enum fr_err shard_wal_append(struct shard_wal *w, const void *rec,
			     size_t len, uint64_t *lsn);
/* Block until lsn is durable (or the WAL failed: FR_ERR_IO).
 * FR_ERR_INVAL for an lsn not appended yet.  Any thread. */
enum fr_err shard_wal_wait(struct shard_wal *w, uint64_t lsn);
uint64_t shard_wal_durable_lsn(struct shard_wal *w);
/* Delete segments whose records are all <= lsn (covered by a snapshot);
 * the newest segment is never deleted.  Appending thread. */
enum fr_err shard_wal_truncate_before(struct shard_wal *w, uint64_t lsn);
/* Flush, sync, stop the writer thread, close.  NULL does nothing. */
void shard_wal_close(struct shard_wal *w);

typedef enum fr_err (*shard_wal_record_fn)(uint64_t lsn, const uint8_t *rec,
					   size_t len, void *arg);

struct shard_wal_replay_stats {
	uint64_t records;        /* records handed to the callback */
	uint64_t skipped;        /* records with lsn <= after_lsn */
	uint64_t last_lsn;       /* highest valid lsn found (0 if none) */
	uint64_t torn_bytes;     /* bytes dropped from the tail */
};

/* Read every segment in dir in order, verify each record, hand records
 * with lsn > after_lsn to fn.  A torn or corrupt tail of the last segment
 * is truncated away (counted in torn_bytes); corruption before the tail is
 * FR_ERR_CORRUPT, as is an LSN gap or repeat, a segment whose first
 * record does not match its name, or a log whose first record is past
 * after_lsn + 1 (records the caller needs are gone).  A callback error
 * stops the replay and is returned.  fn may be NULL (only count).
 * Payloads are 8-byte aligned and live only during the callback.
 * A missing or empty dir is FR_OK with zero records. */
enum fr_err shard_wal_replay(const char *dir, uint64_t after_lsn,
			     shard_wal_record_fn fn, void *arg,
			     struct shard_wal_replay_stats *stats);

/* Decode one on-disk record at buf: on FR_OK sets lsn, payload (pointing
 * into buf), its length and the bytes consumed.  FR_ERR_TRUNC when buf
 * holds less than a whole record, FR_ERR_CHECKSUM / FR_ERR_CORRUPT on bad
 * bytes.  Pure; the fuzz target drives it. */
enum fr_err shard_wal_record_decode(const uint8_t *buf, size_t len,
				    size_t max_record_bytes, uint64_t *lsn,
				    const uint8_t **payload, size_t *plen,
				    size_t *consumed);
/* Encode one record into w (for tests and tools). */
void shard_wal_record_encode(struct fr_wbuf *w, uint64_t lsn,
			     const void *payload, size_t len);

/* ========================================================================
 * Wire codec (docs/wire.md)
 *
 * Every frame: a 24-byte header — magic "FRSH" (u32 0x48535246), format
 * version u16, frame type u16, total length u32 (header + payload),
 * reserved u32 (0), XXH3-64 of the payload — then the payload.
 * ===================================================================== */
#define SHARD_FRAME_MAGIC 0x48535246u   /* "FRSH" little-endian */
#define SHARD_FRAME_VERSION 1
#define SHARD_FRAME_HDR_BYTES 24
#define SHARD_FRAME_MAX_DEFAULT (64u << 20)

struct shard_frame_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t length;       /* whole frame, header included */
	uint32_t reserved;
	uint64_t checksum;     /* XXH3-64 of the payload */
};

/* Frame types owned by shard/; gossip/ and node/ add theirs from 0x100. */
enum shard_frame_type {
	SHARD_FRAME_BATCH = 1,
};

/* Write a frame header + payload into w; FR_ERR_TOOBIG when the frame
 * would exceed max_frame (0: SHARD_FRAME_MAX_DEFAULT).  payload is
 * borrowed and must not point inside w: making room may move w's bytes
 * before they are copied. */
enum fr_err shard_frame_encode(struct fr_wbuf *w, uint16_t type,
			       const void *payload, size_t len,
			       uint32_t max_frame);
/* Fill in the header of a frame whose payload is already in place, for
 * encoders that build a payload in the output buffer: frame points at
 * SHARD_FRAME_HDR_BYTES reserved bytes followed by len payload bytes.
 * Writes magic, version, type, length and the checksum.  FR_ERR_TOOBIG
 * past max_frame (0: SHARD_FRAME_MAX_DEFAULT), nothing written then. */
enum fr_err shard_frame_seal(uint8_t *frame, uint16_t type, size_t len,
			     uint32_t max_frame);
/* Parse and check a header only (magic, version, length bounds against
 * max_frame).  FR_ERR_TRUNC when fewer than 24 bytes; the detail names the
 * bad field. */
enum fr_err shard_frame_peek(const uint8_t *buf, size_t len,
			     uint32_t max_frame, struct shard_frame_hdr *h);
/* Check a whole frame (header as peek, then length == h.length available
 * and the checksum) and point at its payload. */
enum fr_err shard_frame_decode(const uint8_t *buf, size_t len,
			       uint32_t max_frame, struct shard_frame_hdr *h,
			       const uint8_t **payload, size_t *plen);

/* Row batch payload (SHARD_FRAME_BATCH).  The model name travels with it
 * so a receiver can check it is talking about the same model; dtype and
 * dim so it can check the schema.  Encoding appends to w. */
struct shard_batch_hdr {
	char model[SHARD_NAME_MAX + 1];
	enum shard_dtype dtype;
	uint32_t dim;
};

enum fr_err shard_batch_encode(struct fr_wbuf *w,
			       const struct shard_batch_hdr *h,
			       const struct shard_batch *b);
/* A whole BATCH frame (header + payload) in one pass over the bytes. */
enum fr_err shard_batch_frame_encode(struct fr_wbuf *w,
				     const struct shard_batch_hdr *h,
				     const struct shard_batch *b,
				     uint32_t max_frame);

/* One piece of a frame to be gathered (struct iovec's shape, without
 * <sys/uio.h> in this header). */
struct shard_iov {
	const void *base;
	size_t len;
};

#define SHARD_BATCH_IOV_MAX 16
/* Frame header + fixed batch header (32) + name padded to 8 (<= 64) +
 * SHARD_VV_MAX covers of 16 bytes: 4,216 bytes. */
#define SHARD_BATCH_IOV_SCRATCH \
	(SHARD_FRAME_HDR_BYTES + 32 + (SHARD_NAME_MAX + 1) + SHARD_VV_MAX * 16)

/* Scatter-gather form of shard_batch_frame_encode, for writev() and
 * evbuffer_add_reference(): the same bytes on the wire, without copying
 * the rows.  Everything small (frame header, the batch's fixed header,
 * model name, covers) is written into scratch; iov[0 .. *niov) then lists
 * the frame in order: scratch, the batch's own row, version, origin,
 * significance and value arrays, and zero padding from a static buffer.
 * The XXH3-64 checksum is computed over those pieces as they lie.
 * Concatenated, the pieces are byte for byte what shard_batch_frame_encode
 * would append.
 *
 * Ownership: the iov borrows scratch and b's rows, versions, origins,
 * significance and values until the frame has been written out in full;
 * none of them may change or be freed before that, or the peer gets bytes
 * that fail the checksum.  h, b and b->covers are only read during the
 * call (covers are copied into scratch, with their padding zeroed).
 * Errors as shard_batch_frame_encode (FR_ERR_INVAL for a bad h or b,
 * FR_ERR_TOOBIG past max_frame, 0: SHARD_FRAME_MAX_DEFAULT); on error
 * *niov is 0.  At most SHARD_BATCH_IOV_MAX pieces (9 today), none empty.
 * No shared state: any thread. */
enum fr_err shard_batch_frame_encode_iov(
	uint8_t scratch[SHARD_BATCH_IOV_SCRATCH],
	const struct shard_batch_hdr *h, const struct shard_batch *b,
	uint32_t max_frame, struct shard_iov iov[SHARD_BATCH_IOV_MAX],
	unsigned *niov);

/* Decode a batch payload without copying: b's arrays point into payload,
 * which must stay alive and 8-byte aligned.  Every count is checked
 * against the bytes present before use. */
enum fr_err shard_batch_decode(const uint8_t *payload, size_t len,
			       struct shard_batch_hdr *h,
			       struct shard_batch *b);

#endif /* FRESHET_SHARD_H */
