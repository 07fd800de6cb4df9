/*
 * fuzz_frame.c — libFuzzer target for the wire codec's decoders
 * (shard_frame_peek, shard_frame_decode, shard_batch_decode): the code
 * that reads bytes from peers.
 *
 * Each input is tried two ways: as a whole frame (and, for a BATCH frame
 * that passes its checksum, its payload as a batch), and as a bare batch
 * payload — mutated frames rarely pass the checksum, so the second way is
 * where the batch decoder really gets fuzzed.  Payloads are copied into
 * fresh 8-aligned heap buffers of exactly their length, so AddressSanitizer
 * sees any read past the end.
 *
 * Beyond "no crash, no out-of-bounds read", every accepted input must be
 * canonical: re-encoding what was decoded reproduces the input bytes
 * exactly (all padding and reserved fields are checked, so there is one
 * encoding of each batch).  Every decoded array is read in full.
 *
 * Not here: the store's checks when a batch is applied.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shard/shard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

/* Read every byte a decoded batch points at, so ASan checks the bounds the
 * decoder promised. */
static void touch(const struct shard_batch_hdr *h, const struct shard_batch *b)
{
	size_t elem = h->dtype == SHARD_F32 ? 4 : 2;
	size_t vb = (size_t)b->n * h->dim * elem;
	const uint8_t *v = b->values;
	uint64_t s = 0;

	for (uint32_t i = 0; i < b->n; i++) {
		s += b->rows[i] ^ b->versions[i] ^ b->origins[i];
		if (b->significance) {
			uint32_t bits;   /* the bits: a float cast could be UB */

			memcpy(&bits, &b->significance[i], 4);
			s += bits;
		}
	}
	for (uint32_t i = 0; i < b->ncovers; i++)
		s += b->covers[i].origin ^ b->covers[i].version;
	for (size_t i = 0; i < vb; i += 61)
		s += v[i];
	if (vb)
		s += v[vb - 1];
	sink += s;
}

/* Decode p[0..n) as a batch; if accepted, re-encode it and demand the very
 * same bytes. */
static void batch_check(const uint8_t *p, size_t n)
{
	struct shard_batch_hdr h;
	struct shard_batch b;
	struct fr_wbuf w;
	uint8_t *a;

	/* malloc(0) may return NULL; keep one byte so the pointer is real
	 * (decoding still sees length n). */
	a = malloc(n ? n : 1);
	if (!a)
		return;
	if (n)
		memcpy(a, p, n);
	if (shard_batch_decode(a, n, &h, &b) == FR_OK) {
		touch(&h, &b);
		if (h.model[0] == '\0' || strlen(h.model) > SHARD_NAME_MAX ||
		    h.dim < 1 || h.dim > SHARD_DIM_MAX ||
		    b.ncovers > SHARD_VV_MAX)
			__builtin_trap();
		fr_wbuf_init(&w, n, 0);
		if (shard_batch_encode(&w, &h, &b) != FR_OK || w.len != n ||
		    memcmp(w.data, a, n) != 0)
			__builtin_trap();
		fr_wbuf_fini(&w);
	}
	/* A copy one byte off 8-alignment must be refused, never read. */
	if (n) {
		uint8_t *m = malloc(n + 1);

		if (m) {
			memcpy(m + 1, p, n);
			if (shard_batch_decode(m + 1, n, &h, &b) != FR_ERR_INVAL)
				__builtin_trap();
			free(m);
		}
	}
	free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shard_frame_hdr h;
	const uint8_t *payload;
	struct fr_wbuf w;
	size_t plen;

	/* A small limit reaches the TOOBIG branch with small inputs. */
	(void)shard_frame_peek(data, size, 256, &h);

	if (shard_frame_decode(data, size, 0, &h, &payload, &plen) == FR_OK) {
		if (h.length < SHARD_FRAME_HDR_BYTES || h.length > size ||
		    plen != h.length - SHARD_FRAME_HDR_BYTES ||
		    payload != data + SHARD_FRAME_HDR_BYTES)
			__builtin_trap();
		/* The frame is canonical too: re-framing its payload gives
		 * back its bytes. */
		fr_wbuf_init(&w, h.length, 0);
		if (shard_frame_encode(&w, h.type, payload, plen, 0) != FR_OK ||
		    w.len != h.length || memcmp(w.data, data, h.length) != 0)
			__builtin_trap();
		fr_wbuf_fini(&w);
		if (h.type == SHARD_FRAME_BATCH)
			batch_check(payload, plen);
	}

	batch_check(data, size);
	return 0;
}
