/*
 * buf.c — bounds-checked little-endian writers and readers for codecs.
 *
 * Both sides carry a sticky error so that a codec can emit or parse a whole
 * header and check once: after the first failure every call is a no-op that
 * returns zero/NULL.  Fields are copied with memcpy, which compiles to plain
 * loads and stores on the little-endian hosts common.h allows, and never
 * makes an unaligned access undefined.  This file knows nothing about any
 * particular format.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

/* ----------------------------------------------------------------------
 * Checked size arithmetic
 * -------------------------------------------------------------------- */

bool fr_mul_size(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

bool fr_add_size(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

/* ----------------------------------------------------------------------
 * Writer
 * -------------------------------------------------------------------- */

void fr_wbuf_init(struct fr_wbuf *w, size_t initial_cap, size_t limit)
{
	memset(w, 0, sizeof(*w));
	w->limit = limit ? limit : SIZE_MAX;
	w->owned = true;
	w->err = FR_OK;
	if (initial_cap > w->limit)
		initial_cap = w->limit;
	if (initial_cap) {
		w->data = malloc(initial_cap);
		if (w->data)
			w->cap = initial_cap;
		/* A failed first allocation is retried on the first write,
		 * which then reports FR_ERR_NOMEM. */
	}
}

void fr_wbuf_init_fixed(struct fr_wbuf *w, void *mem, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->data = mem;
	w->cap = cap;
	w->limit = cap;
	w->owned = false;
	w->err = FR_OK;
}

void fr_wbuf_fini(struct fr_wbuf *w)
{
	if (w->owned)
		free(w->data);
	w->data = NULL;
	w->len = 0;
	w->cap = 0;
}

/* Grow so that need bytes fit; doubling keeps appends amortised O(1),
 * and the limit caps the doubling rather than failing a write that fits. */
static bool fr_wbuf_grow(struct fr_wbuf *w, size_t need)
{
	size_t ncap;
	uint8_t *nd;

	if (!w->owned) {
		w->err = fr_fail(FR_ERR_TOOBIG,
				 "fixed buffer: %zu bytes needed, capacity %zu",
				 need, w->cap);
		return false;
	}
	ncap = w->cap ? w->cap : 64;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	if (ncap > w->limit)
		ncap = w->limit;
	nd = realloc(w->data, ncap);
	if (!nd) {
		w->err = fr_fail(FR_ERR_NOMEM, "buffer: cannot grow to %zu bytes",
				 ncap);
		return false;
	}
	w->data = nd;
	w->cap = ncap;
	return true;
}

uint8_t *fr_wbuf_reserve(struct fr_wbuf *w, size_t n)
{
	size_t need;

	if (w->err)
		return NULL;
	if (__builtin_add_overflow(w->len, n, &need) || need > w->limit) {
		w->err = fr_fail(FR_ERR_TOOBIG,
				 "buffer: %zu + %zu bytes exceeds limit %zu",
				 w->len, n, w->limit);
		return NULL;
	}
	/* A growable buffer with no memory yet allocates even for n == 0,
	 * so that success always comes back as a real pointer. */
	if ((need > w->cap || (!w->data && w->owned)) &&
	    !fr_wbuf_grow(w, need))
		return NULL;
	return w->data ? w->data + w->len : NULL;
}

uint8_t *fr_wbuf_append(struct fr_wbuf *w, size_t n)
{
	uint8_t *p = fr_wbuf_reserve(w, n);

	if (p)
		w->len += n;
	return p;
}

void fr_wbuf_u8(struct fr_wbuf *w, uint8_t v)
{
	uint8_t *p = fr_wbuf_append(w, sizeof(v));

	if (p)
		*p = v;
}

void fr_wbuf_u16(struct fr_wbuf *w, uint16_t v)
{
	uint8_t *p = fr_wbuf_append(w, sizeof(v));

	if (p)
		memcpy(p, &v, sizeof(v));
}

void fr_wbuf_u32(struct fr_wbuf *w, uint32_t v)
{
	uint8_t *p = fr_wbuf_append(w, sizeof(v));

	if (p)
		memcpy(p, &v, sizeof(v));
}

void fr_wbuf_u64(struct fr_wbuf *w, uint64_t v)
{
	uint8_t *p = fr_wbuf_append(w, sizeof(v));

	if (p)
		memcpy(p, &v, sizeof(v));
}

void fr_wbuf_bytes(struct fr_wbuf *w, const void *src, size_t n)
{
	uint8_t *p;

	if (n == 0)
		return;
	p = fr_wbuf_append(w, n);
	if (p)
		memcpy(p, src, n);
}

void fr_wbuf_pad(struct fr_wbuf *w, size_t align)
{
	size_t n;
	uint8_t *p;

	if (align == 0 || (align & (align - 1)) != 0) {
		if (!w->err)
			w->err = fr_fail(FR_ERR_INVAL,
					 "pad: align %zu is not a power of two",
					 align);
		return;
	}
	n = (align - (w->len & (align - 1))) & (align - 1);
	if (n == 0)
		return;
	p = fr_wbuf_append(w, n);
	if (p)
		memset(p, 0, n);
}

static void fr_wbuf_put_at(struct fr_wbuf *w, size_t off, const void *v,
			   size_t n)
{
	if (w->err)
		return;
	if (off > w->len || w->len - off < n) {
		w->err = fr_fail(FR_ERR_RANGE,
				 "put_at: offset %zu + %zu beyond length %zu",
				 off, n, w->len);
		return;
	}
	memcpy(w->data + off, v, n);
}

void fr_wbuf_put_u32_at(struct fr_wbuf *w, size_t off, uint32_t v)
{
	fr_wbuf_put_at(w, off, &v, sizeof(v));
}

void fr_wbuf_put_u64_at(struct fr_wbuf *w, size_t off, uint64_t v)
{
	fr_wbuf_put_at(w, off, &v, sizeof(v));
}

/* Also clears the sticky error: a reset buffer is a fresh one that happens
 * to own memory already. */
void fr_wbuf_reset(struct fr_wbuf *w)
{
	w->len = 0;
	w->err = FR_OK;
}

/* ----------------------------------------------------------------------
 * Reader
 * -------------------------------------------------------------------- */

void fr_rbuf_init(struct fr_rbuf *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = FR_OK;
}

const uint8_t *fr_rbuf_bytes(struct fr_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (r->len - r->off < n) {
		r->err = fr_fail(FR_ERR_TRUNC,
				 "read: %zu bytes wanted at offset %zu, %zu left",
				 n, r->off, r->len - r->off);
		return NULL;
	}
	/* An empty reader may have p == NULL; NULL + 0 is still undefined,
	 * and NULL would read as failure, so a zero-length read of it points
	 * at a static byte instead. */
	if (!r->p) {
		static const uint8_t fr_rbuf_empty[1];

		return fr_rbuf_empty;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t fr_rbuf_u8(struct fr_rbuf *r)
{
	const uint8_t *p = fr_rbuf_bytes(r, 1);

	return p ? *p : 0;
}

/* n little-endian bytes (n <= 8) read into the low bytes of a u64: 0 on
 * a short read (the error is sticky). */
static uint64_t rbuf_le(struct fr_rbuf *r, size_t n)
{
	const uint8_t *p = fr_rbuf_bytes(r, n);
	uint64_t v = 0;

	if (p)
		memcpy(&v, p, n);
	return v;
}

uint16_t fr_rbuf_u16(struct fr_rbuf *r)
{
	return (uint16_t)rbuf_le(r, 2);
}

uint32_t fr_rbuf_u32(struct fr_rbuf *r)
{
	return (uint32_t)rbuf_le(r, 4);
}

uint64_t fr_rbuf_u64(struct fr_rbuf *r)
{
	return rbuf_le(r, 8);
}

void fr_rbuf_copy(struct fr_rbuf *r, void *dst, size_t n)
{
	const uint8_t *p = fr_rbuf_bytes(r, n);

	if (p) {
		if (n)
			memcpy(dst, p, n);
	} else if (n) {
		/* Sticky failure reads as zeros, like the scalar getters. */
		memset(dst, 0, n);
	}
}

void fr_rbuf_align(struct fr_rbuf *r, size_t align)
{
	size_t n;

	if (r->err)
		return;
	if (align == 0 || (align & (align - 1)) != 0) {
		r->err = fr_fail(FR_ERR_INVAL,
				 "align: %zu is not a power of two", align);
		return;
	}
	n = (align - (r->off & (align - 1))) & (align - 1);
	fr_rbuf_bytes(r, n);
}

bool fr_rbuf_fits(const struct fr_rbuf *r, uint64_t count, uint64_t size)
{
	uint64_t total;

	if (r->err)
		return count == 0 || size == 0;
	if (!fr_mul_size(count, size, &total))
		return false;
	return total <= (uint64_t)(r->len - r->off);
}
