/*
 * core.c — the gossip core's skeleton: life cycle, models and peers, the
 * output queue, frame dispatch, penalties, timers (gossip_tick) and the
 * pump that turns pending work (pull replies being served, full digests
 * being streamed) into frames as fast as each peer's transport drains.
 *
 * Not here: message formats and what they mean (digest.c, pull.c), the
 * pull scheduler (sched.c).  Nothing here touches a socket or a clock:
 * every entry point gets `now` from the caller (gossip.h).
 *
 * Entry points and what each ends with:
 *
 *   gossip_on_frame ──► handler ──► (error? penalise) ──► schedule ──► pump
 *   gossip_tick     ──► heartbeats, full digests, timeouts ──► schedule ──► pump
 *   gossip_peer_up  ──► full digest stream to the peer ──► schedule ──► pump
 *   gossip_peer_down ─► re-queue its pulls, drop its output ──► schedule
 *   gossip_on_local_change ──► delta DIGEST to every up peer ──► pump
 *   gossip_peer_backlog ──► pump
 *
 * gossip_next_output() only hands out frames already made; it never makes
 * new ones, so a transport that drains it in a loop cannot pull a whole
 * shard's worth of replies into memory at once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip_int.h"

/* ========================================================================
 * Small helpers
 * ===================================================================== */

bool gossip_name_ok(const uint8_t *s, size_t len)
{
	return len <= SHARD_NAME_MAX && fr_name_valid_n(s, len);
}

/* Read a padded model name: name_len was read already. */
enum fr_err gossip_read_name(struct fr_rbuf *r, uint32_t name_len,
			     const char *what, const uint8_t **name)
{
	const uint8_t *pad;
	size_t np = gossip_pad8(name_len);

	if (name_len < 1 || name_len > SHARD_NAME_MAX)
		return fr_fail(FR_ERR_RANGE, "%s field 'name_len': %u; expected 1..%d",
			       what, name_len, SHARD_NAME_MAX);
	*name = fr_rbuf_bytes(r, name_len);
	pad = fr_rbuf_bytes(r, np);
	if (!*name || !pad)
		return fr_fail(FR_ERR_TRUNC, "%s field 'name': %u bytes + padding do not fit",
			       what, name_len);
	if (!gossip_name_ok(*name, name_len))
		return fr_fail(FR_ERR_CORRUPT, "%s field 'name': expected a name of " FR_NAME_CHARS,
			       what);
	for (size_t i = 0; i < np; i++)
		if (pad[i])
			return fr_fail(FR_ERR_CORRUPT, "%s field 'name': padding byte %zu is 0x%02x; expected 0",
				       what, i, pad[i]);
	return FR_OK;
}

enum fr_err gossip_read_vv(struct fr_rbuf *r, uint32_t nvv, const char *what,
			   uint32_t idx, const uint8_t **out)
{
	uint32_t prev = 0;
	char w[48];

	/* The name is formatted only on a failure: this runs per entry. */
#define WHAT() (idx == UINT32_MAX ? what : \
		(snprintf(w, sizeof(w), "%s %u", what, idx), w))
	if (nvv > SHARD_VV_MAX)
		return fr_fail(FR_ERR_RANGE, "%s field 'nvv': %u; expected <= %d",
			       WHAT(), nvv, SHARD_VV_MAX);
	if (!fr_rbuf_fits(r, nvv, GOSSIP_VV_ENT))
		return fr_fail(FR_ERR_TRUNC, "%s field 'nvv': %u origins do not fit in %zu bytes",
			       WHAT(), nvv, fr_rbuf_left(r));
	*out = fr_rbuf_bytes(r, (size_t)nvv * GOSSIP_VV_ENT);
	for (uint32_t i = 0; i < nvv; i++) {
		const uint8_t *p = *out + (size_t)i * GOSSIP_VV_ENT;
		uint32_t o, rz;
		uint64_t v;

		memcpy(&o, p, 4);
		memcpy(&rz, p + 4, 4);
		memcpy(&v, p + 8, 8);
		if (o == 0 || o <= prev || rz || v == 0)
			return fr_fail(FR_ERR_CORRUPT, "%s vector entry %u: origin %u version %llu; expected origins ascending from 1, reserved 0, version >= 1",
				       WHAT(), i, o, (unsigned long long)v);
		prev = o;
	}
#undef WHAT
	return FR_OK;
}

struct gpeer *gossip_peer_find(const struct gossip *g, uint32_t id)
{
	for (uint32_t i = 0; i < g->npeers; i++)
		if (g->peers[i]->id == id)
			return g->peers[i];
	return NULL;
}

struct gmodel *gossip_model_find(const struct gossip *g, const char *name,
				 size_t len, uint32_t *idx)
{
	for (uint32_t i = 0; i < g->nmodels; i++) {
		struct gmodel *m = g->models[i];

		if (m->name_len == len && memcmp(m->name, name, len) == 0) {
			if (m->quarantined)
				return NULL;   /* as if not served */
			if (idx)
				*idx = i;
			return m;
		}
	}
	return NULL;
}

static struct gmodel *model_by_store(const struct gossip *g,
				     const struct shard_store *st,
				     uint32_t *idx)
{
	for (uint32_t i = 0; i < g->nmodels; i++)
		if (g->models[i]->st == st) {
			if (idx)
				*idx = i;
			return g->models[i];
		}
	return NULL;
}

void *gossip_scratch(struct gossip *g, size_t n)
{
	if (n > g->scratch_cap) {
		size_t cap = g->scratch_cap ? g->scratch_cap : 4096;
		uint8_t *p;

		while (cap < n)
			cap *= 2;
		p = realloc(g->scratch, cap);
		if (!p)
			return NULL;
		g->scratch = p;
		g->scratch_cap = cap;
	}
	return g->scratch;
}

void gossip_score_add(struct gpeer *p, int32_t d)
{
	int64_t s = (int64_t)p->score + d;

	if (s > GOSSIP_SCORE_MAX)
		s = GOSSIP_SCORE_MAX;
	if (s < GOSSIP_SCORE_MIN)
		s = GOSSIP_SCORE_MIN;
	p->score = (int32_t)s;
}

void gossip_penalise(struct gossip *g, struct gpeer *p, bool fatal)
{
	g->st.bad_frames++;
	if (!p)
		return;
	p->st.bad_frames++;
	p->strikes++;
	if (fatal)
		p->fatal = true;
	gossip_score_add(p, -GOSSIP_SCORE_BAD);
}

/* ========================================================================
 * Frames and the output queue
 * ===================================================================== */

size_t gossip_frame_begin(struct fr_wbuf *w)
{
	size_t start = w->len;

	if (fr_wbuf_append(w, SHARD_FRAME_HDR_BYTES))
		memset(w->data + start, 0, SHARD_FRAME_HDR_BYTES);
	return start;
}

/* Frames are built in place (payload straight into the output buffer,
 * once) and sealed by the shard codec, which owns the header format and
 * its checksum (docs/wire.md §1). */
void gossip_frame_end(struct fr_wbuf *w, size_t start, uint16_t type,
		      uint32_t max_frame)
{
	enum fr_err err;

	if (w->err)
		return;
	err = shard_frame_seal(w->data + start, type,
			       w->len - start - SHARD_FRAME_HDR_BYTES, max_frame);
	if (err)
		w->err = err;
}

void gossip_out_push(struct gossip *g, struct gpeer *p, uint16_t type,
		     struct fr_wbuf *w)
{
	struct gout *o;

	if (!p->up || w->err || w->len == 0) {
		if (w->err)
			fr_log(FR_LOG_WARN, "gossip",
			       "frame type 0x%x to peer %u not built: %s",
			       type, p->id, fr_strerror(w->err));
		fr_wbuf_fini(w);
		return;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		fr_log(FR_LOG_WARN, "gossip",
		       "frame type 0x%x to peer %u dropped: out of memory",
		       type, p->id);
		fr_wbuf_fini(w);
		return;
	}
	o->peer = p->id;
	o->type = type;
	o->frame = *w;
	memset(w, 0, sizeof(*w));
	if (g->out_tail)
		g->out_tail->next = o;
	else
		g->out = o;
	g->out_tail = o;
	p->queued += o->frame.len;
}

static void out_discard_peer(struct gossip *g, uint32_t peer)
{
	struct gout **pp = &g->out, *o;

	g->out_tail = NULL;
	while ((o = *pp)) {
		if (o->peer == peer) {
			*pp = o->next;
			fr_wbuf_fini(&o->frame);
			free(o);
			continue;
		}
		g->out_tail = o;
		pp = &o->next;
	}
}

bool gossip_next_output(struct gossip *g, struct gossip_output *out)
{
	struct gout *o = g->out;
	struct gpeer *p;

	if (!o)
		return false;
	g->out = o->next;
	if (!g->out)
		g->out_tail = NULL;
	p = gossip_peer_find(g, o->peer);
	if (p) {
		p->queued -= o->frame.len;
		p->st.frames_out++;
		p->st.bytes_out += o->frame.len;
		if (o->type == GOSSIP_DIGEST || o->type == GOSSIP_DIGEST_REQ)
			p->st.digest_bytes_out += o->frame.len;
		if (o->type == GOSSIP_PULL_REPLY)
			p->st.pull_bytes_out += o->frame.len;
	}
	out->peer = o->peer;
	out->type = o->type;
	out->frame = o->frame;
	free(o);
	return true;
}

/* Generate pending work for every up peer while its transport keeps up.
 * A peer with nothing queued always gets one more frame, so a max_frame
 * larger than max_pull_bytes cannot stall it. */
static void pump(struct gossip *g)
{
	for (uint32_t i = 0; i < g->npeers; i++) {
		struct gpeer *p = g->peers[i];
		uint64_t pace = g->cfg.max_pull_bytes;

		/* On a thin link (a window was set) queue less ahead: a
		 * DIGEST or an urgent reply waits behind whatever is queued,
		 * and at WAN rates max_pull_bytes is seconds. */
		if (p->window && p->window / 4 < pace)
			pace = p->window / 4 > GOSSIP_MIN_PULL ? p->window / 4
							       : GOSSIP_MIN_PULL;

		while (p->up) {
			uint64_t q = p->queued + p->backlog;
			bool a, b;

			if (q > 0 && q >= pace)
				break;
			a = gossip_serve_step(g, p);
			b = gossip_full_step(g, p);
			if (!a && !b)
				break;
		}
	}
}

void gossip_peer_backlog(struct gossip *g, uint32_t peer, uint64_t bytes)
{
	struct gpeer *p = gossip_peer_find(g, peer);

	if (!p)
		return;
	p->backlog = bytes;
	pump(g);
}

/* ========================================================================
 * Life cycle
 * ===================================================================== */

struct gossip *gossip_new(const struct gossip_config *cfg,
			  const struct gossip_hooks *hooks, enum fr_err *err)
{
	struct gossip *g;
	enum fr_err e;

	if (!cfg || !hooks || !hooks->apply) {
		e = fr_fail(FR_ERR_INVAL, "gossip: config and an apply hook are required");
		goto out_err;
	}
	if (cfg->self_id == 0) {
		e = fr_fail(FR_ERR_INVAL, "gossip field 'self_id': 0; expected a node id >= 1");
		goto out_err;
	}
	if (cfg->max_frame && cfg->max_frame < GOSSIP_MIN_FRAME) {
		e = fr_fail(FR_ERR_RANGE, "gossip field 'max_frame': %u; expected 0 (default) or >= %u",
			    cfg->max_frame, GOSSIP_MIN_FRAME);
		goto out_err;
	}
	if (!(cfg->urgent_quantile >= 0 && cfg->urgent_quantile <= 1)) {
		e = fr_fail(FR_ERR_RANGE, "gossip field 'urgent_quantile': %g; expected 0 (default) .. 1",
			    cfg->urgent_quantile);
		goto out_err;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		e = fr_fail(FR_ERR_NOMEM, "gossip: core struct");
		goto out_err;
	}
	g->cfg = *cfg;
	g->hooks = *hooks;
	if (!g->cfg.digest_interval_ms)
		g->cfg.digest_interval_ms = 200;
	if (!g->cfg.full_interval_ms)
		g->cfg.full_interval_ms = 5000;
	if (!g->cfg.pull_timeout_ms)
		g->cfg.pull_timeout_ms = 2000;
	if (!g->cfg.max_inflight_bytes)
		g->cfg.max_inflight_bytes = 64ull << 20;
	if (!g->cfg.max_pull_bytes)
		g->cfg.max_pull_bytes = 16u << 20;
	if (!g->cfg.max_frame)
		g->cfg.max_frame = SHARD_FRAME_MAX_DEFAULT;
	if (!g->cfg.max_pending_pulls)
		g->cfg.max_pending_pulls = 65536;
	if (g->cfg.urgent_quantile == 0)
		g->cfg.urgent_quantile = 0.9;
	shard_vv_init(&g->tmp_vv);
	*err = FR_OK;
	return g;

out_err:
	*err = e;
	return NULL;
}

static void peer_free(struct gpeer *p)
{
	struct gserve *s, *n;

	if (!p)
		return;
	for (s = p->serves; s; s = n) {
		n = s->next;
		gossip_serve_free(s);
	}
	free(p->pm);
	free(p);
}

void gossip_free(struct gossip *g)
{
	struct gout *o, *n;

	if (!g)
		return;
	gossip_cands_free(g);
	for (o = g->out; o; o = n) {
		n = o->next;
		fr_wbuf_fini(&o->frame);
		free(o);
	}
	for (uint32_t i = 0; i < g->npeers; i++)
		peer_free(g->peers[i]);
	free(g->peers);
	for (uint32_t i = 0; i < g->nmodels; i++) {
		free(g->models[i]->log);
		free(g->models[i]->repair);
		free(g->models[i]);
	}
	free(g->models);
	shard_vv_fini(&g->tmp_vv);
	free(g->scratch);
	free(g);
}

/* The largest reply frame that carries one row of a table: its headers,
 * a cursor, a full covers section and the row.  A model whose rows do not
 * fit max_frame could never be pulled. */
static uint64_t one_row_frame(const struct shard_table_def *t)
{
	return SHARD_FRAME_HDR_BYTES + GOSSIP_REPLY_FIXED + GOSSIP_CURSOR +
	       32 + (SHARD_NAME_MAX + 1) + (uint64_t)SHARD_VV_MAX * 16 +
	       8 + 8 + 8 + 8 + shard_row_bytes(t) + 8;
}

enum fr_err gossip_model_add(struct gossip *g, struct shard_store *st)
{
	const struct shard_model_def *def = shard_store_def(st);
	size_t nl = strnlen(def->name, sizeof(def->name));
	struct gmodel *m, **models;
	uint64_t nsh;

	if (gossip_model_find(g, def->name, nl, NULL) ||
	    model_by_store(g, st, NULL))
		return fr_fail(FR_ERR_EXISTS, "gossip: model '%s' already added",
			       def->name);
	for (uint32_t t = 0; t < def->ntables; t++)
		if (one_row_frame(&def->tables[t]) > g->cfg.max_frame)
			return fr_fail(FR_ERR_TOOBIG,
				       "model '%s' table '%s': a %zu-byte row does not fit a reply under max_frame %u",
				       def->name, def->tables[t].name,
				       shard_row_bytes(&def->tables[t]),
				       g->cfg.max_frame);
	for (uint32_t i = 0; i < g->npeers; i++) {
		struct gpeer *p = g->peers[i];
		struct gpeer_model *pm;

		pm = realloc(p->pm, (size_t)(g->nmodels + 1) * sizeof(*pm));
		if (!pm)
			return fr_fail(FR_ERR_NOMEM, "gossip: peer model state");
		p->pm = pm;
		memset(&pm[g->nmodels], 0, sizeof(*pm));
	}
	models = realloc(g->models, (size_t)(g->nmodels + 1) * sizeof(*models));
	if (!models)
		return fr_fail(FR_ERR_NOMEM, "gossip: model table");
	g->models = models;
	m = calloc(1, sizeof(*m));
	if (!m)
		return fr_fail(FR_ERR_NOMEM, "gossip: model '%s'", def->name);
	nsh = (uint64_t)def->ntables * def->shards;
	m->log_cap = nsh < 1024 ? 1024 : nsh > GOSSIP_LOG_MAX ? GOSSIP_LOG_MAX
							     : (uint32_t)nsh;
	m->log = calloc(m->log_cap, sizeof(*m->log));
	if (!m->log) {
		free(m);
		return fr_fail(FR_ERR_NOMEM, "gossip: model '%s' change log",
			       def->name);
	}
	m->st = st;
	memcpy(m->name, def->name, nl);
	m->name_len = (uint8_t)nl;
	m->priority = def->priority ? def->priority : 1;
	m->ntables = def->ntables;
	m->shards = def->shards;
	/* Whatever the store holds already counts as changed since seq 0: a
	 * peer we have told nothing gets a full digest on peer_up anyway. */
	m->log_noted = shard_store_change_seq(st);
	m->log_horizon = m->log_noted;
	g->models[g->nmodels] = m;
	for (uint32_t i = 0; i < g->npeers; i++)
		if (g->peers[i]->up) {
			g->peers[i]->pm[g->nmodels].sent_seq = m->log_noted;
			gossip_full_start(g, g->peers[i], g->nmodels);
		}
	g->nmodels++;
	return FR_OK;
}

/* ========================================================================
 * Peers
 * ===================================================================== */

enum fr_err gossip_peer_add(struct gossip *g, uint32_t peer_id)
{
	struct gpeer *p, **peers;

	if (peer_id == 0 || peer_id == g->cfg.self_id)
		return fr_fail(FR_ERR_INVAL, "gossip peer id %u: expected a node id >= 1 other than self (%u)",
			       peer_id, g->cfg.self_id);
	if (gossip_peer_find(g, peer_id))
		return fr_fail(FR_ERR_EXISTS, "gossip peer %u already added",
			       peer_id);
	peers = realloc(g->peers, (size_t)(g->npeers + 1) * sizeof(*peers));
	if (!peers)
		return fr_fail(FR_ERR_NOMEM, "gossip: peer table");
	g->peers = peers;
	p = calloc(1, sizeof(*p));
	if (!p)
		return fr_fail(FR_ERR_NOMEM, "gossip: peer %u", peer_id);
	p->pm = calloc(g->nmodels ? g->nmodels : 1, sizeof(*p->pm));
	if (!p->pm) {
		free(p);
		return fr_fail(FR_ERR_NOMEM, "gossip: peer %u model state",
			       peer_id);
	}
	p->id = peer_id;
	p->score = GOSSIP_SCORE_MAX;
	p->recover_ms = g->now;
	p->st.peer = peer_id;
	g->peers[g->npeers++] = p;
	return FR_OK;
}

void gossip_peer_down(struct gossip *g, uint32_t peer_id, uint64_t now_ms)
{
	struct gpeer *p = gossip_peer_find(g, peer_id);
	struct gserve *s, *n;

	if (!p || !p->up)
		return;
	if (now_ms > g->now)
		g->now = now_ms;
	p->up = false;
	/* Its in-flight pulls go back to the queue, to be pulled elsewhere. */
	for (uint32_t i = 0; i < g->ninflight;) {
		struct gcand *c = g->inflight[i];

		if (c->peer == peer_id) {
			p->st.retries++;
			g->st.retries++;
			gossip_pull_end(g, c, true, now_ms);
			continue;       /* c left the array: same index */
		}
		i++;
	}
	out_discard_peer(g, peer_id);
	p->queued = 0;
	p->backlog = 0;
	for (s = p->serves; s; s = n) {
		n = s->next;
		gossip_serve_free(s);
	}
	p->serves = p->serves_tail = NULL;
	p->nserves = 0;
	for (uint32_t m = 0; m < g->nmodels; m++)
		p->pm[m].full_active = false;
	g->sched_dirty = true;
	gossip_sched_run(g, now_ms);
	pump(g);
}

enum fr_err gossip_peer_remove(struct gossip *g, uint32_t peer_id)
{
	struct gpeer *p = gossip_peer_find(g, peer_id);

	if (!p)
		return fr_fail(FR_ERR_NOTFOUND, "gossip peer %u not found",
			       peer_id);
	gossip_peer_down(g, peer_id, g->now);
	gossip_cand_forget_peer(g, peer_id);
	for (uint32_t i = 0; i < g->npeers; i++)
		if (g->peers[i] == p) {
			g->peers[i] = g->peers[--g->npeers];
			break;
		}
	peer_free(p);
	return FR_OK;
}

void gossip_peer_up(struct gossip *g, uint32_t peer_id, uint64_t now_ms)
{
	struct gpeer *p = gossip_peer_find(g, peer_id);

	if (!p)
		return;
	if (p->up)                      /* a reconnect we missed the end of */
		gossip_peer_down(g, peer_id, now_ms);
	if (now_ms > g->now)
		g->now = now_ms;
	p->up = true;
	p->strikes = 0;
	p->fatal = false;
	p->backlog = 0;
	p->next_hb_ms = now_ms + g->cfg.digest_interval_ms;
	p->next_full_ms = now_ms + g->cfg.full_interval_ms;
	for (uint32_t m = 0; m < g->nmodels; m++) {
		struct gpeer_model *pm = &p->pm[m];

		pm->summary_known = false;
		pm->req_sent = false;
		/* The full digest lists every shard as it is when its frame
		 * is written, so deltas need only what changes from now. */
		pm->sent_seq = shard_store_change_seq(g->models[m]->st);
		gossip_full_start(g, p, m);
	}
	g->sched_dirty = true;
	gossip_sched_run(g, now_ms);
	pump(g);
}

/* The model of st that gossip still serves (not quarantined), for the
 * calls below; NULL with *rc FR_ERR_NOTFOUND when gossip does not know
 * st, NULL with *rc FR_OK when it is quarantined (nothing to do).  Its
 * pending pulls are forgotten: the caller changes what they were for. */
static struct gmodel *model_live_forget(struct gossip *g,
					struct shard_store *st, uint32_t *idx,
					enum fr_err *rc)
{
	struct gmodel *m = model_by_store(g, st, idx);

	*rc = m ? FR_OK : fr_fail(FR_ERR_NOTFOUND, "gossip: no such model");
	if (!m || m->quarantined)
		return NULL;
	gossip_cand_forget_model(g, *idx);
	return m;
}

enum fr_err gossip_model_quarantine(struct gossip *g, struct shard_store *st)
{
	uint32_t idx;
	enum fr_err rc;
	struct gmodel *m = model_live_forget(g, st, &idx, &rc);

	if (!m)
		return rc;
	m->quarantined = true;
	for (uint32_t i = 0; i < g->npeers; i++)
		g->peers[i]->pm[idx].full_active = false;
	return FR_OK;
}

enum fr_err gossip_model_rolled_back(struct gossip *g, struct shard_store *st,
				     uint64_t now_ms)
{
	uint32_t idx;
	enum fr_err rc;

	if (!model_live_forget(g, st, &idx, &rc))
		return rc;
	for (uint32_t i = 0; i < g->npeers; i++) {
		struct gpeer *p = g->peers[i];

		if (!p->up)
			continue;
		gossip_send_digest_req(g, p, idx, now_ms);
	}
	g->sched_dirty = true;
	return FR_OK;
}

enum fr_err gossip_shard_repair(struct gossip *g, struct shard_store *st,
			       uint32_t table, uint32_t shard)
{
	uint32_t idx;
	struct gmodel *m = model_by_store(g, st, &idx);
	uint8_t *f;

	if (!m)
		return fr_fail(FR_ERR_NOTFOUND, "gossip: no such model");
	if (table >= m->ntables || shard >= m->shards)
		return fr_fail(FR_ERR_RANGE, "gossip: table %u shard %u out of "
			       "range", table, shard);
	if (!m->repair) {
		m->repair = calloc((size_t)m->ntables * m->shards, 1);
		if (!m->repair)
			return fr_fail(FR_ERR_NOMEM, "gossip: repair flags");
	}
	f = &m->repair[(size_t)table * m->shards + shard];
	if (!*f) {
		*f = 1;
		m->nrepair++;
	}
	return FR_OK;
}

uint32_t gossip_repairs_pending(const struct gossip *g, uint64_t *done)
{
	uint32_t n = 0;
	uint64_t d = 0;

	for (uint32_t i = 0; i < g->nmodels; i++) {
		n += g->models[i]->nrepair;
		d += g->models[i]->repairs_done;
	}
	if (done)
		*done = d;
	return n;
}

enum fr_err gossip_peer_set_window(struct gossip *g, uint32_t peer_id,
				   uint64_t bytes)
{
	struct gpeer *p = gossip_peer_find(g, peer_id);

	if (!p)
		return fr_fail(FR_ERR_NOTFOUND, "gossip peer %u not found",
			       peer_id);
	p->window = bytes;
	return FR_OK;
}

bool gossip_peer_should_drop(const struct gossip *g, uint32_t peer)
{
	const struct gpeer *p = gossip_peer_find(g, peer);

	return p && (p->fatal || p->strikes >= GOSSIP_STRIKES_DROP);
}

/* ========================================================================
 * Input
 * ===================================================================== */

enum fr_err gossip_on_frame(struct gossip *g, uint32_t peer, uint16_t type,
			    const uint8_t *payload, size_t len,
			    uint64_t now_ms)
{
	struct gpeer *p = gossip_peer_find(g, peer);
	enum fr_err err;

	if (now_ms > g->now)
		g->now = now_ms;
	if (!p) {
		g->st.bad_frames++;
		return fr_fail(FR_ERR_PROTO, "gossip frame type 0x%x from unknown peer %u",
			       type, peer);
	}
	p->st.frames_in++;
	p->st.bytes_in += len + SHARD_FRAME_HDR_BYTES;
	if (len && !payload) {
		gossip_penalise(g, p, true);
		return fr_fail(FR_ERR_INVAL, "gossip frame: NULL payload of %zu bytes", len);
	}
	/* The contract says payloads are 8-aligned; a batch is decoded in
	 * place and needs it, so a stray one is moved rather than refused. */
	if (((uintptr_t)payload & 7) && len) {
		uint8_t *a = gossip_scratch(g, len);

		if (!a)
			return fr_fail(FR_ERR_NOMEM, "gossip: aligning a %zu-byte payload", len);
		memmove(a, payload, len);
		payload = a;
	}
	switch (type) {
	case GOSSIP_DIGEST:
		err = gossip_on_digest(g, p, payload, len, now_ms);
		break;
	case GOSSIP_DIGEST_REQ:
		err = gossip_on_digest_req(g, p, payload, len, now_ms);
		break;
	case GOSSIP_PULL:
		err = gossip_on_pull(g, p, payload, len, now_ms);
		break;
	case GOSSIP_PULL_REPLY:
		err = gossip_on_pull_reply(g, p, payload, len, now_ms);
		break;
	default:
		/* A peer that speaks types we do not know is not speaking
		 * our protocol: nothing it sends can be trusted. */
		gossip_penalise(g, p, true);
		return fr_fail(FR_ERR_PROTO, "gossip frame type 0x%x from peer %u: expected 0x%x..0x%x",
			       type, peer, GOSSIP_DIGEST, GOSSIP_PULL_REPLY);
	}
	if (err) {
		fr_log(FR_LOG_DEBUG, "gossip", "bad frame type 0x%x from peer %u: %s (%s)",
		       type, peer, fr_strerror(err), fr_errmsg());
		gossip_penalise(g, p, false);
	}
	gossip_sched_run(g, now_ms);
	pump(g);
	return err;
}

void gossip_note_local_change(struct gossip *g, struct shard_store *st,
			      uint32_t table, uint32_t shard)
{
	uint32_t idx;
	struct gmodel *m = model_by_store(g, st, &idx);

	if (m)
		gossip_log_note(g, m, table, shard);
}

void gossip_on_local_change(struct gossip *g, struct shard_store *st,
			    uint32_t table, uint32_t shard, uint64_t now_ms)
{
	uint32_t idx;
	struct gmodel *m = model_by_store(g, st, &idx);

	if (!m)
		return;
	if (now_ms > g->now)
		g->now = now_ms;
	gossip_log_note(g, m, table, shard);
	/* Push-notify: a small delta DIGEST to every up peer now, so they
	 * pull within a round trip instead of a heartbeat period. */
	for (uint32_t i = 0; i < g->npeers; i++)
		if (g->peers[i]->up)
			gossip_send_delta(g, g->peers[i], (int)idx);
	g->sched_dirty = true;
	pump(g);
}

/* ========================================================================
 * Time
 * ===================================================================== */

void gossip_tick(struct gossip *g, uint64_t now_ms)
{
	if (now_ms > g->now)
		g->now = now_ms;
	for (uint32_t i = 0; i < g->npeers; i++) {
		struct gpeer *p = g->peers[i];

		if (now_ms > p->recover_ms + GOSSIP_SCORE_RECOVER_MS) {
			uint64_t k = (now_ms - p->recover_ms) /
				     GOSSIP_SCORE_RECOVER_MS;

			gossip_score_add(p, k > 1000 ? 1000 : (int32_t)k);
			p->recover_ms += k * GOSSIP_SCORE_RECOVER_MS;
		}
		if (!p->up)
			continue;
		if (now_ms >= p->next_hb_ms) {
			gossip_send_delta(g, p, -1);
			p->next_hb_ms = now_ms + g->cfg.digest_interval_ms;
		}
		if (now_ms >= p->next_full_ms) {
			/* Periodic repair, but only where it can help: a
			 * model whose summary the peer last reported equal
			 * to ours needs none, so idle links stay cheap. */
			for (uint32_t m = 0; m < g->nmodels; m++) {
				struct gpeer_model *pm = &p->pm[m];

				if (g->models[m]->quarantined)
					continue;
				if (!pm->summary_known ||
				    pm->summary !=
					    shard_store_summary(g->models[m]->st))
					gossip_full_start(g, p, m);
			}
			p->next_full_ms = now_ms + g->cfg.full_interval_ms;
		}
	}
	gossip_sched_timeouts(g, now_ms);
	g->sched_dirty = true;
	gossip_sched_run(g, now_ms);
	pump(g);
}

uint64_t gossip_next_deadline(const struct gossip *g)
{
	uint64_t d = gossip_sched_deadline(g);

	for (uint32_t i = 0; i < g->npeers; i++) {
		const struct gpeer *p = g->peers[i];

		if (!p->up)
			continue;
		if (p->next_hb_ms < d)
			d = p->next_hb_ms;
		if (p->next_full_ms < d)
			d = p->next_full_ms;
	}
	/* Pending pulls waiting for budget are retried on the next tick. */
	if (g->npending && g->now + g->cfg.digest_interval_ms < d)
		d = g->now + g->cfg.digest_interval_ms;
	return d;
}

/* ========================================================================
 * Counters
 * ===================================================================== */

void gossip_get_stats(const struct gossip *g, struct gossip_stats *out)
{
	*out = g->st;
	out->pulls_dropped = g->pulls_dropped;
	out->stale_replies = g->stale_replies;
	out->pulls_nomodel = g->nomodel_served;
	out->epoch_ahead = 0;
	out->epoch_behind = 0;
	for (uint32_t i = 0; i < g->nmodels; i++) {
		out->epoch_ahead += g->models[i]->epoch_ahead;
		out->epoch_behind += g->models[i]->epoch_behind;
	}
	out->pulls_pending = g->npending;
	out->pulls_inflight = g->ninflight;
	out->npeers = g->npeers;
}

uint32_t gossip_get_peer_stats(const struct gossip *g,
			       struct gossip_peer_stats *out, uint32_t cap)
{
	for (uint32_t i = 0; i < g->npeers && i < cap; i++) {
		const struct gpeer *p = g->peers[i];

		out[i] = p->st;
		out[i].peer = p->id;
		out[i].up = p->up;
		out[i].score = p->score;
	}
	return g->npeers;
}
