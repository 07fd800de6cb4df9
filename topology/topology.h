/*
 * topology.h — the one public header of freshet's topology/ module: the
 * ZooKeeper side of a node (docs/design.md §4) and the small synchronous client the
 * `freshet` command uses.  No ZooKeeper type appears here.
 *
 * ZooKeeper layout (all under ROOT = "/freshet/<cluster>", itself under
 * the chroot given in the hosts string, e.g. "zk1:2181,zk2:2181/prod"):
 *
 *   ROOT/nodes/<dc>/<node-id>     ephemeral   member JSON (topo_member)
 *   ROOT/election/<dc>/n_<id>_<generation>_<seq>
 *                                 ephemeral sequential, data = member JSON
 *   ROOT/leaders/<dc>             ephemeral   leader JSON (topo_leader)
 *   ROOT/models/<model>           persistent  model JSON (shard_model_def)
 *   ROOT/models/<model>/rollbacks/r_<10-digit seq>
 *                                 persistent sequential, rollback JSON
 *                                 (topo_rollback); epoch = seq + 1
 *                                 (rollbacks/ itself has no data; its
 *                                 data version is bumped by every filing,
 *                                 see topo_admin_rollback_file)
 *   ROOT/models/<model>/state     persistent  health JSON (topo_health)
 *   ROOT/models/<model>/roles     persistent  role overrides, e.g.
 *                                 {"3":"canary","7":"baseline"}
 *
 * JSON formats (docs/operations.md §ZooKeeper shows each):
 *   member  {"id":3,"dc":"dc1","addr":"10.0.0.3:7001",
 *            "admin":"10.0.0.3:8001","roles":["serving"],"generation":7,
 *            "models":{"ctr":{"role":"baseline","epoch":2,
 *                             "cut":1234,"horizon":1000}}}
 *            ("models" is optional: the node's per-model status,
 *            topo_set_status; absent while there is none; entries keep
 *            their order)
 *   rollback {"t":1234,"r":5678,"reason":"auc -0.04","who":"witness@h1",
 *            "at":1764050000000}   (t < r, both HLC versions; at: wall ms;
 *            only t and r are required: reason/who default to "", at
 *            to 0.  Unknown keys are ignored as in every znode, so a key
 *            may be added only if it informs; one that changes what a
 *            rollback does needs a format old nodes refuse)
 *   health  {"state":"corrupted","by":"witness@h1","why":"...",
 *            "at":1764050000000,"epoch":3,
 *            "history":[{"state":"healthy","by":"...","why":"...",
 *                        "at":...}]}   (history: older states, newest
 *            first, at most TOPO_HISTORY_MAX; only "state" is required,
 *            here and in each history entry: the rest defaults to "" or 0)
 *   leader  {"id":3,"dc":"dc1","addr":"10.0.0.3:7001","epoch":12,
 *            "generation":7}
 *   model   {"name":"ctr","priority":10,"shards":64,
 *            "tables":[{"name":"users","rows":1000000,"dim":64,
 *                       "dtype":"f32"}]}
 * Everything read from ZooKeeper is untrusted (docs/design.md rule 7): a
 * znode that does not parse is logged with its path and left out of the
 * view; the node keeps running.
 *
 * The node side (struct topo) runs one topology thread that owns the
 * ZooKeeper handle and makes synchronous calls; ZooKeeper's watcher and
 * completion callbacks only queue an event for that thread.  What the
 * thread learns reaches the loop thread as a whole new view through a
 * mailbox (docs/threads.md).  The leader's self-demotion timer runs on the
 * loop thread, so it fires even while the topology thread is blocked in a
 * ZooKeeper call.
 *
 * Election: each candidate creates an EPHEMERAL|SEQUENCE znode under
 * election/<dc> named n_<id>_<generation>_ (so after CONNECTIONLOSS on
 * create it finds its own among the children instead of creating an
 * orphan), watches only its predecessor, and the lowest sequence leads.
 * The leader's epoch is its election sequence number + 1 (ZooKeeper counts
 * from 0, and epoch 0 means "not a leader"): it rises with every new
 * candidate, so a later leader of a DC always has a higher epoch.  A node
 * stands for election only while its member znode is its own, so a stale
 * process never leads under an id a newer generation holds.
 */
#ifndef FRESHET_TOPOLOGY_H
#define FRESHET_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "shard/shard.h"

struct event_base;

#define TOPO_NAME_MAX 63        /* dc and cluster names */
#define TOPO_ADDR_MAX 271       /* "HOST:PORT" or "[V6%zone]:PORT" */
#define TOPO_HOSTS_MAX 1023     /* ZooKeeper connect string incl. chroot */
#define TOPO_ROLES_MAX 63       /* comma-separated role words */
#define TOPO_MEMBER_MODELS_MAX 16   /* per-model status entries in a member */
#define TOPO_ROLE_MAX 15        /* "serving", "canary", "baseline" */
#define TOPO_REASON_MAX 255     /* rollback reason, health why */
#define TOPO_WHO_MAX 127        /* "user@host", "witness@host" */
#define TOPO_HISTORY_MAX 32     /* health changes kept in the state znode */
#define TOPO_ROLLBACKS_MAX 64   /* newest directives per model in a view */
#define TOPO_ROLE_OVERRIDES_MAX 256   /* entries in models/<m>/roles */

/* A node's per-model status, published in its member znode (see
 * topo_set_status) so the witness and `freshet rollback --wait` can find
 * canaries and baselines, their cuts and who has applied which rollback. */
struct topo_model_status {
	char model[SHARD_NAME_MAX + 1];
	char role[TOPO_ROLE_MAX + 1];     /* "serving" | "canary" | "baseline" */
	uint64_t epoch;       /* highest rollback epoch applied (0: none) */
	uint64_t cut;         /* baseline: every update <= cut is served and
			       * none newer; others: newest version held */
	uint64_t horizon;     /* the oldest target cut its undo rings reach
			       * (a rollback to T >= horizon needs no full
			       * transfer here); at most 2^63 - 1, which a
			       * node without undo rings reports */
};

struct topo_member {
	uint32_t node_id;
	char dc[TOPO_NAME_MAX + 1];
	char addr[TOPO_ADDR_MAX + 1];     /* peers dial this */
	char admin[TOPO_ADDR_MAX + 1];    /* admin HTTP (status, metrics) */
	char roles[TOPO_ROLES_MAX + 1];   /* "serving", "serving,candidate" */
	uint64_t generation;
	uint32_t nmodels;                 /* 0 when the znode has no "models" */
	struct topo_model_status models[TOPO_MEMBER_MODELS_MAX];
};

/* A rollback directive (docs/design.md §6).  seq and epoch come from the znode's
 * name (r_<seq>, epoch = seq + 1), never from its JSON. */
struct topo_rollback {
	uint64_t seq;
	uint64_t epoch;
	uint64_t t;                       /* target cut */
	uint64_t r;                       /* revoke-until; t < r */
	uint64_t at_ms;                   /* when it was filed (wall ms) */
	char reason[TOPO_REASON_MAX + 1];
	char who[TOPO_WHO_MAX + 1];
};

/* A model's health (models/<m>/state). */
enum topo_health_state {
	TOPO_HEALTHY = 0,
	TOPO_UNCERTAIN = 1,
	TOPO_CORRUPTED = 2,
};
struct topo_health_change {
	enum topo_health_state state;
	uint64_t at_ms;
	char by[TOPO_WHO_MAX + 1];
	char why[TOPO_REASON_MAX + 1];
};
struct topo_health {
	enum topo_health_state state;
	uint64_t at_ms;
	char by[TOPO_WHO_MAX + 1];
	char why[TOPO_REASON_MAX + 1];
	uint64_t epoch;          /* the last rollback filed with a change, 0 */
	uint32_t nhistory;       /* older states, newest first */
	struct topo_health_change history[TOPO_HISTORY_MAX];
};

/* A role override from models/<m>/roles. */
struct topo_role_override {
	uint32_t node_id;
	char role[TOPO_ROLE_MAX + 1];
};

struct topo_leader {
	char dc[TOPO_NAME_MAX + 1];
	uint32_t node_id;
	char addr[TOPO_ADDR_MAX + 1];
	uint64_t epoch;
	uint64_t generation;
};

/* ------------------------------------------------------------------------
 * Codec (pure; any thread).  Encoders return a malloc'd NUL-terminated
 * JSON string the caller frees, or NULL with *err.  Decoders validate
 * every field (types, ranges, names as in config: [A-Za-z0-9_.-], an
 * address HOST:PORT) and fail with FR_ERR_INVAL/FR_ERR_CORRUPT and a
 * detail naming the field; *out is written only on FR_OK.  data need not
 * be NUL-terminated.
 * ---------------------------------------------------------------------- */
char *topo_member_encode(const struct topo_member *m, enum fr_err *err);
enum fr_err topo_member_decode(const char *data, size_t len,
			       struct topo_member *out);
char *topo_leader_encode(const struct topo_leader *l, enum fr_err *err);
enum fr_err topo_leader_decode(const char *data, size_t len,
			       struct topo_leader *out);
/* The model's name in the JSON must equal `name` (its znode's name) and
 * the definition must pass shard_model_validate. */
char *topo_model_encode(const struct shard_model_def *def, enum fr_err *err);
enum fr_err topo_model_decode(const char *name, const char *data, size_t len,
			      struct shard_model_def *out);
/* Rollback JSON: t, r (1 <= t < r), at, reason and who (strings, may be
 * empty, printable ASCII, within their maxima).  decode sets seq and
 * epoch from `seq` (the znode's sequence number); encode ignores them. */
char *topo_rollback_encode(const struct topo_rollback *d, enum fr_err *err);
enum fr_err topo_rollback_decode(uint64_t seq, const char *data, size_t len,
				 struct topo_rollback *out);
/* "r_<10 digits>" -> seq; FR_ERR_INVAL for anything else. */
enum fr_err topo_rollback_parse_name(const char *child, uint64_t *seq);
/* Health JSON.  States are "healthy", "uncertain", "corrupted". */
char *topo_health_encode(const struct topo_health *h, enum fr_err *err);
enum fr_err topo_health_decode(const char *data, size_t len,
			       struct topo_health *out);
const char *topo_health_name(enum topo_health_state s);
enum fr_err topo_health_parse(const char *s, enum topo_health_state *out);
/* Make a new current state: the old current state moves to the front of
 * history (the oldest entry falls off past TOPO_HISTORY_MAX) unless it
 * was never set (a zeroed struct: the state znode was absent).  by and
 * why may be NULL ("") and are cut at their maxima. */
void topo_health_push(struct topo_health *h, enum topo_health_state s,
		      const char *by, const char *why, uint64_t at_ms);
/* Roles: "serving" | "canary" | "baseline"; false otherwise (and for
 * NULL). */
bool topo_role_valid(const char *role);
/* Role overrides JSON {"<node id>":"<role>", ...}: canonical decimal ids
 * 1..4294967294 (as node ids), valid roles, at most
 * TOPO_ROLE_OVERRIDES_MAX; the encoder writes and out gets them sorted by
 * node id.  decode: FR_ERR_RANGE (nothing written) when there are more
 * than cap. */
char *topo_roles_encode(const struct topo_role_override *o, uint32_t n,
			enum fr_err *err);
enum fr_err topo_roles_decode(const char *data, size_t len,
			      struct topo_role_override *out, uint32_t cap,
			      uint32_t *n);

/* Field-by-field equality of what the codec carries (strings as strings):
 * decode(encode(x)) is x in this sense. */
bool topo_member_eq(const struct topo_member *a, const struct topo_member *b);
bool topo_leader_eq(const struct topo_leader *a, const struct topo_leader *b);
bool topo_model_eq(const struct shard_model_def *a,
		   const struct shard_model_def *b);
bool topo_rollback_eq(const struct topo_rollback *a,
		      const struct topo_rollback *b);
bool topo_health_eq(const struct topo_health *a, const struct topo_health *b);

/* The chroot of a ZooKeeper connect string "h1:2181,[::1]:2181/a/b": a
 * pointer to its first '/' outside brackets ("/a/b"), or NULL when it has
 * none (hosts NULL too).  hosts is borrowed; the result points into it. */
const char *topo_hosts_chroot(const char *hosts);

/* Election child names.  Parse "n_<id>_<generation>_<10-digit seq>";
 * FR_ERR_INVAL for anything else (such children are ignored). */
enum fr_err topo_election_parse(const char *child, uint32_t *node_id,
				uint64_t *generation, uint64_t *seq);
/* Given the children of election/<dc> and our own child's name: *rank is
 * our position by sequence (0 = leader) and pred the child we must watch
 * (written when rank > 0; at least TOPO_NAME_MAX + 32 bytes).
 * FR_ERR_NOTFOUND when `mine` is not among them.  Unparsable children
 * are skipped. */
enum fr_err topo_election_rank(const char *const *children, uint32_t n,
			       const char *mine, uint32_t *rank,
			       char *pred, size_t pred_cap);

/* ------------------------------------------------------------------------
 * The node's topology (loop-thread API unless noted)
 * ---------------------------------------------------------------------- */
struct topo_config {
	char hosts[TOPO_HOSTS_MAX + 1];   /* "h1:2181,h2:2181[/chroot]" */
	char cluster[TOPO_NAME_MAX + 1];
	struct topo_member self;          /* what we register */
	uint32_t session_timeout_ms;      /* asked of ZooKeeper; 1000..120000 */
	bool candidate;                   /* stand in the DC's election */
};

/* Per model in a view.  Directives ascending by seq, at most the newest
 * TOPO_ROLLBACKS_MAX (a malformed one is logged, counted in bad_znodes
 * and left out: it changes nothing).  Role overrides sorted by node id. */
struct topo_model_extra {
	uint32_t nrollbacks;
	const struct topo_rollback *rollbacks;
	uint32_t nroles;
	const struct topo_role_override *roles;
};

/* A whole picture of the cluster as this node last saw it.  Passed to the
 * view callback on the loop thread; the pointers are valid only during
 * the call (copy what you keep).  Members are sorted by (dc, node_id),
 * leaders by dc, models by name; only well-formed znodes appear. */
struct topo_view {
	bool connected;               /* session up at this moment */
	bool expired_once;            /* a session expired since start */
	bool leader;                  /* this node leads its DC now */
	uint64_t epoch;               /* our epoch while leader, else 0 */
	uint32_t session_timeout_ms;  /* negotiated (0 before first connect) */
	uint32_t nmembers;
	const struct topo_member *members;   /* every DC, us included */
	uint32_t nleaders;
	const struct topo_leader *leaders;   /* from leaders/<dc> znodes */
	uint32_t nmodels;
	const struct shard_model_def *models;
	/* Parallel to models[]: what ZooKeeper says about each model besides
	 * its definition.  A model appears in the view only once its
	 * rollbacks/ and roles have been read (so a node never serves a
	 * registry model without knowing its directives). */
	const struct topo_model_extra *extra;
	uint64_t bad_znodes;          /* znodes ignored since start */
};

typedef void (*topo_view_fn)(const struct topo_view *v, void *arg);

struct topo;

/* Start the topology thread: connect, register self under nodes/<dc>,
 * stand for election (if candidate), watch members, leaders and models.
 * Returns at once; fn is called on base's loop thread with a full view
 * every time anything in it changes (connect/disconnect included).
 * cfg is copied.  NULL + *err (FR_ERR_INVAL naming the field) when cfg is
 * unusable; an unreachable ZooKeeper is not an error (it keeps trying). */
struct topo *topo_new(struct event_base *base, const struct topo_config *cfg,
		      topo_view_fn fn, void *arg, enum fr_err *err);
/* Leave: delete our znodes when connected (waiting at most 700 ms), close
 * the session, join the thread.  Usually well under a second; if
 * ZooKeeper went silent in the middle of a call it can take up to about
 * 2/3 of the session timeout for that call to fail.  NULL does nothing. */
void topo_free(struct topo *t);

/* Counters for /metrics (loop thread). */
struct topo_stats {
	uint64_t connects, disconnects, expirations;
	uint64_t elections_won, demotions;   /* demotions: by timer or loss */
	uint64_t bad_znodes;
	uint64_t views;                      /* views delivered */
};
void topo_get_stats(const struct topo *t, struct topo_stats *out);

/* Publish this node's per-model status in its member znode (and keep it
 * there across session loss: the znode is re-created with it).  Copies s;
 * the topology thread writes it soon after (coalescing calls made
 * meanwhile).  The caller rate-limits (it is a ZooKeeper write).
 * FR_ERR_RANGE past TOPO_MEMBER_MODELS_MAX entries; FR_ERR_INVAL (naming
 * the field) for an entry the member JSON cannot carry: a bad model name
 * or role, a model twice, a number past 2^63-1.  n = 0 clears it.  Loop
 * thread. */
enum fr_err topo_set_status(struct topo *t, const struct topo_model_status *s,
			    uint32_t n);

/* ------------------------------------------------------------------------
 * Synchronous admin client for the `freshet` command (one thread, blocks)
 * ---------------------------------------------------------------------- */
struct topo_admin;

/* Connect and wait for the session up to timeout_ms.  FR_ERR_TIMEOUT
 * naming the hosts when it does not come up; FR_ERR_INVAL for a bad
 * hosts string or cluster name. */
struct topo_admin *topo_admin_connect(const char *hosts, const char *cluster,
				      uint32_t timeout_ms, enum fr_err *err);
void topo_admin_close(struct topo_admin *a);

/* Create models/<name> (and the parents).  FR_ERR_EXISTS if it is there
 * (the definition is never changed once created); FR_ERR_INVAL if def
 * does not validate. */
enum fr_err topo_admin_model_create(struct topo_admin *a,
				    const struct shard_model_def *def);
/* FR_ERR_NOTFOUND when absent; FR_ERR_CORRUPT (detail names the path)
 * when the znode does not parse. */
enum fr_err topo_admin_model_get(struct topo_admin *a, const char *name,
				 struct shard_model_def *out);
/* Names of models/ children, sorted; *names is one malloc'd array of
 * pointers into the same block (free(*names) frees all).  No models: FR_OK
 * with *n = 0. */
enum fr_err topo_admin_model_list(struct topo_admin *a, char ***names,
				  uint32_t *n);
/* Every member of every DC and every leaders/<dc>, sorted as in the view.
 * Malformed znodes are skipped and counted in *bad (may be NULL).
 * The caller frees *out. */
enum fr_err topo_admin_members(struct topo_admin *a, struct topo_member **out,
			       uint32_t *n, uint32_t *bad);
enum fr_err topo_admin_leaders(struct topo_admin *a, struct topo_leader **out,
			       uint32_t *n, uint32_t *bad);

/* Directives of a model, ascending by seq (all of them); malformed ones
 * are skipped and counted in *bad (may be NULL).  FR_ERR_NOTFOUND when
 * the model does not exist; no directives: FR_OK, *n = 0.  The caller
 * frees *out. */
enum fr_err topo_admin_rollbacks(struct topo_admin *a, const char *model,
				 struct topo_rollback **out, uint32_t *n,
				 uint32_t *bad);
/* File a directive (d->t, d->r, d->at_ms, d->reason, d->who; seq/epoch
 * ignored) under models/<model>/rollbacks/, creating rollbacks/ if
 * needed; *epoch (may be NULL) gets the new directive's epoch.  With
 * `state` not NULL the same ZooKeeper multi-op also sets
 * models/<model>/state to *state (state->epoch is overwritten with the
 * new epoch) on condition that the state znode is still at
 * `state_version` (-1: it must not exist yet): both happen or neither.
 * Every filing also bumps rollbacks/'s data version in the same multi,
 * which serializes filers (so the epoch written into the state is the
 * one ZooKeeper gives the child) and makes a retry after CONNECTIONLOSS
 * unable to file twice.  FR_ERR_NOTFOUND for an unknown model,
 * FR_ERR_INVAL when t >= r or t == 0 (nothing filed), FR_ERR_BUSY when
 * the state changed since it was read (someone else acted first; nothing
 * was filed) or other directives kept being filed meanwhile, FR_ERR_ZK
 * "outcome unknown" when the connection was lost and it cannot be told
 * whether ours was filed (check the directives before filing again). */
enum fr_err topo_admin_rollback_file(struct topo_admin *a, const char *model,
				     const struct topo_rollback *d,
				     struct topo_health *state,
				     int32_t state_version, uint64_t *epoch);
/* Read models/<model>/state and its znode version (version may be NULL).
 * Absent: FR_OK with a zeroed *out (healthy, no history) and *version =
 * -1.  FR_ERR_NOTFOUND for an unknown model, FR_ERR_CORRUPT (detail names
 * the path) when it does not parse. */
enum fr_err topo_admin_state_get(struct topo_admin *a, const char *model,
				 struct topo_health *out, int32_t *version);
/* Compare-and-set models/<model>/state: written only if it is still at
 * `version` (-1: created, only if absent).  FR_ERR_BUSY when someone
 * changed it first; FR_ERR_NOTFOUND for an unknown model; FR_ERR_INVAL
 * when h does not encode.  After a lost reply, finding exactly our bytes
 * there counts as done. */
enum fr_err topo_admin_state_set(struct topo_admin *a, const char *model,
				 const struct topo_health *h, int32_t version);
/* Role overrides of a model (read; absent: FR_OK, *n = 0; FR_ERR_RANGE
 * when more than cap), and set/clear one node's override (role NULL
 * clears it; already so: FR_OK without a write) with a compare-and-set
 * retry loop (FR_ERR_BUSY if it keeps losing).  Both: FR_ERR_NOTFOUND
 * for an unknown model, FR_ERR_CORRUPT (detail names the path) when the
 * roles znode does not parse — role_set does not overwrite it then: fix
 * or delete it by hand.  role_set: FR_ERR_INVAL for a bad node id or
 * role, FR_ERR_RANGE when TOPO_ROLE_OVERRIDES_MAX are set already. */
enum fr_err topo_admin_roles_get(struct topo_admin *a, const char *model,
				 struct topo_role_override *out, uint32_t cap,
				 uint32_t *n);
enum fr_err topo_admin_role_set(struct topo_admin *a, const char *model,
				uint32_t node_id, const char *role);

#endif /* FRESHET_TOPOLOGY_H */
