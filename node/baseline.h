/*
 * baseline.h — the lag buffer of a node serving a model as its baseline
 * (docs/design.md §6).  Private to node/ (node_int.h's files and their tests).
 *
 * A baseline takes part in dissemination like any replica: its host store
 * is current, so peers can pull from it and its vectors mean what they
 * mean everywhere.  Only what it *serves* lags: rows that won in the store
 * are not mirrored into the table backend at once but queued here, and
 * released to the backend once their version is older than the lag
 * (physical part of the HLC version <= now - lag).  The baseline's cut is
 * then "every update with a version <= cut is served, none newer".
 *
 * The queue is bounded in bytes.  A row that does not fit is left out
 * (counted) and the buffer becomes "overflowed"; rows are queued again as
 * soon as there is room.  Once the lag has passed the newest row left
 * out, the baseline catches up from its host store, which holds every
 * row (node_baseline_catchup_due says when): every store row with a version
 * <= the catch-up cut that is newer than what is served is written to the
 * backend, and the overflow ends.  A left-out row is thereby either
 * served at the catch-up or superseded by a newer queued value; only
 * intermediate values of rows updated again meanwhile are skipped.
 * Nothing is dropped silently: while overflowed the cut stays at what it
 * was when the overflow began (a lower bound), and metrics and /status
 * say so.
 *
 * Pure data structure: no I/O, no clock of its own (every call takes
 * now_ms, wall-clock ms), one thread (the loop).
 */
#ifndef FRESHET_NODE_BASELINE_H
#define FRESHET_NODE_BASELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct node_baseline;

/* tables: how many tables the model has; rows[t] and row_bytes[t] give
 * each one's shape (for the served-version array kept per row).
 * 1 <= ntables <= 64, rows[t] >= 1, 1 <= row_bytes[t] <= 1 MiB,
 * lag_ms >= 1, max_bytes >= 1 (queued row values plus per-row overhead).
 * The served-version arrays (8 bytes a row) are allocated here, zeroed.
 * Borrows rows and row_bytes.  NULL + FR_ERR_INVAL (detail names the
 * argument) / FR_ERR_NOMEM in *err.  _free(NULL) does nothing. */
struct node_baseline *node_baseline_new(uint32_t ntables, const uint64_t *rows,
			      const size_t *row_bytes, uint64_t lag_ms,
			      uint64_t max_bytes, enum fr_err *err);
void node_baseline_free(struct node_baseline *bl);

/* Queue rows that won in the store (values: n * row_bytes[table], copied).
 * Rows that do not fit mark the buffer overflowed (see above); it never
 * fails otherwise except FR_ERR_NOMEM (also counted as overflow) and
 * FR_ERR_RANGE for a bad table or row id (nothing queued).  A row whose
 * served version is already >= its version is skipped (not queued, not
 * counted).  Each queued row costs row_bytes plus a fixed overhead
 * (visible in stats.queued_bytes). */
enum fr_err node_baseline_push(struct node_baseline *bl, uint32_t table,
			  const uint64_t *rows, const uint64_t *versions,
			  const void *values, uint32_t n);

/* Release, in version order, every queued row whose version's physical
 * time is <= now_ms - lag: fn (not NULL; it must not call back into bl)
 * is called with runs of rows of one table (rows, versions, values
 * contiguous; valid during the call; at most about 1 MiB of values per
 * run).  A row is released only if its version is newer than what the
 * backend serves for that row (node_baseline_served_version).  Two versions
 * of one row may share a run, older first: pass versions to the backend
 * so the higher one wins.  Returns rows released. */
typedef void (*node_baseline_release_fn)(uint32_t table, const uint64_t *rows,
				    const uint64_t *versions,
				    const void *values, uint32_t n, void *arg);
uint64_t node_baseline_release(struct node_baseline *bl, uint64_t now_ms,
			  node_baseline_release_fn fn, void *arg);

/* A rollback (t, r]: drop every queued row whose version is in (t, r]. */
void node_baseline_revoke(struct node_baseline *bl, uint64_t t, uint64_t r);

/* Rows the caller wrote to the backend directly (a rollback's restored
 * rows, a catch-up from the store, a rebuild): record their versions as
 * served so the queue never releases an older value over them.  The
 * version is set as given, so a rollback's restore may lower it.  Ids
 * out of range are ignored (logged).  served_version is 0 for a row never
 * served and for a bad id. */
void node_baseline_note_served(struct node_baseline *bl, uint32_t table,
			  const uint64_t *rows, const uint64_t *versions,
			  uint32_t n);
uint64_t node_baseline_served_version(const struct node_baseline *bl, uint32_t table,
				 uint64_t row);

/* The served cut at now_ms: the largest HLC version C such that every
 * queued-or-released row with version <= C has been released, and no
 * released row is newer than C — i.e. min(now - lag as an HLC version,
 * oldest queued version - 1).  While overflowed: the cut at the moment
 * the overflow began, taken as the cut at the last node_baseline_release
 * before it (it does not rise until the catch-up, and a row left out
 * with a version below it lowers it).  A row pushed late, with a version
 * below the cut, lowers the cut too until it is released: the cut is a
 * statement about the rows this node has been given. */
uint64_t node_baseline_cut(const struct node_baseline *bl, uint64_t now_ms);

/* Overflowed and the lag has passed the newest row left out: the caller
 * should now copy from its store every row with served version < store
 * version <= node_baseline_catchup_cut(now_ms) (passing them to
 * node_baseline_note_served) and then call node_baseline_catchup_done. */
bool node_baseline_catchup_due(const struct node_baseline *bl, uint64_t now_ms);
/* The cut a catch-up at now_ms brings the served tables to (every store
 * row with a version <= it should be served afterwards). */
uint64_t node_baseline_catchup_cut(const struct node_baseline *bl, uint64_t now_ms);
/* Ends the overflow; ignored (logged) unless node_baseline_catchup_due(now_ms),
 * since rows left out beyond the catch-up cut would then be lost. */
void node_baseline_catchup_done(struct node_baseline *bl, uint64_t now_ms);

struct node_baseline_stats {
	uint64_t queued_rows, queued_bytes, max_bytes;
	uint64_t released_rows;      /* total */
	uint64_t revoked_rows;       /* dropped by node_baseline_revoke */
	uint64_t overflow_rows;      /* rows left out while overflowed */
	uint64_t overflows;          /* times the buffer became overflowed */
	uint64_t catchups;
	bool overflowed;
	uint64_t lag_ms;
};
void node_baseline_get_stats(const struct node_baseline *bl, struct node_baseline_stats *out);

#endif /* FRESHET_NODE_BASELINE_H */
