/*
 * reads.c — what a node reads from ZooKeeper (docs/design.md §4): nodes/,
 * leaders/ and models/, and each model's rollbacks/ and roles, watched,
 * validated and kept in the topology thread's th_* arrays from which
 * session.c builds the views.
 *
 * Everything read is untrusted (docs/design.md rule 7): a znode that
 * does not parse, or says something its path contradicts, is logged with
 * its path, counted once per version (topo_bad_znode) and left out; the
 * node keeps running.  Lists are read in name order and cut at a bound
 * (rule 13), so every node leaves out the same ones.
 *
 * Per model (struct topo_mstate, parallel to th_models): rollbacks/ is
 * listed with a child watch (an exists watch while it is absent) and each
 * new r_<seq> child is read once — directives are immutable — and cached
 * by sequence, good or bad (a bad one is logged and counted once); the
 * view carries the newest TOPO_ROLLBACKS_MAX good ones.  roles is read
 * with a data watch; a malformed one counts as no overrides.  Those
 * watches all share one context (w_extra) whose callback queues the path,
 * so the thread re-reads only the model that changed; a full queue
 * re-reads them all.  A model enters the view once both have been read.
 *
 * Not here: the znodes we write (member.c), the session (session.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The synchronous zoo_* calls are declared only for the threaded client. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "topology/topo_int.h"

#define MOD "topology"

/* Bounds on what a view holds (rule 13): children past these, in name
 * order, are left out (and logged), so every node leaves out the same. */
#define MEMBERS_MAX 4096
#define LEADERS_MAX 256
#define MODELS_MAX 256

/* Per-model work (struct topo_mstate.dirty). */
#define X_ROLLBACKS (1u << 0)
#define X_ROLES     (1u << 1)
#define X_ALL       (X_ROLLBACKS | X_ROLES)

/* ------------------------------------------------------------------------
 * Reading a znode
 * ---------------------------------------------------------------------- */

void topo_bad_znode(struct topo *t, const char *path, int64_t mzxid,
		    const char *why)
{
	uint64_t h = fr_hash64(path, strlen(path), 0);

	for (uint32_t i = 0; i < t->th_nbad; i++)
		if (t->th_bad[i].path_hash == h && t->th_bad[i].mzxid == mzxid)
			return;
	t->th_bad[t->th_bad_next] = (struct topo_bad_seen){ h, mzxid };
	t->th_bad_next = (t->th_bad_next + 1) % TOPO_BAD_SEEN_MAX;
	if (t->th_nbad < TOPO_BAD_SEEN_MAX)
		t->th_nbad++;
	atomic_fetch_add(&t->bad_znodes, 1);
	t->th_view_dirty = true;
	fr_log(FR_LOG_WARN, MOD, "ignoring znode %s: %s", path, why);
}

int topo_get_data(struct topo *t, const char *path, struct topo_watch *w,
		  int *len, struct Stat *st)
{
	uint64_t sent = fr_mono_ms();
	int n = TOPO_DATA_MAX;
	int rc = zoo_wget(t->th_zh, path, w ? topo_watch_cb : NULL, w,
			  t->th_buf, &n, st);

	/* Long reads (many children) keep the leader's contact fresh. */
	if (!topo_conn_lost(rc))
		topo_contact(t, sent);
	if (rc != ZOK)
		return rc;
	if (st->dataLength > (int32_t)TOPO_DATA_MAX) {
		char why[64];

		snprintf(why, sizeof(why), "%d bytes, more than %u",
			 st->dataLength, TOPO_DATA_MAX);
		topo_bad_znode(t, path, st->mzxid, why);
		return ZBADARGUMENTS;
	}
	if (n < 0)
		n = 0;
	t->th_buf[n] = '\0';
	*len = n;
	return ZOK;
}

/* ------------------------------------------------------------------------
 * nodes/, leaders/, models/
 * ---------------------------------------------------------------------- */

/* A list being read: elements of one kind, at most max of them. */
struct list {
	const struct topo_kind *k;
	uint32_t max;
	void *arr;
	uint32_t n, cap;
	bool full;                        /* children were left out */
};

/* Room for one more element. */
static bool grow(struct list *l)
{
	void *p;
	uint32_t c;

	if (l->n < l->cap)
		return true;
	c = l->cap ? l->cap * 2 : 8;
	p = realloc(l->arr, (size_t)c * l->k->size);
	if (!p)
		return false;
	l->arr = p;
	l->cap = c;
	return true;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The children of dir in name order (the caller deallocates them), with
 * a child watch w: the cap then leaves out the same ones on every node. */
static int list_children(struct topo *t, const char *dir,
			 struct topo_watch *w, struct String_vector *sv)
{
	int rc = zoo_wget_children(t->th_zh, dir, topo_watch_cb, w, sv);

	if (rc == ZOK && sv->count > 1)
		qsort(sv->data, (size_t)sv->count, sizeof(sv->data[0]),
		      name_cmp);
	return rc;
}

/* Append the children of dir to l, read with data watches w: a child
 * whose name or data is not of l's kind is a bad znode, one gone since
 * the listing is skipped.  ZOK, or ZooKeeper's code (ZNONODE: dir). */
static int read_list(struct topo *t, const char *dir, struct topo_watch *w,
		     const void *ctx, struct list *l)
{
	struct String_vector sv = { 0, NULL };
	int rc = list_children(t, dir, w, &sv);

	for (int32_t i = 0; rc == ZOK && i < sv.count &&
	     !atomic_load(&t->stop); i++) {
		const char *child = sv.data[i];
		char path[TOPO_PATH_MAX];
		uint64_t key = 0;
		struct Stat st;
		int len;

		if (l->n == l->max) {
			l->full = true;
			break;
		}
		if (!topo_pathf(path, sizeof(path), "%s/%s", dir, child))
			continue;
		if (l->k->name && l->k->name(child, &key) != FR_OK) {
			topo_bad_znode(t, path, 0, fr_errmsg());
			continue;
		}
		rc = topo_get_data(t, path, w, &len, &st);
		if (rc == ZNONODE || rc == ZBADARGUMENTS) {
			rc = ZOK;
			continue;
		}
		if (rc == ZOK && !grow(l))
			rc = ZSYSTEMERROR;
		if (rc != ZOK)
			break;
		if (l->k->read(child, key, ctx, t->th_buf, (size_t)len,
			       (char *)l->arr + (size_t)l->n * l->k->size) !=
		    FR_OK) {
			topo_bad_znode(t, path, st.mzxid, fr_errmsg());
			continue;
		}
		l->n++;
	}
	deallocate_String_vector(&sv);
	return rc;
}

/* A list read (rc ZOK) becomes the thread's copy (*cur, *ncur), sorted;
 * a change makes the view dirty.  bit: the TOPO_D_* of the list, for the
 * note that it was cut. */
static int list_done(struct topo *t, int rc, struct list *l, unsigned bit,
		     const char *dir, void *cur, uint32_t *ncur)
{
	void **curp = cur;
	size_t size = l->k->size;
	bool same = *ncur == l->n;

	if (rc != ZOK) {
		if (rc == ZNONODE)
			t->th_dirty |= TOPO_D_PARENTS;
		free(l->arr);
		return rc;
	}
	if (l->full && !(t->th_cap_warned & bit))
		fr_log(FR_LOG_ERROR, MOD,
		       "%s: more than %u entries; the rest (in name order) are left out of the view",
		       dir, l->max);
	if (l->full)
		t->th_cap_warned |= bit;
	else
		t->th_cap_warned &= ~bit;
	if (l->n > 1)
		qsort(l->arr, l->n, size, l->k->cmp);
	for (uint32_t i = 0; same && i < l->n; i++)
		same = l->k->eq((const char *)*curp + i * size,
				(const char *)l->arr + i * size);
	if (!same)
		t->th_view_dirty = true;
	free(*curp);
	*curp = l->arr;
	*ncur = l->n;
	return ZOK;
}

int topo_read_nodes(struct topo *t)
{
	struct list l = { &topo_kind_member, MEMBERS_MAX, NULL, 0, 0, false };
	struct String_vector dcs = { 0, NULL };
	int rc = list_children(t, t->p_nodes, &t->w_nodes, &dcs);

	for (int32_t i = 0; rc == ZOK && i < dcs.count && !l.full &&
	     !atomic_load(&t->stop); i++) {
		char dcpath[TOPO_PATH_MAX];

		if (!topo_pathf(dcpath, sizeof(dcpath), "%s/%s", t->p_nodes,
				dcs.data[i]))
			continue;
		if (fr_name_check("dc name", dcs.data[i], TOPO_NAME_MAX) !=
		    FR_OK) {
			topo_bad_znode(t, dcpath, 0, fr_errmsg());
			continue;
		}
		rc = read_list(t, dcpath, &t->w_nodes, dcs.data[i], &l);
		if (rc == ZNONODE)
			rc = ZOK;   /* the dc went since the listing */
	}
	deallocate_String_vector(&dcs);
	return list_done(t, rc, &l, TOPO_D_NODES, t->p_nodes, &t->th_members,
			 &t->th_nmembers);
}

int topo_read_leaders(struct topo *t)
{
	struct list l = { &topo_kind_leader, LEADERS_MAX, NULL, 0, 0, false };
	int rc = read_list(t, t->p_leaders, &t->w_leaders, NULL, &l);

	return list_done(t, rc, &l, TOPO_D_LEADERS, t->p_leaders,
			 &t->th_leaders, &t->th_nleaders);
}

static int reconcile_extras(struct topo *t);

int topo_read_models(struct topo *t)
{
	struct list l = { &topo_kind_model, MODELS_MAX, NULL, 0, 0, false };
	int rc = read_list(t, t->p_models, &t->w_models, NULL, &l);

	rc = list_done(t, rc, &l, TOPO_D_MODELS, t->p_models, &t->th_models,
		       &t->th_nmodels);
	return rc == ZOK ? reconcile_extras(t) : rc;
}

/* ------------------------------------------------------------------------
 * Each model's rollbacks/ and roles
 * ---------------------------------------------------------------------- */

void topo_mstate_fini(struct topo_mstate *x)
{
	free(x->cache);
	free(x->rb);
	free(x->roles);
	memset(x, 0, sizeof(*x));
}

/* th_models was replaced: give th_mx the same models in the same order,
 * keeping what is known of models that stay; new ones are to be read. */
static int reconcile_extras(struct topo *t)
{
	struct topo_mstate *mx = NULL, *old = t->th_mx;
	uint32_t k = 0;

	if (t->th_nmodels) {
		mx = calloc(t->th_nmodels, sizeof(*mx));
		if (!mx) {
			fr_log(FR_LOG_ERROR, MOD, "cannot allocate model state; retrying");
			t->th_dirty |= TOPO_D_MODELS;
			return ZSYSTEMERROR;
		}
	}
	/* Both sorted by name (strcmp): one merge. */
	for (uint32_t i = 0; i < t->th_nmodels; i++) {
		const char *name = t->th_models[i].name;
		int c = 1;

		while (k < t->th_nmx && (c = strcmp(old[k].name, name)) < 0)
			topo_mstate_fini(&old[k++]);
		if (k < t->th_nmx && c == 0) {
			mx[i] = old[k++];
			continue;
		}
		memcpy(mx[i].name, name, sizeof(mx[i].name));
		mx[i].dirty = X_ALL;
		t->th_dirty |= TOPO_D_EXTRA;
	}
	while (k < t->th_nmx)
		topo_mstate_fini(&old[k++]);
	free(old);
	t->th_mx = mx;
	t->th_nmx = t->th_nmodels;
	return ZOK;
}

void topo_extras_all_dirty(struct topo *t)
{
	for (uint32_t i = 0; i < t->th_nmx; i++)
		t->th_mx[i].dirty = X_ALL;
	t->th_dirty |= TOPO_D_EXTRA;
}

/* A fired watch's path: mark that model's part to be read again.  A path
 * of a model no longer in the registry is dropped; one we cannot place at
 * all (never expected) makes every model be read again. */
void topo_extras_path_dirty(struct topo *t, const char *path)
{
	size_t plen = strlen(t->p_models);
	const char *rest, *slash;
	char name[SHARD_NAME_MAX + 1];
	unsigned bit;
	size_t nlen;

	if (strncmp(path, t->p_models, plen) != 0 || path[plen] != '/')
		goto unknown;
	rest = path + plen + 1;
	slash = strchr(rest, '/');
	if (!slash)
		goto unknown;
	if (strcmp(slash, "/rollbacks") == 0)
		bit = X_ROLLBACKS;
	else if (strcmp(slash, "/roles") == 0)
		bit = X_ROLES;
	else
		goto unknown;
	nlen = (size_t)(slash - rest);
	if (nlen == 0 || nlen > SHARD_NAME_MAX)
		return;
	memcpy(name, rest, nlen);
	name[nlen] = '\0';
	for (uint32_t i = 0; i < t->th_nmx; i++)
		if (strcmp(t->th_mx[i].name, name) == 0) {
			t->th_mx[i].dirty |= bit;
			t->th_dirty |= TOPO_D_EXTRA;
			return;
		}
	return;
unknown:
	fr_log(FR_LOG_DEBUG, MOD, "watch on %s: re-reading every model", path);
	topo_extras_all_dirty(t);
}

static int seq_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x > y ? -1 : x < y;
}

static struct topo_rb_entry *cache_find(struct topo_mstate *x, uint64_t seq)
{
	uint32_t lo = 0, hi = x->ncache;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (x->cache[mid].seq == seq)
			return &x->cache[mid];
		if (x->cache[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Read one directive child not seen before into *e.  ZOK (e->bad set
 * when it is malformed, logged and counted), ZNONODE when it went away,
 * or the ZooKeeper code. */
static int read_directive(struct topo *t, const char *dir, const char *child,
			  struct topo_rb_entry *e)
{
	char path[TOPO_PATH_MAX];
	struct Stat st;
	int len, rc;

	if (!topo_pathf(path, sizeof(path), "%s/%s", dir, child))
		return ZNONODE;
	rc = topo_get_data(t, path, NULL, &len, &st);
	if (rc == ZBADARGUMENTS) {   /* too big: logged and counted */
		e->bad = true;
		return ZOK;
	}
	if (rc != ZOK)
		return rc;
	if (topo_rollback_decode(e->seq, t->th_buf, (size_t)len, &e->d) !=
	    FR_OK) {
		topo_bad_znode(t, path, st.mzxid, fr_errmsg());
		e->bad = true;
		return ZOK;
	}
	fr_log(FR_LOG_INFO, MOD,
	       "rollback directive %s: epoch %" PRIu64 ", t %" PRIu64 ", r %" PRIu64 ", by '%s': %s",
	       path, e->d.epoch, e->d.t, e->d.r, e->d.who, e->d.reason);
	return ZOK;
}

/* List models/<m>/rollbacks (watching it, or its creation while it is
 * absent) and read the children not seen before, newest first, until
 * TOPO_ROLLBACKS_MAX good ones are known. */
static int read_rollbacks(struct topo *t, struct topo_mstate *x)
{
	struct String_vector sv = { 0, NULL };
	struct topo_rb_entry *cache = NULL;
	struct topo_rollback *rb = NULL;
	uint64_t *seqs = NULL;
	uint32_t nseq = 0, ncache = 0, ngood = 0;
	char dir[TOPO_PATH_MAX];
	struct Stat st;
	bool same;
	int rc = TOPO_ZK_RETRY;

	if (!topo_pathf(dir, sizeof(dir), "%s/%s/rollbacks", t->p_models, x->name))
		return ZSYSTEMERROR;
	for (int tries = 0; tries < 3; tries++, rc = TOPO_ZK_RETRY) {
		rc = zoo_wget_children2(t->th_zh, dir, topo_watch_cb, &t->w_extra,
					&sv, &st);
		if (rc != ZNONODE)
			break;
		/* None filed yet: watch for the first. */
		rc = zoo_wexists(t->th_zh, dir, topo_watch_cb, &t->w_extra, &st);
		if (rc == ZNONODE) {
			memset(&st, 0, sizeof(st));
			rc = ZOK;
			break;
		}
		if (rc != ZOK)
			break;
		/* Made meanwhile: list it. */
	}
	if (rc != ZOK)
		goto out;
	/* rollbacks/ deleted and made again restarts the sequence: what is
	 * cached under a number is no longer what that number names. */
	if (st.czxid != x->rb_czxid) {
		if (x->ncache)
			fr_log(FR_LOG_WARN, MOD,
			       "%s was deleted and made again: its directives are read afresh (their epochs restart)",
			       dir);
		free(x->cache);
		x->cache = NULL;
		x->ncache = 0;
		x->rb_czxid = st.czxid;
	}
	if (sv.count > 0) {
		seqs = malloc((size_t)sv.count * sizeof(*seqs));
		cache = malloc((size_t)sv.count * sizeof(*cache));
		if (!seqs || !cache) {
			rc = ZSYSTEMERROR;
			goto out;
		}
	}
	for (int32_t i = 0; i < sv.count; i++) {
		char path[TOPO_PATH_MAX];

		if (topo_rollback_parse_name(sv.data[i], &seqs[nseq]) ==
		    FR_OK) {
			nseq++;
			continue;
		}
		if (topo_pathf(path, sizeof(path), "%s/%s", dir, sv.data[i]))
			topo_bad_znode(t, path, 0,
				  "name is not r_<10-digit sequence>");
	}
	fr_errclear();
	if (nseq > 1)
		qsort(seqs, nseq, sizeof(*seqs), seq_desc);
	/* Newest first; what was read before is not read again. */
	for (uint32_t i = 0; i < nseq && ngood < TOPO_ROLLBACKS_MAX; i++) {
		struct topo_rb_entry *e = &cache[ncache], *old;
		char child[16];

		if (i && seqs[i] == seqs[i - 1])
			continue;   /* never from ZooKeeper; cheap to skip */
		old = cache_find(x, seqs[i]);
		if (old) {
			*e = *old;
		} else {
			memset(e, 0, sizeof(*e));
			e->seq = seqs[i];
			snprintf(child, sizeof(child), "r_%010" PRIu64, seqs[i]);
			rc = read_directive(t, dir, child, e);
			if (rc == ZNONODE)
				continue;   /* deleted since the listing */
			if (rc != ZOK)
				goto out;
		}
		ncache++;
		if (!e->bad)
			ngood++;
	}
	rc = ZOK;
	/* The cache keeps what was looked at (descending now). */
	for (uint32_t i = 0; i < ncache / 2; i++) {
		struct topo_rb_entry tmp = cache[i];

		cache[i] = cache[ncache - 1 - i];
		cache[ncache - 1 - i] = tmp;
	}
	if (ngood) {
		rb = malloc((size_t)ngood * sizeof(*rb));
		if (!rb) {
			rc = ZSYSTEMERROR;
			goto out;
		}
	}
	ngood = 0;
	for (uint32_t i = 0; i < ncache; i++)
		if (!cache[i].bad)
			rb[ngood++] = cache[i].d;
	same = x->rb_read && x->nrb == ngood;
	for (uint32_t i = 0; same && i < ngood; i++)
		same = topo_rollback_eq(&x->rb[i], &rb[i]);
	if (!same || !x->rb_read)
		t->th_view_dirty = true;
	free(x->cache);
	x->cache = cache;
	x->ncache = ncache;
	cache = NULL;
	free(x->rb);
	x->rb = rb;
	x->nrb = ngood;
	rb = NULL;
	x->rb_read = true;
out:
	free(rb);
	free(cache);
	free(seqs);
	deallocate_String_vector(&sv);
	if (rc != ZOK && !topo_conn_lost(rc))
		topo_zk_fail("read", dir, rc);
	return rc;
}

/* Read models/<m>/roles (watching it, or its creation while absent).
 * Absent, empty or malformed: no overrides (malformed: logged, counted). */
static int read_roles(struct topo *t, struct topo_mstate *x)
{
	struct topo_role_override *roles = NULL;
	char path[TOPO_PATH_MAX];
	uint32_t n = 0;
	struct Stat st;
	bool same;
	int len = 0, rc = TOPO_ZK_RETRY;

	if (!topo_pathf(path, sizeof(path), "%s/%s/roles", t->p_models, x->name))
		return ZSYSTEMERROR;
	for (int tries = 0; tries < 3; tries++, rc = TOPO_ZK_RETRY) {
		rc = topo_get_data(t, path, &t->w_extra, &len, &st);
		if (rc != ZNONODE)
			break;
		rc = zoo_wexists(t->th_zh, path, topo_watch_cb, &t->w_extra, &st);
		if (rc == ZNONODE) {
			len = 0;
			rc = ZOK;
			break;
		}
		if (rc != ZOK)
			break;
	}
	if (rc == ZBADARGUMENTS) {   /* too big: logged and counted */
		len = 0;
		rc = ZOK;
	}
	if (rc != ZOK) {
		if (!topo_conn_lost(rc))
			topo_zk_fail("read", path, rc);
		return rc;
	}
	if (len > 0 &&
	    topo_roles_decode(t->th_buf, (size_t)len, t->th_roles_buf,
			      TOPO_ROLE_OVERRIDES_MAX, &n) != FR_OK) {
		topo_bad_znode(t, path, st.mzxid, fr_errmsg());
		n = 0;
	}
	if (n) {
		roles = malloc((size_t)n * sizeof(*roles));
		if (!roles)
			return ZSYSTEMERROR;
		memcpy(roles, t->th_roles_buf, (size_t)n * sizeof(*roles));
	}
	same = x->roles_read && x->nroles == n &&
	       (n == 0 || memcmp(x->roles, roles, (size_t)n *
				 sizeof(*roles)) == 0);
	if (!same)
		t->th_view_dirty = true;
	free(x->roles);
	x->roles = roles;
	x->nroles = n;
	x->roles_read = true;
	return ZOK;
}

/* Every model whose rollbacks/ or roles is dirty.  One model's failure
 * does not hold up the others; a lost connection stops the pass. */
int topo_read_extras(struct topo *t)
{
	int ret = ZOK;

	for (uint32_t i = 0; i < t->th_nmx; i++) {
		struct topo_mstate *x = &t->th_mx[i];
		int rc = ZOK;

		if (atomic_load(&t->stop))
			return TOPO_ZK_RETRY;
		if (x->dirty & X_ROLLBACKS) {
			x->dirty &= ~X_ROLLBACKS;
			rc = read_rollbacks(t, x);
			if (rc != ZOK)
				x->dirty |= X_ROLLBACKS;
		}
		if (rc == ZOK && (x->dirty & X_ROLES)) {
			x->dirty &= ~X_ROLES;
			rc = read_roles(t, x);
			if (rc != ZOK)
				x->dirty |= X_ROLES;
		}
		if (topo_conn_lost(rc))
			return rc;
		if (rc != ZOK)
			ret = rc;
	}
	return ret;
}

