/*
 * rollback.c — a node's part in a rollback (docs/design.md §6): applying
 * the directives ZooKeeper lists for a model.
 *
 * A directive {T, R, epoch} newer than the store's epoch is applied at
 * once, in epoch order: the store puts every row changed in (T, R] back
 * from its undo rings and revokes (T, R]; the restored rows are written
 * to the backend (for a baseline: only where it already served a revoked
 * value; its queue drops (T, R]); shards whose ring does not reach back
 * are reset (revoked rows zeroed, vector emptied) and filled again by a
 * full transfer from peers at the new epoch (gossip never pulls from a
 * peer at a lower epoch, so nobody re-infects us).  The HLC moves past
 * R, so what this node accepts afterwards is never revoked by this
 * directive.  A snapshot is started at once so that the rollback
 * survives a crash; until it is on disk a restart replays the old rows,
 * and the directive, still in ZooKeeper, is applied again before any
 * peer is dialed (membership.c applies models before peers).
 *
 * Not here: roles, the baseline's buffer and the status we publish
 * (roles.c).  Everything here runs on the loop thread.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <xxhash.h>

#include "node/baseline.h"
#include "node/node_int.h"

#define MOD "node"

/* ========================================================================
 * Rollback directives
 * ===================================================================== */

struct rb_ctx {
	struct node *n;
	struct node_model *m;
	uint64_t rows;
	bool failed;
	uint64_t *ids;            /* baseline filter scratch */
	uint8_t *vals;
	size_t cap, vcap;
};

/* Restored (or zeroed) rows of one shard: the backend follows, gossip
 * hears of the shard. */
static void restored_cb(uint32_t t, const uint64_t *rows, const void *values,
			uint32_t k, void *arg)
{
	struct rb_ctx *x = arg;
	struct node_model *m = x->m;
	struct node_table *tab = &m->tables[t];
	size_t rb = shard_row_bytes(&m->def->tables[t]);
	enum fr_err rc = FR_OK;

	x->rows += k;
	if (k)
		gossip_note_local_change(x->n->gossip, m->st, t,
					 shard_of_row(rows[0],
						      m->def->shards));
	if (!tab->gt || k == 0)
		return;
	if (!m->bl) {
		rc = gpu_restore(tab->gt, rows, values, k);
	} else {
		/* A baseline serves older values than its store: only rows
		 * whose served value is revoked change now; the queue holds
		 * the rest. */
		uint64_t vers[1];
		uint32_t j = 0;

		if (x->cap < k) {
			uint64_t *a = realloc(x->ids, k * sizeof(*a));

			if (!a) {
				x->failed = true;
				return;
			}
			x->ids = a;
			x->cap = k;
		}
		if (x->vcap < (size_t)k * rb) {
			uint8_t *a = realloc(x->vals, (size_t)k * rb);

			if (!a) {
				x->failed = true;
				return;
			}
			x->vals = a;
			x->vcap = (size_t)k * rb;
		}
		for (uint32_t i = 0; i < k; i++) {
			uint64_t sv = node_baseline_served_version(m->bl, t, rows[i]);

			if (!sv || !shard_store_is_revoked(m->st, sv))
				continue;
			x->ids[j] = rows[i];
			memcpy(x->vals + (size_t)j * rb,
			       (const uint8_t *)values + (size_t)i * rb, rb);
			j++;
		}
		if (j)
			rc = gpu_restore(tab->gt, x->ids, x->vals, j);
		for (uint32_t i = 0; i < j; i++) {
			uint32_t o;

			shard_store_row_version(m->st, t, x->ids[i], &vers[0],
						&o);
			node_baseline_note_served(m->bl, t, &x->ids[i], vers, 1);
		}
	}
	if (rc != FR_OK) {
		fr_log(FR_LOG_ERROR, MOD, "model '%s' table %u: backend "
		       "restore of %u rows failed: %s; rebuilding the table "
		       "from the store", m->def->name, t, k, fr_errmsg());
		node_table_rebuild(x->n, m, t);
	}
}

enum fr_err node_rollback_apply(struct node *n, struct node_model *m,
				const struct topo_rollback *d)
{
	struct shard_rollback_report rep = { 0 };
	struct rb_ctx x = { .n = n, .m = m };
	uint64_t t0 = fr_mono_ns(), zeroed = 0, restored;
	enum fr_err rc;
	double secs;

	if (d->epoch <= shard_store_rollback_epoch(m->st))
		return FR_OK;
	rc = shard_store_rollback(m->st, d->t, d->r, d->epoch, restored_cb,
				  &x, &rep);
	if (rc != FR_OK && rc != FR_ERR_NOUNDO) {
		shard_rollback_report_fini(&rep);
		return fr_fail(rc, "model '%s': rollback epoch %llu: %s",
			       m->def->name, (unsigned long long)d->epoch,
			       fr_errmsg());
	}
	restored = x.rows;
	for (uint32_t i = 0; i < rep.nnoundo; i++) {
		uint64_t z = 0;
		enum fr_err e;

		e = shard_store_reset_shard(m->st, rep.noundo[i].table,
					    rep.noundo[i].shard, d->epoch,
					    restored_cb, &x, &z);
		if (e) {
			fr_log(FR_LOG_ERROR, MOD, "model '%s' table %u shard "
			       "%u: reset for a full transfer failed: %s",
			       m->def->name, rep.noundo[i].table,
			       rep.noundo[i].shard, fr_errmsg());
			continue;
		}
		gossip_note_local_change(n->gossip, m->st,
					 rep.noundo[i].table,
					 rep.noundo[i].shard);
		if (gossip_shard_repair(n->gossip, m->st, rep.noundo[i].table,
					rep.noundo[i].shard) != FR_OK)
			fr_log(FR_LOG_ERROR, MOD, "model '%s' table %u shard "
			       "%u: cannot ask for a full transfer: %s",
			       m->def->name, rep.noundo[i].table,
			       rep.noundo[i].shard, fr_errmsg());
		zeroed += z;
	}
	if (m->bl)
		node_baseline_revoke(m->bl, d->t, d->r);
	/* Whatever this node stamps from now on is above R. */
	if (fr_hlc_observe(&n->hlc, d->r) != FR_OK)
		fr_log(FR_LOG_WARN, MOD, "model '%s': rollback epoch %llu: "
		       "revoke-until %llu is ahead of this node's clock by "
		       "more than the drift bound; publishes here may be "
		       "revoked until the clock passes it", m->def->name,
		       (unsigned long long)d->epoch,
		       (unsigned long long)d->r);
	gossip_model_rolled_back(n->gossip, m->st, fr_mono_ms());
	if (rep.nnoundo)
		gossip_on_local_change(n->gossip, m->st, rep.noundo[0].table,
				       rep.noundo[0].shard, fr_mono_ms());
	else if (restored)
		gossip_on_local_change(n->gossip, m->st, 0, 0, fr_mono_ms());
	secs = (double)(fr_mono_ns() - t0) / 1e9;
	m->rollbacks_applied++;
	m->rollback_rows_restored += restored;
	m->rollback_rows_zeroed += zeroed;
	m->rollback_shards_repaired += rep.nnoundo;
	m->last_rollback_s = secs;
	n->snap.changes++;
	fr_log(FR_LOG_INFO, MOD, "model '%s': rollback epoch %llu (%llu, "
	       "%llu] applied in %.3f ms: %llu row(s) restored in %u "
	       "shard(s)%s by %s: %s", m->def->name,
	       (unsigned long long)d->epoch, (unsigned long long)d->t,
	       (unsigned long long)d->r, secs * 1e3,
	       (unsigned long long)restored, rep.shards_restored,
	       x.failed ? " (backend filter out of memory)" : "",
	       d->who[0] ? d->who : "?", d->reason[0] ? d->reason : "-");
	if (rep.nnoundo)
		fr_log(FR_LOG_WARN, MOD, "model '%s': rollback epoch %llu: "
		       "the undo ring of %u shard(s) does not reach back to "
		       "%llu; %llu revoked row(s) zeroed there, repairing by "
		       "full transfer from peers that have rolled back",
		       m->def->name, (unsigned long long)d->epoch,
		       rep.nnoundo, (unsigned long long)d->t,
		       (unsigned long long)zeroed);
	shard_rollback_report_fini(&rep);
	free(x.ids);
	free(x.vals);
	/* Durable now rather than at the next interval. */
	node_snapshot_bg(n);
	node_status_publish(n, true);
	node_gossip_flush(n);
	return FR_OK;
}

void node_model_view(struct node *n, struct node_model *m,
		     const struct topo_model_extra *x)
{
	node_model_roles_view(n, m, x);
	if (!x)
		return;
	if (!m->directives_seen) {
		/* A model new to this view: tell ZooKeeper we serve it now,
		 * not at the next refresh. */
		m->directives_seen = true;
		node_status_publish(n, true);
	}
	for (uint32_t i = 0; i < x->nrollbacks; i++) {
		const struct topo_rollback *d = &x->rollbacks[i];

		if (d->epoch <= shard_store_rollback_epoch(m->st))
			continue;
		if (node_rollback_apply(n, m, d) != FR_OK) {
			n->roles.bad_directives++;
			fr_log(FR_LOG_ERROR, MOD, "%s", fr_errmsg());
		}
	}
}

