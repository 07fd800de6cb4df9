/*
 * test_cli_status.c — CUnit suite for the pure middle of `freshet status`
 * (cli/status_compute.c) and its output (cli/status_render.c), on reports
 * built by hand as a round would gather them: member and leader znodes,
 * the registry, and each node's /status reply as JSON text.
 *
 * It checks the figures and the flags: a healthy cluster has none; a node
 * far behind the freshest version is "lagging" (the DC, the node and the
 * model flagged, with its lag in ms and in shards); one that holds nothing
 * is "no data"; a node down, a DC without a leader, a model missing on an
 * up node; the rollback epoch counts, the baseline (the lowest cut) and
 * how far its cut is behind, the canaries; a reply that is not JSON.  And
 * that --json carries models[].rollback with canaries as a list.
 *
 * Not here: ZooKeeper or HTTP (status_gather.c; the integration test
 * it_cli_zk runs the command against a real ZooKeeper and fake nodes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "cli/status_int.h"
#include "testutil.h"
#include "unit_main.h"

#define NOW_MS 1746100800000ull            /* the round's wall clock */
#define V(ms) FR_HLC_MAKE((ms), 0)

/* ----------------------------------------------------------------------
 * Building a round's inputs
 * -------------------------------------------------------------------- */

static void report_init(struct cli_status_report *r)
{
	memset(r, 0, sizeof(*r));
	r->cluster = "c";
	r->hosts = "zk1:2181";
	r->time_ms = NOW_MS;
}

/* A member znode: node id in dc; its index. */
static uint32_t member(struct cli_status_report *r, uint32_t id, const char *dc)
{
	struct topo_member *m;

	r->members = realloc(r->members, (r->nmembers + 1) * sizeof(*m));
	CU_ASSERT_FATAL(r->members != NULL);
	m = &r->members[r->nmembers];
	memset(m, 0, sizeof(*m));
	m->node_id = id;
	snprintf(m->dc, sizeof(m->dc), "%s", dc);
	snprintf(m->addr, sizeof(m->addr), "10.0.0.%u:7001", id);
	snprintf(m->admin, sizeof(m->admin), "10.0.0.%u:8001", id);
	snprintf(m->roles, sizeof(m->roles), "serving");
	m->generation = 4;
	return r->nmembers++;
}

/* The per-model status member i publishes in its znode. */
static void member_model(struct cli_status_report *r, uint32_t i,
			 const char *model, const char *role, uint64_t epoch,
			 uint64_t cut)
{
	struct topo_member *m = &r->members[i];
	struct topo_model_status *s = &m->models[m->nmodels++];

	snprintf(s->model, sizeof(s->model), "%s", model);
	snprintf(s->role, sizeof(s->role), "%s", role);
	s->epoch = epoch;
	s->cut = cut;
}

static void leader(struct cli_status_report *r, const char *dc, uint32_t id)
{
	struct topo_leader *l;

	r->leaders = realloc(r->leaders, (r->nleaders + 1) * sizeof(*l));
	CU_ASSERT_FATAL(r->leaders != NULL);
	l = &r->leaders[r->nleaders++];
	memset(l, 0, sizeof(*l));
	snprintf(l->dc, sizeof(l->dc), "%s", dc);
	l->node_id = id;
	l->epoch = 12;
	l->generation = 4;
}

/* After the members: their nodes[], all down until a reply is given. */
static void nodes_alloc(struct cli_status_report *r)
{
	r->nodes = calloc(r->nmembers, sizeof(*r->nodes));
	CU_ASSERT_FATAL(r->nodes != NULL);
	for (uint32_t i = 0; i < r->nmembers; i++) {
		r->nodes[i].m = r->members[i];
		r->nodes[i].state = CLI_STATUS_NODE_DOWN;
		snprintf(r->nodes[i].why, sizeof(r->nodes[i].why),
			 "Connection refused");
	}
}

/* Node i's /status: its identity, and `models` (a JSON array's text). */
static void reply(struct cli_status_report *r, uint32_t i, const char *models)
{
	const struct topo_member *m = &r->members[i];
	char body[4096];
	int n;

	n = snprintf(body, sizeof(body),
		     "{\"node_id\":%u,\"generation\":4,\"uptime_s\":60,"
		     "\"dc\":\"%s\",\"backend\":\"cpu\",\"version\":\"0.1.0\","
		     "\"stopping\":false,\"topology\":{\"zk\":\"connected\","
		     "\"leader\":false,\"epoch\":12},\"models\":%s}",
		     m->node_id, m->dc, models);
	CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(body));
	cli_status_node_parse(&r->nodes[i], body, (size_t)n);
	CU_ASSERT_EQUAL(r->nodes[i].state, CLI_STATUS_NODE_UP);
}

/* A models[] array with one entry: ctr at max_version, 2 shards, one
 * table, and shard_vv (a JSON array's text) for it. */
static const char *ctr(char *buf, size_t cap, uint64_t max_version,
		       const char *vv)
{
	snprintf(buf, cap, "[{\"name\":\"ctr\",\"max_version\":%llu,"
		 "\"shards\":2,\"role\":\"serving\",\"tables\":[{\"name\":"
		 "\"users\",\"checksum\":\"00000000000000aa\"}],"
		 "\"shard_vv\":%s}]", (unsigned long long)max_version, vv);
	return buf;
}

static const struct cli_status_problem *problem_of(const struct cli_status_report *r,
					       const char *kind,
					       uint32_t node)
{
	for (uint32_t i = 0; i < r->nproblems; i++)
		if (strcmp(r->problems[i].kind, kind) == 0 &&
		    r->problems[i].node == node)
			return &r->problems[i];
	return NULL;
}

static const struct cli_status_model *model_of(const struct cli_status_report *r,
					   const char *name)
{
	for (uint32_t i = 0; i < r->nmodels; i++)
		if (strcmp(r->models[i].name, name) == 0)
			return &r->models[i];
	return NULL;
}

/* Two nodes of dc1 (leader 1) serving ctr: node 2 at `behind` ms behind
 * node 1, and missing node 1's version of shard 1 when shard_lag. */
/* shard_vv of one table over 2 shards, origin 1 at s0 and s1. */
static const char *vv2(char *buf, size_t cap, uint64_t s0, uint64_t s1)
{
	snprintf(buf, cap, "[{\"table\":0,\"shard\":0,\"vv\":[{\"origin\":1,"
		 "\"version\":%llu}]},{\"table\":0,\"shard\":1,\"vv\":[{"
		 "\"origin\":1,\"version\":%llu}]}]", (unsigned long long)s0,
		 (unsigned long long)s1);
	return buf;
}

static void two_nodes(struct cli_status_report *r, uint64_t behind,
		      bool shard_lag)
{
	char m[2048], vv[512];
	uint64_t v1 = V(NOW_MS - 1000), v2 = V(NOW_MS - 1000 - behind);

	report_init(r);
	member(r, 1, "dc1");
	member(r, 2, "dc1");
	leader(r, "dc1", 1);
	nodes_alloc(r);
	reply(r, 0, ctr(m, sizeof(m), v1, vv2(vv, sizeof(vv), v2, v1)));
	reply(r, 1, ctr(m, sizeof(m), v2,
			vv2(vv, sizeof(vv), v2, shard_lag ? v2 : v1)));
}

/* ----------------------------------------------------------------------
 * Freshness
 * -------------------------------------------------------------------- */

static void test_healthy(void)
{
	struct cli_status_report r;
	const struct cli_status_model *md;

	two_nodes(&r, 0, false);
	CU_ASSERT_FATAL(cli_status_compute(&r));
	CU_ASSERT_EQUAL(r.nproblems, 0);
	CU_ASSERT_EQUAL_FATAL(r.ndcs, 1);
	CU_ASSERT_STRING_EQUAL(r.dcs[0].name, "dc1");
	CU_ASSERT_EQUAL(r.dcs[0].nnodes, 2);
	CU_ASSERT_EQUAL(r.dcs[0].nup, 2);
	CU_ASSERT_PTR_NOT_NULL(r.dcs[0].leader);
	CU_ASSERT(!r.dcs[0].flagged);
	md = model_of(&r, "ctr");
	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	CU_ASSERT(!md->registered);
	CU_ASSERT_EQUAL(md->shards, 2);
	CU_ASSERT_EQUAL(md->ntables, 1);
	CU_ASSERT_EQUAL(md->freshest, V(NOW_MS - 1000));
	CU_ASSERT_EQUAL(md->dcs[0].serving, 2);
	CU_ASSERT_EQUAL(md->dcs[0].lag_ms, 0);
	CU_ASSERT_EQUAL(md->dcs[0].behind, 0);
	CU_ASSERT(!md->flagged);
	/* Equal vectors and equal checksums: not diverged. */
	CU_ASSERT_PTR_NULL(problem_of(&r, "diverged", 2));
	cli_status_report_fini(&r);
}

static void test_lagging(void)
{
	struct cli_status_report r;
	const struct cli_status_model *md;
	const struct cli_status_problem *p;

	/* 7 s behind, and behind on shard 1: flagged. */
	two_nodes(&r, 7000, true);
	CU_ASSERT_FATAL(cli_status_compute(&r));
	md = model_of(&r, "ctr");
	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	CU_ASSERT_EQUAL(md->per[0].lag_ms, 0);
	CU_ASSERT_EQUAL(md->per[1].lag_ms, 7000);
	CU_ASSERT_EQUAL(md->per[0].behind, 0);
	CU_ASSERT_EQUAL(md->per[1].behind, 1);
	CU_ASSERT_EQUAL(md->dcs[0].lag_ms, 7000);
	CU_ASSERT_EQUAL(md->dcs[0].behind, 1);
	CU_ASSERT_EQUAL(md->dcs[0].slowest, 2);
	CU_ASSERT(md->dcs[0].flagged);
	CU_ASSERT(md->flagged);
	CU_ASSERT(r.nodes[1].flagged);
	CU_ASSERT(!r.nodes[0].flagged);
	p = problem_of(&r, "lagging", 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(p->dc, "dc1");
	CU_ASSERT_STRING_EQUAL(p->model, "ctr");
	CU_ASSERT(str_has(p->msg, "model ctr in dc1: node 2 is 7000 ms behind "
			  "the freshest version (1 shards behind)"));
	CU_ASSERT_EQUAL(r.nproblems, 1);
	cli_status_report_fini(&r);

	/* At the threshold: not flagged. */
	two_nodes(&r, CLI_STATUS_LAG_FLAG_MS, false);
	CU_ASSERT_FATAL(cli_status_compute(&r));
	CU_ASSERT_EQUAL(model_of(&r, "ctr")->dcs[0].lag_ms, CLI_STATUS_LAG_FLAG_MS);
	CU_ASSERT_EQUAL(r.nproblems, 0);
	cli_status_report_fini(&r);
}

static void test_no_data(void)
{
	struct cli_status_report r;
	const struct cli_status_model *md;
	char m[1024];

	two_nodes(&r, 0, false);
	/* Node 2 answers again, holding nothing of ctr. */
	reply(&r, 1, ctr(m, sizeof(m), 0, "[]"));
	CU_ASSERT_FATAL(cli_status_compute(&r));
	md = model_of(&r, "ctr");
	CU_ASSERT_EQUAL(md->per[1].lag_ms, CLI_STATUS_LAG_NODATA);
	CU_ASSERT_EQUAL(md->dcs[0].lag_ms, CLI_STATUS_LAG_NODATA);
	CU_ASSERT(str_has(problem_of(&r, "lagging", 2)->msg,
			  "node 2 holds no data yet"));
	cli_status_report_fini(&r);
}

/* ----------------------------------------------------------------------
 * Nodes and DCs
 * -------------------------------------------------------------------- */

static void test_node_flags(void)
{
	struct cli_status_report r;
	char m[1024];

	report_init(&r);
	member(&r, 1, "dc1");
	member(&r, 3, "dc2");          /* down */
	member(&r, 4, "dc2");          /* up, without ctr */
	leader(&r, "dc1", 1);
	nodes_alloc(&r);
	reply(&r, 0, ctr(m, sizeof(m), V(NOW_MS), "[]"));
	reply(&r, 2, "[]");
	CU_ASSERT_FATAL(cli_status_compute(&r));
	CU_ASSERT_EQUAL(r.ndcs, 2);
	CU_ASSERT_EQUAL(r.dcs[1].nnodes, 2);
	CU_ASSERT_EQUAL(r.dcs[1].nup, 1);
	CU_ASSERT(str_has(problem_of(&r, "down", 3)->msg,
			  "node 3 (dc2): admin 10.0.0.3:8001 did not answer "
			  "/status: Connection refused"));
	CU_ASSERT(r.nodes[1].flagged);
	CU_ASSERT(str_has(problem_of(&r, "no-leader", 0)->msg,
			  "dc2 has 2 nodes and no leader"));
	CU_ASSERT(r.dcs[1].flagged);
	CU_ASSERT(!r.dcs[0].flagged);
	CU_ASSERT(str_has(problem_of(&r, "missing", 4)->msg,
			  "node 4 (dc2) does not serve model ctr"));
	CU_ASSERT(model_of(&r, "ctr")->flagged);
	CU_ASSERT_EQUAL(r.nproblems, 3);
	cli_status_report_fini(&r);
}

static void parse(struct cli_status_node *nd, const char *body)
{
	cli_status_node_parse(nd, body, strlen(body));
}

static void test_bad_reply(void)
{
	struct cli_status_node nd;

	memset(&nd, 0, sizeof(nd));
	parse(&nd, "not json");
	CU_ASSERT_EQUAL(nd.state, CLI_STATUS_NODE_BAD);
	CU_ASSERT(str_has(nd.why, "/status is not a JSON object"));
	parse(&nd, "{\"node_id\":1}");
	CU_ASSERT_EQUAL(nd.state, CLI_STATUS_NODE_BAD);
	CU_ASSERT(str_has(nd.why, "/status has no models array"));
	/* Fields of the wrong type are left out, not trusted. */
	parse(&nd, "{\"node_id\":-1,\"dc\":7,\"models\":[]}");
	CU_ASSERT_EQUAL(nd.state, CLI_STATUS_NODE_UP);
	CU_ASSERT(!nd.has_id);
	CU_ASSERT_STRING_EQUAL(nd.dc, "");
	/* Untrusted strings are kept printable. */
	parse(&nd, "{\"backend\":\"a\\u001bb\",\"models\":[]}");
	CU_ASSERT_EQUAL(nd.state, CLI_STATUS_NODE_UP);
	CU_ASSERT_STRING_EQUAL(nd.backend, "a\\x1bb");
	json_decref(nd.st);
}

/* ----------------------------------------------------------------------
 * Roles and rollback epochs, from the member znodes
 * -------------------------------------------------------------------- */

static void test_rollback_summary(void)
{
	struct cli_status_report r;
	const struct cli_status_rollback *rb;
	char m[1024];

	report_init(&r);
	for (uint32_t id = 1; id <= 5; id++)
		member(&r, id, "dc1");
	leader(&r, "dc1", 1);
	member_model(&r, 0, "ctr", "serving", 2, V(NOW_MS));
	member_model(&r, 1, "ctr", "canary", 2, V(NOW_MS));
	member_model(&r, 2, "ctr", "baseline", 1, V(NOW_MS - 120000));
	member_model(&r, 3, "ctr", "canary", 2, V(NOW_MS));
	/* The lower of two baseline cuts is the one every baseline served. */
	member_model(&r, 4, "ctr", "baseline", 2, V(NOW_MS - 300000));
	member_model(&r, 4, "other", "canary", 7, 0);
	nodes_alloc(&r);
	for (uint32_t i = 0; i < 5; i++)
		reply(&r, i, ctr(m, sizeof(m), V(NOW_MS), "[]"));
	CU_ASSERT_FATAL(cli_status_compute(&r));
	rb = &model_of(&r, "ctr")->rb;
	CU_ASSERT_EQUAL(rb->reporting, 5);
	CU_ASSERT_EQUAL(rb->epoch_max, 2);
	CU_ASSERT_EQUAL(rb->at_max, 4);
	CU_ASSERT_EQUAL_FATAL(rb->ncanaries, 2);
	CU_ASSERT_EQUAL(rb->canaries[0], 2);
	CU_ASSERT_EQUAL(rb->canaries[1], 4);
	CU_ASSERT_EQUAL(rb->baseline_id, 5);
	CU_ASSERT_EQUAL(rb->baseline_cut, V(NOW_MS - 300000));
	CU_ASSERT_EQUAL(rb->baseline_behind_ms, 300000);
	cli_status_report_fini(&r);
}

/* A model with no member status: nothing reported, no baseline. */
static void test_rollback_none(void)
{
	struct cli_status_report r;
	const struct cli_status_rollback *rb;

	two_nodes(&r, 0, false);
	CU_ASSERT_FATAL(cli_status_compute(&r));
	rb = &model_of(&r, "ctr")->rb;
	CU_ASSERT_EQUAL(rb->reporting, 0);
	CU_ASSERT_EQUAL(rb->ncanaries, 0);
	CU_ASSERT_EQUAL(rb->baseline_id, 0);
	CU_ASSERT_EQUAL(rb->baseline_behind_ms, 0);
	cli_status_report_fini(&r);
}

/* ----------------------------------------------------------------------
 * Output
 * -------------------------------------------------------------------- */

static json_int_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void test_render(void)
{
	struct cli_status_report r;
	json_t *root, *jm, *rb, *c;
	char *text = NULL;
	size_t len = 0;
	FILE *o;

	two_nodes(&r, 7000, true);
	member_model(&r, 0, "ctr", "canary", 3, V(NOW_MS));
	member_model(&r, 1, "ctr", "baseline", 3, V(NOW_MS - 60000));
	CU_ASSERT_FATAL(cli_status_compute(&r));

	root = cli_status_render_json(&r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	CU_ASSERT(json_is_false(json_object_get(root, "healthy")));
	jm = json_array_get(json_object_get(root, "models"), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(jm, "name")),
			       "ctr");
	rb = json_object_get(jm, "rollback");
	CU_ASSERT_FATAL(json_is_object(rb));
	CU_ASSERT_EQUAL(jint(rb, "epoch"), 3);
	CU_ASSERT_EQUAL(jint(rb, "nodes_at_epoch"), 2);
	CU_ASSERT_EQUAL(jint(rb, "nodes_reporting"), 2);
	c = json_object_get(rb, "canaries");
	CU_ASSERT_FATAL(json_is_array(c));
	CU_ASSERT_EQUAL(json_array_size(c), 1);
	CU_ASSERT_EQUAL(json_integer_value(json_array_get(c, 0)), 1);
	CU_ASSERT_EQUAL(jint(rb, "baseline"), 2);
	CU_ASSERT_EQUAL(jint(rb, "baseline_cut"),
			(json_int_t)V(NOW_MS - 60000));
	CU_ASSERT_EQUAL(jint(json_array_get(json_object_get(jm, "dcs"), 0),
			     "lag_ms"), 7000);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
		json_array_get(json_object_get(root, "problems"), 0), "kind")),
		"lagging");
	json_decref(root);

	o = open_memstream(&text, &len);
	CU_ASSERT_FATAL(o != NULL);
	cli_status_render_text(&r, o);
	fclose(o);
	CU_ASSERT(str_has(text, "1 DC, 2 nodes (2 up), 1 model: 1 problem\n"));
	CU_ASSERT(str_has(text, "\n! MODEL ctr  (not in the registry)  2 "
			  "shards  1 table"));
	CU_ASSERT(str_has(text, "  rollback epoch 3 on 2/2 nodes  canary 1  "
			  "baseline 2 (cut 60000 behind)\n"));
	CU_ASSERT(str_has(text, "! lagging     model ctr in dc1: node 2 is "
			  "7000 ms behind"));
	free(text);
	cli_status_report_fini(&r);
}

static const struct fr_unit_test tests[] = {
	{ "healthy", test_healthy },
	{ "lagging node flagged", test_lagging },
	{ "no data", test_no_data },
	{ "down, no leader, missing", test_node_flags },
	{ "bad replies", test_bad_reply },
	{ "rollback epochs, baseline, canaries", test_rollback_summary },
	{ "no member status", test_rollback_none },
	{ "json and text", test_render },
};

int main(void)
{
	return fr_unit_main("cli_status", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
