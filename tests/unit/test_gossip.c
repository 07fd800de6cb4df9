/*
 * test_gossip.c — CUnit suite for the gossip core (gossip/): many cores in
 * one process, joined by a simulated network that drops, duplicates,
 * reorders and delays frames with a seeded RNG, under simulated time.
 *
 * Each node has its own shard stores; its apply hook is shard_store_apply
 * (plus, in the cut-short case, an invariant check after every reply).
 * Frames travel whole (header, checksum, payload) and are checked with the
 * shard frame codec on arrival, so the wire bytes are exercised too.
 *
 * Cases: two-node convergence; eight nodes with faults and three
 * publishers over several seeds; transfers cut short by tiny budgets and
 * frames (vectors never ahead of data); coalescing of a hot row set; idle
 * heartbeat cost independent of the shard count; full digests under a
 * small max_frame at 100,000 shards; peer down and pull timeouts; garbage
 * frames; priority order; rollbacks (a rolled-back node never pulls from
 * one that has not, reset shards are repaired by full pulls even when the
 * digests look equal, dominated peers are still not pulled from); repairs
 * and the pull budget (a repair through a thin window ends whole, a shard
 * over max_pull_bytes stays pending and is never counted done with rows
 * missing, the PULL_REPLY flag MORE on the wire).  Not here: the libevent
 * transport (node/).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <xxhash.h>

#include "gossip/gossip.h"
#include "unit_main.h"

/* ======================================================================
 * Helpers
 * ==================================================================== */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: deterministic across runs and platforms. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

static void make_def(struct shard_model_def *d, const char *name,
		     uint32_t prio, uint32_t ntables, uint64_t rows,
		     uint32_t dim, uint32_t shards)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->priority = prio;
	d->shards = shards;
	d->ntables = ntables;
	for (uint32_t t = 0; t < ntables; t++) {
		snprintf(d->tables[t].name, sizeof(d->tables[t].name), "t%u",
			 t);
		d->tables[t].rows = rows;
		d->tables[t].dim = dim;
		d->tables[t].dtype = SHARD_F32;
	}
}

/* The value a write carries: a function of (row, version, origin), so
 * equal bytes mean the same write won. */
static void write_value(float *dst, uint32_t dim, uint64_t row,
			uint64_t version, uint32_t origin)
{
	uint64_t k[3] = { row, version, origin };
	uint64_t h = XXH3_64bits(k, sizeof(k));

	for (uint32_t i = 0; i < dim; i++)
		dst[i] = (float)((h >> (i % 48)) & 0xffff) / 64.0f + (float)i;
}

/* ======================================================================
 * The simulated network
 * ==================================================================== */

#define MAXN 8
#define MAXM 2

struct sim;

struct node {
	struct sim *sim;
	uint32_t id;
	struct gossip *g;
	struct shard_store *st[MAXM];
	uint64_t last_v;
	/* cut-short check: after every applied reply, compare with src */
	struct shard_store *check_src;
	uint64_t checks, violations;
	uint64_t applies;
	/* rows offered to apply whose version this store has revoked */
	uint64_t revoked_offered;
};

struct sframe {
	uint64_t at, seq;
	uint32_t src, dst;          /* node indexes */
	uint16_t type;
	uint32_t len;
	uint8_t *buf;
};

/* A tap sees every frame the network sends: src and dst are node indexes,
 * frame the whole frame, header included.  TAP_FN(name) declares one. */
#define TAP_FN(name)                                                        \
	void name(struct sim *s, uint32_t src, uint32_t dst, uint16_t type, \
		  const uint8_t *frame, uint32_t len, void *arg)

typedef TAP_FN((*tap_fn));

struct sim {
	uint32_t n, nm;
	struct node nodes[MAXN];
	uint64_t now, seq, rng;
	struct sframe *heap;
	uint32_t nheap, capheap;
	uint32_t drop_pm, dup_pm;   /* per mille */
	uint32_t dmin, dmax;        /* delay range, ms */
	bool blocked[MAXN][MAXN];
	uint64_t backlog[MAXN][MAXN];
	uint64_t reported[MAXN][MAXN];
	uint64_t sent_bytes[4], sent_frames[4]; /* by type - 0x120 */
	uint64_t delivered, dropped, duplicated, on_frame_errors;
	tap_fn tap;
	void *tap_arg;
};

static enum fr_err hook_apply(void *arg, uint32_t peer, struct shard_store *st,
			      const struct shard_batch *b,
			      struct shard_apply_result *res)
{
	struct node *nd = arg;
	enum fr_err err;

	(void)peer;
	for (uint32_t i = 0; i < b->n; i++)
		if (shard_store_is_revoked(st, b->versions[i]))
			nd->revoked_offered++;
	err = shard_store_apply(st, b, res, NULL);
	nd->applies++;
	if (nd->check_src && err == FR_OK) {
		const struct shard_model_def *def = shard_store_def(st);
		const struct shard_vv *rv = shard_store_vv(st, b->table,
							   b->shard);
		const struct shard_vv *sv = shard_store_vv(nd->check_src,
							   b->table, b->shard);
		struct shard_changes ch;

		/* The receiver's vector is never ahead of the source's,
		 * and every row where it differs from the source is one
		 * the source would still send it: no hole behind the
		 * vector. */
		nd->checks++;
		if (!shard_vv_dominates(sv, rv))
			nd->violations++;
		shard_changes_init(&ch);
		if (shard_store_changes_scan(nd->check_src, b->table, b->shard,
					     rv, &ch) != FR_OK)
			nd->violations++;
		for (uint64_t row = b->shard;
		     row < def->tables[b->table].rows; row += def->shards) {
			uint64_t v1, v2;
			uint32_t o1, o2;
			bool listed = false;

			shard_store_row_version(st, b->table, row, &v1, &o1);
			shard_store_row_version(nd->check_src, b->table, row,
						&v2, &o2);
			if (v1 == v2 && o1 == o2)
				continue;
			for (uint32_t i = 0; i < ch.n && !listed; i++)
				listed = ch.c[i].row == row;
			if (!listed)
				nd->violations++;
		}
		shard_changes_fini(&ch);
	}
	return err;
}

/* opts: n store options (one per node), or NULL for the default (no undo
 * ring). */
static void sim_init_opts(struct sim *s, uint32_t n,
			  const struct shard_model_def *defs, uint32_t nm,
			  const struct gossip_config *cfg_tmpl, uint64_t seed,
			  const struct shard_store_opts *opts)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->nm = nm;
	s->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	s->dmin = 1;
	s->dmax = 1;
	s->now = 1000;
	for (uint32_t i = 0; i < n; i++) {
		struct node *nd = &s->nodes[i];
		struct gossip_config cfg = *cfg_tmpl;
		struct gossip_hooks hooks = { .apply = hook_apply, .arg = nd };
		enum fr_err err;

		nd->sim = s;
		nd->id = i + 1;
		cfg.self_id = nd->id;
		nd->g = gossip_new(&cfg, &hooks, &err);
		CU_ASSERT_EQUAL_FATAL(err, FR_OK);
		for (uint32_t m = 0; m < nm; m++) {
			nd->st[m] = shard_store_new(&defs[m],
						    opts ? &opts[i] : NULL,
						    &err);
			CU_ASSERT_EQUAL_FATAL(err, FR_OK);
			CU_ASSERT_EQUAL_FATAL(gossip_model_add(nd->g, nd->st[m]),
					      FR_OK);
		}
	}
}

static void sim_init(struct sim *s, uint32_t n, const struct shard_model_def *defs,
		     uint32_t nm, const struct gossip_config *cfg_tmpl,
		     uint64_t seed)
{
	sim_init_opts(s, n, defs, nm, cfg_tmpl, seed, NULL);
}

static void sim_fini(struct sim *s)
{
	for (uint32_t i = 0; i < s->n; i++) {
		gossip_free(s->nodes[i].g);
		for (uint32_t m = 0; m < s->nm; m++)
			shard_store_free(s->nodes[i].st[m]);
	}
	for (uint32_t i = 0; i < s->nheap; i++)
		free(s->heap[i].buf);
	free(s->heap);
}

static bool sf_less(const struct sframe *a, const struct sframe *b)
{
	return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void heap_push(struct sim *s, struct sframe f)
{
	uint32_t i;

	if (s->nheap == s->capheap) {
		s->capheap = s->capheap ? s->capheap * 2 : 256;
		s->heap = realloc(s->heap, s->capheap * sizeof(*s->heap));
		CU_ASSERT_FATAL(s->heap != NULL);
	}
	i = s->nheap++;
	s->heap[i] = f;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		struct sframe t;

		if (!sf_less(&s->heap[i], &s->heap[p]))
			break;
		t = s->heap[i];
		s->heap[i] = s->heap[p];
		s->heap[p] = t;
		i = p;
	}
}

static struct sframe heap_pop(struct sim *s)
{
	struct sframe top = s->heap[0];
	uint32_t i = 0;

	s->heap[0] = s->heap[--s->nheap];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		struct sframe t;

		if (l < s->nheap && sf_less(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->nheap && sf_less(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		t = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
	return top;
}

static void sim_send(struct sim *s, uint32_t src, struct gossip_output *o)
{
	uint32_t dst = o->peer - 1;
	uint32_t copies = 1;

	CU_ASSERT_FATAL(dst < s->n);
	if (o->type >= GOSSIP_DIGEST && o->type <= GOSSIP_PULL_REPLY) {
		s->sent_bytes[o->type - GOSSIP_DIGEST] += o->frame.len;
		s->sent_frames[o->type - GOSSIP_DIGEST]++;
	}
	if (s->tap)
		s->tap(s, src, dst, o->type, o->frame.data,
		       (uint32_t)o->frame.len, s->tap_arg);
	if (s->blocked[src][dst] ||
	    (s->drop_pm && rnd(&s->rng, 1000) < s->drop_pm)) {
		s->dropped++;
		fr_wbuf_fini(&o->frame);
		return;
	}
	if (s->dup_pm && rnd(&s->rng, 1000) < s->dup_pm) {
		copies = 2;
		s->duplicated++;
	}
	for (uint32_t c = 0; c < copies; c++) {
		struct sframe f = {
			.at = s->now + s->dmin +
			      rnd(&s->rng, s->dmax - s->dmin + 1),
			.seq = s->seq++,
			.src = src, .dst = dst, .type = o->type,
			.len = (uint32_t)o->frame.len,
		};

		f.buf = malloc(f.len);
		CU_ASSERT_FATAL(f.buf != NULL);
		memcpy(f.buf, o->frame.data, f.len);
		s->backlog[src][dst] += f.len;
		heap_push(s, f);
	}
	fr_wbuf_fini(&o->frame);
}

/* Drain every node's output into the network, and tell each core what its
 * links still hold (a transport's backlog), until nothing new comes. */
static void sim_drain(struct sim *s)
{
	bool more = true;

	while (more) {
		more = false;
		for (uint32_t i = 0; i < s->n; i++) {
			struct gossip_output o;

			while (gossip_next_output(s->nodes[i].g, &o)) {
				sim_send(s, i, &o);
				more = true;
			}
		}
		for (uint32_t i = 0; i < s->n; i++)
			for (uint32_t j = 0; j < s->n; j++)
				if (i != j &&
				    s->reported[i][j] != s->backlog[i][j]) {
					s->reported[i][j] = s->backlog[i][j];
					gossip_peer_backlog(s->nodes[i].g, j + 1,
							    s->backlog[i][j]);
					more = true;
				}
	}
}

static void sim_deliver(struct sim *s, struct sframe *f)
{
	struct shard_frame_hdr h;
	const uint8_t *pl;
	size_t plen;
	enum fr_err err;

	s->backlog[f->src][f->dst] -= f->len;
	err = shard_frame_decode(f->buf, f->len, 0, &h, &pl, &plen);
	CU_ASSERT_EQUAL(err, FR_OK);
	CU_ASSERT_EQUAL(h.type, f->type);
	if (err == FR_OK) {
		err = gossip_on_frame(s->nodes[f->dst].g, f->src + 1, h.type,
				      pl, plen, s->now);
		if (err) {
			s->on_frame_errors++;
			fprintf(stderr, "\n  on_frame type 0x%x %u->%u: %s (%s)\n",
				h.type, f->src + 1, f->dst + 1,
				fr_strerror(err), fr_errmsg());
		}
	}
	s->delivered++;
	free(f->buf);
}

static void sim_connect_all(struct sim *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		for (uint32_t j = 0; j < s->n; j++)
			if (i != j)
				CU_ASSERT_EQUAL(gossip_peer_add(s->nodes[i].g, j + 1),
						FR_OK);
	for (uint32_t i = 0; i < s->n; i++)
		for (uint32_t j = 0; j < s->n; j++)
			if (i != j)
				gossip_peer_up(s->nodes[i].g, j + 1, s->now);
}

/* One step: deliver what is due, tick who is due, move time to the next
 * event (at least 1 ms). */
static void sim_step(struct sim *s)
{
	uint64_t next = UINT64_MAX;

	sim_drain(s);
	while (s->nheap && s->heap[0].at <= s->now) {
		struct sframe f = heap_pop(s);

		sim_deliver(s, &f);
		sim_drain(s);
	}
	for (uint32_t i = 0; i < s->n; i++)
		if (gossip_next_deadline(s->nodes[i].g) <= s->now)
			gossip_tick(s->nodes[i].g, s->now);
	sim_drain(s);
	if (s->nheap)
		next = s->heap[0].at;
	for (uint32_t i = 0; i < s->n; i++) {
		uint64_t d = gossip_next_deadline(s->nodes[i].g);

		if (d < next)
			next = d;
	}
	s->now = next > s->now + 1 ? next : s->now + 1;
	if (next == UINT64_MAX)
		s->now += 1000;
}

static bool sim_converged(struct sim *s)
{
	for (uint32_t m = 0; m < s->nm; m++) {
		const struct shard_model_def *def =
			shard_store_def(s->nodes[0].st[m]);

		for (uint32_t i = 1; i < s->n; i++) {
			struct shard_store *a = s->nodes[0].st[m];
			struct shard_store *b = s->nodes[i].st[m];

			if (shard_store_summary(a) != shard_store_summary(b))
				return false;
			for (uint32_t t = 0; t < def->ntables; t++) {
				if (shard_store_table_checksum(a, t) !=
				    shard_store_table_checksum(b, t))
					return false;
				for (uint32_t sh = 0; sh < def->shards; sh++)
					if (!shard_vv_equal(shard_store_vv(a, t, sh),
							    shard_store_vv(b, t, sh)))
						return false;
			}
		}
	}
	return true;
}

static bool sim_quiet(struct sim *s)
{
	if (s->nheap)
		return false;
	for (uint32_t i = 0; i < s->n; i++) {
		struct gossip_stats st;

		gossip_get_stats(s->nodes[i].g, &st);
		if (st.pulls_pending || st.pulls_inflight)
			return false;
	}
	return sim_converged(s);
}

/* Run until quiet and converged, at most limit ms of simulated time. */
static bool sim_run_quiet(struct sim *s, uint64_t limit)
{
	uint64_t end = s->now + limit, check = s->now;

	while (s->now < end) {
		sim_step(s);
		if (s->now >= check) {
			if (sim_quiet(s))
				return true;
			check = s->now + 20;
		}
	}
	return sim_quiet(s);
}

static void sim_run_for(struct sim *s, uint64_t ms)
{
	uint64_t end = s->now + ms;

	while (s->now < end)
		sim_step(s);
}

static uint64_t node_version(struct node *nd)
{
	uint64_t v = FR_HLC_MAKE(nd->sim->now, 0);

	if (v <= nd->last_v)
		v = nd->last_v + 1;
	nd->last_v = v;
	return v;
}

/* Apply a local publish (one version for all rows, as a node stamps one
 * publish) and, when notify, tell the core. */
static uint64_t publish_ex(struct node *nd, uint32_t mi, uint32_t table,
			   const uint64_t *rows, uint32_t n, float sig,
			   bool notify)
{
	struct shard_store *st = nd->st[mi];
	const struct shard_model_def *def = shard_store_def(st);
	uint32_t dim = def->tables[table].dim;
	uint64_t v = node_version(nd);
	uint64_t *r = calloc(n ? n : 1, sizeof(*r));
	uint64_t *vv = calloc(n ? n : 1, sizeof(*vv));
	uint32_t *o = calloc(n ? n : 1, sizeof(*o));
	float *sg = calloc(n ? n : 1, sizeof(*sg));
	float *val = calloc((size_t)(n ? n : 1) * dim, sizeof(*val));
	bool *done = calloc(n ? n : 1, sizeof(*done));

	CU_ASSERT_FATAL(r && vv && o && sg && val && done);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t shard = shard_of_row(rows[i], def->shards);
		uint32_t k = 0;
		struct shard_vv_ent cov = { .origin = nd->id, .version = v };
		struct shard_batch b = {
			.table = table, .shard = shard, .rows = r,
			.versions = vv, .origins = o, .values = val,
			.significance = sig > 0 ? sg : NULL,
			.ncovers = 1, .covers = &cov,
		};
		struct shard_apply_result res;

		if (done[i])
			continue;
		for (uint32_t j = i; j < n; j++) {
			bool dup = false;

			if (done[j] || shard_of_row(rows[j], def->shards) != shard)
				continue;
			done[j] = true;
			for (uint32_t q = 0; q < k && !dup; q++)
				dup = r[q] == rows[j];
			if (dup)
				continue;
			r[k] = rows[j];
			vv[k] = v;
			o[k] = nd->id;
			sg[k] = sig;
			write_value(val + (size_t)k * dim, dim, rows[j], v,
				    nd->id);
			k++;
		}
		b.n = k;
		CU_ASSERT_EQUAL(shard_store_apply(st, &b, &res, NULL), FR_OK);
		if (notify)
			gossip_on_local_change(nd->g, st, table, shard,
					       nd->sim->now);
	}
	free(r);
	free(vv);
	free(o);
	free(sg);
	free(val);
	free(done);
	return v;
}

static uint64_t publish(struct node *nd, uint32_t mi, uint32_t table,
			const uint64_t *rows, uint32_t n)
{
	return publish_ex(nd, mi, table, rows, n, 0, true);
}

/* rows[i] = first + i * step for i < n; returns rows. */
static uint64_t *seq_rows(uint64_t *rows, uint32_t n, uint64_t first,
			  uint64_t step)
{
	for (uint32_t i = 0; i < n; i++)
		rows[i] = first + (uint64_t)i * step;
	return rows;
}

/* The end of a run: no frame was refused on arrival, and s is freed. */
static void sim_end(struct sim *s)
{
	CU_ASSERT_EQUAL(s->on_frame_errors, 0);
	sim_fini(s);
}

static struct gossip_config test_cfg(void)
{
	struct gossip_config c = {
		.digest_interval_ms = 50,
		.full_interval_ms = 500,
		.pull_timeout_ms = 300,
	};

	return c;
}

/* ======================================================================
 * 1) Two nodes
 * ==================================================================== */

static void test_two_nodes(void)
{
	struct shard_model_def def;
	struct gossip_config cfg = test_cfg();
	struct sim s;
	uint64_t rows[50], v;
	struct gossip_stats st;

	make_def(&def, "m", 1, 1, 1000, 8, 16);
	sim_init(&s, 2, &def, 1, &cfg, 1);
	sim_connect_all(&s);
	CU_ASSERT(sim_run_quiet(&s, 2000));
	seq_rows(rows, 50, 0, 7);
	v = publish(&s.nodes[0], 0, 0, rows, 50);
	CU_ASSERT(!sim_converged(&s));
	CU_ASSERT(sim_run_quiet(&s, 5000));
	CU_ASSERT(sim_converged(&s));
	CU_ASSERT_EQUAL(shard_store_table_checksum(s.nodes[0].st[0], 0),
			shard_store_table_checksum(s.nodes[1].st[0], 0));
	CU_ASSERT_EQUAL(shard_store_summary(s.nodes[0].st[0]),
			shard_store_summary(s.nodes[1].st[0]));
	/* B holds A's publish and knows it (row 7 is in shard 7). */
	CU_ASSERT_EQUAL(shard_vv_get(shard_store_vv(s.nodes[1].st[0], 0, 7), 1),
			v);
	CU_ASSERT_EQUAL(s.on_frame_errors, 0);
	gossip_get_stats(s.nodes[1].g, &st);
	CU_ASSERT(st.pulls_done >= 1);
	CU_ASSERT_EQUAL(st.rows_applied, 50);
	CU_ASSERT_EQUAL(st.bad_frames, 0);
	/* Significance travels with the rows: B weighs the shard as A
	 * does, so it will not keep seeing A as ahead. */
	seq_rows(rows, 10, 3, 16);   /* shard 3 */
	publish_ex(&s.nodes[0], 0, 0, rows, 10, 2.0f, true);
	CU_ASSERT(sim_run_quiet(&s, 5000));
	{
		struct shard_digest_entry ea, eb;

		shard_store_digest_entry(s.nodes[0].st[0], 0, 3, &ea);
		shard_store_digest_entry(s.nodes[1].st[0], 0, 3, &eb);
		CU_ASSERT_DOUBLE_EQUAL(ea.significance, 20.0, 1e-6);
		CU_ASSERT_DOUBLE_EQUAL(eb.significance, ea.significance, 1e-3);
	}
	sim_fini(&s);
}

/* A quarantined model is no longer exchanged by that node, in either
 * direction, and nobody is blamed for it; the others go on. */
static void test_quarantine(void)
{
	struct shard_model_def def;
	struct gossip_config cfg = test_cfg();
	struct sim s;
	uint64_t rows[20];
	struct gossip_stats st;

	make_def(&def, "m", 1, 1, 1000, 8, 16);
	sim_init(&s, 3, &def, 1, &cfg, 7);
	sim_connect_all(&s);
	CU_ASSERT(sim_run_quiet(&s, 2000));
	CU_ASSERT_EQUAL(gossip_model_quarantine(s.nodes[1].g, s.nodes[1].st[0]),
			FR_OK);
	CU_ASSERT_EQUAL(gossip_model_quarantine(s.nodes[1].g, s.nodes[1].st[0]),
			FR_OK);   /* twice is fine */
	seq_rows(rows, 20, 0, 5);
	publish(&s.nodes[0], 0, 0, rows, 20);
	publish(&s.nodes[1], 0, 0, rows + 10, 5);   /* stays on node 2 */
	sim_run_for(&s, 3000);
	CU_ASSERT_EQUAL(shard_store_table_checksum(s.nodes[0].st[0], 0),
			shard_store_table_checksum(s.nodes[2].st[0], 0));
	CU_ASSERT_NOT_EQUAL(shard_store_table_checksum(s.nodes[0].st[0], 0),
			    shard_store_table_checksum(s.nodes[1].st[0], 0));
	gossip_get_stats(s.nodes[1].g, &st);
	CU_ASSERT_EQUAL(st.rows_applied, 0);
	gossip_get_stats(s.nodes[0].g, &st);
	CU_ASSERT_EQUAL(st.bad_frames, 0);
	sim_end(&s);
}

/* ======================================================================
 * 2) Eight nodes, faults, three publishers
 * ==================================================================== */

static void run_mesh(uint64_t seed)
{
	struct shard_model_def def;
	struct gossip_config cfg = test_cfg();
	struct sim s;
	uint64_t pubs = 0, t_end, retries = 0;
	bool ok;

	make_def(&def, "mesh", 3, 2, 512, 4, 8);
	sim_init(&s, 8, &def, 1, &cfg, seed);
	s.drop_pm = 100;
	s.dup_pm = 50;
	s.dmin = 1;
	s.dmax = 20;
	sim_connect_all(&s);
	t_end = s.now + 3000;
	while (s.now < t_end) {
		/* Publishers are nodes 1, 4 and 6; hot rows 0..15 half the
		 * time, any row otherwise. */
		if (rnd(&s.rng, 10) < 3) {
			static const uint32_t who[3] = { 0, 3, 5 };
			struct node *nd = &s.nodes[who[rnd(&s.rng, 3)]];
			uint64_t rows[24];
			uint32_t n = 1 + (uint32_t)rnd(&s.rng, 24);

			for (uint32_t i = 0; i < n; i++)
				rows[i] = rnd(&s.rng, 2) ? rnd(&s.rng, 16)
							 : rnd(&s.rng, 512);
			publish(nd, 0, (uint32_t)rnd(&s.rng, 2), rows, n);
			pubs++;
		}
		sim_step(&s);
	}
	ok = sim_run_quiet(&s, 60000);
	CU_ASSERT(ok);
	if (!ok)
		fprintf(stderr, "\n  seed %llu did not converge\n",
			(unsigned long long)seed);
	CU_ASSERT_EQUAL(s.on_frame_errors, 0);
	CU_ASSERT(s.dropped > 0);
	CU_ASSERT(s.duplicated > 0);
	for (uint32_t i = 0; i < s.n; i++) {
		struct gossip_stats st;

		gossip_get_stats(s.nodes[i].g, &st);
		retries += st.retries;
		CU_ASSERT_EQUAL(st.bad_frames, 0);
	}
	fprintf(stderr, "\n  seed %llu: %llu publishes, %llu frames delivered, %llu dropped, %llu duplicated, %llu DIGEST_REQ, %llu retries; converged %llu ms after the last publish",
		(unsigned long long)seed, (unsigned long long)pubs,
		(unsigned long long)s.delivered, (unsigned long long)s.dropped,
		(unsigned long long)s.duplicated,
		(unsigned long long)s.sent_frames[GOSSIP_DIGEST_REQ - GOSSIP_DIGEST],
		(unsigned long long)retries,
		(unsigned long long)(s.now - t_end));
	sim_fini(&s);
}

static void test_mesh_faults(void)
{
	for (uint64_t seed = 1; seed <= 4; seed++)
		run_mesh(seed);
}

/* ======================================================================
 * 3) Cut-short transfers
 * ==================================================================== */

struct cursor_count {
	uint64_t pulls_with, replies_with;
};

static TAP_FN(cursor_tap)
{
	struct cursor_count *cc = arg;
	uint32_t flags;

	(void)s;
	(void)src;
	(void)dst;
	if (type == GOSSIP_PULL && len > 24 + 25 && (frame[24 + 25] & 1))
		cc->pulls_with++;
	if (type == GOSSIP_PULL_REPLY && len >= 24 + 16) {
		memcpy(&flags, frame + 24 + 8, 4);
		if (flags & 0x8)
			cc->replies_with++;
	}
}

static void test_cut_short(void)
{
	struct shard_model_def def;
	struct gossip_config cfg = test_cfg();
	struct sim s;
	struct gossip_stats st;
	struct gossip_peer_stats ps[2];
	struct cursor_count cc = { 0, 0 };
	uint64_t rows[1000];

	/* 64-byte rows (84 with row id, version, origin); 8 KiB frames;
	 * 20,000-byte pulls: about 3 replies a pull, 8 pulls a shard. */
	make_def(&def, "cut", 1, 1, 4096, 16, 4);
	cfg.max_frame = 8192;
	cfg.max_pull_bytes = 20000;
	cfg.max_inflight_bytes = 40000;
	sim_init(&s, 2, &def, 1, &cfg, 7);
	s.tap = cursor_tap;
	s.tap_arg = &cc;
	/* Several publishes on shard 0, one of 1,000 rows in one version
	 * (a cut inside one version needs the cursor), then smaller ones
	 * that overwrite some of them. */
	seq_rows(rows, 1000, 0, 4);
	publish(&s.nodes[0], 0, 0, rows, 1000);
	s.now += 5;
	for (uint32_t k = 0; k < 5; k++) {
		for (uint32_t i = 0; i < 30; i++)
			rows[i] = (uint64_t)(i * 13 + k * 7) % 1024 * 4;
		publish(&s.nodes[0], 0, 0, rows, 30);
		s.now += 3;
	}
	seq_rows(rows, 100, 1, 4);   /* shard 1 */
	publish(&s.nodes[0], 0, 0, rows, 100);
	s.nodes[1].check_src = s.nodes[0].st[0];
	sim_connect_all(&s);
	CU_ASSERT(sim_run_quiet(&s, 60000));
	gossip_get_stats(s.nodes[1].g, &st);
	gossip_get_peer_stats(s.nodes[1].g, ps, 2);
	CU_ASSERT(ps[0].pulls_sent >= 6);        /* several pulls ... */
	CU_ASSERT(s.sent_frames[GOSSIP_PULL_REPLY - GOSSIP_DIGEST] >=
		  2 * ps[0].pulls_sent);            /* ... of several replies */
	/* The 400-row publish is one version: cut inside it, the next
	 * pull resumes from a cursor. */
	CU_ASSERT(cc.replies_with >= 1);
	CU_ASSERT(cc.pulls_with >= 1);
	CU_ASSERT(s.nodes[1].checks > 10);
	CU_ASSERT_EQUAL(s.nodes[1].violations, 0);
	CU_ASSERT_EQUAL(s.on_frame_errors, 0);
	fprintf(stderr, "\n  cut-short: %llu pulls (%llu with a cursor), %llu replies, %llu checks, %llu violations",
		(unsigned long long)ps[0].pulls_sent,
		(unsigned long long)cc.pulls_with,
		(unsigned long long)s.sent_frames[GOSSIP_PULL_REPLY - GOSSIP_DIGEST],
		(unsigned long long)s.nodes[1].checks,
		(unsigned long long)s.nodes[1].violations);

	/* The same with faults: replies dropped and reordered. */
	sim_fini(&s);
	sim_init(&s, 2, &def, 1, &cfg, 8);
	s.drop_pm = 100;
	s.dup_pm = 50;
	s.dmax = 15;
	seq_rows(rows, 400, 2, 4);
	publish(&s.nodes[0], 0, 0, rows, 400);
	s.now += 5;
	publish(&s.nodes[0], 0, 0, rows, 200);
	s.nodes[1].check_src = s.nodes[0].st[0];
	sim_connect_all(&s);
	CU_ASSERT(sim_run_quiet(&s, 60000));
	CU_ASSERT_EQUAL(s.nodes[1].violations, 0);
	sim_end(&s);
}

/* ======================================================================
 * 4) Coalescing
 * ==================================================================== */

static void test_coalescing(void)
{
	struct shard_model_def def;
	struct gossip_config cfg = test_cfg();
	struct sim s;
	uint64_t rows[1000], before, after, one;
	double ratio;

	make_def(&def, "hot", 1, 1, 4096, 16, 4);
	sim_init(&s, 2, &def, 1, &cfg, 3);
	sim_connect_all(&s);
	seq_rows(rows, 1000, 0, 1);
	publish(&s.nodes[0], 0, 0, rows, 1000);
	CU_ASSERT(sim_run_quiet(&s, 5000));
	before = s.sent_bytes[GOSSIP_PULL_REPLY - GOSSIP_DIGEST];
	/* 100 publishes to the same rows between two pulls. */
	for (uint32_t k = 0; k < 100; k++) {
		publish(&s.nodes[0], 0, 0, rows, 1000);
		s.now++;
	}
	CU_ASSERT(sim_run_quiet(&s, 5000));
	after = s.sent_bytes[GOSSIP_PULL_REPLY - GOSSIP_DIGEST];
	one = 1000ull * (8 + 8 + 4 + 16 * 4);
	ratio = (double)(after - before) / (double)one;
	fprintf(stderr, "\n  coalescing: %llu reply bytes for 100 publishes of %llu row bytes each: %.3f x one publish",
		(unsigned long long)(after - before), (unsigned long long)one,
		ratio);
	CU_ASSERT(ratio <= 1.1);
	CU_ASSERT(ratio >= 1.0);
	sim_end(&s);
}

/* ======================================================================
 * 5) Idle heartbeat cost does not depend on the shard count
 * ==================================================================== */

static uint64_t idle_digest_bytes(uint32_t shards, uint64_t *hb_bytes)
{
	struct shard_model_def def;
	struct gossip_config cfg = test_cfg();
	struct gossip_peer_stats ps[1];
	uint64_t rows[20], b0;
	struct sim s;

	cfg.digest_interval_ms = 200;
	cfg.full_interval_ms = 1000;
	make_def(&def, "m", 1, 1, shards, 1, shards);
	sim_init(&s, 2, &def, 1, &cfg, 5);
	sim_connect_all(&s);
	for (uint32_t i = 0; i < 20; i++)
		rows[i] = i % shards;
	publish(&s.nodes[0], 0, 0, rows, 20);
	CU_ASSERT(sim_run_quiet(&s, 10000));
	sim_run_for(&s, 2000);  /* let the last deltas go out */
	gossip_get_peer_stats(s.nodes[0].g, ps, 1);
	b0 = ps[0].digest_bytes_out;
	sim_run_for(&s, 10000);
	gossip_get_peer_stats(s.nodes[0].g, ps, 1);
	*hb_bytes = ps[0].digest_bytes_out - b0;
	sim_end(&s);
	return *hb_bytes;
}

static void test_idle_cost(void)
{
	uint64_t small, big;

	idle_digest_bytes(10, &small);
	idle_digest_bytes(100000, &big);
	fprintf(stderr, "\n  idle digest bytes over 10 s, one peer: %llu at 10 shards, %llu at 100,000 shards (56 bytes per heartbeat)",
		(unsigned long long)small, (unsigned long long)big);
	CU_ASSERT_EQUAL(small, big);
	/* 10 s at 200 ms: 50 heartbeats of 56 bytes (frame 24, digest 8,
	 * section 16, name "m" padded to 8), nothing else. */
	CU_ASSERT_EQUAL(small, 50 * 56);
}

/* ======================================================================
 * 6) Full digests under a small max_frame, 100,000 shards
 * ==================================================================== */

/* Count the entries of a DIGEST payload (docs/gossip.md §2.1), checking
 * that the layout adds up exactly. */
static bool parse_digest(const uint8_t *p, size_t len, uint32_t *flags,
			 uint64_t *entries, uint8_t *seen, uint32_t shards)
{
	struct fr_rbuf r;
	uint32_t nm;

	fr_rbuf_init(&r, p, len);
	*flags = fr_rbuf_u32(&r);
	nm = fr_rbuf_u32(&r);
	for (uint32_t i = 0; i < nm; i++) {
		uint32_t ne, nl;

		(void)fr_rbuf_u64(&r);
		ne = fr_rbuf_u32(&r);
		nl = fr_rbuf_u8(&r);
		fr_rbuf_bytes(&r, 3);
		fr_rbuf_bytes(&r, nl + ((8 - (nl & 7)) & 7));
		for (uint32_t k = 0; k < ne; k++) {
			uint32_t t = fr_rbuf_u32(&r), sh = fr_rbuf_u32(&r);
			uint32_t nvv;

			(void)t;
			fr_rbuf_bytes(&r, 16);
			nvv = fr_rbuf_u32(&r);
			fr_rbuf_u32(&r);
			fr_rbuf_bytes(&r, (size_t)nvv * 16);
			if (r.err || sh >= shards)
				return false;
			seen[sh]++;
			(*entries)++;
		}
	}
	return r.err == FR_OK && fr_rbuf_left(&r) == 0;
}

static void test_full_digest_frames(void)
{
	const uint32_t shards = 100000, max_frame = 8192;
	struct shard_model_def def;
	struct gossip_config cfg = { .self_id = 1, .max_frame = max_frame };
	struct gossip_hooks hooks = { .apply = hook_apply };
	struct shard_store *st;
	struct gossip *g;
	struct gossip_output o;
	uint8_t *seen = calloc(shards, 1);
	uint64_t frames = 0, entries = 0, maxlen = 0;
	bool all_ok = true;
	enum fr_err err;

	CU_ASSERT_FATAL(seen != NULL);
	make_def(&def, "big", 1, 1, shards, 1, shards);
	st = shard_store_new(&def, NULL, &err);
	CU_ASSERT_FATAL(st != NULL);
	/* Every shard written, by three origins, so entries are 80 bytes. */
	for (uint32_t sh = 0; sh < shards; sh++) {
		for (uint32_t org = 1; org <= 3; org++) {
			uint64_t row = sh, v = 100 + sh + org;
			uint32_t o32 = org;
			float val = (float)sh;
			struct shard_vv_ent cov = { .origin = org, .version = v };
			struct shard_batch b = {
				.table = 0, .shard = sh, .n = 1, .rows = &row,
				.versions = &v, .origins = &o32, .values = &val,
				.ncovers = 1, .covers = &cov,
			};

			if (shard_store_apply(st, &b, NULL, NULL) != FR_OK)
				all_ok = false;
		}
	}
	CU_ASSERT(all_ok);
	g = gossip_new(&cfg, &hooks, &err);
	CU_ASSERT_FATAL(g != NULL);
	CU_ASSERT_EQUAL(gossip_model_add(g, st), FR_OK);
	CU_ASSERT_EQUAL(gossip_peer_add(g, 2), FR_OK);
	gossip_peer_up(g, 2, 1000);
	/* Drain, reporting an empty backlog so the stream goes on. */
	for (;;) {
		bool any = false;

		while (gossip_next_output(g, &o)) {
			struct shard_frame_hdr h;
			const uint8_t *pl;
			size_t plen;
			uint32_t flags;

			any = true;
			frames++;
			if (o.frame.len > maxlen)
				maxlen = o.frame.len;
			if (o.frame.len > max_frame ||
			    shard_frame_decode(o.frame.data, o.frame.len,
					       max_frame, &h, &pl,
					       &plen) != FR_OK ||
			    h.type != GOSSIP_DIGEST ||
			    !parse_digest(pl, plen, &flags, &entries, seen,
					  shards) ||
			    !(flags & 1))
				all_ok = false;
			fr_wbuf_fini(&o.frame);
		}
		if (!any)
			break;
		gossip_peer_backlog(g, 2, 0);
	}
	CU_ASSERT(all_ok);
	CU_ASSERT(maxlen <= max_frame);
	CU_ASSERT_EQUAL(entries, shards);
	for (uint32_t sh = 0; sh < shards; sh++)
		if (seen[sh] != 1)
			all_ok = false;
	CU_ASSERT(all_ok);
	CU_ASSERT(frames >= (uint64_t)shards * 80 / max_frame);
	fprintf(stderr, "\n  full digest of %u shards: %llu frames, largest %llu bytes (max_frame %u)",
		shards, (unsigned long long)frames,
		(unsigned long long)maxlen, max_frame);
	gossip_free(g);
	shard_store_free(st);
	free(seen);
}

/* ======================================================================
 * 7) Peer down mid-pull, pull timeout
 * ==================================================================== */

static void test_peer_down_and_timeout(void)
{
	struct shard_model_def def;
	struct gossip_config cfg = test_cfg();
	struct gossip_peer_stats ps[2];
	struct gossip_stats st;
	struct sim s;
	uint64_t rows[64];

	make_def(&def, "m", 1, 1, 1024, 8, 1);
	for (int round = 0; round < 2; round++) {
		sim_init(&s, 3, &def, 1, &cfg, 11 + round);
		seq_rows(rows, 64, 0, 3);
		/* A and B converge while C is away. */
		CU_ASSERT_EQUAL(gossip_peer_add(s.nodes[0].g, 2), FR_OK);
		CU_ASSERT_EQUAL(gossip_peer_add(s.nodes[1].g, 1), FR_OK);
		gossip_peer_up(s.nodes[0].g, 2, s.now);
		gossip_peer_up(s.nodes[1].g, 1, s.now);
		publish(&s.nodes[0], 0, 0, rows, 64);
		sim_run_for(&s, 2000);
		CU_ASSERT(shard_store_table_checksum(s.nodes[0].st[0], 0) ==
			  shard_store_table_checksum(s.nodes[1].st[0], 0));
		/* C joins A first and asks it; then nothing more from A
		 * reaches C.  B joins a little later. */
		for (uint32_t i = 0; i < 2; i++) {
			CU_ASSERT_EQUAL(gossip_peer_add(s.nodes[2].g, i + 1), FR_OK);
			CU_ASSERT_EQUAL(gossip_peer_add(s.nodes[i].g, 3), FR_OK);
		}
		gossip_peer_up(s.nodes[2].g, 1, s.now);
		gossip_peer_up(s.nodes[0].g, 3, s.now);
		for (int k = 0; k < 200; k++) {
			gossip_get_peer_stats(s.nodes[2].g, ps, 2);
			if (ps[0].pulls_sent > 0)
				break;
			sim_step(&s);
		}
		CU_ASSERT_EQUAL(ps[0].peer, 1);
		CU_ASSERT(ps[0].pulls_sent >= 1);
		s.blocked[0][2] = true;
		if (round == 0) {
			/* The connection to A drops mid-pull. */
			gossip_peer_down(s.nodes[2].g, 1, s.now);
		}
		sim_run_for(&s, 30);
		gossip_peer_up(s.nodes[2].g, 2, s.now);
		gossip_peer_up(s.nodes[1].g, 3, s.now);
		/* round 1: A stays "up" but silent: the pull times out. */
		CU_ASSERT(sim_run_quiet(&s, 10000));
		gossip_get_stats(s.nodes[2].g, &st);
		gossip_get_peer_stats(s.nodes[2].g, ps, 2);
		CU_ASSERT(st.retries >= 1);
		CU_ASSERT(st.pulls_failed >= 1);
		CU_ASSERT_EQUAL(ps[1].peer, 2);
		CU_ASSERT(ps[1].pulls_sent >= 1);        /* retried at B */
		if (round == 1) {
			CU_ASSERT(ps[0].timeouts >= 1);
			CU_ASSERT(ps[0].score < 100);
		}
		CU_ASSERT_EQUAL(shard_store_table_checksum(s.nodes[2].st[0], 0),
				shard_store_table_checksum(s.nodes[0].st[0], 0));
		sim_end(&s);
	}
}

/* ======================================================================
 * 8) Garbage
 * ==================================================================== */

struct capture {
	uint8_t *f[4];         /* first whole frame of each type */
	uint32_t len[4];
	uint32_t want_src[4];  /* node index + 1 the frame must come from */
};

static TAP_FN(capture_tap)
{
	struct capture *c = arg;
	uint32_t i = type - GOSSIP_DIGEST;

	(void)s;
	(void)dst;
	if (i >= 4 || c->f[i] || (c->want_src[i] && c->want_src[i] != src + 1))
		return;
	/* A DIGEST worth keeping lists at least one entry. */
	if (type == GOSSIP_DIGEST) {
		uint32_t ne;

		if (len < 24 + 8 + 16)
			return;
		memcpy(&ne, frame + 24 + 8 + 8, 4);
		if (ne == 0)
			return;
	}
	c->f[i] = malloc(len);
	memcpy(c->f[i], frame, len);
	c->len[i] = len;
}

/* Two nodes of model "m" (256 rows of 4 in 2 shards); node 0 publishes 40
 * rows, all in shard 0, and cap captures the frames until the run is
 * quiet.  Returns node 0's table checksum. */
static uint64_t capture_session(struct shard_model_def *def,
				struct capture *cap, uint64_t seed)
{
	struct gossip_config cfg = test_cfg();
	struct sim s;
	uint64_t rows[40], sum;

	make_def(def, "m", 1, 1, 256, 4, 2);
	sim_init(&s, 2, def, 1, &cfg, seed);
	s.tap = capture_tap;
	s.tap_arg = cap;
	sim_connect_all(&s);
	sim_run_for(&s, 100);
	publish(&s.nodes[0], 0, 0, seq_rows(rows, 40, 0, 2), 40);
	CU_ASSERT(sim_run_quiet(&s, 5000));
	sum = shard_store_table_checksum(s.nodes[0].st[0], 0);
	sim_fini(&s);
	return sum;
}

struct victim {
	struct gossip *g;
	struct shard_store *st;
	struct node nd;
};

static void victim_init(struct victim *v, const struct shard_model_def *def)
{
	struct gossip_config cfg = test_cfg();
	struct gossip_hooks hooks = { .apply = hook_apply, .arg = &v->nd };
	enum fr_err err;

	memset(v, 0, sizeof(*v));
	cfg.self_id = 3;
	v->st = shard_store_new(def, NULL, &err);
	CU_ASSERT_FATAL(v->st != NULL);
	v->g = gossip_new(&cfg, &hooks, &err);
	CU_ASSERT_FATAL(v->g != NULL);
	CU_ASSERT_EQUAL(gossip_model_add(v->g, v->st), FR_OK);
	CU_ASSERT_EQUAL(gossip_peer_add(v->g, 1), FR_OK);
	gossip_peer_up(v->g, 1, 1000);
}

static void victim_drain(struct victim *v)
{
	struct gossip_output o;

	while (gossip_next_output(v->g, &o))
		fr_wbuf_fini(&o.frame);
}

static void victim_fini(struct victim *v)
{
	gossip_free(v->g);
	shard_store_free(v->st);
}

/* Feed a payload (copied to aligned memory) as if from peer 1. */
static enum fr_err feed(struct victim *v, uint16_t type, const uint8_t *pl,
			size_t len)
{
	uint64_t *buf = malloc(len + 8);
	enum fr_err err;

	memcpy(buf, pl, len);
	err = gossip_on_frame(v->g, 1, type, (const uint8_t *)buf, len, 2000);
	free(buf);
	return err;
}

/* m = the captured PULL_REPLY rp, as the answer to request req. */
static void reply_to(uint8_t *m, const uint8_t *rp, uint32_t lrp, uint64_t req)
{
	memcpy(m, rp, lrp);
	memcpy(m, &req, 8);
}

/* A frame v takes: FR_OK, not counted bad; *a and *b: v's stats before
 * and after it. */
static void expect_taken(struct victim *v, uint16_t type, const uint8_t *pl,
			 size_t len, struct gossip_stats *a,
			 struct gossip_stats *b)
{
	gossip_get_stats(v->g, a);
	CU_ASSERT_EQUAL(feed(v, type, pl, len), FR_OK);
	gossip_get_stats(v->g, b);
	CU_ASSERT_EQUAL(b->bad_frames, a->bad_frames);
}

/* A bad frame: the named error, counted, the store untouched. */
static void expect_bad(struct victim *v, uint16_t type, const uint8_t *pl,
		       size_t len, enum fr_err want, const char *what)
{
	uint64_t sum = shard_store_summary(v->st);
	uint64_t ck = shard_store_table_checksum(v->st, 0);
	struct gossip_stats a, b;
	enum fr_err err;

	gossip_get_stats(v->g, &a);
	err = feed(v, type, pl, len);
	gossip_get_stats(v->g, &b);
	if ((want && err != want) || (!want && err == FR_OK))
		fprintf(stderr, "\n  %s: got %s (%s)\n", what, fr_strerror(err),
			fr_errmsg());
	if (want)
		CU_ASSERT_EQUAL(err, want);
	CU_ASSERT(err != FR_OK);
	CU_ASSERT_EQUAL(b.bad_frames, a.bad_frames + 1);
	CU_ASSERT_EQUAL(shard_store_summary(v->st), sum);
	CU_ASSERT_EQUAL(shard_store_table_checksum(v->st, 0), ck);
	/* Reset the strikes so each case stands alone. */
	gossip_peer_down(v->g, 1, 2000);
	gossip_peer_up(v->g, 1, 2000);
	victim_drain(v);
}

/* The newest PULL in v's output: its request id and budget (0 if none). */
static uint64_t victim_take_pull(struct victim *v, uint32_t *budget)
{
	struct gossip_output o;
	uint64_t req = 0;

	while (gossip_next_output(v->g, &o)) {
		if (o.type == GOSSIP_PULL) {
			memcpy(&req, o.frame.data + 24, 8);
			memcpy(budget, o.frame.data + 24 + 8, 4);
		}
		fr_wbuf_fini(&o.frame);
	}
	return req;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* One doctored copy of a captured message for test_garbage: `width`
 * bytes (4: LE, 1: a byte) at `off` set to val, or (width 0) eight zero
 * bytes appended; refused with `want`. */
enum { DG, PU, RP };    /* the captured DIGEST, PULL and PULL_REPLY */

struct garble {
	int msg;
	uint32_t off, width, val;
	enum fr_err want;
	const char *what;
};

static void test_garbage(void)
{
	static const uint16_t types[3] = {
		GOSSIP_DIGEST, GOSSIP_PULL, GOSSIP_PULL_REPLY,
	};
	static const struct garble garbles[] = {
		/* Oversized counts. */
		{ DG, 4, 4, 0x7fffffff, FR_ERR_TRUNC, "nmodels" },
		{ DG, 8 + 8, 4, 0x10000000, FR_ERR_TRUNC, "nentries" },
		{ DG, 8 + 24 + 24, 4, 200, FR_ERR_TRUNC, "nvv" },   /* first */
		{ DG, 8 + 24 + 24, 4, 100000, FR_ERR_RANGE, "nvv range" },
		{ PU, 20, 4, 1000, FR_ERR_RANGE, "pull nvv" },
		{ PU, 20, 4, 3, FR_ERR_TRUNC, "pull nvv fits" },
		{ RP, 16 + 16, 4, 0xffffffff, FR_ERR_TRUNC, "reply n" },
		/* Bad names: not printable, empty, too long. */
		{ DG, 8 + 16, 1, 0x01, FR_ERR_CORRUPT, "digest name" },
		{ DG, 8 + 12, 1, 0, FR_ERR_RANGE, "digest name_len 0" },
		{ DG, 8 + 12, 1, 64, FR_ERR_RANGE, "digest name_len 64" },
		{ PU, 40, 1, 0x7f, FR_ERR_CORRUPT, "pull name" },
		{ PU, 24, 1, 0, FR_ERR_RANGE, "pull name_len" },
		{ RP, 16 + 32, 1, 0x0a, FR_ERR_CORRUPT, "reply name" },
		/* Reserved bits and fields. */
		{ DG, 0, 4, 0x10, FR_ERR_CORRUPT, "digest flags" },
		{ RP, 8, 4, 0x100, FR_ERR_CORRUPT, "reply flags" },
		{ PU, 26, 1, 1, FR_ERR_CORRUPT, "pull reserved" },
		/* A known model's entry out of its range. */
		/* Shard 2 of 2, table 1 of 1. */
		{ DG, 8 + 24 + 4, 4, 2, FR_ERR_RANGE, "digest shard" },
		{ PU, 12, 4, 1, FR_ERR_RANGE, "pull table" },
		/* Trailing bytes. */
		{ DG, 0, 0, 0, FR_ERR_CORRUPT, "digest trailing" },
		{ PU, 0, 0, 0, FR_ERR_CORRUPT, "pull trailing" },
	};
	static const char *const truncated[3] = {
		"digest truncated", "pull truncated", "reply truncated",
	};
	struct shard_model_def def;
	struct capture cap = { .want_src = { 1, 0, 2, 1 } };
	struct victim v;
	const uint8_t *dg, *pu, *rp, *msg[3];
	uint32_t ldg, lpu, lrp, mlen[3];
	uint8_t *m;
	uint64_t rng = 99;
	uint32_t budget;

	capture_session(&def, &cap, 21);
	CU_ASSERT_FATAL(cap.f[0] && cap.f[2] && cap.f[3]);
	dg = msg[DG] = cap.f[0] + 24;
	ldg = mlen[DG] = cap.len[0] - 24;
	pu = msg[PU] = cap.f[2] + 24;
	lpu = mlen[PU] = cap.len[2] - 24;
	rp = msg[RP] = cap.f[3] + 24;
	lrp = mlen[RP] = cap.len[3] - 24;
	m = malloc(65536);
	CU_ASSERT_FATAL(m != NULL);

	victim_init(&v, &def);
	victim_drain(&v);

	/* Every truncation of every message is an error. */
	for (int k = DG; k <= RP; k++)
		for (uint32_t l = 0; l < mlen[k]; l += 4)
			expect_bad(&v, types[k], msg[k], l, 0, truncated[k]);
	expect_bad(&v, GOSSIP_DIGEST_REQ, (const uint8_t *)"\x01\0\0\0", 4,
		   FR_ERR_TRUNC, "digest_req short");

	for (size_t i = 0; i < FR_UNIT_COUNT(garbles); i++) {
		const struct garble *g = &garbles[i];
		uint32_t len = mlen[g->msg];

		memcpy(m, msg[g->msg], len);
		if (g->width == 4) {
			put32(m + g->off, g->val);
		} else if (g->width == 1) {
			m[g->off] = (uint8_t)g->val;
		} else {
			memset(m + len, 0, 8);
			len += 8;
		}
		expect_bad(&v, types[g->msg], m, len, g->want, g->what);
	}
	memcpy(m, "\x01\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0", 16);
	expect_bad(&v, GOSSIP_DIGEST_REQ, m, 16, FR_ERR_CORRUPT, "dreq name");

	/* Unknown model: not a bad frame.  A DIGEST section is skipped, a
	 * PULL is answered with an empty last NOMODEL reply. */
	{
		struct gossip_stats a, b;
		struct gossip_output o;
		bool found = false;

		memcpy(m, dg, ldg);
		m[8 + 16] = 'z';
		gossip_get_stats(v.g, &a);
		CU_ASSERT_EQUAL(feed(&v, GOSSIP_DIGEST, m, ldg), FR_OK);
		memcpy(m, pu, lpu);
		m[40] = 'z';
		CU_ASSERT_EQUAL(feed(&v, GOSSIP_PULL, m, lpu), FR_OK);
		gossip_get_stats(v.g, &b);
		CU_ASSERT_EQUAL(b.bad_frames, a.bad_frames);
		CU_ASSERT_EQUAL(b.pulls_pending, 0);
		CU_ASSERT_EQUAL(b.pulls_nomodel, a.pulls_nomodel + 1);
		while (gossip_next_output(v.g, &o)) {
			if (o.type == GOSSIP_PULL_REPLY) {
				uint32_t flags, n;

				memcpy(&flags, o.frame.data + 24 + 8, 4);
				memcpy(&n, o.frame.data + 24 + 16 + 16, 4);
				CU_ASSERT_EQUAL(flags, 0x3); /* LAST|NOMODEL */
				CU_ASSERT_EQUAL(n, 0);
				found = true;
			}
			fr_wbuf_fini(&o.frame);
		}
		CU_ASSERT(found);
	}

	/* A reply for the right request but the wrong model or shape is a
	 * protocol error: make the victim pull (from the captured digest),
	 * then answer its request id with doctored replies. */
	{
		struct gossip_stats a, b;
		uint64_t req;

		CU_ASSERT_EQUAL(feed(&v, GOSSIP_DIGEST, dg, ldg), FR_OK);
		req = victim_take_pull(&v, &budget);
		CU_ASSERT_FATAL(req != 0);
		reply_to(m, rp, lrp, req);
		m[16 + 32] = 'z';                         /* model 'z' */
		gossip_get_stats(v.g, &a);
		CU_ASSERT_EQUAL(feed(&v, GOSSIP_PULL_REPLY, m, lrp), FR_ERR_PROTO);
		gossip_get_stats(v.g, &b);
		CU_ASSERT_EQUAL(b.bad_frames, a.bad_frames + 1);
		CU_ASSERT_EQUAL(b.pulls_failed, a.pulls_failed + 1);
		CU_ASSERT_EQUAL(shard_store_summary(v.st), 0);
		/* It pulls again; this time the dim is wrong. */
		req = victim_take_pull(&v, &budget);
		CU_ASSERT_FATAL(req != 0);
		reply_to(m, rp, lrp, req);
		put32(m + 16 + 4, 2);                     /* dim 2, not 4 */
		/* dim 2 makes the values section half as long: the codec or
		 * the shape check refuses it; either way nothing is applied. */
		CU_ASSERT(feed(&v, GOSSIP_PULL_REPLY, m, lrp) != FR_OK);
		CU_ASSERT_EQUAL(shard_store_summary(v.st), 0);
		/* A genuine reply to a request that is gone: ignored. */
		req += 100;
		reply_to(m, rp, lrp, req);
		expect_taken(&v, GOSSIP_PULL_REPLY, m, lrp, &a, &b);
		CU_ASSERT_EQUAL(b.stale_replies, a.stale_replies + 1);
		CU_ASSERT_EQUAL(shard_store_summary(v.st), 0);
	}

	/* should_drop: after three bad frames, or at once for a frame type
	 * that is not ours. */
	gossip_peer_down(v.g, 1, 3000);
	gossip_peer_up(v.g, 1, 3000);
	CU_ASSERT(!gossip_peer_should_drop(v.g, 1));
	feed(&v, GOSSIP_DIGEST, dg, 3);
	CU_ASSERT(!gossip_peer_should_drop(v.g, 1));
	feed(&v, GOSSIP_PULL, pu, 3);
	CU_ASSERT(!gossip_peer_should_drop(v.g, 1));
	feed(&v, GOSSIP_PULL_REPLY, rp, 3);
	CU_ASSERT(gossip_peer_should_drop(v.g, 1));
	gossip_peer_down(v.g, 1, 3000);
	gossip_peer_up(v.g, 1, 3000);
	CU_ASSERT(!gossip_peer_should_drop(v.g, 1));
	CU_ASSERT_EQUAL(feed(&v, 0x12f, dg, ldg), FR_ERR_PROTO);
	CU_ASSERT(gossip_peer_should_drop(v.g, 1));
	CU_ASSERT_EQUAL(gossip_on_frame(v.g, 9, GOSSIP_DIGEST, dg, ldg, 3000),
			FR_ERR_PROTO);                    /* unknown peer */

	/* Random mutations: never a crash (the sanitizer build checks). */
	for (int it = 0; it < 6000; it++) {
		uint32_t k = (uint32_t)rnd(&rng, 3);
		const uint8_t *src = msg[k];
		uint32_t len = mlen[k];
		uint32_t flips = 1 + (uint32_t)rnd(&rng, 3);

		memcpy(m, src, len);
		for (uint32_t f = 0; f < flips; f++)
			m[rnd(&rng, len)] ^= (uint8_t)(1u << rnd(&rng, 8));
		if (rnd(&rng, 4) == 0)
			len = (uint32_t)rnd(&rng, len + 1);
		feed(&v, types[k], m, len);
		if (gossip_peer_should_drop(v.g, 1)) {
			gossip_peer_down(v.g, 1, 4000);
			gossip_peer_up(v.g, 1, 4000);
		}
		victim_drain(&v);
	}
	victim_fini(&v);
	free(m);
	for (int i = 0; i < 4; i++)
		free(cap.f[i]);
}

/* ======================================================================
 * 9) Priority
 * ==================================================================== */

struct pull_log {
	char model[16][8];
	uint32_t n;
};

static TAP_FN(pull_tap)
{
	struct pull_log *pl = arg;
	uint8_t nl;

	(void)s;
	(void)dst;
	if (type != GOSSIP_PULL || src != 1 || pl->n >= 16 || len < 24 + 48)
		return;
	nl = frame[24 + 24];
	memset(pl->model[pl->n], 0, 8);
	memcpy(pl->model[pl->n], frame + 24 + 40, nl < 7 ? nl : 7);
	pl->n++;
}

static void test_priority(void)
{
	struct shard_model_def defs[2];
	struct gossip_config cfg = test_cfg();
	struct pull_log log = { .n = 0 };
	struct sim s;
	uint64_t rows[64];

	make_def(&defs[0], "lo", 1, 1, 64, 4, 8);
	make_def(&defs[1], "hi", 10, 1, 64, 4, 8);
	/* One pull at a time: every pull asks for the whole window. */
	cfg.max_pull_bytes = 65536;
	cfg.max_inflight_bytes = 65536;
	sim_init(&s, 2, defs, 2, &cfg, 31);
	s.tap = pull_tap;
	s.tap_arg = &log;
	sim_connect_all(&s);
	CU_ASSERT(sim_run_quiet(&s, 2000));
	/* Every shard of both models changes on A without a push, so B
	 * learns of all 16 from one heartbeat and must choose. */
	seq_rows(rows, 64, 0, 1);
	publish_ex(&s.nodes[0], 0, 0, rows, 64, 0, false);
	publish_ex(&s.nodes[0], 1, 0, rows, 64, 0, false);
	CU_ASSERT(sim_run_quiet(&s, 5000));
	CU_ASSERT_EQUAL(log.n, 16);
	for (uint32_t i = 0; i < log.n; i++) {
		CU_ASSERT_STRING_EQUAL(log.model[i], i < 8 ? "hi" : "lo");
	}
	sim_end(&s);
}

/* ======================================================================
 * Bounded pending pulls
 * ==================================================================== */

static void test_bounded_pending(void)
{
	struct shard_model_def def;
	struct gossip_config cfg = test_cfg();
	struct gossip_stats st;
	uint64_t rows[64], max_pending = 0, end;
	struct sim s;
	bool ok = false;

	make_def(&def, "m", 1, 1, 64, 4, 16);
	cfg.max_pull_bytes = 65536;
	cfg.max_inflight_bytes = 65536;
	cfg.max_pending_pulls = 4;
	sim_init(&s, 2, &def, 1, &cfg, 41);
	sim_connect_all(&s);
	CU_ASSERT(sim_run_quiet(&s, 2000));
	seq_rows(rows, 64, 0, 1);
	/* 16 shards change at once, learnt from one heartbeat. */
	publish_ex(&s.nodes[0], 0, 0, rows, 64, 0, false);
	end = s.now + 20000;
	while (s.now < end && !ok) {
		sim_step(&s);
		gossip_get_stats(s.nodes[1].g, &st);
		if (st.pulls_pending > max_pending)
			max_pending = st.pulls_pending;
		ok = sim_quiet(&s);
	}
	/* The dropped ones came back with full digests. */
	CU_ASSERT(ok);
	CU_ASSERT(max_pending <= 4);
	gossip_get_stats(s.nodes[1].g, &st);
	CU_ASSERT(st.pulls_dropped >= 10);
	sim_end(&s);
}

/* ======================================================================
 * Rollback and repair
 * ==================================================================== */

/* PULL frames per (src, dst) node index, and the shards (< 64) asked. */
struct pull_count {
	uint64_t n[MAXN][MAXN];
	uint64_t shards[MAXN][MAXN];
};

static TAP_FN(pull_count_tap)
{
	struct pull_count *pc = arg;
	uint32_t shard;

	(void)s;
	if (type != GOSSIP_PULL || len < 24 + 40)
		return;
	memcpy(&shard, frame + 24 + 16, 4);         /* PULL shard, LE */
	pc->n[src][dst]++;
	if (shard < 64)
		pc->shards[src][dst] |= 1ull << shard;
}

/* sim_init_opts for one model whose store on node i has an undo ring of
 * undo[i] bytes a shard. */
static void sim_init_undo(struct sim *s, uint32_t n,
			  const struct shard_model_def *def,
			  const struct gossip_config *cfg, uint64_t seed,
			  const uint64_t *undo)
{
	struct shard_store_opts opts[MAXN];

	for (uint32_t i = 0; i < n; i++)
		opts[i] = (struct shard_store_opts){
			.undo_bytes_per_shard = undo[i],
		};
	sim_init_opts(s, n, def, 1, cfg, seed, opts);
}

/* n nodes of model "m" (256 rows of 4 in 8 shards) on test_cfg(), with
 * undo rings as sim_init_undo; not connected yet. */
static void rollback_sim(struct sim *s, struct shard_model_def *def,
			 uint32_t n, uint64_t seed, const uint64_t *undo)
{
	struct gossip_config cfg = test_cfg();

	make_def(def, "m", 1, 1, 256, 4, 8);
	sim_init_undo(s, n, def, &cfg, seed, undo);
}

/* From now on pc counts s's PULLs, from zero. */
static void count_pulls(struct sim *s, struct pull_count *pc)
{
	memset(pc, 0, sizeof(*pc));
	s->tap = pull_count_tap;
	s->tap_arg = pc;
}

/* Apply the directive {t, r, epoch} to node nd's model 0 as a node does:
 * roll back, reset and mark for repair every shard the undo ring could
 * not restore, then tell gossip.  Returns the rollback's result;
 * *nreset gets the shards reset. */
static enum fr_err node_rollback(struct node *nd, uint64_t t, uint64_t r,
				 uint64_t epoch, uint32_t *nreset)
{
	struct shard_store *st = nd->st[0];
	struct shard_rollback_report rep;
	enum fr_err err;

	err = shard_store_rollback(st, t, r, epoch, NULL, NULL, &rep);
	for (uint32_t i = 0; i < rep.nnoundo; i++) {
		CU_ASSERT_EQUAL(shard_store_reset_shard(st, rep.noundo[i].table,
							rep.noundo[i].shard,
							epoch, NULL, NULL,
							NULL), FR_OK);
		CU_ASSERT_EQUAL(gossip_shard_repair(nd->g, st,
						    rep.noundo[i].table,
						    rep.noundo[i].shard), FR_OK);
	}
	if (nreset)
		*nreset = rep.nnoundo;
	shard_rollback_report_fini(&rep);
	CU_ASSERT_EQUAL(gossip_model_rolled_back(nd->g, st, nd->sim->now),
			FR_OK);
	return err;
}

static uint64_t csum(struct node *nd)
{
	return shard_store_table_checksum(nd->st[0], 0);
}

/* Run until quiet, converged and node's repairs all done. */
static bool sim_run_repaired(struct sim *s, uint32_t node, uint64_t limit)
{
	uint64_t end = s->now + limit, check = s->now;

	while (s->now < end) {
		sim_step(s);
		if (s->now < check)
			continue;
		if (gossip_repairs_pending(s->nodes[node].g, NULL) == 0 &&
		    sim_quiet(s))
			return true;
		check = s->now + 20;
	}
	return gossip_repairs_pending(s->nodes[node].g, NULL) == 0 &&
	       sim_quiet(s);
}

/*
 * Re-infection.  A, B and C converge on good writes (<= T) and harmful
 * ones in (T, R]; A and C roll back, B does not.  A and C must keep the
 * rolled-back bytes however long they gossip with B: B's entries carry a
 * lower rollback epoch and are never pulled (so no revoked row is even
 * offered to their stores).  Once B rolls back too, all three agree, and
 * a write after R travels as usual.
 */
static void test_rollback_reinfection(void)
{
	struct shard_model_def def;
	struct pull_count pc;
	struct gossip_stats gs;
	struct sim s;
	struct node *a, *b, *c;
	uint64_t rows[64], t, r, v, rv, cs_good, cs_bad;
	uint32_t o;

	rollback_sim(&s, &def, 3, 61,
		     (const uint64_t[]){ 1 << 20, 1 << 20, 1 << 20 });
	s.drop_pm = 30;
	s.dup_pm = 20;
	s.dmax = 8;
	a = &s.nodes[0];
	b = &s.nodes[1];
	c = &s.nodes[2];
	sim_connect_all(&s);

	/* Good: A writes rows 0..63, C overwrites 16..31. */
	seq_rows(rows, 64, 0, 1);
	publish(a, 0, 0, rows, 64);
	s.now += 5;
	t = publish(c, 0, 0, rows + 16, 16);
	CU_ASSERT_FATAL(sim_run_quiet(&s, 20000));
	cs_good = csum(a);

	/* Harmful, in (T, R]: B overwrites 0..15 and writes 100..139 for
	 * the first time; A overwrites 40..47. */
	s.now += 10;
	publish(b, 0, 0, rows, 16);
	seq_rows(rows, 40, 100, 1);
	publish(b, 0, 0, rows, 40);
	s.now += 3;
	seq_rows(rows, 8, 40, 1);
	r = publish(a, 0, 0, rows, 8);
	CU_ASSERT_FATAL(r > t && r > b->last_v);
	CU_ASSERT_FATAL(sim_run_quiet(&s, 20000));
	cs_bad = csum(a);
	CU_ASSERT_NOT_EQUAL(cs_bad, cs_good);

	/* A and C roll back; B does not. */
	count_pulls(&s, &pc);
	CU_ASSERT_EQUAL(node_rollback(a, t, r, 1, NULL), FR_OK);
	CU_ASSERT_EQUAL(node_rollback(c, t, r, 1, NULL), FR_OK);
	CU_ASSERT_EQUAL(csum(a), cs_good);
	CU_ASSERT_EQUAL(csum(c), cs_good);
	sim_run_for(&s, 5000);
	CU_ASSERT_EQUAL(csum(a), cs_good);
	CU_ASSERT_EQUAL(csum(c), cs_good);
	CU_ASSERT_EQUAL(csum(b), cs_bad);
	CU_ASSERT_EQUAL(a->revoked_offered, 0);
	CU_ASSERT_EQUAL(c->revoked_offered, 0);
	CU_ASSERT_EQUAL(pc.n[0][1], 0);             /* A never pulls from B */
	CU_ASSERT_EQUAL(pc.n[2][1], 0);             /* nor does C */
	gossip_get_stats(a->g, &gs);
	CU_ASSERT(gs.epoch_behind > 0);
	gossip_get_stats(c->g, &gs);
	CU_ASSERT(gs.epoch_behind > 0);
	gossip_get_stats(b->g, &gs);
	CU_ASSERT(gs.epoch_ahead > 0);              /* B only records it */
	CU_ASSERT_EQUAL(gs.epoch_behind, 0);

	/* B rolls back too: all three the same, bytes and vectors. */
	CU_ASSERT_EQUAL(node_rollback(b, t, r, 1, NULL), FR_OK);
	CU_ASSERT_EQUAL(csum(b), cs_good);
	CU_ASSERT(sim_run_quiet(&s, 20000));
	CU_ASSERT(sim_converged(&s));
	CU_ASSERT_EQUAL(csum(a), cs_good);
	CU_ASSERT_EQUAL(csum(b), cs_good);
	CU_ASSERT_EQUAL(csum(c), cs_good);

	/* A fresh write after R on B reaches A and C. */
	s.now += 10;
	rows[0] = 3;
	rows[1] = 44;
	rows[2] = 120;
	v = publish(b, 0, 0, rows, 3);
	CU_ASSERT(v > r);
	CU_ASSERT(sim_run_quiet(&s, 20000));
	CU_ASSERT(sim_converged(&s));
	CU_ASSERT_NOT_EQUAL(csum(a), cs_good);
	CU_ASSERT_EQUAL(csum(a), csum(b));
	CU_ASSERT_EQUAL(csum(c), csum(b));
	for (uint32_t i = 0; i < 3; i++) {
		shard_store_row_version(a->st[0], 0, rows[i], &rv, &o);
		CU_ASSERT(rv == v && o == b->id);
		shard_store_row_version(c->st[0], 0, rows[i], &rv, &o);
		CU_ASSERT(rv == v && o == b->id);
	}
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(s.nodes[i].revoked_offered, 0);
	sim_end(&s);
}

/*
 * Repair.  A and B converge; both roll back, B with an undo ring of two
 * records a shard, so the shards with more than two revoked writes are
 * noundo there: B resets them and marks them for repair.  B must end
 * byte-identical to A with every repair done.
 *
 * fresh_only: the harmful writes touch only rows never written before
 * (in shards no good write touched).  After the rollback both nodes hold
 * zeros and empty vectors there: every digest entry, and so the summary,
 * is equal, and only "look at the entries while repairs are pending"
 * (gossip_on_digest) lets B finish the repair.
 */
static void run_repair(bool fresh_only, uint64_t seed)
{
	struct shard_model_def def;
	struct pull_count pc;
	struct sim s;
	struct node *a, *b;
	uint64_t rows[128], t, r, cs_good, done = 1;
	uint32_t n = 0, nreset_a = 1, nreset_b = 0;

	/* B: a 32-byte header + 16 bytes. */
	rollback_sim(&s, &def, 2, seed, (const uint64_t[]){ 1 << 20, 100 });
	a = &s.nodes[0];
	b = &s.nodes[1];
	sim_connect_all(&s);

	/* Good: 16 rows in each of shards 0..3. */
	for (uint64_t row = 0; row < 128; row++)
		if (row % 8 < 4)
			rows[n++] = row;
	t = publish(a, 0, 0, rows, n);
	CU_ASSERT_FATAL(sim_run_quiet(&s, 20000));
	cs_good = csum(a);

	/* Harmful: one new row in shard 4 (restorable from B's ring), six
	 * new rows in each of shards 5..7 (not) and, unless fresh_only,
	 * three overwritten good rows in each of shards 0..3 (not). */
	s.now += 10;
	rows[0] = 4;
	publish(a, 0, 0, rows, 1);
	s.now += 2;
	n = 0;
	for (uint64_t row = 0; row < 48; row++)
		if (row % 8 >= 5)
			rows[n++] = row;
	if (!fresh_only)
		for (uint64_t row = 0; row < 24; row++)
			if (row % 8 < 4)
				rows[n++] = row;
	r = publish(b, 0, 0, rows, n);
	CU_ASSERT_FATAL(sim_run_quiet(&s, 20000));
	CU_ASSERT_NOT_EQUAL(csum(a), cs_good);

	CU_ASSERT_EQUAL(node_rollback(a, t, r, 1, &nreset_a), FR_OK);
	CU_ASSERT_EQUAL(nreset_a, 0);
	CU_ASSERT_EQUAL(csum(a), cs_good);
	CU_ASSERT_EQUAL(node_rollback(b, t, r, 1, &nreset_b), FR_ERR_NOUNDO);
	CU_ASSERT_EQUAL(nreset_b, fresh_only ? 3 : 7);
	CU_ASSERT_EQUAL(gossip_repairs_pending(b->g, &done), nreset_b);
	CU_ASSERT_EQUAL(done, 0);
	if (fresh_only) {
		/* The case the summaries cannot show. */
		CU_ASSERT_EQUAL(shard_store_summary(a->st[0]),
				shard_store_summary(b->st[0]));
		CU_ASSERT_EQUAL(csum(b), cs_good);
	} else {
		CU_ASSERT_NOT_EQUAL(csum(b), cs_good);  /* zeroed rows */
	}

	count_pulls(&s, &pc);
	CU_ASSERT(sim_run_repaired(&s, 1, 20000));
	CU_ASSERT_EQUAL(gossip_repairs_pending(b->g, &done), 0);
	CU_ASSERT_EQUAL(done, nreset_b);
	CU_ASSERT_EQUAL(gossip_repairs_pending(a->g, &done), 0);
	CU_ASSERT_EQUAL(done, 0);
	/* B pulled every reset shard from A, dominated or not. */
	CU_ASSERT_EQUAL(pc.shards[1][0] & 0xe0, 0xe0);
	if (!fresh_only)
		CU_ASSERT_EQUAL(pc.shards[1][0] & 0xef, 0xef);
	CU_ASSERT(sim_converged(&s));
	CU_ASSERT_EQUAL(csum(a), cs_good);
	CU_ASSERT_EQUAL(csum(b), cs_good);
	CU_ASSERT_EQUAL(a->revoked_offered, 0);
	CU_ASSERT_EQUAL(b->revoked_offered, 0);
	sim_end(&s);
}

static void test_rollback_repair(void)
{
	run_repair(false, 71);
	run_repair(true, 72);
}

/*
 * The normal rule stays: after a rollback, with no repair flag, a peer
 * whose vector ours dominates is never pulled from; a repair flag on one
 * shard makes only that shard an exception.
 */
static void test_rollback_dominated(void)
{
	struct shard_model_def def;
	struct pull_count pc;
	struct sim s;
	struct node *a, *b;
	uint64_t rows[64], t, r, cs_good, done = 0;

	rollback_sim(&s, &def, 2, 81, (const uint64_t[]){ 1 << 20, 1 << 20 });
	a = &s.nodes[0];
	b = &s.nodes[1];
	sim_connect_all(&s);
	seq_rows(rows, 64, 0, 1);
	t = publish(a, 0, 0, rows, 64);
	CU_ASSERT_FATAL(sim_run_quiet(&s, 20000));
	cs_good = csum(a);
	s.now += 10;
	r = publish(b, 0, 0, rows, 32);
	CU_ASSERT_FATAL(sim_run_quiet(&s, 20000));
	CU_ASSERT_EQUAL(node_rollback(a, t, r, 1, NULL), FR_OK);
	CU_ASSERT_EQUAL(node_rollback(b, t, r, 1, NULL), FR_OK);
	CU_ASSERT(sim_run_quiet(&s, 20000));
	CU_ASSERT_EQUAL(csum(b), cs_good);
	CU_ASSERT_EQUAL(gossip_repairs_pending(a->g, NULL), 0);

	/* A moves ahead on shards 0..3: B is dominated everywhere. */
	count_pulls(&s, &pc);
	s.now += 10;
	publish(a, 0, 0, rows, 4);
	CU_ASSERT(sim_run_quiet(&s, 20000));
	sim_run_for(&s, 2000);          /* several full digests */
	CU_ASSERT_EQUAL(pc.n[0][1], 0);
	CU_ASSERT_EQUAL(pc.shards[1][0], 0x0f);

	/* A repair flag on A's shard 6 alone, while A moves ahead on
	 * shards 4 and 5: A pulls shard 6 from B (same epoch) and nothing
	 * else. */
	count_pulls(&s, &pc);
	CU_ASSERT_EQUAL(gossip_shard_repair(a->g, a->st[0], 0, 6), FR_OK);
	CU_ASSERT_EQUAL(gossip_shard_repair(a->g, a->st[0], 0, 6), FR_OK);
	CU_ASSERT_EQUAL(gossip_repairs_pending(a->g, NULL), 1);
	CU_ASSERT_EQUAL(gossip_shard_repair(a->g, a->st[0], 0, 8),
			FR_ERR_RANGE);
	CU_ASSERT_EQUAL(gossip_shard_repair(a->g, a->st[0], 1, 0),
			FR_ERR_RANGE);
	CU_ASSERT_EQUAL(gossip_shard_repair(a->g, b->st[0], 0, 0),
			FR_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(gossip_model_rolled_back(a->g, b->st[0], s.now),
			FR_ERR_NOTFOUND);
	s.now += 10;
	publish(a, 0, 0, rows + 4, 2);
	CU_ASSERT(sim_run_repaired(&s, 0, 20000));
	sim_run_for(&s, 2000);
	CU_ASSERT_EQUAL(gossip_repairs_pending(a->g, &done), 0);
	CU_ASSERT_EQUAL(done, 1);
	CU_ASSERT(pc.n[0][1] >= 1);
	CU_ASSERT_EQUAL(pc.shards[0][1], 1ull << 6);
	CU_ASSERT_EQUAL(pc.shards[1][0], 0x30);
	CU_ASSERT(sim_converged(&s));
	sim_end(&s);
}

/* ----------------------------------------------------------------------
 * Repairs and the pull budget (PULL_REPLY flag MORE)
 * ------------------------------------------------------------------- */

/* PULLs from node index src to dst: how many, their budgets, and those of
 * shard `shard`. */
struct budget_log {
	uint32_t src, dst, shard;
	uint64_t n, n_shard;
	uint32_t min_budget, max_budget;
};

static TAP_FN(budget_tap)
{
	struct budget_log *bl = arg;
	uint32_t budget, shard;

	(void)s;
	if (type != GOSSIP_PULL || src != bl->src || dst != bl->dst ||
	    len < 24 + 40)
		return;
	memcpy(&budget, frame + 24 + 8, 4);         /* PULL max_bytes */
	memcpy(&shard, frame + 24 + 16, 4);
	if (!bl->n || budget < bl->min_budget)
		bl->min_budget = budget;
	if (budget > bl->max_budget)
		bl->max_budget = budget;
	bl->n++;
	if (shard == bl->shard)
		bl->n_shard++;
}

/* Rows of (table 0, shard) where b differs from a: missing (zero in b,
 * written in a) or wrong (anything else that differs: version, origin or
 * bytes). */
static void shard_diff(struct node *a, struct node *b, uint32_t shard,
		       uint64_t *missing, uint64_t *wrong)
{
	const struct shard_model_def *def = shard_store_def(a->st[0]);
	size_t rb = shard_row_bytes(&def->tables[0]);

	*missing = 0;
	*wrong = 0;
	for (uint64_t row = shard; row < def->tables[0].rows;
	     row += def->shards) {
		uint64_t va, vb;
		uint32_t oa, ob;

		shard_store_row_version(a->st[0], 0, row, &va, &oa);
		shard_store_row_version(b->st[0], 0, row, &vb, &ob);
		if (vb == 0 && va != 0)
			(*missing)++;
		else if (va != vb || oa != ob ||
			 memcmp(shard_store_row(a->st[0], 0, row),
				shard_store_row(b->st[0], 0, row), rb) != 0)
			(*wrong)++;
	}
}

/*
 * The setup of a repair whose source promises nothing.  Model: 4 shards
 * of 512 rows, 64-byte rows (84 bytes a row on the wire).  A publishes
 * 300 rows of shard 0 (in ten versions) and 100 of shard 1, then a
 * harmful version in (T, R] that overwrites all of them and writes one
 * new row in each.  Both roll back: A with a large undo ring puts every
 * row back, but the new row was restored to "never written" and A's ring
 * has only the checkpoint of its first write (an empty vector), so A's
 * vectors of shards 0 and 1 are clamped empty while A holds 300 and 100
 * rows (the case "a cut-short pull starts over"); B's ring of one record
 * does not reach back, so B resets both shards (all zero, vectors empty).
 * Both digests now say "empty" for shards 0 and 1: only the repair flag
 * makes B pull them, and nothing after a repair marked done would.
 * Returns A's checksum (the good one).
 */
static uint64_t repair_budget_setup(struct sim *s,
				    const struct gossip_config *cfg,
				    uint64_t seed, uint64_t window)
{
	struct shard_model_def def;
	struct node *a, *b;
	uint64_t rows[402], t, r, cs_good;
	uint32_t n = 0, nreset = 0;

	make_def(&def, "m", 1, 1, 2048, 16, 4);
	/* A's ring so large that it takes its first vector checkpoint after
	 * every write here (one every max_recs/32 pushes), so its rollback
	 * clamps the vectors all the way down.  B's holds one 96-byte
	 * record. */
	sim_init_undo(s, 2, &def, cfg, seed,
		      (const uint64_t[]){ 1 << 24, 100 });
	a = &s->nodes[0];
	b = &s->nodes[1];
	sim_connect_all(s);
	if (window)
		CU_ASSERT_EQUAL(gossip_peer_set_window(b->g, a->id, window),
				FR_OK);
	for (uint32_t k = 0; k < 10; k++) {
		seq_rows(rows, 30, (uint64_t)k * 120, 4);   /* shard 0 */
		publish(a, 0, 0, rows, 30);
		s->now += 2;
	}
	seq_rows(rows, 100, 1, 4);   /* shard 1 */
	t = publish(a, 0, 0, rows, 100);
	CU_ASSERT_FATAL(sim_run_quiet(s, 20000));
	cs_good = csum(a);

	s->now += 10;
	for (uint64_t i = 0; i < 300; i++)
		rows[n++] = i * 4;
	for (uint64_t i = 0; i < 100; i++)
		rows[n++] = i * 4 + 1;
	rows[n++] = 1600;                                   /* new, shard 0 */
	rows[n++] = 1601;                                   /* new, shard 1 */
	r = publish(a, 0, 0, rows, n);
	CU_ASSERT_FATAL(sim_run_quiet(s, 20000));
	CU_ASSERT_FATAL(csum(b) != cs_good);

	CU_ASSERT_EQUAL(node_rollback(a, t, r, 1, &nreset), FR_OK);
	CU_ASSERT_EQUAL(nreset, 0);
	CU_ASSERT_EQUAL(csum(a), cs_good);
	/* The premise: A's vectors promise none of the rows it holds. */
	CU_ASSERT_EQUAL_FATAL(shard_store_vv(a->st[0], 0, 0)->n, 0);
	CU_ASSERT_EQUAL_FATAL(shard_store_vv(a->st[0], 0, 1)->n, 0);
	CU_ASSERT_EQUAL(node_rollback(b, t, r, 1, &nreset), FR_ERR_NOUNDO);
	CU_ASSERT_EQUAL_FATAL(nreset, 2);
	CU_ASSERT_EQUAL(gossip_repairs_pending(b->g, NULL), 2);
	CU_ASSERT_EQUAL(shard_store_summary(a->st[0]),
			shard_store_summary(b->st[0]));
	CU_ASSERT_NOT_EQUAL(csum(b), cs_good);
	return cs_good;
}

/*
 * A repair through a thin window.  B's window towards A is 4 KiB, so a
 * normal pull from A asks for about 48 rows; the reset shards hold 300
 * and 100 rows, less than max_pull_bytes (64 KiB).  The repair pulls ask
 * for the whole max_pull_bytes, and a repair is marked done only with
 * every row there: at the step B's last repair is counted, B is already
 * byte-identical to A.  (Before MORE, a repair pull cut short by the
 * window was counted done after its first reply, and with both vectors
 * empty nothing pulled the rest: B stayed wrong.)
 */
static void test_repair_thin_window(void)
{
	struct gossip_config cfg = test_cfg();
	struct budget_log bl = { .src = 1, .dst = 0, .shard = 0 };
	struct sim s;
	struct node *a, *b;
	uint64_t cs_good, done = 0, end, missing, wrong;
	uint32_t pending = 2;

	cfg.max_frame = 8192;
	cfg.max_pull_bytes = 65536;
	cs_good = repair_budget_setup(&s, &cfg, 91, 4096);
	a = &s.nodes[0];
	b = &s.nodes[1];

	s.tap = budget_tap;
	s.tap_arg = &bl;
	end = s.now + 20000;
	while (s.now < end && pending) {
		sim_step(&s);
		pending = gossip_repairs_pending(b->g, &done);
	}
	CU_ASSERT_EQUAL(pending, 0);
	CU_ASSERT_EQUAL(done, 2);
	/* Counted done only once whole: checked at that very step. */
	CU_ASSERT_EQUAL(csum(b), cs_good);
	shard_diff(a, b, 0, &missing, &wrong);
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(wrong, 0);
	shard_diff(a, b, 1, &missing, &wrong);
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(wrong, 0);
	/* Repair pulls asked for the whole budget, not the window's share. */
	CU_ASSERT(bl.n_shard >= 1);
	CU_ASSERT_EQUAL(bl.max_budget, 65536);

	/* The window still bounds a normal pull: a new version of 100 rows
	 * of shard 2 comes in pulls of at most 4 KiB. */
	memset(&bl, 0, sizeof(bl));
	bl.src = 1;
	bl.shard = 2;
	{
		uint64_t rows[100];

		seq_rows(rows, 100, 2, 4);
		s.now += 10;
		publish(a, 0, 0, rows, 100);
	}
	CU_ASSERT(sim_run_quiet(&s, 20000));
	CU_ASSERT(bl.n_shard >= 2);
	CU_ASSERT(bl.max_budget > 0 && bl.max_budget <= 4096);
	CU_ASSERT(sim_converged(&s));
	CU_ASSERT_EQUAL(csum(a), csum(b));
	CU_ASSERT_EQUAL(gossip_repairs_pending(b->g, &done), 0);
	CU_ASSERT_EQUAL(done, 2);
	sim_end(&s);
}

/*
 * A reset shard larger than max_pull_bytes, from a peer whose vector
 * promises nothing: documents the known limit (gossip.h,
 * docs/gossip.md §3.2).  Every repair pull of shard 0 (300 rows, about
 * 25 KiB) is cut by the 16 KiB budget and flagged MORE; no cover moves
 * B's vector, so the next one starts over.  The repair stays pending and
 * is never counted done while rows are missing, and what B got is right
 * (rows missing, none wrong).  Shard 1 (100 rows) fits and is repaired.
 * Not pinned: how often it retries (today at once after each cut-short
 * pull, about one pull every 2 ms here).
 */
static void test_repair_over_budget(void)
{
	struct gossip_config cfg = test_cfg();
	struct budget_log bl = { .src = 1, .dst = 0, .shard = 0 };
	struct sim s;
	struct node *a, *b;
	uint64_t done = 0, end, missing, wrong;
	uint32_t pending, min_pending = UINT32_MAX;

	cfg.max_frame = 8192;
	cfg.max_pull_bytes = 16384;
	(void)repair_budget_setup(&s, &cfg, 92, 0);
	a = &s.nodes[0];
	b = &s.nodes[1];
	s.tap = budget_tap;
	s.tap_arg = &bl;
	end = s.now + 10000;
	while (s.now < end) {
		sim_step(&s);
		pending = gossip_repairs_pending(b->g, &done);
		if (pending < min_pending)
			min_pending = pending;
	}
	pending = gossip_repairs_pending(b->g, &done);
	CU_ASSERT_EQUAL(min_pending, 1);          /* never a false "done" */
	CU_ASSERT_EQUAL(pending, 1);
	CU_ASSERT_EQUAL(done, 1);                 /* shard 1 only */
	shard_diff(a, b, 1, &missing, &wrong);
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(wrong, 0);
	shard_diff(a, b, 0, &missing, &wrong);
	CU_ASSERT(missing > 0 && missing < 300);  /* the budget's worth came */
	CU_ASSERT_EQUAL(wrong, 0);
	/* It keeps trying, each time with the whole budget. */
	CU_ASSERT(bl.n_shard >= 3);
	CU_ASSERT_EQUAL(bl.min_budget, 16384);
	CU_ASSERT_EQUAL(bl.max_budget, 16384);
	CU_ASSERT_EQUAL(s.on_frame_errors, 0);
	fprintf(stderr, "\n  over budget: %llu repair pulls of shard 0, %llu rows still missing",
		(unsigned long long)bl.n_shard, (unsigned long long)missing);
	sim_fini(&s);
}


/*
 * PULL_REPLY flag MORE on the wire: without LAST it is corrupt; with LAST
 * it decodes, its rows and covers are applied as usual, but it does not
 * end a repair; a LAST reply without MORE does.
 */
static void test_reply_more(void)
{
	struct shard_model_def def;
	struct capture cap = { .want_src = { 1, 0, 2, 1 } };
	struct gossip_stats a, b;
	struct victim v;
	uint64_t req, cs_src, done = 0;
	uint32_t budget = 0, flags;
	const uint8_t *dg, *rp;
	uint32_t ldg, lrp;
	uint8_t *m;

	cs_src = capture_session(&def, &cap, 23);
	CU_ASSERT_FATAL(cap.f[0] && cap.f[3]);
	dg = cap.f[0] + 24;
	ldg = cap.len[0] - 24;
	rp = cap.f[3] + 24;
	lrp = cap.len[3] - 24;
	memcpy(&flags, rp + 8, 4);
	CU_ASSERT_EQUAL_FATAL(flags, 0x1);        /* one whole reply: LAST */
	m = malloc(lrp + 8);
	CU_ASSERT_FATAL(m != NULL);

	victim_init(&v, &def);
	victim_drain(&v);
	/* MORE needs LAST; bit 5 is reserved. */
	memcpy(m, rp, lrp);
	put32(m + 8, 0x10);
	expect_bad(&v, GOSSIP_PULL_REPLY, m, lrp, FR_ERR_CORRUPT, "MORE without LAST");
	put32(m + 8, 0x18);
	expect_bad(&v, GOSSIP_PULL_REPLY, m, lrp, FR_ERR_CORRUPT, "CURSOR|MORE without LAST");
	put32(m + 8, 0x21);
	expect_bad(&v, GOSSIP_PULL_REPLY, m, lrp, FR_ERR_CORRUPT, "reply flag bit 5");
	/* LAST|MORE decodes: a reply to no pull is merely stale. */
	put32(m + 8, 0x11);
	expect_taken(&v, GOSSIP_PULL_REPLY, m, lrp, &a, &b);
	CU_ASSERT_EQUAL(b.stale_replies, a.stale_replies + 1);

	/* A repair of shard 0: the pull asks for the whole budget (16 MiB
	 * by default); a LAST|MORE answer is applied but ends nothing. */
	CU_ASSERT_EQUAL(gossip_shard_repair(v.g, v.st, 0, 0), FR_OK);
	CU_ASSERT_EQUAL(gossip_repairs_pending(v.g, &done), 1);
	CU_ASSERT_EQUAL(feed(&v, GOSSIP_DIGEST, dg, ldg), FR_OK);
	req = victim_take_pull(&v, &budget);
	CU_ASSERT_FATAL(req != 0);
	CU_ASSERT_EQUAL(budget, 16u << 20);
	reply_to(m, rp, lrp, req);
	put32(m + 8, 0x11);
	expect_taken(&v, GOSSIP_PULL_REPLY, m, lrp, &a, &b);
	CU_ASSERT_EQUAL(b.pulls_done, a.pulls_done + 1);
	CU_ASSERT_EQUAL(b.rows_applied, a.rows_applied + 40);
	CU_ASSERT_EQUAL(shard_store_table_checksum(v.st, 0), cs_src);
	CU_ASSERT_EQUAL(gossip_repairs_pending(v.g, &done), 1);
	CU_ASSERT_EQUAL(done, 0);

	/* It pulls again (at once, or on the next digest); a LAST reply
	 * without MORE ends the repair. */
	req = victim_take_pull(&v, &budget);
	if (!req) {
		CU_ASSERT_EQUAL(feed(&v, GOSSIP_DIGEST, dg, ldg), FR_OK);
		req = victim_take_pull(&v, &budget);
	}
	CU_ASSERT_FATAL(req != 0);
	CU_ASSERT_EQUAL(budget, 16u << 20);
	reply_to(m, rp, lrp, req);
	CU_ASSERT_EQUAL(feed(&v, GOSSIP_PULL_REPLY, m, lrp), FR_OK);
	CU_ASSERT_EQUAL(gossip_repairs_pending(v.g, &done), 0);
	CU_ASSERT_EQUAL(done, 1);
	CU_ASSERT_EQUAL(shard_store_table_checksum(v.st, 0), cs_src);
	victim_fini(&v);
	free(m);
	for (int i = 0; i < 4; i++)
		free(cap.f[i]);
}

/* ======================================================================
 * API edges
 * ==================================================================== */

static void test_api(void)
{
	struct shard_model_def def;
	struct gossip_config cfg = { .self_id = 1 };
	struct gossip_hooks hooks = { .apply = hook_apply };
	struct shard_store *st;
	struct gossip *g;
	enum fr_err err;

	cfg.self_id = 0;
	CU_ASSERT_PTR_NULL(gossip_new(&cfg, &hooks, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	cfg.self_id = 1;
	cfg.max_frame = 1000;
	CU_ASSERT_PTR_NULL(gossip_new(&cfg, &hooks, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_RANGE);
	cfg.max_frame = 8192;
	hooks.apply = NULL;
	CU_ASSERT_PTR_NULL(gossip_new(&cfg, &hooks, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	hooks.apply = hook_apply;
	g = gossip_new(&cfg, &hooks, &err);
	CU_ASSERT_FATAL(g != NULL);
	make_def(&def, "m", 1, 1, 16, 4, 4);
	st = shard_store_new(&def, NULL, &err);
	CU_ASSERT_EQUAL(gossip_model_add(g, st), FR_OK);
	CU_ASSERT_EQUAL(gossip_model_add(g, st), FR_ERR_EXISTS);
	CU_ASSERT_EQUAL(gossip_peer_add(g, 1), FR_ERR_INVAL);   /* self */
	CU_ASSERT_EQUAL(gossip_peer_add(g, 2), FR_OK);
	CU_ASSERT_EQUAL(gossip_peer_add(g, 2), FR_ERR_EXISTS);
	CU_ASSERT_EQUAL(gossip_peer_remove(g, 5), FR_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(gossip_next_deadline(g), UINT64_MAX);  /* all down */
	gossip_peer_up(g, 2, 10);
	CU_ASSERT(gossip_next_deadline(g) <= 10 + 200);
	CU_ASSERT_EQUAL(gossip_peer_remove(g, 2), FR_OK);
	gossip_free(g);
	gossip_free(NULL);
	/* A row that cannot fit max_frame is refused at registration. */
	cfg.max_frame = 8192;
	g = gossip_new(&cfg, &hooks, &err);
	shard_store_free(st);
	make_def(&def, "wide", 1, 1, 16, 4096, 4);
	st = shard_store_new(&def, NULL, &err);
	CU_ASSERT_EQUAL(gossip_model_add(g, st), FR_ERR_TOOBIG);
	gossip_free(g);
	shard_store_free(st);
}

static const struct fr_unit_test tests[] = {
	{ "api edges", test_api },
	{ "two nodes converge", test_two_nodes },
	{ "quarantine", test_quarantine },
	{ "8 nodes, faults, 3 publishers", test_mesh_faults },
	{ "cut-short transfers", test_cut_short },
	{ "coalescing", test_coalescing },
	{ "idle heartbeat cost", test_idle_cost },
	{ "full digest frames", test_full_digest_frames },
	{ "peer down, timeout", test_peer_down_and_timeout },
	{ "garbage", test_garbage },
	{ "priority", test_priority },
	{ "bounded pending pulls", test_bounded_pending },
	{ "rollback: no re-infection", test_rollback_reinfection },
	{ "rollback: repair of reset shards", test_rollback_repair },
	{ "rollback: dominated peers not pulled", test_rollback_dominated },
	{ "repair through a thin window", test_repair_thin_window },
	{ "repair of a shard over the pull budget", test_repair_over_budget },
	{ "PULL_REPLY flag MORE", test_reply_more },
};

int main(void)
{
	fr_log_set_level(FR_LOG_ERROR);
	return fr_unit_main("gossip", NULL, NULL, tests, FR_UNIT_COUNT(tests));
}
