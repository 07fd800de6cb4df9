/*
 * codec.c — freshet's wire codec: the frame envelope and the row-batch
 * payload (docs/wire.md has the byte-by-byte tables).
 *
 * A frame is a 24-byte header (magic, version, type, length, reserved,
 * XXH3-64 of the payload) and a payload.  A row batch is a 32-byte fixed
 * header, the model name, the covers, and the per-row arrays, each section
 * starting 8-byte aligned from the payload start, so a receiver decodes in
 * place: the batch's pointers aim straight into the receive buffer.
 * The sender has two encoders that put the same bytes on the wire: one
 * copies the batch into a frame buffer, the other (scatter-gather) hashes
 * the batch where it lies and lists the frame as pieces for writev().
 *
 * What this file is not: it does not touch sockets, does not know peers,
 * and never checks a batch against a model's schema (the store does that
 * on apply).  Every function is pure and may run on any thread.
 *
 * Decoding never trusts a count: every section is checked against the
 * bytes present, with overflow-safe arithmetic, before a pointer into it is
 * formed; padding and reserved fields must be zero, so there is exactly one
 * encoding of a batch and the frame checksum covers all of it.
 */
#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>
/* libxxhash ships AVX2/AVX-512 variants behind a run-time dispatcher; the
 * hash value is the same, only faster (see bench_codec). */
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#include "shard/shard.h"

/* ========================================================================
 * Layouts pinned at compile time
 * ===================================================================== */

/* The frame header is serialised field by field, but the in-memory struct
 * has the wire's offsets so the table in docs/wire.md reads the same. */
_Static_assert(sizeof(struct shard_frame_hdr) == SHARD_FRAME_HDR_BYTES,
	       "frame header is 24 bytes");
_Static_assert(offsetof(struct shard_frame_hdr, magic) == 0, "magic @0");
_Static_assert(offsetof(struct shard_frame_hdr, version) == 4, "version @4");
_Static_assert(offsetof(struct shard_frame_hdr, type) == 6, "type @6");
_Static_assert(offsetof(struct shard_frame_hdr, length) == 8, "length @8");
_Static_assert(offsetof(struct shard_frame_hdr, reserved) == 12,
	       "reserved @12");
_Static_assert(offsetof(struct shard_frame_hdr, checksum) == 16,
	       "checksum @16");
_Static_assert(SHARD_FRAME_HDR_BYTES % 8 == 0,
	       "the payload of an 8-aligned frame is 8-aligned");

/* Fixed part of a batch payload, offsets as on the wire. */
struct batch_fixed {
	uint8_t name_len;
	uint8_t dtype;
	uint16_t reserved0;
	uint32_t dim;
	uint32_t table;
	uint32_t shard;
	uint32_t n;
	uint32_t ncovers;
	uint32_t flags;
	uint32_t reserved1;
};

#define BATCH_FIXED_BYTES 32
#define BATCH_COVER_BYTES 16
#define BATCH_FLAG_SIGNIFICANCE 0x1u
#define BATCH_FLAGS_KNOWN BATCH_FLAG_SIGNIFICANCE

_Static_assert(sizeof(struct batch_fixed) == BATCH_FIXED_BYTES,
	       "batch fixed header is 32 bytes");
_Static_assert(offsetof(struct batch_fixed, name_len) == 0, "name_len @0");
_Static_assert(offsetof(struct batch_fixed, dtype) == 1, "dtype @1");
_Static_assert(offsetof(struct batch_fixed, reserved0) == 2, "reserved0 @2");
_Static_assert(offsetof(struct batch_fixed, dim) == 4, "dim @4");
_Static_assert(offsetof(struct batch_fixed, table) == 8, "table @8");
_Static_assert(offsetof(struct batch_fixed, shard) == 12, "shard @12");
_Static_assert(offsetof(struct batch_fixed, n) == 16, "n @16");
_Static_assert(offsetof(struct batch_fixed, ncovers) == 20, "ncovers @20");
_Static_assert(offsetof(struct batch_fixed, flags) == 24, "flags @24");
_Static_assert(offsetof(struct batch_fixed, reserved1) == 28,
	       "reserved1 @28");

/* Covers are decoded in place as struct shard_vv_ent, so the host struct
 * must have the wire's shape: u32 origin, 4 bytes of padding, u64 version. */
_Static_assert(sizeof(struct shard_vv_ent) == BATCH_COVER_BYTES,
	       "a cover is 16 bytes");
_Static_assert(offsetof(struct shard_vv_ent, origin) == 0, "origin @0");
_Static_assert(offsetof(struct shard_vv_ent, version) == 8, "version @8");
_Static_assert(alignof(struct shard_vv_ent) <= 8, "covers need 8-alignment");

/* The dtype byte on the wire is the enum value. */
_Static_assert(SHARD_F32 == 1 && SHARD_F16 == 2, "wire dtype codes");
_Static_assert(sizeof(float) == 4, "f32 is 4 bytes");

/* Hash-then-copy granularity for the frame encoder: small enough that a
 * chunk is still in L2 when memcpy reads it again, large enough that the
 * per-call overhead vanishes (bench_codec: 64 KiB..256 KiB best, 1 MiB
 * spills L2 and loses 30%). */
#define CODEC_CHUNK (256u * 1024u)

/* ========================================================================
 * Helpers
 * ===================================================================== */

/* Bytes per element of a wire dtype code; 0 for an unknown code.  Local so
 * the codec's idea of the wire does not depend on the schema code. */
static size_t codec_dtype_size(uint32_t dt)
{
	switch (dt) {
	case SHARD_F32:
		return 4;
	case SHARD_F16:
		return 2;
	default:
		return 0;
	}
}

static inline uint64_t pad8(uint64_t n)
{
	return (8 - (n & 7)) & 7;
}

/* The checksum covers the header too: it is XXH3-64 of the payload with,
 * as seed, XXH3-64 of the header's first 16 bytes (magic, version, type,
 * length, reserved).  So a flipped bit in the type or the length is caught
 * like one in the payload, and the payload is still hashed in one pass.
 * (docs/wire.md §1.) */
static uint64_t frame_seed(uint16_t type, uint32_t length)
{
	uint8_t b[16];
	uint32_t magic = SHARD_FRAME_MAGIC, reserved = 0;
	uint16_t version = SHARD_FRAME_VERSION;

	memcpy(b + 0, &magic, 4);
	memcpy(b + 4, &version, 2);
	memcpy(b + 6, &type, 2);
	memcpy(b + 8, &length, 4);
	memcpy(b + 12, &reserved, 4);
	return XXH3_64bits(b, sizeof(b));
}

static inline uint64_t codec_hash(uint64_t seed, const void *p, size_t n)
{
	static const uint8_t empty[1];

	/* XXH3 reads nothing for n == 0, but NULL + 0 is still UB. */
	return XXH3_64bits_withSeed(n ? p : empty, n, seed);
}

/* The size of a batch payload, worked out before anything is written so
 * the encoder can refuse an oversized frame and reserve the rest at once.
 * It walks the sections in wire order (docs/wire.md §2.2); batch_emit()
 * must write exactly this many bytes (asserted). */
struct batch_layout {
	uint64_t values_bytes;  /* n * dim * dtype size, unpadded */
	uint64_t end;           /* payload length, a multiple of 8 */
};

/* Advance *off past count*size bytes plus padding to 8; false on overflow. */
static bool layout_take(uint64_t *off, uint64_t count, uint64_t size,
			uint64_t *bytes)
{
	uint64_t b, o;

	if (!fr_mul_size(count, size, &b) || !fr_add_size(*off, b, &o) ||
	    !fr_add_size(o, pad8(o), &o))
		return false;
	if (bytes)
		*bytes = b;
	*off = o;
	return true;
}

static bool batch_layout(uint32_t name_len, uint32_t n, uint32_t ncovers,
			 bool has_sig, uint64_t row_bytes,
			 struct batch_layout *l)
{
	uint64_t off = BATCH_FIXED_BYTES;

	if (!layout_take(&off, name_len, 1, NULL) ||             /* model */
	    !layout_take(&off, ncovers, BATCH_COVER_BYTES, NULL) ||
	    !layout_take(&off, n, 8, NULL) ||                    /* rows */
	    !layout_take(&off, n, 8, NULL) ||                    /* versions */
	    !layout_take(&off, n, 4, NULL) ||                    /* origins */
	    (has_sig && !layout_take(&off, n, 4, NULL)) ||       /* significance */
	    !layout_take(&off, n, row_bytes, &l->values_bytes))  /* values */
		return false;
	l->end = off;
	return true;
}

/* ========================================================================
 * Frame header
 * ===================================================================== */

static void frame_hdr_put(uint8_t *p, const struct shard_frame_hdr *h)
{
	memcpy(p + offsetof(struct shard_frame_hdr, magic), &h->magic, 4);
	memcpy(p + offsetof(struct shard_frame_hdr, version), &h->version, 2);
	memcpy(p + offsetof(struct shard_frame_hdr, type), &h->type, 2);
	memcpy(p + offsetof(struct shard_frame_hdr, length), &h->length, 4);
	memcpy(p + offsetof(struct shard_frame_hdr, reserved), &h->reserved,
	       4);
	memcpy(p + offsetof(struct shard_frame_hdr, checksum), &h->checksum,
	       8);
}

static void frame_hdr_get(const uint8_t *p, struct shard_frame_hdr *h)
{
	struct fr_rbuf r;

	fr_rbuf_init(&r, p, SHARD_FRAME_HDR_BYTES);
	h->magic = fr_rbuf_u32(&r);
	h->version = fr_rbuf_u16(&r);
	h->type = fr_rbuf_u16(&r);
	h->length = fr_rbuf_u32(&r);
	h->reserved = fr_rbuf_u32(&r);
	h->checksum = fr_rbuf_u64(&r);
}

static uint32_t frame_max(uint32_t max_frame)
{
	return max_frame ? max_frame : SHARD_FRAME_MAX_DEFAULT;
}

/* The frame length for a payload of plen bytes, or FR_ERR_TOOBIG. */
static enum fr_err frame_length(uint64_t plen, uint32_t max_frame,
				uint32_t *out)
{
	uint32_t max = frame_max(max_frame);
	uint64_t total;

	if (!fr_add_size(plen, SHARD_FRAME_HDR_BYTES, &total) || total > max)
		return fr_fail(FR_ERR_TOOBIG,
			       "frame field 'length': %llu-byte payload makes a "
			       "frame over the maximum of %u bytes",
			       (unsigned long long)plen, max);
	*out = (uint32_t)total;
	return FR_OK;
}

/* A frame header of type with everything but length and checksum. */
static struct shard_frame_hdr frame_hdr_new(uint16_t type)
{
	return (struct shard_frame_hdr){
		.magic = SHARD_FRAME_MAGIC,
		.version = SHARD_FRAME_VERSION,
		.type = type,
	};
}

enum fr_err shard_frame_encode(struct fr_wbuf *w, uint16_t type,
			       const void *payload, size_t len,
			       uint32_t max_frame)
{
	struct shard_frame_hdr h = frame_hdr_new(type);
	enum fr_err err;
	uint8_t *p;

	if (!payload && len)
		return fr_fail(FR_ERR_INVAL, "frame: NULL payload of %zu bytes",
			       len);
	err = frame_length(len, max_frame, &h.length);
	if (err)
		return err;
	p = fr_wbuf_append(w, h.length);
	if (!p)
		return w->err;
	if (len)
		memcpy(p + SHARD_FRAME_HDR_BYTES, payload, len);
	h.checksum = codec_hash(frame_seed(h.type, h.length),
				p + SHARD_FRAME_HDR_BYTES, len);
	frame_hdr_put(p, &h);
	return FR_OK;
}

enum fr_err shard_frame_seal(uint8_t *frame, uint16_t type, size_t len,
			     uint32_t max_frame)
{
	struct shard_frame_hdr h = frame_hdr_new(type);
	enum fr_err err;

	err = frame_length(len, max_frame, &h.length);
	if (err)
		return err;
	h.checksum = codec_hash(frame_seed(h.type, h.length),
				frame + SHARD_FRAME_HDR_BYTES, len);
	frame_hdr_put(frame, &h);
	return FR_OK;
}

enum fr_err shard_frame_peek(const uint8_t *buf, size_t len,
			     uint32_t max_frame, struct shard_frame_hdr *h)
{
	uint32_t max = frame_max(max_frame);

	if (!buf || len < SHARD_FRAME_HDR_BYTES)
		return fr_fail(FR_ERR_TRUNC,
			       "frame header: %d bytes needed, %zu present",
			       SHARD_FRAME_HDR_BYTES, buf ? len : 0);
	frame_hdr_get(buf, h);
	if (h->magic != SHARD_FRAME_MAGIC)
		return fr_fail(FR_ERR_MAGIC,
			       "frame field 'magic': got 0x%08x, expected "
			       "0x%08x (\"FRSH\")",
			       h->magic, SHARD_FRAME_MAGIC);
	if (h->version != SHARD_FRAME_VERSION)
		return fr_fail(FR_ERR_VERSION,
			       "frame field 'version': got %u, expected %u",
			       h->version, SHARD_FRAME_VERSION);
	if (h->reserved != 0)
		return fr_fail(FR_ERR_CORRUPT,
			       "frame field 'reserved': got 0x%08x, expected 0",
			       h->reserved);
	if (h->length < SHARD_FRAME_HDR_BYTES)
		return fr_fail(FR_ERR_CORRUPT,
			       "frame field 'length': got %u, expected >= %d "
			       "(the header)",
			       h->length, SHARD_FRAME_HDR_BYTES);
	if (h->length > max)
		return fr_fail(FR_ERR_TOOBIG,
			       "frame field 'length': got %u, expected <= %u "
			       "(max frame)",
			       h->length, max);
	return FR_OK;
}

enum fr_err shard_frame_decode(const uint8_t *buf, size_t len,
			       uint32_t max_frame, struct shard_frame_hdr *h,
			       const uint8_t **payload, size_t *plen)
{
	enum fr_err err;
	size_t n;
	uint64_t sum;

	err = shard_frame_peek(buf, len, max_frame, h);
	if (err)
		return err;
	if (len < h->length)
		return fr_fail(FR_ERR_TRUNC,
			       "frame field 'length': %u bytes, %zu present",
			       h->length, len);
	n = h->length - SHARD_FRAME_HDR_BYTES;
	sum = codec_hash(frame_seed(h->type, h->length),
			 buf + SHARD_FRAME_HDR_BYTES, n);
	if (sum != h->checksum)
		return fr_fail(FR_ERR_CHECKSUM,
			       "frame field 'checksum': got 0x%016llx, header "
			       "and %zu-byte payload hash to 0x%016llx",
			       (unsigned long long)h->checksum, n,
			       (unsigned long long)sum);
	if (payload)
		*payload = buf + SHARD_FRAME_HDR_BYTES;
	if (plen)
		*plen = n;
	return FR_OK;
}

/* ========================================================================
 * Batch encoding
 *
 * One function, batch_pieces(), knows the section order: it writes the
 * small parts of a payload into a scratch buffer and lists the payload as
 * pieces (shard_iov) in wire order, borrowing the caller's arrays.  The
 * copying encoders copy (and hash) the pieces into a wbuf; the
 * scatter-gather encoder hashes them and hands them out.  So both put the
 * same bytes on the wire by construction.
 * ===================================================================== */

/* The small head of a payload: fixed header, name padded to 8, covers. */
#define BATCH_SMALL_MAX \
	(BATCH_FIXED_BYTES + SHARD_NAME_MAX + 1 + \
	 SHARD_VV_MAX * BATCH_COVER_BYTES)
/* Pieces of a payload at most: small head, rows, versions, origins + pad,
 * significance + pad, values + pad. */
#define BATCH_PIECES_MAX 9

_Static_assert((SHARD_NAME_MAX + 1) % 8 == 0,
	       "a name padded to 8 fits in SHARD_NAME_MAX + 1 bytes");
_Static_assert(SHARD_BATCH_IOV_SCRATCH ==
		       SHARD_FRAME_HDR_BYTES + BATCH_SMALL_MAX,
	       "shard.h's scratch bound matches the layout");
_Static_assert(BATCH_PIECES_MAX <= SHARD_BATCH_IOV_MAX,
	       "the frame header shares piece 0, so a frame has as many");

/* Padding comes from here, never from the caller's memory. */
static const uint8_t codec_zero[8];

/* Check what the caller hands us; these are programmer or config errors,
 * reported rather than asserted because a model name comes from outside. */
static enum fr_err batch_check_enc(const struct shard_batch_hdr *h,
				   const struct shard_batch *b,
				   uint32_t *name_len, size_t *elem)
{
	size_t nl = strnlen(h->model, sizeof(h->model));

	if (nl == 0 || nl > SHARD_NAME_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "batch field 'model': length must be 1..%d",
			       SHARD_NAME_MAX);
	if (!fr_name_valid_n(h->model, nl))
		return fr_fail(FR_ERR_INVAL,
			       "batch field 'model': expected a name of "
			       FR_NAME_CHARS);
	*elem = codec_dtype_size(h->dtype);
	if (!*elem)
		return fr_fail(FR_ERR_INVAL,
			       "batch field 'dtype': got %d, expected 1 (f32) "
			       "or 2 (f16)",
			       (int)h->dtype);
	if (h->dim < 1 || h->dim > SHARD_DIM_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "batch field 'dim': got %u, expected 1..%d",
			       h->dim, SHARD_DIM_MAX);
	if (b->ncovers > SHARD_VV_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "batch field 'ncovers': got %u, expected <= %d",
			       b->ncovers, SHARD_VV_MAX);
	if (b->ncovers && !b->covers)
		return fr_fail(FR_ERR_INVAL,
			       "batch field 'covers': NULL with ncovers %u",
			       b->ncovers);
	if (b->n && (!b->rows || !b->versions || !b->origins || !b->values))
		return fr_fail(FR_ERR_INVAL,
			       "batch: NULL row array with n %u", b->n);
	*name_len = (uint32_t)nl;
	return FR_OK;
}

/* Validate and lay out a batch for encoding: the payload size, checked. */
static enum fr_err batch_prepare(const struct shard_batch_hdr *h,
				 const struct shard_batch *b,
				 uint32_t *name_len, struct batch_layout *l)
{
	enum fr_err err;
	size_t elem = 0;

	err = batch_check_enc(h, b, name_len, &elem);
	if (err)
		return err;
	if (!batch_layout(*name_len, b->n, b->ncovers, b->significance != NULL,
			  (uint64_t)h->dim * elem, l) ||
	    l->end > SIZE_MAX)
		return fr_fail(FR_ERR_TOOBIG,
			       "batch field 'n': %u rows of dim %u do not fit "
			       "in memory",
			       b->n, h->dim);
	return FR_OK;
}

/* Append a piece, skipping empty ones (a writev of 0 bytes is a wasted
 * slot, and n == 0 batches have empty arrays that may be NULL). */
static void piece_add(struct shard_iov *iov, unsigned *n, uint64_t *off,
		      const void *p, size_t len)
{
	if (!len)
		return;
	assert(*n < BATCH_PIECES_MAX);
	iov[*n].base = p;
	iov[*n].len = len;
	(*n)++;
	*off += len;
}

static void piece_pad(struct shard_iov *iov, unsigned *n, uint64_t *off)
{
	piece_add(iov, n, off, codec_zero, (size_t)pad8(*off));
}

/* Write the small head of b's payload into small (BATCH_SMALL_MAX bytes)
 * and list the whole payload as pieces in wire order (docs/wire.md §2.2):
 * piece 0 is the head, the rest borrow b's arrays and codec_zero.
 * Returns the number of pieces; their lengths add up to l->end. */
static unsigned batch_pieces(uint8_t *small, const struct shard_batch_hdr *h,
			     const struct shard_batch *b, uint32_t name_len,
			     const struct batch_layout *l,
			     struct shard_iov iov[BATCH_PIECES_MAX])
{
	uint32_t flags = b->significance ? BATCH_FLAG_SIGNIFICANCE : 0;
	size_t n = b->n, head;
	unsigned k = 0;
	uint64_t off = 0;

	/* Field by field: the struct has no padding (asserted above), but
	 * writing each field keeps the wire independent of the compiler.
	 * Reserved fields and the name's padding are zeroed with it. */
	head = BATCH_FIXED_BYTES + name_len + (size_t)pad8(name_len);
	memset(small, 0, head);
	small[offsetof(struct batch_fixed, name_len)] = (uint8_t)name_len;
	small[offsetof(struct batch_fixed, dtype)] = (uint8_t)h->dtype;
	memcpy(small + offsetof(struct batch_fixed, dim), &h->dim, 4);
	memcpy(small + offsetof(struct batch_fixed, table), &b->table, 4);
	memcpy(small + offsetof(struct batch_fixed, shard), &b->shard, 4);
	memcpy(small + offsetof(struct batch_fixed, n), &b->n, 4);
	memcpy(small + offsetof(struct batch_fixed, ncovers), &b->ncovers, 4);
	memcpy(small + offsetof(struct batch_fixed, flags), &flags, 4);
	memcpy(small + BATCH_FIXED_BYTES, h->model, name_len);

	/* Covers one by one: the caller's structs have padding bytes whose
	 * value is unspecified, and the wire wants zeros there. */
	for (uint32_t i = 0; i < b->ncovers; i++) {
		uint8_t *c = small + head;

		memset(c, 0, BATCH_COVER_BYTES);
		memcpy(c, &b->covers[i].origin, 4);
		memcpy(c + 8, &b->covers[i].version, 8);
		head += BATCH_COVER_BYTES;
	}
	assert(head <= BATCH_SMALL_MAX);
	piece_add(iov, &k, &off, small, head);

	/* The host is little-endian (common.h refuses anything else), so the
	 * arrays are already in wire order and go across as they lie. */
	piece_add(iov, &k, &off, b->rows, n * 8);
	piece_add(iov, &k, &off, b->versions, n * 8);
	piece_add(iov, &k, &off, b->origins, n * 4);
	piece_pad(iov, &k, &off);
	if (b->significance) {
		piece_add(iov, &k, &off, b->significance, n * 4);
		piece_pad(iov, &k, &off);
	}
	piece_add(iov, &k, &off, b->values, (size_t)l->values_bytes);
	piece_pad(iov, &k, &off);
	assert(off == l->end);
	return k;
}

/* Copies a payload's pieces front to back and, when xs is not NULL,
 * feeds the same bytes to XXH3 chunk by chunk while they are in cache.
 * It hashes the caller's source rather than the copy (see emit() for
 * why); the bytes are the same because the arrays are borrowed and must
 * not change during the call. */
struct emitter {
	uint8_t *p;
	size_t off;
	XXH3_state_t *xs;
};

static void emit(struct emitter *e, const void *src, size_t n)
{
	const uint8_t *s = src;

	while (n) {
		size_t c = n < CODEC_CHUNK ? n : CODEC_CHUNK;
		uint8_t *d = e->p + e->off;

		/* Hash the source chunk first, then copy it: the hash pulls
		 * the chunk into L2 and memcpy (rep movsb) then writes the
		 * destination without reading it first.  Copy-then-hash
		 * measured 15-30% slower (bench_codec). */
		if (e->xs)
			XXH3_64bits_update(e->xs, s, c);
		memcpy(d, s, c);
		e->off += c;
		s += c;
		n -= c;
	}
}

/* Encode b's payload at p (l->end bytes reserved), hashing into xs when
 * it is not NULL. */
static void batch_emit(uint8_t *p, XXH3_state_t *xs,
		       const struct shard_batch_hdr *h,
		       const struct shard_batch *b, uint32_t name_len,
		       const struct batch_layout *l)
{
	uint8_t small[BATCH_SMALL_MAX];
	struct shard_iov iov[BATCH_PIECES_MAX];
	struct emitter e = { .p = p, .off = 0, .xs = xs };
	unsigned k = batch_pieces(small, h, b, name_len, l, iov);

	for (unsigned i = 0; i < k; i++)
		emit(&e, iov[i].base, iov[i].len);
	assert(e.off == l->end);
}

enum fr_err shard_batch_encode(struct fr_wbuf *w,
			       const struct shard_batch_hdr *h,
			       const struct shard_batch *b)
{
	struct batch_layout l;
	uint32_t name_len;
	enum fr_err err;
	uint8_t *p;

	err = batch_prepare(h, b, &name_len, &l);
	if (err)
		return err;
	p = fr_wbuf_append(w, (size_t)l.end);
	if (!p)
		return w->err;
	batch_emit(p, NULL, h, b, name_len, &l);
	return FR_OK;
}

/* Check a batch and lay out its frame: the header (all but the checksum)
 * in *fh, the payload's layout in *l. */
static enum fr_err batch_frame_prepare(const struct shard_batch_hdr *h,
				       const struct shard_batch *b,
				       uint32_t max_frame,
				       struct shard_frame_hdr *fh,
				       uint32_t *name_len,
				       struct batch_layout *l)
{
	enum fr_err err = batch_prepare(h, b, name_len, l);

	if (err)
		return err;
	*fh = frame_hdr_new(SHARD_FRAME_BATCH);
	return frame_length(l->end, max_frame, &fh->length);
}

enum fr_err shard_batch_frame_encode(struct fr_wbuf *w,
				     const struct shard_batch_hdr *h,
				     const struct shard_batch *b,
				     uint32_t max_frame)
{
	struct shard_frame_hdr fh;
	struct batch_layout l;
	XXH3_state_t xs;
	uint32_t name_len;
	enum fr_err err;
	uint8_t *p;

	err = batch_frame_prepare(h, b, max_frame, &fh, &name_len, &l);
	if (err)
		return err;
	/* One reservation for the whole frame: no realloc mid-copy, and a
	 * reused wbuf touches no new pages. */
	p = fr_wbuf_append(w, fh.length);
	if (!p)
		return w->err;
	XXH3_INITSTATE(&xs);
	XXH3_64bits_reset_withSeed(&xs, frame_seed(fh.type, fh.length));
	batch_emit(p + SHARD_FRAME_HDR_BYTES, &xs, h, b, name_len, &l);
	fh.checksum = XXH3_64bits_digest(&xs);
	frame_hdr_put(p, &fh);
	return FR_OK;
}

enum fr_err shard_batch_frame_encode_iov(
	uint8_t scratch[SHARD_BATCH_IOV_SCRATCH],
	const struct shard_batch_hdr *h, const struct shard_batch *b,
	uint32_t max_frame, struct shard_iov iov[SHARD_BATCH_IOV_MAX],
	unsigned *niov)
{
	struct shard_frame_hdr fh;
	struct batch_layout l;
	XXH3_state_t xs;
	uint32_t name_len;
	enum fr_err err;
	unsigned k;

	*niov = 0;
	err = batch_frame_prepare(h, b, max_frame, &fh, &name_len, &l);
	if (err)
		return err;
	/* The payload's head goes right after the frame header in scratch,
	 * so the two travel as one piece. */
	k = batch_pieces(scratch + SHARD_FRAME_HDR_BYTES, h, b, name_len, &l,
			 iov);
	/* No copy to ride along, so no chunking: one update per piece lets
	 * XXH3 stream each array at full speed. */
	XXH3_INITSTATE(&xs);
	XXH3_64bits_reset_withSeed(&xs, frame_seed(fh.type, fh.length));
	for (unsigned i = 0; i < k; i++)
		XXH3_64bits_update(&xs, iov[i].base, iov[i].len);
	fh.checksum = XXH3_64bits_digest(&xs);
	frame_hdr_put(scratch, &fh);
	assert(k >= 1 && iov[0].base == scratch + SHARD_FRAME_HDR_BYTES);
	iov[0].base = scratch;
	iov[0].len += SHARD_FRAME_HDR_BYTES;
	*niov = k;
	return FR_OK;
}

/* ========================================================================
 * Batch decoding
 * ===================================================================== */

/* Take a section of count elements of size bytes, then its zero padding
 * to 8, checking both against the bytes left before forming a pointer. */
static enum fr_err take_section(struct fr_rbuf *r, uint64_t count,
				uint64_t size, const char *section,
				const char *count_field, const uint8_t **out)
{
	const uint8_t *p, *z;
	size_t pad, at;

	if (!fr_rbuf_fits(r, count, size))
		return fr_fail(FR_ERR_TRUNC,
			       "batch field '%s': %llu x %llu bytes of '%s' "
			       "expected, %zu bytes left at offset %zu",
			       count_field, (unsigned long long)count,
			       (unsigned long long)size, section,
			       fr_rbuf_left(r), r->off);
	/* count * size cannot overflow: fr_rbuf_fits checked it. */
	p = fr_rbuf_bytes(r, (size_t)(count * size));
	at = r->off;
	pad = (size_t)pad8(at);
	z = fr_rbuf_bytes(r, pad);
	if (!p || !z)
		return fr_fail(FR_ERR_TRUNC,
			       "batch section '%s': padding to 8 bytes expected "
			       "at offset %zu, payload ends there",
			       section, at);
	for (size_t i = 0; i < pad; i++)
		if (z[i])
			return fr_fail(FR_ERR_CORRUPT,
				       "batch section '%s': padding byte at "
				       "offset %zu is 0x%02x, expected 0",
				       section, at + i, z[i]);
	*out = p;
	return FR_OK;
}

enum fr_err shard_batch_decode(const uint8_t *payload, size_t len,
			       struct shard_batch_hdr *h,
			       struct shard_batch *b)
{
	const uint8_t *name, *covers, *rows, *versions, *origins, *values;
	const uint8_t *sig = NULL;
	struct batch_fixed f;
	struct fr_rbuf r;
	enum fr_err err;
	size_t elem;

	/* Zero-copy needs the arrays naturally aligned; every section starts
	 * at a multiple of 8 from the payload, so the payload must be too. */
	if ((uintptr_t)payload & 7)
		return fr_fail(FR_ERR_INVAL,
			       "batch payload: buffer %p is not 8-byte aligned",
			       (const void *)payload);
	if (!payload || len < BATCH_FIXED_BYTES)
		return fr_fail(FR_ERR_TRUNC,
			       "batch header: %d bytes expected, %zu present",
			       BATCH_FIXED_BYTES, payload ? len : 0);
	fr_rbuf_init(&r, payload, len);
	f.name_len = fr_rbuf_u8(&r);
	f.dtype = fr_rbuf_u8(&r);
	f.reserved0 = fr_rbuf_u16(&r);
	f.dim = fr_rbuf_u32(&r);
	f.table = fr_rbuf_u32(&r);
	f.shard = fr_rbuf_u32(&r);
	f.n = fr_rbuf_u32(&r);
	f.ncovers = fr_rbuf_u32(&r);
	f.flags = fr_rbuf_u32(&r);
	f.reserved1 = fr_rbuf_u32(&r);
	assert(r.err == FR_OK && r.off == BATCH_FIXED_BYTES);

	if (f.name_len < 1 || f.name_len > SHARD_NAME_MAX)
		return fr_fail(FR_ERR_RANGE,
			       "batch field 'name_len': got %u, expected 1..%d",
			       f.name_len, SHARD_NAME_MAX);
	elem = codec_dtype_size(f.dtype);
	if (!elem)
		return fr_fail(FR_ERR_CORRUPT,
			       "batch field 'dtype': got %u, expected 1 (f32) "
			       "or 2 (f16)",
			       f.dtype);
	if (f.reserved0 || f.reserved1)
		return fr_fail(FR_ERR_CORRUPT,
			       "batch field '%s': got 0x%x, expected 0",
			       f.reserved0 ? "reserved0" : "reserved1",
			       f.reserved0 ? f.reserved0 : f.reserved1);
	if (f.dim < 1 || f.dim > SHARD_DIM_MAX)
		return fr_fail(FR_ERR_RANGE,
			       "batch field 'dim': got %u, expected 1..%d",
			       f.dim, SHARD_DIM_MAX);
	if (f.ncovers > SHARD_VV_MAX)
		return fr_fail(FR_ERR_RANGE,
			       "batch field 'ncovers': got %u, expected <= %d",
			       f.ncovers, SHARD_VV_MAX);
	if (f.flags & ~BATCH_FLAGS_KNOWN)
		return fr_fail(FR_ERR_CORRUPT,
			       "batch field 'flags': got 0x%x, expected only "
			       "bit 0 (significance)",
			       f.flags);

	err = take_section(&r, f.name_len, 1, "model", "name_len", &name);
	if (err)
		return err;
	if (!fr_name_valid_n(name, f.name_len))
		return fr_fail(FR_ERR_CORRUPT,
			       "batch field 'model': expected a name of "
			       FR_NAME_CHARS);
	err = take_section(&r, f.ncovers, BATCH_COVER_BYTES, "covers",
			   "ncovers", &covers);
	if (err)
		return err;
	for (uint32_t i = 0; i < f.ncovers; i++) {
		uint32_t pad;

		memcpy(&pad, covers + (size_t)i * BATCH_COVER_BYTES + 4, 4);
		if (pad)
			return fr_fail(FR_ERR_CORRUPT,
				       "batch field 'covers[%u].reserved': got "
				       "0x%x, expected 0",
				       i, pad);
	}
	err = take_section(&r, f.n, 8, "rows", "n", &rows);
	if (!err)
		err = take_section(&r, f.n, 8, "versions", "n", &versions);
	if (!err)
		err = take_section(&r, f.n, 4, "origins", "n", &origins);
	if (!err && (f.flags & BATCH_FLAG_SIGNIFICANCE))
		err = take_section(&r, f.n, 4, "significance", "n", &sig);
	/* dim <= 65536 and elem <= 4, so dim * elem is small; n * that is
	 * checked inside fr_rbuf_fits. */
	if (!err)
		err = take_section(&r, f.n, (uint64_t)f.dim * elem, "values",
				   "n", &values);
	if (err)
		return err;
	if (fr_rbuf_left(&r))
		return fr_fail(FR_ERR_CORRUPT,
			       "batch payload: %zu trailing bytes after the "
			       "values (payload %zu bytes, batch ends at %zu)",
			       fr_rbuf_left(&r), len, r.off);

	memcpy(h->model, name, f.name_len);
	h->model[f.name_len] = '\0';
	h->dtype = (enum shard_dtype)f.dtype;
	h->dim = f.dim;
	b->table = f.table;
	b->shard = f.shard;
	b->n = f.n;
	b->rows = (const uint64_t *)(const void *)rows;
	b->versions = (const uint64_t *)(const void *)versions;
	b->origins = (const uint32_t *)(const void *)origins;
	b->significance = (const float *)(const void *)sig;
	b->values = values;
	b->ncovers = f.ncovers;
	b->covers = (const struct shard_vv_ent *)(const void *)covers;
	return FR_OK;
}
