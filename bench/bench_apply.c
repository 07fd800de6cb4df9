/*
 * bench_apply.c — how fast a table backend applies batches of rows at
 * random ids, against the limit that matters: a memcpy of the same number
 * of bytes into a contiguous region of the same table, in the same run.
 *
 * The default table is 1M rows of 64 floats (256 MiB), far past any cache,
 * so both sides are bound by DRAM writes and apply/memcpy says how much of
 * that bandwidth the scatter keeps.  Each sample writes rows not written
 * in the previous one (ids are a fresh partial shuffle; the memcpy region
 * rotates through the table).  Apply and memcpy samples take turns (in a
 * rotating order), so each ratio is taken between neighbours in time and
 * the median of those ratios is reported — this machine's neighbours move
 * DRAM bandwidth around more than the code does.
 *
 * Two applies are timed: with versions rising along the batch, as the
 * store produces them (no duplicate detection needed), and with versions
 * falling, which makes the backend look for repeated rows first.
 *
 * Output: a readable table, then one JSON line.
 *
 * What it is not: a lookup (gather) benchmark, or a test — it checks one
 * batch's bytes so that it never times a broken apply, nothing more.
 *
 * Usage: bench_apply [--backend cpu|cuda|auto] [--rows N] [--dim D] [--quick]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"

/* Bytes written per timed sample: well past the last-level cache, so a
 * memcpy pays for its own write-backs rather than leaving them to
 * whatever runs next. */
#define BENCH_SAMPLE_BYTES (128u << 20)

struct bench_opts {
	const char *backend;
	uint64_t rows;
	uint32_t dim;
	bool quick;
};

struct bench_result {
	size_t batch_bytes;
	size_t batch_rows;
	double apply_gbps;      /* versions in batch order (the store's) */
	double unordered_gbps;  /* versions falling: repeats are looked for */
	double memcpy_gbps;
	double ratio;           /* median of per-sample apply/memcpy */
	double ratio_unordered;
};

static const size_t bench_sizes[] = {
	64u << 10, 256u << 10, 1u << 20, 4u << 20, 16u << 20, 64u << 20,
};
#define BENCH_NSIZES (sizeof(bench_sizes) / sizeof(bench_sizes[0]))

static uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bench_usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--backend cpu|cuda|auto] [--rows N] [--dim D] [--quick]\n"
		"  --rows N   table rows (default 1048576)\n"
		"  --dim D    floats per row (default 64, i.e. 256-byte rows)\n"
		"  --quick    fewer samples per batch size\n",
		argv0);
	return 2;
}

static bool bench_parse_u64(const char *s, uint64_t min, uint64_t max,
			    uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int bench_parse(int argc, char **argv, struct bench_opts *o)
{
	uint64_t v;
	int i;

	o->backend = "cpu";
	o->rows = 1u << 20;
	o->dim = 64;
	o->quick = false;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--quick") == 0) {
			o->quick = true;
		} else if (strcmp(a, "--backend") == 0 && i + 1 < argc) {
			o->backend = argv[++i];
		} else if (strcmp(a, "--rows") == 0 && i + 1 < argc) {
			if (!bench_parse_u64(argv[++i], 1, 1ull << 40,
					     &o->rows)) {
				fprintf(stderr, "bench_apply: --rows: expected an integer in [1, 2^40], got '%s'\n",
					argv[i]);
				return 2;
			}
		} else if (strcmp(a, "--dim") == 0 && i + 1 < argc) {
			if (!bench_parse_u64(argv[++i], 1, 1u << 20, &v)) {
				fprintf(stderr, "bench_apply: --dim: expected an integer in [1, 1048576], got '%s'\n",
					argv[i]);
				return 2;
			}
			o->dim = (uint32_t)v;
		} else {
			return bench_usage(argv[0]);
		}
	}
	return 0;
}

/* Shuffle the first n entries of perm (a permutation of the table's
 * rows) so the next sample writes rows chosen afresh, none twice. */
static void bench_shuffle(uint64_t *perm, uint64_t rows, size_t n,
			  uint64_t *seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		size_t j = i + bench_rand(seed) % (rows - i);
		uint64_t x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
}

/* One timed sample of `calls` applies of batch_rows rows; bytes/ns. */
static double bench_apply_sample(struct gpu_table *t, const uint64_t *ids,
				 const uint64_t *vers, const void *vals,
				 size_t batch_rows, size_t calls, size_t rb,
				 int *failed)
{
	uint64_t t0 = fr_mono_ns(), t1;
	size_t c;

	for (c = 0; c < calls; c++) {
		enum fr_err e = gpu_apply(t, ids + c * batch_rows, vers, vals,
					  batch_rows);

		if (e) {
			fprintf(stderr, "bench_apply: apply: %s: %s\n",
				fr_strerror(e), fr_errmsg());
			*failed = 1;
			return 0;
		}
	}
	t1 = fr_mono_ns();
	return (double)(calls * batch_rows * rb) / (double)(t1 - t0 + 1);
}

/* One timed sample of the baseline: the same bytes, contiguous, at a
 * rotating offset so the destination is as cold as apply's rows. */
static double bench_memcpy_sample(uint8_t *table, size_t table_bytes,
				  size_t *off, const void *vals,
				  size_t batch_bytes, size_t calls)
{
	uint64_t t0 = fr_mono_ns(), t1;
	size_t c;

	for (c = 0; c < calls; c++) {
		if (*off + batch_bytes > table_bytes)
			*off = 0;
		memcpy(table + *off, vals, batch_bytes);
		*off += batch_bytes;
	}
	t1 = fr_mono_ns();
	return (double)(calls * batch_bytes) / (double)(t1 - t0 + 1);
}

/* Apply one batch and read it back, so a broken backend is not timed. */
static int bench_verify(struct gpu_table *t, const uint64_t *ids,
			const uint64_t *vers, const uint8_t *vals,
			size_t batch_rows, size_t rb)
{
	size_t n = batch_rows < 64 ? batch_rows : 64;
	uint8_t *out = malloc(n * rb);
	int rc = 0;

	if (!out)
		return 1;
	if (gpu_apply(t, ids, vers, vals, batch_rows) != FR_OK ||
	    gpu_gather(t, ids, n, out) != FR_OK ||
	    memcmp(out, vals, n * rb) != 0) {
		fprintf(stderr, "bench_apply: the applied rows do not read back: %s\n",
			fr_errmsg());
		rc = 1;
	}
	free(out);
	return rc;
}

static int bench_size(struct gpu_table *t, const struct bench_opts *o,
		      size_t batch_bytes, size_t samples, uint64_t *perm,
		      uint64_t *vers, uint64_t *vers_down, uint8_t *vals,
		      size_t *off, uint64_t *seed, struct bench_result *r)
{
	size_t rb = gpu_row_bytes(t);
	size_t batch_rows = batch_bytes / rb;
	size_t calls;
	uint8_t *table = gpu_table_host_bytes(t);
	size_t table_bytes = (size_t)o->rows * rb;
	double *g = malloc(5 * samples * sizeof(double));
	double *ga, *gu, *gm, *ra, *ru;
	int failed = 0;
	size_t s, i, k;

	if (!g)
		return 1;
	ga = g;
	gu = g + samples;
	gm = g + 2 * samples;
	ra = g + 3 * samples;
	ru = g + 4 * samples;
	batch_bytes = batch_rows * rb;   /* whole rows, both sides */
	calls = BENCH_SAMPLE_BYTES / batch_bytes;
	if (calls == 0)
		calls = 1;
	if (calls * batch_rows > o->rows)
		calls = (size_t)(o->rows / batch_rows);
	for (i = 0; i < batch_rows; i++) {
		vers[i] = 1000 + i;
		vers_down[i] = 1000 + batch_rows - i;
	}
	for (i = 0; i < batch_rows * rb; i++)
		vals[i] = (uint8_t)bench_rand(seed);

	bench_shuffle(perm, o->rows, batch_rows, seed);
	failed = bench_verify(t, perm, vers, vals, batch_rows, rb);
	for (s = 0; s < samples && !failed; s++) {
		/* Rotate which of the three goes first, so none always
		 * follows the same neighbour's write-back. */
		for (k = 0; k < 3 && !failed; k++) {
			switch ((s + k) % 3) {
			case 0:
				bench_shuffle(perm, o->rows, calls * batch_rows,
					      seed);
				ga[s] = bench_apply_sample(t, perm, vers, vals,
							   batch_rows, calls,
							   rb, &failed);
				break;
			case 1:
				bench_shuffle(perm, o->rows, calls * batch_rows,
					      seed);
				gu[s] = bench_apply_sample(t, perm, vers_down,
							   vals, batch_rows,
							   calls, rb, &failed);
				break;
			default:
				gm[s] = bench_memcpy_sample(table, table_bytes,
							    off, vals,
							    batch_bytes, calls);
				break;
			}
		}
		ra[s] = ga[s] / gm[s];
		ru[s] = gu[s] / gm[s];
	}
	if (!failed) {
		r->batch_bytes = batch_bytes;
		r->batch_rows = batch_rows;
		r->apply_gbps = bench_median(ga, samples);
		r->unordered_gbps = bench_median(gu, samples);
		r->memcpy_gbps = bench_median(gm, samples);
		r->ratio = bench_median(ra, samples);
		r->ratio_unordered = bench_median(ru, samples);
	}
	free(g);
	return failed;
}

int main(int argc, char **argv)
{
	struct bench_result res[BENCH_NSIZES];
	struct bench_opts o;
	const struct gpu_backend *be;
	struct gpu_table_desc d;
	struct gpu_table *t = NULL;
	uint64_t *perm = NULL, *vers = NULL, *vers_down = NULL, seed = 0x2545f4914f6cdd1dull;
	uint8_t *vals = NULL;
	size_t rb, nres = 0, k, off = 0, max_rows = 0, samples;
	double ratio_min = -1;
	enum fr_err e;
	int rc;

	rc = bench_parse(argc, argv, &o);
	if (rc)
		return rc;
	e = gpu_backend_select(o.backend, &be);
	if (e) {
		fprintf(stderr, "bench_apply: --backend %s: %s\n",
			o.backend, fr_errmsg());
		return 2;
	}
	memset(&d, 0, sizeof(d));
	d.name = "bench_apply";
	d.rows = o.rows;
	d.dim = o.dim;
	d.dtype = GPU_F32;
	t = gpu_table_new(be, &d, &e);
	if (!t) {
		fprintf(stderr, "bench_apply: %s: %s\n", fr_strerror(e),
			fr_errmsg());
		return 1;
	}
	rc = 1;
	if (!gpu_table_host_bytes(t)) {
		fprintf(stderr, "bench_apply: backend '%s' has no host copy of the table, so the memcpy baseline cannot run\n",
			be->name);
		rc = 2;
		goto out_free_table;
	}
	rb = gpu_row_bytes(t);
	for (k = 0; k < BENCH_NSIZES; k++)
		if (bench_sizes[k] >= rb && bench_sizes[k] / rb <= o.rows)
			max_rows = bench_sizes[k] / rb;
	if (max_rows == 0) {
		fprintf(stderr, "bench_apply: the table (%llu rows of %zu bytes) is too small for a 64 KiB batch\n",
			(unsigned long long)o.rows, rb);
		rc = 2;
		goto out_free_table;
	}
	perm = malloc(o.rows * sizeof(*perm));
	vers = malloc(max_rows * sizeof(*vers));
	vers_down = malloc(max_rows * sizeof(*vers_down));
	vals = malloc(max_rows * rb);
	if (!perm || !vers || !vers_down || !vals) {
		fprintf(stderr, "bench_apply: out of memory\n");
		goto out_free_bufs;
	}
	for (k = 0; k < o.rows; k++)
		perm[k] = k;

	samples = o.quick ? 5 : 21;
	printf("bench_apply: backend %s, table %llu rows x %zu B (%.0f MiB), medians of %zu samples of %u MiB\n",
	       be->name, (unsigned long long)o.rows, rb,
	       (double)o.rows * rb / (1 << 20), samples,
	       BENCH_SAMPLE_BYTES >> 20);
	printf("%10s %8s %11s %9s %12s %13s %17s\n", "batch", "rows",
	       "apply GB/s", "Mrows/s", "memcpy GB/s", "apply/memcpy",
	       "unordered/memcpy");
	for (k = 0; k < BENCH_NSIZES; k++) {
		struct bench_result *r = &res[nres];

		if (bench_sizes[k] < rb || bench_sizes[k] / rb > o.rows)
			continue;
		if (bench_size(t, &o, bench_sizes[k], samples, perm, vers,
			       vers_down, vals, &off, &seed, r))
			goto out_free_bufs;
		if (r->batch_bytes >= (4u << 20) &&
		    (ratio_min < 0 || r->ratio < ratio_min))
			ratio_min = r->ratio;
		printf("%7zu KiB %8zu %11.2f %9.1f %12.2f %13.2f %17.2f\n",
		       bench_sizes[k] >> 10, r->batch_rows, r->apply_gbps,
		       r->apply_gbps * 1e3 / (double)rb, r->memcpy_gbps,
		       r->ratio, r->ratio_unordered);
		nres++;
	}

	printf("{\"bench\":\"apply\",\"backend\":\"%s\",\"row_bytes\":%zu,\"table_rows\":%llu,\"samples\":%zu,\"sample_bytes\":%u,\"results\":[",
	       be->name, rb, (unsigned long long)o.rows, samples,
	       BENCH_SAMPLE_BYTES);
	for (k = 0; k < nres; k++)
		printf("%s{\"batch_bytes\":%zu,\"batch_rows\":%zu,\"apply_gbps\":%.3f,\"apply_mrows\":%.3f,\"memcpy_gbps\":%.3f,\"ratio\":%.3f,\"unordered_gbps\":%.3f,\"ratio_unordered\":%.3f}",
		       k ? "," : "", res[k].batch_bytes, res[k].batch_rows,
		       res[k].apply_gbps, res[k].apply_gbps * 1e3 / (double)rb,
		       res[k].memcpy_gbps, res[k].ratio,
		       res[k].unordered_gbps, res[k].ratio_unordered);
	if (ratio_min < 0)
		printf("],\"ratio_min_ge_4mb\":null}\n");
	else
		printf("],\"ratio_min_ge_4mb\":%.3f}\n", ratio_min);
	rc = 0;

out_free_bufs:
	free(vals);
	free(vers_down);
	free(vers);
	free(perm);
out_free_table:
	gpu_table_free(t);
	return rc;
}
