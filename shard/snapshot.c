/*
 * snapshot.c — the whole store in one checksummed file, and loading it
 * back (docs/design.md §8).
 *
 * File layout, little-endian, no padding between fields:
 *
 *   header    magic "FRSS" u32, format u32 (1), lsn u64, file bytes u64
 *   model     name[64], priority u32, shards u32, ntables u32, 0 u32,
 *             per table: name[64], rows u64, dim u32, dtype u32
 *   tables    per table: data (rows * row_bytes), ver (rows x u64),
 *             org (rows x u32)
 *   shards    per (table, shard): epoch u64, significance f64, n u32,
 *             n x (origin u32, version u64)
 *   revoked   n u32, n x (t u64, r u64)
 *   epoch     model rollback epoch u64
 *   trailer   XXH3-64 of every byte before it, u64
 *
 * Written to "<path>.tmp", fsynced, renamed over path, and the directory
 * fsynced, so a crash leaves the old snapshot or the new one, never half.
 * Tables may be hundreds of MB: both directions stream through a 1 MiB
 * buffer with a streaming XXH3 state instead of building the file in RAM.
 * Loading trusts nothing: each count is checked against the bytes left
 * before anything is allocated, and the model definition, vectors and
 * revoked ranges are validated like any other input.
 *
 * Not here: choosing when to snapshot or which WAL records it covers (the
 * node does that and passes lsn), and the undo ring (RAM only: a loaded
 * store's undo horizon starts at its newest row version).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "shard/shard_int.h"

#define SNAP_MAGIC 0x53535246u       /* "FRSS" little-endian */
#define SNAP_FORMAT 1u
#define SNAP_HDR_BYTES 24u
#define SNAP_MODEL_BYTES (SHARD_NAME_MAX + 1 + 16)
#define SNAP_TABLE_BYTES (SHARD_NAME_MAX + 1 + 16)
#define SNAP_BUF_BYTES (1u << 20)

/* ========================================================================
 * Writing
 * ===================================================================== */

struct snap_w {
	int fd;
	const char *path;           /* for messages */
	XXH3_state_t *xx;
	uint8_t *buf;
	size_t len, cap;            /* cap: SNAP_BUF_BYTES or the file size */
	enum fr_err err;
};

static void w_raw(struct snap_w *w, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0 && !w->err) {
		ssize_t k = write(w->fd, b, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			w->err = fr_fail(FR_ERR_IO, "snapshot '%s': write: %s",
					 w->path, k < 0 ? strerror(errno) : "wrote 0 bytes");
			return;
		}
		b += k;
		n -= (size_t)k;
	}
}

static void w_flush(struct snap_w *w)
{
	if (w->len == 0)
		return;
	XXH3_64bits_update(w->xx, w->buf, w->len);
	w_raw(w, w->buf, w->len);
	w->len = 0;
}

static void w_bytes(struct snap_w *w, const void *p, size_t n)
{
	if (n >= w->cap) {
		w_flush(w);
		XXH3_64bits_update(w->xx, p, n);
		w_raw(w, p, n);
		return;
	}
	if (w->len + n > w->cap)
		w_flush(w);
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void w_u32(struct snap_w *w, uint32_t v)
{
	w_bytes(w, &v, 4);
}

static void w_u64(struct snap_w *w, uint64_t v)
{
	w_bytes(w, &v, 8);
}

/* Names go out NUL-padded so the file is a function of the store. */
static void put_name(struct snap_w *w, const char *s)
{
	char name[SHARD_NAME_MAX + 1] = { 0 };

	memcpy(name, s, strnlen(s, SHARD_NAME_MAX));
	w_bytes(w, name, sizeof(name));
}

static uint64_t snap_file_bytes(const struct shard_store *st)
{
	uint64_t n = SNAP_HDR_BYTES + SNAP_MODEL_BYTES +
		     (uint64_t)st->def.ntables * SNAP_TABLE_BYTES;

	for (uint32_t t = 0; t < st->def.ntables; t++)
		n += st->tabs[t].rows * (st->tabs[t].row_bytes + 12);
	for (size_t i = 0; i < (size_t)st->def.ntables * st->def.shards; i++)
		n += 20 + (uint64_t)st->sh[i].vv.n * 12;
	n += 4 + (uint64_t)st->nrevoked * 16 + 8 + 8;
	return n;
}

/* fsync the directory holding path, so the rename itself is durable. */
static enum fr_err sync_dir(const char *path)
{
	char *copy = strdup(path);
	enum fr_err err = FR_OK;
	int fd;

	if (!copy)
		return fr_fail(FR_ERR_NOMEM, "snapshot '%s': path", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		err = fr_fail(FR_ERR_IO, "snapshot '%s': fsync of directory: %s",
			      path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(copy);
	return err;
}

enum fr_err shard_store_snapshot(const struct shard_store *st,
				 const char *path, uint64_t lsn)
{
	struct snap_w w = { .fd = -1, .path = path };
	const struct shard_model_def *def = &st->def;
	char *tmp = NULL;
	uint64_t sum;
	enum fr_err err;

	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		tmp = NULL;
		err = fr_fail(FR_ERR_NOMEM, "snapshot '%s': path", path);
		goto out;
	}
	w.xx = XXH3_createState();
	/* Small stores get a small buffer (tests write thousands). */
	w.cap = snap_file_bytes(st) < SNAP_BUF_BYTES ?
		(size_t)snap_file_bytes(st) : SNAP_BUF_BYTES;
	w.buf = malloc(w.cap);
	if (!w.xx || !w.buf) {
		err = fr_fail(FR_ERR_NOMEM, "snapshot '%s': buffers", path);
		goto out;
	}
	XXH3_64bits_reset(w.xx);
	w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		err = fr_fail(FR_ERR_IO, "snapshot '%s': open: %s", tmp,
			      strerror(errno));
		goto out;
	}

	w_u32(&w, SNAP_MAGIC);
	w_u32(&w, SNAP_FORMAT);
	w_u64(&w, lsn);
	w_u64(&w, snap_file_bytes(st));

	put_name(&w, def->name);
	w_u32(&w, def->priority);
	w_u32(&w, def->shards);
	w_u32(&w, def->ntables);
	w_u32(&w, 0);
	for (uint32_t t = 0; t < def->ntables; t++) {
		put_name(&w, def->tables[t].name);
		w_u64(&w, def->tables[t].rows);
		w_u32(&w, def->tables[t].dim);
		w_u32(&w, (uint32_t)def->tables[t].dtype);
	}
	for (uint32_t t = 0; t < def->ntables; t++) {
		const struct shard_tab *tab = &st->tabs[t];

		w_bytes(&w, tab->data, tab->rows * tab->row_bytes);
		w_bytes(&w, tab->ver, tab->rows * sizeof(*tab->ver));
		w_bytes(&w, tab->org, tab->rows * sizeof(*tab->org));
	}
	for (size_t i = 0; i < (size_t)def->ntables * def->shards; i++) {
		const struct shard_sh *sh = &st->sh[i];
		uint64_t bits;

		memcpy(&bits, &sh->significance, 8);
		w_u64(&w, sh->epoch);
		w_u64(&w, bits);
		w_u32(&w, sh->vv.n);
		for (uint32_t j = 0; j < sh->vv.n; j++) {
			w_u32(&w, sh->vv.e[j].origin);
			w_u64(&w, sh->vv.e[j].version);
		}
	}
	w_u32(&w, st->nrevoked);
	for (uint32_t i = 0; i < st->nrevoked; i++) {
		w_u64(&w, st->revoked[i].t);
		w_u64(&w, st->revoked[i].r);
	}
	w_u64(&w, st->epoch);
	w_flush(&w);
	sum = XXH3_64bits_digest(w.xx);
	w_raw(&w, &sum, 8);
	err = w.err;
	if (err)
		goto out;
	if (fsync(w.fd) != 0) {
		err = fr_fail(FR_ERR_IO, "snapshot '%s': fsync: %s", tmp,
			      strerror(errno));
		goto out;
	}
	if (close(w.fd) != 0) {
		w.fd = -1;
		err = fr_fail(FR_ERR_IO, "snapshot '%s': close: %s", tmp,
			      strerror(errno));
		goto out;
	}
	w.fd = -1;
	if (rename(tmp, path) != 0) {
		err = fr_fail(FR_ERR_IO, "snapshot '%s': rename from '%s': %s",
			      path, tmp, strerror(errno));
		goto out;
	}
	err = sync_dir(path);

out:
	if (w.fd >= 0)
		close(w.fd);
	if (err && tmp)
		unlink(tmp);
	free(tmp);
	free(w.buf);
	XXH3_freeState(w.xx);
	return err;
}

/* ========================================================================
 * Loading
 * ===================================================================== */

struct snap_r {
	int fd;
	const char *path;
	XXH3_state_t *xx;
	uint8_t *buf;
	size_t pos, len;            /* unread bytes are buf[pos, len) */
	size_t cap;                 /* SNAP_BUF_BYTES or the body size */
	uint64_t off;               /* body bytes consumed */
	uint64_t body;              /* file size minus the trailer */
	enum fr_err err;
};

static uint64_t r_left(const struct snap_r *r)
{
	return r->body - r->off;
}

/* Read exactly n body bytes from the file into dst, hashing them. */
static void r_fill(struct snap_r *r, void *dst, size_t n)
{
	uint8_t *d = dst;

	while (n > 0 && !r->err) {
		ssize_t k = read(r->fd, d, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r->err = fr_fail(k < 0 ? FR_ERR_IO : FR_ERR_CORRUPT,
					 "snapshot '%s': read at %llu: %s",
					 r->path, (unsigned long long)r->off,
					 k < 0 ? strerror(errno) : "file shrank");
			return;
		}
		XXH3_64bits_update(r->xx, d, (size_t)k);
		d += k;
		n -= (size_t)k;
	}
}

static void r_bytes(struct snap_r *r, void *dst, size_t n, const char *what)
{
	uint8_t *d = dst;
	size_t k;

	if (r->err)
		goto out_zero;
	if (n > r_left(r)) {
		r->err = fr_fail(FR_ERR_CORRUPT,
				 "snapshot '%s': %s: needs %zu bytes at offset %llu, %llu left",
				 r->path, what, n, (unsigned long long)r->off,
				 (unsigned long long)r_left(r));
		goto out_zero;
	}
	k = r->len - r->pos < n ? r->len - r->pos : n;
	memcpy(d, r->buf + r->pos, k);
	r->pos += k;
	d += k;
	n -= k;
	r->off += k;
	if (n >= r->cap) {
		r_fill(r, d, n);        /* big arrays go straight in */
		r->off += n;
		return;
	}
	if (n > 0) {
		uint64_t want = r_left(r) - n;  /* bytes beyond this field */

		want = n + (want < r->cap - n ? want : r->cap - n);
		r_fill(r, r->buf, want);
		r->len = want;
		memcpy(d, r->buf, n);
		r->pos = n;
		r->off += n;
	}
	if (!r->err)
		return;
out_zero:
	memset(dst, 0, n);
}

static uint32_t r_u32(struct snap_r *r, const char *what)
{
	uint32_t v;

	r_bytes(r, &v, 4, what);
	return r->err ? 0 : v;
}

static uint64_t r_u64(struct snap_r *r, const char *what)
{
	uint64_t v;

	r_bytes(r, &v, 8, what);
	return r->err ? 0 : v;
}

/* r->err = CORRUPT with a message, keeping the first error. */
#define r_bad(r, ...)                                                       \
	do {                                                                \
		if (!(r)->err)                                              \
			(r)->err = fr_fail(FR_ERR_CORRUPT, __VA_ARGS__);    \
	} while (0)

static void read_def(struct snap_r *r, struct shard_model_def *def)
{
	memset(def, 0, sizeof(*def));
	r_bytes(r, def->name, sizeof(def->name), "model name");
	def->priority = r_u32(r, "priority");
	def->shards = r_u32(r, "shards");
	def->ntables = r_u32(r, "ntables");
	if (r_u32(r, "reserved") != 0)
		r_bad(r, "snapshot '%s': model reserved field is not 0", r->path);
	if (r->err)
		return;
	if (def->ntables < 1 || def->ntables > SHARD_TABLES_MAX) {
		r_bad(r, "snapshot '%s': ntables %u out of range [1, %d]",
		      r->path, def->ntables, SHARD_TABLES_MAX);
		return;
	}
	for (uint32_t t = 0; t < def->ntables; t++) {
		struct shard_table_def *td = &def->tables[t];

		r_bytes(r, td->name, sizeof(td->name), "table name");
		td->rows = r_u64(r, "table rows");
		td->dim = r_u32(r, "table dim");
		td->dtype = (enum shard_dtype)r_u32(r, "table dtype");
	}
	if (r->err)
		return;
	/* The names must be NUL-terminated inside their arrays before
	 * anything treats them as strings. */
	if (!memchr(def->name, 0, sizeof(def->name))) {
		r_bad(r, "snapshot '%s': model name not terminated", r->path);
		return;
	}
	for (uint32_t t = 0; t < def->ntables; t++)
		if (!memchr(def->tables[t].name, 0, sizeof(def->tables[t].name))) {
			r_bad(r, "snapshot '%s': table %u name not terminated",
			      r->path, t);
			return;
		}
	if (shard_model_validate(def) != FR_OK) {
		/* fr_errmsg() is overwritten by r_bad's own fr_fail: copy. */
		char why[256];

		snprintf(why, sizeof(why), "%s", fr_errmsg());
		r_bad(r, "snapshot '%s': model definition: %s", r->path, why);
	}
}

/* Everything the tables section needs must be in the file before a byte
 * of it is allocated: a corrupt rows field must not become a huge calloc. */
static void check_sizes(struct snap_r *r, const struct shard_model_def *def)
{
	uint64_t need = 0, x;

	if (r->err)
		return;         /* def may be half read */
	for (uint32_t t = 0; t < def->ntables; t++) {
		const struct shard_table_def *td = &def->tables[t];

		if (!fr_mul_size(td->rows, shard_row_bytes(td) + 12, &x) ||
		    !fr_add_size(need, x, &need))
			goto out_bad;
	}
	if (!fr_mul_size((uint64_t)def->ntables * def->shards, 20, &x) ||
	    !fr_add_size(need, x, &need) || need > r_left(r))
		goto out_bad;
	return;
out_bad:
	r_bad(r, "snapshot '%s': model of %u tables x %u shards needs more bytes than the %llu left",
	      r->path, def->ntables, def->shards,
	      (unsigned long long)r_left(r));
}

static void read_tables(struct snap_r *r, struct shard_store *st)
{
	for (uint32_t t = 0; t < st->def.ntables && !r->err; t++) {
		struct shard_tab *tab = &st->tabs[t];

		r_bytes(r, tab->data, tab->rows * tab->row_bytes, "table data");
		r_bytes(r, tab->ver, tab->rows * sizeof(*tab->ver), "versions");
		r_bytes(r, tab->org, tab->rows * sizeof(*tab->org), "origins");
		if (r->err)
			return;
		for (uint64_t i = 0, s = 0; i < tab->rows; i++) {
			if ((tab->ver[i] == 0) != (tab->org[i] == 0)) {
				r_bad(r, "snapshot '%s': table '%s' row %llu: version %llu with origin %u",
				      r->path, st->def.tables[t].name,
				      (unsigned long long)i,
				      (unsigned long long)tab->ver[i],
				      tab->org[i]);
				return;
			}
			/* No undo record exists for what the file holds: a
			 * rollback can reach no further back than the newest
			 * row of each shard (undo.c, rule 1). */
			shard_undo_lose(st, shard_sh_at(st, t, (uint32_t)s),
					tab->ver[i]);
			if (++s == st->def.shards)
				s = 0;
		}
	}
}

static void read_shards(struct snap_r *r, struct shard_store *st)
{
	size_t nsh = (size_t)st->def.ntables * st->def.shards;

	for (size_t i = 0; i < nsh && !r->err; i++) {
		struct shard_sh *sh = &st->sh[i];
		uint64_t bits;
		uint32_t n;

		sh->epoch = r_u64(r, "shard epoch");
		bits = r_u64(r, "shard significance");
		memcpy(&sh->significance, &bits, 8);
		n = r_u32(r, "vector length");
		if (r->err)
			return;
		if (!isfinite(sh->significance) || sh->significance < 0) {
			r_bad(r, "snapshot '%s': table %zu shard %zu: significance not a finite value >= 0",
			      r->path, i / st->def.shards, i % st->def.shards);
			return;
		}
		if (n > SHARD_VV_MAX || (uint64_t)n * 12 > r_left(r)) {
			r_bad(r, "snapshot '%s': table %zu shard %zu: vector of %u origins (at most %d, and %llu bytes left)",
			      r->path, i / st->def.shards, i % st->def.shards,
			      n, SHARD_VV_MAX, (unsigned long long)r_left(r));
			return;
		}
		for (uint32_t j = 0; j < n; j++) {
			uint32_t o = r_u32(r, "vector origin");
			uint64_t v = r_u64(r, "vector version");

			if (r->err)
				return;
			/* Sorted, distinct, no zero entries: the one
			 * canonical form, so digests match the writer's. */
			if (o == 0 || v == 0 ||
			    (sh->vv.n && sh->vv.e[sh->vv.n - 1].origin >= o)) {
				r_bad(r, "snapshot '%s': table %zu shard %zu: vector entry %u (origin %u, version %llu) not sorted or zero",
				      r->path, i / st->def.shards,
				      i % st->def.shards, j, o,
				      (unsigned long long)v);
				return;
			}
			if (shard_vv_advance(&sh->vv, o, v) != FR_OK) {
				r->err = FR_ERR_NOMEM;
				return;
			}
		}
	}
}

static void read_tail(struct snap_r *r, struct shard_store *st)
{
	uint32_t n = r_u32(r, "revoked count");

	if (r->err)
		return;
	if ((uint64_t)n * 16 > r_left(r)) {
		r_bad(r, "snapshot '%s': %u revoked ranges but %llu bytes left",
		      r->path, n, (unsigned long long)r_left(r));
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t t = r_u64(r, "revoked t"), rr = r_u64(r, "revoked r");

		if (r->err)
			return;
		if (t >= rr || (st->nrevoked &&
				t <= st->revoked[st->nrevoked - 1].r)) {
			r_bad(r, "snapshot '%s': revoked range %u (%llu, %llu] empty, unsorted or overlapping",
			      r->path, i, (unsigned long long)t,
			      (unsigned long long)rr);
			return;
		}
		if (shard_revoked_add(st, t, rr) != FR_OK) {
			r->err = FR_ERR_NOMEM;
			return;
		}
	}
	st->epoch = r_u64(r, "model epoch");
	if (!r->err && r_left(r) != 0)
		r_bad(r, "snapshot '%s': %llu unexpected bytes before the checksum",
		      r->path, (unsigned long long)r_left(r));
}

struct shard_store *shard_store_load(const char *path,
				     const struct shard_store_opts *opts,
				     uint64_t *lsn, enum fr_err *err)
{
	struct snap_r r = { .fd = -1, .path = path };
	struct shard_store *st = NULL;
	struct shard_model_def *def = NULL;
	uint64_t want, got, file_lsn;
	struct stat sb;
	enum fr_err e;

	r.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0) {
		e = errno == ENOENT ?
			fr_fail(FR_ERR_NOTFOUND, "snapshot '%s': no such file", path) :
			fr_fail(FR_ERR_IO, "snapshot '%s': open: %s", path,
				strerror(errno));
		goto out;
	}
	if (fstat(r.fd, &sb) != 0) {
		e = fr_fail(FR_ERR_IO, "snapshot '%s': fstat: %s", path,
			    strerror(errno));
		goto out;
	}
	if ((uint64_t)sb.st_size < SNAP_HDR_BYTES + 8) {
		e = fr_fail(FR_ERR_CORRUPT,
			    "snapshot '%s': %lld bytes, shorter than a header",
			    path, (long long)sb.st_size);
		goto out;
	}
	r.body = (uint64_t)sb.st_size - 8;
	r.xx = XXH3_createState();
	r.cap = r.body < SNAP_BUF_BYTES ? (size_t)r.body : SNAP_BUF_BYTES;
	r.buf = malloc(r.cap);
	def = malloc(sizeof(*def));
	if (!r.xx || !r.buf || !def) {
		e = fr_fail(FR_ERR_NOMEM, "snapshot '%s': buffers", path);
		goto out;
	}
	XXH3_64bits_reset(r.xx);

	if (r_u32(&r, "magic") != SNAP_MAGIC && !r.err) {
		e = fr_fail(FR_ERR_MAGIC, "snapshot '%s': magic is not \"FRSS\"",
			    path);
		goto out;
	}
	got = r_u32(&r, "format");
	if (got != SNAP_FORMAT && !r.err) {
		e = fr_fail(FR_ERR_VERSION,
			    "snapshot '%s': format %llu; this build reads %u",
			    path, (unsigned long long)got, SNAP_FORMAT);
		goto out;
	}
	file_lsn = r_u64(&r, "lsn");
	want = r_u64(&r, "file bytes");
	if (!r.err && want != (uint64_t)sb.st_size)
		r_bad(&r, "snapshot '%s': header says %llu bytes, file has %lld (truncated?)",
		      path, (unsigned long long)want, (long long)sb.st_size);
	read_def(&r, def);
	check_sizes(&r, def);
	if (r.err) {
		e = r.err;
		goto out;
	}
	st = shard_store_alloc(def, opts, &e);
	if (!st)
		goto out;
	read_tables(&r, st);
	read_shards(&r, st);
	read_tail(&r, st);
	if (r.err) {
		e = r.err;
		if (e == FR_ERR_NOMEM)
			fr_fail(e, "snapshot '%s': vectors", path);
		goto out;
	}
	if (pread(r.fd, &got, 8, (off_t)r.body) != 8) {
		e = fr_fail(FR_ERR_IO, "snapshot '%s': reading the checksum",
			    path);
		goto out;
	}
	want = XXH3_64bits_digest(r.xx);
	if (got != want) {
		e = fr_fail(FR_ERR_CHECKSUM,
			    "snapshot '%s': checksum %016llx, contents hash to %016llx",
			    path, (unsigned long long)got,
			    (unsigned long long)want);
		goto out;
	}
	/* Indexes and digests are derived state: rebuild them.  Every row is
	 * indexed, so horizon 0 is exact. */
	for (uint32_t t = 0; t < st->def.ntables; t++)
		for (uint32_t s = 0; s < st->def.shards; s++) {
			struct shard_sh *sh = shard_sh_at(st, t, s);

			shard_index_rebuild(st, t, s);  /* NOMEM: scans */
			if (sh->vv.n || sh->epoch)
				shard_sh_changed(st, t, s);
		}
	if (lsn)
		*lsn = file_lsn;
	e = FR_OK;

out:
	if (e) {
		shard_store_free(st);
		st = NULL;
	}
	if (r.fd >= 0)
		close(r.fd);
	free(r.buf);
	free(def);
	XXH3_freeState(r.xx);
	*err = e;
	return st;
}
