/*
 * metrics.h — freshetd's counters and latency histograms, and the
 * Prometheus text rendering of them (metrics.c, over common's renderer).
 * Private to node/ and its tests.
 *
 * Counters are plain integers: only the loop thread writes them and
 * /metrics is served on the same thread, so no atomics are needed.  Gossip
 * keeps its own per-peer counters (gossip_get_peer_stats); the renderer
 * reads those at scrape time instead of copying them here.
 */
#ifndef FRESHET_NODE_METRICS_H
#define FRESHET_NODE_METRICS_H

#include <stdint.h>

#include "common/common.h"

struct node;
struct evbuffer;

enum metrics_pub_status {
	METRICS_PUB_OK,
	METRICS_PUB_DUPLICATE,   /* idempotency key seen: original ack */
	METRICS_PUB_BUSY,        /* back-pressure */
	METRICS_PUB_INVALID,     /* refused by validation */
	METRICS_PUB_ERROR,       /* WAL or other failure */
	METRICS_PUB__COUNT
};

struct node_metrics {
	uint64_t publish[METRICS_PUB__COUNT];
	uint64_t publish_rows;
	uint64_t lookups, lookup_rows, lookup_errors;
	uint64_t rows_applied_local;     /* from publishes */
	uint64_t rows_applied_remote;    /* from peers (gossip apply hook) */
	uint64_t rows_stale_remote, rows_refused_remote;
	uint64_t wal_repl_skipped;   /* replicated batches not logged (WAL busy) */
	uint64_t conns_accepted, hello_refused;
	uint64_t client_bytes_in, client_bytes_out;
	uint64_t client_frames_in, client_frames_out;
	uint64_t client_bad_frames;
	uint64_t bad_by_err[FR_ERR__COUNT];   /* all connections */
	uint64_t snapshots_ok, snapshots_failed;
	uint64_t hlc_refused;            /* remote versions too far ahead */
	uint64_t stale_epoch_refused;    /* WAN HELLOs from deposed leaders */
	uint64_t backend_rebuilds;       /* tables remade after a backend error */
	struct fr_hist publish_latency;   /* receive -> ack */
	struct fr_hist lookup_latency;    /* decoded -> reply queued */
	struct fr_hist apply_latency;     /* store apply + mirror, peers */
	struct fr_hist replication_delay; /* wall now - version's ms */
};

/* Append the Prometheus text exposition of everything to out.  Loop
 * thread. */
void node_metrics_render(struct node *n, struct evbuffer *out);
/* node_metrics_families (the table metrics_render points at) is in
 * node.h. */

#endif /* FRESHET_NODE_METRICS_H */
