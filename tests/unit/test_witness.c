/*
 * test_witness.c — CUnit suite for witness/ (pure): the probe file format
 * (a good file indexed into distinct rows; every malformed case named by
 * line and field), the arithmetic against hand-computed values (sigmoid,
 * log-loss with its clamp, AUC with ties), the bootstrap's determinism for
 * a seed, and the decision rule on synthetic two-tower data: identical
 * models are healthy, a canary with noisy rows is corrupted, small noise
 * or too few examples are never corrupted, and 50 seeds of a good update
 * raise no false alarm; and the metrics' table of families and the text
 * they render.
 *
 * Not here: the freshet-witness binary (its usage errors are smoke tests
 * in witness/CMakeLists.txt; runs against real nodes are integration
 * tests).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "testutil.h"
#include "unit_main.h"
#include "witness/witness.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-6)

/* ========================================================================
 * Probe files
 * ===================================================================== */

static enum fr_err parse(struct witness_probe *p, const char *s)
{
	return witness_probe_parse(p, s, strlen(s));
}

static void test_probe_ok(void)
{
	struct witness_probe p;

	witness_probe_init(&p);
	CU_ASSERT_EQUAL_FATAL(parse(&p,
				    "# label user_table user_row item_table "
				    "item_row\n"
				    "1\tusers\t7\titems\t3\n"
				    "\n"
				    "  \t \n"
				    "   # indented comment\n"
				    "0\tusers\t18446744073709551615\titems\t3\r\n"
				    "1\tusers\t7\titems\t0\n"
				    "0\titems\t3\tusers\t7"),
			      FR_OK);
	CU_ASSERT_EQUAL(p.line, 0);
	CU_ASSERT_EQUAL(p.n, 4);
	CU_ASSERT_EQUAL(p.npos, 2);
	CU_ASSERT_EQUAL(p.labels[0], 1);
	CU_ASSERT_EQUAL(p.labels[1], 0);
	CU_ASSERT_EQUAL(p.labels[3], 0);
	CU_ASSERT_EQUAL_FATAL(p.ntables, 2);
	CU_ASSERT_STRING_EQUAL(p.tables[0], "users");
	CU_ASSERT_STRING_EQUAL(p.tables[1], "items");
	/* Distinct rows: users 7, users 2^64-1, items 0, items 3. */
	CU_ASSERT_EQUAL_FATAL(p.nkeys, 4);
	CU_ASSERT_EQUAL(p.keys[0].table, 0);
	CU_ASSERT_EQUAL(p.keys[0].row, 7);
	CU_ASSERT_EQUAL(p.keys[1].table, 0);
	CU_ASSERT_EQUAL(p.keys[1].row, UINT64_MAX);
	CU_ASSERT_EQUAL(p.keys[2].table, 1);
	CU_ASSERT_EQUAL(p.keys[2].row, 0);
	CU_ASSERT_EQUAL(p.keys[3].table, 1);
	CU_ASSERT_EQUAL(p.keys[3].row, 3);
	CU_ASSERT_EQUAL(p.table_first[0], 0);
	CU_ASSERT_EQUAL(p.table_first[1], 2);
	CU_ASSERT_EQUAL(p.table_first[2], 4);
	/* Each example points at its rows. */
	CU_ASSERT_EQUAL(p.user[0], 0);
	CU_ASSERT_EQUAL(p.item[0], 3);
	CU_ASSERT_EQUAL(p.user[1], 1);
	CU_ASSERT_EQUAL(p.item[1], 3);
	CU_ASSERT_EQUAL(p.user[2], 0);
	CU_ASSERT_EQUAL(p.item[2], 2);
	CU_ASSERT_EQUAL(p.user[3], 3);   /* items 3 as the user side */
	CU_ASSERT_EQUAL(p.item[3], 0);
	witness_probe_fini(&p);
	CU_ASSERT_EQUAL(p.n, 0);
	CU_ASSERT_PTR_NULL(p.keys);
	witness_probe_fini(&p);   /* twice is fine */
}

/* A probe text that must fail on `line` with `needle` in the detail, and
 * leave nothing behind. */
static void probe_bad(const char *s, size_t len, enum fr_err code,
		      size_t line, const char *needle)
{
	struct witness_probe p;

	witness_probe_init(&p);
	CU_ASSERT_EQUAL(witness_probe_parse(&p, s, len), code);
	CU_ASSERT_EQUAL(p.line, line);
	CU_ASSERT(errmsg_has(needle));
	CU_ASSERT_EQUAL(p.n, 0);
	CU_ASSERT_EQUAL(p.nkeys, 0);
	CU_ASSERT_PTR_NULL(p.labels);
	CU_ASSERT_PTR_NULL(p.tables);
	witness_probe_fini(&p);
}

#define BAD(s, code, line, needle) probe_bad(s, strlen(s), code, line, needle)

static void test_probe_errors(void)
{
	static const char good[] = "1\tu\t1\ti\t2\n";
	char *big;
	size_t off;

	BAD("", FR_ERR_INVAL, 0, "no examples");
	BAD("# only\n\n  \n", FR_ERR_INVAL, 0, "no examples");
	BAD("1\tu\t1\ti\n", FR_ERR_INVAL, 1,
	    "line 1: expected 5 TAB-separated fields (label, user_table, "
	    "user_row, item_table, item_row), got 4");
	BAD("1\tu\t1\ti\t2\t9\n", FR_ERR_INVAL, 1, "got 6");
	BAD("1 u 1 i 2\n", FR_ERR_INVAL, 1, "got 1");
	BAD("1\tu\t1\ti\t2\n2\tu\t1\ti\t2\n", FR_ERR_INVAL, 2,
	    "line 2: label '2': expected 0 or 1");
	BAD("01\tu\t1\ti\t2\n", FR_ERR_INVAL, 1, "line 1: label '01'");
	BAD("\tu\t1\ti\t2\n", FR_ERR_INVAL, 1, "label ''");
	BAD("1\t\t1\ti\t2\n", FR_ERR_INVAL, 1, "line 1: user_table is empty");
	BAD("1\tu\t1\ti j\t2\n", FR_ERR_INVAL, 1,
	    "line 1: item_table 'i j' has byte 0x20 at 1");
	/* Table names by the shared rule, in its words. */
	{
		char want[256];

		fr_name_check("line 1: user_table", "..", WITNESS_NAME_MAX);
		snprintf(want, sizeof(want), "%s", fr_errmsg());
		BAD("1\t..\t1\ti\t2\n", FR_ERR_INVAL, 1, want);
	}
	BAD("1\tu\t1\t"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\t2\n", FR_ERR_INVAL, 1, "item_table 'aaaa");
	BAD("1\tu\t1\ti\t2\n1\tu\tx1\ti\t2\n", FR_ERR_INVAL, 2,
	    "line 2: user_row 'x1': expected an unsigned decimal row id");
	BAD("1\tu\t-1\ti\t2\n", FR_ERR_INVAL, 1, "user_row '-1'");
	BAD("1\tu\t+1\ti\t2\n", FR_ERR_INVAL, 1, "user_row '+1'");
	BAD("1\tu\t 1\ti\t2\n", FR_ERR_INVAL, 1, "user_row ' 1'");
	BAD("1\tu\t1\ti\t\n", FR_ERR_INVAL, 1, "line 1: item_row is empty");
	BAD("1\tu\t1\ti\t18446744073709551616\n", FR_ERR_RANGE, 1,
	    "line 1: item_row '18446744073709551616' is larger than 2^64-1");
	BAD("# c\n1\tu\t1\ti\t2\n1\tu\t1\ti\t2 \n", FR_ERR_INVAL, 3,
	    "line 3: item_row '2 '");
	/* A NUL byte is shown, not allowed to cut the name (or the
	 * message) short. */
	probe_bad("1\tu\t1\ti\t2\n1\tu\x00v\t1\ti\t2\n", 22, FR_ERR_INVAL, 2,
		  "line 2: user_table 'u\\x00v' has byte 0x00 at 1");

	/* A line over the limit. */
	big = malloc(WITNESS_LINE_MAX + 64);
	CU_ASSERT_FATAL(big != NULL);
	memcpy(big, good, strlen(good));
	off = strlen(good);
	memset(big + off, '#', WITNESS_LINE_MAX + 1);
	probe_bad(big, off + WITNESS_LINE_MAX + 1, FR_ERR_TOOBIG, 2,
		  "line 2: longer than 1024 bytes");
	free(big);

	/* Too many distinct tables: the 65th is refused on its line. */
	big = malloc(80 * 32);
	CU_ASSERT_FATAL(big != NULL);
	off = 0;
	for (int i = 0; i < 33; i++)
		off += (size_t)sprintf(big + off, "1\tu%d\t1\ti%d\t1\n", i, i);
	probe_bad(big, off, FR_ERR_TOOBIG, 33,
		  "line 33: user_table 'u32': more than 64 distinct tables");
	free(big);
}

/* path holds exactly text afterwards. */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	CU_ASSERT_EQUAL(fclose(f), 0);
}

static void test_probe_load(void)
{
	char path[256];
	struct witness_probe p;
	int fd;

	witness_probe_init(&p);
	CU_ASSERT_EQUAL(witness_probe_load(&p, "/nonexistent/probe.tsv"),
			FR_ERR_IO);
	CU_ASSERT(errmsg_has("cannot open '/nonexistent/probe.tsv'"));
	CU_ASSERT_EQUAL(witness_probe_load(&p, "/"), FR_ERR_IO);

	snprintf(path, sizeof(path), "/tmp/test_witness_XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	write_file(path, "1\tu\t1\ti\t2\n0\tu\t2\ti\t2\n");
	CU_ASSERT_EQUAL(witness_probe_load(&p, path), FR_OK);
	CU_ASSERT_EQUAL(p.n, 2);
	CU_ASSERT_EQUAL(p.nkeys, 3);
	witness_probe_fini(&p);

	write_file(path, "1\tu\t1\ti\t2\n0\tu\t2\ti\n");
	CU_ASSERT_EQUAL(witness_probe_load(&p, path), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(p.line, 2);
	CU_ASSERT_EQUAL(p.n, 0);
	unlink(path);
}

/* ========================================================================
 * Arithmetic against hand-computed values
 * ===================================================================== */

static void test_sigmoid(void)
{
	const float u[2] = { 1, 2 }, v[2] = { 3, -1 };

	CU_ASSERT_DOUBLE_EQUAL(witness_sigmoid(0), 0.5, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(witness_sigmoid(1), 0.7310585786300049, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(witness_sigmoid(-1), 0.2689414213699951,
			       1e-15);
	CU_ASSERT_EQUAL(witness_sigmoid(1000), 1.0);
	CU_ASSERT_EQUAL(witness_sigmoid(-1000), 0.0);
	CU_ASSERT(isfinite(witness_sigmoid(-1e308)));
	CU_ASSERT_EQUAL(witness_sigmoid(INFINITY), 1.0);
	CU_ASSERT_EQUAL(witness_sigmoid(-INFINITY), 0.0);
	CU_ASSERT(isnan(witness_sigmoid(NAN)));
	/* dot = 3 - 2 = 1 */
	CU_ASSERT_DOUBLE_EQUAL(witness_predict(u, v, 2), 0.7310585786300049,
			       1e-15);
	CU_ASSERT_DOUBLE_EQUAL(witness_predict(u, v, 0), 0.5, 1e-15);
}

static void test_logloss(void)
{
	const double p[3] = { 0.9, 0.2, 0.6 };
	const uint8_t y[3] = { 1, 0, 0 };

	/* (-ln 0.9 - ln 0.8 - ln 0.4) / 3 */
	CU_ASSERT_DOUBLE_EQUAL(witness_logloss(p, y, 3),
			       (0.10536051565782628 + 0.2231435513142097 +
				0.916290731874155) / 3,
			       1e-12);
	CU_ASSERT_DOUBLE_EQUAL(witness_loss(0.25, 1), 1.3862943611198906,
			       1e-12);
	CU_ASSERT_DOUBLE_EQUAL(witness_loss(0.25, 0), 0.2876820724517809,
			       1e-12);
	/* Clamped at 1e-7: the worst one example can cost. */
	CU_ASSERT_DOUBLE_EQUAL(witness_loss(0, 1), 16.11809565095832, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(witness_loss(1, 0), 16.11809565095832, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(witness_loss(1, 1), 1.00000005e-7, 1e-12);
	CU_ASSERT(isnan(witness_logloss(p, y, 0)));
}

static double auc_of(const double *p, const uint8_t *y, uint32_t n)
{
	double a = -1;

	CU_ASSERT_EQUAL(witness_auc(p, y, n, &a), FR_OK);
	return a;
}

static void test_auc(void)
{
	/* scikit-learn's roc_auc_score example: 0.75. */
	const double p1[4] = { 0.1, 0.4, 0.35, 0.8 };
	const uint8_t y1[4] = { 0, 0, 1, 1 };
	/* Ties: positives {0.5, 0.9}, negatives {0.5, 0.5}:
	 * (1/2 + 1/2 + 1 + 1) / 4 = 0.75. */
	const double p2[4] = { 0.5, 0.5, 0.5, 0.9 };
	const uint8_t y2[4] = { 1, 0, 0, 1 };
	/* Ties across: positives {0.3, 0.7, 0.7}, negatives {0.3, 0.7, 0.1}:
	 * 0.3 vs {0.3: 1/2, 0.7: 0, 0.1: 1} = 1.5;
	 * 0.7 vs {0.3: 1, 0.7: 1/2, 0.1: 1} = 2.5, twice -> 6.5 / 9. */
	const double p3[6] = { 0.3, 0.7, 0.7, 0.3, 0.7, 0.1 };
	const uint8_t y3[6] = { 1, 1, 1, 0, 0, 0 };
	const double flat[3] = { 0.4, 0.4, 0.4 };
	const uint8_t y4[3] = { 1, 0, 1 };
	const uint8_t ones[3] = { 1, 1, 1 };
	const double inc[4] = { 0.1, 0.2, 0.3, 0.4 };
	const uint8_t up[4] = { 0, 0, 1, 1 }, down[4] = { 1, 1, 0, 0 };

	CU_ASSERT_DOUBLE_EQUAL(auc_of(p1, y1, 4), 0.75, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(auc_of(p2, y2, 4), 0.75, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(auc_of(p3, y3, 6), 6.5 / 9, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(auc_of(flat, y4, 3), 0.5, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(auc_of(inc, up, 4), 1.0, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(auc_of(inc, down, 4), 0.0, 1e-15);
	CU_ASSERT(isnan(auc_of(flat, ones, 3)));
	CU_ASSERT(isnan(auc_of(flat, ones, 0)));
}

/* ========================================================================
 * Bootstrap
 * ===================================================================== */

static double gauss(void)
{
	double u1 = ((double)(rng() >> 11) + 1) / 9007199254740993.0;
	double u2 = (double)(rng() >> 11) / 9007199254740992.0;

	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static double unif(void)
{
	return (double)(rng() >> 11) / 9007199254740992.0;
}

static bool ci_same(const struct witness_ci *a, const struct witness_ci *b)
{
	return a->lo == b->lo && a->hi == b->hi && a->frac == b->frac &&
	       a->used == b->used;
}

static void test_bootstrap(void)
{
	enum { N = 500 };
	static double pc[N], pb[N];
	static uint8_t y[N];
	struct witness_ci a1, b1, a2, b2, a3, b3;

	rng_state = 42;
	for (int i = 0; i < N; i++) {
		pb[i] = unif();
		y[i] = unif() < pb[i];
		pc[i] = witness_sigmoid(log(pb[i] / (1 - pb[i])) + 0.5 * gauss());
	}
	CU_ASSERT_EQUAL_FATAL(witness_bootstrap(pc, pb, y, N, 300, 0.95, 7,
						&a1, &b1), FR_OK);
	CU_ASSERT_EQUAL_FATAL(witness_bootstrap(pc, pb, y, N, 300, 0.95, 7,
						&a2, &b2), FR_OK);
	/* Same seed: the same numbers, to the bit. */
	CU_ASSERT(ci_same(&a1, &a2));
	CU_ASSERT(ci_same(&b1, &b2));
	CU_ASSERT_EQUAL(a1.used, 300);
	CU_ASSERT_EQUAL(b1.used, 300);
	CU_ASSERT(a1.lo <= a1.hi);
	CU_ASSERT(b1.lo <= b1.hi);
	CU_ASSERT(a1.frac >= 0 && a1.frac <= 1);
	/* Another seed draws other resamples. */
	CU_ASSERT_EQUAL_FATAL(witness_bootstrap(pc, pb, y, N, 300, 0.95, 8,
						&a3, &b3), FR_OK);
	CU_ASSERT(a3.lo != a1.lo || a3.hi != a1.hi);
	/* The interval brackets the point estimate. */
	{
		double point = witness_logloss(pc, y, N) -
			       witness_logloss(pb, y, N);

		CU_ASSERT(a1.lo < point && point < a1.hi);
	}

	/* Identical predictions: every resample says 0, and "no worse". */
	CU_ASSERT_EQUAL(witness_bootstrap(pb, pb, y, N, 100, 0.99, 1, &a1,
					  &b1), FR_OK);
	CU_ASSERT_EQUAL(a1.lo, 0.0);
	CU_ASSERT_EQUAL(a1.hi, 0.0);
	CU_ASSERT_EQUAL(a1.frac, 1.0);
	CU_ASSERT_EQUAL(b1.lo, 0.0);
	CU_ASSERT_EQUAL(b1.frac, 1.0);

	/* One class only: no AUC interval. */
	memset(y, 1, sizeof(y));
	CU_ASSERT_EQUAL(witness_bootstrap(pc, pb, y, N, 100, 0.99, 1, &a1,
					  &b1), FR_OK);
	CU_ASSERT_EQUAL(b1.used, 0);
	CU_ASSERT(isnan(b1.lo) && isnan(b1.hi));
	CU_ASSERT_EQUAL(a1.used, 100);

	/* Bad arguments. */
	CU_ASSERT_EQUAL(witness_bootstrap(pc, pb, y, 0, 100, 0.99, 1, &a1,
					  &b1), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(witness_bootstrap(pc, pb, y, N, 5, 0.99, 1, &a1,
					  &b1), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("resamples 5"));
	CU_ASSERT_EQUAL(witness_bootstrap(pc, pb, y, N, 100, 1.0, 1, &a1,
					  &b1), FR_ERR_INVAL);
	pc[3] = NAN;
	CU_ASSERT_EQUAL(witness_bootstrap(pc, pb, y, N, 100, 0.99, 1, &a1,
					  &b1), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("example 3"));
}

/* ========================================================================
 * The decision on synthetic two-tower data
 * ===================================================================== */

enum { NU = 300, NI = 300, DIM = 8, NMAX = 4000 };

struct world {
	float user[NU][DIM], item[NI][DIM];       /* the truth = baseline */
	float cuser[NU][DIM], citem[NI][DIM];     /* the canary */
	uint32_t eu[NMAX], ei[NMAX];
	uint8_t y[NMAX];
	double pc[NMAX], pb[NMAX];
	uint32_t n;
};

static struct world W;

/* Vectors ~ N(0, 0.6^2) per coordinate (dot product sd about 1), n
 * examples of random pairs labelled ~ Bernoulli(sigmoid(dot)). */
static void world_make(uint64_t seed, uint32_t n)
{
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	for (int i = 0; i < NU; i++)
		for (int d = 0; d < DIM; d++)
			W.user[i][d] = (float)(0.6 * gauss());
	for (int i = 0; i < NI; i++)
		for (int d = 0; d < DIM; d++)
			W.item[i][d] = (float)(0.6 * gauss());
	W.n = n;
	for (uint32_t k = 0; k < n; k++) {
		W.eu[k] = (uint32_t)rnd(NU);
		W.ei[k] = (uint32_t)rnd(NI);
		W.y[k] = unif() < witness_predict(W.user[W.eu[k]],
						  W.item[W.ei[k]], DIM);
	}
	memcpy(W.cuser, W.user, sizeof(W.user));
	memcpy(W.citem, W.item, sizeof(W.item));
}

/* The canary's rows: the truth plus N(0, sd^2) noise. */
static void canary_noise(double sd)
{
	for (int i = 0; i < NU; i++)
		for (int d = 0; d < DIM; d++)
			W.cuser[i][d] = W.user[i][d] + (float)(sd * gauss());
	for (int i = 0; i < NI; i++)
		for (int d = 0; d < DIM; d++)
			W.citem[i][d] = W.item[i][d] + (float)(sd * gauss());
}

static enum witness_decision decide(const struct witness_opts *o,
				    struct witness_result *r)
{
	for (uint32_t k = 0; k < W.n; k++) {
		W.pc[k] = witness_predict(W.cuser[W.eu[k]], W.citem[W.ei[k]],
					  DIM);
		W.pb[k] = witness_predict(W.user[W.eu[k]], W.item[W.ei[k]],
					  DIM);
	}
	CU_ASSERT_EQUAL_FATAL(witness_decide(W.pc, W.pb, W.y, W.n, o, r),
			      FR_OK);
	return r->decision;
}

static void test_decide_identical(void)
{
	struct witness_opts o;
	struct witness_result r;

	witness_opts_default(&o);
	world_make(1, 2000);
	CU_ASSERT_EQUAL(decide(&o, &r), WITNESS_HEALTHY);
	CU_ASSERT_EQUAL(r.n, 2000);
	CU_ASSERT_EQUAL(r.delta, 0.0);
	CU_ASSERT_EQUAL(r.ci_lo, 0.0);
	CU_ASSERT_EQUAL(r.ci_hi, 0.0);
	CU_ASSERT_EQUAL(r.auc_delta, 0.0);
	CU_ASSERT_EQUAL(r.p_delta, 1.0);
	CU_ASSERT_EQUAL(r.bad_c, 0);
	CU_ASSERT(r.auc_b > 0.6 && r.auc_b < 0.95);   /* a real signal */
	CU_ASSERT(r.npos > 500 && r.npos < 1500);
	CU_ASSERT_STRING_EQUAL(witness_decision_name(r.decision), "healthy");
}

static void test_decide_corrupted(void)
{
	struct witness_opts o;
	struct witness_result r, r2;

	witness_opts_default(&o);
	world_make(2, 2000);
	canary_noise(1.0);
	CU_ASSERT_EQUAL(decide(&o, &r), WITNESS_CORRUPTED);
	CU_ASSERT(r.delta > o.margin);
	CU_ASSERT(r.ci_lo > 0);
	CU_ASSERT(r.ci_lo <= r.delta && r.delta <= r.ci_hi);
	CU_ASSERT(r.auc_delta < 0);
	CU_ASSERT(r.p_delta < 0.01);
	CU_ASSERT(str_has(r.why, "log-loss"));
	CU_ASSERT_STRING_EQUAL(witness_decision_name(r.decision),
			       "corrupted");
	/* Deterministic: the same inputs give the same figures. */
	CU_ASSERT_EQUAL_FATAL(witness_decide(W.pc, W.pb, W.y, W.n, &o, &r2),
			      FR_OK);
	CU_ASSERT_EQUAL(r.ci_lo, r2.ci_lo);
	CU_ASSERT_EQUAL(r.auc_ci_hi, r2.auc_ci_hi);

	/* With the log-loss clause out of reach, the AUC clause fires. */
	o.margin = 16;
	CU_ASSERT_EQUAL(decide(&o, &r), WITNESS_CORRUPTED);
	CU_ASSERT(str_has(r.why, "AUC drop"));
	CU_ASSERT(-r.auc_delta > o.auc_margin);
	CU_ASSERT(r.auc_ci_hi < 0);

	/* Too few examples: the same corruption is only uncertain. */
	witness_opts_default(&o);
	world_make(3, 150);
	canary_noise(1.0);
	CU_ASSERT_EQUAL(decide(&o, &r), WITNESS_UNCERTAIN);
	CU_ASSERT(str_has(r.why, "too few"));
	CU_ASSERT(r.delta > o.margin);   /* it did look bad */
}

/* Decide on nseeds worlds of 2000 examples (seeds from seed0) whose
 * canary has noise of sd on its rows: none may be corrupted, and with
 * max_delta > 0 each |delta| stays below it.  Counts by decision into n. */
static void noisy_seeds(const struct witness_opts *o, uint64_t seed0,
			uint32_t nseeds, double sd, double max_delta,
			uint32_t n[WITNESS_DECISIONS])
{
	struct witness_result r;

	memset(n, 0, WITNESS_DECISIONS * sizeof(n[0]));
	for (uint64_t s = seed0; s < seed0 + nseeds; s++) {
		world_make(s, 2000);
		canary_noise(sd);
		CU_ASSERT_NOT_EQUAL(decide(o, &r), WITNESS_CORRUPTED);
		if (max_delta > 0)
			CU_ASSERT(fabs(r.delta) < max_delta);
		n[r.decision]++;
	}
}

static void test_decide_small_noise(void)
{
	struct witness_opts o;
	uint32_t n[WITNESS_DECISIONS];

	witness_opts_default(&o);
	o.resamples = 300;
	/* Small noise (sd 0.05 on rows of sd 0.6): a slightly worse canary
	 * is never "corrupted", and nearly always healthy. */
	noisy_seeds(&o, 100, 10, 0.05, 0, n);
	CU_ASSERT(n[WITNESS_HEALTHY] >= 8);
	/* Twice that noise costs about 0.01 of AUC: with a 0.02 AUC margin
	 * that is above half the margin in some seeds (uncertain), never
	 * above the margin (corrupted). */
	o.auc_margin = 0.02;
	noisy_seeds(&o, 100, 10, 0.1, 0, n);
	CU_ASSERT(n[WITNESS_UNCERTAIN] >= 1);
}

/* 50 seeds of a good update (a tiny perturbation of every row): no false
 * alarm, and nearly always healthy. */
static void test_decide_no_false_alarm(void)
{
	struct witness_opts o;
	uint32_t n[WITNESS_DECISIONS];

	witness_opts_default(&o);
	o.resamples = 300;
	noisy_seeds(&o, 1000, 50, 0.01, o.margin / 2, n);
	CU_ASSERT_EQUAL(n[WITNESS_HEALTHY], 50);
}

/* A big regression carried by one example is not significant: a third of
 * the resamples leave that example out. */
static void test_decide_outlier(void)
{
	enum { N = 400 };
	static double pc[N], pb[N];
	static uint8_t y[N];
	struct witness_opts o;
	struct witness_result r;

	witness_opts_default(&o);
	for (int i = 0; i < N; i++) {
		y[i] = i % 2;
		pb[i] = pc[i] = y[i] ? 0.7 : 0.3;
	}
	pc[1] = 0;   /* a positive scored 0: loss 16.1, +0.039 on the mean */
	CU_ASSERT_EQUAL_FATAL(witness_decide(pc, pb, y, N, &o, &r), FR_OK);
	CU_ASSERT(r.delta > o.margin);
	CU_ASSERT(r.ci_lo <= 0);
	CU_ASSERT_EQUAL(r.decision, WITNESS_UNCERTAIN);
	CU_ASSERT(str_has(r.why, "not significant"));
}

/* Predictions that are not numbers count as the worst. */
static void test_decide_nan(void)
{
	struct witness_opts o;
	struct witness_result r;

	witness_opts_default(&o);
	world_make(5, 1000);
	for (uint32_t k = 0; k < W.n; k++) {
		W.pb[k] = witness_predict(W.user[W.eu[k]], W.item[W.ei[k]],
					  DIM);
		W.pc[k] = k % 4 ? W.pb[k] : NAN;
	}
	W.pc[1] = 1.5;
	W.pc[2] = -INFINITY;
	CU_ASSERT_EQUAL_FATAL(witness_decide(W.pc, W.pb, W.y, W.n, &o, &r),
			      FR_OK);
	CU_ASSERT_EQUAL(r.bad_c, 250 + 2);
	CU_ASSERT_EQUAL(r.bad_b, 0);
	CU_ASSERT_EQUAL(r.decision, WITNESS_CORRUPTED);
	CU_ASSERT(isfinite(r.logloss_c) && isfinite(r.auc_c));
}

static void test_decide_edges(void)
{
	const double p[4] = { 0.2, 0.4, 0.6, 0.8 };
	const uint8_t ones[4] = { 1, 1, 1, 1 }, bad[4] = { 0, 1, 2, 0 };
	struct witness_opts o;
	struct witness_result r;

	witness_opts_default(&o);
	/* No examples: uncertain, every figure undefined. */
	CU_ASSERT_EQUAL(witness_decide(p, p, ones, 0, &o, &r), FR_OK);
	CU_ASSERT_EQUAL(r.decision, WITNESS_UNCERTAIN);
	CU_ASSERT(str_has(r.why, "no examples"));
	CU_ASSERT(isnan(r.delta) && isnan(r.auc_c));
	/* One class: AUC undefined and out of the rule. */
	o.min_samples = 1;
	CU_ASSERT_EQUAL(witness_decide(p, p, ones, 4, &o, &r), FR_OK);
	CU_ASSERT_EQUAL(r.decision, WITNESS_HEALTHY);
	CU_ASSERT(isnan(r.auc_c) && isnan(r.auc_ci_lo));
	CU_ASSERT_EQUAL(r.auc_resamples, 0);
	/* A label other than 0/1. */
	CU_ASSERT_EQUAL(witness_decide(p, p, bad, 4, &o, &r), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("example 2: label 2"));
}

static void test_opts(void)
{
	struct witness_opts o, d;
	struct witness_result r;
	const double p[1] = { 0.5 };
	const uint8_t y[1] = { 1 };

	witness_opts_default(&d);
	CU_ASSERT_EQUAL(witness_opts_check(&d), FR_OK);
	CU_ASSERT_EQUAL(d.resamples, 1000);
	CU_ASSERT_EQUAL(d.min_samples, 200);
	CU_ASSERT_DOUBLE_EQUAL(d.confidence, 0.99, 1e-15);

	/* One option out of range at a time, named with its range. */
	for (int i = 0; i < 6; i++) {
		static const char *const needle[] = {
			"--margin 0", "--margin", "--auc-margin 1.5",
			"--confidence 1: expected 0.5..0.9999",
			"--resamples 9", "--min-samples 0",
		};

		o = d;
		switch (i) {
		case 0: o.margin = 0; break;
		case 1: o.margin = NAN; break;
		case 2: o.auc_margin = 1.5; break;
		case 3: o.confidence = 1; break;
		case 4: o.resamples = 9; break;
		case 5: o.min_samples = 0; break;
		}
		CU_ASSERT_EQUAL(witness_opts_check(&o), FR_ERR_RANGE);
		CU_ASSERT(errmsg_has(needle[i]));
	}
	/* decide refuses them too (o: min_samples 0). */
	CU_ASSERT_EQUAL(witness_decide(p, p, y, 1, &o, &r), FR_ERR_RANGE);
	CU_ASSERT_STRING_EQUAL(witness_decision_name(WITNESS_UNCERTAIN),
			       "uncertain");
}

/* ========================================================================
 * Metrics: the families the witness exports, and their text
 * ===================================================================== */

/* What /metrics exports, in order: a rename is a breaking change for
 * every dashboard and alert (docs/witness.md section 6; test_metrics_doc
 * checks the table against docs/metrics.md). */
static const char *const exported[] = {
	"freshet_witness_rounds_total",
	"freshet_witness_decisions_total",
	"freshet_witness_skipped_rounds_total",
	"freshet_witness_rollbacks_filed_total",
	"freshet_witness_rollbacks_refused_total",
	"freshet_witness_cas_conflicts_total",
	"freshet_witness_state_changes_total",
	"freshet_witness_action_errors_total",
	"freshet_witness_last_decision",
	"freshet_witness_logloss",
	"freshet_witness_logloss_delta",
	"freshet_witness_auc",
	"freshet_witness_auc_delta",
	"freshet_witness_examples",
	"freshet_witness_excluded_examples",
	"freshet_witness_last_round_timestamp_seconds",
	"freshet_witness_last_decision_timestamp_seconds",
};

static void test_metric_families(void)
{
	size_t n;
	const struct fr_prom_family *f = witness_metric_families(&n);

	CU_ASSERT_EQUAL_FATAL(n, FR_UNIT_COUNT(exported));
	CU_ASSERT_EQUAL(fr_prom_table_check(f, n), FR_OK);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_STRING_EQUAL(f[i].name, exported[i]);
		/* Counters are the _total ones, every other a gauge. */
		CU_ASSERT_EQUAL(f[i].type,
				strstr(f[i].name, "_total") ? FR_PROM_COUNTER
							    : FR_PROM_GAUGE);
	}
}

/* true when t has the sample `freshet_witness_FAM{model="ctr"[,LABEL]} V`
 * on a line of its own. */
static bool sample(const char *t, const char *fam, const char *label,
		   const char *v)
{
	char line[200];

	snprintf(line, sizeof(line), "\nfreshet_witness_%s{model=\"ctr\"%s%s} "
		 "%s\n", fam, *label ? "," : "", label, v);
	return str_has(t, line);
}

/* The text of m for model "ctr", NUL-terminated in w. */
static const char *metrics_text(struct fr_wbuf *w,
				const struct witness_metrics *m)
{
	fr_wbuf_reset(w);
	witness_metrics_render(w, "ctr", m);
	fr_wbuf_u8(w, 0);
	CU_ASSERT_EQUAL_FATAL(w->err, FR_OK);
	return (const char *)w->data;
}

/* Samples after one skipped round (no_canary) and one decided
 * (corrupted): family, labels besides model, value. */
static const char *const after[][3] = {
	{ "rounds_total", "", "2" },
	{ "skipped_rounds_total", "reason=\"no_canary\"", "1" },
	{ "decisions_total", "decision=\"corrupted\"", "1" },
	{ "decisions_total", "decision=\"healthy\"", "0" },
	{ "rollbacks_filed_total", "", "1" },
	{ "last_decision", "decision=\"corrupted\"", "1" },
	{ "last_decision", "decision=\"uncertain\"", "0" },
	{ "logloss", "node=\"canary\"", "0.5" },
	{ "logloss_delta", "bound=\"point\"", "0.25" },
	{ "auc_delta", "bound=\"high\"", "-0.125" },
	{ "examples", "", "2000" },
	{ "excluded_examples", "", "3" },
	{ "last_round_timestamp_seconds", "", "7.5" },
	{ "last_decision_timestamp_seconds", "", "7.5" },
};

static void test_metrics_render(void)
{
	struct witness_metrics m;
	struct witness_result res;
	struct fr_wbuf w;
	const char *t;
	char line[160];
	size_t n;
	const struct fr_prom_family *f = witness_metric_families(&n);

	memset(&m, 0, sizeof(m));
	fr_wbuf_init(&w, 1024, 0);
	t = metrics_text(&w, &m);
	for (size_t i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "# TYPE %s %s\n", f[i].name,
			 fr_prom_type_name(f[i].type));
		CU_ASSERT(str_has(t, line));
	}
	CU_ASSERT(sample(t, "rounds_total", "", "0"));
	CU_ASSERT(sample(t, "skipped_rounds_total", "reason=\"score_failed\"",
			 "0"));
	CU_ASSERT_PTR_NULL(strstr(t, "reason=\"none\""));
	/* Before any decision, the last round's figures are not numbers. */
	CU_ASSERT(sample(t, "logloss", "node=\"canary\"", "NaN"));
	CU_ASSERT(sample(t, "last_decision", "decision=\"corrupted\"", "0"));
	CU_ASSERT(sample(t, "last_round_timestamp_seconds", "", "NaN"));

	/* A skipped round, then a decided one. */
	witness_metrics_round(&m, 5000, NULL, 0, WITNESS_SKIP_NO_CANARY);
	memset(&res, 0, sizeof(res));
	res.decision = WITNESS_CORRUPTED;
	res.n = 2000;
	res.logloss_c = 0.5;
	res.logloss_b = 0.25;
	res.delta = 0.25;
	res.auc_ci_hi = -0.125;
	witness_metrics_round(&m, 7500, &res, 3, WITNESS_SKIP_NONE);
	m.rollbacks_filed = 1;
	t = metrics_text(&w, &m);
	for (size_t i = 0; i < FR_UNIT_COUNT(after); i++)
		CU_ASSERT(sample(t, after[i][0], after[i][1], after[i][2]));
	CU_ASSERT_STRING_EQUAL(witness_skip_name(WITNESS_SKIP_ROLLBACK),
			       "rollback_in_progress");
	CU_ASSERT_STRING_EQUAL(witness_skip_name((enum witness_skip)99),
			       "unknown");
	fr_wbuf_fini(&w);
}

static const struct fr_unit_test tests[] = {
	{ "probe file", test_probe_ok },
	{ "probe errors", test_probe_errors },
	{ "probe load", test_probe_load },
	{ "sigmoid", test_sigmoid },
	{ "log-loss", test_logloss },
	{ "auc", test_auc },
	{ "bootstrap", test_bootstrap },
	{ "identical is healthy", test_decide_identical },
	{ "noisy canary is corrupted", test_decide_corrupted },
	{ "small noise never corrupted", test_decide_small_noise },
	{ "no false alarm in 50 seeds", test_decide_no_false_alarm },
	{ "one outlier is not significant", test_decide_outlier },
	{ "non-numbers count as worst", test_decide_nan },
	{ "edges", test_decide_edges },
	{ "options", test_opts },
	{ "metric families", test_metric_families },
	{ "metrics text", test_metrics_render },
};

int main(void)
{
	return fr_unit_main("witness", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
