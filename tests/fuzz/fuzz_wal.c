/*
 * fuzz_wal.c — libFuzzer target for the WAL record decoder
 * (shard_wal_record_decode), the only code that reads WAL bytes from disk.
 *
 * The input is treated as the contents of a segment: records are decoded
 * one after another until the first error, as replay does.  Beyond "no
 * crash, no out-of-bounds read", every accepted record must be canonical:
 * re-encoding its lsn and payload reproduces exactly the bytes consumed.
 *
 * Not here: replay's file handling (segment lists, truncation), which the
 * unit tests cover with real files; a fuzz target that touched the disk
 * would be slow and flaky.
 */
#include <stdint.h>
#include <string.h>

#include "shard/shard.h"

#define FUZZ_MAX_RECORD (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *payload;
	struct fr_wbuf w;
	size_t off = 0, plen, used;
	uint64_t lsn;

	fr_wbuf_init(&w, 256, 0);
	while (off < size) {
		if (shard_wal_record_decode(data + off, size - off,
					    FUZZ_MAX_RECORD, &lsn, &payload,
					    &plen, &used) != FR_OK)
			break;
		if (used < 24 || used > size - off || used % 8 != 0 ||
		    payload != data + off + 24 || plen > used - 24 ||
		    plen > FUZZ_MAX_RECORD || lsn == 0)
			__builtin_trap();
		fr_wbuf_reset(&w);
		shard_wal_record_encode(&w, lsn, payload, plen);
		if (w.err != FR_OK || w.len != used ||
		    memcmp(w.data, data + off, used) != 0)
			__builtin_trap();
		off += used;
	}
	fr_wbuf_fini(&w);
	return 0;
}
