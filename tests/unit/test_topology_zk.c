/*
 * test_topology_zk.c — topology/topo.c against a real ZooKeeper (the one
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
 * persistent leaders/<dc> or candidate not blocking a DC; at most 256 models in a
 * view; self-demotion on the loop's timer while the session is cut off
 * (through a small TCP proxy in this file), by a reset or silently, about
 * 2/3 of the session timeout after the last answer, and leadership
 * regained, same epoch, when the same session comes back; topo_new
 * refusing bad config.
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

static const char *zk_hosts;
static char cluster[32];
static struct event_base *base;
static zhandle_t *raw;            /* the test's own session */

/* ----------------------------------------------------------------------
 * What each node last saw
 * -------------------------------------------------------------------- */

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
};

struct tnode {
	struct topo *t;
	struct seen s;
};

static void view_cb(const struct topo_view *v, void *arg)
{
	struct seen *s = &((struct tnode *)arg)->s;

	s->views++;
	s->connected = v->connected;
	s->leader = v->leader;
	s->expired_once = v->expired_once;
	s->epoch = v->epoch;
	s->bad = v->bad_znodes;
	s->timeout_ms = v->session_timeout_ms;
	s->sorted = true;
	CU_ASSERT_FATAL(v->nmembers <= 16 && v->nleaders <= 8 &&
			v->nmodels <= 8);
	s->nmembers = v->nmembers;
	s->nleaders = v->nleaders;
	s->nmodels = v->nmodels;
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
		memcpy(s->models[i], v->models[i].name, sizeof(s->models[i]));
		s->model_shards[i] = v->models[i].shards;
		if (i && strcmp(v->models[i - 1].name, v->models[i].name) >= 0)
			s->sorted = false;
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
	struct shard_model_def d;
	struct want_bad w;
	struct topo_stats st;
	enum fr_err err;
	char *json;

	CU_ASSERT_FATAL(n2.t && n3.t);
	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "ctr");
	d.priority = 10;
	d.shards = 64;
	d.ntables = 1;
	snprintf(d.tables[0].name, sizeof(d.tables[0].name), "users");
	d.tables[0].rows = 1000;
	d.tables[0].dim = 8;
	d.tables[0].dtype = SHARD_F32;
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
	pthread_t thread;
};

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
	struct topo_config c;
	struct topo_stats st;
	char hosts[64];
	uint64_t epoch, t_cut, took;

	CU_ASSERT_FATAL(proxy_start(&px));
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%u", px.port);
	/* Alone in dc "c", so it leads at once. */
	c = config(hosts, "c", 6, 1);
	start(&n6, &c);
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
	struct topo_config c;
	struct topo_stats st;
	char hosts[64];
	uint64_t t_cut, took, to;

	CU_ASSERT_FATAL(proxy_start(&px));
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%u", px.port);
	c = config(hosts, "e", 9, 1);
	start(&n9, &c);
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
