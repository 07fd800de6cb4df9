/*
 * prom.c — the Prometheus text exposition (format 0.0.4) that freshetd
 * and freshet-witness serve at /metrics, and the latency histogram both
 * keep.
 *
 * An exporter keeps a table of its families and renders each sample by
 * pointing at its table entry; this file writes the HELP/TYPE lines, the
 * escaped label sets and the numbers.  Not here: what is counted, or
 * serving HTTP.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

const char fr_prom_content_type[] = "text/plain; version=0.0.4; charset=utf-8";

static const double hist_bounds[FR_HIST_NB] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void fr_hist_observe(struct fr_hist *h, double seconds)
{
	int i = 0;

	if (!(seconds >= 0))   /* negative or NaN */
		seconds = 0;
	while (i < FR_HIST_NB && seconds > hist_bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += seconds;
}

const char *fr_prom_type_name(enum fr_prom_type t)
{
	switch (t) {
	case FR_PROM_COUNTER:
		return "counter";
	case FR_PROM_GAUGE:
		return "gauge";
	case FR_PROM_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

static void put(struct fr_wbuf *w, const char *s)
{
	fr_wbuf_bytes(w, s, strlen(s));
}

void fr_prom_family(struct fr_wbuf *w, const struct fr_prom_family *f)
{
	put(w, "# HELP ");
	put(w, f->name);
	put(w, " ");
	/* HELP text escapes backslash and newline. */
	for (const char *c = f->help; *c; c++) {
		if (*c == '\\')
			put(w, "\\\\");
		else if (*c == '\n')
			put(w, "\\n");
		else
			fr_wbuf_u8(w, (uint8_t)*c);
	}
	put(w, "\n# TYPE ");
	put(w, f->name);
	put(w, " ");
	put(w, fr_prom_type_name(f->type));
	put(w, "\n");
}

static void label_value(struct fr_wbuf *w, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			put(w, "\\\\");
		else if (*v == '"')
			put(w, "\\\"");
		else if (*v == '\n')
			put(w, "\\n");
		else
			fr_wbuf_u8(w, (uint8_t)*v);
	}
}

/* name[suffix]{k="v",...[,extra_k="extra_v"]} with a space after. */
static void series(struct fr_wbuf *w, const char *name, const char *suffix,
		   va_list ap, const char *extra_k, const char *extra_v)
{
	const char *k;
	bool any = false;

	put(w, name);
	put(w, suffix);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		put(w, any ? "," : "{");
		any = true;
		put(w, k);
		put(w, "=\"");
		label_value(w, v ? v : "");
		put(w, "\"");
	}
	if (extra_k) {
		put(w, any ? "," : "{");
		any = true;
		put(w, extra_k);
		put(w, "=\"");
		put(w, extra_v);
		put(w, "\"");
	}
	put(w, any ? "} " : " ");
}

static void f64_value(struct fr_wbuf *w, double v)
{
	if (isnan(v))
		put(w, "NaN\n");
	else if (isinf(v))
		put(w, v > 0 ? "+Inf\n" : "-Inf\n");
	else {
		/* The shortest of 15..17 digits that reads back as v:
		 * exact, and 0.1 stays "0.1". */
		char b[40];

		for (int prec = 15; prec <= 17; prec++) {
			snprintf(b, sizeof(b), "%.*g", prec, v);
			if (strtod(b, NULL) == v)
				break;
		}
		put(w, b);
		put(w, "\n");
	}
}

void fr_prom_f64(struct fr_wbuf *w, const struct fr_prom_family *f,
		 double v, ...)
{
	va_list ap;

	va_start(ap, v);
	series(w, f->name, "", ap, NULL, NULL);
	va_end(ap);
	f64_value(w, v);
}

void fr_prom_hist(struct fr_wbuf *w, const struct fr_prom_family *f,
		  const struct fr_hist *h, ...)
{
	uint64_t cum = 0;
	char le[32];
	va_list ap;

	for (int i = 0; i <= FR_HIST_NB; i++) {
		cum += h->bucket[i];
		if (i < FR_HIST_NB)
			snprintf(le, sizeof(le), "%g", hist_bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		va_start(ap, h);
		series(w, f->name, "_bucket", ap, "le", le);
		va_end(ap);
		f64_value(w, (double)cum);
	}
	va_start(ap, h);
	series(w, f->name, "_sum", ap, NULL, NULL);
	va_end(ap);
	f64_value(w, h->sum);
	va_start(ap, h);
	series(w, f->name, "_count", ap, NULL, NULL);
	va_end(ap);
	f64_value(w, (double)h->count);
}

void fr_prom_one_f64(struct fr_wbuf *w, const struct fr_prom_family *f,
		     double v)
{
	fr_prom_family(w, f);
	fr_prom_f64(w, f, v, (const char *)NULL);
}

static bool metric_name_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     c == '_' || c == ':';

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

enum fr_err fr_prom_table_check(const struct fr_prom_family *tab, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *nm = tab[i].name;
		size_t len = nm ? strlen(nm) : 0;

		if (!metric_name_ok(nm))
			return fr_fail(FR_ERR_INVAL, "metric family %zu: name "
				       "'%s' is not [a-zA-Z_:][a-zA-Z0-9_:]*",
				       i, nm ? nm : "(null)");
		if (!tab[i].help || !*tab[i].help)
			return fr_fail(FR_ERR_INVAL, "metric family '%s' has "
				       "no help text", nm);
		if (tab[i].type == FR_PROM_COUNTER &&
		    (len < 6 || strcmp(nm + len - 6, "_total") != 0))
			return fr_fail(FR_ERR_INVAL, "counter '%s' does not "
				       "end in _total", nm);
		for (size_t j = 0; j < i; j++)
			if (strcmp(tab[j].name, nm) == 0)
				return fr_fail(FR_ERR_INVAL, "metric family "
					       "'%s' is listed twice", nm);
	}
	return FR_OK;
}
