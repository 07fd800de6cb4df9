/*
 * admin.c — the synchronous ZooKeeper client of the `freshet` command
 * (topology.h, "Synchronous admin client"): connect and wait for the
 * session, create and read model definitions, list the members and
 * leaders of every DC, file and list rollback directives, read and
 * compare-and-set a model's health state and its role overrides.
 *
 * One thread uses a struct topo_admin and every call blocks.  The only
 * callback is the session watcher, which runs on zookeeper_mt's completion
 * thread: it records the session state under a mutex and signals a
 * condition variable; nothing else happens there (docs/design.md rule 5).
 *
 * Everything read from ZooKeeper is untrusted: each znode is parsed with
 * the codec (codec.c) and checked against its path (a member under
 * nodes/dc1/3 must say dc "dc1" and id 3); one that does not fit is logged
 * with its path, counted and left out.  A znode that vanishes between the
 * listing and the read is a normal race, not an error.  ZooKeeper's codes
 * are translated here to enum fr_err with zerror()'s text and the path in
 * the detail.  A read or a create that meets CONNECTIONLOSS waits for the
 * session to come back (within the connect timeout) and tries again; a
 * create retried that way finds its own znode and counts it as done
 * (rule 1: the outcome of the lost call is unknown).
 *
 * Filing a directive (topo_admin_rollback_file) is one zoo_multi:
 *
 *   [check-and-set state]   setData(state, version) or create(state)
 *   guard                   setData(rollbacks/, its data version v)
 *   create                  rollbacks/r_ PERSISTENT|SEQUENCE
 *
 * The state's JSON must carry the new directive's epoch, which ZooKeeper
 * picks only when it creates the child: it is the parent's cversion at
 * that moment.  So we read rollbacks/'s Stat (cversion c, version v)
 * and write epoch c + 1; the guard makes the multi fail if any other
 * filer got in between, so the prediction holds for everyone who files
 * through here (someone creating children by hand can still move
 * cversion: then the state is corrected by a second compare-and-set).
 * The guard is what makes a CONNECTIONLOSS safe, too (rule 1): the
 * sequential child cannot be found by name, but the lost multi and a
 * retry carry the same guard version, so at most one of them can ever
 * succeed.  After the loss we look for r_<c> holding our bytes (ours,
 * done); otherwise we retry the same multi; if that fails on a version
 * and r_<c> is still not ours, the outcome is reported as unknown
 * (FR_ERR_ZK, "check `freshet history`") rather than filing twice.
 *
 * Not here: watches, the election, anything the node does (member.c,
 * reads.c, session.c, loop.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The synchronous calls (zoo_get, ...) exist only in zookeeper_mt and
 * its header shows them only under THREADED. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "topology/topo_int.h"

#define MOD "topology"

/* Session timeout asked of ZooKeeper; the command's session lives only
 * as long as the command and owns no ephemerals. */
#define ADMIN_SESSION_MS 10000
/* A znode's data is read into a buffer grown to its size, up to this
 * (ZooKeeper's own default jute.maxbuffer). */
#define ADMIN_DATA_MAX (1024 * 1024)
/* Tries of one call across CONNECTIONLOSS. */
#define ADMIN_TRIES 3

struct topo_admin {
	zhandle_t *zh;
	char hosts[TOPO_HOSTS_MAX + 1];
	char root[TOPO_NAME_MAX + 16];  /* "/freshet/<cluster>" */
	uint32_t timeout_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;              /* signalled on every state change */
	int state;                      /* last session state (under mu) */
};

/* A path into buf[TOPO_PATH_MAX]; false when it would not fit (only a
 * child name read from ZooKeeper can make it that long). */
static bool path_fmt(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool path_fmt(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, TOPO_PATH_MAX, fmt, ap);
	va_end(ap);
	return n >= 0 && n < TOPO_PATH_MAX;
}

/* ------------------------------------------------------------------------
 * Session
 * ---------------------------------------------------------------------- */

/* zookeeper_mt's completion thread: record the state, wake the caller. */
static void admin_watcher(zhandle_t *zh, int type, int state,
			  const char *path, void *ctx)
{
	struct topo_admin *a = ctx;

	if (type != ZOO_SESSION_EVENT || !a)
		return;
	pthread_mutex_lock(&a->mu);
	a->state = state;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* The client library's log lines, into ours at debug level: the command
 * reports failures itself, and a refused connect is logged by the library
 * on every retry. */
static void admin_zk_log(const char *message)
{
	fr_log(FR_LOG_DEBUG, "zookeeper", "%s", message);
}

static void deadline_after(struct timespec *ts, uint32_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait until the session is connected, for at most ms.  FR_ERR_TIMEOUT,
 * or FR_ERR_ZK once the session is expired or refused for good.
 * "Connected" is what the client says now (zoo_state): the watcher's
 * record can lag behind a loss that a call has just reported, so it
 * only wakes us, and we look again every few ms anyway. */
static enum fr_err admin_wait_connected(struct topo_admin *a, uint32_t ms)
{
	struct timespec dl, slice, now;
	enum fr_err err = FR_OK;
	int rc = 0;

	deadline_after(&dl, ms);
	pthread_mutex_lock(&a->mu);
	for (;;) {
		if (a->zh && zoo_state(a->zh) == ZOO_CONNECTED_STATE)
			break;
		if (a->state == ZOO_EXPIRED_SESSION_STATE) {
			err = fr_fail(FR_ERR_ZK, "ZooKeeper %s: the session "
				      "expired", a->hosts);
			break;
		}
		if (a->state == ZOO_AUTH_FAILED_STATE) {
			err = fr_fail(FR_ERR_ZK, "ZooKeeper %s: authentication "
				      "failed", a->hosts);
			break;
		}
		if (rc == ETIMEDOUT) {
			err = fr_fail(FR_ERR_TIMEOUT,
				      "ZooKeeper %s: no session within %u ms "
				      "(is it running and reachable?)",
				      a->hosts, ms);
			break;
		}
		deadline_after(&slice, 20);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > dl.tv_sec ||
		    (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec)) {
			rc = ETIMEDOUT;
			continue;
		}
		if (slice.tv_sec > dl.tv_sec ||
		    (slice.tv_sec == dl.tv_sec && slice.tv_nsec > dl.tv_nsec))
			slice = dl;
		pthread_cond_timedwait(&a->cv, &a->mu, &slice);
	}
	pthread_mutex_unlock(&a->mu);
	return err;
}

struct topo_admin *topo_admin_connect(const char *hosts, const char *cluster,
				      uint32_t timeout_ms, enum fr_err *err)
{
	pthread_condattr_t ca;
	struct topo_admin *a;
	enum fr_err e;

	/* The C client reads hosts as "host:port,host:port[/chroot]":
	 * refuse what it could only misread. */
	e = topo_check_hosts("ZooKeeper connect string", hosts);
	if (!e)
		e = fr_name_check("cluster name", cluster, TOPO_NAME_MAX);
	/* A chroot that does not exist yet is made (as Kafka does), so a
	 * new environment needs no manual step in ZooKeeper. */
	if (!e)
		e = topo_chroot_ensure(hosts, timeout_ms);
	if (e)
		goto out_err;
	a = calloc(1, sizeof(*a));
	if (!a) {
		e = fr_fail(FR_ERR_NOMEM, "no memory for a ZooKeeper client");
		goto out_err;
	}
	snprintf(a->hosts, sizeof(a->hosts), "%s", hosts);
	snprintf(a->root, sizeof(a->root), "/freshet/%s", cluster);
	a->timeout_ms = timeout_ms;
	a->state = 0;
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);

	zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
	a->zh = zookeeper_init2(hosts, admin_watcher, ADMIN_SESSION_MS, NULL,
				a, 0, admin_zk_log);
	if (!a->zh) {
		/* Its errno says little (ENOENT for a name that does not
		 * resolve), so say what it means. */
		e = fr_fail(FR_ERR_INVAL, "ZooKeeper hosts '%s': the client "
			    "cannot use them (not HOST:PORT[,HOST:PORT...]"
			    "[/CHROOT], or a name that does not resolve)",
			    hosts);
		goto out_free;
	}
	e = admin_wait_connected(a, timeout_ms);
	if (e)
		goto out_free;
	fr_log(FR_LOG_DEBUG, MOD, "connected to %s (root %s)", a->hosts,
	       a->root);
	return a;

out_free:
	topo_admin_close(a);
out_err:
	if (err)
		*err = e;
	return NULL;
}

void topo_admin_close(struct topo_admin *a)
{
	if (!a)
		return;
	/* Joins the library's threads, so no watcher runs after this. */
	if (a->zh)
		zookeeper_close(a->zh);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

/* ------------------------------------------------------------------------
 * ZooKeeper calls, with their codes translated
 * ---------------------------------------------------------------------- */

static enum fr_err zk_fail(int rc, const char *op, const char *path)
{
	enum fr_err err;

	switch (rc) {
	case ZNONODE: err = FR_ERR_NOTFOUND; break;
	case ZNODEEXISTS: err = FR_ERR_EXISTS; break;
	case ZOPERATIONTIMEOUT: err = FR_ERR_TIMEOUT; break;
	case ZBADARGUMENTS: err = FR_ERR_INVAL; break;
	case ZNOAUTH: err = FR_ERR_REFUSED; break;
	default: err = FR_ERR_ZK; break;
	}
	return fr_fail(err, "%s: %s: %s", path, op, zerror(rc));
}

/* The decoder's failure on path's data as FR_ERR_CORRUPT naming what
 * the znode is. */
static enum fr_err malformed(const char *path, const char *what)
{
	char detail[512];

	/* Copied first: fr_fail formats into fr_errmsg's buffer. */
	snprintf(detail, sizeof(detail), "%s", fr_errmsg());
	return fr_fail(FR_ERR_CORRUPT, "%s: malformed %s: %s", path, what,
		       detail);
}

/* After CONNECTIONLOSS (or a timeout) the session may still be alive:
 * true when it is connected again and the call may be tried again. */
static bool retry_after(struct topo_admin *a, int rc, int try)
{
	if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
		return false;
	if (try + 1 >= ADMIN_TRIES)
		return false;
	fr_log(FR_LOG_DEBUG, MOD, "%s: %s; waiting for the session",
	       a->hosts, zerror(rc));
	/* The client marks the connection down just after it fails the
	 * calls on it: give it that moment before asking. */
	usleep(20000);
	return admin_wait_connected(a, a->timeout_ms) == FR_OK;
}

/* The data of path into a malloc'd buffer (*data, *len; NUL-terminated
 * for convenience) and its Stat into *stp (may be NULL).
 * FR_ERR_NOTFOUND when absent. */
static enum fr_err zk_get_stat(struct topo_admin *a, const char *path,
			       char **data, size_t *len, struct Stat *stp)
{
	int cap = 4096, n, rc = ZOK;
	struct Stat st;
	char *buf = NULL, *nb;

	for (int try = 0; try < ADMIN_TRIES + 3; try++) {
		nb = realloc(buf, (size_t)cap + 1);
		if (!nb) {
			free(buf);
			return fr_fail(FR_ERR_NOMEM, "%s: no memory for %d "
				       "bytes", path, cap);
		}
		buf = nb;
		n = cap;
		memset(&st, 0, sizeof(st));
		rc = zoo_get(a->zh, path, 0, buf, &n, &st);
		if (rc == ZOK && st.dataLength > cap) {
			/* Grew (or was bigger than our first guess). */
			if (st.dataLength > ADMIN_DATA_MAX) {
				free(buf);
				return fr_fail(FR_ERR_TOOBIG, "%s: %d bytes of "
					       "data, more than %d", path,
					       st.dataLength, ADMIN_DATA_MAX);
			}
			cap = st.dataLength;
			continue;
		}
		if (rc == ZOK) {
			if (n < 0)      /* a znode with null data */
				n = 0;
			buf[n] = '\0';
			*data = buf;
			*len = (size_t)n;
			if (stp)
				*stp = st;
			return FR_OK;
		}
		if (!retry_after(a, rc, try))
			break;
	}
	free(buf);
	if (rc == ZOK)
		return fr_fail(FR_ERR_ZK, "%s: get: the data kept changing "
			       "size", path);
	return zk_fail(rc, "get", path);
}

static enum fr_err zk_get(struct topo_admin *a, const char *path,
			  char **data, size_t *len)
{
	return zk_get_stat(a, path, data, len, NULL);
}

/* Children of path (the caller deallocate_String_vector()s them on
 * FR_OK).  A missing path is FR_ERR_NOTFOUND. */
static enum fr_err zk_children(struct topo_admin *a, const char *path,
			       struct String_vector *out)
{
	int rc = ZOK;

	for (int try = 0; try < ADMIN_TRIES; try++) {
		memset(out, 0, sizeof(*out));
		rc = zoo_get_children(a->zh, path, 0, out);
		if (rc == ZOK)
			return FR_OK;
		if (!retry_after(a, rc, try))
			break;
	}
	return zk_fail(rc, "get children", path);
}

/* The children of ROOT/sub, path[TOPO_PATH_MAX] getting its path: none
 * (FR_OK, count 0) when it is absent. */
static enum fr_err root_children(struct topo_admin *a, const char *sub,
				 char *path, struct String_vector *out)
{
	enum fr_err err;

	path_fmt(path, "%s/%s", a->root, sub);
	err = zk_children(a, path, out);
	return err == FR_ERR_NOTFOUND ? FR_OK : err;
}

/* Create path (persistent) unless it is there. */
static enum fr_err zk_ensure(struct topo_admin *a, const char *path)
{
	int rc = ZOK;

	for (int try = 0; try < ADMIN_TRIES; try++) {
		rc = zoo_create(a->zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
				ZOO_PERSISTENT, NULL, 0);
		if (rc == ZOK || rc == ZNODEEXISTS)
			return FR_OK;
		if (!retry_after(a, rc, try))
			break;
	}
	if (rc == ZNONODE && strcmp(path, "/freshet") == 0)
		return fr_fail(FR_ERR_NOTFOUND, "%s: create: %s (does the "
			       "chroot in '%s' exist?)", path, zerror(rc),
			       a->hosts);
	return zk_fail(rc, "create", path);
}

/* Create every ancestor of ROOT/<sub> and ROOT/<sub> itself. */
static enum fr_err zk_ensure_root(struct topo_admin *a, const char *sub)
{
	char path[TOPO_PATH_MAX];
	enum fr_err err;

	err = zk_ensure(a, "/freshet");
	if (!err)
		err = zk_ensure(a, a->root);
	if (!err) {
		path_fmt(path, "%s/%s", a->root, sub);
		err = zk_ensure(a, path);
	}
	return err;
}

/* ------------------------------------------------------------------------
 * Models
 * ---------------------------------------------------------------------- */

/* A model's znode name: the rule of every name (which leaves out "." and
 * "..", path elements ZooKeeper refuses). */
static enum fr_err check_model_name(const char *name)
{
	return fr_name_check("model name", name, SHARD_NAME_MAX);
}

enum fr_err topo_admin_model_create(struct topo_admin *a,
				    const struct shard_model_def *def)
{
	char path[TOPO_PATH_MAX];
	char *json, *have = NULL;
	size_t hlen = 0;
	enum fr_err err;
	int rc = ZOK;

	err = shard_model_validate(def);
	if (!err)
		err = check_model_name(def->name);
	if (err)
		return err;
	json = topo_model_encode(def, &err);
	if (!json)
		return err;
	err = zk_ensure_root(a, "models");
	if (err)
		goto out_free_json;
	path_fmt(path, "%s/models/%s", a->root, def->name);
	for (int try = 0; try < ADMIN_TRIES; try++) {
		rc = zoo_create(a->zh, path, json, (int)strlen(json),
				&ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
		if (rc == ZNODEEXISTS && try > 0) {
			/* A create lost to CONNECTIONLOSS may have been
			 * ours: the same bytes mean it was. */
			if (zk_get(a, path, &have, &hlen) == FR_OK &&
			    hlen == strlen(json) &&
			    memcmp(have, json, hlen) == 0)
				rc = ZOK;
			free(have);
			have = NULL;
		}
		if (rc == ZOK || !retry_after(a, rc, try))
			break;
	}
	if (rc == ZNODEEXISTS)
		err = fr_fail(FR_ERR_EXISTS, "model '%s' already exists at %s "
			      "(definitions are immutable)", def->name, path);
	else if (rc != ZOK)
		err = zk_fail(rc, "create", path);
	else
		fr_log(FR_LOG_INFO, MOD, "created %s", path);
out_free_json:
	free(json);
	return err;
}

enum fr_err topo_admin_model_get(struct topo_admin *a, const char *name,
				 struct shard_model_def *out)
{
	char path[TOPO_PATH_MAX];
	char *data;
	size_t len;
	enum fr_err err;

	err = check_model_name(name);
	if (err)
		return err;
	path_fmt(path, "%s/models/%s", a->root, name);
	err = zk_get(a, path, &data, &len);
	if (err == FR_ERR_NOTFOUND)
		return fr_fail(err, "model '%s' not found (no znode %s)", name,
			       path);
	if (err)
		return err;
	err = topo_model_decode(name, data, len, out);
	free(data);
	return err ? malformed(path, "model definition") : FR_OK;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

enum fr_err topo_admin_model_list(struct topo_admin *a, char ***names,
				  uint32_t *n)
{
	char path[TOPO_PATH_MAX];
	struct String_vector sv;
	size_t bytes;
	char **arr, *p;
	enum fr_err err;

	*names = NULL;
	*n = 0;
	err = root_children(a, "models", path, &sv);
	if (err)
		return err;
	if (sv.count <= 0) {
		deallocate_String_vector(&sv);
		return FR_OK;
	}
	bytes = (size_t)sv.count * sizeof(char *);
	for (int32_t i = 0; i < sv.count; i++)
		bytes += strlen(sv.data[i]) + 1;
	arr = malloc(bytes);
	if (!arr) {
		deallocate_String_vector(&sv);
		return fr_fail(FR_ERR_NOMEM, "%s: no memory for %d names",
			       path, sv.count);
	}
	p = (char *)(arr + sv.count);
	for (int32_t i = 0; i < sv.count; i++) {
		size_t l = strlen(sv.data[i]) + 1;

		memcpy(p, sv.data[i], l);
		arr[i] = p;
		p += l;
	}
	qsort(arr, (size_t)sv.count, sizeof(*arr), cmp_str);
	*names = arr;
	*n = (uint32_t)sv.count;
	deallocate_String_vector(&sv);
	return FR_OK;
}

/* ------------------------------------------------------------------------
 * Members, leaders, directives: listed children of one kind
 * ---------------------------------------------------------------------- */

static void bad_znode(const char *path, const char *why, uint32_t *bad)
{
	fr_log(FR_LOG_WARN, MOD, "%s: %s; ignored", path, why);
	if (bad)
		(*bad)++;
}

/* A list being read: elements of kind k in arr (n of cap), with the
 * count of children left out (bad, may be NULL). */
struct list {
	const struct topo_kind *k;
	void *arr;
	uint32_t n, cap;
	uint32_t *bad;
};

/* Room for one more element. */
static bool grow(struct list *l)
{
	uint32_t ncap;
	void *na;

	if (l->n < l->cap)
		return true;
	ncap = l->cap ? l->cap * 2 : 16;
	na = realloc(l->arr, (size_t)ncap * l->k->size);
	if (!na) {
		fr_fail(FR_ERR_NOMEM, "no memory for %u entries", ncap);
		return false;
	}
	l->arr = na;
	l->cap = ncap;
	return true;
}

/* Append the children of dir to l (ctx: see struct topo_kind).  A child
 * that is not of l's kind is logged and counted; one that vanishes
 * between the listing and the read is a normal race.  FR_ERR_NOTFOUND
 * when dir itself is absent. */
static enum fr_err read_list(struct topo_admin *a, const char *dir,
			     const void *ctx, struct list *l)
{
	char path[TOPO_PATH_MAX];
	struct String_vector sv;
	enum fr_err err;
	size_t len;
	char *data;

	err = zk_children(a, dir, &sv);
	for (int32_t i = 0; !err && i < sv.count; i++) {
		const char *child = sv.data[i];
		uint64_t key = 0;

		if (!path_fmt(path, "%s/%s", dir, child)) {
			bad_znode(dir, "a child's name does not fit in a path",
				  l->bad);
			continue;
		}
		if (l->k->name && l->k->name(child, &key) != FR_OK) {
			bad_znode(path, fr_errmsg(), l->bad);
			continue;
		}
		err = zk_get(a, path, &data, &len);
		if (err == FR_ERR_NOTFOUND) {   /* gone since the listing */
			err = FR_OK;
			continue;
		}
		if (!err && !grow(l)) {
			free(data);
			err = FR_ERR_NOMEM;
		}
		if (err)
			break;
		if (l->k->read(child, key, ctx, data, len, (char *)l->arr +
			       (size_t)l->n * l->k->size) == FR_OK)
			l->n++;
		else
			bad_znode(path, fr_errmsg(), l->bad);
		free(data);
	}
	deallocate_String_vector(&sv);   /* zeroed when the listing failed */
	return err;
}

/* The list read (err FR_OK) sorted into *out and *n, or freed. */
static enum fr_err list_done(enum fr_err err, struct list *l, void *out,
			     uint32_t *n)
{
	if (err) {
		free(l->arr);
		return err;
	}
	if (l->n > 1)
		qsort(l->arr, l->n, l->k->size, l->k->cmp);
	*(void **)out = l->arr;
	*n = l->n;
	return FR_OK;
}

/* What every listing call starts with. */
static struct list list_start(const struct topo_kind *k, void *out,
			      uint32_t *n, uint32_t *bad)
{
	*(void **)out = NULL;
	*n = 0;
	if (bad)
		*bad = 0;
	return (struct list){ k, NULL, 0, 0, bad };
}

enum fr_err topo_admin_members(struct topo_admin *a, struct topo_member **out,
			       uint32_t *n, uint32_t *bad)
{
	struct list l = list_start(&topo_kind_member, out, n, bad);
	char path[TOPO_PATH_MAX], dpath[TOPO_PATH_MAX];
	struct String_vector dcs;
	enum fr_err err;

	err = root_children(a, "nodes", path, &dcs);
	if (err)
		return err;
	for (int32_t i = 0; i < dcs.count && !err; i++) {
		path_fmt(dpath, "%s/%s", path, dcs.data[i]);  /* cut: logged */
		if (fr_name_check("dc name", dcs.data[i], TOPO_NAME_MAX)) {
			bad_znode(dpath, fr_errmsg(), bad);
			continue;
		}
		err = read_list(a, dpath, dcs.data[i], &l);
		if (err == FR_ERR_NOTFOUND)     /* the dc went meanwhile */
			err = FR_OK;
	}
	deallocate_String_vector(&dcs);
	return list_done(err, &l, out, n);
}

enum fr_err topo_admin_leaders(struct topo_admin *a, struct topo_leader **out,
			       uint32_t *n, uint32_t *bad)
{
	struct list l = list_start(&topo_kind_leader, out, n, bad);
	char dir[TOPO_PATH_MAX];
	enum fr_err err;

	path_fmt(dir, "%s/leaders", a->root);
	err = read_list(a, dir, NULL, &l);
	return list_done(err == FR_ERR_NOTFOUND ? FR_OK : err, &l, out, n);
}

/* ------------------------------------------------------------------------
 * A model's rollbacks/, state and roles
 * ---------------------------------------------------------------------- */

/* Tries of a compare-and-set loop that lost to other writers. */
#define ADMIN_CAS_TRIES 8

static bool conn_lost(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT;
}

/* After a lost connection: true once the session is back (see
 * retry_after for the pause). */
static bool wait_after_loss(struct topo_admin *a)
{
	usleep(20000);
	return admin_wait_connected(a, a->timeout_ms) == FR_OK;
}

/* ROOT/models/<model>[/sub] into buf, the name checked. */
static enum fr_err model_path(struct topo_admin *a, const char *model,
			      const char *sub, char *buf)
{
	enum fr_err err = check_model_name(model);

	if (err)
		return err;
	if (sub)
		path_fmt(buf, "%s/models/%s/%s", a->root, model, sub);
	else
		path_fmt(buf, "%s/models/%s", a->root, model);
	return FR_OK;
}

/* FR_OK when models/<model> exists, else FR_ERR_NOTFOUND (or the error
 * that kept us from knowing). */
static enum fr_err model_exists(struct topo_admin *a, const char *model)
{
	char path[TOPO_PATH_MAX];
	struct Stat st;
	enum fr_err err;
	int rc = ZOK;

	err = model_path(a, model, NULL, path);
	if (err)
		return err;
	for (int try = 0; try < ADMIN_TRIES; try++) {
		rc = zoo_exists(a->zh, path, 0, &st);
		if (rc == ZOK)
			return FR_OK;
		if (!retry_after(a, rc, try))
			break;
	}
	if (rc == ZNONODE)
		return fr_fail(FR_ERR_NOTFOUND,
			       "model '%s' not found (no znode %s)", model,
			       path);
	return zk_fail(rc, "exists", path);
}

/* models/<model>/<sub>'s data (malloc'd) and Stat; path[TOPO_PATH_MAX]
 * gets its path.  Absent: FR_OK with *data NULL, or FR_ERR_NOTFOUND when
 * the model is absent too. */
static enum fr_err model_child_get(struct topo_admin *a, const char *model,
				   const char *sub, char *path, char **data,
				   size_t *len, struct Stat *st)
{
	enum fr_err err = model_path(a, model, sub, path);

	*data = NULL;
	if (err)
		return err;
	err = zk_get_stat(a, path, data, len, st);
	if (err == FR_ERR_NOTFOUND)
		return model_exists(a, model);
	return err;
}

enum fr_err topo_admin_rollbacks(struct topo_admin *a, const char *model,
				 struct topo_rollback **out, uint32_t *n,
				 uint32_t *bad)
{
	struct list l = list_start(&topo_kind_rollback, out, n, bad);
	char dir[TOPO_PATH_MAX];
	enum fr_err err;

	err = model_path(a, model, "rollbacks", dir);
	if (!err)
		err = model_exists(a, model);
	if (err)
		return err;
	err = read_list(a, dir, NULL, &l);
	/* No rollbacks/: none filed yet. */
	return list_done(err == FR_ERR_NOTFOUND ? FR_OK : err, &l, out, n);
}

/* Make the model's rollbacks/ (dir) when missing.  FR_ERR_NOTFOUND
 * (naming the model) when the model is not there, or went meanwhile. */
static enum fr_err ensure_rollbacks(struct topo_admin *a, const char *model,
				    const char *dir)
{
	enum fr_err err = model_exists(a, model);

	if (!err)
		err = zk_ensure(a, dir);
	if (err == FR_ERR_NOTFOUND)
		err = model_exists(a, model);
	return err;
}

/* A state version as the caller read it: -1 (absent) or a znode's. */
static enum fr_err check_version(const char *model, int32_t version)
{
	if (version < -1)
		return fr_fail(FR_ERR_INVAL,
			       "model '%s': state version %d, expected -1 (absent) or a znode version",
			       model, (int)version);
	return FR_OK;
}

/* What became of a filing whose outcome we lost: is r_<c> there with our
 * bytes (OURS), with someone else's (OTHER: ours never can be), or not
 * there (ABSENT)?  ERR when we cannot tell. */
enum filed { FILED_OURS, FILED_OTHER, FILED_ABSENT, FILED_ERR };

static enum filed filed_as(struct topo_admin *a, const char *dir, int32_t c,
			   const char *json)
{
	char path[TOPO_PATH_MAX];
	enum fr_err err;
	size_t len;
	char *data;
	bool same;

	path_fmt(path, "%s/r_%010d", dir, (int)c);
	err = zk_get(a, path, &data, &len);
	if (err == FR_ERR_NOTFOUND)
		return FILED_ABSENT;
	if (err)
		return FILED_ERR;
	same = len == strlen(json) && memcmp(data, json, len) == 0;
	free(data);
	return same ? FILED_OURS : FILED_OTHER;
}

/* The op of a failed multi that failed: the others say ZOK (rolled back)
 * or ZRUNTIMEINCONSISTENCY (not tried).  -1 when none says. */
static int failed_op(const zoo_op_result_t *res, int n)
{
	for (int i = 0; i < n; i++)
		if (res[i].err != ZOK && res[i].err != ZRUNTIMEINCONSISTENCY)
			return i;
	return -1;
}

static enum fr_err unknown_outcome(const char *model, const char *dir)
{
	return fr_fail(FR_ERR_ZK,
		       "model '%s': the connection to ZooKeeper was lost while filing under %s and the outcome is unknown; check `freshet history --model %s` before filing again",
		       model, dir, model);
}

enum fr_err topo_admin_rollback_file(struct topo_admin *a, const char *model,
				     const struct topo_rollback *d,
				     struct topo_health *state,
				     int32_t state_version, uint64_t *epoch)
{
	char dir[TOPO_PATH_MAX], spath[TOPO_PATH_MAX], prefix[TOPO_PATH_MAX];
	char created[TOPO_PATH_MAX];
	zoo_op_t ops[3];
	zoo_op_result_t res[3];
	struct Stat dst, sst;
	char *json, *sjson = NULL;
	const char *base;
	bool lost = false;
	int32_t c = 0, v = 0;
	int nops = 0, gi = 0, j, rc = ZOK;
	enum fr_err err;
	uint64_t seq;

	memset(&sst, 0, sizeof(sst));
	err = model_path(a, model, "rollbacks", dir);
	if (err)
		return err;
	model_path(a, model, "state", spath);
	path_fmt(prefix, "%s/r_", dir);
	err = state ? check_version(model, state_version) : FR_OK;
	if (err)
		return err;
	json = topo_rollback_encode(d, &err);
	if (!json)
		return err;
	err = ensure_rollbacks(a, model, dir);
	if (err)
		goto out;
	for (int try = 0; try < ADMIN_CAS_TRIES; try++) {
		if (!lost) {
			/* cversion: the sequence ZooKeeper will give our
			 * child; version: the guard (see the top). */
			rc = zoo_exists(a->zh, dir, 0, &dst);
			if (conn_lost(rc) && retry_after(a, rc, 0))
				continue;
			if (rc == ZNONODE) {
				err = ensure_rollbacks(a, model, dir);
				if (err)
					goto out;
				continue;
			}
			if (rc != ZOK) {
				err = zk_fail(rc, "exists", dir);
				goto out;
			}
			c = dst.cversion;
			v = dst.version;
			if (c < 0) {
				err = fr_fail(FR_ERR_ZK,
					      "%s: the sequence numbers are used up (cversion %d)",
					      dir, (int)c);
				goto out;
			}
			nops = 0;
			if (state) {
				free(sjson);
				state->epoch = (uint64_t)c + 1;
				sjson = topo_health_encode(state, &err);
				if (!sjson)
					goto out;
				if (state_version == -1)
					zoo_create_op_init(&ops[nops++], spath,
							   sjson,
							   (int)strlen(sjson),
							   &ZOO_OPEN_ACL_UNSAFE,
							   ZOO_PERSISTENT,
							   NULL, 0);
				else
					zoo_set_op_init(&ops[nops++], spath,
							sjson,
							(int)strlen(sjson),
							state_version, &sst);
			}
			gi = nops;
			zoo_set_op_init(&ops[nops++], dir, NULL, -1, v, NULL);
			zoo_create_op_init(&ops[nops++], prefix, json,
					   (int)strlen(json),
					   &ZOO_OPEN_ACL_UNSAFE,
					   ZOO_PERSISTENT_SEQUENTIAL, created,
					   sizeof(created));
		}
		memset(res, 0, sizeof(res));
		created[0] = '\0';
		rc = zoo_multi(a->zh, nops, ops, res);
		if (rc == ZOK)
			break;
		if (conn_lost(rc) || (lost && failed_op(res, nops) >= 0)) {
			enum filed f;

			/* The multi (or, when lost already, its retry with the
			 * same versions) may have happened: look. */
			lost = true;
			if (conn_lost(rc) && !wait_after_loss(a)) {
				err = unknown_outcome(model, dir);
				goto out;
			}
			f = filed_as(a, dir, c, json);
			if (f == FILED_OURS) {
				path_fmt(created, "%s/r_%010d", dir, (int)c);
				rc = ZOK;
				break;
			}
			if (f == FILED_OTHER) {
				lost = false;   /* ours lost the guard: safe */
				continue;
			}
			if (f == FILED_ABSENT && conn_lost(rc))
				continue;       /* the same multi again */
			err = unknown_outcome(model, dir);
			goto out;
		}
		j = failed_op(res, nops);
		if (state && j == 0) {
			if (res[0].err == ZNONODE) {
				err = model_exists(a, model);
				if (err)
					goto out;
			}
			err = fr_fail(FR_ERR_BUSY,
				      "model '%s': its state changed since it was read (%s: %s); someone else acted first, nothing was filed",
				      model, spath, zerror(res[0].err));
			goto out;
		}
		if (j == gi && res[j].err == ZBADVERSION)
			continue;   /* another filer got in: read again */
		if ((j == gi || j == gi + 1) && res[j].err == ZNONODE) {
			/* rollbacks/ (or the model) went meanwhile */
			err = ensure_rollbacks(a, model, dir);
			if (err)
				goto out;
			continue;
		}
		err = zk_fail(rc, "multi (file a directive)", dir);
		goto out;
	}
	if (rc != ZOK && lost) {
		err = unknown_outcome(model, dir);
		goto out;
	}
	if (rc != ZOK) {
		err = fr_fail(FR_ERR_BUSY,
			      "%s: other directives kept being filed; tried %d times",
			      dir, ADMIN_CAS_TRIES);
		goto out;
	}
	base = strrchr(created, '/');
	if (topo_rollback_parse_name(base ? base + 1 : created, &seq)) {
		err = fr_fail(FR_ERR_ZK, "%s: ZooKeeper named the directive '%s', not r_<10 digits>",
			      dir, created);
		goto out;
	}
	if (state && seq != (uint64_t)c) {
		/* Someone made children by hand between our read and the
		 * multi: the state says the wrong epoch.  Put it right if
		 * nobody has written it since. */
		int32_t sv = state_version == -1 ? 0 : sst.version;

		fr_log(FR_LOG_WARN, MOD,
		       "%s: expected r_%010d, ZooKeeper made %s (children made by hand?); correcting the epoch in %s",
		       dir, (int)c, created, spath);
		state->epoch = seq + 1;
		free(sjson);
		sjson = topo_health_encode(state, &err);
		if (sjson && zoo_set(a->zh, spath, sjson, (int)strlen(sjson),
				     sv) != ZOK)
			fr_log(FR_LOG_WARN, MOD,
			       "%s: not corrected (written meanwhile)", spath);
	}
	if (state)
		state->epoch = seq + 1;
	if (epoch)
		*epoch = seq + 1;
	err = FR_OK;
	fr_log(FR_LOG_INFO, MOD, "filed %s (epoch %" PRIu64 ")", created,
	       seq + 1);
out:
	free(sjson);
	free(json);
	return err;
}

enum fr_err topo_admin_state_get(struct topo_admin *a, const char *model,
				 struct topo_health *out, int32_t *version)
{
	char path[TOPO_PATH_MAX];
	struct Stat st;
	enum fr_err err;
	size_t len;
	char *data;

	err = model_child_get(a, model, "state", path, &data, &len, &st);
	if (err)
		return err;
	if (!data) {
		memset(out, 0, sizeof(*out));
		if (version)
			*version = -1;
		return FR_OK;
	}
	err = topo_health_decode(data, len, out);
	free(data);
	if (err)
		return malformed(path, "health state");
	if (version)
		*version = st.version;
	return FR_OK;
}

/* Does path hold exactly json (after a lost write: was it ours)? */
static bool holds(struct topo_admin *a, const char *path, const char *json)
{
	size_t len;
	char *data;
	bool same;

	if (zk_get(a, path, &data, &len) != FR_OK)
		return false;
	same = len == strlen(json) && memcmp(data, json, len) == 0;
	free(data);
	return same;
}

enum fr_err topo_admin_state_set(struct topo_admin *a, const char *model,
				 const struct topo_health *h, int32_t version)
{
	char path[TOPO_PATH_MAX];
	enum fr_err err;
	bool lost = false;
	char *json;
	int rc = ZOK;

	err = model_path(a, model, "state", path);
	if (err)
		return err;
	err = check_version(model, version);
	if (err)
		return err;
	json = topo_health_encode(h, &err);
	if (!json)
		return err;
	for (int try = 0; try < ADMIN_TRIES; try++) {
		if (version == -1)
			rc = zoo_create(a->zh, path, json, (int)strlen(json),
					&ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
					NULL, 0);
		else
			rc = zoo_set(a->zh, path, json, (int)strlen(json),
				     version);
		if (conn_lost(rc))
			lost = true;
		/* After a lost reply, a refusal may be our own write. */
		if (lost && (rc == ZNODEEXISTS || rc == ZBADVERSION) &&
		    holds(a, path, json))
			rc = ZOK;
		if (rc == ZOK || !retry_after(a, rc, try))
			break;
	}
	if (rc == ZOK) {
		err = FR_OK;
	} else if (rc == ZNODEEXISTS || rc == ZBADVERSION) {
		err = fr_fail(FR_ERR_BUSY,
			      "model '%s': its state changed since it was read (%s: %s); read it again",
			      model, path, zerror(rc));
	} else if (rc == ZNONODE) {
		err = model_exists(a, model);
		if (!err)
			err = fr_fail(FR_ERR_BUSY,
				      "model '%s': its state was deleted since it was read (%s); read it again",
				      model, path);
	} else {
		err = zk_fail(rc, version == -1 ? "create" : "set", path);
	}
	free(json);
	return err;
}

/* models/<m>/roles into out (room for cap), with its Stat.  Absent:
 * FR_OK, *n = 0, *exists = false. */
static enum fr_err roles_read(struct topo_admin *a, const char *model,
			      struct topo_role_override *out, uint32_t cap,
			      uint32_t *n, bool *exists, struct Stat *st)
{
	char path[TOPO_PATH_MAX];
	enum fr_err err;
	size_t len;
	char *data;

	*n = 0;
	*exists = false;
	err = model_child_get(a, model, "roles", path, &data, &len, st);
	if (err || !data)
		return err;
	*exists = true;
	if (len > 0)
		err = topo_roles_decode(data, len, out, cap, n);
	free(data);
	if (err == FR_ERR_RANGE)
		return err;
	if (err)
		return malformed(path,
				 "role overrides (fix or delete it by hand)");
	return FR_OK;
}

enum fr_err topo_admin_roles_get(struct topo_admin *a, const char *model,
				 struct topo_role_override *out, uint32_t cap,
				 uint32_t *n)
{
	struct Stat st;
	bool exists;

	return roles_read(a, model, out, cap, n, &exists, &st);
}

enum fr_err topo_admin_role_set(struct topo_admin *a, const char *model,
				uint32_t node_id, const char *role)
{
	struct topo_role_override *o;
	char path[TOPO_PATH_MAX];
	enum fr_err err;
	int rc = ZOK;

	err = model_path(a, model, "roles", path);
	if (err)
		return err;
	if (node_id < 1 || node_id > TOPO_NODE_ID_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "node id %u is out of range, expected 1..%u",
			       node_id, TOPO_NODE_ID_MAX);
	if (role && !topo_role_valid(role))
		return fr_fail(FR_ERR_INVAL,
			       "role '%.32s' is unknown, expected serving, canary or baseline",
			       role);
	o = malloc((TOPO_ROLE_OVERRIDES_MAX + 1) * sizeof(*o));
	if (!o)
		return fr_fail(FR_ERR_NOMEM, "no memory for role overrides");
	/* Read, change, write if unchanged since; a lost reply is settled by
	 * the next read (the change is there or it is not). */
	for (int try = 0; try < ADMIN_CAS_TRIES; try++) {
		struct Stat st;
		uint32_t n, k;
		bool exists;
		char *json;

		err = roles_read(a, model, o, TOPO_ROLE_OVERRIDES_MAX, &n,
				 &exists, &st);
		if (err)
			goto out;
		for (k = 0; k < n && o[k].node_id != node_id; k++)
			;
		if (role ? (k < n && strcmp(o[k].role, role) == 0) : k == n)
			goto out;   /* already so */
		if (k < n && !role) {
			memmove(&o[k], &o[k + 1], (n - k - 1) * sizeof(*o));
			n--;
		} else if (k < n) {
			snprintf(o[k].role, sizeof(o[k].role), "%s", role);
		} else {
			if (n == TOPO_ROLE_OVERRIDES_MAX) {
				err = fr_fail(FR_ERR_RANGE,
					      "%s: already %d overrides, the most there may be",
					      path, TOPO_ROLE_OVERRIDES_MAX);
				goto out;
			}
			o[n].node_id = node_id;
			snprintf(o[n].role, sizeof(o[n].role), "%s", role);
			n++;
		}
		json = topo_roles_encode(o, n, &err);
		if (!json)
			goto out;
		if (exists)
			rc = zoo_set(a->zh, path, json, (int)strlen(json),
				     st.version);
		else
			rc = zoo_create(a->zh, path, json, (int)strlen(json),
					&ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
					NULL, 0);
		free(json);
		if (rc == ZOK) {
			fr_log(FR_LOG_INFO, MOD, "%s: node %u %s%s", path,
			       node_id, role ? "is now " : "has no override",
			       role ? role : "");
			goto out;
		}
		if (conn_lost(rc)) {
			if (!wait_after_loss(a))
				break;
			continue;
		}
		if (rc == ZBADVERSION || rc == ZNODEEXISTS || rc == ZNONODE)
			continue;   /* changed meanwhile: read again */
		err = zk_fail(rc, exists ? "set" : "create", path);
		goto out;
	}
	err = conn_lost(rc) ? zk_fail(rc, "set", path) :
	      fr_fail(FR_ERR_BUSY, "%s: kept changing under us; tried %d times",
		      path, ADMIN_CAS_TRIES);
out:
	free(o);
	return err;
}

/* ------------------------------------------------------------------------
 * The chroot
 * ---------------------------------------------------------------------- */

enum fr_err topo_chroot_ensure(const char *hosts, uint32_t timeout_ms)
{
	char base[TOPO_HOSTS_MAX + 1], path[TOPO_HOSTS_MAX + 1];
	const char *chroot = topo_hosts_chroot(hosts);
	struct topo_admin *a;
	enum fr_err err = FR_OK;

	if (!chroot || !chroot[1])
		return FR_OK;
	if ((size_t)(chroot - hosts) >= sizeof(base) ||
	    strlen(chroot) >= sizeof(path))
		return fr_fail(FR_ERR_INVAL, "ZooKeeper hosts '%s': too long",
			       hosts);
	memcpy(base, hosts, (size_t)(chroot - hosts));
	base[chroot - hosts] = '\0';
	a = topo_admin_connect(base, "chroot", timeout_ms, &err);
	if (!a)
		return err;
	/* "/a/b/c": create "/a", "/a/b", "/a/b/c" in turn. */
	for (size_t i = 1; !err; i++) {
		if (chroot[i] != '/' && chroot[i] != '\0')
			continue;
		memcpy(path, chroot, i);
		path[i] = '\0';
		err = zk_ensure(a, path);
		if (chroot[i] == '\0')
			break;
	}
	topo_admin_close(a);
	return err;
}
