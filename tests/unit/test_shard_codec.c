/*
 * test_shard_codec.c — CUnit suite for the wire codec (shard/codec.c,
 * docs/wire.md): frame envelope round trips and every header error, batch
 * round trips (zero-copy), a golden byte vector that pins the documented
 * layout, malformed batches each with its error code, the scatter-gather
 * encoder against the copying one byte for byte, and a deterministic
 * mutation loop.  It does not test the store's checks on apply.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <xxhash.h>

#include "shard/shard.h"
#include "testutil.h"
#include "unit_main.h"

/* ----------------------------------------------------------------------
 * Helpers
 * -------------------------------------------------------------------- */

/* 64-aligned copy of n bytes (plus `extra` zero bytes of room), so zero-copy
 * decoding sees a receive buffer as the network layer will hand it over. */
static uint8_t *acopy(const void *src, size_t n, size_t extra)
{
	size_t cap = (n + extra + 64) & ~(size_t)63;
	uint8_t *p = aligned_alloc(64, cap);

	CU_ASSERT_FATAL(p != NULL);
	memset(p, 0, cap);
	if (n)
		memcpy(p, src, n);
	return p;
}

/* A batch with its own storage. */
struct tbatch {
	struct shard_batch_hdr h;
	struct shard_batch b;
	uint64_t *rows, *versions;
	uint32_t *origins;
	float *sig;
	uint8_t *values;
	struct shard_vv_ent *covers;
	size_t values_bytes;
};

static void tbatch_make(struct tbatch *t, enum shard_dtype dt, uint32_t dim,
			uint32_t n, bool with_sig, uint32_t ncovers)
{
	size_t elem = dt == SHARD_F32 ? 4 : 2;

	memset(t, 0, sizeof(*t));
	snprintf(t->h.model, sizeof(t->h.model), "ctr-model.v%u", dim);
	t->h.dtype = dt;
	t->h.dim = dim;
	t->rows = calloc(n + 1, 8);
	t->versions = calloc(n + 1, 8);
	t->origins = calloc(n + 1, 4);
	t->sig = with_sig ? calloc(n + 1, 4) : NULL;
	t->values_bytes = (size_t)n * dim * elem;
	t->values = calloc(t->values_bytes + 1, 1);
	t->covers = calloc(ncovers + 1, sizeof(*t->covers));
	CU_ASSERT_FATAL(t->rows && t->versions && t->origins && t->values &&
			t->covers && (!with_sig || t->sig));
	for (uint32_t i = 0; i < n; i++) {
		t->rows[i] = (rng() % 100000) * 7 + 3;
		t->versions[i] = FR_HLC_MAKE(1700000000000ULL + i, i & 0xff);
		t->origins[i] = (uint32_t)(rng() % 5) + 1;
		if (with_sig)
			t->sig[i] = (float)(rng() % 1000) / 7.0f;
	}
	for (size_t i = 0; i < t->values_bytes; i++)
		t->values[i] = (uint8_t)rng();
	for (uint32_t i = 0; i < ncovers; i++) {
		/* Garbage in the struct's padding must not reach the wire. */
		memset(&t->covers[i], 0xa5, sizeof(t->covers[i]));
		t->covers[i].origin = i * 3 + 1;
		t->covers[i].version = rng();
	}
	t->b = (struct shard_batch){
		.table = 2, .shard = 3, .n = n,
		.rows = t->rows, .versions = t->versions, .origins = t->origins,
		.significance = t->sig, .values = t->values,
		.ncovers = ncovers, .covers = t->covers,
	};
}

static void tbatch_free(struct tbatch *t)
{
	free(t->rows);
	free(t->versions);
	free(t->origins);
	free(t->sig);
	free(t->values);
	free(t->covers);
}

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;

	return q >= buf && q <= buf + len && (size_t)(buf + len - q) >= n;
}

/* Encode t's batch payload alone into a fresh aligned buffer. */
static uint8_t *payload_of(const struct tbatch *t, size_t *len, size_t extra)
{
	struct fr_wbuf w;
	uint8_t *p;

	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_FATAL(shard_batch_encode(&w, &t->h, &t->b) == FR_OK);
	*len = w.len;
	p = acopy(w.data, w.len, extra);
	fr_wbuf_fini(&w);
	return p;
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

/* ----------------------------------------------------------------------
 * Frames
 * -------------------------------------------------------------------- */

static void test_frame_roundtrip(void)
{
	static const size_t sizes[] = { 0, 1, 7, 100, 5000 };
	uint8_t src[5000];
	struct fr_wbuf w;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 31 + 7);
	fr_wbuf_init(&w, 0, 0);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct shard_frame_hdr h;
		const uint8_t *pl = NULL;
		size_t plen = 99;

		fr_wbuf_reset(&w);
		CU_ASSERT_EQUAL_FATAL(shard_frame_encode(&w, 0x123, src,
							 sizes[k], 0), FR_OK);
		CU_ASSERT_EQUAL(w.len, SHARD_FRAME_HDR_BYTES + sizes[k]);
		/* Header bytes as docs/wire.md lays them out. */
		CU_ASSERT(memcmp(w.data, "FRSH", 4) == 0);
		CU_ASSERT_EQUAL(w.data[4], 1);
		CU_ASSERT_EQUAL(w.data[5], 0);
		CU_ASSERT_EQUAL(w.data[6], 0x23);
		CU_ASSERT_EQUAL(w.data[7], 0x01);
		CU_ASSERT_EQUAL(shard_frame_decode(w.data, w.len, 0, &h, &pl,
						   &plen), FR_OK);
		CU_ASSERT_EQUAL(h.magic, SHARD_FRAME_MAGIC);
		CU_ASSERT_EQUAL(h.version, SHARD_FRAME_VERSION);
		CU_ASSERT_EQUAL(h.type, 0x123);
		CU_ASSERT_EQUAL(h.length, SHARD_FRAME_HDR_BYTES + sizes[k]);
		CU_ASSERT_EQUAL(h.reserved, 0);
		/* XXH3-64 of the payload seeded with XXH3-64 of the
		 * header's first 16 bytes (docs/wire.md §1). */
		CU_ASSERT_EQUAL(h.checksum,
				XXH3_64bits_withSeed(src, sizes[k],
						     XXH3_64bits(w.data, 16)));
		CU_ASSERT_EQUAL(plen, sizes[k]);
		CU_ASSERT_PTR_EQUAL(pl, w.data + SHARD_FRAME_HDR_BYTES);
		CU_ASSERT(memcmp(pl, src, sizes[k]) == 0);
		/* shard_frame_seal over a payload built in place gives the
		 * same bytes. */
		{
			uint8_t *g = malloc(SHARD_FRAME_HDR_BYTES + sizes[k]);

			CU_ASSERT_FATAL(g != NULL);
			memset(g, 0xee, SHARD_FRAME_HDR_BYTES);
			memcpy(g + SHARD_FRAME_HDR_BYTES, src, sizes[k]);
			CU_ASSERT_EQUAL(shard_frame_seal(g, 0x123, sizes[k], 0),
					FR_OK);
			CU_ASSERT(memcmp(g, w.data, w.len) == 0);
			CU_ASSERT_EQUAL(shard_frame_seal(g, 0x123, sizes[k],
							 SHARD_FRAME_HDR_BYTES +
							 (uint32_t)sizes[k] - 1),
					FR_ERR_TOOBIG);
			free(g);
		}
		/* A flipped bit in the type or the length is caught by the
		 * checksum (a smaller length, still >= 24, otherwise looks
		 * like a whole shorter frame). */
		w.data[6] ^= 0x01;
		CU_ASSERT_EQUAL(shard_frame_decode(w.data, w.len, 0, &h, &pl,
						   &plen), FR_ERR_CHECKSUM);
		w.data[6] ^= 0x01;
		if (sizes[k] >= 1) {
			w.data[8] ^= 0x01;   /* length - 1 or + 1 */
			CU_ASSERT_NOT_EQUAL(shard_frame_decode(w.data, w.len, 0,
							       &h, &pl, &plen),
					    FR_OK);
			w.data[8] ^= 0x01;
		}
	}

	/* Two frames back to back: decode reads only the first's length. */
	fr_wbuf_reset(&w);
	CU_ASSERT_EQUAL(shard_frame_encode(&w, 5, src, 40, 0), FR_OK);
	CU_ASSERT_EQUAL(shard_frame_encode(&w, 6, src + 40, 9, 0), FR_OK);
	{
		struct shard_frame_hdr h;
		const uint8_t *pl;
		size_t plen;

		CU_ASSERT_EQUAL(shard_frame_decode(w.data, w.len, 0, &h, &pl,
						   &plen), FR_OK);
		CU_ASSERT_EQUAL(h.type, 5);
		CU_ASSERT_EQUAL(plen, 40);
		CU_ASSERT_EQUAL(shard_frame_decode(w.data + h.length,
						   w.len - h.length, 0, &h, &pl,
						   &plen), FR_OK);
		CU_ASSERT_EQUAL(h.type, 6);
		CU_ASSERT_EQUAL(plen, 9);
		CU_ASSERT(memcmp(pl, src + 40, 9) == 0);
	}
	fr_wbuf_fini(&w);
}

/* Encode a 64-byte-payload frame, let mutate() spoil it, expect code and
 * a detail mentioning `field`. */
static void expect_frame_err(void (*mutate)(uint8_t *f, size_t *len),
			     uint32_t max_frame, enum fr_err want,
			     const char *field)
{
	uint8_t payload[64], f[SHARD_FRAME_HDR_BYTES + 64 + 8];
	struct shard_frame_hdr h;
	const uint8_t *pl;
	struct fr_wbuf w;
	size_t len, plen;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	fr_wbuf_init_fixed(&w, f, sizeof(f));
	CU_ASSERT_EQUAL_FATAL(shard_frame_encode(&w, 1, payload, 64, 0),
			      FR_OK);
	len = w.len;
	mutate(f, &len);
	fr_errclear();
	CU_ASSERT_EQUAL(shard_frame_decode(f, len, max_frame, &h, &pl, &plen),
			want);
	CU_ASSERT(errmsg_has(field));
}

static void mut_magic(uint8_t *f, size_t *len) { f[0] ^= 0x20; }
static void mut_version(uint8_t *f, size_t *len) { f[4] = 2; }
static void mut_reserved(uint8_t *f, size_t *len) { f[13] = 1; }
static void mut_len_small(uint8_t *f, size_t *len) { put32(f, 8, 23); }
static void mut_none(uint8_t *f, size_t *len) { }
static void mut_short_hdr(uint8_t *f, size_t *len) { *len = 23; }
static void mut_short_body(uint8_t *f, size_t *len) { *len -= 1; }
static void mut_payload_bit(uint8_t *f, size_t *len) { f[24 + 33] ^= 0x10; }
static void mut_checksum(uint8_t *f, size_t *len) { f[16] ^= 1; }

static void test_frame_header_errors(void)
{
	expect_frame_err(mut_magic, 0, FR_ERR_MAGIC, "'magic'");
	expect_frame_err(mut_version, 0, FR_ERR_VERSION, "'version'");
	expect_frame_err(mut_reserved, 0, FR_ERR_CORRUPT, "'reserved'");
	expect_frame_err(mut_len_small, 0, FR_ERR_CORRUPT, "'length'");
	/* 88-byte frame against an 87-byte limit; 88 is still allowed. */
	expect_frame_err(mut_none, 87, FR_ERR_TOOBIG, "'length'");
	expect_frame_err(mut_none, 88, FR_OK, "");
	expect_frame_err(mut_short_hdr, 0, FR_ERR_TRUNC, "header");
	expect_frame_err(mut_short_body, 0, FR_ERR_TRUNC, "'length'");
	expect_frame_err(mut_payload_bit, 0, FR_ERR_CHECKSUM, "'checksum'");
	expect_frame_err(mut_checksum, 0, FR_ERR_CHECKSUM, "'checksum'");

	/* peek checks the header alone: a truncated body is fine there. */
	{
		uint8_t f[SHARD_FRAME_HDR_BYTES + 16];
		struct shard_frame_hdr h;
		struct fr_wbuf w;

		fr_wbuf_init_fixed(&w, f, sizeof(f));
		CU_ASSERT_EQUAL(shard_frame_encode(&w, 9, "0123456789abcdef",
						   16, 0), FR_OK);
		CU_ASSERT_EQUAL(shard_frame_peek(f, 24, 0, &h), FR_OK);
		CU_ASSERT_EQUAL(h.length, 40);
		CU_ASSERT_EQUAL(h.type, 9);
		CU_ASSERT_EQUAL(shard_frame_peek(f, 10, 0, &h), FR_ERR_TRUNC);
		CU_ASSERT_EQUAL(shard_frame_peek(NULL, 0, 0, &h), FR_ERR_TRUNC);
		/* Over the 64 MiB default. */
		put32(f, 8, SHARD_FRAME_MAX_DEFAULT + 1);
		CU_ASSERT_EQUAL(shard_frame_peek(f, 24, 0, &h), FR_ERR_TOOBIG);
		put32(f, 8, SHARD_FRAME_MAX_DEFAULT);
		CU_ASSERT_EQUAL(shard_frame_peek(f, 24, 0, &h), FR_OK);
	}
}

static void test_frame_encode_toobig(void)
{
	static uint8_t payload[1000];
	struct fr_wbuf w;
	struct tbatch t;

	fr_wbuf_init(&w, 0, 0);
	fr_wbuf_u32(&w, 0xdeadbeef);     /* something already queued */
	CU_ASSERT_EQUAL(shard_frame_encode(&w, 1, payload, 1000, 1023),
			FR_ERR_TOOBIG);
	CU_ASSERT(errmsg_has("'length'"));
	CU_ASSERT_EQUAL(w.len, 4);
	CU_ASSERT_EQUAL(w.err, FR_OK);
	CU_ASSERT_EQUAL(shard_frame_encode(&w, 1, payload, 1000, 1024), FR_OK);
	CU_ASSERT_EQUAL(w.len, 4 + 1024);

	/* A batch frame one byte over the limit: refused, nothing written. */
	rng_state = 42;
	tbatch_make(&t, SHARD_F32, 16, 100, true, 2);
	fr_wbuf_reset(&w);
	CU_ASSERT_EQUAL_FATAL(shard_batch_frame_encode(&w, &t.h, &t.b, 0),
			      FR_OK);
	{
		uint32_t exact = (uint32_t)w.len;

		fr_wbuf_reset(&w);
		fr_wbuf_u8(&w, 7);
		CU_ASSERT_EQUAL(shard_batch_frame_encode(&w, &t.h, &t.b,
							 exact - 1),
				FR_ERR_TOOBIG);
		CU_ASSERT_EQUAL(w.len, 1);
		CU_ASSERT_EQUAL(w.err, FR_OK);
		CU_ASSERT_EQUAL(shard_batch_frame_encode(&w, &t.h, &t.b, exact),
				FR_OK);
		CU_ASSERT_EQUAL(w.len, 1 + exact);
	}
	/* A full fixed buffer reports its own error and leaves len alone. */
	{
		uint8_t small[64];
		struct fr_wbuf fw;

		fr_wbuf_init_fixed(&fw, small, sizeof(small));
		CU_ASSERT_EQUAL(shard_batch_frame_encode(&fw, &t.h, &t.b, 0),
				FR_ERR_TOOBIG);
		CU_ASSERT_EQUAL(fw.len, 0);
	}
	tbatch_free(&t);
	fr_wbuf_fini(&w);
}

/* ----------------------------------------------------------------------
 * Batches
 * -------------------------------------------------------------------- */

static void check_batch_equal(const struct tbatch *t,
			      const struct shard_batch_hdr *h,
			      const struct shard_batch *b,
			      const uint8_t *pl, size_t plen)
{
	uint32_t n = t->b.n;

	CU_ASSERT_STRING_EQUAL(h->model, t->h.model);
	CU_ASSERT_EQUAL(h->dtype, t->h.dtype);
	CU_ASSERT_EQUAL(h->dim, t->h.dim);
	CU_ASSERT_EQUAL(b->table, t->b.table);
	CU_ASSERT_EQUAL(b->shard, t->b.shard);
	CU_ASSERT_EQUAL_FATAL(b->n, n);
	CU_ASSERT(memcmp(b->rows, t->rows, (size_t)n * 8) == 0);
	CU_ASSERT(memcmp(b->versions, t->versions, (size_t)n * 8) == 0);
	CU_ASSERT(memcmp(b->origins, t->origins, (size_t)n * 4) == 0);
	if (t->sig) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(b->significance);
		CU_ASSERT(memcmp(b->significance, t->sig, (size_t)n * 4) == 0);
		CU_ASSERT(inside(b->significance, (size_t)n * 4, pl, plen));
	} else {
		CU_ASSERT_PTR_NULL(b->significance);
	}
	CU_ASSERT(memcmp(b->values, t->values, t->values_bytes) == 0);
	CU_ASSERT_EQUAL_FATAL(b->ncovers, t->b.ncovers);
	for (uint32_t i = 0; i < b->ncovers; i++) {
		CU_ASSERT_EQUAL(b->covers[i].origin, t->covers[i].origin);
		CU_ASSERT_EQUAL(b->covers[i].version, t->covers[i].version);
	}
	/* Zero copy: every array lies inside the payload, 8-aligned. */
	CU_ASSERT(inside(b->rows, (size_t)n * 8, pl, plen));
	CU_ASSERT(inside(b->versions, (size_t)n * 8, pl, plen));
	CU_ASSERT(inside(b->origins, (size_t)n * 4, pl, plen));
	CU_ASSERT(inside(b->values, t->values_bytes, pl, plen));
	CU_ASSERT(inside(b->covers, (size_t)b->ncovers * 16, pl, plen));
	CU_ASSERT_EQUAL((uintptr_t)b->rows % 8, 0);
	CU_ASSERT_EQUAL((uintptr_t)b->versions % 8, 0);
	CU_ASSERT_EQUAL((uintptr_t)b->values % 8, 0);
	CU_ASSERT_EQUAL((uintptr_t)b->covers % 8, 0);
}

static void batch_roundtrip(enum shard_dtype dt, uint32_t dim, uint32_t n,
			    bool sig, uint32_t ncovers)
{
	struct shard_batch_hdr h;
	struct shard_batch b;
	struct shard_frame_hdr fh;
	struct fr_wbuf w, pw, fw;
	const uint8_t *pl;
	size_t plen;
	struct tbatch t;

	tbatch_make(&t, dt, dim, n, sig, ncovers);
	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_EQUAL_FATAL(shard_batch_frame_encode(&w, &t.h, &t.b, 0),
			      FR_OK);
	CU_ASSERT_EQUAL(w.len % 8, 0);
	CU_ASSERT_EQUAL_FATAL(shard_frame_decode(w.data, w.len, 0, &fh, &pl,
						 &plen), FR_OK);
	CU_ASSERT_EQUAL(fh.type, SHARD_FRAME_BATCH);
	CU_ASSERT_EQUAL(fh.length, w.len);
	memset(&b, 0xee, sizeof(b));
	CU_ASSERT_EQUAL_FATAL(shard_batch_decode(pl, plen, &h, &b), FR_OK);
	check_batch_equal(&t, &h, &b, pl, plen);

	/* The streaming checksum equals framing the separately encoded
	 * payload; the payload encoding does not depend on where in the
	 * wbuf it starts. */
	fr_wbuf_init(&pw, 0, 0);
	fr_wbuf_u8(&pw, 0xab);
	CU_ASSERT_EQUAL_FATAL(shard_batch_encode(&pw, &t.h, &t.b), FR_OK);
	CU_ASSERT_EQUAL_FATAL(pw.len - 1, plen);
	CU_ASSERT(memcmp(pw.data + 1, pl, plen) == 0);
	fr_wbuf_init(&fw, 0, 0);
	CU_ASSERT_EQUAL(shard_frame_encode(&fw, SHARD_FRAME_BATCH, pw.data + 1,
					   pw.len - 1, 0), FR_OK);
	CU_ASSERT_EQUAL(fw.len, w.len);
	CU_ASSERT(fw.len == w.len && memcmp(fw.data, w.data, w.len) == 0);

	fr_wbuf_fini(&fw);
	fr_wbuf_fini(&pw);
	fr_wbuf_fini(&w);
	tbatch_free(&t);
}

static void test_batch_roundtrip(void)
{
	rng_state = 1;
	batch_roundtrip(SHARD_F32, 8, 50, false, 0);
	batch_roundtrip(SHARD_F32, 64, 300, true, 3);
	batch_roundtrip(SHARD_F16, 7, 33, false, 1);   /* odd: padded */
	batch_roundtrip(SHARD_F16, 16, 41, true, 256);
	batch_roundtrip(SHARD_F32, 1, 1, true, 0);
	batch_roundtrip(SHARD_F16, 3, 0, false, 2);    /* covers only */
	batch_roundtrip(SHARD_F32, 65536, 2, false, 1);
	/* Bigger than one copy-and-hash chunk. */
	batch_roundtrip(SHARD_F32, 128, 1000, true, 2);
}

/* The smallest interesting batch, byte by byte as docs/wire.md says. */
static void test_batch_golden(void)
{
	static const uint8_t want[88] = {
		/* 0: name_len, dtype, reserved0, dim */
		1, 1, 0, 0, 1, 0, 0, 0,
		/* 8: table, shard */
		2, 0, 0, 0, 3, 0, 0, 0,
		/* 16: n, ncovers */
		1, 0, 0, 0, 1, 0, 0, 0,
		/* 24: flags, reserved1 */
		0, 0, 0, 0, 0, 0, 0, 0,
		/* 32: model "m", padded to 8 */
		'm', 0, 0, 0, 0, 0, 0, 0,
		/* 40: cover: origin 7, reserved, version 9 */
		7, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,
		/* 56: rows[0] = 5 */
		5, 0, 0, 0, 0, 0, 0, 0,
		/* 64: versions[0] = 0x0102 */
		2, 1, 0, 0, 0, 0, 0, 0,
		/* 72: origins[0] = 7, pad */
		7, 0, 0, 0, 0, 0, 0, 0,
		/* 80: values: 1.0f, pad */
		0, 0, 0x80, 0x3f, 0, 0, 0, 0,
	};
	uint64_t row = 5, ver = 0x102;
	uint32_t origin = 7;
	float val = 1.0f;
	struct shard_vv_ent cover = { .origin = 7, .version = 9 };
	struct shard_batch_hdr h = { .model = "m", .dtype = SHARD_F32,
				     .dim = 1 };
	struct shard_batch b = {
		.table = 2, .shard = 3, .n = 1, .rows = &row,
		.versions = &ver, .origins = &origin, .values = &val,
		.ncovers = 1, .covers = &cover,
	};
	struct shard_batch_hdr dh;
	struct shard_batch db;
	struct fr_wbuf w;
	uint8_t *p;

	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_EQUAL_FATAL(shard_batch_encode(&w, &h, &b), FR_OK);
	CU_ASSERT_EQUAL_FATAL(w.len, sizeof(want));
	CU_ASSERT(memcmp(w.data, want, sizeof(want)) == 0);
	/* The same batch as a frame: header as docs/wire.md §2.5 shows it,
	 * checksum XXH3-64 of the payload seeded with XXH3-64 of the
	 * header's first 16 bytes. */
	{
		static const uint8_t hdr[24] = {
			0x46, 0x52, 0x53, 0x48, 1, 0, 1, 0,
			0x70, 0, 0, 0, 0, 0, 0, 0,
			0x13, 0xfd, 0x4f, 0xc6, 0x69, 0x34, 0xac, 0xb5,
		};

		fr_wbuf_reset(&w);
		CU_ASSERT_EQUAL_FATAL(shard_batch_frame_encode(&w, &h, &b, 0),
				      FR_OK);
		CU_ASSERT_EQUAL_FATAL(w.len, 24 + sizeof(want));
		CU_ASSERT(memcmp(w.data, hdr, 24) == 0);
		CU_ASSERT(memcmp(w.data + 24, want, sizeof(want)) == 0);
	}
	p = acopy(want, sizeof(want), 0);
	CU_ASSERT_EQUAL(shard_batch_decode(p, sizeof(want), &dh, &db), FR_OK);
	CU_ASSERT_STRING_EQUAL(dh.model, "m");
	CU_ASSERT_EQUAL(db.rows[0], 5);
	CU_ASSERT_EQUAL(db.versions[0], 0x102);
	CU_ASSERT_EQUAL(db.origins[0], 7);
	CU_ASSERT_EQUAL(((const float *)db.values)[0], 1.0f);
	CU_ASSERT_EQUAL(db.covers[0].version, 9);
	free(p);
	fr_wbuf_fini(&w);
}

/* Spoil one field of a valid payload (laid out by test_batch_golden's
 * rules) and expect a code and a detail naming the field. */
struct bad_case {
	const char *what;
	size_t off;        /* byte offset to overwrite */
	int width;         /* 1, 2 or 4 bytes; 0: no overwrite */
	uint32_t val;
	long dlen;         /* change of the payload length */
	enum fr_err want;
	const char *field; /* substring of the detail */
};

static void test_batch_malformed(void)
{
	/* Base batch: "ctr-model.v4" (12 bytes -> name pad to 48), f32,
	 * dim 4, n 11, 2 covers, significance: name 32..44 (pad to 48),
	 * covers 48..80, rows 80..168, versions 168..256, origins 256..300
	 * (pad to 304), significance 304..348 (pad to 352), values
	 * 352..528. */
	static const struct bad_case cases[] = {
		{ "n past the bytes", 16, 4, 12, 0, FR_ERR_TRUNC, "'n'" },
		{ "n huge", 16, 4, 0xffffffffu, 0, FR_ERR_TRUNC, "'n'" },
		{ "ncovers huge", 20, 4, 0xffffffffu, 0, FR_ERR_RANGE, "'ncovers'" },
		{ "ncovers 257", 20, 4, 257, 0, FR_ERR_RANGE, "'ncovers'" },
		{ "ncovers past the bytes", 20, 4, 200, 0, FR_ERR_TRUNC, "" },
		{ "dtype 0", 1, 1, 0, 0, FR_ERR_CORRUPT, "'dtype'" },
		{ "dtype 3", 1, 1, 3, 0, FR_ERR_CORRUPT, "'dtype'" },
		{ "dim 0", 4, 4, 0, 0, FR_ERR_RANGE, "'dim'" },
		{ "dim 65537", 4, 4, 65537, 0, FR_ERR_RANGE, "'dim'" },
		{ "dim larger", 4, 4, 5, 0, FR_ERR_TRUNC, "'values'" },
		{ "name_len 0", 0, 1, 0, 0, FR_ERR_RANGE, "'name_len'" },
		{ "name_len 64", 0, 1, 64, 0, FR_ERR_RANGE, "'name_len'" },
		{ "name control byte", 35, 1, 0x07, 0, FR_ERR_CORRUPT, "'model'" },
		{ "name high byte", 32, 1, 0xc3, 0, FR_ERR_CORRUPT, "'model'" },
		{ "name pad", 45, 1, 1, 0, FR_ERR_CORRUPT, "'model'" },
		{ "reserved0", 2, 2, 1, 0, FR_ERR_CORRUPT, "'reserved0'" },
		{ "reserved1", 28, 4, 1, 0, FR_ERR_CORRUPT, "'reserved1'" },
		{ "unknown flag", 24, 4, 3, 0, FR_ERR_CORRUPT, "'flags'" },
		{ "significance flag dropped", 24, 4, 0, 0, FR_ERR_CORRUPT, "trailing" },
		{ "cover reserved", 48 + 16 + 4, 4, 1, 0, FR_ERR_CORRUPT, "'covers[1].reserved'" },
		{ "origins pad", 300, 1, 9, 0, FR_ERR_CORRUPT, "'origins'" },
		{ "trailing bytes", 0, 0, 0, 8, FR_ERR_CORRUPT, "trailing" },
		{ "one trailing byte", 0, 0, 0, 1, FR_ERR_CORRUPT, "trailing" },
		{ "short by 8", 0, 0, 0, -8, FR_ERR_TRUNC, "'values'" },
		{ "short by 1", 0, 0, 0, -1, FR_ERR_TRUNC, "'values'" },
	};
	struct shard_batch_hdr h;
	struct shard_batch b;
	struct tbatch t;
	size_t len;
	uint8_t *good;

	rng_state = 7;
	tbatch_make(&t, SHARD_F32, 4, 11, true, 2);
	good = payload_of(&t, &len, 16);
	/* The offsets in the cases follow from this layout. */
	CU_ASSERT_EQUAL_FATAL(len, 528);
	CU_ASSERT_EQUAL_FATAL(shard_batch_decode(good, len, &h, &b), FR_OK);

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct bad_case *c = &cases[k];
		uint8_t *p = acopy(good, len, 16);
		size_t plen = (size_t)((long)len + c->dlen);
		enum fr_err got;

		if (c->width == 1)
			p[c->off] = (uint8_t)c->val;
		else if (c->width == 2)
			memcpy(p + c->off, &(uint16_t){ (uint16_t)c->val }, 2);
		else if (c->width == 4)
			put32(p, c->off, c->val);
		fr_errclear();
		got = shard_batch_decode(p, plen, &h, &b);
		if (got != c->want)
			fprintf(stderr, "\n  case '%s': got %d (%s), want %d\n",
				c->what, got, fr_errmsg(), c->want);
		CU_ASSERT_EQUAL(got, c->want);
		CU_ASSERT(errmsg_has(c->field));
		free(p);
	}

	/* n * dim wraps to 0 in 32 bits (65536 * 65536): still refused. */
	{
		uint8_t *p = acopy(good, len, 0);

		put32(p, 16, 65536);
		put32(p, 4, 65536);
		CU_ASSERT_EQUAL(shard_batch_decode(p, len, &h, &b),
				FR_ERR_TRUNC);
		put32(p, 16, 0xffffffffu);
		CU_ASSERT_EQUAL(shard_batch_decode(p, len, &h, &b),
				FR_ERR_TRUNC);
		free(p);
	}
	/* n * dim * 4 that wraps in 32 bits to exactly the value bytes
	 * present: 32768 rows of dim 1 (128 KiB of values) relabelled dim
	 * 32769 claim 2^32 + 128 KiB.  A decoder doing 32-bit size maths
	 * would accept it and hand out 4 GiB of "values". */
	{
		struct tbatch big;
		uint8_t *p;
		size_t blen;

		tbatch_make(&big, SHARD_F32, 1, 32768, false, 0);
		p = payload_of(&big, &blen, 0);
		CU_ASSERT_EQUAL(shard_batch_decode(p, blen, &h, &b), FR_OK);
		put32(p, 4, 32769);
		fr_errclear();
		CU_ASSERT_EQUAL(shard_batch_decode(p, blen, &h, &b),
				FR_ERR_TRUNC);
		CU_ASSERT(errmsg_has("'values'"));
		free(p);
		tbatch_free(&big);
	}
	/* Shorter than the fixed header, empty, NULL. */
	CU_ASSERT_EQUAL(shard_batch_decode(good, 31, &h, &b), FR_ERR_TRUNC);
	CU_ASSERT_EQUAL(shard_batch_decode(good, 0, &h, &b), FR_ERR_TRUNC);
	CU_ASSERT_EQUAL(shard_batch_decode(NULL, 0, &h, &b), FR_ERR_TRUNC);
	/* Misaligned buffer: the caller's mistake, refused before reading. */
	{
		uint8_t *p = acopy(NULL, 0, len + 8);

		memcpy(p + 4, good, len);
		fr_errclear();
		CU_ASSERT_EQUAL(shard_batch_decode(p + 4, len, &h, &b),
				FR_ERR_INVAL);
		CU_ASSERT(errmsg_has("aligned"));
		free(p);
	}
	/* The good payload is still good (cases worked on copies). */
	CU_ASSERT_EQUAL(shard_batch_decode(good, len, &h, &b), FR_OK);
	free(good);
	tbatch_free(&t);
}

static void test_batch_encode_invalid(void)
{
	struct fr_wbuf w;
	struct tbatch t;

	rng_state = 9;
	tbatch_make(&t, SHARD_F16, 8, 4, false, 1);
	fr_wbuf_init(&w, 0, 0);

	t.h.model[0] = '\0';
	CU_ASSERT_EQUAL(shard_batch_frame_encode(&w, &t.h, &t.b, 0),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("'model'"));
	memset(t.h.model, 'x', sizeof(t.h.model));   /* no NUL: 64 bytes */
	CU_ASSERT_EQUAL(shard_batch_encode(&w, &t.h, &t.b), FR_ERR_INVAL);
	strcpy(t.h.model, "bad\nname");
	CU_ASSERT_EQUAL(shard_batch_encode(&w, &t.h, &t.b), FR_ERR_INVAL);
	strcpy(t.h.model, "ok");

	t.h.dtype = (enum shard_dtype)7;
	CU_ASSERT_EQUAL(shard_batch_encode(&w, &t.h, &t.b), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("'dtype'"));
	t.h.dtype = SHARD_F16;
	t.h.dim = 0;
	CU_ASSERT_EQUAL(shard_batch_encode(&w, &t.h, &t.b), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("'dim'"));
	t.h.dim = 8;
	t.b.ncovers = SHARD_VV_MAX + 1;
	CU_ASSERT_EQUAL(shard_batch_encode(&w, &t.h, &t.b), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("'ncovers'"));
	t.b.ncovers = 1;
	t.b.rows = NULL;
	CU_ASSERT_EQUAL(shard_batch_frame_encode(&w, &t.h, &t.b, 0),
			FR_ERR_INVAL);
	t.b.rows = t.rows;
	CU_ASSERT_EQUAL(w.len, 0);
	CU_ASSERT_EQUAL(w.err, FR_OK);
	CU_ASSERT_EQUAL(shard_batch_frame_encode(&w, &t.h, &t.b, 0), FR_OK);
	fr_wbuf_fini(&w);
	tbatch_free(&t);
}

/* ----------------------------------------------------------------------
 * Scatter-gather encoder
 * -------------------------------------------------------------------- */

/* The pieces laid end to end, as writev() would send them. */
static uint8_t *gather(const struct shard_iov *iov, unsigned n, size_t *len)
{
	size_t total = 0, off = 0;
	uint8_t *p;

	for (unsigned i = 0; i < n; i++)
		total += iov[i].len;
	p = acopy(NULL, 0, total);
	for (unsigned i = 0; i < n; i++) {
		memcpy(p + off, iov[i].base, iov[i].len);
		off += iov[i].len;
	}
	*len = total;
	return p;
}

static bool iov_borrows(const struct shard_iov *iov, unsigned n,
			const void *p, size_t len)
{
	for (unsigned i = 0; i < n; i++)
		if (iov[i].base == p && iov[i].len == len)
			return true;
	return false;
}

/* encode_iov and shard_batch_frame_encode agree byte for byte; the rows
 * are borrowed, not copied; the gathered frame decodes. */
static void batch_iov_case(struct tbatch *t)
{
	/* Heap scratch of exactly the documented size, so ASan sees any
	 * byte written past it (a 63-byte name with 256 covers fills it). */
	uint8_t *scratch = malloc(SHARD_BATCH_IOV_SCRATCH);
	struct shard_iov iov[SHARD_BATCH_IOV_MAX];
	struct shard_frame_hdr fh;
	struct shard_batch_hdr h;
	struct shard_batch b;
	const uint8_t *pl;
	struct fr_wbuf w;
	unsigned niov = 99;
	size_t glen, plen;
	uint8_t *g;

	CU_ASSERT_FATAL(scratch != NULL);
	/* Garbage in scratch must not reach the wire. */
	memset(scratch, 0xcc, SHARD_BATCH_IOV_SCRATCH);
	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_EQUAL_FATAL(shard_batch_frame_encode(&w, &t->h, &t->b, 0),
			      FR_OK);
	CU_ASSERT_EQUAL_FATAL(shard_batch_frame_encode_iov(scratch, &t->h,
							   &t->b, 0, iov,
							   &niov), FR_OK);
	CU_ASSERT_FATAL(niov >= 1 && niov <= SHARD_BATCH_IOV_MAX);
	CU_ASSERT_PTR_EQUAL(iov[0].base, scratch);
	CU_ASSERT(iov[0].len <= SHARD_BATCH_IOV_SCRATCH);
	for (unsigned i = 0; i < niov; i++)
		CU_ASSERT(iov[i].len > 0);
	g = gather(iov, niov, &glen);
	CU_ASSERT_EQUAL(glen, w.len);
	CU_ASSERT(glen == w.len && memcmp(g, w.data, glen) == 0);

	/* Zero copy: the arrays themselves are pieces. */
	if (t->b.n) {
		CU_ASSERT(iov_borrows(iov, niov, t->values, t->values_bytes));
		CU_ASSERT(iov_borrows(iov, niov, t->rows, (size_t)t->b.n * 8));
		CU_ASSERT(iov_borrows(iov, niov, t->versions,
				      (size_t)t->b.n * 8));
		CU_ASSERT(iov_borrows(iov, niov, t->origins,
				      (size_t)t->b.n * 4));
		if (t->sig)
			CU_ASSERT(iov_borrows(iov, niov, t->sig,
					      (size_t)t->b.n * 4));
	}

	CU_ASSERT_EQUAL_FATAL(shard_frame_decode(g, glen, 0, &fh, &pl, &plen),
			      FR_OK);
	CU_ASSERT_EQUAL(fh.type, SHARD_FRAME_BATCH);
	CU_ASSERT_EQUAL(fh.length, glen);
	CU_ASSERT_EQUAL_FATAL(shard_batch_decode(pl, plen, &h, &b), FR_OK);
	check_batch_equal(t, &h, &b, pl, plen);
	free(g);

	/* The iov borrows: a row changed before the frame is written goes
	 * out changed, under the old checksum, and the receiver refuses it. */
	if (t->values_bytes) {
		t->values[t->values_bytes / 2] ^= 0x40;
		g = gather(iov, niov, &glen);
		CU_ASSERT(memcmp(g, w.data, glen) != 0);
		CU_ASSERT_EQUAL(shard_frame_decode(g, glen, 0, &fh, &pl,
						   &plen), FR_ERR_CHECKSUM);
		t->values[t->values_bytes / 2] ^= 0x40;
		free(g);
	}
	fr_wbuf_fini(&w);
	free(scratch);
}

static void test_batch_iov(void)
{
	static const struct {
		enum shard_dtype dt;
		uint32_t dim, n;
		bool sig;
		uint32_t ncovers;
	} cases[] = {
		{ SHARD_F32, 8, 50, false, 0 },
		{ SHARD_F32, 64, 301, true, 3 },    /* odd n: origin padding */
		{ SHARD_F16, 7, 33, false, 1 },     /* odd: every pad appears */
		{ SHARD_F16, 3, 33, true, 2 },
		{ SHARD_F16, 16, 41, true, 256 },
		{ SHARD_F32, 1, 1, true, 0 },
		{ SHARD_F16, 3, 0, false, 2 },      /* covers only */
		{ SHARD_F32, 5, 0, true, 0 },       /* nothing but the head */
		{ SHARD_F32, 65536, 2, false, 1 },
		{ SHARD_F32, 128, 1000, true, 2 },
	};
	struct tbatch t;

	rng_state = 11;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		tbatch_make(&t, cases[k].dt, cases[k].dim, cases[k].n,
			    cases[k].sig, cases[k].ncovers);
		batch_iov_case(&t);
		tbatch_free(&t);
	}
	/* The largest head scratch must hold: a 63-byte name, 256 covers. */
	tbatch_make(&t, SHARD_F16, 5, 9, true, SHARD_VV_MAX);
	memset(t.h.model, 'n', SHARD_NAME_MAX);
	t.h.model[SHARD_NAME_MAX] = '\0';
	batch_iov_case(&t);
	tbatch_free(&t);
}

static void test_batch_iov_errors(void)
{
	uint8_t scratch[SHARD_BATCH_IOV_SCRATCH];
	struct shard_iov iov[SHARD_BATCH_IOV_MAX];
	struct fr_wbuf w;
	struct tbatch t;
	unsigned niov;
	uint32_t exact;

	rng_state = 13;
	tbatch_make(&t, SHARD_F32, 16, 99, true, 2);
	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_EQUAL_FATAL(shard_batch_frame_encode(&w, &t.h, &t.b, 0),
			      FR_OK);
	exact = (uint32_t)w.len;

	/* One byte over max_frame: refused; exactly max_frame: fine. */
	niov = 99;
	fr_errclear();
	CU_ASSERT_EQUAL(shard_batch_frame_encode_iov(scratch, &t.h, &t.b,
						     exact - 1, iov, &niov),
			FR_ERR_TOOBIG);
	CU_ASSERT_EQUAL(niov, 0);
	CU_ASSERT(errmsg_has("'length'"));
	CU_ASSERT_EQUAL(shard_batch_frame_encode_iov(scratch, &t.h, &t.b,
						     exact, iov, &niov),
			FR_OK);
	CU_ASSERT(niov > 0);

	/* Bad batches as the copying encoder reports them. */
	t.b.values = NULL;
	niov = 99;
	CU_ASSERT_EQUAL(shard_batch_frame_encode_iov(scratch, &t.h, &t.b, 0,
						     iov, &niov),
			FR_ERR_INVAL);
	CU_ASSERT_EQUAL(niov, 0);
	t.b.values = t.values;
	t.h.dim = 0;
	fr_errclear();
	CU_ASSERT_EQUAL(shard_batch_frame_encode_iov(scratch, &t.h, &t.b, 0,
						     iov, &niov),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("'dim'"));
	t.h.dim = 16;
	t.b.ncovers = SHARD_VV_MAX + 1;
	CU_ASSERT_EQUAL(shard_batch_frame_encode_iov(scratch, &t.h, &t.b, 0,
						     iov, &niov),
			FR_ERR_INVAL);
	t.b.ncovers = 2;
	strcpy(t.h.model, "tab\there");
	CU_ASSERT_EQUAL(shard_batch_frame_encode_iov(scratch, &t.h, &t.b, 0,
						     iov, &niov),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("'model'"));
	fr_wbuf_fini(&w);
	tbatch_free(&t);
}

/* Flip bits and truncate a valid frame 10,000 times.  Nothing may crash
 * (ASan/UBSan builds watch), no frame with a flipped payload or checksum
 * bit may pass, and whatever batch decodes must lie inside its buffer. */
static void test_mutation_loop(void)
{
	struct shard_batch_hdr h;
	struct shard_batch b;
	struct shard_frame_hdr fh;
	const uint8_t *pl;
	struct fr_wbuf w;
	struct tbatch t;
	size_t flen, plen;
	uint8_t *f, *praw;
	unsigned frames_ok = 0, batch_ok = 0;

	rng_state = 0x5eed;
	tbatch_make(&t, SHARD_F16, 5, 12, true, 3);
	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_EQUAL_FATAL(shard_batch_frame_encode(&w, &t.h, &t.b, 0),
			      FR_OK);
	flen = w.len;
	f = acopy(NULL, 0, flen);
	praw = acopy(NULL, 0, flen);

	for (int it = 0; it < 10000; it++) {
		size_t len = flen, nflip = 0, flips[4];
		int kind = (int)(rng() % 3);   /* flip, truncate, both */
		enum fr_err err;

		memcpy(f, w.data, flen);
		if (kind != 1) {
			nflip = 1 + rng() % 4;
			for (size_t i = 0; i < nflip; i++) {
				size_t bit;
				bool dup;

				do {    /* distinct bits, so none cancels out */
					bit = rng() % (flen * 8);
					dup = false;
					for (size_t j = 0; j < i; j++)
						dup |= flips[j] == bit;
				} while (dup);
				flips[i] = bit;
				f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			}
		}
		if (kind != 0)
			len = rng() % flen;
		err = shard_frame_decode(f, len, 0, &fh, &pl, &plen);
		if (err == FR_OK) {
			/* The checksum covers header and payload: no flipped
			 * bit anywhere, type and length included, and no
			 * truncation may pass. */
			frames_ok++;
			CU_ASSERT(len == flen && nflip == 0);
		} else {
			CU_ASSERT(len < flen || nflip > 0);
		}
		/* The batch decoder straight on the spoiled payload bytes:
		 * must not crash; what decodes must stay in bounds. */
		if (len > SHARD_FRAME_HDR_BYTES) {
			size_t n = len - SHARD_FRAME_HDR_BYTES;

			memcpy(praw, f + SHARD_FRAME_HDR_BYTES, n);
			if (shard_batch_decode(praw, n, &h, &b) == FR_OK) {
				size_t vb = (size_t)b.n * h.dim *
					    (h.dtype == SHARD_F32 ? 4 : 2);

				batch_ok++;
				CU_ASSERT(inside(b.values, vb, praw, n));
				CU_ASSERT(inside(b.rows, (size_t)b.n * 8, praw,
						 n));
				CU_ASSERT(inside(b.covers,
						 (size_t)b.ncovers * 16, praw,
						 n));
				CU_ASSERT(strlen(h.model) >= 1);
			}
		}
	}
	/* Every iteration spoiled the frame, so none may have passed. */
	CU_ASSERT_EQUAL(frames_ok, 0);
	CU_ASSERT(batch_ok > 0);
	free(praw);
	free(f);
	fr_wbuf_fini(&w);
	tbatch_free(&t);
}

static const struct fr_unit_test tests[] = {
	{ "frame round trip", test_frame_roundtrip },
	{ "frame header errors", test_frame_header_errors },
	{ "frame encode too big", test_frame_encode_toobig },
	{ "batch round trip", test_batch_roundtrip },
	{ "batch golden bytes", test_batch_golden },
	{ "batch malformed", test_batch_malformed },
	{ "batch encode invalid", test_batch_encode_invalid },
	{ "batch scatter-gather encode", test_batch_iov },
	{ "batch scatter-gather errors", test_batch_iov_errors },
	{ "mutation loop", test_mutation_loop },
};

int main(void)
{
	return fr_unit_main("shard_codec", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
