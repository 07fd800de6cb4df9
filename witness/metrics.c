/*
 * metrics.c — what freshet-witness counts and how /metrics shows it: one
 * table of Prometheus families (witness_metric_families, so a test can
 * list what the witness exports and docs/witness.md §6 can be checked
 * against it), the counting of a round, and the text rendered through
 * common/'s Prometheus renderer (fr_prom_*).
 *
 * Not here: serving HTTP (main.c), deciding anything (score.c).
 */
#include <math.h>
#include <string.h>

#include "witness/witness.h"

static const char *const skip_names[WITNESS_SKIPS] = {
	[WITNESS_SKIP_NONE] = "none",
	[WITNESS_SKIP_ZK] = "zookeeper",
	[WITNESS_SKIP_NO_CANARY] = "no_canary",
	[WITNESS_SKIP_NO_BASELINE] = "no_baseline",
	[WITNESS_SKIP_ROLLBACK] = "rollback_in_progress",
	[WITNESS_SKIP_LOOKUP] = "lookup_failed",
	[WITNESS_SKIP_ROWS_MISSING] = "rows_missing",
	[WITNESS_SKIP_SCORE] = "score_failed",
};

const char *witness_skip_name(enum witness_skip s)
{
	return (unsigned)s < WITNESS_SKIPS ? skip_names[s] : "unknown";
}

void witness_metrics_round(struct witness_metrics *m, uint64_t at_ms,
			   const struct witness_result *res,
			   uint32_t excluded, enum witness_skip skip)
{
	m->rounds++;
	m->last_round_ms = at_ms;
	if (!res) {
		if ((unsigned)skip >= WITNESS_SKIPS)
			skip = WITNESS_SKIP_NONE;
		m->skipped[skip]++;
		return;
	}
	m->decisions[res->decision]++;
	m->have_last = true;
	m->last = *res;
	m->last_excluded = excluded;
	m->last_decision_ms = at_ms;
}

/* ========================================================================
 * The families
 * ===================================================================== */

enum {
	M_ROUNDS,
	M_DECISIONS,
	M_SKIPPED,
	M_FILED,
	M_REFUSED,
	M_CAS,
	M_STATE_CHANGES,
	M_ACTION_ERRORS,
	M_LAST_DECISION,
	M_LOGLOSS,
	M_LOGLOSS_DELTA,
	M_AUC,
	M_AUC_DELTA,
	M_EXAMPLES,
	M_EXCLUDED,
	M_LAST_ROUND_TS,
	M_LAST_DECISION_TS,
	M__COUNT
};

#define C FR_PROM_COUNTER
#define G FR_PROM_GAUGE

static const struct fr_prom_family families[M__COUNT] = {
	[M_ROUNDS] = { "freshet_witness_rounds_total", C,
		"Rounds run, decided or skipped." },
	[M_DECISIONS] = { "freshet_witness_decisions_total", C,
		"Rounds decided, by decision." },
	[M_SKIPPED] = { "freshet_witness_skipped_rounds_total", C,
		"Rounds that decided nothing, by reason." },
	[M_FILED] = { "freshet_witness_rollbacks_filed_total", C,
		"Rollback directives this witness filed." },
	[M_REFUSED] = { "freshet_witness_rollbacks_refused_total", C,
		"Corrupted decisions whose rollback could not be filed "
		"(cut 0 or beyond every undo horizon)." },
	[M_CAS] = { "freshet_witness_cas_conflicts_total", C,
		"Writes refused because the state changed since it was "
		"read." },
	[M_STATE_CHANGES] = { "freshet_witness_state_changes_total", C,
		"Writes of models/<model>/state this witness made." },
	[M_ACTION_ERRORS] = { "freshet_witness_action_errors_total", C,
		"ZooKeeper writes that failed for another reason." },
	[M_LAST_DECISION] = { "freshet_witness_last_decision", G,
		"1 for the decision of the last decided round, 0 "
		"otherwise." },
	[M_LOGLOSS] = { "freshet_witness_logloss", G,
		"Mean log-loss on the probe set in the last decided round." },
	[M_LOGLOSS_DELTA] = { "freshet_witness_logloss_delta", G,
		"Canary minus baseline log-loss (point) and its bootstrap "
		"interval (low, high)." },
	[M_AUC] = { "freshet_witness_auc", G,
		"AUC on the probe set in the last decided round." },
	[M_AUC_DELTA] = { "freshet_witness_auc_delta", G,
		"Canary minus baseline AUC (point) and its bootstrap "
		"interval (low, high)." },
	[M_EXAMPLES] = { "freshet_witness_examples", G,
		"Examples scored in the last decided round." },
	[M_EXCLUDED] = { "freshet_witness_excluded_examples", G,
		"Examples left out in the last decided round (a row never "
		"written on a node)." },
	[M_LAST_ROUND_TS] = { "freshet_witness_last_round_timestamp_seconds",
		G, "Wall time the last round started." },
	[M_LAST_DECISION_TS] = {
		"freshet_witness_last_decision_timestamp_seconds", G,
		"Wall time the last decided round started." },
};

#undef C
#undef G

const struct fr_prom_family *witness_metric_families(size_t *n)
{
	*n = M__COUNT;
	return families;
}

/* ========================================================================
 * Rendering
 * ===================================================================== */

/* Family f with n samples, the integers u[] or else the doubles d[]:
 * sample i labelled model and, with key, key=vals[i].  A NULL key ends
 * the label list early, so one call serves both. */
static void render(struct fr_wbuf *w, int f, const char *model,
		   const char *key, const char *const *vals,
		   const uint64_t *u, const double *d, size_t n)
{
	const struct fr_prom_family *fam = &families[f];

	fr_prom_family(w, fam);
	for (size_t i = 0; i < n; i++) {
		const char *v = key ? vals[i] : NULL;

		if (u)
			fr_prom_u64(w, fam, u[i], "model", model, key, v,
				    (const char *)NULL);
		else
			fr_prom_f64(w, fam, d[i], "model", model, key, v,
				    (const char *)NULL);
	}
}

void witness_metrics_render(struct fr_wbuf *w, const char *model,
			    const struct witness_metrics *m)
{
	static const char *const nodes[] = { "canary", "baseline" };
	static const char *const bounds[] = { "point", "low", "high" };
	const struct witness_result *l = &m->last;
	const struct { int f; uint64_t v; } counters[] = {
		{ M_FILED, m->rollbacks_filed },
		{ M_REFUSED, m->rollbacks_refused },
		{ M_CAS, m->cas_conflicts },
		{ M_STATE_CHANGES, m->state_changes },
		{ M_ACTION_ERRORS, m->action_errors },
	};
	bool have = m->have_last;
	/* The last decided round's figures, NaN before one. */
	const struct { int f; const char *key; const char *const *vals;
		       double v[3]; size_t n; } gauges[] = {
		{ M_LOGLOSS, "node", nodes,
		  { have ? l->logloss_c : NAN, have ? l->logloss_b : NAN },
		  2 },
		{ M_LOGLOSS_DELTA, "bound", bounds,
		  { have ? l->delta : NAN, have ? l->ci_lo : NAN,
		    have ? l->ci_hi : NAN }, 3 },
		{ M_AUC, "node", nodes,
		  { have ? l->auc_c : NAN, have ? l->auc_b : NAN }, 2 },
		{ M_AUC_DELTA, "bound", bounds,
		  { have ? l->auc_delta : NAN, have ? l->auc_ci_lo : NAN,
		    have ? l->auc_ci_hi : NAN }, 3 },
		{ M_EXAMPLES, NULL, NULL, { have ? l->n : NAN }, 1 },
		{ M_EXCLUDED, NULL, NULL,
		  { have ? m->last_excluded : NAN }, 1 },
		{ M_LAST_ROUND_TS, NULL, NULL,
		  { m->rounds ? m->last_round_ms / 1000.0 : NAN }, 1 },
		{ M_LAST_DECISION_TS, NULL, NULL,
		  { have ? m->last_decision_ms / 1000.0 : NAN }, 1 },
	};
	const char *dnames[WITNESS_DECISIONS];
	double last[WITNESS_DECISIONS];

	for (int d = 0; d < WITNESS_DECISIONS; d++) {
		dnames[d] = witness_decision_name((enum witness_decision)d);
		last[d] = have && (int)l->decision == d;
	}
	render(w, M_ROUNDS, model, NULL, NULL, &m->rounds, NULL, 1);
	render(w, M_DECISIONS, model, "decision", dnames, m->decisions, NULL,
	       WITNESS_DECISIONS);
	/* Every reason but "none", which is not one. */
	render(w, M_SKIPPED, model, "reason", skip_names + 1, m->skipped + 1,
	       NULL, WITNESS_SKIPS - 1);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		render(w, counters[i].f, model, NULL, NULL, &counters[i].v,
		       NULL, 1);
	render(w, M_LAST_DECISION, model, "decision", dnames, NULL, last,
	       WITNESS_DECISIONS);
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
		render(w, gauges[i].f, model, gauges[i].key, gauges[i].vals,
		       NULL, gauges[i].v, gauges[i].n);
}
