/*
 * membership.c — what freshetd does with its ZooKeeper view (topology/):
 * which peers it links with, which models it serves, and whether it leads
 * its data centre.  Without zookeeper.hosts none of this runs and the node
 * keeps its static [peers] (docs/design.md §4, "embedded default").
 *
 * The peer set (docs/design.md §4: only leaders cross the WAN):
 *
 *   wanted = members of our dc (but us)
 *          + while we lead our dc: the leader of every other dc
 *   static [peers] are always kept, whatever the view says.
 *
 * A view arrives whole, on the loop thread, each time something in it
 * changes (topo_view_fn).  Peers are added at once; a peer that left the
 * view is dropped only while the session is connected, since a
 * disconnected view is merely the last one we saw.  Losing the lead (the
 * self-demotion timer, an expired session, a new election) drops every
 * link to other dcs at once, so a deposed leader stops pulling across the
 * WAN even before anyone tells it.
 *
 * Models in the registry (models/<name>) are added live; their definitions
 * are cached in data_dir/models.json first, so a restart replays their
 * WAL records before ZooKeeper has answered.  A registry model that clashes
 * with a [model] section of the config is refused (logged, counted); the
 * config's definition stays.
 *
 * Not here: the ZooKeeper session, election and znode parsing
 * (topology/), sockets and HELLO checks (net.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "node/node_int.h"

#define MODELS_CACHE "models.json"

/* ========================================================================
 * data_dir/models.json: {"models": [<model JSON as in ZooKeeper>, ...]}
 * ===================================================================== */

static int cache_path(const struct node *n, char *buf, size_t cap)
{
	int k = snprintf(buf, cap, "%s/%s", n->cfg->data_dir, MODELS_CACHE);

	return k < 0 || (size_t)k >= cap ? -1 : 0;
}

uint32_t node_models_cache_load(struct node *n, struct shard_model_def *defs,
				uint32_t cap)
{
	char path[CONFIG_PATH_MAX + 32];
	json_error_t je;
	json_t *root, *arr;
	uint32_t k = 0;
	size_t i;

	if (cache_path(n, path, sizeof(path)))
		return 0;
	root = json_load_file(path, 0, &je);
	if (!root) {
		if (access(path, F_OK) == 0)
			fr_log(FR_LOG_ERROR, "node", "%s: not loaded, line %d: "
			       "%s; models from ZooKeeper come back when it "
			       "answers (their WAL records are skipped)", path,
			       je.line, je.text);
		return 0;
	}
	arr = json_object_get(root, "models");
	if (!json_is_array(arr)) {
		fr_log(FR_LOG_ERROR, "node", "%s: no \"models\" array, "
		       "ignored", path);
		json_decref(root);
		return 0;
	}
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *m = json_array_get(arr, i);
		json_t *name = json_object_get(m, "name");
		char *text;

		if (k == cap)
			break;
		text = json_dumps(m, JSON_COMPACT);
		if (!text || !json_is_string(name) ||
		    topo_model_decode(json_string_value(name), text,
				      strlen(text), &defs[k]) != FR_OK)
			fr_log(FR_LOG_ERROR, "node", "%s: model #%zu ignored: "
			       "%s", path, i, text ? fr_errmsg() : "no memory");
		else
			k++;
		free(text);
	}
	json_decref(root);
	return k;
}

static bool in_config(const struct node *n, const char *name)
{
	for (uint32_t c = 0; c < n->cfg->nmodels; c++)
		if (strcmp(n->cfg->models[c].name, name) == 0)
			return true;
	return false;
}

/* Rewrite the cache with every model not from the config, plus `extra`
 * (a model about to be added; may be NULL): temp file, fsync, rename,
 * fsync of the dir.  Called before the model is added, so that no WAL
 * record of it can exist that a restart could not replay.  A failure is
 * logged: the model is served anyway, it is only its WAL records after a
 * restart without ZooKeeper that would wait. */
static void cache_save(struct node *n, const struct shard_model_def *extra)
{
	char path[CONFIG_PATH_MAX + 32], tmp[CONFIG_PATH_MAX + 40];
	json_t *root = json_object(), *arr = json_array();
	const char *why = "no memory";
	char *text = NULL;
	int fd = -1;
	size_t len;

	if (!root || !arr || cache_path(n, path, sizeof(path)))
		goto out_fail;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	for (uint32_t i = 0; i <= n->nmodels; i++) {
		const struct shard_model_def *d = i < n->nmodels ?
			n->models[i].def : extra;
		enum fr_err e;
		char *one;
		json_t *j;

		if (!d || in_config(n, d->name))
			continue;
		one = topo_model_encode(d, &e);
		j = one ? json_loads(one, 0, NULL) : NULL;
		free(one);
		if (!j)
			goto out_fail;
		json_array_append_new(arr, j);
	}
	json_object_set_new(root, "models", arr);
	arr = NULL;
	text = json_dumps(root, JSON_INDENT(1));
	if (!text)
		goto out_fail;
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 ||
	    close(fd) != 0) {
		why = strerror(errno);
		if (fd >= 0)
			close(fd);
		fd = -1;
		unlink(tmp);
		goto out_fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		why = strerror(errno);
		unlink(tmp);
		goto out_fail;
	}
	fd = open(n->cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);   /* the rename itself durable; best effort */
		close(fd);
	}
	free(text);
	json_decref(root);
	return;
out_fail:
	fr_log(FR_LOG_ERROR, "node", "%s/%s: not written (%s); a restart "
	       "without ZooKeeper will not replay registry models' records",
	       n->cfg->data_dir, MODELS_CACHE, why);
	free(text);
	json_decref(arr);
	json_decref(root);
}

/* ========================================================================
 * The view
 * ===================================================================== */

static bool def_same(const struct shard_model_def *a,
		     const struct shard_model_def *b)
{
	if (a->shards != b->shards || a->ntables != b->ntables)
		return false;
	for (uint32_t t = 0; t < a->ntables; t++)
		if (strcmp(a->tables[t].name, b->tables[t].name) != 0 ||
		    a->tables[t].rows != b->tables[t].rows ||
		    a->tables[t].dim != b->tables[t].dim ||
		    a->tables[t].dtype != b->tables[t].dtype)
			return false;
	return true;
}

static void def_text(const struct shard_model_def *d, char *buf, size_t cap)
{
	size_t k = (size_t)snprintf(buf, cap, "%u shards", d->shards);

	for (uint32_t t = 0; t < d->ntables && k < cap; t++)
		k += (size_t)snprintf(buf + k, cap - k, ", %s:%llu:%u:%s",
				      d->tables[t].name,
				      (unsigned long long)d->tables[t].rows,
				      d->tables[t].dim,
				      shard_dtype_name(d->tables[t].dtype));
}

static void view_models(struct node *n, const struct topo_view *v)
{
	for (uint32_t i = 0; i < v->nmodels; i++) {
		const struct shard_model_def *d = &v->models[i];
		const struct topo_model_extra *x = v->extra ? &v->extra[i] :
						   NULL;
		int mi = node_model_find(n, d->name);

		if (mi >= 0) {
			struct node_model *m = &n->models[mi];
			char ours[256], theirs[256];

			if (def_same(m->def, d) && !m->registry_clash) {
				/* Roles and directives before any peer of
				 * this view is dialed (view_peers runs
				 * after us). */
				node_model_view(n, m, x);
				continue;
			}
			if (m->registry_clash)
				continue;
			/* Peers that serve the registry's definition would
			 * send shards and rows that do not fit ours, and be
			 * struck (their links dropped) for it: stop
			 * exchanging this model; lookups and publishes here
			 * go on from our own definition. */
			m->registry_clash = true;
			n->zk.models_refused++;
			def_text(m->def, ours, sizeof(ours));
			def_text(d, theirs, sizeof(theirs));
			gossip_model_quarantine(n->gossip, m->st);
			fr_log(FR_LOG_ERROR, "node", "model '%s': the ZooKeeper "
			       "registry defines it as (%s), this node serves "
			       "(%s) from its %s; keeping ours and no longer "
			       "exchanging it with peers (fix the %s, then "
			       "restart)", d->name, theirs, ours,
			       in_config(n, d->name) ? "config" :
			       "models.json cache",
			       in_config(n, d->name) ? "config" :
			       "data dir");
			continue;
		}
		cache_save(n, d);
		if (node_model_add_live(n, d) != FR_OK) {
			n->zk.models_refused++;
			fr_log(FR_LOG_ERROR, "node", "model '%s' from "
			       "ZooKeeper not served: %s", d->name,
			       fr_errmsg());
			cache_save(n, NULL);
			continue;
		}
		node_model_view(n, &n->models[n->nmodels - 1], x);
	}
}

struct want {
	uint32_t id;
	const char *addr;
	const char *dc;
};

static int want_find(const struct want *w, uint32_t nw, uint32_t id)
{
	for (uint32_t i = 0; i < nw; i++)
		if (w[i].id == id)
			return (int)i;
	return -1;
}

static bool addr_same(const struct node_config_addr *a, const char *text)
{
	struct node_config_addr b;

	return node_config_parse_addr(text, &b) == FR_OK && a->port == b.port &&
	       strcmp(a->host, b.host) == 0;
}

static void view_peers(struct node *n, const struct topo_view *v)
{
	const struct node_config *cfg = n->cfg;
	struct want *w;
	uint32_t nw = 0;

	/* A model learnt from ZooKeeper before a restart takes no rows from
	 * peers until a view has told us its rollback directives
	 * (docs/design.md §6: a node that was down catches up on
	 * directives first). */
	for (uint32_t i = 0; i < n->nmodels; i++) {
		struct node_model *m = &n->models[i];
		bool listed = false;

		if (!m->from_registry || m->directives_seen ||
		    m->registry_clash)
			continue;
		for (uint32_t k = 0; k < v->nmodels && !listed; k++)
			listed = strcmp(v->models[k].name, m->def->name) == 0;
		if (listed || v->connected) {
			/* Listed: view_models has applied what the view had.
			 * Not listed in a connected view: gone from the
			 * registry (or unreadable there), no directives will
			 * come; do not hold the peers for it. */
			if (!listed)
				fr_log(FR_LOG_WARN, "node", "model '%s': not "
				       "in ZooKeeper's registry; serving it "
				       "without waiting for rollback "
				       "directives", m->def->name);
			m->directives_seen = true;
			continue;
		}
		{
			if (!n->zk.peers_held)
				fr_log(FR_LOG_INFO, "node", "model '%s': "
				       "waiting for its rollback directives "
				       "from ZooKeeper before dialing peers",
				       n->models[i].def->name);
			n->zk.peers_held = true;
			return;
		}
	}
	n->zk.peers_held = false;

	w = calloc((size_t)v->nmembers + v->nleaders + 1, sizeof(*w));
	if (!w) {
		fr_log(FR_LOG_ERROR, "node", "topology view: no memory for "
		       "the peer set; keeping the old one");
		return;
	}
	for (uint32_t i = 0; i < v->nmembers; i++) {
		const struct topo_member *m = &v->members[i];

		if (m->node_id == cfg->node_id || strcmp(m->dc, cfg->dc) != 0 ||
		    want_find(w, nw, m->node_id) >= 0)
			continue;
		w[nw++] = (struct want){ m->node_id, m->addr, m->dc };
	}
	if (v->leader)
		for (uint32_t i = 0; i < v->nleaders; i++) {
			const struct topo_leader *l = &v->leaders[i];

			if (strcmp(l->dc, cfg->dc) == 0 ||
			    l->node_id == cfg->node_id ||
			    want_find(w, nw, l->node_id) >= 0)
				continue;
			w[nw++] = (struct want){ l->node_id, l->addr, l->dc };
		}
	/* Drop what is no longer wanted (or moved to another address). */
	for (uint32_t i = 0; i < n->net.npeers;) {
		struct node_peer *p = n->net.peers[i];
		int k = want_find(w, nw, p->id);
		bool moved = k >= 0 && !addr_same(&p->addr, w[k].addr);
		bool cross = k < 0 && p->dc[0] && strcmp(p->dc, cfg->dc) != 0;

		/* Links to other dcs go as soon as we stop leading, even on
		 * a disconnected view: that is what demotion means. */
		if (!p->is_static && (moved || (k < 0 && (v->connected ||
							 cross)))) {
			fr_log(FR_LOG_INFO, "node", "peer %u (dc %s) %s", p->id,
			       p->dc[0] ? p->dc : "?",
			       moved ? "moved to a new address" :
			       "left the view");
			n->zk.peer_changes++;
			node_peer_remove(n, p->id);
			continue;   /* the slot now holds another peer */
		}
		i++;
	}
	for (uint32_t i = 0; i < nw; i++) {
		struct node_config_addr a;

		if (node_peer_find(n, w[i].id))
			continue;
		if (node_config_parse_addr(w[i].addr, &a) != FR_OK) {
			fr_log(FR_LOG_WARN, "node", "peer %u (dc %s): address "
			       "'%s' from ZooKeeper: %s; not dialed", w[i].id,
			       w[i].dc, w[i].addr, fr_errmsg());
			continue;
		}
		if (node_peer_add(n, w[i].id, &a, w[i].dc, false) == FR_OK) {
			n->zk.peer_changes++;
			fr_log(FR_LOG_INFO, "node", "peer %u (dc %s, %s) "
			       "joined the view", w[i].id, w[i].dc,
			       w[i].addr);
		} else {
			fr_log(FR_LOG_WARN, "node", "peer %u: %s", w[i].id,
			       fr_errmsg());
		}
	}
	free(w);
}

static void view_cb(const struct topo_view *v, void *arg)
{
	struct node *n = arg;
	struct topo_leader *l = NULL;

	if (n->stop.stopping)
		return;
	if (v->connected != n->zk.connected)
		fr_log(FR_LOG_INFO, "node", "ZooKeeper %s", v->connected ?
		       "connected" : "disconnected");
	n->zk.connected = v->connected;
	if (v->session_timeout_ms)
		n->zk.session_ms = v->session_timeout_ms;
	n->zk.nmembers = v->nmembers;
	if (v->nleaders) {
		l = malloc(v->nleaders * sizeof(*l));
		if (!l) {
			fr_log(FR_LOG_ERROR, "node", "topology view: no memory "
			       "for the leaders; keeping the old ones");
		} else {
			memcpy(l, v->leaders, v->nleaders * sizeof(*l));
			free(n->zk.leaders);
			n->zk.leaders = l;
			n->zk.nleaders = v->nleaders;
		}
	} else {
		free(n->zk.leaders);
		n->zk.leaders = NULL;
		n->zk.nleaders = 0;
	}
	if (v->leader != n->zk.leader ||
	    (v->leader && v->epoch != n->zk.epoch))
		fr_log(FR_LOG_INFO, "node", v->leader ? "leading dc %s "
		       "(epoch %llu)" : "not leading dc %s (epoch %llu "
		       "ended)", n->cfg->dc, (unsigned long long)(v->leader ?
		       v->epoch : n->zk.epoch));
	n->zk.leader = v->leader;
	n->zk.epoch = v->leader ? v->epoch : 0;
	view_models(n, v);
	view_peers(n, v);
	node_gossip_flush(n);
}

/* ========================================================================
 * Start and stop
 * ===================================================================== */

enum fr_err node_membership_start(struct node *n)
{
	const struct node_config *c = n->cfg;
	struct topo_config tc;
	enum fr_err rc;

	if (!c->zk_hosts[0])
		return FR_OK;
	memset(&tc, 0, sizeof(tc));
	snprintf(tc.hosts, sizeof(tc.hosts), "%s", c->zk_hosts);
	snprintf(tc.cluster, sizeof(tc.cluster), "%s", c->cluster);
	tc.self.node_id = c->node_id;
	snprintf(tc.self.dc, sizeof(tc.self.dc), "%s", c->dc);
	{
		const struct node_config_addr *ad = c->advertise.port ?
			&c->advertise : &c->listen;

		snprintf(tc.self.addr, sizeof(tc.self.addr),
			 strchr(ad->host, ':') ? "[%s]:%u" : "%s:%u",
			 ad->host, ad->port);
	}
	snprintf(tc.self.admin, sizeof(tc.self.admin),
		 strchr(c->admin.host, ':') ? "[%s]:%u" : "%s:%u",
		 c->admin.host, c->admin.port);
	tc.candidate = strcmp(c->zk_candidate, "yes") == 0;
	snprintf(tc.self.roles, sizeof(tc.self.roles), "%s",
		 tc.candidate ? "serving,candidate" : "serving");
	tc.self.generation = n->generation;
	tc.session_timeout_ms = c->zk_session_timeout_ms;
	n->zk.topo = topo_new(n->base, &tc, view_cb, n, &rc);
	if (!n->zk.topo)
		return fr_fail(rc, "zookeeper: %s", fr_errmsg());
	fr_log(FR_LOG_INFO, "node", "ZooKeeper %s, cluster %s: joining dc %s%s",
	       c->zk_hosts, c->cluster, c->dc,
	       tc.candidate ? " as a leader candidate" : "");
	return FR_OK;
}

void node_membership_stop(struct node *n)
{
	if (!n->zk.topo)
		return;
	topo_free(n->zk.topo);
	n->zk.topo = NULL;
	n->zk.connected = false;
	n->zk.leader = false;
	n->zk.epoch = 0;
	free(n->zk.leaders);
	n->zk.leaders = NULL;
	n->zk.nleaders = 0;
}
