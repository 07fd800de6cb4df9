/*
 * status_render.c — `freshet status` output: the screen an SRE reads at a
 * glance and the --json object scripts read, both from one computed
 * report (status_compute.c).  docs/cli.md shows the screen and the JSON
 * schema; change them together.
 *
 * Every string here was made printable when it was read (fr_show in
 * status_compute.c) or comes from a ZooKeeper znode topology/ validated.
 * Not here: deciding what is flagged.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cliutil.h"
#include "cli/status_int.h"

static const char *state_name(enum cli_status_node_state s)
{
	return s == CLI_STATUS_NODE_UP ? "up" :
	       s == CLI_STATUS_NODE_BAD ? "bad-reply" : "down";
}

/* ========================================================================
 * --json
 * ===================================================================== */

static json_t *status_json_lag(int64_t lag)
{
	return lag == CLI_STATUS_LAG_UNKNOWN || lag == CLI_STATUS_LAG_NODATA
	       ? json_null() : json_integer(lag);
}

/* An id, or null for 0 (none). */
static json_t *status_json_id(uint64_t id)
{
	return id ? json_integer((json_int_t)id) : json_null();
}

/* What the node says about itself (up nodes only). */
static json_t *node_status_json(const struct cli_status_node *nd)
{
	return json_pack("{s:o,s:o,s:s,s:s,s:o,s:b,s:o,s:o,s:o}",
			 "node_id", nd->has_id ? cli_json_u64(nd->id)
					       : json_null(),
			 "generation", nd->has_gen
				       ? cli_json_u64(nd->generation)
				       : json_null(),
			 "backend", nd->backend,
			 "version", nd->version,
			 "uptime_s", cli_json_u64(nd->uptime_s),
			 "stopping", nd->stopping,
			 "zk", nd->has_topo ? json_string(nd->zk) : json_null(),
			 "leader", nd->leader < 0 ? json_null()
						  : json_boolean(nd->leader),
			 "epoch", nd->has_topo ? cli_json_u64(nd->epoch)
					       : json_null());
}

/* Node i's view of every model it serves. */
static json_t *node_models_json(const struct cli_status_report *r, uint32_t i)
{
	json_t *jm = json_array();

	for (uint32_t k = 0; jm && k < r->nmodels; k++) {
		const struct cli_status_node_model *pm = &r->models[k].per[i];

		if (!pm->mj)
			continue;
		json_array_append_new(jm, json_pack(
			"{s:s,s:o,s:o,s:b,s:o}", "name", r->models[k].name,
			"max_version", cli_json_u64(pm->max_version),
			"lag_ms", status_json_lag(pm->lag_ms),
			"no_data", pm->lag_ms == CLI_STATUS_LAG_NODATA,
			"shards_behind", pm->behind < 0
					 ? json_null()
					 : json_integer(pm->behind)));
	}
	return jm;
}

static json_t *node_json(const struct cli_status_report *r, uint32_t i,
			 const struct cli_status_dc *dc)
{
	const struct cli_status_node *nd = &r->nodes[i];
	const struct topo_member *m = &r->members[i];
	bool leads = dc->leader && dc->leader->node_id == m->node_id;
	json_t *jn;

	jn = json_pack("{s:I,s:s,s:s,s:s,s:o,s:b,s:s,s:b,s:b}",
		       "id", (json_int_t)m->node_id,
		       "addr", m->addr, "admin", m->admin,
		       "roles", m->roles,
		       "generation", cli_json_u64(m->generation),
		       "up", nd->state == CLI_STATUS_NODE_UP,
		       "state", state_name(nd->state),
		       "flagged", nd->flagged,
		       "leader", leads);
	if (!jn)
		return NULL;
	if (nd->state != CLI_STATUS_NODE_UP) {
		json_object_set_new(jn, "error", json_string(nd->why));
		return jn;
	}
	json_object_set_new(jn, "status", node_status_json(nd));
	json_object_set_new(jn, "models", node_models_json(r, i));
	return jn;
}

static json_t *dc_json(const struct cli_status_report *r,
		       const struct cli_status_dc *dc)
{
	const struct topo_leader *l = dc->leader;
	json_t *jd, *nodes;

	jd = json_pack("{s:s,s:o,s:I,s:I,s:b,s:[]}", "dc", dc->name,
		       "leader", l ? json_pack("{s:I,s:s,s:o,s:o}",
					       "id", (json_int_t)l->node_id,
					       "addr", l->addr,
					       "epoch", cli_json_u64(l->epoch),
					       "generation",
					       cli_json_u64(l->generation))
				   : json_null(),
		       "nodes_total", (json_int_t)dc->nnodes,
		       "nodes_up", (json_int_t)dc->nup,
		       "flagged", dc->flagged, "nodes");
	nodes = json_object_get(jd, "nodes");
	for (uint32_t i = 0; jd && i < r->nmembers; i++)
		if (strcmp(r->members[i].dc, dc->name) == 0)
			json_array_append_new(nodes, node_json(r, i, dc));
	return jd;
}

static json_t *rollback_json(const struct cli_status_rollback *rb)
{
	json_t *c = json_array();

	for (uint32_t i = 0; c && i < rb->ncanaries; i++)
		json_array_append_new(c, json_integer(rb->canaries[i]));
	return json_pack("{s:o,s:I,s:I,s:o,s:o,s:o}",
			 "epoch", cli_json_u64(rb->epoch_max),
			 "nodes_at_epoch", (json_int_t)rb->at_max,
			 "nodes_reporting", (json_int_t)rb->reporting,
			 "canaries", c,
			 "baseline", status_json_id(rb->baseline_id),
			 "baseline_cut", cli_json_u64(rb->baseline_cut));
}

static json_t *dc_model_json(const struct cli_status_report *r,
			     const struct cli_status_dc_model *dm, uint32_t d)
{
	bool s = dm->serving != 0;

	return json_pack("{s:s,s:I,s:I,s:o,s:b,s:o,s:o,s:b}",
			 "dc", r->dcs[d].name,
			 "nodes_serving", (json_int_t)dm->serving,
			 "nodes_total", (json_int_t)r->dcs[d].nnodes,
			 "lag_ms", s ? status_json_lag(dm->lag_ms) : json_null(),
			 "no_data", s && dm->lag_ms == CLI_STATUS_LAG_NODATA,
			 "shards_behind", s && dm->behind >= 0
					  ? json_integer(dm->behind)
					  : json_null(),
			 "slowest_node", s ? json_integer(dm->slowest)
					   : json_null(),
			 "flagged", dm->flagged);
}

/* The registry's figure when registered, else the nodes' (null when no
 * node reports one either). */
static json_t *shape_json(bool registered, uint32_t reg, uint32_t nodes)
{
	if (registered)
		return json_integer(reg);
	return nodes ? json_integer(nodes) : json_null();
}

static json_t *model_json(const struct cli_status_report *r,
			  const struct cli_status_model *md)
{
	json_t *jm, *jd;

	jm = json_pack("{s:s,s:b,s:o,s:o,s:o,s:o,s:o,s:[],s:o}",
		       "name", md->name,
		       "registered", md->registered,
		       "priority", md->registered
				   ? json_integer(md->def.priority)
				   : json_null(),
		       "shards", shape_json(md->registered, md->def.shards,
					    md->shards),
		       "tables", shape_json(md->registered, md->def.ntables,
					    md->ntables),
		       "freshest_version", cli_json_u64(md->freshest),
		       "freshest_ms", cli_json_u64(FR_HLC_PHYS(md->freshest)),
		       "dcs", "rollback", rollback_json(&md->rb));
	jd = json_object_get(jm, "dcs");
	for (uint32_t d = 0; jm && d < r->ndcs; d++)
		json_array_append_new(jd, dc_model_json(r, &md->dcs[d], d));
	return jm;
}

static json_t *problem_json(const struct cli_status_problem *p)
{
	return json_pack("{s:s,s:o,s:o,s:o,s:s}", "kind", p->kind,
			 "dc", p->dc[0] ? json_string(p->dc) : json_null(),
			 "node", status_json_id(p->node),
			 "model", p->model[0] ? json_string(p->model)
					      : json_null(),
			 "message", p->msg);
}

json_t *cli_status_render_json(const struct cli_status_report *r)
{
	json_t *root, *dcs, *models, *probs;

	root = json_pack("{s:s,s:s,s:o,s:b,s:I,s:[],s:[],s:[]}",
			 "cluster", r->cluster, "zookeeper", r->hosts,
			 "time_ms", cli_json_u64(r->time_ms),
			 "healthy", r->nproblems == 0 && !r->zk_error[0],
			 "bad_znodes", (json_int_t)r->bad_znodes,
			 "dcs", "models", "problems");
	if (!root)
		return NULL;
	dcs = json_object_get(root, "dcs");
	models = json_object_get(root, "models");
	probs = json_object_get(root, "problems");
	if (r->zk_error[0])
		json_object_set_new(root, "zookeeper_error",
				    json_string(r->zk_error));
	for (uint32_t d = 0; d < r->ndcs; d++)
		json_array_append_new(dcs, dc_json(r, &r->dcs[d]));
	for (uint32_t k = 0; k < r->nmodels; k++)
		json_array_append_new(models, model_json(r, &r->models[k]));
	for (uint32_t i = 0; i < r->nproblems; i++)
		json_array_append_new(probs, problem_json(&r->problems[i]));
	return root;
}

/* ========================================================================
 * The screen
 * ===================================================================== */

/* "2024-05-01 12:00:00.123 UTC" */
static const char *fmt_ms(uint64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[32];

	if (!gmtime_r(&t, &tm) || !strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S",
					    &tm))
		snprintf(s, sizeof(s), "?");
	snprintf(buf, cap, "%s.%03u UTC", s, (unsigned)(ms % 1000));
	return buf;
}

static const char *fmt_lag(int64_t lag, char *buf, size_t cap)
{
	if (lag == CLI_STATUS_LAG_NODATA)
		snprintf(buf, cap, "no data");
	else if (lag < 0)
		snprintf(buf, cap, "?");
	else
		snprintf(buf, cap, "%lld", (long long)lag);
	return buf;
}

static void text_header(const struct cli_status_report *r, FILE *o)
{
	char tb[48];
	uint32_t up = 0;

	for (uint32_t i = 0; i < r->nmembers; i++)
		up += r->nodes[i].state == CLI_STATUS_NODE_UP;
	fprintf(o, "freshet status  cluster %s  zookeeper %s  %s\n",
		r->cluster, r->hosts, fmt_ms(r->time_ms, tb, sizeof(tb)));
	fprintf(o, "%u DC%s, %u node%s (%u up), %u model%s: ", r->ndcs,
		r->ndcs == 1 ? "" : "s", r->nmembers,
		r->nmembers == 1 ? "" : "s", up, r->nmodels,
		r->nmodels == 1 ? "" : "s");
	if (r->zk_error[0])
		fprintf(o, "ZooKeeper failed\n");
	else if (r->nproblems)
		fprintf(o, "%u problem%s\n", r->nproblems,
			r->nproblems == 1 ? "" : "s");
	else
		fprintf(o, "healthy\n");
	if (r->zk_error[0])
		fprintf(o, "\n! zookeeper: %s\n", r->zk_error);
	if (!r->ndcs && !r->zk_error[0])
		fprintf(o, "\nno nodes registered under /freshet/%s/nodes\n",
			r->cluster);
}

static void text_dc(const struct cli_status_report *r,
		    const struct cli_status_dc *dc, FILE *o)
{
	fprintf(o, "\n%sDC %s  ", dc->flagged ? "! " : "", dc->name);
	if (dc->leader)
		fprintf(o, "leader %u (epoch %llu)\n", dc->leader->node_id,
			(unsigned long long)dc->leader->epoch);
	else
		fprintf(o, "no leader\n");
	fprintf(o, "  %-11s %-9s %6s  %-8s %-12s %-22s %s\n", "NODE",
		"STATE", "GEN", "BACKEND", "ZK", "ADDR", "ADMIN");
	for (uint32_t i = 0; i < r->nmembers; i++) {
		const struct cli_status_node *nd = &r->nodes[i];
		const struct topo_member *m = &r->members[i];
		bool up = nd->state == CLI_STATUS_NODE_UP;
		char id[16], gb[24];

		if (strcmp(m->dc, dc->name) != 0)
			continue;
		snprintf(id, sizeof(id), "%u%s", m->node_id,
			 dc->leader && dc->leader->node_id == m->node_id
			 ? "*" : "");
		snprintf(gb, sizeof(gb), "%llu",
			 (unsigned long long)m->generation);
		fprintf(o, "%s%-11s %-9s %6s  %-8s %-12s %-22s %s\n",
			nd->flagged ? "! " : "  ", id, state_name(nd->state),
			gb, up ? nd->backend : "-",
			up && nd->has_topo ? nd->zk : "-", m->addr, m->admin);
	}
}

/* "  rollback epoch E on A/N nodes  canary 2,3  baseline 4 (cut T
 * behind)", once some member publishes a status for the model. */
static void text_rollback(const struct cli_status_rollback *rb, FILE *o)
{
	char lb[24];

	if (!rb->reporting)
		return;
	fprintf(o, "  rollback epoch %llu on %u/%u node%s",
		(unsigned long long)rb->epoch_max, rb->at_max, rb->reporting,
		rb->reporting == 1 ? "" : "s");
	for (uint32_t i = 0; i < rb->ncanaries; i++)
		fprintf(o, "%s%u", i ? "," : "  canary ", rb->canaries[i]);
	if (rb->baseline_id)
		fprintf(o, "  baseline %u (cut %s behind)", rb->baseline_id,
			fmt_lag((int64_t)rb->baseline_behind_ms, lb,
				sizeof(lb)));
	fprintf(o, "\n");
}

static void text_model(const struct cli_status_report *r,
		       const struct cli_status_model *md, FILE *o)
{
	char tb[48], lb[24], bb[24];

	fprintf(o, "\n%sMODEL %s  ", md->flagged ? "! " : "", md->name);
	if (md->registered)
		fprintf(o, "priority %u  %u shard%s  %u table%s",
			md->def.priority, md->def.shards,
			md->def.shards == 1 ? "" : "s", md->def.ntables,
			md->def.ntables == 1 ? "" : "s");
	else
		fprintf(o, "(not in the registry)  %u shard%s  %u table%s",
			md->shards, md->shards == 1 ? "" : "s", md->ntables,
			md->ntables == 1 ? "" : "s");
	if (md->freshest)
		fprintf(o, "  freshest %s\n",
			fmt_ms(FR_HLC_PHYS(md->freshest), tb, sizeof(tb)));
	else
		fprintf(o, "  no data yet\n");
	text_rollback(&md->rb, o);
	if (r->ndcs)
		fprintf(o, "  %-16s %8s %10s %14s  %s\n", "DC", "SERVING",
			"LAG_MS", "SHARDS_BEHIND", "SLOWEST");
	for (uint32_t d = 0; d < r->ndcs; d++) {
		const struct cli_status_dc_model *dm = &md->dcs[d];
		char sv[24], sl[16];

		snprintf(sv, sizeof(sv), "%u/%u", dm->serving,
			 r->dcs[d].nnodes);
		if (!dm->serving) {
			fprintf(o, "%s%-16s %8s %10s %14s  %s\n",
				dm->flagged ? "! " : "  ", r->dcs[d].name, sv,
				"-", "-", "-");
			continue;
		}
		if (dm->behind >= 0)
			snprintf(bb, sizeof(bb), "%lld",
				 (long long)dm->behind);
		else
			snprintf(bb, sizeof(bb), "?");
		snprintf(sl, sizeof(sl), "%u", dm->slowest);
		fprintf(o, "%s%-16s %8s %10s %14s  %s\n",
			dm->flagged ? "! " : "  ", r->dcs[d].name, sv,
			fmt_lag(dm->lag_ms, lb, sizeof(lb)), bb, sl);
	}
}

void cli_status_render_text(const struct cli_status_report *r, FILE *o)
{
	text_header(r, o);
	for (uint32_t d = 0; d < r->ndcs; d++)
		text_dc(r, &r->dcs[d], o);
	for (uint32_t k = 0; k < r->nmodels; k++)
		text_model(r, &r->models[k], o);
	if (r->nproblems) {
		fprintf(o, "\nPROBLEMS\n");
		for (uint32_t i = 0; i < r->nproblems; i++)
			fprintf(o, "! %-11s %s\n", r->problems[i].kind,
				r->problems[i].msg);
	}
}
