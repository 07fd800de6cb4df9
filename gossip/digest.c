/*
 * digest.c — DIGEST and DIGEST_REQ: what a node tells its peers about its
 * shards, and what it does with what they tell it (docs/gossip.md §2.1,
 * §2.2, §3.1–3.3).
 *
 *   - The change log remembers which shards changed recently, so a
 *     heartbeat or push-notify DIGEST lists only the shards changed since
 *     the last one to that peer: with nothing changing, a heartbeat is one
 *     small section per model (summary, no entries), whatever the shard
 *     count.
 *   - A full DIGEST lists every written shard of a model; it is streamed
 *     lazily, one frame per pump step, each frame under max_frame.
 *   - A received DIGEST turns every entry whose vector we do not dominate
 *     into a pull candidate (sched.c); a summary that differs with nothing
 *     to explain it asks the peer for its full digest (DIGEST_REQ).
 *
 * Not here: pulls (pull.c), scheduling (sched.c), the queue (core.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip_int.h"

/* ========================================================================
 * Change log
 * ===================================================================== */

static void log_push(struct gmodel *m, uint64_t seq, uint32_t table,
		     uint32_t shard)
{
	struct glog_ent *e;

	if (m->log_n) {
		uint32_t last = (m->log_head + m->log_n - 1) % m->log_cap;

		e = &m->log[last];
		/* A hot shard noted again and again: one entry, moved up. */
		if (e->table == table && e->shard == shard) {
			if (seq > e->seq)
				e->seq = seq;
			return;
		}
	}
	if (m->log_n == m->log_cap) {
		e = &m->log[m->log_head];
		if (e->seq > m->log_horizon)
			m->log_horizon = e->seq;
		m->log_head = (m->log_head + 1) % m->log_cap;
		m->log_n--;
	}
	e = &m->log[(m->log_head + m->log_n) % m->log_cap];
	e->seq = seq;
	e->table = table;
	e->shard = shard;
	m->log_n++;
}

void gossip_log_note(struct gossip *g, struct gmodel *m, uint32_t table,
		     uint32_t shard)
{
	uint64_t seq = shard_store_change_seq(m->st);

	(void)g;
	if (table >= m->ntables || shard >= m->shards)
		return;
	log_push(m, seq, table, shard);
	if (seq > m->log_noted)
		m->log_noted = seq;
}

/*
 * Changes nobody told us about (the node must call gossip_on_local_change
 * for every change it makes outside the apply hook, but a missed call must
 * not hide a shard forever): find them by scanning, once.  Only the tail
 * after the last noted change can be found this way; a shard changed
 * silently before a noted change is found by the full anti-entropy round.
 */
static void log_sync(struct gmodel *m)
{
	uint64_t cur = shard_store_change_seq(m->st);
	uint64_t since = m->log_noted;

	if (cur <= since)
		return;
	for (uint32_t t = 0; t < m->ntables; t++)
		for (uint32_t s = 0; s < m->shards; s++)
			if (shard_store_shard_seq(m->st, t, s) > since)
				log_push(m, cur, t, s);
	m->log_noted = cur;
}

/* ========================================================================
 * Digest writer: sections and entries, split into frames under max_frame
 * ===================================================================== */

struct dwriter {
	struct gossip *g;
	struct gpeer *p;
	uint32_t flags;
	struct fr_wbuf w;
	bool open;
	size_t start;             /* frame header offset */
	uint32_t nmodels;
	bool sec_open;
	uint32_t sec_model;
	size_t sec_off;           /* offset of the section's nentries */
	uint32_t sec_n;
};

static size_t section_bytes(const struct gmodel *m)
{
	return GOSSIP_DIGEST_SEC + m->name_len + gossip_pad8(m->name_len);
}

static size_t entry_bytes(uint32_t nvv)
{
	return GOSSIP_DIGEST_ENT + (size_t)nvv * GOSSIP_VV_ENT;
}

static void dw_close(struct dwriter *d)
{
	if (!d->open)
		return;
	if (d->sec_open)
		fr_wbuf_put_u32_at(&d->w, d->sec_off, d->sec_n);
	fr_wbuf_put_u32_at(&d->w, d->start + SHARD_FRAME_HDR_BYTES + 4,
			   d->nmodels);
	gossip_frame_end(&d->w, d->start, GOSSIP_DIGEST, d->g->cfg.max_frame);
	gossip_out_push(d->g, d->p, GOSSIP_DIGEST, &d->w);
	d->open = false;
	d->sec_open = false;
}

static void dw_open(struct dwriter *d)
{
	fr_wbuf_init(&d->w, 512, 0);
	d->start = gossip_frame_begin(&d->w);
	fr_wbuf_u32(&d->w, d->flags);
	fr_wbuf_u32(&d->w, 0);          /* nmodels, patched in dw_close */
	d->nmodels = 0;
	d->open = true;
	d->sec_open = false;
}

static void dw_section_hdr(struct dwriter *d, uint32_t mi)
{
	const struct gmodel *m = d->g->models[mi];

	if (d->sec_open)
		fr_wbuf_put_u32_at(&d->w, d->sec_off, d->sec_n);
	fr_wbuf_u64(&d->w, shard_store_summary(m->st));
	d->sec_off = d->w.len;
	fr_wbuf_u32(&d->w, 0);          /* nentries, patched */
	fr_wbuf_u8(&d->w, m->name_len);
	fr_wbuf_u8(&d->w, 0);
	fr_wbuf_u16(&d->w, 0);
	fr_wbuf_bytes(&d->w, m->name, m->name_len);
	fr_wbuf_pad(&d->w, 8);
	d->nmodels++;
	d->sec_open = true;
	d->sec_model = mi;
	d->sec_n = 0;
}

/* Begin model mi's section, in a new frame if this one has no room for it
 * and one largest entry. */
static void dw_section(struct dwriter *d, uint32_t mi)
{
	size_t need = section_bytes(d->g->models[mi]) +
		      entry_bytes(SHARD_VV_MAX);

	if (d->open && d->w.len + need > d->g->cfg.max_frame)
		dw_close(d);
	if (!d->open)
		dw_open(d);
	dw_section_hdr(d, mi);
}

static void put_entry(struct fr_wbuf *w, const struct shard_digest_entry *e)
{
	uint32_t n = e->vv ? e->vv->n : 0;
	uint64_t sig;

	fr_wbuf_u32(w, e->table);
	fr_wbuf_u32(w, e->shard);
	fr_wbuf_u64(w, e->rollback_epoch);
	memcpy(&sig, &e->significance, 8);
	fr_wbuf_u64(w, sig);
	fr_wbuf_u32(w, n);
	fr_wbuf_u32(w, 0);
	for (uint32_t i = 0; i < n; i++) {
		fr_wbuf_u32(w, e->vv->e[i].origin);
		fr_wbuf_u32(w, 0);
		fr_wbuf_u64(w, e->vv->e[i].version);
	}
}

/* Add one entry to the open section, continuing the section in a new
 * frame when this one is full. */
static void dw_entry(struct dwriter *d, const struct shard_digest_entry *e)
{
	size_t sz = entry_bytes(e->vv ? e->vv->n : 0);

	if (d->w.len + sz > d->g->cfg.max_frame) {
		uint32_t mi = d->sec_model;

		dw_close(d);
		dw_open(d);
		dw_section_hdr(d, mi);
	}
	put_entry(&d->w, e);
	d->sec_n++;
}

static bool entry_empty(const struct shard_digest_entry *e)
{
	return (!e->vv || e->vv->n == 0) && e->rollback_epoch == 0;
}

/* ========================================================================
 * Deltas (heartbeat, push-notify)
 * ===================================================================== */

static int cmp_ts(const void *a, const void *b)
{
	const struct glog_ent *x = a, *y = b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return x->shard < y->shard ? -1 : x->shard > y->shard;
}

/* The entries of model mi changed since we last told p. */
static void delta_model(struct gossip *g, struct dwriter *d, uint32_t mi)
{
	struct gmodel *m = g->models[mi];
	struct gpeer_model *pm = &d->p->pm[mi];
	uint64_t cur, since = pm->sent_seq;

	if (m->quarantined)
		return;
	struct glog_ent *list = NULL;
	uint32_t n = 0;

	log_sync(m);
	cur = shard_store_change_seq(m->st);
	dw_section(d, mi);
	if (cur <= since)
		goto out;
	if (since < m->log_horizon) {
		/* More changed than the log remembers: that is a full
		 * digest's worth, streamed at the transport's pace. */
		gossip_full_start(g, d->p, mi);
		goto out_sent;
	}
	list = malloc((size_t)(m->log_n ? m->log_n : 1) * sizeof(*list));
	if (!list) {
		gossip_full_start(g, d->p, mi);
		goto out_sent;
	}
	for (uint32_t k = m->log_n; k-- > 0;) {
		const struct glog_ent *e =
			&m->log[(m->log_head + k) % m->log_cap];

		if (e->seq <= since)
			break;
		list[n++] = *e;
	}
	qsort(list, n, sizeof(*list), cmp_ts);
	for (uint32_t k = 0; k < n; k++) {
		struct shard_digest_entry e;

		if (k && !cmp_ts(&list[k - 1], &list[k]))
			continue;
		shard_store_digest_entry(m->st, list[k].table, list[k].shard,
					 &e);
		dw_entry(d, &e);
	}
	free(list);
out_sent:
	pm->sent_seq = cur;
out:
	return;
}

void gossip_send_delta(struct gossip *g, struct gpeer *p, int model)
{
	struct dwriter d = { .g = g, .p = p, .flags = 0 };

	if (!p->up || g->nmodels == 0)
		return;
	if (model >= 0) {
		delta_model(g, &d, (uint32_t)model);
	} else {
		for (uint32_t mi = 0; mi < g->nmodels; mi++)
			delta_model(g, &d, mi);
	}
	dw_close(&d);
}

/* ========================================================================
 * Full digests
 * ===================================================================== */

void gossip_full_start(struct gossip *g, struct gpeer *p, uint32_t model)
{
	struct gpeer_model *pm = &p->pm[model];

	if (!p->up || pm->full_active || g->models[model]->quarantined)
		return;
	pm->full_active = true;
	pm->full_pos = 0;
}

bool gossip_full_step(struct gossip *g, struct gpeer *p)
{
	struct dwriter d = { .g = g, .p = p, .flags = GOSSIP_DIGEST_FULL };
	struct gpeer_model *pm = NULL;
	struct gmodel *m;
	uint32_t mi = 0;
	uint64_t nsh;

	for (uint32_t k = 0; k < g->nmodels; k++) {
		uint32_t i = (p->full_rr + k) % g->nmodels;

		if (p->pm[i].full_active) {
			mi = i;
			pm = &p->pm[i];
			break;
		}
	}
	if (!pm)
		return false;
	p->full_rr = mi + 1;
	m = g->models[mi];
	nsh = (uint64_t)m->ntables * m->shards;
	dw_open(&d);
	dw_section_hdr(&d, mi);
	for (; pm->full_pos < nsh; pm->full_pos++) {
		uint32_t t = (uint32_t)(pm->full_pos / m->shards);
		uint32_t s = (uint32_t)(pm->full_pos % m->shards);
		struct shard_digest_entry e;

		shard_store_digest_entry(m->st, t, s, &e);
		if (entry_empty(&e))
			continue;
		if (d.w.len + entry_bytes(e.vv->n) > g->cfg.max_frame)
			break;          /* the next frame starts here */
		put_entry(&d.w, &e);
		d.sec_n++;
	}
	if (pm->full_pos >= nsh)
		pm->full_active = false;
	dw_close(&d);
	return true;
}

/* ========================================================================
 * DIGEST_REQ
 * ===================================================================== */

void gossip_send_digest_req(struct gossip *g, struct gpeer *p,
			    uint32_t model, uint64_t now)
{
	const struct gmodel *m = g->models[model];
	struct fr_wbuf w;
	size_t start;

	fr_wbuf_init(&w, 128, 0);
	start = gossip_frame_begin(&w);
	fr_wbuf_u8(&w, m->name_len);
	fr_wbuf_u8(&w, 0);
	fr_wbuf_u16(&w, 0);
	fr_wbuf_u32(&w, 0);
	fr_wbuf_bytes(&w, m->name, m->name_len);
	fr_wbuf_pad(&w, 8);
	gossip_frame_end(&w, start, GOSSIP_DIGEST_REQ, g->cfg.max_frame);
	gossip_out_push(g, p, GOSSIP_DIGEST_REQ, &w);
	p->pm[model].req_sent = true;
	p->pm[model].req_ms = now;
}

enum fr_err gossip_on_digest_req(struct gossip *g, struct gpeer *p,
				 const uint8_t *pl, size_t len, uint64_t now)
{
	const uint8_t *name;
	struct fr_rbuf r;
	uint32_t name_len, res0, res1, mi;
	enum fr_err err;

	(void)now;
	fr_rbuf_init(&r, pl, len);
	name_len = fr_rbuf_u8(&r);
	res0 = fr_rbuf_u8(&r);
	res0 |= fr_rbuf_u16(&r);
	res1 = fr_rbuf_u32(&r);
	if (r.err)
		return fr_fail(FR_ERR_TRUNC, "DIGEST_REQ: %zu bytes; expected at least %d",
			       len, GOSSIP_DREQ_FIXED);
	if (res0 || res1)
		return fr_fail(FR_ERR_CORRUPT, "DIGEST_REQ field 'reserved': expected 0");
	err = gossip_read_name(&r, name_len, "DIGEST_REQ", &name);
	if (err)
		return err;
	if (fr_rbuf_left(&r))
		return fr_fail(FR_ERR_CORRUPT, "DIGEST_REQ: %zu trailing bytes",
			       fr_rbuf_left(&r));
	/* A model we do not serve: nothing to tell. */
	if (gossip_model_find(g, (const char *)name, name_len, &mi))
		gossip_full_start(g, p, mi);
	return FR_OK;
}

/* ========================================================================
 * DIGEST in
 * ===================================================================== */

struct dsec {
	uint64_t summary;
	uint32_t nentries;
	uint32_t name_len;
	const uint8_t *name;
};

static enum fr_err read_section(struct fr_rbuf *r, uint32_t i,
				struct dsec *s)
{
	uint32_t res;
	enum fr_err err;

	s->summary = fr_rbuf_u64(r);
	s->nentries = fr_rbuf_u32(r);
	s->name_len = fr_rbuf_u8(r);
	res = fr_rbuf_u8(r);
	res |= fr_rbuf_u16(r);
	if (r->err)
		return fr_fail(FR_ERR_TRUNC, "DIGEST section %u: header does not fit", i);
	if (res)
		return fr_fail(FR_ERR_CORRUPT, "DIGEST section %u field 'reserved': expected 0", i);
	err = gossip_read_name(r, s->name_len, "DIGEST section", &s->name);
	if (err)
		return err;
	if (!fr_rbuf_fits(r, s->nentries, GOSSIP_DIGEST_ENT))
		return fr_fail(FR_ERR_TRUNC, "DIGEST section %u field 'nentries': %u entries of >= %d bytes do not fit in %zu",
			       i, s->nentries, GOSSIP_DIGEST_ENT,
			       fr_rbuf_left(r));
	return FR_OK;
}

struct dent {
	uint32_t table, shard, nvv;
	uint64_t epoch;
	double sig;
	const uint8_t *vv;        /* nvv x 16 bytes */
};

static enum fr_err read_entry(struct fr_rbuf *r, const struct gmodel *m,
			      uint32_t k, struct dent *e)
{
	uint64_t sig;
	uint32_t res;

	e->table = fr_rbuf_u32(r);
	e->shard = fr_rbuf_u32(r);
	e->epoch = fr_rbuf_u64(r);
	sig = fr_rbuf_u64(r);
	e->nvv = fr_rbuf_u32(r);
	res = fr_rbuf_u32(r);
	if (r->err)
		return fr_fail(FR_ERR_TRUNC, "DIGEST entry %u: does not fit", k);
	memcpy(&e->sig, &sig, 8);
	if (res)
		return fr_fail(FR_ERR_CORRUPT, "DIGEST entry %u field 'reserved': expected 0", k);
	if (!isfinite(e->sig) || e->sig < 0)
		return fr_fail(FR_ERR_CORRUPT, "DIGEST entry %u field 'significance': %g; expected finite >= 0",
			       k, e->sig);
	if (m && (e->table >= m->ntables || e->shard >= m->shards))
		return fr_fail(FR_ERR_RANGE, "DIGEST entry %u of model '%s': table %u shard %u; expected < %u tables, < %u shards",
			       k, m->name, e->table, e->shard, m->ntables,
			       m->shards);
	return gossip_read_vv(r, e->nvv, "DIGEST entry", k, &e->vv);
}

/* Load a wire vector (validated) into vv. */
static enum fr_err load_vv(struct shard_vv *vv, const uint8_t *p, uint32_t n)
{
	vv->n = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t o;
		uint64_t v;
		enum fr_err err;

		memcpy(&o, p + (size_t)i * GOSSIP_VV_ENT, 4);
		memcpy(&v, p + (size_t)i * GOSSIP_VV_ENT + 8, 8);
		err = shard_vv_advance(vv, o, v);
		if (err)
			return err;
	}
	return FR_OK;
}

/* Check the whole payload before acting on any of it, so a frame that is
 * bad at its end has changed nothing. */
static enum fr_err digest_validate(struct gossip *g, const uint8_t *pl,
				   size_t len)
{
	struct fr_rbuf r;
	uint32_t flags, nmodels;
	enum fr_err err;

	fr_rbuf_init(&r, pl, len);
	flags = fr_rbuf_u32(&r);
	nmodels = fr_rbuf_u32(&r);
	if (r.err)
		return fr_fail(FR_ERR_TRUNC, "DIGEST: %zu bytes; expected at least %d",
			       len, GOSSIP_DIGEST_HDR);
	if (flags & ~GOSSIP_DIGEST_FULL)
		return fr_fail(FR_ERR_CORRUPT, "DIGEST field 'flags': 0x%x; expected only bit 0",
			       flags);
	if (!fr_rbuf_fits(&r, nmodels, GOSSIP_DIGEST_SEC + 8))
		return fr_fail(FR_ERR_TRUNC, "DIGEST field 'nmodels': %u sections of >= %d bytes do not fit in %zu",
			       nmodels, GOSSIP_DIGEST_SEC + 8, fr_rbuf_left(&r));
	for (uint32_t i = 0; i < nmodels; i++) {
		struct dsec s;
		const struct gmodel *m;

		err = read_section(&r, i, &s);
		if (err)
			return err;
		m = gossip_model_find(g, (const char *)s.name, s.name_len,
				      NULL);
		for (uint32_t k = 0; k < s.nentries; k++) {
			struct dent e;

			err = read_entry(&r, m, k, &e);
			if (err)
				return err;
		}
	}
	if (fr_rbuf_left(&r))
		return fr_fail(FR_ERR_CORRUPT, "DIGEST: %zu trailing bytes",
			       fr_rbuf_left(&r));
	return FR_OK;
}

enum fr_err gossip_on_digest(struct gossip *g, struct gpeer *p,
			     const uint8_t *pl, size_t len, uint64_t now)
{
	struct fr_rbuf r;
	uint32_t flags, nmodels;
	enum fr_err err;

	err = digest_validate(g, pl, len);
	if (err)
		return err;
	fr_rbuf_init(&r, pl, len);
	flags = fr_rbuf_u32(&r);
	nmodels = fr_rbuf_u32(&r);
	for (uint32_t i = 0; i < nmodels; i++) {
		struct gpeer_model *pm;
		struct gmodel *m;
		struct dsec s;
		uint32_t mi = 0, produced = 0;
		bool differs;

		(void)read_section(&r, i, &s);
		m = gossip_model_find(g, (const char *)s.name, s.name_len, &mi);
		if (m) {
			pm = &p->pm[mi];
			pm->summary_stable = pm->summary_known &&
					     pm->summary == s.summary;
			pm->summary = s.summary;
			pm->summary_known = true;
		}
		/* A shard being repaired may look the same in both digests
		 * (after a rollback both vectors can be empty) while its rows
		 * differ: look at the entries then too. */
		differs = m && (s.summary != shard_store_summary(m->st) ||
				m->nrepair);
		for (uint32_t k = 0; k < s.nentries; k++) {
			struct shard_digest_entry ours, theirs;
			struct dent e;

			(void)read_entry(&r, m, k, &e);
			/* Equal summaries mean equal entries: skip them. */
			if (!differs)
				continue;
			err = load_vv(&g->tmp_vv, e.vv, e.nvv);
			if (err)
				return err;
			shard_store_digest_entry(m->st, e.table, e.shard, &ours);
			if (e.epoch < ours.rollback_epoch) {
				/* It has not applied a rollback we have:
				 * what it holds beyond us is revoked here,
				 * or comes once it has rolled back too. */
				m->epoch_behind++;
				continue;
			}
			if (!shard_vv_dominates(ours.vv, &g->tmp_vv) ||
			    gmodel_repairing(m, e.table, e.shard)) {
				theirs.table = e.table;
				theirs.shard = e.shard;
				theirs.vv = &g->tmp_vv;
				theirs.rollback_epoch = e.epoch;
				theirs.significance = e.sig;
				gossip_cand_offer(g, mi, p->id, &theirs, now);
				produced++;
			} else if (e.epoch > ours.rollback_epoch) {
				/* It applied a rollback we have not: the
				 * directive reaches us through ZooKeeper. */
				m->epoch_ahead++;
			}
		}
		/*
		 * The summaries differ and nothing listed explains it: a delta
		 * went missing, so ask for the whole picture.  Not when the
		 * frame was a full digest (it was the whole picture), not while
		 * we are pulling this model anyway, not while the peer's summary
		 * is still moving (it is catching up), and at most once per half
		 * full interval.
		 */
		if (differs && produced == 0 && !(flags & GOSSIP_DIGEST_FULL) &&
		    p->pm[mi].summary_stable && !gossip_model_busy(g, mi) &&
		    (!p->pm[mi].req_sent ||
		     now >= p->pm[mi].req_ms + g->cfg.full_interval_ms / 2))
			gossip_send_digest_req(g, p, mi, now);
	}
	return FR_OK;
}
