/*
 * metrics.c — the Prometheus text exposition of everything freshetd
 * counts (served at /metrics by http.c; every family is listed in
 * docs/metrics.md, and tests/unit/test_metrics_doc.c checks that).
 *
 * Every family is one row of NODE_FAMILIES below; the renderer points at
 * its row, so the table is the whole list of what the node exports.
 * Gauges that derive from node state (versions, freshness lag, queue
 * depth, peer state) are computed at scrape time rather than kept up to
 * date on every apply.  Conventions: base units (seconds, bytes),
 * counters end in _total, one unit per family, and no HLC value as a
 * sample (a double holds integers only up to 2^53; an HLC is above it):
 * versions are exported as their physical part, in seconds.
 *
 * Not here: serving HTTP (http.c) or deciding what to count (the code
 * that does the work increments node->metrics).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "node/baseline.h"
#include "node/node_int.h"

#define C FR_PROM_COUNTER
#define G FR_PROM_GAUGE
#define H FR_PROM_HISTOGRAM

/* X(id, name, type, help) */
#define NODE_FAMILIES(X)                                                       \
	X(PROCESS_START, "process_start_time_seconds", G,                      \
	  "Start time of the process since the Unix epoch, in seconds.")      \
	X(NODE_INFO, "freshet_node_info", G,                                   \
	  "This node (id, dc, cluster, version); the value is 1.")           \
	X(GENERATION, "freshet_generation", G,                                 \
	  "Start count of this data dir.")                                     \
	X(BACKEND_INFO, "freshet_backend_info", G,                             \
	  "The table backend lookups are served from (device: CUDA ordinal, -1 for cpu); the value is 1.") \
	X(BACKEND_REBUILDS, "freshet_backend_rebuilds_total", C,               \
	  "Backend tables remade from the store after a backend (GPU) error.") \
	X(BACKEND_BYTES, "freshet_backend_bytes", G,                           \
	  "Table bytes held by the backend, all models (node.gpu_budget_mb bounds it).") \
	X(UPTIME, "freshet_uptime_seconds", G, "Seconds since start.")        \
	X(VERSION_TS, "freshet_shard_version_max_timestamp_seconds", G,        \
	  "Physical time of the newest version held from each origin, over the model's shards (the HLC's millisecond part, in seconds).") \
	X(FRESHNESS, "freshet_freshness_lag_seconds", G,                       \
	  "Wall-clock now minus the physical time of the newest row version held, per model.") \
	X(BYTES, "freshet_bytes_total", C,                                     \
	  "Frame bytes on the wire by peer (\"client\": all clients) and direction.") \
	X(FRAMES, "freshet_frames_total", C,                                   \
	  "Frames by peer (\"client\": all clients) and direction.")          \
	X(PULL_BYTES, "freshet_pull_bytes_total", C,                           \
	  "Bytes of PULL_REPLY frames by peer and direction (rows moved by pulls).") \
	X(BAD_FRAMES, "freshet_bad_frames_total", C,                           \
	  "Frames dropped (bad checksum, header or fields, wrong type), by peer.") \
	X(BAD_BY_ERR, "freshet_bad_frames_by_error_total", C,                  \
	  "Frames dropped, by error code, all connections.")                  \
	X(PEER_UP, "freshet_peer_up", G, "1 when the link to the peer is up.") \
	X(PEER_SCORE, "freshet_peer_score", G,                                 \
	  "Gossip's score of the peer (drops on bad frames and timeouts).")   \
	X(PEER_CONNECTS, "freshet_peer_connects_total", C,                     \
	  "Links to the peer that completed HELLO.")                          \
	X(DC_BYTES, "freshet_dc_bytes_total", C,                               \
	  "Frame bytes between this node's dc and a dc (its own included), by direction of travel.") \
	X(LEADER, "freshet_leader", G,                                         \
	  "1 while this node leads its dc (ZooKeeper election).")              \
	X(LEADER_EPOCH, "freshet_leader_epoch", G,                             \
	  "This node's leader epoch while it leads, else 0.")                 \
	X(ZK_CONNECTED, "freshet_zk_connected", G,                             \
	  "1 while the ZooKeeper session is connected (0 also without ZooKeeper).") \
	X(STALE_EPOCH, "freshet_stale_epoch_refused_total", C,                 \
	  "Links from other dcs refused because the sender's leader epoch was stale.") \
	X(ZK_EVENTS, "freshet_zk_events_total", C,                             \
	  "ZooKeeper session events and elections seen by this node.")         \
	X(ZK_PEER_CHANGES, "freshet_zk_peer_changes_total", C,                 \
	  "Peers added or dropped because the ZooKeeper view changed.")       \
	X(ZK_BAD_ZNODES, "freshet_zk_bad_znodes_total", C,                     \
	  "Znodes ignored because they did not parse (logged with their path).") \
	X(ZK_MODELS_REFUSED, "freshet_zk_models_refused_total", C,             \
	  "Registry models this node could not serve (conflict with its config, no room, no memory).") \
	X(PULLS, "freshet_pulls_total", C, "Pulls sent to peers.")            \
	X(PULLS_DONE, "freshet_pulls_done_total", C, "Pulls completed.")      \
	X(PULLS_FAILED, "freshet_pulls_failed_total", C,                       \
	  "Pulls that failed or timed out.")                                  \
	X(PULL_RETRIES, "freshet_pull_retries_total", C,                       \
	  "Pulls retried (from another peer where possible).")                \
	X(PULLS_PENDING, "freshet_pulls_pending", G, "Pulls queued.")         \
	X(PULLS_INFLIGHT, "freshet_pulls_inflight", G,                         \
	  "Pulls awaiting replies.")                                          \
	X(PUBLISH, "freshet_publish_total", C, "PUBLISH requests by outcome.") \
	X(PUBLISH_ROWS, "freshet_publish_rows_total", C,                       \
	  "Rows in accepted publishes.")                                      \
	X(PUBLISH_QUEUE, "freshet_publish_queue_depth", G,                     \
	  "Publishes waiting for the WAL.")                                   \
	X(LOOKUPS, "freshet_lookups_total", C, "LOOKUP requests decoded.")    \
	X(LOOKUP_ROWS, "freshet_lookup_rows_total", C,                         \
	  "Rows in answered lookups.")                                        \
	X(LOOKUP_ERRORS, "freshet_lookup_errors_total", C,                     \
	  "LOOKUP requests answered with an error (unknown model or table, row out of range, reply too big, backend failure).") \
	X(ROWS_APPLIED, "freshet_rows_applied_total", C,                       \
	  "Rows written to the store, by source (local publish or peer).")    \
	X(ROWS_STALE, "freshet_rows_stale_total", C,                           \
	  "Rows from peers that were older than what is held.")               \
	X(ROWS_REFUSED, "freshet_rows_refused_total", C,                       \
	  "Rows from peers refused as revoked by a rollback.")                \
	X(CONNECTIONS, "freshet_connections", G, "Open TCP connections.")     \
	X(CONNS_ACCEPTED, "freshet_connections_accepted_total", C,             \
	  "TCP connections accepted on node.listen (peers and clients).")     \
	X(HELLO_REFUSED, "freshet_hello_refused_total", C,                     \
	  "Connections refused at HELLO (version, cluster, unknown id).")     \
	X(WAL_LSN, "freshet_wal_lsn", G,                                       \
	  "WAL positions: durable, applied to the stores, covered by the snapshots.") \
	X(WAL_REPL_SKIPPED, "freshet_wal_replicated_skipped_total", C,         \
	  "Batches from peers applied but not logged (WAL queue full): re-pulled after a crash.") \
	X(SNAPSHOTS, "freshet_snapshots_total", C,                             \
	  "Snapshots written, by result.")                                    \
	X(HLC_REFUSED, "freshet_hlc_refused_total", C,                         \
	  "Peer versions too far ahead of the local clock to be observed.")   \
	X(MODEL_ROLE, "freshet_model_role", G,                                 \
	  "1 for the role this node serves each model in (serving, canary, baseline).") \
	X(RB_EPOCH, "freshet_rollback_epoch", G,                               \
	  "Highest rollback epoch applied, per model.")                       \
	X(RB_APPLIED, "freshet_rollbacks_applied_total", C,                    \
	  "Rollback directives applied, per model.")                          \
	X(RB_ROWS, "freshet_rollback_rows_total", C,                           \
	  "Rows put back by rollbacks: restored from the undo ring, or zeroed in shards repaired by full transfer.") \
	X(RB_FULL, "freshet_rollback_full_transfer_shards_total", C,           \
	  "Shards whose undo ring did not reach a rollback's target, repaired by full transfer.") \
	X(RB_SECONDS, "freshet_rollback_apply_seconds", G,                     \
	  "Time the last rollback took to apply here, per model.")            \
	X(RB_REFUSED, "freshet_rollback_directives_refused_total", C,          \
	  "Rollback directives that could not be applied (logged).")          \
	X(RB_PENDING, "freshet_rollback_repairs_pending", G,                   \
	  "Shards reset by a rollback still waiting for their full transfer.") \
	X(RB_DONE, "freshet_rollback_repairs_done_total", C,                   \
	  "Shards whose full transfer after a rollback completed.")           \
	X(EPOCH_BEHIND, "freshet_gossip_epoch_behind_total", C,                \
	  "Digest entries from peers that have not applied a rollback we have (never pulled from).") \
	X(EPOCH_AHEAD, "freshet_gossip_epoch_ahead_total", C,                  \
	  "Digest entries from peers that have applied a rollback we have not yet.") \
	X(BL_CUT_AGE, "freshet_baseline_cut_age_seconds", G,                   \
	  "How far a baseline's served cut is behind now, per model.")        \
	X(BL_QUEUED_ROWS, "freshet_baseline_queued_rows", G,                   \
	  "Rows a baseline holds back, per model.")                           \
	X(BL_QUEUED_BYTES, "freshet_baseline_queued_bytes", G,                 \
	  "Bytes of rows a baseline holds back, per model.")                  \
	X(BL_OVERFLOWED, "freshet_baseline_overflowed", G,                     \
	  "1 while a baseline's buffer has left rows out (it catches up from its store once the lag passes them).") \
	X(BL_OVERFLOW_ROWS, "freshet_baseline_overflow_rows_total", C,         \
	  "Rows a baseline's full buffer left out, per model.")               \
	X(PUBLISH_LATENCY, "freshet_publish_latency_seconds", H,               \
	  "PUBLISH received to acknowledged (durable and applied).")          \
	X(LOOKUP_LATENCY, "freshet_lookup_latency_seconds", H,                 \
	  "LOOKUP decoded to reply queued (gather from the backend included).") \
	X(APPLY_LATENCY, "freshet_apply_latency_seconds", H,                   \
	  "Applying one batch from a peer to the store and backend.")         \
	X(REPL_DELAY, "freshet_replication_delay_seconds", H,                  \
	  "Wall-clock now minus the newest version's time, per batch applied from a peer.")

#define ID(id, name, type, help) F_##id,
enum { NODE_FAMILIES(ID) F__COUNT };
#undef ID
#define ROW(id, name, type, help) [F_##id] = { name, type, help },
static const struct fr_prom_family families[F__COUNT] = {
	NODE_FAMILIES(ROW)
};
#undef ROW
#undef C
#undef G
#undef H

const struct fr_prom_family *node_metrics_families(size_t *n)
{
	*n = F__COUNT;
	return families;
}

#define FAM(id) (&families[F_##id])
#define END ((const char *)NULL)

/* HLC physical milliseconds as Prometheus seconds. */
static double hlc_seconds(uint64_t v)
{
	return (double)FR_HLC_PHYS(v) / 1e3;
}

struct origin_max {
	uint32_t origin;
	uint64_t version;
};

/* Highest version per origin over every shard of a model. */
static uint32_t model_origins(const struct node_model *m,
			      struct origin_max *out, uint32_t cap)
{
	uint32_t n = 0;

	for (uint32_t t = 0; t < m->def->ntables; t++) {
		for (uint32_t s = 0; s < m->def->shards; s++) {
			const struct shard_vv *vv = shard_store_vv(m->st, t, s);

			for (uint32_t i = 0; vv && i < vv->n; i++) {
				uint32_t k;

				for (k = 0; k < n; k++)
					if (out[k].origin == vv->e[i].origin)
						break;
				if (k == n) {
					if (n == cap)
						continue;
					out[n].origin = vv->e[i].origin;
					out[n++].version = 0;
				}
				if (vv->e[i].version > out[k].version)
					out[k].version = vv->e[i].version;
			}
		}
	}
	return n;
}

static void render_models(struct node *n, struct fr_wbuf *w)
{
	struct origin_max om[SHARD_VV_MAX];
	uint64_t wall = fr_wall_ms(NULL);
	char o[16];

	fr_prom_family(w, FAM(VERSION_TS));
	for (uint32_t i = 0; i < n->nmodels; i++) {
		uint32_t k = model_origins(&n->models[i], om, SHARD_VV_MAX);

		for (uint32_t j = 0; j < k; j++) {
			snprintf(o, sizeof(o), "%u", om[j].origin);
			fr_prom_f64(w, FAM(VERSION_TS), hlc_seconds(om[j].version),
				    "model", n->models[i].def->name, "origin", o,
				    END);
		}
	}
	fr_prom_family(w, FAM(FRESHNESS));
	for (uint32_t i = 0; i < n->nmodels; i++) {
		uint64_t mv = n->models[i].max_version, lag = 0;

		if (!mv)
			continue;
		if (wall > FR_HLC_PHYS(mv))
			lag = wall - FR_HLC_PHYS(mv);
		fr_prom_f64(w, FAM(FRESHNESS), (double)lag / 1e3, "model",
			    n->models[i].def->name, END);
	}
}

/* One in/out pair of a per-peer counter; peer is a node id or "client". */
static void inout(struct fr_wbuf *w, const struct fr_prom_family *f,
		  const char *peer, uint64_t in, uint64_t out)
{
	fr_prom_u64(w, f, in, "peer", peer, "direction", "in", END);
	fr_prom_u64(w, f, out, "peer", peer, "direction", "out", END);
}

static void render_peers(struct node *n, struct fr_wbuf *w,
			 const struct gossip_peer_stats *ps, uint32_t np)
{
	struct node_metrics *m = &n->metrics;
	char id[16];

	fr_prom_family(w, FAM(BYTES));
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		snprintf(id, sizeof(id), "%u", n->net.peers[i]->id);
		inout(w, FAM(BYTES), id, n->net.peers[i]->bytes_in,
		      n->net.peers[i]->bytes_out);
	}
	inout(w, FAM(BYTES), "client", m->client_bytes_in, m->client_bytes_out);
	fr_prom_family(w, FAM(FRAMES));
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		snprintf(id, sizeof(id), "%u", n->net.peers[i]->id);
		inout(w, FAM(FRAMES), id, n->net.peers[i]->frames_in,
		      n->net.peers[i]->frames_out);
	}
	inout(w, FAM(FRAMES), "client", m->client_frames_in,
	      m->client_frames_out);
	fr_prom_family(w, FAM(PULL_BYTES));
	for (uint32_t i = 0; i < np; i++) {
		snprintf(id, sizeof(id), "%u", ps[i].peer);
		inout(w, FAM(PULL_BYTES), id, ps[i].pull_bytes_in,
		      ps[i].pull_bytes_out);
	}
	fr_prom_family(w, FAM(BAD_FRAMES));
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		snprintf(id, sizeof(id), "%u", n->net.peers[i]->id);
		fr_prom_u64(w, FAM(BAD_FRAMES), n->net.peers[i]->bad_frames,
			    "peer", id, END);
	}
	fr_prom_u64(w, FAM(BAD_FRAMES), m->client_bad_frames, "peer",
		    "client", END);
	fr_prom_family(w, FAM(BAD_BY_ERR));
	for (int k = 0; k < FR_ERR__COUNT; k++)
		if (m->bad_by_err[k])
			fr_prom_u64(w, FAM(BAD_BY_ERR), m->bad_by_err[k],
				    "error", fr_strerror((enum fr_err)-k), END);
	fr_prom_family(w, FAM(PEER_UP));
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		const struct node_peer *p = n->net.peers[i];

		snprintf(id, sizeof(id), "%u", p->id);
		fr_prom_u64(w, FAM(PEER_UP),
			    p->conn && p->conn->state == NODE_CONN_UP, "peer",
			    id, END);
	}
	fr_prom_family(w, FAM(PEER_SCORE));
	for (uint32_t i = 0; i < np; i++) {
		snprintf(id, sizeof(id), "%u", ps[i].peer);
		fr_prom_f64(w, FAM(PEER_SCORE), (double)ps[i].score, "peer", id,
			    END);
	}
	fr_prom_family(w, FAM(PEER_CONNECTS));
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		snprintf(id, sizeof(id), "%u", n->net.peers[i]->id);
		fr_prom_u64(w, FAM(PEER_CONNECTS), n->net.peers[i]->connects,
			    "peer", id, END);
	}
}

/* Bytes by dc pair, from this node's links: summed over the nodes of a
 * dc, the out counters towards other dcs are what crossed the WAN. */
static void render_topology(struct node *n, struct fr_wbuf *w)
{
	struct topo_stats ts = { 0 };
	static const char *const events[] = {
		"connect", "disconnect", "expired", "elected", "demoted",
	};
	uint64_t ev[5];

	fr_prom_family(w, FAM(DC_BYTES));
	for (uint32_t i = 0; i < n->net.ndcs; i++) {
		const char *d = n->net.dcs[i].name;

		fr_prom_u64(w, FAM(DC_BYTES), n->net.dcs[i].bytes_out,
			    "src_dc", n->cfg->dc, "dst_dc", d, END);
		fr_prom_u64(w, FAM(DC_BYTES), n->net.dcs[i].bytes_in,
			    "src_dc", d, "dst_dc", n->cfg->dc, END);
	}
	fr_prom_one_u64(w, FAM(LEADER), n->zk.leader);
	fr_prom_one_u64(w, FAM(LEADER_EPOCH), n->zk.leader ? n->zk.epoch : 0);
	fr_prom_one_u64(w, FAM(ZK_CONNECTED), n->zk.connected);
	fr_prom_one_u64(w, FAM(STALE_EPOCH), n->metrics.stale_epoch_refused);
	if (n->zk.topo)
		topo_get_stats(n->zk.topo, &ts);
	ev[0] = ts.connects;
	ev[1] = ts.disconnects;
	ev[2] = ts.expirations;
	ev[3] = ts.elections_won;
	ev[4] = ts.demotions;
	fr_prom_family(w, FAM(ZK_EVENTS));
	for (int i = 0; i < 5; i++)
		fr_prom_u64(w, FAM(ZK_EVENTS), ev[i], "event", events[i], END);
	fr_prom_one_u64(w, FAM(ZK_PEER_CHANGES), n->zk.peer_changes);
	fr_prom_one_u64(w, FAM(ZK_BAD_ZNODES), ts.bad_znodes);
	fr_prom_one_u64(w, FAM(ZK_MODELS_REFUSED), n->zk.models_refused);
}

/* A per-model gauge or counter: one sample per model that has a value
 * (get returns false to leave a model out). */
typedef bool (*model_value_fn)(struct node *n, struct node_model *m,
			       double *v);

static void per_model(struct node *n, struct fr_wbuf *w,
		      const struct fr_prom_family *f, model_value_fn get)
{
	double v;

	fr_prom_family(w, f);
	for (uint32_t i = 0; i < n->nmodels; i++)
		if (get(n, &n->models[i], &v))
			fr_prom_f64(w, f, v, "model", n->models[i].def->name,
				    END);
}

static bool v_epoch(struct node *n, struct node_model *m, double *v)
{
	*v = (double)shard_store_rollback_epoch(m->st);
	return true;
}

static bool v_applied(struct node *n, struct node_model *m, double *v)
{
	*v = (double)m->rollbacks_applied;
	return true;
}

static bool v_full(struct node *n, struct node_model *m, double *v)
{
	*v = (double)m->rollback_shards_repaired;
	return true;
}

static bool v_rb_seconds(struct node *n, struct node_model *m, double *v)
{
	*v = m->last_rollback_s;
	return true;
}

static bool v_cut_age(struct node *n, struct node_model *m, double *v)
{
	uint64_t wall = fr_wall_ms(NULL), cut;

	if (!m->bl)
		return false;
	cut = node_model_cut(n, m);
	*v = wall > FR_HLC_PHYS(cut) ? (double)(wall - FR_HLC_PHYS(cut)) / 1e3
				     : 0.0;
	return true;
}

/* The baseline's buffer figures, by which one is asked for. */
enum bl_field { BL_ROWS, BL_BYTES, BL_OVER, BL_OVER_ROWS };

static bool bl_value(struct node_model *m, enum bl_field f, double *v)
{
	struct node_baseline_stats bs;

	if (!m->bl)
		return false;
	node_baseline_get_stats(m->bl, &bs);
	*v = f == BL_ROWS    ? (double)bs.queued_rows
	     : f == BL_BYTES ? (double)bs.queued_bytes
	     : f == BL_OVER  ? (bs.overflowed ? 1.0 : 0.0)
			     : (double)bs.overflow_rows;
	return true;
}

static bool v_bl_rows(struct node *n, struct node_model *m, double *v)
{
	return bl_value(m, BL_ROWS, v);
}

static bool v_bl_bytes(struct node *n, struct node_model *m, double *v)
{
	return bl_value(m, BL_BYTES, v);
}

static bool v_bl_over(struct node *n, struct node_model *m, double *v)
{
	return bl_value(m, BL_OVER, v);
}

static bool v_bl_over_rows(struct node *n, struct node_model *m, double *v)
{
	return bl_value(m, BL_OVER_ROWS, v);
}

/* Per model: role, rollback epoch and work, the baseline's buffer. */
static void model_roles_render(struct node *n, struct fr_wbuf *w)
{
	struct gossip_stats gs = { 0 };
	uint64_t done = 0;
	uint32_t pending = 0;

	fr_prom_family(w, FAM(MODEL_ROLE));
	for (uint32_t i = 0; i < n->nmodels; i++)
		fr_prom_u64(w, FAM(MODEL_ROLE), 1, "model",
			    n->models[i].def->name, "role",
			    node_role_name(n->models[i].role), END);
	per_model(n, w, FAM(RB_EPOCH), v_epoch);
	per_model(n, w, FAM(RB_APPLIED), v_applied);
	fr_prom_family(w, FAM(RB_ROWS));
	for (uint32_t i = 0; i < n->nmodels; i++) {
		const struct node_model *m = &n->models[i];

		fr_prom_u64(w, FAM(RB_ROWS), m->rollback_rows_restored,
			    "model", m->def->name, "how", "restored", END);
		fr_prom_u64(w, FAM(RB_ROWS), m->rollback_rows_zeroed, "model",
			    m->def->name, "how", "zeroed", END);
	}
	per_model(n, w, FAM(RB_FULL), v_full);
	per_model(n, w, FAM(RB_SECONDS), v_rb_seconds);
	fr_prom_one_u64(w, FAM(RB_REFUSED), n->roles.bad_directives);
	if (n->gossip) {
		gossip_get_stats(n->gossip, &gs);
		pending = gossip_repairs_pending(n->gossip, &done);
	}
	fr_prom_one_u64(w, FAM(RB_PENDING), pending);
	fr_prom_one_u64(w, FAM(RB_DONE), done);
	fr_prom_one_u64(w, FAM(EPOCH_BEHIND), gs.epoch_behind);
	fr_prom_one_u64(w, FAM(EPOCH_AHEAD), gs.epoch_ahead);
	per_model(n, w, FAM(BL_CUT_AGE), v_cut_age);
	per_model(n, w, FAM(BL_QUEUED_ROWS), v_bl_rows);
	per_model(n, w, FAM(BL_QUEUED_BYTES), v_bl_bytes);
	per_model(n, w, FAM(BL_OVERFLOWED), v_bl_over);
	per_model(n, w, FAM(BL_OVERFLOW_ROWS), v_bl_over_rows);
}

static void render_node(struct node *n, struct fr_wbuf *w)
{
	char dev[16], id[16];

	fr_prom_one_f64(w, FAM(PROCESS_START), (double)n->start_wall_ms / 1e3);
	snprintf(id, sizeof(id), "%u", n->cfg->node_id);
	fr_prom_family(w, FAM(NODE_INFO));
	fr_prom_u64(w, FAM(NODE_INFO), 1, "node", id, "dc", n->cfg->dc,
		    "cluster", n->cfg->cluster, "version", fr_version(), END);
	fr_prom_one_u64(w, FAM(GENERATION), n->generation);
	snprintf(dev, sizeof(dev), "%d",
		 n->be && strcmp(n->be->name, "cuda") == 0 ?
		 (int)n->cfg->gpu_device : -1);
	fr_prom_family(w, FAM(BACKEND_INFO));
	fr_prom_u64(w, FAM(BACKEND_INFO), 1, "backend",
		    n->be ? n->be->name : "none", "device", dev, END);
	fr_prom_one_u64(w, FAM(BACKEND_REBUILDS), n->metrics.backend_rebuilds);
	fr_prom_one_u64(w, FAM(BACKEND_BYTES), n->be_bytes);
	fr_prom_one_u64(w, FAM(UPTIME),
			(fr_mono_ms() - n->start_mono_ms) / 1000);
}

static void render_gossip(struct fr_wbuf *w, const struct gossip_stats *gs,
			  uint64_t pulls)
{
	fr_prom_one_u64(w, FAM(PULLS), pulls);
	fr_prom_one_u64(w, FAM(PULLS_DONE), gs->pulls_done);
	fr_prom_one_u64(w, FAM(PULLS_FAILED), gs->pulls_failed);
	fr_prom_one_u64(w, FAM(PULL_RETRIES), gs->retries);
	fr_prom_one_u64(w, FAM(PULLS_PENDING), gs->pulls_pending);
	fr_prom_one_u64(w, FAM(PULLS_INFLIGHT), gs->pulls_inflight);
}

static void render_requests(struct node *n, struct fr_wbuf *w)
{
	static const char *const pub_names[METRICS_PUB__COUNT] = {
		"ok", "duplicate", "busy", "invalid", "error",
	};
	struct node_metrics *m = &n->metrics;

	fr_prom_family(w, FAM(PUBLISH));
	for (int i = 0; i < METRICS_PUB__COUNT; i++)
		fr_prom_u64(w, FAM(PUBLISH), m->publish[i], "status",
			    pub_names[i], END);
	fr_prom_one_u64(w, FAM(PUBLISH_ROWS), m->publish_rows);
	fr_prom_one_u64(w, FAM(PUBLISH_QUEUE), n->dur.npending);
	fr_prom_one_u64(w, FAM(LOOKUPS), m->lookups);
	fr_prom_one_u64(w, FAM(LOOKUP_ROWS), m->lookup_rows);
	fr_prom_one_u64(w, FAM(LOOKUP_ERRORS), m->lookup_errors);
	fr_prom_family(w, FAM(ROWS_APPLIED));
	fr_prom_u64(w, FAM(ROWS_APPLIED), m->rows_applied_local, "source",
		    "local", END);
	fr_prom_u64(w, FAM(ROWS_APPLIED), m->rows_applied_remote, "source",
		    "peer", END);
	fr_prom_one_u64(w, FAM(ROWS_STALE), m->rows_stale_remote);
	fr_prom_one_u64(w, FAM(ROWS_REFUSED), m->rows_refused_remote);
	fr_prom_one_u64(w, FAM(CONNECTIONS), n->net.nconns);
	fr_prom_one_u64(w, FAM(CONNS_ACCEPTED), m->conns_accepted);
	fr_prom_one_u64(w, FAM(HELLO_REFUSED), m->hello_refused);
}

static void render_durability(struct node *n, struct fr_wbuf *w)
{
	struct node_metrics *m = &n->metrics;

	fr_prom_family(w, FAM(WAL_LSN));
	fr_prom_u64(w, FAM(WAL_LSN),
		    n->dur.wal ? shard_wal_durable_lsn(n->dur.wal) : 0, "kind",
		    "durable", END);
	fr_prom_u64(w, FAM(WAL_LSN), n->dur.applied_lsn, "kind", "applied",
		    END);
	fr_prom_u64(w, FAM(WAL_LSN), n->snap.lsn, "kind", "snapshot", END);
	fr_prom_one_u64(w, FAM(WAL_REPL_SKIPPED), m->wal_repl_skipped);
	fr_prom_family(w, FAM(SNAPSHOTS));
	fr_prom_u64(w, FAM(SNAPSHOTS), m->snapshots_ok, "result", "ok", END);
	fr_prom_u64(w, FAM(SNAPSHOTS), m->snapshots_failed, "result", "failed",
		    END);
	fr_prom_one_u64(w, FAM(HLC_REFUSED), m->hlc_refused);
}

static void hist(struct fr_wbuf *w, const struct fr_prom_family *f,
		 const struct fr_hist *h)
{
	fr_prom_family(w, f);
	fr_prom_hist(w, f, h, END);
}

void node_metrics_render(struct node *n, struct evbuffer *out)
{
	struct node_metrics *m = &n->metrics;
	struct gossip_peer_stats *ps = NULL;
	struct gossip_stats gs = { 0 };
	uint64_t pulls = 0;
	uint32_t np = 0;
	struct fr_wbuf w;

	if (n->gossip) {
		gossip_get_stats(n->gossip, &gs);
		if (n->net.npeers)
			ps = calloc(n->net.npeers, sizeof(*ps));
		if (ps)
			np = gossip_get_peer_stats(n->gossip, ps, n->net.npeers);
		if (np > n->net.npeers)
			np = n->net.npeers;
		for (uint32_t i = 0; i < np; i++)
			pulls += ps[i].pulls_sent;
	}
	fr_wbuf_init(&w, 64 * 1024, 0);
	render_node(n, &w);
	render_models(n, &w);
	render_peers(n, &w, ps, np);
	render_topology(n, &w);
	render_gossip(&w, &gs, pulls);
	render_requests(n, &w);
	render_durability(n, &w);
	model_roles_render(n, &w);
	hist(&w, FAM(PUBLISH_LATENCY), &m->publish_latency);
	hist(&w, FAM(LOOKUP_LATENCY), &m->lookup_latency);
	hist(&w, FAM(APPLY_LATENCY), &m->apply_latency);
	hist(&w, FAM(REPL_DELAY), &m->replication_delay);
	if (w.err == FR_OK)
		evbuffer_add(out, w.data, w.len);
	else
		evbuffer_add_printf(out, "# metrics rendering failed: %s\n",
				    fr_strerror(w.err));
	fr_wbuf_fini(&w);
	free(ps);
}
