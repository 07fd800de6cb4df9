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
 * With --backend cuda (or auto on a machine with a device) the table is
 * in device memory and the limit is the PCIe link instead: apply's
 * throughput is compared with cudaMemcpyAsync H2D copies of the same
 * bytes from pinned memory, in the same run, again as the median of
 * neighbouring per-sample ratios.  An apply returns once its batch is
 * staged, so each apply sample ends with a one-row gather, which waits
 * for the table's stream.  Beside it: a host memcpy into pinned memory
 * (apply's staging copy, the other bound), the scatter kernel alone timed
 * with CUDA events (its effective device bandwidth, counting the rows
 * read, the ids read and the rows written), and the latency of 512-id
 * gathers, alone and issued between applies queued back to back (the
 * backend is single-threaded per table, so "during an apply stream"
 * means each gather waits behind the apply queued before it).  The table
 * defaults to 10M rows, and to rows of 64 and then 128 floats unless
 * --dim names one; the JSON line names the device.  CUDA calls the bench
 * needs live behind gpu/cuda_bench.h.  docs/gpu.md has how to run it.
 *
 * What it is not: a test — it checks one batch's bytes so that it never
 * times a broken apply, nothing more.
 *
 * Usage: bench_apply [--backend cpu|cuda|auto] [--rows N] [--dim D] [--quick]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda_bench.h"
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
	bool rows_set;   /* --rows given (else the backend's default) */
	bool dim_set;    /* --dim given (else cuda runs 64 and 128) */
};

/* cuda defaults: >= 10M rows, so the table (2.56 GB at 256-byte rows) is
 * far past the L2 and the ids spread over all of HBM. */
#define BENCH_CUDA_ROWS 10000000ull
/* Ids per lookup for the gather latency, and the apply batch that runs
 * between lookups. */
#define BENCH_GATHER_IDS 512
#define BENCH_GATHER_APPLY_BYTES (4u << 20)

/* One batch size's medians, on either backend: the baseline is a memcpy
 * into the table (cpu) or an H2D copy from pinned memory (cuda). */
struct bench_rates {
	size_t batch_bytes;
	size_t batch_rows;
	double apply_gbps;      /* versions in batch order (the store's) */
	double unordered_gbps;  /* versions falling: repeats are looked for */
	double baseline_gbps;
	double ratio;           /* median of per-sample apply/baseline */
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
		"  --rows N   table rows (default 1048576; cuda: 10000000)\n"
		"  --dim D    floats per row (default 64, i.e. 256-byte rows;\n"
		"             cuda: 64, then 128)\n"
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
	o->rows_set = false;
	o->dim_set = false;
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
			o->rows_set = true;
		} else if (strcmp(a, "--dim") == 0 && i + 1 < argc) {
			if (!bench_parse_u64(argv[++i], 1, 1u << 20, &v)) {
				fprintf(stderr, "bench_apply: --dim: expected an integer in [1, 1048576], got '%s'\n",
					argv[i]);
				return 2;
			}
			o->dim = (uint32_t)v;
			o->dim_set = true;
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

/* One timed sample of `calls` applies of batch_rows rows; bytes/ns.
 * With `drain` (a row's worth of scratch), the sample ends with a one-row
 * gather, which waits until a backend that queues its applies (cuda) has
 * finished them; the cpu backend is timed without one. */
static double bench_apply_sample(struct gpu_table *t, const uint64_t *ids,
				 const uint64_t *vers, const void *vals,
				 size_t batch_rows, size_t calls, size_t rb,
				 void *drain, int *failed)
{
	uint64_t t0 = fr_mono_ns(), t1;
	enum fr_err e = FR_OK;
	size_t c;

	for (c = 0; c < calls && !e; c++)
		e = gpu_apply(t, ids + c * batch_rows, vers, vals, batch_rows);
	if (!e && drain)
		e = gpu_gather(t, ids, 1, drain);
	if (e) {
		fprintf(stderr, "bench_apply: apply: %s: %s\n",
			fr_strerror(e), fr_errmsg());
		*failed = 1;
		return 0;
	}
	t1 = fr_mono_ns();
	return (double)(calls * batch_rows * rb) / (double)(t1 - t0 + 1);
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

/* One batch size's run on table t (of `rows` rows): the batch (whole rows
 * of rb bytes), its versions rising and falling, its values, and how many
 * applies make one timed sample. */
struct bench_batch {
	struct gpu_table *t;
	uint64_t rows;
	size_t rb, batch_rows, batch_bytes, calls;
	uint64_t *perm, *vers, *vers_down;
	uint8_t *vals;
	uint64_t *seed;
	void *drain;            /* bench_apply_sample's, or NULL */
};

/* A timed sample of the baseline for b's batch: bytes/ns; sets *failed
 * when it could not run. */
typedef double bench_baseline_fn(const struct bench_batch *b, void *arg,
				 int *failed);

/* Set b up for batches of batch_bytes, rounded down to whole rows, then
 * apply one and read it back.  Nonzero when that check fails. */
static int bench_batch_init(struct bench_batch *b, size_t batch_bytes)
{
	size_t i;

	b->rb = gpu_row_bytes(b->t);
	b->batch_rows = batch_bytes / b->rb;
	b->batch_bytes = b->batch_rows * b->rb;   /* whole rows, both sides */
	b->calls = BENCH_SAMPLE_BYTES / b->batch_bytes;
	if (b->calls == 0)
		b->calls = 1;
	if (b->calls * b->batch_rows > b->rows)
		b->calls = (size_t)(b->rows / b->batch_rows);
	for (i = 0; i < b->batch_rows; i++) {
		b->vers[i] = 1000 + i;
		b->vers_down[i] = 1000 + b->batch_rows - i;
	}
	for (i = 0; i < b->batch_bytes; i++)
		b->vals[i] = (uint8_t)bench_rand(b->seed);
	bench_shuffle(b->perm, b->rows, b->batch_rows, b->seed);
	return bench_verify(b->t, b->perm, b->vers, b->vals, b->batch_rows,
			    b->rb);
}

/* `samples` rounds of three samples taking turns: an apply with versions
 * rising, one with them falling, and one of the baseline; each ratio is
 * taken within its round.  The medians go to r.  Nonzero on a failure
 * (the rounds stop there) or when out of memory. */
static int bench_rounds(struct bench_batch *b, size_t samples,
			bench_baseline_fn *baseline, void *arg,
			struct bench_rates *r)
{
	double *g = malloc(5 * samples * sizeof(double));
	double *ga, *gu, *gb, *ra, *ru;
	int failed = 0;
	size_t s, k;

	if (!g)
		return 1;
	ga = g;
	gu = g + samples;
	gb = g + 2 * samples;
	ra = g + 3 * samples;
	ru = g + 4 * samples;
	for (s = 0; s < samples && !failed; s++) {
		/* Rotate which of the three goes first, so none always
		 * follows the same neighbour's write-back. */
		for (k = 0; k < 3 && !failed; k++) {
			unsigned which = (unsigned)((s + k) % 3);

			if (which == 2) {
				gb[s] = baseline(b, arg, &failed);
				continue;
			}
			bench_shuffle(b->perm, b->rows,
				      b->calls * b->batch_rows, b->seed);
			(which ? gu : ga)[s] = bench_apply_sample(
				b->t, b->perm, which ? b->vers_down : b->vers,
				b->vals, b->batch_rows, b->calls, b->rb,
				b->drain, &failed);
		}
		ra[s] = ga[s] / gb[s];
		ru[s] = gu[s] / gb[s];
	}
	if (!failed) {
		r->batch_bytes = b->batch_bytes;
		r->batch_rows = b->batch_rows;
		r->apply_gbps = bench_median(ga, samples);
		r->unordered_gbps = bench_median(gu, samples);
		r->baseline_gbps = bench_median(gb, samples);
		r->ratio = bench_median(ra, samples);
		r->ratio_unordered = bench_median(ru, samples);
	}
	free(g);
	return failed;
}

/* The cpu baseline's destination: the table's host bytes, at an offset
 * that rotates so the destination is as cold as apply's rows. */
struct bench_memcpy_dst {
	uint8_t *table;
	size_t table_bytes;
	size_t *off;
};

/* One timed sample of the cpu baseline: the same bytes, contiguous. */
static double bench_memcpy_sample(const struct bench_batch *b, void *arg,
				  int *failed)
{
	struct bench_memcpy_dst *d = arg;
	uint64_t t0 = fr_mono_ns(), t1;
	size_t c;

	(void)failed;
	for (c = 0; c < b->calls; c++) {
		if (*d->off + b->batch_bytes > d->table_bytes)
			*d->off = 0;
		memcpy(d->table + *d->off, b->vals, b->batch_bytes);
		*d->off += b->batch_bytes;
	}
	t1 = fr_mono_ns();
	return (double)(b->calls * b->batch_bytes) / (double)(t1 - t0 + 1);
}

static int bench_size(struct gpu_table *t, const struct bench_opts *o,
		      size_t batch_bytes, size_t samples, uint64_t *perm,
		      uint64_t *vers, uint64_t *vers_down, uint8_t *vals,
		      size_t *off, uint64_t *seed, struct bench_rates *r)
{
	struct bench_batch b = {
		.t = t, .rows = o->rows, .perm = perm, .vers = vers,
		.vers_down = vers_down, .vals = vals, .seed = seed,
	};
	struct bench_memcpy_dst d = {
		.table = gpu_table_host_bytes(t),
		.table_bytes = (size_t)o->rows * gpu_row_bytes(t), .off = off,
	};

	return bench_batch_init(&b, batch_bytes) ||
	       bench_rounds(&b, samples, bench_memcpy_sample, &d, r);
}

/* The JSON line's summary: the lowest apply/baseline ratio of the
 * batches of 4 MiB and more (*min < 0: none yet). */
static void bench_ratio_min(double *min, const struct bench_rates *r)
{
	if (r->batch_bytes >= (4u << 20) && (*min < 0 || r->ratio < *min))
		*min = r->ratio;
}

/* The end of the JSON line: the results list closed, then the summary. */
static void bench_json_end(double ratio_min)
{
	if (ratio_min < 0)
		printf("],\"ratio_min_ge_4mb\":null}\n");
	else
		printf("],\"ratio_min_ge_4mb\":%.3f}\n", ratio_min);
}

/* The host-memory backend: apply against memcpy into the same table. */
static int bench_cpu_main(const struct bench_opts *op,
			  const struct gpu_backend *be)
{
	struct bench_rates res[BENCH_NSIZES];
	struct bench_opts o = *op;
	struct gpu_table_desc d;
	struct gpu_table *t = NULL;
	uint64_t *perm = NULL, *vers = NULL, *vers_down = NULL, seed = 0x2545f4914f6cdd1dull;
	uint8_t *vals = NULL;
	size_t rb, nres = 0, k, off = 0, max_rows = 0, samples;
	double ratio_min = -1;
	enum fr_err e;
	int rc;

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
		struct bench_rates *r = &res[nres];

		if (bench_sizes[k] < rb || bench_sizes[k] / rb > o.rows)
			continue;
		if (bench_size(t, &o, bench_sizes[k], samples, perm, vers,
			       vers_down, vals, &off, &seed, r))
			goto out_free_bufs;
		bench_ratio_min(&ratio_min, r);
		printf("%7zu KiB %8zu %11.2f %9.1f %12.2f %13.2f %17.2f\n",
		       bench_sizes[k] >> 10, r->batch_rows, r->apply_gbps,
		       r->apply_gbps * 1e3 / (double)rb, r->baseline_gbps,
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
		       res[k].baseline_gbps, res[k].ratio,
		       res[k].unordered_gbps, res[k].ratio_unordered);
	bench_json_end(ratio_min);
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

/* ------------------------------------------------------------------------
 * cuda: apply against H2D copies of the same bytes from pinned memory
 * ---------------------------------------------------------------------- */

/* The largest batch; also the pinned baseline buffer's size. */
#define BENCH_MAX_BATCH (64u << 20)

struct bench_cuda_result {
	size_t row_bytes;
	/* The baseline: cudaMemcpyAsync from pinned memory, same bytes. */
	struct bench_rates rates;
	double stage_gbps;       /* host memcpy into pinned memory */
	double scatter_gbps;     /* kernel alone: (2 rows + 8 B id) per row */
};

struct bench_cuda_lat {
	size_t row_bytes;
	size_t reps;
	size_t busy_apply_bytes;
	double alone_p50_us, alone_p99_us;
	double busy_p50_us, busy_p99_us;
};

/* p50 and p99 of v[0..n) in microseconds (v in ns; sorted in place). */
static void bench_pcts(double *v, size_t n, double *p50, double *p99)
{
	size_t i99 = n * 99 / 100;

	qsort(v, n, sizeof(*v), bench_cmp_double);
	*p50 = v[n / 2] / 1e3;
	*p99 = v[i99 < n ? i99 : n - 1] / 1e3;
}

/* One timed sample of the cuda baseline (arg: the bench's pinned buffer):
 * H2D copies of b's batch. */
static double bench_h2d_sample(const struct bench_batch *b, void *arg,
			       int *failed)
{
	uint64_t ns = 0;
	enum fr_err e = gpu_cuda_bench_h2d(arg, b->batch_bytes, b->calls, &ns);

	if (e) {
		fprintf(stderr, "bench_apply: H2D baseline: %s\n", fr_errmsg());
		*failed = 1;
	}
	return (double)(b->calls * b->batch_bytes) / (double)(ns + 1);
}

static int bench_cuda_size(struct gpu_table *t, uint64_t rows, size_t batch_bytes, size_t samples,
			   uint64_t *perm, uint64_t *vers, uint64_t *vers_down,
			   uint8_t *vals, uint64_t *seed,
			   struct gpu_cuda_bench *cb, void *scratch,
			   struct bench_cuda_result *r)
{
	struct bench_batch b = {
		.t = t, .rows = rows, .perm = perm, .vers = vers,
		.vers_down = vers_down, .vals = vals, .seed = seed,
		.drain = scratch,
	};
	uint8_t *pinned = gpu_cuda_bench_host(cb);
	double *g = malloc(2 * samples * sizeof(double));
	double *gs, *gk;
	int failed;
	size_t s, c, reps;
	uint64_t ns, t0;
	enum fr_err e;

	if (!g)
		return 1;
	gs = g;
	gk = g + samples;
	failed = bench_batch_init(&b, batch_bytes) ||
		 bench_rounds(&b, samples, bench_h2d_sample, cb, &r->rates);
	/* The two other bounds: apply's own host copy into pinned memory,
	 * and its kernel alone (each launch over one staging chunk). */
	reps = BENCH_SAMPLE_BYTES / b.batch_bytes;
	if (reps == 0)
		reps = 1;
	for (s = 0; s < samples && !failed; s++) {
		t0 = fr_mono_ns();
		for (c = 0; c < b.calls; c++)
			memcpy(pinned, vals, b.batch_bytes);
		gs[s] = (double)(b.calls * b.batch_bytes) /
			(double)(fr_mono_ns() - t0 + 1);
		bench_shuffle(perm, rows, b.batch_rows, seed);
		e = gpu_cuda_bench_scatter(t, perm, b.batch_rows, reps, &ns);
		if (e) {
			fprintf(stderr, "bench_apply: scatter kernel: %s\n",
				fr_errmsg());
			failed = 1;
		}
		gk[s] = (double)(reps * b.batch_rows * (2 * b.rb + 8)) /
			(double)(ns + 1);
	}
	if (!failed) {
		r->row_bytes = b.rb;
		r->stage_gbps = bench_median(gs, samples);
		r->scatter_gbps = bench_median(gk, samples);
	}
	free(g);
	return failed;
}

/* Latency of BENCH_GATHER_IDS-id gathers: alone (the stream idle), then
 * each issued right after an apply of BENCH_GATHER_APPLY_BYTES, queued
 * back to back, so it waits behind that apply on the table's stream. */
static int bench_cuda_gather(struct gpu_table *t, uint64_t rows,
			     uint64_t *perm, const uint8_t *vals,
			     uint64_t *seed, void *scratch, size_t reps,
			     struct bench_cuda_lat *l)
{
	size_t rb = gpu_row_bytes(t), apply_rows, r, i;
	uint64_t ids[BENCH_GATHER_IDS], t0;
	double *lat = malloc(2 * reps * sizeof(double));
	enum fr_err e = FR_OK;

	if (!lat)
		return 1;
	apply_rows = BENCH_GATHER_APPLY_BYTES / rb;
	if (apply_rows == 0)
		apply_rows = 1;
	if (apply_rows > rows)
		apply_rows = (size_t)rows;
	for (r = 0; r < reps && !e; r++) {
		for (i = 0; i < BENCH_GATHER_IDS; i++)
			ids[i] = bench_rand(seed) % rows;
		t0 = fr_mono_ns();
		e = gpu_gather(t, ids, BENCH_GATHER_IDS, scratch);
		lat[r] = (double)(fr_mono_ns() - t0);
	}
	for (r = 0; r < reps && !e; r++) {
		for (i = 0; i < BENCH_GATHER_IDS; i++)
			ids[i] = bench_rand(seed) % rows;
		bench_shuffle(perm, rows, apply_rows, seed);
		e = gpu_apply(t, perm, NULL, vals, apply_rows);
		if (e)
			break;
		t0 = fr_mono_ns();
		e = gpu_gather(t, ids, BENCH_GATHER_IDS, scratch);
		lat[reps + r] = (double)(fr_mono_ns() - t0);
	}
	if (e) {
		fprintf(stderr, "bench_apply: gather latency: %s: %s\n",
			fr_strerror(e), fr_errmsg());
		free(lat);
		return 1;
	}
	l->row_bytes = rb;
	l->reps = reps;
	l->busy_apply_bytes = apply_rows * rb;
	bench_pcts(lat, reps, &l->alone_p50_us, &l->alone_p99_us);
	bench_pcts(lat + reps, reps, &l->busy_p50_us, &l->busy_p99_us);
	free(lat);
	return 0;
}

/* A JSON string: quotes and backslashes escaped, controls dropped. */
static void bench_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if ((unsigned char)*s >= 0x20)
			putchar(*s);
	}
	putchar('"');
}

static int bench_cuda_main(const struct bench_opts *o,
			   const struct gpu_backend *be)
{
	struct bench_cuda_result res[2 * BENCH_NSIZES];
	struct bench_cuda_lat lat[2];
	uint32_t dims[2] = { 64, 128 };
	size_t ndims = 2, nres = 0, nlat = 0, k, j, samples, max_rb, min_rb;
	uint64_t rows = o->rows_set ? o->rows : BENCH_CUDA_ROWS;
	uint64_t *perm = NULL, *vers = NULL, *vers_down = NULL;
	uint64_t seed = 0x2545f4914f6cdd1dull;
	uint8_t *vals = NULL, *scratch = NULL;
	struct gpu_cuda_bench *b = NULL;
	double ratio_min = -1;
	char dev[256];
	enum fr_err e;
	int rc = 1;

	if (o->dim_set) {
		dims[0] = o->dim;
		ndims = 1;
	}
	max_rb = min_rb = (size_t)dims[0] * 4;
	if (ndims == 2 && (size_t)dims[1] * 4 > max_rb)
		max_rb = (size_t)dims[1] * 4;
	if (max_rb > BENCH_MAX_BATCH || rows < BENCH_GATHER_IDS) {
		fprintf(stderr, "bench_apply: cuda: expected rows of at most %u bytes and at least %d table rows\n",
			BENCH_MAX_BATCH, BENCH_GATHER_IDS);
		return 2;
	}
	e = gpu_cuda_bench_device_name(0, dev, sizeof(dev));
	if (e) {
		fprintf(stderr, "bench_apply: cuda device 0: %s\n", fr_errmsg());
		return 1;
	}
	b = gpu_cuda_bench_new(0, BENCH_MAX_BATCH, &e);
	if (!b) {
		fprintf(stderr, "bench_apply: %s\n", fr_errmsg());
		return 1;
	}
	perm = malloc(rows * sizeof(*perm));
	vers = malloc((BENCH_MAX_BATCH / min_rb + 1) * sizeof(*vers));
	vers_down = malloc((BENCH_MAX_BATCH / min_rb + 1) * sizeof(*vers_down));
	vals = malloc(BENCH_MAX_BATCH);
	scratch = malloc(BENCH_GATHER_IDS * max_rb);
	if (!perm || !vers || !vers_down || !vals || !scratch) {
		fprintf(stderr, "bench_apply: out of memory\n");
		goto out;
	}
	for (k = 0; k < rows; k++)
		perm[k] = k;
	for (k = 0; k < BENCH_MAX_BATCH; k++)
		vals[k] = (uint8_t)bench_rand(&seed);

	samples = o->quick ? 5 : 21;
	printf("bench_apply: backend %s on %s, table %llu rows, medians of %zu samples of %u MiB\n",
	       be->name, dev, (unsigned long long)rows, samples,
	       BENCH_SAMPLE_BYTES >> 20);
	for (j = 0; j < ndims; j++) {
		struct gpu_table_desc d;
		struct gpu_table *t;
		size_t rb = (size_t)dims[j] * 4;

		memset(&d, 0, sizeof(d));
		d.name = "bench_apply";
		d.rows = rows;
		d.dim = dims[j];
		d.dtype = GPU_F32;
		d.device = 0;
		t = gpu_table_new(be, &d, &e);
		if (!t) {
			fprintf(stderr, "bench_apply: %s: %s\n", fr_strerror(e),
				fr_errmsg());
			goto out;
		}
		printf("\n%zu-byte rows (%u floats), table %.2f GB\n", rb,
		       dims[j], (double)rows * rb / 1e9);
		printf("%10s %8s %11s %8s %9s %10s %14s %11s %13s\n", "batch",
		       "rows", "apply GB/s", "Mrows/s", "H2D GB/s",
		       "apply/H2D", "unordered/H2D", "stage GB/s",
		       "scatter GB/s");
		for (k = 0; k < BENCH_NSIZES; k++) {
			struct bench_cuda_result *r = &res[nres];

			if (bench_sizes[k] < rb || bench_sizes[k] / rb > rows)
				continue;
			if (bench_cuda_size(t, rows, bench_sizes[k], samples,
					    perm, vers, vers_down, vals, &seed,
					    b, scratch, r)) {
				gpu_table_free(t);
				goto out;
			}
			bench_ratio_min(&ratio_min, &r->rates);
			printf("%7zu KiB %8zu %11.2f %8.1f %9.2f %10.2f %14.2f %11.2f %13.1f\n",
			       bench_sizes[k] >> 10, r->rates.batch_rows,
			       r->rates.apply_gbps,
			       r->rates.apply_gbps * 1e3 / (double)rb,
			       r->rates.baseline_gbps, r->rates.ratio,
			       r->rates.ratio_unordered, r->stage_gbps,
			       r->scatter_gbps);
			nres++;
		}
		if (bench_cuda_gather(t, rows, perm, vals, &seed, scratch,
				      o->quick ? 50 : 400, &lat[nlat])) {
			gpu_table_free(t);
			goto out;
		}
		printf("gather of %d ids: alone p50 %.1f us, p99 %.1f us; behind a %zu KiB apply p50 %.1f us, p99 %.1f us\n",
		       BENCH_GATHER_IDS, lat[nlat].alone_p50_us,
		       lat[nlat].alone_p99_us,
		       lat[nlat].busy_apply_bytes >> 10,
		       lat[nlat].busy_p50_us, lat[nlat].busy_p99_us);
		nlat++;
		gpu_table_free(t);
	}

	printf("{\"bench\":\"apply\",\"backend\":\"%s\",\"device\":", be->name);
	bench_json_str(dev);
	printf(",\"table_rows\":%llu,\"samples\":%zu,\"sample_bytes\":%u,\"results\":[",
	       (unsigned long long)rows, samples, BENCH_SAMPLE_BYTES);
	for (k = 0; k < nres; k++)
		printf("%s{\"row_bytes\":%zu,\"batch_bytes\":%zu,\"batch_rows\":%zu,\"apply_gbps\":%.3f,\"apply_mrows\":%.3f,\"h2d_gbps\":%.3f,\"ratio\":%.3f,\"unordered_gbps\":%.3f,\"ratio_unordered\":%.3f,\"stage_memcpy_gbps\":%.3f,\"scatter_dev_gbps\":%.3f}",
		       k ? "," : "", res[k].row_bytes, res[k].rates.batch_bytes,
		       res[k].rates.batch_rows, res[k].rates.apply_gbps,
		       res[k].rates.apply_gbps * 1e3 / (double)res[k].row_bytes,
		       res[k].rates.baseline_gbps, res[k].rates.ratio,
		       res[k].rates.unordered_gbps,
		       res[k].rates.ratio_unordered, res[k].stage_gbps,
		       res[k].scatter_gbps);
	printf("],\"gather\":[");
	for (k = 0; k < nlat; k++)
		printf("%s{\"row_bytes\":%zu,\"ids\":%d,\"reps\":%zu,\"alone_p50_us\":%.2f,\"alone_p99_us\":%.2f,\"behind_apply_bytes\":%zu,\"behind_apply_p50_us\":%.2f,\"behind_apply_p99_us\":%.2f}",
		       k ? "," : "", lat[k].row_bytes, BENCH_GATHER_IDS,
		       lat[k].reps, lat[k].alone_p50_us, lat[k].alone_p99_us,
		       lat[k].busy_apply_bytes, lat[k].busy_p50_us,
		       lat[k].busy_p99_us);
	bench_json_end(ratio_min);
	rc = 0;

out:
	free(scratch);
	free(vals);
	free(vers_down);
	free(vers);
	free(perm);
	gpu_cuda_bench_free(b);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	const struct gpu_backend *be;
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
	if (strcmp(be->name, "cuda") == 0)
		return bench_cuda_main(&o, be);
	return bench_cpu_main(&o, be);
}
