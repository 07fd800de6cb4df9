/*
 * topo.c — the node's ZooKeeper side (DESIGN §4, DISTRIBUTED.md rules 1-7):
 * one session, our member znode (with the per-model status the loop
 * publishes through topo_set_status), the DC's leader election,
 * leaders/<dc> while we lead, and a watched, validated picture of nodes/,
 * leaders/, models/ and, for each model, its rollbacks/ and roles,
 * handed to the loop thread as a whole view.
 *
 * Threads (docs/threads.md):
 *
 *   ZooKeeper's completion thread   runs watch_cb only: it ORs "what to
 *                                   redo" bits into t->kick (and, for a
 *                                   model's rollbacks/ or roles, queues
 *                                   the path) under t->lock, signals
 *                                   t->cond and returns.
 *   topology thread (topo_thread)   owns the zhandle_t and everything
 *                                   named th_*: makes the synchronous
 *                                   zoo_* calls, builds views, posts them.
 *   loop thread                     topo_new/topo_free/topo_get_stats,
 *                                   topo_set_status (copies the status
 *                                   under t->lock and kicks D_MEMBER), the
 *                                   mailbox callback and the demotion
 *                                   timer; owns everything named lp_*.
 *
 * The topology thread's session state machine (step()):
 *
 *        zookeeper_init2                  CONNECTED: connects++,
 *   (none) ----------> CONNECTING -----------------> CONNECTED
 *      ^                  ^  |                          |  every pass: redo
 *      |                  |  | loss: disconnects++,     |  the dirty work
 *      |                  |  | keep the view and our    |  (register, elect,
 *      |                  |  | claims, post connected=0 |  lead, read) and
 *      |                  +--+--------------------------+  post the view
 *      |   EXPIRED: zookeeper_close, expirations++, drop every
 *      +-- claim, post leader=0, all work dirty again (rule 1)
 *
 * Work is a set of dirty bits (D_*): a watch firing sets the bits of what
 * it guards; every (re)connect sets them all, which re-checks that our
 * ephemerals are still ours and re-arms every watch (rules 1, 4).  A call
 * failing with CONNECTIONLOSS leaves its bit set; the pass stops and is
 * retried when the session is back.
 *
 * Per model (struct mstate, parallel to th_models): rollbacks/ is listed
 * with a child watch (an exists watch while it is absent) and each new
 * r_<seq> child is read once — directives are immutable — and cached by
 * sequence, good or bad (a bad one is logged and counted once); the view
 * carries the newest TOPO_ROLLBACKS_MAX good ones.  roles is read with a
 * data watch; a malformed one counts as no overrides.  Those watches all
 * share one context (w_extra) whose callback queues the path, so the
 * thread re-reads only the model that changed; a full queue re-reads
 * them all.  A model enters the view once both have been read.
 *
 * Our member znode says cfg.self plus the latest status (th_self): a
 * status change is a zoo_set by recheck_member, and after a session loss
 * the re-created znode carries it.  Calls to topo_set_status made before
 * the thread gets to it coalesce into one write.
 *
 * Leadership is claimed by the thread only while it is rank 0 in
 * election/<dc> and leaders/<dc> is ours.  The loop thread may take it
 * away (rule 2): t->contact_ms is the send time of the newest request
 * ZooKeeper answered; while we lead, the thread sends a small probe every
 * timeout/PROBE_DIV (never waiting for it), and a watchdog timer on the loop
 * thread delivers the last view with leader=false once contact is 2/3 of
 * the negotiated session timeout old.  It counts from the last contact,
 * not from when the client noticed the loss: after a silent cut the
 * client itself needs 2/3 of the timeout to notice, and ZooKeeper may
 * expire the session at 3/3.  Leadership comes back only with fresh
 * contact and a connected view, and a connected view is only posted
 * after the pass that re-checked the election.  The epoch is the
 * election sequence + 1, so a leader's epoch is never 0 and rises with
 * every candidacy.
 *
 * Not here: the admin client (admin.c), JSON (codec.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
/* The synchronous zoo_* calls are declared only for the threaded client. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "topology/topo_int.h"

#define MOD "topology"

/* Work bits. */
#define D_SESSION  (1u << 0)   /* look at the session state */
#define D_PARENTS  (1u << 1)   /* create the persistent parents */
#define D_MEMBER   (1u << 2)   /* nodes/<dc>/<id> is ours */
#define D_ELECTION (1u << 3)   /* stand / re-rank in election/<dc> */
#define D_LEADER   (1u << 4)   /* leaders/<dc> matches our claim */
#define D_NODES    (1u << 5)   /* re-read nodes/ */
#define D_LEADERS  (1u << 6)   /* re-read leaders/ */
#define D_MODELS   (1u << 7)   /* re-read models/ */
#define D_EXTRA    (1u << 8)   /* re-read models' rollbacks/, roles */
#define D_ALL      (D_PARENTS | D_MEMBER | D_ELECTION | D_LEADER | D_NODES | \
		    D_LEADERS | D_MODELS | D_EXTRA)

/* Per-model work (struct mstate.dirty). */
#define X_ROLLBACKS (1u << 0)
#define X_ROLES     (1u << 1)
#define X_ALL       (X_ROLLBACKS | X_ROLES)

/* What a step returns when the znodes kept changing under it for all its
 * tries: not a lost connection, so the step is retried after RETRY_MS. */
#define ZK_RETRY ZRUNTIMEINCONSISTENCY

#define DATA_MAX (64u << 10)      /* larger znodes are refused */
#define RETRY_MS 1000             /* retry failed work, poll the state */
#define POST_RETRY_MS 20          /* mailbox full: try again soon */
#define MAILBOX_CAP 8
#define BAD_SEEN_MAX 256
#define LEAVE_WAIT_MS 700         /* topo_free: wait for our deletes */
#define PROBE_DIV 10              /* leaders probe every timeout/10 ... */
#define PROBE_MIN_MS 50           /* ... but at most every 50 ms */
/* Bounds on what a view holds (rule 13): children past these, in name
 * order, are left out (and logged), so every node leaves out the same. */
#define MEMBERS_MAX 4096
#define LEADERS_MAX 256
#define MODELS_MAX 256
/* Paths of fired rollbacks/ and roles watches waiting for the thread;
 * past this, every model's are re-read (rule 13). */
#define KICK_PATHS_MAX 32

/* A watcher's context: the bits to set when it fires. */
struct topo_watch {
	struct topo *t;
	unsigned bits;
	bool by_path;     /* queue the path too (w_extra) */
};

/* A directive child seen once: immutable, so never read again. */
struct rb_entry {
	uint64_t seq;
	bool bad;                         /* logged and counted; left out */
	struct topo_rollback d;
};

/* What the thread knows of one registry model besides its definition. */
struct mstate {
	char name[SHARD_NAME_MAX + 1];
	unsigned dirty;                   /* X_* */
	bool rb_read, roles_read;         /* each read at least once */
	int64_t rb_czxid;                 /* of rollbacks/ (0: absent) */
	struct rb_entry *cache;           /* ascending by seq */
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

struct bad_seen {
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
	char kick_paths[KICK_PATHS_MAX][TOPO_PATH_MAX];
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
	unsigned th_cap_warned;           /* D_* bits of lists cut at a cap */
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
	struct mstate *th_mx;             /* parallel to th_models */
	uint32_t th_nmx;
	struct topo_member th_self;       /* cfg.self + latest status */
	char *th_member_json;             /* last written to p_me by us */
	char th_kpaths[KICK_PATHS_MAX][TOPO_PATH_MAX];   /* drained queue */
	struct topo_role_override *th_roles_buf;   /* decode scratch */
	bool th_view_dirty;
	struct topo_msg *th_pending;      /* built, not yet accepted */
	char *th_buf;                     /* DATA_MAX bytes for zoo_get */
	struct bad_seen th_bad[BAD_SEEN_MAX];
	uint32_t th_nbad, th_bad_next;

	/* Loop thread only. */
	struct event *lp_timer;
	struct topo_msg *lp_last;
	bool lp_demoted, lp_leader;
	uint64_t lp_demotions, lp_views;
};

/* ------------------------------------------------------------------------
 * ZooKeeper callbacks (completion thread): queue and return
 * ---------------------------------------------------------------------- */

static void kick(struct topo *t, unsigned bits)
{
	pthread_mutex_lock(&t->lock);
	t->kick |= bits;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* A model's rollbacks/ or roles changed: queue the path (copied; it
 * lives only during the callback) so only that model is read again. */
static void kick_path(struct topo *t, const char *path)
{
	size_t n = path ? strlen(path) : TOPO_PATH_MAX;

	pthread_mutex_lock(&t->lock);
	if (n < TOPO_PATH_MAX && t->nkick_paths < KICK_PATHS_MAX)
		memcpy(t->kick_paths[t->nkick_paths++], path, n + 1);
	else
		t->kick_paths_lost = true;
	t->kick |= D_EXTRA | D_SESSION;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void watch_cb(zhandle_t *zh, int type, int state, const char *path,
		     void *ctx)
{
	struct topo_watch *w = ctx;

	(void)zh;
	(void)state;
	/* A session event reaching a path watcher is not a change (rule 4):
	 * only the state is worth a look. */
	if (type == ZOO_SESSION_EVENT || type == ZOO_NOTWATCHING_EVENT)
		kick(w->t, D_SESSION);
	else if (w->by_path)
		kick_path(w->t, path);
	else
		kick(w->t, w->bits | D_SESSION);
}

static void leave_done_cb(int rc, const void *data)
{
	struct topo *t = (struct topo *)data;

	(void)rc;
	pthread_mutex_lock(&t->lock);
	t->leave_left--;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static bool conn_lost(int rc);

/* Any thread: ZooKeeper answered a request sent at `sent` (fr_mono_ms()),
 * so the session was alive then.  Keeps the newest. */
static void contact(struct topo *t, uint64_t sent)
{
	uint_fast64_t cur = atomic_load(&t->contact_ms);

	while (sent > cur &&
	       !atomic_compare_exchange_weak(&t->contact_ms, &cur, sent))
		;
}

/* The leader's probe came back (completion thread): any answer but a
 * lost connection is contact. */
static void probe_cb(int rc, const struct Stat *st, const void *data)
{
	struct topo *t = (struct topo *)data;

	(void)st;
	if (!conn_lost(rc))
		contact(t, atomic_load(&t->probe_sent_ms));
	atomic_store(&t->probe_busy, false);
}

/* ZooKeeper's log lines ("...:ZOO_ERROR@func@line: text") into fr_log.
 * Its errors are mostly about connections it will retry: warn level. */
static atomic_uint_fast64_t zk_log_last_ms;

static void zk_log_cb(const char *message)
{
	const char *p = strstr(message, ":ZOO_");
	enum fr_log_level lv = FR_LOG_DEBUG;
	uint64_t now, last;

	if (p) {
		p += 5;
		if (strncmp(p, "ERROR", 5) == 0)
			lv = FR_LOG_WARN;
		else if (strncmp(p, "WARN", 4) == 0)
			lv = FR_LOG_INFO;
		p = strchr(p, '@');
		p = p ? p + 1 : message;
	} else {
		p = message;
	}
	/* While a server is down the client retries (and logs) every few
	 * tens of ms: at most one line a second above debug. */
	if (lv > FR_LOG_DEBUG) {
		now = fr_mono_ms();
		last = atomic_load(&zk_log_last_ms);
		if (now - last < 1000 ||
		    !atomic_compare_exchange_strong(&zk_log_last_ms, &last, now))
			lv = FR_LOG_DEBUG;
	}
	fr_log(lv, "zookeeper", "%s", p);
}

static pthread_once_t zk_log_once = PTHREAD_ONCE_INIT;

static void zk_log_init(void)
{
	/* Process-wide in the C client; our callback filters again. */
	zoo_set_debug_level(fr_log_threshold <= FR_LOG_DEBUG ?
			    ZOO_LOG_LEVEL_INFO : ZOO_LOG_LEVEL_WARN);
}

/* ------------------------------------------------------------------------
 * Topology thread: helpers
 * ---------------------------------------------------------------------- */

static bool conn_lost(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT ||
	       rc == ZSESSIONEXPIRED || rc == ZSESSIONMOVED ||
	       rc == ZCLOSING || rc == ZINVALIDSTATE;
}

/* snprintf for a path: false (and logged) when it does not fit.  Our own
 * paths always fit (names are <= 63 bytes); children's names may not. */
static bool __attribute__((format(printf, 3, 4)))
pathf(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < cap)
		return true;
	fr_log(FR_LOG_WARN, MOD, "path longer than %zu bytes: %.60s...",
	       cap - 1, dst);
	return false;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Log and count a znode we leave out, once per (path, version). */
static void bad_znode(struct topo *t, const char *path, int64_t mzxid,
		      const char *why)
{
	uint64_t h = fnv1a(path);

	for (uint32_t i = 0; i < t->th_nbad; i++)
		if (t->th_bad[i].path_hash == h && t->th_bad[i].mzxid == mzxid)
			return;
	t->th_bad[t->th_bad_next] = (struct bad_seen){ h, mzxid };
	t->th_bad_next = (t->th_bad_next + 1) % BAD_SEEN_MAX;
	if (t->th_nbad < BAD_SEEN_MAX)
		t->th_nbad++;
	atomic_fetch_add(&t->bad_znodes, 1);
	t->th_view_dirty = true;
	fr_log(FR_LOG_WARN, MOD, "ignoring znode %s: %s", path, why);
}

static void zk_fail(const char *what, const char *path, int rc)
{
	fr_log(conn_lost(rc) ? FR_LOG_INFO : FR_LOG_WARN, MOD, "%s %s: %s",
	       what, path, zerror(rc));
}

/* Data of path into th_buf (NUL-terminated), watching it with w (NULL:
 * no watch).  ZOK with *len, or the ZooKeeper code; ZBADARGUMENTS when it
 * is too big (logged as a bad znode). */
static int get_data(struct topo *t, const char *path, struct topo_watch *w,
		    int *len, struct Stat *st)
{
	uint64_t sent = fr_mono_ms();
	int n = DATA_MAX;
	int rc = zoo_wget(t->th_zh, path, w ? watch_cb : NULL, w, t->th_buf,
			  &n, st);

	/* Long reads (many children) keep the leader's contact fresh. */
	if (!conn_lost(rc))
		contact(t, sent);
	if (rc != ZOK)
		return rc;
	if (st->dataLength > (int32_t)DATA_MAX) {
		char why[64];

		snprintf(why, sizeof(why), "%d bytes, more than %u",
			 st->dataLength, DATA_MAX);
		bad_znode(t, path, st->mzxid, why);
		return ZBADARGUMENTS;
	}
	if (n < 0)
		n = 0;
	t->th_buf[n] = '\0';
	*len = n;
	return ZOK;
}

/* Create a persistent node; ZNODEEXISTS is fine. */
static int ensure_node(struct topo *t, const char *path)
{
	int rc = zoo_create(t->th_zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0,
			    NULL, 0);

	if (rc == ZOK || rc == ZNODEEXISTS)
		return ZOK;
	if (rc == ZNONODE)
		fr_log(FR_LOG_ERROR, MOD,
		       "create %s: %s (does the chroot in '%s' exist?)", path,
		       zerror(rc), t->cfg.hosts);
	else
		zk_fail("create", path, rc);
	return rc;
}

static int do_parents(struct topo *t)
{
	const char *paths[] = { "/freshet", t->root, t->p_nodes,
				t->p_nodes_dc, t->p_election,
				t->p_election_dc, t->p_leaders, t->p_models };
	int rc = ZOK;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && !rc; i++)
		rc = ensure_node(t, paths[i]);
	return rc;
}

/* ------------------------------------------------------------------------
 * Topology thread: our member znode (rules 1, 6)
 * ---------------------------------------------------------------------- */

/* Still ours, and still saying what we registered?  Arms the watch on
 * our member znode; data someone else wrote into it is put back (peers
 * would otherwise leave us out of their views).  An ephemeral of a live
 * session vanishes only when someone deletes it — most likely a newer
 * generation of this node taking over (rule 6) — so rather than race it
 * to re-create, step out and try again after RETRY_MS. */
static int recheck_member(struct topo *t)
{
	struct Stat st;
	int len = DATA_MAX;
	int rc = zoo_wget(t->th_zh, t->p_me, watch_cb, &t->w_member, t->th_buf,
			  &len, &st);

	if (rc == ZOK && st.ephemeralOwner == t->th_session) {
		enum fr_err err;
		char *json = topo_member_encode(&t->th_self, &err);
		bool mine;

		if (!json)
			return ZSYSTEMERROR;   /* checked in topo_set_status */
		if (st.dataLength != (int32_t)strlen(json) ||
		    memcmp(t->th_buf, json, strlen(json)) != 0) {
			/* What we wrote last, now stale: a new status.
			 * Anything else is someone else's doing. */
			mine = t->th_member_json && len >= 0 &&
			       st.dataLength == len &&
			       strlen(t->th_member_json) == (size_t)len &&
			       memcmp(t->th_buf, t->th_member_json,
				      (size_t)len) == 0;
			if (mine)
				fr_log(FR_LOG_DEBUG, MOD,
				       "publishing our status in %s",
				       t->p_me);
			else
				fr_log(FR_LOG_WARN, MOD,
				       "%s was overwritten by another client; writing ours back",
				       t->p_me);
			rc = zoo_set(t->th_zh, t->p_me, json, (int)strlen(json),
				     st.version);
			/* Written again meanwhile: its watch brings us back. */
			if (rc == ZBADVERSION)
				rc = ZK_RETRY;
		}
		if (rc == ZOK) {
			free(t->th_member_json);
			t->th_member_json = json;
			json = NULL;
		}
		free(json);
		return rc;
	}
	if (rc != ZOK && rc != ZNONODE)
		return rc;
	fr_log(FR_LOG_WARN, MOD,
	       "%s was %s by another session; standing down, registering again later",
	       t->p_me, rc == ZNONODE ? "removed" : "replaced");
	t->th_member_ok = false;
	t->th_dirty |= D_ELECTION;
	return ZK_RETRY;
}

static int do_member(struct topo *t)
{
	enum fr_err err;
	char *json;
	int rc = ZK_RETRY;
	bool ok = false;

	if (t->th_member_ok)
		return recheck_member(t);
	/* With the latest status: a re-created znode (after a session
	 * loss) says what the old one said. */
	json = topo_member_encode(&t->th_self, &err);
	if (!json)
		return ZSYSTEMERROR;   /* checked in topo_new: cannot happen */
	for (int tries = 0; tries < 3 && !ok; tries++, rc = ZK_RETRY) {
		struct topo_member other;
		struct Stat st;
		int len;

		rc = zoo_create(t->th_zh, t->p_me, json, (int)strlen(json),
				&ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
		if (rc == ZOK) {
			fr_log(FR_LOG_INFO, MOD, "registered %s (generation %" PRIu64 ")",
			       t->p_me, t->cfg.self.generation);
			ok = true;
			break;
		}
		if (rc != ZNODEEXISTS)
			break;
		len = DATA_MAX;
		rc = zoo_get(t->th_zh, t->p_me, 0, t->th_buf, &len, &st);
		if (rc == ZNONODE)
			continue;
		if (rc != ZOK)
			break;
		if (st.ephemeralOwner == t->th_session) {
			/* Ours: a create lost to CONNECTIONLOSS. */
			if (len != (int)strlen(json) ||
			    memcmp(t->th_buf, json, (size_t)len) != 0)
				rc = zoo_set(t->th_zh, t->p_me, json,
					     (int)strlen(json), st.version);
			ok = rc == ZOK;
			break;
		}
		if (topo_member_decode(t->th_buf, len < 0 ? 0 : (size_t)len,
				       &other) == FR_OK &&
		    other.generation >= t->cfg.self.generation) {
			if (!t->th_member_warned)
				fr_log(FR_LOG_ERROR, MOD,
				       "node id %" PRIu32 " is registered by another process (generation %" PRIu64 ", ours %" PRIu64 ") at %s; retrying when it goes",
				       t->cfg.self.node_id, other.generation,
				       t->cfg.self.generation, t->p_me);
			t->th_member_warned = true;
			/* Watch it: we try again when it goes. */
			rc = zoo_wexists(t->th_zh, t->p_me, watch_cb,
					 &t->w_member, &st);
			if (rc == ZNONODE)
				continue;
			rc = rc == ZOK ? ZNODEEXISTS : rc;
			break;
		}
		/* Our own ghost from an earlier life (rule 6), or a znode
		 * nobody can read: replace it. */
		fr_log(FR_LOG_WARN, MOD,
		       "replacing %s left by session 0x%" PRIx64 " (an older generation of this node)",
		       t->p_me, (uint64_t)st.ephemeralOwner);
		rc = zoo_delete(t->th_zh, t->p_me, st.version);
		if (rc != ZOK && rc != ZNONODE && rc != ZBADVERSION)
			break;
	}
	free(json);
	if (ok) {
		t->th_member_warned = false;
		t->th_member_ok = true;
		/* Now stand for election (see do_election). */
		t->th_dirty |= D_ELECTION;
		return recheck_member(t);
	}
	if (rc != ZNODEEXISTS)
		zk_fail("register", t->p_me, rc);
	/* Waiting for another holder: its watch brings us back. */
	return rc == ZNODEEXISTS ? ZOK : rc;
}

/* ------------------------------------------------------------------------
 * Topology thread: election and leaders/<dc> (rules 2, 3)
 * ---------------------------------------------------------------------- */

static void set_elected(struct topo *t, bool elected, uint64_t seq)
{
	if (elected && !t->th_elected) {
		t->th_epoch = seq + 1;
		atomic_fetch_add(&t->elections_won, 1);
		fr_log(FR_LOG_INFO, MOD, "elected leader of dc %s (epoch %" PRIu64 ")",
		       t->cfg.self.dc, t->th_epoch);
	} else if (!elected && t->th_elected) {
		fr_log(FR_LOG_WARN, MOD, "no longer leader of dc %s",
		       t->cfg.self.dc);
	}
	if (elected != t->th_elected)
		t->th_view_dirty = true;
	t->th_elected = elected;
	t->th_dirty |= D_LEADER;
}

/* Look for our own candidate among children (after CONNECTIONLOSS on
 * create); remove candidates of our node id from older generations —
 * ghosts of a previous life that could otherwise win (rule 6) — and any
 * second candidate of this session (a create whose reply was lost but
 * which ZooKeeper applied after we looked): an orphan ranked ahead of us
 * would block the DC while our session lives (rule 3).  withdraw: remove
 * every candidate of this session. */
static int adopt_or_clean(struct topo *t, const struct String_vector *sv,
			  bool withdraw)
{
	for (int32_t i = 0; i < sv->count; i++) {
		const char *c = sv->data[i];
		char path[TOPO_PATH_MAX];
		uint64_t gen, seq;
		struct Stat st;
		uint32_t id;
		int rc;

		if (topo_election_parse(c, &id, &gen, &seq) != FR_OK ||
		    id != t->cfg.self.node_id ||
		    gen > t->cfg.self.generation)
			continue;
		if (!pathf(path, sizeof(path), "%s/%s", t->p_election_dc, c))
			continue;
		rc = zoo_exists(t->th_zh, path, 0, &st);
		if (rc == ZNONODE)
			continue;
		if (rc != ZOK)
			return rc;
		if (st.ephemeralOwner == t->th_session) {
			if (!withdraw && gen == t->cfg.self.generation &&
			    (!t->th_election[0] ||
			     strcmp(t->th_election, c) == 0)) {
				snprintf(t->th_election, sizeof(t->th_election),
					 "%s", c);
				continue;
			}
			fr_log(FR_LOG_WARN, MOD, "removing %s: %s", path,
			       withdraw ? "withdrawing" :
			       "a second candidate of this session");
			rc = zoo_delete(t->th_zh, path, -1);
			if (rc != ZOK && rc != ZNONODE)
				return rc;
			continue;
		}
		if (gen < t->cfg.self.generation) {
			fr_log(FR_LOG_WARN, MOD,
			       "removing %s: a candidate of an older generation of this node",
			       path);
			rc = zoo_delete(t->th_zh, path, -1);
			if (rc != ZOK && rc != ZNONODE)
				return rc;
		}
	}
	return ZOK;
}

static int do_election(struct topo *t)
{
	enum fr_err err;
	char *json = NULL;
	int rc = ZOK;

	if (!t->cfg.candidate)
		return ZOK;
	if (!t->th_member_ok) {
		/* Withdraw (see do_member): every candidate of this session,
		 * also one whose create lost its reply (th_election is "" then
		 * but the znode may exist). */
		struct String_vector sv = { 0, NULL };

		set_elected(t, false, 0);
		rc = zoo_get_children(t->th_zh, t->p_election_dc, 0, &sv);
		if (rc == ZNONODE)
			rc = ZOK;
		else if (rc == ZOK)
			rc = adopt_or_clean(t, &sv, true);
		deallocate_String_vector(&sv);
		if (rc == ZOK && t->th_election[0]) {
			fr_log(FR_LOG_WARN, MOD, "withdrew candidate %s/%s: not registered",
			       t->p_election_dc, t->th_election);
			t->th_election[0] = '\0';
		}
		return rc;
	}
	for (int tries = 0; tries < 4; tries++, rc = ZK_RETRY) {
		char pred[TOPO_NAME_MAX + 32], path[TOPO_PATH_MAX];
		char made[TOPO_PATH_MAX];
		struct String_vector sv = { 0, NULL };
		uint64_t gen, seq;
		uint32_t rank, id;
		struct Stat st;
		enum fr_err e;

		rc = zoo_get_children(t->th_zh, t->p_election_dc, 0, &sv);
		if (rc == ZNONODE)
			t->th_dirty |= D_PARENTS;
		if (rc != ZOK)
			break;
		rc = adopt_or_clean(t, &sv, false);
		if (rc != ZOK) {
			deallocate_String_vector(&sv);
			break;
		}
		if (!t->th_election[0]) {
			deallocate_String_vector(&sv);
			if (!json)
				json = topo_member_encode(&t->cfg.self, &err);
			if (!json) {
				rc = ZSYSTEMERROR;
				break;
			}
			pathf(path, sizeof(path), "%s/%s", t->p_election_dc,
			      t->prefix);
			rc = zoo_create(t->th_zh, path, json, (int)strlen(json),
					&ZOO_OPEN_ACL_UNSAFE,
					ZOO_EPHEMERAL | ZOO_SEQUENCE, made,
					sizeof(made));
			if (rc != ZOK)
				break;
			if (!pathf(t->th_election, sizeof(t->th_election),
				   "%s", strrchr(made, '/') ?
				   strrchr(made, '/') + 1 : made)) {
				t->th_election[0] = '\0';
				rc = ZSYSTEMERROR;
				break;
			}
			fr_log(FR_LOG_INFO, MOD, "candidate %s/%s",
			       t->p_election_dc, t->th_election);
			continue;   /* list again, now with us in it */
		}
		e = topo_election_rank((const char *const *)sv.data,
				       (uint32_t)sv.count, t->th_election,
				       &rank, pred, sizeof(pred));
		deallocate_String_vector(&sv);
		if (e == FR_ERR_NOTFOUND) {
			/* Gone while the session lived (someone deleted
			 * it): stand again. */
			fr_log(FR_LOG_WARN, MOD, "our candidate %s vanished; standing again",
			       t->th_election);
			t->th_election[0] = '\0';
			set_elected(t, false, 0);
			continue;
		}
		if (e != FR_OK) {
			rc = ZSYSTEMERROR;
			break;
		}
		topo_election_parse(t->th_election, &id, &gen, &seq);
		if (rank == 0) {
			/* Watch our own candidate: if someone deletes it, our
			 * successor takes over and we must stand down now,
			 * not at the next reconnect. */
			pathf(path, sizeof(path), "%s/%s", t->p_election_dc,
			      t->th_election);
			rc = zoo_wexists(t->th_zh, path, watch_cb,
					 &t->w_election, &st);
			if (rc == ZNONODE)
				continue;   /* re-list: "vanished" below */
			if (rc != ZOK)
				break;
			set_elected(t, true, seq);
			break;
		}
		set_elected(t, false, 0);
		/* Watch only our predecessor (no herd); if it is already
		 * gone, re-list (rule 3). */
		pathf(path, sizeof(path), "%s/%s", t->p_election_dc, pred);
		rc = zoo_wexists(t->th_zh, path, watch_cb, &t->w_election, &st);
		if (rc == ZOK && st.ephemeralOwner == 0) {
			/* Not an ephemeral (made by hand or a tool): no
			 * session's end removes it, and ranked ahead of
			 * everyone it would block the DC for ever (rule 7). */
			fr_log(FR_LOG_WARN, MOD,
			       "removing %s: a candidate that is not an ephemeral znode",
			       path);
			rc = zoo_delete(t->th_zh, path, -1);
			if (rc != ZOK && rc != ZNONODE)
				break;
			continue;   /* re-list */
		}
		if (rc != ZNONODE)
			break;
	}
	free(json);
	if (rc != ZOK && !conn_lost(rc)) {
		zk_fail("election in", t->p_election_dc, rc);
		set_elected(t, false, 0);
	}
	return rc;
}

static int do_leader(struct topo *t)
{
	struct topo_leader me;
	enum fr_err err;
	uint64_t sent = fr_mono_ms();
	char *json;
	int rc = ZOK;

	if (!t->th_elected) {
		struct Stat st;

		if (!t->th_leader_owned)
			return ZOK;
		/* Resign: remove leaders/<dc> if it is still ours. */
		rc = zoo_exists(t->th_zh, t->p_leader_me, 0, &st);
		if (rc == ZOK && st.ephemeralOwner == t->th_session)
			rc = zoo_delete(t->th_zh, t->p_leader_me, st.version);
		if (rc == ZOK || rc == ZNONODE || rc == ZBADVERSION) {
			t->th_leader_owned = false;
			t->th_view_dirty = true;
			rc = ZOK;
		}
		return rc;
	}
	memset(&me, 0, sizeof(me));
	memcpy(me.dc, t->cfg.self.dc, sizeof(me.dc));
	me.node_id = t->cfg.self.node_id;
	memcpy(me.addr, t->cfg.self.addr, sizeof(me.addr));
	me.epoch = t->th_epoch;
	me.generation = t->cfg.self.generation;
	json = topo_leader_encode(&me, &err);
	if (!json)
		return ZSYSTEMERROR;
	for (int tries = 0; tries < 3; tries++, rc = ZK_RETRY) {
		struct topo_leader other;
		struct Stat st;
		int len;

		rc = zoo_create(t->th_zh, t->p_leader_me, json,
				(int)strlen(json), &ZOO_OPEN_ACL_UNSAFE,
				ZOO_EPHEMERAL, NULL, 0);
		if (rc != ZNODEEXISTS)
			break;
		rc = get_data(t, t->p_leader_me, &t->w_leaders, &len, &st);
		if (rc == ZNONODE)
			continue;
		/* ZBADARGUMENTS: too big to read, but st is filled. */
		if (rc != ZOK && rc != ZBADARGUMENTS)
			break;
		if (st.ephemeralOwner == t->th_session) {
			if (rc == ZOK && strcmp(t->th_buf, json) == 0)
				break;
			/* Ours, overwritten by another client: put our
			 * claim back (the data watch brought us here). */
			fr_log(FR_LOG_WARN, MOD,
			       "%s was overwritten by another client; writing ours back",
			       t->p_leader_me);
			rc = zoo_set(t->th_zh, t->p_leader_me, json,
				     (int)strlen(json), st.version);
			if (rc == ZBADVERSION)
				continue;   /* written again meanwhile */
			break;
		}
		/* Not an ephemeral (made by hand or a tool): no session's
		 * end will remove it, so it would block the DC for ever.  A
		 * ghost of an older generation of this node goes too. */
		if (st.ephemeralOwner == 0 ||
		    (rc == ZOK &&
		     topo_leader_decode(t->th_buf, (size_t)len, &other) ==
			     FR_OK &&
		     other.node_id == t->cfg.self.node_id &&
		     other.generation < t->cfg.self.generation)) {
			fr_log(FR_LOG_WARN, MOD, "replacing %s: %s",
			       t->p_leader_me, st.ephemeralOwner == 0 ?
			       "not an ephemeral znode (no session holds it)" :
			       "left by an older generation of this node");
			rc = zoo_delete(t->th_zh, t->p_leader_me, st.version);
			if (rc != ZOK && rc != ZNONODE && rc != ZBADVERSION)
				break;
			continue;
		}
		/* Held by another session (an old leader on its way out):
		 * the data watch set above tells us when it goes. */
		if (!t->th_leader_warned)
			fr_log(FR_LOG_WARN, MOD,
			       "%s is held by session 0x%" PRIx64 "; waiting for it to go",
			       t->p_leader_me, (uint64_t)st.ephemeralOwner);
		t->th_leader_warned = true;
		rc = ZNODEEXISTS;
		break;
	}
	free(json);
	if (rc == ZOK) {
		/* Every call above was answered (rule 2's clock). */
		contact(t, sent);
		t->th_leader_warned = false;
		if (!t->th_leader_owned)
			t->th_view_dirty = true;
		t->th_leader_owned = true;
	} else {
		if (t->th_leader_owned)
			t->th_view_dirty = true;
		if (!conn_lost(rc))
			t->th_leader_owned = false;
		if (rc != ZNODEEXISTS)
			zk_fail("lead", t->p_leader_me, rc);
	}
	/* Waiting on another holder is not a failure to retry: its watch
	 * brings us back. */
	return rc == ZNODEEXISTS ? ZOK : rc;
}

/* ------------------------------------------------------------------------
 * Topology thread: reading nodes/, leaders/, models/
 * ---------------------------------------------------------------------- */

static bool member_eq(const struct topo_member *a, const struct topo_member *b)
{
	if (a->node_id != b->node_id || a->generation != b->generation ||
	    strcmp(a->dc, b->dc) != 0 || strcmp(a->addr, b->addr) != 0 ||
	    strcmp(a->admin, b->admin) != 0 ||
	    strcmp(a->roles, b->roles) != 0 || a->nmodels != b->nmodels)
		return false;
	for (uint32_t i = 0; i < a->nmodels; i++) {
		const struct topo_model_status *x = &a->models[i];
		const struct topo_model_status *y = &b->models[i];

		if (strcmp(x->model, y->model) != 0 ||
		    strcmp(x->role, y->role) != 0 || x->epoch != y->epoch ||
		    x->cut != y->cut || x->horizon != y->horizon)
			return false;
	}
	return true;
}

static bool leader_eq(const struct topo_leader *a, const struct topo_leader *b)
{
	return a->node_id == b->node_id && a->epoch == b->epoch &&
	       a->generation == b->generation && strcmp(a->dc, b->dc) == 0 &&
	       strcmp(a->addr, b->addr) == 0;
}

static bool model_eq(const struct shard_model_def *a,
		     const struct shard_model_def *b)
{
	if (strcmp(a->name, b->name) != 0 || a->priority != b->priority ||
	    a->shards != b->shards || a->ntables != b->ntables)
		return false;
	for (uint32_t i = 0; i < a->ntables; i++)
		if (strcmp(a->tables[i].name, b->tables[i].name) != 0 ||
		    a->tables[i].rows != b->tables[i].rows ||
		    a->tables[i].dim != b->tables[i].dim ||
		    a->tables[i].dtype != b->tables[i].dtype)
			return false;
	return true;
}

static int member_cmp(const void *a, const void *b)
{
	const struct topo_member *x = a, *y = b;
	int c = strcmp(x->dc, y->dc);

	if (c)
		return c;
	return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

static int leader_cmp(const void *a, const void *b)
{
	return strcmp(((const struct topo_leader *)a)->dc,
		      ((const struct topo_leader *)b)->dc);
}

static int model_cmp(const void *a, const void *b)
{
	return strcmp(((const struct shard_model_def *)a)->name,
		      ((const struct shard_model_def *)b)->name);
}

/* Room for one more element in a growing array. */
static bool grow(void **arr, uint32_t n, uint32_t *cap, size_t size)
{
	void *p;
	uint32_t c;

	if (n < *cap)
		return true;
	c = *cap ? *cap * 2 : 8;
	p = realloc(*arr, (size_t)c * size);
	if (!p)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

/* Canonical decimal node id "1".."4294967294" (a znode name). */
static bool parse_id(const char *s, uint32_t *id)
{
	uint64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 10 || (s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v < 1 || v > TOPO_NODE_ID_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Children in name order: the cap below then leaves out the same ones
 * on every node. */
static void sort_children(struct String_vector *sv)
{
	if (sv->count > 1)
		qsort(sv->data, (size_t)sv->count, sizeof(sv->data[0]),
		      name_cmp);
}

/* A list hit its cap (or no longer does): say so once. */
static void cap_note(struct topo *t, unsigned bit, bool hit, const char *path,
		     unsigned max)
{
	if (hit && !(t->th_cap_warned & bit))
		fr_log(FR_LOG_ERROR, MOD,
		       "%s: more than %u entries; the rest (in name order) are left out of the view",
		       path, max);
	if (hit)
		t->th_cap_warned |= bit;
	else
		t->th_cap_warned &= ~bit;
}

/* Swap a freshly read array into the thread's copy; note a change. */
static void replace(struct topo *t, void **cur, uint32_t *ncur, void *fresh,
		    uint32_t nfresh, size_t size,
		    int (*cmp)(const void *, const void *),
		    bool (*eq)(const void *, const void *))
{
	bool same = *ncur == nfresh;

	if (nfresh > 1)
		qsort(fresh, nfresh, size, cmp);
	for (uint32_t i = 0; same && i < nfresh; i++)
		same = eq((const char *)*cur + i * size,
			  (const char *)fresh + i * size);
	if (!same)
		t->th_view_dirty = true;
	free(*cur);
	*cur = fresh;
	*ncur = nfresh;
}

static bool member_eq_v(const void *a, const void *b)
{
	return member_eq(a, b);
}

static bool leader_eq_v(const void *a, const void *b)
{
	return leader_eq(a, b);
}

static bool model_eq_v(const void *a, const void *b)
{
	return model_eq(a, b);
}

static int read_nodes(struct topo *t)
{
	struct String_vector dcs = { 0, NULL };
	struct topo_member *arr = NULL;
	uint32_t n = 0, cap = 0;
	bool full = false;
	int rc;

	rc = zoo_wget_children(t->th_zh, t->p_nodes, watch_cb, &t->w_nodes,
			       &dcs);
	if (rc != ZOK) {
		if (rc == ZNONODE)
			t->th_dirty |= D_PARENTS;
		return rc;
	}
	sort_children(&dcs);
	for (int32_t i = 0; i < dcs.count && !full && !atomic_load(&t->stop);
	     i++) {
		struct String_vector ids = { 0, NULL };
		char dcpath[TOPO_PATH_MAX];

		if (!pathf(dcpath, sizeof(dcpath), "%s/%s", t->p_nodes,
			   dcs.data[i]))
			continue;
		if (topo_check_name(dcs.data[i], TOPO_NAME_MAX, "dc") != FR_OK) {
			bad_znode(t, dcpath, 0, fr_errmsg());
			continue;
		}
		rc = zoo_wget_children(t->th_zh, dcpath, watch_cb, &t->w_nodes,
				       &ids);
		if (rc == ZNONODE) {
			rc = ZOK;
			continue;
		}
		if (rc != ZOK)
			break;
		sort_children(&ids);
		for (int32_t k = 0; k < ids.count; k++) {
			char path[TOPO_PATH_MAX], why[160];
			struct topo_member m;
			struct Stat st;
			uint32_t id;
			int len;

			if (n == MEMBERS_MAX) {
				full = true;
				break;
			}
			if (!pathf(path, sizeof(path), "%s/%s", dcpath,
				   ids.data[k]))
				continue;
			if (!parse_id(ids.data[k], &id)) {
				bad_znode(t, path, 0,
					  "name is not a node id 1..4294967294");
				continue;
			}
			rc = get_data(t, path, &t->w_nodes, &len, &st);
			if (rc == ZNONODE || rc == ZBADARGUMENTS) {
				rc = ZOK;
				continue;
			}
			if (rc != ZOK)
				break;
			if (topo_member_decode(t->th_buf, (size_t)len, &m) !=
			    FR_OK) {
				bad_znode(t, path, st.mzxid, fr_errmsg());
				continue;
			}
			if (m.node_id != id || strcmp(m.dc, dcs.data[i]) != 0) {
				snprintf(why, sizeof(why),
					 "says node %" PRIu32 " in dc '%s', not what its path says",
					 m.node_id, m.dc);
				bad_znode(t, path, st.mzxid, why);
				continue;
			}
			if (!grow((void **)&arr, n, &cap, sizeof(*arr))) {
				rc = ZSYSTEMERROR;
				break;
			}
			arr[n++] = m;
		}
		deallocate_String_vector(&ids);
		if (rc != ZOK)
			break;
	}
	deallocate_String_vector(&dcs);
	if (rc != ZOK) {
		free(arr);
		return rc;
	}
	cap_note(t, D_NODES, full, t->p_nodes, MEMBERS_MAX);
	replace(t, (void **)&t->th_members, &t->th_nmembers, arr, n,
		sizeof(*arr), member_cmp, member_eq_v);
	return ZOK;
}

static int read_leaders(struct topo *t)
{
	struct String_vector sv = { 0, NULL };
	struct topo_leader *arr = NULL;
	uint32_t n = 0, cap = 0;
	bool full = false;
	int rc;

	rc = zoo_wget_children(t->th_zh, t->p_leaders, watch_cb,
			       &t->w_leaders, &sv);
	if (rc != ZOK) {
		if (rc == ZNONODE)
			t->th_dirty |= D_PARENTS;
		return rc;
	}
	sort_children(&sv);
	for (int32_t i = 0; i < sv.count && !atomic_load(&t->stop); i++) {
		char path[TOPO_PATH_MAX];
		struct topo_leader l;
		struct Stat st;
		int len;

		if (n == LEADERS_MAX) {
			full = true;
			break;
		}
		if (!pathf(path, sizeof(path), "%s/%s", t->p_leaders,
			   sv.data[i]))
			continue;
		if (topo_check_name(sv.data[i], TOPO_NAME_MAX, "dc") != FR_OK) {
			bad_znode(t, path, 0, fr_errmsg());
			continue;
		}
		rc = get_data(t, path, &t->w_leaders, &len, &st);
		if (rc == ZNONODE || rc == ZBADARGUMENTS) {
			rc = ZOK;
			continue;
		}
		if (rc != ZOK)
			break;
		if (topo_leader_decode(t->th_buf, (size_t)len, &l) != FR_OK) {
			bad_znode(t, path, st.mzxid, fr_errmsg());
			continue;
		}
		if (strcmp(l.dc, sv.data[i]) != 0) {
			bad_znode(t, path, st.mzxid,
				  "its dc differs from its name");
			continue;
		}
		if (!grow((void **)&arr, n, &cap, sizeof(*arr))) {
			rc = ZSYSTEMERROR;
			break;
		}
		arr[n++] = l;
	}
	if (rc == ZOK)
		cap_note(t, D_LEADERS, full, t->p_leaders, LEADERS_MAX);
	deallocate_String_vector(&sv);
	if (rc != ZOK) {
		free(arr);
		return rc;
	}
	replace(t, (void **)&t->th_leaders, &t->th_nleaders, arr, n,
		sizeof(*arr), leader_cmp, leader_eq_v);
	return ZOK;
}

static int reconcile_extras(struct topo *t);

static int read_models(struct topo *t)
{
	struct String_vector sv = { 0, NULL };
	struct shard_model_def *arr = NULL;
	uint32_t n = 0, cap = 0;
	bool full = false;
	int rc;

	rc = zoo_wget_children(t->th_zh, t->p_models, watch_cb, &t->w_models,
			       &sv);
	if (rc != ZOK) {
		if (rc == ZNONODE)
			t->th_dirty |= D_PARENTS;
		return rc;
	}
	sort_children(&sv);
	for (int32_t i = 0; i < sv.count && !atomic_load(&t->stop); i++) {
		char path[TOPO_PATH_MAX];
		struct Stat st;
		int len;

		if (n == MODELS_MAX) {
			full = true;
			break;
		}
		if (!pathf(path, sizeof(path), "%s/%s", t->p_models,
			   sv.data[i]))
			continue;
		rc = get_data(t, path, &t->w_models, &len, &st);
		if (rc == ZNONODE || rc == ZBADARGUMENTS) {
			rc = ZOK;
			continue;
		}
		if (rc != ZOK)
			break;
		if (!grow((void **)&arr, n, &cap, sizeof(*arr))) {
			rc = ZSYSTEMERROR;
			break;
		}
		if (topo_model_decode(sv.data[i], t->th_buf, (size_t)len,
				      &arr[n]) != FR_OK) {
			bad_znode(t, path, st.mzxid, fr_errmsg());
			continue;
		}
		n++;
	}
	if (rc == ZOK)
		cap_note(t, D_MODELS, full, t->p_models, MODELS_MAX);
	deallocate_String_vector(&sv);
	if (rc != ZOK) {
		free(arr);
		return rc;
	}
	replace(t, (void **)&t->th_models, &t->th_nmodels, arr, n,
		sizeof(*arr), model_cmp, model_eq_v);
	return reconcile_extras(t);
}

/* ------------------------------------------------------------------------
 * Topology thread: each model's rollbacks/ and roles
 * ---------------------------------------------------------------------- */

static void mstate_fini(struct mstate *x)
{
	free(x->cache);
	free(x->rb);
	free(x->roles);
	memset(x, 0, sizeof(*x));
}

/* th_models was replaced: give th_mx the same models in the same order,
 * keeping what is known of models that stay; new ones are to be read. */
static int reconcile_extras(struct topo *t)
{
	struct mstate *mx = NULL, *old = t->th_mx;
	uint32_t k = 0;

	if (t->th_nmodels) {
		mx = calloc(t->th_nmodels, sizeof(*mx));
		if (!mx) {
			fr_log(FR_LOG_ERROR, MOD, "cannot allocate model state; retrying");
			t->th_dirty |= D_MODELS;
			return ZSYSTEMERROR;
		}
	}
	/* Both sorted by name (strcmp): one merge. */
	for (uint32_t i = 0; i < t->th_nmodels; i++) {
		const char *name = t->th_models[i].name;
		int c = 1;

		while (k < t->th_nmx && (c = strcmp(old[k].name, name)) < 0)
			mstate_fini(&old[k++]);
		if (k < t->th_nmx && c == 0) {
			mx[i] = old[k++];
			continue;
		}
		memcpy(mx[i].name, name, sizeof(mx[i].name));
		mx[i].dirty = X_ALL;
		t->th_dirty |= D_EXTRA;
	}
	while (k < t->th_nmx)
		mstate_fini(&old[k++]);
	free(old);
	t->th_mx = mx;
	t->th_nmx = t->th_nmodels;
	return ZOK;
}

static void extras_all_dirty(struct topo *t)
{
	for (uint32_t i = 0; i < t->th_nmx; i++)
		t->th_mx[i].dirty = X_ALL;
	t->th_dirty |= D_EXTRA;
}

/* A fired watch's path: mark that model's part to be read again.  A path
 * of a model no longer in the registry is dropped; one we cannot place at
 * all (never expected) makes every model be read again. */
static void extras_path_dirty(struct topo *t, const char *path)
{
	size_t plen = strlen(t->p_models);
	const char *rest, *slash;
	char name[SHARD_NAME_MAX + 1];
	unsigned bit;
	size_t nlen;

	if (strncmp(path, t->p_models, plen) != 0 || path[plen] != '/')
		goto unknown;
	rest = path + plen + 1;
	slash = strchr(rest, '/');
	if (!slash)
		goto unknown;
	if (strcmp(slash, "/rollbacks") == 0)
		bit = X_ROLLBACKS;
	else if (strcmp(slash, "/roles") == 0)
		bit = X_ROLES;
	else
		goto unknown;
	nlen = (size_t)(slash - rest);
	if (nlen == 0 || nlen > SHARD_NAME_MAX)
		return;
	memcpy(name, rest, nlen);
	name[nlen] = '\0';
	for (uint32_t i = 0; i < t->th_nmx; i++)
		if (strcmp(t->th_mx[i].name, name) == 0) {
			t->th_mx[i].dirty |= bit;
			t->th_dirty |= D_EXTRA;
			return;
		}
	return;
unknown:
	fr_log(FR_LOG_DEBUG, MOD, "watch on %s: re-reading every model", path);
	extras_all_dirty(t);
}

static int seq_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x > y ? -1 : x < y;
}

static struct rb_entry *cache_find(struct mstate *x, uint64_t seq)
{
	uint32_t lo = 0, hi = x->ncache;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (x->cache[mid].seq == seq)
			return &x->cache[mid];
		if (x->cache[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool rollback_eq(const struct topo_rollback *a,
			const struct topo_rollback *b)
{
	return a->seq == b->seq && a->epoch == b->epoch && a->t == b->t &&
	       a->r == b->r && a->at_ms == b->at_ms &&
	       strcmp(a->reason, b->reason) == 0 &&
	       strcmp(a->who, b->who) == 0;
}

/* Read one directive child not seen before into *e.  ZOK (e->bad set
 * when it is malformed, logged and counted), ZNONODE when it went away,
 * or the ZooKeeper code. */
static int read_directive(struct topo *t, const char *dir, const char *child,
			  struct rb_entry *e)
{
	char path[TOPO_PATH_MAX];
	struct Stat st;
	int len, rc;

	if (!pathf(path, sizeof(path), "%s/%s", dir, child))
		return ZNONODE;
	rc = get_data(t, path, NULL, &len, &st);
	if (rc == ZBADARGUMENTS) {   /* too big: logged and counted */
		e->bad = true;
		return ZOK;
	}
	if (rc != ZOK)
		return rc;
	if (topo_rollback_decode(e->seq, t->th_buf, (size_t)len, &e->d) !=
	    FR_OK) {
		bad_znode(t, path, st.mzxid, fr_errmsg());
		e->bad = true;
		return ZOK;
	}
	fr_log(FR_LOG_INFO, MOD,
	       "rollback directive %s: epoch %" PRIu64 ", t %" PRIu64 ", r %" PRIu64 ", by '%s': %s",
	       path, e->d.epoch, e->d.t, e->d.r, e->d.who, e->d.reason);
	return ZOK;
}

/* List models/<m>/rollbacks (watching it, or its creation while it is
 * absent) and read the children not seen before, newest first, until
 * TOPO_ROLLBACKS_MAX good ones are known. */
static int read_rollbacks(struct topo *t, struct mstate *x)
{
	struct String_vector sv = { 0, NULL };
	struct rb_entry *cache = NULL;
	struct topo_rollback *rb = NULL;
	uint64_t *seqs = NULL;
	uint32_t nseq = 0, ncache = 0, ngood = 0;
	char dir[TOPO_PATH_MAX];
	struct Stat st;
	bool same;
	int rc = ZK_RETRY;

	if (!pathf(dir, sizeof(dir), "%s/%s/rollbacks", t->p_models, x->name))
		return ZSYSTEMERROR;
	for (int tries = 0; tries < 3; tries++, rc = ZK_RETRY) {
		rc = zoo_wget_children2(t->th_zh, dir, watch_cb, &t->w_extra,
					&sv, &st);
		if (rc != ZNONODE)
			break;
		/* None filed yet: watch for the first. */
		rc = zoo_wexists(t->th_zh, dir, watch_cb, &t->w_extra, &st);
		if (rc == ZNONODE) {
			memset(&st, 0, sizeof(st));
			rc = ZOK;
			break;
		}
		if (rc != ZOK)
			break;
		/* Made meanwhile: list it. */
	}
	if (rc != ZOK)
		goto out;
	/* rollbacks/ deleted and made again restarts the sequence: what is
	 * cached under a number is no longer what that number names. */
	if (st.czxid != x->rb_czxid) {
		if (x->ncache)
			fr_log(FR_LOG_WARN, MOD,
			       "%s was deleted and made again: its directives are read afresh (their epochs restart)",
			       dir);
		free(x->cache);
		x->cache = NULL;
		x->ncache = 0;
		x->rb_czxid = st.czxid;
	}
	if (sv.count > 0) {
		seqs = malloc((size_t)sv.count * sizeof(*seqs));
		cache = malloc((size_t)sv.count * sizeof(*cache));
		if (!seqs || !cache) {
			rc = ZSYSTEMERROR;
			goto out;
		}
	}
	for (int32_t i = 0; i < sv.count; i++) {
		char path[TOPO_PATH_MAX];

		if (topo_rollback_parse_name(sv.data[i], &seqs[nseq]) ==
		    FR_OK) {
			nseq++;
			continue;
		}
		if (pathf(path, sizeof(path), "%s/%s", dir, sv.data[i]))
			bad_znode(t, path, 0,
				  "name is not r_<10-digit sequence>");
	}
	fr_errclear();
	if (nseq > 1)
		qsort(seqs, nseq, sizeof(*seqs), seq_desc);
	/* Newest first; what was read before is not read again. */
	for (uint32_t i = 0; i < nseq && ngood < TOPO_ROLLBACKS_MAX; i++) {
		struct rb_entry *e = &cache[ncache], *old;
		char child[16];

		if (i && seqs[i] == seqs[i - 1])
			continue;   /* never from ZooKeeper; cheap to skip */
		old = cache_find(x, seqs[i]);
		if (old) {
			*e = *old;
		} else {
			memset(e, 0, sizeof(*e));
			e->seq = seqs[i];
			snprintf(child, sizeof(child), "r_%010" PRIu64, seqs[i]);
			rc = read_directive(t, dir, child, e);
			if (rc == ZNONODE)
				continue;   /* deleted since the listing */
			if (rc != ZOK)
				goto out;
		}
		ncache++;
		if (!e->bad)
			ngood++;
	}
	rc = ZOK;
	/* The cache keeps what was looked at (descending now). */
	for (uint32_t i = 0; i < ncache / 2; i++) {
		struct rb_entry tmp = cache[i];

		cache[i] = cache[ncache - 1 - i];
		cache[ncache - 1 - i] = tmp;
	}
	if (ngood) {
		rb = malloc((size_t)ngood * sizeof(*rb));
		if (!rb) {
			rc = ZSYSTEMERROR;
			goto out;
		}
	}
	ngood = 0;
	for (uint32_t i = 0; i < ncache; i++)
		if (!cache[i].bad)
			rb[ngood++] = cache[i].d;
	same = x->rb_read && x->nrb == ngood;
	for (uint32_t i = 0; same && i < ngood; i++)
		same = rollback_eq(&x->rb[i], &rb[i]);
	if (!same || !x->rb_read)
		t->th_view_dirty = true;
	free(x->cache);
	x->cache = cache;
	x->ncache = ncache;
	cache = NULL;
	free(x->rb);
	x->rb = rb;
	x->nrb = ngood;
	rb = NULL;
	x->rb_read = true;
out:
	free(rb);
	free(cache);
	free(seqs);
	deallocate_String_vector(&sv);
	if (rc != ZOK && !conn_lost(rc))
		zk_fail("read", dir, rc);
	return rc;
}

/* Read models/<m>/roles (watching it, or its creation while absent).
 * Absent, empty or malformed: no overrides (malformed: logged, counted). */
static int read_roles(struct topo *t, struct mstate *x)
{
	struct topo_role_override *roles = NULL;
	char path[TOPO_PATH_MAX];
	uint32_t n = 0;
	struct Stat st;
	bool same;
	int len = 0, rc = ZK_RETRY;

	if (!pathf(path, sizeof(path), "%s/%s/roles", t->p_models, x->name))
		return ZSYSTEMERROR;
	for (int tries = 0; tries < 3; tries++, rc = ZK_RETRY) {
		rc = get_data(t, path, &t->w_extra, &len, &st);
		if (rc != ZNONODE)
			break;
		rc = zoo_wexists(t->th_zh, path, watch_cb, &t->w_extra, &st);
		if (rc == ZNONODE) {
			len = 0;
			rc = ZOK;
			break;
		}
		if (rc != ZOK)
			break;
	}
	if (rc == ZBADARGUMENTS) {   /* too big: logged and counted */
		len = 0;
		rc = ZOK;
	}
	if (rc != ZOK) {
		if (!conn_lost(rc))
			zk_fail("read", path, rc);
		return rc;
	}
	if (len > 0 &&
	    topo_roles_decode(t->th_buf, (size_t)len, t->th_roles_buf,
			      TOPO_ROLE_OVERRIDES_MAX, &n) != FR_OK) {
		bad_znode(t, path, st.mzxid, fr_errmsg());
		n = 0;
	}
	if (n) {
		roles = malloc((size_t)n * sizeof(*roles));
		if (!roles)
			return ZSYSTEMERROR;
		memcpy(roles, t->th_roles_buf, (size_t)n * sizeof(*roles));
	}
	same = x->roles_read && x->nroles == n &&
	       (n == 0 || memcmp(x->roles, roles, (size_t)n *
				 sizeof(*roles)) == 0);
	if (!same)
		t->th_view_dirty = true;
	free(x->roles);
	x->roles = roles;
	x->nroles = n;
	x->roles_read = true;
	return ZOK;
}

/* Every model whose rollbacks/ or roles is dirty.  One model's failure
 * does not hold up the others; a lost connection stops the pass. */
static int read_extras(struct topo *t)
{
	int ret = ZOK;

	for (uint32_t i = 0; i < t->th_nmx; i++) {
		struct mstate *x = &t->th_mx[i];
		int rc = ZOK;

		if (atomic_load(&t->stop))
			return ZK_RETRY;
		if (x->dirty & X_ROLLBACKS) {
			x->dirty &= ~X_ROLLBACKS;
			rc = read_rollbacks(t, x);
			if (rc != ZOK)
				x->dirty |= X_ROLLBACKS;
		}
		if (rc == ZOK && (x->dirty & X_ROLES)) {
			x->dirty &= ~X_ROLES;
			rc = read_roles(t, x);
			if (rc != ZOK)
				x->dirty |= X_ROLES;
		}
		if (conn_lost(rc))
			return rc;
		if (rc != ZOK)
			ret = rc;
	}
	return ret;
}

/* ------------------------------------------------------------------------
 * Topology thread: views
 * ---------------------------------------------------------------------- */

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Is model i of th_models in the view: its rollbacks/ and roles read? */
static const struct mstate *ready(const struct topo *t, uint32_t i)
{
	const struct mstate *x;

	if (i >= t->th_nmx)
		return NULL;
	x = &t->th_mx[i];
	if (!x->rb_read || !x->roles_read ||
	    strcmp(x->name, t->th_models[i].name) != 0)
		return NULL;
	return x;
}

static struct topo_msg *build_view(struct topo *t)
{
	uint32_t nready = 0, nrb = 0, nroles = 0, k = 0;
	size_t off_m, off_l, off_d, off_x, off_r, off_o, total;
	struct topo_model_extra *extra;
	struct topo_rollback *rb;
	struct topo_role_override *ro;
	struct shard_model_def *models;
	struct topo_msg *m;
	char *base;

	for (uint32_t i = 0; i < t->th_nmodels; i++) {
		const struct mstate *x = ready(t, i);

		if (!x)
			continue;
		nready++;
		nrb += x->nrb;
		nroles += x->nroles;
	}
	off_m = align8(sizeof(struct topo_msg));
	off_l = off_m + align8((size_t)t->th_nmembers *
			       sizeof(struct topo_member));
	off_d = off_l + align8((size_t)t->th_nleaders *
			       sizeof(struct topo_leader));
	off_x = off_d + align8((size_t)nready * sizeof(struct shard_model_def));
	off_r = off_x + align8((size_t)nready *
			       sizeof(struct topo_model_extra));
	off_o = off_r + align8((size_t)nrb * sizeof(struct topo_rollback));
	total = off_o + (size_t)nroles * sizeof(struct topo_role_override);
	m = malloc(total);
	if (!m)
		return NULL;
	base = (char *)m;
	memset(m, 0, sizeof(*m));
	m->v.connected = t->th_connected;
	m->v.expired_once = t->th_expired_once;
	m->v.leader = t->th_elected && t->th_leader_owned;
	m->v.epoch = m->v.leader ? t->th_epoch : 0;
	m->v.session_timeout_ms = t->th_timeout_ms;
	m->v.nmembers = t->th_nmembers;
	m->v.members = (struct topo_member *)(base + off_m);
	m->v.nleaders = t->th_nleaders;
	m->v.leaders = (struct topo_leader *)(base + off_l);
	m->v.nmodels = nready;
	models = (struct shard_model_def *)(base + off_d);
	extra = (struct topo_model_extra *)(base + off_x);
	rb = (struct topo_rollback *)(base + off_r);
	ro = (struct topo_role_override *)(base + off_o);
	m->v.models = models;
	m->v.extra = extra;
	m->v.bad_znodes = atomic_load(&t->bad_znodes);
	if (t->th_nmembers)
		memcpy(base + off_m, t->th_members,
		       (size_t)t->th_nmembers * sizeof(struct topo_member));
	if (t->th_nleaders)
		memcpy(base + off_l, t->th_leaders,
		       (size_t)t->th_nleaders * sizeof(struct topo_leader));
	for (uint32_t i = 0; i < t->th_nmodels; i++) {
		const struct mstate *x = ready(t, i);

		if (!x)
			continue;
		models[k] = t->th_models[i];
		extra[k].nrollbacks = x->nrb;
		extra[k].rollbacks = rb;
		extra[k].nroles = x->nroles;
		extra[k].roles = ro;
		if (x->nrb)
			memcpy(rb, x->rb, (size_t)x->nrb * sizeof(*rb));
		if (x->nroles)
			memcpy(ro, x->roles, (size_t)x->nroles * sizeof(*ro));
		rb += x->nrb;
		ro += x->nroles;
		k++;
	}
	return m;
}

/* Post the newest view; when the mailbox is full keep it (replacing an
 * older unsent one) and try again shortly: the loop needs only the
 * newest. */
static void publish(struct topo *t)
{
	if (t->th_view_dirty) {
		struct topo_msg *m = build_view(t);

		if (!m) {
			fr_log(FR_LOG_ERROR, MOD, "cannot allocate a view; retrying");
			return;
		}
		free(t->th_pending);
		t->th_pending = m;
		t->th_view_dirty = false;
	}
	if (t->th_pending && fr_mailbox_post(t->mb, t->th_pending) == FR_OK)
		t->th_pending = NULL;
}

/* ------------------------------------------------------------------------
 * Topology thread: session
 * ---------------------------------------------------------------------- */

static void open_session(struct topo *t)
{
	/* The chroot is made first when missing (best effort: if it fails,
	 * ensure_node says so on the first create). */
	if (topo_chroot_ensure(t->cfg.hosts, 2000))
		fr_log(FR_LOG_DEBUG, MOD, "chroot of '%s' not checked: %s",
		       t->cfg.hosts, fr_errmsg());
	/* Never resume an old session (rule 6): clientid NULL. */
	t->th_zh = zookeeper_init2(t->cfg.hosts, watch_cb,
				   (int)t->cfg.session_timeout_ms, NULL,
				   &t->w_session, 0, zk_log_cb);
	if (!t->th_zh) {
		if (errno != t->th_init_errno)
			fr_log(FR_LOG_ERROR, MOD,
			       "zookeeper_init '%s': %s; retrying",
			       t->cfg.hosts, strerror(errno));
		t->th_init_errno = errno;
		return;
	}
	t->th_init_errno = 0;
	t->th_session = 0;
}

static void session_expired(struct topo *t)
{
	fr_log(FR_LOG_WARN, MOD,
	       "ZooKeeper session 0x%" PRIx64 " expired; starting a new one",
	       (uint64_t)t->th_session);
	zookeeper_close(t->th_zh);
	t->th_zh = NULL;
	atomic_fetch_add(&t->expirations, 1);
	if (t->th_connected)
		atomic_fetch_add(&t->disconnects, 1);
	/* Completions of the closed handle (ZCLOSING) are done. */
	atomic_store(&t->probe_busy, false);
	t->th_connected = false;
	t->th_expired_once = true;
	/* Every ephemeral of ours is gone with the session. */
	t->th_election[0] = '\0';
	t->th_member_ok = false;
	t->th_elected = false;
	t->th_leader_owned = false;
	t->th_view_dirty = true;
	t->th_dirty = D_ALL;
}

/* How often a leader proves contact, for a session timeout of to ms. */
static uint64_t probe_every(uint64_t to)
{
	uint64_t ms = to / PROBE_DIV;

	return ms < PROBE_MIN_MS ? PROBE_MIN_MS :
	       ms > RETRY_MS ? RETRY_MS : ms;
}

static uint64_t probe_every_ms(const struct topo *t)
{
	return probe_every(t->th_timeout_ms ? t->th_timeout_ms :
			   t->cfg.session_timeout_ms);
}

/* While we lead, keep proof of contact fresh for the loop's watchdog
 * (rule 2): one small asynchronous read at a time, never waited for.
 * ZooKeeper answers in order, so a probe queued behind slow calls is
 * answered after them. */
static void probe(struct topo *t)
{
	uint64_t now = fr_mono_ms();

	if (!t->th_elected || !t->th_leader_owned || !t->th_connected ||
	    now < t->th_probe_next || atomic_load(&t->probe_busy))
		return;
	t->th_probe_next = now + probe_every_ms(t);
	atomic_store(&t->probe_sent_ms, now);
	atomic_store(&t->probe_busy, true);
	if (zoo_aexists(t->th_zh, t->p_leader_me, 0, probe_cb, t) != ZOK)
		atomic_store(&t->probe_busy, false);
}

/* One pass of the work that is dirty.  Stops at a lost connection (its
 * bit stays set); other failures are retried after RETRY_MS. */
static void do_work(struct topo *t)
{
	static const struct {
		unsigned bit;
		int (*fn)(struct topo *);
	} steps[] = {
		{ D_PARENTS, do_parents },   { D_MEMBER, do_member },
		{ D_ELECTION, do_election }, { D_LEADER, do_leader },
		{ D_NODES, read_nodes },     { D_LEADERS, read_leaders },
		{ D_MODELS, read_models },   { D_EXTRA, read_extras },
	};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int rc;

		if (atomic_load(&t->stop))
			return;
		if (!(t->th_dirty & steps[i].bit))
			continue;
		if (steps[i].bit != D_PARENTS && (t->th_dirty & D_PARENTS))
			return;   /* parents first */
		probe(t);
		t->th_dirty &= ~steps[i].bit;
		rc = steps[i].fn(t);
		if (rc == ZOK)
			continue;
		t->th_dirty |= steps[i].bit;
		if (conn_lost(rc))
			return;
	}
}

static void step(struct topo *t)
{
	int state;

	if (!t->th_zh) {
		open_session(t);
		if (!t->th_zh)
			return;
	}
	state = zoo_state(t->th_zh);
	if (state == ZOO_EXPIRED_SESSION_STATE ||
	    state == ZOO_AUTH_FAILED_STATE) {
		session_expired(t);
		publish(t);
		open_session(t);
		return;
	}
	if (state != ZOO_CONNECTED_STATE) {
		if (t->th_connected) {
			fr_log(FR_LOG_WARN, MOD,
			       "lost the ZooKeeper connection (session 0x%" PRIx64 "); keeping the last view",
			       (uint64_t)t->th_session);
			t->th_connected = false;
			t->th_view_dirty = true;
			atomic_fetch_add(&t->disconnects, 1);
		}
		publish(t);
		return;
	}
	if (!t->th_connected) {
		const clientid_t *cid = zoo_client_id(t->th_zh);
		int64_t sid = cid ? cid->client_id : 0;

		t->th_connected = true;
		t->th_timeout_ms = (uint32_t)zoo_recv_timeout(t->th_zh);
		fr_log(FR_LOG_INFO, MOD,
		       "ZooKeeper session 0x%" PRIx64 " %s (timeout %" PRIu32 " ms)",
		       (uint64_t)sid, sid == t->th_session ? "reconnected" :
		       "established", t->th_timeout_ms);
		t->th_session = sid;
		atomic_fetch_add(&t->connects, 1);
		/* Re-check ownership, re-run the election, re-arm and
		 * re-read everything (rules 1, 4). */
		t->th_dirty = D_ALL;
		extras_all_dirty(t);
		t->th_view_dirty = true;
	}
	probe(t);
	do_work(t);
	/* A connected view only after the pass: a reconnected leader has
	 * re-checked its rank before it claims leadership again. */
	if (zoo_state(t->th_zh) != ZOO_CONNECTED_STATE && t->th_connected) {
		t->th_connected = false;
		t->th_view_dirty = true;
		atomic_fetch_add(&t->disconnects, 1);
	}
	publish(t);
}

/* Leave: delete our znodes (pipelined, bounded wait), close the session.
 * Closing the session would remove them too; deleting first lets peers
 * see it even when the close request is lost. */
static void leave(struct topo *t)
{
	const char *paths[3];
	char epath[TOPO_PATH_MAX];
	struct timespec ts;
	struct Stat st;
	int n = 0;

	if (!t->th_zh)
		return;
	if (zoo_state(t->th_zh) == ZOO_CONNECTED_STATE) {
		if (t->th_leader_owned)
			paths[n++] = t->p_leader_me;
		if (t->th_election[0]) {
			pathf(epath, sizeof(epath), "%s/%s",
			      t->p_election_dc, t->th_election);
			paths[n++] = epath;
		}
		/* The member znode may be another process's (id clash):
		 * only ours goes. */
		if (zoo_exists(t->th_zh, t->p_me, 0, &st) == ZOK &&
		    st.ephemeralOwner == t->th_session)
			paths[n++] = t->p_me;
	}
	for (int i = 0; i < n; i++) {
		/* Count first: the completion may run before adelete
		 * returns.  t->lock is not held across the call. */
		pthread_mutex_lock(&t->lock);
		t->leave_left++;
		pthread_mutex_unlock(&t->lock);
		if (zoo_adelete(t->th_zh, paths[i], -1, leave_done_cb, t) !=
		    ZOK) {
			pthread_mutex_lock(&t->lock);
			t->leave_left--;
			pthread_mutex_unlock(&t->lock);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)LEAVE_WAIT_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&t->lock);
	while (t->leave_left > 0)
		if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&t->lock);
	/* Any delete still pending completes (ZCLOSING) inside this call. */
	zookeeper_close(t->th_zh);
	t->th_zh = NULL;
}

static void *topo_thread(void *arg)
{
	struct topo *t = arg;

	for (;;) {
		unsigned work;
		uint32_t npaths;
		bool lost;
		struct timespec ts;
		long wait_ms = t->th_pending ? POST_RETRY_MS : RETRY_MS;

		/* A leader wakes for its next probe (or, while one is
		 * unanswered, to look again a probe interval later). */
		if (t->th_elected && t->th_leader_owned && t->th_connected) {
			uint64_t now = fr_mono_ms();
			uint64_t in = atomic_load(&t->probe_busy) ?
				      probe_every_ms(t) :
				      t->th_probe_next > now ?
				      t->th_probe_next - now : 0;

			if ((long)in < wait_ms)
				wait_ms = (long)in;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += wait_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&t->lock);
		while (!t->kick && !atomic_load(&t->stop))
			if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) != 0)
				break;
		work = t->kick;
		t->kick = 0;
		npaths = t->nkick_paths;
		lost = t->kick_paths_lost;
		if (npaths)
			memcpy(t->th_kpaths, t->kick_paths,
			       (size_t)npaths * sizeof(t->kick_paths[0]));
		t->nkick_paths = 0;
		t->kick_paths_lost = false;
		if (t->st_new) {
			/* The newest status only: earlier calls coalesce. */
			memcpy(t->th_self.models, t->st_models,
			       sizeof(t->th_self.models));
			t->th_self.nmodels = t->st_n;
			t->st_new = false;
		}
		pthread_mutex_unlock(&t->lock);
		if (atomic_load(&t->stop))
			break;
		if (lost)
			extras_all_dirty(t);
		for (uint32_t i = 0; i < npaths && !lost; i++)
			extras_path_dirty(t, t->th_kpaths[i]);
		t->th_dirty |= work & ~D_SESSION;
		step(t);
	}
	leave(t);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Loop thread
 * ---------------------------------------------------------------------- */

static void deliver(struct topo *t)
{
	struct topo_view v;

	if (!t->lp_last)
		return;
	v = t->lp_last->v;
	v.leader = v.leader && !t->lp_demoted;
	if (!v.leader)
		v.epoch = 0;
	if (t->lp_leader && !v.leader)
		t->lp_demotions++;
	t->lp_leader = v.leader;
	t->lp_views++;
	if (t->fn)
		t->fn(&v, t->arg);
}

static void timer_in(struct topo *t, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
			      (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(t->lp_timer, &tv);
}

/* May the last view's leadership stand?  Only while the newest contact
 * is younger than 2/3 of the negotiated session timeout (rule 2): by
 * then ZooKeeper may be about to expire the session and let another
 * node win, and the client may not even have noticed the silence yet.
 * It comes back with fresh contact on a connected view: the session was
 * alive after the loss, so nobody else can have won.  Re-arms the
 * watchdog while the view says leader.  True when lp_demoted changed. */
static bool lead_check(struct topo *t)
{
	const struct topo_view *v = &t->lp_last->v;
	bool was = t->lp_demoted;
	uint64_t to, limit, age, now, c;

	if (!v->leader) {
		evtimer_del(t->lp_timer);
		t->lp_demoted = false;
		return was;
	}
	to = v->session_timeout_ms ? v->session_timeout_ms :
	     t->cfg.session_timeout_ms;
	limit = to * 2 / 3;
	now = fr_mono_ms();
	c = atomic_load(&t->contact_ms);
	age = now >= c ? now - c : 0;
	evtimer_del(t->lp_timer);
	if (age >= limit) {
		if (!t->lp_demoted)
			fr_log(FR_LOG_WARN, MOD,
			       "no answer from ZooKeeper for %" PRIu64 " ms (2/3 of the session timeout is %" PRIu64 " ms): stepping down as leader of dc %s",
			       age, limit, t->cfg.self.dc);
		t->lp_demoted = true;
		timer_in(t, probe_every(to));
		return !was;
	}
	if (t->lp_demoted && v->connected) {
		fr_log(FR_LOG_INFO, MOD,
		       "ZooKeeper answers again: leading dc %s", t->cfg.self.dc);
		t->lp_demoted = false;
	}
	timer_in(t, t->lp_demoted ? probe_every(to) : limit - age);
	return t->lp_demoted != was;
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct topo *t = arg;

	(void)fd;
	(void)what;
	if (t->lp_last && lead_check(t))
		deliver(t);
}

static void mailbox_cb(void *msg, void *arg)
{
	struct topo *t = arg;

	free(t->lp_last);
	t->lp_last = msg;
	lead_check(t);
	deliver(t);
}

static enum fr_err check_config(const struct topo_config *c)
{
	size_t n;
	enum fr_err err;

	if (!c)
		return fr_fail(FR_ERR_INVAL, "topology: config is NULL");
	n = strnlen(c->hosts, sizeof(c->hosts));
	if (n == 0 || n >= sizeof(c->hosts))
		return fr_fail(FR_ERR_INVAL,
			       "topology: field 'hosts': expected 1..%d bytes HOST:PORT[,HOST:PORT...][/chroot]",
			       TOPO_HOSTS_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c->hosts[i] <= 0x20 ||
		    (unsigned char)c->hosts[i] >= 0x7f)
			return fr_fail(FR_ERR_INVAL,
				       "topology: field 'hosts': byte 0x%02x at %zu, expected HOST:PORT[,HOST:PORT...][/chroot]",
				       (unsigned char)c->hosts[i], i);
	err = topo_check_name(c->cluster, TOPO_NAME_MAX,
			      "topology: field 'cluster'");
	if (err)
		return err;
	err = topo_member_check(&c->self);
	if (err)
		return err;
	if (c->session_timeout_ms < 1000 || c->session_timeout_ms > 120000)
		return fr_fail(FR_ERR_INVAL,
			       "topology: field 'session_timeout_ms': %" PRIu32 " is out of range, expected 1000..120000",
			       c->session_timeout_ms);
	return FR_OK;
}

static void free_msg(void *msg)
{
	free(msg);
}

static void build_paths(struct topo *t)
{
	const struct topo_member *s = &t->cfg.self;

	/* Names are <= 63 bytes: every path fits in TOPO_PATH_MAX. */
	pathf(t->root, sizeof(t->root), "/freshet/%s", t->cfg.cluster);
	pathf(t->p_nodes, sizeof(t->p_nodes), "%s/nodes", t->root);
	pathf(t->p_nodes_dc, sizeof(t->p_nodes_dc), "%s/%s", t->p_nodes,
	      s->dc);
	pathf(t->p_me, sizeof(t->p_me), "%s/%" PRIu32, t->p_nodes_dc,
	      s->node_id);
	pathf(t->p_election, sizeof(t->p_election), "%s/election", t->root);
	pathf(t->p_election_dc, sizeof(t->p_election_dc), "%s/%s",
	      t->p_election, s->dc);
	pathf(t->p_leaders, sizeof(t->p_leaders), "%s/leaders", t->root);
	pathf(t->p_leader_me, sizeof(t->p_leader_me), "%s/%s", t->p_leaders,
	      s->dc);
	pathf(t->p_models, sizeof(t->p_models), "%s/models", t->root);
	pathf(t->prefix, sizeof(t->prefix), "n_%" PRIu32 "_%" PRIu64 "_",
	      s->node_id, s->generation);
}

struct topo *topo_new(struct event_base *base, const struct topo_config *cfg,
		      topo_view_fn fn, void *arg, enum fr_err *err)
{
	pthread_condattr_t ca;
	struct topo *t;
	enum fr_err e;

	if (!base) {
		e = fr_fail(FR_ERR_INVAL, "topology: event base is NULL");
		goto out;
	}
	e = check_config(cfg);
	if (e)
		goto out;
	t = calloc(1, sizeof(*t));
	if (!t) {
		e = fr_fail(FR_ERR_NOMEM, "topology: cannot allocate");
		goto out;
	}
	t->th_buf = malloc(DATA_MAX + 1);
	t->th_roles_buf = malloc(TOPO_ROLE_OVERRIDES_MAX *
				 sizeof(*t->th_roles_buf));
	if (!t->th_buf || !t->th_roles_buf) {
		e = fr_fail(FR_ERR_NOMEM, "topology: cannot allocate");
		goto out_free_buf;
	}
	t->base = base;
	t->cfg = *cfg;
	t->fn = fn;
	t->arg = arg;
	build_paths(t);
	t->w_session = (struct topo_watch){ t, D_SESSION, false };
	t->w_member = (struct topo_watch){ t, D_MEMBER, false };
	t->w_nodes = (struct topo_watch){ t, D_NODES, false };
	t->w_leaders = (struct topo_watch){ t, D_LEADERS | D_LEADER, false };
	t->w_models = (struct topo_watch){ t, D_MODELS, false };
	t->w_election = (struct topo_watch){ t, D_ELECTION, false };
	t->w_extra = (struct topo_watch){ t, D_EXTRA, true };
	t->th_self = cfg->self;
	t->th_dirty = D_ALL;
	t->kick = D_SESSION;   /* the thread's first step is at once */
	atomic_init(&t->stop, false);
	t->mb = fr_mailbox_new(base, MAILBOX_CAP, mailbox_cb, t, &e);
	if (!t->mb)
		goto out_free_buf;
	t->lp_timer = evtimer_new(base, watchdog_cb, t);
	if (!t->lp_timer) {
		e = fr_fail(FR_ERR_NOMEM, "topology: cannot allocate a timer");
		goto out_free_mb;
	}
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		e = fr_fail(FR_ERR_NOMEM, "topology: pthread_mutex_init failed");
		goto out_free_timer;
	}
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&t->cond, &ca) != 0) {
		e = fr_fail(FR_ERR_NOMEM, "topology: pthread_cond_init failed");
		goto out_destroy_lock;
	}
	pthread_condattr_destroy(&ca);
	pthread_once(&zk_log_once, zk_log_init);
	if (pthread_create(&t->thread, NULL, topo_thread, t) != 0) {
		e = fr_fail(FR_ERR_NOMEM, "topology: cannot start the thread");
		goto out_destroy_cond;
	}
	if (err)
		*err = FR_OK;
	return t;

out_destroy_cond:
	pthread_cond_destroy(&t->cond);
out_destroy_lock:
	pthread_mutex_destroy(&t->lock);
out_free_timer:
	event_free(t->lp_timer);
out_free_mb:
	fr_mailbox_free(t->mb, free_msg);
out_free_buf:
	free(t->th_roles_buf);
	free(t->th_buf);
	free(t);
out:
	if (err)
		*err = e;
	return NULL;
}

void topo_free(struct topo *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	atomic_store(&t->stop, true);
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	fr_mailbox_free(t->mb, free_msg);
	event_free(t->lp_timer);
	free(t->lp_last);
	free(t->th_pending);
	free(t->th_members);
	free(t->th_leaders);
	free(t->th_models);
	for (uint32_t i = 0; i < t->th_nmx; i++)
		mstate_fini(&t->th_mx[i]);
	free(t->th_mx);
	free(t->th_member_json);
	free(t->th_roles_buf);
	free(t->th_buf);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void topo_get_stats(const struct topo *t, struct topo_stats *out)
{
	struct topo *m = (struct topo *)t;   /* atomics are read, not changed */

	memset(out, 0, sizeof(*out));
	if (!t)
		return;
	out->connects = atomic_load(&m->connects);
	out->disconnects = atomic_load(&m->disconnects);
	out->expirations = atomic_load(&m->expirations);
	out->elections_won = atomic_load(&m->elections_won);
	out->bad_znodes = atomic_load(&m->bad_znodes);
	out->demotions = t->lp_demotions;
	out->views = t->lp_views;
}

enum fr_err topo_set_status(struct topo *t, const struct topo_model_status *s,
			    uint32_t n)
{
	struct topo_member *m;
	enum fr_err err;

	if (!t || (n && !s))
		return fr_fail(FR_ERR_INVAL, "topology: status: NULL");
	if (n > TOPO_MEMBER_MODELS_MAX)
		return fr_fail(FR_ERR_RANGE,
			       "topology: status: %" PRIu32 " models, at most %d fit in a member znode",
			       n, TOPO_MEMBER_MODELS_MAX);
	/* Checked here, by the encoder's rules, so the thread never holds
	 * a status it cannot write. */
	m = malloc(sizeof(*m));
	if (!m)
		return fr_fail(FR_ERR_NOMEM, "topology: status: no memory");
	*m = t->cfg.self;
	m->nmodels = n;
	if (n)
		memcpy(m->models, s, (size_t)n * sizeof(*s));
	err = topo_member_check(m);
	free(m);
	if (err)
		return err;
	pthread_mutex_lock(&t->lock);
	memset(t->st_models, 0, sizeof(t->st_models));
	if (n)
		memcpy(t->st_models, s, (size_t)n * sizeof(*s));
	t->st_n = n;
	t->st_new = true;
	t->kick |= D_MEMBER;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return FR_OK;
}
