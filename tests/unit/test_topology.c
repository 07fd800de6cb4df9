/*
 * test_topology.c — CUnit suite for topology/'s pure parts (codec.c): the
 * member, leader and model JSON round-trip; every field rule is refused
 * with a detail naming the field; garbage, trailing bytes, non-objects,
 * empty input, duplicate keys and input that is not NUL-terminated are
 * refused; unknown keys are ignored; a failed decode leaves *out alone;
 * and a deterministic mutation loop checks that whatever a decoder
 * accepts re-encodes to something it accepts again, unchanged.  Election
 * child names are parsed and ranked with gaps, strangers and absence.
 * The same for what issue #6 added: a member's per-model status
 * ("models"), rollback directives and their child names, health states
 * (with topo_health_push's history), role overrides.
 *
 * Not here: ZooKeeper sessions (test_topology_zk.c, against a real server).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "topology/topology.h"
#include "testutil.h"
#include "unit_main.h"

/* ----------------------------------------------------------------------
 * Helpers
 * -------------------------------------------------------------------- */

static struct topo_member sample_member(void)
{
	struct topo_member m;

	memset(&m, 0, sizeof(m));
	m.node_id = 3;
	snprintf(m.dc, sizeof(m.dc), "dc1");
	snprintf(m.addr, sizeof(m.addr), "10.0.0.3:7001");
	snprintf(m.admin, sizeof(m.admin), "[::1]:8001");
	snprintf(m.roles, sizeof(m.roles), "serving,candidate");
	m.generation = 7;
	return m;
}

static struct shard_model_def sample_model(void)
{
	struct shard_model_def d;

	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "ctr");
	d.priority = 10;
	d.shards = 64;
	d.ntables = 2;
	snprintf(d.tables[0].name, sizeof(d.tables[0].name), "users");
	d.tables[0].rows = 1000000;
	d.tables[0].dim = 64;
	d.tables[0].dtype = SHARD_F32;
	snprintf(d.tables[1].name, sizeof(d.tables[1].name), "items.v2");
	d.tables[1].rows = 5;
	d.tables[1].dim = 1;
	d.tables[1].dtype = SHARD_F16;
	return d;
}

static bool member_eq(const struct topo_member *a, const struct topo_member *b)
{
	if (a->node_id != b->node_id || strcmp(a->dc, b->dc) != 0 ||
	    strcmp(a->addr, b->addr) != 0 ||
	    strcmp(a->admin, b->admin) != 0 ||
	    strcmp(a->roles, b->roles) != 0 ||
	    a->generation != b->generation || a->nmodels != b->nmodels)
		return false;
	for (uint32_t i = 0; i < a->nmodels; i++)
		if (strcmp(a->models[i].model, b->models[i].model) != 0 ||
		    strcmp(a->models[i].role, b->models[i].role) != 0 ||
		    a->models[i].epoch != b->models[i].epoch ||
		    a->models[i].cut != b->models[i].cut ||
		    a->models[i].horizon != b->models[i].horizon)
			return false;
	return true;
}

static bool leader_eq(const struct topo_leader *a, const struct topo_leader *b)
{
	return a->node_id == b->node_id && strcmp(a->dc, b->dc) == 0 &&
	       strcmp(a->addr, b->addr) == 0 && a->epoch == b->epoch &&
	       a->generation == b->generation;
}

static bool model_eq(const struct shard_model_def *a,
		     const struct shard_model_def *b)
{
	if (strcmp(a->name, b->name) || a->priority != b->priority ||
	    a->shards != b->shards || a->ntables != b->ntables)
		return false;
	for (uint32_t i = 0; i < a->ntables; i++)
		if (strcmp(a->tables[i].name, b->tables[i].name) ||
		    a->tables[i].rows != b->tables[i].rows ||
		    a->tables[i].dim != b->tables[i].dim ||
		    a->tables[i].dtype != b->tables[i].dtype)
			return false;
	return true;
}

/* A malloc'd copy of s without its NUL, so ASan sees a read past it. */
static char *exact(const char *s, size_t *len)
{
	char *p;

	*len = strlen(s);
	p = malloc(*len ? *len : 1);
	CU_ASSERT_FATAL(p != NULL);
	memcpy(p, s, *len);
	return p;
}

static enum fr_err member_dec(const char *s, struct topo_member *m)
{
	size_t len;
	char *p = exact(s, &len);
	enum fr_err err = topo_member_decode(p, len, m);

	free(p);
	return err;
}

static enum fr_err leader_dec(const char *s, struct topo_leader *l)
{
	size_t len;
	char *p = exact(s, &len);
	enum fr_err err = topo_leader_decode(p, len, l);

	free(p);
	return err;
}

static enum fr_err model_dec(const char *name, const char *s,
			     struct shard_model_def *d)
{
	size_t len;
	char *p = exact(s, &len);
	enum fr_err err = topo_model_decode(name, p, len, d);

	free(p);
	return err;
}

struct bad_case {
	const char *json;
	enum fr_err err;
	const char *needle;   /* must appear in the detail */
};

/* ----------------------------------------------------------------------
 * Member
 * -------------------------------------------------------------------- */

static void test_member_roundtrip(void)
{
	struct topo_member m = sample_member(), back;
	const char *addrs[] = { "h:1", "host-1.example.com:65535",
				"[fe80::1%eth0]:7001", "127.0.0.1:7001" };
	const char *roles[] = { "", "serving", "a,b,c" };
	enum fr_err err;
	char *s;

	for (size_t i = 0; i < FR_UNIT_COUNT(addrs); i++) {
		for (size_t r = 0; r < FR_UNIT_COUNT(roles); r++) {
			snprintf(m.addr, sizeof(m.addr), "%s", addrs[i]);
			snprintf(m.roles, sizeof(m.roles), "%s", roles[r]);
			m.generation = i == 0 ? 0 : (uint64_t)INT64_MAX;
			m.node_id = i == 0 ? 1 : 4294967294u;
			s = topo_member_encode(&m, &err);
			CU_ASSERT_FATAL(s != NULL);
			CU_ASSERT_EQUAL(err, FR_OK);
			memset(&back, 0xab, sizeof(back));
			CU_ASSERT_EQUAL(member_dec(s, &back), FR_OK);
			CU_ASSERT(member_eq(&m, &back));
			free(s);
		}
	}
}

static void test_member_documented(void)
{
	struct topo_member m;

	CU_ASSERT_EQUAL_FATAL(member_dec(
		"{\"id\":3,\"dc\":\"dc1\",\"addr\":\"10.0.0.3:7001\","
		"\"admin\":\"10.0.0.3:8001\",\"roles\":[\"serving\"],"
		"\"generation\":7}", &m), FR_OK);
	CU_ASSERT_EQUAL(m.node_id, 3);
	CU_ASSERT_STRING_EQUAL(m.dc, "dc1");
	CU_ASSERT_STRING_EQUAL(m.addr, "10.0.0.3:7001");
	CU_ASSERT_STRING_EQUAL(m.admin, "10.0.0.3:8001");
	CU_ASSERT_STRING_EQUAL(m.roles, "serving");
	CU_ASSERT_EQUAL(m.generation, 7);

	/* Unknown keys (a newer writer) are ignored, whatever their type. */
	CU_ASSERT_EQUAL(member_dec(
		"{\"zone\":{\"x\":[1,2]},\"id\":3,\"dc\":\"dc1\","
		"\"addr\":\"a:1\",\"admin\":\"b:2\",\"roles\":[],"
		"\"generation\":0,\"weight\":1.5}", &m), FR_OK);
	CU_ASSERT_STRING_EQUAL(m.roles, "");
	/* Whitespace around the object is fine. */
	CU_ASSERT_EQUAL(member_dec(
		" \n{\"id\":3,\"dc\":\"dc1\",\"addr\":\"a:1\",\"admin\":\"b:2\","
		"\"roles\":[\"x\",\"y\"],\"generation\":0}\n", &m), FR_OK);
	CU_ASSERT_STRING_EQUAL(m.roles, "x,y");
}

#define MEMBER(id, dc, addr, admin, roles, gen)                          \
	"{\"id\":" id ",\"dc\":" dc ",\"addr\":" addr ",\"admin\":" admin   \
	",\"roles\":" roles ",\"generation\":" gen "}"
#define GOOD_ROLES "[\"serving\"]"

static void test_member_bad_fields(void)
{
	static const struct bad_case cases[] = {
		{ MEMBER("0", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'id': 0 is out of range, expected an integer 1..4294967294" },
		{ MEMBER("4294967295", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'id'" },
		{ MEMBER("-1", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'id'" },
		{ MEMBER("\"3\"", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "member: field 'id': expected an integer" },
		{ MEMBER("3.0", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'id': expected an integer" },
		{ MEMBER("3", "\"\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc': empty" },
		{ MEMBER("3", "\"a b\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc': 'a b' has byte 0x20 at 1" },
		{ MEMBER("3", "\"a/b\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc'" },
		{ MEMBER("3", "\"0123456789012345678901234567890123456789012345678901234567890123\"",
			 "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc': 64 bytes is too long" },
		{ MEMBER("3", "7", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc': expected a string" },
		{ MEMBER("3", "null", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc': expected a string" },
		{ MEMBER("3", "\"a\"", "\"h\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'addr': 'h' has no port" },
		{ MEMBER("3", "\"a\"", "\":1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'addr': ':1' has an empty host" },
		{ MEMBER("3", "\"a\"", "\"h:0\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'addr': 'h:0': port is out of range" },
		{ MEMBER("3", "\"a\"", "\"h:65536\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "port is out of range" },
		{ MEMBER("3", "\"a\"", "\"h:123456\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "bad port" },
		{ MEMBER("3", "\"a\"", "\"h:\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "bad port" },
		{ MEMBER("3", "\"a\"", "\"h:1x\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "port is not a number" },
		{ MEMBER("3", "\"a\"", "\"h:+1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "port is not a number" },
		{ MEMBER("3", "\"a\"", "\"::1:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "more than one ':'" },
		{ MEMBER("3", "\"a\"", "\"[::1]80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "no ']:PORT'" },
		{ MEMBER("3", "\"a\"", "\"[zz]:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "invalid IPv6" },
		{ MEMBER("3", "\"a\"", "\"[fe80::1%]:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "invalid IPv6" },
		{ MEMBER("3", "\"a\"", "\"1.2.3.256:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "invalid IPv4" },
		{ MEMBER("3", "\"a\"", "\"h\\u00e9:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "byte 0xc3 in the host" },
		{ MEMBER("3", "\"a\"", "\"h\\u0000:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_CORRUPT, "member: not a JSON object" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'admin': 'h' has no port" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "[]", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'admin': expected a string" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", "\"serving\"", "1"),
		  FR_ERR_INVAL, "field 'roles': expected an array" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", "[1]", "1"),
		  FR_ERR_INVAL, "field 'roles': element 0 is not a string" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", "[\"a\",\"\"]", "1"),
		  FR_ERR_INVAL, "field 'roles': element 1 is empty" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", "[\"Serving\"]", "1"),
		  FR_ERR_INVAL, "field 'roles': element 0 has byte 0x53" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", "[\"a,b\"]", "1"),
		  FR_ERR_INVAL, "field 'roles': element 0 has byte 0x2c" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"",
			 "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"cc\"]", "1"),
		  FR_ERR_INVAL, "field 'roles': too long" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "-1"),
		  FR_ERR_INVAL, "field 'generation': -1 is out of range" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1e3"),
		  FR_ERR_INVAL, "field 'generation': expected an integer" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "true"),
		  FR_ERR_INVAL, "field 'generation': expected an integer" },
		/* Past int64: jansson refuses the number itself. */
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES,
			 "18446744073709551616"),
		  FR_ERR_CORRUPT, "not a JSON object" },
		{ "{\"dc\":\"a\",\"addr\":\"h:1\",\"admin\":\"h:2\",\"roles\":[],\"generation\":1}",
		  FR_ERR_INVAL, "member: field 'id': missing" },
		{ "{\"id\":1,\"addr\":\"h:1\",\"admin\":\"h:2\",\"roles\":[],\"generation\":1}",
		  FR_ERR_INVAL, "field 'dc': missing" },
		{ "{\"id\":1,\"dc\":\"a\",\"admin\":\"h:2\",\"roles\":[],\"generation\":1}",
		  FR_ERR_INVAL, "field 'addr': missing" },
		{ "{\"id\":1,\"dc\":\"a\",\"addr\":\"h:1\",\"roles\":[],\"generation\":1}",
		  FR_ERR_INVAL, "field 'admin': missing" },
		{ "{\"id\":1,\"dc\":\"a\",\"addr\":\"h:1\",\"admin\":\"h:2\",\"generation\":1}",
		  FR_ERR_INVAL, "field 'roles': missing" },
		{ "{\"id\":1,\"dc\":\"a\",\"addr\":\"h:1\",\"admin\":\"h:2\",\"roles\":[]}",
		  FR_ERR_INVAL, "field 'generation': missing" },
		/* Two values for one key: readers could disagree. */
		{ "{\"id\":1,\"id\":2,\"dc\":\"a\",\"addr\":\"h:1\",\"admin\":\"h:2\",\"roles\":[],\"generation\":1}",
		  FR_ERR_CORRUPT, "duplicate" },
	};
	struct topo_member m, before;

	memset(&before, 0x5a, sizeof(before));
	for (size_t i = 0; i < FR_UNIT_COUNT(cases); i++) {
		enum fr_err err;

		m = before;
		err = member_dec(cases[i].json, &m);
		if (err != cases[i].err)
			fprintf(stderr, "\n  case %zu: got %d for %s\n", i,
				(int)err, cases[i].json);
		CU_ASSERT_EQUAL(err, cases[i].err);
		CU_ASSERT(errmsg_has(cases[i].needle));
		CU_ASSERT(memcmp(&m, &before, sizeof(m)) == 0);
	}
}

static void test_member_encode_refuses(void)
{
	struct topo_member m;
	enum fr_err err;

	m = sample_member();
	m.node_id = 0;
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'id'"));

	m = sample_member();
	m.node_id = UINT32_MAX;
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("field 'id'"));

	m = sample_member();
	memset(m.dc, 'x', sizeof(m.dc));   /* not terminated */
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("field 'dc'"));

	m = sample_member();
	snprintf(m.addr, sizeof(m.addr), "nohost");
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("field 'addr'"));

	m = sample_member();
	snprintf(m.admin, sizeof(m.admin), "h:99999");
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("field 'admin'"));

	m = sample_member();
	snprintf(m.roles, sizeof(m.roles), "a,,b");
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("field 'roles'"));
	snprintf(m.roles, sizeof(m.roles), "a,");
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	snprintf(m.roles, sizeof(m.roles), "A");
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));

	m = sample_member();
	m.generation = (uint64_t)INT64_MAX + 1;
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("field 'generation'"));

	CU_ASSERT_PTR_NULL(topo_member_encode(NULL, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
}

/* Whatever is not exactly one JSON object is FR_ERR_CORRUPT, for all
 * three decoders. */
static void test_garbage(void)
{
	static const char *const junk[] = {
		"", " ", "{", "{garbage", "[]", "5", "\"x\"", "null",
		"{}x", "{} {}", "{\"id\":1,}", "\xff\xfe{}", "{\"a\":\"\xc3\"}",
	};
	struct topo_member m;
	struct topo_leader l;
	struct shard_model_def d;

	for (size_t i = 0; i < FR_UNIT_COUNT(junk); i++) {
		CU_ASSERT_EQUAL(member_dec(junk[i], &m), FR_ERR_CORRUPT);
		CU_ASSERT(errmsg_has("member: "));
		CU_ASSERT_EQUAL(leader_dec(junk[i], &l), FR_ERR_CORRUPT);
		CU_ASSERT(errmsg_has("leader: "));
		CU_ASSERT_EQUAL(model_dec("ctr", junk[i], &d), FR_ERR_CORRUPT);
		CU_ASSERT(errmsg_has("model 'ctr': "));
	}
	/* A NUL byte inside the buffer, and a NULL buffer. */
	CU_ASSERT_EQUAL(topo_member_decode("{}\0{}", 5, &m), FR_ERR_CORRUPT);
	CU_ASSERT_EQUAL(topo_member_decode(NULL, 0, &m), FR_ERR_CORRUPT);
	CU_ASSERT(errmsg_has("empty"));
	/* An object of the right shape but none of the fields. */
	CU_ASSERT_EQUAL(member_dec("{}", &m), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(leader_dec("{}", &l), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(model_dec("ctr", "{}", &d), FR_ERR_INVAL);
	/* Only the first len bytes count. */
	{
		const char *s =
			"{\"id\":3,\"dc\":\"dc1\",\"addr\":\"a:1\",\"admin\":\"b:2\","
			"\"roles\":[],\"generation\":0}trailing";
		size_t n = (size_t)(strstr(s, "trailing") - s);

		CU_ASSERT_EQUAL(topo_member_decode(s, n, &m), FR_OK);
		CU_ASSERT_EQUAL(topo_member_decode(s, n + 1, &m),
				FR_ERR_CORRUPT);
	}
}

/* ----------------------------------------------------------------------
 * Leader
 * -------------------------------------------------------------------- */

static void test_leader(void)
{
	static const struct bad_case cases[] = {
		{ "{\"id\":0,\"dc\":\"a\",\"addr\":\"h:1\",\"epoch\":1,\"generation\":1}",
		  FR_ERR_INVAL, "leader: field 'id'" },
		{ "{\"id\":1,\"dc\":\"a!\",\"addr\":\"h:1\",\"epoch\":1,\"generation\":1}",
		  FR_ERR_INVAL, "leader: field 'dc'" },
		{ "{\"id\":1,\"dc\":\"a\",\"addr\":\"h\",\"epoch\":1,\"generation\":1}",
		  FR_ERR_INVAL, "leader: field 'addr'" },
		{ "{\"id\":1,\"dc\":\"a\",\"addr\":\"h:1\",\"epoch\":-5,\"generation\":1}",
		  FR_ERR_INVAL, "leader: field 'epoch'" },
		{ "{\"id\":1,\"dc\":\"a\",\"addr\":\"h:1\",\"epoch\":\"5\",\"generation\":1}",
		  FR_ERR_INVAL, "leader: field 'epoch': expected an integer" },
		{ "{\"id\":1,\"dc\":\"a\",\"addr\":\"h:1\",\"generation\":1}",
		  FR_ERR_INVAL, "leader: field 'epoch': missing" },
		{ "{\"id\":1,\"dc\":\"a\",\"addr\":\"h:1\",\"epoch\":1,\"generation\":[]}",
		  FR_ERR_INVAL, "leader: field 'generation'" },
	};
	struct topo_leader l, back, before;
	enum fr_err err;
	char *s;

	memset(&l, 0, sizeof(l));
	l.node_id = 3;
	snprintf(l.dc, sizeof(l.dc), "dc1");
	snprintf(l.addr, sizeof(l.addr), "10.0.0.3:7001");
	l.epoch = 12;
	l.generation = 7;
	s = topo_leader_encode(&l, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_EQUAL(leader_dec(s, &back), FR_OK);
	CU_ASSERT(leader_eq(&l, &back));
	free(s);

	CU_ASSERT_EQUAL(leader_dec(
		"{\"id\":3,\"dc\":\"dc1\",\"addr\":\"10.0.0.3:7001\",\"epoch\":12,"
		"\"generation\":7,\"future\":true}", &back), FR_OK);
	CU_ASSERT(leader_eq(&l, &back));

	memset(&before, 0x5a, sizeof(before));
	for (size_t i = 0; i < FR_UNIT_COUNT(cases); i++) {
		back = before;
		CU_ASSERT_EQUAL(leader_dec(cases[i].json, &back), cases[i].err);
		CU_ASSERT(errmsg_has(cases[i].needle));
		CU_ASSERT(memcmp(&back, &before, sizeof(back)) == 0);
	}

	l.epoch = (uint64_t)INT64_MAX + 1;
	CU_ASSERT_PTR_NULL(topo_leader_encode(&l, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'epoch'"));
	l.epoch = 1;
	l.node_id = 0;
	CU_ASSERT_PTR_NULL(topo_leader_encode(&l, &err));
	CU_ASSERT(errmsg_has("field 'id'"));
	CU_ASSERT_PTR_NULL(topo_leader_encode(NULL, &err));
}

/* ----------------------------------------------------------------------
 * Model
 * -------------------------------------------------------------------- */

static void test_model_roundtrip(void)
{
	struct shard_model_def d = sample_model(), back;
	enum fr_err err;
	char *s;

	s = topo_model_encode(&d, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_EQUAL(err, FR_OK);
	memset(&back, 0xab, sizeof(back));
	CU_ASSERT_EQUAL(model_dec("ctr", s, &back), FR_OK);
	CU_ASSERT(model_eq(&d, &back));
	/* The JSON names the model: another znode name is refused. */
	CU_ASSERT_EQUAL(model_dec("ctr2", s, &back), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("model 'ctr2': field 'name': 'ctr' does not match the znode name"));
	free(s);

	/* The most tables, the most shards, priority at its top. */
	d.ntables = SHARD_TABLES_MAX;
	d.shards = SHARD_SHARDS_MAX;
	d.priority = UINT32_MAX;
	for (uint32_t i = 0; i < d.ntables; i++) {
		snprintf(d.tables[i].name, sizeof(d.tables[i].name), "t%u", i);
		d.tables[i].rows = 1 + i;
		d.tables[i].dim = SHARD_DIM_MAX;
		d.tables[i].dtype = (i & 1) ? SHARD_F16 : SHARD_F32;
	}
	s = topo_model_encode(&d, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_EQUAL(model_dec("ctr", s, &back), FR_OK);
	CU_ASSERT(model_eq(&d, &back));
	free(s);

	CU_ASSERT_EQUAL(model_dec("ctr",
		"{\"name\":\"ctr\",\"priority\":10,\"shards\":64,\"tables\":"
		"[{\"name\":\"users\",\"rows\":1000000,\"dim\":64,\"dtype\":\"f32\","
		"\"note\":\"x\"}],\"state\":{}}", &back), FR_OK);
	CU_ASSERT_EQUAL(back.ntables, 1);
	CU_ASSERT_EQUAL(back.shards, 64);
	CU_ASSERT_EQUAL(back.tables[0].dtype, SHARD_F32);
}

#define TBL "{\"name\":\"t\",\"rows\":1,\"dim\":1,\"dtype\":\"f32\"}"
#define MODEL(prio, shards, tables)                                    \
	"{\"name\":\"ctr\",\"priority\":" prio ",\"shards\":" shards     \
	",\"tables\":" tables "}"

static void test_model_bad_fields(void)
{
	static const struct bad_case cases[] = {
		{ MODEL("10", "\"64\"", "[" TBL "]"), FR_ERR_INVAL,
		  "model 'ctr': field 'shards': expected an integer 1..1048576" },
		{ MODEL("10", "0", "[" TBL "]"), FR_ERR_INVAL,
		  "model 'ctr': field 'shards': 0 is out of range, expected an integer 1..1048576" },
		{ MODEL("10", "1048577", "[" TBL "]"), FR_ERR_INVAL,
		  "field 'shards'" },
		{ MODEL("-1", "4", "[" TBL "]"), FR_ERR_INVAL,
		  "model 'ctr': field 'priority'" },
		{ MODEL("4294967296", "4", "[" TBL "]"), FR_ERR_INVAL,
		  "field 'priority'" },
		{ MODEL("1", "4", "[]"), FR_ERR_INVAL,
		  "field 'tables': expected an array of 1..64 tables" },
		{ MODEL("1", "4", "{}"), FR_ERR_INVAL, "field 'tables'" },
		{ MODEL("1", "4", "[" TBL ",7]"), FR_ERR_INVAL,
		  "model 'ctr': table 1: expected an object" },
		{ MODEL("1", "4", "[{\"rows\":1,\"dim\":1,\"dtype\":\"f32\"}]"),
		  FR_ERR_INVAL, "model 'ctr': table 0: field 'name': missing" },
		{ MODEL("1", "4", "[{\"name\":\"a b\",\"rows\":1,\"dim\":1,\"dtype\":\"f32\"}]"),
		  FR_ERR_INVAL, "table 0: field 'name': 'a b' has byte 0x20" },
		{ MODEL("1", "4", "[{\"name\":\"t\",\"rows\":0,\"dim\":1,\"dtype\":\"f32\"}]"),
		  FR_ERR_INVAL, "table 0: field 'rows'" },
		{ MODEL("1", "4", "[{\"name\":\"t\",\"rows\":1,\"dim\":65537,\"dtype\":\"f32\"}]"),
		  FR_ERR_INVAL, "table 0: field 'dim': 65537 is out of range, expected an integer 1..65536" },
		{ MODEL("1", "4", "[{\"name\":\"t\",\"rows\":1,\"dim\":1,\"dtype\":\"f64\"}]"),
		  FR_ERR_INVAL, "table 0: field 'dtype': 'f64' is unknown" },
		{ MODEL("1", "4", "[{\"name\":\"t\",\"rows\":1,\"dim\":1,\"dtype\":32}]"),
		  FR_ERR_INVAL, "table 0: field 'dtype': expected" },
		{ MODEL("1", "4", "[{\"name\":\"t\",\"rows\":1,\"dim\":1,\"dtype\":\"float32\"}]"),
		  FR_ERR_INVAL, "table 0: field 'dtype'" },
		{ MODEL("1", "4", "[{\"name\":\"t\",\"rows\":1,\"dim\":1}]"),
		  FR_ERR_INVAL, "table 0: field 'dtype': missing" },
		/* What only shard_model_validate knows. */
		{ MODEL("1", "4", "[" TBL "," TBL "]"), FR_ERR_INVAL,
		  "duplicate table name 't'" },
		{ MODEL("1", "4", "[{\"name\":\"t\",\"rows\":9223372036854775807,\"dim\":65536,\"dtype\":\"f32\"}]"),
		  FR_ERR_INVAL, "overflows" },
		{ "{\"priority\":1,\"shards\":4,\"tables\":[" TBL "]}",
		  FR_ERR_INVAL, "model 'ctr': field 'name': missing" },
		{ "{\"name\":5,\"priority\":1,\"shards\":4,\"tables\":[" TBL "]}",
		  FR_ERR_INVAL, "model 'ctr': field 'name': expected a string" },
		{ "{\"name\":\"ctr\",\"shards\":4,\"tables\":[" TBL "]}",
		  FR_ERR_INVAL, "field 'priority': missing" },
		{ "{\"name\":\"ctr\",\"priority\":1,\"tables\":[" TBL "]}",
		  FR_ERR_INVAL, "field 'shards': missing" },
		{ "{\"name\":\"ctr\",\"priority\":1,\"shards\":4}",
		  FR_ERR_INVAL, "field 'tables': missing" },
	};
	struct shard_model_def d, before;
	char big[16384];
	size_t len;

	memset(&before, 0x5a, sizeof(before));
	for (size_t i = 0; i < FR_UNIT_COUNT(cases); i++) {
		enum fr_err err;

		d = before;
		err = model_dec("ctr", cases[i].json, &d);
		if (err != cases[i].err)
			fprintf(stderr, "\n  case %zu: got %d for %s\n", i,
				(int)err, cases[i].json);
		CU_ASSERT_EQUAL(err, cases[i].err);
		CU_ASSERT(errmsg_has(cases[i].needle));
		CU_ASSERT(memcmp(&d, &before, sizeof(d)) == 0);
	}

	/* 65 tables. */
	len = (size_t)snprintf(big, sizeof(big),
			       "{\"name\":\"ctr\",\"priority\":1,\"shards\":1,\"tables\":[");
	for (int i = 0; i <= SHARD_TABLES_MAX; i++)
		len += (size_t)snprintf(big + len, sizeof(big) - len,
					"%s{\"name\":\"t%d\",\"rows\":1,\"dim\":1,\"dtype\":\"f16\"}",
					i ? "," : "", i);
	snprintf(big + len, sizeof(big) - len, "]}");
	CU_ASSERT_EQUAL(model_dec("ctr", big, &d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("expected an array of 1..64 tables"));

	/* The znode name itself must be a name. */
	CU_ASSERT_EQUAL(model_dec("c/tr", MODEL("1", "1", "[" TBL "]"), &d),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("model: znode name"));
	CU_ASSERT_EQUAL(model_dec("", MODEL("1", "1", "[" TBL "]"), &d),
			FR_ERR_INVAL);
	CU_ASSERT_EQUAL(topo_model_decode(NULL, "{}", 2, &d), FR_ERR_INVAL);
}

static void test_model_encode_refuses(void)
{
	struct shard_model_def d;
	enum fr_err err;

	d = sample_model();
	d.shards = 0;
	CU_ASSERT_PTR_NULL(topo_model_encode(&d, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("shards"));

	d = sample_model();
	snprintf(d.tables[1].name, sizeof(d.tables[1].name), "users");
	CU_ASSERT_PTR_NULL(topo_model_encode(&d, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("duplicate"));

	d = sample_model();
	d.tables[0].rows = (uint64_t)INT64_MAX + 1;
	d.tables[0].dim = 1;
	CU_ASSERT_PTR_NULL(topo_model_encode(&d, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("rows"));

	d = sample_model();
	d.tables[0].dtype = (enum shard_dtype)9;
	CU_ASSERT_PTR_NULL(topo_model_encode(&d, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);

	CU_ASSERT_PTR_NULL(topo_model_encode(NULL, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
}

/* ----------------------------------------------------------------------
 * Mutation: whatever a decoder accepts is something the encoder writes
 * and the decoder reads back unchanged.
 * -------------------------------------------------------------------- */

static void mutate(char *s, size_t *len, size_t cap)
{
	static const char alphabet[] = "{}[]\":,0123456789-.eE ntfa_\\u";
	size_t pos = *len ? rnd(*len) : 0;

	switch (rnd(4)) {
	case 0:		/* overwrite with an interesting byte */
		if (*len)
			s[pos] = alphabet[rnd(sizeof(alphabet) - 1)];
		break;
	case 1:		/* overwrite with any byte */
		if (*len)
			s[pos] = (char)rnd(256);
		break;
	case 2:		/* delete */
		if (*len) {
			memmove(s + pos, s + pos + 1, *len - pos - 1);
			(*len)--;
		}
		break;
	default:	/* insert */
		if (*len + 1 < cap) {
			memmove(s + pos + 1, s + pos, *len - pos);
			s[pos] = alphabet[rnd(sizeof(alphabet) - 1)];
			(*len)++;
		}
		break;
	}
}

static void test_mutations(void)
{
	struct topo_member m = sample_member(), mm, mm2;
	struct topo_leader l = { .dc = "dc1", .node_id = 9,
				 .addr = "[::1]:7001", .epoch = 44,
				 .generation = 3 }, ll, ll2;
	struct shard_model_def d = sample_model(), dd, dd2;
	char *seeds[3];
	unsigned accepted[3] = { 0, 0, 0 };
	enum fr_err err;

	seeds[0] = topo_member_encode(&m, &err);
	seeds[1] = topo_leader_encode(&l, &err);
	seeds[2] = topo_model_encode(&d, &err);
	CU_ASSERT_FATAL(seeds[0] && seeds[1] && seeds[2]);
	rng_state = 0x70706f6c6f6779ULL;
	for (int k = 0; k < 3; k++) {
		for (int iter = 0; iter < 4000; iter++) {
			char buf[1024], *p, *again;
			size_t len = strlen(seeds[k]);
			int nmut = 1 + (int)rnd(3);

			CU_ASSERT_FATAL(len < sizeof(buf));
			memcpy(buf, seeds[k], len);
			for (int j = 0; j < nmut; j++)
				mutate(buf, &len, sizeof(buf));
			p = malloc(len ? len : 1);
			CU_ASSERT_FATAL(p != NULL);
			memcpy(p, buf, len);
			if (k == 0 && topo_member_decode(p, len, &mm) == FR_OK) {
				accepted[k]++;
				again = topo_member_encode(&mm, &err);
				CU_ASSERT_FATAL(again != NULL);
				CU_ASSERT_EQUAL(member_dec(again, &mm2), FR_OK);
				CU_ASSERT(member_eq(&mm, &mm2));
				free(again);
			} else if (k == 1 &&
				   topo_leader_decode(p, len, &ll) == FR_OK) {
				accepted[k]++;
				again = topo_leader_encode(&ll, &err);
				CU_ASSERT_FATAL(again != NULL);
				CU_ASSERT_EQUAL(leader_dec(again, &ll2), FR_OK);
				CU_ASSERT(leader_eq(&ll, &ll2));
				free(again);
			} else if (k == 2 &&
				   topo_model_decode("ctr", p, len, &dd) ==
					   FR_OK) {
				accepted[k]++;
				again = topo_model_encode(&dd, &err);
				CU_ASSERT_FATAL(again != NULL);
				CU_ASSERT_EQUAL(model_dec("ctr", again, &dd2),
						FR_OK);
				CU_ASSERT(model_eq(&dd, &dd2));
				free(again);
			}
			free(p);
		}
		/* Some mutants (a changed digit, added space) still parse:
		 * the loop exercised the accept path too. */
		CU_ASSERT(accepted[k] > 0);
		CU_ASSERT(accepted[k] < 4000);
	}
	for (int k = 0; k < 3; k++)
		free(seeds[k]);
}

/* ----------------------------------------------------------------------
 * Election names and rank
 * -------------------------------------------------------------------- */

static void test_election_parse(void)
{
	static const char *const bad[] = {
		"", "n_", "n_1_2_", "n_1_2_000000001", "n_1_2_00000000011",
		"n_0_2_0000000001", "n_4294967295_2_0000000001",
		"n_1__0000000001", "n__2_0000000001", "x_1_2_0000000001",
		"n_1_2_000000000a", "n_1_2_0000000001x", "n_-1_2_0000000001",
		"n_1_2_-000000001", "n_1_2_3_0000000001", "lock-0000000001",
		"n_1_123456789012345678901_0000000001",
		"n_1_18446744073709551616_0000000001",
		"n_12345678901_2_0000000001",
	};
	uint64_t gen, seq;
	uint32_t id;

	CU_ASSERT_EQUAL(topo_election_parse("n_3_7_0000000012", &id, &gen,
					    &seq), FR_OK);
	CU_ASSERT_EQUAL(id, 3);
	CU_ASSERT_EQUAL(gen, 7);
	CU_ASSERT_EQUAL(seq, 12);
	CU_ASSERT_EQUAL(topo_election_parse(
		"n_4294967294_18446744073709551615_2147483647", &id, &gen,
		&seq), FR_OK);
	CU_ASSERT_EQUAL(id, 4294967294u);
	CU_ASSERT_EQUAL(gen, UINT64_MAX);
	CU_ASSERT_EQUAL(seq, 2147483647);
	for (size_t i = 0; i < FR_UNIT_COUNT(bad); i++) {
		id = 77;
		CU_ASSERT_EQUAL(topo_election_parse(bad[i], &id, &gen, &seq),
				FR_ERR_INVAL);
		CU_ASSERT_EQUAL(id, 77);
		CU_ASSERT(errmsg_has("expected n_<id>_<generation>_<10-digit sequence>"));
	}
	CU_ASSERT_EQUAL(topo_election_parse(NULL, &id, &gen, &seq),
			FR_ERR_INVAL);
}

static void test_election_rank(void)
{
	/* Unsorted, with gaps (deleted candidates) and strangers. */
	const char *children[] = {
		"n_5_1_0000000040", "junk", "n_2_9_0000000007",
		"n_9_1_0000000100", "n_3_3_0000000003", "lock-0000000001",
		"n_7_2_0000000041",
	};
	const uint32_t n = FR_UNIT_COUNT(children);
	char pred[TOPO_NAME_MAX + 32];
	uint32_t rank;

	strcpy(pred, "untouched");
	CU_ASSERT_EQUAL(topo_election_rank(children, n, "n_3_3_0000000003",
					   &rank, pred, sizeof(pred)), FR_OK);
	CU_ASSERT_EQUAL(rank, 0);
	CU_ASSERT_STRING_EQUAL(pred, "untouched");

	CU_ASSERT_EQUAL(topo_election_rank(children, n, "n_2_9_0000000007",
					   &rank, pred, sizeof(pred)), FR_OK);
	CU_ASSERT_EQUAL(rank, 1);
	CU_ASSERT_STRING_EQUAL(pred, "n_3_3_0000000003");

	CU_ASSERT_EQUAL(topo_election_rank(children, n, "n_7_2_0000000041",
					   &rank, pred, sizeof(pred)), FR_OK);
	CU_ASSERT_EQUAL(rank, 3);
	CU_ASSERT_STRING_EQUAL(pred, "n_5_1_0000000040");

	CU_ASSERT_EQUAL(topo_election_rank(children, n, "n_9_1_0000000100",
					   &rank, pred, sizeof(pred)), FR_OK);
	CU_ASSERT_EQUAL(rank, 4);
	CU_ASSERT_STRING_EQUAL(pred, "n_7_2_0000000041");

	/* Not among them: e.g. our znode vanished with a lost session. */
	rank = 99;
	CU_ASSERT_EQUAL(topo_election_rank(children, n, "n_4_1_0000000050",
					   &rank, pred, sizeof(pred)),
			FR_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(rank, 99);
	CU_ASSERT_EQUAL(topo_election_rank(children, 0, "n_4_1_0000000050",
					   &rank, pred, sizeof(pred)),
			FR_ERR_NOTFOUND);
	/* Our own name must parse. */
	CU_ASSERT_EQUAL(topo_election_rank(children, n, "junk", &rank, pred,
					   sizeof(pred)), FR_ERR_INVAL);
	/* No room for the predecessor. */
	CU_ASSERT_EQUAL(topo_election_rank(children, n, "n_9_1_0000000100",
					   &rank, pred, 8), FR_ERR_INVAL);
	/* Alone. */
	CU_ASSERT_EQUAL(topo_election_rank(&children[6], 1,
					   "n_7_2_0000000041", &rank, pred,
					   sizeof(pred)), FR_OK);
	CU_ASSERT_EQUAL(rank, 0);
}

/* ----------------------------------------------------------------------
 * Issue #6: member status, rollback directives, health, role overrides
 * -------------------------------------------------------------------- */

static void add_status(struct topo_member *m, const char *model,
		       const char *role, uint64_t epoch, uint64_t cut,
		       uint64_t horizon)
{
	struct topo_model_status *s = &m->models[m->nmodels++];

	memset(s, 0, sizeof(*s));
	snprintf(s->model, sizeof(s->model), "%s", model);
	snprintf(s->role, sizeof(s->role), "%s", role);
	s->epoch = epoch;
	s->cut = cut;
	s->horizon = horizon;
}

static void test_member_models_roundtrip(void)
{
	struct topo_member m = sample_member(), back;
	enum fr_err err;
	char *s, *s2;

	/* No status: no "models" key at all (the pre-#6 form). */
	s = topo_member_encode(&m, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT(strstr(s, "models") == NULL);
	free(s);

	/* Order is kept (not sorted), the extremes survive. */
	add_status(&m, "zeta", "baseline", 2, 1234, 1000);
	add_status(&m, "alpha", "canary", 0, 0, 0);
	add_status(&m, "m.v2", "serving", (uint64_t)INT64_MAX,
		   (uint64_t)INT64_MAX, (uint64_t)INT64_MAX);
	s = topo_member_encode(&m, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT(strstr(s, "\"models\":{\"zeta\":{\"role\":\"baseline\","
			 "\"epoch\":2,\"cut\":1234,\"horizon\":1000}") != NULL);
	memset(&back, 0xab, sizeof(back));
	CU_ASSERT_EQUAL(member_dec(s, &back), FR_OK);
	CU_ASSERT(member_eq(&m, &back));
	CU_ASSERT_STRING_EQUAL(back.models[0].model, "zeta");
	CU_ASSERT_STRING_EQUAL(back.models[1].model, "alpha");
	s2 = topo_member_encode(&back, &err);
	CU_ASSERT_FATAL(s2 != NULL);
	CU_ASSERT_STRING_EQUAL(s, s2);
	free(s);
	free(s2);

	/* The most there may be. */
	m = sample_member();
	for (int i = 0; i < TOPO_MEMBER_MODELS_MAX; i++) {
		char name[16];

		snprintf(name, sizeof(name), "m%02d", i);
		add_status(&m, name, "serving", (uint64_t)i, 7, 3);
	}
	s = topo_member_encode(&m, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_EQUAL(member_dec(s, &back), FR_OK);
	CU_ASSERT_EQUAL(back.nmodels, TOPO_MEMBER_MODELS_MAX);
	CU_ASSERT(member_eq(&m, &back));
	free(s);

	/* The documented form; unknown keys inside an entry are ignored. */
	CU_ASSERT_EQUAL_FATAL(member_dec(
		"{\"id\":3,\"dc\":\"dc1\",\"addr\":\"10.0.0.3:7001\","
		"\"admin\":\"10.0.0.3:8001\",\"roles\":[\"serving\"],"
		"\"generation\":7,\"models\":{\"ctr\":{\"role\":\"baseline\","
		"\"epoch\":2,\"cut\":1234,\"horizon\":1000,\"new\":[1]}}}",
		&back), FR_OK);
	CU_ASSERT_EQUAL(back.nmodels, 1);
	CU_ASSERT_STRING_EQUAL(back.models[0].model, "ctr");
	CU_ASSERT_STRING_EQUAL(back.models[0].role, "baseline");
	CU_ASSERT_EQUAL(back.models[0].epoch, 2);
	CU_ASSERT_EQUAL(back.models[0].cut, 1234);
	CU_ASSERT_EQUAL(back.models[0].horizon, 1000);
	/* An empty object is no status. */
	CU_ASSERT_EQUAL(member_dec(MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"",
		GOOD_ROLES, "1,\"models\":{}"), &back), FR_OK);
	CU_ASSERT_EQUAL(back.nmodels, 0);
}

#define ST(body) MEMBER("3", "\"a\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, \
			"1,\"models\":" body)
#define ENTRY(role, e, c, h) "{\"role\":" role ",\"epoch\":" e ",\"cut\":" \
	c ",\"horizon\":" h "}"

static void test_member_models_bad(void)
{
	static const struct bad_case cases[] = {
		{ ST("[]"), FR_ERR_INVAL, "member: field 'models': expected an object" },
		{ ST("5"), FR_ERR_INVAL, "field 'models': expected an object" },
		{ ST("{\"a b\":" ENTRY("\"serving\"", "0", "0", "0") "}"),
		  FR_ERR_INVAL, "field 'models': model name: 'a b' has byte 0x20" },
		{ ST("{\"\":" ENTRY("\"serving\"", "0", "0", "0") "}"),
		  FR_ERR_INVAL, "field 'models': model name: empty" },
		{ ST("{\"ctr\":5}"), FR_ERR_INVAL,
		  "field 'models': model 'ctr': expected an object" },
		{ ST("{\"ctr\":{\"epoch\":0,\"cut\":0,\"horizon\":0}}"),
		  FR_ERR_INVAL, "model 'ctr': field 'role': missing" },
		{ ST("{\"ctr\":" ENTRY("\"leader\"", "0", "0", "0") "}"),
		  FR_ERR_INVAL, "model 'ctr': field 'role': 'leader' is not a role" },
		{ ST("{\"ctr\":" ENTRY("3", "0", "0", "0") "}"),
		  FR_ERR_INVAL, "model 'ctr': field 'role': expected a string" },
		{ ST("{\"ctr\":" ENTRY("\"servingservingserving\"", "0", "0", "0") "}"),
		  FR_ERR_INVAL, "model 'ctr': field 'role': 21 bytes is too long" },
		{ ST("{\"ctr\":" ENTRY("\"canary\"", "-1", "0", "0") "}"),
		  FR_ERR_INVAL, "model 'ctr': field 'epoch': -1 is out of range" },
		{ ST("{\"ctr\":" ENTRY("\"canary\"", "\"1\"", "0", "0") "}"),
		  FR_ERR_INVAL, "model 'ctr': field 'epoch': expected an integer" },
		{ ST("{\"ctr\":" ENTRY("\"canary\"", "0", "1.5", "0") "}"),
		  FR_ERR_INVAL, "model 'ctr': field 'cut': expected an integer" },
		{ ST("{\"ctr\":" ENTRY("\"canary\"", "0", "0", "null") "}"),
		  FR_ERR_INVAL, "model 'ctr': field 'horizon': expected an integer" },
		{ ST("{\"ctr\":{\"role\":\"canary\",\"epoch\":0,\"cut\":0}}"),
		  FR_ERR_INVAL, "model 'ctr': field 'horizon': missing" },
		{ ST("{\"ctr\":{\"role\":\"canary\",\"epoch\":0,\"horizon\":0}}"),
		  FR_ERR_INVAL, "model 'ctr': field 'cut': missing" },
		{ ST("{\"ctr\":" ENTRY("\"canary\"", "0", "0", "0") ",\"ctr\":"
		     ENTRY("\"serving\"", "0", "0", "0") "}"),
		  FR_ERR_CORRUPT, "duplicate" },
	};
	struct topo_member m, before;
	char big[4096];
	size_t off;

	memset(&before, 0x5a, sizeof(before));
	for (size_t i = 0; i < FR_UNIT_COUNT(cases); i++) {
		enum fr_err err;

		m = before;
		err = member_dec(cases[i].json, &m);
		if (err != cases[i].err)
			fprintf(stderr, "\n  case %zu: got %d for %s\n", i,
				(int)err, cases[i].json);
		CU_ASSERT_EQUAL(err, cases[i].err);
		CU_ASSERT(errmsg_has(cases[i].needle));
		CU_ASSERT(memcmp(&m, &before, sizeof(m)) == 0);
	}
	/* One entry too many. */
	off = (size_t)snprintf(big, sizeof(big),
			       "{\"id\":3,\"dc\":\"a\",\"addr\":\"h:1\",\"admin\":\"h:2\","
			       "\"roles\":[],\"generation\":1,\"models\":{");
	for (int i = 0; i <= TOPO_MEMBER_MODELS_MAX; i++)
		off += (size_t)snprintf(big + off, sizeof(big) - off,
					"%s\"m%d\":" ENTRY("\"serving\"", "0", "0", "0"),
					i ? "," : "", i);
	snprintf(big + off, sizeof(big) - off, "}}");
	m = before;
	CU_ASSERT_EQUAL(member_dec(big, &m), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'models': 17 entries, expected at most 16"));
	CU_ASSERT(memcmp(&m, &before, sizeof(m)) == 0);
}

static void test_member_models_encode_refuses(void)
{
	struct topo_member m;
	enum fr_err err;

	m = sample_member();
	for (int i = 0; i < TOPO_MEMBER_MODELS_MAX; i++)
		add_status(&m, "x", "serving", 0, 0, 0);
	snprintf(m.models[1].model, sizeof(m.models[1].model), "y");
	m.nmodels = 2;
	{
		char *ok = topo_member_encode(&m, &err);

		CU_ASSERT_PTR_NOT_NULL(ok);
		free(ok);
	}

	m.nmodels = TOPO_MEMBER_MODELS_MAX + 1;
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'models': 17 entries"));

	m = sample_member();
	add_status(&m, "ctr", "serving", 0, 0, 0);
	add_status(&m, "ctr", "canary", 0, 0, 0);
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("model 'ctr' appears twice"));

	m = sample_member();
	add_status(&m, "ctr", "leader", 0, 0, 0);
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("model 'ctr': field 'role': 'leader' is not a role"));

	m = sample_member();
	add_status(&m, "c/r", "serving", 0, 0, 0);
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("field 'models': entry 0"));

	m = sample_member();
	add_status(&m, "ctr", "serving", 0, 0, 0);
	memset(m.models[0].role, 'a', sizeof(m.models[0].role));
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("field 'role'"));

	m = sample_member();
	add_status(&m, "ctr", "serving", 0, (uint64_t)INT64_MAX + 1, 0);
	CU_ASSERT_PTR_NULL(topo_member_encode(&m, &err));
	CU_ASSERT(errmsg_has("model 'ctr': field 'cut'"));
}

static struct topo_rollback sample_rollback(void)
{
	struct topo_rollback d;

	memset(&d, 0, sizeof(d));
	d.t = 1234;
	d.r = 5678;
	d.at_ms = 1764050000000ull;
	snprintf(d.reason, sizeof(d.reason), "auc -0.04");
	snprintf(d.who, sizeof(d.who), "witness@h1");
	return d;
}

static bool rollback_eq(const struct topo_rollback *a,
			const struct topo_rollback *b)
{
	return a->seq == b->seq && a->epoch == b->epoch && a->t == b->t &&
	       a->r == b->r && a->at_ms == b->at_ms &&
	       strcmp(a->reason, b->reason) == 0 &&
	       strcmp(a->who, b->who) == 0;
}

static enum fr_err rollback_dec(uint64_t seq, const char *s,
				struct topo_rollback *d)
{
	size_t len;
	char *p = exact(s, &len);
	enum fr_err err = topo_rollback_decode(seq, p, len, d);

	free(p);
	return err;
}

static void test_rollback_roundtrip(void)
{
	struct topo_rollback d = sample_rollback(), back;
	enum fr_err err;
	char *s;

	/* seq and epoch come from the name, never from the JSON. */
	d.seq = 99;
	d.epoch = 7;
	s = topo_rollback_encode(&d, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT(strstr(s, "99") == NULL);
	CU_ASSERT_EQUAL(rollback_dec(41, s, &back), FR_OK);
	CU_ASSERT_EQUAL(back.seq, 41);
	CU_ASSERT_EQUAL(back.epoch, 42);
	d.seq = 41;
	d.epoch = 42;
	CU_ASSERT(rollback_eq(&d, &back));
	free(s);

	/* The extremes. */
	d.t = 1;
	d.r = 2;
	d.at_ms = (uint64_t)INT64_MAX;
	memset(d.reason, '~', TOPO_REASON_MAX);
	d.reason[TOPO_REASON_MAX] = '\0';
	memset(d.who, ' ', TOPO_WHO_MAX);
	d.who[TOPO_WHO_MAX] = '\0';
	s = topo_rollback_encode(&d, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_EQUAL(rollback_dec(9999999999ull, s, &back), FR_OK);
	CU_ASSERT_EQUAL(back.epoch, 10000000000ull);
	d.seq = 9999999999ull;
	d.epoch = 10000000000ull;
	CU_ASSERT(rollback_eq(&d, &back));
	free(s);
	d.t = (uint64_t)INT64_MAX - 1;
	d.r = (uint64_t)INT64_MAX;
	s = topo_rollback_encode(&d, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_EQUAL(rollback_dec(0, s, &back), FR_OK);
	CU_ASSERT_EQUAL(back.t, (uint64_t)INT64_MAX - 1);
	CU_ASSERT_EQUAL(back.epoch, 1);
	free(s);

	/* The documented form; only t and r are required, unknown keys are
	 * ignored. */
	CU_ASSERT_EQUAL_FATAL(rollback_dec(2,
		"{\"t\":1234,\"r\":5678,\"reason\":\"auc -0.04\","
		"\"who\":\"witness@h1\",\"at\":1764050000000}", &back), FR_OK);
	CU_ASSERT_EQUAL(back.t, 1234);
	CU_ASSERT_EQUAL(back.r, 5678);
	CU_ASSERT_EQUAL(back.at_ms, 1764050000000ull);
	CU_ASSERT_STRING_EQUAL(back.reason, "auc -0.04");
	CU_ASSERT_STRING_EQUAL(back.who, "witness@h1");
	CU_ASSERT_EQUAL(back.epoch, 3);
	CU_ASSERT_EQUAL(rollback_dec(0, "{\"r\":9,\"t\":8,\"note\":{}}",
				     &back), FR_OK);
	CU_ASSERT_EQUAL(back.at_ms, 0);
	CU_ASSERT_STRING_EQUAL(back.reason, "");
	CU_ASSERT_STRING_EQUAL(back.who, "");
}

#define RB(t, r, rest) "{\"t\":" t ",\"r\":" r rest "}"

static void test_rollback_bad(void)
{
	static const struct bad_case cases[] = {
		{ "{\"r\":5}", FR_ERR_INVAL, "rollback: field 't': missing" },
		{ "{\"t\":5}", FR_ERR_INVAL, "rollback: field 'r': missing" },
		{ RB("0", "5", ""), FR_ERR_INVAL, "rollback: field 't': 0 is out of range" },
		{ RB("-3", "5", ""), FR_ERR_INVAL, "field 't': -3 is out of range" },
		{ RB("\"3\"", "5", ""), FR_ERR_INVAL, "field 't': expected an integer" },
		{ RB("3.5", "5", ""), FR_ERR_INVAL, "field 't': expected an integer" },
		{ RB("9223372036854775807", "9223372036854775807", ""),
		  FR_ERR_INVAL, "field 't': 9223372036854775807 is out of range" },
		{ RB("5", "5", ""), FR_ERR_INVAL,
		  "rollback: field 'r': 5 is not above t = 5, expected t < r" },
		{ RB("5", "4", ""), FR_ERR_INVAL, "field 'r': 4 is not above t = 5" },
		{ RB("5", "0", ""), FR_ERR_INVAL, "field 'r': 0 is out of range" },
		{ RB("5", "true", ""), FR_ERR_INVAL, "field 'r': expected an integer" },
		{ RB("5", "9", ",\"at\":-1"), FR_ERR_INVAL, "field 'at': -1 is out of range" },
		{ RB("5", "9", ",\"at\":\"now\""), FR_ERR_INVAL, "field 'at': expected an integer" },
		{ RB("5", "9", ",\"reason\":7"), FR_ERR_INVAL, "field 'reason': expected a string" },
		{ RB("5", "9", ",\"reason\":\"a\\nb\""), FR_ERR_INVAL,
		  "field 'reason': byte 0x0a at 1, expected printable ASCII" },
		{ RB("5", "9", ",\"reason\":\"caf\\u00e9\""), FR_ERR_INVAL,
		  "field 'reason': byte 0xc3 at 3" },
		{ RB("5", "9", ",\"who\":\"\\u007f\""), FR_ERR_INVAL,
		  "field 'who': byte 0x7f at 0" },
		{ RB("5", "9", ",\"who\":null"), FR_ERR_INVAL, "field 'who': expected a string" },
		{ RB("5", "9", ",\"t\":6"), FR_ERR_CORRUPT, "duplicate" },
		{ "[1,2]", FR_ERR_CORRUPT, "rollback: expected a JSON object" },
		{ "{\"t\":1,", FR_ERR_CORRUPT, "rollback: not a JSON object" },
	};
	struct topo_rollback d, before;
	char big[600];

	memset(&before, 0x5a, sizeof(before));
	for (size_t i = 0; i < FR_UNIT_COUNT(cases); i++) {
		enum fr_err err;

		d = before;
		err = rollback_dec(1, cases[i].json, &d);
		if (err != cases[i].err)
			fprintf(stderr, "\n  case %zu: got %d for %s\n", i,
				(int)err, cases[i].json);
		CU_ASSERT_EQUAL(err, cases[i].err);
		CU_ASSERT(errmsg_has(cases[i].needle));
		CU_ASSERT(memcmp(&d, &before, sizeof(d)) == 0);
	}
	/* Text past its maximum. */
	snprintf(big, sizeof(big), "{\"t\":1,\"r\":2,\"reason\":\"%0256d\"}", 0);
	d = before;
	CU_ASSERT_EQUAL(rollback_dec(1, big, &d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'reason': 256 bytes is too long"));
	snprintf(big, sizeof(big), "{\"t\":1,\"r\":2,\"who\":\"%0128d\"}", 0);
	CU_ASSERT_EQUAL(rollback_dec(1, big, &d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'who': 128 bytes is too long"));
	CU_ASSERT(memcmp(&d, &before, sizeof(d)) == 0);
	/* A sequence no znode name can carry. */
	CU_ASSERT_EQUAL(rollback_dec(10000000000ull, RB("1", "2", ""), &d),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("rollback: sequence 10000000000 is out of range"));
	CU_ASSERT_EQUAL(topo_rollback_decode(1, NULL, 0, &d), FR_ERR_CORRUPT);
}

static void test_rollback_encode_refuses(void)
{
	struct topo_rollback d;
	enum fr_err err;

	d = sample_rollback();
	d.t = 0;
	CU_ASSERT_PTR_NULL(topo_rollback_encode(&d, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("rollback: field 't'"));
	d = sample_rollback();
	d.r = d.t;
	CU_ASSERT_PTR_NULL(topo_rollback_encode(&d, &err));
	CU_ASSERT(errmsg_has("field 'r': 1234 is not above t = 1234"));
	d.r = (uint64_t)INT64_MAX + 1;
	CU_ASSERT_PTR_NULL(topo_rollback_encode(&d, &err));
	CU_ASSERT(errmsg_has("field 'r'"));
	d = sample_rollback();
	d.at_ms = UINT64_MAX;
	CU_ASSERT_PTR_NULL(topo_rollback_encode(&d, &err));
	CU_ASSERT(errmsg_has("field 'at'"));
	d = sample_rollback();
	d.reason[2] = '\t';
	CU_ASSERT_PTR_NULL(topo_rollback_encode(&d, &err));
	CU_ASSERT(errmsg_has("field 'reason': byte 0x09 at 2"));
	d = sample_rollback();
	memset(d.who, 'w', sizeof(d.who));   /* not terminated */
	CU_ASSERT_PTR_NULL(topo_rollback_encode(&d, &err));
	CU_ASSERT(errmsg_has("field 'who'"));
	CU_ASSERT_PTR_NULL(topo_rollback_encode(NULL, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
}

static void test_rollback_name(void)
{
	static const char *const bad[] = {
		"", "r_", "r", "r_123", "r_00000000001", "r_000000000a",
		"x_0000000001", "r_-000000001", "r_0000000001 ", " r_0000000001",
		"R_0000000001", "r__000000001", "r_+000000001", "n_1_1_0000000001",
	};
	uint64_t seq;

	CU_ASSERT_EQUAL(topo_rollback_parse_name("r_0000000000", &seq), FR_OK);
	CU_ASSERT_EQUAL(seq, 0);
	CU_ASSERT_EQUAL(topo_rollback_parse_name("r_0000000042", &seq), FR_OK);
	CU_ASSERT_EQUAL(seq, 42);
	CU_ASSERT_EQUAL(topo_rollback_parse_name("r_9999999999", &seq), FR_OK);
	CU_ASSERT_EQUAL(seq, 9999999999ull);
	for (size_t i = 0; i < FR_UNIT_COUNT(bad); i++) {
		seq = 77;
		CU_ASSERT_EQUAL(topo_rollback_parse_name(bad[i], &seq),
				FR_ERR_INVAL);
		CU_ASSERT_EQUAL(seq, 77);
		CU_ASSERT(errmsg_has("expected r_<10-digit sequence>"));
	}
	CU_ASSERT_EQUAL(topo_rollback_parse_name(NULL, &seq), FR_ERR_INVAL);
}

static bool health_eq(const struct topo_health *a, const struct topo_health *b)
{
	if (a->state != b->state || a->at_ms != b->at_ms ||
	    strcmp(a->by, b->by) || strcmp(a->why, b->why) ||
	    a->epoch != b->epoch || a->nhistory != b->nhistory)
		return false;
	for (uint32_t i = 0; i < a->nhistory; i++)
		if (a->history[i].state != b->history[i].state ||
		    a->history[i].at_ms != b->history[i].at_ms ||
		    strcmp(a->history[i].by, b->history[i].by) ||
		    strcmp(a->history[i].why, b->history[i].why))
			return false;
	return true;
}

static enum fr_err health_dec(const char *s, struct topo_health *h)
{
	size_t len;
	char *p = exact(s, &len);
	enum fr_err err = topo_health_decode(p, len, h);

	free(p);
	return err;
}

/* Health structs are ~13 KB: on the heap. */
static struct topo_health *health_new(void)
{
	struct topo_health *h = calloc(1, sizeof(*h));

	CU_ASSERT_FATAL(h != NULL);
	return h;
}

static void test_health_names_push(void)
{
	struct topo_health *h = health_new();
	enum topo_health_state st;

	CU_ASSERT_STRING_EQUAL(topo_health_name(TOPO_HEALTHY), "healthy");
	CU_ASSERT_STRING_EQUAL(topo_health_name(TOPO_UNCERTAIN), "uncertain");
	CU_ASSERT_STRING_EQUAL(topo_health_name(TOPO_CORRUPTED), "corrupted");
	CU_ASSERT_STRING_EQUAL(topo_health_name((enum topo_health_state)9),
			       "invalid");
	CU_ASSERT_EQUAL(topo_health_parse("corrupted", &st), FR_OK);
	CU_ASSERT_EQUAL(st, TOPO_CORRUPTED);
	CU_ASSERT_EQUAL(topo_health_parse("uncertain", &st), FR_OK);
	CU_ASSERT_EQUAL(st, TOPO_UNCERTAIN);
	st = TOPO_UNCERTAIN;
	CU_ASSERT_EQUAL(topo_health_parse("Healthy", &st), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("health state 'Healthy' is unknown"));
	CU_ASSERT_EQUAL(st, TOPO_UNCERTAIN);
	CU_ASSERT_EQUAL(topo_health_parse(NULL, &st), FR_ERR_INVAL);

	CU_ASSERT(topo_role_valid("serving"));
	CU_ASSERT(topo_role_valid("canary"));
	CU_ASSERT(topo_role_valid("baseline"));
	CU_ASSERT(!topo_role_valid("Serving"));
	CU_ASSERT(!topo_role_valid(""));
	CU_ASSERT(!topo_role_valid("candidate"));
	CU_ASSERT(!topo_role_valid(NULL));

	/* A never-set state (absent znode) leaves no history behind. */
	topo_health_push(h, TOPO_CORRUPTED, "witness@h1", "auc -0.04", 100);
	CU_ASSERT_EQUAL(h->state, TOPO_CORRUPTED);
	CU_ASSERT_EQUAL(h->nhistory, 0);
	CU_ASSERT_STRING_EQUAL(h->by, "witness@h1");
	CU_ASSERT_EQUAL(h->at_ms, 100);
	topo_health_push(h, TOPO_HEALTHY, "sre@h2", NULL, 200);
	CU_ASSERT_EQUAL(h->state, TOPO_HEALTHY);
	CU_ASSERT_STRING_EQUAL(h->why, "");
	CU_ASSERT_EQUAL(h->nhistory, 1);
	CU_ASSERT_EQUAL(h->history[0].state, TOPO_CORRUPTED);
	CU_ASSERT_STRING_EQUAL(h->history[0].by, "witness@h1");
	CU_ASSERT_STRING_EQUAL(h->history[0].why, "auc -0.04");
	CU_ASSERT_EQUAL(h->history[0].at_ms, 100);
	/* Newest first; the oldest falls off past TOPO_HISTORY_MAX. */
	for (uint64_t i = 0; i < 40; i++)
		topo_health_push(h, (enum topo_health_state)(i % 3), "x", "y",
				 300 + i);
	CU_ASSERT_EQUAL(h->nhistory, TOPO_HISTORY_MAX);
	CU_ASSERT_EQUAL(h->at_ms, 339);
	CU_ASSERT_EQUAL(h->history[0].at_ms, 338);
	CU_ASSERT_EQUAL(h->history[TOPO_HISTORY_MAX - 1].at_ms,
			338 - (TOPO_HISTORY_MAX - 1));
	/* Too long a note is cut, not overrun. */
	{
		char longwho[400];

		memset(longwho, 'w', sizeof(longwho) - 1);
		longwho[sizeof(longwho) - 1] = '\0';
		topo_health_push(h, TOPO_UNCERTAIN, longwho, longwho, 1);
		CU_ASSERT_EQUAL(strlen(h->by), TOPO_WHO_MAX);
		CU_ASSERT_EQUAL(strlen(h->why), TOPO_REASON_MAX);
	}
	free(h);
}

static void test_health_roundtrip(void)
{
	struct topo_health *h = health_new(), *back = health_new();
	enum fr_err err;
	char *s, *s2;

	s = topo_health_encode(h, &err);   /* the zeroed state */
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_STRING_EQUAL(s, "{\"state\":\"healthy\",\"by\":\"\",\"why\":\"\","
			       "\"at\":0,\"epoch\":0,\"history\":[]}");
	CU_ASSERT_EQUAL(health_dec(s, back), FR_OK);
	CU_ASSERT(health_eq(h, back));
	free(s);
	for (int i = 0; i < TOPO_HISTORY_MAX + 3; i++)
		topo_health_push(h, (enum topo_health_state)(i % 3),
				 "witness@h1", "auc -0.04", 1000 + (uint64_t)i);
	h->epoch = 3;
	s = topo_health_encode(h, &err);
	CU_ASSERT_FATAL(s != NULL);
	memset(back, 0x5a, sizeof(*back));
	CU_ASSERT_EQUAL(health_dec(s, back), FR_OK);
	CU_ASSERT(health_eq(h, back));
	s2 = topo_health_encode(back, &err);
	CU_ASSERT_FATAL(s2 != NULL);
	CU_ASSERT_STRING_EQUAL(s, s2);
	free(s);
	free(s2);

	/* The documented form; only "state" is required. */
	CU_ASSERT_EQUAL_FATAL(health_dec(
		"{\"state\":\"corrupted\",\"by\":\"witness@h1\",\"why\":\"auc\","
		"\"at\":1764050000000,\"epoch\":3,\"history\":[{\"state\":"
		"\"healthy\",\"by\":\"sre\",\"why\":\"ok\",\"at\":5}]}", back),
		FR_OK);
	CU_ASSERT_EQUAL(back->state, TOPO_CORRUPTED);
	CU_ASSERT_EQUAL(back->epoch, 3);
	CU_ASSERT_EQUAL(back->at_ms, 1764050000000ull);
	CU_ASSERT_EQUAL(back->nhistory, 1);
	CU_ASSERT_EQUAL(back->history[0].state, TOPO_HEALTHY);
	CU_ASSERT_STRING_EQUAL(back->history[0].why, "ok");
	CU_ASSERT_EQUAL(health_dec("{\"state\":\"uncertain\",\"x\":1}", back),
			FR_OK);
	CU_ASSERT_EQUAL(back->state, TOPO_UNCERTAIN);
	CU_ASSERT_EQUAL(back->nhistory, 0);
	CU_ASSERT_EQUAL(back->epoch, 0);
	CU_ASSERT_STRING_EQUAL(back->by, "");
	free(h);
	free(back);
}

static void test_health_bad(void)
{
	static const struct bad_case cases[] = {
		{ "{}", FR_ERR_INVAL, "health: field 'state': missing" },
		{ "{\"state\":\"fine\"}", FR_ERR_INVAL,
		  "health: field 'state': 'fine' is unknown" },
		{ "{\"state\":2}", FR_ERR_INVAL, "health: field 'state': expected a string" },
		{ "{\"state\":\"corruptedcorrupted\"}", FR_ERR_INVAL,
		  "health: field 'state': 18 bytes is too long" },
		{ "{\"state\":\"healthy\",\"at\":-1}", FR_ERR_INVAL,
		  "health: field 'at': -1 is out of range" },
		{ "{\"state\":\"healthy\",\"epoch\":\"3\"}", FR_ERR_INVAL,
		  "health: field 'epoch': expected an integer" },
		{ "{\"state\":\"healthy\",\"by\":[]}", FR_ERR_INVAL,
		  "health: field 'by': expected a string" },
		{ "{\"state\":\"healthy\",\"why\":\"\\u0001\"}", FR_ERR_INVAL,
		  "health: field 'why': byte 0x01 at 0" },
		{ "{\"state\":\"healthy\",\"history\":{}}", FR_ERR_INVAL,
		  "health: field 'history': expected an array" },
		{ "{\"state\":\"healthy\",\"history\":[5]}", FR_ERR_INVAL,
		  "health: field 'history': entry 0: expected an object" },
		{ "{\"state\":\"healthy\",\"history\":[{\"state\":\"healthy\"},{\"by\":\"x\"}]}",
		  FR_ERR_INVAL, "field 'history': entry 1: field 'state': missing" },
		{ "{\"state\":\"healthy\",\"history\":[{\"state\":\"sick\"}]}",
		  FR_ERR_INVAL, "field 'history': entry 0: field 'state': 'sick' is unknown" },
		{ "{\"state\":\"healthy\",\"history\":[{\"state\":\"healthy\",\"at\":1.5}]}",
		  FR_ERR_INVAL, "field 'history': entry 0: field 'at': expected an integer" },
		{ "{\"state\":\"healthy\",\"state\":\"healthy\"}", FR_ERR_CORRUPT,
		  "duplicate" },
		{ "\"healthy\"", FR_ERR_CORRUPT, "health: not a JSON object" },
	};
	struct topo_health *h = health_new(), *before = health_new();
	char big[4096];
	size_t off;

	memset(before, 0x5a, sizeof(*before));
	for (size_t i = 0; i < FR_UNIT_COUNT(cases); i++) {
		enum fr_err err;

		*h = *before;
		err = health_dec(cases[i].json, h);
		if (err != cases[i].err)
			fprintf(stderr, "\n  case %zu: got %d for %s\n", i,
				(int)err, cases[i].json);
		CU_ASSERT_EQUAL(err, cases[i].err);
		CU_ASSERT(errmsg_has(cases[i].needle));
		CU_ASSERT(memcmp(h, before, sizeof(*h)) == 0);
	}
	off = (size_t)snprintf(big, sizeof(big),
			       "{\"state\":\"healthy\",\"history\":[");
	for (int i = 0; i <= TOPO_HISTORY_MAX; i++)
		off += (size_t)snprintf(big + off, sizeof(big) - off,
					"%s{\"state\":\"healthy\"}",
					i ? "," : "");
	snprintf(big + off, sizeof(big) - off, "]}");
	CU_ASSERT_EQUAL(health_dec(big, h), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'history': expected an array of at most 32"));
	snprintf(big, sizeof(big), "{\"state\":\"healthy\",\"by\":\"%0128d\"}", 0);
	CU_ASSERT_EQUAL(health_dec(big, h), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("field 'by': 128 bytes is too long"));
	CU_ASSERT(memcmp(h, before, sizeof(*h)) == 0);
	free(h);
	free(before);
}

static void test_health_encode_refuses(void)
{
	struct topo_health *h = health_new();
	enum fr_err err;

	h->state = (enum topo_health_state)3;
	CU_ASSERT_PTR_NULL(topo_health_encode(h, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("health: field 'state': 3 is not a state"));
	memset(h, 0, sizeof(*h));
	h->nhistory = TOPO_HISTORY_MAX + 1;
	CU_ASSERT_PTR_NULL(topo_health_encode(h, &err));
	CU_ASSERT(errmsg_has("health: field 'history': 33 entries"));
	h->nhistory = 2;
	h->history[1].why[0] = '\n';
	CU_ASSERT_PTR_NULL(topo_health_encode(h, &err));
	CU_ASSERT(errmsg_has("field 'history': entry 1: field 'why'"));
	memset(h, 0, sizeof(*h));
	h->epoch = UINT64_MAX;
	CU_ASSERT_PTR_NULL(topo_health_encode(h, &err));
	CU_ASSERT(errmsg_has("health: field 'epoch'"));
	memset(h, 0, sizeof(*h));
	memset(h->by, 'b', sizeof(h->by));
	CU_ASSERT_PTR_NULL(topo_health_encode(h, &err));
	CU_ASSERT(errmsg_has("health: field 'by'"));
	CU_ASSERT_PTR_NULL(topo_health_encode(NULL, &err));
	free(h);
}

static enum fr_err roles_dec(const char *s, struct topo_role_override *o,
			     uint32_t cap, uint32_t *n)
{
	size_t len;
	char *p = exact(s, &len);
	enum fr_err err = topo_roles_decode(p, len, o, cap, n);

	free(p);
	return err;
}

static void test_roles(void)
{
	static const struct bad_case cases[] = {
		{ "{\"0\":\"canary\"}", FR_ERR_INVAL, "roles: key '0': expected a node id" },
		{ "{\"03\":\"canary\"}", FR_ERR_INVAL, "roles: key '03'" },
		{ "{\"4294967295\":\"canary\"}", FR_ERR_INVAL, "key '4294967295'" },
		{ "{\"-1\":\"canary\"}", FR_ERR_INVAL, "key '-1'" },
		{ "{\"x\":\"canary\"}", FR_ERR_INVAL, "key 'x'" },
		{ "{\"\":\"canary\"}", FR_ERR_INVAL, "key ''" },
		{ "{\"3\":\"leader\"}", FR_ERR_INVAL, "roles: node 3: expected a string" },
		{ "{\"3\":3}", FR_ERR_INVAL, "roles: node 3: expected a string" },
		{ "{\"3\":\"canary\",\"3\":\"serving\"}", FR_ERR_CORRUPT, "duplicate" },
		{ "[]", FR_ERR_CORRUPT, "roles: expected a JSON object" },
	};
	struct topo_role_override o[TOPO_ROLE_OVERRIDES_MAX + 1], back[8];
	struct topo_role_override before[8];
	enum fr_err err;
	uint32_t n;
	char *s, *big;
	size_t off;

	memset(o, 0, sizeof(o));
	o[0].node_id = 7;
	snprintf(o[0].role, sizeof(o[0].role), "baseline");
	o[1].node_id = 3;
	snprintf(o[1].role, sizeof(o[1].role), "canary");
	o[2].node_id = 4294967294u;
	snprintf(o[2].role, sizeof(o[2].role), "serving");
	s = topo_roles_encode(o, 3, &err);
	CU_ASSERT_FATAL(s != NULL);
	/* Sorted by node id, whatever order it was given in. */
	CU_ASSERT_STRING_EQUAL(s, "{\"3\":\"canary\",\"7\":\"baseline\","
			       "\"4294967294\":\"serving\"}");
	CU_ASSERT_EQUAL(roles_dec(s, back, 8, &n), FR_OK);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(back[0].node_id, 3);
	CU_ASSERT_STRING_EQUAL(back[0].role, "canary");
	CU_ASSERT_EQUAL(back[1].node_id, 7);
	CU_ASSERT_EQUAL(back[2].node_id, 4294967294u);
	free(s);
	/* Decoding sorts too. */
	CU_ASSERT_EQUAL(roles_dec("{\"9\":\"canary\",\"2\":\"baseline\"}",
				  back, 8, &n), FR_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(back[0].node_id, 2);
	CU_ASSERT_STRING_EQUAL(back[0].role, "baseline");
	s = topo_roles_encode(o, 0, &err);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_STRING_EQUAL(s, "{}");
	CU_ASSERT_EQUAL(roles_dec(s, back, 0, &n), FR_OK);
	CU_ASSERT_EQUAL(n, 0);
	free(s);

	memset(before, 0x5a, sizeof(before));
	for (size_t i = 0; i < FR_UNIT_COUNT(cases); i++) {
		memcpy(back, before, sizeof(back));
		n = 77;
		err = roles_dec(cases[i].json, back, 8, &n);
		if (err != cases[i].err)
			fprintf(stderr, "\n  case %zu: got %d for %s\n", i,
				(int)err, cases[i].json);
		CU_ASSERT_EQUAL(err, cases[i].err);
		CU_ASSERT(errmsg_has(cases[i].needle));
		CU_ASSERT(memcmp(back, before, sizeof(back)) == 0);
		CU_ASSERT_EQUAL(n, 77);
	}
	/* No room: FR_ERR_RANGE, nothing written. */
	memcpy(back, before, sizeof(back));
	CU_ASSERT_EQUAL(roles_dec("{\"1\":\"canary\",\"2\":\"canary\"}", back,
				  1, &n), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("roles: 2 entries, room for 1"));
	CU_ASSERT(memcmp(back, before, sizeof(back)) == 0);

	/* At most TOPO_ROLE_OVERRIDES_MAX, both ways. */
	for (uint32_t i = 0; i <= TOPO_ROLE_OVERRIDES_MAX; i++) {
		o[i].node_id = i + 1;
		snprintf(o[i].role, sizeof(o[i].role), "canary");
	}
	CU_ASSERT_PTR_NULL(topo_roles_encode(o, TOPO_ROLE_OVERRIDES_MAX + 1,
					     &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("roles: 257 entries, expected at most 256"));
	s = topo_roles_encode(o, TOPO_ROLE_OVERRIDES_MAX, &err);
	CU_ASSERT_FATAL(s != NULL);
	{
		struct topo_role_override *all =
			calloc(TOPO_ROLE_OVERRIDES_MAX, sizeof(*all));

		CU_ASSERT_FATAL(all != NULL);
		CU_ASSERT_EQUAL(roles_dec(s, all, TOPO_ROLE_OVERRIDES_MAX, &n),
				FR_OK);
		CU_ASSERT_EQUAL(n, TOPO_ROLE_OVERRIDES_MAX);
		CU_ASSERT_EQUAL(all[255].node_id, 256);
		free(all);
	}
	free(s);
	big = malloc(8192);
	CU_ASSERT_FATAL(big != NULL);
	off = (size_t)snprintf(big, 8192, "{");
	for (uint32_t i = 0; i <= TOPO_ROLE_OVERRIDES_MAX; i++)
		off += (size_t)snprintf(big + off, 8192 - off,
					"%s\"%u\":\"canary\"", i ? "," : "",
					i + 1);
	snprintf(big + off, 8192 - off, "}");
	CU_ASSERT_EQUAL(roles_dec(big, back, 8, &n), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("roles: 257 entries, expected at most 256"));
	free(big);

	/* The encoder refuses what the decoder would. */
	o[0].node_id = 0;
	CU_ASSERT_PTR_NULL(topo_roles_encode(o, 1, &err));
	CU_ASSERT(errmsg_has("roles: field 'id': 0 is out of range"));
	o[0].node_id = 5;
	snprintf(o[0].role, sizeof(o[0].role), "leader");
	CU_ASSERT_PTR_NULL(topo_roles_encode(o, 1, &err));
	CU_ASSERT(errmsg_has("roles: node 5: 'leader' is not a role"));
	snprintf(o[0].role, sizeof(o[0].role), "canary");
	o[1].node_id = 5;
	CU_ASSERT_PTR_NULL(topo_roles_encode(o, 2, &err));
	CU_ASSERT(errmsg_has("roles: node 5 appears twice"));
	CU_ASSERT_PTR_NULL(topo_roles_encode(NULL, 1, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
}

/* The mutation loop of test_mutations for the #6 decoders. */
static void test_mutations_new(void)
{
	struct topo_member m = sample_member(), mm, mm2;
	struct topo_rollback d = sample_rollback(), dd, dd2;
	struct topo_health *h = health_new(), *hh = health_new(),
			   *hh2 = health_new();
	struct topo_role_override o[2] = { { 3, "canary" }, { 9, "baseline" } };
	struct topo_role_override oo[TOPO_ROLE_OVERRIDES_MAX];
	struct topo_role_override oo2[TOPO_ROLE_OVERRIDES_MAX];
	unsigned accepted[4] = { 0, 0, 0, 0 };
	char *seeds[4];
	enum fr_err err;
	uint32_t n, n2;

	add_status(&m, "ctr", "baseline", 2, 1234, 1000);
	add_status(&m, "rank", "canary", 1, 99, 5);
	topo_health_push(h, TOPO_CORRUPTED, "witness@h1", "auc", 10);
	topo_health_push(h, TOPO_HEALTHY, "sre", "fixed", 20);
	h->epoch = 4;
	seeds[0] = topo_member_encode(&m, &err);
	seeds[1] = topo_rollback_encode(&d, &err);
	seeds[2] = topo_health_encode(h, &err);
	seeds[3] = topo_roles_encode(o, 2, &err);
	CU_ASSERT_FATAL(seeds[0] && seeds[1] && seeds[2] && seeds[3]);
	rng_state = 0x726f6c6c6261636bULL;
	for (int k = 0; k < 4; k++) {
		for (int iter = 0; iter < 3000; iter++) {
			char buf[1024], *p, *again;
			size_t len = strlen(seeds[k]);
			int nmut = 1 + (int)rnd(3);

			CU_ASSERT_FATAL(len < sizeof(buf));
			memcpy(buf, seeds[k], len);
			for (int j = 0; j < nmut; j++)
				mutate(buf, &len, sizeof(buf));
			p = malloc(len ? len : 1);
			CU_ASSERT_FATAL(p != NULL);
			memcpy(p, buf, len);
			if (k == 0 && topo_member_decode(p, len, &mm) == FR_OK) {
				accepted[k]++;
				again = topo_member_encode(&mm, &err);
				CU_ASSERT_FATAL(again != NULL);
				CU_ASSERT_EQUAL(member_dec(again, &mm2), FR_OK);
				CU_ASSERT(member_eq(&mm, &mm2));
				free(again);
			} else if (k == 1 &&
				   topo_rollback_decode(5, p, len, &dd) == FR_OK) {
				accepted[k]++;
				again = topo_rollback_encode(&dd, &err);
				CU_ASSERT_FATAL(again != NULL);
				CU_ASSERT_EQUAL(rollback_dec(5, again, &dd2), FR_OK);
				CU_ASSERT(rollback_eq(&dd, &dd2));
				free(again);
			} else if (k == 2 &&
				   topo_health_decode(p, len, hh) == FR_OK) {
				accepted[k]++;
				again = topo_health_encode(hh, &err);
				CU_ASSERT_FATAL(again != NULL);
				CU_ASSERT_EQUAL(health_dec(again, hh2), FR_OK);
				CU_ASSERT(health_eq(hh, hh2));
				free(again);
			} else if (k == 3 &&
				   topo_roles_decode(p, len, oo,
						     TOPO_ROLE_OVERRIDES_MAX,
						     &n) == FR_OK) {
				accepted[k]++;
				again = topo_roles_encode(oo, n, &err);
				CU_ASSERT_FATAL(again != NULL);
				CU_ASSERT_EQUAL(roles_dec(again, oo2,
					TOPO_ROLE_OVERRIDES_MAX, &n2), FR_OK);
				CU_ASSERT_EQUAL(n, n2);
				CU_ASSERT(memcmp(oo, oo2, n * sizeof(*oo)) == 0);
				free(again);
			}
			free(p);
		}
		CU_ASSERT(accepted[k] > 0);
		CU_ASSERT(accepted[k] < 3000);
	}
	for (int k = 0; k < 4; k++)
		free(seeds[k]);
	free(h);
	free(hh);
	free(hh2);
}

int main(void)
{
	static const struct fr_unit_test tests[] = {
		{ "member round trip", test_member_roundtrip },
		{ "member documented form, unknown keys", test_member_documented },
		{ "member bad fields", test_member_bad_fields },
		{ "member encoder refuses", test_member_encode_refuses },
		{ "garbage bytes", test_garbage },
		{ "leader", test_leader },
		{ "model round trip", test_model_roundtrip },
		{ "model bad fields", test_model_bad_fields },
		{ "model encoder refuses", test_model_encode_refuses },
		{ "mutations", test_mutations },
		{ "election parse", test_election_parse },
		{ "election rank", test_election_rank },
		{ "member status round trip", test_member_models_roundtrip },
		{ "member status bad fields", test_member_models_bad },
		{ "member status encoder refuses",
		  test_member_models_encode_refuses },
		{ "rollback round trip", test_rollback_roundtrip },
		{ "rollback bad fields", test_rollback_bad },
		{ "rollback encoder refuses", test_rollback_encode_refuses },
		{ "rollback child names", test_rollback_name },
		{ "health names, push, roles", test_health_names_push },
		{ "health round trip", test_health_roundtrip },
		{ "health bad fields", test_health_bad },
		{ "health encoder refuses", test_health_encode_refuses },
		{ "role overrides", test_roles },
		{ "mutations of the #6 formats", test_mutations_new },
	};

	fr_log_set_level(FR_LOG_ERROR);
	return fr_unit_main("topology", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
