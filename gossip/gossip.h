/*
 * gossip.h — the one public header of freshet's gossip/ module: the
 * sans-IO anti-entropy core (docs/design.md §3) that keeps a node's shard stores
 * in step with its peers.
 *
 * The core is a pure state machine.  It is fed
 *   - frames from peers        gossip_on_frame()
 *   - peer up / down           gossip_peer_up(), gossip_peer_down()
 *   - local changes            gossip_on_local_change() (after a publish)
 *   - time                     gossip_tick()
 * and produces frames to send (gossip_next_output()).  It reads the stores
 * directly (they belong to the same loop thread) and writes them only
 * through the apply hook, so the node can mirror every applied batch into
 * its table backend and count it.  It never touches a socket, a clock or a
 * timer: `now_ms` is passed in (monotonic ms).  This is what lets a unit
 * test drive many nodes in one process with a transport that drops,
 * duplicates, reorders and delays frames, and what lets the node's libevent
 * transport (node/) stay a thin adapter.
 *
 * Protocol (docs/gossip.md: every message byte by byte, and the algorithm):
 *   DIGEST      per model its summary hash, plus the digest entries of the
 *               shards that changed since the last DIGEST to that peer (a
 *               "full" DIGEST lists every shard; frames are split to stay
 *               under max_frame).  Sent at once on a local change
 *               (push-notify), every digest_interval_ms as a heartbeat, and
 *               in full on request or every full_interval_ms.
 *   DIGEST_REQ  "your summary for model M differs from mine and I could not
 *               tell why: send me a full DIGEST of M" (rate-limited).
 *   PULL        (req id, model, table, shard, my version vector, max bytes)
 *   PULL_REPLY  (req id, last?, a row batch whose covers carry the promise;
 *               several replies per pull, each under max_frame)
 * A pull is scheduled for a shard when a peer's vector is not dominated by
 * ours; at most one pull per shard is in flight; the bytes requested from
 * one peer are bounded; pulls run in priority order; a pull that times out
 * or fails is retried from another peer that has the data.
 *
 * Threads: a struct gossip and the stores it reads belong to one thread.
 */
#ifndef FRESHET_GOSSIP_H
#define FRESHET_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "shard/shard.h"

/* Frame types 0x120..0x13f (docs/wire.md §1.1, docs/gossip.md §1). */
enum gossip_type {
	GOSSIP_DIGEST = 0x120,
	GOSSIP_DIGEST_REQ = 0x121,
	GOSSIP_PULL = 0x122,
	GOSSIP_PULL_REPLY = 0x123,
};

struct gossip;

struct gossip_hooks {
	/* Apply a batch received from `peer` for `store`.  The node writes it
	 * into the store (shard_store_apply) and mirrors the won rows into its
	 * table backend.  Returns the store's result.  It must not call back
	 * into the core (the core is in the middle of handling a frame). */
	enum fr_err (*apply)(void *arg, uint32_t peer, struct shard_store *st,
			     const struct shard_batch *b,
			     struct shard_apply_result *res);
	/* Called when a shard's vector advanced because of a pull (so the
	 * node can update freshness metrics).  May be NULL. */
	void (*advanced)(void *arg, struct shard_store *st, uint32_t table,
			 uint32_t shard);
	void *arg;
};

struct gossip_config {
	uint32_t self_id;              /* this node's id (row origin) */
	uint32_t digest_interval_ms;   /* heartbeat DIGEST period; 0: 200 */
	uint32_t full_interval_ms;     /* full DIGEST to each peer; 0: 5000 */
	uint32_t pull_timeout_ms;      /* a pull with no reply for this long is
					* retried elsewhere; 0: 2000 */
	uint64_t max_inflight_bytes;   /* per peer, requested and unanswered;
					* 0: 64 MiB */
	uint32_t max_pull_bytes;       /* one pull's reply budget; 0: 16 MiB */
	uint32_t max_frame;            /* 0: SHARD_FRAME_MAX_DEFAULT */
	uint32_t max_pending_pulls;    /* queued pulls bound; 0: 65536 */
	double urgent_quantile;        /* pulls at or above this online
					* quantile of priority may use the whole
					* in-flight budget, others half; 0: 0.9 */
};

/* Create the core.  config and hooks are copied.  NULL + *err on error. */
struct gossip *gossip_new(const struct gossip_config *cfg,
			  const struct gossip_hooks *hooks, enum fr_err *err);
void gossip_free(struct gossip *g);

/* Serve and replicate a model.  st is borrowed and must outlive g (or be
 * removed first).  FR_ERR_EXISTS for a model name already added. */
enum fr_err gossip_model_add(struct gossip *g, struct shard_store *st);

/* Stop exchanging a model without removing it: its digests are no longer
 * sent, peers' sections of it are skipped and their PULLs answered as for
 * a model we do not serve, its candidates are dropped and late replies
 * ignored.  For a model whose definition conflicts with the cluster's
 * (peers would send shards and rows that do not fit ours, and be struck
 * for it).  The store stays; there is no way back short of a restart.
 * FR_ERR_NOTFOUND for a store not added. */
enum fr_err gossip_model_quarantine(struct gossip *g, struct shard_store *st);

/* The store's rollback epoch rose (the node applied a rollback
 * directive, and maybe reset shards for a full transfer): pull candidates
 * offered against the old state are dropped, and every up peer is asked
 * for a full digest of the model, so shards whose vector came down are
 * pulled again.  Digest entries with a lower rollback epoch than ours
 * are never pulled from (that peer has not rolled back yet; what it holds
 * beyond ours is revoked here or comes once it has).  FR_ERR_NOTFOUND for
 * a store not added. */
enum fr_err gossip_model_rolled_back(struct gossip *g, struct shard_store *st,
				     uint64_t now_ms);

/* Shard (table, shard) of st was reset for a full transfer (after a
 * rollback whose undo history did not reach back): pull it whole from a
 * peer whose rollback epoch for it is at least ours, even where our
 * vector dominates that peer's (both may promise nothing after a
 * rollback), until one pull of it ends complete.  FR_ERR_NOTFOUND,
 * FR_ERR_RANGE, FR_ERR_NOMEM.  Limitation: a shard larger than one pull's
 * budget (max_pull_bytes) cannot be repaired from a peer whose vector is
 * empty for an origin; it stays pending and is retried at that peer's next
 * full digest (docs/gossip.md §3.2). */
enum fr_err gossip_shard_repair(struct gossip *g, struct shard_store *st,
				uint32_t table, uint32_t shard);
/* Shards still waiting for their repair pull, and (done) how many have
 * completed since start. */
uint32_t gossip_repairs_pending(const struct gossip *g, uint64_t *done);

/* A peer this node may exchange with (static list or from ZooKeeper).
 * Peers start down. */
enum fr_err gossip_peer_add(struct gossip *g, uint32_t peer_id);
enum fr_err gossip_peer_remove(struct gossip *g, uint32_t peer_id);
/* Bound the bytes requested from this peer and not yet received (its
 * in-flight window) to `bytes` instead of the config's
 * max_inflight_bytes; 0 restores the config's.  A thin link (a WAN link
 * with a bandwidth budget) wants a window of about what it carries in a
 * fraction of a second, so that pulls wait in the priority queue, not in
 * the link.  FR_ERR_NOTFOUND for an unknown peer. */
enum fr_err gossip_peer_set_window(struct gossip *g, uint32_t peer_id,
				   uint64_t bytes);
/* The transport connected and both sides said HELLO: the core sends a
 * full DIGEST to it. */
void gossip_peer_up(struct gossip *g, uint32_t peer_id, uint64_t now_ms);
/* The connection dropped: its in-flight pulls are re-queued elsewhere and
 * its queued output is discarded. */
void gossip_peer_down(struct gossip *g, uint32_t peer_id, uint64_t now_ms);

/* A frame of a gossip type from peer (payload checked by the frame codec,
 * 8-byte aligned; a misaligned one is copied).  payload is borrowed for
 * the call.  FR_ERR_PROTO / decode errors (FR_ERR_TRUNC here means the
 * payload was short, not "read more") mean the peer misbehaved: the core
 * has counted and penalised it; the caller closes the connection when
 * gossip_peer_should_drop() says so.  A reply to a pull no longer in
 * flight, or a PULL for a model we do not serve, is FR_OK. */
enum fr_err gossip_on_frame(struct gossip *g, uint32_t peer, uint16_t type,
			    const uint8_t *payload, size_t len,
			    uint64_t now_ms);
bool gossip_peer_should_drop(const struct gossip *g, uint32_t peer);

/* Note a local change without telling peers yet.  A later
 * gossip_on_local_change() sends every shard noted since in one delta
 * DIGEST per peer, so a publish that touches many shards costs one frame
 * per peer, not one per shard. */
void gossip_note_local_change(struct gossip *g, struct shard_store *st,
			      uint32_t table, uint32_t shard);
/* The store changed locally (a publish was applied): tell peers now.
 * Call it after every change made outside the apply hook (publish,
 * rollback), once per changed (table, shard): the core lists in its
 * heartbeats only the shards it was told about (plus a scan for changes
 * after the last one it was told about); anything else waits for the
 * periodic full digest. */
void gossip_on_local_change(struct gossip *g, struct shard_store *st,
			    uint32_t table, uint32_t shard, uint64_t now_ms);

/* Advance time: heartbeats, full digests, pull timeouts, scheduling. */
void gossip_tick(struct gossip *g, uint64_t now_ms);
/* The next time gossip_tick() has work to do. */
uint64_t gossip_next_deadline(const struct gossip *g);

/* Frames to send, in order.  On true, *peer is the destination and frame
 * holds one whole frame; the caller owns frame's buffer (fr_wbuf_fini). */
struct gossip_output {
	uint32_t peer;
	uint16_t type;
	struct fr_wbuf frame;
};
bool gossip_next_output(struct gossip *g, struct gossip_output *out);

/* The transport tells the core how many bytes are still queued towards a
 * peer (so replies to pulls are paced, not piled up). */
void gossip_peer_backlog(struct gossip *g, uint32_t peer, uint64_t bytes);

/* Counters for /metrics and tests.  Per peer and totals. */
struct gossip_peer_stats {
	uint32_t peer;
	bool up;
	int32_t score;               /* drops on bad frames and timeouts */
	uint64_t frames_in, frames_out;
	uint64_t bytes_in, bytes_out;
	uint64_t digest_bytes_out;   /* DIGEST + DIGEST_REQ bytes sent */
	uint64_t pulls_sent, pulls_served, pull_bytes_in, pull_bytes_out;
	uint64_t retries, timeouts, bad_frames;
	uint64_t inflight_bytes;
};
struct gossip_stats {
	uint64_t pulls_pending, pulls_inflight;
	uint64_t pulls_done, pulls_failed, retries;
	uint64_t rows_applied, rows_stale, rows_refused;
	uint64_t bad_frames;
	uint32_t npeers;
	uint64_t pulls_dropped;      /* candidates dropped by max_pending_pulls */
	uint64_t stale_replies;      /* replies to no pull in flight (late) */
	uint64_t pulls_nomodel;      /* PULLs for a model we do not serve */
	uint64_t epoch_ahead;        /* entries with a higher rollback epoch */
	uint64_t epoch_behind;       /* entries with a lower one (not pulled) */
};
void gossip_get_stats(const struct gossip *g, struct gossip_stats *out);
/* Fill up to cap peer entries; returns the number of peers. */
uint32_t gossip_get_peer_stats(const struct gossip *g,
			       struct gossip_peer_stats *out, uint32_t cap);

#endif /* FRESHET_GOSSIP_H */
