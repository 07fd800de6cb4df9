/*
 * test_proto.c — CUnit suite for proto/ (docs/wire.md §4): every node /
 * client message round-trips byte for byte (decode + encode gives the same
 * frame), golden bytes pin the documented layouts, every field rule is
 * refused with its named error by both encoder and decoder, every
 * truncation, trailing bytes and misaligned payloads are refused, and a
 * deterministic mutation loop checks that whatever a decoder accepts is
 * canonical.  The stream reader is fed byte by byte, in one piece and in
 * random pieces, with misaligned frames, a bad checksum, an oversize
 * length and bad magic, and its buffer is checked against its bound.
 *
 * Not here: sockets (test_client.c), the node's use of the messages.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "proto/proto.h"
#include "testutil.h"
#include "unit_main.h"

/* ----------------------------------------------------------------------
 * Helpers
 * -------------------------------------------------------------------- */

/* The payload of the one frame in w, checked as a frame of `type`, copied
 * into a malloc'd buffer of exactly its length (8-aligned, and ASan sees a
 * read past its end). */
static uint8_t *payload_of(const struct fr_wbuf *w, uint16_t type,
			   size_t *len)
{
	struct shard_frame_hdr h;
	const uint8_t *pl;
	size_t n;
	uint8_t *p;

	CU_ASSERT_FATAL(shard_frame_decode(w->data, w->len, 0, &h, &pl, &n) ==
			FR_OK);
	CU_ASSERT_EQUAL(h.length, w->len);
	CU_ASSERT_EQUAL(h.type, type);
	CU_ASSERT_EQUAL(n % 8, 0);
	p = malloc(n ? n : 1);
	CU_ASSERT_FATAL(p != NULL);
	memcpy(p, pl, n);
	*len = n;
	return p;
}

/* Encode msg, a struct proto_* of `type`, with no frame bound of its own
 * (the encoders' 0: the protocol's maximum). */
static enum fr_err encode_msg(struct fr_wbuf *w, uint16_t type,
			      const void *msg)
{
	switch (type) {
	case PROTO_HELLO:
	case PROTO_HELLO_ACK:
		return proto_hello_encode(w, type, msg);
	case PROTO_ERROR:
		return proto_error_encode(w, msg);
	case PROTO_PUBLISH:
		return proto_publish_encode(w, msg, 0);
	case PROTO_PUBLISH_ACK:
		return proto_publish_ack_encode(w, msg);
	case PROTO_LOOKUP:
		return proto_lookup_encode(w, msg, 0);
	case PROTO_LOOKUP_REPLY:
		return proto_lookup_reply_encode(w, msg, 0);
	}
	return FR_ERR_INVAL;
}

/* Decode p as a message of `type` and encode what came out into out. */
static enum fr_err redo(uint16_t type, const uint8_t *p, size_t len,
			struct fr_wbuf *out)
{
	union {
		struct proto_hello hello;
		struct proto_error error;
		struct proto_publish publish;
		struct proto_publish_ack publish_ack;
		struct proto_lookup lookup;
		struct proto_lookup_reply lookup_reply;
	} m;
	enum fr_err err = FR_ERR_INVAL;

	if (type == PROTO_HELLO || type == PROTO_HELLO_ACK)
		err = proto_hello_decode(p, len, &m.hello);
	else if (type == PROTO_ERROR)
		err = proto_error_decode(p, len, &m.error);
	else if (type == PROTO_PUBLISH)
		err = proto_publish_decode(p, len, &m.publish);
	else if (type == PROTO_PUBLISH_ACK)
		err = proto_publish_ack_decode(p, len, &m.publish_ack);
	else if (type == PROTO_LOOKUP)
		err = proto_lookup_decode(p, len, &m.lookup);
	else if (type == PROTO_LOOKUP_REPLY)
		err = proto_lookup_reply_decode(p, len, &m.lookup_reply);
	return err != FR_OK ? err : encode_msg(out, type, &m);
}

/* Reset w, encode msg into it as `type` (which must work) and return the
 * payload as payload_of does. */
static uint8_t *encode_payload(struct fr_wbuf *w, uint16_t type,
			       const void *msg, size_t *len)
{
	fr_wbuf_reset(w);
	CU_ASSERT_EQUAL_FATAL(encode_msg(w, type, msg), FR_OK);
	return payload_of(w, type, len);
}

/* The frame in w decodes and re-encodes to the very same bytes. */
static void check_canonical(const struct fr_wbuf *w, uint16_t type)
{
	struct fr_wbuf out;
	uint8_t *p;
	size_t len;

	p = payload_of(w, type, &len);
	fr_wbuf_init(&out, 0, 0);
	CU_ASSERT_EQUAL(redo(type, p, len, &out), FR_OK);
	CU_ASSERT_EQUAL(out.len, w->len);
	if (out.len == w->len)
		CU_ASSERT(memcmp(out.data, w->data, w->len) == 0);
	fr_wbuf_fini(&out);
	free(p);
}

/* Decode a copy of p[0..len) followed by `extra` zero bytes, placed
 * `shift` bytes after an 8-aligned address in a buffer that ends right
 * after it (ASan sees a read past it), and re-encode what came out. */
static enum fr_err redo_copy(uint16_t type, const uint8_t *p, size_t len,
			     size_t extra, size_t shift)
{
	size_t size = shift + len + extra;
	uint8_t *q = calloc(1, size ? size : 1);
	struct fr_wbuf out;
	enum fr_err err;

	CU_ASSERT_FATAL(q != NULL);
	memcpy(q + shift, p, len);
	fr_wbuf_init(&out, 0, 0);
	err = redo(type, q + shift, len + extra, &out);
	fr_wbuf_fini(&out);
	free(q);
	return err;
}

/* What every message's payload p (the frame in w) is put through: it is
 * canonical, every proper prefix of it is refused with FR_ERR_TRUNC, and
 * eight zero bytes more are FR_ERR_CORRUPT ("trailing"). */
static void check_payload(const struct fr_wbuf *w, uint16_t type,
			  const uint8_t *p, size_t len)
{
	check_canonical(w, type);
	for (size_t k = 0; k < len; k++) {
		enum fr_err err = redo_copy(type, p, k, 0, 0);

		if (err != FR_ERR_TRUNC)
			fprintf(stderr, "\n  %s prefix %zu: %d (%s)\n",
				proto_type_name(type), k, err, fr_errmsg());
		CU_ASSERT_EQUAL(err, FR_ERR_TRUNC);
	}
	CU_ASSERT_EQUAL(redo_copy(type, p, len, 8, 0), FR_ERR_CORRUPT);
	CU_ASSERT(errmsg_has("trailing"));
}

/* p copied to `shift` bytes past an 8-aligned address is refused before a
 * byte is read. */
static void check_misaligned(uint16_t type, const uint8_t *p, size_t len,
			     size_t shift)
{
	CU_ASSERT_EQUAL(redo_copy(type, p, len, 0, shift), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("aligned"));
}

/* A copy of p with bytes [off, off + n) replaced by v (LE). */
static enum fr_err decode_patched(uint16_t type, const uint8_t *p,
				  size_t len, size_t off, uint64_t v,
				  size_t n)
{
	uint8_t *q = malloc(len);
	enum fr_err err;

	CU_ASSERT_FATAL(q != NULL && off + n <= len);
	memcpy(q, p, len);
	memcpy(q + off, &v, n);
	err = redo_copy(type, q, len, 0, 0);
	free(q);
	return err;
}

/* One field rule on the wire: bytes [off, off + n) of a good payload set
 * to v (LE) are refused with `code`, the detail naming `needle`. */
struct patch {
	size_t off;
	uint64_t v;
	size_t n;
	enum fr_err code;
	const char *needle;
};

static void check_patches(uint16_t type, const uint8_t *p, size_t len,
			  const struct patch *t, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		enum fr_err err = decode_patched(type, p, len, t[i].off,
						 t[i].v, t[i].n);

		if (err != t[i].code)
			fprintf(stderr, "\n  %s patch %zu (offset %zu): %d\n",
				proto_type_name(type), i, t[i].off, err);
		CU_ASSERT_EQUAL(err, t[i].code);
		CU_ASSERT(errmsg_has(t[i].needle));
	}
}

#define CHECK_PATCHES(type, p, len, table)                                  \
	check_patches(type, p, len, table, FR_UNIT_COUNT(table))

#define EXPECT_PATCH(type, p, len, off, v, n, code, needle)                 \
	check_patches(type, p, len,                                         \
		      &(const struct patch){ off, v, n, code, needle }, 1)

/* The encoder refuses msg with FR_ERR_INVAL, naming needle (unless NULL)
 * in the detail. */
static void expect_refused(struct fr_wbuf *w, uint16_t type, const void *msg,
			   const char *needle)
{
	CU_ASSERT_EQUAL(encode_msg(w, type, msg), FR_ERR_INVAL);
	if (needle)
		CU_ASSERT(errmsg_has(needle));
}

/* bad = good with one change (`edit`, a statement on bad), refused. */
#define EXPECT_REFUSED(w, type, bad, good, edit, needle)                    \
	do {                                                                \
		(bad) = (good);                                             \
		edit;                                                       \
		expect_refused(w, type, &(bad), needle);                    \
	} while (0)

/* ----------------------------------------------------------------------
 * HELLO
 * -------------------------------------------------------------------- */

/* The leader epoch: carried for a node, refused for a client. */
static void test_hello_epoch(void)
{
	struct proto_hello a = { .proto_version = PROTO_VERSION,
				 .role = PROTO_ROLE_NODE, .node_id = 9,
				 .epoch = 4000000000u, .dc = "dc2",
				 .cluster = "c" }, b;
	struct fr_wbuf w;
	uint8_t *p;
	size_t len;

	fr_wbuf_init(&w, 0, 0);
	p = encode_payload(&w, PROTO_HELLO, &a, &len);
	CU_ASSERT_EQUAL(proto_hello_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.epoch, 4000000000u);
	/* A client (role 2, node id 0) with an epoch is corrupt. */
	EXPECT_PATCH(PROTO_HELLO, p, len, 2, PROTO_ROLE_CLIENT, 1,
		     FR_ERR_CORRUPT, "'");
	a.role = PROTO_ROLE_CLIENT;
	a.node_id = 0;
	fr_wbuf_reset(&w);
	expect_refused(&w, PROTO_HELLO, &a, "'epoch'");
	fr_wbuf_fini(&w);
	free(p);
}

static void test_hello(void)
{
	/* Field rules on the wire (offsets per docs/wire.md §4.1). */
	static const struct patch rules[] = {
		{ 2, 0, 1, FR_ERR_CORRUPT, "'role'" },
		{ 2, 3, 1, FR_ERR_CORRUPT, "'role'" },
		{ 3, 64, 1, FR_ERR_RANGE, "'dc_len'" },
		{ 4, 64, 1, FR_ERR_RANGE, "'cluster_len'" },
		{ 5, 1, 1, FR_ERR_CORRUPT, "'reserved0'" },
		{ 7, 1, 1, FR_ERR_CORRUPT, "'reserved0'" },
		{ 8, 0, 4, FR_ERR_CORRUPT, "'node_id'" },
		{ 2, PROTO_ROLE_CLIENT, 1, FR_ERR_CORRUPT, "0 for a client" },
		{ 24, 0x0a, 1, FR_ERR_CORRUPT, "section 'dc'" },
		{ 39, 0x01, 1, FR_ERR_CORRUPT, "padding" },
		/* cluster_len 20 promises more than the 8 bytes left. */
		{ 4, 20, 1, FR_ERR_TRUNC, "section 'cluster'" },
		/* dc_len 10: the 10th byte is padding, 0, not printable. */
		{ 3, 10, 1, FR_ERR_CORRUPT, "section 'dc': byte 9" },
	};
	struct proto_hello a = { .proto_version = PROTO_VERSION,
				 .role = PROTO_ROLE_NODE, .node_id = 7,
				 .generation = 0x1122334455667788ULL,
				 .dc = "eu-west-1", .cluster = "prod" }, b;
	struct fr_wbuf w;
	uint8_t *p;
	size_t len;

	fr_wbuf_init(&w, 0, 0);
	p = encode_payload(&w, PROTO_HELLO, &a, &len);
	CU_ASSERT_EQUAL(len, 24 + 16 + 8);
	memset(&b, 0xee, sizeof(b));
	CU_ASSERT_EQUAL(proto_hello_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.proto_version, PROTO_VERSION);
	CU_ASSERT_EQUAL(b.role, PROTO_ROLE_NODE);
	CU_ASSERT_EQUAL(b.node_id, 7);
	CU_ASSERT_EQUAL(b.generation, 0x1122334455667788ULL);
	CU_ASSERT_STRING_EQUAL(b.dc, "eu-west-1");
	CU_ASSERT_STRING_EQUAL(b.cluster, "prod");
	check_payload(&w, PROTO_HELLO, p, len);
	CHECK_PATCHES(PROTO_HELLO, p, len, rules);
	/* Offset 12 is a node's leader epoch (was reserved1). */
	CU_ASSERT_EQUAL(decode_patched(PROTO_HELLO, p, len, 12, 12345, 4),
			FR_OK);
	free(p);

	/* A client, empty names: the 24-byte golden payload. */
	{
		static const uint8_t gold[24] = {
			0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
			0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
			0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		};
		struct proto_hello c = { .proto_version = PROTO_VERSION,
					 .role = PROTO_ROLE_CLIENT };

		p = encode_payload(&w, PROTO_HELLO_ACK, &c, &len);
		CU_ASSERT_EQUAL(len, 24);
		CU_ASSERT(memcmp(p, gold, 24) == 0);
		CU_ASSERT_EQUAL(w.data[6], 0x01);   /* type 0x101 */
		CU_ASSERT_EQUAL(w.data[7], 0x01);
		check_canonical(&w, PROTO_HELLO_ACK);
		free(p);
	}

	/* Another protocol version: refused by name, version reported. */
	a.proto_version = 2;
	p = encode_payload(&w, PROTO_HELLO, &a, &len);
	memset(&b, 0, sizeof(b));
	CU_ASSERT_EQUAL(proto_hello_decode(p, len, &b), FR_ERR_VERSION);
	CU_ASSERT_EQUAL(b.proto_version, 2);
	CU_ASSERT_EQUAL(b.node_id, 0);   /* nothing else written */
	CU_ASSERT(errmsg_has("'proto_version': got 2, expected 1"));
	/* Even a 2-byte "HELLO" of a future version is named. */
	CU_ASSERT_EQUAL(proto_hello_decode(p, 2, &b), FR_ERR_VERSION);
	free(p);
	a.proto_version = PROTO_VERSION;

	/* Encoder refusals leave w as it was. */
	{
		struct proto_hello bad;
		size_t before;

		fr_wbuf_reset(&w);
		before = w.len;
		EXPECT_REFUSED(&w, PROTO_HELLO, bad, a, bad.role = 3,
			       "'role'");
		EXPECT_REFUSED(&w, PROTO_HELLO, bad, a, bad.node_id = 0,
			       "'node_id'");
		EXPECT_REFUSED(&w, PROTO_HELLO, bad, a,
			       bad.role = PROTO_ROLE_CLIENT, NULL);
		/* No NUL: 64 bytes. */
		EXPECT_REFUSED(&w, PROTO_HELLO, bad, a,
			       memset(bad.dc, 'x', sizeof(bad.dc)), "'dc'");
		EXPECT_REFUSED(&w, PROTO_HELLO, bad, a,
			       strcpy(bad.cluster, "pr\tod"), "'cluster'");
		EXPECT_REFUSED(&w, PROTO_HELLO, bad, a, bad.proto_version = 0,
			       NULL);
		CU_ASSERT_EQUAL(proto_hello_encode(&w, PROTO_ERROR, &a),
				FR_ERR_INVAL);
		CU_ASSERT_EQUAL(w.len, before);
		CU_ASSERT_EQUAL(w.err, FR_OK);
	}
	fr_wbuf_fini(&w);
}

/* ----------------------------------------------------------------------
 * ERROR
 * -------------------------------------------------------------------- */

static void test_error(void)
{
	static const struct patch rules[] = {
		{ 8, 0, 4, FR_ERR_CORRUPT, "'code'" },
		{ 8, 5, 4, FR_ERR_CORRUPT, "'code'" },
		{ 8, (uint32_t)-FR_ERR__COUNT, 4, FR_ERR_CORRUPT, "'code'" },
		{ 12, PROTO_ERRMSG_MAX + 1, 2, FR_ERR_RANGE, "'msg_len'" },
		{ 14, 1, 2, FR_ERR_CORRUPT, "'reserved'" },
		{ 16, 0x7f, 1, FR_ERR_CORRUPT, "section 'msg'" },
		{ 39, 0x20, 1, FR_ERR_CORRUPT, "padding" },
	};
	struct proto_error a = { .req_id = 9, .code = FR_ERR_NOTFOUND }, b;
	struct fr_wbuf w;
	uint8_t *p;
	size_t len;

	strcpy(a.msg, "model 'ctr': not found");
	fr_wbuf_init(&w, 0, 0);
	p = encode_payload(&w, PROTO_ERROR, &a, &len);
	CU_ASSERT_EQUAL(len, 16 + 24);
	CU_ASSERT_EQUAL(proto_error_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.req_id, 9);
	CU_ASSERT_EQUAL(b.code, FR_ERR_NOTFOUND);
	CU_ASSERT_STRING_EQUAL(b.msg, a.msg);
	check_payload(&w, PROTO_ERROR, p, len);
	CHECK_PATCHES(PROTO_ERROR, p, len, rules);
	free(p);

	/* Odd bytes become '?', long text is cut at PROTO_ERRMSG_MAX. */
	strcpy(a.msg, "a\nb\x01" "c");
	p = encode_payload(&w, PROTO_ERROR, &a, &len);
	CU_ASSERT_EQUAL(proto_error_decode(p, len, &b), FR_OK);
	CU_ASSERT_STRING_EQUAL(b.msg, "a?b?c");
	free(p);
	memset(a.msg, 'z', sizeof(a.msg));   /* no NUL at all */
	p = encode_payload(&w, PROTO_ERROR, &a, &len);
	CU_ASSERT_EQUAL(len, 16 + PROTO_ERRMSG_MAX);
	CU_ASSERT_EQUAL(proto_error_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(strlen(b.msg), PROTO_ERRMSG_MAX);
	check_canonical(&w, PROTO_ERROR);
	free(p);

	/* An empty message; FR_OK is no error code. */
	a.msg[0] = '\0';
	fr_wbuf_reset(&w);
	CU_ASSERT_EQUAL(proto_error_encode(&w, &a), FR_OK);
	CU_ASSERT_EQUAL(w.len, 24 + 16);
	a.code = FR_OK;
	expect_refused(&w, PROTO_ERROR, &a, "'code'");
	a.code = (enum fr_err)-FR_ERR__COUNT;
	expect_refused(&w, PROTO_ERROR, &a, NULL);
	CU_ASSERT_EQUAL(w.len, 24 + 16);
	fr_wbuf_fini(&w);
}

/* ----------------------------------------------------------------------
 * PUBLISH
 * -------------------------------------------------------------------- */

static void test_publish_golden(void)
{
	/* docs/wire.md §4.7's example. */
	static const uint8_t gold[56] = {
		0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* req_id 7 */
		0x01, 0x01, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, /* lens, n 1 */
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* dim 1 */
		0x6d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* "m" */
		0x74, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* "t" */
		0x6b, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* "k1" */
		0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* row 5 */
	};
	static const uint8_t val[8] = { 0x00, 0x00, 0x80, 0x3f, 0, 0, 0, 0 };
	uint64_t row = 5;
	float v = 1.0f;
	struct proto_publish m = {
		.req_id = 7, .model = "m", .table = "t", .key = "k1",
		.n = 1, .dim = 1, .rows = &row, .values = &v,
	};
	struct fr_wbuf w;
	uint8_t *p;
	size_t len;

	fr_wbuf_init(&w, 0, 0);
	p = encode_payload(&w, PROTO_PUBLISH, &m, &len);
	CU_ASSERT_EQUAL_FATAL(len, 64);
	CU_ASSERT(memcmp(p, gold, 56) == 0);
	CU_ASSERT(memcmp(p + 56, val, 8) == 0);
	CU_ASSERT_EQUAL(w.data[6], 0x10);   /* type 0x110 */
	CU_ASSERT_EQUAL(w.data[7], 0x01);
	CU_ASSERT_EQUAL(w.data[8], 88);     /* length */
	/* The checksum as documented (seeded with the header's hash). */
	CU_ASSERT(memcmp(w.data + 16,
			 "\x74\x29\x54\xad\xde\xb1\x89\xec", 8) == 0);
	free(p);
	fr_wbuf_fini(&w);
}

static void test_publish(void)
{
	enum { N = 3, DIM = 5 };
	/* Every header rule, counts that promise more than is there, and
	 * the names' rules. */
	static const struct patch rules[] = {
		{ 8, 0, 1, FR_ERR_RANGE, "'model_len'" },
		{ 8, 64, 1, FR_ERR_RANGE, "'model_len'" },
		{ 9, 0, 1, FR_ERR_RANGE, "'table_len'" },
		{ 10, 65, 1, FR_ERR_RANGE, "'key_len'" },
		{ 11, 1, 1, FR_ERR_CORRUPT, "'reserved0'" },
		{ 12, 0, 4, FR_ERR_RANGE, "'n'" },
		{ 16, 0, 4, FR_ERR_RANGE, "'dim'" },
		{ 16, SHARD_DIM_MAX + 1, 4, FR_ERR_RANGE, "'dim'" },
		{ 20, 1, 4, FR_ERR_CORRUPT, "'reserved1'" },
		{ 12, UINT32_MAX, 4, FR_ERR_TRUNC, "'n' = 4294967295" },
		{ 16, 6, 4, FR_ERR_TRUNC, "'n * dim'" },
		/* Fewer values than promised leaves bytes behind. */
		{ 16, 4, 4, FR_ERR_CORRUPT, "trailing" },
		/* Names: bad character, padding not zero. */
		{ 24, 0x80, 1, FR_ERR_CORRUPT, "section 'model'" },
		{ 27, 1, 1, FR_ERR_CORRUPT, "section 'model': padding" },
		{ 32, 0, 1, FR_ERR_CORRUPT, "section 'table'" },
		{ 40 + 19, 1, 1, FR_ERR_CORRUPT, "section 'key': padding" },
	};
	uint64_t rows[N] = { 1, 99, UINT64_MAX };
	float vals[N * DIM];
	struct proto_publish a = {
		.req_id = 0xabcdef, .model = "ctr", .table = "user_emb",
		.key = "trainer-7/step-1200", .n = N, .dim = DIM,
		.rows = rows, .values = vals,
	}, b;
	struct fr_wbuf w;
	uint8_t *p;
	size_t len, before;

	for (int i = 0; i < N * DIM; i++)
		vals[i] = (float)i * 0.25f - 1.0f;
	fr_wbuf_init(&w, 0, 0);
	p = encode_payload(&w, PROTO_PUBLISH, &a, &len);
	/* 24 + "ctr" 8 + "user_emb" 8 + key 24 + rows 24 + values 64. */
	CU_ASSERT_EQUAL(len, 24 + 8 + 8 + 24 + 24 + 64);
	CU_ASSERT_EQUAL(proto_publish_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.req_id, 0xabcdef);
	CU_ASSERT_STRING_EQUAL(b.model, "ctr");
	CU_ASSERT_STRING_EQUAL(b.table, "user_emb");
	CU_ASSERT_STRING_EQUAL(b.key, "trainer-7/step-1200");
	CU_ASSERT_EQUAL(b.n, N);
	CU_ASSERT_EQUAL(b.dim, DIM);
	/* Zero-copy: the arrays point into the payload. */
	CU_ASSERT_PTR_EQUAL(b.rows, (const void *)(p + 64));
	CU_ASSERT_PTR_EQUAL(b.values, (const void *)(p + 88));
	CU_ASSERT(memcmp(b.rows, rows, sizeof(rows)) == 0);
	CU_ASSERT(memcmp(b.values, vals, sizeof(vals)) == 0);
	check_payload(&w, PROTO_PUBLISH, p, len);
	CHECK_PATCHES(PROTO_PUBLISH, p, len, rules);
	/* n * dim * 4 = 2^34 would wrap a 32-bit size to 0. */
	{
		uint8_t *q = malloc(len);

		memcpy(q, p, len);
		memcpy(q + 12, &(uint32_t){ 1u << 30 }, 4);
		memcpy(q + 16, &(uint32_t){ 4 }, 4);
		CU_ASSERT_EQUAL(proto_publish_decode(q, len, &b), FR_ERR_TRUNC);
		free(q);
	}
	/* The values' padding (15 floats: 4 bytes of it). */
	EXPECT_PATCH(PROTO_PUBLISH, p, len, len - 4, 1, 4, FR_ERR_CORRUPT,
		     "section 'values': padding");
	/* Misaligned payload: refused before a byte is read. */
	check_misaligned(PROTO_PUBLISH, p, len, 4);
	free(p);

	/* An empty key and a 64-byte one. */
	a.key[0] = '\0';
	free(encode_payload(&w, PROTO_PUBLISH, &a, &len));
	check_canonical(&w, PROTO_PUBLISH);
	memset(a.key, 'k', PROTO_KEY_MAX);
	a.key[PROTO_KEY_MAX] = '\0';
	free(encode_payload(&w, PROTO_PUBLISH, &a, &len));
	check_canonical(&w, PROTO_PUBLISH);

	/* Encoder refusals, w untouched. */
	{
		struct proto_publish bad;

		fr_wbuf_reset(&w);
		before = w.len;
		EXPECT_REFUSED(&w, PROTO_PUBLISH, bad, a, bad.model[0] = '\0',
			       "'model'");
		EXPECT_REFUSED(&w, PROTO_PUBLISH, bad, a,
			       memset(bad.table, 't', sizeof(bad.table)),
			       "'table'");
		/* 65 bytes. */
		EXPECT_REFUSED(&w, PROTO_PUBLISH, bad, a,
			       memset(bad.key, 'k', sizeof(bad.key)), "'key'");
		EXPECT_REFUSED(&w, PROTO_PUBLISH, bad, a,
			       strcpy(bad.key, "tab\there"), NULL);
		EXPECT_REFUSED(&w, PROTO_PUBLISH, bad, a, bad.n = 0, "'n'");
		EXPECT_REFUSED(&w, PROTO_PUBLISH, bad, a, bad.dim = 0,
			       "'dim'");
		EXPECT_REFUSED(&w, PROTO_PUBLISH, bad, a,
			       bad.dim = SHARD_DIM_MAX + 1, NULL);
		EXPECT_REFUSED(&w, PROTO_PUBLISH, bad, a, bad.rows = NULL,
			       NULL);
		/* With the 64-byte key the frame is 24 + 192 bytes. */
		CU_ASSERT_EQUAL(proto_publish_encode(&w, &a, 215),
				FR_ERR_TOOBIG);
		CU_ASSERT(errmsg_has("exceeds"));
		CU_ASSERT_EQUAL(w.len, before);
		CU_ASSERT_EQUAL(w.err, FR_OK);
		CU_ASSERT_EQUAL(proto_publish_encode(&w, &a, 216), FR_OK);
	}
	fr_wbuf_fini(&w);
}

/* ----------------------------------------------------------------------
 * PUBLISH_ACK
 * -------------------------------------------------------------------- */

static void test_publish_ack(void)
{
	static const struct patch rules[] = {
		{ 8, 1, 4, FR_ERR_CORRUPT, "'status'" },
		{ 24, 0, 8, FR_ERR_CORRUPT, "'version'" },
		{ 16, 0, 4, FR_ERR_CORRUPT, "'origin'" },
		{ 12, 10, 4, FR_ERR_CORRUPT, "'retry_after_ms'" },
		{ 20, 1, 2, FR_ERR_CORRUPT, "'msg_len'" },
		{ 20, 2000, 2, FR_ERR_RANGE, "'msg_len'" },
		{ 22, 1, 2, FR_ERR_CORRUPT, "'reserved'" },
		/* An error status with a version. */
		{ 8, (uint32_t)FR_ERR_NOTFOUND, 4, FR_ERR_CORRUPT,
		  "expected 0 with an error status" },
	};
	static const struct patch busy_rules[] = {
		{ 12, 0, 4, FR_ERR_CORRUPT, "> 0 with status busy" },
		{ 32, 0x0d, 1, FR_ERR_CORRUPT, "section 'msg'" },
	};
	struct proto_publish_ack a = {
		.req_id = 3, .status = FR_OK, .origin = 4,
		.version = FR_HLC_MAKE(1700000000123ULL, 5),
	}, b;
	struct fr_wbuf w;
	uint8_t *p;
	size_t len;

	strcpy(a.msg, "left over, not sent");
	fr_wbuf_init(&w, 0, 0);
	p = encode_payload(&w, PROTO_PUBLISH_ACK, &a, &len);
	CU_ASSERT_EQUAL(len, 32);
	CU_ASSERT_EQUAL(proto_publish_ack_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.req_id, 3);
	CU_ASSERT_EQUAL(b.status, FR_OK);
	CU_ASSERT_EQUAL(b.origin, 4);
	CU_ASSERT_EQUAL(b.version, a.version);
	CU_ASSERT_EQUAL(b.retry_after_ms, 0);
	CU_ASSERT_STRING_EQUAL(b.msg, "");
	check_payload(&w, PROTO_PUBLISH_ACK, p, len);
	CHECK_PATCHES(PROTO_PUBLISH_ACK, p, len, rules);
	free(p);

	/* BUSY with a hint and a detail. */
	memset(&a, 0, sizeof(a));
	a.req_id = 4;
	a.status = FR_ERR_BUSY;
	a.retry_after_ms = 25;
	strcpy(a.msg, "publish queue full (1024 batches)");
	p = encode_payload(&w, PROTO_PUBLISH_ACK, &a, &len);
	CU_ASSERT_EQUAL(len, 32 + 40);
	CU_ASSERT_EQUAL(proto_publish_ack_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.status, FR_ERR_BUSY);
	CU_ASSERT_EQUAL(b.retry_after_ms, 25);
	CU_ASSERT_STRING_EQUAL(b.msg, a.msg);
	check_payload(&w, PROTO_PUBLISH_ACK, p, len);
	CHECK_PATCHES(PROTO_PUBLISH_ACK, p, len, busy_rules);
	free(p);

	/* Encoder: the same rules. */
	a.retry_after_ms = 0;
	expect_refused(&w, PROTO_PUBLISH_ACK, &a, "'retry_after_ms'");
	a.status = FR_ERR_NOTFOUND;
	a.retry_after_ms = 5;
	expect_refused(&w, PROTO_PUBLISH_ACK, &a, NULL);
	a.retry_after_ms = 0;
	a.version = 1;
	expect_refused(&w, PROTO_PUBLISH_ACK, &a, "'version'");
	a.version = 0;
	a.status = FR_OK;
	a.origin = 1;
	expect_refused(&w, PROTO_PUBLISH_ACK, &a, "'version'");
	a.status = (enum fr_err)7;
	expect_refused(&w, PROTO_PUBLISH_ACK, &a, "'status'");
	fr_wbuf_fini(&w);
}

/* ----------------------------------------------------------------------
 * LOOKUP and LOOKUP_REPLY
 * -------------------------------------------------------------------- */

static void test_lookup(void)
{
	static const struct patch rules[] = {
		{ 8, 0, 1, FR_ERR_RANGE, "'model_len'" },
		{ 9, 200, 1, FR_ERR_RANGE, "'table_len'" },
		{ 10, 1, 2, FR_ERR_CORRUPT, "'reserved0'" },
		{ 12, 0, 4, FR_ERR_RANGE, "'n'" },
		{ 12, 4, 4, FR_ERR_TRUNC, "'n' = 4" },
		{ 12, 2, 4, FR_ERR_CORRUPT, "trailing" },
		{ 35, 7, 1, FR_ERR_CORRUPT, "section 'table': padding" },
	};
	uint64_t rows[3] = { 10, 20, 30 };
	struct proto_lookup a = { .req_id = 77, .model = "ctr",
				  .table = "item_emb_v2", .n = 3,
				  .rows = rows }, b;
	struct fr_wbuf w;
	uint8_t *p;
	size_t len;

	fr_wbuf_init(&w, 0, 0);
	p = encode_payload(&w, PROTO_LOOKUP, &a, &len);
	CU_ASSERT_EQUAL(len, 16 + 8 + 16 + 24);
	CU_ASSERT_EQUAL(proto_lookup_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.req_id, 77);
	CU_ASSERT_STRING_EQUAL(b.model, "ctr");
	CU_ASSERT_STRING_EQUAL(b.table, "item_emb_v2");
	CU_ASSERT_EQUAL(b.n, 3);
	CU_ASSERT_PTR_EQUAL(b.rows, (const void *)(p + 40));
	CU_ASSERT_EQUAL(b.rows[2], 30);
	check_payload(&w, PROTO_LOOKUP, p, len);
	CHECK_PATCHES(PROTO_LOOKUP, p, len, rules);
	check_misaligned(PROTO_LOOKUP, p, len, 1);
	free(p);
	a.n = 0;
	expect_refused(&w, PROTO_LOOKUP, &a, NULL);
	a.n = 3;
	strcpy(a.model, "");
	expect_refused(&w, PROTO_LOOKUP, &a, NULL);
	strcpy(a.model, "ctr");
	CU_ASSERT_EQUAL(proto_lookup_encode(&w, &a, 70), FR_ERR_TOOBIG);
	fr_wbuf_fini(&w);
}

static void test_lookup_reply(void)
{
	enum { N = 3, DIM = 2 };
	static const struct patch rules[] = {
		{ 8, 3, 4, FR_ERR_CORRUPT, "'status'" },
		{ 16, 0, 4, FR_ERR_CORRUPT, "'dim'" },
		{ 16, SHARD_DIM_MAX + 1, 4, FR_ERR_CORRUPT, "'dim'" },
		{ 12, 0, 4, FR_ERR_CORRUPT, "'n'" },
		{ 12, 1000, 4, FR_ERR_TRUNC, "'n' = 1000" },
		{ 16, 3, 4, FR_ERR_TRUNC, "'n * dim'" },
		{ 20, 8, 2, FR_ERR_CORRUPT, "'msg_len'" },
		{ 22, 8, 2, FR_ERR_CORRUPT, "'reserved'" },
		{ 60, 1, 4, FR_ERR_CORRUPT, "section 'origins': padding" },
		{ 8, (uint32_t)FR_ERR_RANGE, 4, FR_ERR_CORRUPT,
		  "expected 0 with an error status" },
	};
	uint64_t versions[N] = { 0, FR_HLC_MAKE(1700000000000ULL, 1), 5 };
	uint32_t origins[N] = { 0, 2, 9 };
	float vals[N * DIM] = { 0, 0, 1.5f, -2.0f, 3.0f, 1e-3f };
	struct proto_lookup_reply a = {
		.req_id = 12, .status = FR_OK, .n = N, .dim = DIM,
		.versions = versions, .origins = origins, .values = vals,
	}, b;
	struct fr_wbuf w;
	uint8_t *p;
	size_t len;

	fr_wbuf_init(&w, 0, 0);
	p = encode_payload(&w, PROTO_LOOKUP_REPLY, &a, &len);
	/* 24 + versions 24 + origins 12+4 + values 24. */
	CU_ASSERT_EQUAL(len, 24 + 24 + 16 + 24);
	CU_ASSERT_EQUAL(proto_lookup_reply_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.req_id, 12);
	CU_ASSERT_EQUAL(b.status, FR_OK);
	CU_ASSERT_EQUAL(b.n, N);
	CU_ASSERT_EQUAL(b.dim, DIM);
	CU_ASSERT_PTR_EQUAL(b.versions, (const void *)(p + 24));
	CU_ASSERT_PTR_EQUAL(b.origins, (const void *)(p + 48));
	CU_ASSERT_PTR_EQUAL(b.values, (const void *)(p + 64));
	CU_ASSERT(memcmp(b.versions, versions, sizeof(versions)) == 0);
	CU_ASSERT(memcmp(b.origins, origins, sizeof(origins)) == 0);
	CU_ASSERT(memcmp(b.values, vals, sizeof(vals)) == 0);
	check_payload(&w, PROTO_LOOKUP_REPLY, p, len);
	CHECK_PATCHES(PROTO_LOOKUP_REPLY, p, len, rules);
	check_misaligned(PROTO_LOOKUP_REPLY, p, len, 4);
	free(p);

	/* An error reply: no arrays, a message. */
	memset(&a, 0, sizeof(a));
	a.req_id = 13;
	a.status = FR_ERR_RANGE;
	strcpy(a.msg, "table 'item_emb': row 99 >= rows 50");
	p = encode_payload(&w, PROTO_LOOKUP_REPLY, &a, &len);
	CU_ASSERT_EQUAL(len, 24 + 40);
	CU_ASSERT_EQUAL(proto_lookup_reply_decode(p, len, &b), FR_OK);
	CU_ASSERT_EQUAL(b.status, FR_ERR_RANGE);
	CU_ASSERT_EQUAL(b.n, 0);
	CU_ASSERT_PTR_NULL(b.values);
	CU_ASSERT_STRING_EQUAL(b.msg, a.msg);
	check_payload(&w, PROTO_LOOKUP_REPLY, p, len);
	EXPECT_PATCH(PROTO_LOOKUP_REPLY, p, len, 12, 1, 4, FR_ERR_CORRUPT,
		     "expected 0 with an error status");
	free(p);

	/* Encoder rules. */
	a.n = 1;
	expect_refused(&w, PROTO_LOOKUP_REPLY, &a, NULL);
	a.n = 0;
	a.status = FR_OK;
	expect_refused(&w, PROTO_LOOKUP_REPLY, &a, "'n'");
	a.n = 1;
	a.dim = 0;
	expect_refused(&w, PROTO_LOOKUP_REPLY, &a, "'dim'");
	a.dim = 1;
	expect_refused(&w, PROTO_LOOKUP_REPLY, &a, "NULL");
	a.versions = versions;
	a.origins = origins;
	a.values = vals;
	CU_ASSERT_EQUAL(proto_lookup_reply_encode(&w, &a, 24 + 48 - 1),
			FR_ERR_TOOBIG);
	CU_ASSERT_EQUAL(proto_lookup_reply_encode(&w, &a, 0), FR_OK);
	fr_wbuf_fini(&w);
}

/* ----------------------------------------------------------------------
 * Mutation loop: whatever a decoder accepts is canonical.
 * -------------------------------------------------------------------- */

static void test_mutation_loop(void)
{
	uint64_t rows[4] = { 1, 2, 3, 4 };
	uint64_t vers[4] = { 1, 2, 3, 4 };
	uint32_t origs[4] = { 1, 1, 2, 2 };
	float vals[12] = { 0 };
	struct proto_hello hello = { .proto_version = 1,
				     .role = PROTO_ROLE_NODE, .node_id = 3,
				     .dc = "dc1", .cluster = "c" };
	struct proto_error er = { .req_id = 1, .code = FR_ERR_BUSY,
				  .msg = "full" };
	struct proto_publish pub = { .req_id = 2, .model = "m", .table = "t",
				     .key = "k", .n = 4, .dim = 3,
				     .rows = rows, .values = vals };
	struct proto_publish_ack ack = { .req_id = 3, .status = FR_ERR_BUSY,
					 .retry_after_ms = 9,
					 .msg = "later" };
	struct proto_lookup lk = { .req_id = 4, .model = "m", .table = "t",
				   .n = 4, .rows = rows };
	struct proto_lookup_reply rep = { .req_id = 5, .status = FR_OK,
					  .n = 4, .dim = 3, .versions = vers,
					  .origins = origs, .values = vals };
	const struct {
		uint16_t type;
		const void *msg;
	} msgs[] = {
		{ PROTO_HELLO, &hello },
		{ PROTO_ERROR, &er },
		{ PROTO_PUBLISH, &pub },
		{ PROTO_PUBLISH_ACK, &ack },
		{ PROTO_LOOKUP, &lk },
		{ PROTO_LOOKUP_REPLY, &rep },
	};
	unsigned accepted = 0, refused = 0;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (size_t t = 0; t < FR_UNIT_COUNT(msgs); t++) {
		uint16_t type = msgs[t].type;
		struct fr_wbuf w, out;
		uint8_t *p, *q;
		size_t len;

		fr_wbuf_init(&w, 0, 0);
		fr_wbuf_init(&out, 0, 0);
		p = encode_payload(&w, type, msgs[t].msg, &len);
		for (int it = 0; it < 4000; it++) {
			size_t qlen = len;
			struct shard_frame_hdr h;
			const uint8_t *pl;
			size_t n;

			/* Mostly byte flips; sometimes cut or grow by 8. */
			if (it % 16 == 15)
				qlen = (size_t)(rng() % len);
			else if (it % 16 == 14)
				qlen = len + 8;
			q = calloc(1, qlen ? qlen : 1);
			memcpy(q, p, qlen < len ? qlen : len);
			for (int k = 0, nk = 1 + (int)(rng() % 3); k < nk; k++)
				if (qlen)
					q[rng() % qlen] ^=
						(uint8_t)(1u << (rng() % 8));
			fr_wbuf_reset(&out);
			if (redo(type, q, qlen, &out) != FR_OK) {
				refused++;
				free(q);
				continue;
			}
			accepted++;
			CU_ASSERT_EQUAL_FATAL(shard_frame_decode(out.data,
								 out.len, 0,
								 &h, &pl, &n),
					      FR_OK);
			CU_ASSERT_EQUAL(n, qlen);
			CU_ASSERT(n == qlen && memcmp(pl, q, n) == 0);
			free(q);
		}
		free(p);
		fr_wbuf_fini(&w);
		fr_wbuf_fini(&out);
	}
	/* Both outcomes happened (values and ids are free-form bytes). */
	CU_ASSERT(accepted > 1000);
	CU_ASSERT(refused > 1000);
}

/* ----------------------------------------------------------------------
 * Stream reader
 * -------------------------------------------------------------------- */

struct stream {
	struct fr_wbuf w;
	uint16_t types[8];
	size_t plens[8];
	int nframes;
};

/* HELLO, a raw 5-byte frame (so the next starts misaligned), a PUBLISH
 * of n rows, a raw 3-byte frame, LOOKUP, ERROR. */
static void stream_make(struct stream *s, uint32_t n)
{
	static const uint8_t odd[5] = { 1, 2, 3, 4, 5 };
	struct proto_hello hello = { .proto_version = 1,
				     .role = PROTO_ROLE_CLIENT };
	uint64_t *rows = calloc(n, 8);
	float *vals = calloc((size_t)n * 16, 4);
	struct proto_publish pub = { .req_id = 1, .model = "m", .table = "t",
				     .n = n, .dim = 16, .rows = rows,
				     .values = vals };
	struct proto_lookup lk = { .req_id = 2, .model = "m", .table = "t",
				   .n = 1, .rows = rows };
	struct proto_error er = { .req_id = 0, .code = FR_ERR_CLOSED,
				  .msg = "bye" };
	size_t at;

	for (uint32_t i = 0; i < n; i++) {
		rows[i] = i * 3;
		vals[(size_t)i * 16] = (float)i;
	}
	memset(s, 0, sizeof(*s));
	fr_wbuf_init(&s->w, 0, 0);
#define ADD(type, expr)                                                     \
	do {                                                                \
		at = s->w.len;                                              \
		CU_ASSERT_EQUAL_FATAL((expr), FR_OK);                       \
		s->types[s->nframes] = (type);                              \
		s->plens[s->nframes++] = s->w.len - at -                    \
					 SHARD_FRAME_HDR_BYTES;             \
	} while (0)
	ADD(PROTO_HELLO, proto_hello_encode(&s->w, PROTO_HELLO, &hello));
	ADD(0x1ff, shard_frame_encode(&s->w, 0x1ff, odd, 5, 0));
	ADD(PROTO_PUBLISH, proto_publish_encode(&s->w, &pub, 0));
	ADD(0x1fe, shard_frame_encode(&s->w, 0x1fe, odd, 3, 0));
	ADD(PROTO_LOOKUP, proto_lookup_encode(&s->w, &lk, 0));
	ADD(PROTO_ERROR, proto_error_encode(&s->w, &er));
#undef ADD
	free(rows);
	free(vals);
}

/* Take every frame out of r, checking each against s from *k on. */
static void drain(struct proto_reader *r, const struct stream *s, int *k)
{
	struct shard_frame_hdr h;
	const uint8_t *pl;
	size_t plen;
	enum fr_err err;

	while ((err = proto_reader_next(r, &h, &pl, &plen)) == FR_OK) {
		CU_ASSERT_FATAL(*k < s->nframes);
		CU_ASSERT_EQUAL(h.type, s->types[*k]);
		CU_ASSERT_EQUAL(plen, s->plens[*k]);
		CU_ASSERT_EQUAL((uintptr_t)pl % 8, 0);
		switch (h.type) {
		case PROTO_PUBLISH: {
			struct proto_publish m;

			CU_ASSERT_EQUAL_FATAL(
				proto_publish_decode(pl, plen, &m), FR_OK);
			CU_ASSERT_EQUAL(m.rows[m.n - 1], (m.n - 1) * 3);
			CU_ASSERT_EQUAL(m.values[(m.n - 1) * 16],
					(float)(m.n - 1));
			break;
		}
		case PROTO_LOOKUP: {
			struct proto_lookup m;

			CU_ASSERT_EQUAL(proto_lookup_decode(pl, plen, &m),
					FR_OK);
			break;
		}
		case PROTO_ERROR: {
			struct proto_error m;

			CU_ASSERT_EQUAL(proto_error_decode(pl, plen, &m),
					FR_OK);
			CU_ASSERT_STRING_EQUAL(m.msg, "bye");
			break;
		}
		case 0x1ff:
			CU_ASSERT(memcmp(pl, "\1\2\3\4\5", 5) == 0);
			break;
		}
		(*k)++;
	}
	CU_ASSERT_EQUAL(err, FR_ERR_TRUNC);
}

/* Feed r the (up to) n bytes of w from offset i on, which it must take;
 * returns how many that was. */
static size_t feed_piece(struct proto_reader *r, const struct fr_wbuf *w,
			 size_t i, size_t n)
{
	if (n > w->len - i)
		n = w->len - i;
	CU_ASSERT_EQUAL_FATAL(proto_reader_feed(r, w->data + i, n), FR_OK);
	return n;
}

static void test_reader_pieces(void)
{
	struct stream s;
	struct proto_reader r;
	int k;

	stream_make(&s, 100);

	/* Byte by byte. */
	proto_reader_init(&r, 1 << 16);
	k = 0;
	for (size_t i = 0; i < s.w.len; i++) {
		feed_piece(&r, &s.w, i, 1);
		drain(&r, &s, &k);
		CU_ASSERT(r.cap <= (size_t)r.max_frame + PROTO_READER_CHUNK);
	}
	CU_ASSERT_EQUAL(k, s.nframes);
	CU_ASSERT_EQUAL(proto_reader_pending(&r), 0);
	proto_reader_fini(&r);

	/* All at once. */
	proto_reader_init(&r, 0);
	k = 0;
	CU_ASSERT_EQUAL(proto_reader_feed(&r, s.w.data, s.w.len), FR_OK);
	drain(&r, &s, &k);
	CU_ASSERT_EQUAL(k, s.nframes);
	proto_reader_fini(&r);

	/* Random pieces, twice over (the second copy starts wherever the
	 * first left the buffer). */
	rng_state = 12345;
	proto_reader_init(&r, 1 << 16);
	for (int round = 0; round < 2; round++) {
		k = 0;
		for (size_t i = 0; i < s.w.len;) {
			i += feed_piece(&r, &s.w, i, 1 + (size_t)(rng() % 700));
			drain(&r, &s, &k);
		}
		CU_ASSERT_EQUAL(k, s.nframes);
	}
	proto_reader_fini(&r);
	fr_wbuf_fini(&s.w);
}

static void test_reader_checksum(void)
{
	struct stream s;
	struct proto_reader r;
	struct shard_frame_hdr h;
	const uint8_t *pl;
	size_t plen, off;
	int k;

	stream_make(&s, 10);
	/* Corrupt the PUBLISH payload (third frame). */
	off = (SHARD_FRAME_HDR_BYTES + s.plens[0]) +
	      (SHARD_FRAME_HDR_BYTES + s.plens[1]) + SHARD_FRAME_HDR_BYTES + 30;
	s.w.data[off] ^= 0x40;
	proto_reader_init(&r, 0);
	CU_ASSERT_EQUAL(proto_reader_feed(&r, s.w.data, s.w.len), FR_OK);
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_OK);
	CU_ASSERT_EQUAL(h.type, PROTO_HELLO);
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_OK);
	CU_ASSERT_EQUAL(h.type, 0x1ff);
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen),
			FR_ERR_CHECKSUM);
	CU_ASSERT(errmsg_has("checksum"));
	/* Reported once: the stream goes on with the frame after it. */
	k = 3;
	drain(&r, &s, &k);
	CU_ASSERT_EQUAL(k, s.nframes);
	proto_reader_fini(&r);
	fr_wbuf_fini(&s.w);
}

static void test_reader_bad_header(void)
{
	struct proto_reader r;
	struct shard_frame_hdr h;
	const uint8_t *pl = NULL;
	size_t plen;
	uint8_t big[5000];
	struct fr_wbuf w;

	/* A length over max_frame is refused from the header alone, before
	 * the body is buffered, and again on every later call. */
	memset(big, 0, sizeof(big));
	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_EQUAL(shard_frame_encode(&w, PROTO_PUBLISH, big, 5000, 0),
			FR_OK);
	proto_reader_init(&r, 4096);
	CU_ASSERT_EQUAL(proto_reader_feed(&r, w.data, 23), FR_OK);
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_ERR_TRUNC);
	CU_ASSERT_EQUAL(proto_reader_feed(&r, w.data + 23, 1), FR_OK);
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_ERR_TOOBIG);
	CU_ASSERT(errmsg_has("'length'"));
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_ERR_TOOBIG);
	CU_ASSERT(r.cap <= 4096 + PROTO_READER_CHUNK);
	proto_reader_fini(&r);

	/* Bad magic: refused, and stays refused. */
	w.data[0] = 'X';
	proto_reader_init(&r, 0);
	CU_ASSERT_EQUAL(proto_reader_feed(&r, w.data, 100), FR_OK);
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_ERR_MAGIC);
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_ERR_MAGIC);
	proto_reader_fini(&r);
	fr_wbuf_fini(&w);
}

static void test_reader_bound(void)
{
	struct proto_reader r;
	struct shard_frame_hdr h;
	const uint8_t *pl;
	size_t plen, got = 0, maxcap = 0;
	struct fr_wbuf w;
	static uint8_t body[8000];
	uint8_t *big;

	/* 40 frames of 3000..8000 bytes, max_frame 8192, fed in chunks of
	 * PROTO_READER_CHUNK and drained between feeds. */
	rng_state = 77;
	fr_wbuf_init(&w, 0, 0);
	for (int i = 0; i < 40; i++)
		CU_ASSERT_EQUAL(shard_frame_encode(&w, 0x1ff, body,
						   3000 + rng() % 5000 - 24,
						   8192),
				FR_OK);
	proto_reader_init(&r, 8192);
	for (size_t i = 0; i < w.len; i += PROTO_READER_CHUNK) {
		feed_piece(&r, &w, i, PROTO_READER_CHUNK);
		if (r.cap > maxcap)
			maxcap = r.cap;
		while (proto_reader_next(&r, &h, &pl, &plen) == FR_OK)
			got++;
		CU_ASSERT(proto_reader_pending(&r) < 8192);
	}
	CU_ASSERT_EQUAL(got, 40);
	CU_ASSERT(maxcap <= 8192 + PROTO_READER_CHUNK);
	proto_reader_fini(&r);

	/* Feeding without draining is refused once max_frame bytes wait. */
	proto_reader_init(&r, 8192);
	CU_ASSERT_EQUAL(proto_reader_feed(&r, w.data, 9000), FR_OK);
	CU_ASSERT_EQUAL(proto_reader_feed(&r, w.data + 9000, 10),
			FR_ERR_TOOBIG);
	CU_ASSERT_EQUAL(proto_reader_pending(&r), 9000);
	while (proto_reader_next(&r, &h, &pl, &plen) == FR_OK)
		;
	CU_ASSERT_EQUAL(proto_reader_feed(&r, w.data + 9000, 10), FR_OK);
	proto_reader_fini(&r);
	fr_wbuf_fini(&w);

	/* A 2 MiB frame: its buffer is given back once it was taken. */
	big = calloc(1, 2u << 20);
	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_EQUAL(shard_frame_encode(&w, 0x1ff, big, 2u << 20, 0),
			FR_OK);
	proto_reader_init(&r, 0);
	for (size_t i = 0; i < w.len; i += PROTO_READER_CHUNK) {
		size_t n = feed_piece(&r, &w, i, PROTO_READER_CHUNK);

		if (i + n < w.len)
			CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen),
					FR_ERR_TRUNC);
	}
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_OK);
	CU_ASSERT_EQUAL(plen, 2u << 20);
	CU_ASSERT(r.cap >= (2u << 20));
	CU_ASSERT_EQUAL(proto_reader_next(&r, &h, &pl, &plen), FR_ERR_TRUNC);
	CU_ASSERT_EQUAL(r.cap, 0);
	proto_reader_fini(&r);
	fr_wbuf_fini(&w);
	free(big);
}

static void test_type_names(void)
{
	CU_ASSERT_STRING_EQUAL(proto_type_name(PROTO_PUBLISH_ACK),
			       "PUBLISH_ACK");
	CU_ASSERT_STRING_EQUAL(proto_type_name(PROTO_HELLO), "HELLO");
	CU_ASSERT_STRING_EQUAL(proto_type_name(0x1ff), "?");
}

static const struct fr_unit_test tests[] = {
	{ "hello", test_hello },
	{ "hello epoch", test_hello_epoch },
	{ "error", test_error },
	{ "publish golden", test_publish_golden },
	{ "publish", test_publish },
	{ "publish ack", test_publish_ack },
	{ "lookup", test_lookup },
	{ "lookup reply", test_lookup_reply },
	{ "mutation loop", test_mutation_loop },
	{ "reader pieces", test_reader_pieces },
	{ "reader checksum", test_reader_checksum },
	{ "reader bad header", test_reader_bad_header },
	{ "reader bound", test_reader_bound },
	{ "type names", test_type_names },
};

int main(void)
{
	return fr_unit_main("proto", NULL, NULL, tests, FR_UNIT_COUNT(tests));
}
