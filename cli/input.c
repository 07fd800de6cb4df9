/*
 * input.c — parsing for the `freshet` command (input.h): rows from the
 * text and "FRIN" binary formats, the --ids list and table specs.
 *
 * Everything is read and checked before anything is sent, so that a bad
 * line N publishes nothing; each error names the line (or field) and what
 * was expected.  Numbers are parsed in the C locale (the command never
 * calls setlocale), so "1.5" means the same everywhere.  Names, decimals
 * and untrusted text shown back follow common/'s rules (fr_name_check,
 * fr_parse_u64, fr_show), so their words are the node's.
 *
 * Not here: sockets, printing, option parsing (main.c), HOST:PORT
 * (fr_parse_hostport).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/input.h"

/* Longest token quoted back in a detail. */
#define QUOTE 32

/* Prefix this thread's detail with "line N: " (copied first: fr_fail
 * formats into the buffer fr_errmsg() returns). */
static enum fr_err at_line(enum fr_err err, size_t line)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "%s", fr_errmsg());
	return fr_fail(err, "line %zu: %s", line, detail);
}

void cli_input_init(struct cli_input *in)
{
	memset(in, 0, sizeof(*in));
}

void cli_input_fini(struct cli_input *in)
{
	free(in->rows);
	free(in->values);
	memset(in, 0, sizeof(*in));
}

/* Drop any rows (after an error), keep nothing allocated. */
static void input_clear(struct cli_input *in)
{
	size_t line = in->line;

	cli_input_fini(in);
	in->line = line;
}

/* Room for one more row of in->dim values. */
static enum fr_err input_grow(struct cli_input *in)
{
	size_t ncap;
	uint64_t *nr;
	float *nv;

	if (in->n < in->cap)
		return FR_OK;
	if (in->n == UINT32_MAX)
		return fr_fail(FR_ERR_RANGE, "more than %u rows", UINT32_MAX);
	ncap = in->cap ? in->cap * 2 : 1024;
	if (ncap > UINT32_MAX)
		ncap = UINT32_MAX;
	nr = realloc(in->rows, ncap * sizeof(*nr));
	if (!nr)
		return fr_fail(FR_ERR_NOMEM, "no memory for %zu rows", ncap);
	in->rows = nr;
	nv = realloc(in->values, ncap * in->dim * sizeof(*nv));
	if (!nv)
		return fr_fail(FR_ERR_NOMEM, "no memory for %zu rows of dim %u",
			       ncap, in->dim);
	in->values = nv;
	in->cap = ncap;
	return FR_OK;
}

/* ========================================================================
 * Numbers
 * ===================================================================== */

/* A decimal token of n bytes (not NUL-terminated) in 0..max, by
 * fr_parse_u64's rule and words.  A token too long for the stack buffer
 * can only be an error; it is copied to the heap so the detail is the
 * same. */
static enum fr_err parse_dec(const char *what, const char *tok, size_t n,
			     uint64_t max, uint64_t *out)
{
	char small[32], *buf = small;
	enum fr_err err;

	if (n >= sizeof(small) && !(buf = malloc(n + 1)))
		return fr_fail(FR_ERR_NOMEM, "%s: no memory", what);
	memcpy(buf, tok, n);
	buf[n] = '\0';
	err = fr_parse_u64(what, buf, 0, max, out);
	if (buf != small)
		free(buf);
	return err;
}

/* A float token of n bytes (not NUL-terminated) that strtof reads in
 * full and that is finite. */
static enum fr_err parse_value(const char *tok, size_t n, size_t line,
			       uint32_t idx, float *out)
{
	char buf[128], shown[QUOTE + 4];
	char *end;
	float v;

	fr_show_n(shown, sizeof(shown), tok, n);
	if (n >= sizeof(buf))
		return fr_fail(FR_ERR_INVAL,
			       "line %zu: V%u '%s': not a number (%zu "
			       "characters)", line, idx, shown, n);
	memcpy(buf, tok, n);
	buf[n] = '\0';
	errno = 0;
	v = strtof(buf, &end);
	if (end == buf || *end)
		return fr_fail(FR_ERR_INVAL, "line %zu: V%u '%s': not a number",
			       line, idx, shown);
	if (!isfinite(v))
		return fr_fail(FR_ERR_RANGE,
			       "line %zu: V%u '%s': not a finite float32",
			       line, idx, shown);
	*out = v;
	return FR_OK;
}

/* ========================================================================
 * Text
 * ===================================================================== */

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Next token in [*p, e): sets *tok and *n, advances *p; false at end. */
static bool next_token(const char **p, const char *e, const char **tok,
		       size_t *n)
{
	const char *q = *p;

	while (q < e && blank(*q))
		q++;
	if (q == e) {
		*p = q;
		return false;
	}
	*tok = q;
	while (q < e && !blank(*q))
		q++;
	*n = (size_t)(q - *tok);
	*p = q;
	return true;
}

/* One data line [p, e) (not blank, not a comment). */
static enum fr_err parse_line(struct cli_input *in, const char *p,
			      const char *e, size_t line, float **scratch,
			      size_t *scap)
{
	const char *tok;
	size_t n;
	uint64_t id;
	uint32_t k = 0;
	float *dst;
	enum fr_err err;

	if (!next_token(&p, e, &tok, &n))   /* callers pass non-blank lines */
		return fr_fail(FR_ERR_INVAL, "line %zu: no row id", line);
	err = parse_dec("row id", tok, n, UINT64_MAX, &id);
	if (err)
		return at_line(err, line);

	if (in->dim == 0) {
		/* First data line: its values set dim.  Parse into a
		 * scratch array that grows with them. */
		while (next_token(&p, e, &tok, &n)) {
			if (k == CLI_DIM_MAX)
				return fr_fail(FR_ERR_RANGE,
					       "line %zu: more than %u values "
					       "(the largest dim)",
					       line, CLI_DIM_MAX);
			if (k == *scap) {
				size_t nc = *scap ? *scap * 2 : 64;
				float *ns = realloc(*scratch, nc * 4);

				if (!ns)
					return fr_fail(FR_ERR_NOMEM,
						       "line %zu: no memory",
						       line);
				*scratch = ns;
				*scap = nc;
			}
			err = parse_value(tok, n, line, k, &(*scratch)[k]);
			if (err)
				return err;
			k++;
		}
		if (k == 0)
			return fr_fail(FR_ERR_INVAL,
				       "line %zu: row %llu has no values", line,
				       (unsigned long long)id);
		in->dim = k;
		in->dim_line = line;
		if ((err = input_grow(in)))
			return at_line(err, line);
		memcpy(in->values, *scratch, (size_t)k * 4);
		in->rows[in->n++] = id;
		return FR_OK;
	}

	if ((err = input_grow(in)))
		return at_line(err, line);
	dst = in->values + (size_t)in->n * in->dim;
	while (next_token(&p, e, &tok, &n)) {
		if (k < in->dim) {
			err = parse_value(tok, n, line, k, &dst[k]);
			if (err)
				return err;
		}
		k++;
	}
	if (k != in->dim && in->dim_line)
		return fr_fail(FR_ERR_INVAL,
			       "line %zu: expected %u values after the row id "
			       "(dim %u, from line %zu), got %u", line, in->dim,
			       in->dim, in->dim_line, k);
	if (k != in->dim)
		return fr_fail(FR_ERR_INVAL,
			       "line %zu: expected %u values after the row id "
			       "(dim %u), got %u",
			       line, in->dim, in->dim, k);
	in->rows[in->n++] = id;
	return FR_OK;
}

enum fr_err cli_input_parse_text(struct cli_input *in, const char *buf,
				 size_t len, uint32_t dim)
{
	const char *p = buf, *end = buf + len;
	float *scratch = NULL;
	size_t scap = 0, line = 0;
	enum fr_err err = FR_OK;

	cli_input_fini(in);
	if (dim > CLI_DIM_MAX) {
		err = fr_fail(FR_ERR_RANGE, "dim %u: expected 1..%u", dim,
			      CLI_DIM_MAX);
		goto out;
	}
	in->dim = dim;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *q;

		line++;
		if (memchr(p, '\0', (size_t)(e - p))) {
			err = fr_fail(FR_ERR_INVAL,
				      "line %zu: contains a NUL byte "
				      "(binary data? use --binary)",
				      line);
			break;
		}
		if (e > p && e[-1] == '\r')
			e--;
		for (q = p; q < e && blank(*q); q++)
			;
		if (q < e && *q != '#') {
			err = parse_line(in, q, e, line, &scratch, &scap);
			if (err)
				break;
		}
		p = nl ? nl + 1 : end;
	}
	if (!err && in->n == 0) {
		err = fr_fail(FR_ERR_INVAL,
			      "input has no rows (%zu lines read)", line);
		line = 0;
	}
out:
	free(scratch);
	if (err) {
		in->line = line;
		input_clear(in);
	}
	return err;
}

/* The whole of f in a malloc'd buffer. */
static enum fr_err read_all(FILE *f, uint8_t **out, size_t *len)
{
	size_t cap = 1 << 16, n = 0, k;
	uint8_t *buf = malloc(cap), *nb;

	if (!buf)
		return fr_fail(FR_ERR_NOMEM, "input: no memory");
	for (;;) {
		if (n == cap) {
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return fr_fail(FR_ERR_NOMEM,
					       "input: no memory for %zu bytes",
					       cap * 2);
			}
			buf = nb;
			cap *= 2;
		}
		k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return fr_fail(FR_ERR_IO, "input: read error after %zu bytes: %s",
			       n, strerror(errno));
	}
	*out = buf;
	*len = n;
	return FR_OK;
}

/* All of f, then the text or the binary parser over it. */
static enum fr_err read_parse(struct cli_input *in, FILE *f, uint32_t dim,
			      bool binary)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum fr_err err;

	cli_input_fini(in);
	err = read_all(f, &buf, &len);
	if (err)
		return err;
	err = binary ? cli_input_parse_binary(in, buf, len, dim)
		     : cli_input_parse_text(in, (const char *)buf, len, dim);
	free(buf);
	return err;
}

enum fr_err cli_input_read_text(struct cli_input *in, FILE *f, uint32_t dim)
{
	return read_parse(in, f, dim, false);
}

enum fr_err cli_input_check_dim(const struct cli_input *in, uint32_t dim,
				const char *table)
{
	char shown[80];

	if (!in->dim_line || in->dim == dim)
		return FR_OK;
	return fr_fail(FR_ERR_INVAL, "line %zu: expected %u values after the "
		       "row id (table '%s' has dim %u), got %u", in->dim_line,
		       dim, fr_show(shown, sizeof(shown), table), dim, in->dim);
}

/* ========================================================================
 * Binary
 * ===================================================================== */

enum fr_err cli_input_parse_binary(struct cli_input *in, const uint8_t *buf,
				   size_t len, uint32_t dim)
{
	static const char what[] = "binary input";
	struct fr_rbuf r;
	uint32_t magic, hdim, n;
	uint16_t version, reserved;
	uint64_t need, vcount;
	const float *v;
	enum fr_err err = FR_OK;

	cli_input_fini(in);
	if (len < CLI_INPUT_HDR_BYTES)
		return fr_fail(len ? FR_ERR_TRUNC : FR_ERR_INVAL,
			       "%s: %zu bytes, the header needs %d%s", what,
			       len, CLI_INPUT_HDR_BYTES,
			       len ? "" : " (empty input)");
	fr_rbuf_init(&r, buf, len);
	magic = fr_rbuf_u32(&r);
	version = fr_rbuf_u16(&r);
	reserved = fr_rbuf_u16(&r);
	hdim = fr_rbuf_u32(&r);
	n = fr_rbuf_u32(&r);
	if (magic != CLI_INPUT_MAGIC)
		return fr_fail(FR_ERR_MAGIC,
			       "%s field 'magic': got 0x%08x, expected "
			       "0x%08x (\"FRIN\")",
			       what, magic, CLI_INPUT_MAGIC);
	if (version != CLI_INPUT_VERSION)
		return fr_fail(FR_ERR_VERSION,
			       "%s field 'version': got %u, expected %u", what,
			       version, CLI_INPUT_VERSION);
	if (reserved)
		return fr_fail(FR_ERR_CORRUPT,
			       "%s field 'reserved': got %u, expected 0", what,
			       reserved);
	if (hdim == 0 || hdim > CLI_DIM_MAX)
		return fr_fail(FR_ERR_RANGE,
			       "%s field 'dim': got %u, expected 1..%u", what,
			       hdim, CLI_DIM_MAX);
	if (dim && hdim != dim)
		return fr_fail(FR_ERR_INVAL,
			       "%s field 'dim': got %u, but --dim says %u", what,
			       hdim, dim);
	if (n == 0)
		return fr_fail(FR_ERR_INVAL,
			       "%s field 'n': got 0, expected >= 1 rows", what);
	/* n < 2^32, dim <= 2^16: fits 64 bits. */
	vcount = (uint64_t)n * hdim;
	need = CLI_INPUT_HDR_BYTES + (uint64_t)n * 8 + vcount * 4;
	if (len < need)
		return fr_fail(FR_ERR_TRUNC,
			       "%s: n %u and dim %u need %llu bytes, the input "
			       "has %zu",
			       what, n, hdim, (unsigned long long)need, len);
	if (len > need)
		return fr_fail(FR_ERR_CORRUPT,
			       "%s: %zu bytes after the %llu that n %u and dim "
			       "%u make",
			       what, len - (size_t)need,
			       (unsigned long long)need, n, hdim);
	in->rows = malloc((size_t)n * 8);
	in->values = malloc((size_t)vcount * 4);
	if (!in->rows || !in->values) {
		err = fr_fail(FR_ERR_NOMEM, "%s: no memory for %u rows", what,
			      n);
		goto out_clear;
	}
	memcpy(in->rows, buf + CLI_INPUT_HDR_BYTES, (size_t)n * 8);
	memcpy(in->values, buf + CLI_INPUT_HDR_BYTES + (size_t)n * 8,
	       (size_t)vcount * 4);
	v = in->values;
	for (uint64_t i = 0; i < vcount; i++)
		if (!isfinite(v[i])) {
			uint64_t row = i / hdim;

			err = fr_fail(FR_ERR_RANGE,
				      "%s: row %llu (id %llu) V%llu: not a "
				      "finite float32",
				      what, (unsigned long long)row,
				      (unsigned long long)in->rows[row],
				      (unsigned long long)(i % hdim));
			goto out_clear;
		}
	in->n = n;
	in->cap = n;
	in->dim = hdim;
	return FR_OK;

out_clear:
	input_clear(in);
	return err;
}

enum fr_err cli_input_read_binary(struct cli_input *in, FILE *f, uint32_t dim)
{
	return read_parse(in, f, dim, true);
}

/* ========================================================================
 * Duplicates
 * ===================================================================== */

struct dup_ent {
	uint64_t row;
	uint32_t pos;
};

static int dup_cmp(const void *a, const void *b)
{
	const struct dup_ent *x = a, *y = b;

	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

uint32_t cli_input_dedup(struct cli_input *in)
{
	struct dup_ent *e;
	bool *drop;
	uint32_t j = 0, dropped = 0;
	size_t rb = (size_t)in->dim * sizeof(float);

	if (in->n < 2)
		return 0;
	e = malloc((size_t)in->n * sizeof(*e));
	drop = calloc(in->n, sizeof(*drop));
	if (!e || !drop) {
		/* Keeping duplicates is still correct: the node applies the
		 * later one last.  Only the count is lost. */
		free(e);
		free(drop);
		return 0;
	}
	for (uint32_t i = 0; i < in->n; i++) {
		e[i].row = in->rows[i];
		e[i].pos = i;
	}
	qsort(e, in->n, sizeof(*e), dup_cmp);
	for (uint32_t i = 0; i + 1 < in->n; i++)
		if (e[i].row == e[i + 1].row) {
			drop[e[i].pos] = true;
			dropped++;
		}
	for (uint32_t i = 0; i < in->n; i++) {
		if (drop[i])
			continue;
		if (j != i) {
			in->rows[j] = in->rows[i];
			memcpy(in->values + (size_t)j * in->dim,
			       in->values + (size_t)i * in->dim, rb);
		}
		j++;
	}
	in->n = j;
	free(e);
	free(drop);
	return dropped;
}

/* ========================================================================
 * Arguments
 * ===================================================================== */

enum fr_err cli_parse_ids(const char *s, uint64_t **ids, uint32_t *n)
{
	uint64_t *v = NULL;
	size_t count = 1, k = 0;
	const char *p = s;
	enum fr_err err = FR_OK;

	*ids = NULL;
	*n = 0;
	for (const char *q = s; *q; q++)
		count += *q == ',';
	if (count > UINT32_MAX)
		return fr_fail(FR_ERR_RANGE, "--ids: more than %u ids",
			       UINT32_MAX);
	v = malloc(count * sizeof(*v));
	if (!v)
		return fr_fail(FR_ERR_NOMEM, "--ids: no memory");
	for (;;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		char what[48];

		snprintf(what, sizeof(what), "--ids item %zu", k + 1);
		err = parse_dec(what, p, len, UINT64_MAX, &v[k]);
		if (err)
			goto out_free;
		k++;
		if (!c)
			break;
		p = c + 1;
	}
	*ids = v;
	*n = (uint32_t)k;
	return FR_OK;

out_free:
	free(v);
	return err;
}

/* ========================================================================
 * Table specs (freshet model create)
 * ===================================================================== */

#define TABLE_SPEC "expected NAME:ROWS:DIM[:f32|f16]"

enum fr_err cli_parse_table(const char *s, struct shard_table_def *out)
{
	struct shard_table_def t;
	char buf[256], what[128], spec[80], dtype[40];
	char *field[4];
	size_t nfield = 0;
	uint64_t v;
	enum fr_err err;

	if (!*s)
		return fr_fail(FR_ERR_INVAL, "--table spec is empty, "
			       TABLE_SPEC);
	fr_show(spec, sizeof(spec), s);
	if (strlen(s) >= sizeof(buf))
		return fr_fail(FR_ERR_INVAL, "--table '%s' is longer than %zu "
			       "bytes, " TABLE_SPEC, spec, sizeof(buf) - 1);
	strcpy(buf, s);
	for (char *p = buf;;) {
		char *colon = strchr(p, ':');

		if (nfield == 4)
			return fr_fail(FR_ERR_INVAL, "--table '%s' has more "
				       "than 4 fields, " TABLE_SPEC, spec);
		field[nfield++] = p;
		if (!colon)
			break;
		*colon = '\0';
		p = colon + 1;
	}
	if (nfield < 3)
		return fr_fail(FR_ERR_INVAL, "--table '%s' is missing %s, "
			       TABLE_SPEC, spec,
			       nfield == 1 ? "ROWS and DIM" : "DIM");
	memset(&t, 0, sizeof(t));
	snprintf(what, sizeof(what), "--table '%s': NAME", spec);
	err = fr_name_check(what, field[0], SHARD_NAME_MAX);
	if (err)
		return err;
	strcpy(t.name, field[0]);
	snprintf(what, sizeof(what), "--table '%s': ROWS", spec);
	err = fr_parse_u64(what, field[1], 0, INT64_MAX, &v);
	if (!err && v == 0)
		err = fr_fail(FR_ERR_RANGE, "%s 0: expected 1..%lld", what,
			      (long long)INT64_MAX);
	if (err)
		return err;
	t.rows = v;
	snprintf(what, sizeof(what), "--table '%s': DIM", spec);
	err = fr_parse_u64(what, field[2], 0, SHARD_DIM_MAX, &v);
	if (!err && v == 0)
		err = fr_fail(FR_ERR_RANGE, "%s 0: expected 1..%d", what,
			      SHARD_DIM_MAX);
	if (err)
		return err;
	t.dim = (uint32_t)v;
	t.dtype = SHARD_F32;
	if (nfield == 4 && shard_dtype_parse(field[3], &t.dtype))
		return fr_fail(FR_ERR_INVAL, "--table '%s': DTYPE '%s' is "
			       "unknown, expected f32 or f16", spec,
			       fr_show(dtype, sizeof(dtype), field[3]));
	*out = t;
	return FR_OK;
}
