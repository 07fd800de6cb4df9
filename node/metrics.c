/*
 * metrics.c — latency histograms and the Prometheus text exposition of
 * everything freshetd counts (served at /metrics by http.c).
 *
 * Histograms keep per-bucket counts and are made cumulative only when
 * rendered, so an observation is one comparison loop and an increment.
 * Gauges that derive from node state (versions, freshness lag, queue
 * depth, peer state) are computed at scrape time rather than kept up to
 * date on every apply.  Format: text exposition 0.0.4 (HELP and TYPE
 * before each family, label values escaped).
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

static const double hist_bounds[METRICS_HIST_NB] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void metrics_hist_observe(struct metrics_hist *h, double seconds)
{
	int i = 0;

	if (seconds < 0)
		seconds = 0;
	while (i < METRICS_HIST_NB && seconds > hist_bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += seconds;
}

/* Label values: backslash, double quote and newline escaped. */
static const char *esc(const char *s, char *buf, size_t cap)
{
	size_t k = 0;

	for (; *s && k + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			buf[k++] = '\\';
			buf[k++] = *s;
		} else if (*s == '\n') {
			buf[k++] = '\\';
			buf[k++] = 'n';
		} else {
			buf[k++] = *s;
		}
	}
	buf[k] = '\0';
	return buf;
}

static void family(struct evbuffer *b, const char *name, const char *type,
		   const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			    name, type);
}

static void hist_render(struct evbuffer *b, const char *name,
			const char *help, const struct metrics_hist *h)
{
	uint64_t cum = 0;

	family(b, name, "histogram", help);
	for (int i = 0; i < METRICS_HIST_NB; i++) {
		cum += h->bucket[i];
		evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
				    hist_bounds[i], (unsigned long long)cum);
	}
	cum += h->bucket[METRICS_HIST_NB];
	evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)cum);
	evbuffer_add_printf(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum,
			    name, (unsigned long long)h->count);
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

static void render_models(struct node *n, struct evbuffer *b)
{
	struct origin_max om[SHARD_VV_MAX];
	uint64_t wall = fr_wall_ms(NULL);
	char e[2 * SHARD_NAME_MAX + 2];

	family(b, "freshet_shard_version_max", "gauge",
	       "Highest version held from each origin, over the model's shards (HLC: ms << 16 | logical).");
	for (uint32_t i = 0; i < n->nmodels; i++) {
		uint32_t k = model_origins(&n->models[i], om, SHARD_VV_MAX);

		esc(n->models[i].def->name, e, sizeof(e));
		for (uint32_t j = 0; j < k; j++)
			evbuffer_add_printf(b, "freshet_shard_version_max{model=\"%s\",origin=\"%u\"} %llu\n",
					    e, om[j].origin,
					    (unsigned long long)om[j].version);
	}
	family(b, "freshet_freshness_lag_ms", "gauge",
	       "Wall-clock now minus the physical time of the newest row version held, per model.");
	for (uint32_t i = 0; i < n->nmodels; i++) {
		uint64_t mv = n->models[i].max_version, lag = 0;

		if (!mv)
			continue;
		if (wall > FR_HLC_PHYS(mv))
			lag = wall - FR_HLC_PHYS(mv);
		evbuffer_add_printf(b, "freshet_freshness_lag_ms{model=\"%s\"} %llu\n",
				    esc(n->models[i].def->name, e, sizeof(e)),
				    (unsigned long long)lag);
	}
}

/* One in/out pair of a per-peer counter; peer is a node id or "client". */
static void inout(struct evbuffer *b, const char *name, const char *peer,
		  uint64_t in, uint64_t out)
{
	evbuffer_add_printf(b, "%s{peer=\"%s\",direction=\"in\"} %llu\n"
			    "%s{peer=\"%s\",direction=\"out\"} %llu\n",
			    name, peer, (unsigned long long)in,
			    name, peer, (unsigned long long)out);
}

static void render_peers(struct node *n, struct evbuffer *b,
			 const struct gossip_peer_stats *ps, uint32_t np)
{
	struct node_metrics *m = &n->metrics;
	char id[16];

	family(b, "freshet_bytes_total", "counter",
	       "Frame bytes on the wire by peer (\"client\": all clients) and direction.");
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		snprintf(id, sizeof(id), "%u", n->net.peers[i]->id);
		inout(b, "freshet_bytes_total", id, n->net.peers[i]->bytes_in,
		      n->net.peers[i]->bytes_out);
	}
	inout(b, "freshet_bytes_total", "client", m->client_bytes_in,
	      m->client_bytes_out);
	family(b, "freshet_frames_total", "counter",
	       "Frames by peer (\"client\": all clients) and direction.");
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		snprintf(id, sizeof(id), "%u", n->net.peers[i]->id);
		inout(b, "freshet_frames_total", id, n->net.peers[i]->frames_in,
		      n->net.peers[i]->frames_out);
	}
	inout(b, "freshet_frames_total", "client", m->client_frames_in,
	      m->client_frames_out);
	family(b, "freshet_pull_bytes_total", "counter",
	       "Bytes of PULL_REPLY frames by peer and direction (rows moved by pulls).");
	for (uint32_t i = 0; i < np; i++) {
		snprintf(id, sizeof(id), "%u", ps[i].peer);
		inout(b, "freshet_pull_bytes_total", id, ps[i].pull_bytes_in,
		      ps[i].pull_bytes_out);
	}
	family(b, "freshet_bad_frames_total", "counter",
	       "Frames dropped (bad checksum, header or fields, wrong type), by peer.");
	for (uint32_t i = 0; i < n->net.npeers; i++)
		evbuffer_add_printf(b, "freshet_bad_frames_total{peer=\"%u\"} %llu\n",
				    n->net.peers[i]->id,
				    (unsigned long long)n->net.peers[i]->bad_frames);
	evbuffer_add_printf(b, "freshet_bad_frames_total{peer=\"client\"} %llu\n",
			    (unsigned long long)m->client_bad_frames);
	family(b, "freshet_bad_frames_by_error_total", "counter",
	       "Frames dropped, by error code, all connections.");
	for (int k = 0; k < FR_ERR__COUNT; k++)
		if (m->bad_by_err[k])
			evbuffer_add_printf(b, "freshet_bad_frames_by_error_total{error=\"%s\"} %llu\n",
					    fr_strerror((enum fr_err)-k),
					    (unsigned long long)m->bad_by_err[k]);
	family(b, "freshet_peer_up", "gauge", "1 when the link to the peer is up.");
	for (uint32_t i = 0; i < n->net.npeers; i++)
		evbuffer_add_printf(b, "freshet_peer_up{peer=\"%u\"} %d\n",
				    n->net.peers[i]->id,
				    n->net.peers[i]->conn &&
				    n->net.peers[i]->conn->state == NODE_CONN_UP);
	family(b, "freshet_peer_score", "gauge",
	       "Gossip's score of the peer (drops on bad frames and timeouts).");
	for (uint32_t i = 0; i < np; i++)
		evbuffer_add_printf(b, "freshet_peer_score{peer=\"%u\"} %d\n",
				    ps[i].peer, (int)ps[i].score);
	family(b, "freshet_peer_connects_total", "counter",
	       "Links to the peer that completed HELLO.");
	for (uint32_t i = 0; i < n->net.npeers; i++)
		evbuffer_add_printf(b, "freshet_peer_connects_total{peer=\"%u\"} %llu\n",
				    n->net.peers[i]->id,
				    (unsigned long long)n->net.peers[i]->connects);
}

/* Bytes by dc pair, from this node's links: summed over the nodes of a
 * dc, the out counters towards other dcs are what crossed the WAN. */
static void render_topology(struct node *n, struct evbuffer *b)
{
	struct topo_stats ts = { 0 };
	char e[2][160];

	family(b, "freshet_dc_bytes_total", "counter",
	       "Frame bytes between this node's dc and a dc (its own included), by direction of travel.");
	for (uint32_t i = 0; i < n->net.ndcs; i++) {
		esc(n->cfg->dc, e[0], sizeof(e[0]));
		esc(n->net.dcs[i].name, e[1], sizeof(e[1]));
		evbuffer_add_printf(b, "freshet_dc_bytes_total{src_dc=\"%s\",dst_dc=\"%s\"} %llu\n",
				    e[0], e[1],
				    (unsigned long long)n->net.dcs[i].bytes_out);
		evbuffer_add_printf(b, "freshet_dc_bytes_total{src_dc=\"%s\",dst_dc=\"%s\"} %llu\n",
				    e[1], e[0],
				    (unsigned long long)n->net.dcs[i].bytes_in);
	}
	family(b, "freshet_leader", "gauge",
	       "1 while this node leads its dc (ZooKeeper election).");
	evbuffer_add_printf(b, "freshet_leader %d\n", n->zk.leader);
	family(b, "freshet_leader_epoch", "gauge",
	       "This node's leader epoch while it leads, else 0.");
	evbuffer_add_printf(b, "freshet_leader_epoch %llu\n",
			    (unsigned long long)(n->zk.leader ? n->zk.epoch : 0));
	family(b, "freshet_zk_connected", "gauge",
	       "1 while the ZooKeeper session is connected (0 also without ZooKeeper).");
	evbuffer_add_printf(b, "freshet_zk_connected %d\n", n->zk.connected);
	family(b, "freshet_stale_epoch_refused_total", "counter",
	       "Links from other dcs refused because the sender's leader epoch was stale.");
	evbuffer_add_printf(b, "freshet_stale_epoch_refused_total %llu\n",
			    (unsigned long long)n->metrics.stale_epoch_refused);
	if (!n->zk.topo)
		return;
	topo_get_stats(n->zk.topo, &ts);
	family(b, "freshet_zk_events_total", "counter",
	       "ZooKeeper session events and elections seen by this node.");
	evbuffer_add_printf(b, "freshet_zk_events_total{event=\"connect\"} %llu\n"
			    "freshet_zk_events_total{event=\"disconnect\"} %llu\n"
			    "freshet_zk_events_total{event=\"expired\"} %llu\n"
			    "freshet_zk_events_total{event=\"elected\"} %llu\n"
			    "freshet_zk_events_total{event=\"demoted\"} %llu\n",
			    (unsigned long long)ts.connects,
			    (unsigned long long)ts.disconnects,
			    (unsigned long long)ts.expirations,
			    (unsigned long long)ts.elections_won,
			    (unsigned long long)ts.demotions);
	family(b, "freshet_zk_peer_changes_total", "counter",
	       "Peers added or dropped because the ZooKeeper view changed.");
	evbuffer_add_printf(b, "freshet_zk_peer_changes_total %llu\n",
			    (unsigned long long)n->zk.peer_changes);
	family(b, "freshet_zk_bad_znodes_total", "counter",
	       "Znodes ignored because they did not parse (logged with their path).");
	evbuffer_add_printf(b, "freshet_zk_bad_znodes_total %llu\n",
			    (unsigned long long)ts.bad_znodes);
	family(b, "freshet_zk_models_refused_total", "counter",
	       "Registry models this node could not serve (conflict with its config, no room, no memory).");
	evbuffer_add_printf(b, "freshet_zk_models_refused_total %llu\n",
			    (unsigned long long)n->zk.models_refused);
}

/* Per model: role, rollback epoch and work, the baseline's buffer. */
static void model_roles_render(struct node *n, struct evbuffer *b)
{
	uint64_t wall = fr_wall_ms(NULL);
	struct gossip_stats gs;

	family(b, "freshet_model_role", "gauge",
	       "1 for the role this node serves each model in (serving, canary, baseline).");
	for (uint32_t i = 0; i < n->nmodels; i++)
		evbuffer_add_printf(b, "freshet_model_role{model=\"%s\",role=\"%s\"} 1\n",
				    n->models[i].def->name,
				    node_role_name(n->models[i].role));
	family(b, "freshet_rollback_epoch", "gauge",
	       "Highest rollback epoch applied, per model.");
	for (uint32_t i = 0; i < n->nmodels; i++)
		evbuffer_add_printf(b, "freshet_rollback_epoch{model=\"%s\"} %llu\n",
				    n->models[i].def->name,
				    (unsigned long long)shard_store_rollback_epoch(n->models[i].st));
	family(b, "freshet_rollbacks_applied_total", "counter",
	       "Rollback directives applied, per model.");
	for (uint32_t i = 0; i < n->nmodels; i++)
		evbuffer_add_printf(b, "freshet_rollbacks_applied_total{model=\"%s\"} %llu\n",
				    n->models[i].def->name,
				    (unsigned long long)n->models[i].rollbacks_applied);
	family(b, "freshet_rollback_rows_total", "counter",
	       "Rows put back by rollbacks: restored from the undo ring, or zeroed in shards repaired by full transfer.");
	for (uint32_t i = 0; i < n->nmodels; i++)
		evbuffer_add_printf(b, "freshet_rollback_rows_total{model=\"%s\",how=\"restored\"} %llu\n"
				    "freshet_rollback_rows_total{model=\"%s\",how=\"zeroed\"} %llu\n",
				    n->models[i].def->name,
				    (unsigned long long)n->models[i].rollback_rows_restored,
				    n->models[i].def->name,
				    (unsigned long long)n->models[i].rollback_rows_zeroed);
	family(b, "freshet_rollback_full_transfer_shards_total", "counter",
	       "Shards whose undo ring did not reach a rollback's target, repaired by full transfer.");
	for (uint32_t i = 0; i < n->nmodels; i++)
		evbuffer_add_printf(b, "freshet_rollback_full_transfer_shards_total{model=\"%s\"} %llu\n",
				    n->models[i].def->name,
				    (unsigned long long)n->models[i].rollback_shards_repaired);
	family(b, "freshet_rollback_apply_seconds", "gauge",
	       "Time the last rollback took to apply here, per model.");
	for (uint32_t i = 0; i < n->nmodels; i++)
		evbuffer_add_printf(b, "freshet_rollback_apply_seconds{model=\"%s\"} %.6f\n",
				    n->models[i].def->name,
				    n->models[i].last_rollback_s);
	family(b, "freshet_rollback_directives_refused_total", "counter",
	       "Rollback directives that could not be applied (logged).");
	evbuffer_add_printf(b, "freshet_rollback_directives_refused_total %llu\n",
			    (unsigned long long)n->roles.bad_directives);
	gossip_get_stats(n->gossip, &gs);
	{
		uint64_t done = 0;
		uint32_t pending = gossip_repairs_pending(n->gossip, &done);

		family(b, "freshet_rollback_repairs_pending", "gauge",
		       "Shards reset by a rollback still waiting for their full transfer.");
		evbuffer_add_printf(b, "freshet_rollback_repairs_pending %u\n",
				    pending);
		family(b, "freshet_rollback_repairs_done_total", "counter",
		       "Shards whose full transfer after a rollback completed.");
		evbuffer_add_printf(b, "freshet_rollback_repairs_done_total %llu\n",
				    (unsigned long long)done);
	}
	family(b, "freshet_gossip_epoch_behind_total", "counter",
	       "Digest entries from peers that have not applied a rollback we have (never pulled from).");
	evbuffer_add_printf(b, "freshet_gossip_epoch_behind_total %llu\n",
			    (unsigned long long)gs.epoch_behind);
	family(b, "freshet_gossip_epoch_ahead_total", "counter",
	       "Digest entries from peers that have applied a rollback we have not yet.");
	evbuffer_add_printf(b, "freshet_gossip_epoch_ahead_total %llu\n",
			    (unsigned long long)gs.epoch_ahead);
	family(b, "freshet_baseline_cut_age_seconds", "gauge",
	       "How far a baseline's served cut is behind now, per model.");
	for (uint32_t i = 0; i < n->nmodels; i++) {
		uint64_t cut;

		if (!n->models[i].bl)
			continue;
		cut = node_model_cut(n, &n->models[i]);
		evbuffer_add_printf(b, "freshet_baseline_cut_age_seconds{model=\"%s\"} %.3f\n",
				    n->models[i].def->name,
				    wall > FR_HLC_PHYS(cut) ?
				    (double)(wall - FR_HLC_PHYS(cut)) / 1e3 : 0.0);
	}
	family(b, "freshet_baseline_queued", "gauge",
	       "Rows and bytes a baseline holds back, per model.");
	for (uint32_t i = 0; i < n->nmodels; i++) {
		struct baseline_stats bs;

		if (!n->models[i].bl)
			continue;
		baseline_get_stats(n->models[i].bl, &bs);
		evbuffer_add_printf(b, "freshet_baseline_queued{model=\"%s\",unit=\"rows\"} %llu\n"
				    "freshet_baseline_queued{model=\"%s\",unit=\"bytes\"} %llu\n",
				    n->models[i].def->name,
				    (unsigned long long)bs.queued_rows,
				    n->models[i].def->name,
				    (unsigned long long)bs.queued_bytes);
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			family(b, "freshet_baseline_overflowed", "gauge",
			       "1 while a baseline's buffer has left rows out (it catches up from its store once the lag passes them).");
		else
			family(b, "freshet_baseline_overflow_rows_total",
			       "counter",
			       "Rows a baseline's full buffer left out, per model.");
		for (uint32_t i = 0; i < n->nmodels; i++) {
			struct baseline_stats bs;

			if (!n->models[i].bl)
				continue;
			baseline_get_stats(n->models[i].bl, &bs);
			if (pass == 0)
				evbuffer_add_printf(b, "freshet_baseline_overflowed{model=\"%s\"} %d\n",
						    n->models[i].def->name,
						    bs.overflowed ? 1 : 0);
			else
				evbuffer_add_printf(b, "freshet_baseline_overflow_rows_total{model=\"%s\"} %llu\n",
						    n->models[i].def->name,
						    (unsigned long long)bs.overflow_rows);
		}
	}
}

void metrics_render(struct node *n, struct evbuffer *b)
{
	static const char *pub_names[METRICS_PUB__COUNT] = {
		"ok", "duplicate", "busy", "invalid", "error",
	};
	struct node_metrics *m = &n->metrics;
	struct gossip_peer_stats *ps = NULL;
	struct gossip_stats gs = { 0 };
	uint64_t pulls = 0;
	uint32_t np = 0;
	char e[2][160];

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

	family(b, "freshet_node_info", "gauge", "This node; the value is 1.");
	evbuffer_add_printf(b, "freshet_node_info{node=\"%u\",dc=\"%s\",cluster=\"%s\",version=\"%s\"} 1\n",
			    n->cfg->node_id, esc(n->cfg->dc, e[0], sizeof(e[0])),
			    esc(n->cfg->cluster, e[1], sizeof(e[1])),
			    fr_version());
	family(b, "freshet_generation", "gauge",
	       "Start count of this data dir.");
	evbuffer_add_printf(b, "freshet_generation %llu\n",
			    (unsigned long long)n->generation);
	family(b, "freshet_backend_info", "gauge",
	       "The table backend lookups are served from (device: CUDA ordinal, -1 for cpu); the value is 1.");
	evbuffer_add_printf(b, "freshet_backend_info{backend=\"%s\",device=\"%d\"} 1\n",
			    n->be ? n->be->name : "none",
			    n->be && strcmp(n->be->name, "cuda") == 0 ?
			    (int)n->cfg->gpu_device : -1);
	family(b, "freshet_backend_rebuilds_total", "counter",
	       "Backend tables remade from the store after a backend (GPU) error.");
	evbuffer_add_printf(b, "freshet_backend_rebuilds_total %llu\n",
			    (unsigned long long)n->metrics.backend_rebuilds);
	family(b, "freshet_backend_bytes", "gauge",
	       "Table bytes held by the backend, all models (node.gpu_budget_mb bounds it).");
	evbuffer_add_printf(b, "freshet_backend_bytes %llu\n",
			    (unsigned long long)n->be_bytes);
	family(b, "freshet_uptime_seconds", "gauge", "Seconds since start.");
	evbuffer_add_printf(b, "freshet_uptime_seconds %llu\n",
			    (unsigned long long)((fr_mono_ms() -
						  n->start_mono_ms) / 1000));

	render_models(n, b);
	render_peers(n, b, ps, np);
	render_topology(n, b);

	family(b, "freshet_pulls_total", "counter", "Pulls sent to peers.");
	evbuffer_add_printf(b, "freshet_pulls_total %llu\n",
			    (unsigned long long)pulls);
	family(b, "freshet_pulls_done_total", "counter", "Pulls completed.");
	evbuffer_add_printf(b, "freshet_pulls_done_total %llu\n",
			    (unsigned long long)gs.pulls_done);
	family(b, "freshet_pulls_failed_total", "counter",
	       "Pulls that failed or timed out.");
	evbuffer_add_printf(b, "freshet_pulls_failed_total %llu\n",
			    (unsigned long long)gs.pulls_failed);
	family(b, "freshet_pull_retries_total", "counter",
	       "Pulls retried (from another peer where possible).");
	evbuffer_add_printf(b, "freshet_pull_retries_total %llu\n",
			    (unsigned long long)gs.retries);
	family(b, "freshet_pulls_pending", "gauge", "Pulls queued.");
	evbuffer_add_printf(b, "freshet_pulls_pending %llu\n",
			    (unsigned long long)gs.pulls_pending);
	family(b, "freshet_pulls_inflight", "gauge", "Pulls awaiting replies.");
	evbuffer_add_printf(b, "freshet_pulls_inflight %llu\n",
			    (unsigned long long)gs.pulls_inflight);

	family(b, "freshet_publish_total", "counter",
	       "PUBLISH requests by outcome.");
	for (int i = 0; i < METRICS_PUB__COUNT; i++)
		evbuffer_add_printf(b, "freshet_publish_total{status=\"%s\"} %llu\n",
				    pub_names[i],
				    (unsigned long long)m->publish[i]);
	family(b, "freshet_publish_rows_total", "counter",
	       "Rows in accepted publishes.");
	evbuffer_add_printf(b, "freshet_publish_rows_total %llu\n",
			    (unsigned long long)m->publish_rows);
	family(b, "freshet_publish_queue_depth", "gauge",
	       "Publishes waiting for the WAL.");
	evbuffer_add_printf(b, "freshet_publish_queue_depth %u\n", n->dur.npending);
	family(b, "freshet_lookups_total", "counter", "LOOKUP requests.");
	evbuffer_add_printf(b, "freshet_lookups_total %llu\n",
			    (unsigned long long)m->lookups);
	family(b, "freshet_lookup_rows_total", "counter", "Rows looked up.");
	evbuffer_add_printf(b, "freshet_lookup_rows_total %llu\n",
			    (unsigned long long)m->lookup_rows);
	family(b, "freshet_rows_applied_total", "counter",
	       "Rows written to the store, by source (local publish or peer).");
	evbuffer_add_printf(b, "freshet_rows_applied_total{source=\"local\"} %llu\n"
			    "freshet_rows_applied_total{source=\"peer\"} %llu\n",
			    (unsigned long long)m->rows_applied_local,
			    (unsigned long long)m->rows_applied_remote);
	family(b, "freshet_rows_stale_total", "counter",
	       "Rows from peers that were older than what is held.");
	evbuffer_add_printf(b, "freshet_rows_stale_total %llu\n",
			    (unsigned long long)m->rows_stale_remote);
	family(b, "freshet_rows_refused_total", "counter",
	       "Rows from peers refused as revoked by a rollback.");
	evbuffer_add_printf(b, "freshet_rows_refused_total %llu\n",
			    (unsigned long long)m->rows_refused_remote);
	family(b, "freshet_connections", "gauge", "Open TCP connections.");
	evbuffer_add_printf(b, "freshet_connections %u\n", n->net.nconns);
	family(b, "freshet_hello_refused_total", "counter",
	       "Connections refused at HELLO (version, cluster, unknown id).");
	evbuffer_add_printf(b, "freshet_hello_refused_total %llu\n",
			    (unsigned long long)m->hello_refused);
	family(b, "freshet_wal_lsn", "gauge",
	       "WAL positions: durable, applied to the stores, covered by the snapshots.");
	evbuffer_add_printf(b, "freshet_wal_lsn{kind=\"durable\"} %llu\n"
			    "freshet_wal_lsn{kind=\"applied\"} %llu\n"
			    "freshet_wal_lsn{kind=\"snapshot\"} %llu\n",
			    (unsigned long long)(n->dur.wal ? shard_wal_durable_lsn(n->dur.wal) : 0),
			    (unsigned long long)n->dur.applied_lsn,
			    (unsigned long long)n->snap.lsn);
	family(b, "freshet_wal_replicated_skipped_total", "counter",
	       "Batches from peers applied but not logged (WAL queue full): re-pulled after a crash.");
	evbuffer_add_printf(b, "freshet_wal_replicated_skipped_total %llu\n",
			    (unsigned long long)m->wal_repl_skipped);
	family(b, "freshet_snapshots_total", "counter",
	       "Snapshots written, by result.");
	evbuffer_add_printf(b, "freshet_snapshots_total{result=\"ok\"} %llu\n"
			    "freshet_snapshots_total{result=\"failed\"} %llu\n",
			    (unsigned long long)m->snapshots_ok,
			    (unsigned long long)m->snapshots_failed);
	family(b, "freshet_hlc_refused_total", "counter",
	       "Peer versions too far ahead of the local clock to be observed.");
	evbuffer_add_printf(b, "freshet_hlc_refused_total %llu\n",
			    (unsigned long long)m->hlc_refused);

	model_roles_render(n, b);

	hist_render(b, "freshet_publish_latency_seconds",
		    "PUBLISH received to acknowledged (durable and applied).",
		    &m->publish_latency);
	hist_render(b, "freshet_apply_latency_seconds",
		    "Applying one batch from a peer to the store and backend.",
		    &m->apply_latency);
	hist_render(b, "freshet_replication_delay_seconds",
		    "Wall-clock now minus the newest version's time, per batch applied from a peer.",
		    &m->replication_delay);
	free(ps);
}
