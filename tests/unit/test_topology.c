/*
 * test_topology.c — CUnit suite for topology/'s pure parts (codec.c): the
 * member (with its per-model status), leader, model, rollback directive,
 * health state and role override JSON round-trip; every field rule is
 * refused with a detail naming the field; garbage, trailing bytes,
 * non-objects, empty input, duplicate keys and input that is not
 * NUL-terminated are refused; unknown keys are ignored; a failed decode
 * leaves *out alone; and a deterministic mutation loop checks that
 * whatever a decoder accepts re-encodes to something it accepts again,
 * unchanged.  Election and rollback child names are parsed, candidates
 * ranked with gaps, strangers and absence; topo_health_push keeps its
 * history; the chroot of a connect string is found.
 *
 * Not here: ZooKeeper sessions (test_topology_zk.c, against a real server).
 */
#include <inttypes.h>
#include <stddef.h>
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
	return (struct topo_member){
		.node_id = 3, .dc = "dc1", .addr = "10.0.0.3:7001",
		.admin = "[::1]:8001", .roles = "serving,candidate",
		.generation = 7,
	};
}

static struct shard_model_def sample_model(void)
{
	return (struct shard_model_def){
		.name = "ctr", .priority = 10, .shards = 64, .ntables = 2,
		.tables = {
			{ .name = "users", .rows = 1000000, .dim = 64,
			  .dtype = SHARD_F32 },
			{ .name = "items.v2", .rows = 5, .dim = 1,
			  .dtype = SHARD_F16 },
		},
	};
}

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

/* Health structs are ~13 KB: on the heap. */
static struct topo_health *health_new(void)
{
	struct topo_health *h = calloc(1, sizeof(*h));

	CU_ASSERT_FATAL(h != NULL);
	return h;
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

/* The formats, and a value of any of them. */
enum format { F_MEMBER, F_LEADER, F_MODEL, F_ROLLBACK, F_HEALTH, F_ROLES };

static const char *const format_names[] = {
	"member", "leader", "model", "rollback", "health", "roles",
};

struct roles {
	uint32_t n;
	struct topo_role_override o[TOPO_ROLE_OVERRIDES_MAX];
};

union value {
	struct topo_member m;
	struct topo_leader l;
	struct shard_model_def d;
	struct topo_rollback r;
	struct topo_health h;
	struct roles o;
};

static enum fr_err decode_as(enum format f, const char *p, size_t len,
			     union value *v)
{
	switch (f) {
	case F_MEMBER:
		return topo_member_decode(p, len, &v->m);
	case F_LEADER:
		return topo_leader_decode(p, len, &v->l);
	case F_MODEL:
		return topo_model_decode("ctr", p, len, &v->d);
	case F_ROLLBACK:
		return topo_rollback_decode(5, p, len, &v->r);
	case F_HEALTH:
		return topo_health_decode(p, len, &v->h);
	default:
		return topo_roles_decode(p, len, v->o.o,
					 TOPO_ROLE_OVERRIDES_MAX, &v->o.n);
	}
}

/* v may be NULL (but not for F_ROLES): each encoder refuses it. */
static char *encode_as(enum format f, const union value *v, enum fr_err *err)
{
	switch (f) {
	case F_MEMBER:
		return topo_member_encode((const struct topo_member *)v, err);
	case F_LEADER:
		return topo_leader_encode((const struct topo_leader *)v, err);
	case F_MODEL:
		return topo_model_encode((const struct shard_model_def *)v, err);
	case F_ROLLBACK:
		return topo_rollback_encode((const struct topo_rollback *)v,
					    err);
	case F_HEALTH:
		return topo_health_encode((const struct topo_health *)v, err);
	default:
		return topo_roles_encode(v->o.o, v->o.n, err);
	}
}

static bool eq_as(enum format f, const union value *a, const union value *b)
{
	switch (f) {
	case F_MEMBER:
		return topo_member_eq(&a->m, &b->m);
	case F_LEADER:
		return topo_leader_eq(&a->l, &b->l);
	case F_MODEL:
		return topo_model_eq(&a->d, &b->d);
	case F_ROLLBACK:
		return topo_rollback_eq(&a->r, &b->r);
	case F_HEALTH:
		return topo_health_eq(&a->h, &b->h);
	default:
		return a->o.n == b->o.n &&
		       memcmp(a->o.o, b->o.o, a->o.n * sizeof(a->o.o[0])) == 0;
	}
}

/* A good value of f: what the mutation loop starts from and what the
 * patches spoil. */
static void sample_as(enum format f, union value *v)
{
	memset(v, 0, sizeof(*v));
	switch (f) {
	case F_MEMBER:
		v->m = sample_member();
		add_status(&v->m, "ctr", "baseline", 2, 1234, 1000);
		add_status(&v->m, "rank", "canary", 1, 99, 5);
		break;
	case F_LEADER:
		v->l = (struct topo_leader){ .dc = "dc1", .node_id = 9,
					     .addr = "[::1]:7001",
					     .epoch = 44, .generation = 3 };
		break;
	case F_MODEL:
		v->d = sample_model();
		break;
	case F_ROLLBACK:
		v->r = sample_rollback();
		break;
	case F_HEALTH:
		topo_health_push(&v->h, TOPO_CORRUPTED, "witness@h1", "auc",
				 10);
		topo_health_push(&v->h, TOPO_HEALTHY, "sre", "fixed", 20);
		v->h.epoch = 4;
		break;
	default:
		v->o.n = 2;
		v->o.o[0] = (struct topo_role_override){ 3, "canary" };
		v->o.o[1] = (struct topo_role_override){ 9, "baseline" };
		break;
	}
}

/* Each case's JSON (given without its NUL) is refused as f with the
 * case's code and a detail holding its needle, and nothing is written. */
static void refuses(enum format f, const struct bad_case *cases, size_t n)
{
	union value *v = malloc(sizeof(*v)), *before = malloc(sizeof(*v));

	CU_ASSERT_FATAL(v && before);
	memset(before, 0x5a, sizeof(*before));
	for (size_t i = 0; i < n; i++) {
		size_t len;
		char *p = exact(cases[i].json, &len);
		enum fr_err err;

		*v = *before;
		err = decode_as(f, p, len, v);
		free(p);
		if (err != cases[i].err)
			fprintf(stderr, "\n  %s case %zu: got %d for %s\n",
				format_names[f], i, (int)err, cases[i].json);
		CU_ASSERT_EQUAL(err, cases[i].err);
		CU_ASSERT(errmsg_has(cases[i].needle));
		CU_ASSERT(memcmp(v, before, sizeof(*v)) == 0);
	}
	free(v);
	free(before);
}

/* One bad field written into a good value: the field (FIELD) gets text
 * (snprintf'd; FILL: the whole field without a NUL) or, for text NULL,
 * num in the field's width.  A patch with a needle ends a case: the
 * value then must not encode, and the detail must hold the needle. */
struct patch {
	size_t off, size;
	const char *text;
	uint64_t num;
	const char *needle;
};

#define FIELD(type, field) offsetof(type, field), sizeof(((type *)0)->field)
static const char fill_field[] = "(fill)";
#define FILL fill_field
#define TOO_BIG ((uint64_t)INT64_MAX + 1)   /* past what JSON carries */

static void apply(union value *v, const struct patch *p)
{
	char *at = (char *)v + p->off;
	uint32_t n32 = (uint32_t)p->num;

	if (p->text == FILL)
		memset(at, 'x', p->size);
	else if (p->text)
		snprintf(at, p->size, "%s", p->text);
	else if (p->size == sizeof(n32))
		memcpy(at, &n32, sizeof(n32));
	else
		memcpy(at, &p->num, sizeof(p->num));
}

/* Each case of patches[0..n) applied to a copy of base is refused by
 * f's encoder: NULL, FR_ERR_INVAL and the case's needle. */
static void encoder_refuses(enum format f, const union value *base,
			    const struct patch *patches, size_t n)
{
	union value *v = malloc(sizeof(*v));

	CU_ASSERT_FATAL(v != NULL);
	*v = *base;
	for (size_t i = 0; i < n; i++) {
		enum fr_err err = FR_OK;
		char *s;

		apply(v, &patches[i]);
		if (!patches[i].needle)
			continue;
		s = encode_as(f, v, &err);
		if (s)
			fprintf(stderr, "\n  %s patch %zu encoded: %s\n",
				format_names[f], i, s);
		CU_ASSERT_PTR_NULL(s);
		free(s);
		CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
		CU_ASSERT(errmsg_has(patches[i].needle));
		*v = *base;
	}
	free(v);
}

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
			CU_ASSERT(topo_member_eq(&m, &back));
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
		  FR_ERR_INVAL, "field 'dc' is empty" },
		{ MEMBER("3", "\"a b\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc' 'a b' has byte 0x20 at 1" },
		{ MEMBER("3", "\"a/b\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc'" },
		{ MEMBER("3", "\"..\"", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc' '..' is a path element" },
		{ MEMBER("3", "\"0123456789012345678901234567890123456789012345678901234567890123\"",
			 "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc': 64 bytes is too long" },
		{ MEMBER("3", "7", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc': expected a string" },
		{ MEMBER("3", "null", "\"h:1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'dc': expected a string" },
		{ MEMBER("3", "\"a\"", "\"h\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'addr' 'h' has no port" },
		{ MEMBER("3", "\"a\"", "\":1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'addr' ':1' has an empty host" },
		{ MEMBER("3", "\"a\"", "\"h:0\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'addr' 'h:0': port is out of range" },
		{ MEMBER("3", "\"a\"", "\"h:65536\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "port is out of range" },
		{ MEMBER("3", "\"a\"", "\"h:123456\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "port is out of range" },
		/* One spelling of a port: no zero padding past five digits. */
		{ MEMBER("3", "\"a\"", "\"h:000080\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'addr' 'h:000080': port has more than 5 digits" },
		{ MEMBER("3", "\"a\"", "\"h:\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'addr' 'h:'" },
		{ MEMBER("3", "\"a\"", "\"h:1x\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "port is not a number" },
		{ MEMBER("3", "\"a\"", "\"h:+1\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "port is not a number" },
		{ MEMBER("3", "\"a\"", "\"::1:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "more than one ':'" },
		{ MEMBER("3", "\"a\"", "\"[::1]80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "no ':PORT' after ']'" },
		{ MEMBER("3", "\"a\"", "\"[zz]:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "invalid IPv6" },
		{ MEMBER("3", "\"a\"", "\"[fe80::1%]:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "IPv6" },
		{ MEMBER("3", "\"a\"", "\"1.2.3.256:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "invalid IPv4" },
		{ MEMBER("3", "\"a\"", "\"h\\u00e9:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "byte 0xc3 in the host" },
		{ MEMBER("3", "\"a\"", "\"h\\u0000:80\"", "\"h:2\"", GOOD_ROLES, "1"),
		  FR_ERR_CORRUPT, "member: not a JSON object" },
		{ MEMBER("3", "\"a\"", "\"h:1\"", "\"h\"", GOOD_ROLES, "1"),
		  FR_ERR_INVAL, "field 'admin' 'h' has no port" },
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

	refuses(F_MEMBER, cases, FR_UNIT_COUNT(cases));
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
	struct topo_leader l, back;
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
	CU_ASSERT(topo_leader_eq(&l, &back));
	free(s);

	CU_ASSERT_EQUAL(leader_dec(
		"{\"id\":3,\"dc\":\"dc1\",\"addr\":\"10.0.0.3:7001\",\"epoch\":12,"
		"\"generation\":7,\"future\":true}", &back), FR_OK);
	CU_ASSERT(topo_leader_eq(&l, &back));

	refuses(F_LEADER, cases, FR_UNIT_COUNT(cases));

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
	CU_ASSERT(topo_model_eq(&d, &back));
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
	CU_ASSERT(topo_model_eq(&d, &back));
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
		  FR_ERR_INVAL, "table 0: field 'name' 'a b' has byte 0x20" },
		{ MODEL("1", "4", "[{\"name\":\".\",\"rows\":1,\"dim\":1,\"dtype\":\"f32\"}]"),
		  FR_ERR_INVAL, "table 0: field 'name' '.' is a path element" },
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
	struct shard_model_def d;
	char big[16384];
	size_t len;

	refuses(F_MODEL, cases, FR_UNIT_COUNT(cases));

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
	CU_ASSERT_EQUAL(model_dec("..", MODEL("1", "1", "[" TBL "]"), &d),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("model: znode name '..' is a path element"));
	CU_ASSERT_EQUAL(topo_model_decode(NULL, "{}", 2, &d), FR_ERR_INVAL);
}

/* ----------------------------------------------------------------------
 * Encoders refuse what decoders would
 * -------------------------------------------------------------------- */

static const struct patch member_patches[] = {
	{ FIELD(struct topo_member, node_id), NULL, 0, "field 'id'" },
	{ FIELD(struct topo_member, node_id), NULL, UINT32_MAX,
	  "field 'id'" },
	{ FIELD(struct topo_member, dc), FILL, 0, "field 'dc'" },
	{ FIELD(struct topo_member, addr), "nohost", 0,
	  "field 'addr'" },
	{ FIELD(struct topo_member, admin), "h:99999", 0,
	  "field 'admin'" },
	{ FIELD(struct topo_member, roles), "a,,b", 0,
	  "field 'roles'" },
	{ FIELD(struct topo_member, roles), "a,", 0, "field 'roles'" },
	{ FIELD(struct topo_member, roles), "A", 0, "field 'roles'" },
	{ FIELD(struct topo_member, generation), NULL, TOO_BIG,
	  "field 'generation'" },
	{ FIELD(struct topo_member, nmodels), NULL,
	  TOPO_MEMBER_MODELS_MAX + 1, "field 'models': 17 entries" },
	{ FIELD(struct topo_member, models[1].model), "ctr", 0,
	  "model 'ctr' appears twice" },
	{ FIELD(struct topo_member, models[0].role), "leader", 0,
	  "model 'ctr': field 'role': 'leader' is not a role" },
	{ FIELD(struct topo_member, models[0].model), "c/r", 0,
	  "field 'models': entry 0" },
	{ FIELD(struct topo_member, models[0].role), FILL, 0,
	  "field 'role'" },
	{ FIELD(struct topo_member, models[0].cut), NULL, TOO_BIG,
	  "model 'ctr': field 'cut'" },
};

static const struct patch leader_patches[] = {
	{ FIELD(struct topo_leader, epoch), NULL, TOO_BIG,
	  "field 'epoch'" },
	{ FIELD(struct topo_leader, node_id), NULL, 0, "field 'id'" },
	{ FIELD(struct topo_leader, dc), "a b", 0, "field 'dc'" },
	{ FIELD(struct topo_leader, addr), "h", 0, "field 'addr'" },
};

static const struct patch model_patches[] = {
	{ FIELD(struct shard_model_def, shards), NULL, 0, "shards" },
	{ FIELD(struct shard_model_def, tables[1].name), "users", 0,
	  "duplicate" },
	{ FIELD(struct shard_model_def, tables[0].dim), NULL, 1, NULL },
	{ FIELD(struct shard_model_def, tables[0].rows), NULL, TOO_BIG,
	  "rows" },
	{ FIELD(struct shard_model_def, tables[0].dtype), NULL, 9,
	  "" },
};

static const struct patch rollback_patches[] = {
	{ FIELD(struct topo_rollback, t), NULL, 0,
	  "rollback: field 't'" },
	{ FIELD(struct topo_rollback, r), NULL, 1234,
	  "field 'r': 1234 is not above t = 1234" },
	{ FIELD(struct topo_rollback, r), NULL, TOO_BIG, "field 'r'" },
	{ FIELD(struct topo_rollback, at_ms), NULL, UINT64_MAX,
	  "field 'at'" },
	{ FIELD(struct topo_rollback, reason), "au\tc", 0,
	  "field 'reason': byte 0x09 at 2" },
	{ FIELD(struct topo_rollback, who), FILL, 0, "field 'who'" },
};

static const struct patch health_patches[] = {
	{ FIELD(struct topo_health, state), NULL, 3,
	  "health: field 'state': 3 is not a state" },
	{ FIELD(struct topo_health, nhistory), NULL,
	  TOPO_HISTORY_MAX + 1, "health: field 'history': 33 entries" },
	{ FIELD(struct topo_health, nhistory), NULL, 2, NULL },
	{ FIELD(struct topo_health, history[1].why), "\n", 0,
	  "field 'history': entry 1: field 'why'" },
	{ FIELD(struct topo_health, epoch), NULL, UINT64_MAX,
	  "health: field 'epoch'" },
	{ FIELD(struct topo_health, by), FILL, 0, "health: field 'by'" },
};

static void test_encoders_refuse(void)
{
	static const struct {
		enum format f;
		const struct patch *patches;
		size_t n;
	} tables[] = {
		{ F_MEMBER, member_patches, FR_UNIT_COUNT(member_patches) },
		{ F_LEADER, leader_patches, FR_UNIT_COUNT(leader_patches) },
		{ F_MODEL, model_patches, FR_UNIT_COUNT(model_patches) },
		{ F_ROLLBACK, rollback_patches,
		  FR_UNIT_COUNT(rollback_patches) },
		{ F_HEALTH, health_patches, FR_UNIT_COUNT(health_patches) },
	};
	union value *base = malloc(sizeof(*base));
	enum fr_err err;

	CU_ASSERT_FATAL(base != NULL);
	for (size_t i = 0; i < FR_UNIT_COUNT(tables); i++) {
		sample_as(tables[i].f, base);
		encoder_refuses(tables[i].f, base, tables[i].patches,
				tables[i].n);
		err = FR_OK;
		CU_ASSERT_PTR_NULL(encode_as(tables[i].f, NULL, &err));
		CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	}
	free(base);
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
 * Member status, rollback directives, health, role overrides
 * -------------------------------------------------------------------- */

static void test_member_models_roundtrip(void)
{
	struct topo_member m = sample_member(), back;
	enum fr_err err;
	char *s, *s2;

	/* No status: no "models" key at all (the form before statuses). */
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
	CU_ASSERT(topo_member_eq(&m, &back));
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
	CU_ASSERT(topo_member_eq(&m, &back));
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
		  FR_ERR_INVAL, "field 'models': model name 'a b' has byte 0x20" },
		{ ST("{\"\":" ENTRY("\"serving\"", "0", "0", "0") "}"),
		  FR_ERR_INVAL, "field 'models': model name is empty" },
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
	refuses(F_MEMBER, cases, FR_UNIT_COUNT(cases));
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
	CU_ASSERT(topo_rollback_eq(&d, &back));
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
	CU_ASSERT(topo_rollback_eq(&d, &back));
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
	refuses(F_ROLLBACK, cases, FR_UNIT_COUNT(cases));
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

static enum fr_err health_dec(const char *s, struct topo_health *h)
{
	size_t len;
	char *p = exact(s, &len);
	enum fr_err err = topo_health_decode(p, len, h);

	free(p);
	return err;
}

static void test_health_names_push(void)
{
	static const struct {
		enum topo_health_state s;
		const char *name;
	} names[] = {
		{ TOPO_HEALTHY, "healthy" },
		{ TOPO_UNCERTAIN, "uncertain" },
		{ TOPO_CORRUPTED, "corrupted" },
	};
	static const char *const not_states[] = {
		"Healthy", "", "healthy ", "corrupt", "invalid", NULL,
	};
	static const struct {
		const char *role;
		bool valid;
	} roles[] = {
		{ "serving", true }, { "canary", true }, { "baseline", true },
		{ "Serving", false }, { "", false }, { "candidate", false },
		{ NULL, false },
	};
	struct topo_health *h = health_new();
	enum topo_health_state st;

	for (size_t i = 0; i < FR_UNIT_COUNT(names); i++) {
		CU_ASSERT_STRING_EQUAL(topo_health_name(names[i].s),
				       names[i].name);
		st = (enum topo_health_state)7;
		CU_ASSERT_EQUAL(topo_health_parse(names[i].name, &st), FR_OK);
		CU_ASSERT_EQUAL(st, names[i].s);
	}
	CU_ASSERT_STRING_EQUAL(topo_health_name((enum topo_health_state)9),
			       "invalid");
	for (size_t i = 0; i < FR_UNIT_COUNT(not_states); i++) {
		st = TOPO_UNCERTAIN;
		CU_ASSERT_EQUAL(topo_health_parse(not_states[i], &st),
				FR_ERR_INVAL);
		CU_ASSERT_EQUAL(st, TOPO_UNCERTAIN);
	}
	CU_ASSERT(errmsg_has("health state '(null)' is unknown"));
	CU_ASSERT_EQUAL(topo_health_parse("Healthy", &st), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("health state 'Healthy' is unknown"));
	for (size_t i = 0; i < FR_UNIT_COUNT(roles); i++)
		CU_ASSERT_EQUAL(topo_role_valid(roles[i].role), roles[i].valid);

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
	CU_ASSERT(topo_health_eq(h, back));
	free(s);
	for (int i = 0; i < TOPO_HISTORY_MAX + 3; i++)
		topo_health_push(h, (enum topo_health_state)(i % 3),
				 "witness@h1", "auc -0.04", 1000 + (uint64_t)i);
	h->epoch = 3;
	s = topo_health_encode(h, &err);
	CU_ASSERT_FATAL(s != NULL);
	memset(back, 0x5a, sizeof(*back));
	CU_ASSERT_EQUAL(health_dec(s, back), FR_OK);
	CU_ASSERT(topo_health_eq(h, back));
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
	refuses(F_HEALTH, cases, FR_UNIT_COUNT(cases));
	*h = *before;
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
	refuses(F_ROLES, cases, FR_UNIT_COUNT(cases));
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

/* ----------------------------------------------------------------------
 * Mutation: whatever a decoder accepts is something the encoder writes
 * and the decoder reads back unchanged, for every format.
 * -------------------------------------------------------------------- */

/* One random edit of s[0..*len) (room for cap bytes). */
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

/* p[0..len) decoded as f: when it is accepted, it re-encodes to what
 * decodes to the same again.  true when accepted. */
static bool accepted_again(enum format f, const char *p, size_t len)
{
	union value *x = calloc(1, sizeof(*x)), *y = calloc(1, sizeof(*y));
	enum fr_err err;
	char *s, *q;
	size_t n;
	bool ok;

	CU_ASSERT_FATAL(x && y);
	ok = decode_as(f, p, len, x) == FR_OK;
	if (ok) {
		s = encode_as(f, x, &err);
		CU_ASSERT_FATAL(s != NULL);
		q = exact(s, &n);
		CU_ASSERT_EQUAL(decode_as(f, q, n, y), FR_OK);
		CU_ASSERT(eq_as(f, x, y));
		free(q);
		free(s);
	}
	free(x);
	free(y);
	return ok;
}

static void test_mutations(void)
{
	enum { ITERS = 3000 };
	/* Every format, and a member without status (the form before
	 * statuses) as well. */
	static const enum format formats[] = {
		F_MEMBER, F_MEMBER, F_LEADER, F_MODEL, F_ROLLBACK, F_HEALTH,
		F_ROLES,
	};
	union value *seeds = calloc(FR_UNIT_COUNT(formats), sizeof(*seeds));
	enum fr_err err;

	CU_ASSERT_FATAL(seeds != NULL);
	for (size_t k = 0; k < FR_UNIT_COUNT(formats); k++)
		sample_as(formats[k], &seeds[k]);
	seeds[0].m = sample_member();
	rng_state = 0x70706f6c6f6779ULL;
	for (size_t k = 0; k < FR_UNIT_COUNT(formats); k++) {
		char *seed = encode_as(formats[k], &seeds[k], &err);
		unsigned accepted = 0;

		CU_ASSERT_FATAL(seed != NULL);
		for (int iter = 0; iter < ITERS; iter++) {
			char buf[1024], *p;
			size_t len = strlen(seed);
			int nmut = 1 + (int)rnd(3);

			CU_ASSERT_FATAL(len < sizeof(buf));
			memcpy(buf, seed, len);
			for (int j = 0; j < nmut; j++)
				mutate(buf, &len, sizeof(buf));
			p = malloc(len ? len : 1);
			CU_ASSERT_FATAL(p != NULL);
			memcpy(p, buf, len);
			accepted += accepted_again(formats[k], p, len);
			free(p);
		}
		/* Some mutants (a changed digit, added space) still parse:
		 * the loop exercised the accept path too. */
		if (accepted == 0 || accepted == ITERS)
			fprintf(stderr, "\n  %s: %u of %d mutants accepted\n",
				format_names[formats[k]], accepted, ITERS);
		CU_ASSERT(accepted > 0 && accepted < ITERS);
		free(seed);
	}
	free(seeds);
}

/* ----------------------------------------------------------------------
 * The chroot of a connect string
 * -------------------------------------------------------------------- */

static void test_hosts_chroot(void)
{
	static const struct {
		const char *hosts, *chroot;
	} cases[] = {
		{ "h:2181", NULL },
		{ "h1:2181,h2:2181/prod", "/prod" },
		{ "[::1]:2181/a/b", "/a/b" },
		{ "[fe80::1%eth0]:2181,h:1/x", "/x" },
		{ "[a/b]:1/c", "/c" },          /* a '/' in brackets is not it */
		{ "h:2181/", "/" },
		{ "", NULL },
		{ NULL, NULL },
	};

	for (size_t i = 0; i < FR_UNIT_COUNT(cases); i++) {
		const char *c = topo_hosts_chroot(cases[i].hosts);

		if (!cases[i].chroot) {
			CU_ASSERT_PTR_NULL(c);
		} else {
			CU_ASSERT_PTR_NOT_NULL_FATAL(c);
			CU_ASSERT_STRING_EQUAL(c, cases[i].chroot);
			/* It points into hosts. */
			CU_ASSERT(c >= cases[i].hosts &&
				  c < cases[i].hosts + strlen(cases[i].hosts));
		}
	}
}

int main(void)
{
	static const struct fr_unit_test tests[] = {
		{ "member round trip", test_member_roundtrip },
		{ "member documented form, unknown keys", test_member_documented },
		{ "member bad fields", test_member_bad_fields },
		{ "garbage bytes", test_garbage },
		{ "leader", test_leader },
		{ "model round trip", test_model_roundtrip },
		{ "model bad fields", test_model_bad_fields },
		{ "encoders refuse what decoders would", test_encoders_refuse },
		{ "election parse", test_election_parse },
		{ "election rank", test_election_rank },
		{ "member status round trip", test_member_models_roundtrip },
		{ "member status bad fields", test_member_models_bad },
		{ "rollback round trip", test_rollback_roundtrip },
		{ "rollback bad fields", test_rollback_bad },
		{ "rollback child names", test_rollback_name },
		{ "health names, push, roles", test_health_names_push },
		{ "health round trip", test_health_roundtrip },
		{ "health bad fields", test_health_bad },
		{ "role overrides", test_roles },
		{ "chroot of a connect string", test_hosts_chroot },
		{ "mutations of every format", test_mutations },
	};

	fr_log_set_level(FR_LOG_ERROR);
	return fr_unit_main("topology", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
