/*
 * wal.c — the write-ahead log: numbered opaque records in segment files,
 * appended through one writer thread that syncs every group of queued
 * records with a single fdatasync (group commit), and the replay that reads
 * them back after a crash and cuts away a torn tail.
 *
 * Not here: what a record means (callers encode row batches), when to
 * snapshot, or which LSN to resume from (the caller replays first and opens
 * at last_lsn + 1).
 *
 * On disk (little-endian, every record 8-byte aligned so a payload read
 * into an aligned buffer stays aligned for zero-copy decoders):
 *
 *   0  u32 len        payload bytes
 *   4  u32 reserved   0
 *   8  u64 lsn        >= 1, consecutive across the whole log
 *  16  u64 checksum   XXH3-64 (seed 0) over the 8 lsn bytes then the payload
 *  24  payload, then zeros up to a multiple of 8
 *
 * Segments are `wal-<first lsn, %020llu>.log`.  A segment ends where the
 * next one begins; only the newest segment may end in a torn record.
 *
 * Segment life (writer thread unless noted):
 *
 *   shard_wal_open(next)      create wal-<next> (O_EXCL; an empty leftover
 *                             of that name is reused), fsync dir
 *   wal_write_group           a record that would push the segment past
 *                             segment_bytes: fdatasync the old segment,
 *                             wal_seg_create(wal-<lsn>), fsync dir, close old
 *   shard_wal_truncate_before unlink the oldest covered segments, oldest
 *                             first, never the newest (appender thread)
 *
 * Threads and the one lock (w->lock, a leaf: nothing else is taken while
 * it is held): the appender thread calls append/wait/truncate_before/close;
 * the writer thread (wal_writer_main) takes the whole queue, writes it
 * without the lock, syncs, then under the lock publishes durable_lsn and
 * wakes waiters, and calls durable_cb with the lock released.  The lock
 * guards the queue, queued_bytes, next_lsn, durable_lsn, failed, closing
 * and the segment list; fd and seg_bytes belong to the writer after open.
 */
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shard/shard.h"

#define WAL_HDR_BYTES 24u
#define WAL_NAME_LEN 28          /* "wal-" + 20 digits + ".log" */
#define WAL_DEF_SEGMENT_BYTES (64ull << 20)
#define WAL_DEF_MAX_RECORD (256u << 20)
#define WAL_DEF_MAX_QUEUED (1ull << 30)
#define WAL_IOV_MAX 1024         /* Linux IOV_MAX */

_Static_assert(WAL_HDR_BYTES % 8 == 0, "records stay 8-byte aligned");

static inline size_t wal_pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static inline void wal_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline void wal_put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline uint32_t wal_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t wal_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* ========================================================================
 * Record codec
 * ===================================================================== */

/* The lsn is hashed with the payload so that a record copied to the wrong
 * place (a stale block, a misdirected write) fails its checksum. */
static uint64_t wal_checksum(uint64_t lsn, const void *payload, size_t len)
{
	XXH3_state_t st;
	uint8_t lb[8];

	wal_put64(lb, lsn);
	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, lb, sizeof(lb));
	if (len)
		XXH3_64bits_update(&st, payload, len);
	return XXH3_64bits_digest(&st);
}

/* Write a whole record (WAL_HDR_BYTES + pad8(len) bytes) at dst. */
static void wal_encode_into(uint8_t *dst, uint64_t lsn, const void *payload,
			    size_t len)
{
	size_t padded = wal_pad8(len);

	wal_put32(dst, (uint32_t)len);
	wal_put32(dst + 4, 0);
	wal_put64(dst + 8, lsn);
	wal_put64(dst + 16, wal_checksum(lsn, payload, len));
	if (len)
		memcpy(dst + WAL_HDR_BYTES, payload, len);
	memset(dst + WAL_HDR_BYTES + len, 0, padded - len);
}

void shard_wal_record_encode(struct fr_wbuf *w, uint64_t lsn,
			     const void *payload, size_t len)
{
	uint8_t *dst;

	if (w->err)
		return;
	if (len > UINT32_MAX) {
		w->err = fr_fail(FR_ERR_TOOBIG,
				 "wal record field 'len': %zu bytes, expected <= %u",
				 len, UINT32_MAX);
		return;
	}
	dst = fr_wbuf_append(w, WAL_HDR_BYTES + wal_pad8(len));
	if (dst)
		wal_encode_into(dst, lsn, payload, len);
}

enum fr_err shard_wal_record_decode(const uint8_t *buf, size_t len,
				    size_t max_record_bytes, uint64_t *lsn,
				    const uint8_t **payload, size_t *plen,
				    size_t *consumed)
{
	uint32_t n, reserved;
	uint64_t l, sum;
	size_t padded, i;
	const uint8_t *p;

	if (!max_record_bytes)
		max_record_bytes = WAL_DEF_MAX_RECORD;
	if (len < WAL_HDR_BYTES)
		return fr_fail(FR_ERR_TRUNC,
			       "wal record: %zu bytes, expected a %u-byte header",
			       len, WAL_HDR_BYTES);
	n = wal_get32(buf);
	reserved = wal_get32(buf + 4);
	l = wal_get64(buf + 8);
	sum = wal_get64(buf + 16);
	if (reserved != 0)
		return fr_fail(FR_ERR_CORRUPT,
			       "wal record field 'reserved': 0x%08x, expected 0",
			       reserved);
	if (n > max_record_bytes)
		return fr_fail(FR_ERR_CORRUPT,
			       "wal record field 'len': %u, expected <= %zu",
			       n, max_record_bytes);
	if (l == 0)
		return fr_fail(FR_ERR_CORRUPT,
			       "wal record field 'lsn': 0, expected >= 1");
	padded = wal_pad8(n);
	if (len - WAL_HDR_BYTES < padded)
		return fr_fail(FR_ERR_TRUNC,
			       "wal record lsn %llu: %zu payload bytes present, expected %zu",
			       (unsigned long long)l, len - WAL_HDR_BYTES,
			       padded);
	p = buf + WAL_HDR_BYTES;
	if (wal_checksum(l, p, n) != sum)
		return fr_fail(FR_ERR_CHECKSUM,
			       "wal record lsn %llu field 'checksum': mismatch",
			       (unsigned long long)l);
	for (i = n; i < padded; i++)
		if (p[i] != 0)
			return fr_fail(FR_ERR_CORRUPT,
				       "wal record lsn %llu: padding byte %zu is 0x%02x, expected 0",
				       (unsigned long long)l, i - n, p[i]);
	*lsn = l;
	*payload = p;
	*plen = n;
	*consumed = WAL_HDR_BYTES + padded;
	return FR_OK;
}

/* ========================================================================
 * Segment files
 * ===================================================================== */

static void wal_seg_name(char out[WAL_NAME_LEN + 1], uint64_t first)
{
	snprintf(out, WAL_NAME_LEN + 1, "wal-%020llu.log",
		 (unsigned long long)first);
}

/* 1 for a well-formed segment name (number in *first), 0 for a name that
 * is not ours, -1 for a "wal-" name we would have written differently. */
static int wal_seg_parse(const char *name, uint64_t *first)
{
	uint64_t v = 0;
	int i;

	if (strncmp(name, "wal-", 4) != 0)
		return 0;
	if (strlen(name) != WAL_NAME_LEN || strcmp(name + 24, ".log") != 0)
		return -1;
	for (i = 4; i < 24; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(name[i] - '0'), &v))
			return -1;
	}
	if (v == 0)
		return -1;
	*first = v;
	return 1;
}

static int wal_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The first lsns of every segment in dir, ascending.  A missing dir is an
 * empty list.  *out is malloc'd (NULL when empty). */
static enum fr_err wal_seg_list(const char *dir, uint64_t **out, size_t *n)
{
	enum fr_err rc = FR_OK;
	uint64_t *v = NULL, *nv, first;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return FR_OK;
		return fr_fail(FR_ERR_IO, "wal dir '%s': opendir: %s", dir,
			       strerror(errno));
	}
	for (;;) {
		int kind;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				rc = fr_fail(FR_ERR_IO,
					     "wal dir '%s': readdir: %s", dir,
					     strerror(errno));
				goto out_free;
			}
			break;
		}
		kind = wal_seg_parse(de->d_name, &first);
		if (kind < 0)
			fr_log(FR_LOG_WARN, "wal",
			       "dir '%s': ignoring '%s': expected wal-<20 digits, >= 1>.log",
			       dir, de->d_name);
		if (kind <= 0)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = fr_fail(FR_ERR_NOMEM, "wal dir '%s': segment list",
					     dir);
				goto out_free;
			}
			v = nv;
		}
		v[cnt++] = first;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), wal_u64_cmp);
	*out = v;
	*n = cnt;
	return FR_OK;

out_free:
	free(v);
	closedir(d);
	return rc;
}

static enum fr_err wal_fsync_dir(int dirfd, const char *dir)
{
	if (fsync(dirfd) != 0)
		return fr_fail(FR_ERR_IO, "wal dir '%s': fsync: %s", dir,
			       strerror(errno));
	return FR_OK;
}

/* Make dir if it is missing, and make its entry durable in the parent. */
static enum fr_err wal_mkdir(const char *dir)
{
	char *parent;
	char *slash;
	int pfd;

	if (mkdir(dir, 0755) == 0) {
		parent = strdup(dir);
		if (!parent)
			return fr_fail(FR_ERR_NOMEM, "wal dir '%s'", dir);
		slash = strrchr(parent, '/');
		if (!slash)
			strcpy(parent, ".");
		else if (slash == parent)
			parent[1] = '\0';
		else
			*slash = '\0';
		pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd >= 0) {
			(void)fsync(pfd);
			close(pfd);
		}
		free(parent);
		return FR_OK;
	}
	if (errno == EEXIST)
		return FR_OK;
	return fr_fail(FR_ERR_IO, "wal dir '%s': mkdir: %s", dir,
		       strerror(errno));
}

/* ========================================================================
 * The log
 * ===================================================================== */

struct wal_rec {
	struct wal_rec *next;
	uint64_t lsn;
	size_t bytes;              /* encoded size */
	uint8_t data[];            /* the on-disk record */
};

struct shard_wal {
	char *dir;
	int dirfd;
	int fd;                    /* newest segment; writer thread */
	uint64_t seg_bytes;        /* bytes in it; writer thread */
	uint64_t segment_bytes;
	uint32_t max_record_bytes;
	uint64_t max_queued_bytes;
	shard_wal_durable_fn durable_cb;
	void *cb_arg;

	pthread_mutex_t lock;
	pthread_cond_t work;       /* writer: queue non-empty or closing */
	pthread_cond_t durable;    /* waiters: durable_lsn rose or failed */
	struct wal_rec *head, *tail;
	uint64_t queued_bytes;     /* appended, not yet durable */
	uint64_t next_lsn;         /* written by the appender, under lock */
	uint64_t durable_lsn;
	bool failed;
	bool closing;
	uint64_t *segs;            /* first lsns, ascending; last = newest */
	size_t nsegs, capsegs;
	pthread_t writer;
};

/* Create (or reuse an empty leftover of) segment wal-<first>; fsync dir.
 * Any thread holding no lock. */
static enum fr_err wal_seg_create(struct shard_wal *w, uint64_t first,
				  int *fdp)
{
	char name[WAL_NAME_LEN + 1];
	struct stat sb;
	enum fr_err rc;
	int fd;

	wal_seg_name(name, first);
	fd = openat(w->dirfd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST) {
		/* A crash between creating a segment and writing to it, or
		 * a replay that cut a whole segment away, leaves an empty
		 * file of exactly the name we want. */
		fd = openat(w->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &sb) != 0 || sb.st_size != 0)) {
			close(fd);
			return fr_fail(FR_ERR_EXISTS,
				       "wal segment '%s/%s' already holds records: expected next_lsn past them (replay first)",
				       w->dir, name);
		}
	}
	if (fd < 0)
		return fr_fail(FR_ERR_IO, "wal segment '%s/%s': open: %s",
			       w->dir, name, strerror(errno));
	rc = wal_fsync_dir(w->dirfd, w->dir);
	if (rc) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return FR_OK;
}

static enum fr_err wal_segs_push_locked(struct shard_wal *w, uint64_t first)
{
	uint64_t *nv;
	size_t ncap;

	if (w->nsegs && w->segs[w->nsegs - 1] == first)
		return FR_OK;
	if (w->nsegs == w->capsegs) {
		ncap = w->capsegs ? w->capsegs * 2 : 16;
		nv = realloc(w->segs, ncap * sizeof(*nv));
		if (!nv)
			return fr_fail(FR_ERR_NOMEM, "wal segment list");
		w->segs = nv;
		w->capsegs = ncap;
	}
	w->segs[w->nsegs++] = first;
	return FR_OK;
}

/* Write iov[0..n) fully, resuming after short writes. */
static int wal_writev_all(int fd, struct iovec *iov, int n)
{
	ssize_t k;

	while (n > 0) {
		k = writev(fd, iov, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int wal_datasync(int fd)
{
	int r;

	do
		r = fdatasync(fd);
	while (r != 0 && errno == EINTR);
	return r;
}

/* Start a new segment at first: the old one is synced first so that only
 * the newest segment can ever hold a torn record. */
static enum fr_err wal_roll(struct shard_wal *w, uint64_t first)
{
	enum fr_err rc;
	int nfd;

	if (wal_datasync(w->fd) != 0) {
		fr_log(FR_LOG_ERROR, "wal", "dir '%s': fdatasync: %s", w->dir,
		       strerror(errno));
		return FR_ERR_IO;
	}
	rc = wal_seg_create(w, first, &nfd);
	if (rc) {
		fr_log(FR_LOG_ERROR, "wal", "%s", fr_errmsg());
		return rc;
	}
	pthread_mutex_lock(&w->lock);
	rc = wal_segs_push_locked(w, first);
	pthread_mutex_unlock(&w->lock);
	close(w->fd);
	w->fd = nfd;
	w->seg_bytes = 0;
	if (rc)
		fr_log(FR_LOG_ERROR, "wal", "%s", fr_errmsg());
	return rc;
}

/* Write a group to disk and sync it once (plus once per segment rolled
 * inside the group).  Writer thread, lock not held. */
static enum fr_err wal_write_group(struct shard_wal *w, struct wal_rec *r)
{
	struct iovec iov[WAL_IOV_MAX];
	uint64_t run = 0;
	enum fr_err rc;
	int n = 0;

	for (; r; r = r->next) {
		/* A segment stays under segment_bytes unless one record is
		 * bigger than that on its own. */
		if (w->seg_bytes + run > 0 &&
		    w->seg_bytes + run + r->bytes > w->segment_bytes) {
			if (n && wal_writev_all(w->fd, iov, n) != 0)
				goto out_io;
			w->seg_bytes += run;
			n = 0;
			run = 0;
			rc = wal_roll(w, r->lsn);
			if (rc)
				return rc;
		}
		if (n == WAL_IOV_MAX) {
			if (wal_writev_all(w->fd, iov, n) != 0)
				goto out_io;
			w->seg_bytes += run;
			n = 0;
			run = 0;
		}
		iov[n].iov_base = r->data;
		iov[n].iov_len = r->bytes;
		n++;
		run += r->bytes;
	}
	if (n && wal_writev_all(w->fd, iov, n) != 0)
		goto out_io;
	w->seg_bytes += run;
	if (wal_datasync(w->fd) != 0) {
		fr_log(FR_LOG_ERROR, "wal", "dir '%s': fdatasync: %s", w->dir,
		       strerror(errno));
		return FR_ERR_IO;
	}
	return FR_OK;

out_io:
	fr_log(FR_LOG_ERROR, "wal", "dir '%s': write: %s", w->dir,
	       strerror(errno));
	return FR_ERR_IO;
}

static void wal_recs_free(struct wal_rec *r)
{
	struct wal_rec *next;

	for (; r; r = next) {
		next = r->next;
		free(r);
	}
}

static void *wal_writer_main(void *arg)
{
	struct shard_wal *w = arg;
	struct wal_rec *group, *r;
	uint64_t bytes, last;
	enum fr_err rc;
	bool failed;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->closing)
			pthread_cond_wait(&w->work, &w->lock);
		if (!w->head)
			break;          /* closing and drained */
		group = w->head;
		w->head = w->tail = NULL;
		failed = w->failed;
		pthread_mutex_unlock(&w->lock);

		bytes = 0;
		last = 0;
		for (r = group; r; r = r->next) {
			bytes += r->bytes;
			last = r->lsn;
		}
		/* After the first I/O error nothing more is written: the
		 * log on disk ends in (at most) one torn group, which replay
		 * cuts away. */
		rc = failed ? FR_ERR_IO : wal_write_group(w, group);

		pthread_mutex_lock(&w->lock);
		if (rc)
			w->failed = true;
		else
			w->durable_lsn = last;
		w->queued_bytes -= bytes;
		pthread_cond_broadcast(&w->durable);
		pthread_mutex_unlock(&w->lock);

		wal_recs_free(group);
		if (!rc && w->durable_cb)
			w->durable_cb(last, w->cb_arg);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct shard_wal *shard_wal_open(const char *dir, uint64_t next_lsn,
				 const struct shard_wal_opts *opts,
				 enum fr_err *err)
{
	struct shard_wal *w;
	uint64_t *existing = NULL;
	size_t nexisting = 0, i;
	enum fr_err rc;

	if (!dir || !*dir) {
		rc = fr_fail(FR_ERR_INVAL, "wal: dir: expected a path");
		goto out;
	}
	if (next_lsn == 0) {
		rc = fr_fail(FR_ERR_INVAL, "wal '%s': next_lsn: expected >= 1",
			     dir);
		goto out;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		rc = fr_fail(FR_ERR_NOMEM, "wal '%s'", dir);
		goto out;
	}
	w->fd = -1;
	w->dirfd = -1;
	w->next_lsn = next_lsn;
	w->durable_lsn = next_lsn - 1;
	w->segment_bytes = WAL_DEF_SEGMENT_BYTES;
	w->max_record_bytes = WAL_DEF_MAX_RECORD;
	w->max_queued_bytes = WAL_DEF_MAX_QUEUED;
	if (opts) {
		if (opts->segment_bytes)
			w->segment_bytes = opts->segment_bytes;
		if (opts->max_record_bytes)
			w->max_record_bytes = opts->max_record_bytes;
		if (opts->max_queued_bytes)
			w->max_queued_bytes = opts->max_queued_bytes;
		w->durable_cb = opts->durable_cb;
		w->cb_arg = opts->cb_arg;
	}
	w->dir = strdup(dir);
	if (!w->dir) {
		rc = fr_fail(FR_ERR_NOMEM, "wal '%s'", dir);
		goto out_free;
	}
	rc = wal_mkdir(dir);
	if (rc)
		goto out_free;
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		rc = fr_fail(FR_ERR_IO, "wal dir '%s': open: %s", dir,
			     strerror(errno));
		goto out_free;
	}
	rc = wal_seg_list(dir, &existing, &nexisting);
	if (rc)
		goto out_close_dir;
	for (i = 0; i < nexisting; i++) {
		if (existing[i] > next_lsn) {
			rc = fr_fail(FR_ERR_INVAL,
				     "wal '%s': next_lsn %llu, but segment wal-%020llu.log starts later (replay first, open at last_lsn + 1)",
				     dir, (unsigned long long)next_lsn,
				     (unsigned long long)existing[i]);
			goto out_free_list;
		}
	}
	rc = wal_seg_create(w, next_lsn, &w->fd);
	if (rc)
		goto out_free_list;
	/* The list becomes ours; the new segment goes last (it may already
	 * be there as a reused empty file). */
	w->segs = existing;
	w->nsegs = w->capsegs = nexisting;
	existing = NULL;
	rc = wal_segs_push_locked(w, next_lsn);
	if (rc)
		goto out_close_fd;

	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		rc = fr_fail(FR_ERR_NOMEM, "wal '%s': mutex", dir);
		goto out_close_fd;
	}
	if (pthread_cond_init(&w->work, NULL) != 0) {
		rc = fr_fail(FR_ERR_NOMEM, "wal '%s': condvar", dir);
		goto out_destroy_lock;
	}
	if (pthread_cond_init(&w->durable, NULL) != 0) {
		rc = fr_fail(FR_ERR_NOMEM, "wal '%s': condvar", dir);
		goto out_destroy_work;
	}
	if (pthread_create(&w->writer, NULL, wal_writer_main, w) != 0) {
		rc = fr_fail(FR_ERR_NOMEM, "wal '%s': writer thread", dir);
		goto out_destroy_durable;
	}
	if (err)
		*err = FR_OK;
	return w;

out_destroy_durable:
	pthread_cond_destroy(&w->durable);
out_destroy_work:
	pthread_cond_destroy(&w->work);
out_destroy_lock:
	pthread_mutex_destroy(&w->lock);
out_close_fd:
	close(w->fd);
out_free_list:
	free(existing);
	free(w->segs);
out_close_dir:
	close(w->dirfd);
out_free:
	free(w->dir);
	free(w);
out:
	if (err)
		*err = rc;
	return NULL;
}

enum fr_err shard_wal_append(struct shard_wal *w, const void *rec,
			     size_t len, uint64_t *lsn)
{
	struct wal_rec *r;
	size_t bytes;
	uint64_t l;

	if (len > w->max_record_bytes)
		return fr_fail(FR_ERR_TOOBIG,
			       "wal record: %zu bytes, expected <= max_record_bytes %u",
			       len, w->max_record_bytes);
	bytes = WAL_HDR_BYTES + wal_pad8(len);

	/* Only this thread adds to the queue, so a check that passes here
	 * still holds below unless the log fails meanwhile. */
	pthread_mutex_lock(&w->lock);
	if (w->failed) {
		pthread_mutex_unlock(&w->lock);
		return fr_fail(FR_ERR_IO, "wal '%s': failed after an I/O error",
			       w->dir);
	}
	if (w->closing) {
		pthread_mutex_unlock(&w->lock);
		return fr_fail(FR_ERR_CLOSED, "wal '%s': closing", w->dir);
	}
	/* An empty queue takes any record, so one larger than the bound
	 * is slow rather than impossible. */
	if (w->queued_bytes && w->queued_bytes + bytes > w->max_queued_bytes) {
		uint64_t q = w->queued_bytes;

		pthread_mutex_unlock(&w->lock);
		return fr_fail(FR_ERR_BUSY,
			       "wal '%s': %llu bytes queued + %zu, expected <= max_queued_bytes %llu",
			       w->dir, (unsigned long long)q, bytes,
			       (unsigned long long)w->max_queued_bytes);
	}
	l = w->next_lsn;
	pthread_mutex_unlock(&w->lock);

	/* Encode (copy + checksum) without the lock so the writer can
	 * publish meanwhile. */
	r = malloc(sizeof(*r) + bytes);
	if (!r)
		return fr_fail(FR_ERR_NOMEM, "wal record: %zu bytes", bytes);
	r->next = NULL;
	r->lsn = l;
	r->bytes = bytes;
	wal_encode_into(r->data, l, rec, len);

	pthread_mutex_lock(&w->lock);
	if (w->failed) {
		pthread_mutex_unlock(&w->lock);
		free(r);
		return fr_fail(FR_ERR_IO, "wal '%s': failed after an I/O error",
			       w->dir);
	}
	if (w->tail)
		w->tail->next = r;
	else
		w->head = r;
	w->tail = r;
	w->queued_bytes += bytes;
	w->next_lsn = l + 1;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	if (lsn)
		*lsn = l;
	return FR_OK;
}

enum fr_err shard_wal_wait(struct shard_wal *w, uint64_t lsn)
{
	enum fr_err rc = FR_OK;

	pthread_mutex_lock(&w->lock);
	if (lsn >= w->next_lsn) {
		rc = fr_fail(FR_ERR_INVAL,
			     "wal wait: lsn %llu, expected < %llu (not appended yet)",
			     (unsigned long long)lsn,
			     (unsigned long long)w->next_lsn);
		goto out_unlock;
	}
	while (w->durable_lsn < lsn && !w->failed)
		pthread_cond_wait(&w->durable, &w->lock);
	if (w->durable_lsn < lsn)
		rc = fr_fail(FR_ERR_IO, "wal '%s': failed after an I/O error",
			     w->dir);
out_unlock:
	pthread_mutex_unlock(&w->lock);
	return rc;
}

uint64_t shard_wal_durable_lsn(struct shard_wal *w)
{
	uint64_t v;

	pthread_mutex_lock(&w->lock);
	v = w->durable_lsn;
	pthread_mutex_unlock(&w->lock);
	return v;
}

enum fr_err shard_wal_truncate_before(struct shard_wal *w, uint64_t lsn)
{
	char name[WAL_NAME_LEN + 1];
	uint64_t *gone = NULL;
	enum fr_err rc = FR_OK;
	size_t k = 0, i;

	pthread_mutex_lock(&w->lock);
	/* Segment i holds lsns [segs[i], segs[i+1] - 1]; the newest one is
	 * never removed (the writer appends to it). */
	while (k + 1 < w->nsegs && w->segs[k + 1] - 1 <= lsn)
		k++;
	if (k) {
		gone = malloc(k * sizeof(*gone));
		if (!gone) {
			pthread_mutex_unlock(&w->lock);
			return fr_fail(FR_ERR_NOMEM, "wal truncate");
		}
		memcpy(gone, w->segs, k * sizeof(*gone));
		memmove(w->segs, w->segs + k,
			(w->nsegs - k) * sizeof(*w->segs));
		w->nsegs -= k;
	}
	pthread_mutex_unlock(&w->lock);

	/* Oldest first: a crash part-way leaves a log that still starts
	 * with one contiguous run of segments. */
	for (i = 0; i < k; i++) {
		wal_seg_name(name, gone[i]);
		if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT &&
		    rc == FR_OK)
			rc = fr_fail(FR_ERR_IO, "wal segment '%s/%s': unlink: %s",
				     w->dir, name, strerror(errno));
	}
	if (k && rc == FR_OK)
		rc = wal_fsync_dir(w->dirfd, w->dir);
	free(gone);
	return rc;
}

void shard_wal_close(struct shard_wal *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->closing = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->writer, NULL);

	wal_recs_free(w->head);
	close(w->fd);
	close(w->dirfd);
	pthread_cond_destroy(&w->durable);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	free(w->segs);
	free(w->dir);
	free(w);
}

/* ========================================================================
 * Replay
 * ===================================================================== */

static enum fr_err wal_cut(const char *path, size_t off)
{
	enum fr_err rc = FR_OK;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fr_fail(FR_ERR_IO, "wal segment '%s': open: %s", path,
			       strerror(errno));
	if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0)
		rc = fr_fail(FR_ERR_IO, "wal segment '%s': truncate to %zu: %s",
			     path, off, strerror(errno));
	close(fd);
	return rc;
}

enum fr_err shard_wal_replay(const char *dir, uint64_t after_lsn,
			     shard_wal_record_fn fn, void *arg,
			     struct shard_wal_replay_stats *stats)
{
	struct shard_wal_replay_stats local;
	uint64_t *segs = NULL, expect = 0, l;
	const uint8_t *payload;
	size_t nsegs, i, off, len = 0, plen, used;
	char *path = NULL;
	uint8_t *buf = NULL;
	enum fr_err rc;

	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	rc = wal_seg_list(dir, &segs, &nsegs);
	if (rc)
		return rc;
	path = malloc(strlen(dir) + WAL_NAME_LEN + 2);
	if (!path) {
		rc = fr_fail(FR_ERR_NOMEM, "wal replay");
		goto out_free;
	}
	for (i = 0; i < nsegs; i++) {
		bool last = i + 1 == nsegs;

		sprintf(path, "%s/", dir);
		wal_seg_name(path + strlen(path), segs[i]);
		if (expect && segs[i] != expect) {
			rc = fr_fail(FR_ERR_CORRUPT,
				     "wal segment '%s': starts at lsn %llu, expected %llu (the previous segment's last + 1)",
				     path, (unsigned long long)segs[i],
				     (unsigned long long)expect);
			goto out_free;
		}
		if (!expect && after_lsn != UINT64_MAX &&
		    segs[i] > after_lsn + 1) {
			rc = fr_fail(FR_ERR_CORRUPT,
				     "wal segment '%s': log starts at lsn %llu, expected <= %llu (records after %llu are missing)",
				     path, (unsigned long long)segs[i],
				     (unsigned long long)after_lsn + 1,
				     (unsigned long long)after_lsn);
			goto out_free;
		}
		rc = fr_read_file("wal segment", path, SIZE_MAX, &buf, &len);
		if (rc)
			goto out_free;
		for (off = 0; off < len; off += used) {
			rc = shard_wal_record_decode(buf + off, len - off,
						     UINT32_MAX, &l, &payload,
						     &plen, &used);
			if (rc && last) {
				fr_log(FR_LOG_WARN, "wal",
				       "segment '%s': torn tail at offset %zu (%zu bytes dropped): %s",
				       path, off, len - off, fr_errmsg());
				stats->torn_bytes = len - off;
				rc = wal_cut(path, off);
				break;
			}
			if (rc) {
				rc = fr_fail(FR_ERR_CORRUPT,
					     "wal segment '%s' offset %zu: %s (not the newest segment)",
					     path, off, fr_errmsg());
				break;
			}
			if (off == 0 && l != segs[i]) {
				rc = fr_fail(FR_ERR_CORRUPT,
					     "wal segment '%s' offset 0: lsn %llu, expected %llu (the segment's name)",
					     path, (unsigned long long)l,
					     (unsigned long long)segs[i]);
				break;
			}
			if (expect && l != expect) {
				rc = fr_fail(FR_ERR_CORRUPT,
					     "wal segment '%s' offset %zu: lsn %llu, expected %llu",
					     path, off, (unsigned long long)l,
					     (unsigned long long)expect);
				break;
			}
			expect = l + 1;
			stats->last_lsn = l;
			if (l <= after_lsn) {
				stats->skipped++;
				continue;
			}
			if (fn) {
				rc = fn(l, payload, plen, arg);
				if (rc)
					break;
			}
			stats->records++;
		}
		free(buf);
		if (rc)
			goto out_free;
		/* An empty segment still fixes where the next must start. */
		if (!expect)
			expect = segs[i];
	}
out_free:
	free(path);
	free(segs);
	return rc;
}
