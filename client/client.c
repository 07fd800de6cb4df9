/*
 * client.c — the blocking C client (client.h): one TCP connection to one
 * node, requests sent one at a time, each answered before the next.
 *
 * The socket stays non-blocking and every wait goes through poll() with
 * what is left of a deadline, so no call can hang.  Frames are cut out of
 * the stream by proto_reader and decoded by proto/; this file only moves
 * bytes and matches replies to requests by request id:
 *
 *   send request R ──► wait ──► reply with id R      → done
 *                         │──► reply with id < R     → stale (an earlier
 *                         │                            request timed out):
 *                         │                            drop, keep waiting
 *                         │──► ERROR with id R       → node's code + text
 *                         │──► ERROR with id 0       → node's code + text,
 *                         │                            connection unusable
 *                         └──► anything else         → FR_ERR_PROTO,
 *                                                      connection unusable
 *
 * Not here: retries other than BUSY, reconnecting, pipelining.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "proto/proto.h"

/* Room for the node's message plus our own words around it. */
#define CLIENT_ERRMSG_MAX (PROTO_ERRMSG_MAX + 256)

struct fr_client {
	int fd;
	int timeout_ms;
	uint32_t busy_retry_ms;
	uint64_t next_req;
	bool broken;                 /* stream unusable: see client.h */
	uint32_t node_id;
	char peer[300];              /* "host:port", for messages */
	struct proto_reader rd;
	struct fr_wbuf out;          /* the request being sent */
	uint8_t *chunk;              /* PROTO_READER_CHUNK bytes for read() */
	char errmsg[CLIENT_ERRMSG_MAX];
};

/* Record a failure on c (and in this thread's fr_errmsg) and return it. */
static enum fr_err cfail(struct fr_client *c, enum fr_err err,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum fr_err cfail(struct fr_client *c, enum fr_err err,
			 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	return fr_fail(err, "%s", c->errmsg);
}

/* The same, and the connection cannot be used again. */
static enum fr_err cbreak(struct fr_client *c, enum fr_err err,
			  const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum fr_err cbreak(struct fr_client *c, enum fr_err err,
			  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	c->broken = true;
	return fr_fail(err, "%s", c->errmsg);
}

static int left_ms(uint64_t deadline)
{
	uint64_t now = fr_mono_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

/* poll one fd for ev until the deadline: 1 ready, 0 timed out, -1 error
 * (errno set). */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int rc;

	for (;;) {
		rc = poll(&p, 1, left_ms(deadline));
		if (rc < 0 && errno == EINTR)
			continue;
		return rc;
	}
}

/* ========================================================================
 * Bytes in and out
 * ===================================================================== */

static enum fr_err send_all(struct fr_client *c, const uint8_t *p, size_t n,
			    uint64_t deadline)
{
	while (n) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c->fd, POLLOUT, deadline);

			if (rc == 0)
				/* Half a frame is on the wire: the stream
				 * cannot be resumed. */
				return cbreak(c, FR_ERR_TIMEOUT,
					      "send to %s: timed out after "
					      "%d ms",
					      c->peer, c->timeout_ms);
			if (rc < 0)
				return cbreak(c, FR_ERR_IO,
					      "send to %s: poll: %s", c->peer,
					      strerror(errno));
			continue;
		}
		return cbreak(c, FR_ERR_IO, "send to %s: %s", c->peer,
			      k < 0 ? strerror(errno) : "sent nothing");
	}
	return FR_OK;
}

/* The next whole frame from the node, waiting until the deadline. */
static enum fr_err recv_frame(struct fr_client *c, uint64_t deadline,
			      struct shard_frame_hdr *h, const uint8_t **pl,
			      size_t *plen)
{
	enum fr_err err;

	for (;;) {
		ssize_t k;
		int rc;

		err = proto_reader_next(&c->rd, h, pl, plen);
		if (err == FR_OK)
			return FR_OK;
		if (err != FR_ERR_TRUNC)
			/* Even a skipped bad checksum may have been the
			 * reply we wait for: do not guess, give up. */
			return cbreak(c, err, "bad frame from %s: %s", c->peer,
				      fr_errmsg());
		rc = wait_fd(c->fd, POLLIN, deadline);
		if (rc == 0)
			return cfail(c, FR_ERR_TIMEOUT,
				     "no reply from %s within %d ms", c->peer,
				     c->timeout_ms);
		if (rc < 0)
			return cbreak(c, FR_ERR_IO, "receive from %s: poll: %s",
				      c->peer, strerror(errno));
		k = recv(c->fd, c->chunk, PROTO_READER_CHUNK, 0);
		if (k == 0)
			return cbreak(c, FR_ERR_CLOSED,
				      "%s closed the connection", c->peer);
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return cbreak(c, FR_ERR_IO, "receive from %s: %s",
				      c->peer, strerror(errno));
		}
		err = proto_reader_feed(&c->rd, c->chunk, (size_t)k);
		if (err)
			return cbreak(c, err, "receive from %s: %s", c->peer,
				      fr_errmsg());
	}
}

/* ========================================================================
 * Request / reply
 * ===================================================================== */

/* Wait for the reply of type `want` to request req.  On FR_OK the payload
 * (valid until the next read) is in *pl / *plen; an ERROR for req (or for
 * the connection) comes back as its code with the node's text. */
static enum fr_err await_reply(struct fr_client *c, uint16_t want,
			       uint64_t req, uint64_t deadline,
			       const uint8_t **pl, size_t *plen)
{
	struct shard_frame_hdr h;
	enum fr_err err;
	uint64_t id;

	for (;;) {
		err = recv_frame(c, deadline, &h, pl, plen);
		if (err)
			return err;
		if (h.type == PROTO_ERROR) {
			struct proto_error e;

			err = proto_error_decode(*pl, *plen, &e);
			if (err)
				return cbreak(c, FR_ERR_PROTO,
					      "bad ERROR from %s: %s", c->peer,
					      fr_errmsg());
			if (e.req_id != 0 && e.req_id < req)
				continue;   /* about a request we gave up on */
			if (e.req_id != 0 && e.req_id != req)
				return cbreak(c, FR_ERR_PROTO,
					      "%s sent an ERROR for request "
					      "%llu, which was never sent",
					      c->peer,
					      (unsigned long long)e.req_id);
			if (e.req_id == 0)
				c->broken = true;   /* the node will close */
			/* The node's own words, as they came. */
			return cfail(c, e.code, "%s", e.msg);
		}
		if (h.type != want)
			return cbreak(c, FR_ERR_PROTO,
				      "%s sent %s (type 0x%x) while %s was "
				      "expected",
				      c->peer, proto_type_name(h.type), h.type,
				      proto_type_name(want));
		/* Every reply starts with its u64 request id; the decoder
		 * checks the rest.  A too-short one fails decoding later. */
		if (*plen < 8)
			return cbreak(c, FR_ERR_PROTO,
				      "%s sent a %zu-byte %s", c->peer, *plen,
				      proto_type_name(want));
		memcpy(&id, *pl, 8);
		if (id < req)
			continue;
		if (id != req)
			return cbreak(c, FR_ERR_PROTO,
				      "%s answered request %llu, which was "
				      "never sent",
				      c->peer, (unsigned long long)id);
		return FR_OK;
	}
}

static enum fr_err usable(struct fr_client *c)
{
	if (c->broken)
		return fr_fail(FR_ERR_CLOSED,
			       "connection to %s is unusable after an earlier "
			       "error (%s); reconnect",
			       c->peer, c->errmsg);
	c->errmsg[0] = '\0';
	return FR_OK;
}

static enum fr_err copy_name(struct fr_client *c, const char *what,
			     const char *s, size_t max, char *dst)
{
	size_t n;

	if (!s)
		return cfail(c, FR_ERR_INVAL, "%s: NULL", what);
	n = strlen(s);
	if (n > max)
		return cfail(c, FR_ERR_INVAL,
			     "%s '%.20s...': %zu bytes, at most %zu", what, s,
			     n, max);
	memcpy(dst, s, n + 1);
	return FR_OK;
}

/* ========================================================================
 * Connect
 * ===================================================================== */

/* Try one address: connected non-blocking fd, or -1 with *err set. */
static int connect_one(struct fr_client *c, const struct addrinfo *ai,
		       uint64_t deadline, enum fr_err *err)
{
	int fd, rc, soerr = 0, one = 1;
	socklen_t sl = sizeof(soerr);

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0) {
		*err = cfail(c, FR_ERR_IO, "connect to %s: socket: %s",
			     c->peer, strerror(errno));
		return -1;
	}
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (rc < 0 && errno == EINPROGRESS) {
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc == 0) {
			*err = cfail(c, FR_ERR_TIMEOUT,
				     "connect to %s: no answer within %d ms",
				     c->peer, c->timeout_ms);
			goto out_close;
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
					 &sl) < 0)
			soerr = errno;
		rc = soerr ? -1 : 0;
		errno = soerr;
	}
	if (rc < 0) {
		*err = cfail(c, FR_ERR_IO, "connect to %s: %s", c->peer,
			     strerror(errno));
		goto out_close;
	}
	/* Requests are single frames answered one at a time: Nagle would
	 * only delay them. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;

out_close:
	close(fd);
	return -1;
}

static enum fr_err handshake(struct fr_client *c, uint64_t deadline)
{
	struct proto_hello hi = { .proto_version = PROTO_VERSION,
				  .role = PROTO_ROLE_CLIENT };
	struct shard_frame_hdr h;
	const uint8_t *pl;
	size_t plen;
	enum fr_err err;

	fr_wbuf_reset(&c->out);
	err = proto_hello_encode(&c->out, PROTO_HELLO, &hi);
	if (err)
		return cbreak(c, err, "HELLO: %s", fr_errmsg());
	err = send_all(c, c->out.data, c->out.len, deadline);
	if (err)
		return err;
	err = recv_frame(c, deadline, &h, &pl, &plen);
	if (err == FR_ERR_TIMEOUT)
		return cbreak(c, err, "%s did not answer HELLO within %d ms",
			      c->peer, c->timeout_ms);
	if (err)
		return err;
	if (h.type == PROTO_ERROR) {
		struct proto_error e;

		if (proto_error_decode(pl, plen, &e))
			return cbreak(c, FR_ERR_PROTO,
				      "bad ERROR from %s: %s", c->peer,
				      fr_errmsg());
		return cbreak(c, e.code, "%s", e.msg);
	}
	if (h.type != PROTO_HELLO_ACK)
		return cbreak(c, FR_ERR_PROTO,
			      "%s answered HELLO with %s (type 0x%x), expected "
			      "HELLO_ACK",
			      c->peer, proto_type_name(h.type), h.type);
	err = proto_hello_decode(pl, plen, &hi);
	if (err == FR_ERR_VERSION)
		return cbreak(c, err,
			      "%s speaks protocol version %u; this client "
			      "speaks version %u",
			      c->peer, hi.proto_version, PROTO_VERSION);
	if (err)
		return cbreak(c, FR_ERR_PROTO, "bad HELLO_ACK from %s: %s",
			      c->peer, fr_errmsg());
	if (hi.role != PROTO_ROLE_NODE)
		return cbreak(c, FR_ERR_PROTO,
			      "%s is not a freshet node (HELLO_ACK role %d)",
			      c->peer, (int)hi.role);
	c->node_id = hi.node_id;
	return FR_OK;
}

struct fr_client *fr_client_connect(const char *host, uint16_t port,
				    int timeout_ms, enum fr_err *errp)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL, *ai;
	struct fr_client *c;
	char portstr[8];
	uint64_t deadline;
	enum fr_err err;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c) {
		err = fr_fail(FR_ERR_NOMEM, "client: out of memory");
		goto out;
	}
	c->fd = -1;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms
				       : FR_CLIENT_TIMEOUT_DEFAULT_MS;
	c->busy_retry_ms = FR_CLIENT_BUSY_RETRY_DEFAULT_MS;
	c->next_req = 1;
	proto_reader_init(&c->rd, 0);
	fr_wbuf_init(&c->out, 0, 0);
	if (!host || !*host) {
		err = fr_fail(FR_ERR_INVAL, "connect: empty host");
		goto out_free;
	}
	snprintf(c->peer, sizeof(c->peer),
		 strchr(host, ':') ? "[%.250s]:%u" : "%.250s:%u", host, port);
	c->chunk = malloc(PROTO_READER_CHUNK);
	if (!c->chunk) {
		err = cfail(c, FR_ERR_NOMEM, "client: out of memory");
		goto out_free;
	}
	if (port == 0) {
		err = cfail(c, FR_ERR_INVAL, "connect to %s: port 0", c->peer);
		goto out_free;
	}
	deadline = fr_mono_ms() + (uint64_t)c->timeout_ms;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc) {
		err = cfail(c, FR_ERR_NOTFOUND, "resolve '%s': %s", host,
			    rc == EAI_SYSTEM ? strerror(errno)
					     : gai_strerror(rc));
		goto out_free;
	}
	err = FR_ERR_IO;
	for (ai = res; ai && c->fd < 0; ai = ai->ai_next)
		c->fd = connect_one(c, ai, deadline, &err);
	freeaddrinfo(res);
	if (c->fd < 0)
		goto out_free;
	err = handshake(c, deadline);
	if (err)
		goto out_free;
	return c;

out_free:
	fr_client_close(c);
out:
	if (errp)
		*errp = err;
	return NULL;
}

void fr_client_set_timeout(struct fr_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms
				       : FR_CLIENT_TIMEOUT_DEFAULT_MS;
}

void fr_client_set_busy_retry(struct fr_client *c, uint32_t max_ms)
{
	c->busy_retry_ms = max_ms;
}

const char *fr_client_errmsg(const struct fr_client *c)
{
	return c->errmsg;
}

uint32_t fr_client_node_id(const struct fr_client *c)
{
	return c->node_id;
}

void fr_client_close(struct fr_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	proto_reader_fini(&c->rd);
	fr_wbuf_fini(&c->out);
	free(c->chunk);
	free(c);
}

/* ========================================================================
 * Publish
 * ===================================================================== */

static void sleep_ms(uint32_t ms)
{
	/* poll with no fds: a plain, EINTR-tolerant enough sleep. */
	uint64_t end = fr_mono_ms() + ms;

	while (poll(NULL, 0, left_ms(end)) < 0 && errno == EINTR)
		;
}

enum fr_err fr_client_publish(struct fr_client *c, const char *model,
			      const char *table, const uint64_t *rows,
			      const float *values, uint32_t n, uint32_t dim,
			      const char *idem_key, uint64_t *version_out,
			      uint32_t *origin_out)
{
	struct proto_publish m = { .n = n, .dim = dim, .rows = rows,
				   .values = values };
	struct proto_publish_ack ack;
	const uint8_t *pl;
	size_t plen;
	uint64_t busy_end, deadline;
	uint32_t waited = 0;
	enum fr_err err;

	err = usable(c);
	if (err)
		return err;
	if ((err = copy_name(c, "model", model, SHARD_NAME_MAX, m.model)) ||
	    (err = copy_name(c, "table", table, SHARD_NAME_MAX, m.table)) ||
	    (err = copy_name(c, "idempotency key", idem_key ? idem_key : "",
			     PROTO_KEY_MAX, m.key)))
		return err;
	m.req_id = c->next_req++;
	fr_wbuf_reset(&c->out);
	err = proto_publish_encode(&c->out, &m, 0);
	if (err)
		return cfail(c, err, "%s", fr_errmsg());

	busy_end = fr_mono_ms() + c->busy_retry_ms;
	for (;;) {
		deadline = fr_mono_ms() + (uint64_t)c->timeout_ms;
		/* A retry resends the same bytes, request id included: the
		 * BUSY answer to them has been read, so the id is free. */
		err = send_all(c, c->out.data, c->out.len, deadline);
		if (err)
			return err;
		err = await_reply(c, PROTO_PUBLISH_ACK, m.req_id, deadline,
				  &pl, &plen);
		if (err)
			return err;
		err = proto_publish_ack_decode(pl, plen, &ack);
		if (err)
			return cbreak(c, FR_ERR_PROTO,
				      "bad PUBLISH_ACK from %s: %s", c->peer,
				      fr_errmsg());
		if (ack.status == FR_OK)
			break;
		if (ack.status != FR_ERR_BUSY)
			return cfail(c, ack.status, "%s", ack.msg);
		{
			uint64_t now = fr_mono_ms();

			if (now + ack.retry_after_ms > busy_end)
				return cfail(c, FR_ERR_BUSY,
					     "%s (still busy after %u ms of "
					     "retries)",
					     ack.msg, waited);
			sleep_ms(ack.retry_after_ms);
			waited += ack.retry_after_ms;
		}
	}
	if (version_out)
		*version_out = ack.version;
	if (origin_out)
		*origin_out = ack.origin;
	return FR_OK;
}

/* ========================================================================
 * Lookup
 * ===================================================================== */

/* Send a LOOKUP and decode its reply into *rep (pointing into the
 * reader's buffer until the next read). */
static enum fr_err lookup_common(struct fr_client *c, const char *model,
				 const char *table, const uint64_t *rows,
				 uint32_t n, struct proto_lookup_reply *rep)
{
	struct proto_lookup m = { .n = n, .rows = rows };
	const uint8_t *pl;
	size_t plen;
	uint64_t deadline;
	enum fr_err err;

	err = usable(c);
	if (err)
		return err;
	if ((err = copy_name(c, "model", model, SHARD_NAME_MAX, m.model)) ||
	    (err = copy_name(c, "table", table, SHARD_NAME_MAX, m.table)))
		return err;
	m.req_id = c->next_req++;
	fr_wbuf_reset(&c->out);
	err = proto_lookup_encode(&c->out, &m, 0);
	if (err)
		return cfail(c, err, "%s", fr_errmsg());
	deadline = fr_mono_ms() + (uint64_t)c->timeout_ms;
	err = send_all(c, c->out.data, c->out.len, deadline);
	if (err)
		return err;
	err = await_reply(c, PROTO_LOOKUP_REPLY, m.req_id, deadline, &pl,
			  &plen);
	if (err)
		return err;
	err = proto_lookup_reply_decode(pl, plen, rep);
	if (err)
		return cbreak(c, FR_ERR_PROTO, "bad LOOKUP_REPLY from %s: %s",
			      c->peer, fr_errmsg());
	if (rep->status != FR_OK)
		return cfail(c, rep->status, "%s", rep->msg);
	if (rep->n != n)
		return cbreak(c, FR_ERR_PROTO,
			      "%s answered a lookup of %u rows with %u rows",
			      c->peer, n, rep->n);
	return FR_OK;
}

enum fr_err fr_client_lookup(struct fr_client *c, const char *model,
			     const char *table, const uint64_t *rows,
			     uint32_t n, float *values_out,
			     uint32_t dim_expected, uint64_t *versions_out,
			     uint32_t *origins_out)
{
	struct proto_lookup_reply rep;
	enum fr_err err;

	if (!values_out)
		return cfail(c, FR_ERR_INVAL, "lookup: values_out is NULL");
	err = lookup_common(c, model, table, rows, n, &rep);
	if (err)
		return err;
	if (rep.dim != dim_expected)
		return cfail(c, FR_ERR_RANGE,
			     "table '%s' of model '%s' has dim %u; the caller "
			     "expected %u",
			     table, model, rep.dim, dim_expected);
	memcpy(values_out, rep.values, (size_t)n * rep.dim * sizeof(float));
	if (versions_out)
		memcpy(versions_out, rep.versions, (size_t)n * 8);
	if (origins_out)
		memcpy(origins_out, rep.origins, (size_t)n * 4);
	return FR_OK;
}

void fr_client_rows_fini(struct fr_client_rows *r)
{
	free(r->versions);
	free(r->origins);
	free(r->values);
	memset(r, 0, sizeof(*r));
}

enum fr_err fr_client_lookup_rows(struct fr_client *c, const char *model,
				  const char *table, const uint64_t *rows,
				  uint32_t n, struct fr_client_rows *out)
{
	struct proto_lookup_reply rep;
	size_t nv;
	enum fr_err err;

	memset(out, 0, sizeof(*out));
	err = lookup_common(c, model, table, rows, n, &rep);
	if (err)
		return err;
	nv = (size_t)n * rep.dim;
	out->versions = malloc((size_t)n * 8);
	out->origins = malloc((size_t)n * 4);
	out->values = malloc(nv * sizeof(float));
	if (!out->versions || !out->origins || !out->values) {
		fr_client_rows_fini(out);
		return cfail(c, FR_ERR_NOMEM,
			     "lookup: no memory for %u rows of dim %u", n,
			     rep.dim);
	}
	memcpy(out->versions, rep.versions, (size_t)n * 8);
	memcpy(out->origins, rep.origins, (size_t)n * 4);
	memcpy(out->values, rep.values, nv * sizeof(float));
	out->n = n;
	out->dim = rep.dim;
	return FR_OK;
}
