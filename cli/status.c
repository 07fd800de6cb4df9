/*
 * status.c — `freshet status`: the cluster on one screen.  Members and
 * leaders come from ZooKeeper (topology.h's admin client), the model
 * registry too; each member's admin endpoint is asked GET /status?shards=1
 * (libcurl, all members at once, each bounded by --node-timeout).  From
 * those replies it works out, per model and DC, how far the DC's slowest
 * node is behind the freshest version anyone holds, in milliseconds and
 * in shards, and flags what an operator must look at.  docs/cli.md shows
 * the screen, the JSON schema and the exit codes.
 *
 * A round is gather (ZooKeeper, then HTTP) -> compute -> render; --watch
 * repeats it every second on the same ZooKeeper session until SIGINT.
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
 * "bad-reply", and strings are made printable before they reach the
 * terminal.
 *
 * Not here: option parsing shared with the other ZooKeeper commands and
 * the JSON helpers (main.c), ZooKeeper itself (topology/).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/input.h"
#include "common/common.h"
#include "shard/shard.h"
#include "topology/topology.h"

#define CMD "status"

#define NODE_TIMEOUT_DEFAULT 2000     /* ms per /status request */
#define BODY_MAX (256u << 20)         /* largest /status reply read */
#define LAG_FLAG_MS 5000              /* a DC further behind is flagged */
#define CELLS_MAX (16u << 20)         /* tables x shards examined per model */
#define WATCH_MS 1000

#define LAG_UNKNOWN (-1)              /* no usable max_version */
#define LAG_NODATA INT64_MAX          /* the node holds nothing, others do */

const char status_help[] =
	"usage: freshet status [--zk HOSTS] [--cluster NAME] [--json] "
	"[--watch]\n"
	"                      [--timeout MS] [--node-timeout MS]\n"
	"\n"
	"The cluster at a glance: per DC its leader and nodes (up/down,\n"
	"generation, backend), per model each DC's freshness (how far its\n"
	"slowest node is behind the freshest version, in ms and in shards),\n"
	"and every problem, flagged with a leading '!'.  Members, leaders and\n"
	"models come from ZooKeeper; versions from each node's admin /status.\n"
	"\n"
	"  --zk HOSTS          ZooKeeper, HOST:PORT[,HOST:PORT...][/CHROOT]\n"
	"                      (default: $FRESHET_ZK)\n"
	"  --cluster NAME      cluster name (default freshet)\n"
	"  --json              one JSON object (docs/cli.md has the schema)\n"
	"  --watch             redraw every second until interrupted (with\n"
	"                      --json: one object per line)\n"
	"  --timeout MS        how long to wait for the ZooKeeper session\n"
	"                      (default 5000)\n"
	"  --node-timeout MS   bound on each node's /status (default 2000)\n"
	"\n"
	"Exit: 0 healthy, 1 ZooKeeper unreachable or failing, 2 usage error,\n"
	"3 something is flagged.  --watch exits 0 when interrupted.\n";

/* ========================================================================
 * One round's picture
 * ===================================================================== */

struct body {
	char *p;
	size_t n, cap;
	bool toobig;
};

enum node_state { NODE_DOWN, NODE_BAD, NODE_UP };

struct node {
	struct topo_member m;         /* what ZooKeeper says */
	enum node_state state;
	char why[CURL_ERROR_SIZE + 64]; /* DOWN, BAD: what went wrong */
	json_t *st;                   /* the /status reply (UP) */
	/* From the reply, checked (UP only). */
	bool has_id, has_gen;
	uint64_t id, generation, uptime_s;
	char dc[TOPO_NAME_MAX + 1];
	char backend[40], version[40];
	bool stopping;
	bool has_topo;                /* the "topology" object */
	char zk[24];
	int leader;                   /* -1 unknown, 0, 1 */
	uint64_t epoch;
	bool flagged;
	/* HTTP */
	CURL *h;
	struct body body;
	char errbuf[CURL_ERROR_SIZE];
};

struct dc {
	char name[TOPO_NAME_MAX + 1];
	const struct topo_leader *leader;   /* NULL: none */
	uint32_t nnodes, nup;
	bool flagged;
};

/* One node's view of one model. */
struct node_model {
	json_t *mj;                   /* its models[] entry, NULL if none */
	uint64_t max_version;
	int64_t lag_ms;               /* LAG_UNKNOWN, LAG_NODATA or ms */
	int64_t behind;               /* shards behind, -1 unknown */
	uint64_t *vvhash;             /* per table, NULL if unknown */
};

struct dc_model {
	uint32_t serving;             /* up nodes that have the model */
	int64_t lag_ms, behind;       /* the slowest node's */
	uint32_t slowest;             /* its id, 0 if none */
	uint32_t slowest_idx;         /* and its index in nodes[] */
	bool flagged;
};

struct model {
	char name[SHARD_NAME_MAX + 1];
	bool registered;
	struct shard_model_def def;   /* registered */
	uint32_t shards, ntables;     /* as the nodes report them */
	uint64_t freshest;
	struct node_model *per;       /* [nnodes] */
	struct dc_model *dcs;         /* [ndcs] */
};

struct problem {
	char kind[16];
	char dc[TOPO_NAME_MAX + 1];   /* "" when not about one */
	uint32_t node;                /* 0 when not about one */
	char model[SHARD_NAME_MAX + 1];
	char msg[640];
};

struct report {
	const char *cluster, *hosts;
	uint64_t time_ms;
	char zk_error[512];           /* a ZooKeeper call failed */
	uint32_t bad_znodes;          /* all ignored znodes */
	uint32_t bad_topo;            /* of them under nodes/, leaders/ */
	struct topo_member *members;
	uint32_t nmembers;
	struct topo_leader *leaders;
	uint32_t nleaders;
	struct node *nodes;           /* [nmembers], same order */
	struct dc *dcs;
	uint32_t ndcs;
	struct model *models;
	uint32_t nmodels, capmodels;
	struct problem *problems;
	uint32_t nproblems, capproblems;
};

static void problem(struct report *r, const char *kind, const char *dc,
		    uint32_t node, const char *model, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void problem(struct report *r, const char *kind, const char *dc,
		    uint32_t node, const char *model, const char *fmt, ...)
{
	struct problem *p;
	va_list ap;

	if (r->nproblems == r->capproblems) {
		uint32_t cap = r->capproblems ? r->capproblems * 2 : 16;
		struct problem *np = realloc(r->problems, cap * sizeof(*np));

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

static void report_fini(struct report *r)
{
	for (uint32_t i = 0; i < r->nmodels; i++) {
		struct model *md = &r->models[i];

		for (uint32_t k = 0; md->per && k < r->nmembers; k++)
			free(md->per[k].vvhash);
		free(md->per);
		free(md->dcs);
	}
	free(r->models);
	for (uint32_t i = 0; r->nodes && i < r->nmembers; i++) {
		json_decref(r->nodes[i].st);
		free(r->nodes[i].body.p);
	}
	free(r->nodes);
	free(r->dcs);
	free(r->members);
	free(r->leaders);
	free(r->problems);
	memset(r, 0, sizeof(*r));
}

/* ========================================================================
 * JSON from nodes: checked reads
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
	cli_show(buf, cap, s);
	return true;
}

/* ========================================================================
 * Gather: ZooKeeper
 * ===================================================================== */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static struct model *model_find(struct report *r, const char *name)
{
	for (uint32_t i = 0; i < r->nmodels; i++)
		if (strcmp(r->models[i].name, name) == 0)
			return &r->models[i];
	return NULL;
}

static struct model *model_add(struct report *r, const char *name)
{
	struct model *md = model_find(r, name);

	if (md)
		return md;
	if (r->nmodels == r->capmodels) {
		uint32_t cap = r->capmodels ? r->capmodels * 2 : 8;
		struct model *nm = realloc(r->models, cap * sizeof(*nm));

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

/* Members, leaders and the registry; false (r->zk_error set) when
 * ZooKeeper failed. */
static bool gather_zk(struct report *r, struct topo_admin *a)
{
	uint32_t bad = 0, n = 0;
	char **names = NULL, shown[80];
	struct shard_model_def def;
	enum fr_err err;

	if (topo_admin_members(a, &r->members, &r->nmembers, &bad))
		goto fail;
	r->bad_topo += bad;
	if (topo_admin_leaders(a, &r->leaders, &r->nleaders, &bad))
		goto fail;
	r->bad_topo += bad;
	r->bad_znodes = r->bad_topo;
	if (topo_admin_model_list(a, &names, &n))
		goto fail;
	for (uint32_t i = 0; i < n; i++) {
		struct model *md;

		err = topo_admin_model_get(a, names[i], &def);
		if (err == FR_ERR_NOTFOUND)
			continue;       /* deleted since the listing */
		if (err == FR_ERR_INVAL) {      /* not a model name */
			r->bad_znodes++;
			problem(r, "malformed", NULL, 0, NULL,
				"/freshet/%s/models/%s ignored: %s",
				r->cluster,
				cli_show(shown, sizeof(shown), names[i]),
				fr_errmsg());
			continue;
		}
		if (err == FR_ERR_CORRUPT || err == FR_ERR_TOOBIG) {
			r->bad_znodes++;   /* the detail names the path */
			problem(r, "malformed", NULL, 0, NULL, "%s; ignored",
				fr_errmsg());
			continue;
		}
		if (err) {
			free(names);
			goto fail;
		}
		md = model_add(r, def.name);
		if (md) {
			md->registered = true;
			md->def = def;
		}
	}
	free(names);
	return true;
fail:
	/* Show only the failure, not half a picture. */
	snprintf(r->zk_error, sizeof(r->zk_error), "%s", fr_errmsg());
	free(r->members);
	free(r->leaders);
	r->members = NULL;
	r->leaders = NULL;
	r->nmembers = r->nleaders = 0;
	r->nmodels = 0;
	r->nproblems = 0;
	r->bad_znodes = r->bad_topo = 0;
	return false;
}

/* ========================================================================
 * Gather: every node's /status, in parallel
 * ===================================================================== */

static size_t body_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb, ncap;
	char *np;

	if (b->n + n > BODY_MAX) {
		b->toobig = true;
		return 0;       /* aborts the transfer */
	}
	if (b->n + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 65536;
		while (ncap < b->n + n + 1)
			ncap *= 2;
		np = realloc(b->p, ncap);
		if (!np)
			return 0;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

static void node_parse(struct node *nd)
{
	json_t *st, *topo;
	json_error_t je;
	char buf[64];

	st = json_loadb(nd->body.p ? nd->body.p : "", nd->body.n, 0, &je);
	if (!json_is_object(st)) {
		nd->state = NODE_BAD;
		snprintf(nd->why, sizeof(nd->why), "/status is not a JSON "
			 "object (%s)", cli_show(buf, sizeof(buf), je.text));
		json_decref(st);
		return;
	}
	nd->st = st;
	nd->state = NODE_UP;
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
		nd->state = NODE_BAD;
		snprintf(nd->why, sizeof(nd->why), "/status has no models "
			 "array");
	}
}

static void gather_http(struct report *r, uint32_t timeout_ms)
{
	CURLM *mh = curl_multi_init();
	char url[TOPO_ADDR_MAX + 32];
	int running = 0;
	CURLMsg *msg;

	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct node *nd = &r->nodes[i];

		nd->state = NODE_DOWN;
		if (!nd->m.admin[0]) {
			snprintf(nd->why, sizeof(nd->why), "no admin address "
				 "in its member znode");
			continue;
		}
		nd->h = mh ? curl_easy_init() : NULL;
		if (!nd->h) {
			snprintf(nd->why, sizeof(nd->why), "cannot start an "
				 "HTTP request (out of memory)");
			continue;
		}
		snprintf(url, sizeof(url), "http://%s/status?shards=1",
			 nd->m.admin);
		curl_easy_setopt(nd->h, CURLOPT_URL, url);
		curl_easy_setopt(nd->h, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(nd->h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(nd->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		curl_easy_setopt(nd->h, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)timeout_ms);
		curl_easy_setopt(nd->h, CURLOPT_WRITEFUNCTION, body_write);
		curl_easy_setopt(nd->h, CURLOPT_WRITEDATA, &nd->body);
		curl_easy_setopt(nd->h, CURLOPT_ERRORBUFFER, nd->errbuf);
		curl_easy_setopt(nd->h, CURLOPT_PRIVATE, nd);
		curl_easy_setopt(nd->h, CURLOPT_USERAGENT, "freshet-status");
		nd->errbuf[0] = '\0';
		if (curl_multi_add_handle(mh, nd->h) != CURLM_OK) {
			curl_easy_cleanup(nd->h);
			nd->h = NULL;
			snprintf(nd->why, sizeof(nd->why), "cannot start an "
				 "HTTP request");
		}
	}
	if (!mh)
		return;
	do {
		if (curl_multi_perform(mh, &running) != CURLM_OK)
			break;
		if (running)
			curl_multi_poll(mh, NULL, 0, 100, NULL);
	} while (running);

	while ((msg = curl_multi_info_read(mh, &running))) {
		struct node *nd;
		char *priv = NULL;
		long code = 0;
		char shown[CURL_ERROR_SIZE];

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		nd = (struct node *)priv;
		if (!nd)
			continue;
		if (msg->data.result != CURLE_OK) {
			if (nd->body.toobig)
				snprintf(nd->why, sizeof(nd->why), "/status "
					 "reply larger than %u bytes",
					 BODY_MAX);
			else
				snprintf(nd->why, sizeof(nd->why), "%s",
					 cli_show(shown, sizeof(shown),
						  nd->errbuf[0] ? nd->errbuf :
						  curl_easy_strerror(
							  msg->data.result)));
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
				  &code);
		if (code != 200) {
			nd->state = NODE_BAD;
			snprintf(nd->why, sizeof(nd->why), "/status answered "
				 "HTTP %ld", code);
			continue;
		}
		node_parse(nd);
	}
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct node *nd = &r->nodes[i];

		if (nd->h) {
			curl_multi_remove_handle(mh, nd->h);
			curl_easy_cleanup(nd->h);
			nd->h = NULL;
		}
		/* Requests that never finished (a broken multi loop). */
		if (nd->state == NODE_DOWN && !nd->why[0])
			snprintf(nd->why, sizeof(nd->why), "no answer");
		free(nd->body.p);
		memset(&nd->body, 0, sizeof(nd->body));
	}
	curl_multi_cleanup(mh);
}

/* ========================================================================
 * Compute
 * ===================================================================== */

static uint32_t dc_index(const struct report *r, const char *dc)
{
	for (uint32_t i = 0; i < r->ndcs; i++)
		if (strcmp(r->dcs[i].name, dc) == 0)
			return i;
	return UINT32_MAX;
}

/* The DCs: every dc with a member or a leader, sorted. */
static bool build_dcs(struct report *r)
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
		struct dc *d = &r->dcs[dc_index(r, r->members[i].dc)];

		d->nnodes++;
		d->nup += r->nodes[i].state == NODE_UP;
	}
	return true;
}

/* The models[] entry named name in a node's reply, or NULL. */
static json_t *node_model_json(const struct node *nd, const char *name)
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
static void collect_models(struct report *r)
{
	for (uint32_t i = 0; i < r->nmembers; i++) {
		json_t *ms, *m;
		size_t k;

		if (r->nodes[i].state != NODE_UP)
			continue;
		ms = json_object_get(r->nodes[i].st, "models");
		json_array_foreach(ms, k, m) {
			const char *n = json_string_value(
				json_object_get(m, "name"));

			if (n && !cli_check_name("model", n, SHARD_NAME_MAX))
				model_add(r, n);
		}
	}
}

/* FNV-1a over a few u64s: the vector hash of one (table, shard). */
static uint64_t fnv(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 1099511628211ull;
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
static void compute_shards(struct report *r, struct model *md)
{
	uint64_t cells = (uint64_t)md->shards * md->ntables;
	struct shard_vv *merged, tmp;
	uint8_t *seen = NULL, *behind = NULL;
	uint32_t t, s;

	if (!md->shards || !md->ntables || cells > CELLS_MAX)
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
		struct node_model *pm = &md->per[i];
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
			uint64_t c, h;

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
			h = fnv(fnv(14695981039346656037ull, t), s);
			for (uint32_t j = 0; j < tmp.n; j++)
				h = fnv(fnv(h, tmp.e[j].origin),
					tmp.e[j].version);
			pm->vvhash[t] += h;
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
static void check_checksums(struct report *r, struct model *md)
{
	char ci[24], cj[24], bi[24], tname[SHARD_NAME_MAX + 1], role[16];

	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct node_model *pi = &md->per[i];
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
				problem(r, "mirror", r->members[i].dc,
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
				struct node_model *pj = &md->per[j];
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
				problem(r, "diverged", NULL,
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

static void compute_model(struct report *r, struct model *md)
{
	bool first = true;

	md->per = calloc(r->nmembers ? r->nmembers : 1, sizeof(*md->per));
	md->dcs = calloc(r->ndcs ? r->ndcs : 1, sizeof(*md->dcs));
	if (!md->per || !md->dcs)
		return;
	/* Which nodes have it; the freshest version; its shape. */
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct node_model *pm = &md->per[i];
		uint64_t shards = 0;
		size_t nt;

		pm->lag_ms = LAG_UNKNOWN;
		pm->behind = -1;
		if (r->nodes[i].state != NODE_UP)
			continue;
		pm->mj = node_model_json(&r->nodes[i], md->name);
		if (!pm->mj)
			continue;
		if (!ju64(pm->mj, "max_version", &pm->max_version)) {
			pm->mj = NULL;
			problem(r, "bad-reply", r->members[i].dc,
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
			problem(r, "schema", r->members[i].dc,
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
		problem(r, "schema", NULL, 0, md->name,
			"model %s: the registry says %u shards and %u tables, "
			"nodes serve %u and %u", md->name, md->def.shards,
			md->def.ntables, md->shards, md->ntables);
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct node_model *pm = &md->per[i];

		if (!pm->mj)
			continue;
		if (pm->max_version == 0 && md->freshest)
			pm->lag_ms = LAG_NODATA;
		else
			pm->lag_ms = (int64_t)(FR_HLC_PHYS(md->freshest) -
					       FR_HLC_PHYS(pm->max_version));
	}
	compute_shards(r, md);
	check_checksums(r, md);

	/* Per DC: the slowest node. */
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct node_model *pm = &md->per[i];
		struct dc_model *dm;
		uint32_t d = dc_index(r, r->members[i].dc);

		if (d == UINT32_MAX || r->nodes[i].state != NODE_UP)
			continue;
		dm = &md->dcs[d];
		if (!pm->mj) {
			/* Up but not serving a model others serve. */
			if (md->freshest || md->shards) {
				problem(r, "missing", r->members[i].dc,
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
		struct dc_model *dm = &md->dcs[d];

		if (!dm->serving)
			continue;
		if (dm->lag_ms == LAG_NODATA) {
			problem(r, "lagging", r->dcs[d].name, dm->slowest,
				md->name, "model %s in %s: node %u holds no "
				"data yet", md->name, r->dcs[d].name,
				dm->slowest);
			dm->flagged = true;
			r->nodes[dm->slowest_idx].flagged = true;
		} else if (dm->lag_ms > LAG_FLAG_MS) {
			problem(r, "lagging", r->dcs[d].name, dm->slowest,
				md->name, "model %s in %s: node %u is %lld ms "
				"behind the freshest version (%lld shards "
				"behind)", md->name, r->dcs[d].name,
				dm->slowest, (long long)dm->lag_ms,
				(long long)dm->behind);
			dm->flagged = true;
			r->nodes[dm->slowest_idx].flagged = true;
		}
	}
}

/* Flags about nodes and DCs (models have their own). */
static void check_nodes(struct report *r)
{
	for (uint32_t i = 0; i < r->nmembers; i++) {
		const struct topo_member *m = &r->members[i];
		struct node *nd = &r->nodes[i];
		uint32_t d = dc_index(r, m->dc);
		const struct topo_leader *l = d < r->ndcs ? r->dcs[d].leader
							  : NULL;

		if (nd->state == NODE_DOWN) {
			problem(r, "down", m->dc, m->node_id, NULL,
				"node %u (%s): admin %s did not answer "
				"/status: %s", m->node_id, m->dc, m->admin,
				nd->why);
			nd->flagged = true;
			continue;
		}
		if (nd->state == NODE_BAD) {
			problem(r, "bad-reply", m->dc, m->node_id, NULL,
				"node %u (%s): admin %s: %s", m->node_id,
				m->dc, m->admin, nd->why);
			nd->flagged = true;
			continue;
		}
		if (nd->has_id && nd->id != m->node_id) {
			problem(r, "identity", m->dc, m->node_id, NULL,
				"ZooKeeper's node %u: admin %s answers as "
				"node %llu", m->node_id, m->admin,
				(unsigned long long)nd->id);
			nd->flagged = true;
		}
		if (nd->dc[0] && strcmp(nd->dc, m->dc) != 0) {
			problem(r, "identity", m->dc, m->node_id, NULL,
				"node %u is registered in %s but says it is "
				"in %s", m->node_id, m->dc, nd->dc);
			nd->flagged = true;
		}
		if (nd->has_gen && nd->generation != m->generation) {
			problem(r, "stale", m->dc, m->node_id, NULL,
				"node %u: ZooKeeper has generation %llu, the "
				"node runs generation %llu (restarted while "
				"its old session lives on?)", m->node_id,
				(unsigned long long)m->generation,
				(unsigned long long)nd->generation);
			nd->flagged = true;
		}
		if (nd->stopping) {
			problem(r, "stopping", m->dc, m->node_id, NULL,
				"node %u (%s) is shutting down", m->node_id,
				m->dc);
			nd->flagged = true;
		}
		if (nd->has_topo && strcmp(nd->zk, "disconnected") == 0) {
			problem(r, "zk-session", m->dc, m->node_id, NULL,
				"node %u (%s) has lost its ZooKeeper session",
				m->node_id, m->dc);
			nd->flagged = true;
		}
		if (nd->leader == 1 && (!l || l->node_id != m->node_id)) {
			problem(r, "leader", m->dc, m->node_id, NULL,
				"node %u says it leads %s, but ZooKeeper's "
				"leader there is %s", m->node_id, m->dc,
				l ? "another node" : "nobody");
			nd->flagged = true;
		}
	}
	for (uint32_t d = 0; d < r->ndcs; d++) {
		struct dc *dc = &r->dcs[d];
		bool member = false;

		if (!dc->leader) {
			problem(r, "no-leader", dc->name, 0, NULL,
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
			problem(r, "leader", dc->name, dc->leader->node_id,
				NULL, "%s's leader is node %u, which is not "
				"registered under nodes/%s", dc->name,
				dc->leader->node_id, dc->name);
			dc->flagged = true;
		}
	}
	if (r->bad_topo)
		problem(r, "malformed", NULL, 0, NULL,
			"%u znode%s under /freshet/%s/nodes or leaders "
			"ignored as malformed (the warnings on standard "
			"error name them)", r->bad_topo,
			r->bad_topo == 1 ? "" : "s", r->cluster);
}

static int cmp_model(const void *a, const void *b)
{
	return strcmp(((const struct model *)a)->name,
		      ((const struct model *)b)->name);
}

/* One round.  false when ZooKeeper failed (r->zk_error says how). */
static bool gather(struct report *r, struct topo_admin *a,
		   uint32_t node_timeout_ms)
{
	r->time_ms = fr_wall_ms(NULL);
	if (!gather_zk(r, a))
		return false;
	r->nodes = calloc(r->nmembers ? r->nmembers : 1, sizeof(*r->nodes));
	if (!r->nodes) {
		snprintf(r->zk_error, sizeof(r->zk_error), "out of memory");
		return false;
	}
	for (uint32_t i = 0; i < r->nmembers; i++)
		r->nodes[i].m = r->members[i];
	gather_http(r, node_timeout_ms);
	if (!build_dcs(r)) {
		snprintf(r->zk_error, sizeof(r->zk_error), "out of memory");
		return false;
	}
	check_nodes(r);
	collect_models(r);
	if (r->nmodels)
		qsort(r->models, r->nmodels, sizeof(*r->models), cmp_model);
	for (uint32_t i = 0; i < r->nmodels; i++)
		compute_model(r, &r->models[i]);
	return true;
}

/* ========================================================================
 * Render
 * ===================================================================== */

static json_t *json_lag(int64_t lag)
{
	return lag == LAG_UNKNOWN || lag == LAG_NODATA ? json_null()
						       : json_integer(lag);
}


/* What the members' per-model status says about a model's roles and
 * rollback epochs (member znodes; nodes publish it, topo_set_status). */
struct roles_sum {
	uint32_t reporting, at_max;
	uint64_t epoch_max;
	char canaries[64];
	uint32_t baseline_id;
	uint64_t baseline_cut;
};

static void roles_sum(const struct report *r, const char *model,
		      struct roles_sum *s)
{
	size_t k = 0;

	memset(s, 0, sizeof(*s));
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < r->nmembers; i++) {
			const struct topo_member *m = &r->members[i];

			for (uint32_t j = 0; j < m->nmodels; j++) {
				const struct topo_model_status *ms =
					&m->models[j];

				if (strcmp(ms->model, model) != 0)
					continue;
				if (pass == 0) {
					s->reporting++;
					if (ms->epoch > s->epoch_max)
						s->epoch_max = ms->epoch;
					continue;
				}
				if (ms->epoch == s->epoch_max)
					s->at_max++;
				if (strcmp(ms->role, "canary") == 0 &&
				    k + 12 < sizeof(s->canaries))
					k += (size_t)snprintf(s->canaries + k,
						sizeof(s->canaries) - k,
						"%s%u", k ? "," : "",
						m->node_id);
				if (strcmp(ms->role, "baseline") == 0 &&
				    (!s->baseline_id ||
				     ms->cut < s->baseline_cut)) {
					s->baseline_id = m->node_id;
					s->baseline_cut = ms->cut;
				}
			}
		}
}

static json_t *render_json(const struct report *r)
{
	json_t *root, *dcs, *models, *probs;

	root = json_pack("{s:s,s:s,s:o,s:b,s:I,s:[],s:[],s:[]}",
			 "cluster", r->cluster, "zookeeper", r->hosts,
			 "time_ms", json_u64(r->time_ms),
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
	for (uint32_t d = 0; d < r->ndcs; d++) {
		const struct dc *dc = &r->dcs[d];
		json_t *jd, *nodes;

		jd = json_pack("{s:s,s:o,s:I,s:I,s:b,s:[]}", "dc", dc->name,
			       "leader", dc->leader ? json_pack(
				       "{s:I,s:s,s:o,s:o}", "id",
				       (json_int_t)dc->leader->node_id,
				       "addr", dc->leader->addr,
				       "epoch", json_u64(dc->leader->epoch),
				       "generation",
				       json_u64(dc->leader->generation))
					 : json_null(),
			       "nodes_total", (json_int_t)dc->nnodes,
			       "nodes_up", (json_int_t)dc->nup,
			       "flagged", dc->flagged, "nodes");
		nodes = json_object_get(jd, "nodes");
		for (uint32_t i = 0; i < r->nmembers; i++) {
			const struct node *nd = &r->nodes[i];
			const struct topo_member *m = &r->members[i];
			json_t *jn, *jm;

			if (strcmp(m->dc, dc->name) != 0)
				continue;
			jn = json_pack("{s:I,s:s,s:s,s:s,s:o,s:b,s:s,s:b}",
				       "id", (json_int_t)m->node_id,
				       "addr", m->addr, "admin", m->admin,
				       "roles", m->roles,
				       "generation", json_u64(m->generation),
				       "up", nd->state == NODE_UP,
				       "state", nd->state == NODE_UP ? "up" :
				       nd->state == NODE_BAD ? "bad-reply" :
				       "down",
				       "flagged", nd->flagged);
			json_object_set_new(jn, "leader", json_boolean(
				dc->leader &&
				dc->leader->node_id == m->node_id));
			if (nd->state != NODE_UP) {
				json_object_set_new(jn, "error",
						    json_string(nd->why));
				json_array_append_new(nodes, jn);
				continue;
			}
			json_object_set_new(jn, "status", json_pack(
				"{s:o,s:o,s:s,s:s,s:o,s:b,s:o,s:o,s:o}",
				"node_id", nd->has_id ? json_u64(nd->id)
						     : json_null(),
				"generation", nd->has_gen
						      ? json_u64(nd->generation)
						      : json_null(),
				"backend", nd->backend,
				"version", nd->version,
				"uptime_s", json_u64(nd->uptime_s),
				"stopping", nd->stopping,
				"zk", nd->has_topo ? json_string(nd->zk)
						   : json_null(),
				"leader", nd->leader < 0 ? json_null()
					  : json_boolean(nd->leader),
				"epoch", nd->has_topo ? json_u64(nd->epoch)
						      : json_null()));
			jm = json_array();
			for (uint32_t k = 0; k < r->nmodels; k++) {
				const struct node_model *pm =
					&r->models[k].per[i];

				if (!r->models[k].per || !pm->mj)
					continue;
				json_array_append_new(jm, json_pack(
					"{s:s,s:o,s:o,s:b,s:o}",
					"name", r->models[k].name,
					"max_version",
					json_u64(pm->max_version),
					"lag_ms", json_lag(pm->lag_ms),
					"no_data", pm->lag_ms == LAG_NODATA,
					"shards_behind",
					pm->behind < 0 ? json_null()
						       : json_integer(
								 pm->behind)));
			}
			json_object_set_new(jn, "models", jm);
			json_array_append_new(nodes, jn);
		}
		json_array_append_new(dcs, jd);
	}
	for (uint32_t k = 0; k < r->nmodels; k++) {
		const struct model *md = &r->models[k];
		json_t *jm, *jd;

		jm = json_pack("{s:s,s:b,s:o,s:o,s:o,s:o,s:o,s:[]}",
			       "name", md->name,
			       "registered", md->registered,
			       "priority", md->registered
				       ? json_integer(md->def.priority)
				       : json_null(),
			       "shards", md->registered
				       ? json_integer(md->def.shards)
				       : md->shards ? json_integer(md->shards)
						    : json_null(),
			       "tables", md->registered
				       ? json_integer(md->def.ntables)
				       : md->ntables
						 ? json_integer(md->ntables)
						 : json_null(),
			       "freshest_version", json_u64(md->freshest),
			       "freshest_ms",
			       json_u64(FR_HLC_PHYS(md->freshest)),
			       "dcs");
		{
			struct roles_sum rs;

			roles_sum(r, md->name, &rs);
			json_object_set_new(jm, "rollback", json_pack(
				"{s:o,s:I,s:I,s:s,s:o,s:o}",
				"epoch", json_u64(rs.epoch_max),
				"nodes_at_epoch", (json_int_t)rs.at_max,
				"nodes_reporting", (json_int_t)rs.reporting,
				"canaries", rs.canaries,
				"baseline", rs.baseline_id ?
					json_integer(rs.baseline_id) :
					json_null(),
				"baseline_cut", json_u64(rs.baseline_cut)));
		}
		jd = json_object_get(jm, "dcs");
		for (uint32_t d = 0; md->dcs && d < r->ndcs; d++) {
			const struct dc_model *dm = &md->dcs[d];

			json_array_append_new(jd, json_pack(
				"{s:s,s:I,s:I,s:o,s:b,s:o,s:o,s:b}",
				"dc", r->dcs[d].name,
				"nodes_serving", (json_int_t)dm->serving,
				"nodes_total", (json_int_t)r->dcs[d].nnodes,
				"lag_ms", dm->serving ? json_lag(dm->lag_ms)
						      : json_null(),
				"no_data", dm->serving &&
						   dm->lag_ms == LAG_NODATA,
				"shards_behind",
				dm->serving && dm->behind >= 0
					? json_integer(dm->behind)
					: json_null(),
				"slowest_node",
				dm->serving ? json_integer(dm->slowest)
					    : json_null(),
				"flagged", dm->flagged));
		}
		json_array_append_new(models, jm);
	}
	for (uint32_t i = 0; i < r->nproblems; i++) {
		const struct problem *p = &r->problems[i];

		json_array_append_new(probs, json_pack(
			"{s:s,s:o,s:o,s:o,s:s}", "kind", p->kind,
			"dc", p->dc[0] ? json_string(p->dc) : json_null(),
			"node", p->node ? json_integer(p->node) : json_null(),
			"model", p->model[0] ? json_string(p->model)
					     : json_null(),
			"message", p->msg));
	}
	return root;
}

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
	if (lag == LAG_NODATA)
		snprintf(buf, cap, "no data");
	else if (lag < 0)
		snprintf(buf, cap, "?");
	else
		snprintf(buf, cap, "%lld", (long long)lag);
	return buf;
}


static void render_text(const struct report *r, FILE *o)
{
	char tb[48], lb[24], bb[24], gb[24];
	uint32_t up = 0;

	for (uint32_t i = 0; i < r->nmembers; i++)
		up += r->nodes[i].state == NODE_UP;
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

	for (uint32_t d = 0; d < r->ndcs; d++) {
		const struct dc *dc = &r->dcs[d];

		fprintf(o, "\n%sDC %s  ", dc->flagged ? "! " : "", dc->name);
		if (dc->leader)
			fprintf(o, "leader %u (epoch %llu)\n",
				dc->leader->node_id,
				(unsigned long long)dc->leader->epoch);
		else
			fprintf(o, "no leader\n");
		fprintf(o, "  %-11s %-9s %6s  %-8s %-12s %-22s %s\n", "NODE",
			"STATE", "GEN", "BACKEND", "ZK", "ADDR", "ADMIN");
		for (uint32_t i = 0; i < r->nmembers; i++) {
			const struct node *nd = &r->nodes[i];
			const struct topo_member *m = &r->members[i];
			char id[16];

			if (strcmp(m->dc, dc->name) != 0)
				continue;
			snprintf(id, sizeof(id), "%u%s", m->node_id,
				 dc->leader && dc->leader->node_id ==
						       m->node_id ? "*" : "");
			snprintf(gb, sizeof(gb), "%llu",
				 (unsigned long long)m->generation);
			fprintf(o, "%s%-11s %-9s %6s  %-8s %-12s %-22s %s\n",
				nd->flagged ? "! " : "  ", id,
				nd->state == NODE_UP ? "up" :
				nd->state == NODE_BAD ? "bad-reply" : "down",
				gb,
				nd->state == NODE_UP ? nd->backend : "-",
				nd->state == NODE_UP && nd->has_topo ? nd->zk
								     : "-",
				m->addr, m->admin);
		}
	}

	for (uint32_t k = 0; k < r->nmodels; k++) {
		const struct model *md = &r->models[k];
		struct roles_sum rs;
		bool flagged = false;

		for (uint32_t d = 0; md->dcs && d < r->ndcs; d++)
			flagged |= md->dcs[d].flagged;
		fprintf(o, "\n%sMODEL %s  ", flagged ? "! " : "", md->name);
		if (md->registered)
			fprintf(o, "priority %u  %u shard%s  %u table%s",
				md->def.priority, md->def.shards,
				md->def.shards == 1 ? "" : "s",
				md->def.ntables,
				md->def.ntables == 1 ? "" : "s");
		else
			fprintf(o, "(not in the registry)  %u shard%s  %u "
				"table%s", md->shards,
				md->shards == 1 ? "" : "s", md->ntables,
				md->ntables == 1 ? "" : "s");
		if (md->freshest)
			fprintf(o, "  freshest %s\n",
				fmt_ms(FR_HLC_PHYS(md->freshest), tb,
				       sizeof(tb)));
		else
			fprintf(o, "  no data yet\n");
		roles_sum(r, md->name, &rs);
		if (rs.reporting) {
			fprintf(o, "  rollback epoch %llu on %u/%u node%s",
				(unsigned long long)rs.epoch_max, rs.at_max,
				rs.reporting, rs.reporting == 1 ? "" : "s");
			if (rs.canaries[0])
				fprintf(o, "  canary %s", rs.canaries);
			if (rs.baseline_id)
				fprintf(o, "  baseline %u (cut %s behind)",
					rs.baseline_id,
					fmt_lag((int64_t)(r->time_ms >
						FR_HLC_PHYS(rs.baseline_cut) ?
						r->time_ms -
						FR_HLC_PHYS(rs.baseline_cut) :
						0), lb, sizeof(lb)));
			fprintf(o, "\n");
		}
		if (r->ndcs)
			fprintf(o, "  %-16s %8s %10s %14s  %s\n", "DC",
				"SERVING", "LAG_MS", "SHARDS_BEHIND",
				"SLOWEST");
		for (uint32_t d = 0; md->dcs && d < r->ndcs; d++) {
			const struct dc_model *dm = &md->dcs[d];
			char sv[24], sl[16];

			snprintf(sv, sizeof(sv), "%u/%u", dm->serving,
				 r->dcs[d].nnodes);
			if (!dm->serving) {
				fprintf(o, "%s%-16s %8s %10s %14s  %s\n",
					dm->flagged ? "! " : "  ",
					r->dcs[d].name, sv, "-", "-", "-");
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

	if (r->nproblems) {
		fprintf(o, "\nPROBLEMS\n");
		for (uint32_t i = 0; i < r->nproblems; i++)
			fprintf(o, "! %-11s %s\n", r->problems[i].kind,
				r->problems[i].msg);
	}
}

/* ========================================================================
 * The command
 * ===================================================================== */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Gather and render one round; EXIT_RUNTIME when ZooKeeper failed.
 * a NULL: no session (watch mode), connect_err says why. */
static int one_round(struct topo_admin *a, const char *connect_err,
		     const struct cli_zk_opts *z, uint32_t node_timeout,
		     bool json, bool watch)
{
	struct report r;
	char *text = NULL;
	size_t len = 0;
	FILE *o;
	int rc;

	memset(&r, 0, sizeof(r));
	r.cluster = z->cluster;
	r.hosts = z->hosts;
	if (!a)
		snprintf(r.zk_error, sizeof(r.zk_error), "%s", connect_err);
	else if (!gather(&r, a, node_timeout) && !watch) {
		fprintf(stderr, "freshet %s: ZooKeeper %s: %s\n", CMD,
			z->hosts, r.zk_error);
		report_fini(&r);
		return EXIT_RUNTIME;
	}
	rc = r.zk_error[0] ? EXIT_RUNTIME
			   : r.nproblems ? EXIT_UNHEALTHY : 0;
	if (json) {
		if (print_json_line(CMD, render_json(&r)))
			rc = EXIT_RUNTIME;
		fflush(stdout);
		report_fini(&r);
		return rc;
	}
	/* One write per screen, so a redraw does not flicker. */
	o = open_memstream(&text, &len);
	if (!o) {
		fprintf(stderr, "freshet %s: out of memory\n", CMD);
		report_fini(&r);
		return EXIT_RUNTIME;
	}
	if (watch)
		fputs("\033[H\033[2J", o);
	render_text(&r, o);
	if (watch)
		fprintf(o, "\n(every %u ms; Ctrl-C to stop)\n", WATCH_MS);
	fclose(o);
	fwrite(text, 1, len, stdout);
	fflush(stdout);
	free(text);
	report_fini(&r);
	return rc;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "zk", required_argument, NULL, 'z' },
		{ "cluster", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "node-timeout", required_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_zk_opts z;
	struct topo_admin *a;
	struct sigaction sa;
	uint64_t node_timeout = NODE_TIMEOUT_DEFAULT;
	bool json = false, watch = false;
	enum fr_err err;
	int ch, rc;

	cli_zk_defaults(&z);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (ch) {
		case 'z': z.hosts = optarg; break;
		case 'c': z.cluster = optarg; break;
		case 'j': json = true; break;
		case 'w': watch = true; break;
		case 'T':
			if ((rc = parse_uint_opt(CMD, "--timeout", optarg,
						 INT32_MAX, &z.timeout_ms)))
				return rc;
			break;
		case 'N':
			if ((rc = parse_uint_opt(CMD, "--node-timeout", optarg,
						 INT32_MAX, &node_timeout)))
				return rc;
			if (node_timeout == 0)
				return usage_error(CMD, "--node-timeout 0: "
						   "expected 1..%d ms",
						   INT32_MAX);
			break;
		case 'h':
			fputs(status_help, stdout);
			return 0;
		default:
			return bad_option(CMD, ch, argv);
		}
	}
	if (optind < argc)
		return usage_error(CMD, "unexpected argument '%s'",
				   argv[optind]);
	if ((rc = cli_zk_check(CMD, &z)))
		return rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "freshet %s: cannot initialise libcurl\n", CMD);
		return EXIT_RUNTIME;
	}
	a = topo_admin_connect(z.hosts, z.cluster, (uint32_t)z.timeout_ms,
			       &err);
	if (!a) {
		fprintf(stderr, "freshet %s: %s\n", CMD,
			*fr_errmsg() ? fr_errmsg() : fr_strerror(err));
		curl_global_cleanup();
		return err == FR_ERR_INVAL ? EXIT_USAGE : EXIT_RUNTIME;
	}
	if (!watch) {
		rc = one_round(a, NULL, &z, (uint32_t)node_timeout, json,
			       false);
		goto out;
	}

	/* No SA_RESTART: the sleep below wakes on Ctrl-C. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		uint64_t next = fr_mono_ms() + WATCH_MS;
		char why[512] = "";

		/* After a failed round the session may be gone for good
		 * (expired while ZooKeeper was away): start a new one. */
		if (!a) {
			/* Bounded by a redraw, so Ctrl-C is heard. */
			a = topo_admin_connect(z.hosts, z.cluster,
					       z.timeout_ms < WATCH_MS ?
					       (uint32_t)z.timeout_ms :
					       WATCH_MS, &err);
			if (!a)
				snprintf(why, sizeof(why), "%s", fr_errmsg());
		}
		if (one_round(a, why, &z, (uint32_t)node_timeout, json,
			      true) == EXIT_RUNTIME) {
			topo_admin_close(a);
			a = NULL;
		}
		while (!interrupted && fr_mono_ms() < next) {
			struct timespec ts = { 0, 50 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	rc = 0;
out:
	topo_admin_close(a);
	curl_global_cleanup();
	return rc;
}
