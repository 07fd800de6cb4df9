/*
 * proto.c — encoders and decoders of the node/client messages (HELLO,
 * HELLO_ACK, ERROR, PUBLISH, PUBLISH_ACK, LOOKUP, LOOKUP_REPLY), byte for
 * byte as docs/wire.md §4 lays them out.
 *
 * Each encoder validates its message first, then sizes the payload,
 * reserves the whole frame in the output buffer in one step and writes the
 * payload straight into it (no temporary copy of a 64 MiB PUBLISH), then
 * the frame header and its checksum — the same envelope shard_frame_encode
 * writes, which the unit test checks by decoding every frame with
 * shard_frame_decode.  Each decoder checks every length and
 * count against the bytes present before it forms a pointer, every
 * reserved field and padding byte, and that nothing trails.
 *
 * Not here: the stream reader (reader.c), sockets (client/, node/), and
 * any check that needs a schema (the node's).
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>


#include "proto/proto.h"

/* Fixed-header sizes, as docs/wire.md §4 tables them. */
#define HELLO_FIXED 24
#define ERROR_FIXED 16
#define PUBLISH_FIXED 24
#define ACK_FIXED 32
#define LOOKUP_FIXED 16
#define REPLY_FIXED 24

_Static_assert(HELLO_FIXED % 8 == 0 && ERROR_FIXED % 8 == 0 &&
		       PUBLISH_FIXED % 8 == 0 && ACK_FIXED % 8 == 0 &&
		       LOOKUP_FIXED % 8 == 0 && REPLY_FIXED % 8 == 0,
	       "sections start 8-aligned after every fixed header");
_Static_assert(sizeof(float) == 4, "values travel as IEEE binary32");
_Static_assert(PROTO_ERRMSG_MAX <= UINT16_MAX, "msg_len is a u16");
_Static_assert(SHARD_NAME_MAX <= UINT8_MAX && PROTO_KEY_MAX <= UINT8_MAX &&
		       PROTO_DC_MAX <= UINT8_MAX &&
		       PROTO_CLUSTER_MAX <= UINT8_MAX,
	       "name lengths are u8");

const char *proto_type_name(uint16_t type)
{
	switch (type) {
	case PROTO_HELLO:
		return "HELLO";
	case PROTO_HELLO_ACK:
		return "HELLO_ACK";
	case PROTO_ERROR:
		return "ERROR";
	case PROTO_PUBLISH:
		return "PUBLISH";
	case PROTO_PUBLISH_ACK:
		return "PUBLISH_ACK";
	case PROTO_LOOKUP:
		return "LOOKUP";
	case PROTO_LOOKUP_REPLY:
		return "LOOKUP_REPLY";
	}
	return "?";
}

/* ========================================================================
 * Shared helpers
 * ===================================================================== */

static uint64_t pad8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

/* Is s a NUL-terminated string of min..max bytes within its array of
 * cap bytes, each printable (text) or, for a name, by the name rule
 * (common.h; an empty one allowed when min is 0)?  Sets *len. */
static bool field_ok(const char *s, size_t cap, size_t min, size_t max,
		     bool name, size_t *len)
{
	size_t n = strnlen(s, cap);

	if (n == cap || n < min || n > max)
		return false;
	if (name && n > 0 && !fr_name_valid_n(s, n))
		return false;
	for (size_t i = 0; !name && i < n; i++)
		if (!fr_text_char((uint8_t)s[i]))
			return false;
	*len = n;
	return true;
}

static enum fr_err field_check(const char *msg, const char *field,
			       const char *s, size_t cap, size_t min,
			       size_t max, bool name, size_t *len)
{
	char b[96];

	if (field_ok(s, cap, min, max, name, len))
		return FR_OK;
	return fr_fail(FR_ERR_INVAL,
		       "%s field '%s': expected %zu..%zu %s, got %zu bytes "
		       "'%s'", msg, field, min, max,
		       name ? "bytes of " FR_NAME_CHARS : "printable ASCII bytes",
		       strnlen(s, cap), fr_show_n(b, sizeof(b), s,
						  strnlen(s, cap)));
}

#define name_check(msg, field, s, cap, min, max, len) \
	field_check(msg, field, s, cap, min, max, true, len)
#define text_check(msg, field, s, cap, min, max, len) \
	field_check(msg, field, s, cap, min, max, false, len)

/* Known error codes: FR_ERR_NOMEM .. FR_ERR_ZK, and FR_OK where allowed. */
static bool code_known(int32_t v, bool allow_ok)
{
	if (v == FR_OK)
		return allow_ok;
	return v < 0 && v > -(int32_t)FR_ERR__COUNT;
}

static size_t msg_len(const char *s)
{
	return strnlen(s, PROTO_ERRMSG_MAX);
}

/* ------------------------------------------------------------------------
 * Frame building: reserve the frame, write the payload in place through a
 * fixed writer over it, then the header.
 * ---------------------------------------------------------------------- */
struct frame_out {
	struct fr_wbuf pw;   /* over the payload bytes inside w */
	size_t start;        /* frame offset in w */
};

static enum fr_err frame_begin(struct fr_wbuf *w, const char *msg,
			       uint64_t plen, uint32_t max_frame,
			       struct frame_out *fo)
{
	uint32_t max = max_frame ? max_frame : SHARD_FRAME_MAX_DEFAULT;
	uint64_t total;
	uint8_t *p;

	if (!fr_add_size(plen, SHARD_FRAME_HDR_BYTES, &total) || total > max)
		return fr_fail(FR_ERR_TOOBIG,
			       "%s: frame of %llu bytes exceeds the maximum "
			       "of %u bytes",
			       msg, (unsigned long long)total, max);
	fo->start = w->len;
	p = fr_wbuf_append(w, (size_t)total);
	if (!p)
		return w->err;
	fr_wbuf_init_fixed(&fo->pw, p + SHARD_FRAME_HDR_BYTES, (size_t)plen);
	return FR_OK;
}

static void frame_end(struct fr_wbuf *w, uint16_t type, struct frame_out *fo)
{
	enum fr_err err;

	/* The payload size was computed up front; writing a different
	 * number of bytes is a bug here, not bad input. */
	assert(fo->pw.err == FR_OK && fo->pw.len == fo->pw.cap);
	/* The codec writes the header and the checksum over the payload
	 * built in place (no copy of a large PUBLISH).  frame_begin already
	 * checked the size against max_frame; the default is the hard cap. */
	err = shard_frame_seal(w->data + fo->start, type, fo->pw.len,
			       UINT32_MAX);
	assert(err == FR_OK);
	(void)err;
}

/* A name or text section: the bytes, then zeros to 8. */
static void put_section(struct fr_wbuf *pw, const void *s, size_t n)
{
	fr_wbuf_bytes(pw, s, n);
	fr_wbuf_pad(pw, 8);
}

/* A text section with every byte outside 0x20..0x7e written as '?', so a
 * detail that quotes odd input still makes a valid frame. */
static void put_text(struct fr_wbuf *pw, const char *s, size_t n)
{
	uint8_t *p = fr_wbuf_append(pw, n);

	if (p)
		for (size_t i = 0; i < n; i++)
			p[i] = fr_text_char((uint8_t)s[i]) ? (uint8_t)s[i] : '?';
	fr_wbuf_pad(pw, 8);
}

/* ------------------------------------------------------------------------
 * Decoding helpers.  `msg` names the message in every detail.
 * ---------------------------------------------------------------------- */
static enum fr_err need_fixed(const char *msg, size_t len, size_t fixed)
{
	if (len < fixed)
		return fr_fail(FR_ERR_TRUNC,
			       "%s: payload of %zu bytes, the fixed header "
			       "needs %zu",
			       msg, len, fixed);
	return FR_OK;
}

static enum fr_err need_aligned(const char *msg, const uint8_t *p)
{
	if ((uintptr_t)p & 7)
		return fr_fail(FR_ERR_INVAL,
			       "%s: payload at %p is not 8-byte aligned", msg,
			       (const void *)p);
	return FR_OK;
}

static enum fr_err zero_field(const char *msg, const char *field,
			      uint64_t v)
{
	if (v)
		return fr_fail(FR_ERR_CORRUPT,
			       "%s field '%s': got 0x%llx, expected 0", msg,
			       field, (unsigned long long)v);
	return FR_OK;
}

static enum fr_err len_field(const char *msg, const char *field,
			     uint64_t v, uint64_t min, uint64_t max)
{
	if (v < min || v > max)
		return fr_fail(FR_ERR_RANGE,
			       "%s field '%s': got %llu, expected %llu..%llu",
			       msg, field, (unsigned long long)v,
			       (unsigned long long)min,
			       (unsigned long long)max);
	return FR_OK;
}

/* The zero padding after a section of n bytes. */
static enum fr_err get_pad(struct fr_rbuf *r, const char *msg,
			   const char *section, uint64_t n)
{
	size_t k = (size_t)(pad8(n) - n);
	const uint8_t *p;

	if (!k)
		return FR_OK;
	p = fr_rbuf_bytes(r, k);
	if (!p)
		return fr_fail(FR_ERR_TRUNC,
			       "%s section '%s': %zu padding bytes missing",
			       msg, section, k);
	for (size_t i = 0; i < k; i++)
		if (p[i])
			return fr_fail(FR_ERR_CORRUPT,
				       "%s section '%s': padding byte %zu is "
				       "0x%02x, expected 0",
				       msg, section, i, p[i]);
	return FR_OK;
}

/* count elements of size bytes, then padding; *out points at them.
 * `count_field` names the field the count came from. */
static enum fr_err get_array(struct fr_rbuf *r, const char *msg,
			     const char *section, const char *count_field,
			     uint64_t count, uint64_t size, const void **out)
{
	uint64_t bytes;

	if (!fr_rbuf_fits(r, count, size))
		return fr_fail(FR_ERR_TRUNC,
			       "%s field '%s' = %llu: section '%s' needs "
			       "%llu x %llu bytes, %zu left",
			       msg, count_field, (unsigned long long)count,
			       section, (unsigned long long)count,
			       (unsigned long long)size, fr_rbuf_left(r));
	bytes = count * size;   /* fits: checked above */
	*out = fr_rbuf_bytes(r, (size_t)bytes);
	return get_pad(r, msg, section, bytes);
}

/* A text section of n bytes copied into out[n + 1]. */
static enum fr_err get_text(struct fr_rbuf *r, const char *msg,
			    const char *section, const char *len_field,
			    size_t n, char *out)
{
	const void *v;
	const uint8_t *p;
	enum fr_err err;

	err = get_array(r, msg, section, len_field, n, 1, &v);
	if (err)
		return err;
	p = v;
	for (size_t i = 0; i < n; i++)
		if (!fr_text_char(p[i]))
			return fr_fail(FR_ERR_CORRUPT,
				       "%s section '%s': byte %zu is 0x%02x, "
				       "expected printable ASCII 0x20..0x7e",
				       msg, section, i, p[i]);
	memcpy(out, p, n);
	out[n] = '\0';
	return FR_OK;
}

/* A text section that must also be a name (empty allowed for n 0). */
static enum fr_err get_name(struct fr_rbuf *r, const char *msg,
			    const char *section, const char *len_field,
			    size_t n, char *out)
{
	char b[96];
	enum fr_err err = get_text(r, msg, section, len_field, n, out);

	if (err || n == 0 || fr_name_valid_n(out, n))
		return err;
	return fr_fail(FR_ERR_CORRUPT, "%s section '%s': '%s' is not a name, "
		       "expected bytes of " FR_NAME_CHARS " other than '.' "
		       "and '..'", msg, section, fr_show(b, sizeof(b), out));
}

static enum fr_err no_trailing(const struct fr_rbuf *r, const char *msg)
{
	if (fr_rbuf_left(r))
		return fr_fail(FR_ERR_CORRUPT,
			       "%s: %zu trailing bytes after the last section",
			       msg, fr_rbuf_left(r));
	return FR_OK;
}

static enum fr_err code_field(const char *msg, const char *field,
			      uint32_t raw, bool allow_ok)
{
	int32_t v = (int32_t)raw;

	if (!code_known(v, allow_ok))
		return fr_fail(FR_ERR_CORRUPT,
			       "%s field '%s': got %d, expected a known error "
			       "code -1..-%d%s",
			       msg, field, v, FR_ERR__COUNT - 1,
			       allow_ok ? " or 0" : "");
	return FR_OK;
}

/* ========================================================================
 * HELLO / HELLO_ACK
 * ===================================================================== */

enum fr_err proto_hello_encode(struct fr_wbuf *w, uint16_t type,
			       const struct proto_hello *m)
{
	const char *msg = type == PROTO_HELLO_ACK ? "HELLO_ACK" : "HELLO";
	size_t dlen = 0, clen = 0;   /* set by text_len; 0 quiets -O3 */
	struct frame_out fo;
	enum fr_err err;

	if (type != PROTO_HELLO && type != PROTO_HELLO_ACK)
		return fr_fail(FR_ERR_INVAL,
			       "HELLO: frame type 0x%x, expected HELLO (0x%x) "
			       "or HELLO_ACK (0x%x)",
			       type, PROTO_HELLO, PROTO_HELLO_ACK);
	if (m->proto_version == 0)
		return fr_fail(FR_ERR_INVAL,
			       "%s field 'proto_version': expected >= 1", msg);
	if (m->role != PROTO_ROLE_NODE && m->role != PROTO_ROLE_CLIENT)
		return fr_fail(FR_ERR_INVAL,
			       "%s field 'role': got %d, expected 1 (node) or "
			       "2 (client)",
			       msg, (int)m->role);
	if ((m->role == PROTO_ROLE_NODE) != (m->node_id != 0))
		return fr_fail(FR_ERR_INVAL,
			       "%s field 'node_id': got %u, expected %s", msg,
			       m->node_id,
			       m->role == PROTO_ROLE_NODE ? "!= 0 for a node"
							  : "0 for a client");
	if (m->role != PROTO_ROLE_NODE && m->epoch != 0)
		return fr_fail(FR_ERR_INVAL,
			       "%s field 'epoch': got %u, expected 0 for a "
			       "client", msg, m->epoch);
	err = name_check(msg, "dc", m->dc, sizeof(m->dc), 0, PROTO_DC_MAX,
			 &dlen);
	if (err)
		return err;
	err = name_check(msg, "cluster", m->cluster, sizeof(m->cluster), 0,
			 PROTO_CLUSTER_MAX, &clen);
	if (err)
		return err;

	err = frame_begin(w, msg, HELLO_FIXED + pad8(dlen) + pad8(clen), 0,
			  &fo);
	if (err)
		return err;
	fr_wbuf_u16(&fo.pw, m->proto_version);
	fr_wbuf_u8(&fo.pw, (uint8_t)m->role);
	fr_wbuf_u8(&fo.pw, (uint8_t)dlen);
	fr_wbuf_u8(&fo.pw, (uint8_t)clen);
	fr_wbuf_u8(&fo.pw, 0);      /* reserved0, 3 bytes */
	fr_wbuf_u16(&fo.pw, 0);
	fr_wbuf_u32(&fo.pw, m->node_id);
	fr_wbuf_u32(&fo.pw, m->epoch);
	fr_wbuf_u64(&fo.pw, m->generation);
	put_section(&fo.pw, m->dc, dlen);
	put_section(&fo.pw, m->cluster, clen);
	frame_end(w, type, &fo);
	return FR_OK;
}

enum fr_err proto_hello_decode(const uint8_t *p, size_t len,
			       struct proto_hello *m)
{
	static const char msg[] = "HELLO";
	struct proto_hello o;
	struct fr_rbuf r;
	uint8_t role, dlen, clen, res0a;
	uint16_t res0b;
	enum fr_err err;

	/* The version comes first and alone, so that a peer speaking
	 * another version (whose HELLO may be laid out differently) is
	 * refused by name. */
	if (len < 2)
		return need_fixed(msg, len, HELLO_FIXED);
	memset(&o, 0, sizeof(o));
	fr_rbuf_init(&r, p, len);
	o.proto_version = fr_rbuf_u16(&r);
	if (o.proto_version != PROTO_VERSION) {
		m->proto_version = o.proto_version;
		return fr_fail(FR_ERR_VERSION,
			       "%s field 'proto_version': got %u, expected %u",
			       msg, o.proto_version, PROTO_VERSION);
	}
	err = need_fixed(msg, len, HELLO_FIXED);
	if (err)
		return err;
	role = fr_rbuf_u8(&r);
	dlen = fr_rbuf_u8(&r);
	clen = fr_rbuf_u8(&r);
	res0a = fr_rbuf_u8(&r);
	res0b = fr_rbuf_u16(&r);
	o.node_id = fr_rbuf_u32(&r);
	o.epoch = fr_rbuf_u32(&r);
	o.generation = fr_rbuf_u64(&r);

	if (role != PROTO_ROLE_NODE && role != PROTO_ROLE_CLIENT)
		return fr_fail(FR_ERR_CORRUPT,
			       "%s field 'role': got %u, expected 1 (node) or "
			       "2 (client)",
			       msg, role);
	o.role = (enum proto_role)role;
	if ((err = len_field(msg, "dc_len", dlen, 0, PROTO_DC_MAX)) ||
	    (err = len_field(msg, "cluster_len", clen, 0,
			     PROTO_CLUSTER_MAX)) ||
	    (err = zero_field(msg, "reserved0",
			      res0a | ((uint64_t)res0b << 8))))
		return err;
	if (o.role != PROTO_ROLE_NODE && o.epoch != 0)
		return fr_fail(FR_ERR_CORRUPT,
			       "%s field 'epoch': got %u, expected 0 for a client",
			       msg, o.epoch);
	if ((o.role == PROTO_ROLE_NODE) != (o.node_id != 0))
		return fr_fail(FR_ERR_CORRUPT,
			       "%s field 'node_id': got %u, expected %s", msg,
			       o.node_id,
			       o.role == PROTO_ROLE_NODE ? "!= 0 for a node"
							 : "0 for a client");
	if ((err = get_name(&r, msg, "dc", "dc_len", dlen, o.dc)) ||
	    (err = get_name(&r, msg, "cluster", "cluster_len", clen,
			    o.cluster)) ||
	    (err = no_trailing(&r, msg)))
		return err;
	*m = o;
	return FR_OK;
}

/* ========================================================================
 * ERROR
 * ===================================================================== */

enum fr_err proto_error_encode(struct fr_wbuf *w, const struct proto_error *m)
{
	size_t n = msg_len(m->msg);
	struct frame_out fo;
	enum fr_err err;

	if (!code_known(m->code, false))
		return fr_fail(FR_ERR_INVAL,
			       "ERROR field 'code': got %d, expected a known "
			       "error code -1..-%d",
			       (int)m->code, FR_ERR__COUNT - 1);
	err = frame_begin(w, "ERROR", ERROR_FIXED + pad8(n), 0, &fo);
	if (err)
		return err;
	fr_wbuf_u64(&fo.pw, m->req_id);
	fr_wbuf_u32(&fo.pw, (uint32_t)(int32_t)m->code);
	fr_wbuf_u16(&fo.pw, (uint16_t)n);
	fr_wbuf_u16(&fo.pw, 0);
	put_text(&fo.pw, m->msg, n);
	frame_end(w, PROTO_ERROR, &fo);
	return FR_OK;
}

enum fr_err proto_error_decode(const uint8_t *p, size_t len,
			       struct proto_error *m)
{
	static const char msg[] = "ERROR";
	struct proto_error o;
	struct fr_rbuf r;
	uint32_t code;
	uint16_t n, res;
	enum fr_err err;

	err = need_fixed(msg, len, ERROR_FIXED);
	if (err)
		return err;
	fr_rbuf_init(&r, p, len);
	o.req_id = fr_rbuf_u64(&r);
	code = fr_rbuf_u32(&r);
	n = fr_rbuf_u16(&r);
	res = fr_rbuf_u16(&r);
	if ((err = code_field(msg, "code", code, false)) ||
	    (err = len_field(msg, "msg_len", n, 0, PROTO_ERRMSG_MAX)) ||
	    (err = zero_field(msg, "reserved", res)) ||
	    (err = get_text(&r, msg, "msg", "msg_len", n, o.msg)) ||
	    (err = no_trailing(&r, msg)))
		return err;
	o.code = (enum fr_err)(int32_t)code;
	*m = o;
	return FR_OK;
}

/* ========================================================================
 * PUBLISH
 * ===================================================================== */

enum fr_err proto_publish_encode(struct fr_wbuf *w,
				 const struct proto_publish *m,
				 uint32_t max_frame)
{
	static const char msg[] = "PUBLISH";
	size_t mlen = 0, tlen = 0, klen = 0;
	uint64_t vbytes, plen;
	struct frame_out fo;
	enum fr_err err;

	if ((err = name_check(msg, "model", m->model, sizeof(m->model), 1,
			      SHARD_NAME_MAX, &mlen)) ||
	    (err = name_check(msg, "table", m->table, sizeof(m->table), 1,
			      SHARD_NAME_MAX, &tlen)) ||
	    (err = text_check(msg, "key", m->key, sizeof(m->key), 0,
			      PROTO_KEY_MAX, &klen)))
		return err;
	if (m->n == 0)
		return fr_fail(FR_ERR_INVAL,
			       "PUBLISH field 'n': got 0, expected >= 1");
	if (m->dim == 0 || m->dim > SHARD_DIM_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "PUBLISH field 'dim': got %u, expected 1..%u",
			       m->dim, SHARD_DIM_MAX);
	if (!m->rows || !m->values)
		return fr_fail(FR_ERR_INVAL, "PUBLISH: rows or values is NULL");
	/* n < 2^32 and dim <= 2^16: no product below can wrap 64 bits. */
	vbytes = (uint64_t)m->n * m->dim * 4;
	plen = PUBLISH_FIXED + pad8(mlen) + pad8(tlen) + pad8(klen) +
	       (uint64_t)m->n * 8 + pad8(vbytes);
	err = frame_begin(w, msg, plen, max_frame, &fo);
	if (err)
		return err;
	fr_wbuf_u64(&fo.pw, m->req_id);
	fr_wbuf_u8(&fo.pw, (uint8_t)mlen);
	fr_wbuf_u8(&fo.pw, (uint8_t)tlen);
	fr_wbuf_u8(&fo.pw, (uint8_t)klen);
	fr_wbuf_u8(&fo.pw, 0);      /* reserved0 */
	fr_wbuf_u32(&fo.pw, m->n);
	fr_wbuf_u32(&fo.pw, m->dim);
	fr_wbuf_u32(&fo.pw, 0);     /* reserved1 */
	put_section(&fo.pw, m->model, mlen);
	put_section(&fo.pw, m->table, tlen);
	put_section(&fo.pw, m->key, klen);
	put_section(&fo.pw, m->rows, (size_t)m->n * 8);
	put_section(&fo.pw, m->values, (size_t)vbytes);
	frame_end(w, PROTO_PUBLISH, &fo);
	return FR_OK;
}

enum fr_err proto_publish_decode(const uint8_t *p, size_t len,
				 struct proto_publish *m)
{
	static const char msg[] = "PUBLISH";
	struct proto_publish o;
	struct fr_rbuf r;
	uint8_t mlen, tlen, klen, res0;
	uint32_t res1;
	const void *rows, *values;
	enum fr_err err;

	if ((err = need_aligned(msg, p)) ||
	    (err = need_fixed(msg, len, PUBLISH_FIXED)))
		return err;
	fr_rbuf_init(&r, p, len);
	o.req_id = fr_rbuf_u64(&r);
	mlen = fr_rbuf_u8(&r);
	tlen = fr_rbuf_u8(&r);
	klen = fr_rbuf_u8(&r);
	res0 = fr_rbuf_u8(&r);
	o.n = fr_rbuf_u32(&r);
	o.dim = fr_rbuf_u32(&r);
	res1 = fr_rbuf_u32(&r);
	if ((err = len_field(msg, "model_len", mlen, 1, SHARD_NAME_MAX)) ||
	    (err = len_field(msg, "table_len", tlen, 1, SHARD_NAME_MAX)) ||
	    (err = len_field(msg, "key_len", klen, 0, PROTO_KEY_MAX)) ||
	    (err = zero_field(msg, "reserved0", res0)) ||
	    (err = len_field(msg, "n", o.n, 1, UINT32_MAX)) ||
	    (err = len_field(msg, "dim", o.dim, 1, SHARD_DIM_MAX)) ||
	    (err = zero_field(msg, "reserved1", res1)))
		return err;
	if ((err = get_name(&r, msg, "model", "model_len", mlen, o.model)) ||
	    (err = get_name(&r, msg, "table", "table_len", tlen, o.table)) ||
	    (err = get_text(&r, msg, "key", "key_len", klen, o.key)) ||
	    (err = get_array(&r, msg, "rows", "n", o.n, 8, &rows)) ||
	    (err = get_array(&r, msg, "values", "n * dim",
			     (uint64_t)o.n * o.dim, 4, &values)) ||
	    (err = no_trailing(&r, msg)))
		return err;
	o.rows = rows;
	o.values = values;
	*m = o;
	return FR_OK;
}

/* ========================================================================
 * PUBLISH_ACK
 * ===================================================================== */

/* The status rules, shared by encoder (FR_ERR_INVAL) and decoder
 * (FR_ERR_CORRUPT). */
static enum fr_err ack_rules(const struct proto_publish_ack *m, size_t n,
			     enum fr_err bad)
{
	static const char msg[] = "PUBLISH_ACK";

	if (m->status == FR_OK) {
		if (m->version == 0 || m->origin == 0)
			return fr_fail(bad,
				       "%s field '%s': got 0, expected != 0 "
				       "with status ok",
				       msg, m->version ? "origin" : "version");
		if (n)
			return fr_fail(bad,
				       "%s field 'msg_len': got %zu, expected "
				       "0 with status ok",
				       msg, n);
	} else if (m->version || m->origin) {
		return fr_fail(bad,
			       "%s field '%s': got %llu, expected 0 with an "
			       "error status",
			       msg, m->version ? "version" : "origin",
			       m->version ? (unsigned long long)m->version
					  : (unsigned long long)m->origin);
	}
	if ((m->status == FR_ERR_BUSY) != (m->retry_after_ms != 0))
		return fr_fail(bad,
			       "%s field 'retry_after_ms': got %u, expected %s",
			       msg, m->retry_after_ms,
			       m->status == FR_ERR_BUSY
				       ? "> 0 with status busy"
				       : "0 unless the status is busy");
	return FR_OK;
}

enum fr_err proto_publish_ack_encode(struct fr_wbuf *w,
				     const struct proto_publish_ack *m)
{
	size_t n = msg_len(m->msg);
	struct frame_out fo;
	enum fr_err err;

	if (!code_known(m->status, true))
		return fr_fail(FR_ERR_INVAL,
			       "PUBLISH_ACK field 'status': got %d, expected "
			       "0 or a known error code",
			       (int)m->status);
	if (m->status == FR_OK)
		n = 0;  /* ok acks carry no text; msg may hold leftovers */
	err = ack_rules(m, n, FR_ERR_INVAL);
	if (err)
		return err;
	err = frame_begin(w, "PUBLISH_ACK", ACK_FIXED + pad8(n), 0, &fo);
	if (err)
		return err;
	fr_wbuf_u64(&fo.pw, m->req_id);
	fr_wbuf_u32(&fo.pw, (uint32_t)(int32_t)m->status);
	fr_wbuf_u32(&fo.pw, m->retry_after_ms);
	fr_wbuf_u32(&fo.pw, m->origin);
	fr_wbuf_u16(&fo.pw, (uint16_t)n);
	fr_wbuf_u16(&fo.pw, 0);
	fr_wbuf_u64(&fo.pw, m->version);
	put_text(&fo.pw, m->msg, n);
	frame_end(w, PROTO_PUBLISH_ACK, &fo);
	return FR_OK;
}

enum fr_err proto_publish_ack_decode(const uint8_t *p, size_t len,
				     struct proto_publish_ack *m)
{
	static const char msg[] = "PUBLISH_ACK";
	struct proto_publish_ack o;
	struct fr_rbuf r;
	uint32_t status;
	uint16_t n, res;
	enum fr_err err;

	err = need_fixed(msg, len, ACK_FIXED);
	if (err)
		return err;
	fr_rbuf_init(&r, p, len);
	o.req_id = fr_rbuf_u64(&r);
	status = fr_rbuf_u32(&r);
	o.retry_after_ms = fr_rbuf_u32(&r);
	o.origin = fr_rbuf_u32(&r);
	n = fr_rbuf_u16(&r);
	res = fr_rbuf_u16(&r);
	o.version = fr_rbuf_u64(&r);
	if ((err = code_field(msg, "status", status, true)) ||
	    (err = len_field(msg, "msg_len", n, 0, PROTO_ERRMSG_MAX)) ||
	    (err = zero_field(msg, "reserved", res)))
		return err;
	o.status = (enum fr_err)(int32_t)status;
	if ((err = ack_rules(&o, n, FR_ERR_CORRUPT)) ||
	    (err = get_text(&r, msg, "msg", "msg_len", n, o.msg)) ||
	    (err = no_trailing(&r, msg)))
		return err;
	*m = o;
	return FR_OK;
}

/* ========================================================================
 * LOOKUP
 * ===================================================================== */

enum fr_err proto_lookup_encode(struct fr_wbuf *w,
				const struct proto_lookup *m,
				uint32_t max_frame)
{
	static const char msg[] = "LOOKUP";
	size_t mlen = 0, tlen = 0;
	struct frame_out fo;
	enum fr_err err;

	if ((err = name_check(msg, "model", m->model, sizeof(m->model), 1,
			      SHARD_NAME_MAX, &mlen)) ||
	    (err = name_check(msg, "table", m->table, sizeof(m->table), 1,
			      SHARD_NAME_MAX, &tlen)))
		return err;
	if (m->n == 0)
		return fr_fail(FR_ERR_INVAL,
			       "LOOKUP field 'n': got 0, expected >= 1");
	if (!m->rows)
		return fr_fail(FR_ERR_INVAL, "LOOKUP: rows is NULL");
	err = frame_begin(w, msg,
			  LOOKUP_FIXED + pad8(mlen) + pad8(tlen) +
				  (uint64_t)m->n * 8,
			  max_frame, &fo);
	if (err)
		return err;
	fr_wbuf_u64(&fo.pw, m->req_id);
	fr_wbuf_u8(&fo.pw, (uint8_t)mlen);
	fr_wbuf_u8(&fo.pw, (uint8_t)tlen);
	fr_wbuf_u16(&fo.pw, 0);     /* reserved0 */
	fr_wbuf_u32(&fo.pw, m->n);
	put_section(&fo.pw, m->model, mlen);
	put_section(&fo.pw, m->table, tlen);
	put_section(&fo.pw, m->rows, (size_t)m->n * 8);
	frame_end(w, PROTO_LOOKUP, &fo);
	return FR_OK;
}

enum fr_err proto_lookup_decode(const uint8_t *p, size_t len,
				struct proto_lookup *m)
{
	static const char msg[] = "LOOKUP";
	struct proto_lookup o;
	struct fr_rbuf r;
	uint8_t mlen, tlen;
	uint16_t res;
	const void *rows;
	enum fr_err err;

	if ((err = need_aligned(msg, p)) ||
	    (err = need_fixed(msg, len, LOOKUP_FIXED)))
		return err;
	fr_rbuf_init(&r, p, len);
	o.req_id = fr_rbuf_u64(&r);
	mlen = fr_rbuf_u8(&r);
	tlen = fr_rbuf_u8(&r);
	res = fr_rbuf_u16(&r);
	o.n = fr_rbuf_u32(&r);
	if ((err = len_field(msg, "model_len", mlen, 1, SHARD_NAME_MAX)) ||
	    (err = len_field(msg, "table_len", tlen, 1, SHARD_NAME_MAX)) ||
	    (err = zero_field(msg, "reserved0", res)) ||
	    (err = len_field(msg, "n", o.n, 1, UINT32_MAX)) ||
	    (err = get_name(&r, msg, "model", "model_len", mlen, o.model)) ||
	    (err = get_name(&r, msg, "table", "table_len", tlen, o.table)) ||
	    (err = get_array(&r, msg, "rows", "n", o.n, 8, &rows)) ||
	    (err = no_trailing(&r, msg)))
		return err;
	o.rows = rows;
	*m = o;
	return FR_OK;
}

/* ========================================================================
 * LOOKUP_REPLY
 * ===================================================================== */

static enum fr_err reply_rules(const struct proto_lookup_reply *m, size_t n,
			       enum fr_err bad)
{
	static const char msg[] = "LOOKUP_REPLY";

	if (m->status == FR_OK) {
		if (m->n == 0)
			return fr_fail(bad,
				       "%s field 'n': got 0, expected >= 1 "
				       "with status ok",
				       msg);
		if (m->dim == 0 || m->dim > SHARD_DIM_MAX)
			return fr_fail(bad,
				       "%s field 'dim': got %u, expected "
				       "1..%u with status ok",
				       msg, m->dim, SHARD_DIM_MAX);
		if (n)
			return fr_fail(bad,
				       "%s field 'msg_len': got %zu, expected "
				       "0 with status ok",
				       msg, n);
	} else if (m->n || m->dim) {
		return fr_fail(bad,
			       "%s field '%s': got %u, expected 0 with an "
			       "error status",
			       msg, m->n ? "n" : "dim", m->n ? m->n : m->dim);
	}
	return FR_OK;
}

enum fr_err proto_lookup_reply_encode(struct fr_wbuf *w,
				      const struct proto_lookup_reply *m,
				      uint32_t max_frame)
{
	static const char msg[] = "LOOKUP_REPLY";
	size_t n = msg_len(m->msg);
	uint64_t vbytes;
	struct frame_out fo;
	enum fr_err err;

	if (!code_known(m->status, true))
		return fr_fail(FR_ERR_INVAL,
			       "%s field 'status': got %d, expected 0 or a "
			       "known error code",
			       msg, (int)m->status);
	if (m->status == FR_OK)
		n = 0;  /* ok replies carry no text; msg may hold leftovers */
	err = reply_rules(m, n, FR_ERR_INVAL);
	if (err)
		return err;
	if (m->status == FR_OK) {
		if (!m->versions || !m->origins || !m->values)
			return fr_fail(FR_ERR_INVAL,
				       "%s: versions, origins or values is "
				       "NULL",
				       msg);
	}
	vbytes = (uint64_t)m->n * m->dim * 4;
	err = frame_begin(w, msg,
			  REPLY_FIXED + pad8(n) + (uint64_t)m->n * 8 +
				  pad8((uint64_t)m->n * 4) + pad8(vbytes),
			  max_frame, &fo);
	if (err)
		return err;
	fr_wbuf_u64(&fo.pw, m->req_id);
	fr_wbuf_u32(&fo.pw, (uint32_t)(int32_t)m->status);
	fr_wbuf_u32(&fo.pw, m->n);
	fr_wbuf_u32(&fo.pw, m->dim);
	fr_wbuf_u16(&fo.pw, (uint16_t)n);
	fr_wbuf_u16(&fo.pw, 0);
	put_text(&fo.pw, m->msg, n);
	if (m->n) {
		put_section(&fo.pw, m->versions, (size_t)m->n * 8);
		put_section(&fo.pw, m->origins, (size_t)m->n * 4);
		put_section(&fo.pw, m->values, (size_t)vbytes);
	}
	frame_end(w, PROTO_LOOKUP_REPLY, &fo);
	return FR_OK;
}

enum fr_err proto_lookup_reply_decode(const uint8_t *p, size_t len,
				      struct proto_lookup_reply *m)
{
	static const char msg[] = "LOOKUP_REPLY";
	struct proto_lookup_reply o;
	struct fr_rbuf r;
	uint32_t status;
	uint16_t n, res;
	const void *versions = NULL, *origins = NULL, *values = NULL;
	enum fr_err err;

	if ((err = need_aligned(msg, p)) ||
	    (err = need_fixed(msg, len, REPLY_FIXED)))
		return err;
	fr_rbuf_init(&r, p, len);
	o.req_id = fr_rbuf_u64(&r);
	status = fr_rbuf_u32(&r);
	o.n = fr_rbuf_u32(&r);
	o.dim = fr_rbuf_u32(&r);
	n = fr_rbuf_u16(&r);
	res = fr_rbuf_u16(&r);
	if ((err = code_field(msg, "status", status, true)) ||
	    (err = len_field(msg, "msg_len", n, 0, PROTO_ERRMSG_MAX)) ||
	    (err = zero_field(msg, "reserved", res)))
		return err;
	o.status = (enum fr_err)(int32_t)status;
	if ((err = reply_rules(&o, n, FR_ERR_CORRUPT)) ||
	    (err = get_text(&r, msg, "msg", "msg_len", n, o.msg)))
		return err;
	if (o.n &&
	    ((err = get_array(&r, msg, "versions", "n", o.n, 8, &versions)) ||
	     (err = get_array(&r, msg, "origins", "n", o.n, 4, &origins)) ||
	     (err = get_array(&r, msg, "values", "n * dim",
			      (uint64_t)o.n * o.dim, 4, &values))))
		return err;
	err = no_trailing(&r, msg);
	if (err)
		return err;
	o.versions = versions;
	o.origins = origins;
	o.values = values;
	*m = o;
	return FR_OK;
}
