/*
 * score.c — the witness's arithmetic: predictions (sigmoid of a dot
 * product), log-loss, AUC by ranks, the paired bootstrap, and the decision
 * rule that turns them into healthy / uncertain / corrupted.  Every
 * formula and the rule itself are written out at the top of witness.h;
 * this file is pure (no I/O, no globals) and deterministic for a seed.
 *
 * AUC is computed in one pass over the examples sorted by score, grouped
 * into runs of equal scores: a positive scores 1 against each negative
 * below its run and 1/2 against each negative inside it (Mann-Whitney with
 * ties averaged).  Counting 2 x the numerator in integers keeps it exact.
 * The bootstrap reuses the same sorted runs with per-example weights (how
 * often each example was drawn), so a resample costs O(n), not
 * O(n log n): R resamples of n examples cost about 3 R n steps.
 *
 * Not here: reading the probe file (probe.c), looking rows up or acting on
 * a decision (main.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "witness/witness.h"

/* ------------------------------------------------------------------------
 * Predictions and losses
 * ---------------------------------------------------------------------- */

double witness_sigmoid(double x)
{
	double e;

	if (x >= 0)
		return 1.0 / (1.0 + exp(-x));
	if (x < 0) {
		e = exp(x);
		return e / (1.0 + e);
	}
	return x;   /* NaN */
}

double witness_predict(const float *u, const float *v, uint32_t dim)
{
	double dot = 0;

	for (uint32_t i = 0; i < dim; i++)
		dot += (double)u[i] * (double)v[i];
	return witness_sigmoid(dot);
}

double witness_loss(double p, unsigned label)
{
	if (p < WITNESS_EPS)
		p = WITNESS_EPS;
	if (p > 1.0 - WITNESS_EPS)
		p = 1.0 - WITNESS_EPS;
	return label ? -log(p) : -log1p(-p);
}

double witness_logloss(const double *p, const uint8_t *y, uint32_t n)
{
	double sum = 0;

	if (n == 0)
		return NAN;
	for (uint32_t i = 0; i < n; i++)
		sum += witness_loss(p[i], y[i]);
	return sum / n;
}

/* ------------------------------------------------------------------------
 * AUC over runs of equal scores
 * ---------------------------------------------------------------------- */

/* Examples sorted by score; run r holds idx[run_end[r-1] .. run_end[r]). */
struct order {
	uint32_t *idx;
	uint32_t *run_end;
	uint32_t nruns;
};

/* qsort has no context argument: the scores travel in the array. */
struct keyed {
	double score;
	uint32_t i;
};

static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	if (x->score != y->score)
		return x->score < y->score ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static void order_fini(struct order *o)
{
	free(o->idx);
	free(o->run_end);
	memset(o, 0, sizeof(*o));
}

/* p must hold numbers (no NaN): the sort needs a total order. */
static enum fr_err order_build(struct order *o, const double *p, uint32_t n)
{
	struct keyed *k;

	memset(o, 0, sizeof(*o));
	k = malloc((size_t)n * sizeof(*k) + 1);
	o->idx = malloc((size_t)n * sizeof(*o->idx) + 1);
	o->run_end = malloc((size_t)n * sizeof(*o->run_end) + 1);
	if (!k || !o->idx || !o->run_end) {
		free(k);
		order_fini(o);
		return fr_fail(FR_ERR_NOMEM, "no memory to rank %u scores", n);
	}
	for (uint32_t i = 0; i < n; i++)
		k[i] = (struct keyed){ p[i], i };
	qsort(k, n, sizeof(*k), keyed_cmp);
	for (uint32_t i = 0; i < n; i++) {
		o->idx[i] = k[i].i;
		if (i + 1 == n || k[i + 1].score != k[i].score)
			o->run_end[o->nruns++] = i + 1;
	}
	free(k);
	return FR_OK;
}

/* AUC with example i counted w[i] times (w NULL: once each); NaN when the
 * weighted positives or negatives are none. */
static double order_auc(const struct order *o, const uint8_t *y,
			const uint32_t *w)
{
	uint64_t neg_below = 0, pos = 0, num2 = 0;
	uint32_t k = 0;

	for (uint32_t r = 0; r < o->nruns; r++) {
		uint64_t gp = 0, gn = 0;

		for (; k < o->run_end[r]; k++) {
			uint32_t i = o->idx[k];
			uint64_t wi = w ? w[i] : 1;

			if (y[i])
				gp += wi;
			else
				gn += wi;
		}
		/* 2 x (gp * neg_below + gp * gn / 2) */
		num2 += 2 * gp * neg_below + gp * gn;
		neg_below += gn;
		pos += gp;
	}
	if (pos == 0 || neg_below == 0)
		return NAN;
	return (double)num2 / (2.0 * (double)pos * (double)neg_below);
}

enum fr_err witness_auc(const double *p, const uint8_t *y, uint32_t n,
			double *auc)
{
	struct order o;
	enum fr_err err;

	*auc = NAN;
	if (n == 0)
		return FR_OK;
	err = order_build(&o, p, n);
	if (err)
		return err;
	*auc = order_auc(&o, y, NULL);
	order_fini(&o);
	return FR_OK;
}

/* ------------------------------------------------------------------------
 * PRNG: xoshiro256** seeded through splitmix64 (Blackman & Vigna)
 * ---------------------------------------------------------------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, n), n >= 1, without modulo bias (Lemire's method). */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
	uint64_t m = (rng_next(r) >> 32) * (uint64_t)n;
	uint32_t lo = (uint32_t)m;

	if (lo < n) {
		uint32_t floor = (uint32_t)(-n) % n;

		while (lo < floor) {
			m = (rng_next(r) >> 32) * (uint64_t)n;
			lo = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

/* ------------------------------------------------------------------------
 * Bootstrap
 * ---------------------------------------------------------------------- */

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Quantile q of sorted x[m] (m >= 1), linear between order statistics. */
static double quantile(const double *x, uint32_t m, double q)
{
	double h = (m - 1) * q;
	uint32_t lo = (uint32_t)floor(h);

	if (lo + 1 >= m)
		return x[m - 1];
	return x[lo] + (h - lo) * (x[lo + 1] - x[lo]);
}

/* Sort v[m] and fill ci; frac counted by the caller. */
static void ci_fill(struct witness_ci *ci, double *v, uint32_t m,
		    uint32_t no_worse, double confidence)
{
	ci->used = m;
	if (m == 0) {
		ci->lo = ci->hi = ci->frac = NAN;
		return;
	}
	qsort(v, m, sizeof(*v), dbl_cmp);
	ci->lo = quantile(v, m, (1.0 - confidence) / 2);
	ci->hi = quantile(v, m, (1.0 + confidence) / 2);
	ci->frac = (double)no_worse / m;
}

enum fr_err witness_bootstrap(const double *pc, const double *pb,
			      const uint8_t *y, uint32_t n,
			      uint32_t resamples, double confidence,
			      uint64_t seed, struct witness_ci *ll,
			      struct witness_ci *auc)
{
	struct order oc = { 0 }, ob = { 0 };
	double *d = NULL, *dl = NULL, *da = NULL;
	uint32_t *w = NULL, nda = 0, ll_ok = 0, auc_ok = 0;
	struct rng rng;
	enum fr_err err;

	if (n == 0)
		return fr_fail(FR_ERR_INVAL, "bootstrap: no examples");
	if (resamples < WITNESS_RESAMPLES_MIN ||
	    resamples > WITNESS_RESAMPLES_MAX)
		return fr_fail(FR_ERR_INVAL, "bootstrap: resamples %u, expected "
			       "%d..%d", resamples, WITNESS_RESAMPLES_MIN,
			       WITNESS_RESAMPLES_MAX);
	if (!(confidence > 0 && confidence < 1))
		return fr_fail(FR_ERR_INVAL, "bootstrap: confidence %g, "
			       "expected 0 < c < 1", confidence);
	for (uint32_t i = 0; i < n; i++)
		if (!(pc[i] >= 0 && pc[i] <= 1 && pb[i] >= 0 && pb[i] <= 1))
			return fr_fail(FR_ERR_INVAL, "bootstrap: prediction of "
				       "example %u is not in [0, 1]", i);
	d = malloc((size_t)n * sizeof(*d));
	w = malloc((size_t)n * sizeof(*w));
	dl = malloc((size_t)resamples * sizeof(*dl));
	da = malloc((size_t)resamples * sizeof(*da));
	if (!d || !w || !dl || !da) {
		err = fr_fail(FR_ERR_NOMEM, "no memory for a bootstrap of %u "
			      "examples", n);
		goto out;
	}
	if ((err = order_build(&oc, pc, n)) || (err = order_build(&ob, pb, n)))
		goto out;
	for (uint32_t i = 0; i < n; i++)
		d[i] = witness_loss(pc[i], y[i]) - witness_loss(pb[i], y[i]);

	rng_seed(&rng, seed);
	for (uint32_t r = 0; r < resamples; r++) {
		double sum = 0, ac, ab;

		memset(w, 0, (size_t)n * sizeof(*w));
		for (uint32_t k = 0; k < n; k++) {
			uint32_t i = rng_below(&rng, n);

			w[i]++;
			sum += d[i];
		}
		dl[r] = sum / n;
		ll_ok += dl[r] <= 0;
		ac = order_auc(&oc, y, w);
		ab = order_auc(&ob, y, w);
		if (!isnan(ac) && !isnan(ab)) {
			da[nda] = ac - ab;
			auc_ok += da[nda] >= 0;
			nda++;
		}
	}
	ci_fill(ll, dl, resamples, ll_ok, confidence);
	ci_fill(auc, da, nda, auc_ok, confidence);
	err = FR_OK;
out:
	order_fini(&oc);
	order_fini(&ob);
	free(d);
	free(w);
	free(dl);
	free(da);
	return err;
}

/* ------------------------------------------------------------------------
 * Options and the decision
 * ---------------------------------------------------------------------- */

const char *witness_decision_name(enum witness_decision d)
{
	switch (d) {
	case WITNESS_HEALTHY: return "healthy";
	case WITNESS_UNCERTAIN: return "uncertain";
	case WITNESS_CORRUPTED: return "corrupted";
	}
	return "unknown";
}

void witness_opts_default(struct witness_opts *o)
{
	o->margin = 0.02;
	o->auc_margin = 0.01;
	o->confidence = 0.99;
	o->resamples = 1000;
	o->min_samples = 200;
	o->seed = 1;
}

enum fr_err witness_opts_check(const struct witness_opts *o)
{
	if (!(o->margin > 0 && o->margin <= 16))
		return fr_fail(FR_ERR_RANGE, "--margin %g: expected a log-loss "
			       "increase in (0, 16]", o->margin);
	if (!(o->auc_margin > 0 && o->auc_margin <= 1))
		return fr_fail(FR_ERR_RANGE, "--auc-margin %g: expected an AUC "
			       "drop in (0, 1]", o->auc_margin);
	if (!(o->confidence >= 0.5 && o->confidence <= 0.9999))
		return fr_fail(FR_ERR_RANGE, "--confidence %g: expected "
			       "0.5..0.9999", o->confidence);
	if (o->resamples < WITNESS_RESAMPLES_MIN ||
	    o->resamples > WITNESS_RESAMPLES_MAX)
		return fr_fail(FR_ERR_RANGE, "--resamples %u: expected %d..%d",
			       o->resamples, WITNESS_RESAMPLES_MIN,
			       WITNESS_RESAMPLES_MAX);
	if (o->min_samples < 1 || o->min_samples > WITNESS_EXAMPLES_MAX)
		return fr_fail(FR_ERR_RANGE, "--min-samples %u: expected 1..%u",
			       o->min_samples, WITNESS_EXAMPLES_MAX);
	return FR_OK;
}

/* A prediction that is not a number in [0, 1] becomes the worst one for
 * its label. */
static double sanitize(double p, uint8_t label, uint32_t *bad)
{
	if (p >= 0 && p <= 1)
		return p;
	(*bad)++;
	return label ? 0.0 : 1.0;
}

static void result_nan(struct witness_result *r)
{
	r->logloss_c = r->logloss_b = r->delta = NAN;
	r->ci_lo = r->ci_hi = r->p_delta = NAN;
	r->auc_c = r->auc_b = r->auc_delta = NAN;
	r->auc_ci_lo = r->auc_ci_hi = r->p_auc = NAN;
}

enum fr_err witness_decide(const double *pc, const double *pb,
			   const uint8_t *y, uint32_t n,
			   const struct witness_opts *o,
			   struct witness_result *out)
{
	struct witness_result r = { .n = n, .resamples = o->resamples };
	struct witness_ci ll, auc;
	double *c = NULL, *b = NULL, drop;
	enum fr_err err;

	err = witness_opts_check(o);
	if (err)
		return err;
	result_nan(&r);
	for (uint32_t i = 0; i < n; i++) {
		if (y[i] > 1)
			return fr_fail(FR_ERR_INVAL, "example %u: label %u, "
				       "expected 0 or 1", i, y[i]);
		r.npos += y[i];
	}
	if (n == 0) {
		r.decision = WITNESS_UNCERTAIN;
		r.why = "no examples";
		*out = r;
		return FR_OK;
	}
	c = malloc((size_t)n * sizeof(*c));
	b = malloc((size_t)n * sizeof(*b));
	if (!c || !b) {
		err = fr_fail(FR_ERR_NOMEM, "no memory to score %u examples",
			      n);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		c[i] = sanitize(pc[i], y[i], &r.bad_c);
		b[i] = sanitize(pb[i], y[i], &r.bad_b);
	}
	r.logloss_c = witness_logloss(c, y, n);
	r.logloss_b = witness_logloss(b, y, n);
	r.delta = r.logloss_c - r.logloss_b;
	if ((err = witness_auc(c, y, n, &r.auc_c)) ||
	    (err = witness_auc(b, y, n, &r.auc_b)))
		goto out;
	r.auc_delta = r.auc_c - r.auc_b;
	err = witness_bootstrap(c, b, y, n, o->resamples, o->confidence,
				o->seed, &ll, &auc);
	if (err)
		goto out;
	r.ci_lo = ll.lo;
	r.ci_hi = ll.hi;
	r.p_delta = ll.frac;
	r.auc_ci_lo = auc.lo;
	r.auc_ci_hi = auc.hi;
	r.p_auc = auc.frac;
	r.auc_resamples = auc.used;

	/* The rule, in the order witness.h writes it.  NaN compares false. */
	drop = -r.auc_delta;
	if (n >= o->min_samples && r.delta > o->margin && r.ci_lo > 0) {
		r.decision = WITNESS_CORRUPTED;
		r.why = "log-loss regression above the margin, significant";
	} else if (n >= o->min_samples && drop > o->auc_margin &&
		   r.auc_ci_hi < 0) {
		r.decision = WITNESS_CORRUPTED;
		r.why = "AUC drop above the margin, significant";
	} else if (n < o->min_samples) {
		r.decision = WITNESS_UNCERTAIN;
		r.why = "too few examples (n < min_samples)";
	} else if (r.delta > o->margin / 2) {
		r.decision = WITNESS_UNCERTAIN;
		r.why = r.delta > o->margin
				? "log-loss regression above the margin, not "
				  "significant"
				: "log-loss regression above half the margin";
	} else if (drop > o->auc_margin / 2) {
		r.decision = WITNESS_UNCERTAIN;
		r.why = drop > o->auc_margin
				? "AUC drop above the margin, not significant"
				: "AUC drop above half the margin";
	} else {
		r.decision = WITNESS_HEALTHY;
		r.why = "no regression above half a margin";
	}
	*out = r;
out:
	free(c);
	free(b);
	return err;
}
