/*
 * codec.c — the JSON of every znode freshet reads or writes (member with
 * its per-model status, leader, model, rollback directive, health state,
 * role overrides; formats in topology.h), the election and rollback
 * child names, and the rules under both: what a field may hold (names by
 * fr_name_check, addresses, roles, the ZooKeeper connect string, node
 * ids), when two structs are equal, how lists are ordered, and what each
 * listed child must be (struct topo_kind, for the node and the admin
 * client alike).
 *
 * Everything decoded here came from ZooKeeper and is untrusted
 * (docs/design.md rule 7): each decoder checks that the bytes are one
 * JSON object and nothing after it, that every field it needs is present
 * with the right type and range, and fails with a detail naming the
 * field.  Keys it does not know are ignored, so a newer node may add
 * fields.  Duplicate keys are refused: two readers must not disagree
 * about what a znode says.
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
 * (member.c, reads.c, session.c, admin.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "topology/topo_int.h"

/* The largest integer a JSON field holds: jansson's integers are int64. */
#define INT_FIELD_MAX ((uint64_t)INT64_MAX)
#define ADDR_EXPECTED "expected HOST:PORT or [IPV6]:PORT, PORT 1..65535"
#define HOSTS_EXPECTED "expected HOST:PORT[,HOST:PORT...][/CHROOT]"
#define PORT_DIGITS_MAX 5

/* ------------------------------------------------------------------------
 * Field rules (names: fr_name_check)
 * ---------------------------------------------------------------------- */

enum fr_err topo_check_addr(const char *what, const char *s)
{
	char host[FR_HOST_MAX + 1], b[80];
	size_t len = strnlen(s, TOPO_ADDR_MAX + 1);
	uint16_t port;
	enum fr_err err;

	if (len > TOPO_ADDR_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "%s '%s' is longer than %d bytes, " ADDR_EXPECTED,
			       what, fr_show_n(b, sizeof(b), s, len),
			       TOPO_ADDR_MAX);
	err = fr_parse_hostport(what, s, host, sizeof(host), &port);
	if (err)
		return err;
	/* fr_parse_hostport reads "h:000080" as port 80; a znode spells
	 * each address one way. */
	if (strlen(strrchr(s, ':') + 1) > PORT_DIGITS_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "%s '%s': port has more than %d digits, "
			       ADDR_EXPECTED, what, fr_show(b, sizeof(b), s),
			       PORT_DIGITS_MAX);
	return FR_OK;
}

enum fr_err topo_check_roles(const char *what, const char *s)
{
	char b[80];
	size_t len = strnlen(s, TOPO_ROLES_MAX + 1);
	size_t word = 0;

	fr_show_n(b, sizeof(b), s, len);
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

enum fr_err topo_check_hosts(const char *what, const char *hosts)
{
	size_t n = hosts ? strnlen(hosts, TOPO_HOSTS_MAX + 1) : 0;
	char b[80];

	if (n == 0)
		return fr_fail(FR_ERR_INVAL, "%s is empty, " HOSTS_EXPECTED,
			       what);
	if (n > TOPO_HOSTS_MAX)
		return fr_fail(FR_ERR_INVAL, "%s is longer than %d bytes, "
			       HOSTS_EXPECTED, what, TOPO_HOSTS_MAX);
	fr_show_n(b, sizeof(b), hosts, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)hosts[i] <= 0x20 ||
		    (unsigned char)hosts[i] > 0x7e)
			return fr_fail(FR_ERR_INVAL,
				       "%s '%s' has byte 0x%02x at %zu, "
				       HOSTS_EXPECTED " without spaces", what,
				       b, (unsigned char)hosts[i], i);
	if (hosts[0] == '/' || hosts[0] == ',')
		return fr_fail(FR_ERR_INVAL, "%s '%s' has no host before '%c', "
			       HOSTS_EXPECTED, what, b, hosts[0]);
	return FR_OK;
}

const char *topo_hosts_chroot(const char *hosts)
{
	return fr_strchr_unbracketed(hosts, '/');
}

bool topo_parse_node_id(const char *s, uint32_t *id)
{
	size_t n = s ? strnlen(s, 11) : 0;
	uint64_t v;

	if (n == 0 || n > 10 || s[0] == '0' || !fr_dec_u64(s, n, &v) ||
	    v > TOPO_NODE_ID_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
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
	if (v > INT_FIELD_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "%s: field '%s': %" PRIu64 " is out of range, expected an integer 0..%" PRIu64,
			       what, key, v, INT_FIELD_MAX);
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
			       what, fr_show_n(b, sizeof(b), s, len), max);
	for (size_t i = 0; i < len; i++)
		if (!fr_text_char((unsigned char)s[i]))
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
			       fr_show_n(b, sizeof(b), role, len));
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
		err = fr_name_check(w, s->model, SHARD_NAME_MAX);
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
		err = fr_name_check("member: field 'dc'", m->dc,
				    TOPO_NAME_MAX);
	if (!err)
		err = topo_check_addr("member: field 'addr'", m->addr);
	if (!err)
		err = topo_check_addr("member: field 'admin'", m->admin);
	if (!err)
		err = topo_check_roles("member: field 'roles'", m->roles);
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
		err = fr_name_check("leader: field 'dc'", l->dc,
				    TOPO_NAME_MAX);
	if (!err)
		err = topo_check_addr("leader: field 'addr'", l->addr);
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
			fr_show(b, sizeof(b), je.text),
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

	snprintf(expected, sizeof(expected),
		 "a string of 1..%zu bytes of " FR_NAME_CHARS, max);
	err = get_str(o, what, key, expected, dst, max + 1);
	if (err)
		return err;
	snprintf(w, sizeof(w), "%s: field '%s'", what, key);
	return fr_name_check(w, dst, max);
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
	return topo_check_addr(w, dst);
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

		err = fr_name_check("member: field 'models': model name", key,
				    SHARD_NAME_MAX);
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
		err = get_uint(e, w, "epoch", 0, INT_FIELD_MAX, &st->epoch);
		if (!err)
			err = get_uint(e, w, "cut", 0, INT_FIELD_MAX, &st->cut);
		if (!err)
			err = get_uint(e, w, "horizon", 0, INT_FIELD_MAX,
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
		err = get_uint(root, what, "generation", 0, INT_FIELD_MAX,
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
		err = get_uint(root, what, "epoch", 0, INT_FIELD_MAX, &l.epoch);
	if (!err)
		err = get_uint(root, what, "generation", 0, INT_FIELD_MAX,
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
		if (def->tables[i].rows > INT_FIELD_MAX) {
			*err = fr_fail(FR_ERR_INVAL,
				       "model '%s': table '%s': field 'rows': %" PRIu64 " is out of range, expected an integer 1..%" PRIu64,
				       def->name, def->tables[i].name,
				       def->tables[i].rows, INT_FIELD_MAX);
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
	err = get_uint(t, what, "rows", 1, INT_FIELD_MAX, &out->rows);
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
	err = fr_name_check("model: znode name", name, SHARD_NAME_MAX);
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

/* The run of digits at *p, 1..max of them, as a number (fr_dec_u64:
 * no overflow); *p moves past it. */
static bool dec_run(const char **p, size_t max, uint64_t *out)
{
	size_t n = strspn(*p, "0123456789");

	if (n > max || !fr_dec_u64(*p, n, out))
		return false;
	*p += n;
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
	if (!dec_run(&p, 10, &id) || id < 1 || id > TOPO_NODE_ID_MAX ||
	    *p++ != '_')
		goto bad;
	if (!dec_run(&p, 20, &gen) || *p++ != '_')
		goto bad;
	seq_at = p;
	if (!dec_run(&p, 10, &sq) || p - seq_at != 10 || *p != '\0')
		goto bad;
	*node_id = (uint32_t)id;
	*generation = gen;
	*seq = sq;
	return FR_OK;
bad:
	return fr_fail(FR_ERR_INVAL,
		       "election child '%s': expected n_<id>_<generation>_<10-digit sequence>",
		       fr_show(b, sizeof(b), child));
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
			       fr_show(b, sizeof(b), mine), n);
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
	return get_uint(o, what, key, 0, INT_FIELD_MAX, out);
}

static enum fr_err rollback_check(const struct topo_rollback *d)
{
	enum fr_err err;

	if (!d)
		return fr_fail(FR_ERR_INVAL, "rollback: NULL");
	if (d->t < 1 || d->t >= INT_FIELD_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "rollback: field 't': %" PRIu64 " is out of range, expected an integer 1..%" PRIu64,
			       d->t, INT_FIELD_MAX - 1);
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
	err = get_uint(root, what, "t", 1, INT_FIELD_MAX - 1, &d.t);
	if (!err)
		err = get_uint(root, what, "r", 1, INT_FIELD_MAX, &d.r);
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
	uint64_t v;
	char b[80];

	if (child && strncmp(child, "r_", 2) == 0 &&
	    strnlen(child, 13) == 12 && fr_dec_u64(child + 2, 10, &v)) {
		*seq = v;
		return FR_OK;
	}
	return fr_fail(FR_ERR_INVAL,
		       "rollback child '%s': expected r_<10-digit sequence>",
		       fr_show(b, sizeof(b), child));
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
		       fr_show(b, sizeof(b), s));
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
		if (!topo_parse_node_id(key, &o->node_id)) {
			err = fr_fail(FR_ERR_INVAL,
				      "roles: key '%s': expected a node id 1..%u",
				      fr_show(b, sizeof(b), key),
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

/* ------------------------------------------------------------------------
 * Equality and order
 * ---------------------------------------------------------------------- */

bool topo_member_eq(const struct topo_member *a, const struct topo_member *b)
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

bool topo_leader_eq(const struct topo_leader *a, const struct topo_leader *b)
{
	return a->node_id == b->node_id && a->epoch == b->epoch &&
	       a->generation == b->generation && strcmp(a->dc, b->dc) == 0 &&
	       strcmp(a->addr, b->addr) == 0;
}

bool topo_model_eq(const struct shard_model_def *a,
		   const struct shard_model_def *b)
{
	if (strcmp(a->name, b->name) != 0 || a->priority != b->priority ||
	    a->shards != b->shards || a->ntables != b->ntables)
		return false;
	for (uint32_t i = 0; i < a->ntables; i++) {
		const struct shard_table_def *x = &a->tables[i];
		const struct shard_table_def *y = &b->tables[i];

		if (strcmp(x->name, y->name) != 0 || x->rows != y->rows ||
		    x->dim != y->dim || x->dtype != y->dtype)
			return false;
	}
	return true;
}

bool topo_rollback_eq(const struct topo_rollback *a,
		      const struct topo_rollback *b)
{
	return a->seq == b->seq && a->epoch == b->epoch && a->t == b->t &&
	       a->r == b->r && a->at_ms == b->at_ms &&
	       strcmp(a->reason, b->reason) == 0 &&
	       strcmp(a->who, b->who) == 0;
}

bool topo_health_eq(const struct topo_health *a, const struct topo_health *b)
{
	if (a->state != b->state || a->at_ms != b->at_ms ||
	    strcmp(a->by, b->by) != 0 || strcmp(a->why, b->why) != 0 ||
	    a->epoch != b->epoch || a->nhistory != b->nhistory)
		return false;
	for (uint32_t i = 0; i < a->nhistory && i < TOPO_HISTORY_MAX; i++) {
		const struct topo_health_change *x = &a->history[i];
		const struct topo_health_change *y = &b->history[i];

		if (x->state != y->state || x->at_ms != y->at_ms ||
		    strcmp(x->by, y->by) != 0 || strcmp(x->why, y->why) != 0)
			return false;
	}
	return true;
}

int topo_member_cmp(const void *a, const void *b)
{
	const struct topo_member *x = a, *y = b;
	int c = strcmp(x->dc, y->dc);

	if (c)
		return c;
	return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

int topo_leader_cmp(const void *a, const void *b)
{
	return strcmp(((const struct topo_leader *)a)->dc,
		      ((const struct topo_leader *)b)->dc);
}

static int model_cmp(const void *a, const void *b)
{
	return strcmp(((const struct shard_model_def *)a)->name,
		      ((const struct shard_model_def *)b)->name);
}

static int rollback_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct topo_rollback *)a)->seq;
	uint64_t y = ((const struct topo_rollback *)b)->seq;

	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------------
 * Listed children (struct topo_kind)
 * ---------------------------------------------------------------------- */

static enum fr_err member_name(const char *child, uint64_t *key)
{
	uint32_t id;

	if (!topo_parse_node_id(child, &id))
		return fr_fail(FR_ERR_INVAL,
			       "name is not a node id 1..%u", TOPO_NODE_ID_MAX);
	*key = id;
	return FR_OK;
}

static enum fr_err member_read(const char *child, uint64_t id,
			       const void *dc, const char *data, size_t len,
			       void *out)
{
	struct topo_member *m = out;
	enum fr_err err = topo_member_decode(data, len, m);

	if (!err && (m->node_id != id || strcmp(m->dc, dc) != 0))
		err = fr_fail(FR_ERR_INVAL,
			      "says node %" PRIu32 " in dc '%s', not what its path says",
			      m->node_id, m->dc);
	return err;
}

static bool member_eq_v(const void *a, const void *b)
{
	return topo_member_eq(a, b);
}

const struct topo_kind topo_kind_member = {
	sizeof(struct topo_member), member_name, member_read,
	topo_member_cmp, member_eq_v,
};

static enum fr_err leader_name(const char *child, uint64_t *key)
{
	(void)key;
	return fr_name_check("dc name", child, TOPO_NAME_MAX);
}

static enum fr_err leader_read(const char *child, uint64_t key,
			       const void *ctx, const char *data, size_t len,
			       void *out)
{
	struct topo_leader *l = out;
	enum fr_err err = topo_leader_decode(data, len, l);

	(void)key;
	(void)ctx;
	if (!err && strcmp(l->dc, child) != 0)
		err = fr_fail(FR_ERR_INVAL,
			      "says dc '%s', not what its path says", l->dc);
	return err;
}

static bool leader_eq_v(const void *a, const void *b)
{
	return topo_leader_eq(a, b);
}

const struct topo_kind topo_kind_leader = {
	sizeof(struct topo_leader), leader_name, leader_read,
	topo_leader_cmp, leader_eq_v,
};

/* The znode name is checked by the decoder (it must be the JSON's). */
static enum fr_err model_read(const char *child, uint64_t key,
			      const void *ctx, const char *data, size_t len,
			      void *out)
{
	(void)key;
	(void)ctx;
	return topo_model_decode(child, data, len, out);
}

static bool model_eq_v(const void *a, const void *b)
{
	return topo_model_eq(a, b);
}

const struct topo_kind topo_kind_model = {
	sizeof(struct shard_model_def), NULL, model_read, model_cmp,
	model_eq_v,
};

static enum fr_err rollback_read(const char *child, uint64_t seq,
				 const void *ctx, const char *data, size_t len,
				 void *out)
{
	(void)child;
	(void)ctx;
	return topo_rollback_decode(seq, data, len, out);
}

static bool rollback_eq_v(const void *a, const void *b)
{
	return topo_rollback_eq(a, b);
}

const struct topo_kind topo_kind_rollback = {
	sizeof(struct topo_rollback), topo_rollback_parse_name, rollback_read,
	rollback_cmp, rollback_eq_v,
};
