/*
 * witness.h — the one public header of freshet's witness/ module: the pure
 * half of `freshet-witness` (docs/design.md §6).  It reads a labelled
 * probe set, scores two sets of embeddings on it (the canary's and the
 * baseline's: two-tower dot product -> sigmoid -> log-loss and AUC), and
 * decides with a paired bootstrap whether the canary is healthy,
 * uncertain or corrupted.
 *
 * It also keeps the witness's counters and renders them as Prometheus
 * text (metrics.c) from one table of families, witness_metric_families.
 *
 * Nothing here talks to ZooKeeper or to a node, and nothing prints or
 * logs: main.c (the binary) looks the rows up, feeds the scores in, and
 * acts on the decision.  Everything is deterministic given its inputs
 * (the bootstrap draws from a seeded PRNG), so a decision can be replayed.
 * Any thread; objects are owned by one thread at a time.
 *
 * Probe file (docs/witness.md), one example per line, five fields
 * separated by single TABs:
 *
 *     label <TAB> user_table <TAB> user_row <TAB> item_table <TAB> item_row
 *
 *   label       0 or 1 (exactly one character)
 *   *_table     a name (fr_name_check: 1..63 bytes of [A-Za-z0-9_.-], not
 *               "." or ".."), a table of the model
 *   *_row       unsigned decimal row id < 2^64 (digits only)
 *
 * A trailing CR is ignored.  Blank lines (only spaces and tabs) and lines
 * whose first non-blank character is '#' are skipped.  Limits: lines of at
 * most WITNESS_LINE_MAX bytes, at most WITNESS_EXAMPLES_MAX examples and
 * WITNESS_TABLES_MAX distinct tables, files of at most WITNESS_FILE_MAX
 * bytes; at least one example.  Errors are FR_ERR_INVAL (FR_ERR_RANGE,
 * FR_ERR_TOOBIG for limits, FR_ERR_IO, FR_ERR_NOMEM) with a detail in
 * fr_errmsg() that starts "line N: " and names the field, and probe->line
 * set to N (0 when the error is not about one line).
 *
 * Score of an example: p = sigmoid(dot(user row, item row)), in double.
 * Per-example log-loss: -ln(q) for label 1 and -ln(1 - q) for label 0,
 * where q is p clamped to [WITNESS_EPS, 1 - WITNESS_EPS] (so one example
 * costs at most -ln(1e-7) ~= 16.12).  AUC: the Mann-Whitney statistic,
 * P(score of a positive > score of a negative) with ties counted 1/2,
 * computed by ranks; undefined (NaN) when either class is absent.
 *
 * Bootstrap: R resamples, each n example indices drawn uniformly with
 * replacement from a PRNG seeded with `seed` (xoshiro256** through
 * splitmix64); the SAME indices are used for canary and baseline (paired).
 * Per resample: delta = mean over the drawn examples of
 * (loss_canary - loss_baseline), and auc_delta = AUC_canary - AUC_baseline
 * on the drawn examples (a resample holding one class only is left out of
 * the AUC figures).  The interval at confidence c is the two-sided
 * percentile interval [q((1-c)/2), q((1+c)/2)] of the resampled values
 * (linear interpolation between order statistics).  The "p-like
 * fractions" are the share of resamples in which the canary was no worse:
 * p_delta = share with delta <= 0, p_auc = share with auc_delta >= 0.
 *
 * Decision rule (witness_decide), with drop = -auc_delta = AUC_b - AUC_c:
 *
 *   corrupted  iff  n >= min_samples  and
 *                   (  (delta > margin     and ci_lo > 0)
 *                   or (drop  > auc_margin and auc_ci_hi < 0) )
 *   uncertain  iff  not corrupted and
 *                   (  n < min_samples
 *                   or delta > margin / 2
 *                   or drop  > auc_margin / 2 )
 *   healthy    otherwise.
 *
 * A comparison with an undefined (NaN) figure is false: with one class
 * only, AUC plays no part.  A prediction that is not a number in [0, 1]
 * (NaN from a corrupted row) counts as the worst possible one for its
 * label (p = 0 for a positive, 1 for a negative), and is counted in
 * bad_c / bad_b.  Defaults (witness_opts_default): margin 0.02,
 * auc_margin 0.01, confidence 0.99, resamples 1000, min_samples 200,
 * seed 1.
 */
#ifndef FRESHET_WITNESS_H
#define FRESHET_WITNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

#define WITNESS_NAME_MAX 63                 /* = SHARD_NAME_MAX */
#define WITNESS_LINE_MAX 1024               /* bytes per line, CR LF incl. */
#define WITNESS_EXAMPLES_MAX (1u << 20)
#define WITNESS_TABLES_MAX 64               /* distinct tables in a file */
#define WITNESS_FILE_MAX (256u << 20)       /* bytes */
#define WITNESS_EPS 1e-7                    /* log-loss clamp */

#define WITNESS_RESAMPLES_MIN 10
#define WITNESS_RESAMPLES_MAX 100000

/* ------------------------------------------------------------------------
 * Probe set (probe.c)
 * ---------------------------------------------------------------------- */

/* A distinct row the probe set needs: table index into probe->tables. */
struct witness_key {
	uint32_t table;
	uint64_t row;
};

struct witness_probe {
	uint32_t n;                  /* examples */
	uint32_t npos;               /* examples labelled 1 */
	uint8_t *labels;             /* n, 0 or 1 */
	uint32_t *user;              /* n, index into keys[] */
	uint32_t *item;              /* n, index into keys[] */
	uint32_t ntables;            /* distinct table names */
	char (*tables)[WITNESS_NAME_MAX + 1];  /* in order of first use */
	uint32_t nkeys;              /* distinct (table, row) pairs */
	struct witness_key *keys;    /* sorted by (table, row) */
	uint32_t *table_first;       /* ntables + 1: table t's keys are
				      * keys[table_first[t]..table_first[t+1]) */
	size_t line;                 /* failing line (1-based), 0 if none */
};

void witness_probe_init(struct witness_probe *p);
/* Free what p holds and empty it (line is kept). */
void witness_probe_fini(struct witness_probe *p);
/* Parse a whole probe file held in buf (len bytes, borrowed; need not end
 * in a newline).  p must be empty (init or fini'd); on error it stays
 * empty. */
enum fr_err witness_probe_parse(struct witness_probe *p, const char *buf,
				size_t len);
/* Read path (borrowed) and parse it.  FR_ERR_IO names the path and the
 * system's reason; FR_ERR_TOOBIG a file over WITNESS_FILE_MAX. */
enum fr_err witness_probe_load(struct witness_probe *p, const char *path);

/* ------------------------------------------------------------------------
 * Scores and the decision (score.c)
 * ---------------------------------------------------------------------- */

/* 1 / (1 + e^-x), without overflow for any x; NaN for NaN. */
double witness_sigmoid(double x);
/* sigmoid(dot(u, v)) over dim floats, accumulated in double. */
double witness_predict(const float *u, const float *v, uint32_t dim);
/* One example's log-loss with p clamped to [WITNESS_EPS, 1-WITNESS_EPS];
 * label 0 or 1.  p must be a number (see witness_decide for NaN). */
double witness_loss(double p, unsigned label);
/* Mean log-loss over n examples; NaN when n == 0. */
double witness_logloss(const double *p, const uint8_t *y, uint32_t n);
/* AUC by ranks, ties averaged.  *auc is NaN when all n labels are equal
 * (or n == 0).  p must hold numbers.  FR_ERR_NOMEM only. */
enum fr_err witness_auc(const double *p, const uint8_t *y, uint32_t n,
			double *auc);

/* One bootstrap interval. */
struct witness_ci {
	double lo, hi;      /* percentile interval at the confidence asked */
	double frac;        /* share of resamples where the canary was no
			     * worse (see the top of this file) */
	uint32_t used;      /* resamples that counted */
};

/* The paired bootstrap of delta (ll) and auc_delta (auc) described at the
 * top of this file.  pc, pb: predictions in [0, 1]; y: labels.  n >= 1,
 * resamples within WITNESS_RESAMPLES_MIN..MAX, 0 < confidence < 1.  An
 * interval with no resample that counted (auc with one class only) is
 * NaN, with used 0.  FR_ERR_INVAL for bad arguments, FR_ERR_NOMEM. */
enum fr_err witness_bootstrap(const double *pc, const double *pb,
			      const uint8_t *y, uint32_t n,
			      uint32_t resamples, double confidence,
			      uint64_t seed, struct witness_ci *ll,
			      struct witness_ci *auc);

enum witness_decision {
	WITNESS_HEALTHY = 0,
	WITNESS_UNCERTAIN = 1,
	WITNESS_CORRUPTED = 2,
};
#define WITNESS_DECISIONS 3

/* "healthy", "uncertain", "corrupted". */
const char *witness_decision_name(enum witness_decision d);

struct witness_opts {
	double margin;          /* log-loss increase that matters, (0, 16] */
	double auc_margin;      /* AUC drop that matters, (0, 1] */
	double confidence;      /* bootstrap interval level, [0.5, 0.9999] */
	uint32_t resamples;     /* RESAMPLES_MIN..MAX */
	uint32_t min_samples;   /* 1..WITNESS_EXAMPLES_MAX */
	uint64_t seed;          /* bootstrap PRNG seed */
};

void witness_opts_default(struct witness_opts *o);
/* FR_ERR_RANGE with a detail naming the option (as --margin etc.) and
 * its allowed range. */
enum fr_err witness_opts_check(const struct witness_opts *o);

struct witness_result {
	enum witness_decision decision;
	const char *why;            /* static text: the clause that decided */
	uint32_t n, npos;
	uint32_t bad_c, bad_b;      /* predictions that were not in [0, 1] */
	double logloss_c, logloss_b;
	double delta;               /* logloss_c - logloss_b */
	double ci_lo, ci_hi;        /* its bootstrap interval */
	double p_delta;             /* share of resamples with delta <= 0 */
	double auc_c, auc_b;        /* NaN with one class only */
	double auc_delta;           /* auc_c - auc_b */
	double auc_ci_lo, auc_ci_hi;
	double p_auc;               /* share of resamples with auc_delta >= 0 */
	uint32_t resamples;         /* asked */
	uint32_t auc_resamples;     /* that counted for AUC */
};

/* Score and decide (the rule at the top of this file).  pc, pb: the
 * canary's and the baseline's predictions for the same n examples (any
 * doubles: those not in [0, 1] are taken as the worst for their label);
 * y: labels 0/1.  n == 0 is allowed (uncertain, "no examples", every
 * figure NaN).  Borrowed; nothing is kept.  FR_ERR_RANGE for bad options
 * (as witness_opts_check), FR_ERR_INVAL for a label other than 0/1,
 * FR_ERR_NOMEM. */
enum fr_err witness_decide(const double *pc, const double *pb,
			   const uint8_t *y, uint32_t n,
			   const struct witness_opts *o,
			   struct witness_result *out);

/* ------------------------------------------------------------------------
 * Metrics (metrics.c)
 * ---------------------------------------------------------------------- */

/* Why a round decided nothing: the reason label of
 * freshet_witness_skipped_rounds_total and --once's "skip". */
enum witness_skip {
	WITNESS_SKIP_NONE = 0,
	WITNESS_SKIP_ZK,
	WITNESS_SKIP_NO_CANARY,
	WITNESS_SKIP_NO_BASELINE,
	WITNESS_SKIP_ROLLBACK,
	WITNESS_SKIP_LOOKUP,
	WITNESS_SKIP_ROWS_MISSING,
	WITNESS_SKIP_SCORE,
};
#define WITNESS_SKIPS 8

/* "none", "zookeeper", "no_canary", "no_baseline",
 * "rollback_in_progress", "lookup_failed", "rows_missing",
 * "score_failed"; "unknown" for others. */
const char *witness_skip_name(enum witness_skip s);

/* What one witness has counted since it started (owned by its loop). */
struct witness_metrics {
	uint64_t rounds;
	uint64_t decisions[WITNESS_DECISIONS];
	uint64_t skipped[WITNESS_SKIPS];
	uint64_t rollbacks_filed, rollbacks_refused, cas_conflicts;
	uint64_t state_changes, action_errors;
	bool have_last;                   /* some round decided */
	struct witness_result last;       /* the last decided round's */
	uint32_t last_excluded;
	uint64_t last_round_ms, last_decision_ms;   /* wall ms */
};

/* Count a round that started at at_ms: decided with res (borrowed,
 * copied) and excluded examples, or skipped for skip when res is NULL. */
void witness_metrics_round(struct witness_metrics *m, uint64_t at_ms,
			   const struct witness_result *res,
			   uint32_t excluded, enum witness_skip skip);

/* Every family /metrics serves, in the order it serves them: *n entries,
 * static.  Names follow Prometheus' conventions (counters end in _total,
 * base units). */
const struct fr_prom_family *witness_metric_families(size_t *n);

/* The whole /metrics text for model (a name) into w (fr_wbuf's sticky
 * error says if it ran out of memory).  Every series is labelled
 * model="..."; a gauge of the last decided round is NaN before one. */
void witness_metrics_render(struct fr_wbuf *w, const char *model,
			    const struct witness_metrics *m);

#endif /* FRESHET_WITNESS_H */
