/*
 * probe.c — the witness's probe file: a labelled set of (user row, item
 * row) examples, parsed and checked line by line (the format and its
 * limits are in witness.h and docs/witness.md), then indexed so that every
 * distinct (table, row) pair is looked up once per node.
 *
 * The file is untrusted input: every field is checked (table names by
 * common/'s name rule, fr_name_check; row ids as decimals, fr_dec_u64),
 * an error names the line and the field and shows the offending text made
 * printable (fr_show_n, cut to 64 bytes), and nothing half-parsed is
 * kept.  After parsing, the rows are
 * de-duplicated by sorting (table, row, reference) triples, so the cost is
 * O(n log n) and memory about 24 bytes per row reference.
 *
 * Not here: scoring (score.c), looking rows up (main.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "witness/witness.h"

#define SHOW_MAX 64
#define NFIELDS 5

static const char *const field_names[NFIELDS] = {
	"label", "user_table", "user_row", "item_table", "item_row",
};

/* A field's text made safe to print: fr_show_n, cut to about SHOW_MAX. */
static const char *show(char *buf, const char *s, size_t n)
{
	return fr_show_n(buf, SHOW_MAX + 4, s, n);
}

void witness_probe_init(struct witness_probe *p)
{
	memset(p, 0, sizeof(*p));
}

void witness_probe_fini(struct witness_probe *p)
{
	size_t line = p->line;

	free(p->labels);
	free(p->user);
	free(p->item);
	free(p->tables);
	free(p->keys);
	free(p->table_first);
	memset(p, 0, sizeof(*p));
	p->line = line;
}

/* ------------------------------------------------------------------------
 * One line
 * ---------------------------------------------------------------------- */

/* A row reference while parsing: which table, which row, and where it is
 * used (example << 1 | 0 for the user side, | 1 for the item side). */
struct ref {
	uint32_t table;
	uint32_t use;
	uint64_t row;
};

struct parser {
	struct witness_probe *p;
	size_t cap;                  /* examples allocated */
	struct ref *refs;            /* 2 per example */
	size_t line;
};

static enum fr_err check_table(struct parser *ps, int f, const char *s,
			       size_t n, uint32_t *out)
{
	struct witness_probe *p = ps->p;
	char buf[SHOW_MAX + 4];
	void *np;

	if (n > WITNESS_NAME_MAX || !fr_name_valid_n(s, n)) {
		/* fr_name_check words it; it reads a C string, so a copy
		 * (long enough to be too long) and NUL bytes by hand. */
		char name[WITNESS_NAME_MAX + 2], what[48];
		size_t k = n < sizeof(name) - 1 ? n : sizeof(name) - 1;
		const char *nul = memchr(s, '\0', k);

		memcpy(name, s, k);
		name[k] = '\0';
		snprintf(what, sizeof(what), "line %zu: %s", ps->line,
			 field_names[f]);
		if (nul)
			return fr_fail(FR_ERR_INVAL, "%s '%s' has byte 0x00 at "
				       "%zu, expected 1..%d bytes of "
				       FR_NAME_CHARS, what, show(buf, s, n),
				       (size_t)(nul - s), WITNESS_NAME_MAX);
		return fr_name_check(what, name, WITNESS_NAME_MAX);
	}
	for (uint32_t t = 0; t < p->ntables; t++)
		if (strlen(p->tables[t]) == n && memcmp(p->tables[t], s, n) == 0) {
			*out = t;
			return FR_OK;
		}
	if (p->ntables == WITNESS_TABLES_MAX)
		return fr_fail(FR_ERR_TOOBIG, "line %zu: %s '%s': more than %d "
			       "distinct tables", ps->line, field_names[f],
			       show(buf, s, n), WITNESS_TABLES_MAX);
	np = realloc(p->tables, (p->ntables + 1) * sizeof(*p->tables));
	if (!np)
		return fr_fail(FR_ERR_NOMEM, "no memory for probe tables");
	p->tables = np;
	memcpy(p->tables[p->ntables], s, n);
	p->tables[p->ntables][n] = '\0';
	*out = p->ntables++;
	return FR_OK;
}

static enum fr_err check_row(struct parser *ps, int f, const char *s,
			     size_t n, uint64_t *out)
{
	char buf[SHOW_MAX + 4];

	if (n == 0)
		return fr_fail(FR_ERR_INVAL, "line %zu: %s is empty, expected "
			       "an unsigned decimal row id", ps->line,
			       field_names[f]);
	if (fr_dec_u64(s, n, out))
		return FR_OK;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return fr_fail(FR_ERR_INVAL, "line %zu: %s '%s': "
				       "expected an unsigned decimal row id "
				       "(digits only)", ps->line,
				       field_names[f], show(buf, s, n));
	return fr_fail(FR_ERR_RANGE, "line %zu: %s '%s' is larger than "
		       "2^64-1", ps->line, field_names[f], show(buf, s, n));
}

static enum fr_err grow(struct parser *ps)
{
	struct witness_probe *p = ps->p;
	size_t cap = ps->cap ? ps->cap * 2 : 1024;
	void *a, *b;

	if (cap > WITNESS_EXAMPLES_MAX)
		cap = WITNESS_EXAMPLES_MAX;
	a = realloc(p->labels, cap);
	if (a)
		p->labels = a;
	b = realloc(ps->refs, cap * 2 * sizeof(*ps->refs));
	if (b)
		ps->refs = b;
	if (!a || !b)
		return fr_fail(FR_ERR_NOMEM, "no memory for %zu probe "
			       "examples", cap);
	ps->cap = cap;
	return FR_OK;
}

/* One line without its newline (and CR).  Blank and comment lines are
 * skipped. */
static enum fr_err parse_line(struct parser *ps, const char *s, size_t n)
{
	struct witness_probe *p = ps->p;
	const char *f[NFIELDS];
	size_t fl[NFIELDS], nf = 0, i = 0;
	char buf[SHOW_MAX + 4];
	uint32_t ut, it;
	uint64_t ur, ir;
	enum fr_err err;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == n || s[i] == '#')
		return FR_OK;
	/* Fields: split on every TAB; more than five is an error too. */
	for (size_t start = 0, k = 0;; k++) {
		if (k == n || s[k] == '\t') {
			if (nf < NFIELDS) {
				f[nf] = s + start;
				fl[nf] = k - start;
			}
			nf++;
			start = k + 1;
			if (k == n)
				break;
		}
	}
	if (nf != NFIELDS)
		return fr_fail(FR_ERR_INVAL, "line %zu: expected %d TAB-separated "
			       "fields (label, user_table, user_row, "
			       "item_table, item_row), got %zu", ps->line,
			       NFIELDS, nf);
	if (fl[0] != 1 || (f[0][0] != '0' && f[0][0] != '1'))
		return fr_fail(FR_ERR_INVAL, "line %zu: label '%s': expected 0 "
			       "or 1", ps->line, show(buf, f[0], fl[0]));
	if ((err = check_table(ps, 1, f[1], fl[1], &ut)) ||
	    (err = check_row(ps, 2, f[2], fl[2], &ur)) ||
	    (err = check_table(ps, 3, f[3], fl[3], &it)) ||
	    (err = check_row(ps, 4, f[4], fl[4], &ir)))
		return err;
	if (p->n == WITNESS_EXAMPLES_MAX)
		return fr_fail(FR_ERR_TOOBIG, "line %zu: more than %u examples",
			       ps->line, WITNESS_EXAMPLES_MAX);
	if (p->n == ps->cap && (err = grow(ps)))
		return err;
	p->labels[p->n] = (uint8_t)(f[0][0] - '0');
	p->npos += p->labels[p->n];
	ps->refs[2 * (size_t)p->n] = (struct ref){ ut, p->n << 1, ur };
	ps->refs[2 * (size_t)p->n + 1] = (struct ref){ it, p->n << 1 | 1, ir };
	p->n++;
	return FR_OK;
}

/* ------------------------------------------------------------------------
 * Index: distinct (table, row) keys
 * ---------------------------------------------------------------------- */

static int ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return 0;
}

static enum fr_err build_index(struct parser *ps)
{
	struct witness_probe *p = ps->p;
	size_t nref = 2 * (size_t)p->n;
	uint32_t k = 0;

	qsort(ps->refs, nref, sizeof(*ps->refs), ref_cmp);
	p->user = malloc((size_t)p->n * sizeof(*p->user));
	p->item = malloc((size_t)p->n * sizeof(*p->item));
	p->keys = malloc(nref * sizeof(*p->keys));
	p->table_first = calloc((size_t)p->ntables + 1,
				sizeof(*p->table_first));
	if (!p->user || !p->item || !p->keys || !p->table_first)
		return fr_fail(FR_ERR_NOMEM, "no memory to index %u probe "
			       "examples", p->n);
	for (size_t i = 0; i < nref; i++) {
		const struct ref *r = &ps->refs[i];

		if (i == 0 || ref_cmp(r, &ps->refs[i - 1]) != 0)
			p->keys[k++] = (struct witness_key){ r->table, r->row };
		if (r->use & 1)
			p->item[r->use >> 1] = k - 1;
		else
			p->user[r->use >> 1] = k - 1;
	}
	p->nkeys = k;
	/* table_first[t] = first key of table t (keys are sorted by table). */
	for (uint32_t i = 0, t = 0; t <= p->ntables; t++) {
		while (i < k && p->keys[i].table < t)
			i++;
		p->table_first[t] = i;
	}
	return FR_OK;
}

/* ------------------------------------------------------------------------
 * Whole files
 * ---------------------------------------------------------------------- */

enum fr_err witness_probe_parse(struct witness_probe *p, const char *buf,
				size_t len)
{
	struct parser ps = { .p = p };
	size_t off = 0;
	enum fr_err err = FR_OK;

	witness_probe_fini(p);
	p->line = 0;
	if (len > WITNESS_FILE_MAX) {
		err = fr_fail(FR_ERR_TOOBIG, "the probe file has %zu bytes, "
			      "more than %u", len, WITNESS_FILE_MAX);
		goto out_fail;
	}
	while (off < len) {
		const char *s = buf + off, *nl;
		size_t n, full;

		ps.line++;
		nl = memchr(s, '\n', len - off);
		n = nl ? (size_t)(nl - s) : len - off;
		full = n + (nl != NULL);
		off += full;
		if (full > WITNESS_LINE_MAX) {
			err = fr_fail(FR_ERR_TOOBIG, "line %zu: longer than %d "
				      "bytes", ps.line, WITNESS_LINE_MAX);
			goto out_fail;
		}
		if (n && s[n - 1] == '\r')
			n--;
		err = parse_line(&ps, s, n);
		if (err)
			goto out_fail;
	}
	if (p->n == 0) {
		ps.line = 0;
		err = fr_fail(FR_ERR_INVAL, "no examples (only blank or comment "
			      "lines): expected lines of label<TAB>user_table"
			      "<TAB>user_row<TAB>item_table<TAB>item_row");
		goto out_fail;
	}
	err = build_index(&ps);
	if (err) {
		ps.line = 0;
		goto out_fail;
	}
	free(ps.refs);
	p->line = 0;
	return FR_OK;

out_fail:
	free(ps.refs);
	witness_probe_fini(p);
	p->line = ps.line;
	return err;
}

enum fr_err witness_probe_load(struct witness_probe *p, const char *path)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	enum fr_err err;
	FILE *f;

	witness_probe_fini(p);
	p->line = 0;
	f = fopen(path, "rb");
	if (!f)
		return fr_fail(FR_ERR_IO, "cannot open '%s': %s", path,
			       strerror(errno));
	if (fstat(fileno(f), &st) != 0) {
		err = fr_fail(FR_ERR_IO, "cannot stat '%s': %s", path,
			      strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err = fr_fail(FR_ERR_IO, "'%s' is not a regular file", path);
		goto out_close;
	}
	if ((uint64_t)st.st_size > WITNESS_FILE_MAX) {
		err = fr_fail(FR_ERR_TOOBIG, "'%s' has %lld bytes, more than "
			      "%u", path, (long long)st.st_size,
			      WITNESS_FILE_MAX);
		goto out_close;
	}
	/* One byte more than the size, to notice a file that grew. */
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = fr_fail(FR_ERR_NOMEM, "no memory to read '%s'", path);
		goto out_close;
	}
	len = fread(buf, 1, (size_t)st.st_size + 1, f);
	if (ferror(f)) {
		err = fr_fail(FR_ERR_IO, "cannot read '%s': %s", path,
			      strerror(errno));
		goto out_free;
	}
	if (len > (size_t)st.st_size) {
		err = fr_fail(FR_ERR_IO, "'%s' changed while it was read",
			      path);
		goto out_free;
	}
	err = witness_probe_parse(p, buf, len);
out_free:
	free(buf);
out_close:
	fclose(f);
	return err;
}
