/*
 * fuzz_proto.c — libFuzzer target for proto/'s decoders and its stream
 * reader: everything a node parses from a client or an unauthenticated
 * peer before HELLO is settled.
 *
 * The first input byte picks a decoder and the rest, copied to 8-aligned
 * memory, is its payload; every decoder also gets the whole input through
 * the stream reader, fed in pieces whose sizes come from the input.  What
 * a decoder accepts must re-encode to the same payload (proto's encodings
 * are canonical), so the target checks more than "no crash".
 *
 * Not here: the frame envelope alone (fuzz_frame.c) and gossip's messages.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-encode and compare with the payload that was decoded. */
static void same(struct fr_wbuf *w, const uint8_t *p, size_t n)
{
	struct shard_frame_hdr h;
	const uint8_t *pl;
	size_t plen;

	if (w->err != FR_OK)
		__builtin_trap();
	if (shard_frame_decode(w->data, w->len, UINT32_MAX, &h, &pl, &plen) !=
		    FR_OK ||
	    plen != n || memcmp(pl, p, n) != 0)
		__builtin_trap();
}

static void decode_one(uint8_t which, const uint8_t *p, size_t n)
{
	struct fr_wbuf w;

	fr_wbuf_init(&w, 256, 0);
	switch (which % 7) {
	case 0: {
		struct proto_hello m;

		if (proto_hello_decode(p, n, &m) == FR_OK &&
		    proto_hello_encode(&w, PROTO_HELLO, &m) == FR_OK)
			same(&w, p, n);
		break;
	}
	case 1: {
		struct proto_error m;

		if (proto_error_decode(p, n, &m) == FR_OK &&
		    proto_error_encode(&w, &m) == FR_OK)
			same(&w, p, n);
		break;
	}
	case 2: {
		struct proto_publish m;

		if (proto_publish_decode(p, n, &m) == FR_OK &&
		    proto_publish_encode(&w, &m, UINT32_MAX) == FR_OK)
			same(&w, p, n);
		break;
	}
	case 3: {
		struct proto_publish_ack m;

		if (proto_publish_ack_decode(p, n, &m) == FR_OK &&
		    proto_publish_ack_encode(&w, &m) == FR_OK)
			same(&w, p, n);
		break;
	}
	case 4: {
		struct proto_lookup m;

		if (proto_lookup_decode(p, n, &m) == FR_OK &&
		    proto_lookup_encode(&w, &m, UINT32_MAX) == FR_OK)
			same(&w, p, n);
		break;
	}
	case 5: {
		struct proto_lookup_reply m;

		if (proto_lookup_reply_decode(p, n, &m) == FR_OK &&
		    proto_lookup_reply_encode(&w, &m, UINT32_MAX) == FR_OK)
			same(&w, p, n);
		break;
	}
	default:
		break;
	}
	fr_wbuf_fini(&w);
}

static void read_stream(const uint8_t *data, size_t size)
{
	struct proto_reader r;
	struct shard_frame_hdr h;
	const uint8_t *pl;
	size_t plen, off = 0, step = 1;

	proto_reader_init(&r, 1u << 16);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		enum fr_err err;

		if (proto_reader_feed(&r, data + off, n) != FR_OK)
			break;
		off += n;
		step = step * 3 + 1;
		while ((err = proto_reader_next(&r, &h, &pl, &plen)) == FR_OK) {
			if (((uintptr_t)pl & 7) != 0)
				__builtin_trap();
			decode_one((uint8_t)(h.type & 0xff), pl, plen);
		}
		if (err != FR_ERR_TRUNC && err != FR_ERR_CHECKSUM)
			break;
	}
	proto_reader_fini(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p;

	if (size < 1)
		return 0;
	p = aligned_alloc(8, (size + 7) & ~(size_t)7);
	if (!p)
		return 0;
	memcpy(p, data + 1, size - 1);
	decode_one(data[0], p, size - 1);
	free(p);
	read_stream(data, size);
	return 0;
}
