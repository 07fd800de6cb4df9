/*
 * roles.c — a node's role per model (serving, canary, baseline), the
 * baseline's lag buffer (baseline.c) in front of the table backend, and
 * the per-model status (role, rollback epoch, cut, undo horizon) this
 * node publishes in its member znode for `freshet-witness` and
 * `freshet rollback --wait` (docs/design.md §6).
 *
 * node.canary / node.baseline give a model's role; an entry for this
 * node in ZooKeeper's models/<m>/roles overrides them.  A canary is a
 * serving node that the witness watches.  A baseline disseminates like
 * any replica (its store is current), but the rows that win in its store
 * go through baseline.c's queue and reach the backend, where lookups are
 * served, only once older than baseline.lag_ms.
 *
 * Not here: applying rollback directives (rollback.c).  Everything here
 * runs on the loop thread.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <xxhash.h>

#include "node/baseline.h"
#include "node/node_int.h"

#define MOD "node"

/* How often baselines release rows and the status is looked at, ms. */
#define ROLES_TICK_MS 100
/* The status is re-published at most this often when only cuts and
 * horizons moved (an epoch or role change goes out at once), ms: every
 * second on a baseline (its cut is what a rollback goes back to), every
 * ten otherwise (a ZooKeeper write per node; thousands of nodes). */
#define STATUS_REFRESH_BASELINE_MS 1000
#define STATUS_REFRESH_MS 10000

static const char *const role_names[] = {
	[NODE_ROLE_SERVING] = "serving",
	[NODE_ROLE_CANARY] = "canary",
	[NODE_ROLE_BASELINE] = "baseline",
};

const char *node_role_name(enum node_role r)
{
	return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ?
	       role_names[r] : "?";
}

static bool role_parse(const char *s, enum node_role *out)
{
	for (unsigned i = 0; i < sizeof(role_names) / sizeof(role_names[0]);
	     i++)
		if (strcmp(s, role_names[i]) == 0) {
			*out = (enum node_role)i;
			return true;
		}
	return false;
}

enum node_role node_role_configured(const struct node *n,
				    const struct node_model *m)
{
	if (node_config_list_has(n->cfg->baseline, m->def->name))
		return NODE_ROLE_BASELINE;
	if (node_config_list_has(n->cfg->canary, m->def->name))
		return NODE_ROLE_CANARY;
	return NODE_ROLE_SERVING;
}

/* ========================================================================
 * The baseline's buffer
 * ===================================================================== */

/* Tell the buffer what the backend of table t serves now: the store's
 * version of every row (the backend was just filled from the store). */
static void note_served_table(struct node *n, struct node_model *m,
			      uint32_t t)
{
	const struct shard_table_def *td = &m->def->tables[t];
	uint64_t rows[512], vers[512];
	uint32_t k = 0;

	for (uint64_t r = 0; r < td->rows; r++) {
		uint32_t o;

		shard_store_row_version(m->st, t, r, &vers[k], &o);
		if (!vers[k])
			continue;
		rows[k++] = r;
		if (k == 512) {
			node_baseline_note_served(m->bl, t, rows, vers, k);
			k = 0;
		}
	}
	if (k)
		node_baseline_note_served(m->bl, t, rows, vers, k);
}

void node_baseline_refilled(struct node *n, struct node_model *m, uint32_t t)
{
	if (!m->bl)
		return;
	note_served_table(n, m, t);
	if (m->max_version > m->bl_floor)
		m->bl_floor = m->max_version;
}

void node_model_roles_fini(struct node_model *m)
{
	node_baseline_free(m->bl);
	m->bl = NULL;
}

enum fr_err node_model_role_set(struct node *n, struct node_model *m,
				enum node_role r, bool from_zk)
{
	enum node_role old = m->role;

	m->role_override = from_zk;
	if (r == old && (r != NODE_ROLE_BASELINE || m->bl))
		return FR_OK;
	if (r == NODE_ROLE_BASELINE) {
		uint64_t rows[SHARD_TABLES_MAX];
		size_t rb[SHARD_TABLES_MAX];
		enum fr_err rc;

		for (uint32_t t = 0; t < m->def->ntables; t++) {
			rows[t] = m->def->tables[t].rows;
			rb[t] = shard_row_bytes(&m->def->tables[t]);
		}
		m->bl = node_baseline_new(m->def->ntables, rows, rb,
				     n->cfg->baseline_lag_ms,
				     (uint64_t)n->cfg->baseline_buffer_mb << 20,
				     &rc);
		if (!m->bl)
			return fr_fail(rc, "model '%s': baseline buffer: %s",
				       m->def->name, fr_errmsg());
		/* The backend serves the store as it is: that is the cut
		 * until the lag has passed it. */
		m->bl_floor = m->max_version;
		for (uint32_t t = 0; t < m->def->ntables; t++)
			note_served_table(n, m, t);
	} else if (m->bl) {
		/* Serve everything now: the backend gets the store. */
		node_model_roles_fini(m);
		for (uint32_t t = 0; t < m->def->ntables; t++)
			if (m->tables[t].gt)
				node_table_refill(n, m, t);
	}
	m->role = r;
	fr_log(FR_LOG_INFO, MOD, "model '%s': role %s%s%s", m->def->name,
	       node_role_name(r), from_zk ? " (ZooKeeper override)" : "",
	       r == NODE_ROLE_BASELINE ? ", serving updates once they are "
	       "older than baseline.lag_ms" : "");
	node_status_publish(n, true);
	return FR_OK;
}

enum fr_err node_mirror_rows(struct node *n, struct node_model *m,
			     uint32_t t, const uint64_t *rows,
			     const uint64_t *versions, const void *values,
			     uint32_t k)
{
	if (m->bl)
		return node_baseline_push(m->bl, t, rows, versions, values, k) ==
		       FR_ERR_RANGE ? FR_ERR_RANGE : FR_OK;
	return gpu_apply(m->tables[t].gt, rows, versions, values, k);
}

struct release_ctx {
	struct node *n;
	struct node_model *m;
	bool rebuild[SHARD_TABLES_MAX];   /* after the release: the callback
					   * must not call into the buffer */
};

static void release_cb(uint32_t t, const uint64_t *rows,
		       const uint64_t *versions, const void *values,
		       uint32_t k, void *arg)
{
	struct release_ctx *x = arg;
	struct node_table *tab = &x->m->tables[t];

	if (!tab->gt)
		return;
	if (gpu_apply(tab->gt, rows, versions, values, k) != FR_OK) {
		fr_log(FR_LOG_ERROR, MOD, "model '%s' table %u: backend "
		       "apply of %u released rows failed: %s; rebuilding",
		       x->m->def->name, t, k, fr_errmsg());
		x->rebuild[t] = true;
	}
}

static void release_rebuilds(struct release_ctx *x)
{
	for (uint32_t t = 0; t < x->m->def->ntables; t++)
		if (x->rebuild[t])
			node_table_rebuild(x->n, x->m, t);
}

/* Overflowed and due: serve every store row newer than what is served
 * and not newer than the catch-up cut. */
static void baseline_catchup(struct node *n, struct node_model *m,
			     uint64_t now)
{
	uint64_t cut = node_baseline_catchup_cut(m->bl, now), copied = 0;

	for (uint32_t t = 0; t < m->def->ntables; t++) {
		const struct shard_table_def *td = &m->def->tables[t];
		size_t rb = shard_row_bytes(td);
		uint64_t rows[256], vers[256];
		uint32_t k = 0;

		for (uint64_t r = 0; r <= td->rows; r++) {
			uint64_t v = 0;
			uint32_t o;

			if (r < td->rows) {
				shard_store_row_version(m->st, t, r, &v, &o);
				if (v && v <= cut &&
				    v > node_baseline_served_version(m->bl, t, r)) {
					rows[k] = r;
					vers[k++] = v;
				}
			}
			if (k && (k == 256 || r == td->rows)) {
				struct release_ctx rx = { .n = n, .m = m };
				uint8_t *vals = malloc(k * rb);

				if (!vals) {
					fr_log(FR_LOG_ERROR, MOD, "model '%s': "
					       "baseline catch-up: no memory; "
					       "trying again", m->def->name);
					return;
				}
				for (uint32_t i = 0; i < k; i++)
					memcpy(vals + i * rb,
					       shard_store_row(m->st, t,
							       rows[i]), rb);
				release_cb(t, rows, vers, vals, k, &rx);
				release_rebuilds(&rx);
				node_baseline_note_served(m->bl, t, rows, vers, k);
				free(vals);
				copied += k;
				k = 0;
			}
		}
	}
	node_baseline_catchup_done(m->bl, now);
	fr_log(FR_LOG_WARN, MOD, "model '%s': baseline buffer overflowed; "
	       "caught up from the store (%llu rows, cut %llu)", m->def->name,
	       (unsigned long long)copied, (unsigned long long)cut);
}

uint64_t node_model_cut(const struct node *n, const struct node_model *m)
{
	uint64_t c;

	if (!m->bl)
		return m->max_version;
	c = node_baseline_cut(m->bl, fr_wall_ms(NULL));
	return c > m->bl_floor ? c : m->bl_floor;
}


void node_model_roles_view(struct node *n, struct node_model *m,
			   const struct topo_model_extra *x)
{
	enum node_role want = node_role_configured(n, m);
	bool from_zk = false;

	for (uint32_t i = 0; x && i < x->nroles; i++) {
		enum node_role r;

		if (x->roles[i].node_id != n->cfg->node_id)
			continue;
		if (role_parse(x->roles[i].role, &r)) {
			want = r;
			from_zk = true;
		}
	}
	if (want != m->role || from_zk != m->role_override ||
	    (want == NODE_ROLE_BASELINE && !m->bl))
		if (node_model_role_set(n, m, want, from_zk) != FR_OK)
			fr_log(FR_LOG_ERROR, MOD, "model '%s': role %s not "
			       "taken: %s", m->def->name,
			       node_role_name(want), fr_errmsg());
}

/* ========================================================================
 * Status in ZooKeeper, and the timer
 * ===================================================================== */

void node_status_publish(struct node *n, bool force)
{
	struct topo_model_status s[TOPO_MEMBER_MODELS_MAX];
	uint64_t now = fr_mono_ms(), h;
	uint32_t k = 0;

	if (!n->zk.topo)
		return;
	if (!force) {
		uint64_t every = STATUS_REFRESH_MS;

		for (uint32_t i = 0; i < n->nmodels; i++)
			if (n->models[i].bl)
				every = STATUS_REFRESH_BASELINE_MS;
		if (now < n->roles.status_pub_ms + every)
			return;
	}
	memset(s, 0, sizeof(s));
	for (uint32_t i = 0; i < n->nmodels && k < TOPO_MEMBER_MODELS_MAX;
	     i++) {
		struct node_model *m = &n->models[i];

		snprintf(s[k].model, sizeof(s[k].model), "%s", m->def->name);
		snprintf(s[k].role, sizeof(s[k].role), "%s",
			 node_role_name(m->role));
		s[k].epoch = shard_store_rollback_epoch(m->st);
		s[k].cut = node_model_cut(n, m);
		s[k].horizon = shard_store_undo_horizon(m->st);
		k++;
	}
	h = XXH3_64bits(s, k * sizeof(s[0]));
	n->roles.status_pub_ms = now;
	if (h == n->roles.status_pub_hash && !force)
		return;
	if (topo_set_status(n->zk.topo, s, k) == FR_OK)
		n->roles.status_pub_hash = h;
	else
		fr_log(FR_LOG_WARN, MOD, "status for ZooKeeper: %s",
		       fr_errmsg());
}

static void roles_tick(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;
	uint64_t now = fr_wall_ms(NULL);

	(void)fd;
	(void)what;
	for (uint32_t i = 0; i < n->nmodels; i++) {
		struct node_model *m = &n->models[i];
		struct release_ctx rx = { .n = n, .m = m };

		if (!m->bl)
			continue;
		node_baseline_release(m->bl, now, release_cb, &rx);
		release_rebuilds(&rx);
		if (node_baseline_catchup_due(m->bl, now))
			baseline_catchup(n, m, now);
	}
	node_status_publish(n, false);
}

enum fr_err node_roles_start(struct node *n)
{
	struct timeval tv = { 0, ROLES_TICK_MS * 1000 };

	for (uint32_t i = 0; i < n->nmodels; i++) {
		struct node_model *m = &n->models[i];
		enum node_role r = node_role_configured(n, m);

		if (r != m->role || (r == NODE_ROLE_BASELINE && !m->bl)) {
			enum fr_err rc = node_model_role_set(n, m, r, false);

			if (rc)
				return rc;
		}
	}
	n->roles.ev = event_new(n->base, -1, EV_PERSIST, roles_tick, n);
	if (!n->roles.ev || event_add(n->roles.ev, &tv))
		return fr_fail(FR_ERR_NOMEM, "roles timer");
	return FR_OK;
}

void node_roles_stop(struct node *n)
{
	if (n->roles.ev) {
		event_free(n->roles.ev);
		n->roles.ev = NULL;
	}
}

