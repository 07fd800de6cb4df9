/*
 * shard_testutil.h — fixtures the shard store suites (test_shard_store.c,
 * test_shard_undo.c) share: a one-table model definition, a store built
 * from it, the value a write carries, the order of changes_since output,
 * a byte-and-version comparison of two stores, the temp dir their
 * snapshots are written to, and their main().
 *
 * Not here: anything one suite alone uses (batch builders, histories,
 * rollback references stay in their suite), or general helpers (rng,
 * errmsg_has: testutil.h, included from here).  Header-only, static
 * inline: each suite stays a single source file.
 */
#ifndef FRESHET_TEST_SHARD_TESTUTIL_H
#define FRESHET_TEST_SHARD_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <CUnit/CUnit.h>
#include <xxhash.h>

#include "shard/shard.h"
#include "testutil.h"
#include "unit_main.h"

/* Model "m" with one f32 table "t" of rows x dim over `shards` shards. */
static inline void make_def(struct shard_model_def *d, uint64_t rows,
			    uint32_t dim, uint32_t shards)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "m");
	d->shards = shards;
	d->ntables = 1;
	snprintf(d->tables[0].name, sizeof(d->tables[0].name), "t");
	d->tables[0].rows = rows;
	d->tables[0].dim = dim;
	d->tables[0].dtype = SHARD_F32;
}

/* A store for d that must build (a fatal assertion otherwise). */
static inline struct shard_store *new_store(const struct shard_model_def *d,
					    uint32_t index_cap, uint64_t undo)
{
	struct shard_store_opts o = {
		.index_cap = index_cap, .undo_bytes_per_shard = undo,
	};
	enum fr_err err;
	struct shard_store *st = shard_store_new(d, &o, &err);

	CU_ASSERT_EQUAL_FATAL(err, FR_OK);
	CU_ASSERT_FATAL(st != NULL);
	return st;
}

/* The value a write (row, version, origin) carries: a function of the
 * write, so equal bytes mean the same write won.  `step` is added per
 * element index; each suite keeps the one its expectations were written
 * with (test_shard_store.c 0.25, test_shard_undo.c 0.5). */
static inline void fill_value(float *v, uint32_t dim, uint64_t row,
			      uint64_t ver, uint32_t org, float step)
{
	uint64_t h = XXH3_64bits_withSeed(&row, 8, ver * 1000003u + org);

	for (uint32_t j = 0; j < dim; j++)
		v[j] = (float)((h >> (j % 48)) & 0xffff) + (float)j * step;
}

/* qsort order of struct shard_change: origin, then version, then row —
 * the order shard_store_changes_since promises. */
static inline int cmp_change(const void *a, const void *b)
{
	const struct shard_change *x = a, *y = b;

	if (x->origin != y->origin)
		return x->origin < y->origin ? -1 : 1;
	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

/* Table 0 of a and b (same definition) holds the same bytes, the same
 * (version, origin) per row and the same checksum. */
static inline bool same_rows(const struct shard_store *a,
			     const struct shard_store *b)
{
	const struct shard_model_def *d = shard_store_def(a);
	size_t bytes = d->tables[0].rows * shard_row_bytes(&d->tables[0]);

	if (memcmp(shard_store_table_data(a, 0), shard_store_table_data(b, 0),
		   bytes) != 0)
		return false;
	for (uint64_t r = 0; r < d->tables[0].rows; r++) {
		uint64_t va, vb;
		uint32_t oa, ob;

		shard_store_row_version(a, 0, r, &va, &oa);
		shard_store_row_version(b, 0, r, &vb, &ob);
		if (va != vb || oa != ob)
			return false;
	}
	return shard_store_table_checksum(a, 0) ==
	       shard_store_table_checksum(b, 0);
}

/* A new empty dir <$FRESHET_TEST_TMP or /tmp>/<prefix>.XXXXXX, its path
 * in dir (cap bytes); a fatal assertion when it cannot be made.  The
 * suite removes it (rmdir) once its files are gone. */
static inline void make_tmpdir(char *dir, size_t cap, const char *prefix)
{
	const char *base = getenv("FRESHET_TEST_TMP");

	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(dir, cap, "%s/%s.XXXXXX", base, prefix);
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
}

/* A shard suite's main(): seed the suite's own random stream (rng_state),
 * then run tests as fr_unit_main does. */
static inline int shard_suite_main(const char *name, uint64_t seed,
				   const struct fr_unit_test *tests, size_t n)
{
	rng_state = seed;
	return fr_unit_main(name, NULL, NULL, tests, n);
}

#endif /* FRESHET_TEST_SHARD_TESTUTIL_H */
