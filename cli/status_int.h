/*
 * status_int.h — the private picture `freshet status` builds in one round,
 * shared by its three parts:
 *
 *   status_gather.c   ZooKeeper (members, leaders, the registry) and each
 *                     member's GET /status?shards=1 (libcurl): fills the
 *                     report's inputs
 *   status_compute.c  pure: from those inputs to the per-DC, per-node and
 *                     per-model rows and every flag (unit-tested by
 *                     tests/unit/test_cli_status.c)
 *   status_render.c   the screen and the --json object
 *
 * and status.c, the command (options, one round, --watch).  Nothing here
 * is a library API; no curl type appears here.  One thread.
 */
#ifndef FRESHET_CLI_STATUS_INT_H
#define FRESHET_CLI_STATUS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "shard/shard.h"
#include "topology/topology.h"

#define CLI_STATUS_LAG_FLAG_MS 5000         /* a DC further behind is flagged */
#define CLI_STATUS_CELLS_MAX (16u << 20)    /* tables x shards examined per model */
#define CLI_STATUS_WHY_MAX 320              /* a node's error text */

#define CLI_STATUS_LAG_UNKNOWN (-1)         /* no usable max_version */
#define CLI_STATUS_LAG_NODATA INT64_MAX     /* the node holds nothing, others do */

enum cli_status_node_state {
	CLI_STATUS_NODE_DOWN,       /* did not answer /status */
	CLI_STATUS_NODE_BAD,        /* answered, but not the expected JSON */
	CLI_STATUS_NODE_UP
};

/* One member: what ZooKeeper says, and what its /status said. */
struct cli_status_node {
	struct topo_member m;           /* = report->members[i] */
	enum cli_status_node_state state;
	char why[CLI_STATUS_WHY_MAX];       /* DOWN, BAD: what went wrong */
	json_t *st;                     /* the /status reply (UP), owned */
	/* From the reply, checked (UP only). */
	bool has_id, has_gen;
	uint64_t id, generation, uptime_s;
	char dc[TOPO_NAME_MAX + 1];
	char backend[40], version[40];
	bool stopping;
	bool has_topo;                  /* the "topology" object */
	char zk[24];
	int leader;                     /* -1 unknown, 0, 1 */
	uint64_t epoch;
	bool flagged;                   /* compute: a problem names it */
};

struct cli_status_dc {
	char name[TOPO_NAME_MAX + 1];
	const struct topo_leader *leader;   /* NULL: none */
	uint32_t nnodes, nup;
	bool flagged;
};

/* One node's view of one model. */
struct cli_status_node_model {
	json_t *mj;                     /* its models[] entry, NULL if none */
	uint64_t max_version;
	int64_t lag_ms;                 /* CLI_STATUS_LAG_UNKNOWN, _NODATA or ms */
	int64_t behind;                 /* shards behind, -1 unknown */
	uint64_t *vvhash;               /* per table, NULL if unknown */
};

struct cli_status_dc_model {
	uint32_t serving;               /* up nodes that have the model */
	int64_t lag_ms, behind;         /* the slowest node's */
	uint32_t slowest;               /* its id, 0 if none */
	uint32_t slowest_idx;           /* and its index in nodes[] */
	bool flagged;
};

/* What the members' per-model status (their znodes) says about a model's
 * roles and rollback epochs. */
struct cli_status_rollback {
	uint32_t reporting;             /* members with a status for it */
	uint64_t epoch_max;             /* highest epoch any applied */
	uint32_t at_max;                /* of them, at epoch_max */
	uint32_t *canaries;             /* node ids with role canary, owned */
	uint32_t ncanaries;
	uint32_t baseline_id;           /* role baseline with the lowest cut,
					 * 0 if none */
	uint64_t baseline_cut;
	uint64_t baseline_behind_ms;    /* time_ms - the cut's ms, 0 if the
					 * cut is ahead */
};

struct cli_status_model {
	char name[SHARD_NAME_MAX + 1];
	bool registered;
	struct shard_model_def def;     /* registered */
	uint32_t shards, ntables;       /* as the nodes report them */
	uint64_t freshest;
	struct cli_status_node_model *per;  /* [nmembers] */
	struct cli_status_dc_model *dcs;    /* [ndcs] */
	struct cli_status_rollback rb;
	bool flagged;                   /* some DC of it is */
};

struct cli_status_problem {
	char kind[16];
	char dc[TOPO_NAME_MAX + 1];     /* "" when not about one */
	uint32_t node;                  /* 0 when not about one */
	char model[SHARD_NAME_MAX + 1];
	char msg[640];
};

struct cli_status_report {
	const char *cluster, *hosts;    /* borrowed */
	uint64_t time_ms;               /* wall clock when the round began */
	char zk_error[512];             /* a ZooKeeper call failed */
	uint32_t bad_znodes;            /* all ignored znodes */
	uint32_t bad_topo;              /* of them under nodes/, leaders/ */
	struct topo_member *members;    /* owned, like every array below */
	uint32_t nmembers;
	struct topo_leader *leaders;
	uint32_t nleaders;
	struct cli_status_node *nodes;      /* [nmembers], same order */
	struct cli_status_dc *dcs;
	uint32_t ndcs;
	struct cli_status_model *models;
	uint32_t nmodels, capmodels;
	struct cli_status_problem *problems;
	uint32_t nproblems, capproblems;
};

/* ------------------------------------------------------------------------
 * status_gather.c
 * ---------------------------------------------------------------------- */

/* libcurl's global state, once per process around every round:
 * status_http_init false when it cannot start. */
bool status_http_init(void);
void status_http_fini(void);
/* The round's inputs: r->time_ms, members, leaders and the registry from
 * ZooKeeper, then every member's /status (at most node_timeout_ms each,
 * all at once).  false when ZooKeeper failed (r->zk_error says how; the
 * picture is then empty). */
bool status_gather(struct cli_status_report *r, struct topo_admin *a,
		   uint32_t node_timeout_ms);

/* ------------------------------------------------------------------------
 * status_compute.c (pure)
 * ---------------------------------------------------------------------- */

/* The model named name, added (zeroed, unregistered) when absent; NULL
 * when out of memory. */
struct cli_status_model *cli_status_model_add(struct cli_status_report *r,
				      const char *name);
/* Note a problem (kind: a word of docs/cli.md's table; dc, model NULL and
 * node 0 when not about one).  Out of memory loses the line, not the
 * count of a flag: callers flag separately. */
void cli_status_problem(struct cli_status_report *r, const char *kind,
		    const char *dc, uint32_t node, const char *model,
		    const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* A node's /status reply body (len bytes, untrusted) into nd: UP with
 * its fields checked, or BAD with why. */
void cli_status_node_parse(struct cli_status_node *nd, const char *body,
		       size_t len);
/* From the inputs (members, leaders, registry models, nodes[].state and
 * replies) to dcs[], every model a node serves, the per-model rows, the
 * rollback summary and every problem.  false when out of memory
 * (r->zk_error says so). */
bool cli_status_compute(struct cli_status_report *r);
/* Free everything the report owns and zero it. */
void cli_status_report_fini(struct cli_status_report *r);

/* ------------------------------------------------------------------------
 * status_render.c
 * ---------------------------------------------------------------------- */

/* The --json object (docs/cli.md has the schema); NULL when out of
 * memory.  The caller owns it. */
json_t *cli_status_render_json(const struct cli_status_report *r);
/* The screen, to o. */
void cli_status_render_text(const struct cli_status_report *r, FILE *o);

#endif /* FRESHET_CLI_STATUS_INT_H */
