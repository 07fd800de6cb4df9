/*
 * test_shard_wal.c — CUnit suite for the write-ahead log (shard/wal.c):
 * the record codec and each of its error classes, group commit, segment
 * rolling and truncation, torn-tail repair, corruption detection,
 * back-pressure, I/O failure, and crash recovery under SIGKILL (the log
 * alone, and the log with a store and snapshots end to end).
 *
 * Not here: the store's own semantics (test_shard_store) or the batch codec
 * (test_shard_codec); the end-to-end test only relies on them.
 *
 * Temp dirs live under $FRESHET_TEST_TMP (or /tmp) and are removed.
 */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shard/shard.h"
#include "unit_main.h"

#define HDR 24u
#define PAD8(n) (((n) + 7u) & ~(size_t)7)

/* ========================================================================
 * Helpers
 * ===================================================================== */

static char *tmp_dir(void)
{
	const char *root = getenv("FRESHET_TEST_TMP");
	char *path;

	if (!root || !*root)
		root = "/tmp";
	(void)mkdir(root, 0755);
	if (asprintf(&path, "%s/walXXXXXX", root) < 0)
		return NULL;
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static int rm_one(const char *p, const struct stat *sb, int flag,
		  struct FTW *f)
{
	return remove(p);
}

static void rm_rf(char *path)
{
	if (!path)
		return;
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(path);
}

static char *sub_dir(const char *base, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", base, name) < 0)
		return NULL;
	return p;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* First lsns of the segment files in dir, ascending; returns the count. */
static size_t list_segs(const char *dir, uint64_t *out, size_t cap)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	unsigned long long v;

	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (sscanf(de->d_name, "wal-%20llu.log", &v) == 1 && n < cap)
			out[n++] = v;
	closedir(d);
	qsort(out, n, sizeof(*out), u64_cmp);
	return n;
}

static void seg_path(char *out, size_t cap, const char *dir, uint64_t first)
{
	snprintf(out, cap, "%s/wal-%020llu.log", dir,
		 (unsigned long long)first);
}

static off_t file_size(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -1;
	return sb.st_size;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

#define GEN_MAX 65536

/* The payload of record lsn in the generated streams: 16 B .. 64 KiB,
 * sizes spread log-uniformly so most records are small. */
static size_t gen_payload(uint64_t lsn, uint8_t *buf)
{
	uint64_t s = lsn * 0x2545F4914F6CDD1Dull, r = splitmix(&s), x;
	unsigned shift = (unsigned)(r % 13);
	size_t size = 16 + (size_t)((r >> 8) % ((16u << shift) - 15)), i;

	for (i = 0; i < size; i += 8) {
		x = splitmix(&s);
		memcpy(buf + i, &x, size - i < 8 ? size - i : 8);
	}
	return size;
}

/* Replay checker for generated streams: records arrive consecutively from
 * `next` with byte-exact generated payloads. */
struct gen_check {
	uint64_t next;
	uint64_t bad;
	uint8_t buf[GEN_MAX];
};

static enum fr_err gen_check_cb(uint64_t lsn, const uint8_t *rec, size_t len,
				void *arg)
{
	struct gen_check *c = arg;
	size_t n;

	if (lsn != c->next)
		c->bad++;
	c->next = lsn + 1;
	n = gen_payload(lsn, c->buf);
	if (n != len || memcmp(c->buf, rec, n) != 0)
		c->bad++;
	if (((uintptr_t)rec & 7) != 0)
		c->bad++;
	return FR_OK;
}

/* Small fixed-size records: payload i is `len` bytes of (i * 7 + j). */
static void small_payload(uint64_t lsn, uint8_t *buf, size_t len)
{
	size_t j;

	for (j = 0; j < len; j++)
		buf[j] = (uint8_t)(lsn * 7 + j);
}

struct small_check {
	uint64_t next;
	uint64_t bad;
	size_t len;
};

static enum fr_err small_check_cb(uint64_t lsn, const uint8_t *rec,
				  size_t len, void *arg)
{
	struct small_check *c = arg;
	uint8_t buf[4096];

	if (lsn != c->next)
		c->bad++;
	c->next = lsn + 1;
	small_payload(lsn, buf, c->len);
	if (len != c->len || memcmp(buf, rec, len) != 0)
		c->bad++;
	return FR_OK;
}

/* Replay dir after `after` into c, which expects lsn after + 1 first: it
 * must work, visit `records` records and find every one as written. */
static void replay_small(const char *dir, uint64_t after, struct small_check *c,
			 struct shard_wal_replay_stats *st, uint64_t records)
{
	c->next = after + 1;
	CU_ASSERT_EQUAL(shard_wal_replay(dir, after, small_check_cb, c, st),
			FR_OK);
	CU_ASSERT_EQUAL(st->records, records);
	CU_ASSERT_EQUAL(c->bad, 0);
}

/* Append n small records of len bytes, waiting for each when `wait`. */
static void append_small(struct shard_wal *w, uint64_t first, uint64_t n,
			 size_t len, bool wait)
{
	uint8_t buf[4096];
	uint64_t i, lsn;

	for (i = 0; i < n; i++) {
		small_payload(first + i, buf, len);
		CU_ASSERT_EQUAL_FATAL(shard_wal_append(w, buf, len, &lsn), FR_OK);
		CU_ASSERT_EQUAL(lsn, first + i);
		if (wait)
			CU_ASSERT_EQUAL(shard_wal_wait(w, lsn), FR_OK);
	}
}

/* ========================================================================
 * Record codec
 * ===================================================================== */

static void test_codec_roundtrip(void)
{
	static const size_t lens[] = { 0, 1, 7, 8, 9, 100, 4096 };
	uint8_t payload[4096], lb[8 + 4096];
	struct fr_wbuf w;
	const uint8_t *p;
	size_t i, off = 0, plen, used;
	uint64_t lsn, sum;

	fr_wbuf_init(&w, 64, 0);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		small_payload(1000 + i, payload, lens[i]);
		shard_wal_record_encode(&w, 1000 + i, payload, lens[i]);
	}
	CU_ASSERT_EQUAL_FATAL(w.err, FR_OK);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(shard_wal_record_decode(w.data + off,
							      w.len - off, 0,
							      &lsn, &p, &plen,
							      &used), FR_OK);
		CU_ASSERT_EQUAL(lsn, 1000 + i);
		CU_ASSERT_EQUAL(plen, lens[i]);
		CU_ASSERT_EQUAL(used, HDR + PAD8(lens[i]));
		CU_ASSERT_EQUAL((p - w.data) % 8, 0);
		small_payload(1000 + i, payload, lens[i]);
		CU_ASSERT_EQUAL(memcmp(p, payload, plen), 0);
		/* The documented checksum: XXH3-64 of lsn bytes + payload. */
		memcpy(lb, &lsn, 8);
		memcpy(lb + 8, payload, lens[i]);
		memcpy(&sum, w.data + off + 16, 8);
		CU_ASSERT_EQUAL(sum, XXH3_64bits(lb, 8 + lens[i]));
		off += used;
	}
	CU_ASSERT_EQUAL(off, w.len);
	fr_wbuf_fini(&w);
}

static enum fr_err decode1(const uint8_t *b, size_t len, size_t max)
{
	const uint8_t *p;
	size_t plen, used;
	uint64_t lsn;

	return shard_wal_record_decode(b, len, max, &lsn, &p, &plen, &used);
}

static void test_codec_errors(void)
{
	uint8_t payload[13], rec[64], bad[64];
	struct fr_wbuf w;
	size_t n;

	memset(payload, 0xab, sizeof(payload));
	fr_wbuf_init_fixed(&w, rec, sizeof(rec));
	shard_wal_record_encode(&w, 5, payload, sizeof(payload));
	CU_ASSERT_EQUAL_FATAL(w.err, FR_OK);
	n = w.len;
	CU_ASSERT_EQUAL_FATAL(n, HDR + 16);
	CU_ASSERT_EQUAL(decode1(rec, n, 0), FR_OK);

	/* short header */
	CU_ASSERT_EQUAL(decode1(rec, 0, 0), FR_ERR_TRUNC);
	CU_ASSERT_EQUAL(decode1(rec, HDR - 1, 0), FR_ERR_TRUNC);
	/* bad reserved */
	memcpy(bad, rec, n);
	bad[5] = 1;
	CU_ASSERT_EQUAL(decode1(bad, n, 0), FR_ERR_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "reserved"));
	/* oversize len (against the limit passed in) */
	CU_ASSERT_EQUAL(decode1(rec, n, 12), FR_ERR_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "len"));
	CU_ASSERT_EQUAL(decode1(rec, n, 13), FR_OK);
	memcpy(bad, rec, n);
	bad[3] = 0x80;     /* len = 2^31 + 13 > the 256 MiB default */
	CU_ASSERT_EQUAL(decode1(bad, n, 0), FR_ERR_CORRUPT);
	/* short payload, short padding */
	CU_ASSERT_EQUAL(decode1(rec, HDR + 5, 0), FR_ERR_TRUNC);
	CU_ASSERT_EQUAL(decode1(rec, n - 1, 0), FR_ERR_TRUNC);
	/* flipped checksum byte */
	memcpy(bad, rec, n);
	bad[16 + 3] ^= 0x10;
	CU_ASSERT_EQUAL(decode1(bad, n, 0), FR_ERR_CHECKSUM);
	/* flipped lsn byte: the lsn is covered by the checksum */
	memcpy(bad, rec, n);
	bad[8] ^= 0x02;
	CU_ASSERT_EQUAL(decode1(bad, n, 0), FR_ERR_CHECKSUM);
	/* flipped payload byte */
	memcpy(bad, rec, n);
	bad[HDR + 4] ^= 0x01;
	CU_ASSERT_EQUAL(decode1(bad, n, 0), FR_ERR_CHECKSUM);
	/* nonzero padding */
	memcpy(bad, rec, n);
	bad[n - 1] = 1;
	CU_ASSERT_EQUAL(decode1(bad, n, 0), FR_ERR_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "padding"));
	/* lsn 0 is never written */
	fr_wbuf_init_fixed(&w, bad, sizeof(bad));
	shard_wal_record_encode(&w, 0, payload, 8);
	CU_ASSERT_EQUAL(decode1(bad, w.len, 0), FR_ERR_CORRUPT);
	/* a fixed buffer too small for the record is a sticky TOOBIG */
	fr_wbuf_init_fixed(&w, bad, 30);
	shard_wal_record_encode(&w, 1, payload, 13);
	CU_ASSERT_EQUAL(w.err, FR_ERR_TOOBIG);
}

/* ========================================================================
 * Appending
 * ===================================================================== */

static void test_append_wait_replay(void)
{
	struct shard_wal_replay_stats st;
	struct small_check c = { .next = 1, .len = 100 };
	struct shard_wal *w;
	char *dir = tmp_dir(), *wd;
	enum fr_err err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	wd = sub_dir(dir, "log");    /* does not exist yet: open makes it */
	/* A missing dir replays as empty. */
	replay_small(wd, 0, &c, &st, 0);
	CU_ASSERT_EQUAL(st.last_lsn, 0);

	w = shard_wal_open(wd, 1, NULL, &err);
	CU_ASSERT_EQUAL_FATAL(err, FR_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL(shard_wal_durable_lsn(w), 0);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 0), FR_OK);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 1), FR_ERR_INVAL);
	append_small(w, 1, 50, 100, true);
	CU_ASSERT_EQUAL(shard_wal_durable_lsn(w), 50);
	shard_wal_close(w);
	shard_wal_close(NULL);

	replay_small(wd, 0, &c, &st, 50);
	CU_ASSERT_EQUAL(st.last_lsn, 50);
	CU_ASSERT_EQUAL(st.torn_bytes, 0);
	CU_ASSERT_EQUAL(c.next, 51);
	/* after_lsn skips but still reports last_lsn */
	replay_small(wd, 20, &c, &st, 30);
	CU_ASSERT_EQUAL(st.skipped, 20);
	CU_ASSERT_EQUAL(st.last_lsn, 50);
	/* Opening behind the log is refused; at the end is fine, twice
	 * (the empty segment left by the first open is reused). */
	CU_ASSERT_PTR_NULL(shard_wal_open(wd, 1, NULL, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_EXISTS);
	w = shard_wal_open(wd, 51, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	shard_wal_close(w);
	w = shard_wal_open(wd, 51, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	append_small(w, 51, 5, 100, false);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 55), FR_OK);
	shard_wal_close(w);
	replay_small(wd, 0, &c, &st, 55);
	free(wd);
	rm_rf(dir);
}

static atomic_uint group_count;

static void count_cb(uint64_t durable, void *arg)
{
	atomic_uint *last = arg;

	atomic_fetch_add(&group_count, 1);
	atomic_store(last, (unsigned)durable);
}

static void test_group_commit(void)
{
	struct shard_wal_opts o = { 0 };
	struct shard_wal_replay_stats st;
	struct small_check c = { .next = 1, .len = 40 };
	atomic_uint last = 0;
	struct shard_wal *w;
	char *dir = tmp_dir();
	enum fr_err err;
	unsigned groups;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	atomic_store(&group_count, 0);
	o.durable_cb = count_cb;
	o.cb_arg = &last;
	w = shard_wal_open(dir, 1, &o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	append_small(w, 1, 1000, 40, false);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 1000), FR_OK);
	CU_ASSERT_EQUAL(shard_wal_durable_lsn(w), 1000);
	shard_wal_close(w);
	groups = atomic_load(&group_count);
	printf("\n    group commit: 1000 appends -> %u fdatasync groups\n",
	       groups);
	CU_ASSERT(groups >= 1);
	CU_ASSERT(groups <= 100);
	CU_ASSERT_EQUAL(atomic_load(&last), 1000);

	replay_small(dir, 0, &c, &st, 1000);
	CU_ASSERT_EQUAL(c.next, 1001);
	rm_rf(dir);
}

/* ========================================================================
 * Segments
 * ===================================================================== */

static void test_segments_truncate(void)
{
	struct shard_wal_opts o = { .segment_bytes = 4096 };
	struct shard_wal_replay_stats st;
	struct small_check c = { .len = 500 };
	uint64_t segs[256], segs2[256];
	size_t n, n2, i;
	struct shard_wal *w;
	char *dir = tmp_dir();
	char path[4096];
	enum fr_err err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	/* 524-byte records: 7 per 4 KiB segment. */
	w = shard_wal_open(dir, 1, &o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	append_small(w, 1, 100, 500, false);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 100), FR_OK);
	n = list_segs(dir, segs, 256);
	CU_ASSERT_EQUAL(n, 15);
	for (i = 0; i < n; i++) {
		seg_path(path, sizeof(path), dir, segs[i]);
		CU_ASSERT_EQUAL(segs[i], 1 + 7 * i);
		CU_ASSERT(file_size(path) <= 4096);
	}

	replay_small(dir, 0, &c, &st, 100);

	/* Nothing is covered by 0; lsn 36 covers segments [1,7]..[29,35]. */
	CU_ASSERT_EQUAL(shard_wal_truncate_before(w, 0), FR_OK);
	CU_ASSERT_EQUAL(list_segs(dir, segs2, 256), 15);
	CU_ASSERT_EQUAL(shard_wal_truncate_before(w, 36), FR_OK);
	n2 = list_segs(dir, segs2, 256);
	CU_ASSERT_EQUAL(n2, 10);
	CU_ASSERT_EQUAL(segs2[0], 36);
	/* 41 is not the last lsn of [36,42]: that segment stays. */
	CU_ASSERT_EQUAL(shard_wal_truncate_before(w, 41), FR_OK);
	CU_ASSERT_EQUAL(list_segs(dir, segs2, 256), 10);

	replay_small(dir, 36, &c, &st, 64);
	CU_ASSERT_EQUAL(st.skipped, 1);
	CU_ASSERT_EQUAL(st.last_lsn, 100);
	/* A replay that needs records already truncated says so. */
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, NULL, NULL, &st),
			FR_ERR_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "missing"));
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 34, NULL, NULL, &st),
			FR_ERR_CORRUPT);
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 35, NULL, NULL, &st), FR_OK);

	/* Everything covered: only the newest segment survives, and the
	 * log keeps appending. */
	CU_ASSERT_EQUAL(shard_wal_truncate_before(w, UINT64_MAX), FR_OK);
	n2 = list_segs(dir, segs2, 256);
	CU_ASSERT_EQUAL(n2, 1);
	CU_ASSERT_EQUAL(segs2[0], segs[n - 1]);
	append_small(w, 101, 10, 500, true);
	shard_wal_close(w);
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 100, NULL, NULL, &st), FR_OK);
	CU_ASSERT_EQUAL(st.records, 10);
	CU_ASSERT_EQUAL(st.last_lsn, 110);
	rm_rf(dir);
}

/* ========================================================================
 * Torn tails and corruption
 * ===================================================================== */

enum cut_kind { CUT_MID_HEADER, CUT_MID_PAYLOAD, CUT_MID_PADDING,
		CUT_GARBAGE, CUT_ZEROS, CUT_WHOLE_SEGMENT, CUT__COUNT };

static void torn_case(enum cut_kind kind)
{
	/* 101-byte payloads: 24 + 104 = 128-byte records. */
	struct shard_wal_opts o = { .segment_bytes = 10 * 128 };
	struct shard_wal_replay_stats st;
	struct small_check c = { .len = 101 };
	uint64_t segs[16];
	struct shard_wal *w;
	char *dir = tmp_dir();
	char path[4096];
	uint8_t junk[4096];
	off_t cut = 0, size, kept;
	uint64_t whole, nseg;
	enum fr_err err;
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	w = shard_wal_open(dir, 1, &o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	/* Whole-segment case: 11 records, so the last segment holds one. */
	append_small(w, 1, kind == CUT_WHOLE_SEGMENT ? 11 : 10, 101, false);
	CU_ASSERT_EQUAL(shard_wal_wait(w, kind == CUT_WHOLE_SEGMENT ? 11 : 10),
			FR_OK);
	shard_wal_close(w);
	nseg = list_segs(dir, segs, 16);
	CU_ASSERT_EQUAL_FATAL(nseg, kind == CUT_WHOLE_SEGMENT ? 2 : 1);
	seg_path(path, sizeof(path), dir, segs[nseg - 1]);
	size = file_size(path);
	whole = 9;
	switch (kind) {
	case CUT_MID_HEADER:
		cut = 9 * 128 + 10;
		break;
	case CUT_MID_PAYLOAD:
		cut = 9 * 128 + HDR + 50;
		break;
	case CUT_MID_PADDING:
		cut = 9 * 128 + HDR + 102;
		break;
	case CUT_WHOLE_SEGMENT:
		cut = 5;
		whole = 10;
		break;
	case CUT_GARBAGE:
	case CUT_ZEROS:
		whole = 10;
		cut = size;
		break;
	default:
		break;
	}
	if (kind == CUT_GARBAGE || kind == CUT_ZEROS) {
		/* garbage: stray bytes past the end, as a crash mid-extend
		 * on some filesystems leaves; zeros: the size grew but the
		 * data never landed */
		uint64_t s = 99;
		size_t i, nj = kind == CUT_GARBAGE ? 37 : sizeof(junk);

		for (i = 0; i < nj; i++)
			junk[i] = kind == CUT_GARBAGE ? (uint8_t)splitmix(&s) : 0;
		fd = open(path, O_WRONLY | O_APPEND);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_EQUAL(write(fd, junk, nj), (ssize_t)nj);
		close(fd);
		size = file_size(path);
	} else {
		CU_ASSERT_EQUAL_FATAL(truncate(path, cut), 0);
		size = cut;
	}

	/* Bytes of whole records left in the newest segment. */
	kept = kind == CUT_WHOLE_SEGMENT ? 0 : (off_t)whole * 128;
	replay_small(dir, 0, &c, &st, whole);
	CU_ASSERT_EQUAL(st.last_lsn, whole);
	CU_ASSERT_EQUAL(st.torn_bytes, (uint64_t)(size - kept));
	CU_ASSERT_EQUAL(file_size(path), kept);

	/* The repaired log is clean. */
	replay_small(dir, 0, &c, &st, whole);
	CU_ASSERT_EQUAL(st.torn_bytes, 0);

	/* And appending resumes after it. */
	w = shard_wal_open(dir, st.last_lsn + 1, &o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	append_small(w, whole + 1, 3, 101, false);
	CU_ASSERT_EQUAL(shard_wal_wait(w, whole + 3), FR_OK);
	shard_wal_close(w);
	replay_small(dir, 0, &c, &st, whole + 3);
	CU_ASSERT_EQUAL(st.torn_bytes, 0);
	rm_rf(dir);
}

static void test_torn_tail(void)
{
	int k;

	for (k = 0; k < CUT__COUNT; k++)
		torn_case((enum cut_kind)k);
}

static void test_corrupt_middle(void)
{
	struct shard_wal_opts o = { .segment_bytes = 10 * 128 };
	struct shard_wal_replay_stats st;
	uint64_t segs[16];
	struct shard_wal *w;
	char *dir = tmp_dir();
	char path[4096];
	enum fr_err err;
	off_t size;
	uint8_t b;
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	w = shard_wal_open(dir, 1, &o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	append_small(w, 1, 35, 101, false);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 35), FR_OK);
	shard_wal_close(w);
	CU_ASSERT_EQUAL_FATAL(list_segs(dir, segs, 16), 4);

	/* A flipped payload byte in the second segment: not a torn tail. */
	seg_path(path, sizeof(path), dir, segs[1]);
	size = file_size(path);
	fd = open(path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pread(fd, &b, 1, 3 * 128 + HDR + 7), 1);
	b ^= 0x40;
	CU_ASSERT_EQUAL(pwrite(fd, &b, 1, 3 * 128 + HDR + 7), 1);
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, NULL, NULL, &st),
			FR_ERR_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "offset 384"));
	CU_ASSERT_EQUAL(file_size(path), size);    /* nothing cut */
	b ^= 0x40;
	CU_ASSERT_EQUAL(pwrite(fd, &b, 1, 3 * 128 + HDR + 7), 1);
	close(fd);
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, NULL, NULL, &st), FR_OK);
	CU_ASSERT_EQUAL(st.records, 35);

	/* A torn record in a segment that is not the newest. */
	seg_path(path, sizeof(path), dir, segs[2]);
	CU_ASSERT_EQUAL(truncate(path, 5 * 128 + 3), 0);
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, NULL, NULL, &st),
			FR_ERR_CORRUPT);

	/* A missing middle segment: an lsn gap between segments. */
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, NULL, NULL, &st),
			FR_ERR_CORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "expected 21"));

	/* A segment whose name does not match its first record. */
	{
		char to[4096];

		seg_path(path, sizeof(path), dir, segs[3]);
		seg_path(to, sizeof(to), dir, 21);
		CU_ASSERT_EQUAL(rename(path, to), 0);
		CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, NULL, NULL, &st),
				FR_ERR_CORRUPT);
		CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "name"));
	}

	/* Unrelated files are ignored; malformed wal-* names are skipped
	 * with a warning. */
	{
		char *d2 = sub_dir(dir, "clean");

		w = shard_wal_open(d2, 1, NULL, &err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(w);
		append_small(w, 1, 3, 10, true);
		shard_wal_close(w);
		snprintf(path, sizeof(path), "%s/README", d2);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		close(fd);
		snprintf(path, sizeof(path), "%s/wal-12.log", d2);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		close(fd);
		CU_ASSERT_EQUAL(shard_wal_replay(d2, 0, NULL, NULL, &st),
				FR_OK);
		CU_ASSERT_EQUAL(st.records, 3);
		free(d2);
	}
	rm_rf(dir);
}

/* ========================================================================
 * Limits and failure
 * ===================================================================== */

struct gate {
	sem_t entered;
	sem_t release;
	atomic_int calls;
};

/* Holds the writer inside its first callback until released, so the
 * queue cannot drain and back-pressure is deterministic. */
static void gate_cb(uint64_t durable, void *arg)
{
	struct gate *g = arg;

	if (atomic_fetch_add(&g->calls, 1) == 0) {
		sem_post(&g->entered);
		sem_wait(&g->release);
	}
}

static void test_busy_toobig(void)
{
	struct gate g;
	struct shard_wal_opts o = { .max_record_bytes = 1000,
				    .max_queued_bytes = 1024,
				    .durable_cb = gate_cb, .cb_arg = &g };
	struct shard_wal_replay_stats st;
	uint8_t buf[1001];
	struct shard_wal *w;
	char *dir = tmp_dir();
	enum fr_err err;
	uint64_t lsn;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	sem_init(&g.entered, 0, 0);
	sem_init(&g.release, 0, 0);
	atomic_store(&g.calls, 0);
	memset(buf, 0x5a, sizeof(buf));
	w = shard_wal_open(dir, 1, &o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);

	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 1001, &lsn), FR_ERR_TOOBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "max_record_bytes"));
	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 10, &lsn), FR_OK);
	CU_ASSERT_EQUAL(lsn, 1);
	sem_wait(&g.entered);     /* the writer is now parked in gate_cb */
	CU_ASSERT_EQUAL(shard_wal_wait(w, 1), FR_OK);
	/* 624 bytes on an empty queue fit; 624 more would be 1248 > 1024. */
	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 600, &lsn), FR_OK);
	CU_ASSERT_EQUAL(lsn, 2);
	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 600, &lsn), FR_ERR_BUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "max_queued_bytes"));
	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 300, &lsn), FR_OK);
	CU_ASSERT_EQUAL(lsn, 3);
	/* One record bigger than the whole bound goes in once the queue
	 * has drained, so it is slow, never impossible. */
	sem_post(&g.release);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 3), FR_OK);
	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 1000, &lsn), FR_OK);
	CU_ASSERT_EQUAL(lsn, 4);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 4), FR_OK);
	shard_wal_close(w);
	CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, NULL, NULL, &st), FR_OK);
	CU_ASSERT_EQUAL(st.records, 4);
	sem_destroy(&g.entered);
	sem_destroy(&g.release);
	rm_rf(dir);
}

static void test_io_failure(void)
{
	struct shard_wal_opts o = { .segment_bytes = 200 };
	struct shard_wal *w;
	char *dir = tmp_dir(), *wd;
	char path[4096];
	enum fr_err err;
	uint8_t buf[100] = { 0 };
	uint64_t lsn;
	int saved;

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	wd = sub_dir(dir, "log");
	w = shard_wal_open(wd, 1, &o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 100, &lsn), FR_OK);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 1), FR_OK);
	/* Pull the directory out from under the log: the next record must
	 * roll to a new segment, which cannot be created. */
	seg_path(path, sizeof(path), wd, 1);
	CU_ASSERT_EQUAL(unlink(path), 0);
	CU_ASSERT_EQUAL(rmdir(wd), 0);
	saved = fr_log_threshold;
	fr_log_threshold = FR_LOG_OFF;
	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 100, &lsn), FR_OK);
	CU_ASSERT_EQUAL(shard_wal_wait(w, 2), FR_ERR_IO);
	CU_ASSERT_EQUAL(shard_wal_append(w, buf, 100, &lsn), FR_ERR_IO);
	CU_ASSERT_EQUAL(shard_wal_durable_lsn(w), 1);
	shard_wal_close(w);
	fr_log_threshold = saved;
	free(wd);
	rm_rf(dir);
}

/* ========================================================================
 * Crash recovery: SIGKILL a writer mid-stream
 * ===================================================================== */

static bool read_full(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	ssize_t k;

	while (n) {
		k = read(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

/* Fork a child running child(arg, wfd), which reports each durable lsn it
 * reaches (8 bytes) on wfd and never returns.  Read its reports until one
 * is at least `durable` and there were at least `reports` (with `rising`,
 * checking that each is >= the one before), wait delay_us, SIGKILL it and
 * reap it.  Returns the highest lsn it reported, those written before the
 * kill included. */
static uint64_t run_and_kill(void (*child)(void *arg, int wfd), void *arg,
			     uint64_t durable, uint64_t reports, bool rising,
			     unsigned delay_us)
{
	uint64_t d, max_durable = 0, n = 0;
	int pfd[2], status;
	pid_t pid;

	CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
	fflush(stdout);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		child(arg, pfd[1]);
	}
	close(pfd[1]);
	while (max_durable < durable || n < reports) {
		if (!read_full(pfd[0], &d, 8))
			break;
		if (rising)
			CU_ASSERT(d >= max_durable);
		max_durable = d;
		n++;
	}
	if (delay_us)
		usleep(delay_us);
	kill(pid, SIGKILL);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* Reports written before the kill still count. */
	while (read_full(pfd[0], &d, 8))
		if (d > max_durable)
			max_durable = d;
	close(pfd[0]);
	return max_durable;
}

/* Child (arg: the log's dir): append the generated stream, wait every few
 * records and report each durable lsn on the pipe.  Never returns. */
static void kill_child(void *arg, int wfd)
{
	const char *dir = arg;
	static uint8_t buf[GEN_MAX];
	struct shard_wal_opts o = { .segment_bytes = 1 << 20 };
	struct shard_wal *w;
	enum fr_err err;
	uint64_t lsn, d;
	size_t n;

	w = shard_wal_open(dir, 1, &o, &err);
	if (!w)
		_exit(2);
	for (lsn = 1; lsn <= 100000; lsn++) {
		n = gen_payload(lsn, buf);
		while ((err = shard_wal_append(w, buf, n, &d)) == FR_ERR_BUSY)
			usleep(100);
		if (err || d != lsn)
			_exit(3);
		if (lsn % (1 + lsn % 7) == 0) {
			if (shard_wal_wait(w, lsn))
				_exit(4);
			d = shard_wal_durable_lsn(w);
			if (write(wfd, &d, 8) != 8)
				_exit(5);
		}
	}
	pause();
	_exit(0);
}

static void test_sigkill(void)
{
	int round;

	for (round = 0; round < 3; round++) {
		struct shard_wal_replay_stats st;
		struct gen_check *c;
		char *dir = tmp_dir();
		uint64_t max_durable;

		CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
		/* Kill at a different point each round, after round 0 a
		 * little later still, to land mid-group, probably. */
		max_durable = run_and_kill(kill_child, dir,
					   200u + 150u * (unsigned)round,
					   20u + 11u * (unsigned)round, true,
					   700u * (unsigned)round);
		CU_ASSERT(max_durable >= 200);

		c = calloc(1, sizeof(*c));
		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		c->next = 1;
		CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, gen_check_cb, c, &st),
				FR_OK);
		CU_ASSERT(st.last_lsn >= max_durable);
		CU_ASSERT_EQUAL(st.records, st.last_lsn);
		CU_ASSERT_EQUAL(c->next, st.last_lsn + 1);
		CU_ASSERT_EQUAL(c->bad, 0);
		printf("\n    sigkill round %d: reported durable %llu, recovered %llu, torn %llu bytes",
		       round, (unsigned long long)max_durable,
		       (unsigned long long)st.last_lsn,
		       (unsigned long long)st.torn_bytes);
		/* Clean now, and appendable. */
		c->next = 1;
		CU_ASSERT_EQUAL(shard_wal_replay(dir, 0, gen_check_cb, c, &st),
				FR_OK);
		CU_ASSERT_EQUAL(st.torn_bytes, 0);
		CU_ASSERT_EQUAL(c->bad, 0);
		free(c);
		rm_rf(dir);
	}
	printf("\n");
}

/* ========================================================================
 * End to end: a store logged to the WAL, snapshotted, killed, recovered
 * ===================================================================== */

#define E2E_ROWS 4096
#define E2E_DIM 16
#define E2E_SHARDS 8
#define E2E_PER_SHARD (E2E_ROWS / E2E_SHARDS)
#define E2E_MAX_N 64
#define E2E_SNAP_EVERY 40
#define E2E_REPORT_EVERY 5

struct e2e_batch {
	uint64_t rows[E2E_MAX_N];
	uint64_t versions[E2E_MAX_N];
	uint32_t origins[E2E_MAX_N];
	float values[E2E_MAX_N * E2E_DIM];
	struct shard_vv_ent cover;
	struct shard_batch b;
};

static const struct shard_batch_hdr e2e_hdr = {
	.model = "walmodel", .dtype = SHARD_F32, .dim = E2E_DIM,
};

static void e2e_def(struct shard_model_def *def)
{
	memset(def, 0, sizeof(*def));
	strcpy(def->name, "walmodel");
	def->priority = 1;
	def->shards = E2E_SHARDS;
	def->ntables = 1;
	strcpy(def->tables[0].name, "emb");
	def->tables[0].rows = E2E_ROWS;
	def->tables[0].dim = E2E_DIM;
	def->tables[0].dtype = SHARD_F32;
}

/* Batch k of the stream: distinct rows of shard k % 8, all stamped
 * (version k, origin 1), covering origin 1 up to k. */
static void e2e_gen(uint64_t k, struct e2e_batch *eb)
{
	uint32_t s = (uint32_t)(k % E2E_SHARDS);
	uint32_t n = 1 + (uint32_t)((k * 7) % E2E_MAX_N);
	uint32_t base = (uint32_t)((k * 131) % E2E_PER_SHARD), i, d;

	for (i = 0; i < n; i++) {
		uint64_t row = s + (uint64_t)E2E_SHARDS *
				   ((base + i) % E2E_PER_SHARD);

		eb->rows[i] = row;
		eb->versions[i] = k;
		eb->origins[i] = 1;
		for (d = 0; d < E2E_DIM; d++)
			eb->values[i * E2E_DIM + d] =
				(float)((k * 31 + row * 7 + d) % 1000) / 8.0f;
	}
	eb->cover.origin = 1;
	eb->cover.version = k;
	memset(&eb->b, 0, sizeof(eb->b));
	eb->b.table = 0;
	eb->b.shard = s;
	eb->b.n = n;
	eb->b.rows = eb->rows;
	eb->b.versions = eb->versions;
	eb->b.origins = eb->origins;
	eb->b.values = eb->values;
	eb->b.ncovers = 1;
	eb->b.covers = &eb->cover;
}

static enum fr_err e2e_apply_cb(uint64_t lsn, const uint8_t *rec, size_t len,
				void *arg)
{
	struct shard_store *st = arg;
	struct shard_apply_result res;
	struct shard_batch_hdr h;
	struct shard_batch b;
	enum fr_err err;

	err = shard_batch_decode(rec, len, &h, &b);
	if (err)
		return err;
	if (strcmp(h.model, e2e_hdr.model) != 0 || h.dtype != SHARD_F32 ||
	    h.dim != E2E_DIM)
		return fr_fail(FR_ERR_CORRUPT, "lsn %llu: foreign batch",
			       (unsigned long long)lsn);
	return shard_store_apply(st, &b, &res, NULL);
}

/* Log a batch, then apply it: the order a node uses. */
static enum fr_err e2e_log_apply(struct shard_wal *w, struct shard_store *st,
				 struct fr_wbuf *buf, uint64_t k)
{
	static struct e2e_batch eb;
	struct shard_apply_result res;
	enum fr_err err;
	uint64_t lsn;

	e2e_gen(k, &eb);
	fr_wbuf_reset(buf);
	err = shard_batch_encode(buf, &e2e_hdr, &eb.b);
	if (err)
		return err;
	while ((err = shard_wal_append(w, buf->data, buf->len, &lsn)) ==
	       FR_ERR_BUSY)
		usleep(100);
	if (err)
		return err;
	if (lsn != k)
		return FR_ERR_CORRUPT;
	err = shard_store_apply(st, &eb.b, &res, NULL);
	if (!err && res.applied != eb.b.n)
		err = FR_ERR_CORRUPT;
	return err;
}

static const struct shard_wal_opts e2e_wal_opts = {
	.segment_bytes = 64 << 10,
};

/* Child (arg: the test's dir, holding snapshot/ and wal/). */
static void e2e_child(void *arg, int wfd)
{
	const char *snap = sub_dir(arg, "snapshot");
	const char *waldir = sub_dir(arg, "wal");
	struct shard_store_opts so = { 0 };
	struct shard_model_def def;
	struct shard_store *st;
	struct shard_wal *w;
	struct fr_wbuf buf;
	enum fr_err err;
	uint64_t k, d;

	if (!snap || !waldir)
		_exit(2);
	e2e_def(&def);
	st = shard_store_new(&def, &so, &err);
	w = shard_wal_open(waldir, 1, &e2e_wal_opts, &err);
	if (!st || !w)
		_exit(2);
	fr_wbuf_init(&buf, 8192, 0);
	for (k = 1; k <= 100000; k++) {
		if (e2e_log_apply(w, st, &buf, k))
			_exit(3);
		if (k % E2E_REPORT_EVERY == 0) {
			if (shard_wal_wait(w, k))
				_exit(4);
			d = shard_wal_durable_lsn(w);
			if (write(wfd, &d, 8) != 8)
				_exit(5);
		}
		/* Snapshot only what is durable, then drop the log it
		 * covers. */
		if (k % E2E_SNAP_EVERY == 0) {
			if (shard_wal_wait(w, k) ||
			    shard_store_snapshot(st, snap, k) ||
			    shard_wal_truncate_before(w, k))
				_exit(6);
		}
	}
	pause();
	_exit(0);
}

/* Recover: snapshot (if any) + replay of the log after it. */
static struct shard_store *e2e_recover(const char *snap, const char *waldir,
				       uint64_t *snap_lsn,
				       struct shard_wal_replay_stats *rs)
{
	struct shard_store_opts so = { 0 };
	struct shard_model_def def;
	struct shard_store *st;
	enum fr_err err;

	*snap_lsn = 0;
	st = shard_store_load(snap, &so, snap_lsn, &err);
	if (!st) {
		CU_ASSERT_EQUAL(err, FR_ERR_NOTFOUND);
		e2e_def(&def);
		st = shard_store_new(&def, &so, &err);
		*snap_lsn = 0;
	}
	if (!st)
		return NULL;
	err = shard_wal_replay(waldir, *snap_lsn, e2e_apply_cb, st, rs);
	CU_ASSERT_EQUAL(err, FR_OK);
	if (err)
		fprintf(stderr, "replay: %s: %s\n", fr_strerror(err),
			fr_errmsg());
	return st;
}

/* Byte-exact comparison of everything the store holds. */
static void e2e_assert_equal(const struct shard_store *a,
			     const struct shard_store *b)
{
	uint64_t row, va, vb;
	uint32_t oa, ob, s, bad = 0;

	CU_ASSERT_EQUAL(memcmp(shard_store_table_data(a, 0),
			       shard_store_table_data(b, 0),
			       (size_t)E2E_ROWS * E2E_DIM * 4), 0);
	for (row = 0; row < E2E_ROWS; row++) {
		shard_store_row_version(a, 0, row, &va, &oa);
		shard_store_row_version(b, 0, row, &vb, &ob);
		if (va != vb || oa != ob)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (s = 0; s < E2E_SHARDS; s++)
		CU_ASSERT(shard_vv_equal(shard_store_vv(a, 0, s),
					 shard_store_vv(b, 0, s)));
	CU_ASSERT_EQUAL(shard_store_table_checksum(a, 0),
			shard_store_table_checksum(b, 0));
	CU_ASSERT_EQUAL(shard_store_summary(a), shard_store_summary(b));
}

static struct shard_store *e2e_expected(uint64_t last)
{
	static struct e2e_batch eb;
	struct shard_store_opts so = { 0 };
	struct shard_apply_result res;
	struct shard_model_def def;
	struct shard_store *st;
	enum fr_err err;
	uint64_t k;

	e2e_def(&def);
	st = shard_store_new(&def, &so, &err);
	if (!st)
		return NULL;
	for (k = 1; k <= last; k++) {
		e2e_gen(k, &eb);
		CU_ASSERT_EQUAL(shard_store_apply(st, &eb.b, &res, NULL), FR_OK);
	}
	return st;
}

static void test_store_recovery(void)
{
	int round;

	for (round = 0; round < 3; round++) {
		struct shard_wal_replay_stats rs;
		struct shard_store *got, *exp;
		struct shard_wal *w;
		struct fr_wbuf buf;
		char *dir = tmp_dir(), *snap, *waldir;
		uint64_t max_durable, snap_lsn, last, k;
		uint64_t segs[1024];
		enum fr_err err;

		CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
		snap = sub_dir(dir, "snapshot");
		waldir = sub_dir(dir, "wal");
		max_durable = run_and_kill(e2e_child, dir,
					   100u + 70u * (unsigned)round, 20u,
					   false, 900u * (unsigned)round);
		CU_ASSERT_FATAL(max_durable >= 100);

		got = e2e_recover(snap, waldir, &snap_lsn, &rs);
		CU_ASSERT_PTR_NOT_NULL_FATAL(got);
		last = rs.last_lsn > snap_lsn ? rs.last_lsn : snap_lsn;
		printf("\n    store recovery round %d: reported durable %llu, snapshot lsn %llu, replayed %llu, recovered %llu",
		       round, (unsigned long long)max_durable,
		       (unsigned long long)snap_lsn,
		       (unsigned long long)rs.records,
		       (unsigned long long)last);
		/* A snapshot was taken and the log behind it was dropped. */
		CU_ASSERT(snap_lsn >= E2E_SNAP_EVERY);
		CU_ASSERT(list_segs(waldir, segs, 1024) >= 1);
		CU_ASSERT(segs[0] > 1);
		CU_ASSERT(last >= max_durable);
		exp = e2e_expected(last);
		CU_ASSERT_PTR_NOT_NULL_FATAL(exp);
		e2e_assert_equal(got, exp);

		/* The recovered node carries on: log more, restart again. */
		w = shard_wal_open(waldir, last + 1, &e2e_wal_opts, &err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(w);
		fr_wbuf_init(&buf, 8192, 0);
		for (k = last + 1; k <= last + 10; k++) {
			CU_ASSERT_EQUAL(e2e_log_apply(w, got, &buf, k), FR_OK);
		}
		CU_ASSERT_EQUAL(shard_wal_wait(w, last + 10), FR_OK);
		shard_wal_close(w);
		fr_wbuf_fini(&buf);
		shard_store_free(got);
		shard_store_free(exp);
		got = e2e_recover(snap, waldir, &snap_lsn, &rs);
		CU_ASSERT_PTR_NOT_NULL_FATAL(got);
		CU_ASSERT_EQUAL(rs.last_lsn, last + 10);
		CU_ASSERT_EQUAL(rs.torn_bytes, 0);
		exp = e2e_expected(last + 10);
		CU_ASSERT_PTR_NOT_NULL_FATAL(exp);
		e2e_assert_equal(got, exp);
		shard_store_free(got);
		shard_store_free(exp);
		free(snap);
		free(waldir);
		rm_rf(dir);
	}
	printf("\n");
}

/* ========================================================================
 * Runner
 * ===================================================================== */

static const struct fr_unit_test tests[] = {
	{ "codec round trip", test_codec_roundtrip },
	{ "codec errors", test_codec_errors },
	{ "append, wait, replay", test_append_wait_replay },
	{ "group commit", test_group_commit },
	{ "segments and truncate", test_segments_truncate },
	{ "torn tail", test_torn_tail },
	{ "corruption before the tail", test_corrupt_middle },
	{ "busy and toobig", test_busy_toobig },
	{ "io failure", test_io_failure },
	{ "sigkill recovery", test_sigkill },
	{ "store + snapshot + wal recovery", test_store_recovery },
};

int main(void)
{
	return fr_unit_main("shard_wal", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
