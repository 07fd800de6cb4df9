/*
 * codec.c — the JSON of every znode freshet reads or writes (member with
 * its per-model status, leader, model, rollback directive, health state,
 * role overrides; formats in topology.h) and the election and rollback
 * child names.
 *
 * Everything decoded here came from ZooKeeper and is untrusted (DISTRIBUTED
 * rule 7): each decoder checks that the bytes are one JSON object and
 * nothing after it, that every field it needs is present with the right
 * type and range, and fails with a detail naming the field.  Keys it does
 * not know are ignored, so a newer node may add fields.  Duplicate keys are
 * refused: two readers must not disagree about what a znode says.
 *
 * That holds for rollback directives too, so an added field may only ever
 * inform (a note, a ticket id): one that changes what a rollback does
 * must come as a new format an old node refuses, never as a key it would
 * skip.  Of a directive only t and r are required, of a health state only
 * "state": the rest (who, why, when) describes and has a default ("" or 0),
 * so a directive filed by hand in an emergency is not lost over a missing
 * note.  Free text (reason, who, why, by) is printable ASCII.
 * Encoders check the struct by the same rules, so a node never writes what
 * it would refuse to read.
 *
 * Pure functions, no shared state: any thread.  Not here: ZooKeeper calls
 * (topo.c, admin.c).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "topology/topo_int.h"

#define NAME_RULE "1..%zu bytes of [A-Za-z0-9_.-]"
#define ADDR_EXPECTED "expected HOST:PORT or [IPV6]:PORT with PORT in 1..65535"
#define JSON_INT_MAX ((uint64_t)INT64_MAX)

/* ------------------------------------------------------------------------
 * Field rules
 * ---------------------------------------------------------------------- */

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

const char *topo_show(char *buf, size_t cap, const char *s, size_t len)
{
	size_t n = 0, i;

	if (cap == 0)
		return "";
	for (i = 0; i < len && n + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < len && cap > 4) {
		memcpy(buf + cap - 4, "...", 3);
		n = cap - 1;
	}
	buf[n] = '\0';
	return buf;
}

enum fr_err topo_check_name(const char *s, size_t max, const char *what)
{
	char b[80];
	size_t len = strnlen(s, max + 1);

	if (len == 0)
		return fr_fail(FR_ERR_INVAL, "%s: empty, expected " NAME_RULE,
			       what, max);
	if (len > max)
		return fr_fail(FR_ERR_INVAL,
			       "%s: '%s' is longer than %zu bytes, expected " NAME_RULE,
			       what, topo_show(b, sizeof(b), s, len), max, max);
	for (size_t i = 0; i < len; i++)
		if (!name_char((unsigned char)s[i]))
			return fr_fail(FR_ERR_INVAL,
				       "%s: '%s' has byte 0x%02x at %zu, expected " NAME_RULE,
				       what, topo_show(b, sizeof(b), s, len),
				       (unsigned char)s[i], i, max);
	return FR_OK;
}

static bool all_digits_dots(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
			return false;
	return true;
}

enum fr_err topo_check_addr(const char *s, const char *what)
{
	char host[TOPO_ADDR_MAX + 1];
	char b[80];
	size_t len = strnlen(s, TOPO_ADDR_MAX + 1);
	const char *h, *port;
	size_t hlen, plen;
	unsigned long p = 0;

	topo_show(b, sizeof(b), s, len);
	if (len == 0)
		return fr_fail(FR_ERR_INVAL, "%s: empty, " ADDR_EXPECTED, what);
	if (len > TOPO_ADDR_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "%s: '%s' is longer than %d bytes, " ADDR_EXPECTED,
			       what, b, TOPO_ADDR_MAX);
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || close[1] != ':')
			return fr_fail(FR_ERR_INVAL,
				       "%s: '%s' has no ']:PORT', " ADDR_EXPECTED,
				       what, b);
		h = s + 1;
		hlen = (size_t)(close - h);
		port = close + 2;
	} else {
		const char *colon = memchr(s, ':', len);

		if (!colon)
			return fr_fail(FR_ERR_INVAL,
				       "%s: '%s' has no port, " ADDR_EXPECTED,
				       what, b);
		if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)))
			return fr_fail(FR_ERR_INVAL,
				       "%s: '%s' has more than one ':' (an IPv6 address needs brackets), " ADDR_EXPECTED,
				       what, b);
		h = s;
		hlen = (size_t)(colon - s);
		port = colon + 1;
	}
	if (hlen == 0)
		return fr_fail(FR_ERR_INVAL, "%s: '%s' has an empty host, "
			       ADDR_EXPECTED, what, b);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (s[0] == '[') {
		struct in6_addr in6;
		char *zone = strchr(host, '%');
		bool ok = true;

		if (zone) {
			*zone = '\0';
			ok = zone[1] != '\0';
			for (const char *z = zone + 1; ok && *z; z++)
				ok = name_char((unsigned char)*z);
		}
		if (!ok || inet_pton(AF_INET6, host, &in6) != 1)
			return fr_fail(FR_ERR_INVAL,
				       "%s: '%s' has an invalid IPv6 address in brackets, "
				       ADDR_EXPECTED, what, b);
	} else {
		struct in_addr in4;

		for (size_t i = 0; i < hlen; i++)
			if (!name_char((unsigned char)host[i]))
				return fr_fail(FR_ERR_INVAL,
					       "%s: '%s' has byte 0x%02x in the host, "
					       ADDR_EXPECTED, what, b,
					       (unsigned char)host[i]);
		/* A dotted number is an IPv4 address, never a host name. */
		if (all_digits_dots(host, hlen) &&
		    inet_pton(AF_INET, host, &in4) != 1)
			return fr_fail(FR_ERR_INVAL,
				       "%s: '%s' has an invalid IPv4 address, "
				       ADDR_EXPECTED, what, b);
	}
	plen = len - (size_t)(port - s);
	if (plen == 0 || plen > 5)
		return fr_fail(FR_ERR_INVAL, "%s: '%s' has a bad port, "
			       ADDR_EXPECTED, what, b);
	for (size_t i = 0; i < plen; i++) {
		if (port[i] < '0' || port[i] > '9')
			return fr_fail(FR_ERR_INVAL,
				       "%s: '%s': port is not a number, "
				       ADDR_EXPECTED, what, b);
		p = p * 10 + (unsigned long)(port[i] - '0');
	}
	if (p < 1 || p > 65535)
		return fr_fail(FR_ERR_INVAL,
			       "%s: '%s': port is out of range, " ADDR_EXPECTED,
			       what, b);
	return FR_OK;
}

enum fr_err topo_check_roles(const char *s, const char *what)
{
	char b[80];
	size_t len = strnlen(s, TOPO_ROLES_MAX + 1);
	size_t word = 0;

	topo_show(b, sizeof(b), s, len);
	if (len > TOPO_ROLES_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "%s: '%s' is longer than %d bytes, expected words of [a-z] joined by ','",
			       what, b, TOPO_ROLES_MAX);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ',') {
			if (word == 0)
				break;
			word = 0;
		} else if (s[i] >= 'a' && s[i] <= 'z') {
			word++;
		} else {
			return fr_fail(FR_ERR_INVAL,
				       "%s: '%s' has byte 0x%02x at %zu, expected words of [a-z] joined by ','",
				       what, b, (unsigned char)s[i], i);
		}
	}
	if (len > 0 && word == 0)
		return fr_fail(FR_ERR_INVAL,
			       "%s: '%s' has an empty role, expected words of [a-z] joined by ','",
			       what, b);
	return FR_OK;
}

static enum fr_err check_id(uint32_t id, const char *what)
{
	if (id < 1 || id > TOPO_NODE_ID_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "%s: field 'id': %" PRIu32 " is out of range, expected an integer 1..%u",
			       what, id, TOPO_NODE_ID_MAX);
	return FR_OK;
}

static enum fr_err check_u63(uint64_t v, const char *what, const char *key)
{
	if (v > JSON_INT_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "%s: field '%s': %" PRIu64 " is out of range, expected an integer 0..%" PRIu64,
			       what, key, v, JSON_INT_MAX);
	return FR_OK;
}

/* Printable ASCII (0x20..0x7e), at most max bytes, NUL-terminated within
 * max + 1 bytes.  `what` names the field. */
static enum fr_err check_text(const char *s, size_t max, const char *what)
{
	char b[80];
	size_t len = strnlen(s, max + 1);

	if (len > max)
		return fr_fail(FR_ERR_INVAL,
			       "%s: '%s' is longer than %zu bytes, expected printable ASCII",
			       what, topo_show(b, sizeof(b), s, len), max);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return fr_fail(FR_ERR_INVAL,
				       "%s: byte 0x%02x at %zu, expected printable ASCII",
				       what, (unsigned char)s[i], i);
	return FR_OK;
}

bool topo_role_valid(const char *role)
{
	return role && (strcmp(role, "serving") == 0 ||
			strcmp(role, "canary") == 0 ||
			strcmp(role, "baseline") == 0);
}

#define ROLE_WORDS "\"serving\", \"canary\" or \"baseline\""
#define ROLE_EXPECTED "expected " ROLE_WORDS

static enum fr_err check_role(const char *role, const char *what)
{
	char b[40];
	size_t len = strnlen(role, TOPO_ROLE_MAX + 1);

	if (len > TOPO_ROLE_MAX || !topo_role_valid(role))
		return fr_fail(FR_ERR_INVAL, "%s: '%s' is not a role, "
			       ROLE_EXPECTED, what,
			       topo_show(b, sizeof(b), role, len));
	return FR_OK;
}

/* A member's "models" (its per-model status): at most
 * TOPO_MEMBER_MODELS_MAX entries, names as model names, no name twice. */
static enum fr_err models_check(const struct topo_member *m)
{
	char w[SHARD_NAME_MAX + 64];
	enum fr_err err;

	if (m->nmodels > TOPO_MEMBER_MODELS_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "member: field 'models': %" PRIu32 " entries, expected at most %d",
			       m->nmodels, TOPO_MEMBER_MODELS_MAX);
	for (uint32_t i = 0; i < m->nmodels; i++) {
		const struct topo_model_status *s = &m->models[i];

		snprintf(w, sizeof(w), "member: field 'models': entry %" PRIu32,
			 i);
		err = topo_check_name(s->model, SHARD_NAME_MAX, w);
		if (err)
			return err;
		for (uint32_t k = 0; k < i; k++)
			if (strcmp(m->models[k].model, s->model) == 0)
				return fr_fail(FR_ERR_INVAL,
					       "member: field 'models': model '%s' appears twice",
					       s->model);
		snprintf(w, sizeof(w), "member: field 'models': model '%s': field 'role'",
			 s->model);
		err = check_role(s->role, w);
		if (err)
			return err;
		snprintf(w, sizeof(w), "member: field 'models': model '%s'",
			 s->model);
		err = check_u63(s->epoch, w, "epoch");
		if (!err)
			err = check_u63(s->cut, w, "cut");
		if (!err)
			err = check_u63(s->horizon, w, "horizon");
		if (err)
			return err;
	}
	return FR_OK;
}

enum fr_err topo_member_check(const struct topo_member *m)
{
	enum fr_err err;

	if (!m)
		return fr_fail(FR_ERR_INVAL, "member: NULL");
	err = check_id(m->node_id, "member");
	if (!err)
		err = topo_check_name(m->dc, TOPO_NAME_MAX,
				      "member: field 'dc'");
	if (!err)
		err = topo_check_addr(m->addr, "member: field 'addr'");
	if (!err)
		err = topo_check_addr(m->admin, "member: field 'admin'");
	if (!err)
		err = topo_check_roles(m->roles, "member: field 'roles'");
	if (!err)
		err = check_u63(m->generation, "member", "generation");
	if (!err)
		err = models_check(m);
	return err;
}

static enum fr_err leader_check(const struct topo_leader *l)
{
	enum fr_err err;

	if (!l)
		return fr_fail(FR_ERR_INVAL, "leader: NULL");
	err = check_id(l->node_id, "leader");
	if (!err)
		err = topo_check_name(l->dc, TOPO_NAME_MAX,
				      "leader: field 'dc'");
	if (!err)
		err = topo_check_addr(l->addr, "leader: field 'addr'");
	if (!err)
		err = check_u63(l->epoch, "leader", "epoch");
	if (!err)
		err = check_u63(l->generation, "leader", "generation");
	return err;
}

/* ------------------------------------------------------------------------
 * JSON reading
 * ---------------------------------------------------------------------- */

/* One JSON object and nothing after it, or NULL with FR_ERR_CORRUPT. */
static json_t *load_object(const char *data, size_t len, const char *what)
{
	json_error_t je;
	json_t *root;
	char b[80];

	if (!data || len == 0) {
		fr_fail(FR_ERR_CORRUPT, "%s: empty, expected a JSON object",
			what);
		return NULL;
	}
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		fr_fail(FR_ERR_CORRUPT,
			"%s: not a JSON object: %s (line %d column %d)", what,
			topo_show(b, sizeof(b), je.text, strlen(je.text)),
			je.line, je.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		fr_fail(FR_ERR_CORRUPT, "%s: expected a JSON object", what);
		json_decref(root);
		return NULL;
	}
	return root;
}

static enum fr_err missing(const char *what, const char *key,
			   const char *expected)
{
	return fr_fail(FR_ERR_INVAL, "%s: field '%s': missing, expected %s",
		       what, key, expected);
}

static enum fr_err get_uint(json_t *o, const char *what, const char *key,
			    uint64_t lo, uint64_t hi, uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	char expected[64];
	json_int_t x;

	snprintf(expected, sizeof(expected), "an integer %" PRIu64 "..%" PRIu64,
		 lo, hi);
	if (!v)
		return missing(what, key, expected);
	if (!json_is_integer(v))
		return fr_fail(FR_ERR_INVAL, "%s: field '%s': expected %s",
			       what, key, expected);
	x = json_integer_value(v);
	if (x < 0 || (uint64_t)x < lo || (uint64_t)x > hi)
		return fr_fail(FR_ERR_INVAL,
			       "%s: field '%s': %lld is out of range, expected %s",
			       what, key, (long long)x, expected);
	*out = (uint64_t)x;
	return FR_OK;
}

/* A string field copied into dst[cap] (NUL-terminated), with no NUL
 * inside it; its rule is checked by the caller. */
static enum fr_err get_str(json_t *o, const char *what, const char *key,
			   const char *expected, char *dst, size_t cap)
{
	json_t *v = json_object_get(o, key);
	size_t len;

	if (!v)
		return missing(what, key, expected);
	if (!json_is_string(v))
		return fr_fail(FR_ERR_INVAL, "%s: field '%s': expected %s",
			       what, key, expected);
	len = json_string_length(v);
	if (len >= cap)
		return fr_fail(FR_ERR_INVAL,
			       "%s: field '%s': %zu bytes is too long, expected %s",
			       what, key, len, expected);
	if (memchr(json_string_value(v), '\0', len))
		return fr_fail(FR_ERR_INVAL,
			       "%s: field '%s': contains a NUL byte, expected %s",
			       what, key, expected);
	memcpy(dst, json_string_value(v), len + 1);
	return FR_OK;
}

static enum fr_err get_name(json_t *o, const char *what, const char *key,
			    char *dst, size_t max)
{
	char expected[64], w[128];
	enum fr_err err;

	snprintf(expected, sizeof(expected), "a string of " NAME_RULE, max);
	err = get_str(o, what, key, expected, dst, max + 1);
	if (err)
		return err;
	snprintf(w, sizeof(w), "%s: field '%s'", what, key);
	return topo_check_name(dst, max, w);
}

static enum fr_err get_addr(json_t *o, const char *what, const char *key,
			    char *dst)
{
	char w[128];
	enum fr_err err;

	err = get_str(o, what, key, "a string HOST:PORT", dst,
		      TOPO_ADDR_MAX + 1);
	if (err)
		return err;
	snprintf(w, sizeof(w), "%s: field '%s'", what, key);
	return topo_check_addr(dst, w);
}

static enum fr_err get_roles(json_t *o, const char *what, char *dst)
{
	static const char expected[] =
		"an array of role words of [a-z], at most 63 bytes joined by ','";
	json_t *v = json_object_get(o, "roles");
	size_t len = 0, i;
	json_t *r;

	if (!v)
		return missing(what, "roles", expected);
	if (!json_is_array(v))
		return fr_fail(FR_ERR_INVAL, "%s: field 'roles': expected %s",
			       what, expected);
	json_array_foreach(v, i, r) {
		const char *s;
		size_t n;

		if (!json_is_string(r))
			return fr_fail(FR_ERR_INVAL,
				       "%s: field 'roles': element %zu is not a string, expected %s",
				       what, i, expected);
		s = json_string_value(r);
		n = json_string_length(r);
		if (n == 0)
			return fr_fail(FR_ERR_INVAL,
				       "%s: field 'roles': element %zu is empty, expected %s",
				       what, i, expected);
		for (size_t k = 0; k < n; k++)
			if (s[k] < 'a' || s[k] > 'z')
				return fr_fail(FR_ERR_INVAL,
					       "%s: field 'roles': element %zu has byte 0x%02x at %zu, expected %s",
					       what, i, (unsigned char)s[k], k,
					       expected);
		if (len + (i ? 1 : 0) + n > TOPO_ROLES_MAX)
			return fr_fail(FR_ERR_INVAL,
				       "%s: field 'roles': too long, expected %s",
				       what, expected);
		if (i)
			dst[len++] = ',';
		memcpy(dst + len, s, n);
		len += n;
	}
	dst[len] = '\0';
	return FR_OK;
}

/* A member's optional "models": an object of at most
 * TOPO_MEMBER_MODELS_MAX entries {"<model>":{"role","epoch","cut",
 * "horizon"}}, kept in the order the JSON lists them (jansson keeps
 * insertion order), so what is read re-encodes to the same bytes. */
static enum fr_err get_models(json_t *o, struct topo_member *m)
{
	static const char what[] = "member: field 'models'";
	json_t *v = json_object_get(o, "models"), *e;
	char w[SHARD_NAME_MAX + 64], role[TOPO_ROLE_MAX + 1];
	const char *key;
	enum fr_err err;

	m->nmodels = 0;
	if (!v)
		return FR_OK;
	if (!json_is_object(v))
		return fr_fail(FR_ERR_INVAL,
			       "%s: expected an object of per-model status",
			       what);
	if (json_object_size(v) > TOPO_MEMBER_MODELS_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "%s: %zu entries, expected at most %d", what,
			       json_object_size(v), TOPO_MEMBER_MODELS_MAX);
	json_object_foreach(v, key, e) {
		struct topo_model_status *st = &m->models[m->nmodels];

		err = topo_check_name(key, SHARD_NAME_MAX,
				      "member: field 'models': model name");
		if (err)
			return err;
		snprintf(w, sizeof(w), "%s: model '%s'", what, key);
		if (!json_is_object(e))
			return fr_fail(FR_ERR_INVAL, "%s: expected an object",
				       w);
		memset(st, 0, sizeof(*st));
		memcpy(st->model, key, strlen(key) + 1);
		err = get_str(e, w, "role", "a string " ROLE_WORDS, role,
			      sizeof(role));
		if (!err && !topo_role_valid(role))
			err = fr_fail(FR_ERR_INVAL,
				      "%s: field 'role': '%s' is not a role, "
				      ROLE_EXPECTED, w, role);
		if (err)
			return err;
		memcpy(st->role, role, sizeof(role));
		err = get_uint(e, w, "epoch", 0, JSON_INT_MAX, &st->epoch);
		if (!err)
			err = get_uint(e, w, "cut", 0, JSON_INT_MAX, &st->cut);
		if (!err)
			err = get_uint(e, w, "horizon", 0, JSON_INT_MAX,
				       &st->horizon);
		if (err)
			return err;
		m->nmodels++;
	}
	return FR_OK;
}

/* The JSON array of role words for "a,b" (already checked). */
static json_t *roles_array(const char *roles)
{
	json_t *a = json_array();
	const char *p = roles;

	if (!a)
		return NULL;
	while (*p) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);

		if (json_array_append_new(a, json_stringn(p, n)) != 0) {
			json_decref(a);
			return NULL;
		}
		p += n + (c ? 1 : 0);
	}
	return a;
}

/* Serialize and free root; NULL + FR_ERR_NOMEM when anything failed. */
static char *dump(json_t *root, const char *what, enum fr_err *err)
{
	char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;

	json_decref(root);
	if (!s) {
		*err = fr_fail(FR_ERR_NOMEM, "%s: cannot build JSON", what);
		return NULL;
	}
	*err = FR_OK;
	return s;
}

/* ------------------------------------------------------------------------
 * Member and leader
 * ---------------------------------------------------------------------- */

char *topo_member_encode(const struct topo_member *m, enum fr_err *err)
{
	enum fr_err e = topo_member_check(m);
	enum fr_err dummy;
	json_t *roles, *root;

	if (!err)
		err = &dummy;
	if (e) {
		*err = e;
		return NULL;
	}
	roles = roles_array(m->roles);
	if (!roles) {
		*err = fr_fail(FR_ERR_NOMEM, "member: cannot build JSON");
		return NULL;
	}
	root = json_pack("{s:I, s:s, s:s, s:s, s:o, s:I}",
			 "id", (json_int_t)m->node_id,
			 "dc", m->dc,
			 "addr", m->addr,
			 "admin", m->admin,
			 "roles", roles,
			 "generation", (json_int_t)m->generation);
	/* "models" only when there is a status: a fresh member znode reads
	 * as it did before statuses existed. */
	if (root && m->nmodels > 0) {
		json_t *models = json_object();

		for (uint32_t i = 0; models && i < m->nmodels; i++) {
			const struct topo_model_status *st = &m->models[i];

			if (json_object_set_new(models, st->model,
				json_pack("{s:s, s:I, s:I, s:I}",
					  "role", st->role,
					  "epoch", (json_int_t)st->epoch,
					  "cut", (json_int_t)st->cut,
					  "horizon", (json_int_t)st->horizon)) != 0) {
				json_decref(models);
				models = NULL;
			}
		}
		if (!models || json_object_set_new(root, "models", models) != 0) {
			json_decref(root);
			root = NULL;
		}
	}
	return dump(root, "member", err);
}

enum fr_err topo_member_decode(const char *data, size_t len,
			       struct topo_member *out)
{
	static const char what[] = "member";
	struct topo_member m;
	json_t *root = load_object(data, len, what);
	enum fr_err err;
	uint64_t v;

	if (!root)
		return FR_ERR_CORRUPT;
	memset(&m, 0, sizeof(m));
	err = get_uint(root, what, "id", 1, TOPO_NODE_ID_MAX, &v);
	if (err)
		goto out;
	m.node_id = (uint32_t)v;
	err = get_name(root, what, "dc", m.dc, TOPO_NAME_MAX);
	if (!err)
		err = get_addr(root, what, "addr", m.addr);
	if (!err)
		err = get_addr(root, what, "admin", m.admin);
	if (!err)
		err = get_roles(root, what, m.roles);
	if (!err)
		err = get_uint(root, what, "generation", 0, JSON_INT_MAX,
			       &m.generation);
	if (!err)
		err = get_models(root, &m);
	if (!err)
		*out = m;
out:
	json_decref(root);
	return err;
}

char *topo_leader_encode(const struct topo_leader *l, enum fr_err *err)
{
	enum fr_err e = leader_check(l);
	enum fr_err dummy;

	if (!err)
		err = &dummy;
	if (e) {
		*err = e;
		return NULL;
	}
	return dump(json_pack("{s:I, s:s, s:s, s:I, s:I}",
			      "id", (json_int_t)l->node_id,
			      "dc", l->dc,
			      "addr", l->addr,
			      "epoch", (json_int_t)l->epoch,
			      "generation", (json_int_t)l->generation),
		    "leader", err);
}

enum fr_err topo_leader_decode(const char *data, size_t len,
			       struct topo_leader *out)
{
	static const char what[] = "leader";
	struct topo_leader l;
	json_t *root = load_object(data, len, what);
	enum fr_err err;
	uint64_t v;

	if (!root)
		return FR_ERR_CORRUPT;
	memset(&l, 0, sizeof(l));
	err = get_uint(root, what, "id", 1, TOPO_NODE_ID_MAX, &v);
	if (err)
		goto out;
	l.node_id = (uint32_t)v;
	err = get_name(root, what, "dc", l.dc, TOPO_NAME_MAX);
	if (!err)
		err = get_addr(root, what, "addr", l.addr);
	if (!err)
		err = get_uint(root, what, "epoch", 0, JSON_INT_MAX, &l.epoch);
	if (!err)
		err = get_uint(root, what, "generation", 0, JSON_INT_MAX,
			       &l.generation);
	if (!err)
		*out = l;
out:
	json_decref(root);
	return err;
}

/* ------------------------------------------------------------------------
 * Model
 * ---------------------------------------------------------------------- */

/* shard_model_validate's failure as FR_ERR_INVAL, its detail kept. */
static enum fr_err validate_model(const struct shard_model_def *def)
{
	char msg[256];

	if (shard_model_validate(def) == FR_OK)
		return FR_OK;
	snprintf(msg, sizeof(msg), "%s", fr_errmsg());
	return fr_fail(FR_ERR_INVAL, "%s", msg);
}

char *topo_model_encode(const struct shard_model_def *def, enum fr_err *err)
{
	enum fr_err dummy;
	json_t *tables;

	if (!err)
		err = &dummy;
	if (!def) {
		*err = fr_fail(FR_ERR_INVAL, "model: NULL");
		return NULL;
	}
	*err = validate_model(def);
	if (*err)
		return NULL;
	for (uint32_t i = 0; i < def->ntables; i++) {
		if (def->tables[i].rows > JSON_INT_MAX) {
			*err = fr_fail(FR_ERR_INVAL,
				       "model '%s': table '%s': field 'rows': %" PRIu64 " is out of range, expected an integer 1..%" PRIu64,
				       def->name, def->tables[i].name,
				       def->tables[i].rows, JSON_INT_MAX);
			return NULL;
		}
	}
	tables = json_array();
	for (uint32_t i = 0; tables && i < def->ntables; i++) {
		const struct shard_table_def *t = &def->tables[i];

		if (json_array_append_new(tables,
					  json_pack("{s:s, s:I, s:I, s:s}",
						    "name", t->name,
						    "rows", (json_int_t)t->rows,
						    "dim", (json_int_t)t->dim,
						    "dtype",
						    shard_dtype_name(t->dtype))) != 0) {
			json_decref(tables);
			tables = NULL;
		}
	}
	if (!tables) {
		*err = fr_fail(FR_ERR_NOMEM, "model: cannot build JSON");
		return NULL;
	}
	return dump(json_pack("{s:s, s:I, s:I, s:o}",
			      "name", def->name,
			      "priority", (json_int_t)def->priority,
			      "shards", (json_int_t)def->shards,
			      "tables", tables),
		    "model", err);
}

static enum fr_err get_table(json_t *t, const char *model, size_t i,
			     struct shard_table_def *out)
{
	char what[SHARD_NAME_MAX + 48];
	char dtype[8];
	enum fr_err err;
	uint64_t v;

	snprintf(what, sizeof(what), "model '%s': table %zu", model, i);
	if (!json_is_object(t))
		return fr_fail(FR_ERR_INVAL, "%s: expected an object", what);
	err = get_name(t, what, "name", out->name, SHARD_NAME_MAX);
	if (err)
		return err;
	err = get_uint(t, what, "rows", 1, JSON_INT_MAX, &out->rows);
	if (err)
		return err;
	err = get_uint(t, what, "dim", 1, SHARD_DIM_MAX, &v);
	if (err)
		return err;
	out->dim = (uint32_t)v;
	err = get_str(t, what, "dtype", "\"f32\" or \"f16\"", dtype,
		      sizeof(dtype));
	if (err)
		return err;
	if (shard_dtype_parse(dtype, &out->dtype) != FR_OK)
		return fr_fail(FR_ERR_INVAL,
			       "%s: field 'dtype': '%s' is unknown, expected \"f32\" or \"f16\"",
			       what, dtype);
	return FR_OK;
}

enum fr_err topo_model_decode(const char *name, const char *data, size_t len,
			      struct shard_model_def *out)
{
	struct shard_model_def def;
	char what[SHARD_NAME_MAX + 16];
	char jname[SHARD_NAME_MAX + 1];
	enum fr_err err;
	json_t *root, *tables, *t;
	uint64_t v;
	size_t i;

	if (!name)
		return fr_fail(FR_ERR_INVAL, "model: znode name is NULL");
	err = topo_check_name(name, SHARD_NAME_MAX, "model: znode name");
	if (err)
		return err;
	snprintf(what, sizeof(what), "model '%s'", name);
	root = load_object(data, len, what);
	if (!root)
		return FR_ERR_CORRUPT;
	memset(&def, 0, sizeof(def));
	err = get_name(root, what, "name", jname, SHARD_NAME_MAX);
	if (err)
		goto out;
	if (strcmp(jname, name) != 0) {
		err = fr_fail(FR_ERR_INVAL,
			      "%s: field 'name': '%s' does not match the znode name",
			      what, jname);
		goto out;
	}
	memcpy(def.name, jname, sizeof(def.name));
	err = get_uint(root, what, "priority", 0, UINT32_MAX, &v);
	if (err)
		goto out;
	def.priority = (uint32_t)v;
	err = get_uint(root, what, "shards", 1, SHARD_SHARDS_MAX, &v);
	if (err)
		goto out;
	def.shards = (uint32_t)v;
	tables = json_object_get(root, "tables");
	if (!tables) {
		err = missing(what, "tables", "an array of 1..64 tables");
		goto out;
	}
	if (!json_is_array(tables) || json_array_size(tables) < 1 ||
	    json_array_size(tables) > SHARD_TABLES_MAX) {
		err = fr_fail(FR_ERR_INVAL,
			      "%s: field 'tables': expected an array of 1..%d tables",
			      what, SHARD_TABLES_MAX);
		goto out;
	}
	json_array_foreach(tables, i, t) {
		err = get_table(t, name, i, &def.tables[i]);
		if (err)
			goto out;
	}
	def.ntables = (uint32_t)json_array_size(tables);
	err = validate_model(&def);
	if (!err)
		*out = def;
out:
	json_decref(root);
	return err;
}

/* ------------------------------------------------------------------------
 * Election child names
 * ---------------------------------------------------------------------- */

/* 1..maxdigits decimal digits at *p without overflow; advances *p. */
static bool parse_dec(const char **p, int maxdigits, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int n = 0;

	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');

		if (++n > maxdigits || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		s++;
	}
	if (n == 0)
		return false;
	*p = s;
	*out = v;
	return true;
}

enum fr_err topo_election_parse(const char *child, uint32_t *node_id,
				uint64_t *generation, uint64_t *seq)
{
	const char *p = child;
	uint64_t id, gen, sq;
	const char *seq_at;
	char b[80];

	if (!child || strncmp(child, "n_", 2) != 0)
		goto bad;
	p += 2;
	if (!parse_dec(&p, 10, &id) || id < 1 || id > TOPO_NODE_ID_MAX ||
	    *p++ != '_')
		goto bad;
	if (!parse_dec(&p, 20, &gen) || *p++ != '_')
		goto bad;
	seq_at = p;
	if (!parse_dec(&p, 10, &sq) || p - seq_at != 10 || *p != '\0')
		goto bad;
	*node_id = (uint32_t)id;
	*generation = gen;
	*seq = sq;
	return FR_OK;
bad:
	return fr_fail(FR_ERR_INVAL,
		       "election child '%s': expected n_<id>_<generation>_<10-digit sequence>",
		       child ? topo_show(b, sizeof(b), child, strlen(child)) :
			       "(null)");
}

enum fr_err topo_election_rank(const char *const *children, uint32_t n,
			       const char *mine, uint32_t *rank,
			       char *pred, size_t pred_cap)
{
	uint64_t myseq, gen, sq, best = 0;
	uint32_t id, below = 0;
	const char *p = NULL;
	bool found = false;
	char b[80];

	if (topo_election_parse(mine, &id, &gen, &myseq) != FR_OK)
		return FR_ERR_INVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (!children[i] ||
		    topo_election_parse(children[i], &id, &gen, &sq) != FR_OK)
			continue;
		if (strcmp(children[i], mine) == 0) {
			found = true;
		} else if (sq < myseq) {
			below++;
			if (!p || sq > best) {
				best = sq;
				p = children[i];
			}
		}
	}
	fr_errclear();
	if (!found)
		return fr_fail(FR_ERR_NOTFOUND,
			       "election: our child '%s' is not among the %" PRIu32 " children",
			       topo_show(b, sizeof(b), mine, strlen(mine)), n);
	if (p) {
		if (!pred || strlen(p) >= pred_cap)
			return fr_fail(FR_ERR_INVAL,
				       "election: no room for the predecessor's name (%zu bytes)",
				       strlen(p));
		memcpy(pred, p, strlen(p) + 1);
	}
	*rank = below;
	return FR_OK;
}

/* ------------------------------------------------------------------------
 * Rollback directives
 * ---------------------------------------------------------------------- */

/* An optional text field: "" when absent, else a string of printable
 * ASCII of at most max bytes. */
static enum fr_err get_text(json_t *o, const char *what, const char *key,
			    char *dst, size_t max)
{
	char expected[64], w[160];
	enum fr_err err;

	dst[0] = '\0';
	if (!json_object_get(o, key))
		return FR_OK;
	snprintf(expected, sizeof(expected),
		 "a string of at most %zu printable ASCII bytes", max);
	err = get_str(o, what, key, expected, dst, max + 1);
	if (err)
		return err;
	snprintf(w, sizeof(w), "%s: field '%s'", what, key);
	return check_text(dst, max, w);
}

/* An optional integer field: 0 when absent. */
static enum fr_err get_uint_opt(json_t *o, const char *what, const char *key,
				uint64_t *out)
{
	*out = 0;
	if (!json_object_get(o, key))
		return FR_OK;
	return get_uint(o, what, key, 0, JSON_INT_MAX, out);
}

static enum fr_err rollback_check(const struct topo_rollback *d)
{
	enum fr_err err;

	if (!d)
		return fr_fail(FR_ERR_INVAL, "rollback: NULL");
	if (d->t < 1 || d->t >= JSON_INT_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "rollback: field 't': %" PRIu64 " is out of range, expected an integer 1..%" PRIu64,
			       d->t, JSON_INT_MAX - 1);
	err = check_u63(d->r, "rollback", "r");
	if (err)
		return err;
	if (d->r <= d->t)
		return fr_fail(FR_ERR_INVAL,
			       "rollback: field 'r': %" PRIu64 " is not above t = %" PRIu64 ", expected t < r",
			       d->r, d->t);
	err = check_u63(d->at_ms, "rollback", "at");
	if (!err)
		err = check_text(d->reason, TOPO_REASON_MAX,
				 "rollback: field 'reason'");
	if (!err)
		err = check_text(d->who, TOPO_WHO_MAX, "rollback: field 'who'");
	return err;
}

char *topo_rollback_encode(const struct topo_rollback *d, enum fr_err *err)
{
	enum fr_err dummy;

	if (!err)
		err = &dummy;
	*err = rollback_check(d);
	if (*err)
		return NULL;
	return dump(json_pack("{s:I, s:I, s:s, s:s, s:I}",
			      "t", (json_int_t)d->t,
			      "r", (json_int_t)d->r,
			      "reason", d->reason,
			      "who", d->who,
			      "at", (json_int_t)d->at_ms),
		    "rollback", err);
}

#define ROLLBACK_SEQ_MAX 9999999999ull   /* 10 digits */

enum fr_err topo_rollback_decode(uint64_t seq, const char *data, size_t len,
				 struct topo_rollback *out)
{
	static const char what[] = "rollback";
	struct topo_rollback d;
	json_t *root;
	enum fr_err err;

	if (seq > ROLLBACK_SEQ_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "rollback: sequence %" PRIu64 " is out of range, expected 0..%llu",
			       seq, ROLLBACK_SEQ_MAX);
	root = load_object(data, len, what);
	if (!root)
		return FR_ERR_CORRUPT;
	memset(&d, 0, sizeof(d));
	d.seq = seq;
	d.epoch = seq + 1;
	err = get_uint(root, what, "t", 1, JSON_INT_MAX - 1, &d.t);
	if (!err)
		err = get_uint(root, what, "r", 1, JSON_INT_MAX, &d.r);
	if (!err && d.r <= d.t)
		err = fr_fail(FR_ERR_INVAL,
			      "rollback: field 'r': %" PRIu64 " is not above t = %" PRIu64 ", expected t < r",
			      d.r, d.t);
	if (!err)
		err = get_uint_opt(root, what, "at", &d.at_ms);
	if (!err)
		err = get_text(root, what, "reason", d.reason, TOPO_REASON_MAX);
	if (!err)
		err = get_text(root, what, "who", d.who, TOPO_WHO_MAX);
	if (!err)
		*out = d;
	json_decref(root);
	return err;
}

enum fr_err topo_rollback_parse_name(const char *child, uint64_t *seq)
{
	const char *p = child;
	uint64_t v;
	char b[80];

	if (!child || strncmp(child, "r_", 2) != 0)
		goto bad;
	p += 2;
	if (!parse_dec(&p, 10, &v) || p - child != 12 || *p != '\0')
		goto bad;
	*seq = v;
	return FR_OK;
bad:
	return fr_fail(FR_ERR_INVAL,
		       "rollback child '%s': expected r_<10-digit sequence>",
		       child ? topo_show(b, sizeof(b), child, strlen(child)) :
			       "(null)");
}

/* ------------------------------------------------------------------------
 * Health
 * ---------------------------------------------------------------------- */

static const char *const health_names[] = {
	[TOPO_HEALTHY] = "healthy",
	[TOPO_UNCERTAIN] = "uncertain",
	[TOPO_CORRUPTED] = "corrupted",
};

#define HEALTH_EXPECTED "expected \"healthy\", \"uncertain\" or \"corrupted\""

const char *topo_health_name(enum topo_health_state s)
{
	if ((unsigned)s >= sizeof(health_names) / sizeof(health_names[0]))
		return "invalid";
	return health_names[s];
}

enum fr_err topo_health_parse(const char *s, enum topo_health_state *out)
{
	char b[40];

	for (unsigned i = 0; s && i < sizeof(health_names) /
					     sizeof(health_names[0]); i++)
		if (strcmp(s, health_names[i]) == 0) {
			*out = (enum topo_health_state)i;
			return FR_OK;
		}
	return fr_fail(FR_ERR_INVAL, "health state '%s' is unknown, "
		       HEALTH_EXPECTED,
		       s ? topo_show(b, sizeof(b), s, strlen(s)) : "(null)");
}

static void copy_text(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

void topo_health_push(struct topo_health *h, enum topo_health_state s,
		      const char *by, const char *why, uint64_t at_ms)
{
	uint32_t keep = h->nhistory < TOPO_HISTORY_MAX ? h->nhistory :
			TOPO_HISTORY_MAX - 1;

	/* A state never set (a zeroed struct: the state znode was absent)
	 * is not history. */
	if (h->at_ms != 0 || h->by[0] || h->why[0] ||
	    h->state != TOPO_HEALTHY) {
		struct topo_health_change *c = &h->history[0];

		memmove(&h->history[1], &h->history[0],
			(size_t)keep * sizeof(h->history[0]));
		c->state = h->state;
		c->at_ms = h->at_ms;
		memcpy(c->by, h->by, sizeof(c->by));
		c->by[sizeof(c->by) - 1] = '\0';
		memcpy(c->why, h->why, sizeof(c->why));
		c->why[sizeof(c->why) - 1] = '\0';
		h->nhistory = keep + 1;
	} else if (h->nhistory > TOPO_HISTORY_MAX) {
		h->nhistory = TOPO_HISTORY_MAX;
	}
	h->state = s;
	h->at_ms = at_ms;
	copy_text(h->by, sizeof(h->by), by);
	copy_text(h->why, sizeof(h->why), why);
}

/* One state (current or in history): state, at, by, why. */
static enum fr_err health_change_check(enum topo_health_state s,
				       uint64_t at, const char *by,
				       const char *why, const char *what)
{
	char w[96];
	enum fr_err err;

	if ((unsigned)s >= sizeof(health_names) / sizeof(health_names[0]))
		return fr_fail(FR_ERR_INVAL, "%s: field 'state': %u is not a state, "
			       HEALTH_EXPECTED, what, (unsigned)s);
	err = check_u63(at, what, "at");
	if (err)
		return err;
	snprintf(w, sizeof(w), "%s: field 'by'", what);
	err = check_text(by, TOPO_WHO_MAX, w);
	if (err)
		return err;
	snprintf(w, sizeof(w), "%s: field 'why'", what);
	return check_text(why, TOPO_REASON_MAX, w);
}

static enum fr_err health_check(const struct topo_health *h)
{
	char w[64];
	enum fr_err err;

	if (!h)
		return fr_fail(FR_ERR_INVAL, "health: NULL");
	err = health_change_check(h->state, h->at_ms, h->by, h->why,
				  "health");
	if (!err)
		err = check_u63(h->epoch, "health", "epoch");
	if (err)
		return err;
	if (h->nhistory > TOPO_HISTORY_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "health: field 'history': %" PRIu32 " entries, expected at most %d",
			       h->nhistory, TOPO_HISTORY_MAX);
	for (uint32_t i = 0; i < h->nhistory; i++) {
		const struct topo_health_change *c = &h->history[i];

		snprintf(w, sizeof(w), "health: field 'history': entry %" PRIu32,
			 i);
		err = health_change_check(c->state, c->at_ms, c->by, c->why,
					  w);
		if (err)
			return err;
	}
	return FR_OK;
}

static json_t *health_change_json(enum topo_health_state s, uint64_t at,
				  const char *by, const char *why)
{
	return json_pack("{s:s, s:s, s:s, s:I}", "state", topo_health_name(s),
			 "by", by, "why", why, "at", (json_int_t)at);
}

char *topo_health_encode(const struct topo_health *h, enum fr_err *err)
{
	enum fr_err dummy;
	json_t *root, *hist;

	if (!err)
		err = &dummy;
	*err = health_check(h);
	if (*err)
		return NULL;
	hist = json_array();
	for (uint32_t i = 0; hist && i < h->nhistory; i++) {
		const struct topo_health_change *c = &h->history[i];

		if (json_array_append_new(hist, health_change_json(c->state,
					  c->at_ms, c->by, c->why)) != 0) {
			json_decref(hist);
			hist = NULL;
		}
	}
	root = hist ? health_change_json(h->state, h->at_ms, h->by, h->why) :
		      NULL;
	if (root && (json_object_set_new(root, "epoch",
					 json_integer((json_int_t)h->epoch)) ||
		     json_object_set_new(root, "history", hist))) {
		json_decref(root);
		root = NULL;
	} else if (!root) {
		json_decref(hist);
	}
	return dump(root, "health", err);
}

/* state (required), by, why, at (optional) of o into the out-params. */
static enum fr_err get_health_change(json_t *o, const char *what,
				     enum topo_health_state *s, uint64_t *at,
				     char *by, char *why)
{
	char name[16];
	enum fr_err err;

	err = get_str(o, what, "state", "a string \"healthy\", \"uncertain\" or \"corrupted\"",
		      name, sizeof(name));
	if (err)
		return err;
	if (topo_health_parse(name, s) != FR_OK)
		return fr_fail(FR_ERR_INVAL, "%s: field 'state': '%s' is unknown, "
			       HEALTH_EXPECTED, what, name);
	err = get_uint_opt(o, what, "at", at);
	if (!err)
		err = get_text(o, what, "by", by, TOPO_WHO_MAX);
	if (!err)
		err = get_text(o, what, "why", why, TOPO_REASON_MAX);
	return err;
}

enum fr_err topo_health_decode(const char *data, size_t len,
			       struct topo_health *out)
{
	static const char what[] = "health";
	struct topo_health *h;
	json_t *root, *hist, *e;
	enum fr_err err;
	char w[64];
	size_t i;

	root = load_object(data, len, what);
	if (!root)
		return FR_ERR_CORRUPT;
	/* About 13 KB: not on a fuzzer's or a small thread's stack. */
	h = calloc(1, sizeof(*h));
	if (!h) {
		json_decref(root);
		return fr_fail(FR_ERR_NOMEM, "health: no memory");
	}
	err = get_health_change(root, what, &h->state, &h->at_ms, h->by,
				h->why);
	if (!err)
		err = get_uint_opt(root, what, "epoch", &h->epoch);
	if (err)
		goto out;
	hist = json_object_get(root, "history");
	if (!hist)
		goto done;
	if (!json_is_array(hist) || json_array_size(hist) > TOPO_HISTORY_MAX) {
		err = fr_fail(FR_ERR_INVAL,
			      "health: field 'history': expected an array of at most %d states",
			      TOPO_HISTORY_MAX);
		goto out;
	}
	json_array_foreach(hist, i, e) {
		struct topo_health_change *c = &h->history[i];

		snprintf(w, sizeof(w), "health: field 'history': entry %zu", i);
		if (!json_is_object(e)) {
			err = fr_fail(FR_ERR_INVAL, "%s: expected an object",
				      w);
			goto out;
		}
		err = get_health_change(e, w, &c->state, &c->at_ms, c->by,
					c->why);
		if (err)
			goto out;
	}
	h->nhistory = (uint32_t)json_array_size(hist);
done:
	*out = *h;
out:
	free(h);
	json_decref(root);
	return err;
}

/* ------------------------------------------------------------------------
 * Role overrides
 * ---------------------------------------------------------------------- */

static int override_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct topo_role_override *)a)->node_id;
	uint32_t y = ((const struct topo_role_override *)b)->node_id;

	return x < y ? -1 : x > y;
}

char *topo_roles_encode(const struct topo_role_override *o, uint32_t n,
			enum fr_err *err)
{
	struct topo_role_override *sorted;
	enum fr_err dummy;
	char w[64], key[16];
	json_t *root;

	if (!err)
		err = &dummy;
	if (n > TOPO_ROLE_OVERRIDES_MAX) {
		*err = fr_fail(FR_ERR_INVAL,
			       "roles: %" PRIu32 " entries, expected at most %d",
			       n, TOPO_ROLE_OVERRIDES_MAX);
		return NULL;
	}
	if (n && !o) {
		*err = fr_fail(FR_ERR_INVAL, "roles: NULL");
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		*err = check_id(o[i].node_id, "roles");
		if (*err)
			return NULL;
		snprintf(w, sizeof(w), "roles: node %" PRIu32, o[i].node_id);
		*err = check_role(o[i].role, w);
		if (*err)
			return NULL;
	}
	sorted = malloc((size_t)(n ? n : 1) * sizeof(*sorted));
	if (!sorted) {
		*err = fr_fail(FR_ERR_NOMEM, "roles: no memory");
		return NULL;
	}
	if (n)
		memcpy(sorted, o, (size_t)n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), override_cmp);
	root = json_object();
	for (uint32_t i = 0; root && i < n; i++) {
		if (i && sorted[i].node_id == sorted[i - 1].node_id) {
			uint32_t id = sorted[i].node_id;

			json_decref(root);
			free(sorted);
			*err = fr_fail(FR_ERR_INVAL,
				       "roles: node %" PRIu32 " appears twice",
				       id);
			return NULL;
		}
		snprintf(key, sizeof(key), "%" PRIu32, sorted[i].node_id);
		if (json_object_set_new(root, key,
					json_string(sorted[i].role)) != 0) {
			json_decref(root);
			root = NULL;
		}
	}
	free(sorted);
	return dump(root, "roles", err);
}

/* A canonical decimal node id: no sign, no leading zero, 1..
 * TOPO_NODE_ID_MAX. */
static bool id_key(const char *s, uint32_t *id)
{
	const char *p = s;
	uint64_t v;

	if (s[0] == '0' || !parse_dec(&p, 10, &v) || *p != '\0' || v < 1 ||
	    v > TOPO_NODE_ID_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

enum fr_err topo_roles_decode(const char *data, size_t len,
			      struct topo_role_override *out, uint32_t cap,
			      uint32_t *n)
{
	struct topo_role_override *tmp;
	json_t *root, *v;
	const char *key;
	enum fr_err err = FR_OK;
	uint32_t cnt = 0;
	char b[40];

	root = load_object(data, len, "roles");
	if (!root)
		return FR_ERR_CORRUPT;
	if (json_object_size(root) > TOPO_ROLE_OVERRIDES_MAX) {
		err = fr_fail(FR_ERR_INVAL,
			      "roles: %zu entries, expected at most %d",
			      json_object_size(root), TOPO_ROLE_OVERRIDES_MAX);
		goto out;
	}
	tmp = malloc(TOPO_ROLE_OVERRIDES_MAX * sizeof(*tmp));
	if (!tmp) {
		err = fr_fail(FR_ERR_NOMEM, "roles: no memory");
		goto out;
	}
	json_object_foreach(root, key, v) {
		struct topo_role_override *o = &tmp[cnt];

		memset(o, 0, sizeof(*o));
		if (!id_key(key, &o->node_id)) {
			err = fr_fail(FR_ERR_INVAL,
				      "roles: key '%s': expected a node id 1..%u",
				      topo_show(b, sizeof(b), key, strlen(key)),
				      TOPO_NODE_ID_MAX);
			break;
		}
		if (!json_is_string(v) ||
		    json_string_length(v) > TOPO_ROLE_MAX ||
		    !topo_role_valid(json_string_value(v))) {
			err = fr_fail(FR_ERR_INVAL,
				      "roles: node %" PRIu32 ": expected a string " ROLE_WORDS,
				      o->node_id);
			break;
		}
		memcpy(o->role, json_string_value(v),
		       json_string_length(v) + 1);
		cnt++;
	}
	if (!err && cnt > cap)
		err = fr_fail(FR_ERR_RANGE,
			      "roles: %" PRIu32 " entries, room for %" PRIu32,
			      cnt, cap);
	if (!err) {
		qsort(tmp, cnt, sizeof(*tmp), override_cmp);
		if (cnt)
			memcpy(out, tmp, (size_t)cnt * sizeof(*tmp));
		*n = cnt;
	}
	free(tmp);
out:
	json_decref(root);
	return err;
}
