/*
 * http.c — freshetd's admin HTTP listener (libevent's evhttp, on the loop
 * thread): /healthz for load balancers, /status as JSON for people and
 * `freshet status`, /metrics as Prometheus text (rendered by metrics.c).
 *
 * Every path and field is in docs/admin-http.md.  /status computes table
 * checksums on demand (O(table bytes)); it is for operators and tests,
 * not for a scraper's tight loop.  Add ?shards=1 for every shard's
 * version vector.  Only GET and HEAD are served.
 *
 * Not here: anything that changes node state (rollbacks and roles go
 * through ZooKeeper, not this endpoint).
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "node/baseline.h"
#include "node/node_int.h"

static void reply_text(struct evhttp_request *req, int code,
		       const char *reason, const char *ctype,
		       struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", ctype);
	evhttp_send_reply(req, code, reason, body);
}

static void healthz_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	if (!b) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add_printf(b, "ok\n");
	reply_text(req, HTTP_OK, "OK", "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	if (!b) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	node_metrics_render(arg, b);
	reply_text(req, HTTP_OK, "OK", fr_prom_content_type, b);
	evbuffer_free(b);
}

static json_t *hex64(uint64_t v)
{
	char s[17];

	snprintf(s, sizeof(s), "%016llx", (unsigned long long)v);
	return json_string(s);
}

static json_t *vv_json(const struct shard_vv *vv)
{
	json_t *a = json_array();

	for (uint32_t i = 0; vv && i < vv->n; i++)
		json_array_append_new(a, json_pack("{s:I,s:I}", "origin",
						   (json_int_t)vv->e[i].origin,
						   "version",
						   (json_int_t)vv->e[i].version));
	return a;
}

static json_t *model_json(struct node *n, struct node_model *m, bool shards)
{
	json_t *o, *tables, *sv;
	uint64_t wall = fr_wall_ms(NULL);

	o = json_pack("{s:s,s:I,s:I,s:o,s:I,s:I}", "name", m->def->name,
		      "priority", (json_int_t)m->def->priority,
		      "shards", (json_int_t)m->def->shards,
		      "summary", hex64(shard_store_summary(m->st)),
		      "max_version", (json_int_t)m->max_version,
		      "rollback_epoch",
		      (json_int_t)shard_store_rollback_epoch(m->st));
	json_object_set_new(o, "role", json_string(node_role_name(m->role)));
	json_object_set_new(o, "role_from", json_string(m->role_override ?
							"zookeeper" :
							"config"));
	json_object_set_new(o, "cut", json_integer((json_int_t)
						   node_model_cut(n, m)));
	json_object_set_new(o, "undo_horizon", json_integer((json_int_t)
		shard_store_undo_horizon(m->st)));
	json_object_set_new(o, "rollback", json_pack(
		"{s:I,s:I,s:I,s:I,s:f}",
		"applied", (json_int_t)m->rollbacks_applied,
		"rows_restored", (json_int_t)m->rollback_rows_restored,
		"rows_zeroed", (json_int_t)m->rollback_rows_zeroed,
		"shards_repaired", (json_int_t)m->rollback_shards_repaired,
		"last_apply_s", m->last_rollback_s));
	if (m->bl) {
		struct node_baseline_stats bs;
		uint64_t cut = node_model_cut(n, m);

		node_baseline_get_stats(m->bl, &bs);
		json_object_set_new(o, "baseline", json_pack(
			"{s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I}",
			"lag_ms", (json_int_t)bs.lag_ms,
			"cut_age_ms", (json_int_t)(wall > FR_HLC_PHYS(cut) ?
						   wall - FR_HLC_PHYS(cut) : 0),
			"queued_rows", (json_int_t)bs.queued_rows,
			"queued_bytes", (json_int_t)bs.queued_bytes,
			"overflowed", bs.overflowed,
			"overflow_rows", (json_int_t)bs.overflow_rows,
			"released_rows", (json_int_t)bs.released_rows,
			"buffer_bytes", (json_int_t)bs.max_bytes));
	}
	if (m->max_version)
		json_object_set_new(o, "freshness_lag_ms",
				    json_integer(wall > FR_HLC_PHYS(m->max_version) ?
						 (json_int_t)(wall - FR_HLC_PHYS(m->max_version)) :
						 0));
	tables = json_array();
	for (uint32_t t = 0; t < m->def->ntables; t++) {
		const struct shard_table_def *td = &m->def->tables[t];
		uint64_t bsum = 0;
		json_t *to;

		to = json_pack("{s:s,s:I,s:I,s:s,s:o,s:I}", "name", td->name,
			       "rows", (json_int_t)td->rows,
			       "dim", (json_int_t)td->dim,
			       "dtype", shard_dtype_name(td->dtype),
			       "checksum",
			       hex64(shard_store_table_checksum(m->st, t)),
			       "max_version",
			       (json_int_t)m->tables[t].max_version);
		/* The mirror must equal the store; show both. */
		if (m->tables[t].gt && gpu_checksum(m->tables[t].gt, &bsum) ==
		    FR_OK)
			json_object_set_new(to, "backend_checksum", hex64(bsum));
		json_array_append_new(tables, to);
	}
	json_object_set_new(o, "tables", tables);
	if (shards) {
		sv = json_array();
		for (uint32_t t = 0; t < m->def->ntables; t++)
			for (uint32_t s = 0; s < m->def->shards; s++)
				json_array_append_new(sv, json_pack(
					"{s:I,s:I,s:o}", "table", (json_int_t)t,
					"shard", (json_int_t)s, "vv",
					vv_json(shard_store_vv(m->st, t, s))));
		json_object_set_new(o, "shard_vv", sv);
	}
	return o;
}

static json_t *peers_json(struct node *n)
{
	struct gossip_peer_stats *ps = NULL;
	uint32_t np = 0;
	json_t *a = json_array();

	if (n->net.npeers)
		ps = calloc(n->net.npeers, sizeof(*ps));
	if (ps && n->gossip)
		np = gossip_get_peer_stats(n->gossip, ps, n->net.npeers);
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		struct node_peer *p = n->net.peers[i];
		char addr[CONFIG_ADDR_MAX + 16];
		json_t *o;

		snprintf(addr, sizeof(addr), "%s:%u", p->addr.host,
			 p->addr.port);
		o = json_pack("{s:I,s:s,s:b,s:b,s:s,s:I,s:I,s:I,s:I,s:I,s:I,"
			      "s:I,s:I}",
			      "id", (json_int_t)p->id, "addr", addr,
			      "up", p->conn && p->conn->state == NODE_CONN_UP,
			      "dialer", p->dialer, "dc", p->dc,
			      "generation", (json_int_t)p->generation,
			      "bytes_in", (json_int_t)p->bytes_in,
			      "bytes_out", (json_int_t)p->bytes_out,
			      "frames_in", (json_int_t)p->frames_in,
			      "frames_out", (json_int_t)p->frames_out,
			      "bad_frames", (json_int_t)p->bad_frames,
			      "connects", (json_int_t)p->connects,
			      "disconnects", (json_int_t)p->disconnects);
		for (uint32_t k = 0; k < np && k < n->net.npeers; k++) {
			if (ps[k].peer != p->id)
				continue;
			json_object_set_new(o, "score",
					    json_integer(ps[k].score));
			json_object_set_new(o, "pulls_sent",
					    json_integer((json_int_t)ps[k].pulls_sent));
			json_object_set_new(o, "pulls_served",
					    json_integer((json_int_t)ps[k].pulls_served));
			json_object_set_new(o, "inflight_bytes",
					    json_integer((json_int_t)ps[k].inflight_bytes));
			json_object_set_new(o, "timeouts",
					    json_integer((json_int_t)ps[k].timeouts));
		}
		json_array_append_new(a, o);
	}
	free(ps);
	return a;
}

static bool query_flag(struct evhttp_request *req, const char *name)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq kv;
	const char *v;
	bool on = false;

	if (!q || evhttp_parse_query_str(q, &kv) != 0)
		return false;
	v = evhttp_find_header(&kv, name);
	on = v && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
	evhttp_clear_headers(&kv);
	return on;
}

/* Where this node stands in its cluster: ZooKeeper session, leadership,
 * the leaders it knows, bytes by dc pair. */
static json_t *topology_json(struct node *n)
{
	json_t *t, *leaders = json_array(), *dcs = json_array();
	struct topo_stats ts = { 0 };

	if (n->zk.topo)
		topo_get_stats(n->zk.topo, &ts);
	for (uint32_t i = 0; i < n->zk.nleaders; i++) {
		const struct topo_leader *l = &n->zk.leaders[i];

		json_array_append_new(leaders, json_pack(
			"{s:s,s:I,s:s,s:I}", "dc", l->dc,
			"node_id", (json_int_t)l->node_id, "addr", l->addr,
			"epoch", (json_int_t)l->epoch));
	}
	for (uint32_t i = 0; i < n->net.ndcs; i++)
		json_array_append_new(dcs, json_pack(
			"{s:s,s:I,s:I}", "dc", n->net.dcs[i].name,
			"bytes_in", (json_int_t)n->net.dcs[i].bytes_in,
			"bytes_out", (json_int_t)n->net.dcs[i].bytes_out));
	t = json_pack("{s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I}",
		      "dc", n->cfg->dc,
		      "zk", !n->zk.topo ? "off" :
			    n->zk.connected ? "connected" : "disconnected",
		      "leader", n->zk.leader,
		      "epoch", (json_int_t)(n->zk.leader ? n->zk.epoch : 0),
		      "members", (json_int_t)n->zk.nmembers,
		      "session_timeout_ms", (json_int_t)n->zk.session_ms,
		      "demotions", (json_int_t)ts.demotions,
		      "expirations", (json_int_t)ts.expirations);
	if (!t) {
		json_decref(leaders);
		json_decref(dcs);
		return json_null();
	}
	json_object_set_new(t, "leaders", leaders);
	json_object_set_new(t, "dc_bytes", dcs);
	return t;
}

static void status_cb(struct evhttp_request *req, void *arg)
{
	struct node *n = arg;
	bool shards = query_flag(req, "shards");
	struct gossip_stats gs = { 0 };
	struct evbuffer *b;
	json_t *root, *models;
	char addr[2][CONFIG_ADDR_MAX + 16];
	char *text;

	if (n->gossip)
		gossip_get_stats(n->gossip, &gs);
	snprintf(addr[0], sizeof(addr[0]), "%s:%u", n->cfg->listen.host,
		 n->cfg->listen.port);
	snprintf(addr[1], sizeof(addr[1]), "%s:%u", n->cfg->admin.host,
		 n->cfg->admin.port);
	root = json_pack("{s:I,s:s,s:s,s:I,s:s,s:s,s:I,s:s,s:s,s:b}",
			 "node_id", (json_int_t)n->cfg->node_id,
			 "dc", n->cfg->dc, "cluster", n->cfg->cluster,
			 "generation", (json_int_t)n->generation,
			 "version", fr_version(),
			 "backend", n->be ? n->be->name : "none",
			 "uptime_s",
			 (json_int_t)((fr_mono_ms() - n->start_mono_ms) / 1000),
			 "listen", addr[0], "admin", addr[1],
			 "stopping", n->stop.stopping);
	if (!root) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	models = json_array();
	for (uint32_t i = 0; i < n->nmodels; i++)
		json_array_append_new(models, model_json(n, &n->models[i],
							 shards));
	json_object_set_new(root, "models", models);
	json_object_set_new(root, "backend_info", json_pack(
		"{s:s,s:i,s:I,s:I}", "backend", n->be ? n->be->name : "none",
		"device", n->be && strcmp(n->be->name, "cuda") == 0 ?
			  (int)n->cfg->gpu_device : -1,
		"bytes", (json_int_t)n->be_bytes,
		"budget_bytes", (json_int_t)((uint64_t)n->cfg->gpu_budget_mb << 20)));
	json_object_set_new(root, "peers", peers_json(n));
	json_object_set_new(root, "topology", topology_json(n));
	json_object_set_new(root, "wal", json_pack(
		"{s:I,s:I,s:I,s:I}",
		"durable_lsn",
		(json_int_t)(n->dur.wal ? shard_wal_durable_lsn(n->dur.wal) : 0),
		"applied_lsn", (json_int_t)n->dur.applied_lsn,
		"last_lsn", (json_int_t)n->dur.last_lsn,
		"snapshot_lsn", (json_int_t)n->snap.lsn));
	json_object_set_new(root, "publish", json_pack(
		"{s:I,s:I}", "queue_depth", (json_int_t)n->dur.npending,
		"queue_max", (json_int_t)n->cfg->publish_queue_max));
	json_object_set_new(root, "gossip", json_pack(
		"{s:I,s:I,s:I,s:I,s:I,s:I}",
		"pulls_pending", (json_int_t)gs.pulls_pending,
		"pulls_inflight", (json_int_t)gs.pulls_inflight,
		"pulls_done", (json_int_t)gs.pulls_done,
		"pulls_failed", (json_int_t)gs.pulls_failed,
		"retries", (json_int_t)gs.retries,
		"rows_applied", (json_int_t)gs.rows_applied));
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	b = evbuffer_new();
	if (!text || !b) {
		free(text);
		if (b)
			evbuffer_free(b);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add(b, text, strlen(text));
	evbuffer_add(b, "\n", 1);
	free(text);
	reply_text(req, HTTP_OK, "OK", "application/json", b);
	evbuffer_free(b);
}

static void notfound_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	if (!b) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	evbuffer_add_printf(b, "not found; try /healthz, /status, /metrics\n");
	reply_text(req, HTTP_NOTFOUND, "Not Found", "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

enum fr_err node_http_start(struct node *n)
{
	const struct node_config_addr *a = &n->cfg->admin;

	n->http = evhttp_new(n->base);
	if (!n->http)
		return fr_fail(FR_ERR_NOMEM, "admin: evhttp_new failed");
	evhttp_set_allowed_methods(n->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_cb(n->http, "/healthz", healthz_cb, n);
	evhttp_set_cb(n->http, "/status", status_cb, n);
	evhttp_set_cb(n->http, "/metrics", metrics_cb, n);
	evhttp_set_gencb(n->http, notfound_cb, n);
	evhttp_set_timeout(n->http, 30);
	if (!evhttp_bind_socket_with_handle(n->http, a->host, a->port))
		return fr_fail(FR_ERR_IO, "node.admin: '%s:%u': cannot bind "
			       "(in use, or not an address of this host)",
			       a->host, a->port);
	return FR_OK;
}

void node_http_stop(struct node *n)
{
	if (n->http)
		evhttp_free(n->http);
	n->http = NULL;
}
