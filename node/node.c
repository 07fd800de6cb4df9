/*
 * node.c — freshetd's skeleton: what starts in which order, what stops in
 * which order, and the glue between the gossip core and the stores.
 *
 * Start (node_new):
 *   event base -> data dir (lock, generation) -> snapshots + WAL replay
 *   (persist.c) -> table backends filled from the stores, HLC moved past
 *   every version this node ever stamped -> mailbox + WAL open -> gossip
 *   core (models, static peers) -> TCP listener and peer dialing (net.c)
 *   -> admin HTTP (http.c) -> signals and timers.
 * Stop (SIGTERM/SIGINT, node_run):
 *   stop accepting and reading clients -> wait for the WAL to make every
 *   queued publish durable, apply and ack them -> drop peer links
 *   (in-flight pulls are cancelled; the stores only ever hold whole
 *   batches) -> let clients read their acks (bounded wait) -> snapshot
 *   every store at the last applied LSN and truncate the WAL -> close.
 *
 * The gossip adapter: the core applies every batch through apply_cb, which
 * writes the store and mirrors the rows that won into the backend, so
 * lookups always see what the store holds.  After every event that can
 * make gossip output, net.c drains it (node_gossip_flush) and the timer is
 * re-armed at gossip_next_deadline().
 *
 * Not here: sockets and framing (net.c), the publish path (publish.c),
 * disk formats (persist.c).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "node/node_int.h"

#define NODE_FILL_CHUNK 65536u          /* rows per backend restore call */
#define NODE_MAILBOX_CAP 1024
#define NODE_STOP_FLUSH_MS 2000         /* clients get this long to read acks */
#define NODE_STOP_LINGER_MS 300         /* and this long to close after FIN */
#define NODE_GOSSIP_MAX_SLEEP_MS 1000

int node_model_find(const struct node *n, const char *name)
{
	for (uint32_t i = 0; i < n->nmodels; i++)
		if (strcmp(n->models[i].def->name, name) == 0)
			return (int)i;
	return -1;
}

static struct node_model *model_of_store(struct node *n,
					 const struct shard_store *st)
{
	for (uint32_t i = 0; i < n->nmodels; i++)
		if (n->models[i].st == st)
			return &n->models[i];
	return NULL;
}

/* ========================================================================
 * Applying batches: store first (it decides last-writer-wins), then the
 * backend gets exactly the rows that won.
 * ===================================================================== */

static enum fr_err scratch_reserve(struct node *n, size_t rows, size_t bytes)
{
	if (rows > n->mirror.cap) {
		size_t cap = rows < 1024 ? 1024 : rows;
		uint8_t *won = realloc(n->mirror.won, cap);
		uint64_t *r, *v;

		if (!won)
			return fr_fail(FR_ERR_NOMEM, "apply scratch");
		n->mirror.won = won;
		r = realloc(n->mirror.rows, cap * sizeof(*r));
		if (!r)
			return fr_fail(FR_ERR_NOMEM, "apply scratch");
		n->mirror.rows = r;
		v = realloc(n->mirror.vers, cap * sizeof(*v));
		if (!v)
			return fr_fail(FR_ERR_NOMEM, "apply scratch");
		n->mirror.vers = v;
		n->mirror.cap = cap;
	}
	if (bytes > n->mirror.vals_cap) {
		uint8_t *p = realloc(n->mirror.vals, bytes);

		if (!p)
			return fr_fail(FR_ERR_NOMEM, "apply scratch: %zu bytes",
				       bytes);
		n->mirror.vals = p;
		n->mirror.vals_cap = bytes;
	}
	return FR_OK;
}

enum fr_err node_apply_batch(struct node *n, struct node_model *m,
			     const struct shard_batch *b,
			     struct shard_apply_result *res)
{
	struct node_table *tab;
	size_t rb, k = 0;
	uint64_t maxv = 0;
	enum fr_err rc;

	rc = scratch_reserve(n, b->n, 0);
	if (rc)
		return rc;
	rc = shard_store_apply(m->st, b, res, n->mirror.won);
	if (rc || res->applied == 0)
		return rc;
	n->snap.changes++;
	tab = &m->tables[b->table];
	rb = shard_row_bytes(&m->def->tables[b->table]);
	for (uint32_t i = 0; i < b->n; i++) {
		if (!n->mirror.won[i])
			continue;
		k++;
		if (b->versions[i] > maxv)
			maxv = b->versions[i];
	}
	if (maxv > tab->max_version)
		tab->max_version = maxv;
	if (maxv > m->max_version)
		m->max_version = maxv;
	if (!tab->gt || k == 0)
		return FR_OK;   /* start-up replay: the backend is filled later */
	if (k == b->n) {
		rc = node_mirror_rows(n, m, b->table, b->rows, b->versions,
				      b->values, (uint32_t)k);
	} else {
		rc = scratch_reserve(n, b->n, k * rb);
		if (rc)
			goto out_diverged;
		k = 0;
		for (uint32_t i = 0; i < b->n; i++) {
			if (!n->mirror.won[i])
				continue;
			n->mirror.rows[k] = b->rows[i];
			n->mirror.vers[k] = b->versions[i];
			memcpy(n->mirror.vals + k * rb,
			       (const uint8_t *)b->values + (size_t)i * rb, rb);
			k++;
		}
		rc = node_mirror_rows(n, m, b->table, n->mirror.rows, n->mirror.vers,
				      n->mirror.vals, (uint32_t)k);
	}
	if (rc == FR_OK)
		return FR_OK;
out_diverged:
	/* The store has the rows; lookups would now serve older values.
	 * That must be loud: it is a bug or a failing device.  Rebuild the
	 * table from the store, which is the source of truth. */
	fr_log(FR_LOG_ERROR, "node", "model '%s' table %u: backend apply of "
	       "%zu rows failed: %s; rebuilding the table from the store",
	       m->def->name, b->table, k, fr_errmsg());
	node_table_rebuild(n, m, b->table);
	return FR_OK;
}

/* ========================================================================
 * Gossip adapter
 * ===================================================================== */

static enum fr_err gossip_apply_cb(void *arg, uint32_t peer,
				   struct shard_store *st,
				   const struct shard_batch *b,
				   struct shard_apply_result *res)
{
	struct node *n = arg;
	struct node_model *m = model_of_store(n, st);
	uint64_t t0 = fr_mono_ns(), maxv = 0, wall;
	enum fr_err rc;

	if (!m)
		return fr_fail(FR_ERR_NOTFOUND, "gossip apply: unknown store");
	rc = node_apply_batch(n, m, b, res);
	if (rc)
		return rc;
	node_wal_log_replicated(n, m, b);
	fr_hist_observe(&n->metrics.apply_latency,
			     (double)(fr_mono_ns() - t0) / 1e9);
	n->metrics.rows_applied_remote += res->applied;
	n->metrics.rows_stale_remote += res->stale;
	n->metrics.rows_refused_remote += res->refused;
	for (uint32_t i = 0; i < b->n; i++)
		if (b->versions[i] > maxv)
			maxv = b->versions[i];
	if (maxv) {
		/* Local publishes must stamp above what we have seen. */
		if (fr_hlc_observe(&n->hlc, maxv) != FR_OK) {
			n->metrics.hlc_refused++;
			fr_log(FR_LOG_DEBUG, "node", "peer %u: %s", peer,
			       fr_errmsg());
		}
		wall = fr_wall_ms(NULL);
		if (res->applied && wall > FR_HLC_PHYS(maxv))
			fr_hist_observe(&n->metrics.replication_delay,
					     (double)(wall - FR_HLC_PHYS(maxv)) /
					     1e3);
	}
	return FR_OK;
}

void node_gossip_arm(struct node *n)
{
	uint64_t deadline, now, delay;
	struct timeval tv;

	if (!n->gossip || !n->gossip_ev)
		return;
	deadline = gossip_next_deadline(n->gossip);
	now = fr_mono_ms();
	delay = deadline > now ? deadline - now : 0;
	if (delay > NODE_GOSSIP_MAX_SLEEP_MS)
		delay = NODE_GOSSIP_MAX_SLEEP_MS;
	if (n->gossip_armed == now + delay &&
	    event_pending(n->gossip_ev, EV_TIMEOUT, NULL))
		return;
	n->gossip_armed = now + delay;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	event_add(n->gossip_ev, &tv);
}

static void gossip_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	n->gossip_armed = 0;
	gossip_tick(n->gossip, fr_mono_ms());
	node_gossip_flush(n);
}

static enum fr_err gossip_setup(struct node *n)
{
	const struct node_config *c = n->cfg;
	struct gossip_config gc = {
		.self_id = c->node_id,
		.digest_interval_ms = c->digest_interval_ms,
		.full_interval_ms = c->full_interval_ms,
		.pull_timeout_ms = c->pull_timeout_ms,
		.max_inflight_bytes = (uint64_t)c->max_inflight_mb << 20,
		.max_pull_bytes = c->max_pull_mb << 20,
		.max_frame = n->max_frame,
	};
	struct gossip_hooks hooks = {
		.apply = gossip_apply_cb,
		.arg = n,
	};
	enum fr_err rc;

	if (c->link_mbit) {
		/* On a rate-limited link what is requested must arrive well
		 * within pull_timeout_ms, or every pull times out, is asked
		 * again and the link fills with replies nobody waits for. */
		uint64_t budget = (uint64_t)c->link_mbit * 125000 *
			c->pull_timeout_ms / 2000;

		if (budget < (256u << 10))
			budget = 256u << 10;
		if (gc.max_inflight_bytes > budget)
			gc.max_inflight_bytes = budget;
		if (gc.max_pull_bytes > budget)
			gc.max_pull_bytes = (uint32_t)budget;
		fr_log(FR_LOG_INFO, "node", "gossip.link_mbit %u: at most %llu "
		       "bytes in flight per peer (half of what the link "
		       "carries in gossip.pull_timeout_ms)", c->link_mbit,
		       (unsigned long long)gc.max_inflight_bytes);
	}
	n->gossip = gossip_new(&gc, &hooks, &rc);
	if (!n->gossip)
		return fr_fail(rc, "gossip: %s", fr_errmsg());
	for (uint32_t i = 0; i < n->nmodels; i++) {
		rc = gossip_model_add(n->gossip, n->models[i].st);
		if (rc)
			return fr_fail(rc, "gossip: model '%s': %s",
				       n->models[i].def->name, fr_errmsg());
	}
	n->gossip_ev = event_new(n->base, -1, 0, gossip_timer_cb, n);
	if (!n->gossip_ev)
		return fr_fail(FR_ERR_NOMEM, "gossip timer");
	node_gossip_arm(n);
	return FR_OK;
}

/* ========================================================================
 * Backends: one table per store table, filled from the store at start.
 * While scanning, move the HLC past every version this node stamped, so a
 * restart (even with the wall clock set back) never reuses one.
 * ===================================================================== */

static enum fr_err backend_fill(struct node *n, struct node_model *m,
				uint32_t t, uint64_t *ids)
{
	const struct shard_table_def *td = &m->def->tables[t];
	const uint8_t *data = shard_store_table_data(m->st, t);
	struct node_table *tab = &m->tables[t];
	size_t rb = shard_row_bytes(td);
	enum fr_err rc;

	for (uint64_t r0 = 0; r0 < td->rows; r0 += NODE_FILL_CHUNK) {
		uint64_t end = r0 + NODE_FILL_CHUNK < td->rows ?
			r0 + NODE_FILL_CHUNK : td->rows;
		bool any = false;

		for (uint64_t r = r0; r < end; r++) {
			uint64_t v;
			uint32_t o;

			shard_store_row_version(m->st, t, r, &v, &o);
			ids[r - r0] = r;
			if (!v)
				continue;
			any = true;
			if (v > tab->max_version)
				tab->max_version = v;
			if (o == n->cfg->node_id) {
				if (v > n->hlc.last)
					n->hlc.last = v;
			} else if (fr_hlc_observe(&n->hlc, v) != FR_OK) {
				n->metrics.hlc_refused++;
			}
		}
		if (!any)
			continue;   /* never written: the backend is zero too */
		rc = gpu_restore(tab->gt, ids, data + r0 * rb, end - r0);
		if (rc)
			return fr_fail(rc, "model '%s' table '%s': backend fill: "
				       "%s", m->def->name, td->name,
				       fr_errmsg());
	}
	if (tab->max_version > m->max_version)
		m->max_version = tab->max_version;
	return FR_OK;
}

/* Backend table t of model m, filled from its store.  ids: scratch of
 * NODE_FILL_CHUNK entries. */
static enum fr_err table_backend_setup(struct node *n, struct node_model *m,
				       uint32_t t, uint64_t *ids)
{
	enum fr_err rc;

	{
		const struct shard_table_def *td = &m->def->tables[t];
		struct gpu_table_desc d = {
			.name = td->name,
			.rows = td->rows,
			.dim = td->dim,
			.dtype = (enum gpu_dtype)td->dtype,
			.device = (int)n->cfg->gpu_device,
		};
		uint64_t bytes = td->rows * shard_row_bytes(td);
		uint64_t budget = (uint64_t)n->cfg->gpu_budget_mb << 20;

		/* node.gpu_budget_mb covers every model together; the backend
		 * checks what one table needs against what the device has. */
		if (budget && bytes > budget - n->be_bytes)
			return fr_fail(FR_ERR_TOOBIG, "model '%s' table '%s': "
				       "needs %llu bytes, %llu of node."
				       "gpu_budget_mb (%u MiB) are left",
				       m->def->name, td->name,
				       (unsigned long long)bytes,
				       (unsigned long long)(budget -
							    n->be_bytes),
				       n->cfg->gpu_budget_mb);
		m->tables[t].gt = gpu_table_new(n->be, &d, &rc);
		if (!m->tables[t].gt)
			return fr_fail(rc, "model '%s' table '%s': %s",
				       m->def->name, td->name, fr_errmsg());
		m->tables[t].bytes = bytes;
		n->be_bytes += bytes;
		rc = backend_fill(n, m, t, ids);
		if (rc)
			return rc;
	}
	return FR_OK;
}

/* Backend tables of one model.  On error the tables made are left for
 * model_free. */
static enum fr_err model_backend_setup(struct node *n, struct node_model *m,
				       uint64_t *ids)
{
	enum fr_err rc;

	for (uint32_t t = 0; t < m->def->ntables; t++) {
		rc = table_backend_setup(n, m, t, ids);
		if (rc)
			return rc;
	}
	return FR_OK;
}

bool node_table_refill(struct node *n, struct node_model *m, uint32_t t)
{
	uint64_t *ids = malloc(NODE_FILL_CHUNK * sizeof(*ids));
	enum fr_err rc = FR_ERR_NOMEM;

	if (ids && m->tables[t].gt)
		rc = backend_fill(n, m, t, ids);
	free(ids);
	if (rc == FR_OK)
		return true;
	fr_log(FR_LOG_ERROR, "node", "model '%s' table '%s': refill from the "
	       "store failed: %s; rebuilding the table",
	       m->def->name, m->def->tables[t].name, fr_errmsg());
	return node_table_rebuild(n, m, t);
}

bool node_table_rebuild(struct node *n, struct node_model *m, uint32_t t)
{
	struct node_table *tab = &m->tables[t];
	uint64_t *ids = malloc(NODE_FILL_CHUNK * sizeof(*ids));
	enum fr_err rc = FR_ERR_NOMEM;

	n->metrics.backend_rebuilds++;
	if (tab->gt) {
		n->be_bytes -= tab->bytes;
		gpu_table_free(tab->gt);
		tab->gt = NULL;
	}
	if (ids)
		rc = table_backend_setup(n, m, t, ids);
	free(ids);
	if (rc) {
		fr_log(FR_LOG_ERROR, "node", "model '%s' table '%s': rebuild "
		       "failed, lookups of it fail until a restart: %s",
		       m->def->name, m->def->tables[t].name, fr_errmsg());
		if (tab->gt) {
			n->be_bytes -= tab->bytes;
			gpu_table_free(tab->gt);
			tab->gt = NULL;
		}
		return false;
	}
	node_baseline_refilled(n, m, t);
	fr_log(FR_LOG_WARN, "node", "model '%s' table '%s': rebuilt from the "
	       "store", m->def->name, m->def->tables[t].name);
	return true;
}

static void model_free(struct node *n, struct node_model *m)
{
	node_model_roles_fini(m);
	for (uint32_t t = 0; t < SHARD_TABLES_MAX; t++) {
		if (m->tables[t].gt)
			n->be_bytes -= m->tables[t].bytes;
		gpu_table_free(m->tables[t].gt);
	}
	shard_store_free(m->st);
	memset(m, 0, sizeof(*m));
}

static enum fr_err backends_setup(struct node *n)
{
	uint64_t *ids;
	enum fr_err rc = FR_OK;

	rc = gpu_backend_select(n->cfg->backend, &n->be);
	if (rc)
		return fr_fail(rc, "node.backend: %s", fr_errmsg());
	ids = malloc(NODE_FILL_CHUNK * sizeof(*ids));
	if (!ids)
		return fr_fail(FR_ERR_NOMEM, "backend fill");
	for (uint32_t i = 0; i < n->nmodels && !rc; i++)
		rc = model_backend_setup(n, &n->models[i], ids);
	if (!rc)
		fr_log(FR_LOG_INFO, "node", "backend '%s': %u model(s) "
		       "loaded; versions resume after %llu", n->be->name,
		       n->nmodels, (unsigned long long)n->hlc.last);
	free(ids);
	return rc;
}

enum fr_err node_model_add_live(struct node *n,
				const struct shard_model_def *def)
{
	struct node_model *m;
	uint64_t *ids;
	enum fr_err rc;

	if (node_model_find(n, def->name) >= 0)
		return fr_fail(FR_ERR_EXISTS, "model '%s' is served already",
			       def->name);
	if (n->nmodels == CONFIG_MODELS_MAX)
		return fr_fail(FR_ERR_RANGE, "model '%s': this node serves "
			       "%d models already, the most it can",
			       def->name, CONFIG_MODELS_MAX);
	rc = shard_model_validate(def);
	if (rc)
		return fr_fail(rc, "model '%s': %s", def->name, fr_errmsg());
	ids = malloc(NODE_FILL_CHUNK * sizeof(*ids));
	if (!ids)
		return fr_fail(FR_ERR_NOMEM, "model '%s'", def->name);
	m = &n->models[n->nmodels];
	rc = node_model_load(n, m, def);
	if (!rc)
		rc = model_backend_setup(n, m, ids);
	free(ids);
	if (!rc) {
		rc = gossip_model_add(n->gossip, m->st);
		if (rc)
			rc = fr_fail(rc, "gossip: model '%s': %s", def->name,
				     fr_errmsg());
	}
	if (rc) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", fr_errmsg());
		model_free(n, m);
		return fr_fail(rc, "%s", msg);
	}
	n->nmodels++;
	fr_log(FR_LOG_INFO, "node", "model '%s' added (%u table(s), %u "
	       "shards, priority %u)", def->name, def->ntables, def->shards,
	       def->priority);
	return FR_OK;
}

/* ========================================================================
 * Signals, timers, shutdown
 * ===================================================================== */

/* Shutdown waits (bounded) for clients to read their last acks, then
 * sends them FIN and waits (briefly) for theirs. */
static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;
	struct timeval tv = { 0, 20 * 1000 };
	uint64_t now = fr_mono_ms();

	if (!n->stop.lingering) {
		if (node_net_clients_busy(n) && now < n->stop.deadline_ms)
			goto out_again;
		if (node_net_clients_busy(n))
			fr_log(FR_LOG_WARN, "node", "shutdown: %u client(s) did "
			       "not read their last replies in %d ms",
			       node_net_clients_busy(n), NODE_STOP_FLUSH_MS);
		node_net_linger_clients(n);
		n->stop.lingering = true;
		n->stop.deadline_ms = now + NODE_STOP_LINGER_MS;
	}
	if (node_net_clients(n) == 0 || now >= n->stop.deadline_ms) {
		event_base_loopexit(n->base, NULL);
		return;
	}
out_again:
	event_add(n->stop.ev, &tv);
}

static void node_stop_begin(struct node *n, int sig)
{
	struct timeval now = { 0, 0 };
	enum fr_err rc;

	if (n->stop.stopping) {
		fr_log(FR_LOG_WARN, "node", "signal %d again: stopping now", sig);
		event_base_loopexit(n->base, NULL);
		return;
	}
	n->stop.stopping = true;
	fr_log(FR_LOG_INFO, "node", "signal %d: stopping (%u publish(es) in "
	       "flight)", sig, n->dur.npending);
	node_net_stop_accepting(n);
	/* Every queued publish becomes durable, is applied and acked; none
	 * is dropped.  The WAL syncs in milliseconds, so waiting here is
	 * short and nothing else needs the loop meanwhile. */
	if (n->dur.npending && n->dur.wal) {
		rc = shard_wal_wait(n->dur.wal, n->dur.last_lsn);
		if (rc)
			fr_log(FR_LOG_ERROR, "node", "shutdown: wal: %s",
			       fr_errmsg());
		node_durable_process(n);
	}
	/* Leave ZooKeeper first: our member and election znodes go at once,
	 * so our dc elects a new leader now, not a session timeout later. */
	node_membership_stop(n);
	if (n->roles.ev)
		event_del(n->roles.ev);
	/* Cancel transfers: peers re-pull from us or others later; the
	 * stores only ever took whole batches. */
	if (n->gossip_ev)
		event_del(n->gossip_ev);
	node_net_close_peers(n);
	n->stop.deadline_ms = fr_mono_ms() + NODE_STOP_FLUSH_MS;
	n->stop.ev = evtimer_new(n->base, stop_timer_cb, n);
	if (!n->stop.ev) {
		event_base_loopexit(n->base, NULL);
		return;
	}
	event_add(n->stop.ev, &now);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	node_stop_begin(arg, (int)sig);
}

static void chld_cb(evutil_socket_t sig, short what, void *arg)
{
	node_snapshot_reap(arg, false);
}

static void snap_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	node_snapshot_reap(n, false);   /* in case a SIGCHLD was merged */
	node_snapshot_bg(n);
}

static void mailbox_cb(void *msg, void *arg)
{
	/* msg is a static token: the news is in durable_seen. */
	node_durable_process(arg);
}

static enum fr_err events_setup(struct node *n)
{
	static const int sigs[2] = { SIGTERM, SIGINT };
	struct timeval tv;

	for (int i = 0; i < 2; i++) {
		n->stop.sig_ev[i] = evsignal_new(n->base, sigs[i], signal_cb, n);
		if (!n->stop.sig_ev[i] || evsignal_add(n->stop.sig_ev[i], NULL) != 0)
			return fr_fail(FR_ERR_IO, "signal %d: cannot watch",
				       sigs[i]);
	}
	n->snap.chld_ev = evsignal_new(n->base, SIGCHLD, chld_cb, n);
	if (!n->snap.chld_ev || evsignal_add(n->snap.chld_ev, NULL) != 0)
		return fr_fail(FR_ERR_IO, "SIGCHLD: cannot watch");
	if (n->cfg->snapshot_interval_s) {
		n->snap.ev = event_new(n->base, -1, EV_PERSIST, snap_timer_cb,
				       n);
		if (!n->snap.ev)
			return fr_fail(FR_ERR_NOMEM, "snapshot timer");
		tv.tv_sec = n->cfg->snapshot_interval_s;
		tv.tv_usec = 0;
		event_add(n->snap.ev, &tv);
	}
	return FR_OK;
}

/* ========================================================================
 * Life cycle
 * ===================================================================== */

struct node *node_new(const struct node_config *cfg, enum fr_err *err)
{
	struct node *n;
	enum fr_err rc;

	n = calloc(1, sizeof(*n));
	if (!n) {
		rc = fr_fail(FR_ERR_NOMEM, "node");
		goto out;
	}
	n->cfg = cfg;
	n->lock_fd = -1;
	n->start_mono_ms = fr_mono_ms();
	n->start_wall_ms = fr_wall_ms(NULL);
	n->max_frame = cfg->max_frame_mb << 20;
	fr_hlc_init(&n->hlc, cfg->node_id, NULL, NULL, 0);
	n->base = event_base_new();
	if (!n->base) {
		rc = fr_fail(FR_ERR_NOMEM, "event_base_new failed");
		goto out_free;
	}
	rc = node_idem_new(n);
	if (rc)
		goto out_free;
	rc = node_datadir_open(n);
	if (rc)
		goto out_free;
	fr_log(FR_LOG_INFO, "node", "node %u (dc %s, cluster %s) generation "
	       "%llu, data dir %s", cfg->node_id, cfg->dc, cfg->cluster,
	       (unsigned long long)n->generation, cfg->data_dir);
	rc = node_stores_load(n);
	if (rc)
		goto out_free;
	rc = backends_setup(n);
	if (rc)
		goto out_free;
	n->dur.mb = fr_mailbox_new(n->base, NODE_MAILBOX_CAP, mailbox_cb, n, &rc);
	if (!n->dur.mb)
		goto out_free;
	rc = node_wal_open(n);
	if (rc)
		goto out_free;
	rc = gossip_setup(n);
	if (rc)
		goto out_free;
	rc = node_net_start(n);
	if (rc)
		goto out_free;
	rc = node_http_start(n);
	if (rc)
		goto out_free;
	rc = node_roles_start(n);
	if (rc)
		goto out_free;
	rc = node_membership_start(n);
	if (rc)
		goto out_free;
	rc = events_setup(n);
	if (rc)
		goto out_free;
	if (err)
		*err = FR_OK;
	return n;

out_free:
	{
		/* node_free's own logging must not clobber the detail. */
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", fr_errmsg());
		node_free(n);
		fr_fail(rc, "%s", msg);
	}
out:
	if (err)
		*err = rc;
	return NULL;
}

enum fr_err node_run(struct node *n)
{
	enum fr_err rc;

	fr_log(FR_LOG_INFO, "node", "serving on %s:%u (admin %s:%u)",
	       n->cfg->listen.host, n->cfg->listen.port, n->cfg->admin.host,
	       n->cfg->admin.port);
	event_base_dispatch(n->base);
	node_net_close_all(n);
	rc = node_snapshot_sync(n);
	if (rc)
		fr_log(FR_LOG_ERROR, "node", "shutdown snapshot failed: %s",
		       fr_errmsg());
	shard_wal_close(n->dur.wal);
	n->dur.wal = NULL;
	fr_log(FR_LOG_INFO, "node", "stopped (applied lsn %llu)",
	       (unsigned long long)n->dur.applied_lsn);
	return rc;
}

void node_free(struct node *n)
{
	struct node_pending *p, *next;

	if (!n)
		return;
	node_membership_stop(n);
	node_roles_stop(n);
	node_http_stop(n);
	node_net_fini(n);
	if (n->snap.child) {
		kill(n->snap.child, SIGKILL);
		node_snapshot_reap(n, true);
	}
	/* The writer thread stops before the mailbox it posts to goes. */
	shard_wal_close(n->dur.wal);
	n->dur.wal = NULL;
	fr_mailbox_free(n->dur.mb, NULL);
	for (p = n->dur.pend_head; p; p = next) {
		next = p->next;
		free(p->rec);
		free(p);
	}
	gossip_free(n->gossip);
	if (n->gossip_ev)
		event_free(n->gossip_ev);
	if (n->stop.ev)
		event_free(n->stop.ev);
	if (n->snap.ev)
		event_free(n->snap.ev);
	if (n->snap.chld_ev)
		event_free(n->snap.chld_ev);
	for (int i = 0; i < 2; i++)
		if (n->stop.sig_ev[i])
			event_free(n->stop.sig_ev[i]);
	for (uint32_t i = 0; i < n->nmodels; i++)
		model_free(n, &n->models[i]);
	free(n->models);
	node_idem_free(n);
	free(n->mirror.won);
	free(n->mirror.rows);
	free(n->mirror.vers);
	free(n->mirror.vals);
	if (n->base)
		event_base_free(n->base);
	node_datadir_close(n);
	free(n);
}
