/*
 * text.c — the small text rules every module shares: what a name is, what
 * a decimal is, how HOST:PORT splits, how untrusted bytes are shown, and
 * the one hash (XXH3) used for hash tables and fingerprints.
 *
 * Each rule lives here once so that the CLI, the config reader, the wire
 * and ZooKeeper decoders and the witness cannot drift apart: a name the
 * CLI accepts is a name the node accepts.  Not here: anything that knows
 * what the text means (schemas, config keys, znode layouts).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/common.h"

/* ========================================================================
 * Names
 * ===================================================================== */

bool fr_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool fr_text_char(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

bool fr_text_valid_n(const void *s, size_t n)
{
	const unsigned char *p = s;

	for (size_t i = 0; i < n; i++)
		if (!fr_text_char(p[i]))
			return false;
	return true;
}

/* The first rule n bytes of s break, as a code: 0 ok, 1 empty, 2 too
 * long, 3 a byte (*at is its offset), 4 a path element. */
static int name_rule_n(const char *s, size_t n, size_t max, size_t *at)
{
	if (!s || n == 0)
		return 1;
	if (n > max)
		return 2;
	for (size_t i = 0; i < n; i++)
		if (!fr_name_char((unsigned char)s[i])) {
			*at = i;
			return 3;
		}
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return 4;
	return 0;
}

static int name_rule(const char *s, size_t max, size_t *at)
{
	return name_rule_n(s, s ? strnlen(s, max + 1) : 0, max, at);
}

bool fr_name_valid(const char *s, size_t max)
{
	size_t at;

	return name_rule(s, max, &at) == 0;
}

bool fr_name_valid_n(const void *s, size_t n)
{
	size_t at;

	return name_rule_n(s, n, n, &at) == 0;
}

/* "WHAT " for a message, or "" when what is NULL or empty (a caller
 * that puts its own location in front). */
#define WHAT(w) ((w) && *(w) ? (w) : ""), ((w) && *(w) ? " " : "")

#define NAME_EXPECTED "expected 1..%zu bytes of " FR_NAME_CHARS

enum fr_err fr_name_check(const char *what, const char *s, size_t max)
{
	char b[96];
	size_t at = 0;

	switch (name_rule(s, max, &at)) {
	case 0:
		return FR_OK;
	case 1:
		return fr_fail(FR_ERR_INVAL, "%s is empty, " NAME_EXPECTED,
			       what && *what ? what : "name", max);
	case 2:
		return fr_fail(FR_ERR_INVAL,
			       "%s%s'%s...' is longer than %zu bytes, "
			       NAME_EXPECTED, WHAT(what),
			       fr_show_n(b, sizeof(b), s, max < 40 ? max : 40),
			       max, max);
	case 3:
		return fr_fail(FR_ERR_INVAL,
			       "%s%s'%s' has byte 0x%02x at %zu, " NAME_EXPECTED,
			       WHAT(what), fr_show(b, sizeof(b), s),
			       (unsigned char)s[at], at, max);
	default:
		return fr_fail(FR_ERR_INVAL,
			       "%s%s'%s' is a path element, " NAME_EXPECTED
			       " other than '.' and '..'", WHAT(what), s, max);
	}
}

/* ========================================================================
 * Decimals
 * ===================================================================== */

bool fr_dec_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - (unsigned)'0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}


enum fr_err fr_parse_u64(const char *what, const char *s, uint64_t min,
			 uint64_t max, uint64_t *out)
{
	char b[64];
	uint64_t v;
	size_t n = s ? strlen(s) : 0, digits = n ? strspn(s, "0123456789") : 0;
	unsigned long long lo = min, hi = max;
	const char *why;

	if (n == 0)
		return fr_fail(FR_ERR_INVAL, "%s is empty, expected an integer "
			       "in %llu..%llu", what && *what ? what : "value",
			       lo, hi);
	if (digits == n) {
		if (fr_dec_u64(s, n, &v) && v >= min && v <= max) {
			*out = v;
			return FR_OK;
		}
		return fr_fail(FR_ERR_RANGE, "%s%s'%s' is out of range, "
			       "expected an integer in %llu..%llu", WHAT(what),
			       fr_show(b, sizeof(b), s), lo, hi);
	}
	why = s[0] == '-' ? "is negative"
	      : digits == 0 ? "is not a number"
			    : "has trailing characters after the number";
	return fr_fail(FR_ERR_INVAL, "%s%s'%s' %s, expected an integer in "
		       "%llu..%llu", WHAT(what), fr_show(b, sizeof(b), s), why,
		       lo, hi);
}

/* ========================================================================
 * HOST:PORT
 * ===================================================================== */

#define HOSTPORT_EXPECTED \
	"expected HOST:PORT or [IPV6]:PORT with PORT in 1..65535"

/* The host h[0..n) by the rule in common.h: NULL when good, else what is
 * wrong with it (*bad set to the offending byte where there is one). */
static const char *host_problem(const char *h, size_t n, bool bracketed,
				int *bad)
{
	char buf[FR_HOST_MAX + 1], *zone;
	union {
		struct in6_addr a6;
		struct in_addr a4;
	} a;
	bool digits_dots = true;

	memcpy(buf, h, n);
	buf[n] = '\0';
	if (bracketed) {
		zone = strchr(buf, '%');
		if (zone) {
			*zone++ = '\0';
			if (!*zone)
				return "has an empty IPv6 zone";
			for (const char *z = zone; *z; z++)
				if (!fr_name_char((unsigned char)*z))
					return "has an invalid IPv6 zone";
		}
		if (inet_pton(AF_INET6, buf, &a.a6) != 1)
			return "has an invalid IPv6 address in brackets";
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!fr_name_char((unsigned char)buf[i])) {
			*bad = (unsigned char)buf[i];
			return "has byte 0x%02x in the host";
		}
		if (buf[i] != '.' && (buf[i] < '0' || buf[i] > '9'))
			digits_dots = false;
	}
	if (digits_dots && inet_pton(AF_INET, buf, &a.a4) != 1)
		return "has an invalid IPv4 address";
	return NULL;
}

enum fr_err fr_parse_hostport(const char *what, const char *s, char *host,
			      size_t hostcap, uint16_t *port)
{
	const char *h, *he, *ps, *problem;
	char b[96], why[64];
	uint64_t p;
	size_t max = hostcap - 1 < FR_HOST_MAX ? hostcap - 1 : FR_HOST_MAX;
	int bad = 0;

	if (!s || !*s)
		return fr_fail(FR_ERR_INVAL, "%s is empty, " HOSTPORT_EXPECTED,
			       what && *what ? what : "address");
	fr_show(b, sizeof(b), s);
	if (s[0] == '[') {
		h = s + 1;
		he = strchr(h, ']');
		if (!he)
			return fr_fail(FR_ERR_INVAL, "%s%s'%s' has no closing "
				       "']', " HOSTPORT_EXPECTED, WHAT(what), b);
		if (he[1] != ':')
			return fr_fail(FR_ERR_INVAL, "%s%s'%s' has no ':PORT' "
				       "after ']', " HOSTPORT_EXPECTED,
				       WHAT(what), b);
		ps = he + 2;
	} else {
		h = s;
		he = strchr(s, ':');
		if (!he)
			return fr_fail(FR_ERR_INVAL, "%s%s'%s' has no port, "
				       HOSTPORT_EXPECTED, WHAT(what), b);
		if (strchr(he + 1, ':'))
			return fr_fail(FR_ERR_INVAL, "%s%s'%s' has more than "
				       "one ':' (an IPv6 address needs "
				       "brackets), " HOSTPORT_EXPECTED,
				       WHAT(what), b);
		ps = he + 1;
	}
	if (he == h)
		return fr_fail(FR_ERR_INVAL, "%s%s'%s' has an empty host, "
			       HOSTPORT_EXPECTED, WHAT(what), b);
	if ((size_t)(he - h) > max)
		return fr_fail(FR_ERR_INVAL, "%s%s'%s' has a host longer than "
			       "%zu bytes, " HOSTPORT_EXPECTED, WHAT(what), b,
			       max);
	problem = host_problem(h, (size_t)(he - h), s[0] == '[', &bad);
	if (problem) {
		/* problem is one of host_problem's literals. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(why, sizeof(why), problem, bad);
#pragma GCC diagnostic pop
		return fr_fail(FR_ERR_INVAL, "%s%s'%s' %s, " HOSTPORT_EXPECTED,
			       WHAT(what), b, why);
	}
	if (!*ps || strspn(ps, "0123456789") != strlen(ps))
		return fr_fail(FR_ERR_INVAL, "%s%s'%s': port is not a number, "
			       HOSTPORT_EXPECTED, WHAT(what), b);
	if (!fr_dec_u64(ps, strlen(ps), &p) || p < 1 || p > 65535)
		return fr_fail(FR_ERR_INVAL, "%s%s'%s': port is out of range, "
			       HOSTPORT_EXPECTED, WHAT(what), b);
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	*port = (uint16_t)p;
	return FR_OK;
}

const char *fr_strchr_unbracketed(const char *s, int c)
{
	bool bracket = false;

	for (const char *p = s; p && *p; p++) {
		if (*p == '[')
			bracket = true;
		else if (*p == ']')
			bracket = false;
		else if (*p == c && !bracket)
			return p;
	}
	return NULL;
}

/* ========================================================================
 * Showing untrusted bytes
 * ===================================================================== */

/* Bytes c takes when shown. */
static size_t shown_len(unsigned char c)
{
	return c == '\\' ? 2 : (c >= 0x20 && c < 0x7f) ? 1 : 4;
}

const char *fr_show_n(char *buf, size_t cap, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = p;
	size_t o = 0, total = 0, room;

	if (cap == 0)
		return buf;
	if (cap < 4 || !s) {
		buf[0] = '\0';
		return buf;
	}
	for (size_t i = 0; i < n && total < cap; i++)
		total += shown_len(s[i]);
	/* All of it, or as much as leaves room for "...". */
	room = total <= cap - 1 ? cap - 1 : cap - 4;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		size_t need = shown_len(c);

		if (o + need > room) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			buf[o++] = (char)c;
		} else if (need == 2) {
			buf[o++] = '\\';
			buf[o++] = '\\';
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

const char *fr_show(char *buf, size_t cap, const char *s)
{
	if (!s)
		return fr_show_n(buf, cap, "(null)", 6);
	return fr_show_n(buf, cap, s, strlen(s));
}

/* ========================================================================
 * Hashing
 * ===================================================================== */

uint64_t fr_hash64(const void *p, size_t n, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, n, seed);
}

static uint64_t hash_seed;
static pthread_once_t hash_seed_once = PTHREAD_ONCE_INIT;

static void hash_seed_init(void)
{
	uint64_t s = 0;

	/* getrandom can only fall short before the pool is ready; a time
	 * and pid mix is still unpredictable enough to spread keys. */
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		s = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 16);
	}
	hash_seed = s;
}

uint64_t fr_hash_seed(void)
{
	pthread_once(&hash_seed_once, hash_seed_init);
	return hash_seed;
}
