/*
 * test_cli_input.c — CUnit suite for the `freshet` command's input parsing
 * (cli/input.c): the text row format (values, comments, blank lines, CRLF,
 * dim given or inferred, every error with its line number and words), the
 * FRIN binary format (round trip, every header field, truncation, trailing
 * bytes, non-finite values), duplicate handling, --ids and HOST:PORT.
 *
 * Not here: main.c's option handling (the cli_* smoke tests in
 * cli/CMakeLists.txt run the binary), sockets.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "cli/input.h"
#include "testutil.h"
#include "unit_main.h"

static enum fr_err text(struct cli_input *in, const char *s, uint32_t dim)
{
	return cli_input_parse_text(in, s, strlen(s), dim);
}

/* A text input that must fail on `line` with `needle` in the detail. */
static void text_bad(const char *s, uint32_t dim, enum fr_err code,
		     size_t line, const char *needle)
{
	struct cli_input in;

	cli_input_init(&in);
	CU_ASSERT_EQUAL(text(&in, s, dim), code);
	CU_ASSERT_EQUAL(in.line, line);
	CU_ASSERT(errmsg_has(needle));
	/* Nothing half-parsed is left to publish. */
	CU_ASSERT_EQUAL(in.n, 0);
	CU_ASSERT_PTR_NULL(in.rows);
	cli_input_fini(&in);
}

static void test_text_ok(void)
{
	struct cli_input in;

	cli_input_init(&in);
	CU_ASSERT_EQUAL_FATAL(text(&in,
				   "# header comment\n"
				   "1 0.5 -1.25 3\n"
				   "\n"
				   "   \t\n"
				   "  # indented comment\n"
				   "18446744073709551615\t1e-3  2E2 -0\r\n"
				   "7 0x1p3 .5 +4",
				   0),
			      FR_OK);
	CU_ASSERT_EQUAL(in.n, 3);
	CU_ASSERT_EQUAL(in.dim, 3);
	CU_ASSERT_EQUAL(in.rows[0], 1);
	CU_ASSERT_EQUAL(in.rows[1], UINT64_MAX);
	CU_ASSERT_EQUAL(in.rows[2], 7);
	CU_ASSERT_EQUAL(in.values[0], 0.5f);
	CU_ASSERT_EQUAL(in.values[1], -1.25f);
	CU_ASSERT_EQUAL(in.values[2], 3.0f);
	CU_ASSERT_EQUAL(in.values[3], 1e-3f);
	CU_ASSERT_EQUAL(in.values[4], 200.0f);
	CU_ASSERT(in.values[5] == 0.0f && signbit(in.values[5]));
	CU_ASSERT_EQUAL(in.values[6], 8.0f);
	CU_ASSERT_EQUAL(in.values[7], 0.5f);
	CU_ASSERT_EQUAL(in.values[8], 4.0f);
	CU_ASSERT_EQUAL(in.line, 0);

	/* dim given; many rows (growth). */
	{
		size_t cap = 5000 * 40, len = 0;
		char *buf = malloc(cap);

		for (int i = 0; i < 5000; i++)
			len += (size_t)snprintf(buf + len, cap - len,
						"%d %d.5 %d\n", i * 2, i, -i);
		CU_ASSERT_EQUAL(cli_input_parse_text(&in, buf, len, 2), FR_OK);
		CU_ASSERT_EQUAL(in.n, 5000);
		CU_ASSERT_EQUAL(in.dim, 2);
		CU_ASSERT_EQUAL(in.rows[4999], 9998);
		CU_ASSERT_EQUAL(in.values[2 * 4999], 4999.5f);
		CU_ASSERT_EQUAL(in.values[2 * 4999 + 1], -4999.0f);
		free(buf);
	}

	/* From a FILE. */
	{
		static const char s[] = "3 1 2\n4 5 6\n";
		FILE *f = fmemopen((void *)s, sizeof(s) - 1, "r");

		CU_ASSERT_FATAL(f != NULL);
		CU_ASSERT_EQUAL(cli_input_read_text(&in, f, 0), FR_OK);
		CU_ASSERT_EQUAL(in.n, 2);
		CU_ASSERT_EQUAL(in.values[3], 6.0f);
		fclose(f);
	}
	cli_input_fini(&in);
}

static void test_text_errors(void)
{
	text_bad("", 0, FR_ERR_INVAL, 0, "input has no rows (0 lines read)");
	text_bad("# only\n\n  \n", 0, FR_ERR_INVAL, 0,
		 "input has no rows (3 lines read)");
	text_bad("1 1 2\n2 1 2 3\n", 0, FR_ERR_INVAL, 2,
		 "line 2: expected 2 values after the row id (dim 2), got 3");
	text_bad("1 1 2\n\n# c\n4 1\n", 0, FR_ERR_INVAL, 4,
		 "line 4: expected 2 values after the row id (dim 2), got 1");
	text_bad("1 1 2 3\n", 2, FR_ERR_INVAL, 1,
		 "line 1: expected 2 values after the row id (dim 2), got 3");
	text_bad("1 2\n9\n", 0, FR_ERR_INVAL, 2, "line 2: expected 1 values");
	text_bad("9\n", 0, FR_ERR_INVAL, 1, "line 1: row 9 has no values");
	text_bad("1 1\n2 abc\n", 0, FR_ERR_INVAL, 2,
		 "line 2: V0 'abc': not a number");
	text_bad("1 1 2x\n", 0, FR_ERR_INVAL, 1,
		 "line 1: V1 '2x': not a number");
	text_bad("1 1,5\n", 0, FR_ERR_INVAL, 1, "V0 '1,5': not a number");
	text_bad("1 nan\n", 0, FR_ERR_RANGE, 1, "V0 'nan': not a finite");
	text_bad("1 1 -inf\n", 0, FR_ERR_RANGE, 1, "V1 '-inf': not a finite");
	text_bad("1 1e39\n", 0, FR_ERR_RANGE, 1, "V0 '1e39': not a finite");
	text_bad("1 1\n-2 1\n", 0, FR_ERR_INVAL, 2,
		 "line 2: row id '-2': not an unsigned decimal integer");
	text_bad("1.5 1\n", 0, FR_ERR_INVAL, 1, "row id '1.5'");
	text_bad("0x10 1\n", 0, FR_ERR_INVAL, 1, "row id '0x10'");
	text_bad("18446744073709551616 1\n", 0, FR_ERR_RANGE, 1,
		 "line 1: row id '18446744073709551616': larger than "
		 "18446744073709551615");
	text_bad("123456789012345678901234567890123 1\n", 0, FR_ERR_INVAL, 1,
		 "line 1: row id");
	text_bad("1 2\n", CLI_DIM_MAX + 1, FR_ERR_RANGE, 0, "dim 65537");

	/* A NUL byte (strlen cannot carry it: explicit length). */
	{
		static const char s[] = "1 1\n2 1\0" "5\n";
		struct cli_input in;

		cli_input_init(&in);
		CU_ASSERT_EQUAL(cli_input_parse_text(&in, s, sizeof(s) - 1, 0),
				FR_ERR_INVAL);
		CU_ASSERT_EQUAL(in.line, 2);
		CU_ASSERT(errmsg_has("line 2: contains a NUL byte"));
		cli_input_fini(&in);
	}

	/* More values than any dim. */
	{
		size_t cap = (CLI_DIM_MAX + 10) * 2 + 8, len = 0;
		char *buf = malloc(cap);
		struct cli_input in;

		len += (size_t)snprintf(buf, cap, "1");
		for (int i = 0; i < CLI_DIM_MAX + 1; i++) {
			buf[len++] = ' ';
			buf[len++] = '1';
		}
		cli_input_init(&in);
		CU_ASSERT_EQUAL(cli_input_parse_text(&in, buf, len, 0),
				FR_ERR_RANGE);
		CU_ASSERT(errmsg_has("line 1: more than 65536 values"));
		cli_input_fini(&in);
		free(buf);
	}
}

/* ----------------------------------------------------------------------
 * Binary
 * -------------------------------------------------------------------- */

static uint8_t *frin(uint32_t n, uint32_t dim, size_t *len)
{
	size_t l = 16 + (size_t)n * 8 + (size_t)n * dim * 4;
	uint8_t *p = calloc(1, l + 8);
	uint32_t magic = CLI_INPUT_MAGIC;
	uint16_t ver = 1;

	memcpy(p, &magic, 4);
	memcpy(p + 4, &ver, 2);
	memcpy(p + 8, &dim, 4);
	memcpy(p + 12, &n, 4);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id = 1000 + i;

		memcpy(p + 16 + i * 8, &id, 8);
		for (uint32_t j = 0; j < dim; j++) {
			float v = (float)i + (float)j / 4;

			memcpy(p + 16 + (size_t)n * 8 +
				       ((size_t)i * dim + j) * 4,
			       &v, 4);
		}
	}
	*len = l;
	return p;
}

static void bin_bad(const uint8_t *p, size_t len, uint32_t dim,
		    enum fr_err code, const char *needle)
{
	struct cli_input in;

	cli_input_init(&in);
	CU_ASSERT_EQUAL(cli_input_parse_binary(&in, p, len, dim), code);
	CU_ASSERT(errmsg_has(needle));
	CU_ASSERT_EQUAL(in.n, 0);
	CU_ASSERT_PTR_NULL(in.values);
	cli_input_fini(&in);
}

static void patch(uint8_t *p, size_t off, uint32_t v, size_t n)
{
	memcpy(p + off, &v, n);
}

static void test_binary(void)
{
	struct cli_input in;
	size_t len;
	uint8_t *p = frin(3, 4, &len), *q = malloc(len + 8);

	/* The documented header bytes. */
	CU_ASSERT(memcmp(p, "FRIN\1\0\0\0\4\0\0\0\3\0\0\0", 16) == 0);
	cli_input_init(&in);
	CU_ASSERT_EQUAL_FATAL(cli_input_parse_binary(&in, p, len, 0), FR_OK);
	CU_ASSERT_EQUAL(in.n, 3);
	CU_ASSERT_EQUAL(in.dim, 4);
	CU_ASSERT_EQUAL(in.rows[2], 1002);
	CU_ASSERT_EQUAL(in.values[2 * 4 + 3], 2.75f);
	CU_ASSERT_EQUAL(cli_input_parse_binary(&in, p, len, 4), FR_OK);
	{
		FILE *f = fmemopen(p, len, "rb");

		CU_ASSERT_EQUAL(cli_input_read_binary(&in, f, 0), FR_OK);
		CU_ASSERT_EQUAL(in.n, 3);
		fclose(f);
	}
	cli_input_fini(&in);

	bin_bad(p, 0, 0, FR_ERR_INVAL, "empty input");
	bin_bad(p, 15, 0, FR_ERR_TRUNC, "15 bytes, the header needs 16");
	bin_bad(p, len - 1, 0, FR_ERR_TRUNC,
		"n 3 and dim 4 need 88 bytes, the input has 87");
	bin_bad(p, 16, 0, FR_ERR_TRUNC, "need 88 bytes");
	memcpy(q, p, len);
	memset(q + len, 0, 8);
	bin_bad(q, len + 4, 0, FR_ERR_CORRUPT, "4 bytes after the 88");
	bin_bad(p, len, 5, FR_ERR_INVAL, "'dim': got 4, but --dim says 5");

	memcpy(q, p, len);
	patch(q, 0, 0x4e495247, 4);
	bin_bad(q, len, 0, FR_ERR_MAGIC, "'magic'");
	memcpy(q, p, len);
	patch(q, 4, 2, 2);
	bin_bad(q, len, 0, FR_ERR_VERSION, "'version': got 2, expected 1");
	memcpy(q, p, len);
	patch(q, 6, 1, 2);
	bin_bad(q, len, 0, FR_ERR_CORRUPT, "'reserved'");
	memcpy(q, p, len);
	patch(q, 8, 0, 4);
	bin_bad(q, len, 0, FR_ERR_RANGE, "'dim': got 0, expected 1..65536");
	patch(q, 8, CLI_DIM_MAX + 1, 4);
	bin_bad(q, len, 0, FR_ERR_RANGE, "'dim'");
	memcpy(q, p, len);
	patch(q, 12, 0, 4);
	bin_bad(q, len, 0, FR_ERR_INVAL, "'n': got 0");
	/* A count that would overflow 32-bit sizes. */
	patch(q, 12, UINT32_MAX, 4);
	patch(q, 8, CLI_DIM_MAX, 4);
	bin_bad(q, len, 0, FR_ERR_TRUNC, "n 4294967295 and dim 65536");
	/* A non-finite value: row 1 (id 1001), V2. */
	memcpy(q, p, len);
	{
		float nan = NAN;

		memcpy(q + 16 + 24 + (1 * 4 + 2) * 4, &nan, 4);
	}
	bin_bad(q, len, 0, FR_ERR_RANGE, "row 1 (id 1001) V2: not a finite");
	free(p);
	free(q);
}

/* ----------------------------------------------------------------------
 * Duplicates, ids, addresses
 * -------------------------------------------------------------------- */

static void test_dedup(void)
{
	struct cli_input in;

	cli_input_init(&in);
	CU_ASSERT_EQUAL_FATAL(text(&in,
				   "5 1 1\n"
				   "3 2 2\n"
				   "5 3 3\n"
				   "9 4 4\n"
				   "3 5 5\n"
				   "5 6 6\n",
				   0),
			      FR_OK);
	CU_ASSERT_EQUAL(cli_input_dedup(&in), 3);
	/* The last of each id, in the order of those last lines. */
	CU_ASSERT_EQUAL(in.n, 3);
	CU_ASSERT_EQUAL(in.rows[0], 9);
	CU_ASSERT_EQUAL(in.rows[1], 3);
	CU_ASSERT_EQUAL(in.rows[2], 5);
	CU_ASSERT_EQUAL(in.values[0], 4.0f);
	CU_ASSERT_EQUAL(in.values[2], 5.0f);
	CU_ASSERT_EQUAL(in.values[5], 6.0f);
	CU_ASSERT_EQUAL(cli_input_dedup(&in), 0);
	CU_ASSERT_EQUAL(in.n, 3);
	cli_input_fini(&in);
}

static void test_ids(void)
{
	uint64_t *ids;
	uint32_t n;

	CU_ASSERT_EQUAL(cli_parse_ids("1,2,18446744073709551615", &ids, &n),
			FR_OK);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(ids[0], 1);
	CU_ASSERT_EQUAL(ids[2], UINT64_MAX);
	free(ids);
	CU_ASSERT_EQUAL(cli_parse_ids("42", &ids, &n), FR_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(ids[0], 42);
	free(ids);

	CU_ASSERT_EQUAL(cli_parse_ids("", &ids, &n), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("item 1 is empty"));
	CU_ASSERT_PTR_NULL(ids);
	CU_ASSERT_EQUAL(cli_parse_ids("1,,3", &ids, &n), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("item 2 is empty"));
	CU_ASSERT_EQUAL(cli_parse_ids("1,2,", &ids, &n), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("item 3 is empty"));
	CU_ASSERT_EQUAL(cli_parse_ids("1, 2", &ids, &n), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("item 2 ' 2': not an unsigned decimal integer"));
	CU_ASSERT_EQUAL(cli_parse_ids("7,x", &ids, &n), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("item 2 'x'"));
	CU_ASSERT_EQUAL(cli_parse_ids("18446744073709551616", &ids, &n),
			FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("larger than"));
	CU_ASSERT_EQUAL(n, 0);
}

static void test_hostport(void)
{
	char host[256];
	uint16_t port = 0;

	CU_ASSERT_EQUAL(cli_parse_hostport("127.0.0.1:7000", host,
					   sizeof(host), &port),
			FR_OK);
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_EQUAL(port, 7000);
	CU_ASSERT_EQUAL(cli_parse_hostport("node-3.dc1:65535", host,
					   sizeof(host), &port),
			FR_OK);
	CU_ASSERT_STRING_EQUAL(host, "node-3.dc1");
	CU_ASSERT_EQUAL(port, 65535);
	CU_ASSERT_EQUAL(cli_parse_hostport("[::1]:1", host, sizeof(host),
					   &port),
			FR_OK);
	CU_ASSERT_STRING_EQUAL(host, "::1");
	CU_ASSERT_EQUAL(port, 1);

	CU_ASSERT_EQUAL(cli_parse_hostport("localhost", host, sizeof(host),
					   &port),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("expected HOST:PORT"));
	CU_ASSERT_EQUAL(cli_parse_hostport(":7000", host, sizeof(host), &port),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("empty host"));
	CU_ASSERT_EQUAL(cli_parse_hostport("h:0", host, sizeof(host), &port),
			FR_ERR_RANGE);
	CU_ASSERT_EQUAL(cli_parse_hostport("h:65536", host, sizeof(host),
					   &port),
			FR_ERR_RANGE);
	CU_ASSERT_EQUAL(cli_parse_hostport("h:", host, sizeof(host), &port),
			FR_ERR_INVAL);
	CU_ASSERT_EQUAL(cli_parse_hostport("h:7x", host, sizeof(host), &port),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("port '7x'"));
	CU_ASSERT_EQUAL(cli_parse_hostport("::1:7000", host, sizeof(host),
					   &port),
			FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("brackets"));
	CU_ASSERT_EQUAL(cli_parse_hostport("[::1]7000", host, sizeof(host),
					   &port),
			FR_ERR_INVAL);
}

static const struct fr_unit_test tests[] = {
	{ "text", test_text_ok },
	{ "text errors", test_text_errors },
	{ "binary", test_binary },
	{ "duplicates", test_dedup },
	{ "ids", test_ids },
	{ "host:port", test_hostport },
};

int main(void)
{
	return fr_unit_main("cli_input", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
