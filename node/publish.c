/*
 * publish.c — the two client requests a node serves, PUBLISH and LOOKUP,
 * and the idempotency map that makes a retried publish safe.
 *
 * PUBLISH, all on the loop thread:
 *
 *   decode -> validate (model, table, n, dim, row ids, finite values)
 *     -> repeated idempotency key?  ack the original (or wait for it)
 *     -> queue full?                ack BUSY + retry_after_ms
 *     -> v = fr_hlc_now(); rows grouped by shard (last copy of a repeated
 *        row wins), f32 -> table dtype, significance = L2 norm of
 *        (new - current) per row
 *     -> WAL record (persist.c) -> shard_wal_append -> pending[lsn]
 *   ... WAL writer syncs a group, durable_cb posts to the mailbox ...
 *   node_durable_process: for each pending with lsn <= durable, in LSN
 *     order: apply its batches (store + backend mirror), tell gossip,
 *     PUBLISH_ACK(FR_OK, v, self) if the client is still connected.
 *
 * So an ack always means "durable here", and peers hear of a publish only
 * once it is durable.  LOOKUP reads the table backend (what inference
 * serves) and the store's row versions.
 *
 * Not here: framing and HELLO (net.c), the record format (persist.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "node/baseline.h"
#include "node/node_int.h"

#define IDEM_CAP 65536u          /* keys remembered (FIFO) */
#define IDEM_BUCKETS 131072u     /* power of two */

/* ========================================================================
 * Idempotency map: a FIFO ring of the last IDEM_CAP keys with a chained
 * hash index.  lsn is the WAL record that carries the key; while it is
 * above applied_lsn the original publish is still waiting for the disk.
 * ===================================================================== */
struct idem_ent {
	char key[PROTO_KEY_MAX + 1];
	uint8_t key_len;
	bool used;
	uint32_t origin;
	uint64_t version;
	uint64_t lsn;
	int32_t next;            /* next in bucket, -1: end */
};

struct node_idem {
	struct idem_ent *ent;    /* IDEM_CAP */
	int32_t *bucket;         /* IDEM_BUCKETS */
	uint32_t head;           /* slot written next (oldest when full) */
	uint32_t count;
};

/* Clients choose the keys, so the hash is seeded per process: nobody
 * can aim a set of keys at one bucket. */
static uint32_t idem_hash(const char *k, size_t len)
{
	return (uint32_t)fr_hash64(k, len, fr_hash_seed()) &
	       (IDEM_BUCKETS - 1);
}

enum fr_err node_idem_new(struct node *n)
{
	struct node_idem *m = calloc(1, sizeof(*m));

	if (!m)
		return fr_fail(FR_ERR_NOMEM, "idempotency map");
	m->ent = calloc(IDEM_CAP, sizeof(*m->ent));
	m->bucket = malloc(IDEM_BUCKETS * sizeof(*m->bucket));
	if (!m->ent || !m->bucket) {
		free(m->ent);
		free(m->bucket);
		free(m);
		return fr_fail(FR_ERR_NOMEM, "idempotency map");
	}
	for (uint32_t i = 0; i < IDEM_BUCKETS; i++)
		m->bucket[i] = -1;
	n->dur.idem = m;
	return FR_OK;
}

void node_idem_free(struct node *n)
{
	if (!n->dur.idem)
		return;
	free(n->dur.idem->ent);
	free(n->dur.idem->bucket);
	free(n->dur.idem);
	n->dur.idem = NULL;
}

static struct idem_ent *idem_get(struct node_idem *m, const char *key,
				 size_t len)
{
	for (int32_t i = m->bucket[idem_hash(key, len)]; i >= 0;
	     i = m->ent[i].next)
		if (m->ent[i].key_len == len &&
		    memcmp(m->ent[i].key, key, len) == 0)
			return &m->ent[i];
	return NULL;
}

static void idem_unlink(struct node_idem *m, int32_t slot)
{
	struct idem_ent *e = &m->ent[slot];
	int32_t *pp = &m->bucket[idem_hash(e->key, e->key_len)];

	while (*pp >= 0 && *pp != slot)
		pp = &m->ent[*pp].next;
	if (*pp == slot)
		*pp = e->next;
	e->used = false;
	m->count--;
}

void node_idem_put(struct node *n, const char *key, size_t key_len,
		   uint64_t version, uint32_t origin, uint64_t lsn)
{
	struct node_idem *m = n->dur.idem;
	struct idem_ent *e;
	uint32_t b;
	int32_t slot;

	if (key_len == 0 || key_len > PROTO_KEY_MAX || idem_get(m, key, key_len))
		return;
	slot = (int32_t)m->head;
	m->head = (m->head + 1) % IDEM_CAP;
	if (m->ent[slot].used)
		idem_unlink(m, slot);   /* forget the oldest */
	e = &m->ent[slot];
	memcpy(e->key, key, key_len);
	e->key[key_len] = '\0';
	e->key_len = (uint8_t)key_len;
	e->version = version;
	e->origin = origin;
	e->lsn = lsn;
	e->used = true;
	b = idem_hash(key, key_len);
	e->next = m->bucket[b];
	m->bucket[b] = slot;
	m->count++;
}

void node_idem_foreach(struct node *n,
		       void (*fn)(const char *key, uint64_t version,
				  uint32_t origin, void *arg),
		       void *arg)
{
	struct node_idem *m = n->dur.idem;

	/* Oldest first, so a reload keeps the same eviction order. */
	for (uint32_t k = 0; k < IDEM_CAP; k++) {
		struct idem_ent *e = &m->ent[(m->head + k) % IDEM_CAP];

		/* Keys of publishes not applied yet are not in this
		 * snapshot; the WAL still has them. */
		if (e->used && e->lsn <= n->dur.applied_lsn)
			fn(e->key, e->version, e->origin, arg);
	}
}

uint32_t node_idem_count(const struct node *n)
{
	const struct node_idem *m = n->dur.idem;
	uint32_t c = 0;

	for (uint32_t k = 0; k < IDEM_CAP; k++)
		if (m->ent[k].used && m->ent[k].lsn <= n->dur.applied_lsn)
			c++;
	return c;
}

/* ========================================================================
 * Replies
 * ===================================================================== */

static void send_ack(struct node_conn *c, uint64_t req_id, enum fr_err st,
		     uint32_t retry_ms, uint64_t version, const char *msg)
{
	struct proto_publish_ack a = {
		.req_id = req_id,
		.status = st,
		.retry_after_ms = retry_ms,
		.origin = st == FR_OK ? c->node->cfg->node_id : 0,
		.version = st == FR_OK ? version : 0,
	};
	struct fr_wbuf w;

	if (msg)
		snprintf(a.msg, sizeof(a.msg), "%s", msg);
	fr_wbuf_init(&w, 128 + strlen(a.msg), 0);
	if (proto_publish_ack_encode(&w, &a) == FR_OK)
		node_conn_send(c, &w);
	else
		fr_log(FR_LOG_ERROR, "publish", "ack encode: %s", fr_errmsg());
	fr_wbuf_fini(&w);
}

/* Refuse a publish: count it by kind and reply with the detail. */
static void refuse(struct node_conn *c, uint64_t req_id, enum fr_err st,
		   enum metrics_pub_status kind, const char *msg)
{
	struct node *n = c->node;

	n->metrics.publish[kind]++;
	fr_log(FR_LOG_DEBUG, "publish", "%s req %llu: %s: %s", c->name,
	       (unsigned long long)req_id, fr_strerror(st), msg);
	send_ack(c, req_id, st, st == FR_ERR_BUSY ? n->cfg->retry_after_ms : 0,
		 0, msg);
}

/* A request whose frame was whole but whose fields were not: count it,
 * say why, and drop clients that keep doing it. */
static bool bad_request(struct node_conn *c, const char *what, enum fr_err rc)
{
	struct node *n = c->node;
	char msg[PROTO_ERRMSG_MAX + 1];

	snprintf(msg, sizeof(msg), "%s: %s", what, fr_errmsg());
	n->metrics.client_bad_frames++;
	n->metrics.bad_by_err[-rc < FR_ERR__COUNT ? -rc : 0]++;
	c->bad_frames++;
	fr_log(FR_LOG_DEBUG, "net", "%s: bad %s", c->name, msg);
	node_conn_send_error(c, 0, rc, msg);
	return c->bad_frames < NODE_BAD_FRAMES_MAX;
}

/* ========================================================================
 * PUBLISH
 * ===================================================================== */

struct pub_ent {
	uint64_t row;
	uint32_t shard;
	uint32_t idx;
};

static int pub_ent_cmp(const void *a, const void *b)
{
	const struct pub_ent *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Validate m against the schema; on failure fill msg and return the code. */
static enum fr_err publish_validate(struct node *n,
				    const struct proto_publish *m, int *mi,
				    int *ti, char *msg, size_t cap)
{
	const struct shard_model_def *def;
	const struct shard_table_def *td;

	*mi = node_model_find(n, m->model);
	if (*mi < 0) {
		snprintf(msg, cap, "model '%s': not served by node %u",
			 m->model, n->cfg->node_id);
		return FR_ERR_NOTFOUND;
	}
	def = n->models[*mi].def;
	*ti = shard_model_table_index(def, m->table);
	if (*ti < 0) {
		snprintf(msg, cap, "model '%s' table '%s': no such table",
			 m->model, m->table);
		return FR_ERR_NOTFOUND;
	}
	td = &def->tables[*ti];
	if (m->n == 0 || m->n > n->cfg->publish_max_rows) {
		snprintf(msg, cap, "n: %u rows, expected 1..%u "
			 "(publish.max_rows)", m->n, n->cfg->publish_max_rows);
		return m->n ? FR_ERR_TOOBIG : FR_ERR_INVAL;
	}
	if (m->dim != td->dim) {
		snprintf(msg, cap, "model '%s' table '%s': %u values per row, "
			 "expected dim %u", m->model, m->table, m->dim,
			 td->dim);
		return FR_ERR_INVAL;
	}
	for (uint32_t i = 0; i < m->n; i++) {
		if (m->rows[i] >= td->rows) {
			snprintf(msg, cap, "rows[%u] = %llu, expected < %llu "
				 "(table '%s' rows)", i,
				 (unsigned long long)m->rows[i],
				 (unsigned long long)td->rows, m->table);
			return FR_ERR_RANGE;
		}
	}
	for (uint64_t i = 0; i < (uint64_t)m->n * m->dim; i++) {
		if (!isfinite(m->values[i])) {
			snprintf(msg, cap, "values[%llu] (row %llu): not a "
				 "finite number", (unsigned long long)i,
				 (unsigned long long)m->rows[i / m->dim]);
			return FR_ERR_INVAL;
		}
	}
	return FR_OK;
}

/* Build the WAL record of a validated publish stamped with version v. */
static enum fr_err publish_build(struct node *n, const struct proto_publish *m,
				 int mi, int ti, uint64_t v, struct fr_wbuf *w)
{
	const struct shard_model_def *def = n->models[mi].def;
	const struct shard_table_def *td = &def->tables[ti];
	struct shard_store *st = n->models[mi].st;
	struct shard_vv_ent cover = { .origin = n->cfg->node_id, .version = v };
	struct shard_batch_hdr bh = { .dtype = td->dtype, .dim = td->dim };
	size_t rb = shard_row_bytes(td), k = 0, ngroups = 0, j;
	struct shard_batch *groups = NULL;
	struct pub_ent *e;
	uint64_t *rows = NULL, *vers = NULL;
	uint32_t *orgs = NULL;
	float *sig = NULL, *cur = NULL;
	uint8_t *vals = NULL;
	enum fr_err rc = FR_ERR_NOMEM;

	snprintf(bh.model, sizeof(bh.model), "%s", def->name);
	e = malloc((size_t)m->n * sizeof(*e));
	if (!e)
		return fr_fail(FR_ERR_NOMEM, "publish: %u rows", m->n);
	for (uint32_t i = 0; i < m->n; i++) {
		e[i].row = m->rows[i];
		e[i].shard = shard_of_row(m->rows[i], def->shards);
		e[i].idx = i;
	}
	qsort(e, m->n, sizeof(*e), pub_ent_cmp);
	/* Keep the last copy of a row repeated within one publish: the one
	 * a client sending them in order means. */
	for (uint32_t i = 0; i < m->n; i++) {
		if (i + 1 < m->n && e[i + 1].row == e[i].row)
			continue;
		e[k++] = e[i];
	}
	rows = malloc(k * sizeof(*rows));
	vers = malloc(k * sizeof(*vers));
	orgs = malloc(k * sizeof(*orgs));
	sig = malloc(k * sizeof(*sig));
	cur = malloc((size_t)td->dim * sizeof(*cur));
	vals = malloc(k * rb);
	groups = malloc(k * sizeof(*groups));
	if (!rows || !vers || !orgs || !sig || !cur || !vals || !groups) {
		fr_fail(FR_ERR_NOMEM, "publish: %zu rows", k);
		goto out_free;
	}
	for (j = 0; j < k; j++) {
		const float *src = m->values + (size_t)e[j].idx * td->dim;
		const void *old = shard_store_row(st, (uint32_t)ti, e[j].row);
		double ss = 0;

		rows[j] = e[j].row;
		vers[j] = v;
		orgs[j] = n->cfg->node_id;
		if (td->dtype == SHARD_F16) {
			fr_f32_to_f16_n(src, (uint16_t *)(vals + j * rb),
					td->dim);
			fr_f16_to_f32_n(old, cur, td->dim);
		} else {
			memcpy(vals + j * rb, src, rb);
			memcpy(cur, old, rb);
		}
		for (uint32_t d = 0; d < td->dim; d++) {
			double diff = (double)src[d] - (double)cur[d];

			ss += diff * diff;
		}
		sig[j] = (float)sqrt(ss);
		if (j == 0 || e[j].shard != e[j - 1].shard) {
			groups[ngroups] = (struct shard_batch){
				.table = (uint32_t)ti,
				.shard = e[j].shard,
				.rows = rows + j,
				.versions = vers + j,
				.origins = orgs + j,
				.significance = sig + j,
				.values = vals + j * rb,
				.ncovers = 1,
				.covers = &cover,
			};
			ngroups++;
		}
		groups[ngroups - 1].n++;
	}
	rc = node_walrec_encode(w, def->name, m->key, v, n->cfg->node_id, &bh,
				groups, (uint32_t)ngroups);
out_free:
	free(groups);
	free(vals);
	free(cur);
	free(sig);
	free(orgs);
	free(vers);
	free(rows);
	free(e);
	return rc;
}

/* A repeated key whose first copy is still waiting for the WAL: ack it
 * right after the original, in the same pass. */
static bool publish_wait_original(struct node_conn *c, uint64_t req_id,
				  const struct idem_ent *ie)
{
	struct node *n = c->node;
	struct node_pending *p, *q;

	for (p = n->dur.pend_head; p; p = p->next)
		if (!p->ack_only && p->lsn == ie->lsn)
			break;
	if (!p)
		return false;
	q = calloc(1, sizeof(*q));
	if (!q)
		return false;
	q->lsn = p->lsn;
	q->conn = c;
	q->req_id = req_id;
	q->t0_ns = fr_mono_ns();
	q->model = p->model;
	q->version = p->version;
	q->ack_only = true;
	q->next = p->next;
	p->next = q;
	if (n->dur.pend_tail == p)
		n->dur.pend_tail = q;
	c->pending++;
	n->dur.npending_dups++;
	return true;
}

bool node_publish_handle(struct node_conn *c, const uint8_t *p, size_t len)
{
	struct node *n = c->node;
	char msg[PROTO_ERRMSG_MAX + 1];
	struct node_pending *pd;
	struct proto_publish m;
	struct idem_ent *ie;
	uint64_t v, lsn, t0 = fr_mono_ns();
	struct fr_wbuf w;
	enum fr_err rc;
	int mi, ti;

	rc = proto_publish_decode(p, len, &m);
	if (rc) {
		n->metrics.publish[METRICS_PUB_INVALID]++;
		return bad_request(c, "PUBLISH", rc);
	}
	if (n->stop.stopping) {
		refuse(c, m.req_id, FR_ERR_CLOSED, METRICS_PUB_ERROR,
		       "node is shutting down; publish to another node");
		return true;
	}
	rc = publish_validate(n, &m, &mi, &ti, msg, sizeof(msg));
	if (rc) {
		refuse(c, m.req_id, rc, METRICS_PUB_INVALID, msg);
		return true;
	}
	if (m.key[0]) {
		ie = idem_get(n->dur.idem, m.key, strlen(m.key));
		if (ie && ie->lsn <= n->dur.applied_lsn) {
			n->metrics.publish[METRICS_PUB_DUPLICATE]++;
			send_ack(c, m.req_id, FR_OK, 0, ie->version, NULL);
			return true;
		}
		if (ie && n->dur.npending_dups >= n->cfg->publish_queue_max) {
			/* Retries of publishes still waiting for the disk
			 * are bounded like the publishes themselves. */
			snprintf(msg, sizeof(msg), "%u repeated publishes "
				 "waiting for their originals; retry after "
				 "%u ms", n->dur.npending_dups,
				 n->cfg->retry_after_ms);
			refuse(c, m.req_id, FR_ERR_BUSY, METRICS_PUB_BUSY, msg);
			return true;
		}
		if (ie && publish_wait_original(c, m.req_id, ie)) {
			n->metrics.publish[METRICS_PUB_DUPLICATE]++;
			return true;
		}
	}
	if (n->dur.npending >= n->cfg->publish_queue_max) {
		snprintf(msg, sizeof(msg), "%u publishes waiting for the WAL "
			 "(publish.queue_max %u); retry after %u ms",
			 n->dur.npending, n->cfg->publish_queue_max,
			 n->cfg->retry_after_ms);
		refuse(c, m.req_id, FR_ERR_BUSY, METRICS_PUB_BUSY, msg);
		return true;
	}

	/* Allocate before appending: a record in the WAL without its
	 * pending entry would never be applied here, and once a later
	 * record moved applied_lsn past it, a snapshot would claim it and
	 * the truncated log would drop it. */
	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		refuse(c, m.req_id, FR_ERR_NOMEM, METRICS_PUB_ERROR,
		       "out of memory");
		return true;
	}
	v = fr_hlc_now(&n->hlc);
	fr_wbuf_init(&w, 256 + (size_t)m.n * (m.dim * 4 + 32), 0);
	rc = publish_build(n, &m, mi, ti, v, &w);
	if (!rc)
		rc = shard_wal_append(n->dur.wal, w.data, w.len, &lsn);
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", fr_errmsg());
		if (rc == FR_ERR_BUSY)
			refuse(c, m.req_id, rc, METRICS_PUB_BUSY, msg);
		else
			refuse(c, m.req_id, rc, METRICS_PUB_ERROR, msg);
		if (rc != FR_ERR_BUSY)
			fr_log(FR_LOG_ERROR, "publish", "model '%s': %s",
			       m.model, msg);
		fr_wbuf_fini(&w);
		free(pd);
		return true;
	}
	pd->lsn = lsn;
	pd->conn = c;
	pd->req_id = m.req_id;
	pd->t0_ns = t0;
	pd->model = (uint32_t)mi;
	pd->version = v;
	pd->rec = w.data;          /* the buffer becomes the pending's */
	pd->rec_len = w.len;
	if (n->dur.pend_tail)
		n->dur.pend_tail->next = pd;
	else
		n->dur.pend_head = pd;
	n->dur.pend_tail = pd;
	n->dur.npending++;
	n->dur.last_lsn = lsn;
	c->pending++;
	n->metrics.publish_rows += m.n;
	if (m.key[0])
		node_idem_put(n, m.key, strlen(m.key), v, n->cfg->node_id, lsn);
	fr_log(FR_LOG_DEBUG, "publish", "%s req %llu: %s/%s %u rows -> "
	       "version %llu lsn %llu", c->name, (unsigned long long)m.req_id,
	       m.model, m.table, m.n, (unsigned long long)v,
	       (unsigned long long)lsn);
	return true;
}

void node_durable_process(struct node *n)
{
	uint64_t durable = n->dur.wal ? shard_wal_durable_lsn(n->dur.wal) : 0;
	char msg[PROTO_ERRMSG_MAX + 1];
	struct node_pending *p;
	bool any = false;
	enum fr_err rc;

	while ((p = n->dur.pend_head) && p->lsn <= durable) {
		n->dur.pend_head = p->next;
		if (!n->dur.pend_head)
			n->dur.pend_tail = NULL;
		rc = FR_OK;
		if (!p->ack_only) {
			struct node_model *m = &n->models[p->model];

			rc = node_walrec_apply(n, m, p->rec, p->rec_len, true);
			if (rc) {
				snprintf(msg, sizeof(msg), "%s", fr_errmsg());
				fr_log(FR_LOG_ERROR, "publish", "lsn %llu: "
				       "apply failed: %s",
				       (unsigned long long)p->lsn, msg);
			}
			n->dur.npending--;
			any = true;
		} else {
			n->dur.npending_dups--;
		}
		if (p->conn) {
			if (rc) {
				send_ack(p->conn, p->req_id, rc, 0, 0, msg);
				n->metrics.publish[METRICS_PUB_ERROR]++;
			} else {
				send_ack(p->conn, p->req_id, FR_OK, 0,
					 p->version, NULL);
				if (!p->ack_only)
					n->metrics.publish[METRICS_PUB_OK]++;
			}
			fr_hist_observe(&n->metrics.publish_latency,
					     (double)(fr_mono_ns() - p->t0_ns) /
					     1e9);
			p->conn->pending--;
		}
		free(p->rec);
		free(p);
	}
	node_lsn_settle(n);
	if (any)
		node_gossip_flush(n);
}

void node_pending_forget_conn(struct node *n, struct node_conn *c)
{
	for (struct node_pending *p = n->dur.pend_head; p && c->pending; p = p->next) {
		if (p->conn == c) {
			p->conn = NULL;
			c->pending--;
		}
	}
}

/* ========================================================================
 * LOOKUP
 * ===================================================================== */

static void lookup_error(struct node_conn *c, uint64_t req_id, enum fr_err st,
			 const char *msg)
{
	struct proto_lookup_reply r = {
		.req_id = req_id,
		.status = st,
	};
	struct fr_wbuf w;

	c->node->metrics.lookup_errors++;
	snprintf(r.msg, sizeof(r.msg), "%s", msg);
	fr_wbuf_init(&w, 128 + strlen(r.msg), 0);
	if (proto_lookup_reply_encode(&w, &r, c->node->max_frame) == FR_OK)
		node_conn_send(c, &w);
	else
		node_conn_send_error(c, req_id, st, msg);
	fr_wbuf_fini(&w);
}

bool node_lookup_handle(struct node_conn *c, const uint8_t *p, size_t len)
{
	struct node *n = c->node;
	const struct shard_table_def *td;
	char msg[PROTO_ERRMSG_MAX + 1];
	struct proto_lookup_reply r;
	struct proto_lookup q;
	struct node_model *m;
	uint64_t *vers = NULL;
	uint32_t *orgs = NULL;
	float *vals = NULL;
	void *raw = NULL;
	struct fr_wbuf w;
	uint64_t t0_ns = fr_mono_ns();
	enum fr_err rc;
	size_t rb;
	int mi, ti;

	rc = proto_lookup_decode(p, len, &q);
	if (rc)
		return bad_request(c, "LOOKUP", rc);
	n->metrics.lookups++;
	mi = node_model_find(n, q.model);
	if (mi < 0) {
		snprintf(msg, sizeof(msg), "model '%s': not served by node %u",
			 q.model, n->cfg->node_id);
		lookup_error(c, q.req_id, FR_ERR_NOTFOUND, msg);
		return true;
	}
	m = &n->models[mi];
	ti = shard_model_table_index(m->def, q.table);
	if (ti < 0) {
		snprintf(msg, sizeof(msg), "model '%s' table '%s': no such "
			 "table", q.model, q.table);
		lookup_error(c, q.req_id, FR_ERR_NOTFOUND, msg);
		return true;
	}
	td = &m->def->tables[ti];
	if (q.n == 0) {
		lookup_error(c, q.req_id, FR_ERR_INVAL, "n: expected >= 1 rows");
		return true;
	}
	for (uint32_t i = 0; i < q.n; i++) {
		if (q.rows[i] >= td->rows) {
			snprintf(msg, sizeof(msg), "rows[%u] = %llu, expected "
				 "< %llu (table '%s' rows)", i,
				 (unsigned long long)q.rows[i],
				 (unsigned long long)td->rows, q.table);
			lookup_error(c, q.req_id, FR_ERR_RANGE, msg);
			return true;
		}
	}
	/* The reply must fit a frame: refuse before allocating for it. */
	if ((uint64_t)q.n * (12 + (uint64_t)td->dim * 4) + 4096 > n->max_frame) {
		snprintf(msg, sizeof(msg), "n: %u rows of dim %u do not fit "
			 "one reply frame (node.max_frame_mb %u)", q.n,
			 td->dim, n->cfg->max_frame_mb);
		lookup_error(c, q.req_id, FR_ERR_TOOBIG, msg);
		return true;
	}
	rb = shard_row_bytes(td);
	vers = malloc((size_t)q.n * sizeof(*vers));
	orgs = malloc((size_t)q.n * sizeof(*orgs));
	vals = malloc((size_t)q.n * td->dim * sizeof(*vals));
	raw = td->dtype == SHARD_F16 ? malloc((size_t)q.n * rb) : vals;
	if (!vers || !orgs || !vals || !raw) {
		lookup_error(c, q.req_id, FR_ERR_NOMEM, "out of memory");
		goto out_free;
	}
	rc = m->tables[ti].gt ? gpu_gather(m->tables[ti].gt, q.rows, q.n, raw)
			      : fr_fail(FR_ERR_GPU, "table '%s' has no backend "
					"table (its rebuild failed)", td->name);
	if (rc == FR_ERR_GPU && m->tables[ti].gt &&
	    node_table_rebuild(c->node, m, (uint32_t)ti))
		rc = gpu_gather(m->tables[ti].gt, q.rows, q.n, raw);
	if (rc) {
		snprintf(msg, sizeof(msg), "backend gather: %s", fr_errmsg());
		lookup_error(c, q.req_id, rc, msg);
		goto out_free;
	}
	if (td->dtype == SHARD_F16)
		fr_f16_to_f32_n(raw, vals, (size_t)q.n * td->dim);
	for (uint32_t i = 0; i < q.n; i++) {
		shard_store_row_version(m->st, (uint32_t)ti, q.rows[i],
					&vers[i], &orgs[i]);
		if (m->bl) {
			/* A baseline serves older values than its store
			 * holds: report the version it serves (its origin
			 * only when that is the store's row too). */
			uint64_t sv = node_baseline_served_version(m->bl,
							      (uint32_t)ti,
							      q.rows[i]);

			if (sv != vers[i])
				orgs[i] = 0;
			vers[i] = sv;
		}
	}
	r = (struct proto_lookup_reply){
		.req_id = q.req_id,
		.status = FR_OK,
		.n = q.n,
		.dim = td->dim,
		.versions = vers,
		.origins = orgs,
		.values = vals,
	};
	fr_wbuf_init(&w, 64 + (size_t)q.n * (12 + (size_t)td->dim * 4), 0);
	rc = proto_lookup_reply_encode(&w, &r, n->max_frame);
	if (rc == FR_OK) {
		n->metrics.lookup_rows += q.n;
		node_conn_send(c, &w);
		fr_hist_observe(&n->metrics.lookup_latency,
				(double)(fr_mono_ns() - t0_ns) / 1e9);
	} else {
		snprintf(msg, sizeof(msg), "reply: %s", fr_errmsg());
		lookup_error(c, q.req_id, rc, msg);
	}
	fr_wbuf_fini(&w);
out_free:
	if (raw != vals)
		free(raw);
	free(vals);
	free(orgs);
	free(vers);
	return true;
}
