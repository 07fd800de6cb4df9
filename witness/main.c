/*
 * main.c — freshet-witness (docs/design.md §6): every --interval seconds
 * it finds a model's canary and baseline nodes in ZooKeeper, looks the
 * probe set's rows up on both, scores and decides (witness.h), and acts:
 * files a rollback to the baseline's cut when the canary is corrupted, and
 * keeps models/<model>/state up to date.  docs/witness.md is its manual.
 *
 * A round, and the function that does each step:
 *
 *   round_run
 *     1. pick_nodes     topo_admin_members: the live canary and baseline
 *                       (lowest node id of each role), and the oldest
 *                       undo horizon any live node of the model has
 *     2. read_state     topo_admin_state_get (state + version) and
 *                       topo_admin_rollbacks (newest epoch E); a node not
 *                       yet at E means a rollback is still spreading: skip
 *     3. lookup_node x2 fr_client_lookup_rows, batched per table
 *     4. score          predictions for the examples whose rows both nodes
 *                       hold, then witness_decide
 *     5. act            the state machine below, with compare-and-set on
 *                       the state version read in step 2
 *   round_log, round_json (--once), witness_metrics_round (metrics.c)
 *
 * State transitions the witness makes (anything else: no action):
 *
 *   decision   state before  action
 *   corrupted  != corrupted  file rollback {t = baseline cut, r = HLC now}
 *                            and state corrupted, in one ZooKeeper multi
 *                            (refused, state corrupted "cannot roll back:
 *                            ...", when the cut is 0 or older than every
 *                            live node's undo horizon)
 *   corrupted  corrupted     log "still regressed ...; not filing again"
 *   healthy    != healthy    state healthy
 *   uncertain  healthy       state uncertain
 *
 * Two witnesses may run: every write is conditional on the state version
 * read in step 2, so when both decide at once one write wins and the
 * other gets FR_ERR_BUSY (counted as a CAS conflict, not retried): one
 * regression files one rollback.
 *
 * Threads: one.  Rounds run on a libevent timer; /metrics (--metrics) is
 * served by evhttp on the same loop, between rounds (a round blocks the
 * loop for its ZooKeeper calls and lookups, each bounded by a timeout).
 *
 * Not here: probe parsing, the statistics and the metrics' families and
 * text (probe.c, score.c, metrics.c), option and message helpers shared
 * with `freshet` (cli/cliutil.c), the ZooKeeper client (topology/), the
 * node protocol (client/).
 */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "cli/cliutil.h"
#include "client/client.h"
#include "common/common.h"
#include "shard/shard.h"
#include "topology/topology.h"
#include "witness/witness.h"


#define PROG "freshet-witness"
#define MOD "witness"

#define NODE_TIMEOUT_DEFAULT 5000
#define INTERVAL_DEFAULT 5.0
#define INTERVAL_MIN 0.1
#define INTERVAL_MAX 86400.0
/* Bytes of values asked of a node in one lookup (far below the frame
 * limit), and the most row values one node's lookups may hold. */
#define LOOKUP_BYTES (8u << 20)
#define VALUES_MAX ((uint64_t)2 << 30)

_Static_assert(WITNESS_NAME_MAX == SHARD_NAME_MAX,
	       "probe table names are model table names");

/* ========================================================================
 * Options
 * ===================================================================== */

static const char help[] =
	"usage: freshet-witness --zk HOSTS --model M --probe FILE [options]\n"
	"\n"
	"Compare a model's canary with its baseline on a labelled probe set\n"
	"every --interval seconds.  A significant regression beyond the margin\n"
	"marks the model corrupted in ZooKeeper and files a rollback to the\n"
	"baseline's cut; a smaller or noisy one marks it uncertain.  Manual:\n"
	"docs/witness.md.\n"
	"\n"
	CLI_ZK_HELP
	"  --model M           the model to watch\n"
	"  --probe FILE        labelled probe set, one example per line:\n"
	"                      label<TAB>user_table<TAB>user_row<TAB>"
	"item_table<TAB>item_row\n"
	"                      (label 0|1; '#' comments, blank lines skipped)\n"
	"  --interval S        seconds between rounds (default 5; 0.1..86400)\n"
	"  --once              one round, print it as one JSON line, exit\n"
	"  --dry-run           decide and log, write nothing to ZooKeeper\n"
	"\n"
	"Decision (docs/witness.md has the exact rule):\n"
	"  --margin X          log-loss increase that counts (default 0.02);\n"
	"                      --threshold X is the same option\n"
	"  --auc-margin X      AUC drop that counts (default 0.01)\n"
	"  --confidence C      bootstrap interval level (default 0.99)\n"
	"  --resamples N       bootstrap resamples (default 1000; 10..100000)\n"
	"  --min-samples N     fewer usable examples: never corrupted, only\n"
	"                      uncertain (default 200)\n"
	"  --seed N            bootstrap seed (default 1)\n"
	"\n"
	"  --node-timeout MS   connect and lookup timeout per node\n"
	"                      (default 5000)\n"
	"  --metrics HOST:PORT serve Prometheus text at /metrics\n"
	"  --log-level L       debug|info|warn|error|off (default info)\n"
	"  --version, --help\n"
	"\n"
	"Exit: 0 stopped by SIGINT/SIGTERM, or --once decided; 1 runtime\n"
	"failure (ZooKeeper unreachable at start, model unknown, --once could\n"
	"not decide or could not write); 2 usage or probe file error.\n";

struct opts {
	struct cli_zk_opts z;         /* --zk, --cluster, --timeout */
	const char *model, *probe, *metrics;
	uint64_t node_timeout_ms;
	double interval_s;
	struct witness_opts w;
	bool once, dry_run;
	enum fr_log_level log_level;
	char metrics_host[FR_HOST_MAX + 1];
	uint16_t metrics_port;
};

/* A uint32 option value: 0, or CLI_EXIT_USAGE printed. */
static int parse_u32(const char *opt, const char *s, uint32_t *out)
{
	uint64_t v;
	int rc = cli_parse_uint_opt(NULL, opt, s, UINT32_MAX, &v);

	if (!rc)
		*out = (uint32_t)v;
	return rc;
}

/* One option (getopt's val ch, its value optarg) into o: 0, -1 when the
 * program is done (--version printed), or CLI_EXIT_USAGE printed. */
static int parse_opt(int ch, struct opts *o)
{
	char b[48];
	int rc = 0;

	switch (ch) {
	case 'm': o->model = optarg; break;
	case 'p': o->probe = optarg; break;
	case 'x': o->metrics = optarg; break;
	case '1': o->once = true; break;
	case 'n': o->dry_run = true; break;
	case 'i':
		if ((rc = cli_parse_double_opt(NULL, "--interval", optarg,
					       &o->interval_s)))
			break;
		if (o->interval_s < INTERVAL_MIN ||
		    o->interval_s > INTERVAL_MAX)
			rc = cli_usage_error(NULL, "--interval %s: expected "
					     "seconds in 0.1..86400",
					     fr_show(b, sizeof(b), optarg));
		break;
	case 'M':
	case 'H':
		rc = cli_parse_double_opt(NULL, ch == 'H' ? "--threshold"
					  : "--margin",
					  optarg, &o->w.margin);
		break;
	case 'A':
		rc = cli_parse_double_opt(NULL, "--auc-margin", optarg,
					  &o->w.auc_margin);
		break;
	case 'C':
		rc = cli_parse_double_opt(NULL, "--confidence", optarg,
					  &o->w.confidence);
		break;
	case 'R':
		rc = parse_u32("--resamples", optarg, &o->w.resamples);
		break;
	case 'S':
		rc = parse_u32("--min-samples", optarg, &o->w.min_samples);
		break;
	case 's':
		rc = cli_parse_uint_opt(NULL, "--seed", optarg, UINT64_MAX,
					&o->w.seed);
		break;
	case 'N':
		rc = cli_parse_uint_opt(NULL, "--node-timeout", optarg,
					INT32_MAX, &o->node_timeout_ms);
		if (!rc && o->node_timeout_ms == 0)
			rc = cli_usage_error(NULL, "--node-timeout 0: expected "
					     "1..%d ms", INT32_MAX);
		break;
	case 'l':
		if (fr_log_level_parse(optarg, &o->log_level))
			rc = cli_usage_error(NULL, "--log-level '%s': expected "
					     "debug, info, warn, error or off",
					     fr_show(b, sizeof(b), optarg));
		break;
	case 'V':
		printf(PROG " %s\n", fr_version());
		return -1;
	}
	return rc;
}

/* All the options into o: 0 to run, -1 when done (--help, --version),
 * else CLI_EXIT_USAGE (printed). */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		CLI_ZK_LONGOPTS,
		{ "model", required_argument, NULL, 'm' },
		{ "probe", required_argument, NULL, 'p' },
		{ "interval", required_argument, NULL, 'i' },
		{ "once", no_argument, NULL, '1' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "margin", required_argument, NULL, 'M' },
		{ "threshold", required_argument, NULL, 'H' },
		{ "auc-margin", required_argument, NULL, 'A' },
		{ "confidence", required_argument, NULL, 'C' },
		{ "resamples", required_argument, NULL, 'R' },
		{ "min-samples", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 's' },
		{ "node-timeout", required_argument, NULL, 'N' },
		{ "metrics", required_argument, NULL, 'x' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_getopt g;
	int ch, rc;

	memset(o, 0, sizeof(*o));
	o->node_timeout_ms = NODE_TIMEOUT_DEFAULT;
	o->interval_s = INTERVAL_DEFAULT;
	o->log_level = FR_LOG_INFO;
	witness_opts_default(&o->w);

	cli_getopt_init(&g, NULL, argc, argv, lo, help, &o->z);
	while ((ch = cli_getopt_next(&g, &rc)) != CLI_OPT_END) {
		if (ch == CLI_OPT_STOP)
			return rc ? rc : -1;
		if ((rc = parse_opt(ch, o)))
			return rc;
	}
	if ((rc = cli_getopt_no_args(&g)) || (rc = cli_zk_check(NULL, &o->z)) ||
	    (rc = cli_name_opt(NULL, "--model", o->model, SHARD_NAME_MAX)))
		return rc;
	if (!o->probe)
		return cli_usage_error(NULL, "--probe FILE is required");
	if (witness_opts_check(&o->w))
		return cli_usage_error(NULL, "%s", fr_errmsg());
	if (o->metrics &&
	    fr_parse_hostport("--metrics", o->metrics, o->metrics_host,
			      sizeof(o->metrics_host), &o->metrics_port))
		return cli_usage_error(NULL, "%s", fr_errmsg());
	return 0;
}

/* ========================================================================
 * State
 * ===================================================================== */

enum action {
	ACT_NONE = 0,
	ACT_ROLLBACK_FILED,
	ACT_ROLLBACK_REFUSED,
	ACT_SET_HEALTHY,
	ACT_SET_UNCERTAIN,
	ACT_CAS_CONFLICT,
	ACT_NOT_AGAIN,
	ACT_ERROR,
};

static const char *const action_names[] = {
	[ACT_NONE] = "none",
	[ACT_ROLLBACK_FILED] = "rollback-filed",
	[ACT_ROLLBACK_REFUSED] = "rollback-refused",
	[ACT_SET_HEALTHY] = "state-healthy",
	[ACT_SET_UNCERTAIN] = "state-uncertain",
	[ACT_CAS_CONFLICT] = "cas-conflict",
	[ACT_NOT_AGAIN] = "not-filing-again",
	[ACT_ERROR] = "error",
};

static const char *const would_names[] = {
	[ACT_NONE] = "none",
	[ACT_ROLLBACK_FILED] = "would-file-rollback",
	[ACT_ROLLBACK_REFUSED] = "would-refuse-rollback",
	[ACT_SET_HEALTHY] = "would-set-healthy",
	[ACT_SET_UNCERTAIN] = "would-set-uncertain",
	[ACT_CAS_CONFLICT] = "cas-conflict",
	[ACT_NOT_AGAIN] = "not-filing-again",
	[ACT_ERROR] = "error",
};

struct pick {
	bool found;
	uint32_t id;
	char addr[TOPO_ADDR_MAX + 1];
	uint64_t epoch, cut, horizon;
};

/* Everything one round learnt and did (logged, and the --once JSON). */
struct round {
	uint64_t seq;
	uint64_t at_ms;
	enum witness_skip skip;
	char msg[768];                /* skip reason or action detail */
	struct pick canary, baseline;
	uint32_t nodes;               /* live nodes that report the model */
	uint64_t min_horizon;         /* oldest cut any of them reaches */
	bool have_state;
	struct topo_health state;
	int32_t state_version;
	uint64_t epoch;               /* newest rollback epoch E */
	uint32_t missing_c, missing_b;   /* rows never written */
	uint32_t excluded;            /* examples left out for them */
	bool decided;
	struct witness_result res;
	enum action action;
	uint64_t filed_epoch;
	char reason[TOPO_REASON_MAX + 1];   /* the numbers, for ZooKeeper */
};

struct wit {
	struct opts o;
	struct witness_probe probe;
	struct shard_model_def def;
	uint32_t *tdim;               /* per probe table: its dim */
	uint64_t *rows;               /* per key: its row id (contiguous) */
	uint64_t *voff;               /* per key: offset of its values */
	uint64_t nvalues;             /* floats per node */
	float *vals[2];               /* canary, baseline */
	uint8_t *missing;             /* per key: 1 canary, 2 baseline */
	double *pc, *pb;
	uint8_t *y;
	struct topo_admin *zk;
	char who[TOPO_WHO_MAX + 1];
	uint64_t seq;
	enum witness_skip last_skip;
	char last_skip_msg[768];
	struct witness_metrics m;
	/* loop mode */
	struct event_base *base;
	struct event *timer, *sigint, *sigterm;
	struct evhttp *http;
};

static void zk_drop(struct wit *w)
{
	topo_admin_close(w->zk);
	w->zk = NULL;
}

/* A ZooKeeper failure that may have cost the session: reconnect at the
 * next round (a new session is cheap; reading an expired one is not). */
static bool zk_broken(enum fr_err err)
{
	return err == FR_ERR_ZK || err == FR_ERR_TIMEOUT ||
	       err == FR_ERR_CLOSED || err == FR_ERR_IO;
}

/* ========================================================================
 * Steps 1 and 2: who, and where things stand
 * ===================================================================== */

static void pick_one(struct pick *p, const struct topo_member *m,
		     const struct topo_model_status *s)
{
	if (p->found && p->id <= m->node_id)
		return;
	p->found = true;
	p->id = m->node_id;
	snprintf(p->addr, sizeof(p->addr), "%s", m->addr);
	p->epoch = s->epoch;
	p->cut = s->cut;
	p->horizon = s->horizon;
}

static bool pick_nodes(struct wit *w, struct round *r)
{
	struct topo_member *mem = NULL;
	uint32_t n = 0, bad = 0;
	enum fr_err err;

	err = topo_admin_members(w->zk, &mem, &n, &bad);
	if (err) {
		r->skip = WITNESS_SKIP_ZK;
		snprintf(r->msg, sizeof(r->msg), "cannot list members: %s: %s",
			 fr_strerror(err), fr_errmsg());
		if (zk_broken(err))
			zk_drop(w);
		return false;
	}
	r->min_horizon = UINT64_MAX;
	for (uint32_t i = 0; i < n; i++) {
		const struct topo_model_status *s =
			cli_member_model(&mem[i], w->o.model);

		if (!s)
			continue;
		r->nodes++;
		if (s->horizon < r->min_horizon)
			r->min_horizon = s->horizon;
		if (strcmp(s->role, "canary") == 0)
			pick_one(&r->canary, &mem[i], s);
		else if (strcmp(s->role, "baseline") == 0)
			pick_one(&r->baseline, &mem[i], s);
	}
	free(mem);
	if (!r->canary.found || !r->baseline.found) {
		const char *role = r->canary.found ? "baseline" : "canary";

		r->skip = r->canary.found ? WITNESS_SKIP_NO_BASELINE
					  : WITNESS_SKIP_NO_CANARY;
		snprintf(r->msg, sizeof(r->msg), "no live node reports model "
			 "'%s' with role %s (%u node%s)", w->o.model, role,
			 r->nodes,
			 r->nodes == 1 ? " reports it" : "s report it");
		return false;
	}
	return true;
}

static bool read_state(struct wit *w, struct round *r)
{
	struct topo_rollback *rb = NULL;
	uint32_t n = 0, bad = 0;
	enum fr_err err;

	err = topo_admin_state_get(w->zk, w->o.model, &r->state,
				   &r->state_version);
	if (!err)
		err = topo_admin_rollbacks(w->zk, w->o.model, &rb, &n, &bad);
	if (err) {
		r->skip = WITNESS_SKIP_ZK;
		snprintf(r->msg, sizeof(r->msg), "cannot read the state of "
			 "model '%s': %s: %s", w->o.model, fr_strerror(err),
			 fr_errmsg());
		if (zk_broken(err))
			zk_drop(w);
		return false;
	}
	r->have_state = true;
	for (uint32_t i = 0; i < n; i++)
		if (rb[i].epoch > r->epoch)
			r->epoch = rb[i].epoch;
	free(rb);
	if (r->canary.epoch != r->epoch || r->baseline.epoch != r->epoch) {
		r->skip = WITNESS_SKIP_ROLLBACK;
		snprintf(r->msg, sizeof(r->msg), "rollback epoch %llu in "
			 "progress (canary node %u at epoch %llu, baseline "
			 "node %u at epoch %llu)",
			 (unsigned long long)r->epoch, r->canary.id,
			 (unsigned long long)r->canary.epoch, r->baseline.id,
			 (unsigned long long)r->baseline.epoch);
		return false;
	}
	return true;
}

/* ========================================================================
 * Step 3: rows
 * ===================================================================== */

/* Look every probe row up on one node: side 0 canary, 1 baseline. */
static bool lookup_node(struct wit *w, struct round *r, int side)
{
	const struct pick *p = side ? &r->baseline : &r->canary;
	const char *role = side ? "baseline" : "canary";
	const struct witness_probe *pr = &w->probe;
	struct fr_client *c;
	char host[TOPO_ADDR_MAX + 1];
	uint16_t port;
	enum fr_err err;
	bool ok = false;

	if (fr_parse_hostport("address", p->addr, host, sizeof(host),
			      &port)) {
		snprintf(r->msg, sizeof(r->msg), "%s node %u: %s", role,
			 p->id, fr_errmsg());
		return false;
	}
	c = fr_client_connect(host, port, (int)w->o.node_timeout_ms, &err);
	if (!c) {
		snprintf(r->msg, sizeof(r->msg), "%s node %u (%s): cannot "
			 "connect: %s: %s", role, p->id, p->addr,
			 fr_strerror(err), fr_errmsg());
		return false;
	}
	for (uint32_t t = 0; t < pr->ntables; t++) {
		uint32_t dim = w->tdim[t];
		uint32_t chunk = LOOKUP_BYTES / (4u * dim);

		if (chunk == 0)
			chunk = 1;
		for (uint32_t k = pr->table_first[t]; k < pr->table_first[t + 1];
		     k += chunk) {
			uint32_t m = pr->table_first[t + 1] - k;
			struct fr_client_rows out;

			if (m > chunk)
				m = chunk;
			err = fr_client_lookup_rows(c, w->o.model,
						    pr->tables[t], &w->rows[k],
						    m, &out);
			if (err) {
				snprintf(r->msg, sizeof(r->msg),
					 "%s node %u (%s): lookup of %u rows "
					 "of table '%s': %s: %s", role, p->id,
					 p->addr, m, pr->tables[t],
					 fr_strerror(err),
					 fr_client_errmsg(c));
				goto out;
			}
			if (out.dim != dim || out.n != m) {
				snprintf(r->msg, sizeof(r->msg),
					 "%s node %u (%s): table '%s' answered "
					 "%u rows of dim %u; asked %u rows, "
					 "the model says dim %u", role, p->id,
					 p->addr, pr->tables[t], out.n,
					 out.dim, m, dim);
				fr_client_rows_fini(&out);
				goto out;
			}
			memcpy(w->vals[side] + w->voff[k], out.values,
			       (size_t)m * dim * sizeof(float));
			for (uint32_t j = 0; j < m; j++)
				if (out.versions[j] == 0) {
					w->missing[k + j] |= (uint8_t)(1 << side);
					if (side)
						r->missing_b++;
					else
						r->missing_c++;
				}
			fr_client_rows_fini(&out);
		}
	}
	ok = true;
out:
	fr_client_close(c);
	return ok;
}

/* ========================================================================
 * Step 4: score
 * ===================================================================== */

static bool score(struct wit *w, struct round *r)
{
	const struct witness_probe *pr = &w->probe;
	uint32_t n = 0;
	enum fr_err err;

	for (uint32_t i = 0; i < pr->n; i++) {
		uint32_t u = pr->user[i], v = pr->item[i];
		uint32_t dim = w->tdim[pr->keys[u].table];

		if (w->missing[u] || w->missing[v]) {
			r->excluded++;
			continue;
		}
		w->pc[n] = witness_predict(w->vals[0] + w->voff[u],
					   w->vals[0] + w->voff[v], dim);
		w->pb[n] = witness_predict(w->vals[1] + w->voff[u],
					   w->vals[1] + w->voff[v], dim);
		w->y[n] = pr->labels[i];
		n++;
	}
	if (n == 0) {
		r->skip = WITNESS_SKIP_ROWS_MISSING;
		snprintf(r->msg, sizeof(r->msg), "none of the %u examples has "
			 "all its rows written on both nodes (%u of %u rows "
			 "never written on the canary, %u on the baseline)",
			 pr->n, r->missing_c, pr->nkeys, r->missing_b);
		return false;
	}
	err = witness_decide(w->pc, w->pb, w->y, n, &w->o.w, &r->res);
	if (err) {
		r->skip = WITNESS_SKIP_SCORE;
		snprintf(r->msg, sizeof(r->msg), "cannot score: %s: %s",
			 fr_strerror(err), fr_errmsg());
		return false;
	}
	r->decided = true;
	return true;
}

/* ========================================================================
 * Step 5: act
 * ===================================================================== */

/* snprintf for text that may be cut on purpose (ZooKeeper's reason and
 * why fields hold TOPO_REASON_MAX bytes: the end is cut). */
static void text_cut(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void text_cut(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

/* "logloss +0.3100 [+0.2500,+0.3700] auc -0.1200 [-0.1500,-0.0900]
 * n=2000 canary=3 baseline=7" */
static void numbers(char *buf, size_t cap, const struct round *r)
{
	const struct witness_result *s = &r->res;

	snprintf(buf, cap, "logloss %+.4f [%+.4f,%+.4f] auc %+.4f "
		 "[%+.4f,%+.4f] n=%u canary=%u baseline=%u", s->delta,
		 s->ci_lo, s->ci_hi, s->auc_delta, s->auc_ci_lo, s->auc_ci_hi,
		 s->n, r->canary.id, r->baseline.id);
}

/* After a write that failed: count, say why, drop a broken session. */
static void write_failed(struct wit *w, struct round *r, enum fr_err err,
			 const char *what)
{
	if (err == FR_ERR_BUSY) {
		r->action = ACT_CAS_CONFLICT;
		w->m.cas_conflicts++;
		snprintf(r->msg, sizeof(r->msg), "%s: the state changed since "
			 "it was read (version %d): another witness or an "
			 "operator acted first; not retried this round", what,
			 (int)r->state_version);
		return;
	}
	r->action = ACT_ERROR;
	w->m.action_errors++;
	snprintf(r->msg, sizeof(r->msg), "%s failed: %s: %s", what,
		 fr_strerror(err), fr_errmsg());
	if (zk_broken(err))
		zk_drop(w);
}

static void set_state(struct wit *w, struct round *r,
		      enum topo_health_state to, const char *why,
		      enum action act)
{
	struct topo_health h = r->state;
	enum fr_err err;

	r->action = act;
	snprintf(r->msg, sizeof(r->msg), "state %s -> %s",
		 topo_health_name(r->state.state), topo_health_name(to));
	if (w->o.dry_run)
		return;
	topo_health_push(&h, to, w->who, why, fr_wall_ms(NULL));
	err = topo_admin_state_set(w->zk, w->o.model, &h, r->state_version);
	if (err) {
		write_failed(w, r, err, "setting the state");
		return;
	}
	w->m.state_changes++;
}

static void file_rollback(struct wit *w, struct round *r)
{
	uint64_t now = fr_wall_ms(NULL), t = r->baseline.cut;
	uint64_t rr = FR_HLC_MAKE(now, 0xffff), epoch = 0;
	struct topo_rollback d = { .t = t, .r = rr, .at_ms = now };
	struct topo_health h = r->state;
	char refuse[384] = "", why[TOPO_REASON_MAX + 1];
	enum fr_err err;

	if (t == 0)
		snprintf(refuse, sizeof(refuse), "baseline node %u reports no "
			 "cut yet (0)", r->baseline.id);
	else if (t >= rr)
		snprintf(refuse, sizeof(refuse), "baseline cut %llu is not "
			 "older than now (%llu)", (unsigned long long)t,
			 (unsigned long long)rr);
	else if (t < r->min_horizon)
		snprintf(refuse, sizeof(refuse), "baseline cut %llu is older "
			 "than every live node's undo horizon (the oldest "
			 "reaches %llu)", (unsigned long long)t,
			 (unsigned long long)r->min_horizon);
	if (refuse[0]) {
		r->action = ACT_ROLLBACK_REFUSED;
		w->m.rollbacks_refused++;
		text_cut(why, sizeof(why), "cannot roll back: %s; %s", refuse,
			 r->reason);
		snprintf(r->msg, sizeof(r->msg), "cannot roll back: %s; state "
			 "%s -> corrupted", refuse,
			 topo_health_name(r->state.state));
		if (w->o.dry_run)
			return;
		topo_health_push(&h, TOPO_CORRUPTED, w->who, why, now);
		err = topo_admin_state_set(w->zk, w->o.model, &h,
					   r->state_version);
		if (err)
			write_failed(w, r, err, "setting the state corrupted "
				     "(rollback refused)");
		else
			w->m.state_changes++;
		return;
	}

	r->action = ACT_ROLLBACK_FILED;
	snprintf(r->msg, sizeof(r->msg), "rollback to baseline node %u's cut "
		 "t=%llu, revoking until r=%llu; state %s -> corrupted",
		 r->baseline.id, (unsigned long long)t,
		 (unsigned long long)rr, topo_health_name(r->state.state));
	if (w->o.dry_run)
		return;
	snprintf(d.reason, sizeof(d.reason), "%s", r->reason);
	snprintf(d.who, sizeof(d.who), "%s", w->who);
	topo_health_push(&h, TOPO_CORRUPTED, w->who, r->reason, now);
	err = topo_admin_rollback_file(w->zk, w->o.model, &d, &h,
				       r->state_version, &epoch);
	if (err) {
		write_failed(w, r, err, "filing the rollback");
		return;
	}
	r->filed_epoch = epoch;
	w->m.rollbacks_filed++;
	w->m.state_changes++;
	snprintf(r->msg, sizeof(r->msg), "rollback epoch %llu filed: target "
		 "cut t=%llu (baseline node %u), revoke until r=%llu; state "
		 "%s -> corrupted", (unsigned long long)epoch,
		 (unsigned long long)t, r->baseline.id,
		 (unsigned long long)rr, topo_health_name(r->state.state));
}

static void act(struct wit *w, struct round *r)
{
	enum topo_health_state s = r->state.state;
	char why[TOPO_REASON_MAX + 1];

	numbers(r->reason, sizeof(r->reason), r);
	switch (r->res.decision) {
	case WITNESS_CORRUPTED:
		if (s != TOPO_CORRUPTED) {
			file_rollback(w, r);
			return;
		}
		r->action = ACT_NOT_AGAIN;
		if (r->epoch)
			snprintf(r->msg, sizeof(r->msg), "still regressed "
				 "after rollback epoch %llu; not filing "
				 "again", (unsigned long long)r->epoch);
		else
			snprintf(r->msg, sizeof(r->msg), "still regressed; "
				 "the state is already corrupted (no "
				 "rollback filed); not filing");
		return;
	case WITNESS_HEALTHY:
		if (s == TOPO_HEALTHY)
			return;
		text_cut(why, sizeof(why), "healthy: %s", r->reason);
		set_state(w, r, TOPO_HEALTHY, why, ACT_SET_HEALTHY);
		return;
	case WITNESS_UNCERTAIN:
		if (s != TOPO_HEALTHY)
			return;
		text_cut(why, sizeof(why), "uncertain (%s): %s", r->res.why,
			 r->reason);
		set_state(w, r, TOPO_UNCERTAIN, why, ACT_SET_UNCERTAIN);
		return;
	}
}

/* ========================================================================
 * A round, its log line and its JSON
 * ===================================================================== */

static void round_run(struct wit *w, struct round *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = ++w->seq;
	r->at_ms = fr_wall_ms(NULL);
	r->state_version = -1;
	if (!w->zk) {
		w->zk = cli_zk_connect(NULL, &w->o.z, w->o.z.timeout_ms, NULL);
		if (!w->zk) {
			r->skip = WITNESS_SKIP_ZK;
			snprintf(r->msg, sizeof(r->msg), "%s",
				 cli_errtext(FR_ERR_ZK));
			return;
		}
	}
	if (!pick_nodes(w, r) || !read_state(w, r))
		return;
	memset(w->missing, 0, w->probe.nkeys);
	if (!lookup_node(w, r, 0) || !lookup_node(w, r, 1)) {
		r->skip = WITNESS_SKIP_LOOKUP;
		return;
	}
	if (!score(w, r))
		return;
	act(w, r);
}

/* %.5f, or "nan". */
static const char *num(char *buf, size_t cap, const char *fmt, double v)
{
	if (isnan(v))
		snprintf(buf, cap, "nan");
	else
		snprintf(buf, cap, fmt, v);
	return buf;
}

static const char *act_name(const struct wit *w, enum action a)
{
	return w->o.dry_run ? would_names[a] : action_names[a];
}

static void round_log(struct wit *w, const struct round *r)
{
	const struct witness_result *s = &r->res;
	char a[10][32];
	enum fr_log_level lvl;

	if (!r->decided) {
		/* The same reason round after round is logged once. */
		bool same = r->skip == w->last_skip &&
			    strcmp(r->msg, w->last_skip_msg) == 0;

		fr_log(same ? FR_LOG_DEBUG : FR_LOG_WARN, MOD,
		       "round %llu: model=%s skipped (%s): %s",
		       (unsigned long long)r->seq, w->o.model,
		       witness_skip_name(r->skip), r->msg);
		w->last_skip = r->skip;
		snprintf(w->last_skip_msg, sizeof(w->last_skip_msg), "%s",
			 r->msg);
		return;
	}
	w->last_skip = WITNESS_SKIP_NONE;
	w->last_skip_msg[0] = '\0';
	if (r->action == ACT_ERROR || r->action == ACT_ROLLBACK_REFUSED)
		lvl = FR_LOG_ERROR;
	else if (r->res.decision == WITNESS_CORRUPTED ||
		 r->action == ACT_CAS_CONFLICT)
		lvl = FR_LOG_WARN;
	else
		lvl = FR_LOG_INFO;
	fr_log(lvl, MOD,
	       "round %llu: model=%s canary=%u baseline=%u epoch=%llu "
	       "state=%s n=%u excluded=%u logloss_c=%s logloss_b=%s "
	       "delta=%s ci=[%s,%s] p_delta=%.4f auc_c=%s auc_b=%s "
	       "auc_delta=%s auc_ci=[%s,%s] p_auc=%.4f bad_c=%u bad_b=%u "
	       "decision=%s (%s) action=%s%s%s",
	       (unsigned long long)r->seq, w->o.model, r->canary.id,
	       r->baseline.id, (unsigned long long)r->epoch,
	       topo_health_name(r->state.state), s->n, r->excluded,
	       num(a[0], 32, "%.5f", s->logloss_c),
	       num(a[1], 32, "%.5f", s->logloss_b),
	       num(a[2], 32, "%+.5f", s->delta),
	       num(a[3], 32, "%+.5f", s->ci_lo),
	       num(a[4], 32, "%+.5f", s->ci_hi), s->p_delta,
	       num(a[5], 32, "%.5f", s->auc_c),
	       num(a[6], 32, "%.5f", s->auc_b),
	       num(a[7], 32, "%+.5f", s->auc_delta),
	       num(a[8], 32, "%+.5f", s->auc_ci_lo),
	       num(a[9], 32, "%+.5f", s->auc_ci_hi), s->p_auc,
	       s->bad_c, s->bad_b, witness_decision_name(s->decision),
	       s->why, act_name(w, r->action), r->msg[0] ? ": " : "",
	       r->msg);
}

static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jpick(const struct pick *p)
{
	if (!p->found)
		return json_null();
	return json_pack("{s:I, s:s, s:o, s:o, s:o}", "id", (json_int_t)p->id,
			 "addr", p->addr, "epoch", cli_json_u64(p->epoch),
			 "cut", cli_json_u64(p->cut),
			 "horizon", cli_json_u64(p->horizon));
}

/* The --once line's object (NULL when out of memory). */
static json_t *round_json(const struct wit *w, const struct round *r)
{
	const struct witness_result *s = &r->res;
	json_t *o;

	o = json_pack("{s:s, s:I, s:o, s:b, s:s, s:s, s:s}",
		      "model", w->o.model, "round", (json_int_t)r->seq,
		      "at_ms", cli_json_u64(r->at_ms), "dry_run", w->o.dry_run,
		      "decision",
		      r->decided ? witness_decision_name(s->decision)
				 : "skipped",
		      "why", r->decided ? s->why : witness_skip_name(r->skip),
		      "action", r->decided ? act_name(w, r->action) : "none");
	if (!o)
		return NULL;
	json_object_set_new(o, "detail", json_string(r->msg));
	json_object_set_new(o, "skip", r->decided
			    ? json_null()
			    : json_string(witness_skip_name(r->skip)));
	json_object_set_new(o, "canary", jpick(&r->canary));
	json_object_set_new(o, "baseline", jpick(&r->baseline));
	json_object_set_new(o, "rollback_epoch", cli_json_u64(r->epoch));
	json_object_set_new(o, "state", r->have_state
		? json_string(topo_health_name(r->state.state))
		: json_null());
	json_object_set_new(o, "state_version",
			    json_integer(r->state_version));
	json_object_set_new(o, "filed_epoch", r->filed_epoch
			    ? cli_json_u64(r->filed_epoch) : json_null());
	if (r->decided) {
		json_object_set_new(o, "n", json_integer(s->n));
		json_object_set_new(o, "npos", json_integer(s->npos));
		json_object_set_new(o, "excluded", json_integer(r->excluded));
		json_object_set_new(o, "missing_canary",
				    json_integer(r->missing_c));
		json_object_set_new(o, "missing_baseline",
				    json_integer(r->missing_b));
		json_object_set_new(o, "bad_canary", json_integer(s->bad_c));
		json_object_set_new(o, "bad_baseline", json_integer(s->bad_b));
		json_object_set_new(o, "logloss_c", jnum(s->logloss_c));
		json_object_set_new(o, "logloss_b", jnum(s->logloss_b));
		json_object_set_new(o, "delta", jnum(s->delta));
		json_object_set_new(o, "ci_lo", jnum(s->ci_lo));
		json_object_set_new(o, "ci_hi", jnum(s->ci_hi));
		json_object_set_new(o, "p_delta", jnum(s->p_delta));
		json_object_set_new(o, "auc_c", jnum(s->auc_c));
		json_object_set_new(o, "auc_b", jnum(s->auc_b));
		json_object_set_new(o, "auc_delta", jnum(s->auc_delta));
		json_object_set_new(o, "auc_ci_lo", jnum(s->auc_ci_lo));
		json_object_set_new(o, "auc_ci_hi", jnum(s->auc_ci_hi));
		json_object_set_new(o, "p_auc", jnum(s->p_auc));
		json_object_set_new(o, "resamples", json_integer(s->resamples));
		json_object_set_new(o, "auc_resamples",
				    json_integer(s->auc_resamples));
	}
	json_object_set_new(o, "margin", json_real(w->o.w.margin));
	json_object_set_new(o, "auc_margin", json_real(w->o.w.auc_margin));
	json_object_set_new(o, "confidence", json_real(w->o.w.confidence));
	json_object_set_new(o, "min_samples",
			    json_integer(w->o.w.min_samples));
	return o;
}

static void round_count(struct wit *w, const struct round *r)
{
	witness_metrics_round(&w->m, r->at_ms, r->decided ? &r->res : NULL,
			      r->excluded, r->skip);
}

/* ========================================================================
 * /metrics
 * ===================================================================== */

static void metrics_cb(struct evhttp_request *req, void *arg)
{
	const struct wit *w = arg;
	struct evbuffer *b = evbuffer_new();
	struct fr_wbuf t;

	fr_wbuf_init(&t, 8192, 0);
	witness_metrics_render(&t, w->o.model, &w->m);
	if (!b || t.err || evbuffer_add(b, t.data, t.len)) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		goto out;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", fr_prom_content_type);
	evhttp_send_reply(req, HTTP_OK, "OK", b);
out:
	if (b)
		evbuffer_free(b);
	fr_wbuf_fini(&t);
}

static void notfound_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	if (b)
		evbuffer_add_printf(b, "not found; try /metrics\n");
	evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", b);
	if (b)
		evbuffer_free(b);
}

/* ========================================================================
 * Start-up: the probe against the model, buffers
 * ===================================================================== */

/* Each probe table must be a table of the model, each row inside it, and
 * the two sides of every example of equal dim.  Usage-class errors. */
static int check_probe(struct wit *w)
{
	const struct witness_probe *p = &w->probe;
	bool seen[WITNESS_TABLES_MAX][WITNESS_TABLES_MAX] = { { false } };
	uint64_t total = 0;

	w->tdim = calloc(p->ntables, sizeof(*w->tdim));
	if (!w->tdim)
		goto out_nomem;
	for (uint32_t t = 0; t < p->ntables; t++) {
		int i = shard_model_table_index(&w->def, p->tables[t]);
		const struct shard_table_def *td;

		if (i < 0) {
			cli_error(NULL, "--probe '%s': table '%s' is "
				  "not a table of model '%s'", w->o.probe,
				  p->tables[t], w->o.model);
			return CLI_EXIT_USAGE;
		}
		td = &w->def.tables[i];
		w->tdim[t] = td->dim;
		/* Keys are sorted by row within a table: the last is the
		 * largest. */
		if (p->table_first[t + 1] > p->table_first[t] &&
		    p->keys[p->table_first[t + 1] - 1].row >= td->rows) {
			cli_error(NULL, "--probe '%s': row %llu of "
				  "table '%s' is beyond its %llu rows (ids "
				  "0..%llu)", w->o.probe,
				  (unsigned long long)
				  p->keys[p->table_first[t + 1] - 1].row,
				  p->tables[t], (unsigned long long)td->rows,
				  (unsigned long long)td->rows - 1);
			return CLI_EXIT_USAGE;
		}
	}
	for (uint32_t i = 0; i < p->n; i++) {
		uint32_t a = p->keys[p->user[i]].table;
		uint32_t b = p->keys[p->item[i]].table;

		if (seen[a][b])
			continue;
		seen[a][b] = true;
		if (w->tdim[a] != w->tdim[b]) {
			cli_error(NULL, "--probe '%s': example %u pairs "
				  "user table '%s' (dim %u) with item table "
				  "'%s' (dim %u): a dot product needs equal "
				  "dims",
				  w->o.probe, i + 1, p->tables[a], w->tdim[a],
				  p->tables[b], w->tdim[b]);
			return CLI_EXIT_USAGE;
		}
	}

	w->rows = malloc((size_t)p->nkeys * sizeof(*w->rows));
	w->voff = malloc((size_t)p->nkeys * sizeof(*w->voff));
	w->missing = malloc(p->nkeys);
	w->pc = malloc((size_t)p->n * sizeof(*w->pc));
	w->pb = malloc((size_t)p->n * sizeof(*w->pb));
	w->y = malloc(p->n);
	if (!w->rows || !w->voff || !w->missing || !w->pc || !w->pb || !w->y)
		goto out_nomem;
	for (uint32_t k = 0; k < p->nkeys; k++) {
		w->rows[k] = p->keys[k].row;
		w->voff[k] = total;
		total += w->tdim[p->keys[k].table];
	}
	if (total * sizeof(float) > VALUES_MAX) {
		cli_error(NULL, "--probe '%s': its %u distinct rows hold %llu "
			  "values, more than %llu bytes per node; use fewer "
			  "examples", w->o.probe, p->nkeys,
			  (unsigned long long)total,
			  (unsigned long long)VALUES_MAX);
		return CLI_EXIT_USAGE;
	}
	w->nvalues = total;
	w->vals[0] = malloc(total * sizeof(float));
	w->vals[1] = malloc(total * sizeof(float));
	if (!w->vals[0] || !w->vals[1])
		goto out_nomem;
	return 0;

out_nomem:
	cli_error(NULL, "no memory for the probe set's rows");
	return CLI_EXIT_RUNTIME;
}

static void wit_fini(struct wit *w)
{
	if (w->http)
		evhttp_free(w->http);
	if (w->timer)
		event_free(w->timer);
	if (w->sigint)
		event_free(w->sigint);
	if (w->sigterm)
		event_free(w->sigterm);
	if (w->base)
		event_base_free(w->base);
	topo_admin_close(w->zk);
	witness_probe_fini(&w->probe);
	free(w->tdim);
	free(w->rows);
	free(w->voff);
	free(w->missing);
	free(w->pc);
	free(w->pb);
	free(w->y);
	free(w->vals[0]);
	free(w->vals[1]);
}

static void make_who(struct wit *w)
{
	char host[256] = "", shown[sizeof(host)];

	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	fr_show(shown, sizeof(shown), host);
	snprintf(w->who, sizeof(w->who), "witness@%.*s",
		 (int)(sizeof(w->who) - sizeof("witness@")), shown);
}

/* ========================================================================
 * Loop mode
 * ===================================================================== */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wit *w = arg;
	struct round r;
	struct timeval tv;

	round_run(w, &r);
	round_log(w, &r);
	round_count(w, &r);
	/* The next round starts an interval after this one ended. */
	tv.tv_sec = (time_t)w->o.interval_s;
	tv.tv_usec = (suseconds_t)((w->o.interval_s - (double)tv.tv_sec) *
				   1e6);
	evtimer_add(w->timer, &tv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct wit *w = arg;

	fr_log(FR_LOG_INFO, MOD, "signal %d: stopping after %llu rounds",
	       (int)sig, (unsigned long long)w->m.rounds);
	event_base_loopbreak(w->base);
}

static int run_loop(struct wit *w)
{
	struct timeval now = { 0, 0 };

	w->base = event_base_new();
	if (!w->base) {
		cli_error(NULL, "cannot create the event loop");
		return CLI_EXIT_RUNTIME;
	}
	w->timer = evtimer_new(w->base, timer_cb, w);
	w->sigint = evsignal_new(w->base, SIGINT, signal_cb, w);
	w->sigterm = evsignal_new(w->base, SIGTERM, signal_cb, w);
	if (!w->timer || !w->sigint || !w->sigterm ||
	    evsignal_add(w->sigint, NULL) || evsignal_add(w->sigterm, NULL)) {
		cli_error(NULL, "cannot set up timers and signals");
		return CLI_EXIT_RUNTIME;
	}
	if (w->o.metrics) {
		w->http = evhttp_new(w->base);
		if (!w->http) {
			cli_error(NULL, "cannot create the HTTP "
				  "server");
			return CLI_EXIT_RUNTIME;
		}
		evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET |
							    EVHTTP_REQ_HEAD);
		evhttp_set_cb(w->http, "/metrics", metrics_cb, w);
		evhttp_set_gencb(w->http, notfound_cb, w);
		evhttp_set_timeout(w->http, 30);
		if (!evhttp_bind_socket_with_handle(w->http,
						    w->o.metrics_host,
						    w->o.metrics_port)) {
			cli_error(NULL, "--metrics '%s': cannot bind "
				  "(in use, or not an address of this host)",
				  w->o.metrics);
			return CLI_EXIT_RUNTIME;
		}
	}
	fr_log(FR_LOG_INFO, MOD, "watching model '%s' every %.3g s with %u "
	       "examples (%u distinct rows) as %s%s%s%s",
	       w->o.model, w->o.interval_s, w->probe.n, w->probe.nkeys,
	       w->who, w->o.dry_run ? ", dry run" : "",
	       w->o.metrics ? ", metrics on " : "",
	       w->o.metrics ? w->o.metrics : "");
	evtimer_add(w->timer, &now);
	if (event_base_dispatch(w->base) < 0) {
		cli_error(NULL, "the event loop failed");
		return CLI_EXIT_RUNTIME;
	}
	return 0;
}

/* ========================================================================
 * main
 * ===================================================================== */

int main(int argc, char **argv)
{
	struct wit w;
	enum fr_err err;
	int rc;

	memset(&w, 0, sizeof(w));
	cli_set_prog(PROG);
	signal(SIGPIPE, SIG_IGN);
	rc = parse_opts(argc, argv, &w.o);
	if (rc)
		return rc < 0 ? 0 : rc;
	fr_log_set_level(w.o.log_level);
	fr_log_route_libevent();
	make_who(&w);
	fr_log_set_node(w.who);

	/* The probe file first: a bad one is a usage error, found before
	 * anything connects. */
	witness_probe_init(&w.probe);
	err = witness_probe_load(&w.probe, w.o.probe);
	if (err) {
		cli_error(NULL, "--probe '%s': %s", w.o.probe, fr_errmsg());
		rc = CLI_EXIT_USAGE;
		goto out;
	}

	w.zk = cli_zk_connect(NULL, &w.o.z, w.o.z.timeout_ms, &rc);
	if (!w.zk)
		goto out;
	err = topo_admin_model_get(w.zk, w.o.model, &w.def);
	if (err) {
		if (err == FR_ERR_NOTFOUND)
			cli_error(NULL, "model '%s' is not registered in "
				  "ZooKeeper %s (cluster %s)", w.o.model,
				  w.o.z.hosts, w.o.z.cluster);
		else
			cli_error(NULL, "cannot read model '%s': %s: %s",
				  w.o.model, fr_strerror(err), fr_errmsg());
		rc = CLI_EXIT_RUNTIME;
		goto out;
	}
	rc = check_probe(&w);
	if (rc)
		goto out;

	if (w.o.once) {
		struct round r;

		round_run(&w, &r);
		round_log(&w, &r);
		round_count(&w, &r);
		if ((rc = cli_print_json_line(NULL, round_json(&w, &r))))
			goto out;
		if (!r.decided) {
			cli_error(NULL, "no decision: %s: %s",
				  witness_skip_name(r.skip), r.msg);
			rc = CLI_EXIT_RUNTIME;
		} else if (r.action == ACT_ERROR) {
			cli_error(NULL, "%s", r.msg);
			rc = CLI_EXIT_RUNTIME;
		}
		goto out;
	}
	rc = run_loop(&w);
out:
	wit_fini(&w);
	return rc;
}
