/*
 * bench_codec.c — what the wire codec costs against a plain memcpy.
 *
 * One 4 MiB row batch (16,384 rows x 64 f32, plus row ids, versions,
 * origins, significance and two covers) goes through the codec path a
 * sender and a receiver take, in two forms:
 *
 * - copy: shard_batch_frame_encode into a reused wbuf (copy + XXH3),
 *   shard_frame_decode of that wbuf (XXH3 again), shard_batch_decode
 *   (zero-copy).
 * - zero-copy: shard_batch_frame_encode_iov (header + XXH3 over the
 *   batch's own arrays, nothing copied), shard_frame_decode of the
 *   received contiguous frame, shard_batch_decode.  The received frame
 *   is gathered from the iov once, before timing: in a real node the
 *   kernel's socket copy (writev on one side, read on the other) puts the
 *   bytes there, and the memcpy baseline is exactly that one copy.  This
 *   is the path the node takes.
 * - zero-copy, rx fresh: the same, with the kernel's
 *   copy redone untimed between encode and verify, into a buffer of its
 *   own, so the receiver's hash finds the frame in cache as right after
 *   recv().  Plain zero-copy's verify reads a receive buffer written long
 *   before, mostly from DRAM; that read is most of the gap between them.
 *
 * The baseline, in the same run and interleaved with all three (the four
 * take turns going first), is one memcpy of the same value bytes into a
 * reused destination.  All are reported as GB/s of value bytes, medians
 * of the repetitions; the ratios codec/memcpy are the result (docs/design.md §9);
 * "ratio" in the JSON line is the rx-fresh zero-copy one: the memcpy
 * baseline runs between cache-warm buffers, and recv() leaves the frame
 * cache-warm too, so that is the like-for-like comparison; the plain
 * zero-copy figure (receive buffer cold) and the copying path are reported
 * beside it.  A breakdown of the
 * parts (timed within each path) and a bare XXH3 pass over the frame
 * (timed apart) follow for whoever tunes it.
 *
 * What was tried for the copying path (2-core shared VM, AMD Zen 5,
 * glibc 2.36, libxxhash 0.8.1; ratios codec/memcpy, noisy by +-0.04):
 * - libxxhash's plain XXH3_64bits entry is its SSE2 build; the AVX2/512
 *   dispatch entries (<xxh_x86dispatch.h>) hash 3-4x faster: 0.15-0.21
 *   -> 0.38-0.41.  The single biggest win.
 * - Copy a chunk, then hash the copy: 0.27-0.35.  Hash the source chunk,
 *   then copy it (memcpy's rep movsb then writes without reading the
 *   destination first): 0.38-0.42, adopted.  Chunk 64-256 KiB flat,
 *   1 MiB spills L2 (-30%); copy everything then hash once: 0.28-0.40.
 * - A fused AVX-512 copy + XXH3-accumulate kernel (prototype, outside the
 *   tree): no faster than hash-then-copy (its stores read each line
 *   first), so not worth owning an XXH3 implementation.
 * - Huge pages for all buffers: both sides ~5% faster, ratio unchanged.
 * The copying path's floor: encode moves 1.09x the value bytes (ids,
 * versions, origins, significance) and hashes them once, decode hashes
 * them again, and XXH3 here is bounded by L3 read bandwidth (~60 GB/s)
 * while memcpy of 4 MiB runs at ~45-50 GB/s; ~0.4 is what it reaches.
 * The zero-copy path drops the encoder's copy: two XXH3 passes against
 * one memcpy.  Measured (same host, 3 runs): copy 0.37-0.39, zero-copy
 * 0.39-0.42 (its verify reads the cold receive buffer at ~17 GB/s), rx
 * fresh 0.71-0.79 (verify at ~45 GB/s, encode_iov at ~57 GB/s).
 *
 * Not a network benchmark: no sockets, no peers.
 *
 * Usage: bench_codec [reps]   (default 200)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>
/* The same fast XXH3 entry points the codec uses (see shard/codec.c). */
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#include "shard/shard.h"

#define ROWS 16384u
#define DIM 64u
#define NCOVERS 2u

static volatile uint64_t sink;

/* Per-repetition timings, one column each. */
enum {
	T_COPY,         /* copy path, whole */
	T_ENC,          /*   shard_batch_frame_encode */
	T_FDEC,         /*   shard_frame_decode of the wbuf */
	T_BDEC,         /*   shard_batch_decode */
	T_ZC,           /* zero-copy path, whole */
	T_ENC_IOV,      /*   shard_batch_frame_encode_iov */
	T_FDEC_RX,      /*   shard_frame_decode of the received frame */
	T_BDEC_RX,      /*   shard_batch_decode */
	T_ZCF,          /* zero-copy path, rx freshly written, whole */
	T_FDEC_RXF,     /*   shard_frame_decode of the fresh rx */
	T_MEMCPY,       /* baseline */
	T_HASH,         /* bare XXH3 over the frame, timed apart */
	T_COLS
};

struct bench {
	struct shard_batch_hdr hdr;
	struct shard_batch b;
	const float *values;
	size_t vbytes;
	uint8_t *dst;                 /* memcpy baseline's destination */
	struct fr_wbuf w;             /* copy path's frame, reused */
	uint8_t *scratch;             /* zero-copy path's head */
	struct shard_iov iov[SHARD_BATCH_IOV_MAX];
	unsigned niov;
	uint8_t *rx;                  /* the received frame, 64-aligned */
	size_t rx_len;
	uint8_t *rx_fresh;            /* "rx fresh" run's own receive buffer */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static double gbps(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes / (double)ns : 0.0;
}

/* The receiver, on both paths: verify the frame of len bytes at p, then
 * decode its batch; *t_frame and *t_batch: the clock after each.  A row id
 * and a value byte of the batch go to the sink, untimed. */
static enum fr_err receive(const uint8_t *p, size_t len, uint64_t *t_frame,
			   uint64_t *t_batch)
{
	struct shard_frame_hdr fh;
	struct shard_batch_hdr dh;
	struct shard_batch db;
	const uint8_t *pl;
	size_t plen;
	enum fr_err err = shard_frame_decode(p, len, 0, &fh, &pl, &plen);

	*t_frame = now_ns();
	if (!err)
		err = shard_batch_decode(pl, plen, &dh, &db);
	*t_batch = now_ns();
	if (!err)
		sink += db.rows[ROWS - 1] + ((const uint8_t *)db.values)[7];
	return err;
}

/* Sender copies the batch into a frame; receiver verifies and decodes
 * that same buffer.  t gets this repetition's row of timings. */
static enum fr_err run_copy(struct bench *bn, uint64_t *t)
{
	uint64_t t0, t1, t2, t3;
	enum fr_err err;

	t0 = now_ns();
	fr_wbuf_reset(&bn->w);
	err = shard_batch_frame_encode(&bn->w, &bn->hdr, &bn->b, 0);
	t1 = now_ns();
	if (!err)
		err = receive(bn->w.data, bn->w.len, &t2, &t3);
	if (err)
		return err;
	t[T_COPY] = t3 - t0;
	t[T_ENC] = t1 - t0;
	t[T_FDEC] = t2 - t1;
	t[T_BDEC] = t3 - t2;
	return FR_OK;
}

/* The kernel's part of the zero-copy path: writev() on the sender and
 * recv() on the receiver lay the pieces end to end in a receive buffer.
 * One copy of the frame, which is what the memcpy baseline measures. */
static void gather(const struct bench *bn, uint8_t *rx)
{
	size_t off = 0;

	for (unsigned i = 0; i < bn->niov; i++) {
		memcpy(rx + off, bn->iov[i].base, bn->iov[i].len);
		off += bn->iov[i].len;
	}
}

/* Sender hashes the batch where it lies and hands out an iov; receiver
 * verifies and decodes the contiguous frame the kernel would have put in
 * a receive buffer.  The kernel's copy is never timed: it is the memcpy
 * of the baseline.
 *
 * fresh == false (the result): the receive buffer bn->rx was gathered
 * once before timing (bench_prepare), so the receiver's hash finds it
 * wherever the other runs left it, usually in DRAM.
 * fresh == true (for information): the copy is redone, untimed, between
 * encode and verify into a buffer of its own, so the hash finds the
 * frame in cache as it would right after recv().  Own buffer, so it does
 * not warm the plain run's rx. */
static enum fr_err run_zero_copy(struct bench *bn, uint64_t *t, bool fresh)
{
	uint64_t t0, t1, t2, t3, tg;
	uint8_t *rx = fresh ? bn->rx_fresh : bn->rx;
	enum fr_err err;

	t0 = now_ns();
	err = shard_batch_frame_encode_iov(bn->scratch, &bn->hdr, &bn->b, 0,
					   bn->iov, &bn->niov);
	t1 = now_ns();
	if (err)
		return err;
	if (fresh)
		gather(bn, rx);
	tg = now_ns();
	err = receive(rx, bn->rx_len, &t2, &t3);
	if (err)
		return err;
	if (fresh) {
		t[T_ZCF] = (t1 - t0) + (t3 - tg);
		t[T_FDEC_RXF] = t2 - tg;
	} else {
		t[T_ZC] = (t1 - t0) + (t3 - tg);
		t[T_ENC_IOV] = t1 - t0;
		t[T_FDEC_RX] = t2 - tg;
		t[T_BDEC_RX] = t3 - t2;
	}
	return FR_OK;
}

static void run_memcpy(struct bench *bn, size_t r, uint64_t *t)
{
	uint64_t t0 = now_ns();

	memcpy(bn->dst, bn->values, bn->vbytes);
	sink += bn->dst[r % bn->vbytes];
	t[T_MEMCPY] = now_ns() - t0;
}

/* Encode both ways, gather the iov into bn->rx as the receiver will hold
 * it, and check that everything agrees before anything is timed.  The
 * copying encode also sizes the reused wbuf (no page faults later). */
static bool bench_prepare(struct bench *bn)
{
	struct shard_frame_hdr fh;
	struct shard_batch_hdr dh;
	struct shard_batch db;
	const uint8_t *pl;
	size_t plen, len = 0;

	if (shard_batch_frame_encode(&bn->w, &bn->hdr, &bn->b, 0) != FR_OK ||
	    shard_batch_frame_encode_iov(bn->scratch, &bn->hdr, &bn->b, 0,
					 bn->iov, &bn->niov) != FR_OK)
		return false;
	bn->rx_len = bn->w.len;
	bn->rx = aligned_alloc(64, (bn->rx_len + 63) & ~(size_t)63);
	bn->rx_fresh = aligned_alloc(64, (bn->rx_len + 63) & ~(size_t)63);
	if (!bn->rx || !bn->rx_fresh)
		return false;
	for (unsigned i = 0; i < bn->niov; i++)
		len += bn->iov[i].len;
	if (len != bn->rx_len)
		return false;
	gather(bn, bn->rx);
	gather(bn, bn->rx_fresh);
	return memcmp(bn->rx, bn->w.data, bn->rx_len) == 0 &&
	       shard_frame_decode(bn->rx, bn->rx_len, 0, &fh, &pl, &plen) ==
		       FR_OK &&
	       shard_batch_decode(pl, plen, &dh, &db) == FR_OK &&
	       db.n == ROWS && memcmp(db.values, bn->values, bn->vbytes) == 0 &&
	       memcmp(db.rows, bn->b.rows, ROWS * 8) == 0;
}

/* The memcpy baseline's time over column c's (0 when c took no time). */
static double over_memcpy(const uint64_t *m, int c)
{
	return m[c] ? (double)m[T_MEMCPY] / (double)m[c] : 0;
}

/* A row of the report's table: what was timed, and its column. */
struct step {
	const char *step;
	int col;
};

static void report(uint64_t *t, size_t reps, size_t vbytes, size_t frame_len,
		   unsigned niov)
{
	/* The whole paths, with their ratio to the memcpy baseline... */
	static const struct step rated[] = {
		{ "copy: encode + verify + decode", T_COPY },
		{ "zero-copy: encode_iov + verify + decode", T_ZC },
		{ "zero-copy, rx fresh (the \"ratio\")", T_ZCF },
	};
	/* ...then the baseline and the parts. */
	static const struct step parts[] = {
		{ "baseline: memcpy of values", T_MEMCPY },
		{ "  copy part: shard_batch_frame_encode", T_ENC },
		{ "  copy part: shard_frame_decode (XXH3)", T_FDEC },
		{ "  copy part: shard_batch_decode", T_BDEC },
		{ "  zc part: shard_batch_frame_encode_iov", T_ENC_IOV },
		{ "  zc part: shard_frame_decode (XXH3)", T_FDEC_RX },
		{ "  zc part: shard_batch_decode", T_BDEC_RX },
		{ "  zc part: shard_frame_decode, rx fresh", T_FDEC_RXF },
		{ "  ref: XXH3_64bits over the frame", T_HASH },
	};
	uint64_t m[T_COLS];
	uint64_t *col = malloc(reps * sizeof(*col));
	double ratio_copy, ratio_zc, ratio_zcf;

	if (!col) {
		fprintf(stderr, "bench_codec: out of memory\n");
		return;
	}
	for (int c = 0; c < T_COLS; c++) {
		for (size_t r = 0; r < reps; r++)
			col[r] = t[r * T_COLS + c];
		m[c] = median(col, reps);
	}
	free(col);
	ratio_copy = over_memcpy(m, T_COPY);
	ratio_zc = over_memcpy(m, T_ZC);
	ratio_zcf = over_memcpy(m, T_ZCF);

	printf("bench_codec: %u rows x %u f32 = %zu value bytes, frame "
	       "%zu bytes (%u iov pieces), %zu reps (medians)\n",
	       ROWS, DIM, vbytes, frame_len, niov, reps);
	printf("zero-copy: the received frame is gathered once before "
	       "timing; in a node the kernel's\nsocket copy puts it there, "
	       "and the memcpy baseline is that one copy.  \"rx fresh\":\n"
	       "that copy redone (untimed) between encode and verify, so the "
	       "receiver's hash\nfinds the frame in cache as after recv().\n");
	printf("%-44s %12s %10s %8s\n", "step", "median us", "GB/s",
	       "ratio");
	for (size_t i = 0; i < sizeof(rated) / sizeof(rated[0]); i++)
		printf("%-44s %12.1f %10.2f %8.3f\n", rated[i].step,
		       m[rated[i].col] / 1e3, gbps(vbytes, m[rated[i].col]),
		       over_memcpy(m, rated[i].col));
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		printf("%-44s %12.1f %10.2f\n", parts[i].step,
		       m[parts[i].col] / 1e3, gbps(vbytes, m[parts[i].col]));
	printf("ratio codec/memcpy: zero-copy rx fresh %.3f (target >= 0.5); "
	       "zero-copy, cold rx %.3f; copying encoder %.3f\n", ratio_zcf,
	       ratio_zc, ratio_copy);
	printf("{\"bench\":\"codec\",\"batch_bytes\":%zu,\"frame_bytes\":%zu,"
	       "\"rows\":%u,\"dim\":%u,\"reps\":%zu,\"codec_gbps\":%.3f,"
	       "\"codec_copy_gbps\":%.3f,\"memcpy_gbps\":%.3f,"
	       "\"encode_gbps\":%.3f,\"encode_iov_gbps\":%.3f,"
	       "\"verify_gbps\":%.3f,\"ratio_copy\":%.3f,"
	       "\"ratio_zero_copy\":%.3f,\"ratio_zero_copy_rx_fresh\":%.3f,"
	       "\"ratio\":%.3f}\n",
	       vbytes, frame_len, ROWS, DIM, reps, gbps(vbytes, m[T_ZCF]),
	       gbps(vbytes, m[T_COPY]), gbps(vbytes, m[T_MEMCPY]),
	       gbps(vbytes, m[T_ENC]), gbps(vbytes, m[T_ENC_IOV]),
	       gbps(vbytes, m[T_FDEC_RX]), ratio_copy, ratio_zc, ratio_zcf,
	       ratio_zcf);
}

int main(int argc, char **argv)
{
	size_t reps = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
	size_t vbytes = (size_t)ROWS * DIM * sizeof(float);
	struct shard_vv_ent covers[NCOVERS] = {
		{ .origin = 1, .version = 1000 },
		{ .origin = 2, .version = 2000 },
	};
	struct bench bn = {
		.hdr = { .model = "bench-model", .dtype = SHARD_F32,
			 .dim = DIM },
		.vbytes = vbytes,
	};
	uint64_t *rows, *versions, *t;
	uint32_t *origins;
	float *sig, *values;
	enum fr_err err = FR_OK;
	int rc = 1;

	if (reps < 5 || reps > 100000) {
		fprintf(stderr, "bench_codec: reps must be 5..100000\n");
		return 2;
	}
	rows = malloc(ROWS * sizeof(*rows));
	versions = malloc(ROWS * sizeof(*versions));
	origins = malloc(ROWS * sizeof(*origins));
	sig = malloc(ROWS * sizeof(*sig));
	values = malloc(vbytes);
	bn.dst = malloc(vbytes);
	bn.scratch = malloc(SHARD_BATCH_IOV_SCRATCH);
	t = calloc(reps * T_COLS, sizeof(uint64_t));
	fr_wbuf_init(&bn.w, 0, 0);
	if (!rows || !versions || !origins || !sig || !values || !bn.dst ||
	    !bn.scratch || !t) {
		fprintf(stderr, "bench_codec: out of memory\n");
		goto out;
	}
	for (uint32_t i = 0; i < ROWS; i++) {
		rows[i] = (uint64_t)i * 64 + 5;
		versions[i] = FR_HLC_MAKE(1700000000000ull + i, i & 0xff);
		origins[i] = 1 + (i & 1);
		sig[i] = (float)i * 0.001f;
	}
	for (size_t i = 0; i < (size_t)ROWS * DIM; i++)
		values[i] = (float)(i % 1000) * 0.5f;
	memset(bn.dst, 1, vbytes);
	bn.values = values;
	bn.b.table = 0;
	bn.b.shard = 5;
	bn.b.n = ROWS;
	bn.b.rows = rows;
	bn.b.versions = versions;
	bn.b.origins = origins;
	bn.b.significance = sig;
	bn.b.values = values;
	bn.b.ncovers = NCOVERS;
	bn.b.covers = covers;

	if (!bench_prepare(&bn)) {
		fprintf(stderr, "bench_codec: round trip failed: %s\n",
			fr_errmsg());
		goto out;
	}

	/* The four take turns going first, so none always runs with the
	 * cache the previous one left behind. */
	for (size_t r = 0; r < reps && !err; r++) {
		uint64_t *tr = t + r * T_COLS;

		for (size_t j = 0; j < 4 && !err; j++) {
			switch ((r + j) % 4) {
			case 0:
				err = run_copy(&bn, tr);
				break;
			case 1:
				err = run_zero_copy(&bn, tr, false);
				break;
			case 2:
				err = run_zero_copy(&bn, tr, true);
				break;
			default:
				run_memcpy(&bn, r, tr);
				break;
			}
		}
	}
	if (err) {
		fprintf(stderr, "bench_codec: codec failed: %s\n", fr_errmsg());
		goto out;
	}
	/* A bare XXH3 pass over the frame, apart so it does not disturb the
	 * runs above: what the checksum alone costs. */
	for (size_t r = 0; r < reps; r++) {
		uint64_t t0 = now_ns();

		sink += XXH3_64bits(bn.rx, bn.rx_len);
		t[r * T_COLS + T_HASH] = now_ns() - t0;
	}
	report(t, reps, vbytes, bn.rx_len, bn.niov);
	rc = 0;
out:
	fr_wbuf_fini(&bn.w);
	free(bn.rx_fresh);
	free(bn.rx);
	free(t);
	free(bn.scratch);
	free(bn.dst);
	free(values);
	free(sig);
	free(origins);
	free(versions);
	free(rows);
	return rc;
}
