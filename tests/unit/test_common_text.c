/*
 * test_common_text.c — CUnit suite for the shared text rules in common/
 * (names, decimals, HOST:PORT, showing untrusted bytes, hashing) and the
 * Prometheus text renderer, the whole-file reader and the version string.
 * Every module relies on these, so each rule is pinned here with the
 * exact bytes it accepts, refuses and writes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "common/common.h"
#include "unit_main.h"

/* ======================================================================
 * Names
 * ==================================================================== */

static void test_name_rule(void)
{
	static const char *const good[] = { "a", "ctr", "A-b_c.9", "..a",
					    "0", "x.y" };
	static const char *const bad[] = { "", "a b", "a/b", ".", "..",
					   "caf\xc3\xa9", "a\nb", "a:b" };
	char long64[65];

	for (size_t i = 0; i < FR_UNIT_COUNT(good); i++) {
		CU_ASSERT(fr_name_valid(good[i], 63));
		CU_ASSERT_EQUAL(fr_name_check("x", good[i], 63), FR_OK);
	}
	for (size_t i = 0; i < FR_UNIT_COUNT(bad); i++) {
		CU_ASSERT(!fr_name_valid(bad[i], 63));
		CU_ASSERT_EQUAL(fr_name_check("x", bad[i], 63), FR_ERR_INVAL);
	}
	memset(long64, 'a', 64);
	long64[64] = '\0';
	CU_ASSERT(fr_name_valid(long64, 64));
	CU_ASSERT(!fr_name_valid(long64, 63));
	CU_ASSERT(!fr_name_valid(NULL, 63));
	/* Bytes off the wire: exactly n, no NUL needed. */
	CU_ASSERT(fr_name_valid_n("ctrXYZ", 3));
	CU_ASSERT(!fr_name_valid_n("ctr", 0));
	CU_ASSERT(!fr_name_valid_n("a b", 3));
	CU_ASSERT(!fr_name_valid_n("..x", 2));
	CU_ASSERT(!fr_name_valid_n("a\0b", 3));
	/* Free text: printable ASCII only. */
	CU_ASSERT(fr_text_valid_n("a reason, 100% ~", 16));
	CU_ASSERT(fr_text_valid_n("", 0));
	CU_ASSERT(!fr_text_valid_n("tab\there", 8));
	CU_ASSERT(!fr_text_valid_n("del\x7f", 4));
	CU_ASSERT(!fr_text_valid_n("caf\xc3\xa9", 5));
	for (int c = 0; c < 256; c++)
		CU_ASSERT_EQUAL(fr_text_char((unsigned char)c),
				c >= 0x20 && c <= 0x7e);
	for (int c = 0; c < 256; c++) {
		bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_' || c == '.' ||
			    c == '-';

		CU_ASSERT_EQUAL(fr_name_char((unsigned char)c), want);
	}
}

static void test_name_messages(void)
{
	CU_ASSERT_EQUAL(fr_name_check("--model", "a b", 63), FR_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "--model 'a b' has byte 0x20 at "
			       "1, expected 1..63 bytes of [A-Za-z0-9_.-]");
	CU_ASSERT_EQUAL(fr_name_check("--model", "", 63), FR_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "--model is empty, expected "
			       "1..63 bytes of [A-Za-z0-9_.-]");
	CU_ASSERT_EQUAL(fr_name_check("dc", "abcdef", 3), FR_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "dc 'abc...' is longer than 3 "
			       "bytes, expected 1..3 bytes of [A-Za-z0-9_.-]");
	CU_ASSERT_EQUAL(fr_name_check("dc", "..", 3), FR_ERR_INVAL);
	CU_ASSERT(strstr(fr_errmsg(), "dc '..' is a path element") != NULL);
	CU_ASSERT_EQUAL(fr_name_check("t", "a\x01", 9), FR_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "t 'a\\x01' has byte 0x01 at 1, "
			       "expected 1..9 bytes of [A-Za-z0-9_.-]");
}

/* ======================================================================
 * Decimals
 * ==================================================================== */

static void test_decimal(void)
{
	uint64_t v = 7;

	CU_ASSERT(fr_dec_u64("0", 1, &v) && v == 0);
	CU_ASSERT(fr_dec_u64("0000000012", 10, &v) && v == 12);
	CU_ASSERT(fr_dec_u64("18446744073709551615", 20, &v) &&
		  v == UINT64_MAX);
	v = 7;
	CU_ASSERT(!fr_dec_u64("18446744073709551616", 20, &v));
	CU_ASSERT(!fr_dec_u64("", 0, &v));
	CU_ASSERT(!fr_dec_u64("12a", 3, &v));
	CU_ASSERT(!fr_dec_u64("-1", 2, &v));
	CU_ASSERT(!fr_dec_u64("+1", 2, &v));
	CU_ASSERT(!fr_dec_u64(" 1", 2, &v));
	CU_ASSERT_EQUAL(v, 7);    /* untouched on failure */
	CU_ASSERT(fr_dec_u64("123xyz", 3, &v) && v == 123);

	CU_ASSERT_EQUAL(fr_parse_u64("--port", "8080", 1, 65535, &v), FR_OK);
	CU_ASSERT_EQUAL(v, 8080);
	CU_ASSERT_EQUAL(fr_parse_u64("--port", "0", 1, 65535, &v),
			FR_ERR_RANGE);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "--port '0' is out of range, "
			       "expected an integer in 1..65535");
	CU_ASSERT_EQUAL(fr_parse_u64("--port", "99999999999999999999", 1,
				     65535, &v), FR_ERR_RANGE);
	CU_ASSERT_EQUAL(fr_parse_u64("--port", "8o", 1, 65535, &v),
			FR_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "--port '8o' has trailing "
			       "characters after the number, expected an "
			       "integer in 1..65535");
	CU_ASSERT_EQUAL(fr_parse_u64("--port", "", 1, 65535, &v),
			FR_ERR_INVAL);
	CU_ASSERT_EQUAL(fr_parse_u64("--port", "-1", 0, 5, &v), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(v, 8080);
}

/* ======================================================================
 * HOST:PORT
 * ==================================================================== */

static void test_hostport(void)
{
	static const struct {
		const char *in, *host;
		uint16_t port;
	} good[] = {
		{ "127.0.0.1:7000", "127.0.0.1", 7000 },
		{ "localhost:1", "localhost", 1 },
		{ "[::1]:65535", "::1", 65535 },
		{ "[fe80::1%eth0]:80", "fe80::1%eth0", 80 },
	};
	static const char *const bad[] = {
		"", "host", "host:", ":80", "host:0", "host:65536",
		"host:8o", "::1:80", "[::1]80", "[::1:80", "h st:80",
		"host:-1", "host:+1", "[]:80",
	};
	char host[16];
	uint16_t port;

	for (size_t i = 0; i < FR_UNIT_COUNT(good); i++) {
		port = 0;
		CU_ASSERT_EQUAL_FATAL(fr_parse_hostport("--node", good[i].in,
							host, sizeof(host),
							&port), FR_OK);
		CU_ASSERT_STRING_EQUAL(host, good[i].host);
		CU_ASSERT_EQUAL(port, good[i].port);
	}
	for (size_t i = 0; i < FR_UNIT_COUNT(bad); i++) {
		strcpy(host, "unchanged");
		port = 9;
		CU_ASSERT_EQUAL(fr_parse_hostport("--node", bad[i], host,
						  sizeof(host), &port),
				FR_ERR_INVAL);
		CU_ASSERT(strncmp(fr_errmsg(), "--node", 6) == 0);
		CU_ASSERT_STRING_EQUAL(host, "unchanged");
		CU_ASSERT_EQUAL(port, 9);
	}
	/* The host must fit the caller's buffer. */
	CU_ASSERT_EQUAL(fr_parse_hostport("a", "abcdefghijklmnop:1", host,
					  sizeof(host), &port), FR_ERR_INVAL);
	CU_ASSERT(strstr(fr_errmsg(), "longer than 15 bytes") != NULL);
	CU_ASSERT_EQUAL(fr_parse_hostport("a", "host:80x", host, sizeof(host),
					  &port), FR_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "a 'host:80x': port is not a "
			       "number, "
"expected HOST:PORT or [IPV6]:PORT with PORT in "
			       "1..65535");
}

static void test_strchr_unbracketed(void)
{
	const char *s = "h:1,[::1]:2/a/b", *v6 = "[::1]:7";

	CU_ASSERT_PTR_EQUAL(fr_strchr_unbracketed(s, '/'), s + 11);
	CU_ASSERT_PTR_NULL(fr_strchr_unbracketed("[fe80::1/64]:1", '/'));
	CU_ASSERT_PTR_NULL(fr_strchr_unbracketed("h:1,h:2", '/'));
	CU_ASSERT_PTR_NULL(fr_strchr_unbracketed(NULL, '/'));
	/* A ':' inside brackets is not a port separator. */
	CU_ASSERT_PTR_EQUAL(fr_strchr_unbracketed(v6, ':'), v6 + 5);
}

/* ======================================================================
 * Whole files, the version
 * ==================================================================== */

static void test_read_file(void)
{
	char path[] = "/tmp/freshet-test-readXXXXXX";
	uint8_t *buf = NULL;
	size_t len = 99;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(write(fd, "12\n", 3), 3);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(fr_read_file("generation file", path, 64, &buf,
					   &len), FR_OK);
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT(memcmp(buf, "12\n", 4) == 0);    /* NUL after the bytes */
	CU_ASSERT_EQUAL((uintptr_t)buf % 8, 0);
	free(buf);
	buf = NULL;
	CU_ASSERT_EQUAL(fr_read_file("f", path, 2, &buf, &len), FR_ERR_TOOBIG);
	CU_ASSERT(strstr(fr_errmsg(), "size 3, expected <= 2") != NULL);
	CU_ASSERT_PTR_NULL(buf);
	unlink(path);
	CU_ASSERT_EQUAL(fr_read_file("generation file", path, 64, &buf, &len),
			FR_ERR_NOTFOUND);
	CU_ASSERT(strncmp(fr_errmsg(), "generation file '/tmp/", 22) == 0);
}

static void test_version(void)
{
	unsigned a, b, c;
	char tail;

	CU_ASSERT_EQUAL(sscanf(fr_version(), "%u.%u.%u%c", &a, &b, &c, &tail),
			3);
}

/* ======================================================================
 * Showing untrusted bytes
 * ==================================================================== */

static void test_show(void)
{
	char b[16];

	CU_ASSERT_STRING_EQUAL(fr_show(b, sizeof(b), "plain"), "plain");
	CU_ASSERT_STRING_EQUAL(fr_show(b, sizeof(b), "a\nb\\c"),
			       "a\\x0ab\\\\c");
	CU_ASSERT_STRING_EQUAL(fr_show(b, sizeof(b), NULL), "(null)");
	/* 15 usable bytes: cut with "..." so the total fits. */
	CU_ASSERT_STRING_EQUAL(fr_show(b, sizeof(b), "0123456789abcdefgh"),
			       "0123456789ab...");
	/* Exactly 15 bytes fit without a cut. */
	CU_ASSERT_STRING_EQUAL(fr_show(b, sizeof(b), "0123456789abcde"),
			       "0123456789abcde");
	/* An escape is never split. */
	CU_ASSERT_STRING_EQUAL(fr_show(b, sizeof(b), "0123456789\x01\x02"),
			       "0123456789...");
	CU_ASSERT_STRING_EQUAL(fr_show_n(b, sizeof(b), "a\0b", 3),
			       "a\\x00b");
	CU_ASSERT_STRING_EQUAL(fr_show_n(b, sizeof(b), "\xff", 1), "\\xff");
	CU_ASSERT_STRING_EQUAL(fr_show(b, 4, "abcdef"), "...");
	CU_ASSERT_STRING_EQUAL(fr_show(b, 4, "abc"), "abc");
	for (size_t cap = 4; cap <= sizeof(b); cap++) {
		fr_show(b, cap, "\x01\x02\x03\x04\x05\x06\x07\x08");
		CU_ASSERT(strlen(b) < cap);
	}
}

/* ======================================================================
 * Hashing
 * ==================================================================== */

static void test_hash(void)
{
	/* XXH3-64 reference values (xxHash's own test vectors). */
	CU_ASSERT_EQUAL(fr_hash64("", 0, 0), 0x2D06800538D394C2ull);
	CU_ASSERT_EQUAL(fr_hash64("abc", 3, 0), fr_hash64("abc", 3, 0));
	CU_ASSERT_NOT_EQUAL(fr_hash64("abc", 3, 0), fr_hash64("abc", 3, 1));
	CU_ASSERT_NOT_EQUAL(fr_hash64("abc", 3, 0), fr_hash64("abd", 3, 0));
	CU_ASSERT_EQUAL(fr_hash_seed(), fr_hash_seed());
}

/* ======================================================================
 * Prometheus text
 * ==================================================================== */

static const struct fr_prom_family fams[] = {
	{ "t_requests_total", FR_PROM_COUNTER, "Requests, by path." },
	{ "t_lag_seconds", FR_PROM_GAUGE, "Lag with a \\ and\na newline." },
	{ "t_latency_seconds", FR_PROM_HISTOGRAM, "Latency." },
};

static char *text(struct fr_wbuf *w)
{
	fr_wbuf_u8(w, 0);
	CU_ASSERT_EQUAL(w->err, FR_OK);
	return (char *)w->data;
}

static void test_prom_render(void)
{
	struct fr_wbuf w;
	struct fr_hist h = { 0 };

	fr_wbuf_init(&w, 64, 0);
	fr_prom_family(&w, &fams[0]);
	fr_prom_u64(&w, &fams[0], 3, "path", "/a\"b\\c\nd", "code", "200",
		    (const char *)NULL);
	/* Prometheus values are doubles: integers are exact to 2^53. */
	fr_prom_u64(&w, &fams[0], (1ull << 53), (const char *)NULL);
	CU_ASSERT_STRING_EQUAL(text(&w),
		"# HELP t_requests_total Requests, by path.\n"
		"# TYPE t_requests_total counter\n"
		"t_requests_total{path=\"/a\\\"b\\\\c\\nd\",code=\"200\"} 3\n"
		"t_requests_total 9007199254740992\n");
	fr_wbuf_reset(&w);

	fr_prom_one_f64(&w, &fams[1], 0.1);
	fr_prom_f64(&w, &fams[1], NAN, "k", "v", (const char *)NULL);
	fr_prom_f64(&w, &fams[1], -INFINITY, (const char *)NULL);
	CU_ASSERT_STRING_EQUAL(text(&w),
		"# HELP t_lag_seconds Lag with a \\\\ and\\na newline.\n"
		"# TYPE t_lag_seconds gauge\n"
		"t_lag_seconds 0.1\n"
		"t_lag_seconds{k=\"v\"} NaN\n"
		"t_lag_seconds -Inf\n");
	fr_wbuf_reset(&w);

	fr_hist_observe(&h, 0.00005);   /* first bucket */
	fr_hist_observe(&h, 0.003);     /* le 0.005 */
	fr_hist_observe(&h, 99);        /* +Inf */
	fr_hist_observe(&h, -1);        /* clamped to 0 */
	CU_ASSERT_EQUAL(h.count, 4);
	fr_prom_hist(&w, &fams[2], &h, "op", "get", (const char *)NULL);
	{
		const char *s = text(&w);

		CU_ASSERT(strstr(s, "t_latency_seconds_bucket{op=\"get\","
				 "le=\"0.0001\"} 2\n") != NULL);
		CU_ASSERT(strstr(s, "t_latency_seconds_bucket{op=\"get\","
				 "le=\"0.0025\"} 2\n") != NULL);
		CU_ASSERT(strstr(s, "t_latency_seconds_bucket{op=\"get\","
				 "le=\"0.005\"} 3\n") != NULL);
		CU_ASSERT(strstr(s, "t_latency_seconds_bucket{op=\"get\","
				 "le=\"10\"} 3\n") != NULL);
		CU_ASSERT(strstr(s, "t_latency_seconds_bucket{op=\"get\","
				 "le=\"+Inf\"} 4\n") != NULL);
		CU_ASSERT(strstr(s, "t_latency_seconds_count{op=\"get\"} 4\n")
			  != NULL);
		CU_ASSERT(strstr(s, "t_latency_seconds_sum{op=\"get\"} 99.00305")
			  != NULL);
	}
	fr_wbuf_fini(&w);
	CU_ASSERT_STRING_EQUAL(fr_prom_content_type,
			       "text/plain; version=0.0.4; charset=utf-8");
}

static void test_prom_table_check(void)
{
	static const struct fr_prom_family dup[] = {
		{ "a_total", FR_PROM_COUNTER, "x" },
		{ "a_total", FR_PROM_COUNTER, "y" },
	};
	static const struct fr_prom_family bad_counter[] = {
		{ "a_count", FR_PROM_COUNTER, "x" },
	};
	static const struct fr_prom_family bad_name[] = {
		{ "9a", FR_PROM_GAUGE, "x" },
	};
	static const struct fr_prom_family no_help[] = {
		{ "a", FR_PROM_GAUGE, "" },
	};

	CU_ASSERT_EQUAL(fr_prom_table_check(fams, FR_UNIT_COUNT(fams)), FR_OK);
	CU_ASSERT_EQUAL(fr_prom_table_check(dup, 2), FR_ERR_INVAL);
	CU_ASSERT(strstr(fr_errmsg(), "listed twice") != NULL);
	CU_ASSERT_EQUAL(fr_prom_table_check(bad_counter, 1), FR_ERR_INVAL);
	CU_ASSERT(strstr(fr_errmsg(), "_total") != NULL);
	CU_ASSERT_EQUAL(fr_prom_table_check(bad_name, 1), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(fr_prom_table_check(no_help, 1), FR_ERR_INVAL);
}

static const struct fr_unit_test tests[] = {
	{ "name_rule", test_name_rule },
	{ "name_messages", test_name_messages },
	{ "decimal", test_decimal },
	{ "hostport", test_hostport },
	{ "strchr_unbracketed", test_strchr_unbracketed },
	{ "read_file", test_read_file },
	{ "version", test_version },
	{ "show", test_show },
	{ "hash", test_hash },
	{ "prom_render", test_prom_render },
	{ "prom_table_check", test_prom_table_check },
};

int main(void)
{
	return fr_unit_main("common_text", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
