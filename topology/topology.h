/*
 * topology.h — the one public header of freshet's topology/ module: the
 * ZooKeeper side of a node (DESIGN §4) and the small synchronous client the
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
 *
 * JSON formats (docs/operations.md §ZooKeeper shows each):
 *   member  {"id":3,"dc":"dc1","addr":"10.0.0.3:7001",
 *            "admin":"10.0.0.3:8001","roles":["serving"],"generation":7}
 *   leader  {"id":3,"dc":"dc1","addr":"10.0.0.3:7001","epoch":12,
 *            "generation":7}
 *   model   {"name":"ctr","priority":10,"shards":64,
 *            "tables":[{"name":"users","rows":1000000,"dim":64,
 *                       "dtype":"f32"}]}
 * Everything read from ZooKeeper is untrusted (DISTRIBUTED.md rule 7): a
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

struct topo_member {
	uint32_t node_id;
	char dc[TOPO_NAME_MAX + 1];
	char addr[TOPO_ADDR_MAX + 1];     /* peers dial this */
	char admin[TOPO_ADDR_MAX + 1];    /* admin HTTP (status, metrics) */
	char roles[TOPO_ROLES_MAX + 1];   /* "serving", "serving,candidate" */
	uint64_t generation;
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

#endif /* FRESHET_TOPOLOGY_H */
