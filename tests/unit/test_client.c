/*
 * test_client.c — CUnit suite for the C client library (client/client.c)
 * against a tiny fake node: a thread on a loopback socket that speaks the
 * protocol through proto/'s codecs and answers by a script (version
 * mismatch, BUSY n times, node errors, late and stray replies, silence).
 * It checks what the client sends (rows, values, key) and what it returns
 * (versions, values, codes, the node's text), connect failures and
 * timeouts.
 *
 * Not here: a real freshetd (integration tests), the codecs' own rules
 * (test_proto.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "client/client.h"
#include "proto/proto.h"
#include "testutil.h"
#include "unit_main.h"

#define NODE_ID 42
#define DIM 3

enum script {
	S_NORMAL,        /* HELLO_ACK, then answer everything */
	S_HELLO_V2,      /* HELLO_ACK that says protocol version 2 */
	S_HELLO_REFUSE,  /* ERROR (FR_ERR_VERSION) instead of HELLO_ACK */
	S_SILENT,        /* accept, read, never answer */
	S_LATE,          /* first LOOKUP answered only after the second */
	S_STRAY,         /* answer PUBLISH with a HELLO_ACK */
};

struct fake {
	int lfd;
	uint16_t port;
	pthread_t th;
	enum script script;
	/* Changed by the test between requests, read by the fake: atomic,
	 * since only the socket orders the two threads. */
	_Atomic int busy_left;    /* BUSY answers before an OK */
	uint32_t busy_hint_ms;
	bool publish_notfound;    /* answer PUBLISH with NOTFOUND */
	_Atomic bool lookup_error;/* answer LOOKUP with an ERROR frame */
	/* What the node saw (read after join). */
	int publishes;
	int lookups;
	char key[PROTO_KEY_MAX + 1];
	uint32_t n, dim;
	uint64_t rows[16];
	float values[64];
};

static const char notfound_msg[] = "model 'nope' is not registered here";
static const char range_msg[] = "table 'emb': row 1000 >= rows 100";
static const char refuse_msg[] =
	"protocol version 1 is not spoken here (this node: 2)";

static void send_buf(int fd, struct fr_wbuf *w)
{
	size_t off = 0;

	while (off < w->len) {
		ssize_t k = send(fd, w->data + off, w->len - off,
				 MSG_NOSIGNAL);

		if (k <= 0)
			break;
		off += (size_t)k;
	}
	fr_wbuf_reset(w);
}

static void answer_lookup(struct fake *f, int fd, struct fr_wbuf *w,
			  const struct proto_lookup *m)
{
	uint64_t vers[16];
	uint32_t origs[16];
	float vals[16 * DIM];
	struct proto_lookup_reply r = { .req_id = m->req_id, .status = FR_OK,
					.n = m->n, .dim = DIM,
					.versions = vers, .origins = origs,
					.values = vals };

	if (f->lookup_error) {
		struct proto_error e = { .req_id = m->req_id,
					 .code = FR_ERR_RANGE };

		strcpy(e.msg, range_msg);
		proto_error_encode(w, &e);
		send_buf(fd, w);
		return;
	}
	for (uint32_t i = 0; i < m->n && i < 16; i++) {
		/* Row 0 was "never written". */
		vers[i] = m->rows[i] ? m->rows[i] * 10 : 0;
		origs[i] = m->rows[i] ? NODE_ID : 0;
		for (int j = 0; j < DIM; j++)
			vals[i * DIM + j] =
				m->rows[i] ? (float)m->rows[i] + 0.5f * j : 0;
	}
	proto_lookup_reply_encode(w, &r, 0);
	send_buf(fd, w);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct proto_reader rd;
	struct fr_wbuf w;
	uint8_t buf[4096];
	struct proto_lookup held;
	uint64_t held_rows[16];
	bool holding = false;
	int fd;

	fd = accept(f->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	proto_reader_init(&rd, 0);
	fr_wbuf_init(&w, 0, 0);
	for (;;) {
		struct shard_frame_hdr h;
		const uint8_t *pl;
		size_t plen;
		ssize_t k = recv(fd, buf, sizeof(buf), 0);

		if (k <= 0 || proto_reader_feed(&rd, buf, (size_t)k))
			break;
		if (f->script == S_SILENT)
			continue;
		while (proto_reader_next(&rd, &h, &pl, &plen) == FR_OK) {
			if (h.type == PROTO_HELLO) {
				struct proto_hello hi = {
					.proto_version = PROTO_VERSION,
					.role = PROTO_ROLE_NODE,
					.node_id = NODE_ID,
					.generation = 5,
					.dc = "dc1",
					.cluster = "test",
				};

				if (f->script == S_HELLO_REFUSE) {
					struct proto_error e = {
						.code = FR_ERR_VERSION,
					};

					strcpy(e.msg, refuse_msg);
					proto_error_encode(&w, &e);
					send_buf(fd, &w);
					goto out;
				}
				if (f->script == S_HELLO_V2)
					hi.proto_version = 2;
				proto_hello_encode(&w, PROTO_HELLO_ACK, &hi);
				send_buf(fd, &w);
			} else if (h.type == PROTO_PUBLISH) {
				struct proto_publish m;
				struct proto_publish_ack a = { 0 };

				if (proto_publish_decode(pl, plen, &m))
					goto out;
				f->publishes++;
				a.req_id = m.req_id;
				if (f->script == S_STRAY) {
					struct proto_hello hi = {
						.proto_version = 1,
						.role = PROTO_ROLE_NODE,
						.node_id = NODE_ID,
					};

					proto_hello_encode(&w, PROTO_HELLO_ACK,
							   &hi);
					send_buf(fd, &w);
					continue;
				}
				strcpy(f->key, m.key);
				f->n = m.n;
				f->dim = m.dim;
				if (m.n <= 16 && (size_t)m.n * m.dim <= 64) {
					memcpy(f->rows, m.rows, m.n * 8);
					memcpy(f->values, m.values,
					       (size_t)m.n * m.dim * 4);
				}
				if (f->busy_left > 0) {
					f->busy_left--;
					a.status = FR_ERR_BUSY;
					a.retry_after_ms = f->busy_hint_ms;
					strcpy(a.msg, "publish queue full");
				} else if (f->publish_notfound) {
					a.status = FR_ERR_NOTFOUND;
					strcpy(a.msg, notfound_msg);
				} else {
					a.version = FR_HLC_MAKE(
						1700000000000ULL, f->publishes);
					a.origin = NODE_ID;
				}
				proto_publish_ack_encode(&w, &a);
				send_buf(fd, &w);
			} else if (h.type == PROTO_LOOKUP) {
				struct proto_lookup m;

				if (proto_lookup_decode(pl, plen, &m))
					goto out;
				f->lookups++;
				if (f->script == S_LATE && f->lookups == 1) {
					/* Keep it (its rows live in the
					 * reader's buffer: copy them). */
					held = m;
					memcpy(held_rows, m.rows,
					       (m.n < 16 ? m.n : 16) * 8);
					held.rows = held_rows;
					holding = true;
					continue;
				}
				if (holding) {
					answer_lookup(f, fd, &w, &held);
					holding = false;
				}
				answer_lookup(f, fd, &w, &m);
			}
		}
	}
out:
	proto_reader_fini(&rd);
	fr_wbuf_fini(&w);
	close(fd);
	return NULL;
}

static void fake_start(struct fake *f, enum script s)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(f, 0, sizeof(*f));
	f->script = s;
	f->busy_hint_ms = 20;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(f->lfd >= 0);
	CU_ASSERT_FATAL(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CU_ASSERT_FATAL(listen(f->lfd, 4) == 0);
	CU_ASSERT_FATAL(getsockname(f->lfd, (struct sockaddr *)&a, &al) == 0);
	f->port = ntohs(a.sin_port);
}

static void fake_run(struct fake *f)
{
	CU_ASSERT_FATAL(pthread_create(&f->th, NULL, fake_main, f) == 0);
}

/* After the client closed: the fake sees EOF and ends. */
static void fake_join(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
}

static struct fr_client *connect_ok(struct fake *f)
{
	enum fr_err err = FR_ERR_INVAL;
	struct fr_client *c;

	c = fr_client_connect("127.0.0.1", f->port, 2000, &err);
	if (!c)
		fprintf(stderr, "\n  connect: %s\n", fr_errmsg());
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	return c;
}

/* ----------------------------------------------------------------------
 * Tests
 * -------------------------------------------------------------------- */

static void test_connect_refused(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	enum fr_err err = FR_OK;
	uint64_t t0;
	int fd;

	/* A port that was just free and has no listener. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
	close(fd);
	t0 = fr_mono_ms();
	CU_ASSERT_PTR_NULL(fr_client_connect("127.0.0.1", ntohs(a.sin_port),
					     2000, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_IO);
	CU_ASSERT(errmsg_has("refused"));
	CU_ASSERT(errmsg_has("127.0.0.1:"));
	CU_ASSERT(fr_mono_ms() - t0 < 1500);

	CU_ASSERT_PTR_NULL(fr_client_connect("127.0.0.1", 0, 100, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT_PTR_NULL(fr_client_connect("", 7000, 100, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
}

static void test_connect_timeout(void)
{
	struct fake f;
	enum fr_err err = FR_OK;
	uint64_t t0, dt;

	/* The kernel completes the TCP handshake, nobody answers HELLO. */
	fake_start(&f, S_SILENT);
	fake_run(&f);
	t0 = fr_mono_ms();
	CU_ASSERT_PTR_NULL(fr_client_connect("127.0.0.1", f.port, 200, &err));
	dt = fr_mono_ms() - t0;
	CU_ASSERT_EQUAL(err, FR_ERR_TIMEOUT);
	CU_ASSERT(errmsg_has("did not answer HELLO within 200 ms"));
	CU_ASSERT(dt >= 190 && dt < 1500);
	fake_join(&f);
}

static void test_hello_version(void)
{
	struct fake f;
	enum fr_err err = FR_OK;

	fake_start(&f, S_HELLO_V2);
	fake_run(&f);
	CU_ASSERT_PTR_NULL(fr_client_connect("127.0.0.1", f.port, 2000, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_VERSION);
	CU_ASSERT(errmsg_has("speaks protocol version 2; this client "
			     "speaks version 1"));
	fake_join(&f);

	/* The node refuses us with its own words. */
	fake_start(&f, S_HELLO_REFUSE);
	fake_run(&f);
	CU_ASSERT_PTR_NULL(fr_client_connect("localhost", f.port, 2000, &err));
	CU_ASSERT_EQUAL(err, FR_ERR_VERSION);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), refuse_msg);
	fake_join(&f);
}

static void test_publish_lookup(void)
{
	uint64_t rows[4] = { 7, 0, 99, 7 };
	float vals[4 * DIM];
	uint64_t version = 0, lrows[3] = { 5, 0, 12 }, vers[3];
	uint32_t origin = 0, origs[3];
	float out[3 * DIM];
	struct fr_client_rows rr;
	struct fake f;
	struct fr_client *c;

	for (int i = 0; i < 4 * DIM; i++)
		vals[i] = (float)i / 3.0f;
	fake_start(&f, S_NORMAL);
	fake_run(&f);
	c = connect_ok(&f);
	CU_ASSERT_EQUAL(fr_client_node_id(c), NODE_ID);

	CU_ASSERT_EQUAL(fr_client_publish(c, "ctr", "emb", rows, vals, 4, DIM,
					  "job-1/step-3", &version, &origin),
			FR_OK);
	CU_ASSERT_EQUAL(version, FR_HLC_MAKE(1700000000000ULL, 1));
	CU_ASSERT_EQUAL(origin, NODE_ID);
	CU_ASSERT_STRING_EQUAL(fr_client_errmsg(c), "");

	/* Lookup with the dim known. */
	CU_ASSERT_EQUAL(fr_client_lookup(c, "ctr", "emb", lrows, 3, out, DIM,
					 vers, origs),
			FR_OK);
	CU_ASSERT_EQUAL(vers[0], 50);
	CU_ASSERT_EQUAL(vers[1], 0);
	CU_ASSERT_EQUAL(origs[1], 0);
	CU_ASSERT_EQUAL(origs[2], NODE_ID);
	CU_ASSERT_EQUAL(out[0], 5.0f);
	CU_ASSERT_EQUAL(out[2 * DIM + 2], 13.0f);
	CU_ASSERT_EQUAL(out[DIM], 0.0f);
	/* Without versions and origins. */
	memset(out, 0, sizeof(out));
	CU_ASSERT_EQUAL(fr_client_lookup(c, "ctr", "emb", lrows, 3, out, DIM,
					 NULL, NULL),
			FR_OK);
	CU_ASSERT_EQUAL(out[1], 5.5f);
	/* The wrong dim: refused, named, nothing written, still usable. */
	memset(out, 0x7f, sizeof(out));
	CU_ASSERT_EQUAL(fr_client_lookup(c, "ctr", "emb", lrows, 3, out, 4,
					 vers, NULL),
			FR_ERR_RANGE);
	CU_ASSERT(str_has(fr_client_errmsg(c),
			  "has dim 3; the caller expected 4"));
	CU_ASSERT_EQUAL(((uint8_t *)out)[0], 0x7f);
	/* The dim unknown. */
	CU_ASSERT_EQUAL(fr_client_lookup_rows(c, "ctr", "emb", lrows, 3, &rr),
			FR_OK);
	CU_ASSERT_EQUAL(rr.n, 3);
	CU_ASSERT_EQUAL(rr.dim, DIM);
	CU_ASSERT_EQUAL(rr.versions[2], 120);
	CU_ASSERT_EQUAL(rr.origins[0], NODE_ID);
	CU_ASSERT_EQUAL(rr.values[2 * DIM + 1], 12.5f);
	fr_client_rows_fini(&rr);
	CU_ASSERT_PTR_NULL(rr.values);

	/* Bad arguments are refused locally. */
	CU_ASSERT_EQUAL(fr_client_publish(c, "ctr", "emb", rows, vals, 0, DIM,
					  NULL, NULL, NULL),
			FR_ERR_INVAL);
	CU_ASSERT(str_has(fr_client_errmsg(c), "'n'"));
	{
		char longkey[80];

		memset(longkey, 'k', sizeof(longkey) - 1);
		longkey[79] = '\0';
		CU_ASSERT_EQUAL(fr_client_publish(c, "ctr", "emb", rows, vals,
						  4, DIM, longkey, NULL, NULL),
				FR_ERR_INVAL);
		CU_ASSERT(str_has(fr_client_errmsg(c), "idempotency key"));
	}
	/* ... and the connection still works. */
	CU_ASSERT_EQUAL(fr_client_publish(c, "ctr", "emb", rows, vals, 2, DIM,
					  NULL, &version, NULL),
			FR_OK);
	CU_ASSERT_EQUAL(version, FR_HLC_MAKE(1700000000000ULL, 2));
	fr_client_close(c);
	fake_join(&f);

	/* What the node received: the second publish, byte for byte. */
	CU_ASSERT_EQUAL(f.publishes, 2);
	CU_ASSERT_STRING_EQUAL(f.key, "");
	CU_ASSERT_EQUAL(f.n, 2);
	CU_ASSERT_EQUAL(f.dim, DIM);
	CU_ASSERT(memcmp(f.rows, rows, 2 * 8) == 0);
	CU_ASSERT(memcmp(f.values, vals, 2 * DIM * 4) == 0);
	CU_ASSERT_EQUAL(f.lookups, 4);
}

static void test_busy_retry(void)
{
	uint64_t rows[1] = { 1 }, version = 0;
	float vals[DIM] = { 1, 2, 3 };
	struct fake f;
	struct fr_client *c;
	uint64_t t0;

	/* Two BUSY answers, then OK: one call, three attempts. */
	fake_start(&f, S_NORMAL);
	f.busy_left = 2;
	f.busy_hint_ms = 30;
	fake_run(&f);
	c = connect_ok(&f);
	t0 = fr_mono_ms();
	CU_ASSERT_EQUAL(fr_client_publish(c, "m", "t", rows, vals, 1, DIM,
					  "key-1", &version, NULL),
			FR_OK);
	CU_ASSERT(fr_mono_ms() - t0 >= 60);
	CU_ASSERT_EQUAL(version, FR_HLC_MAKE(1700000000000ULL, 3));

	/* Busy for longer than the budget: FR_ERR_BUSY, the node's text. */
	/* Budget 50 ms, hint 30 ms: one wait, then a second wait would end
	 * past the budget.  (The fake reads busy_left between requests,
	 * while it is blocked in recv.) */
	fr_client_set_busy_retry(c, 50);
	f.busy_left = 1000;
	t0 = fr_mono_ms();
	CU_ASSERT_EQUAL(fr_client_publish(c, "m", "t", rows, vals, 1, DIM,
					  NULL, &version, NULL),
			FR_ERR_BUSY);
	CU_ASSERT(fr_mono_ms() - t0 < 1000);
	CU_ASSERT(str_has(fr_client_errmsg(c), "publish queue full"));
	CU_ASSERT(str_has(fr_client_errmsg(c), "still busy after 30 ms"));
	/* No retry at all. */
	fr_client_set_busy_retry(c, 0);
	CU_ASSERT_EQUAL(fr_client_publish(c, "m", "t", rows, vals, 1, DIM,
					  NULL, &version, NULL),
			FR_ERR_BUSY);
	CU_ASSERT(str_has(fr_client_errmsg(c), "still busy after 0 ms"));
	fr_client_close(c);
	fake_join(&f);
	/* 3 + (1 + 1 retry) + 1. */
	CU_ASSERT_EQUAL(f.publishes, 3 + 2 + 1);
	CU_ASSERT_STRING_EQUAL(f.key, "");
}

static void test_node_errors(void)
{
	uint64_t rows[2] = { 1, 1000 };
	float vals[2 * DIM] = { 0 }, out[2 * DIM];
	struct fake f;
	struct fr_client *c;

	fake_start(&f, S_NORMAL);
	f.publish_notfound = true;
	f.lookup_error = true;
	fake_run(&f);
	c = connect_ok(&f);
	CU_ASSERT_EQUAL(fr_client_publish(c, "nope", "t", rows, vals, 2, DIM,
					  NULL, NULL, NULL),
			FR_ERR_NOTFOUND);
	CU_ASSERT_STRING_EQUAL(fr_client_errmsg(c), notfound_msg);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), notfound_msg);
	/* An ERROR frame about one request: its code and text; the
	 * connection stays usable. */
	CU_ASSERT_EQUAL(fr_client_lookup(c, "m", "emb", rows, 2, out, DIM, NULL,
					 NULL),
			FR_ERR_RANGE);
	CU_ASSERT_STRING_EQUAL(fr_client_errmsg(c), range_msg);
	f.lookup_error = false;
	CU_ASSERT_EQUAL(fr_client_lookup(c, "m", "emb", rows, 2, out, DIM, NULL,
					 NULL),
			FR_OK);
	CU_ASSERT_EQUAL(out[0], 1.0f);
	fr_client_close(c);
	fake_join(&f);
}

static void test_late_and_stray(void)
{
	uint64_t rows[2] = { 3, 4 }, vers[2];
	float vals[2 * DIM] = { 0 }, out[2 * DIM];
	struct fake f;
	struct fr_client *c;

	/* The first lookup times out; its late reply arrives just before
	 * the second's, which must be the one returned. */
	fake_start(&f, S_LATE);
	fake_run(&f);
	c = connect_ok(&f);
	fr_client_set_timeout(c, 100);
	CU_ASSERT_EQUAL(fr_client_lookup(c, "m", "emb", rows, 1, out, DIM, vers,
					 NULL),
			FR_ERR_TIMEOUT);
	CU_ASSERT(str_has(fr_client_errmsg(c), "no reply"));
	CU_ASSERT_EQUAL(fr_client_lookup(c, "m", "emb", rows + 1, 1, out, DIM,
					 vers, NULL),
			FR_OK);
	CU_ASSERT_EQUAL(vers[0], 40);
	CU_ASSERT_EQUAL(out[0], 4.0f);
	fr_client_close(c);
	fake_join(&f);
	CU_ASSERT_EQUAL(f.lookups, 2);

	/* A reply of the wrong type: protocol violation, then unusable. */
	fake_start(&f, S_STRAY);
	fake_run(&f);
	c = connect_ok(&f);
	CU_ASSERT_EQUAL(fr_client_publish(c, "m", "t", rows, vals, 2, DIM,
					  NULL, NULL, NULL),
			FR_ERR_PROTO);
	CU_ASSERT(str_has(fr_client_errmsg(c), "sent HELLO_ACK"));
	CU_ASSERT_EQUAL(fr_client_lookup(c, "m", "emb", rows, 1, out, DIM, NULL,
					 NULL),
			FR_ERR_CLOSED);
	CU_ASSERT(errmsg_has("reconnect"));
	fr_client_close(c);
	fake_join(&f);
	fr_client_close(NULL);
}

static const struct fr_unit_test tests[] = {
	{ "connect refused", test_connect_refused },
	{ "connect timeout", test_connect_timeout },
	{ "hello version", test_hello_version },
	{ "publish and lookup", test_publish_lookup },
	{ "busy retry", test_busy_retry },
	{ "node errors", test_node_errors },
	{ "late and stray replies", test_late_and_stray },
};

int main(void)
{
	return fr_unit_main("client", NULL, NULL, tests, FR_UNIT_COUNT(tests));
}
