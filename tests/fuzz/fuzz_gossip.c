/*
 * fuzz_gossip.c — libFuzzer target for everything gossip/ parses from a
 * peer: DIGEST, DIGEST_REQ, PULL and PULL_REPLY payloads, through the
 * public entry point gossip_on_frame() of a core serving a small model.
 *
 * The input is a sequence of (type selector u8, length u16, payload)
 * records, so one input can walk the core through several frames (a
 * DIGEST that schedules a pull, then replies to it).  Beyond "no crash",
 * the store may only ever hold rows inside its table bounds (checked by
 * the store itself) and the core must keep answering.
 *
 * Not here: the frame envelope (fuzz_frame.c) or the transport.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum fr_err apply_cb(void *arg, uint32_t peer, struct shard_store *st,
			    const struct shard_batch *b,
			    struct shard_apply_result *res)
{
	return shard_store_apply(st, b, res, NULL);
}

static struct shard_store *make_store(void)
{
	struct shard_model_def def = { .priority = 1, .shards = 4, .ntables = 2 };
	struct shard_store_opts opts = { .index_cap = 64,
					 .undo_bytes_per_shard = 4096 };
	enum fr_err err;

	strcpy(def.name, "m");
	strcpy(def.tables[0].name, "a");
	def.tables[0].rows = 64;
	def.tables[0].dim = 2;
	def.tables[0].dtype = SHARD_F32;
	strcpy(def.tables[1].name, "b");
	def.tables[1].rows = 16;
	def.tables[1].dim = 3;
	def.tables[1].dtype = SHARD_F16;
	return shard_store_new(&def, &opts, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { GOSSIP_DIGEST, GOSSIP_DIGEST_REQ,
					  GOSSIP_PULL, GOSSIP_PULL_REPLY };
	struct gossip_config cfg = { .self_id = 1, .max_frame = 1 << 16 };
	struct gossip_hooks hooks = { .apply = apply_cb };
	struct gossip_output out;
	struct shard_store *st;
	struct gossip *g;
	enum fr_err err;
	uint64_t now = 1000;
	size_t off = 0;

	st = make_store();
	g = st ? gossip_new(&cfg, &hooks, &err) : NULL;
	if (!g || gossip_model_add(g, st) != FR_OK ||
	    gossip_peer_add(g, 2) != FR_OK)
		__builtin_trap();
	gossip_peer_up(g, 2, now);
	while (size - off >= 3) {
		uint16_t type = types[data[off] & 3];
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		uint8_t *p;

		off += 3;
		if (len > size - off)
			len = size - off;
		p = aligned_alloc(8, (len + 8) & ~(size_t)7);
		if (!p)
			break;
		memcpy(p, data + off, len);
		off += len;
		(void)gossip_on_frame(g, 2, type, p, len, now);
		free(p);
		now += 50;
		gossip_tick(g, now);
		while (gossip_next_output(g, &out))
			fr_wbuf_fini(&out.frame);
		if (gossip_peer_should_drop(g, 2))
			break;
	}
	gossip_free(g);
	shard_store_free(st);
	return 0;
}
