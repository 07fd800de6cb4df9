/*
 * baseline.c — the lag buffer of a node serving a model as its baseline
 * (docs/design.md §6; the contract is in baseline.h).
 *
 * Rows that won in the host store wait here, in a binary min-heap ordered
 * by (version, table, row), until the physical part of their version is
 * at least lag_ms old; node_baseline_release then pops them in version order
 * and hands them to the table backend in runs of one table.  Beside the
 * heap, every table has an array with the version the backend serves for
 * each row, so that a value the caller already wrote (a rollback's
 * restore, a catch-up, a rebuild) is never overwritten by an older one
 * from the queue.
 *
 * The buffer is bounded in bytes.  A row that does not fit is left out
 * and the buffer is "overflowed": the cut freezes (it can only go down,
 * when a row older than it is left out or queued) until the caller has
 * caught up from its store; the state machine is
 *
 *     NORMAL --push does not fit / NOMEM--> OVERFLOWED (cut frozen)
 *     OVERFLOWED --push-->  OVERFLOWED (more left out, newest tracked)
 *     OVERFLOWED --node_baseline_catchup_done, once due--> NORMAL
 *
 * Costs: push and each released row are O(log n); revoke is O(n)
 * (filter, then rebuild the heap).  Each queued row is one heap node plus
 * one allocation for its value.
 *
 * Not here: the clock (every call takes now_ms), the backend, the store
 * copy of a catch-up (node.c does both); no I/O, one thread (the loop).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "node/baseline.h"
#include "shard/shard.h"

/* A queued row: the heap's key inline (no pointer chase to compare) and
 * its value in an allocation of its own. */
struct bl_node {
	uint64_t version;
	uint64_t row;
	uint32_t table;
	unsigned char *value;   /* row_bytes[table] bytes, owned */
};

/* Bytes a queued row costs beyond its value: its heap node and an
 * allowance for the allocator's header of the value block. */
#define BL_MALLOC_OVERHEAD 16
#define BL_ENTRY_OVERHEAD (sizeof(struct bl_node) + BL_MALLOC_OVERHEAD)

/* A release run (one call of the release fn) holds at most this many
 * value bytes (at least one row) and rows: the scratch is bounded and
 * allocated once, so a release cannot fail half way. */
#define BL_RUN_BYTES (1u << 20)
#define BL_RUN_ROWS_MAX 4096u

/* The largest physical ms an HLC version can carry. */
#define BL_PHYS_MAX FR_HLC_PHYS(UINT64_MAX)

struct bl_table {
	uint64_t rows;
	size_t row_bytes;
	uint64_t *served;       /* rows entries: version the backend holds */
};

struct node_baseline {
	uint32_t ntables;
	struct bl_table *tables;
	uint64_t lag_ms;
	uint64_t max_bytes;

	struct bl_node *heap;
	size_t len, cap;
	uint64_t queued_bytes;

	/* Overflow: newest version left out, the frozen cut, and the cut at
	 * the last release (a lower bound of the true cut until the next). */
	bool overflowed;
	uint64_t newest_left_out;
	uint64_t frozen_cut;
	uint64_t last_cut;

	/* Release scratch: one run of up to run_cap rows of one table. */
	uint32_t run_cap;
	uint64_t *run_rows;
	uint64_t *run_versions;
	unsigned char *run_values;

	uint64_t released_rows, revoked_rows, overflow_rows, overflows;
	uint64_t catchups;
};

/* ========================================================================
 * Heap
 * ===================================================================== */

static bool node_less(const struct bl_node *a, const struct bl_node *b)
{
	if (a->version != b->version)
		return a->version < b->version;
	if (a->table != b->table)
		return a->table < b->table;
	return a->row < b->row;
}

static void heap_sift_up(struct bl_node *h, size_t i)
{
	struct bl_node x = h[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!node_less(&x, &h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = x;
}

static void heap_sift_down(struct bl_node *h, size_t len, size_t i)
{
	struct bl_node x = h[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= len)
			break;
		if (c + 1 < len && node_less(&h[c + 1], &h[c]))
			c++;
		if (!node_less(&h[c], &x))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

/* Remove the top into *out; the heap must not be empty. */
static void heap_pop(struct node_baseline *bl, struct bl_node *out)
{
	*out = bl->heap[0];
	bl->len--;
	if (bl->len > 0) {
		bl->heap[0] = bl->heap[bl->len];
		heap_sift_down(bl->heap, bl->len, 0);
	}
}

static void heapify(struct node_baseline *bl)
{
	for (size_t i = bl->len / 2; i-- > 0;)
		heap_sift_down(bl->heap, bl->len, i);
}

static bool heap_reserve_one(struct node_baseline *bl)
{
	struct bl_node *h;
	size_t cap;

	if (bl->len < bl->cap)
		return true;
	cap = bl->cap ? bl->cap * 2 : 64;
	if (cap > SIZE_MAX / sizeof(*h))
		return false;
	h = realloc(bl->heap, cap * sizeof(*h));
	if (!h)
		return false;
	bl->heap = h;
	bl->cap = cap;
	return true;
}

/* ========================================================================
 * Cuts
 * ===================================================================== */

/* The newest HLC version whose physical time is <= now - lag; 0 while
 * now < lag. */
static uint64_t horizon_version(const struct node_baseline *bl, uint64_t now_ms)
{
	uint64_t ms;

	if (now_ms < bl->lag_ms)
		return 0;
	ms = now_ms - bl->lag_ms;
	if (ms > BL_PHYS_MAX)
		ms = BL_PHYS_MAX;
	return FR_HLC_MAKE(ms, 0xffff);
}

/* Is a version's physical time <= now - lag (due for release)? */
static bool is_due(const struct node_baseline *bl, uint64_t version,
		   uint64_t now_ms)
{
	return now_ms >= bl->lag_ms &&
	       FR_HLC_PHYS(version) <= now_ms - bl->lag_ms;
}

/* The oldest queued version - 1 (0 for a queued version 0), or
 * UINT64_MAX with nothing queued. */
static uint64_t queue_bound(const struct node_baseline *bl)
{
	if (bl->len == 0)
		return UINT64_MAX;
	return bl->heap[0].version ? bl->heap[0].version - 1 : 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t node_baseline_cut(const struct node_baseline *bl, uint64_t now_ms)
{
	uint64_t c = min_u64(horizon_version(bl, now_ms), queue_bound(bl));

	/* The horizon stays in the min while overflowed: the frozen cut
	 * was taken at an earlier now, but the wall clock may step back. */
	if (bl->overflowed)
		c = min_u64(c, bl->frozen_cut);
	return c;
}

/* ========================================================================
 * Life cycle
 * ===================================================================== */

struct node_baseline *node_baseline_new(uint32_t ntables, const uint64_t *rows,
			      const size_t *row_bytes, uint64_t lag_ms,
			      uint64_t max_bytes, enum fr_err *err)
{
	struct node_baseline *bl;
	size_t max_row = 0;
	uint64_t run_cap;
	enum fr_err e = FR_ERR_NOMEM;

	if (ntables < 1 || ntables > SHARD_TABLES_MAX) {
		e = fr_fail(FR_ERR_INVAL, "baseline: ntables %u must be in "
			    "1..%u", ntables, (unsigned)SHARD_TABLES_MAX);
		goto out;
	}
	if (!rows || !row_bytes) {
		e = fr_fail(FR_ERR_INVAL, "baseline: rows and row_bytes must "
			    "not be NULL");
		goto out;
	}
	if (lag_ms < 1 || lag_ms > BL_PHYS_MAX) {
		e = fr_fail(FR_ERR_INVAL, "baseline: lag_ms %llu must be in "
			    "1..%llu", (unsigned long long)lag_ms,
			    (unsigned long long)BL_PHYS_MAX);
		goto out;
	}
	if (max_bytes < 1) {
		e = fr_fail(FR_ERR_INVAL, "baseline: max_bytes must be >= 1");
		goto out;
	}
	for (uint32_t t = 0; t < ntables; t++) {
		if (rows[t] < 1 || rows[t] > SIZE_MAX / sizeof(uint64_t)) {
			e = fr_fail(FR_ERR_INVAL, "baseline: table %u: rows "
				    "%llu must be in 1..%llu", t,
				    (unsigned long long)rows[t],
				    (unsigned long long)(SIZE_MAX /
							 sizeof(uint64_t)));
			goto out;
		}
		if (row_bytes[t] < 1 || row_bytes[t] > BL_RUN_BYTES) {
			e = fr_fail(FR_ERR_INVAL, "baseline: table %u: "
				    "row_bytes %zu must be in 1..%u", t,
				    row_bytes[t], (unsigned)BL_RUN_BYTES);
			goto out;
		}
		if (row_bytes[t] > max_row)
			max_row = row_bytes[t];
	}

	bl = calloc(1, sizeof(*bl));
	if (!bl)
		goto out_nomem;
	bl->ntables = ntables;
	bl->lag_ms = lag_ms;
	bl->max_bytes = max_bytes;
	bl->tables = calloc(ntables, sizeof(*bl->tables));
	if (!bl->tables)
		goto out_free_bl;
	for (uint32_t t = 0; t < ntables; t++) {
		struct bl_table *tb = &bl->tables[t];

		tb->rows = rows[t];
		tb->row_bytes = row_bytes[t];
		/* calloc maps zero pages: a big table costs memory only
		 * where rows are ever served. */
		tb->served = calloc((size_t)rows[t], sizeof(uint64_t));
		if (!tb->served)
			goto out_free_bl;
	}
	run_cap = BL_RUN_BYTES / max_row;
	if (run_cap > BL_RUN_ROWS_MAX)
		run_cap = BL_RUN_ROWS_MAX;
	bl->run_cap = (uint32_t)run_cap;
	bl->run_rows = malloc(run_cap * sizeof(uint64_t));
	bl->run_versions = malloc(run_cap * sizeof(uint64_t));
	bl->run_values = malloc(run_cap * max_row);
	if (!bl->run_rows || !bl->run_versions || !bl->run_values)
		goto out_free_bl;
	*err = FR_OK;
	return bl;

out_free_bl:
	node_baseline_free(bl);
out_nomem:
	e = fr_fail(FR_ERR_NOMEM, "baseline: out of memory for %u tables",
		    ntables);
out:
	*err = e;
	return NULL;
}

void node_baseline_free(struct node_baseline *bl)
{
	if (!bl)
		return;
	for (size_t i = 0; i < bl->len; i++)
		free(bl->heap[i].value);
	free(bl->heap);
	if (bl->tables)
		for (uint32_t t = 0; t < bl->ntables; t++)
			free(bl->tables[t].served);
	free(bl->tables);
	free(bl->run_rows);
	free(bl->run_versions);
	free(bl->run_values);
	free(bl);
}

/* ========================================================================
 * Push
 * ===================================================================== */

/* Count a row that was not queued; the first one freezes the cut. */
static void left_out(struct node_baseline *bl, uint64_t version)
{
	if (!bl->overflowed) {
		bl->overflowed = true;
		bl->overflows++;
		bl->newest_left_out = version;
		bl->frozen_cut = min_u64(bl->last_cut, queue_bound(bl));
		fr_log(FR_LOG_WARN, "baseline", "lag buffer full (%llu rows, "
		       "%llu of %llu bytes): rows are left out and the cut "
		       "stays at %llu until a catch-up from the store",
		       (unsigned long long)bl->len,
		       (unsigned long long)bl->queued_bytes,
		       (unsigned long long)bl->max_bytes,
		       (unsigned long long)bl->frozen_cut);
	}
	bl->overflow_rows++;
	if (version > bl->newest_left_out)
		bl->newest_left_out = version;
	/* A row older than the cut is missing from what is served. */
	bl->frozen_cut = min_u64(bl->frozen_cut, version ? version - 1 : 0);
}

enum fr_err node_baseline_push(struct node_baseline *bl, uint32_t table,
			  const uint64_t *rows, const uint64_t *versions,
			  const void *values, uint32_t n)
{
	const unsigned char *src = values;
	struct bl_table *tb;
	uint64_t cost;
	enum fr_err ret = FR_OK;

	if (n == 0)
		return FR_OK;
	if (!rows || !versions || !values)
		return fr_fail(FR_ERR_INVAL, "baseline push: rows, versions "
			       "and values must not be NULL");
	if (table >= bl->ntables)
		return fr_fail(FR_ERR_RANGE, "baseline push: table %u out of "
			       "range (model has %u)", table, bl->ntables);
	tb = &bl->tables[table];
	for (uint32_t i = 0; i < n; i++)
		if (rows[i] >= tb->rows)
			return fr_fail(FR_ERR_RANGE, "baseline push: table %u: "
				       "row %llu out of range (rows %llu)",
				       table, (unsigned long long)rows[i],
				       (unsigned long long)tb->rows);
	cost = tb->row_bytes + BL_ENTRY_OVERHEAD;

	for (uint32_t i = 0; i < n; i++) {
		struct bl_node *nd;
		unsigned char *v;

		/* Already served at this version or newer: nothing to do. */
		if (tb->served[rows[i]] >= versions[i])
			continue;
		if (bl->queued_bytes + cost > bl->max_bytes) {
			left_out(bl, versions[i]);
			continue;
		}
		v = malloc(tb->row_bytes);
		if (!v || !heap_reserve_one(bl)) {
			free(v);
			left_out(bl, versions[i]);
			ret = fr_fail(FR_ERR_NOMEM, "baseline push: table %u: "
				      "out of memory queueing a row", table);
			continue;
		}
		memcpy(v, src + (size_t)i * tb->row_bytes, tb->row_bytes);
		nd = &bl->heap[bl->len];
		nd->version = versions[i];
		nd->row = rows[i];
		nd->table = table;
		nd->value = v;
		heap_sift_up(bl->heap, bl->len);
		bl->len++;
		bl->queued_bytes += cost;
	}
	return ret;
}

/* ========================================================================
 * Release
 * ===================================================================== */

uint64_t node_baseline_release(struct node_baseline *bl, uint64_t now_ms,
			  node_baseline_release_fn fn, void *arg)
{
	uint64_t released = 0;
	uint32_t run_n = 0, run_table = 0;
	size_t run_rb = 0;

	assert(fn != NULL);
	while (bl->len > 0 && is_due(bl, bl->heap[0].version, now_ms)) {
		struct bl_node nd;
		struct bl_table *tb;

		heap_pop(bl, &nd);
		tb = &bl->tables[nd.table];
		bl->queued_bytes -= tb->row_bytes + BL_ENTRY_OVERHEAD;
		if (tb->served[nd.row] >= nd.version) {
			free(nd.value);
			continue;
		}
		if (run_n > 0 && (nd.table != run_table ||
				  run_n == bl->run_cap)) {
			fn(run_table, bl->run_rows, bl->run_versions,
			   bl->run_values, run_n, arg);
			released += run_n;
			run_n = 0;
		}
		if (run_n == 0) {
			run_table = nd.table;
			run_rb = tb->row_bytes;
		}
		bl->run_rows[run_n] = nd.row;
		bl->run_versions[run_n] = nd.version;
		memcpy(bl->run_values + (size_t)run_n * run_rb, nd.value,
		       run_rb);
		run_n++;
		free(nd.value);
		/* A run may hold one row twice (older first); the backend
		 * keeps the higher version, and so does this array. */
		tb->served[nd.row] = nd.version;
	}
	if (run_n > 0) {
		fn(run_table, bl->run_rows, bl->run_versions, bl->run_values,
		   run_n, arg);
		released += run_n;
	}
	bl->released_rows += released;
	bl->last_cut = min_u64(horizon_version(bl, now_ms), queue_bound(bl));
	return released;
}

/* ========================================================================
 * Revoke, served versions, catch-up, stats
 * ===================================================================== */

void node_baseline_revoke(struct node_baseline *bl, uint64_t t, uint64_t r)
{
	size_t k = 0;
	uint64_t dropped = 0;

	if (t >= r)
		return;
	for (size_t i = 0; i < bl->len; i++) {
		struct bl_node *nd = &bl->heap[i];

		if (nd->version > t && nd->version <= r) {
			bl->queued_bytes -= bl->tables[nd->table].row_bytes +
					    BL_ENTRY_OVERHEAD;
			free(nd->value);
			dropped++;
			continue;
		}
		bl->heap[k++] = *nd;
	}
	bl->len = k;
	heapify(bl);
	bl->revoked_rows += dropped;
	if (dropped)
		fr_log(FR_LOG_INFO, "baseline", "rollback (%llu, %llu]: "
		       "dropped %llu queued rows", (unsigned long long)t,
		       (unsigned long long)r, (unsigned long long)dropped);
}

void node_baseline_note_served(struct node_baseline *bl, uint32_t table,
			  const uint64_t *rows, const uint64_t *versions,
			  uint32_t n)
{
	struct bl_table *tb;
	uint32_t bad = 0;

	if (n == 0)
		return;
	if (table >= bl->ntables || !rows || !versions) {
		fr_log(FR_LOG_WARN, "baseline", "note_served: table %u out of "
		       "range (model has %u) or no rows; %u rows ignored",
		       table, bl->ntables, n);
		return;
	}
	tb = &bl->tables[table];
	for (uint32_t i = 0; i < n; i++) {
		if (rows[i] >= tb->rows) {
			bad++;
			continue;
		}
		tb->served[rows[i]] = versions[i];
	}
	if (bad)
		fr_log(FR_LOG_WARN, "baseline", "note_served: table %u: %u "
		       "row ids out of range (rows %llu) ignored", table, bad,
		       (unsigned long long)tb->rows);
}

uint64_t node_baseline_served_version(const struct node_baseline *bl, uint32_t table,
				 uint64_t row)
{
	if (table >= bl->ntables || row >= bl->tables[table].rows)
		return 0;
	return bl->tables[table].served[row];
}

bool node_baseline_catchup_due(const struct node_baseline *bl, uint64_t now_ms)
{
	return bl->overflowed && is_due(bl, bl->newest_left_out, now_ms);
}

uint64_t node_baseline_catchup_cut(const struct node_baseline *bl, uint64_t now_ms)
{
	return horizon_version(bl, now_ms);
}

void node_baseline_catchup_done(struct node_baseline *bl, uint64_t now_ms)
{
	if (!node_baseline_catchup_due(bl, now_ms)) {
		/* Ending the overflow now would lose the rows left out that
		 * the catch-up cut does not reach yet. */
		fr_log(FR_LOG_WARN, "baseline", "catch-up done at %llu ms "
		       "while none is due (overflowed %d, newest left out "
		       "%llu): ignored", (unsigned long long)now_ms,
		       (int)bl->overflowed,
		       (unsigned long long)bl->newest_left_out);
		return;
	}
	bl->overflowed = false;
	bl->newest_left_out = 0;
	bl->frozen_cut = 0;
	bl->catchups++;
	bl->last_cut = min_u64(horizon_version(bl, now_ms), queue_bound(bl));
	fr_log(FR_LOG_INFO, "baseline", "caught up from the store to %llu; "
	       "overflow over", (unsigned long long)node_baseline_catchup_cut(bl,
								       now_ms));
}

void node_baseline_get_stats(const struct node_baseline *bl, struct node_baseline_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->queued_rows = bl->len;
	out->queued_bytes = bl->queued_bytes;
	out->max_bytes = bl->max_bytes;
	out->released_rows = bl->released_rows;
	out->revoked_rows = bl->revoked_rows;
	out->overflow_rows = bl->overflow_rows;
	out->overflows = bl->overflows;
	out->catchups = bl->catchups;
	out->overflowed = bl->overflowed;
	out->lag_ms = bl->lag_ms;
}
