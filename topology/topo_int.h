/*
 * topo_int.h — what topology/'s files share and nobody else sees: the
 * field rules every znode field and topo_config field follows and the
 * kinds of listed children (codec.c, used by the node and admin.c), and
 * struct topo, the node's side, with the functions its files call across
 * (member.c, reads.c, session.c, loop.c).
 *
 * Not the public API (topology.h), and no ZooKeeper header: its types are
 * named here only through pointers.
 */
#ifndef FRESHET_TOPO_INT_H
#define FRESHET_TOPO_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "topology/topology.h"

#define TOPO_NODE_ID_MAX 4294967294u   /* 0 and 2^32-1 are never ids */

/* Longest ZooKeeper path we build: chroot lives in the hosts string, so
 * "/freshet/<cluster>/election/<dc>/n_<id>_<gen>_<seq>" is the longest. */
#define TOPO_PATH_MAX 256

/* ------------------------------------------------------------------------
 * Field rules (codec.c; pure, any thread).  Names are fr_name_check's
 * rule (common.h).  Each fails with FR_ERR_INVAL and a detail starting
 * with `what`.
 * ---------------------------------------------------------------------- */

/* HOST:PORT as fr_parse_hostport splits it, at most TOPO_ADDR_MAX bytes
 * and a port of at most five digits. */
enum fr_err topo_check_addr(const char *what, const char *s);
/* Comma-separated words of [a-z]+ (possibly none), at most
 * TOPO_ROLES_MAX bytes. */
enum fr_err topo_check_roles(const char *what, const char *s);
/* A ZooKeeper connect string: 1..TOPO_HOSTS_MAX bytes of printable
 * ASCII without spaces, starting with a host.  What the client itself
 * makes of it is its business. */
enum fr_err topo_check_hosts(const char *what, const char *hosts);
/* Every field of a member (used by the encoder and by topo_new). */
enum fr_err topo_member_check(const struct topo_member *m);
/* A canonical decimal node id, "1".."4294967294" (a znode name, a key of
 * the roles JSON): no sign, no leading zero. */
bool topo_parse_node_id(const char *s, uint32_t *id);

/* Orders of the view (and of the admin client's lists). */
int topo_member_cmp(const void *a, const void *b);   /* (dc, node_id) */
int topo_leader_cmp(const void *a, const void *b);   /* dc */

/* ------------------------------------------------------------------------
 * Listed children (codec.c): what a child of nodes/<dc>, leaders/,
 * models/ or a model's rollbacks/ must be, for the node (reads.c) and the
 * admin client alike.
 * ---------------------------------------------------------------------- */
struct topo_kind {
	size_t size;                      /* of one element */
	/* The child's name as a key (node id, rollback sequence): FR_OK, or
	 * FR_ERR_INVAL with a detail.  NULL: every name is fine here. */
	enum fr_err (*name)(const char *child, uint64_t *key);
	/* Decode the child's data into out and check it against its path
	 * (child, key; ctx is the dc of nodes/<dc>, else unused): FR_OK, or
	 * an error with a detail.  out may be written on failure. */
	enum fr_err (*read)(const char *child, uint64_t key, const void *ctx,
			    const char *data, size_t len, void *out);
	int (*cmp)(const void *a, const void *b);
	bool (*eq)(const void *a, const void *b);
};

extern const struct topo_kind topo_kind_member;     /* nodes/<dc>/<id> */
extern const struct topo_kind topo_kind_leader;     /* leaders/<dc> */
extern const struct topo_kind topo_kind_model;      /* models/<name> */
extern const struct topo_kind topo_kind_rollback;   /* rollbacks/r_<seq> */

/* If hosts ends in a chroot ("h:2181/a/b"), connect without it and create
 * /a and /a/b when missing: the ZooKeeper client refuses every call under
 * a chroot that does not exist.  FR_OK when there is no chroot.  Blocks up
 * to about timeout_ms; not for the loop thread.  (admin.c) */
enum fr_err topo_chroot_ensure(const char *hosts, uint32_t timeout_ms);

/* ========================================================================
 * The node's side: struct topo and its threads (docs/threads.md).
 *
 *   ZooKeeper's completion thread   topo_watch_cb and the other
 *                                   completions (session.c): under lock,
 *                                   or on the atomics.
 *   topology thread                 everything named th_* (member.c,
 *                                   reads.c, session.c).
 *   loop thread                     everything named lp_* (loop.c).
 * ===================================================================== */

typedef struct _zhandle zhandle_t;   /* as <zookeeper/zookeeper.h> has it */
struct Stat;
struct event;

/* Work bits: what the topology thread is to (re)do. */
#define TOPO_D_SESSION  (1u << 0)   /* look at the session state */
#define TOPO_D_PARENTS  (1u << 1)   /* create the persistent parents */
#define TOPO_D_MEMBER   (1u << 2)   /* nodes/<dc>/<id> is ours */
#define TOPO_D_ELECTION (1u << 3)   /* stand / re-rank in election/<dc> */
#define TOPO_D_LEADER   (1u << 4)   /* leaders/<dc> matches our claim */
#define TOPO_D_NODES    (1u << 5)   /* re-read nodes/ */
#define TOPO_D_LEADERS  (1u << 6)   /* re-read leaders/ */
#define TOPO_D_MODELS   (1u << 7)   /* re-read models/ */
#define TOPO_D_EXTRA    (1u << 8)   /* re-read models' rollbacks/, roles */
#define TOPO_D_ALL      (TOPO_D_PARENTS | TOPO_D_MEMBER | TOPO_D_ELECTION | \
			 TOPO_D_LEADER | TOPO_D_NODES | TOPO_D_LEADERS |    \
			 TOPO_D_MODELS | TOPO_D_EXTRA)

/* What a step returns when the znodes kept changing under it for all its
 * tries: not a lost connection, so the step is retried after
 * TOPO_RETRY_MS.  (Used where <zookeeper/zookeeper.h> is included.) */
#define TOPO_ZK_RETRY ZRUNTIMEINCONSISTENCY

#define TOPO_DATA_MAX (64u << 10)   /* larger znodes are refused */
#define TOPO_RETRY_MS 1000          /* retry failed work, poll the state */
#define TOPO_BAD_SEEN_MAX 256
/* Paths of fired rollbacks/ and roles watches waiting for the thread;
 * past this, every model's are re-read (rule 13). */
#define TOPO_KICK_PATHS_MAX 32

/* A watcher's context: the bits to set when it fires. */
struct topo_watch {
	struct topo *t;
	unsigned bits;
	bool by_path;     /* queue the path too (w_extra) */
};

/* A directive child seen once: immutable, so never read again. */
struct topo_rb_entry {
	uint64_t seq;
	bool bad;                         /* logged and counted; left out */
	struct topo_rollback d;
};

/* What the thread knows of one registry model besides its definition. */
struct topo_mstate {
	char name[SHARD_NAME_MAX + 1];
	unsigned dirty;                   /* reads.c's X_* bits */
	bool rb_read, roles_read;         /* each read at least once */
	int64_t rb_czxid;                 /* of rollbacks/ (0: absent) */
	struct topo_rb_entry *cache;      /* ascending by seq */
	uint32_t ncache;
	struct topo_rollback *rb;         /* in the view, ascending */
	uint32_t nrb;
	struct topo_role_override *roles; /* sorted by node id */
	uint32_t nroles;
};

/* A view on its way to the loop: one allocation, arrays after the head. */
struct topo_msg {
	struct topo_view v;
};

/* A bad znode already logged and counted. */
struct topo_bad_seen {
	uint64_t path_hash;
	int64_t mzxid;
};

struct topo {
	/* Fixed by topo_new. */
	struct event_base *base;
	struct topo_config cfg;
	topo_view_fn fn;
	void *arg;
	struct fr_mailbox *mb;
	pthread_t thread;
	char root[TOPO_PATH_MAX];
	char p_nodes[TOPO_PATH_MAX], p_nodes_dc[TOPO_PATH_MAX];
	char p_me[TOPO_PATH_MAX];
	char p_election[TOPO_PATH_MAX], p_election_dc[TOPO_PATH_MAX];
	char p_leaders[TOPO_PATH_MAX], p_leader_me[TOPO_PATH_MAX];
	char p_models[TOPO_PATH_MAX];
	char prefix[48];                  /* "n_<id>_<generation>_" */
	struct topo_watch w_session, w_member, w_nodes, w_leaders, w_models;
	struct topo_watch w_election;
	struct topo_watch w_extra;        /* models/<m>/rollbacks, roles */

	/* Shared with the ZooKeeper callbacks. */
	pthread_mutex_t lock;             /* leaf: kick*, st_*, stop,
					   * leave_left */
	pthread_cond_t cond;
	unsigned kick;
	char kick_paths[TOPO_KICK_PATHS_MAX][TOPO_PATH_MAX];
	uint32_t nkick_paths;
	bool kick_paths_lost;             /* queue was full: re-read all */
	struct topo_model_status st_models[TOPO_MEMBER_MODELS_MAX];
	uint32_t st_n;
	bool st_new;                      /* not yet taken by the thread */
	int leave_left;                   /* async deletes outstanding */
	atomic_bool stop;

	/* Counters written by the topology thread, read by the loop. */
	atomic_uint_fast64_t connects, disconnects, expirations;
	atomic_uint_fast64_t elections_won, bad_znodes;
	/* Contact (rule 2): fr_mono_ms() at which a request was sent that
	 * ZooKeeper answered, newest first; written by the topology and
	 * completion threads, read by the loop's watchdog. */
	atomic_uint_fast64_t contact_ms;
	atomic_uint_fast64_t probe_sent_ms;
	atomic_bool probe_busy;

	/* Topology thread only. */
	zhandle_t *th_zh;
	int64_t th_session;
	unsigned th_dirty;
	bool th_connected, th_expired_once;
	uint32_t th_timeout_ms;
	uint64_t th_probe_next;
	unsigned th_cap_warned;           /* TOPO_D_* of lists cut at a cap */
	char th_election[64];             /* our child's name, "" when none */
	bool th_member_ok;                /* nodes/<dc>/<id> is ours */
	bool th_elected, th_leader_owned;
	uint64_t th_epoch;
	bool th_member_warned, th_leader_warned;
	int th_init_errno;
	struct topo_member *th_members;
	uint32_t th_nmembers;
	struct topo_leader *th_leaders;
	uint32_t th_nleaders;
	struct shard_model_def *th_models;
	uint32_t th_nmodels;
	struct topo_mstate *th_mx;        /* parallel to th_models */
	uint32_t th_nmx;
	struct topo_member th_self;       /* cfg.self + latest status */
	char *th_member_json;             /* last written to p_me by us */
	char th_kpaths[TOPO_KICK_PATHS_MAX][TOPO_PATH_MAX];   /* drained */
	struct topo_role_override *th_roles_buf;   /* decode scratch */
	bool th_view_dirty;
	struct topo_msg *th_pending;      /* built, not yet accepted */
	char *th_buf;                     /* TOPO_DATA_MAX + 1 for zoo_get */
	struct topo_bad_seen th_bad[TOPO_BAD_SEEN_MAX];
	uint32_t th_nbad, th_bad_next;

	/* Loop thread only. */
	struct event *lp_timer;
	struct topo_msg *lp_last;
	bool lp_demoted, lp_leader;
	uint64_t lp_demotions, lp_views;
};

/* ------------------------------------------------------------------------
 * session.c: the callbacks (completion thread) and the thread itself
 * ---------------------------------------------------------------------- */

/* The watcher of every znode and of the session: ORs the watch's bits
 * into t->kick (w_extra: queues the path) and wakes the thread. */
void topo_watch_cb(zhandle_t *zh, int type, int state, const char *path,
		   void *ctx);
/* ZooKeeper answered a request sent at `sent` (fr_mono_ms()): the
 * session was alive then.  Keeps the newest.  Any thread. */
void topo_contact(struct topo *t, uint64_t sent);
/* rc says the connection (or the session) is gone, not the znode. */
bool topo_conn_lost(int rc);
/* snprintf for a path: false (and logged) when it does not fit.  Our own
 * paths always fit (names are <= 63 bytes); children's names may not. */
bool topo_pathf(char *dst, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Log a failed ZooKeeper call (info level for a lost connection). */
void topo_zk_fail(const char *what, const char *path, int rc);
/* Route ZooKeeper's log into fr_log at our level; once per process. */
void topo_zk_log_init(void);
/* How often a leader proves contact, for a session timeout of ms. */
uint64_t topo_probe_every(uint64_t timeout_ms);
/* The topology thread (pthread_create's start routine; arg: the topo). */
void *topo_thread_main(void *arg);

/* ------------------------------------------------------------------------
 * member.c: the znodes we own (topology thread).  Each returns ZOK or
 * ZooKeeper's code; a lost connection leaves the work for the next pass.
 * ---------------------------------------------------------------------- */
int topo_do_parents(struct topo *t);
int topo_do_member(struct topo *t);
int topo_do_election(struct topo *t);
int topo_do_leader(struct topo *t);

/* ------------------------------------------------------------------------
 * reads.c: the znodes we read (topology thread), returning as above
 * ---------------------------------------------------------------------- */

/* Data of path into t->th_buf (NUL-terminated), watching it with w (NULL:
 * no watch).  ZOK with *len, or the ZooKeeper code; ZBADARGUMENTS when it
 * is too big (logged as a bad znode; *st is filled). */
int topo_get_data(struct topo *t, const char *path, struct topo_watch *w,
		  int *len, struct Stat *st);
/* Log and count a znode we leave out, once per (path, version). */
void topo_bad_znode(struct topo *t, const char *path, int64_t mzxid,
		    const char *why);
int topo_read_nodes(struct topo *t);
int topo_read_leaders(struct topo *t);
int topo_read_models(struct topo *t);
int topo_read_extras(struct topo *t);
/* Mark every model's rollbacks/ and roles, or the one model a fired
 * watch's path names, to be read again. */
void topo_extras_all_dirty(struct topo *t);
void topo_extras_path_dirty(struct topo *t, const char *path);
void topo_mstate_fini(struct topo_mstate *x);

#endif /* FRESHET_TOPO_INT_H */
