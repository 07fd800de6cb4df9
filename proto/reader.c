/*
 * reader.c — proto_reader: cuts a TCP byte stream into whole, checked
 * frames for the client library and the node's connections.
 *
 * The buffer holds [0, consumed) bytes already handed out, then the bytes
 * still waiting.  A frame is handed out in place when it starts 8-aligned;
 * a frame that starts misaligned (after a frame whose length is not a
 * multiple of 8) is first moved back to the aligned offset at or below its
 * start.  That move only overwrites bytes already consumed and the frame
 * itself, so it costs the frame's length and never the bytes behind it.
 * Room for a feed is made by dropping the consumed prefix first and
 * growing second, so the buffer stays near one frame plus one feed.
 *
 * Not here: sockets, timeouts, what a frame means.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* An emptied buffer larger than this is given back, so an idle connection
 * that once carried a 64 MiB frame does not keep it. */
#define READER_KEEP_MAX (1u << 20)

void proto_reader_init(struct proto_reader *r, uint32_t max_frame)
{
	memset(r, 0, sizeof(*r));
	r->max_frame = max_frame ? max_frame : SHARD_FRAME_MAX_DEFAULT;
}

void proto_reader_fini(struct proto_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

size_t proto_reader_pending(const struct proto_reader *r)
{
	return r->len - r->consumed;
}

/* Forget what was handed out once nothing waits behind it. */
static void reader_reset_if_empty(struct proto_reader *r)
{
	if (r->consumed != r->len)
		return;
	r->len = r->consumed = 0;
	if (r->cap > READER_KEEP_MAX) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
}

enum fr_err proto_reader_feed(struct proto_reader *r, const void *p, size_t n)
{
	size_t waiting, want, ncap;
	uint8_t *nb;

	if (n == 0)
		return FR_OK;
	waiting = r->len - r->consumed;
	if (waiting >= r->max_frame)
		return fr_fail(FR_ERR_TOOBIG,
			       "reader: %zu bytes already wait (max frame %u); "
			       "take frames out before feeding more",
			       waiting, r->max_frame);
	reader_reset_if_empty(r);
	if (r->cap - r->len < n && r->consumed) {
		memmove(r->buf, r->buf + r->consumed, waiting);
		r->len = waiting;
		r->consumed = 0;
	}
	if (r->cap - r->len < n) {
		if (__builtin_add_overflow(r->len, n, &want))
			return fr_fail(FR_ERR_NOMEM, "reader: %zu + %zu bytes",
				       r->len, n);
		/* Double for small frames, but not past one frame plus one
		 * read chunk: the bound the header promises. */
		ncap = r->cap ? r->cap * 2 : 4096;
		if (ncap > (size_t)r->max_frame + PROTO_READER_CHUNK)
			ncap = (size_t)r->max_frame + PROTO_READER_CHUNK;
		if (ncap < want)
			ncap = want;
		nb = realloc(r->buf, ncap);
		if (!nb)
			return fr_fail(FR_ERR_NOMEM,
				       "reader: cannot grow to %zu bytes", ncap);
		r->buf = nb;
		r->cap = ncap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	return FR_OK;
}

enum fr_err proto_reader_next(struct proto_reader *r,
			      struct shard_frame_hdr *h,
			      const uint8_t **payload, size_t *plen)
{
	size_t start, dst, waiting;
	const uint8_t *pl;
	size_t n;
	enum fr_err err;

	reader_reset_if_empty(r);
	start = r->consumed;
	waiting = r->len - start;
	if (waiting == 0)
		return FR_ERR_TRUNC;
	/* Peek first: the length is checked against max_frame from the
	 * header alone, before waiting for (and buffering) the body. */
	err = shard_frame_peek(r->buf + start, waiting, r->max_frame, h);
	if (err)
		return err;
	if (waiting < h->length)
		return FR_ERR_TRUNC;
	err = shard_frame_decode(r->buf + start, h->length, r->max_frame, h,
				 &pl, &n);
	if (err == FR_ERR_CHECKSUM) {
		/* The length was sane, so the next frame is findable: skip
		 * this one and say so once. */
		r->consumed += h->length;
		return err;
	}
	if (err)
		return err;
	/* malloc'd memory is at least 8-aligned, so an 8-aligned offset
	 * gives an 8-aligned payload (the header is 24 bytes). */
	dst = start & ~(size_t)7;
	if (dst != start) {
		memmove(r->buf + dst, r->buf + start, h->length);
		pl = r->buf + dst + SHARD_FRAME_HDR_BYTES;
	}
	r->consumed += h->length;
	*payload = pl;
	*plen = n;
	return FR_OK;
}
