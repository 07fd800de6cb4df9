/*
 * status_compute.c — the pure middle of `freshet status`: from what one
 * round gathered (member and leader znodes, the registry, each member's
 * /status reply) to the per-DC, per-node and per-model rows and every
 * flag.  No I/O: tests/unit/test_cli_status.c builds reports by hand and
 * checks the flags.
 *
 * Freshness.  Versions are HLC values (ms in the high 48 bits).  freshest
 * is the largest models[].max_version over every node that answered; a
 * node's lag is (freshest >> 16) - (its max_version >> 16).  For shards,
 * the vectors of all nodes are merged (the per-origin maximum, per table
 * and shard); a node is behind on shard s when for some table its vector
 * lacks a version some origin has in the merged one.  A DC's figures are
 * its slowest node's.
 *
 * Everything a node sends is untrusted: fields are type- and
 * range-checked, a reply that is not the expected JSON marks the node
 * "bad-reply", and strings are made printable (fr_show) before they are
 * kept.  Not here: reading ZooKeeper or HTTP (status_gather.c), printing
 * (status_render.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cliutil.h"
#include "cli/status_int.h"
#include "common/common.h"

/* ========================================================================
 * The report
 * ===================================================================== */

void cli_status_problem(struct cli_status_report *r, const char *kind,
		    const char *dc, uint32_t node, const char *model,
		    const char *fmt, ...)
{
	struct cli_status_problem *p;
	va_list ap;

	if (r->nproblems == r->capproblems) {
		uint32_t cap = r->capproblems ? r->capproblems * 2 : 16;
		struct cli_status_problem *np = realloc(r->problems,
						    cap * sizeof(*np));

		if (!np)
			return;   /* the exit code still says unhealthy */
		r->problems = np;
		r->capproblems = cap;
	}
	p = &r->problems[r->nproblems++];
	memset(p, 0, sizeof(*p));
	snprintf(p->kind, sizeof(p->kind), "%s", kind);
	snprintf(p->dc, sizeof(p->dc), "%s", dc ? dc : "");
	p->node = node;
	snprintf(p->model, sizeof(p->model), "%s", model ? model : "");
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
}

void cli_status_report_fini(struct cli_status_report *r)
{
	for (uint32_t i = 0; i < r->nmodels; i++) {
		struct cli_status_model *md = &r->models[i];

		for (uint32_t k = 0; md->per && k < r->nmembers; k++)
			free(md->per[k].vvhash);
		free(md->per);
		free(md->dcs);
		free(md->rb.canaries);
	}
	free(r->models);
	for (uint32_t i = 0; r->nodes && i < r->nmembers; i++)
		json_decref(r->nodes[i].st);
	free(r->nodes);
	free(r->dcs);
	free(r->members);
	free(r->leaders);
	free(r->problems);
	memset(r, 0, sizeof(*r));
}

/* ========================================================================
 * A node's /status reply: checked reads
 * ===================================================================== */

static bool ju64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* A string field made printable into buf, or false. */
static bool jstr(json_t *o, const char *key, char *buf, size_t cap)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (!s)
		return false;
	fr_show(buf, cap, s);
	return true;
}

/* ========================================================================
 * DCs and models
 * ===================================================================== */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static struct cli_status_model *model_find(struct cli_status_report *r,
				       const char *name)
{
	for (uint32_t i = 0; i < r->nmodels; i++)
		if (strcmp(r->models[i].name, name) == 0)
			return &r->models[i];
	return NULL;
}

struct cli_status_model *cli_status_model_add(struct cli_status_report *r,
				      const char *name)
{
	struct cli_status_model *md = model_find(r, name);

	if (md)
		return md;
	if (r->nmodels == r->capmodels) {
		uint32_t cap = r->capmodels ? r->capmodels * 2 : 8;
		struct cli_status_model *nm = realloc(r->models,
						  cap * sizeof(*nm));

		if (!nm)
			return NULL;
		r->models = nm;
		r->capmodels = cap;
	}
	md = &r->models[r->nmodels++];
	memset(md, 0, sizeof(*md));
	snprintf(md->name, sizeof(md->name), "%s", name);
	return md;
}

void cli_status_node_parse(struct cli_status_node *nd, const char *body,
		       size_t len)
{
	json_t *st, *topo;
	json_error_t je;
	char buf[64];

	json_decref(nd->st);
	nd->st = NULL;
	st = json_loadb(body ? body : "", body ? len : 0, 0, &je);
	if (!json_is_object(st)) {
		nd->state = CLI_STATUS_NODE_BAD;
		snprintf(nd->why, sizeof(nd->why), "/status is not a JSON "
			 "object (%s)", fr_show(buf, sizeof(buf), je.text));
		json_decref(st);
		return;
	}
	nd->st = st;
	nd->state = CLI_STATUS_NODE_UP;
	nd->has_id = ju64(st, "node_id", &nd->id);
	nd->has_gen = ju64(st, "generation", &nd->generation);
	if (!ju64(st, "uptime_s", &nd->uptime_s))
		nd->uptime_s = 0;
	if (!jstr(st, "dc", nd->dc, sizeof(nd->dc)))
		nd->dc[0] = '\0';
	if (!jstr(st, "backend", nd->backend, sizeof(nd->backend)))
		snprintf(nd->backend, sizeof(nd->backend), "?");
	if (!jstr(st, "version", nd->version, sizeof(nd->version)))
		snprintf(nd->version, sizeof(nd->version), "?");
	nd->stopping = json_is_true(json_object_get(st, "stopping"));
	nd->leader = -1;
	topo = json_object_get(st, "topology");
	if (json_is_object(topo)) {
		json_t *l = json_object_get(topo, "leader");

		nd->has_topo = true;
		if (!jstr(topo, "zk", nd->zk, sizeof(nd->zk)))
			snprintf(nd->zk, sizeof(nd->zk), "?");
		if (json_is_boolean(l))
			nd->leader = json_is_true(l);
		if (!ju64(topo, "epoch", &nd->epoch))
			nd->epoch = 0;
		if (jstr(topo, "dc", buf, sizeof(buf)) && !nd->dc[0])
			snprintf(nd->dc, sizeof(nd->dc), "%s", buf);
	}
	if (!json_is_array(json_object_get(st, "models"))) {
		nd->state = CLI_STATUS_NODE_BAD;
		snprintf(nd->why, sizeof(nd->why), "/status has no models "
			 "array");
	}
}

static uint32_t dc_index(const struct cli_status_report *r, const char *dc)
{
	for (uint32_t i = 0; i < r->ndcs; i++)
		if (strcmp(r->dcs[i].name, dc) == 0)
			return i;
	return UINT32_MAX;
}

/* The DCs: every dc with a member or a leader, sorted. */
static bool build_dcs(struct cli_status_report *r)
{
	uint32_t cap = r->nmembers + r->nleaders, n = 0;
	char (*names)[TOPO_NAME_MAX + 1];

	names = calloc(cap ? cap : 1, sizeof(*names));
	r->dcs = calloc(cap ? cap : 1, sizeof(*r->dcs));
	if (!names || !r->dcs) {
		free(names);
		return false;
	}
	for (uint32_t i = 0; i < r->nmembers; i++)
		snprintf(names[n++], sizeof(names[0]), "%s",
			 r->members[i].dc);
	for (uint32_t i = 0; i < r->nleaders; i++)
		snprintf(names[n++], sizeof(names[0]), "%s",
			 r->leaders[i].dc);
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (uint32_t i = 0; i < n; i++) {
		if (r->ndcs && strcmp(r->dcs[r->ndcs - 1].name, names[i]) == 0)
			continue;
		snprintf(r->dcs[r->ndcs++].name, sizeof(r->dcs[0].name), "%s",
			 names[i]);
	}
	free(names);
	for (uint32_t i = 0; i < r->nleaders; i++)
		r->dcs[dc_index(r, r->leaders[i].dc)].leader = &r->leaders[i];
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct cli_status_dc *d = &r->dcs[dc_index(r, r->members[i].dc)];

		d->nnodes++;
		d->nup += r->nodes[i].state == CLI_STATUS_NODE_UP;
	}
	return true;
}

/* The models[] entry named name in a node's reply, or NULL. */
static json_t *node_model_json(const struct cli_status_node *nd,
			       const char *name)
{
	json_t *ms = json_object_get(nd->st, "models"), *m;
	size_t i;

	json_array_foreach(ms, i, m) {
		const char *n = json_string_value(json_object_get(m, "name"));

		if (n && strcmp(n, name) == 0)
			return m;
	}
	return NULL;
}

/* Every model a node reports, added to the list. */
static void collect_models(struct cli_status_report *r)
{
	for (uint32_t i = 0; i < r->nmembers; i++) {
		json_t *ms, *m;
		size_t k;

		if (r->nodes[i].state != CLI_STATUS_NODE_UP)
			continue;
		ms = json_object_get(r->nodes[i].st, "models");
		json_array_foreach(ms, k, m) {
			const char *n = json_string_value(
				json_object_get(m, "name"));

			if (n && fr_name_valid(n, SHARD_NAME_MAX))
				cli_status_model_add(r, n);
		}
	}
}

/* ========================================================================
 * Freshness: versions and shard vectors
 * ===================================================================== */

/* The vector hash of one (table, shard): XXH3 over (t, s) and then each
 * (origin, version), chained through the seed.  A fixed seed: the hashes
 * of different nodes are compared. */
static uint64_t cell_hash(uint32_t t, uint32_t s, const struct shard_vv *vv)
{
	uint64_t w[2] = { t, s }, h = fr_hash64(w, sizeof(w), 0);

	for (uint32_t j = 0; j < vv->n; j++) {
		w[0] = vv->e[j].origin;
		w[1] = vv->e[j].version;
		h = fr_hash64(w, sizeof(w), h);
	}
	return h;
}

/* One shard_vv entry of a reply: {"table":t,"shard":s,"vv":[...]} into
 * (t, s) and vv (reset first).  false when malformed or out of range. */
static bool parse_cell(json_t *e, uint32_t ntables, uint32_t shards,
		       uint32_t *t, uint32_t *s, struct shard_vv *vv)
{
	uint64_t tt, ss, origin, version;
	json_t *arr = json_object_get(e, "vv"), *x;
	size_t i;

	vv->n = 0;
	if (!ju64(e, "table", &tt) || !ju64(e, "shard", &ss) ||
	    tt >= ntables || ss >= shards || !json_is_array(arr))
		return false;
	json_array_foreach(arr, i, x) {
		if (!ju64(x, "origin", &origin) ||
		    !ju64(x, "version", &version) || origin > UINT32_MAX)
			return false;
		if (shard_vv_advance(vv, (uint32_t)origin, version))
			return false;
	}
	*t = (uint32_t)tt;
	*s = (uint32_t)ss;
	return true;
}

/* Shards behind and per-table vector hashes for every node with the
 * model, from the merged vectors. */
static void compute_shards(struct cli_status_report *r,
			   struct cli_status_model *md)
{
	uint64_t cells = (uint64_t)md->shards * md->ntables;
	struct shard_vv *merged, tmp;
	uint8_t *seen = NULL, *behind = NULL;
	uint32_t t, s;

	if (!md->shards || !md->ntables || cells > CLI_STATUS_CELLS_MAX)
		return;
	merged = calloc(cells, sizeof(*merged));
	seen = calloc(cells, 1);
	behind = calloc(md->shards, 1);
	shard_vv_init(&tmp);
	if (!merged || !seen || !behind)
		goto out;
	/* The merged vector: every origin's highest version anywhere. */
	for (uint32_t i = 0; i < r->nmembers; i++) {
		json_t *sv, *e;
		size_t k;

		if (!md->per[i].mj)
			continue;
		sv = json_object_get(md->per[i].mj, "shard_vv");
		json_array_foreach(sv, k, e) {
			if (!parse_cell(e, md->ntables, md->shards, &t, &s,
					&tmp))
				continue;
			for (uint32_t j = 0; j < tmp.n; j++)
				shard_vv_advance(&merged[(uint64_t)t *
							 md->shards + s],
						 tmp.e[j].origin,
						 tmp.e[j].version);
		}
	}
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct cli_status_node_model *pm = &md->per[i];
		json_t *sv, *e;
		size_t k;
		int64_t nb = 0;
		bool bad = false;

		if (!pm->mj)
			continue;
		sv = json_object_get(pm->mj, "shard_vv");
		if (!json_is_array(sv))
			continue;       /* a node without ?shards=1 support */
		pm->vvhash = calloc(md->ntables, sizeof(*pm->vvhash));
		if (!pm->vvhash)
			continue;
		memset(seen, 0, cells);
		memset(behind, 0, md->shards);
		json_array_foreach(sv, k, e) {
			uint64_t c;

			if (!parse_cell(e, md->ntables, md->shards, &t, &s,
					&tmp)) {
				bad = true;
				break;
			}
			c = (uint64_t)t * md->shards + s;
			seen[c] = 1;
			for (uint32_t j = 0; j < merged[c].n; j++)
				if (shard_vv_get(&tmp, merged[c].e[j].origin) <
				    merged[c].e[j].version)
					behind[s] = 1;
			if (!tmp.n)
				continue;
			/* Sum of per-cell hashes: independent of the order
			 * the cells came in. */
			pm->vvhash[t] += cell_hash(t, s, &tmp);
		}
		if (bad) {
			free(pm->vvhash);
			pm->vvhash = NULL;
			continue;
		}
		for (uint64_t c = 0; c < cells; c++)
			if (!seen[c] && merged[c].n)
				behind[c % md->shards] = 1;
		for (uint32_t j = 0; j < md->shards; j++)
			nb += behind[j];
		pm->behind = nb;
	}
out:
	shard_vv_fini(&tmp);
	for (uint64_t c = 0; merged && c < cells; c++)
		shard_vv_fini(&merged[c]);
	free(merged);
	free(seen);
	free(behind);
}

/* Nodes whose vectors for a table are equal must hold equal data; and a
 * node's backend mirror must equal its store (but a baseline's, which
 * serves older rows on purpose). */
static void check_checksums(struct cli_status_report *r,
			    struct cli_status_model *md)
{
	char ci[24], cj[24], bi[24], tname[SHARD_NAME_MAX + 1], role[16];

	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct cli_status_node_model *pi = &md->per[i];
		json_t *ti;

		if (!pi->mj)
			continue;
		for (uint32_t t = 0; t < md->ntables; t++) {
			ti = json_array_get(json_object_get(pi->mj, "tables"),
					    t);
			if (!jstr(ti, "checksum", ci, sizeof(ci)))
				continue;
			if (!jstr(ti, "name", tname, sizeof(tname)))
				tname[0] = '\0';
			/* A baseline's backend lags its store by design. */
			if (jstr(ti, "backend_checksum", bi, sizeof(bi)) &&
			    strcmp(bi, ci) != 0 &&
			    !(jstr(pi->mj, "role", role, sizeof(role)) &&
			      strcmp(role, "baseline") == 0)) {
				cli_status_problem(r, "mirror", r->members[i].dc,
					r->members[i].node_id, md->name,
					"node %u: model %s table %s: the "
					"backend's checksum %s differs from "
					"the store's %s",
					r->members[i].node_id, md->name, tname,
					bi, ci);
				r->nodes[i].flagged = true;
			}
			if (!pi->vvhash)
				continue;
			for (uint32_t j = 0; j < i; j++) {
				struct cli_status_node_model *pj = &md->per[j];
				json_t *tj;

				if (!pj->vvhash ||
				    pj->vvhash[t] != pi->vvhash[t])
					continue;
				tj = json_array_get(json_object_get(pj->mj,
								    "tables"),
						    t);
				if (!jstr(tj, "checksum", cj, sizeof(cj)) ||
				    strcmp(ci, cj) == 0)
					continue;
				cli_status_problem(r, "diverged", NULL,
					r->members[i].node_id, md->name,
					"model %s table %s: nodes %u and %u "
					"hold the same versions but their "
					"checksums differ (%s, %s)",
					md->name, tname,
					r->members[j].node_id,
					r->members[i].node_id, cj, ci);
				r->nodes[i].flagged = true;
				break;
			}
		}
	}
}

/* One model's rows and flags; false when out of memory. */
static bool compute_model(struct cli_status_report *r,
			  struct cli_status_model *md)
{
	bool first = true;

	md->per = calloc(r->nmembers ? r->nmembers : 1, sizeof(*md->per));
	md->dcs = calloc(r->ndcs ? r->ndcs : 1, sizeof(*md->dcs));
	if (!md->per || !md->dcs)
		return false;
	/* Which nodes have it; the freshest version; its shape. */
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct cli_status_node_model *pm = &md->per[i];
		uint64_t shards = 0;
		size_t nt;

		pm->lag_ms = CLI_STATUS_LAG_UNKNOWN;
		pm->behind = -1;
		if (r->nodes[i].state != CLI_STATUS_NODE_UP)
			continue;
		pm->mj = node_model_json(&r->nodes[i], md->name);
		if (!pm->mj)
			continue;
		if (!ju64(pm->mj, "max_version", &pm->max_version)) {
			pm->mj = NULL;
			cli_status_problem(r, "bad-reply", r->members[i].dc,
				r->members[i].node_id, md->name,
				"node %u: model %s has no max_version in "
				"/status", r->members[i].node_id, md->name);
			r->nodes[i].flagged = true;
			continue;
		}
		if (pm->max_version > md->freshest)
			md->freshest = pm->max_version;
		nt = json_array_size(json_object_get(pm->mj, "tables"));
		if (!ju64(pm->mj, "shards", &shards) || !shards ||
		    shards > SHARD_SHARDS_MAX || !nt ||
		    nt > SHARD_TABLES_MAX) {
			json_object_del(pm->mj, "shard_vv");
			continue;
		}
		if (first) {
			md->shards = (uint32_t)shards;
			md->ntables = (uint32_t)nt;
			first = false;
		} else if (shards != md->shards || nt != md->ntables) {
			cli_status_problem(r, "schema", r->members[i].dc,
				r->members[i].node_id, md->name,
				"node %u serves model %s with %llu shards "
				"and %zu tables, others with %u and %u",
				r->members[i].node_id, md->name,
				(unsigned long long)shards, nt, md->shards,
				md->ntables);
			r->nodes[i].flagged = true;
			/* Its vectors cannot be compared with the rest. */
			json_object_del(pm->mj, "shard_vv");
		}
	}
	if (md->registered && md->shards &&
	    (md->def.shards != md->shards || md->def.ntables != md->ntables))
		cli_status_problem(r, "schema", NULL, 0, md->name,
			"model %s: the registry says %u shards and %u tables, "
			"nodes serve %u and %u", md->name, md->def.shards,
			md->def.ntables, md->shards, md->ntables);
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct cli_status_node_model *pm = &md->per[i];

		if (!pm->mj)
			continue;
		if (pm->max_version == 0 && md->freshest)
			pm->lag_ms = CLI_STATUS_LAG_NODATA;
		else
			pm->lag_ms = (int64_t)(FR_HLC_PHYS(md->freshest) -
					       FR_HLC_PHYS(pm->max_version));
	}
	compute_shards(r, md);
	check_checksums(r, md);

	/* Per DC: the slowest node. */
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct cli_status_node_model *pm = &md->per[i];
		struct cli_status_dc_model *dm;
		uint32_t d = dc_index(r, r->members[i].dc);

		if (d == UINT32_MAX || r->nodes[i].state != CLI_STATUS_NODE_UP)
			continue;
		dm = &md->dcs[d];
		if (!pm->mj) {
			/* Up but not serving a model others serve. */
			if (md->freshest || md->shards) {
				cli_status_problem(r, "missing", r->members[i].dc,
					r->members[i].node_id, md->name,
					"node %u (%s) does not serve model %s",
					r->members[i].node_id,
					r->members[i].dc, md->name);
				r->nodes[i].flagged = true;
				dm->flagged = true;
			}
			continue;
		}
		if (!dm->serving) {
			dm->lag_ms = pm->lag_ms;
			dm->behind = pm->behind;
			dm->slowest = r->members[i].node_id;
			dm->slowest_idx = i;
		} else {
			if (pm->lag_ms > dm->lag_ms ||
			    (pm->lag_ms == dm->lag_ms &&
			     pm->behind > dm->behind)) {
				dm->lag_ms = pm->lag_ms;
				dm->slowest = r->members[i].node_id;
				dm->slowest_idx = i;
			}
			if (pm->behind > dm->behind)
				dm->behind = pm->behind;
		}
		dm->serving++;
	}
	for (uint32_t d = 0; d < r->ndcs; d++) {
		struct cli_status_dc_model *dm = &md->dcs[d];

		if (!dm->serving)
			continue;
		if (dm->lag_ms == CLI_STATUS_LAG_NODATA) {
			cli_status_problem(r, "lagging", r->dcs[d].name,
				dm->slowest, md->name, "model %s in %s: node "
				"%u holds no "
				"data yet", md->name, r->dcs[d].name,
				dm->slowest);
			dm->flagged = true;
			r->nodes[dm->slowest_idx].flagged = true;
		} else if (dm->lag_ms > CLI_STATUS_LAG_FLAG_MS) {
			cli_status_problem(r, "lagging", r->dcs[d].name,
				dm->slowest, md->name, "model %s in %s: node "
				"%u is %lld ms "
				"behind the freshest version (%lld shards "
				"behind)", md->name, r->dcs[d].name,
				dm->slowest, (long long)dm->lag_ms,
				(long long)dm->behind);
			dm->flagged = true;
			r->nodes[dm->slowest_idx].flagged = true;
		}
	}
	return true;
}

/* ========================================================================
 * Flags about nodes and DCs
 * ===================================================================== */

/* Flags about nodes and DCs (models have their own). */
static void check_nodes(struct cli_status_report *r)
{
	for (uint32_t i = 0; i < r->nmembers; i++) {
		const struct topo_member *m = &r->members[i];
		struct cli_status_node *nd = &r->nodes[i];
		uint32_t d = dc_index(r, m->dc);
		const struct topo_leader *l = d < r->ndcs ? r->dcs[d].leader
							  : NULL;

		if (nd->state == CLI_STATUS_NODE_DOWN) {
			cli_status_problem(r, "down", m->dc, m->node_id, NULL,
				"node %u (%s): admin %s did not answer "
				"/status: %s", m->node_id, m->dc, m->admin,
				nd->why);
			nd->flagged = true;
			continue;
		}
		if (nd->state == CLI_STATUS_NODE_BAD) {
			cli_status_problem(r, "bad-reply", m->dc, m->node_id, NULL,
				"node %u (%s): admin %s: %s", m->node_id,
				m->dc, m->admin, nd->why);
			nd->flagged = true;
			continue;
		}
		if (nd->has_id && nd->id != m->node_id) {
			cli_status_problem(r, "identity", m->dc, m->node_id, NULL,
				"ZooKeeper's node %u: admin %s answers as "
				"node %llu", m->node_id, m->admin,
				(unsigned long long)nd->id);
			nd->flagged = true;
		}
		if (nd->dc[0] && strcmp(nd->dc, m->dc) != 0) {
			cli_status_problem(r, "identity", m->dc, m->node_id, NULL,
				"node %u is registered in %s but says it is "
				"in %s", m->node_id, m->dc, nd->dc);
			nd->flagged = true;
		}
		if (nd->has_gen && nd->generation != m->generation) {
			cli_status_problem(r, "stale", m->dc, m->node_id, NULL,
				"node %u: ZooKeeper has generation %llu, the "
				"node runs generation %llu (restarted while "
				"its old session lives on?)", m->node_id,
				(unsigned long long)m->generation,
				(unsigned long long)nd->generation);
			nd->flagged = true;
		}
		if (nd->stopping) {
			cli_status_problem(r, "stopping", m->dc, m->node_id, NULL,
				"node %u (%s) is shutting down", m->node_id,
				m->dc);
			nd->flagged = true;
		}
		if (nd->has_topo && strcmp(nd->zk, "disconnected") == 0) {
			cli_status_problem(r, "zk-session", m->dc, m->node_id, NULL,
				"node %u (%s) has lost its ZooKeeper session",
				m->node_id, m->dc);
			nd->flagged = true;
		}
		if (nd->leader == 1 && (!l || l->node_id != m->node_id)) {
			cli_status_problem(r, "leader", m->dc, m->node_id, NULL,
				"node %u says it leads %s, but ZooKeeper's "
				"leader there is %s", m->node_id, m->dc,
				l ? "another node" : "nobody");
			nd->flagged = true;
		}
	}
	for (uint32_t d = 0; d < r->ndcs; d++) {
		struct cli_status_dc *dc = &r->dcs[d];
		bool member = false;

		if (!dc->leader) {
			cli_status_problem(r, "no-leader", dc->name, 0, NULL,
				"%s has %u node%s and no leader", dc->name,
				dc->nnodes, dc->nnodes == 1 ? "" : "s");
			dc->flagged = true;
			continue;
		}
		for (uint32_t i = 0; i < r->nmembers; i++)
			if (strcmp(r->members[i].dc, dc->name) == 0 &&
			    r->members[i].node_id == dc->leader->node_id)
				member = true;
		if (!member) {
			cli_status_problem(r, "leader", dc->name,
				dc->leader->node_id, NULL, "%s's leader is "
				"node %u, which is not registered under "
				"nodes/%s", dc->name,
				dc->leader->node_id, dc->name);
			dc->flagged = true;
		}
	}
	if (r->bad_topo)
		cli_status_problem(r, "malformed", NULL, 0, NULL,
			"%u znode%s under /freshet/%s/nodes or leaders "
			"ignored as malformed (the warnings on standard "
			"error name them)", r->bad_topo,
			r->bad_topo == 1 ? "" : "s", r->cluster);
}

static int cmp_model(const void *a, const void *b)
{
	return strcmp(((const struct cli_status_model *)a)->name,
		      ((const struct cli_status_model *)b)->name);
}

/* ========================================================================
 * Roles and rollback epochs (from the member znodes)
 * ===================================================================== */

/* md->rb from what every member publishes for md; false when out of
 * memory. */
static bool compute_rollback(struct cli_status_report *r,
			     struct cli_status_model *md)
{
	struct cli_status_rollback *rb = &md->rb;
	uint64_t cut_ms;

	rb->canaries = calloc(r->nmembers ? r->nmembers : 1,
			      sizeof(*rb->canaries));
	if (!rb->canaries)
		return false;
	for (uint32_t i = 0; i < r->nmembers; i++) {
		const struct topo_model_status *ms =
			cli_member_model(&r->members[i], md->name);

		if (!ms)
			continue;
		rb->reporting++;
		if (ms->epoch > rb->epoch_max)
			rb->epoch_max = ms->epoch;
		if (strcmp(ms->role, "canary") == 0)
			rb->canaries[rb->ncanaries++] = r->members[i].node_id;
		if (strcmp(ms->role, "baseline") == 0 &&
		    (!rb->baseline_id || ms->cut < rb->baseline_cut)) {
			rb->baseline_id = r->members[i].node_id;
			rb->baseline_cut = ms->cut;
		}
	}
	for (uint32_t i = 0; i < r->nmembers; i++) {
		const struct topo_model_status *ms =
			cli_member_model(&r->members[i], md->name);

		rb->at_max += ms && ms->epoch == rb->epoch_max;
	}
	cut_ms = FR_HLC_PHYS(rb->baseline_cut);
	rb->baseline_behind_ms = rb->baseline_id && r->time_ms > cut_ms
				 ? r->time_ms - cut_ms : 0;
	return true;
}

/* ========================================================================
 * The round
 * ===================================================================== */

bool cli_status_compute(struct cli_status_report *r)
{
	if (!build_dcs(r))
		goto out_nomem;
	check_nodes(r);
	collect_models(r);
	if (r->nmodels)
		qsort(r->models, r->nmodels, sizeof(*r->models), cmp_model);
	for (uint32_t i = 0; i < r->nmodels; i++) {
		struct cli_status_model *md = &r->models[i];

		if (!compute_model(r, md) || !compute_rollback(r, md))
			goto out_nomem;
		for (uint32_t d = 0; d < r->ndcs; d++)
			md->flagged |= md->dcs[d].flagged;
	}
	return true;

out_nomem:
	snprintf(r->zk_error, sizeof(r->zk_error), "out of memory");
	return false;
}
