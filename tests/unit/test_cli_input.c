/*
 * test_cli_input.c — CUnit suite for the `freshet` command's input parsing
 * (cli/input.c): the text row format (values, comments, blank lines, CRLF,
 * dim given or inferred and then checked against the table's, every error
 * with its line number and words), the FRIN binary format (round trip,
 * every header field, truncation, trailing bytes, non-finite values),
 * duplicate handling, --ids and `model create`'s table specs.
 *
 * Not here: main.c's option handling (the cli_* smoke tests in
 * cli/CMakeLists.txt run the binary), sockets, the shared text rules
 * themselves (names, decimals, HOST:PORT: test_common_text.c).
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

/* What fr_parse_u64 says about s as `what` in 0..max.  Decimal errors
 * carry common/'s words (the CLI, the node and the config reader share
 * them), so the tests ask the rule rather than pin a copy of its text. */
static const char *u64_words(const char *what, const char *s, uint64_t max)
{
	static char buf[512];
	uint64_t v;

	CU_ASSERT_NOT_EQUAL(fr_parse_u64(what, s, 0, max, &v), FR_OK);
	snprintf(buf, sizeof(buf), "%s", fr_errmsg());
	return buf;
}

/* A text input that must fail on `line` with `needle` in the detail; with
 * dec, the detail is "line N: " and what fr_parse_u64 says of dec as the
 * needle (a row id). */
struct text_case {
	const char *s;
	uint32_t dim;
	enum fr_err code;
	size_t line;
	const char *needle;
	const char *dec;
};

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
	/* dim came from line 2, the first data line. */
	CU_ASSERT_EQUAL(in.dim_line, 2);

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
		CU_ASSERT_EQUAL(in.dim_line, 0);   /* given */
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

static const struct text_case bad_text[] = {
	{ "", 0, FR_ERR_INVAL, 0, "input has no rows (0 lines read)", NULL },
	{ "# only\n\n  \n", 0, FR_ERR_INVAL, 0,
	  "input has no rows (3 lines read)", NULL },
	{ "1 1 2\n2 1 2 3\n", 0, FR_ERR_INVAL, 2,
	  "line 2: expected 2 values after the row id (dim 2, from line 1), "
	  "got 3", NULL },
	{ "1 1 2\n\n# c\n4 1\n", 0, FR_ERR_INVAL, 4,
	  "line 4: expected 2 values after the row id (dim 2, from line 1), "
	  "got 1", NULL },
	{ "1 1 2 3\n", 2, FR_ERR_INVAL, 1,
	  "line 1: expected 2 values after the row id (dim 2), got 3", NULL },
	{ "1 2\n9\n", 0, FR_ERR_INVAL, 2, "line 2: expected 1 values", NULL },
	{ "9\n", 0, FR_ERR_INVAL, 1, "line 1: row 9 has no values", NULL },
	{ "1 1\n2 abc\n", 0, FR_ERR_INVAL, 2,
	  "line 2: V0 'abc': not a number", NULL },
	{ "1 1 2x\n", 0, FR_ERR_INVAL, 1, "line 1: V1 '2x': not a number",
	  NULL },
	{ "1 1,5\n", 0, FR_ERR_INVAL, 1, "V0 '1,5': not a number", NULL },
	/* Untrusted bytes are shown escaped. */
	{ "1 1\x1b[2J\n", 0, FR_ERR_INVAL, 1,
	  "V0 '1\\x1b[2J': not a number", NULL },
	{ "1 nan\n", 0, FR_ERR_RANGE, 1, "V0 'nan': not a finite", NULL },
	{ "1 1 -inf\n", 0, FR_ERR_RANGE, 1, "V1 '-inf': not a finite", NULL },
	{ "1 1e39\n", 0, FR_ERR_RANGE, 1, "V0 '1e39': not a finite", NULL },
	{ "1 1\n-2 1\n", 0, FR_ERR_INVAL, 2, "row id", "-2" },
	{ "1.5 1\n", 0, FR_ERR_INVAL, 1, "row id", "1.5" },
	{ "0x10 1\n", 0, FR_ERR_INVAL, 1, "row id", "0x10" },
	{ "18446744073709551616 1\n", 0, FR_ERR_RANGE, 1, "row id",
	  "18446744073709551616" },
	/* Longer than the parser's stack buffer: the same words. */
	{ "123456789012345678901234567890123 1\n", 0, FR_ERR_RANGE, 1,
	  "row id", "123456789012345678901234567890123" },
	{ "1 2\n", CLI_DIM_MAX + 1, FR_ERR_RANGE, 0, "dim 65537", NULL },
};

static void test_text_errors(void)
{
	for (size_t i = 0; i < FR_UNIT_COUNT(bad_text); i++) {
		const struct text_case *c = &bad_text[i];
		char want[600];
		struct cli_input in;

		if (c->dec)
			snprintf(want, sizeof(want), "line %zu: %s", c->line,
				 u64_words(c->needle, c->dec, UINT64_MAX));
		else
			snprintf(want, sizeof(want), "%s", c->needle);
		cli_input_init(&in);
		CU_ASSERT(text(&in, c->s, c->dim) == c->code &&
			  in.line == c->line);
		CU_ASSERT(errmsg_has(want));
		/* Nothing half-parsed is left to publish. */
		CU_ASSERT(in.n == 0 && in.rows == NULL);
		cli_input_fini(&in);
	}

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

/* A header field set to a bad value, and what the parser must say. */
static const struct {
	size_t off, size;
	uint32_t v;
	enum fr_err code;
	const char *needle;
} bad_fields[] = {
	{ 0, 4, 0x4e495247, FR_ERR_MAGIC, "'magic'" },
	{ 4, 2, 2, FR_ERR_VERSION, "'version': got 2, expected 1" },
	{ 6, 2, 1, FR_ERR_CORRUPT, "'reserved'" },
	{ 8, 4, 0, FR_ERR_RANGE, "'dim': got 0, expected 1..65536" },
	{ 8, 4, CLI_DIM_MAX + 1, FR_ERR_RANGE, "'dim'" },
	{ 12, 4, 0, FR_ERR_INVAL, "'n': got 0" },
};

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

	for (size_t i = 0; i < FR_UNIT_COUNT(bad_fields); i++) {
		memcpy(q, p, len);
		memcpy(q + bad_fields[i].off, &bad_fields[i].v,
		       bad_fields[i].size);
		bin_bad(q, len, 0, bad_fields[i].code, bad_fields[i].needle);
	}
	/* A count that would overflow 32-bit sizes. */
	{
		uint32_t n = UINT32_MAX, dim = CLI_DIM_MAX;

		memcpy(q, p, len);
		memcpy(q + 12, &n, 4);
		memcpy(q + 8, &dim, 4);
		bin_bad(q, len, 0, FR_ERR_TRUNC, "n 4294967295 and dim 65536");
	}
	/* A non-finite value: row 1 (id 1001), V2.  Rows count from 0, as
	 * their offsets do; text lines from 1. */
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
	{
		static const uint64_t rows[] = { 9, 3, 5 };
		static const float values[] = { 4, 4, 5, 5, 6, 6 };

		CU_ASSERT_EQUAL_FATAL(in.n, 3);
		CU_ASSERT(memcmp(in.rows, rows, sizeof(rows)) == 0);
		CU_ASSERT(memcmp(in.values, values, sizeof(values)) == 0);
	}
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
	CU_ASSERT(errmsg_has(u64_words("--ids item 2", " 2", UINT64_MAX)));
	CU_ASSERT_EQUAL(cli_parse_ids("7,x", &ids, &n), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("--ids item 2 'x'"));
	CU_ASSERT_EQUAL(cli_parse_ids("18446744073709551616", &ids, &n),
			FR_ERR_RANGE);
	CU_ASSERT(errmsg_has(u64_words("--ids item 1", "18446744073709551616",
				       UINT64_MAX)));
	/* An item too long for the stack buffer: the same words. */
	CU_ASSERT_EQUAL(cli_parse_ids("1,12345678901234567890123456789012345",
				      &ids, &n), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has(u64_words("--ids item 2",
				       "12345678901234567890123456789012345",
				       UINT64_MAX)));
	CU_ASSERT_EQUAL(n, 0);
}

/* Without --dim, text input takes its dim from its first data line; the
 * node's table dim is then checked against it, naming that line. */
static void test_check_dim(void)
{
	struct cli_input in;

	cli_input_init(&in);
	CU_ASSERT_EQUAL_FATAL(text(&in, "# c\n\n5 1 2\n6 3 4\n", 0), FR_OK);
	CU_ASSERT_EQUAL(in.dim_line, 3);
	CU_ASSERT_EQUAL(cli_input_check_dim(&in, 2, "users"), FR_OK);
	CU_ASSERT_EQUAL(cli_input_check_dim(&in, 16, "users"), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("line 3: expected 16 values after the row id "
			     "(table 'users' has dim 16), got 2"));
	/* A given dim, or binary input: the node checks. */
	CU_ASSERT_EQUAL_FATAL(text(&in, "5 1 2\n", 2), FR_OK);
	CU_ASSERT_EQUAL(cli_input_check_dim(&in, 16, "users"), FR_OK);
	cli_input_fini(&in);
}

static void test_table_spec(void)
{
	struct shard_table_def t;

	memset(&t, 0, sizeof(t));
	CU_ASSERT_EQUAL_FATAL(cli_parse_table("users:1000:64", &t), FR_OK);
	CU_ASSERT(strcmp(t.name, "users") == 0 && t.rows == 1000 &&
		  t.dim == 64 && t.dtype == SHARD_F32);
	CU_ASSERT_EQUAL(cli_parse_table("i:5:8:f16", &t), FR_OK);
	CU_ASSERT(strcmp(t.name, "i") == 0 && t.rows == 5 && t.dim == 8 &&
		  t.dtype == SHARD_F16);

	/* Names by the shared rule, worded by it. */
	CU_ASSERT_EQUAL(cli_parse_table("a b:1:1", &t), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("--table 'a b:1:1': NAME 'a b' has byte 0x20 "
			     "at 1, expected 1..63 bytes of " FR_NAME_CHARS));
	CU_ASSERT_EQUAL(cli_parse_table("..:1:1", &t), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("NAME '..' is a path element"));
	CU_ASSERT_EQUAL(cli_parse_table("u:x:1", &t), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has(u64_words("--table 'u:x:1': ROWS", "x",
				       INT64_MAX)));
	CU_ASSERT_EQUAL(cli_parse_table("u:0:1", &t), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("ROWS 0: expected 1..9223372036854775807"));
	CU_ASSERT_EQUAL(cli_parse_table("u:1:65537", &t), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has(u64_words("--table 'u:1:65537': DIM", "65537",
				       SHARD_DIM_MAX)));
	CU_ASSERT_EQUAL(cli_parse_table("u:1", &t), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("is missing DIM"));
	CU_ASSERT_EQUAL(cli_parse_table("u:1:1:f64", &t), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("DTYPE 'f64' is unknown"));
	/* The spec is shown escaped. */
	CU_ASSERT_EQUAL(cli_parse_table("u\t:1:1", &t), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("--table 'u\\x09:1:1'"));
	CU_ASSERT_STRING_EQUAL(t.name, "i");   /* untouched on error */
}

static const struct fr_unit_test tests[] = {
	{ "text", test_text_ok },
	{ "text errors", test_text_errors },
	{ "binary", test_binary },
	{ "duplicates", test_dedup },
	{ "ids", test_ids },
	{ "dim against the table", test_check_dim },
	{ "table specs", test_table_spec },
};

int main(void)
{
	return fr_unit_main("cli_input", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
