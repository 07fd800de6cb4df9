/*
 * bench_store.c — what the changed-rows index buys: "rows changed since
 * V" answered from the index (shard_store_changes_since) against the
 * full-shard scan baseline (shard_store_changes_scan), in the same run on
 * the same store.
 *
 * One table of 1,048,576 rows x 64 f32 (256 MiB) in 64 shards of 16,384
 * rows.  Every row is written once at a base version from origin 1 and V
 * is taken; then a growing fraction f of the rows (0.1 %, 1 %, 10 %, 100 %,
 * each set containing the previous one) gets newer versions from origins 1
 * and 2, in batches of up to 256 rows of one shard sharing a version, as
 * publishes arrive.  For each f both queries run over all 64 shards,
 * several times; the table shows the median per-shard query time and the
 * rows returned, the last line is one JSON object.  Nothing is asserted
 * here except that both paths return the same rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/shard.h"

#define ROWS (1u << 20)
#define DIM 64u
#define SHARDS 64u
#define BATCH 256u
#define REPS 7

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Apply rows (all of one shard, sorted) at one version from one origin,
 * with the matching cover. */
static void apply_batch(struct shard_store *st, uint32_t shard,
			const uint64_t *rows, uint32_t n, uint64_t version,
			uint32_t origin, const float *vals)
{
	static uint64_t vers[BATCH];
	static uint32_t orgs[BATCH];
	struct shard_vv_ent cover = { origin, version };
	struct shard_batch b = {
		.table = 0, .shard = shard, .n = n, .rows = rows,
		.versions = vers, .origins = orgs, .values = vals,
		.ncovers = 1, .covers = &cover,
	};
	enum fr_err err;

	for (uint32_t i = 0; i < n; i++) {
		vers[i] = version;
		orgs[i] = origin;
	}
	err = shard_store_apply(st, &b, NULL, NULL);
	if (err) {
		fprintf(stderr, "bench_store: apply: %s: %s\n",
			fr_strerror(err), fr_errmsg());
		exit(1);
	}
}

/* One sweep over every shard; returns ns and the rows returned. */
static uint64_t sweep(const struct shard_store *st, struct shard_vv *since,
		      bool scan, struct shard_changes *out, uint64_t *nrows,
		      uint32_t *nfull)
{
	uint64_t t0 = fr_mono_ns(), n = 0;

	*nfull = 0;
	for (uint32_t s = 0; s < SHARDS; s++) {
		enum fr_err err = scan ?
			shard_store_changes_scan(st, 0, s, &since[s], out) :
			shard_store_changes_since(st, 0, s, &since[s], out);

		if (err) {
			fprintf(stderr, "bench_store: query: %s\n",
				fr_strerror(err));
			exit(1);
		}
		n += out->n;
		*nfull += out->full_scan;
	}
	*nrows = n;
	return fr_mono_ns() - t0;
}

int main(void)
{
	static const double fracs[] = { 0.001, 0.01, 0.1, 1.0 };
	struct shard_model_def d;
	struct shard_store_opts opts = { 0 };   /* default index, no undo */
	struct shard_store *st;
	struct shard_vv since[SHARDS];
	struct shard_changes out;
	uint64_t *perm, *bysh[SHARDS], nsh[SHARDS];
	uint64_t version = 1000, done = 0, t0, fill_ns;
	float *vals;
	enum fr_err err;
	char json[2048];
	size_t jl;

	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "bench");
	d.shards = SHARDS;
	d.ntables = 1;
	snprintf(d.tables[0].name, sizeof(d.tables[0].name), "emb");
	d.tables[0].rows = ROWS;
	d.tables[0].dim = DIM;
	d.tables[0].dtype = SHARD_F32;
	st = shard_store_new(&d, &opts, &err);
	vals = malloc((size_t)BATCH * DIM * sizeof(float));
	perm = malloc((size_t)ROWS * sizeof(*perm));
	if (!st || !vals || !perm) {
		fprintf(stderr, "bench_store: setup: %s: %s\n",
			fr_strerror(err), fr_errmsg());
		return 1;
	}
	for (uint32_t i = 0; i < BATCH * DIM; i++)
		vals[i] = (float)i * 0.001f;
	for (uint32_t s = 0; s < SHARDS; s++) {
		bysh[s] = malloc((size_t)(ROWS / SHARDS) * sizeof(uint64_t));
		if (!bysh[s])
			return 1;
	}

	/* Fill every row at the base version from origin 1. */
	t0 = fr_mono_ns();
	for (uint32_t s = 0; s < SHARDS; s++) {
		uint64_t rows[BATCH];

		for (uint32_t k = 0; k < ROWS / SHARDS; k += BATCH) {
			for (uint32_t i = 0; i < BATCH; i++)
				rows[i] = s + (uint64_t)(k + i) * SHARDS;
			apply_batch(st, s, rows, BATCH, version, 1, vals);
		}
	}
	fill_ns = fr_mono_ns() - t0;
	for (uint32_t s = 0; s < SHARDS; s++) {
		shard_vv_init(&since[s]);
		shard_vv_copy(&since[s], shard_store_vv(st, 0, s));
	}
	/* A fixed random order of rows: the first f*ROWS change. */
	for (uint64_t i = 0; i < ROWS; i++)
		perm[i] = i;
	for (uint64_t i = ROWS - 1; i > 0; i--) {
		uint64_t j = rng() % (i + 1), x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}

	shard_changes_init(&out);
	printf("bench_store: %u rows x %u f32 in %u shards; fill %.1f ns/row (first touch of the pages included)\n",
	       ROWS, DIM, SHARDS, (double)fill_ns / ROWS);
	printf("%10s %12s %14s %14s %10s %6s\n", "changed", "rows", "since ns/q",
	       "scan ns/q", "scan/since", "full");
	jl = (size_t)snprintf(json, sizeof(json),
			      "{\"bench\":\"store\",\"rows\":%u,\"dim\":%u,\"shards\":%u,\"results\":[",
			      ROWS, DIM, SHARDS);
	for (size_t fi = 0; fi < sizeof(fracs) / sizeof(fracs[0]); fi++) {
		uint64_t upto = (uint64_t)(fracs[fi] * ROWS + 0.5);
		double since_ns[REPS], scan_ns[REPS], ms, mc;
		uint64_t n_since = 0, n_scan = 0;
		uint32_t full_since = 0, full_scan;

		/* Group the newly changed rows by shard, sorted, and apply
		 * them in batches, alternating origins. */
		memset(nsh, 0, sizeof(nsh));
		for (uint64_t i = done; i < upto; i++) {
			uint32_t s = (uint32_t)(perm[i] % SHARDS);

			bysh[s][nsh[s]++] = perm[i];
		}
		for (uint32_t s = 0; s < SHARDS; s++) {
			qsort(bysh[s], nsh[s], sizeof(uint64_t), cmp_u64);
			for (uint64_t k = 0; k < nsh[s]; k += BATCH) {
				uint32_t n = nsh[s] - k < BATCH ?
					     (uint32_t)(nsh[s] - k) : BATCH;

				version++;
				apply_batch(st, s, bysh[s] + k, n, version,
					    1 + (uint32_t)(version & 1), vals);
			}
		}
		done = upto;

		for (int r = 0; r < REPS; r++) {
			since_ns[r] = (double)sweep(st, since, false, &out,
						    &n_since, &full_since) /
				      SHARDS;
			scan_ns[r] = (double)sweep(st, since, true, &out,
						   &n_scan, &full_scan) /
				     SHARDS;
		}
		if (n_since != n_scan || n_since != upto) {
			fprintf(stderr,
				"bench_store: since returned %llu rows, scan %llu, expected %llu\n",
				(unsigned long long)n_since,
				(unsigned long long)n_scan,
				(unsigned long long)upto);
			return 1;
		}
		qsort(since_ns, REPS, sizeof(double), cmp_double);
		qsort(scan_ns, REPS, sizeof(double), cmp_double);
		ms = since_ns[REPS / 2];
		mc = scan_ns[REPS / 2];
		printf("%9.1f%% %12llu %14.0f %14.0f %10.1f %6u\n",
		       fracs[fi] * 100, (unsigned long long)n_since, ms, mc,
		       mc / ms, full_since);
		jl += (size_t)snprintf(json + jl, sizeof(json) - jl,
				       "%s{\"changed_frac\":%g,\"rows_returned\":%llu,\"since_ns\":%.0f,\"scan_ns\":%.0f,\"ratio_scan_over_since\":%.2f}",
				       fi ? "," : "", fracs[fi],
				       (unsigned long long)n_since, ms, mc,
				       mc / ms);
	}
	snprintf(json + jl, sizeof(json) - jl, "]}");
	printf("%s\n", json);

	shard_changes_fini(&out);
	for (uint32_t s = 0; s < SHARDS; s++) {
		shard_vv_fini(&since[s]);
		free(bysh[s]);
	}
	free(perm);
	free(vals);
	shard_store_free(st);
	return 0;
}
