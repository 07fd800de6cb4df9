/*
 * pull.c — PULL and PULL_REPLY (docs/gossip.md §2.3, §2.4, §3.4): asking a
 * peer for the rows of one shard changed since our vector, serving such a
 * request, and applying the replies.
 *
 * Serving.  A PULL(since V) lists rows = changes_since(V) at once (grouped
 * by origin, versions ascending, ties by row id), trimmed to what the
 * pull's byte budget can carry, and remembers the server's vector S.  The
 * reply frames are then written lazily, as the peer's transport drains
 * (core.c's pump), each under max_frame, with the rows' values as they are
 * when the frame is written (a row overwritten meanwhile goes out with its
 * newer value: newest supersedes).  Every reply carries covers:
 *
 *   origin o of S whose listed rows were all sent (or had none)  ->  S[o]
 *   origin o whose rows the cut falls inside                      ->  min(S[o], next unsent version - 1)
 *   origin o whose rows all come later                            ->  none yet
 *
 * so a receiver that stops after any reply holds a correct, smaller vector.
 * When the cut falls between rows of one version x (one publish larger
 * than the budget) the cover can only say x - 1; the last reply then hands
 * the requester a cursor (o, x, last row sent) that its next PULL carries,
 * so the next pull starts after that row instead of sending it again.
 *
 * Applying.  Replies are numbered; they are applied in order through the
 * apply hook.  A missing one (the simulated network drops frames, a real
 * one can lose a connection) marks the pull broken: later replies are
 * still applied but without their covers, which may lean on the missing
 * rows.
 *
 * Not here: choosing what to pull and from whom (sched.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip_int.h"

/* ========================================================================
 * PULL out
 * ===================================================================== */

void gossip_send_pull(struct gossip *g, struct gpeer *p, struct gcand *c)
{
	const struct gmodel *m = g->models[c->model];
	struct shard_digest_entry e;
	struct fr_wbuf w;
	uint64_t sig;
	bool cursor = false;
	size_t start;

	shard_store_digest_entry(m->st, c->table, c->shard, &e);
	if (c->has_cursor) {
		uint64_t v = shard_vv_get(e.vv, c->cursor.origin);

		/* The cursor speaks of rows at version x beyond a vector that
		 * stops at x - 1; once the vector moved on it says nothing. */
		if (v + 1 == c->cursor.version)
			cursor = true;
		else
			c->has_cursor = false;
	}
	fr_wbuf_init(&w, 128 + (size_t)e.vv->n * GOSSIP_VV_ENT, 0);
	start = gossip_frame_begin(&w);
	fr_wbuf_u64(&w, c->req_id);
	fr_wbuf_u32(&w, (uint32_t)c->max_bytes);
	fr_wbuf_u32(&w, c->table);
	fr_wbuf_u32(&w, c->shard);
	fr_wbuf_u32(&w, e.vv->n);
	fr_wbuf_u8(&w, m->name_len);
	fr_wbuf_u8(&w, cursor ? GOSSIP_PULL_CURSOR : 0);
	fr_wbuf_u16(&w, 0);
	fr_wbuf_u32(&w, 0);
	memcpy(&sig, &e.significance, 8);
	fr_wbuf_u64(&w, sig);
	fr_wbuf_bytes(&w, m->name, m->name_len);
	fr_wbuf_pad(&w, 8);
	for (uint32_t i = 0; i < e.vv->n; i++) {
		fr_wbuf_u32(&w, e.vv->e[i].origin);
		fr_wbuf_u32(&w, 0);
		fr_wbuf_u64(&w, e.vv->e[i].version);
	}
	if (cursor) {
		fr_wbuf_u32(&w, c->cursor.origin);
		fr_wbuf_u32(&w, 0);
		fr_wbuf_u64(&w, c->cursor.version);
		fr_wbuf_u64(&w, c->cursor.row);
	}
	gossip_frame_end(&w, start, GOSSIP_PULL, g->cfg.max_frame);
	gossip_out_push(g, p, GOSSIP_PULL, &w);
}

/* ========================================================================
 * PULL in: decode, list the rows, queue the serve
 * ===================================================================== */

struct pull_msg {
	uint64_t req_id;
	uint32_t max_bytes, table, shard, nvv, name_len, flags;
	double sig;
	const uint8_t *name;
	const uint8_t *vv;
	struct gcursor cursor;
};

static enum fr_err read_cursor(struct fr_rbuf *r, const char *what,
			       struct gcursor *c)
{
	uint32_t res;

	c->origin = fr_rbuf_u32(r);
	res = fr_rbuf_u32(r);
	c->version = fr_rbuf_u64(r);
	c->row = fr_rbuf_u64(r);
	if (r->err)
		return fr_fail(FR_ERR_TRUNC, "%s field 'cursor': %d bytes do not fit",
			       what, GOSSIP_CURSOR);
	if (c->origin == 0 || c->version == 0 || res)
		return fr_fail(FR_ERR_CORRUPT, "%s field 'cursor': origin %u version %llu reserved %u; expected origin >= 1, version >= 1, reserved 0",
			       what, c->origin, (unsigned long long)c->version,
			       res);
	return FR_OK;
}

static enum fr_err pull_decode(const uint8_t *pl, size_t len,
			       struct pull_msg *m)
{
	struct fr_rbuf r;
	uint64_t sig;
	uint32_t res;
	enum fr_err err;

	fr_rbuf_init(&r, pl, len);
	m->req_id = fr_rbuf_u64(&r);
	m->max_bytes = fr_rbuf_u32(&r);
	m->table = fr_rbuf_u32(&r);
	m->shard = fr_rbuf_u32(&r);
	m->nvv = fr_rbuf_u32(&r);
	m->name_len = fr_rbuf_u8(&r);
	m->flags = fr_rbuf_u8(&r);
	res = fr_rbuf_u16(&r);
	res |= fr_rbuf_u32(&r);
	sig = fr_rbuf_u64(&r);
	if (r.err)
		return fr_fail(FR_ERR_TRUNC, "PULL: %zu bytes; expected at least %d",
			       len, GOSSIP_PULL_FIXED);
	memcpy(&m->sig, &sig, 8);
	if (m->flags & ~GOSSIP_PULL_CURSOR)
		return fr_fail(FR_ERR_CORRUPT, "PULL field 'flags': 0x%x; expected only bit 0",
			       m->flags);
	if (res)
		return fr_fail(FR_ERR_CORRUPT, "PULL field 'reserved': expected 0");
	if (m->max_bytes == 0)
		return fr_fail(FR_ERR_RANGE, "PULL field 'max_bytes': 0; expected >= 1");
	if (!isfinite(m->sig) || m->sig < 0)
		return fr_fail(FR_ERR_CORRUPT, "PULL field 'significance': %g; expected finite >= 0",
			       m->sig);
	err = gossip_read_name(&r, m->name_len, "PULL", &m->name);
	if (err)
		return err;
	err = gossip_read_vv(&r, m->nvv, "PULL", UINT32_MAX, &m->vv);
	if (err)
		return err;
	if (m->flags & GOSSIP_PULL_CURSOR) {
		err = read_cursor(&r, "PULL", &m->cursor);
		if (err)
			return err;
	}
	if (fr_rbuf_left(&r))
		return fr_fail(FR_ERR_CORRUPT, "PULL: %zu trailing bytes",
			       fr_rbuf_left(&r));
	return FR_OK;
}

void gossip_serve_free(struct gserve *s)
{
	if (!s)
		return;
	free(s->c);
	free(s->orig);
	free(s);
}

static void serve_queue(struct gpeer *p, struct gserve *s)
{
	if (p->serves_tail)
		p->serves_tail->next = s;
	else
		p->serves = s;
	p->serves_tail = s;
	p->nserves++;
}

/* A refusal: one empty last reply with flags (NOMODEL or BUSY). */
static enum fr_err serve_refuse(struct gpeer *p, const struct pull_msg *pm,
				uint16_t flags)
{
	struct gserve *s = calloc(1, sizeof(*s));

	if (!s)
		return fr_fail(FR_ERR_NOMEM, "gossip: refusing a pull");
	s->req_id = pm->req_id;
	s->table = pm->table;
	s->shard = pm->shard;
	s->flags = flags;
	memcpy(s->name, pm->name, pm->name_len);
	serve_queue(p, s);
	return FR_OK;
}

/* Bytes of the row sections of a reply batch with k rows. */
static uint64_t rows_bytes(uint64_t k, size_t row_bytes, bool sig)
{
	uint64_t b = 8 * k + 8 * k + 4 * k + gossip_pad8(4 * k);

	if (sig)
		b += 4 * k + gossip_pad8(4 * k);
	return b + k * row_bytes + gossip_pad8(k * row_bytes);
}

/* Everything in a reply frame but the rows, at its largest (a cursor and
 * a cover per origin of S). */
static uint64_t reply_fixed(const struct gmodel *m, uint32_t norig)
{
	return SHARD_FRAME_HDR_BYTES + GOSSIP_REPLY_FIXED + GOSSIP_CURSOR +
	       32 + m->name_len + gossip_pad8(m->name_len) +
	       (uint64_t)norig * 16;
}

static enum fr_err serve_build(struct gossip *g, uint32_t mi,
			       const struct pull_msg *pm, struct gserve **out)
{
	const struct gmodel *m = g->models[mi];
	const struct shard_model_def *def = shard_store_def(m->st);
	size_t rb = shard_row_bytes(&def->tables[pm->table]);
	struct shard_digest_entry se;
	struct shard_changes ch;
	struct gserve *s = NULL;
	uint64_t max_rows;
	uint32_t k;
	enum fr_err err;

	/* The requester's vector, from the validated wire bytes. */
	g->tmp_vv.n = 0;
	for (uint32_t i = 0; i < pm->nvv; i++) {
		uint32_t o;
		uint64_t v;

		memcpy(&o, pm->vv + (size_t)i * GOSSIP_VV_ENT, 4);
		memcpy(&v, pm->vv + (size_t)i * GOSSIP_VV_ENT + 8, 8);
		err = shard_vv_advance(&g->tmp_vv, o, v);
		if (err)
			return err;
	}
	shard_changes_init(&ch);
	err = shard_store_changes_since(m->st, pm->table, pm->shard,
					&g->tmp_vv, &ch);
	if (err)
		goto out_changes;
	/* The cursor: rows of (origin, version x) up to row r the requester
	 * already holds, valid while its vector stops at x - 1. */
	if (pm->flags & GOSSIP_PULL_CURSOR &&
	    shard_vv_get(&g->tmp_vv, pm->cursor.origin) + 1 >=
		    pm->cursor.version) {
		k = 0;
		for (uint32_t i = 0; i < ch.n; i++) {
			const struct shard_change *c = &ch.c[i];

			if (c->origin == pm->cursor.origin &&
			    c->version == pm->cursor.version &&
			    c->row <= pm->cursor.row)
				continue;
			ch.c[k++] = *c;
		}
		ch.n = k;
	}
	err = FR_ERR_NOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_changes;
	shard_store_digest_entry(m->st, pm->table, pm->shard, &se);
	s->orig = calloc(se.vv->n ? se.vv->n : 1, sizeof(*s->orig));
	if (!s->orig)
		goto out_serve;
	s->norig = se.vv->n;
	for (uint32_t i = 0; i < se.vv->n; i++) {
		s->orig[i].origin = se.vv->e[i].origin;
		s->orig[i].s = se.vv->e[i].version;
		s->orig[i].vreq = shard_vv_get(&g->tmp_vv, se.vv->e[i].origin);
	}
	/* Each origin's run in the list (both sorted by origin). */
	for (uint32_t i = 0, j = 0; i < ch.n;) {
		uint32_t o = ch.c[i].origin, end = i;

		while (end < ch.n && ch.c[end].origin == o)
			end++;
		while (j < s->norig && s->orig[j].origin < o)
			j++;
		if (j < s->norig && s->orig[j].origin == o) {
			s->orig[j].start = i;
			s->orig[j].end = end;
		}
		i = end;
	}
	/* Keep only what the budget could carry; the rest is listed again
	 * by the requester's next pull. */
	max_rows = pm->max_bytes / (20 + rb) + 1;
	s->n_all = ch.n;
	s->n = ch.n < max_rows ? ch.n : (uint32_t)max_rows;
	if (s->n < s->n_all) {
		struct shard_change *c;

		s->after = ch.c[s->n];
		c = realloc(ch.c, (size_t)(s->n ? s->n : 1) * sizeof(*c));
		if (c)
			ch.c = c;
	}
	s->c = ch.c;
	ch.c = NULL;
	/* Significance travels with the rows so that the requester's shard
	 * weighs what it received, spread evenly over the rows listed. */
	if (se.significance > pm->sig && s->n_all) {
		double d = (se.significance - pm->sig) / s->n_all;

		if (isfinite(d) && d > 0 && d < 3.0e38)
			s->sig = (float)d;
	}
	s->req_id = pm->req_id;
	s->model = mi;
	s->table = pm->table;
	s->shard = pm->shard;
	s->budget = pm->max_bytes;
	*out = s;
	shard_changes_fini(&ch);
	return FR_OK;

out_serve:
	gossip_serve_free(s);
out_changes:
	shard_changes_fini(&ch);
	return fr_fail(err, "gossip: serving a pull of model '%s' table %u shard %u",
		       m->name, pm->table, pm->shard);
}

enum fr_err gossip_on_pull(struct gossip *g, struct gpeer *p,
			   const uint8_t *pl, size_t len, uint64_t now)
{
	struct pull_msg pm;
	struct gserve *s = NULL;
	struct gmodel *m;
	uint32_t mi;
	enum fr_err err;

	(void)now;
	err = pull_decode(pl, len, &pm);
	if (err)
		return err;
	if (!p->up)
		return FR_OK;           /* nowhere to answer; it will ask again */
	m = gossip_model_find(g, (const char *)pm.name, pm.name_len, &mi);
	if (!m) {
		/* Not an error: models come and go at different times on
		 * different nodes.  The requester stops asking us. */
		g->nomodel_served++;
		return serve_refuse(p, &pm, GOSSIP_REPLY_NOMODEL);
	}
	if (pm.table >= m->ntables || pm.shard >= m->shards)
		return fr_fail(FR_ERR_RANGE, "PULL of model '%s': table %u shard %u; expected < %u tables, < %u shards",
			       m->name, pm.table, pm.shard, m->ntables,
			       m->shards);
	/* Bounded: a peer that keeps more pulls open than this is told to
	 * come back later. */
	if (p->nserves >= GOSSIP_SERVES_MAX)
		return serve_refuse(p, &pm, GOSSIP_REPLY_BUSY);
	err = serve_build(g, mi, &pm, &s);
	if (err == FR_ERR_NOMEM)
		return serve_refuse(p, &pm, GOSSIP_REPLY_BUSY);
	if (err)
		return err;
	serve_queue(p, s);
	p->st.pulls_served++;
	return FR_OK;
}

/* ========================================================================
 * PULL_REPLY out
 * ===================================================================== */

/* Covers after the rows [0, e) of the list have been sent. */
static uint32_t serve_covers(const struct gserve *s, uint32_t e,
			     struct shard_vv_ent *out)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->norig; i++) {
		const struct gserve_orig *o = &s->orig[i];
		uint64_t cv;

		if (o->start == o->end || o->end <= e) {
			cv = o->s;
		} else if (o->start >= e) {
			continue;               /* its rows come later */
		} else {
			uint64_t next = e < s->n ? s->c[e].version
						 : s->after.version;

			cv = next - 1 < o->s ? next - 1 : o->s;
		}
		if (cv > o->vreq) {
			out[n].origin = o->origin;
			out[n].version = cv;
			n++;
		}
	}
	return n;
}

static void remove_first_serve(struct gpeer *p)
{
	struct gserve *s = p->serves;

	p->serves = s->next;
	if (!p->serves)
		p->serves_tail = NULL;
	p->nserves--;
	gossip_serve_free(s);
}

static void reply_hdr(struct fr_wbuf *w, uint64_t req_id, uint32_t flags,
		      uint32_t seq)
{
	fr_wbuf_u64(w, req_id);
	fr_wbuf_u32(w, flags);
	fr_wbuf_u32(w, seq);
}

static void serve_refusal_frame(struct gossip *g, struct gpeer *p,
				struct gserve *s)
{
	struct shard_batch_hdr h = { .dtype = SHARD_F32, .dim = 1 };
	struct shard_batch b = { .table = s->table, .shard = s->shard };
	struct fr_wbuf w;
	size_t start;

	memcpy(h.model, s->name, sizeof(h.model));
	fr_wbuf_init(&w, 128, 0);
	start = gossip_frame_begin(&w);
	reply_hdr(&w, s->req_id, GOSSIP_REPLY_LAST | s->flags, 0);
	if (shard_batch_encode(&w, &h, &b) == FR_OK) {
		gossip_frame_end(&w, start, GOSSIP_PULL_REPLY, g->cfg.max_frame);
		gossip_out_push(g, p, GOSSIP_PULL_REPLY, &w);
	} else {
		fr_wbuf_fini(&w);
	}
}

bool gossip_serve_step(struct gossip *g, struct gpeer *p)
{
	struct gserve *s = p->serves;
	const struct shard_model_def *def;
	struct shard_vv_ent covers[SHARD_VV_MAX];
	struct shard_batch_hdr h;
	struct shard_batch b;
	const struct gmodel *m;
	uint64_t fixed, limit, lo, hi, *rows, *vers;
	uint32_t *orgs, k, e, flags = 0, nsent = 0;
	struct gcursor cur;
	float *sig;
	uint8_t *vals, *mem;
	size_t rb, off;
	struct fr_wbuf w;
	size_t start;
	bool last;

	if (!s)
		return false;
	if (s->flags) {
		serve_refusal_frame(g, p, s);
		remove_first_serve(p);
		return true;
	}
	m = g->models[s->model];
	def = shard_store_def(m->st);
	rb = shard_row_bytes(&def->tables[s->table]);
	fixed = reply_fixed(m, s->norig);
	limit = g->cfg.max_frame < s->budget ? g->cfg.max_frame : s->budget;
	/* The most rows [pos, pos + k) that fit this frame: binary search
	 * on the exact size.  The first frame carries at least one row
	 * (gossip_model_add made sure one fits max_frame), so every pull
	 * makes progress however small its budget. */
	lo = 0;
	hi = s->n - s->pos;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;

		if (fixed + rows_bytes(mid, rb, s->sig > 0) <= limit)
			lo = mid;
		else
			hi = mid - 1;
	}
	k = (uint32_t)lo;
	if (k == 0 && s->pos < s->n && s->seq == 0)
		k = 1;
	e = s->pos + k;
	/* Last when the list is done, or when the budget left after this
	 * frame could not carry another row. */
	last = e >= s->n;
	if (!last) {
		uint64_t used = fixed + rows_bytes(k, rb, s->sig > 0);
		uint64_t left = s->budget > used ? s->budget - used : 0;

		if (left < fixed + rows_bytes(1, rb, s->sig > 0))
			last = true;
	}
	/* Scratch: rows, versions, origins, significance, values. */
	off = (size_t)k * 8 * 2 + (size_t)k * 4 * 2 + 16;
	mem = gossip_scratch(g, off + (size_t)k * rb + 8);
	if (!mem)
		return false;           /* retried on the next pump */
	rows = (uint64_t *)mem;
	vers = rows + k;
	orgs = (uint32_t *)(vers + k);
	sig = (float *)(orgs + k);
	vals = mem + off;
	for (uint32_t i = 0; i < k; i++) {
		const struct shard_change *c = &s->c[s->pos + i];
		uint64_t v;
		uint32_t o;

		/* The row as it is now: a newer value supersedes the listed
		 * one (and still keeps every promise the covers make). */
		shard_store_row_version(m->st, s->table, c->row, &v, &o);
		if (v == 0)
			continue;
		rows[nsent] = c->row;
		vers[nsent] = v;
		orgs[nsent] = o;
		sig[nsent] = s->sig;
		memcpy(vals + (size_t)nsent * rb,
		       shard_store_row(m->st, s->table, c->row), rb);
		nsent++;
	}
	memset(&h, 0, sizeof(h));
	memcpy(h.model, m->name, m->name_len);
	h.dtype = def->tables[s->table].dtype;
	h.dim = def->tables[s->table].dim;
	memset(&b, 0, sizeof(b));
	b.table = s->table;
	b.shard = s->shard;
	b.n = nsent;
	b.rows = rows;
	b.versions = vers;
	b.origins = orgs;
	b.significance = s->sig > 0 ? sig : NULL;
	b.values = vals;
	b.covers = covers;
	b.ncovers = serve_covers(s, e, covers);
	if (last)
		flags |= GOSSIP_REPLY_LAST;
	/* The budget ended the pull before the list did: say so, so that a
	 * requester repairing the shard knows it did not get it whole. */
	if (last && e < s->n_all)
		flags |= GOSSIP_REPLY_MORE;
	/* Cut between rows of one version: hand out a cursor, but only if
	 * we hold all of that version (S[o] >= x), or the requester would
	 * skip rows we never had. */
	if (last && e < s->n_all && e > 0) {
		const struct shard_change *prev = &s->c[e - 1];
		const struct shard_change *next = e < s->n ? &s->c[e]
							   : &s->after;
		const struct gserve_orig *o = NULL;

		for (uint32_t i = 0; i < s->norig; i++)
			if (s->orig[i].origin == prev->origin)
				o = &s->orig[i];
		if (o && next->origin == prev->origin &&
		    next->version == prev->version && o->s >= prev->version) {
			flags |= GOSSIP_REPLY_CURSOR;
			cur.origin = prev->origin;
			cur.version = prev->version;
			cur.row = prev->row;
		}
	}
	fr_wbuf_init(&w, (size_t)(fixed + rows_bytes(nsent, rb, s->sig > 0)),
		     0);
	start = gossip_frame_begin(&w);
	reply_hdr(&w, s->req_id, flags, s->seq);
	if (flags & GOSSIP_REPLY_CURSOR) {
		fr_wbuf_u32(&w, cur.origin);
		fr_wbuf_u32(&w, 0);
		fr_wbuf_u64(&w, cur.version);
		fr_wbuf_u64(&w, cur.row);
	}
	if (shard_batch_encode(&w, &h, &b) != FR_OK || w.len > g->cfg.max_frame) {
		/* Cannot happen with the sizes checked above; if it does,
		 * the requester times out and pulls again. */
		fr_log(FR_LOG_ERROR, "gossip", "reply to peer %u not built: %s",
		       p->id, fr_errmsg());
		fr_wbuf_fini(&w);
		remove_first_serve(p);
		return true;
	}
	gossip_frame_end(&w, start, GOSSIP_PULL_REPLY, g->cfg.max_frame);
	s->budget -= w.len < s->budget ? w.len : s->budget;
	s->pos = e;
	s->seq++;
	gossip_out_push(g, p, GOSSIP_PULL_REPLY, &w);
	if (last)
		remove_first_serve(p);
	return true;
}

/* ========================================================================
 * PULL_REPLY in
 * ===================================================================== */

struct reply_msg {
	uint64_t req_id;
	uint32_t flags, seq;
	struct gcursor cursor;
	struct shard_batch_hdr h;
	struct shard_batch b;
};

static enum fr_err reply_decode(const uint8_t *pl, size_t len,
				struct reply_msg *m)
{
	struct fr_rbuf r;
	enum fr_err err;

	fr_rbuf_init(&r, pl, len);
	m->req_id = fr_rbuf_u64(&r);
	m->flags = fr_rbuf_u32(&r);
	m->seq = fr_rbuf_u32(&r);
	if (r.err)
		return fr_fail(FR_ERR_TRUNC, "PULL_REPLY: %zu bytes; expected at least %d",
			       len, GOSSIP_REPLY_FIXED);
	if (m->flags & ~GOSSIP_REPLY_FLAGS)
		return fr_fail(FR_ERR_CORRUPT, "PULL_REPLY field 'flags': 0x%x; expected bits 0..4 only",
			       m->flags);
	if (m->flags & (GOSSIP_REPLY_NOMODEL | GOSSIP_REPLY_BUSY |
			GOSSIP_REPLY_CURSOR | GOSSIP_REPLY_MORE) &&
	    !(m->flags & GOSSIP_REPLY_LAST))
		return fr_fail(FR_ERR_CORRUPT, "PULL_REPLY field 'flags': 0x%x; NOMODEL, BUSY, CURSOR and MORE need LAST",
			       m->flags);
	if (m->flags & GOSSIP_REPLY_CURSOR) {
		err = read_cursor(&r, "PULL_REPLY", &m->cursor);
		if (err)
			return err;
	}
	/* The batch decodes in place: its offset (16 or 40) keeps the
	 * payload's 8-byte alignment. */
	err = shard_batch_decode(pl + r.off, len - r.off, &m->h, &m->b);
	if (err)
		return err;
	if (m->flags & (GOSSIP_REPLY_NOMODEL | GOSSIP_REPLY_BUSY) &&
	    (m->b.n || m->b.ncovers))
		return fr_fail(FR_ERR_CORRUPT, "PULL_REPLY: a NOMODEL/BUSY reply carries %u rows and %u covers; expected none",
			       m->b.n, m->b.ncovers);
	return FR_OK;
}

static void notify_peers(struct gossip *g, uint32_t model)
{
	for (uint32_t i = 0; i < g->npeers; i++)
		if (g->peers[i]->up)
			gossip_send_delta(g, g->peers[i], (int)model);
}

/* Did the peer that served c advertise our rollback epoch (or later) for
 * the shard? */
static bool p_epoch_ok(struct gossip *g, const struct gcand *c,
		       uint32_t peer)
{
	const struct gmodel *m = g->models[c->model];
	struct shard_digest_entry e;

	shard_store_digest_entry(m->st, c->table, c->shard, &e);
	for (uint32_t i = 0; i < c->nhave; i++)
		if (c->have[i].peer == peer)
			return c->have[i].epoch >= e.rollback_epoch;
	return false;
}

enum fr_err gossip_on_pull_reply(struct gossip *g, struct gpeer *p,
				 const uint8_t *pl, size_t len, uint64_t now)
{
	const struct shard_model_def *def;
	struct shard_apply_result res;
	struct reply_msg rm;
	struct shard_batch bb;
	struct gmodel *m;
	struct gcand *c;
	uint64_t seq0;
	enum fr_err err;

	err = reply_decode(pl, len, &rm);
	if (err)
		return err;
	c = gossip_inflight_find(g, p->id, rm.req_id);
	if (!c) {
		/* Late (after a timeout) or repeated: harmless. */
		g->stale_replies++;
		return FR_OK;
	}
	m = g->models[c->model];
	def = shard_store_def(m->st);
	if (m->quarantined) {
		/* Asked before the quarantine: the reply may not even fit
		 * our definition.  Drop it, no blame. */
		gossip_pull_end(g, c, false, now);
		return FR_OK;
	}
	if (strncmp(rm.h.model, m->name, sizeof(rm.h.model)) != 0 ||
	    rm.b.table != c->table || rm.b.shard != c->shard) {
		gossip_pull_end(g, c, true, now);
		return fr_fail(FR_ERR_PROTO, "PULL_REPLY %llu: model '%s' table %u shard %u; expected '%s' %u %u",
			       (unsigned long long)rm.req_id, rm.h.model,
			       rm.b.table, rm.b.shard, m->name, c->table,
			       c->shard);
	}
	if (rm.flags & GOSSIP_REPLY_NOMODEL) {
		gossip_cand_drop_have(g, c, p->id);
		gossip_pull_end(g, c, false, now);
		return FR_OK;
	}
	if (rm.flags & GOSSIP_REPLY_BUSY) {
		p->st.retries++;
		g->st.retries++;
		gossip_pull_end(g, c, true, now);
		return FR_OK;
	}
	if (rm.h.dtype != def->tables[c->table].dtype ||
	    rm.h.dim != def->tables[c->table].dim) {
		gossip_pull_end(g, c, true, now);
		return fr_fail(FR_ERR_PROTO, "PULL_REPLY %llu: dtype %d dim %u; expected %d %u",
			       (unsigned long long)rm.req_id, (int)rm.h.dtype,
			       rm.h.dim, (int)def->tables[c->table].dtype,
			       def->tables[c->table].dim);
	}
	if (rm.seq < c->next_seq)
		return FR_OK;           /* a duplicate */
	if (rm.seq > c->next_seq)
		c->broken = true;       /* one went missing */
	c->next_seq = rm.seq + 1;
	c->last_ms = now;
	bb = rm.b;
	if (c->broken) {
		/* Covers may promise rows of the missing reply: rows only. */
		bb.ncovers = 0;
		bb.covers = NULL;
	}
	err = shard_vv_copy(&g->tmp_vv, shard_store_vv(m->st, c->table,
						       c->shard));
	if (err)
		return err;
	seq0 = shard_store_change_seq(m->st);
	memset(&res, 0, sizeof(res));
	err = g->hooks.apply(g->hooks.arg, p->id, m->st, &bb, &res);
	g->st.rows_applied += res.applied;
	g->st.rows_stale += res.stale;
	g->st.rows_refused += res.refused;
	p->st.pull_bytes_in += len + SHARD_FRAME_HDR_BYTES;
	if (shard_store_change_seq(m->st) != seq0) {
		gossip_log_note(g, m, c->table, c->shard);
		c->changed = true;
	}
	if (!shard_vv_equal(&g->tmp_vv,
			    shard_store_vv(m->st, c->table, c->shard)) &&
	    g->hooks.advanced)
		g->hooks.advanced(g->hooks.arg, m->st, c->table, c->shard);
	if (err) {
		/* The store refused the batch whole (rows outside the shard,
		 * too many origins): the peer sent nonsense. */
		gossip_pull_end(g, c, true, now);
		return err;
	}
	if (rm.flags & GOSSIP_REPLY_LAST) {
		uint32_t model = c->model;
		bool changed = c->changed;

		if (!c->broken) {
			c->has_cursor = (rm.flags & GOSSIP_REPLY_CURSOR) != 0;
			if (c->has_cursor)
				c->cursor = rm.cursor;
		}
		/* A repair ends with a pull that came whole (no MORE, no
		 * cursor, no reply missing) from a peer at our epoch: it sent
		 * every row of the shard. */
		if (!c->broken && !c->has_cursor &&
		    !(rm.flags & GOSSIP_REPLY_MORE) &&
		    gmodel_repairing(m, c->table, c->shard) &&
		    p_epoch_ok(g, c, p->id)) {
			m->repair[(size_t)c->table * m->shards + c->shard] = 0;
			m->nrepair--;
			m->repairs_done++;
		} else if ((rm.flags & GOSSIP_REPLY_MORE) &&
			   gmodel_repairing(m, c->table, c->shard)) {
			/* The shard is larger than a whole pull: pulling it
			 * again at once would only repeat this one.  Forget
			 * this peer for it until its next full digest. */
			gossip_cand_drop_have(g, c, p->id);
		}
		gossip_pull_end(g, c, false, now);
		/* We learnt something: tell the others now (push-notify
		 * relays, so a change crosses hops in round trips). */
		if (changed)
			notify_peers(g, model);
	}
	return FR_OK;
}
