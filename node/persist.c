/*
 * persist.c — everything freshetd keeps on disk, and the order it is read
 * back in at start-up.
 *
 *   data_dir/LOCK          flock()ed while a daemon runs: two daemons can
 *                          never share a data dir
 *   data_dir/generation    decimal, +1 and fsynced at every start (peers
 *                          tell a restarted node from a ghost by it)
 *   data_dir/<model>.snap  one snapshot per model (shard/snapshot.c)
 *   data_dir/idem          idempotency keys known when the snapshots were
 *                          written (the WAL before them may be gone)
 *   data_dir/wal/          the WAL; each record is one publish (below and
 *                          docs/wire.md §6)
 *
 * Start-up: snapshots -> replay of the records they do not include ->
 * open the WAL after the last record.  Snapshots are written at exit
 * (blocking, after the last publish is acked) and every
 * snapshot_interval_s by a fork()ed child (copy-on-write, Redis's BGSAVE)
 * so the loop never stops for a table-sized write; the parent reaps the
 * child on SIGCHLD and only then truncates the WAL.
 *
 * Not here: building a publish (publish.c) or the stores' own formats.
 *
 * WAL publish record (all little-endian, every part 8-aligned so batches
 * decode in place from the 8-aligned payload the WAL hands back):
 *
 *    0 u32 magic "FRPW"   4 u16 format 1   6 u8 model_len   7 u8 key_len
 *    8 u64 version       16 u32 origin    20 u32 nbatches (>= 1)
 *   24 model name, zero-padded to 8;  idempotency key, zero-padded to 8
 *      nbatches x { u64 len (multiple of 8); row batch payload (wire §2) }
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "node/node_int.h"

#define WALREC_MAGIC 0x57505246u     /* "FRPW" little-endian */
#define WALREC_FORMAT 1
#define WALREC_HDR 24
#define IDEM_MAGIC 0x4b495246u       /* "FRIK" */
#define IDEM_FORMAT 1

/* ========================================================================
 * Small file helpers
 * ===================================================================== */

static enum fr_err path_join(char *out, size_t cap, const char *dir,
			     const char *name, const char *suffix)
{
	int k = snprintf(out, cap, "%s/%s%s", dir, name, suffix);

	if (k < 0 || (size_t)k >= cap)
		return fr_fail(FR_ERR_TOOBIG, "node.data_dir: path '%s/%s%s' "
			       "is longer than %zu bytes", dir, name, suffix,
			       cap - 1);
	return FR_OK;
}

static enum fr_err mkdir_p(const char *dir)
{
	char tmp[CONFIG_PATH_MAX + 1];
	size_t len = strlen(dir);

	if (len == 0 || len > CONFIG_PATH_MAX)
		return fr_fail(FR_ERR_INVAL, "node.data_dir: expected a path");
	memcpy(tmp, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return fr_fail(FR_ERR_IO, "node.data_dir: mkdir '%s': %s",
				       tmp, strerror(errno));
		if (i < len)
			tmp[i] = '/';
	}
	return FR_OK;
}

static enum fr_err fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum fr_err rc = FR_OK;

	if (fd < 0)
		return fr_fail(FR_ERR_IO, "dir '%s': open: %s", dir,
			       strerror(errno));
	if (fsync(fd) != 0)
		rc = fr_fail(FR_ERR_IO, "dir '%s': fsync: %s", dir,
			     strerror(errno));
	close(fd);
	return rc;
}

static enum fr_err write_all(int fd, const void *p, size_t n,
			     const char *path)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t k = write(fd, b, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return fr_fail(FR_ERR_IO, "'%s': write: %s", path,
				       strerror(errno));
		b += k;
		n -= (size_t)k;
	}
	return FR_OK;
}

/* Write a small file durably: tmp, fsync, rename, fsync the dir. */
static enum fr_err write_file_atomic(const char *dir, const char *name,
				     const void *p, size_t n)
{
	char path[CONFIG_PATH_MAX + 64], tmp[CONFIG_PATH_MAX + 64];
	enum fr_err rc;
	int fd;

	rc = path_join(path, sizeof(path), dir, name, "");
	if (rc)
		return rc;
	rc = path_join(tmp, sizeof(tmp), dir, name, ".tmp");
	if (rc)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fr_fail(FR_ERR_IO, "'%s': open: %s", tmp,
			       strerror(errno));
	rc = write_all(fd, p, n, tmp);
	if (!rc && fsync(fd) != 0)
		rc = fr_fail(FR_ERR_IO, "'%s': fsync: %s", tmp,
			     strerror(errno));
	close(fd);
	if (!rc && rename(tmp, path) != 0)
		rc = fr_fail(FR_ERR_IO, "rename '%s' -> '%s': %s", tmp, path,
			     strerror(errno));
	if (!rc)
		rc = fsync_dir(dir);
	if (rc)
		unlink(tmp);
	return rc;
}

/* ========================================================================
 * Data dir: lock and generation
 * ===================================================================== */

static enum fr_err generation_bump(struct node *n)
{
	const char *dir = n->cfg->data_dir;
	char path[CONFIG_PATH_MAX + 64], text[32];
	uint64_t g = 0;
	uint8_t *buf = NULL;
	enum fr_err rc;
	size_t len;
	int k;

	rc = path_join(path, sizeof(path), dir, "generation", "");
	if (rc)
		return rc;
	rc = fr_read_file("generation file", path, 64, &buf, &len);
	if (rc == FR_OK) {
		size_t digits = len && buf[len - 1] == '\n' ? len - 1 : len;

		if (!fr_dec_u64((const char *)buf, digits, &g)) {
			rc = fr_fail(FR_ERR_CORRUPT, "'%s': expected a decimal "
				     "generation number", path);
			free(buf);
			return rc;
		}
		free(buf);
	} else if (rc != FR_ERR_NOTFOUND) {
		return rc;
	}
	n->generation = g + 1;
	k = snprintf(text, sizeof(text), "%llu\n",
		     (unsigned long long)n->generation);
	return write_file_atomic(dir, "generation", text, (size_t)k);
}

enum fr_err node_datadir_open(struct node *n)
{
	const char *dir = n->cfg->data_dir;
	char path[CONFIG_PATH_MAX + 64], pid[32];
	enum fr_err rc;
	int fd, k;

	rc = mkdir_p(dir);
	if (rc)
		return rc;
	rc = path_join(path, sizeof(path), dir, "LOCK", "");
	if (rc)
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return fr_fail(FR_ERR_IO, "node.data_dir: lock file '%s': %s",
			       path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ?
			fr_fail(FR_ERR_BUSY, "node.data_dir '%s' is in use by "
				"another freshetd (lock file '%s' is held)",
				dir, path) :
			fr_fail(FR_ERR_IO, "node.data_dir: flock '%s': %s",
				path, strerror(errno));
		close(fd);
		return rc;
	}
	/* The pid is only for people looking; the flock is the lock. */
	k = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)k, 0) < 0)
		fr_log(FR_LOG_DEBUG, "node", "lock file: pid not written");
	n->lock_fd = fd;
	rc = generation_bump(n);
	if (rc) {
		node_datadir_close(n);
		return rc;
	}
	return FR_OK;
}

void node_datadir_close(struct node *n)
{
	if (n->lock_fd >= 0)
		close(n->lock_fd);   /* releases the flock */
	n->lock_fd = -1;
}

/* ========================================================================
 * WAL publish record
 * ===================================================================== */

enum fr_err node_walrec_encode(struct fr_wbuf *w, const char *model,
			       const char *key, uint64_t version,
			       uint32_t origin, const struct shard_batch_hdr *h,
			       const struct shard_batch *b, uint32_t nb)
{
	size_t ml = strlen(model), kl = strlen(key);
	enum fr_err rc;

	if (ml == 0 || ml > SHARD_NAME_MAX || kl > PROTO_KEY_MAX || nb == 0)
		return fr_fail(FR_ERR_INVAL, "wal record: model '%s' (1..%d "
			       "bytes), key %zu bytes (<= %d), %u batches "
			       "(>= 1)", model, SHARD_NAME_MAX, kl,
			       PROTO_KEY_MAX, nb);
	fr_wbuf_u32(w, WALREC_MAGIC);
	fr_wbuf_u16(w, WALREC_FORMAT);
	fr_wbuf_u8(w, (uint8_t)ml);
	fr_wbuf_u8(w, (uint8_t)kl);
	fr_wbuf_u64(w, version);
	fr_wbuf_u32(w, origin);
	fr_wbuf_u32(w, nb);
	fr_wbuf_bytes(w, model, ml);
	fr_wbuf_pad(w, 8);
	fr_wbuf_bytes(w, key, kl);
	fr_wbuf_pad(w, 8);
	for (uint32_t i = 0; i < nb; i++) {
		size_t off = w->len;

		fr_wbuf_u64(w, 0);
		if (w->err)
			break;
		rc = shard_batch_encode(w, h, &b[i]);
		if (rc)
			return rc;
		fr_wbuf_put_u64_at(w, off, (uint64_t)(w->len - off - 8));
	}
	if (w->err)
		return fr_fail(w->err, "wal record: %s", fr_strerror(w->err));
	return FR_OK;
}

enum fr_err node_walrec_decode(const uint8_t *p, size_t len,
			       struct node_walrec *r)
{
	struct fr_rbuf rb;
	uint32_t magic;
	uint16_t fmt;

	fr_rbuf_init(&rb, p, len);
	magic = fr_rbuf_u32(&rb);
	fmt = fr_rbuf_u16(&rb);
	r->model_len = fr_rbuf_u8(&rb);
	r->key_len = fr_rbuf_u8(&rb);
	r->version = fr_rbuf_u64(&rb);
	r->origin = fr_rbuf_u32(&rb);
	r->nbatches = fr_rbuf_u32(&rb);
	if (rb.err)
		return fr_fail(FR_ERR_TRUNC, "wal record: %zu bytes, expected "
			       ">= %d", len, WALREC_HDR);
	if (magic != WALREC_MAGIC)
		return fr_fail(FR_ERR_MAGIC, "wal record: magic 0x%08x, "
			       "expected 0x%08x", magic, WALREC_MAGIC);
	if (fmt != WALREC_FORMAT)
		return fr_fail(FR_ERR_VERSION, "wal record: format %u, "
			       "expected %u", fmt, WALREC_FORMAT);
	if (r->model_len == 0 || r->model_len > SHARD_NAME_MAX ||
	    r->key_len > PROTO_KEY_MAX || r->nbatches == 0)
		return fr_fail(FR_ERR_CORRUPT, "wal record: model_len %u "
			       "(1..%d), key_len %u (<= %d), nbatches %u "
			       "(>= 1)", r->model_len, SHARD_NAME_MAX,
			       r->key_len, PROTO_KEY_MAX, r->nbatches);
	r->model = (const char *)fr_rbuf_bytes(&rb, r->model_len);
	fr_rbuf_align(&rb, 8);
	r->key = (const char *)fr_rbuf_bytes(&rb, r->key_len);
	fr_rbuf_align(&rb, 8);
	if (rb.err)
		return fr_fail(FR_ERR_TRUNC, "wal record: model/key cut short");
	fr_rbuf_init(&r->batches, rb.p + rb.off, rb.len - rb.off);
	return FR_OK;
}

enum fr_err node_walrec_next(struct node_walrec *r, struct shard_batch_hdr *h,
			     struct shard_batch *b)
{
	const uint8_t *p;
	uint64_t blen;

	if (r->nbatches == 0) {
		if (fr_rbuf_left(&r->batches))
			return fr_fail(FR_ERR_CORRUPT, "wal record: %zu bytes "
				       "after the last batch",
				       fr_rbuf_left(&r->batches));
		return FR_ERR_NOTFOUND;
	}
	blen = fr_rbuf_u64(&r->batches);
	if (r->batches.err || blen % 8 || !fr_rbuf_fits(&r->batches, 1, blen))
		return fr_fail(FR_ERR_TRUNC, "wal record: batch length %llu "
			       "does not fit the record",
			       (unsigned long long)blen);
	p = fr_rbuf_bytes(&r->batches, (size_t)blen);
	r->nbatches--;
	return shard_batch_decode(p, (size_t)blen, h, b);
}

/* Is this batch for model m's schema?  (Our own record, but the config
 * may have changed under it.) */
static enum fr_err walrec_check_batch(const struct node_model *m,
				      const struct shard_batch_hdr *h,
				      const struct shard_batch *b)
{
	const struct shard_table_def *t;

	if (strcmp(h->model, m->def->name) != 0)
		return fr_fail(FR_ERR_CORRUPT, "wal record: batch for model "
			       "'%s' inside a record of model '%s'", h->model,
			       m->def->name);
	if (b->table >= m->def->ntables)
		return fr_fail(FR_ERR_CORRUPT, "wal record: model '%s' table "
			       "%u, expected < %u tables", m->def->name,
			       b->table, m->def->ntables);
	t = &m->def->tables[b->table];
	if ((uint32_t)h->dtype != (uint32_t)t->dtype || h->dim != t->dim)
		return fr_fail(FR_ERR_CORRUPT, "wal record: model '%s' table "
			       "'%s': %s dim %u, expected %s dim %u (did the "
			       "config change?)", m->def->name, t->name,
			       shard_dtype_name(h->dtype), h->dim,
			       shard_dtype_name(t->dtype), t->dim);
	return FR_OK;
}

enum fr_err node_walrec_check(const struct node_model *m, const uint8_t *rec,
			      size_t len)
{
	struct shard_batch_hdr h;
	struct shard_batch b;
	struct node_walrec r;
	enum fr_err rc;

	rc = node_walrec_decode(rec, len, &r);
	if (rc)
		return rc;
	if (r.model_len != strlen(m->def->name) ||
	    memcmp(r.model, m->def->name, r.model_len) != 0)
		return fr_fail(FR_ERR_CORRUPT, "wal record: not for model '%s'",
			       m->def->name);
	while ((rc = node_walrec_next(&r, &h, &b)) == FR_OK) {
		rc = walrec_check_batch(m, &h, &b);
		if (rc)
			return rc;
	}
	return rc == FR_ERR_NOTFOUND ? FR_OK : rc;
}

enum fr_err node_walrec_apply(struct node *n, struct node_model *m,
			      const uint8_t *rec, size_t len, bool live)
{
	struct shard_apply_result res;
	struct shard_batch_hdr h;
	struct shard_batch b;
	struct node_walrec r;
	uint64_t now = fr_mono_ms();
	enum fr_err rc;

	rc = node_walrec_decode(rec, len, &r);
	if (rc)
		return rc;
	uint32_t last_table = 0, last_shard = 0;
	bool any = false;

	while (node_walrec_next(&r, &h, &b) == FR_OK) {
		rc = node_apply_batch(n, m, &b, &res);
		if (rc)
			return rc;
		n->metrics.rows_applied_local += res.applied;
		/* Note every shard, tell peers once: one delta DIGEST per
		 * peer for the whole publish, however many shards it hit. */
		if (live && n->gossip)
			gossip_note_local_change(n->gossip, m->st, b.table,
						 b.shard);
		last_table = b.table;
		last_shard = b.shard;
		any = true;
	}
	if (live && n->gossip && any)
		gossip_on_local_change(n->gossip, m->st, last_table,
				       last_shard, now);
	return FR_OK;
}

void node_lsn_settle(struct node *n)
{
	uint64_t lsn = n->dur.pend_head ? n->dur.pend_head->lsn - 1 : n->dur.last_lsn;

	if (lsn > n->dur.applied_lsn)
		n->dur.applied_lsn = lsn;
}

void node_wal_log_replicated(struct node *n, struct node_model *m,
			     const struct shard_batch *b)
{
	const struct shard_table_def *t = &m->def->tables[b->table];
	struct shard_batch_hdr h = { .dtype = t->dtype, .dim = t->dim };
	struct shard_batch rows_only;
	struct fr_wbuf w;
	uint64_t lsn;
	enum fr_err rc;

	if (!n->dur.wal || (b->n == 0 && b->ncovers == 0))
		return;
	if (n->dur.repl_skips != n->dur.repl_skips_snapped) {
		/* An earlier batch is missing from the log (node_int.h,
		 * repl_skips): these covers may lean on its rows, so log the
		 * rows alone.  A replay then leaves the vector short and the
		 * rows are pulled again, as for a lost reply in gossip. */
		if (b->n == 0)
			return;
		rows_only = *b;
		rows_only.ncovers = 0;
		rows_only.covers = NULL;
		b = &rows_only;
	}
	snprintf(h.model, sizeof(h.model), "%s", m->def->name);
	fr_wbuf_init(&w, 128 + (size_t)b->n * (t->dim * 4 + 32), 0);
	/* version 0, origin 0: a replicated record (docs/wire.md §6). */
	rc = node_walrec_encode(&w, m->def->name, "", 0, 0, &h, b, 1);
	if (!rc)
		rc = shard_wal_append(n->dur.wal, w.data, w.len, &lsn);
	fr_wbuf_fini(&w);
	if (rc) {
		n->metrics.wal_repl_skipped++;
		if (b->n)
			n->dur.repl_skips++;   /* rows only in the store now */
		fr_log(FR_LOG_DEBUG, "node", "model '%s': replicated batch not "
		       "logged: %s", m->def->name, fr_errmsg());
		return;
	}
	n->dur.last_lsn = lsn;
	node_lsn_settle(n);
}

/* ========================================================================
 * Idempotency-key file
 *
 *   u32 magic "FRIK", u32 format 1, u64 count,
 *   count x { u8 key_len, key, u64 version, u32 origin },
 *   u64 XXH3-64 of every byte before it
 * ===================================================================== */

static void idem_put_cb(const char *key, uint64_t version, uint32_t origin,
			void *arg)
{
	struct fr_wbuf *w = arg;
	size_t kl = strlen(key);

	fr_wbuf_u8(w, (uint8_t)kl);
	fr_wbuf_bytes(w, key, kl);
	fr_wbuf_u64(w, version);
	fr_wbuf_u32(w, origin);
}

static enum fr_err idem_save(struct node *n)
{
	struct fr_wbuf w;
	enum fr_err rc;

	fr_wbuf_init(&w, 4096, 0);
	fr_wbuf_u32(&w, IDEM_MAGIC);
	fr_wbuf_u32(&w, IDEM_FORMAT);
	fr_wbuf_u64(&w, node_idem_count(n));
	node_idem_foreach(n, idem_put_cb, &w);
	if (!w.err)
		fr_wbuf_u64(&w, XXH3_64bits(w.data, w.len));
	rc = w.err ? fr_fail(w.err, "idempotency file: encode") :
		write_file_atomic(n->cfg->data_dir, "idem", w.data, w.len);
	fr_wbuf_fini(&w);
	return rc;
}

static enum fr_err idem_load(struct node *n)
{
	char path[CONFIG_PATH_MAX + 64];
	struct fr_rbuf rb;
	uint8_t *buf = NULL;
	uint64_t count;
	enum fr_err rc;
	size_t len;

	rc = path_join(path, sizeof(path), n->cfg->data_dir, "idem", "");
	if (rc)
		return rc;
	rc = fr_read_file("idempotency file", path, 64u << 20, &buf, &len);
	if (rc == FR_ERR_NOTFOUND)
		return FR_OK;
	if (rc)
		return rc;
	if (len < 24 || XXH3_64bits(buf, len - 8) !=
	    ((uint64_t)buf[len - 8] | (uint64_t)buf[len - 7] << 8 |
	     (uint64_t)buf[len - 6] << 16 | (uint64_t)buf[len - 5] << 24 |
	     (uint64_t)buf[len - 4] << 32 | (uint64_t)buf[len - 3] << 40 |
	     (uint64_t)buf[len - 2] << 48 | (uint64_t)buf[len - 1] << 56)) {
		rc = fr_fail(FR_ERR_CHECKSUM, "'%s': checksum mismatch", path);
		goto out_free;
	}
	fr_rbuf_init(&rb, buf, len - 8);
	if (fr_rbuf_u32(&rb) != IDEM_MAGIC || fr_rbuf_u32(&rb) != IDEM_FORMAT) {
		rc = fr_fail(FR_ERR_MAGIC, "'%s': not an idempotency file "
			     "of format %d", path, IDEM_FORMAT);
		goto out_free;
	}
	count = fr_rbuf_u64(&rb);
	for (uint64_t i = 0; i < count && !rb.err; i++) {
		uint8_t kl = fr_rbuf_u8(&rb);
		const uint8_t *k = fr_rbuf_bytes(&rb, kl);
		uint64_t v = fr_rbuf_u64(&rb);
		uint32_t o = fr_rbuf_u32(&rb);

		if (!rb.err && kl > 0 && kl <= PROTO_KEY_MAX)
			node_idem_put(n, (const char *)k, kl, v, o, 0);
	}
	if (rb.err || fr_rbuf_left(&rb))
		rc = fr_fail(FR_ERR_CORRUPT, "'%s': entries do not match the "
			     "count %llu", path, (unsigned long long)count);
out_free:
	free(buf);
	return rc;
}

/* ========================================================================
 * Loading: snapshots, then the WAL
 * ===================================================================== */

/* Same schema (priority may change: it only steers scheduling). */
static bool model_def_same(const struct shard_model_def *a,
			   const struct shard_model_def *b, char *why,
			   size_t cap)
{
	if (a->shards != b->shards) {
		snprintf(why, cap, "shards %u in the snapshot, %u in the config",
			 a->shards, b->shards);
		return false;
	}
	if (a->ntables != b->ntables) {
		snprintf(why, cap, "%u tables in the snapshot, %u in the config",
			 a->ntables, b->ntables);
		return false;
	}
	for (uint32_t i = 0; i < a->ntables; i++) {
		const struct shard_table_def *x = &a->tables[i], *y = &b->tables[i];

		if (strcmp(x->name, y->name) || x->rows != y->rows ||
		    x->dim != y->dim || x->dtype != y->dtype) {
			snprintf(why, cap, "table %u is %s:%llu:%u:%s in the "
				 "snapshot, %s:%llu:%u:%s in the config", i,
				 x->name, (unsigned long long)x->rows, x->dim,
				 shard_dtype_name(x->dtype), y->name,
				 (unsigned long long)y->rows, y->dim,
				 shard_dtype_name(y->dtype));
			return false;
		}
	}
	return true;
}

enum fr_err node_model_load(struct node *n, struct node_model *m,
			    const struct shard_model_def *want)
{
	struct shard_store_opts opts = {
		.index_cap = n->cfg->index_cap,
		.undo_bytes_per_shard = (uint64_t)n->cfg->undo_kb_per_shard << 10,
	};
	char path[CONFIG_PATH_MAX + 128], why[256];
	uint64_t lsn = 0;
	enum fr_err rc;

	rc = path_join(path, sizeof(path), n->cfg->data_dir, want->name,
		       ".snap");
	if (rc)
		return rc;
	m->st = shard_store_load(path, &opts, &lsn, &rc);
	if (m->st) {
		if (!model_def_same(shard_store_def(m->st), want, why,
				    sizeof(why))) {
			shard_store_free(m->st);
			m->st = NULL;
			return fr_fail(FR_ERR_INVAL, "model '%s': snapshot '%s' "
				       "does not match the config: %s (move "
				       "the snapshot away to start empty)",
				       want->name, path, why);
		}
		if (shard_store_def(m->st)->priority != want->priority)
			fr_log(FR_LOG_WARN, "node", "model '%s': priority %u "
			       "in the snapshot, %u in the config; the "
			       "snapshot's applies until the data dir is "
			       "reset", want->name,
			       shard_store_def(m->st)->priority,
			       want->priority);
		m->had_snapshot = true;
		m->snap_lsn = lsn;
		fr_log(FR_LOG_INFO, "node", "model '%s': snapshot loaded "
		       "(lsn %llu)", want->name, (unsigned long long)lsn);
	} else if (rc == FR_ERR_NOTFOUND) {
		m->st = shard_store_new(want, &opts, &rc);
		if (!m->st)
			return rc;
		fr_log(FR_LOG_INFO, "node", "model '%s': no snapshot, starting "
		       "empty", want->name);
	} else {
		return fr_fail(rc, "model '%s': %s", want->name, fr_errmsg());
	}
	m->def = shard_store_def(m->st);
	return FR_OK;
}

struct replay_ctx {
	struct node *n;
	uint64_t applied, skipped, unknown;
};

static enum fr_err replay_cb(uint64_t lsn, const uint8_t *rec, size_t len,
			     void *arg)
{
	struct replay_ctx *x = arg;
	struct node *n = x->n;
	char model[SHARD_NAME_MAX + 1], key[PROTO_KEY_MAX + 1];
	struct node_walrec r;
	struct node_model *m;
	enum fr_err rc;
	int mi;

	rc = node_walrec_decode(rec, len, &r);
	if (rc)
		return fr_fail(rc, "wal lsn %llu: %s", (unsigned long long)lsn,
			       fr_errmsg());
	memcpy(model, r.model, r.model_len);
	model[r.model_len] = '\0';
	memcpy(key, r.key, r.key_len);
	key[r.key_len] = '\0';
	if (r.key_len)
		node_idem_put(n, key, r.key_len, r.version, r.origin, lsn);
	if (r.version > n->hlc.last)
		n->hlc.last = r.version;   /* never stamp this version again */
	n->dur.applied_lsn = lsn;
	mi = node_model_find(n, model);
	if (mi < 0) {
		/* Removed from the config: its data is not served any more. */
		x->unknown++;
		return FR_OK;
	}
	m = &n->models[mi];
	if (m->had_snapshot && lsn <= m->snap_lsn) {
		x->skipped++;
		return FR_OK;
	}
	rc = node_walrec_check(m, rec, len);
	if (rc)
		return fr_fail(rc, "wal lsn %llu: %s", (unsigned long long)lsn,
			       fr_errmsg());
	/* A record that decodes and fits the schema but that the store
	 * refuses (say, a version vector at its origin limit) was refused
	 * live too, and its publish was not acked: skip it, don't brick the
	 * node. */
	rc = node_walrec_apply(n, m, rec, len, false);
	if (rc)
		fr_log(FR_LOG_WARN, "node", "wal lsn %llu: not applied: %s",
		       (unsigned long long)lsn, fr_errmsg());
	else
		x->applied++;
	return FR_OK;
}

enum fr_err node_stores_load(struct node *n)
{
	struct shard_wal_replay_stats stats;
	struct replay_ctx x = { .n = n };
	char wal[CONFIG_PATH_MAX + 64];
	uint64_t after = UINT64_MAX;
	enum fr_err rc;

	struct shard_model_def *cached;
	uint32_t ncached;

	/* Fixed room: models added from ZooKeeper later must not move the
	 * ones pending publishes and the gossip adapter point at. */
	n->models = calloc(CONFIG_MODELS_MAX, sizeof(*n->models));
	cached = calloc(CONFIG_MODELS_MAX, sizeof(*cached));
	if (!n->models || !cached) {
		free(cached);
		return fr_fail(FR_ERR_NOMEM, "models");
	}
	for (uint32_t i = 0; i < n->cfg->nmodels; i++) {
		rc = node_model_load(n, &n->models[i], &n->cfg->models[i]);
		if (rc) {
			free(cached);
			return rc;
		}
		n->nmodels++;
		if (n->models[i].had_snapshot && n->models[i].snap_lsn < after)
			after = n->models[i].snap_lsn;
	}
	/* Models learnt from ZooKeeper in an earlier life come back before
	 * the replay, so their WAL records are not skipped as unknown. */
	ncached = node_models_cache_load(n, cached, CONFIG_MODELS_MAX);
	for (uint32_t i = 0; i < ncached && n->nmodels < CONFIG_MODELS_MAX;
	     i++) {
		struct node_model *m = &n->models[n->nmodels];

		if (node_model_find(n, cached[i].name) >= 0)
			continue;   /* the config's definition wins */
		rc = node_model_load(n, m, &cached[i]);
		if (rc) {
			fr_log(FR_LOG_ERROR, "node", "model '%s' (from "
			       "ZooKeeper, cached): not loaded: %s",
			       cached[i].name, fr_errmsg());
			memset(m, 0, sizeof(*m));
			continue;
		}
		m->from_registry = true;
		n->nmodels++;
		if (m->had_snapshot && m->snap_lsn < after)
			after = m->snap_lsn;
	}
	free(cached);
	/* Models without a snapshot are new (or were reset): records older
	 * than the oldest snapshot cannot be needed by them, and the log
	 * before it may already be truncated. */
	if (after == UINT64_MAX)
		after = 0;
	n->snap.lsn = after;
	rc = idem_load(n);
	if (rc)
		fr_log(FR_LOG_WARN, "node", "idempotency keys not restored: %s",
		       fr_errmsg());
	rc = path_join(wal, sizeof(wal), n->cfg->data_dir, "wal", "");
	if (rc)
		return rc;
	n->dur.applied_lsn = after;
	rc = shard_wal_replay(wal, after, replay_cb, &x, &stats);
	if (rc)
		return fr_fail(rc, "wal replay '%s': %s", wal, fr_errmsg());
	if (stats.last_lsn > n->dur.applied_lsn)
		n->dur.applied_lsn = stats.last_lsn;
	fr_log(FR_LOG_INFO, "node", "wal replayed: %llu record(s) after lsn "
	       "%llu, %llu applied, %llu already in snapshots, %llu for "
	       "unknown models, %llu torn byte(s) cut", 
	       (unsigned long long)stats.records, (unsigned long long)after,
	       (unsigned long long)x.applied, (unsigned long long)x.skipped,
	       (unsigned long long)x.unknown,
	       (unsigned long long)stats.torn_bytes);
	return FR_OK;
}

static void durable_cb(uint64_t lsn, void *arg)
{
	static int token;   /* any non-NULL pointer: the message is the wake */
	struct node *n = arg;
	uint64_t cur = atomic_load(&n->dur.durable_seen);

	while (cur < lsn &&
	       !atomic_compare_exchange_weak(&n->dur.durable_seen, &cur, lsn))
		;
	/* BUSY means a wake-up is queued already; it reads durable_seen. */
	(void)fr_mailbox_post(n->dur.mb, &token);
}

enum fr_err node_wal_open(struct node *n)
{
	char wal[CONFIG_PATH_MAX + 64];
	struct shard_wal_opts o = {
		.durable_cb = durable_cb,
		.cb_arg = n,
	};
	uint64_t rec_max = 2ull * n->max_frame + (1u << 20);
	enum fr_err rc;

	/* A publish record is a little larger than the frame it came in. */
	o.max_record_bytes = rec_max > UINT32_MAX ? UINT32_MAX :
		(uint32_t)rec_max;
	rc = path_join(wal, sizeof(wal), n->cfg->data_dir, "wal", "");
	if (rc)
		return rc;
	atomic_store(&n->dur.durable_seen, n->dur.applied_lsn);
	n->dur.last_lsn = n->dur.applied_lsn;
	n->dur.wal = shard_wal_open(wal, n->dur.applied_lsn + 1, &o, &rc);
	if (!n->dur.wal)
		return fr_fail(rc, "wal '%s': %s", wal, fr_errmsg());
	return FR_OK;
}

/* ========================================================================
 * Snapshots
 * ===================================================================== */

static enum fr_err snapshot_write_all(struct node *n, uint64_t lsn)
{
	char path[CONFIG_PATH_MAX + 128];
	enum fr_err rc = FR_OK, e;

	for (uint32_t i = 0; i < n->nmodels; i++) {
		e = path_join(path, sizeof(path), n->cfg->data_dir,
			      n->models[i].def->name, ".snap");
		if (!e)
			e = shard_store_snapshot(n->models[i].st, path, lsn);
		if (e) {
			fr_log(FR_LOG_ERROR, "node", "snapshot of model '%s' "
			       "failed: %s", n->models[i].def->name,
			       fr_errmsg());
			rc = e;
		}
	}
	e = idem_save(n);
	if (e) {
		fr_log(FR_LOG_ERROR, "node", "idempotency file not written: %s",
		       fr_errmsg());
		if (!rc)
			rc = e;
	}
	return rc;
}

static void snapshot_done(struct node *n, uint64_t lsn)
{
	enum fr_err rc;

	n->metrics.snapshots_ok++;
	n->snap.lsn = lsn;
	rc = shard_wal_truncate_before(n->dur.wal, lsn);
	if (rc)
		fr_log(FR_LOG_WARN, "node", "wal truncate before lsn %llu: %s",
		       (unsigned long long)lsn, fr_errmsg());
}

/* The LSN a snapshot taken now may claim: every record up to it is in the
 * stores (applied_lsn) *and on disk*.  Replicated batches are applied and
 * logged behind, so applied_lsn can run ahead of the durable end of the
 * log.  A snapshot past that end, followed by a crash, leaves the log
 * ending before the snapshot and the next segment opened after it: a gap
 * that every later replay refuses as corrupt (shard.h: a snapshot must only
 * cover durable LSNs).  Claiming less is safe: the records after it are
 * replayed over the snapshot, and re-applying is idempotent. */
static uint64_t snapshot_lsn_now(struct node *n)
{
	uint64_t lsn = n->dur.applied_lsn, durable;

	if (n->dur.wal) {
		durable = shard_wal_durable_lsn(n->dur.wal);
		if (durable < lsn)
			lsn = durable;
	}
	return lsn;
}

enum fr_err node_snapshot_sync(struct node *n)
{
	uint64_t lsn, t0 = fr_mono_ms();
	enum fr_err rc;

	if (n->snap.child) {
		/* Ours is newer; the child's tmp files are overwritten. */
		kill(n->snap.child, SIGKILL);
		node_snapshot_reap(n, true);
	}
	/* Shutdown: the loop has stopped, so waiting for the last records
	 * (replicated batches logged behind their apply) costs nothing, and
	 * lets the snapshot claim everything applied. */
	if (n->dur.wal && n->dur.last_lsn > shard_wal_durable_lsn(n->dur.wal) &&
	    shard_wal_wait(n->dur.wal, n->dur.last_lsn) != FR_OK)
		fr_log(FR_LOG_WARN, "node", "shutdown: wal wait: %s",
		       fr_errmsg());
	lsn = snapshot_lsn_now(n);
	rc = snapshot_write_all(n, lsn);
	if (rc) {
		n->metrics.snapshots_failed++;
		return rc;
	}
	n->dur.repl_skips_snapped = n->dur.repl_skips;
	if (n->dur.wal)
		snapshot_done(n, lsn);
	fr_log(FR_LOG_INFO, "node", "snapshot of %u model(s) at lsn %llu "
	       "written in %llu ms", n->nmodels, (unsigned long long)lsn,
	       (unsigned long long)(fr_mono_ms() - t0));
	return FR_OK;
}

/* Close descriptors lo..hi (close_range, or one by one where the kernel
 * lacks it). */
static void close_fds(unsigned int lo, unsigned int hi)
{
	long max;

	if (lo > hi || close_range(lo, hi, 0) == 0)
		return;
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (long fd = lo; fd < max && fd <= (long)hi; fd++)
		close((int)fd);
}

/* In the snapshot child, let go of what belongs to the parent.  The child
 * inherited every descriptor: client and peer sockets, both listeners,
 * libevent's signal socketpair.  While it holds them, a socket the parent
 * closes sends no FIN (the other side waits until the child exits), and
 * after a kill -9 of the parent the child still holds the listening ports,
 * so a restarted daemon cannot bind them.  Kept: 0-2 (logging) and the
 * data-dir lock, which must stay held until the child has renamed its last
 * file, or a restarted daemon could snapshot and truncate the WAL before
 * this older snapshot lands over its own.  Signals first: libevent's
 * handlers write to the socketpair, whose descriptor number a snapshot
 * file could reuse once it is closed. */
static void snapshot_child_detach(const struct node *n)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGCHLD };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		signal(sigs[i], SIG_DFL);
	if (n->lock_fd >= 3) {
		close_fds(3, (unsigned int)n->lock_fd - 1);
		close_fds((unsigned int)n->lock_fd + 1, ~0u);
	} else {
		close_fds(3, ~0u);
	}
}

void node_snapshot_bg(struct node *n)
{
	uint64_t lsn;
	pid_t pid;

	if (n->snap.child || n->stop.stopping || n->snap.changes == n->snap.changes_at_fork)
		return;
	lsn = snapshot_lsn_now(n);
	pid = fork();
	if (pid < 0) {
		fr_log(FR_LOG_WARN, "node", "background snapshot: fork: %s",
		       strerror(errno));
		return;
	}
	if (pid == 0) {
		/* Child: a copy-on-write image of the stores at this moment.
		 * Write and leave without running any exit handler of the
		 * parent's (libevent, the WAL thread that is not here). */
		snapshot_child_detach(n);
		_exit(snapshot_write_all(n, lsn) ? 1 : 0);
	}
	n->snap.child = pid;
	n->snap.child_lsn = lsn;
	n->snap.child_skips = n->dur.repl_skips;
	n->snap.changes_at_fork = n->snap.changes;
	fr_log(FR_LOG_DEBUG, "node", "background snapshot at lsn %llu: "
	       "child %ld", (unsigned long long)lsn, (long)pid);
}

void node_snapshot_reap(struct node *n, bool block)
{
	int status;
	pid_t r;

	if (!n->snap.child)
		return;
	do {
		r = waitpid(n->snap.child, &status, block ? 0 : WNOHANG);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return;
	n->snap.child = 0;
	if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		fr_log(FR_LOG_INFO, "node", "background snapshot at lsn %llu "
		       "done", (unsigned long long)n->snap.child_lsn);
		/* Batches skipped before the fork are in the snapshot. */
		if (n->snap.child_skips > n->dur.repl_skips_snapped)
			n->dur.repl_skips_snapped = n->snap.child_skips;
		snapshot_done(n, n->snap.child_lsn);
	} else {
		n->metrics.snapshots_failed++;
		n->snap.changes_at_fork = 0;   /* try again next period */
		if (!block)
			fr_log(FR_LOG_WARN, "node", "background snapshot at "
			       "lsn %llu failed (status 0x%x)",
			       (unsigned long long)n->snap.child_lsn, status);
	}
}
