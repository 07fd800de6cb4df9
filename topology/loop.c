/*
 * loop.c — the loop thread's side of a node's topology (docs/design.md
 * §4): topo_new and topo_free, the mailbox callback that hands each view
 * to the caller, the leader's demotion watchdog, topo_set_status and
 * topo_get_stats.
 *
 * The loop thread may take leadership away (docs/design.md rule 2):
 * t->contact_ms is the send time of the newest request ZooKeeper
 * answered (the topology thread keeps it fresh with probes while we
 * lead, session.c), and a watchdog timer here delivers the last view with
 * leader=false once contact is 2/3 of the negotiated session timeout old.
 * It counts from the last contact, not from when the client noticed the
 * loss: after a silent cut the client itself needs 2/3 of the timeout to
 * notice, and ZooKeeper may expire the session at 3/3.  Leadership comes
 * back only with fresh contact and a connected view.  The timer runs on
 * the loop so it fires even while the topology thread is blocked in a
 * ZooKeeper call.
 *
 * Not here: anything that talks to ZooKeeper (session.c, member.c,
 * reads.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "topology/topo_int.h"

#define MOD "topology"

#define MAILBOX_CAP 8

/* ------------------------------------------------------------------------
 * Views and the demotion watchdog
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
		timer_in(t, topo_probe_every(to));
		return !was;
	}
	if (t->lp_demoted && v->connected) {
		fr_log(FR_LOG_INFO, MOD,
		       "ZooKeeper answers again: leading dc %s", t->cfg.self.dc);
		t->lp_demoted = false;
	}
	timer_in(t, t->lp_demoted ? topo_probe_every(to) : limit - age);
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
	enum fr_err err;

	if (!c)
		return fr_fail(FR_ERR_INVAL, "topology: config is NULL");
	err = topo_check_hosts("topology: field 'hosts'", c->hosts);
	if (!err)
		err = fr_name_check("topology: field 'cluster'", c->cluster,
				    TOPO_NAME_MAX);
	if (!err)
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
	topo_pathf(t->root, sizeof(t->root), "/freshet/%s", t->cfg.cluster);
	topo_pathf(t->p_nodes, sizeof(t->p_nodes), "%s/nodes", t->root);
	topo_pathf(t->p_nodes_dc, sizeof(t->p_nodes_dc), "%s/%s", t->p_nodes,
	      s->dc);
	topo_pathf(t->p_me, sizeof(t->p_me), "%s/%" PRIu32, t->p_nodes_dc,
	      s->node_id);
	topo_pathf(t->p_election, sizeof(t->p_election), "%s/election", t->root);
	topo_pathf(t->p_election_dc, sizeof(t->p_election_dc), "%s/%s",
	      t->p_election, s->dc);
	topo_pathf(t->p_leaders, sizeof(t->p_leaders), "%s/leaders", t->root);
	topo_pathf(t->p_leader_me, sizeof(t->p_leader_me), "%s/%s", t->p_leaders,
	      s->dc);
	topo_pathf(t->p_models, sizeof(t->p_models), "%s/models", t->root);
	topo_pathf(t->prefix, sizeof(t->prefix), "n_%" PRIu32 "_%" PRIu64 "_",
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
	t->th_buf = malloc(TOPO_DATA_MAX + 1);
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
	t->w_session = (struct topo_watch){ t, TOPO_D_SESSION, false };
	t->w_member = (struct topo_watch){ t, TOPO_D_MEMBER, false };
	t->w_nodes = (struct topo_watch){ t, TOPO_D_NODES, false };
	t->w_leaders = (struct topo_watch){ t, TOPO_D_LEADERS | TOPO_D_LEADER, false };
	t->w_models = (struct topo_watch){ t, TOPO_D_MODELS, false };
	t->w_election = (struct topo_watch){ t, TOPO_D_ELECTION, false };
	t->w_extra = (struct topo_watch){ t, TOPO_D_EXTRA, true };
	t->th_self = cfg->self;
	t->th_dirty = TOPO_D_ALL;
	t->kick = TOPO_D_SESSION;   /* the thread's first step is at once */
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
	topo_zk_log_init();
	if (pthread_create(&t->thread, NULL, topo_thread_main, t) != 0) {
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
		topo_mstate_fini(&t->th_mx[i]);
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
	t->kick |= TOPO_D_MEMBER;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return FR_OK;
}

