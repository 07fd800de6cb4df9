/*
 * session.c — the topology thread of a node's ZooKeeper side
 * (docs/design.md §4, docs/design.md rules 1-7): its one session and the
 * state machine that keeps it, the pass that redoes whatever work is
 * dirty, the views it builds and posts to the loop thread, the leave on
 * topo_free; and the ZooKeeper callbacks that feed it.
 *
 * Not here: what the work is (our znodes: member.c; what we read:
 * reads.c), the loop thread's side (loop.c), the admin client (admin.c),
 * JSON (codec.c).
 *
 * Threads (docs/threads.md):
 *
 *   ZooKeeper's completion thread   runs topo_watch_cb only: it ORs "what
 *                                   to redo" bits into t->kick (and, for
 *                                   a model's rollbacks/ or roles,
 *                                   queues the path) under t->lock,
 *                                   signals t->cond and returns.
 *   topology thread                 owns the zhandle_t and everything
 *   (topo_thread_main)              named th_*: makes the synchronous
 *                                   zoo_* calls, builds views, posts them.
 *   loop thread                     topo_new/topo_free/topo_get_stats,
 *                                   topo_set_status (copies the status
 *                                   under t->lock and kicks
 *                                   TOPO_D_MEMBER), the mailbox callback
 *                                   and the demotion timer; owns
 *                                   everything named lp_* (loop.c).
 *
 * The session state machine (step()):
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
 * Work is a set of dirty bits (TOPO_D_*): a watch firing sets the bits of
 * what it guards; every (re)connect sets them all, which re-checks that
 * our ephemerals are still ours and re-arms every watch (rules 1, 4).  A
 * call failing with CONNECTIONLOSS leaves its bit set; the pass stops and
 * is retried when the session is back.
 *
 * A connected view is only posted after the pass that re-checked the
 * election, so a reconnected leader has re-checked its rank before it
 * claims leadership again.  While we lead, the thread sends a small probe
 * every timeout/PROBE_DIV (never waiting for it) to keep t->contact_ms
 * fresh for the loop's watchdog (rule 2, loop.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The synchronous zoo_* calls are declared only for the threaded client. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "topology/topo_int.h"

#define MOD "topology"

#define POST_RETRY_MS 20          /* mailbox full: try again soon */
#define LEAVE_WAIT_MS 700         /* topo_free: wait for our deletes */
#define PROBE_DIV 10              /* leaders probe every timeout/10 ... */
#define PROBE_MIN_MS 50           /* ... but at most every 50 ms */

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
	if (n < TOPO_PATH_MAX && t->nkick_paths < TOPO_KICK_PATHS_MAX)
		memcpy(t->kick_paths[t->nkick_paths++], path, n + 1);
	else
		t->kick_paths_lost = true;
	t->kick |= TOPO_D_EXTRA | TOPO_D_SESSION;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void topo_watch_cb(zhandle_t *zh, int type, int state, const char *path,
		   void *ctx)
{
	struct topo_watch *w = ctx;

	(void)zh;
	(void)state;
	/* A session event reaching a path watcher is not a change (rule 4):
	 * only the state is worth a look. */
	if (type == ZOO_SESSION_EVENT || type == ZOO_NOTWATCHING_EVENT)
		kick(w->t, TOPO_D_SESSION);
	else if (w->by_path)
		kick_path(w->t, path);
	else
		kick(w->t, w->bits | TOPO_D_SESSION);
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

void topo_contact(struct topo *t, uint64_t sent)
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
	if (!topo_conn_lost(rc))
		topo_contact(t, atomic_load(&t->probe_sent_ms));
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

static void zk_log_level(void)
{
	/* Process-wide in the C client; our callback filters again. */
	zoo_set_debug_level(fr_log_threshold <= FR_LOG_DEBUG ?
			    ZOO_LOG_LEVEL_INFO : ZOO_LOG_LEVEL_WARN);
}

void topo_zk_log_init(void)
{
	pthread_once(&zk_log_once, zk_log_level);
}

/* ------------------------------------------------------------------------
 * Topology thread: helpers every step uses
 * ---------------------------------------------------------------------- */

bool topo_conn_lost(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT ||
	       rc == ZSESSIONEXPIRED || rc == ZSESSIONMOVED ||
	       rc == ZCLOSING || rc == ZINVALIDSTATE;
}

bool topo_pathf(char *dst, size_t cap, const char *fmt, ...)
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

void topo_zk_fail(const char *what, const char *path, int rc)
{
	fr_log(topo_conn_lost(rc) ? FR_LOG_INFO : FR_LOG_WARN, MOD,
	       "%s %s: %s", what, path, zerror(rc));
}

/* ------------------------------------------------------------------------
 * Topology thread: views
 * ---------------------------------------------------------------------- */

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Is model i of th_models in the view: its rollbacks/ and roles read? */
static const struct topo_mstate *ready(const struct topo *t, uint32_t i)
{
	const struct topo_mstate *x;

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
		const struct topo_mstate *x = ready(t, i);

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
		const struct topo_mstate *x = ready(t, i);

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
 * Topology thread: the session
 * ---------------------------------------------------------------------- */

static void open_session(struct topo *t)
{
	/* The chroot is made first when missing (best effort: if it fails,
	 * the first create says so). */
	if (topo_chroot_ensure(t->cfg.hosts, 2000))
		fr_log(FR_LOG_DEBUG, MOD, "chroot of '%s' not checked: %s",
		       t->cfg.hosts, fr_errmsg());
	/* Never resume an old session (rule 6): clientid NULL. */
	t->th_zh = zookeeper_init2(t->cfg.hosts, topo_watch_cb,
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
	t->th_dirty = TOPO_D_ALL;
}

uint64_t topo_probe_every(uint64_t timeout_ms)
{
	uint64_t ms = timeout_ms / PROBE_DIV;

	return ms < PROBE_MIN_MS ? PROBE_MIN_MS :
	       ms > TOPO_RETRY_MS ? TOPO_RETRY_MS : ms;
}

static uint64_t probe_every_ms(const struct topo *t)
{
	return topo_probe_every(t->th_timeout_ms ? t->th_timeout_ms :
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
 * bit stays set); other failures are retried after TOPO_RETRY_MS. */
static void do_work(struct topo *t)
{
	static const struct {
		unsigned bit;
		int (*fn)(struct topo *);
	} steps[] = {
		{ TOPO_D_PARENTS, topo_do_parents },
		{ TOPO_D_MEMBER, topo_do_member },
		{ TOPO_D_ELECTION, topo_do_election },
		{ TOPO_D_LEADER, topo_do_leader },
		{ TOPO_D_NODES, topo_read_nodes },
		{ TOPO_D_LEADERS, topo_read_leaders },
		{ TOPO_D_MODELS, topo_read_models },
		{ TOPO_D_EXTRA, topo_read_extras },
	};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int rc;

		if (atomic_load(&t->stop))
			return;
		if (!(t->th_dirty & steps[i].bit))
			continue;
		if (steps[i].bit != TOPO_D_PARENTS &&
		    (t->th_dirty & TOPO_D_PARENTS))
			return;   /* parents first */
		probe(t);
		t->th_dirty &= ~steps[i].bit;
		rc = steps[i].fn(t);
		if (rc == ZOK)
			continue;
		t->th_dirty |= steps[i].bit;
		if (topo_conn_lost(rc))
			return;
	}
}

/* Note a connection lost since the last look (once). */
static void disconnected(struct topo *t)
{
	if (!t->th_connected)
		return;
	t->th_connected = false;
	t->th_view_dirty = true;
	atomic_fetch_add(&t->disconnects, 1);
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
		if (t->th_connected)
			fr_log(FR_LOG_WARN, MOD,
			       "lost the ZooKeeper connection (session 0x%" PRIx64 "); keeping the last view",
			       (uint64_t)t->th_session);
		disconnected(t);
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
		t->th_dirty = TOPO_D_ALL;
		topo_extras_all_dirty(t);
		t->th_view_dirty = true;
	}
	probe(t);
	do_work(t);
	/* A connected view only after the pass: a reconnected leader has
	 * re-checked its rank before it claims leadership again. */
	if (zoo_state(t->th_zh) != ZOO_CONNECTED_STATE)
		disconnected(t);
	publish(t);
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ms * 1000000L;
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
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
			topo_pathf(epath, sizeof(epath), "%s/%s",
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
	deadline_in(&ts, LEAVE_WAIT_MS);
	pthread_mutex_lock(&t->lock);
	while (t->leave_left > 0)
		if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&t->lock);
	/* Any delete still pending completes (ZCLOSING) inside this call. */
	zookeeper_close(t->th_zh);
	t->th_zh = NULL;
}

/* How long the thread may sleep: a leader wakes for its next probe (or,
 * while one is unanswered, to look again a probe interval later). */
static long wait_ms(struct topo *t)
{
	long ms = t->th_pending ? POST_RETRY_MS : TOPO_RETRY_MS;

	if (t->th_elected && t->th_leader_owned && t->th_connected) {
		uint64_t now = fr_mono_ms();
		uint64_t in = atomic_load(&t->probe_busy) ?
			      probe_every_ms(t) :
			      t->th_probe_next > now ?
			      t->th_probe_next - now : 0;

		if ((long)in < ms)
			ms = (long)in;
	}
	return ms;
}

void *topo_thread_main(void *arg)
{
	struct topo *t = arg;

	for (;;) {
		unsigned work;
		uint32_t npaths;
		bool lost;
		struct timespec ts;

		deadline_in(&ts, wait_ms(t));
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
			topo_extras_all_dirty(t);
		for (uint32_t i = 0; i < npaths && !lost; i++)
			topo_extras_path_dirty(t, t->th_kpaths[i]);
		t->th_dirty |= work & ~TOPO_D_SESSION;
		step(t);
	}
	leave(t);
	return NULL;
}
