/*
 * sched.c — the pull scheduler (docs/design.md §3, docs/gossip.md §3.5): pull
 * candidates, their priority, the online urgent quantile, the per-peer
 * in-flight budget, peer choice, timeouts and retries.
 *
 * A candidate is one (model, table, shard) that some peers advertised with
 * a vector ours does not dominate.  It lives in a hash (at most one per
 * shard, so at most one pull per shard in flight) and is either
 *
 *        offer()                      sched_run(): best peer with budget
 *   ──────────────► PENDING ─────────────────────────────────► IN FLIGHT
 *                      ▲                                          │
 *                      │   last reply / BUSY / NOMODEL / timeout / │
 *                      └──────── peer down (pull_end) ◄───────────┘
 *
 * and after pull_end it goes back to PENDING only while some peer still
 * advertises a vector we do not dominate; otherwise it is freed.
 *
 * Not here: the PULL wire format and applying replies (pull.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip_int.h"

/* ========================================================================
 * Hash of candidates by (model, table, shard)
 * ===================================================================== */

static uint32_t key_hash(uint32_t model, uint32_t table, uint32_t shard)
{
	uint64_t x = ((uint64_t)model << 48) ^ ((uint64_t)table << 32) ^ shard;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (uint32_t)x;
}

struct gcand *gossip_cand_find(const struct gossip *g, uint32_t model,
			       uint32_t table, uint32_t shard)
{
	struct gcand *c;

	if (!g->hash_cap)
		return NULL;
	c = g->hash[key_hash(model, table, shard) & (g->hash_cap - 1)];
	for (; c; c = c->hnext)
		if (c->model == model && c->table == table && c->shard == shard)
			return c;
	return NULL;
}

static bool hash_grow(struct gossip *g)
{
	uint32_t cap = g->hash_cap ? g->hash_cap * 2 : 256;
	struct gcand **h = calloc(cap, sizeof(*h));

	if (!h)
		return false;
	for (uint32_t i = 0; i < g->hash_cap; i++) {
		struct gcand *c = g->hash[i], *n;

		for (; c; c = n) {
			uint32_t b = key_hash(c->model, c->table, c->shard) &
				     (cap - 1);

			n = c->hnext;
			c->hnext = h[b];
			h[b] = c;
		}
	}
	free(g->hash);
	g->hash = h;
	g->hash_cap = cap;
	return true;
}

static void hash_remove(struct gossip *g, struct gcand *c)
{
	struct gcand **pp =
		&g->hash[key_hash(c->model, c->table, c->shard) &
			 (g->hash_cap - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			g->ncands--;
			return;
		}
}

/* ========================================================================
 * Pending and in-flight arrays (swap-remove; c->idx is the position)
 * ===================================================================== */

static bool arr_add(struct gcand ***arr, uint32_t *n, uint32_t *cap,
		    struct gcand *c)
{
	if (*n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 64;
		struct gcand **a = realloc(*arr, (size_t)nc * sizeof(*a));

		if (!a)
			return false;
		*arr = a;
		*cap = nc;
	}
	c->idx = *n;
	(*arr)[(*n)++] = c;
	return true;
}

static void arr_remove(struct gcand **arr, uint32_t *n, struct gcand *c)
{
	uint32_t i = c->idx;

	arr[i] = arr[--*n];
	arr[i]->idx = i;
}

/* Forget c everywhere but in the pending/inflight arrays, and free it. */
static void cand_destroy(struct gossip *g, struct gcand *c)
{
	hash_remove(g, c);
	g->models[c->model]->ncands--;
	for (uint32_t i = 0; i < c->nhave; i++)
		shard_vv_fini(&c->have[i].vv);
	free(c->have);
	free(c);
}

static void cand_free(struct gossip *g, struct gcand *c)
{
	if (c->inflight) {
		struct gpeer *p = gossip_peer_find(g, c->peer);

		if (p)
			p->st.inflight_bytes -= c->max_bytes;
		arr_remove(g->inflight, &g->ninflight, c);
	} else {
		arr_remove(g->pending, &g->npending, c);
	}
	cand_destroy(g, c);
}

void gossip_cands_free(struct gossip *g)
{
	while (g->npending)
		cand_free(g, g->pending[0]);
	while (g->ninflight)
		cand_free(g, g->inflight[0]);
	free(g->hash);
	free(g->pending);
	free(g->inflight);
	g->hash = NULL;
	g->pending = g->inflight = NULL;
	g->hash_cap = g->cap_pending = g->cap_inflight = 0;
}

bool gossip_model_busy(const struct gossip *g, uint32_t model)
{
	return g->models[model]->ncands > 0;
}

struct gcand *gossip_inflight_find(const struct gossip *g, uint32_t peer,
				   uint64_t req_id)
{
	for (uint32_t i = 0; i < g->ninflight; i++)
		if (g->inflight[i]->req_id == req_id &&
		    g->inflight[i]->peer == peer)
			return g->inflight[i];
	return NULL;
}

/* ========================================================================
 * Priority
 * ===================================================================== */

/* How much more significance the best-informed peer has applied to this
 * shard than we have (>= 0). */
static double sig_delta(const struct gossip *g, const struct gcand *c)
{
	const struct gmodel *m = g->models[c->model];
	struct shard_digest_entry ours;
	double best = 0;

	shard_store_digest_entry(m->st, c->table, c->shard, &ours);
	for (uint32_t i = 0; i < c->nhave; i++)
		if (c->have[i].sig - ours.significance > best)
			best = c->have[i].sig - ours.significance;
	return best;
}

/* priority = model priority x (1 + age in seconds) x (1 + log(1 +
 * significance delta)): urgent models first, nothing starves (age grows
 * without bound), and a big change beats a small one of the same model and
 * age.  The logarithm keeps the model's priority in charge: a significance
 * is a sum of row norms, so it grows with the size of an update, and
 * linear in it a large update of a low-priority model would outrank a
 * small one of a model 100 times more urgent (measured by
 * bench_propagation's priority run). */
static double sig_weight(double d)
{
	return 1.0 + log1p(d > 0 ? d : 0);
}

static double cand_prio(const struct gossip *g, const struct gcand *c,
			uint64_t now)
{
	double age = now > c->first_ms ? (double)(now - c->first_ms) / 1000.0
				       : 0.0;

	return (double)g->models[c->model]->priority * (1.0 + age) *
	       sig_weight(sig_delta(g, c));
}

static void qres_add(struct gossip *g, double prio)
{
	g->qres[g->qres_pos] = prio;
	g->qres_pos = (g->qres_pos + 1) % GOSSIP_QRES;
	if (g->qres_n < GOSSIP_QRES)
		g->qres_n++;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The urgent threshold: the urgent_quantile of the last GOSSIP_QRES
 * candidates' priorities when they were offered (a sliding-window
 * quantile; cheap, and it follows the load).  With too few samples every
 * pull counts as urgent.
 */
static double urgent_threshold(const struct gossip *g)
{
	double v[GOSSIP_QRES];
	size_t k;

	if (g->qres_n < GOSSIP_QRES_MIN)
		return 0;
	memcpy(v, g->qres, g->qres_n * sizeof(*v));
	qsort(v, g->qres_n, sizeof(*v), cmp_double);
	k = (size_t)(g->cfg.urgent_quantile * (double)(g->qres_n - 1));
	return v[k];
}

/* ========================================================================
 * Candidates
 * ===================================================================== */

static struct ghave *have_find(struct gcand *c, uint32_t peer)
{
	for (uint32_t i = 0; i < c->nhave; i++)
		if (c->have[i].peer == peer)
			return &c->have[i];
	return NULL;
}

void gossip_cand_drop_have(struct gossip *g, struct gcand *c, uint32_t peer)
{
	(void)g;
	for (uint32_t i = 0; i < c->nhave; i++)
		if (c->have[i].peer == peer) {
			shard_vv_fini(&c->have[i].vv);
			c->have[i] = c->have[--c->nhave];
			return;
		}
}

/* Drop the peers whose advertised vector we now dominate; true when some
 * peer still has something for us. */
static bool haves_refresh(struct gossip *g, struct gcand *c)
{
	const struct gmodel *m = g->models[c->model];
	const struct shard_vv *ours = shard_store_vv(m->st, c->table,
						     c->shard);
	bool repair = gmodel_repairing(m, c->table, c->shard);
	struct shard_digest_entry e;

	if (repair)
		shard_store_digest_entry(m->st, c->table, c->shard, &e);
	for (uint32_t i = 0; i < c->nhave;) {
		bool keep = repair ? c->have[i].epoch >= e.rollback_epoch :
				     !shard_vv_dominates(ours, &c->have[i].vv);

		if (!keep) {
			shard_vv_fini(&c->have[i].vv);
			c->have[i] = c->have[--c->nhave];
			continue;
		}
		i++;
	}
	return c->nhave > 0;
}

void gossip_cand_forget_peer(struct gossip *g, uint32_t peer)
{
	for (uint32_t i = 0; i < g->npending;) {
		struct gcand *c = g->pending[i];

		gossip_cand_drop_have(g, c, peer);
		if (c->nhave == 0) {
			cand_free(g, c);
			continue;
		}
		i++;
	}
	for (uint32_t i = 0; i < g->ninflight; i++)
		gossip_cand_drop_have(g, g->inflight[i], peer);
}

void gossip_cand_forget_model(struct gossip *g, uint32_t model)
{
	for (uint32_t i = 0; i < g->npending;) {
		struct gcand *c = g->pending[i];

		if (c->model == model) {
			cand_free(g, c);
			continue;
		}
		i++;
	}
}

/* The pending candidate with the lowest priority now. */
static struct gcand *lowest_pending(struct gossip *g, uint64_t now,
				    double *prio)
{
	struct gcand *low = NULL;

	for (uint32_t i = 0; i < g->npending; i++) {
		double p = cand_prio(g, g->pending[i], now);

		if (!low || p < *prio) {
			low = g->pending[i];
			*prio = p;
		}
	}
	return low;
}

void gossip_cand_offer(struct gossip *g, uint32_t model, uint32_t peer,
		       const struct shard_digest_entry *e, uint64_t now)
{
	struct gcand *c = gossip_cand_find(g, model, e->table, e->shard);
	struct ghave *h;

	if (!c) {
		struct shard_digest_entry ours;
		double d, prio, low_prio = 0;
		struct gcand *low;

		shard_store_digest_entry(g->models[model]->st, e->table,
					 e->shard, &ours);
		d = e->significance - ours.significance;
		prio = (double)g->models[model]->priority * sig_weight(d);
		/* Bounded: the newcomer replaces the least urgent pending
		 * pull, or is dropped itself.  Either comes back with the
		 * next full digest. */
		if (g->npending >= g->cfg.max_pending_pulls) {
			low = lowest_pending(g, now, &low_prio);
			if (!low || prio <= low_prio) {
				g->pulls_dropped++;
				return;
			}
			cand_free(g, low);
			g->pulls_dropped++;
		}
		if (g->ncands + 1 > g->hash_cap && !hash_grow(g))
			goto out_nomem;
		c = calloc(1, sizeof(*c));
		if (!c)
			goto out_nomem;
		c->model = model;
		c->table = e->table;
		c->shard = e->shard;
		c->first_ms = now;
		if (!arr_add(&g->pending, &g->npending, &g->cap_pending, c)) {
			free(c);
			c = NULL;
			goto out_nomem;
		}
		{
			uint32_t b = key_hash(model, e->table, e->shard) &
				     (g->hash_cap - 1);

			c->hnext = g->hash[b];
			g->hash[b] = c;
		}
		g->ncands++;
		g->models[model]->ncands++;
		qres_add(g, prio);
	}
	h = have_find(c, peer);
	if (!h) {
		if (c->nhave == c->caphave) {
			uint32_t cap = c->caphave ? c->caphave * 2 : 2;
			struct ghave *a = realloc(c->have,
						  (size_t)cap * sizeof(*a));

			if (!a)
				goto out_nomem;
			c->have = a;
			c->caphave = cap;
		}
		h = &c->have[c->nhave++];
		memset(h, 0, sizeof(*h));
		shard_vv_init(&h->vv);
		h->peer = peer;
	}
	if (shard_vv_copy(&h->vv, e->vv)) {
		/* Keep what it had; dropping it could free an in-flight c. */
		return;
	}
	h->epoch = e->rollback_epoch;
	h->sig = e->significance;
	g->sched_dirty = true;
	return;

out_nomem:
	/* Out of memory: this offer is lost; the next digest repeats it. */
	fr_log(FR_LOG_WARN, "gossip", "pull candidate dropped: out of memory");
	if (c && c->nhave == 0)
		cand_free(g, c);
}

/* ========================================================================
 * Issuing pulls
 * ===================================================================== */

/* Is a better than b as the peer to pull c from? */
static bool peer_better(const struct gcand *c, const struct gpeer *a,
			const struct gpeer *b)
{
	bool aa = c->avoid_set && c->avoid == a->id;
	bool ab = c->avoid_set && c->avoid == b->id;

	if (aa != ab)
		return ab;
	if (a->score != b->score)
		return a->score > b->score;
	if (a->st.inflight_bytes != b->st.inflight_bytes)
		return a->st.inflight_bytes < b->st.inflight_bytes;
	return a->id < b->id;
}

/* The budget a pull of this urgency may ask of p: 0 when none is left.
 * Urgent pulls may fill the whole in-flight window, others half of it; a
 * pull asks for what is left of its share, up to max_pull_bytes, and
 * never less than GOSSIP_MIN_PULL unless the window is empty. */
static uint64_t pull_size(const struct gossip *g, const struct gpeer *p,
			  bool urgent)
{
	uint64_t window = p->window ? p->window : g->cfg.max_inflight_bytes;
	uint64_t budget = window;
	uint64_t in = p->st.inflight_bytes, size, floor;

	if (!urgent)
		budget /= 2;
	if (budget == 0)
		budget = 1;
	if (in >= budget)
		return 0;
	size = budget - in;
	if (size > g->cfg.max_pull_bytes)
		size = g->cfg.max_pull_bytes;
	floor = g->cfg.max_pull_bytes < GOSSIP_MIN_PULL ? g->cfg.max_pull_bytes
							: GOSSIP_MIN_PULL;
	/* A pull does not know how much it will bring: reserving the whole
	 * max_pull_bytes for each would let only a few run at once, and a
	 * publish that touched many shards would move a few shards per round
	 * trip.  Reserve a share of the window instead, so that about
	 * GOSSIP_PULL_SHARE pulls per peer run together; a shard with more
	 * to send is cut short and resumed from its cursor. */
	if (size > window / GOSSIP_PULL_SHARE &&
	    window / GOSSIP_PULL_SHARE >= floor)
		size = window / GOSSIP_PULL_SHARE;
	if (in > 0 && size < floor)
		return 0;
	return size;
}

static void issue(struct gossip *g, struct gcand *c, struct gpeer *p,
		  uint64_t size, uint64_t now)
{
	arr_remove(g->pending, &g->npending, c);
	if (!arr_add(&g->inflight, &g->ninflight, &g->cap_inflight, c)) {
		/* No memory to track it: leave it pending. */
		arr_add(&g->pending, &g->npending, &g->cap_pending, c);
		return;
	}
	c->inflight = true;
	c->peer = p->id;
	c->req_id = ++g->next_req;
	c->max_bytes = size;
	c->last_ms = now;
	c->next_seq = 0;
	c->broken = false;
	c->changed = false;
	p->st.inflight_bytes += size;
	p->st.pulls_sent++;
	gossip_send_pull(g, p, c);
}

static int cmp_prio_desc(const void *a, const void *b)
{
	const struct gcand *x = *(struct gcand *const *)a;
	const struct gcand *y = *(struct gcand *const *)b;

	if (x->prio != y->prio)
		return x->prio > y->prio ? -1 : 1;
	/* Deterministic order for equal priorities. */
	if (x->model != y->model)
		return x->model < y->model ? -1 : 1;
	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return x->shard < y->shard ? -1 : x->shard > y->shard;
}

/* Can any usable peer take one more pull?  While none can, ranking the
 * pending pulls is wasted work: most events (frames, replies) arrive while
 * every window is full, and ranking thousands of candidates for each of
 * them made scheduling quadratic in a publish that touched many shards.
 * sched_dirty stays set, and a pull that ends sets it again. */
static bool any_room(const struct gossip *g)
{
	for (uint32_t i = 0; i < g->npeers; i++) {
		const struct gpeer *p = g->peers[i];

		if (p->up && !p->fatal && p->strikes < GOSSIP_STRIKES_DROP &&
		    pull_size(g, p, true))
			return true;
	}
	return false;
}

void gossip_sched_run(struct gossip *g, uint64_t now)
{
	struct gcand **order;
	uint32_t n;
	double thr;

	if (!g->sched_dirty || !g->npending || !any_room(g))
		return;
	g->sched_dirty = false;
	n = g->npending;
	order = malloc((size_t)n * sizeof(*order));
	if (!order)
		return;
	memcpy(order, g->pending, (size_t)n * sizeof(*order));
	for (uint32_t i = 0; i < n; i++)
		order[i]->prio = cand_prio(g, order[i], now);
	qsort(order, n, sizeof(*order), cmp_prio_desc);
	thr = urgent_threshold(g);
	for (uint32_t i = 0; i < n; i++) {
		struct gcand *c = order[i];
		struct gpeer *best = NULL;
		uint64_t best_size = 0;
		bool urgent = c->prio >= thr;

		if (!any_room(g)) {
			/* The rest wait for a window; rank them again then. */
			g->sched_dirty = true;
			break;
		}
		if (!haves_refresh(g, c)) {
			cand_free(g, c);
			continue;
		}
		for (uint32_t k = 0; k < c->nhave; k++) {
			struct gpeer *p = gossip_peer_find(g, c->have[k].peer);
			uint64_t size;

			if (!p || !p->up || p->fatal ||
			    p->strikes >= GOSSIP_STRIKES_DROP)
				continue;
			size = pull_size(g, p, urgent);
			if (!size)
				continue;
			if (!best || peer_better(c, p, best)) {
				best = p;
				best_size = size;
			}
		}
		/* A repair must come whole in one pull (its vector may
		 * promise nothing, so a cut-short pull starts over): ask for
		 * the largest budget. */
		if (best && gmodel_repairing(g->models[c->model], c->table,
					     c->shard))
			best_size = g->cfg.max_pull_bytes;
		if (best)
			issue(g, c, best, best_size, now);
	}
	free(order);
}

/* ========================================================================
 * Ending pulls, timeouts
 * ===================================================================== */

void gossip_pull_end(struct gossip *g, struct gcand *c, bool failed,
		     uint64_t now)
{
	struct gpeer *p = gossip_peer_find(g, c->peer);

	(void)now;
	if (p)
		p->st.inflight_bytes -= c->max_bytes;
	arr_remove(g->inflight, &g->ninflight, c);
	c->inflight = false;
	c->max_bytes = 0;
	if (failed) {
		g->st.pulls_failed++;
		c->avoid_set = true;
		c->avoid = c->peer;
	} else {
		g->st.pulls_done++;
		c->avoid_set = false;
	}
	g->sched_dirty = true;
	if (!arr_add(&g->pending, &g->npending, &g->cap_pending, c)) {
		/* Cannot track it any more: forget it (the inflight slot is
		 * gone, so free it by hand); a later digest offers it again. */
		cand_destroy(g, c);
		return;
	}
	if (g->models[c->model]->quarantined || !haves_refresh(g, c))
		cand_free(g, c);
}

void gossip_sched_timeouts(struct gossip *g, uint64_t now)
{
	for (uint32_t i = 0; i < g->ninflight;) {
		struct gcand *c = g->inflight[i];
		struct gpeer *p;

		if (now < c->last_ms + g->cfg.pull_timeout_ms) {
			i++;
			continue;
		}
		p = gossip_peer_find(g, c->peer);
		if (p) {
			p->st.timeouts++;
			p->st.retries++;
			gossip_score_add(p, -GOSSIP_SCORE_TIMEOUT);
		}
		g->st.retries++;
		gossip_pull_end(g, c, true, now);  /* c left inflight[i] */
	}
}

uint64_t gossip_sched_deadline(const struct gossip *g)
{
	uint64_t d = UINT64_MAX;

	for (uint32_t i = 0; i < g->ninflight; i++) {
		uint64_t t = g->inflight[i]->last_ms + g->cfg.pull_timeout_ms;

		if (t < d)
			d = t;
	}
	return d;
}
