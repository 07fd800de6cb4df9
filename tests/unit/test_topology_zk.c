/*
 * test_topology_zk.c — topology/'s node side (session.c, member.c,
 * reads.c, loop.c) and its admin client against a real ZooKeeper (the one
 * tests/integration/zk.py starts; its address is in FRESHET_ZK, and
 * without it the program exits 77, CTest's skip).
 *
 * Several struct topo run in this one process, each with its own session,
 * all on one event_base driven by this thread.  The cases: membership and
 * one leader per DC; failover to the next candidate with a higher epoch
 * when the leader leaves; models appearing in every view, malformed
 * znodes skipped and counted; a restarted node (higher generation)
 * replacing its ghost's member and candidate znodes, and a stale one
 * (lower generation) refused and not deleting the newer one on leave;
 * our member and leader znodes written back when another client
 * overwrites them, a leader whose candidate is deleted handing over, a
 * persistent leaders/<dc> or candidate not blocking a DC; at most 256
 * models in a view; self-demotion on the loop's timer while the session is cut off
 * (through a small TCP proxy in this file), by a reset or silently, about
 * 2/3 of the session timeout after the last answer, and leadership
 * regained, same epoch, when the same session comes back; topo_new
 * refusing bad config.
 *
 * Rollback directives: one filed with topo_admin_rollback_file reaches
 * every node's next view (t, r, epoch, reason), epochs rising in filing
 * order, a malformed or misnamed directive left out and counted while
 * later ones still arrive, at most TOPO_ROLLBACKS_MAX per model, a model
 * whose rollbacks/ does not exist yet; the state compare-and-set (two
 * admin clients on the same version: exactly one files, the other gets
 * FR_ERR_BUSY, sequentially and from two threads at once), and a filing
 * whose reply or request is lost filed exactly once; topo_set_status
 * reaching the member znode (topo_admin_members and peers' views),
 * coalesced, and carried into the znode re-created after the session
 * expired (cut off through the proxy); role overrides set, read and
 * cleared, in the views' extra; a malformed roles znode counted and read
 * as no overrides.
 *
 * Not here: the JSON codec and the election rank (test_topology.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <event2/event.h>
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "topology/topology.h"
#include "testutil.h"
#include "unit_main.h"

#define SESSION_MS 4000

/* LeakSanitizer (ASan builds): the C client (libzookeeper-mt 3.8) leaks
 * the completion list zoo_amulti allocates when the multi fails with a
 * lost connection (the ZOOKEEPER-1636 family); "filing across a lost
 * connection" makes exactly that happen.  Only that frame is excused. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:zoo_amulti\n";
}

static const char *zk_hosts;
static char cluster[32];
static struct event_base *base;
static zhandle_t *raw;            /* the test's own session */

/* ----------------------------------------------------------------------
 * What each node last saw
 * -------------------------------------------------------------------- */

/* A model's extra as a view showed it: the newest few directives. */
struct seen_extra {
	uint32_t nrb;
	uint64_t first_seq;                 /* of the oldest in the view */
	uint32_t nkept;                     /* the newest, at most 8 */
	struct topo_rollback rb[8];
	uint32_t nroles;
	struct topo_role_override roles[8];
};

struct seen {
	unsigned views;
	bool connected, leader, expired_once, sorted;
	uint64_t epoch, bad;
	uint32_t timeout_ms;
	uint32_t nmembers, nleaders, nmodels;
	struct topo_member members[16];
	struct topo_leader leaders[8];
	char models[8][SHARD_NAME_MAX + 1];
	uint32_t model_shards[8];
	struct seen_extra extra[8];
};

struct tnode {
	struct topo *t;
	struct seen s;
};

static void view_cb(const struct topo_view *v, void *arg)
{
	struct seen *s = &((struct tnode *)arg)->s;

	CU_ASSERT_FATAL(v->nmembers <= 16 && v->nleaders <= 8 &&
			v->nmodels <= 8);
	/* The scalars; the arrays are copied below. */
	*s = (struct seen){
		.views = s->views + 1, .sorted = true,
		.connected = v->connected, .leader = v->leader,
		.expired_once = v->expired_once, .epoch = v->epoch,
		.bad = v->bad_znodes, .timeout_ms = v->session_timeout_ms,
		.nmembers = v->nmembers, .nleaders = v->nleaders,
		.nmodels = v->nmodels,
	};
	for (uint32_t i = 0; i < v->nmembers; i++) {
		s->members[i] = v->members[i];
		if (i && (strcmp(v->members[i - 1].dc, v->members[i].dc) > 0 ||
			  (strcmp(v->members[i - 1].dc, v->members[i].dc) == 0 &&
			   v->members[i - 1].node_id >= v->members[i].node_id)))
			s->sorted = false;
	}
	for (uint32_t i = 0; i < v->nleaders; i++) {
		s->leaders[i] = v->leaders[i];
		if (i && strcmp(v->leaders[i - 1].dc, v->leaders[i].dc) >= 0)
			s->sorted = false;
	}
	for (uint32_t i = 0; i < v->nmodels; i++) {
		const struct topo_model_extra *x = &v->extra[i];
		struct seen_extra *e = &s->extra[i];

		memcpy(s->models[i], v->models[i].name, sizeof(s->models[i]));
		s->model_shards[i] = v->models[i].shards;
		if (i && strcmp(v->models[i - 1].name, v->models[i].name) >= 0)
			s->sorted = false;
		/* Directives ascending by seq, epoch = seq + 1, bounded;
		 * overrides sorted by node id. */
		CU_ASSERT(x->nrollbacks <= TOPO_ROLLBACKS_MAX);
		for (uint32_t k = 0; k < x->nrollbacks; k++) {
			CU_ASSERT(x->rollbacks[k].epoch ==
				  x->rollbacks[k].seq + 1);
			if (k && x->rollbacks[k - 1].seq >= x->rollbacks[k].seq)
				s->sorted = false;
		}
		for (uint32_t k = 1; k < x->nroles; k++)
			if (x->roles[k - 1].node_id >= x->roles[k].node_id)
				s->sorted = false;
		e->nrb = x->nrollbacks;
		e->first_seq = x->nrollbacks ? x->rollbacks[0].seq : 0;
		e->nkept = x->nrollbacks < 8 ? x->nrollbacks : 8;
		for (uint32_t k = 0; k < e->nkept; k++)
			e->rb[k] = x->rollbacks[x->nrollbacks - e->nkept + k];
		CU_ASSERT_FATAL(x->nroles <= 8);
		e->nroles = x->nroles;
		for (uint32_t k = 0; k < x->nroles; k++)
			e->roles[k] = x->roles[k];
	}
	/* A leader's view always carries its epoch, nobody else's does. */
	CU_ASSERT(v->leader ? v->epoch > 0 : v->epoch == 0);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until cond(arg) holds or ms pass; true when it held. */
static bool wait_for(bool (*cond)(void *), void *arg, uint64_t ms)
{
	uint64_t end = fr_mono_ms() + ms;
	struct timeval tv = { 0, 20000 };
	struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	bool ok;

	event_add(tick, &tv);
	while (!(ok = cond(arg)) && fr_mono_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
	return ok;
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

/* Let the loop run for ms. */
static void run_for(uint64_t ms)
{
	wait_for(never, NULL, ms);
}

static struct topo_config config(const char *hosts, const char *dc,
				 uint32_t id, uint64_t gen)
{
	struct topo_config c;

	memset(&c, 0, sizeof(c));
	snprintf(c.hosts, sizeof(c.hosts), "%s", hosts);
	snprintf(c.cluster, sizeof(c.cluster), "%s", cluster);
	c.self.node_id = id;
	snprintf(c.self.dc, sizeof(c.self.dc), "%s", dc);
	snprintf(c.self.addr, sizeof(c.self.addr), "127.0.0.%u:%u", id,
		 7000 + id);
	snprintf(c.self.admin, sizeof(c.self.admin), "127.0.0.%u:%u", id,
		 8000 + id);
	snprintf(c.self.roles, sizeof(c.self.roles), "serving");
	c.self.generation = gen;
	c.session_timeout_ms = SESSION_MS;
	c.candidate = true;
	return c;
}

static void start(struct tnode *n, const struct topo_config *c)
{
	enum fr_err err;

	memset(n, 0, sizeof(*n));
	n->t = topo_new(base, c, view_cb, n, &err);
	if (!n->t)
		fprintf(stderr, "\n  topo_new: %s\n", fr_errmsg());
	CU_ASSERT_FATAL(n->t != NULL);
}

static void stop(struct tnode *n)
{
	topo_free(n->t);
	n->t = NULL;
}

static const struct topo_member *member_of(const struct seen *s, uint32_t id)
{
	for (uint32_t i = 0; i < s->nmembers; i++)
		if (s->members[i].node_id == id)
			return &s->members[i];
	return NULL;
}

static const struct topo_leader *leader_of(const struct seen *s,
					   const char *dc)
{
	for (uint32_t i = 0; i < s->nleaders; i++)
		if (strcmp(s->leaders[i].dc, dc) == 0)
			return &s->leaders[i];
	return NULL;
}

static bool has_model(const struct seen *s, const char *name)
{
	for (uint32_t i = 0; i < s->nmodels; i++)
		if (strcmp(s->models[i], name) == 0)
			return true;
	return false;
}

static const struct seen_extra *extra_of(const struct seen *s,
					 const char *name)
{
	for (uint32_t i = 0; i < s->nmodels; i++)
		if (strcmp(s->models[i], name) == 0)
			return &s->extra[i];
	return NULL;
}

/* ----------------------------------------------------------------------
 * The test's own ZooKeeper session
 * -------------------------------------------------------------------- */

static zhandle_t *raw_connect(void)
{
	zhandle_t *zh = zookeeper_init(zk_hosts, NULL, SESSION_MS, NULL, NULL,
				       0);
	uint64_t end = fr_mono_ms() + 10000;

	if (!zh)
		return NULL;
	while (zoo_state(zh) != ZOO_CONNECTED_STATE && fr_mono_ms() < end)
		usleep(10000);
	if (zoo_state(zh) != ZOO_CONNECTED_STATE) {
		zookeeper_close(zh);
		return NULL;
	}
	return zh;
}

static void path_of(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "/freshet/%s/%s", cluster, rel);
}

static int raw_create(zhandle_t *zh, const char *rel, const char *data,
		      int flags, char *out, int outcap)
{
	char path[256];

	path_of(path, sizeof(path), rel);
	return zoo_create(zh, path, data, data ? (int)strlen(data) : -1,
			  &ZOO_OPEN_ACL_UNSAFE, flags, out, outcap);
}

static int64_t owner_of(const char *rel)
{
	char path[256];
	struct Stat st;

	path_of(path, sizeof(path), rel);
	if (zoo_exists(raw, path, 0, &st) != ZOK)
		return -1;
	return st.ephemeralOwner;
}

/* A model of one f32 table. */
static struct shard_model_def model_def(const char *name, uint32_t priority,
					uint32_t shards, const char *table,
					uint64_t rows, uint32_t dim)
{
	struct shard_model_def d = {
		.priority = priority, .shards = shards, .ntables = 1,
		.tables = { { .rows = rows, .dim = dim, .dtype = SHARD_F32 } },
	};

	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.tables[0].name, sizeof(d.tables[0].name), "%s", table);
	return d;
}

/* ----------------------------------------------------------------------
 * Cases
 * -------------------------------------------------------------------- */

static struct tnode n1, n2, n3;
static uint64_t epoch_a1;

static bool leads(void *arg)
{
	struct tnode *n = arg;

	return n->s.connected && n->s.leader;
}

static bool all_see_three(void *arg)
{
	struct tnode *ns[] = { &n1, &n2, &n3 };

	(void)arg;
	for (int i = 0; i < 3; i++) {
		const struct seen *s = &ns[i]->s;
		const struct topo_leader *a = leader_of(s, "a");
		const struct topo_leader *b = leader_of(s, "b");

		if (!s->connected || s->nmembers != 3 || s->nleaders != 2 ||
		    !a || !b || a->node_id != 1 || b->node_id != 3)
			return false;
	}
	return n1.s.leader && n3.s.leader;
}

static void test_members_and_leaders(void)
{
	struct topo_config c;

	c = config(zk_hosts, "a", 1, 1);
	start(&n1, &c);
	CU_ASSERT_FATAL(wait_for(leads, &n1, 10000));
	c = config(zk_hosts, "a", 2, 1);
	start(&n2, &c);
	c = config(zk_hosts, "b", 3, 1);
	start(&n3, &c);
	CU_ASSERT_FATAL(wait_for(all_see_three, NULL, 10000));
	/* Let any stray second view arrive, then check it all again. */
	run_for(300);
	CU_ASSERT(all_see_three(NULL));
	CU_ASSERT(!n2.s.leader);
	CU_ASSERT_EQUAL(n2.s.epoch, 0);
	CU_ASSERT(n1.s.sorted && n2.s.sorted && n3.s.sorted);
	CU_ASSERT_EQUAL(n2.s.members[0].node_id, 1);
	CU_ASSERT_STRING_EQUAL(n2.s.members[0].dc, "a");
	CU_ASSERT_EQUAL(n2.s.members[1].node_id, 2);
	CU_ASSERT_EQUAL(n2.s.members[2].node_id, 3);
	CU_ASSERT_STRING_EQUAL(n2.s.members[2].dc, "b");
	CU_ASSERT_STRING_EQUAL(n2.s.members[2].addr, "127.0.0.3:7003");
	CU_ASSERT_STRING_EQUAL(n2.s.members[2].admin, "127.0.0.3:8003");
	CU_ASSERT_STRING_EQUAL(n2.s.members[2].roles, "serving");
	CU_ASSERT_EQUAL(n2.s.members[2].generation, 1);
	/* The leaders/<dc> znodes carry the epochs the leaders hold. */
	epoch_a1 = leader_of(&n2.s, "a")->epoch;
	CU_ASSERT(epoch_a1 > 0);
	CU_ASSERT_EQUAL(n1.s.epoch, epoch_a1);
	CU_ASSERT_EQUAL(n3.s.epoch, leader_of(&n2.s, "b")->epoch);
	CU_ASSERT(n3.s.epoch > 0);
	CU_ASSERT_STRING_EQUAL(leader_of(&n3.s, "a")->addr, "127.0.0.1:7001");
	/* The session timeout is what ZooKeeper granted. */
	CU_ASSERT(n1.s.timeout_ms >= 1000 && n1.s.timeout_ms <= SESSION_MS);
	CU_ASSERT(!n1.s.expired_once);
	{
		struct topo_stats st;

		topo_get_stats(n1.t, &st);
		CU_ASSERT_EQUAL(st.connects, 1);
		CU_ASSERT_EQUAL(st.elections_won, 1);
		CU_ASSERT_EQUAL(st.expirations, 0);
		CU_ASSERT_EQUAL(st.demotions, 0);
		CU_ASSERT(st.views >= 1 && st.views == n1.s.views);
		topo_get_stats(n2.t, &st);
		CU_ASSERT_EQUAL(st.elections_won, 0);
	}
}

static bool failed_over(void *arg)
{
	const struct topo_leader *a2 = leader_of(&n2.s, "a");
	const struct topo_leader *a3 = leader_of(&n3.s, "a");

	(void)arg;
	return n2.s.leader && n2.s.nmembers == 2 && n3.s.nmembers == 2 &&
	       a2 && a2->node_id == 2 && a3 && a3->node_id == 2;
}

static void test_failover(void)
{
	uint64_t t0;

	CU_ASSERT_FATAL(n1.t && n2.t && n3.t);
	t0 = fr_mono_ms();
	stop(&n1);
	CU_ASSERT(fr_mono_ms() - t0 < 2000);
	/* n1 deleted its znodes on the way out: no session timeout to
	 * wait for. */
	CU_ASSERT(wait_for(failed_over, NULL, 3000));
	CU_ASSERT(n2.s.epoch > epoch_a1);
	CU_ASSERT_EQUAL(leader_of(&n3.s, "a")->epoch, n2.s.epoch);
	CU_ASSERT(member_of(&n3.s, 1) == NULL);
	CU_ASSERT(n3.s.leader);
	CU_ASSERT_EQUAL(owner_of("nodes/a/1"), -1);
	CU_ASSERT_EQUAL(owner_of("leaders/a") > 0, 1);
}

struct want_bad {
	uint64_t bad2, bad3;
};

static bool model_everywhere(void *arg)
{
	(void)arg;
	return has_model(&n2.s, "ctr") && has_model(&n3.s, "ctr");
}

static bool bad_rose(void *arg)
{
	struct want_bad *w = arg;

	return n2.s.bad > w->bad2 && n3.s.bad > w->bad3;
}

static void test_models_and_bad_znodes(void)
{
	struct shard_model_def d = model_def("ctr", 10, 64, "users", 1000, 8);
	struct want_bad w;
	struct topo_stats st;
	enum fr_err err;
	char *json;

	CU_ASSERT_FATAL(n2.t && n3.t);
	json = topo_model_encode(&d, &err);
	CU_ASSERT_FATAL(json != NULL);
	CU_ASSERT_EQUAL(raw_create(raw, "models/ctr", json, 0, NULL, 0), ZOK);
	free(json);
	CU_ASSERT(wait_for(model_everywhere, NULL, 5000));
	CU_ASSERT_EQUAL(n2.s.model_shards[0], 64);

	/* Malformed: skipped, counted, nothing else changes. */
	w.bad2 = n2.s.bad;
	w.bad3 = n3.s.bad;
	CU_ASSERT_EQUAL(raw_create(raw, "models/bad", "{garbage", 0, NULL, 0),
			ZOK);
	CU_ASSERT(wait_for(bad_rose, &w, 5000));
	CU_ASSERT_EQUAL(n2.s.nmodels, 1);
	CU_ASSERT(has_model(&n3.s, "ctr") && !has_model(&n3.s, "bad"));
	topo_get_stats(n2.t, &st);
	CU_ASSERT(st.bad_znodes >= 1);
	CU_ASSERT_EQUAL(st.bad_znodes, n2.s.bad);

	/* A well-formed model whose JSON names another model. */
	w.bad2 = n2.s.bad;
	w.bad3 = n3.s.bad;
	CU_ASSERT_EQUAL(raw_create(raw, "models/other",
		"{\"name\":\"ctr\",\"priority\":1,\"shards\":1,\"tables\":"
		"[{\"name\":\"t\",\"rows\":1,\"dim\":1,\"dtype\":\"f32\"}]}",
		0, NULL, 0), ZOK);
	CU_ASSERT(wait_for(bad_rose, &w, 5000));
	CU_ASSERT_EQUAL(n3.s.nmodels, 1);

	/* Garbage leaders/<dc> of a DC nobody is in. */
	w.bad2 = n2.s.bad;
	w.bad3 = n3.s.bad;
	CU_ASSERT_EQUAL(raw_create(raw, "leaders/zz", "\xff\x00garbage",
				   ZOO_EPHEMERAL, NULL, 0), ZOK);
	CU_ASSERT(wait_for(bad_rose, &w, 5000));
	CU_ASSERT_EQUAL(n2.s.nleaders, 2);
	CU_ASSERT(leader_of(&n2.s, "zz") == NULL);
	/* A second read of the same bad znodes (another model's change
	 * makes every model be read again) does not count them again. */
	w.bad2 = n2.s.bad;
	CU_ASSERT_EQUAL(raw_create(raw, "models/zzz",
		"{\"name\":\"zzz\",\"priority\":1,\"shards\":2,\"tables\":"
		"[{\"name\":\"t\",\"rows\":1,\"dim\":1,\"dtype\":\"f16\"}]}",
		0, NULL, 0), ZOK);
	run_for(1000);
	CU_ASSERT(has_model(&n2.s, "zzz"));
	CU_ASSERT_EQUAL(n2.s.nmodels, 2);
	CU_ASSERT_STRING_EQUAL(n2.s.models[0], "ctr");
	CU_ASSERT_STRING_EQUAL(n2.s.models[1], "zzz");
	CU_ASSERT_EQUAL(n2.s.bad, w.bad2);
	CU_ASSERT(n2.s.connected && n2.s.leader && n3.s.leader);
}

static struct tnode n4, n5;

static bool gen2_registered(void *arg)
{
	const struct topo_member *m = member_of(&n2.s, 4);

	(void)arg;
	return m && m->generation == 2 && n4.s.nmembers == 3;
}

/* A restarted node (same id, higher generation) while its old session
 * still lives: it replaces the ghost's member and candidate znodes. */
static void test_ghost_replaced(void)
{
	struct topo_config c = config(zk_hosts, "a", 4, 1);
	char electpath[256], ghost[256], *json;
	struct String_vector sv;
	enum fr_err err;
	bool ghost_left = false;
	zhandle_t *old;

	CU_ASSERT_FATAL(n2.t && n3.t);
	old = raw_connect();
	CU_ASSERT_FATAL(old != NULL);
	json = topo_member_encode(&c.self, &err);
	CU_ASSERT_FATAL(json != NULL);
	CU_ASSERT_EQUAL(raw_create(old, "nodes/a/4", json, ZOO_EPHEMERAL,
				   NULL, 0), ZOK);
	CU_ASSERT_EQUAL(raw_create(old, "election/a/n_4_1_", json,
				   ZOO_EPHEMERAL | ZOO_SEQUENCE, ghost,
				   sizeof(ghost)), ZOK);
	free(json);

	c.self.generation = 2;
	start(&n4, &c);
	CU_ASSERT(wait_for(gen2_registered, NULL, 8000));
	CU_ASSERT(owner_of("nodes/a/4") > 0);
	CU_ASSERT(owner_of("nodes/a/4") != zoo_client_id(old)->client_id);
	/* The ghost candidate is gone; n4 stands behind n2. */
	path_of(electpath, sizeof(electpath), "election/a");
	CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, electpath, 0, &sv), ZOK);
	for (int32_t i = 0; i < sv.count; i++)
		if (strncmp(sv.data[i], "n_4_1_", 6) == 0)
			ghost_left = true;
	CU_ASSERT(!ghost_left);
	CU_ASSERT_EQUAL(sv.count, 2);
	deallocate_String_vector(&sv);
	CU_ASSERT(!n4.s.leader && n2.s.leader);

	/* A stale process of the same id (lower generation) is refused,
	 * and leaving does not delete the newer one's znode. */
	c.self.generation = 1;
	start(&n5, &c);
	run_for(1500);
	CU_ASSERT(member_of(&n2.s, 4) != NULL);
	CU_ASSERT_EQUAL(member_of(&n2.s, 4)->generation, 2);
	CU_ASSERT(!n5.s.leader);
	/* ... and does not stand for election under a taken id. */
	CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, electpath, 0, &sv), ZOK);
	CU_ASSERT_EQUAL(sv.count, 2);
	deallocate_String_vector(&sv);
	stop(&n5);
	run_for(500);
	CU_ASSERT(member_of(&n2.s, 4) != NULL);
	CU_ASSERT(owner_of("nodes/a/4") > 0);
	zookeeper_close(old);
	stop(&n4);
}

static struct tnode n7, n8;

static bool new_generation_leads(void *arg)
{
	const struct topo_leader *d = leader_of(&n7.s, "d");
	const struct topo_member *m = member_of(&n7.s, 7);

	(void)arg;
	return n8.s.leader && !n7.s.leader && d && d->generation == 2 &&
	       m && m->generation == 2;
}

/* The old process is still running and leads when the restarted one
 * (same id, next generation) comes up: the new one takes the member
 * znode, the old one stands down and withdraws, the new one leads. */
static void test_generation_takeover(void)
{
	struct topo_config c = config(zk_hosts, "d", 7, 1);
	char electpath[256];
	struct String_vector sv;
	struct topo_stats st;

	start(&n7, &c);
	CU_ASSERT_FATAL(wait_for(leads, &n7, 10000));
	c.self.generation = 2;
	start(&n8, &c);
	CU_ASSERT(wait_for(new_generation_leads, NULL, 8000));
	/* It stays that way: the old one does not fight back. */
	run_for(2500);
	CU_ASSERT(new_generation_leads(NULL));
	CU_ASSERT(n8.s.epoch > 0);
	CU_ASSERT_EQUAL(leader_of(&n8.s, "d")->epoch, n8.s.epoch);
	path_of(electpath, sizeof(electpath), "election/d");
	CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, electpath, 0, &sv), ZOK);
	CU_ASSERT_EQUAL(sv.count, 1);
	if (sv.count == 1)
		CU_ASSERT(strncmp(sv.data[0], "n_7_2_", 6) == 0);
	deallocate_String_vector(&sv);
	topo_get_stats(n7.t, &st);
	CU_ASSERT_EQUAL(st.demotions, 1);
	stop(&n7);
	run_for(300);
	CU_ASSERT(member_of(&n8.s, 7) != NULL && n8.s.leader);
	stop(&n8);
}

static struct tnode n10, n11, n12;

/* The raw data of rel, NUL-terminated, or "" when absent. */
static void raw_get(const char *rel, char *buf, int cap)
{
	char path[256];
	struct Stat st;
	int len = cap - 1;

	path_of(path, sizeof(path), rel);
	if (zoo_get(raw, path, 0, buf, &len, &st) != ZOK || len < 0)
		len = 0;
	buf[len] = '\0';
}

static char member10[1024];

static bool member10_back(void *arg)
{
	char buf[1024];

	(void)arg;
	raw_get("nodes/f/10", buf, sizeof(buf));
	return strcmp(buf, member10) == 0;
}

static bool leader_f_back(void *arg)
{
	struct topo_leader l;
	char buf[1024];

	(void)arg;
	raw_get("leaders/f", buf, sizeof(buf));
	return topo_leader_decode(buf, strlen(buf), &l) == FR_OK &&
	       l.node_id == 10 && l.epoch == n10.s.epoch;
}

static bool n11_took_over(void *arg)
{
	(void)arg;
	return n11.s.connected && n11.s.leader && !n10.s.leader;
}

static bool n11_sees_two(void *arg)
{
	(void)arg;
	return n11.s.nmembers >= 2 && leader_of(&n11.s, "f") != NULL;
}

static bool n12_leads(void *arg)
{
	(void)arg;
	return n12.s.connected && n12.s.leader;
}

/* Our znodes changed by someone else are put right: member and leader
 * data written back, and a leader whose candidate is deleted stands
 * down at once so the next one leads.  A leaders/<dc> that is not an
 * ephemeral (nobody's session will remove it) does not block a DC. */
static void test_znodes_put_right(void)
{
	struct topo_config c = config(zk_hosts, "f", 10, 1);
	char path[512], electpath[256], *json;
	struct String_vector sv;
	struct topo_leader l;
	uint64_t epoch10;
	enum fr_err err;
	int deleted = 0;

	start(&n10, &c);
	CU_ASSERT_FATAL(wait_for(leads, &n10, 10000));
	c = config(zk_hosts, "f", 11, 1);
	start(&n11, &c);
	CU_ASSERT_FATAL(wait_for(n11_sees_two, NULL, 10000));
	epoch10 = n10.s.epoch;

	raw_get("nodes/f/10", member10, sizeof(member10));
	CU_ASSERT_FATAL(member10[0] == '{');
	path_of(path, sizeof(path), "nodes/f/10");
	CU_ASSERT_EQUAL(zoo_set(raw, path, "garbage", 7, -1), ZOK);
	CU_ASSERT(wait_for(member10_back, NULL, 5000));

	path_of(path, sizeof(path), "leaders/f");
	CU_ASSERT_EQUAL(zoo_set(raw, path, "{", 1, -1), ZOK);
	CU_ASSERT(wait_for(leader_f_back, NULL, 5000));
	CU_ASSERT(n10.s.leader && !n11.s.leader);

	/* Delete the leader's candidate: it must notice (it watches its own
	 * candidate) and hand over; without that n11 would wait on
	 * leaders/f for as long as n10's session lives. */
	path_of(electpath, sizeof(electpath), "election/f");
	CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, electpath, 0, &sv), ZOK);
	for (int32_t i = 0; i < sv.count; i++)
		if (strncmp(sv.data[i], "n_10_1_", 7) == 0) {
			snprintf(path, sizeof(path), "%s/%s", electpath,
				 sv.data[i]);
			if (zoo_delete(raw, path, -1) == ZOK)
				deleted++;
		}
	deallocate_String_vector(&sv);
	CU_ASSERT_EQUAL(deleted, 1);
	CU_ASSERT(wait_for(n11_took_over, NULL, 5000));
	CU_ASSERT(n11.s.epoch > epoch10);
	stop(&n10);
	stop(&n11);

	/* A persistent leaders/g left behind by hand. */
	memset(&l, 0, sizeof(l));
	snprintf(l.dc, sizeof(l.dc), "g");
	l.node_id = 99;
	snprintf(l.addr, sizeof(l.addr), "127.0.0.99:7099");
	l.epoch = 5;
	l.generation = 1;
	json = topo_leader_encode(&l, &err);
	CU_ASSERT_FATAL(json != NULL);
	CU_ASSERT_EQUAL(raw_create(raw, "leaders/g", json, 0, NULL, 0), ZOK);
	free(json);
	/* ... and a persistent candidate ranked ahead of everyone. */
	CU_ASSERT_EQUAL(raw_create(raw, "election/g", NULL, 0, NULL, 0), ZOK);
	CU_ASSERT_EQUAL(raw_create(raw, "election/g/n_99_1_", "{}",
				   ZOO_SEQUENCE, NULL, 0), ZOK);
	c = config(zk_hosts, "g", 12, 1);
	start(&n12, &c);
	CU_ASSERT(wait_for(n12_leads, NULL, 5000));
	CU_ASSERT(owner_of("leaders/g") > 0);
	path_of(electpath, sizeof(electpath), "election/g");
	CU_ASSERT_EQUAL_FATAL(zoo_get_children(raw, electpath, 0, &sv), ZOK);
	CU_ASSERT_EQUAL(sv.count, 1);
	if (sv.count == 1)
		CU_ASSERT(strncmp(sv.data[0], "n_12_1_", 7) == 0);
	deallocate_String_vector(&sv);
	stop(&n12);
}

/* ----------------------------------------------------------------------
 * A TCP proxy that can cut every connection and refuse new ones: the
 * session is cut off without expiring (until SESSION_MS).
 * -------------------------------------------------------------------- */

struct proxy {
	int lfd;
	uint16_t port;
	struct sockaddr_in to;
	atomic_bool cut, quit;
	atomic_bool mute;   /* keep the connections, forward nothing */
	atomic_bool drop_replies;   /* forward requests, eat the answers */
	atomic_bool drop_after_multi;   /* drop_replies from the next multi */
	atomic_bool drop_multi;   /* eat the next multi, then mute */
	pthread_t thread;
};

static uint32_t be32(const char *p)
{
	return (uint32_t)(unsigned char)p[0] << 24 |
	       (uint32_t)(unsigned char)p[1] << 16 |
	       (uint32_t)(unsigned char)p[2] << 8 | (unsigned char)p[3];
}

/* Does this client->server chunk hold a multi request (len, xid, type
 * 14)?  The C client sends a request's length and its body apart, so a
 * chunk may also start at the xid.  (Its xids start at time(0): never a
 * 14 to be taken for a type.) */
static bool has_multi(const char *buf, ssize_t r)
{
	if (r >= 8 && be32(buf + 4) == 14)
		return true;
	for (ssize_t off = 0; off + 12 <= r;) {
		uint32_t len = be32(buf + off);

		if (be32(buf + off + 8) == 14)
			return true;
		if (len > (uint32_t)r)
			break;
		off += 4 + (ssize_t)len;
	}
	return false;
}

static struct proxy px;

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	int fds[64];
	int n = 0;   /* pairs: fds[2k] client, fds[2k+1] server */

	while (!atomic_load(&p->quit)) {
		struct pollfd pf[65];
		int np = 0;

		if (atomic_load(&p->cut)) {
			for (int i = 0; i < n; i++)
				close(fds[i]);
			n = 0;
		}
		pf[np++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
		/* Muted: nothing is read, so nothing flows either way and no
		 * end sees a reset — a silent partition (iptables DROP). */
		for (int i = 0; i < n && !atomic_load(&p->mute); i++)
			pf[np++] = (struct pollfd){ .fd = fds[i],
						    .events = POLLIN };
		if (poll(pf, (nfds_t)np, 20) <= 0)
			continue;
		if (pf[0].revents & POLLIN) {
			int c = accept(p->lfd, NULL, NULL);

			if (c >= 0) {
				int s = socket(AF_INET, SOCK_STREAM, 0);

				if (atomic_load(&p->cut) || n + 2 > 64 ||
				    connect(s, (struct sockaddr *)&p->to,
					    sizeof(p->to)) != 0) {
					close(c);
					close(s);
				} else {
					fds[n++] = c;
					fds[n++] = s;
				}
			}
		}
		for (int i = 1; i < np; i++) {
			char buf[65536];
			ssize_t r;
			int from = i - 1, to = from ^ 1;

			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(fds[from], buf, sizeof(buf));
			if (r > 0 && !(from & 1) &&
			    atomic_load(&p->drop_after_multi) &&
			    has_multi(buf, r)) {
				atomic_store(&p->drop_after_multi, false);
				atomic_store(&p->drop_replies, true);
			}
			if (r > 0 && !(from & 1) &&
			    atomic_load(&p->drop_multi) && has_multi(buf, r)) {
				atomic_store(&p->mute, true);
				atomic_store(&p->drop_multi, false);
				break;   /* never reaches ZooKeeper */
			}
			if (r > 0 && (from & 1) &&
			    atomic_load(&p->drop_replies))
				continue;   /* ZooKeeper's answer, eaten */
			if (r <= 0 || write(fds[to], buf, (size_t)r) != r) {
				/* Drop the pair. */
				int a = from & ~1;

				close(fds[a]);
				close(fds[a + 1]);
				fds[a] = fds[n - 2];
				fds[a + 1] = fds[n - 1];
				n -= 2;
				break;   /* indices moved: poll again */
			}
		}
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return NULL;
}

static bool proxy_start(struct proxy *p)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	const char *colon = strrchr(zk_hosts, ':');

	memset(p, 0, sizeof(*p));
	if (!colon)
		return false;
	p->to.sin_family = AF_INET;
	p->to.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, "127.0.0.1", &p->to.sin_addr);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(p->lfd, 16) != 0 ||
	    getsockname(p->lfd, (struct sockaddr *)&a, &len) != 0)
		return false;
	p->port = ntohs(a.sin_port);
	return pthread_create(&p->thread, NULL, proxy_main, p) == 0;
}

static void proxy_stop(struct proxy *p)
{
	atomic_store(&p->quit, true);
	pthread_join(p->thread, NULL);
	close(p->lfd);
}

/* Start px; hosts[cap] gets the address that reaches ZooKeeper through
 * it. */
static void proxy_hosts(char *hosts, size_t cap)
{
	CU_ASSERT_FATAL(proxy_start(&px));
	snprintf(hosts, cap, "127.0.0.1:%u", px.port);
}

/* Start px and node n (dc, id, generation 1) talking through it. */
static void start_proxied(struct tnode *n, const char *dc, uint32_t id,
			  bool candidate)
{
	struct topo_config c;
	char hosts[64];

	proxy_hosts(hosts, sizeof(hosts));
	c = config(hosts, dc, id, 1);
	c.candidate = candidate;
	start(n, &c);
}

static struct tnode n6;

static bool demoted(void *arg)
{
	(void)arg;
	return !n6.s.connected && !n6.s.leader;
}

static bool leads_after_expiry(void *arg)
{
	(void)arg;
	return n6.s.expired_once && n6.s.connected && n6.s.leader;
}

static void test_self_demotion(void)
{
	struct topo_stats st;
	uint64_t epoch, t_cut, took;

	/* Alone in dc "c", so it leads at once. */
	start_proxied(&n6, "c", 6, true);
	CU_ASSERT_FATAL(wait_for(leads, &n6, 10000));
	epoch = n6.s.epoch;

	t_cut = fr_mono_ms();
	atomic_store(&px.cut, true);
	CU_ASSERT(wait_for(demoted, NULL, SESSION_MS));
	took = fr_mono_ms() - t_cut;
	/* Not at once (the loss was seen at once: a reset), but about 2/3
	 * of the session timeout after the last answer (a probe, at most
	 * timeout/10 before the cut). */
	CU_ASSERT(took >= n6.s.timeout_ms / 2 - 100);
	CU_ASSERT(took <= n6.s.timeout_ms * 2 / 3 + 250);
	CU_ASSERT(!n6.s.expired_once);
	topo_get_stats(n6.t, &st);
	CU_ASSERT_EQUAL(st.demotions, 1);
	CU_ASSERT(st.disconnects >= 1);

	/* Back before the session expires: same session, same candidate,
	 * still rank 0 — leader again with the same epoch. */
	atomic_store(&px.cut, false);
	CU_ASSERT(wait_for(leads, &n6, SESSION_MS));
	CU_ASSERT_EQUAL(n6.s.epoch, epoch);
	CU_ASSERT(!n6.s.expired_once);
	topo_get_stats(n6.t, &st);
	CU_ASSERT_EQUAL(st.expirations, 0);
	CU_ASSERT_EQUAL(st.connects, 2);
	CU_ASSERT_EQUAL(st.elections_won, 1);

	/* Cut off past the session timeout: ZooKeeper expires the session.
	 * When the link is back the node learns it, starts a new session,
	 * registers and stands again: a new epoch. */
	atomic_store(&px.cut, true);
	run_for(SESSION_MS + 1500);
	CU_ASSERT(!n6.s.leader && !n6.s.connected);
	CU_ASSERT_EQUAL(owner_of("leaders/c"), -1);
	CU_ASSERT_EQUAL(owner_of("nodes/c/6"), -1);
	atomic_store(&px.cut, false);
	CU_ASSERT(wait_for(leads_after_expiry, NULL, SESSION_MS * 2));
	CU_ASSERT(n6.s.epoch > epoch);
	CU_ASSERT(member_of(&n6.s, 6) != NULL);
	topo_get_stats(n6.t, &st);
	CU_ASSERT_EQUAL(st.expirations, 1);
	CU_ASSERT_EQUAL(st.connects, 3);
	CU_ASSERT_EQUAL(st.elections_won, 2);
	CU_ASSERT_EQUAL(st.demotions, 2);
	CU_ASSERT(owner_of("leaders/c") > 0);
	stop(&n6);
	proxy_stop(&px);
}

static struct tnode n9;

static bool n9_not_leader(void *arg)
{
	(void)arg;
	return !n9.s.leader;
}

static bool n9_leads(void *arg)
{
	(void)arg;
	return n9.s.connected && n9.s.leader;
}

/* A silent cut (no reset: the ZooKeeper client itself notices only after
 * 2/3 of the session timeout without a reply): the leader must still step
 * down about 2/3 of the timeout after its last contact, before ZooKeeper
 * can expire the session and let another node win (rule 2). */
static void test_silent_demotion(void)
{
	struct topo_stats st;
	uint64_t t_cut, took, to;

	start_proxied(&n9, "e", 9, true);
	CU_ASSERT_FATAL(wait_for(n9_leads, NULL, 10000));
	/* Idle for a while first: contact must be kept up without any
	 * znode changing. */
	run_for(n9.s.timeout_ms);
	CU_ASSERT(n9.s.leader);
	to = n9.s.timeout_ms;

	t_cut = fr_mono_ms();
	atomic_store(&px.mute, true);
	CU_ASSERT(wait_for(n9_not_leader, NULL, 2 * SESSION_MS));
	took = fr_mono_ms() - t_cut;
	CU_ASSERT(took >= to / 2 - 100);
	CU_ASSERT(took <= to * 2 / 3 + 250);
	if (took > to * 2 / 3 + 250)
		fprintf(stderr, "\n  demoted %" PRIu64 " ms after a silent cut (timeout %" PRIu64 " ms)\n",
			took, to);
	topo_get_stats(n9.t, &st);
	CU_ASSERT_EQUAL(st.demotions, 1);

	/* The link comes back: leader again (same session or a new one). */
	atomic_store(&px.mute, false);
	CU_ASSERT(wait_for(n9_leads, NULL, 3 * SESSION_MS));
	stop(&n9);
	proxy_stop(&px);
}

/* A registry with more models than a view holds (256): the first 256 by
 * name, the same on every node, and no more (rule 13). */
struct capseen {
	uint32_t nmodels;
	char first[SHARD_NAME_MAX + 1], last[SHARD_NAME_MAX + 1];
};

static void cap_view_cb(const struct topo_view *v, void *arg)
{
	struct capseen *c = arg;

	c->nmodels = v->nmodels;
	if (v->nmodels) {
		memcpy(c->first, v->models[0].name, sizeof(c->first));
		memcpy(c->last, v->models[v->nmodels - 1].name,
		       sizeof(c->last));
	}
}

static bool cap_reached(void *arg)
{
	return ((struct capseen *)arg)->nmodels == 256;
}

static void test_model_cap(void)
{
	enum { NM = 257 };
	static char paths[NM][160], datas[NM][160];
	static zoo_op_t ops[NM];
	static zoo_op_result_t res[NM];
	struct topo_config c = config(zk_hosts, "a", 1, 1);
	struct capseen seen;
	char root[128];
	struct topo *t;
	enum fr_err err;

	/* A cluster of its own: the other cases' views stay small. */
	snprintf(c.cluster, sizeof(c.cluster), "%scap", cluster);
	c.candidate = false;
	snprintf(root, sizeof(root), "/freshet/%s", c.cluster);
	CU_ASSERT_EQUAL_FATAL(zoo_create(raw, root, NULL, -1,
					 &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
			      ZOK);
	snprintf(root, sizeof(root), "/freshet/%s/models", c.cluster);
	CU_ASSERT_EQUAL_FATAL(zoo_create(raw, root, NULL, -1,
					 &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
			      ZOK);
	for (int i = 0; i < NM; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/m%03d", root, i);
		snprintf(datas[i], sizeof(datas[i]),
			 "{\"name\":\"m%03d\",\"priority\":1,\"shards\":1,"
			 "\"tables\":[{\"name\":\"t\",\"rows\":1,\"dim\":1,"
			 "\"dtype\":\"f32\"}]}", i);
		zoo_create_op_init(&ops[i], paths[i], datas[i],
				   (int)strlen(datas[i]), &ZOO_OPEN_ACL_UNSAFE,
				   0, NULL, 0);
	}
	CU_ASSERT_EQUAL_FATAL(zoo_multi(raw, NM, ops, res), ZOK);

	memset(&seen, 0, sizeof(seen));
	t = topo_new(base, &c, cap_view_cb, &seen, &err);
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT(wait_for(cap_reached, &seen, 10000));
	run_for(300);
	CU_ASSERT_EQUAL(seen.nmodels, 256);
	CU_ASSERT_STRING_EQUAL(seen.first, "m000");
	CU_ASSERT_STRING_EQUAL(seen.last, "m255");
	topo_free(t);
}

/* ----------------------------------------------------------------------
 * Directives, state, status, roles
 * -------------------------------------------------------------------- */

static struct topo_admin *admin_open(void)
{
	enum fr_err err;
	struct topo_admin *a = topo_admin_connect(zk_hosts, cluster, 10000,
						  &err);

	if (!a)
		fprintf(stderr, "\n  topo_admin_connect: %s\n", fr_errmsg());
	return a;
}

static struct topo_rollback directive(uint64_t t, uint64_t r,
				      const char *reason)
{
	struct topo_rollback d;

	memset(&d, 0, sizeof(d));
	d.t = t;
	d.r = r;
	d.at_ms = 1764050000000ull + t;
	snprintf(d.reason, sizeof(d.reason), "%s", reason);
	snprintf(d.who, sizeof(d.who), "test@localhost");
	return d;
}

/* What a wait_for on a model's directives looks for. */
struct want_rb {
	const char *model;
	uint32_t n;            /* directives in the view */
	uint64_t last_epoch;   /* of the newest */
};

static bool node_has_rb(const struct tnode *n, const struct want_rb *w)
{
	const struct seen_extra *e = extra_of(&n->s, w->model);

	return e && e->nrb == w->n &&
	       (w->n == 0 || e->rb[e->nkept - 1].epoch == w->last_epoch);
}

static bool both_have_rb(void *arg)
{
	return node_has_rb(&n2, arg) && node_has_rb(&n3, arg);
}


static bool has_fresh(void *arg)
{
	(void)arg;
	return has_model(&n2.s, "fresh") && has_model(&n3.s, "fresh");
}

static void create_model(struct topo_admin *a, const char *name)
{
	struct shard_model_def d = model_def(name, 1, 2, "t", 10, 2);

	CU_ASSERT_EQUAL_FATAL(topo_admin_model_create(a, &d), FR_OK);
}

static void test_directives(void)
{
	struct topo_admin *a;
	struct topo_rollback d, *list;
	struct want_rb w = { "ctr", 0, 0 };
	struct want_bad wb;
	const struct seen_extra *e;
	uint64_t e1, e2, e3, t0;
	uint32_t n, bad;

	CU_ASSERT_FATAL(n2.t && n3.t);
	a = admin_open();
	CU_ASSERT_FATAL(a != NULL);
	/* No rollbacks/ yet: the model is in the view with none. */
	CU_ASSERT_FATAL(wait_for(both_have_rb, &w, 3000));
	CU_ASSERT_EQUAL(topo_admin_rollbacks(a, "ctr", &list, &n, &bad),
			FR_OK);
	CU_ASSERT_EQUAL(n, 0);
	free(list);

	d = directive(100, 200, "auc -0.04");
	t0 = fr_mono_ms();
	CU_ASSERT_EQUAL_FATAL(topo_admin_rollback_file(a, "ctr", &d, NULL, 0,
						       &e1), FR_OK);
	CU_ASSERT(e1 >= 1);
	w.n = 1;
	w.last_epoch = e1;
	/* Watched, not polled: well under the thread's 1 s retry. */
	CU_ASSERT_FATAL(wait_for(both_have_rb, &w, 3000));
	CU_ASSERT(fr_mono_ms() - t0 < 900);
	e = extra_of(&n3.s, "ctr");
	CU_ASSERT_EQUAL(e->rb[0].t, 100);
	CU_ASSERT_EQUAL(e->rb[0].r, 200);
	CU_ASSERT_EQUAL(e->rb[0].epoch, e1);
	CU_ASSERT_EQUAL(e->rb[0].at_ms, 1764050000100ull);
	CU_ASSERT_STRING_EQUAL(e->rb[0].reason, "auc -0.04");
	CU_ASSERT_STRING_EQUAL(e->rb[0].who, "test@localhost");

	/* Epochs rise in filing order. */
	d = directive(150, 300, "second");
	CU_ASSERT_EQUAL_FATAL(topo_admin_rollback_file(a, "ctr", &d, NULL, 0,
						       &e2), FR_OK);
	CU_ASSERT(e2 > e1);
	w.n = 2;
	w.last_epoch = e2;
	CU_ASSERT(wait_for(both_have_rb, &w, 3000));
	e = extra_of(&n2.s, "ctr");
	CU_ASSERT_EQUAL(e->rb[0].epoch, e1);
	CU_ASSERT_EQUAL(e->rb[1].epoch, e2);
	CU_ASSERT_STRING_EQUAL(e->rb[1].reason, "second");

	/* A malformed directive and a misnamed child: left out and
	 * counted; the next good one still arrives. */
	wb.bad2 = n2.s.bad;
	wb.bad3 = n3.s.bad;
	CU_ASSERT_EQUAL(raw_create(raw, "models/ctr/rollbacks/r_",
				   "{\"t\":9,\"r\":3}", ZOO_SEQUENCE, NULL, 0),
			ZOK);
	CU_ASSERT(wait_for(bad_rose, &wb, 3000));
	wb.bad2 = n2.s.bad;
	wb.bad3 = n3.s.bad;
	CU_ASSERT_EQUAL(raw_create(raw, "models/ctr/rollbacks/junk", "{}", 0,
				   NULL, 0), ZOK);
	CU_ASSERT(wait_for(bad_rose, &wb, 3000));
	CU_ASSERT_EQUAL(extra_of(&n2.s, "ctr")->nrb, 2);
	d = directive(160, 400, "third");
	CU_ASSERT_EQUAL_FATAL(topo_admin_rollback_file(a, "ctr", &d, NULL, 0,
						       &e3), FR_OK);
	CU_ASSERT(e3 > e2 + 1);   /* the bad one took a number */
	w.n = 3;
	w.last_epoch = e3;
	CU_ASSERT(wait_for(both_have_rb, &w, 3000));
	CU_ASSERT(n2.s.sorted && n3.s.sorted);
	/* Each bad znode is counted once, not at every re-listing. */
	CU_ASSERT_EQUAL(n2.s.bad, wb.bad2 + 1);
	CU_ASSERT_EQUAL(topo_admin_rollbacks(a, "ctr", &list, &n, &bad),
			FR_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(bad, 2);
	CU_ASSERT_EQUAL(list[0].epoch, e1);
	CU_ASSERT_EQUAL(list[1].epoch, e2);
	CU_ASSERT_EQUAL(list[2].epoch, e3);
	CU_ASSERT_EQUAL(list[2].t, 160);
	CU_ASSERT_STRING_EQUAL(list[2].reason, "third");
	free(list);

	/* Refused before anything is filed. */
	d = directive(500, 500, "t == r");
	CU_ASSERT_EQUAL(topo_admin_rollback_file(a, "ctr", &d, NULL, 0, &e1),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'r'"));
	d = directive(0, 5, "t == 0");
	CU_ASSERT_EQUAL(topo_admin_rollback_file(a, "ctr", &d, NULL, 0, &e1),
			FR_ERR_INVAL);
	d = directive(1, 5, "nope");
	CU_ASSERT_EQUAL(topo_admin_rollback_file(a, "nosuch", &d, NULL, 0,
						 &e1), FR_ERR_NOTFOUND);
	CU_ASSERT(errmsg_has("model 'nosuch' not found"));
	CU_ASSERT_EQUAL(topo_admin_rollbacks(a, "nosuch", &list, &n, NULL),
			FR_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(topo_admin_rollbacks(a, "c/d", &list, &n, NULL),
			FR_ERR_INVAL);
	CU_ASSERT_EQUAL(topo_admin_rollbacks(a, "ctr", &list, &n, NULL),
			FR_OK);
	CU_ASSERT_EQUAL(n, 3);
	free(list);

	/* A model made later, its first directive making rollbacks/. */
	create_model(a, "fresh");
	CU_ASSERT_FATAL(wait_for(has_fresh, NULL, 3000));
	CU_ASSERT_EQUAL(extra_of(&n2.s, "fresh")->nrb, 0);
	d = directive(7, 8, "first of fresh");
	CU_ASSERT_EQUAL_FATAL(topo_admin_rollback_file(a, "fresh", &d, NULL,
						       0, &e1), FR_OK);
	CU_ASSERT_EQUAL(e1, 1);   /* the first child of rollbacks/ */
	w.model = "fresh";
	w.n = 1;
	w.last_epoch = 1;
	CU_ASSERT(wait_for(both_have_rb, &w, 3000));
	topo_admin_close(a);
}

/* At most the newest TOPO_ROLLBACKS_MAX directives per model. */
static bool many_seen(void *arg)
{
	const struct seen_extra *e = extra_of(&n2.s, "many");
	uint64_t *last = arg;

	return e && e->nrb == TOPO_ROLLBACKS_MAX && e->nkept &&
	       e->rb[e->nkept - 1].epoch == *last;
}

static void test_directive_cap(void)
{
	enum { N = TOPO_ROLLBACKS_MAX + 6 };
	struct topo_admin *a = admin_open();
	struct topo_rollback d, *list;
	uint64_t ep = 0;
	uint32_t n;

	CU_ASSERT_FATAL(a != NULL);
	create_model(a, "many");
	for (int i = 0; i < N; i++) {
		d = directive(10 + (uint64_t)i, 1000, "one of many");
		CU_ASSERT_EQUAL_FATAL(topo_admin_rollback_file(a, "many", &d,
							       NULL, 0, &ep),
				      FR_OK);
	}
	CU_ASSERT_EQUAL(ep, N);
	CU_ASSERT(wait_for(many_seen, &ep, 5000));
	/* The oldest six are left out: seq 6 (epoch 7) is the first. */
	CU_ASSERT_EQUAL(extra_of(&n2.s, "many")->first_seq, 6);
	CU_ASSERT_EQUAL(extra_of(&n2.s, "many")->rb[7].t, 10 + N - 1);
	/* The admin client lists them all. */
	CU_ASSERT_EQUAL(topo_admin_rollbacks(a, "many", &list, &n, NULL),
			FR_OK);
	CU_ASSERT_EQUAL(n, N);
	free(list);
	topo_admin_close(a);
}

/* A thread filing d on model with state h (NULL: none) expected at
 * version; with go, once both racers are at the barrier. */
struct filer {
	struct topo_admin *a;
	const char *model;
	struct topo_rollback d;
	struct topo_health *h;
	int32_t version;
	pthread_barrier_t *go;
	enum fr_err err;
	uint64_t epoch;
	char msg[256];
};

static void *filer_main(void *arg)
{
	struct filer *f = arg;

	if (f->go)
		pthread_barrier_wait(f->go);
	f->err = topo_admin_rollback_file(f->a, f->model, &f->d, f->h,
					  f->version, &f->epoch);
	snprintf(f->msg, sizeof(f->msg), "%s", fr_errmsg());
	return NULL;
}

static uint32_t count_rollbacks(struct topo_admin *a, const char *model)
{
	struct topo_rollback *list;
	uint32_t n = 0;

	CU_ASSERT_EQUAL(topo_admin_rollbacks(a, model, &list, &n, NULL),
			FR_OK);
	free(list);
	return n;
}

static void test_state_cas(void)
{
	struct topo_admin *a1 = admin_open(), *a2 = admin_open();
	struct topo_health *h1 = calloc(1, sizeof(*h1));
	struct topo_health *h2 = calloc(1, sizeof(*h2));
	struct topo_health *got = calloc(1, sizeof(*got));
	struct topo_rollback d = directive(40, 50, "witness says so");
	struct filer r[2];
	pthread_barrier_t go;
	pthread_t th[2];
	int32_t v1, v2, v;
	uint32_t before;
	uint64_t ep;
	char path[256];

	CU_ASSERT_FATAL(a1 && a2 && h1 && h2 && got);
	/* Absent: healthy, no history, version -1. */
	CU_ASSERT_EQUAL_FATAL(topo_admin_state_get(a1, "ctr", h1, &v1), FR_OK);
	CU_ASSERT_EQUAL(v1, -1);
	CU_ASSERT_EQUAL(h1->state, TOPO_HEALTHY);
	CU_ASSERT_EQUAL(h1->nhistory, 0);
	CU_ASSERT_EQUAL_FATAL(topo_admin_state_get(a2, "ctr", h2, &v2), FR_OK);
	CU_ASSERT_EQUAL(v2, -1);
	CU_ASSERT_EQUAL(topo_admin_state_get(a1, "nosuch", got, &v),
			FR_ERR_NOTFOUND);

	/* Both act on what they read: exactly one files. */
	before = count_rollbacks(a1, "ctr");
	topo_health_push(h1, TOPO_CORRUPTED, "witness@a1", "auc -0.04", 10);
	topo_health_push(h2, TOPO_CORRUPTED, "sre@a2", "by hand", 11);
	CU_ASSERT_EQUAL_FATAL(topo_admin_rollback_file(a1, "ctr", &d, h1, v1,
						       &ep), FR_OK);
	CU_ASSERT_EQUAL(h1->epoch, ep);
	CU_ASSERT_EQUAL(topo_admin_rollback_file(a2, "ctr", &d, h2, v2, &ep),
			FR_ERR_BUSY);
	CU_ASSERT(errmsg_has("nothing was filed"));
	CU_ASSERT_EQUAL(count_rollbacks(a1, "ctr"), before + 1);
	CU_ASSERT_EQUAL_FATAL(topo_admin_state_get(a2, "ctr", got, &v), FR_OK);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(got->state, TOPO_CORRUPTED);
	CU_ASSERT_STRING_EQUAL(got->by, "witness@a1");
	CU_ASSERT_EQUAL(got->epoch, h1->epoch);

	/* The same from two threads at once, on an existing version. */
	pthread_barrier_init(&go, NULL, 2);
	before = count_rollbacks(a1, "ctr");
	for (int i = 0; i < 2; i++) {
		r[i] = (struct filer){ .a = i ? a2 : a1, .model = "ctr",
				       .d = directive(20, 30, "race"),
				       .h = calloc(1, sizeof(*r[i].h)),
				       .version = v, .go = &go };
		CU_ASSERT_FATAL(r[i].h != NULL);
		*r[i].h = *got;
		topo_health_push(r[i].h, TOPO_CORRUPTED, "racer", "race", 5);
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, filer_main,
					       &r[i]) == 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		free(r[i].h);
	}
	pthread_barrier_destroy(&go);
	CU_ASSERT((r[0].err == FR_OK) + (r[1].err == FR_OK) == 1);
	CU_ASSERT((r[0].err == FR_ERR_BUSY) + (r[1].err == FR_ERR_BUSY) == 1);
	if (r[0].err != FR_OK && r[0].err != FR_ERR_BUSY)
		fprintf(stderr, "\n  racer 0: %s\n", r[0].msg);
	if (r[1].err != FR_OK && r[1].err != FR_ERR_BUSY)
		fprintf(stderr, "\n  racer 1: %s\n", r[1].msg);
	CU_ASSERT_EQUAL(count_rollbacks(a1, "ctr"), before + 1);
	CU_ASSERT_EQUAL_FATAL(topo_admin_state_get(a1, "ctr", got, &v), FR_OK);
	CU_ASSERT_EQUAL(v, 1);
	CU_ASSERT_EQUAL(got->epoch, r[0].err == FR_OK ? r[0].epoch :
				    r[1].epoch);
	/* The history kept the earlier state. */
	CU_ASSERT_EQUAL(got->nhistory, 1);

	/* Plain compare-and-set. */
	topo_health_push(got, TOPO_HEALTHY, "sre", "rolled back", 20);
	CU_ASSERT_EQUAL(topo_admin_state_set(a1, "ctr", got, 0), FR_ERR_BUSY);
	CU_ASSERT(errmsg_has("changed since it was read"));
	CU_ASSERT_EQUAL(topo_admin_state_set(a1, "ctr", got, -1), FR_ERR_BUSY);
	CU_ASSERT_EQUAL(topo_admin_state_set(a1, "ctr", got, v), FR_OK);
	CU_ASSERT_EQUAL(topo_admin_state_set(a2, "ctr", got, v), FR_ERR_BUSY);
	CU_ASSERT_EQUAL_FATAL(topo_admin_state_get(a2, "ctr", h2, &v2), FR_OK);
	CU_ASSERT_EQUAL(v2, v + 1);
	CU_ASSERT_EQUAL(h2->state, TOPO_HEALTHY);
	CU_ASSERT_EQUAL(h2->nhistory, 2);
	CU_ASSERT_EQUAL(h2->history[0].state, TOPO_CORRUPTED);
	CU_ASSERT_EQUAL(topo_admin_state_set(a1, "nosuch", got, -1),
			FR_ERR_NOTFOUND);
	got->state = (enum topo_health_state)7;
	CU_ASSERT_EQUAL(topo_admin_state_set(a1, "ctr", got, v2),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'state'"));
	/* A state that does not parse: named. */
	path_of(path, sizeof(path), "models/fresh/state");
	CU_ASSERT_EQUAL(zoo_create(raw, path, "{nope", 5, &ZOO_OPEN_ACL_UNSAFE,
				   0, NULL, 0), ZOK);
	CU_ASSERT_EQUAL(topo_admin_state_get(a1, "fresh", got, &v),
			FR_ERR_CORRUPT);
	CU_ASSERT(errmsg_has("models/fresh/state: malformed health state"));
	free(h1);
	free(h2);
	free(got);
	topo_admin_close(a1);
	topo_admin_close(a2);
}

static struct topo_model_status status(const char *model, const char *role,
				       uint64_t epoch, uint64_t cut,
				       uint64_t horizon)
{
	struct topo_model_status s;

	memset(&s, 0, sizeof(s));
	snprintf(s.model, sizeof(s.model), "%s", model);
	snprintf(s.role, sizeof(s.role), "%s", role);
	s.epoch = epoch;
	s.cut = cut;
	s.horizon = horizon;
	return s;
}

/* Node `id`'s member znode, read with the admin client, says cut. */
struct want_status {
	struct topo_admin *a;
	uint32_t id;
	uint32_t nmodels;
	uint64_t cut;
};

static bool admin_sees_status(void *arg)
{
	struct want_status *w = arg;
	struct topo_member *m;
	uint32_t n;
	bool ok = false;

	if (topo_admin_members(w->a, &m, &n, NULL) != FR_OK)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (m[i].node_id == w->id)
			ok = m[i].nmodels == w->nmodels &&
			     (w->nmodels == 0 || m[i].models[0].cut == w->cut);
	free(m);
	return ok;
}

/* Wait (up to ms) until node id's znode shows nmodels statuses, the
 * first with cut. */
static bool admin_sees(struct want_status *w, uint32_t id, uint32_t nmodels,
		       uint64_t cut, uint64_t ms)
{
	w->id = id;
	w->nmodels = nmodels;
	w->cut = cut;
	return wait_for(admin_sees_status, w, ms);
}

static bool n3_sees_status_of_2(void *arg)
{
	const struct topo_member *m = member_of(&n3.s, 2);
	uint64_t *cut = arg;

	return m && m->nmodels == 2 && m->models[0].cut == *cut;
}

static struct tnode n13;

static bool n13_back_after_expiry(void *arg)
{
	(void)arg;
	return n13.s.expired_once && n13.s.connected &&
	       member_of(&n13.s, 13) != NULL;
}

static void test_status(void)
{
	struct topo_model_status st[TOPO_MEMBER_MODELS_MAX + 1];
	struct want_status w;
	struct topo_member *m;
	struct topo_stats stats;
	uint64_t cut;
	uint32_t n;

	CU_ASSERT_FATAL(n2.t && n3.t);
	w.a = admin_open();
	CU_ASSERT_FATAL(w.a != NULL);
	/* Refused: the caller learns at once, nothing is written. */
	for (int i = 0; i <= TOPO_MEMBER_MODELS_MAX; i++)
		st[i] = status("ctr", "serving", 0, 0, 0);
	CU_ASSERT_EQUAL(topo_set_status(n2.t, st, TOPO_MEMBER_MODELS_MAX + 1),
			FR_ERR_RANGE);
	st[0] = status("ctr", "leader", 0, 0, 0);
	CU_ASSERT_EQUAL(topo_set_status(n2.t, st, 1), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'role'"));
	st[0] = status("ctr", "serving", 0, 0, 0);
	st[1] = status("ctr", "serving", 0, 0, 0);
	CU_ASSERT_EQUAL(topo_set_status(n2.t, st, 2), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("appears twice"));

	/* A burst: the last one is what the znode says. */
	for (uint64_t i = 1; i <= 5; i++) {
		st[0] = status("ctr", "baseline", 2, 1000 + i, 900);
		st[1] = status("fresh", "canary", 1, 77, 0);
		CU_ASSERT_EQUAL(topo_set_status(n2.t, st, 2), FR_OK);
	}
	CU_ASSERT(admin_sees(&w, 2, 2, 1005, 3000));
	CU_ASSERT_EQUAL_FATAL(topo_admin_members(w.a, &m, &n, NULL), FR_OK);
	for (uint32_t i = 0; i < n; i++) {
		if (m[i].node_id != 2)
			continue;
		CU_ASSERT_STRING_EQUAL(m[i].models[0].model, "ctr");
		CU_ASSERT_STRING_EQUAL(m[i].models[0].role, "baseline");
		CU_ASSERT_EQUAL(m[i].models[0].epoch, 2);
		CU_ASSERT_EQUAL(m[i].models[0].horizon, 900);
		CU_ASSERT_STRING_EQUAL(m[i].models[1].model, "fresh");
		CU_ASSERT_STRING_EQUAL(m[i].models[1].role, "canary");
		CU_ASSERT_EQUAL(m[i].models[1].cut, 77);
	}
	free(m);
	/* Peers see it in their views too. */
	cut = 1005;
	CU_ASSERT(wait_for(n3_sees_status_of_2, &cut, 3000));
	/* Our own status is not someone overwriting our znode: the node
	 * keeps it (a write-back would restore the old data). */
	run_for(300);
	CU_ASSERT(admin_sees_status(&w));
	/* Cleared. */
	CU_ASSERT_EQUAL(topo_set_status(n2.t, NULL, 0), FR_OK);
	CU_ASSERT(admin_sees(&w, 2, 0, 0, 3000));

	/* Across a session expiry: the re-created member znode carries the
	 * newest status, set while the node was cut off. */
	start_proxied(&n13, "h", 13, false);
	st[0] = status("ctr", "canary", 1, 500, 400);
	CU_ASSERT_EQUAL(topo_set_status(n13.t, st, 1), FR_OK);
	CU_ASSERT(admin_sees(&w, 13, 1, 500, 10000));
	atomic_store(&px.cut, true);
	st[0] = status("ctr", "canary", 3, 600, 400);
	CU_ASSERT_EQUAL(topo_set_status(n13.t, st, 1), FR_OK);
	run_for(SESSION_MS + 1500);
	CU_ASSERT_EQUAL(owner_of("nodes/h/13"), -1);   /* expired */
	atomic_store(&px.cut, false);
	CU_ASSERT(wait_for(n13_back_after_expiry, NULL, SESSION_MS * 2));
	CU_ASSERT(admin_sees(&w, 13, 1, 600, 5000));
	topo_get_stats(n13.t, &stats);
	CU_ASSERT_EQUAL(stats.expirations, 1);
	stop(&n13);
	proxy_stop(&px);
	topo_admin_close(w.a);
}

struct want_roles {
	uint32_t n;
	uint32_t id0;
	const char *role0;
};

static bool roles_seen(const struct tnode *t, const struct want_roles *w)
{
	const struct seen_extra *e = extra_of(&t->s, "ctr");

	return e && e->nroles == w->n &&
	       (w->n == 0 || (e->roles[0].node_id == w->id0 &&
			      strcmp(e->roles[0].role, w->role0) == 0));
}

static bool both_see_roles(void *arg)
{
	return roles_seen(&n2, arg) && roles_seen(&n3, arg);
}

static void test_roles(void)
{
	struct topo_admin *a = admin_open();
	struct topo_role_override o[8];
	struct want_roles w;
	struct want_bad wb;
	const struct seen_extra *e;
	char path[256];
	uint32_t n;

	CU_ASSERT_FATAL(a != NULL);
	CU_ASSERT_EQUAL(topo_admin_roles_get(a, "ctr", o, 8, &n), FR_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 7, "baseline"), FR_OK);
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 3, "canary"), FR_OK);
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 3, "canary"), FR_OK);
	CU_ASSERT_EQUAL(topo_admin_roles_get(a, "ctr", o, 8, &n), FR_OK);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(o[0].node_id, 3);
	CU_ASSERT_STRING_EQUAL(o[0].role, "canary");
	CU_ASSERT_EQUAL(o[1].node_id, 7);
	CU_ASSERT_STRING_EQUAL(o[1].role, "baseline");
	CU_ASSERT_EQUAL(topo_admin_roles_get(a, "ctr", o, 1, &n),
			FR_ERR_RANGE);
	w = (struct want_roles){ 2, 3, "canary" };
	CU_ASSERT(wait_for(both_see_roles, &w, 3000));
	e = extra_of(&n2.s, "ctr");
	CU_ASSERT_EQUAL(e->roles[1].node_id, 7);
	CU_ASSERT_STRING_EQUAL(e->roles[1].role, "baseline");
	/* Changed and cleared. */
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 7, "serving"), FR_OK);
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 3, NULL), FR_OK);
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 3, NULL), FR_OK);
	w = (struct want_roles){ 1, 7, "serving" };
	CU_ASSERT(wait_for(both_see_roles, &w, 3000));
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 7, NULL), FR_OK);
	w = (struct want_roles){ 0, 0, NULL };
	CU_ASSERT(wait_for(both_see_roles, &w, 3000));
	/* Refused. */
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 3, "leader"),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("role 'leader' is unknown"));
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 0, "canary"),
			FR_ERR_INVAL);
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "nosuch", 3, "canary"),
			FR_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(topo_admin_roles_get(a, "nosuch", o, 8, &n),
			FR_ERR_NOTFOUND);

	/* Malformed: no overrides, counted; the admin client names it. */
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 4, "canary"), FR_OK);
	w = (struct want_roles){ 1, 4, "canary" };
	CU_ASSERT(wait_for(both_see_roles, &w, 3000));
	wb.bad2 = n2.s.bad;
	wb.bad3 = n3.s.bad;
	path_of(path, sizeof(path), "models/ctr/roles");
	CU_ASSERT_EQUAL(zoo_set(raw, path, "{\"4\":\"boss\"}", 12, -1), ZOK);
	CU_ASSERT(wait_for(bad_rose, &wb, 3000));
	w = (struct want_roles){ 0, 0, NULL };
	CU_ASSERT(wait_for(both_see_roles, &w, 3000));
	CU_ASSERT_EQUAL(topo_admin_roles_get(a, "ctr", o, 8, &n),
			FR_ERR_CORRUPT);
	CU_ASSERT(errmsg_has("models/ctr/roles: malformed role overrides"));
	CU_ASSERT_EQUAL(topo_admin_role_set(a, "ctr", 4, "canary"),
			FR_ERR_CORRUPT);
	/* Fixed by hand: back in the views. */
	CU_ASSERT_EQUAL(zoo_set(raw, path, "{\"5\":\"canary\"}", 14, -1), ZOK);
	w = (struct want_roles){ 1, 5, "canary" };
	CU_ASSERT(wait_for(both_see_roles, &w, 3000));
	CU_ASSERT(n2.s.connected && n2.s.leader && n2.s.sorted);
	topo_admin_close(a);
}

static int32_t raw_children(const char *rel)
{
	struct String_vector sv;
	char path[256];
	int32_t n;

	path_of(path, sizeof(path), rel);
	if (zoo_get_children(raw, path, 0, &sv) != ZOK)
		return -1;
	n = sv.count;
	deallocate_String_vector(&sv);
	return n;
}

static bool lossy_filed(void)
{
	return raw_children("models/lossy/rollbacks") >= 1;
}

static bool multi_eaten(void)
{
	return !atomic_load(&px.drop_multi);
}

/* Poll (no event loop: no node runs here) until cond() or ms pass. */
static bool poll_for(bool (*cond)(void), uint64_t ms)
{
	uint64_t end = fr_mono_ms() + ms;

	while (!cond() && fr_mono_ms() < end)
		usleep(10000);
	return cond();
}

/* The filing on th is stuck behind what the proxy does (*trick): cut
 * every connection for a moment, stop the trick, let the client
 * reconnect and finish.  Then exactly n directives are filed, the newest
 * with epoch n, and the state (at version n - 1) says so; f->version is
 * the state's version for the next filing. */
static void heal(struct filer *f, pthread_t th, atomic_bool *trick,
		 struct topo_admin *direct, uint32_t n, const char *what)
{
	struct topo_health *got = calloc(1, sizeof(*got));

	CU_ASSERT_FATAL(got != NULL);
	atomic_store(&px.cut, true);
	usleep(200000);
	atomic_store(trick, false);
	atomic_store(&px.cut, false);
	pthread_join(th, NULL);
	if (f->err != FR_OK)
		fprintf(stderr, "\n  %s: %s\n", what, f->msg);
	CU_ASSERT_EQUAL(f->err, FR_OK);
	CU_ASSERT_EQUAL(f->epoch, n);
	CU_ASSERT_EQUAL(count_rollbacks(direct, "lossy"), n);
	CU_ASSERT_EQUAL_FATAL(topo_admin_state_get(direct, "lossy", got,
						   &f->version), FR_OK);
	CU_ASSERT_EQUAL(f->version, (int32_t)n - 1);
	CU_ASSERT_EQUAL(got->epoch, n);
	CU_ASSERT_EQUAL(got->state, TOPO_CORRUPTED);
	free(got);
}

/* A filing whose reply is lost (rule 1): the multi happened but the
 * client saw CONNECTIONLOSS; and one whose request never arrived.  Both
 * end with exactly one directive and the right epoch. */
static void test_file_connection_loss(void)
{
	struct topo_admin *direct = admin_open(), *a;
	struct topo_health *got = calloc(1, sizeof(*got));
	struct filer f;
	pthread_t th;
	char hosts[64];
	enum fr_err err;

	CU_ASSERT_FATAL(direct && got);
	create_model(direct, "lossy");
	proxy_hosts(hosts, sizeof(hosts));
	a = topo_admin_connect(hosts, cluster, 10000, &err);
	CU_ASSERT_FATAL(a != NULL);
	f = (struct filer){ .a = a, .model = "lossy", .h = got,
			    .d = directive(70, 80, "lossy link") };
	CU_ASSERT_EQUAL_FATAL(topo_admin_state_get(a, "lossy", f.h,
						   &f.version), FR_OK);
	CU_ASSERT_EQUAL(f.version, -1);
	topo_health_push(f.h, TOPO_CORRUPTED, "witness", "lossy", 1);

	/* The reply is lost: ZooKeeper filed it, the client cannot know
	 * until it looks. */
	atomic_store(&px.drop_after_multi, true);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, filer_main, &f) == 0);
	CU_ASSERT(poll_for(lossy_filed, 3000));
	CU_ASSERT_EQUAL(raw_children("models/lossy/rollbacks"), 1);
	CU_ASSERT(atomic_load(&px.drop_replies));
	heal(&f, th, &px.drop_replies, direct, 1, "lost reply");

	/* The request is lost: nothing was filed; the same multi again. */
	f.err = FR_ERR_INVAL;
	atomic_store(&px.drop_multi, true);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, filer_main, &f) == 0);
	CU_ASSERT(poll_for(multi_eaten, 3000));
	usleep(100000);
	CU_ASSERT_EQUAL(raw_children("models/lossy/rollbacks"), 1);
	heal(&f, th, &px.mute, direct, 2, "lost request");
	topo_admin_close(a);
	proxy_stop(&px);
	topo_admin_close(direct);
	free(got);
}

static void test_bad_config(void)
{
	struct topo_config c = config(zk_hosts, "a", 9, 1);
	struct tnode n;
	enum fr_err err;

	snprintf(c.cluster, sizeof(c.cluster), "a/b");
	CU_ASSERT_PTR_NULL(topo_new(base, &c, view_cb, &n, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'cluster'"));

	c = config(zk_hosts, "a", 9, 1);
	c.session_timeout_ms = 999;
	CU_ASSERT_PTR_NULL(topo_new(base, &c, view_cb, &n, &err));
	CU_ASSERT(errmsg_has("field 'session_timeout_ms'"));

	c = config(zk_hosts, "a", 9, 1);
	c.hosts[0] = '\0';
	CU_ASSERT_PTR_NULL(topo_new(base, &c, view_cb, &n, &err));
	CU_ASSERT(errmsg_has("field 'hosts'"));

	c = config(zk_hosts, "a", 0, 1);
	CU_ASSERT_PTR_NULL(topo_new(base, &c, view_cb, &n, &err));
	CU_ASSERT(errmsg_has("field 'id'"));

	c = config(zk_hosts, "a b", 9, 1);
	CU_ASSERT_PTR_NULL(topo_new(base, &c, view_cb, &n, &err));
	CU_ASSERT(errmsg_has("field 'dc'"));

	c = config(zk_hosts, "a", 9, 1);
	CU_ASSERT_PTR_NULL(topo_new(NULL, &c, view_cb, &n, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	topo_free(NULL);
}

static void test_teardown(void)
{
	uint64_t t0 = fr_mono_ms();

	stop(&n2);
	stop(&n3);
	CU_ASSERT(fr_mono_ms() - t0 < 3000);
	CU_ASSERT_EQUAL(owner_of("nodes/a/2"), -1);
	CU_ASSERT_EQUAL(owner_of("nodes/b/3"), -1);
	CU_ASSERT_EQUAL(owner_of("leaders/a"), -1);
}

int main(void)
{
	static const struct fr_unit_test tests[] = {
		{ "bad config", test_bad_config },
		{ "members and one leader per dc", test_members_and_leaders },
		{ "leader leaves, next one takes over", test_failover },
		{ "models, malformed znodes", test_models_and_bad_znodes },
		{ "restarted node replaces its ghost", test_ghost_replaced },
		{ "new generation takes over from a live old one",
		  test_generation_takeover },
		{ "at most 256 models in a view", test_model_cap },
		{ "znodes changed by others are put right",
		  test_znodes_put_right },
		{ "rollback directives in every view", test_directives },
		{ "at most 64 directives per model in a view",
		  test_directive_cap },
		{ "state compare-and-set, one filer wins", test_state_cas },
		{ "filing across a lost connection", test_file_connection_loss },
		{ "status in the member znode, across expiry", test_status },
		{ "role overrides", test_roles },
		{ "self-demotion while cut off, expiry", test_self_demotion },
		{ "self-demotion after a silent cut", test_silent_demotion },
		{ "teardown", test_teardown },
	};
	int rc;

	zk_hosts = getenv("FRESHET_ZK");
	if (!zk_hosts || !*zk_hosts) {
		fprintf(stderr, "FRESHET_ZK is not set: skipping (run through tests/integration/zk.py)\n");
		return 77;
	}
	fr_log_set_level(getenv("FRESHET_TEST_VERBOSE") ? FR_LOG_DEBUG :
			 FR_LOG_ERROR);
	snprintf(cluster, sizeof(cluster), "it%ld", (long)getpid());
	/* The test's own session logs like the nodes' (topo_new sets the
	 * same level again). */
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	base = event_base_new();
	raw = raw_connect();
	if (!base || !raw) {
		fprintf(stderr, "cannot connect to ZooKeeper at %s\n", zk_hosts);
		return FR_UNIT_EXIT_SETUP;
	}
	rc = fr_unit_main("topology_zk", NULL, NULL, tests,
			  FR_UNIT_COUNT(tests));
	stop(&n1);
	stop(&n2);
	stop(&n3);
	zookeeper_close(raw);
	event_base_free(base);
	return rc;
}
