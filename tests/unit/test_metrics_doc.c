/*
 * test_metrics_doc.c — every metric family freshetd and freshet-witness
 * export is in docs/metrics.md, with its type, and each exporter's table
 * follows the Prometheus conventions fr_prom_table_check enforces (names,
 * _total on counters, no family twice).
 *
 * The families come from the exporters' own tables (node_metrics_families in
 * node/metrics.c, witness_metric_families in witness/), which are what
 * the renderers point at, so a family added to the code and not to the
 * doc fails here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "common/common.h"
#include "node/node.h"
#include "unit_main.h"
#include "witness/witness.h"

static char *doc;

static int load_doc(void)
{
	FILE *f = fopen(FRESHET_SOURCE_DIR "/docs/metrics.md", "rb");
	long n;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || !(doc = calloc(1, (size_t)n + 1)) ||
	    fread(doc, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* The doc's row for family f: "| `NAME` | TYPE |". */
static void check_documented(const char *who,
			     const struct fr_prom_family *tab, size_t n)
{
	char row[256];

	for (size_t i = 0; i < n; i++) {
		snprintf(row, sizeof(row), "| `%s` | %s |", tab[i].name,
			 fr_prom_type_name(tab[i].type));
		if (!strstr(doc, row)) {
			fprintf(stderr, "\n  %s exports %s (%s), not in "
				"docs/metrics.md as '%s'\n", who, tab[i].name,
				fr_prom_type_name(tab[i].type), row);
			CU_FAIL("family missing from docs/metrics.md");
		}
	}
}

static void test_node_families(void)
{
	size_t n;
	const struct fr_prom_family *tab = node_metrics_families(&n);

	CU_ASSERT(n >= 60);
	CU_ASSERT_EQUAL(fr_prom_table_check(tab, n), FR_OK);
	if (fr_errmsg()[0])
		fprintf(stderr, "\n  %s\n", fr_errmsg());
	check_documented("freshetd", tab, n);
}

static void test_witness_families(void)
{
	size_t n;
	const struct fr_prom_family *tab = witness_metric_families(&n);

	CU_ASSERT(n >= 10);
	CU_ASSERT_EQUAL(fr_prom_table_check(tab, n), FR_OK);
	check_documented("freshet-witness", tab, n);
}

/* The doc lists nothing the code does not export (a stale row would send
 * an operator looking for a family that never comes). */
static void test_no_stale_rows(void)
{
	size_t nn, nw;
	const struct fr_prom_family *tn = node_metrics_families(&nn);
	const struct fr_prom_family *tw = witness_metric_families(&nw);
	const char *p = doc;

	while ((p = strstr(p, "\n| `")) != NULL) {
		const char *s = p + 4, *e = strchr(s, '`');
		bool found = false;

		p = s;
		if (!e || e - s > 120)
			continue;
		for (size_t i = 0; i < nn && !found; i++)
			found = strlen(tn[i].name) == (size_t)(e - s) &&
				strncmp(tn[i].name, s, (size_t)(e - s)) == 0;
		for (size_t i = 0; i < nw && !found; i++)
			found = strlen(tw[i].name) == (size_t)(e - s) &&
				strncmp(tw[i].name, s, (size_t)(e - s)) == 0;
		if (!found) {
			fprintf(stderr, "\n  docs/metrics.md lists %.*s, which "
				"nothing exports\n", (int)(e - s), s);
			CU_FAIL("stale row in docs/metrics.md");
		}
	}
}

static const struct fr_unit_test tests[] = {
	{ "node_families", test_node_families },
	{ "witness_families", test_witness_families },
	{ "no_stale_rows", test_no_stale_rows },
};

int main(void)
{
	if (load_doc() != 0) {
		fprintf(stderr, "test_metrics_doc: cannot read %s/docs/metrics.md\n",
			FRESHET_SOURCE_DIR);
		return FR_UNIT_EXIT_SETUP;
	}
	return fr_unit_main("metrics_doc", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
