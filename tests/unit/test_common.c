/*
 * test_common.c — CUnit suite for common/: errors, logging, the hybrid
 * logical clock, byte buffers, half-precision conversion and the mailbox.
 *
 * Each test pins an observable outcome (exact bytes, exact versions, named
 * errors, exact bit patterns).  The f16 tests are exhaustive over all 65536
 * half values and every tie between neighbours; the mailbox test runs four
 * real producer threads against a real libevent loop.  Nothing here touches
 * the file system.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <event2/event.h>

#include "common/common.h"
#include "unit_main.h"

/* ======================================================================
 * Errors
 * ==================================================================== */

static void test_err_strings(void)
{
	const char *seen[FR_ERR__COUNT];
	int i, j;

	for (i = 0; i < FR_ERR__COUNT; i++) {
		seen[i] = fr_strerror((enum fr_err)-i);
		CU_ASSERT_PTR_NOT_NULL_FATAL(seen[i]);
		CU_ASSERT(seen[i][0] != '\0');
		CU_ASSERT_STRING_NOT_EQUAL(seen[i], "unknown error");
		for (j = 0; j < i; j++)
			CU_ASSERT_STRING_NOT_EQUAL(seen[i], seen[j]);
	}
	CU_ASSERT_STRING_EQUAL(fr_strerror((enum fr_err)-FR_ERR__COUNT),
			       "unknown error");
	CU_ASSERT_STRING_EQUAL(fr_strerror((enum fr_err)-1000), "unknown error");
	CU_ASSERT_STRING_EQUAL(fr_strerror((enum fr_err)7), "unknown error");
	CU_ASSERT_STRING_EQUAL(fr_strerror(FR_ERR_BUSY), "busy, queue full");
}

struct err_thread {
	char before[64];
	char after[64];
	enum fr_err ret;
};

static void *err_thread_main(void *arg)
{
	struct err_thread *t = arg;

	snprintf(t->before, sizeof(t->before), "%s", fr_errmsg());
	t->ret = fr_fail(FR_ERR_RANGE, "thread field '%s': expected %d", "x", 9);
	snprintf(t->after, sizeof(t->after), "%s", fr_errmsg());
	return NULL;
}

static void test_err_detail_per_thread(void)
{
	struct err_thread t;
	pthread_t th;
	char longfmt[2000];

	memset(&t, 0, sizeof(t));
	CU_ASSERT_EQUAL(fr_fail(FR_ERR_INVAL, "main field '%s': bad %d", "dim",
				0), FR_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "main field 'dim': bad 0");

	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, err_thread_main, &t), 0);
	pthread_join(th, NULL);
	CU_ASSERT_STRING_EQUAL(t.before, "");
	CU_ASSERT_EQUAL(t.ret, FR_ERR_RANGE);
	CU_ASSERT_STRING_EQUAL(t.after, "thread field 'x': expected 9");
	/* The other thread's failure did not touch ours. */
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "main field 'dim': bad 0");

	/* Overlong details are truncated, not overflowed. */
	memset(longfmt, 'a', sizeof(longfmt) - 1);
	longfmt[sizeof(longfmt) - 1] = '\0';
	fr_fail(FR_ERR_TOOBIG, "%s", longfmt);
	CU_ASSERT(strlen(fr_errmsg()) > 100);
	CU_ASSERT(strlen(fr_errmsg()) < sizeof(longfmt) - 1);

	fr_errclear();
	CU_ASSERT_STRING_EQUAL(fr_errmsg(), "");
}

/* ======================================================================
 * Logging
 * ==================================================================== */

static int log_side_effects;

static int log_bump(void)
{
	return ++log_side_effects;
}

/* Read whatever the pipe holds now (the writer is synchronous). */
static size_t pipe_drain(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t r;

	while (len < cap - 1) {
		r = read(fd, buf + len, cap - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return len;
}

static int count_char(const char *s, size_t n, char c)
{
	int k = 0;
	size_t i;

	for (i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

static void test_log_lazy_args(void)
{
	int p[2];
	char buf[4096];

	CU_ASSERT_EQUAL_FATAL(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	fr_log_set_fd(p[1]);
	fr_log_set_level(FR_LOG_INFO);
	log_side_effects = 0;

	fr_log(FR_LOG_DEBUG, "test", "never %d", log_bump());
	CU_ASSERT_EQUAL(log_side_effects, 0);
	CU_ASSERT_EQUAL(pipe_drain(p[0], buf, sizeof(buf)), 0);

	fr_log(FR_LOG_INFO, "test", "once %d", log_bump());
	CU_ASSERT_EQUAL(log_side_effects, 1);
	pipe_drain(p[0], buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "test: once 1\n"));

	fr_log_set_level(FR_LOG_OFF);
	fr_log(FR_LOG_ERROR, "test", "off %d", log_bump());
	CU_ASSERT_EQUAL(log_side_effects, 1);
	CU_ASSERT_EQUAL(pipe_drain(p[0], buf, sizeof(buf)), 0);

	fr_log_set_level(FR_LOG_INFO);
	fr_log_set_fd(2);
	close(p[0]);
	close(p[1]);
}

static void test_log_line_format(void)
{
	int p[2];
	char buf[8192];
	char *big;
	size_t len;
	struct event_base *base;
	struct event *ev;

	CU_ASSERT_EQUAL_FATAL(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	fr_log_set_fd(p[1]);
	fr_log_set_level(FR_LOG_INFO);
	fr_log_set_node("node-7");

	fr_log(FR_LOG_WARN, "shard", "table '%s' has %d rows", "emb", 42);
	len = pipe_drain(p[0], buf, sizeof(buf));
	CU_ASSERT_EQUAL(count_char(buf, len, '\n'), 1);
	CU_ASSERT(len > 0 && buf[len - 1] == '\n');
	/* "YYYY-MM-DDTHH:MM:SS.mmmZ " is 25 characters. */
	CU_ASSERT(len > 25 && buf[4] == '-' && buf[7] == '-' && buf[10] == 'T' &&
		  buf[13] == ':' && buf[16] == ':' && buf[19] == '.' &&
		  buf[23] == 'Z' && buf[24] == ' ');
	CU_ASSERT_STRING_EQUAL(buf + 25,
			       "WARN  [node-7] shard: table 'emb' has 42 rows\n");

	/* An overlong message is cut but remains one terminated line. */
	big = malloc(6000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'z', 5999);
	big[5999] = '\0';
	fr_log(FR_LOG_ERROR, "big", "%s", big);
	free(big);
	len = pipe_drain(p[0], buf, sizeof(buf));
	CU_ASSERT(len > 1000 && len < 5999);
	CU_ASSERT_EQUAL(count_char(buf, len, '\n'), 1);
	CU_ASSERT(buf[len - 1] == '\n');
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "ERROR [node-7] big: zzz"));

	/* libevent's own warnings arrive as our lines. */
	fr_log_route_libevent();
	base = event_base_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(base);
	ev = event_new(base, -1, EV_SIGNAL | EV_READ, NULL, NULL);
	CU_ASSERT_PTR_NULL(ev);
	len = pipe_drain(p[0], buf, sizeof(buf));
	CU_ASSERT_EQUAL(count_char(buf, len, '\n'), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "WARN  [node-7] libevent: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "EV_SIGNAL"));
	event_base_free(base);

	fr_log_set_node(NULL);
	fr_log(FR_LOG_INFO, "m", "x");
	pipe_drain(p[0], buf, sizeof(buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "INFO  [-] m: x\n"));

	fr_log_set_fd(2);
	close(p[0]);
	close(p[1]);
}

static void test_log_level_parse(void)
{
	static const struct {
		const char *name;
		enum fr_log_level level;
	} names[] = {
		{ "debug", FR_LOG_DEBUG },
		{ "info", FR_LOG_INFO },
		{ "WARN", FR_LOG_WARN },
		{ "error", FR_LOG_ERROR },
		{ "off", FR_LOG_OFF },
	};
	enum fr_log_level l = FR_LOG_OFF;

	for (size_t i = 0; i < FR_UNIT_COUNT(names); i++) {
		CU_ASSERT_EQUAL(fr_log_level_parse(names[i].name, &l), FR_OK);
		CU_ASSERT_EQUAL(l, names[i].level);
	}
	CU_ASSERT_EQUAL(fr_log_level_parse("verbose", &l), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(l, FR_LOG_OFF);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "verbose"));
	CU_ASSERT_EQUAL(fr_log_level_parse("", &l), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(fr_log_level_parse(NULL, &l), FR_ERR_INVAL);
}

/* ======================================================================
 * Hybrid logical clock
 * ==================================================================== */

static uint64_t fake_clock(void *arg)
{
	return *(uint64_t *)arg;
}

static void test_hlc_monotonic(void)
{
	struct fr_hlc c;
	uint64_t t = 1000000;	/* ms */
	uint64_t prev, v;
	int i;

	fr_hlc_init(&c, 77, fake_clock, &t, 0);
	CU_ASSERT_EQUAL(c.node_id, 77);
	CU_ASSERT_EQUAL(c.max_drift_ms, 60000);

	v = fr_hlc_now(&c);
	CU_ASSERT_EQUAL(v, FR_HLC_MAKE(1000000, 0));
	prev = v;
	for (i = 1; i <= 5; i++) {		/* clock stands still */
		v = fr_hlc_now(&c);
		CU_ASSERT_EQUAL(v, FR_HLC_MAKE(1000000, i));
		prev = v;
	}
	t += 500;				/* jumps forward */
	v = fr_hlc_now(&c);
	CU_ASSERT_EQUAL(v, FR_HLC_MAKE(1000500, 0));
	CU_ASSERT(v > prev);
	prev = v;
	t -= 10000;				/* steps back 10 s */
	for (i = 1; i <= 100; i++) {
		v = fr_hlc_now(&c);
		CU_ASSERT(v > prev);
		CU_ASSERT_EQUAL(v, FR_HLC_MAKE(1000500, i));
		prev = v;
	}
	t += 10000;				/* catches up to the same ms */
	v = fr_hlc_now(&c);
	CU_ASSERT_EQUAL(v, FR_HLC_MAKE(1000500, 101));
	t += 1;
	v = fr_hlc_now(&c);
	CU_ASSERT_EQUAL(v, FR_HLC_MAKE(1000501, 0));
}

static void test_hlc_logical_overflow(void)
{
	struct fr_hlc c;
	uint64_t t = 5000;
	uint64_t v = 0, prev = 0;
	unsigned i;
	int bad = 0;

	fr_hlc_init(&c, 1, fake_clock, &t, 0);
	for (i = 0; i < 0x10000u; i++) {
		v = fr_hlc_now(&c);
		bad += v <= prev;
		prev = v;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(v, FR_HLC_MAKE(5000, 0xffff));
	v = fr_hlc_now(&c);		/* carries into the ms field */
	CU_ASSERT_EQUAL(v, FR_HLC_MAKE(5001, 0));
	CU_ASSERT_EQUAL(FR_HLC_PHYS(v), 5001);
	CU_ASSERT_EQUAL(FR_HLC_LOGICAL(v), 0);
	v = fr_hlc_now(&c);		/* wall clock still behind the version */
	CU_ASSERT_EQUAL(v, FR_HLC_MAKE(5001, 1));
}

static void test_hlc_observe(void)
{
	struct fr_hlc c;
	uint64_t t = 2000000;
	uint64_t remote, before, v;

	fr_hlc_init(&c, 2, fake_clock, &t, 1000);
	CU_ASSERT_EQUAL(c.max_drift_ms, 1000);
	v = fr_hlc_now(&c);

	/* A remote version behind ours changes nothing. */
	CU_ASSERT_EQUAL(fr_hlc_observe(&c, FR_HLC_MAKE(1999000, 9)), FR_OK);
	CU_ASSERT_EQUAL(c.last, v);

	/* Ahead, within the drift: the next local version exceeds it. */
	remote = FR_HLC_MAKE(2000700, 33);
	CU_ASSERT_EQUAL(fr_hlc_observe(&c, remote), FR_OK);
	v = fr_hlc_now(&c);
	CU_ASSERT(v > remote);
	CU_ASSERT_EQUAL(v, remote + 1);

	/* Exactly at the drift limit is still accepted. */
	remote = FR_HLC_MAKE(2001000, 0);
	CU_ASSERT_EQUAL(fr_hlc_observe(&c, remote), FR_OK);
	CU_ASSERT(fr_hlc_now(&c) > remote);

	/* Beyond it: refused, clock untouched. */
	before = c.last;
	fr_errclear();
	CU_ASSERT_EQUAL(fr_hlc_observe(&c, FR_HLC_MAKE(2001001, 0)),
			FR_ERR_RANGE);
	CU_ASSERT_EQUAL(c.last, before);
	CU_ASSERT(fr_errmsg()[0] != '\0');
	CU_ASSERT_EQUAL(fr_hlc_observe(&c, UINT64_MAX), FR_ERR_RANGE);
	CU_ASSERT_EQUAL(c.last, before);
	CU_ASSERT_EQUAL(fr_hlc_now(&c), before + 1);
}

static void test_hlc_wall(void)
{
	struct fr_hlc c;
	uint64_t w0, v, m0, m1, n0, n1;

	fr_hlc_init(&c, 3, NULL, NULL, 0);
	w0 = fr_wall_ms(NULL);
	v = fr_hlc_now(&c);
	/* Some time after 2020-01-01 and within a second of the wall. */
	CU_ASSERT(w0 > 1577836800000ull);
	CU_ASSERT(FR_HLC_PHYS(v) >= w0 && FR_HLC_PHYS(v) < w0 + 1000);
	CU_ASSERT(fr_hlc_now(&c) > v);

	n0 = fr_mono_ns();
	m0 = fr_mono_ms();
	usleep(2000);
	m1 = fr_mono_ms();
	n1 = fr_mono_ns();
	CU_ASSERT(m1 >= m0 + 1);
	CU_ASSERT(n1 - n0 >= 2000000u);
}

/* ======================================================================
 * Byte buffers
 * ==================================================================== */

static void test_buf_roundtrip(void)
{
	static const uint8_t expect[] = {
		0xab,
		0x34, 0x12,
		0x04, 0x03, 0x02, 0x01,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		'h', 'i', '!',
	};
	struct fr_wbuf w;
	struct fr_rbuf r;
	char out[3];
	const uint8_t *zp;

	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_EQUAL(w.limit, SIZE_MAX);
	fr_wbuf_u8(&w, 0xab);
	fr_wbuf_u16(&w, 0x1234);
	fr_wbuf_u32(&w, 0x01020304u);
	fr_wbuf_u64(&w, 0x0102030405060708ull);
	fr_wbuf_bytes(&w, "hi!", 3);
	fr_wbuf_bytes(&w, NULL, 0);
	CU_ASSERT_EQUAL(w.err, FR_OK);
	CU_ASSERT_EQUAL_FATAL(w.len, sizeof(expect));
	CU_ASSERT_EQUAL(memcmp(w.data, expect, sizeof(expect)), 0);

	fr_rbuf_init(&r, w.data, w.len);
	CU_ASSERT_EQUAL(fr_rbuf_u8(&r), 0xab);
	CU_ASSERT_EQUAL(fr_rbuf_u16(&r), 0x1234);
	CU_ASSERT_EQUAL(fr_rbuf_u32(&r), 0x01020304u);
	CU_ASSERT_EQUAL(fr_rbuf_u64(&r), 0x0102030405060708ull);
	CU_ASSERT_EQUAL(fr_rbuf_left(&r), 3);
	zp = fr_rbuf_bytes(&r, 0);
	CU_ASSERT_PTR_EQUAL(zp, w.data + 15);	/* zero-copy */
	fr_rbuf_copy(&r, out, 3);
	CU_ASSERT_EQUAL(memcmp(out, "hi!", 3), 0);
	CU_ASSERT_EQUAL(fr_rbuf_left(&r), 0);
	CU_ASSERT_EQUAL(r.err, FR_OK);

	/* Extremes survive. */
	fr_wbuf_reset(&w);
	CU_ASSERT_EQUAL(w.len, 0);
	fr_wbuf_u64(&w, UINT64_MAX);
	fr_wbuf_u32(&w, 0);
	fr_wbuf_u16(&w, UINT16_MAX);
	fr_rbuf_init(&r, w.data, w.len);
	CU_ASSERT_EQUAL(fr_rbuf_u64(&r), UINT64_MAX);
	CU_ASSERT_EQUAL(fr_rbuf_u32(&r), 0);
	CU_ASSERT_EQUAL(fr_rbuf_u16(&r), UINT16_MAX);
	CU_ASSERT_EQUAL(r.err, FR_OK);
	fr_wbuf_fini(&w);
	CU_ASSERT_PTR_NULL(w.data);
	fr_wbuf_fini(&w);	/* twice is harmless */
}

static void test_buf_growth(void)
{
	struct fr_wbuf w;
	uint8_t *p;
	uint32_t i;
	int bad = 0;

	fr_wbuf_init(&w, 4, 0);
	for (i = 0; i < 10000; i++)
		fr_wbuf_u32(&w, i * 2654435761u);
	CU_ASSERT_EQUAL(w.err, FR_OK);
	CU_ASSERT_EQUAL(w.len, 40000);
	CU_ASSERT(w.cap >= w.len);
	for (i = 0; i < 10000; i++) {
		uint32_t v;

		memcpy(&v, w.data + 4 * i, 4);
		bad += v != i * 2654435761u;
	}
	CU_ASSERT_EQUAL(bad, 0);

	/* reserve gives room without advancing; append advances. */
	p = fr_wbuf_reserve(&w, 100000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_PTR_EQUAL(p, w.data + 40000);
	CU_ASSERT(w.cap >= 140000);
	CU_ASSERT_EQUAL(w.len, 40000);
	memset(p, 0x5a, 10);
	p = fr_wbuf_append(&w, 10);
	CU_ASSERT_PTR_EQUAL(p, w.data + 40000);
	CU_ASSERT_EQUAL(w.len, 40010);
	CU_ASSERT_EQUAL(w.data[40009], 0x5a);
	fr_wbuf_fini(&w);

	/* A zero-capacity buffer still returns a real pointer on success. */
	fr_wbuf_init(&w, 0, 0);
	CU_ASSERT_PTR_NOT_NULL(fr_wbuf_append(&w, 0));
	CU_ASSERT_EQUAL(w.err, FR_OK);
	fr_wbuf_fini(&w);
}

static void test_buf_limit(void)
{
	struct fr_wbuf w;
	uint8_t mem[8];

	/* Growable with a hard limit of 10 bytes. */
	fr_wbuf_init(&w, 2, 10);
	fr_wbuf_u64(&w, 1);
	fr_wbuf_u16(&w, 2);
	CU_ASSERT_EQUAL(w.err, FR_OK);
	CU_ASSERT_EQUAL(w.len, 10);
	fr_wbuf_u8(&w, 3);
	CU_ASSERT_EQUAL(w.err, FR_ERR_TOOBIG);
	CU_ASSERT_EQUAL(w.len, 10);
	CU_ASSERT(w.cap <= 10);
	/* Sticky: a write that would fit is refused too. */
	CU_ASSERT_PTR_NULL(fr_wbuf_append(&w, 0));
	fr_wbuf_pad(&w, 4);
	CU_ASSERT_EQUAL(w.len, 10);
	CU_ASSERT_EQUAL(w.err, FR_ERR_TOOBIG);
	fr_wbuf_fini(&w);

	/* size_t overflow on len + n is TOOBIG, not a wrap. */
	fr_wbuf_init(&w, 0, 0);
	fr_wbuf_u8(&w, 1);
	CU_ASSERT_PTR_NULL(fr_wbuf_reserve(&w, SIZE_MAX));
	CU_ASSERT_EQUAL(w.err, FR_ERR_TOOBIG);
	fr_wbuf_fini(&w);

	/* Fixed buffer over caller memory. */
	memset(mem, 0xee, sizeof(mem));
	fr_wbuf_init_fixed(&w, mem, sizeof(mem));
	fr_wbuf_u32(&w, 0x11223344u);
	fr_wbuf_u16(&w, 0x5566);
	CU_ASSERT_EQUAL(w.err, FR_OK);
	fr_wbuf_u32(&w, 0x778899aau);	/* 10 > 8 */
	CU_ASSERT_EQUAL(w.err, FR_ERR_TOOBIG);
	CU_ASSERT_EQUAL(w.len, 6);
	CU_ASSERT_EQUAL(mem[6], 0xee);	/* nothing written past the end */
	CU_ASSERT_EQUAL(mem[0], 0x44);
	CU_ASSERT_PTR_EQUAL(w.data, mem);
	fr_wbuf_fini(&w);		/* must not free caller memory */
}

static void test_buf_pad_put_at(void)
{
	struct fr_wbuf w;
	struct fr_rbuf r;
	static const uint8_t z[5];
	size_t off;

	fr_wbuf_init(&w, 0, 0);
	fr_wbuf_bytes(&w, "abc", 3);
	fr_wbuf_pad(&w, 8);
	CU_ASSERT_EQUAL(w.len, 8);
	CU_ASSERT_EQUAL(memcmp(w.data + 3, z, 5), 0);
	fr_wbuf_pad(&w, 8);		/* aligned already: no-op */
	CU_ASSERT_EQUAL(w.len, 8);
	fr_wbuf_pad(&w, 1);
	CU_ASSERT_EQUAL(w.len, 8);

	off = w.len;
	fr_wbuf_u32(&w, 0);		/* length placeholder */
	fr_wbuf_u64(&w, 0);
	fr_wbuf_bytes(&w, "payload", 7);
	fr_wbuf_put_u32_at(&w, off, (uint32_t)(w.len - off));
	fr_wbuf_put_u64_at(&w, off + 4, 0xdeadbeefcafef00dull);
	CU_ASSERT_EQUAL(w.err, FR_OK);

	fr_rbuf_init(&r, w.data, w.len);
	fr_rbuf_bytes(&r, 3);
	fr_rbuf_align(&r, 8);
	CU_ASSERT_EQUAL(r.off, 8);
	fr_rbuf_align(&r, 8);
	CU_ASSERT_EQUAL(r.off, 8);
	CU_ASSERT_EQUAL(fr_rbuf_u32(&r), 4 + 8 + 7);
	CU_ASSERT_EQUAL(fr_rbuf_u64(&r), 0xdeadbeefcafef00dull);
	CU_ASSERT_EQUAL(memcmp(fr_rbuf_bytes(&r, 7), "payload", 7), 0);
	CU_ASSERT_EQUAL(r.err, FR_OK);
	/* Aligning past the end is a truncation. */
	fr_rbuf_align(&r, 64);
	CU_ASSERT_EQUAL(r.err, FR_ERR_TRUNC);

	/* put_at beyond what was written is refused, nothing changes. */
	fr_wbuf_put_u64_at(&w, w.len - 4, 1);
	CU_ASSERT_EQUAL(w.err, FR_ERR_RANGE);
	fr_wbuf_reset(&w);
	CU_ASSERT_EQUAL(w.err, FR_OK);
	fr_wbuf_put_u32_at(&w, SIZE_MAX, 1);
	CU_ASSERT_EQUAL(w.err, FR_ERR_RANGE);
	fr_wbuf_fini(&w);
}

static void test_buf_sticky_trunc(void)
{
	static const uint8_t in[] = { 1, 2, 3, 4, 5 };
	struct fr_rbuf r;
	uint8_t out[4];

	fr_rbuf_init(&r, in, sizeof(in));
	CU_ASSERT_EQUAL(fr_rbuf_u16(&r), 0x0201);
	CU_ASSERT_EQUAL(fr_rbuf_u32(&r), 0);	/* only 3 left */
	CU_ASSERT_EQUAL(r.err, FR_ERR_TRUNC);
	CU_ASSERT_EQUAL(r.off, 2);		/* did not advance */
	CU_ASSERT_EQUAL(fr_rbuf_left(&r), 0);
	/* Sticky: even reads that would fit now fail with zeros. */
	CU_ASSERT_EQUAL(fr_rbuf_u8(&r), 0);
	CU_ASSERT_EQUAL(fr_rbuf_u16(&r), 0);
	CU_ASSERT_EQUAL(fr_rbuf_u64(&r), 0);
	CU_ASSERT_PTR_NULL(fr_rbuf_bytes(&r, 1));
	memset(out, 0x77, sizeof(out));
	fr_rbuf_copy(&r, out, 2);
	CU_ASSERT(out[0] == 0 && out[1] == 0 && out[2] == 0x77);
	CU_ASSERT_EQUAL(r.err, FR_ERR_TRUNC);
	CU_ASSERT_FALSE(fr_rbuf_fits(&r, 1, 1));

	/* An empty reader over NULL. */
	fr_rbuf_init(&r, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL(fr_rbuf_bytes(&r, 0));
	CU_ASSERT_EQUAL(r.err, FR_OK);
	CU_ASSERT_EQUAL(fr_rbuf_u8(&r), 0);
	CU_ASSERT_EQUAL(r.err, FR_ERR_TRUNC);
}

static void test_buf_fits(void)
{
	static uint8_t in[100];
	struct fr_rbuf r;
	uint64_t out = 12345;

	fr_rbuf_init(&r, in, sizeof(in));
	fr_rbuf_bytes(&r, 20);			/* 80 left */
	CU_ASSERT_TRUE(fr_rbuf_fits(&r, 10, 8));
	CU_ASSERT_TRUE(fr_rbuf_fits(&r, 80, 1));
	CU_ASSERT_FALSE(fr_rbuf_fits(&r, 81, 1));
	CU_ASSERT_FALSE(fr_rbuf_fits(&r, 11, 8));
	CU_ASSERT_TRUE(fr_rbuf_fits(&r, 0, UINT64_MAX));
	CU_ASSERT_TRUE(fr_rbuf_fits(&r, UINT64_MAX, 0));
	/* Products that wrap 64 bits to something small must not pass. */
	CU_ASSERT_FALSE(fr_rbuf_fits(&r, 1ull << 63, 2));	/* wraps to 0 */
	CU_ASSERT_FALSE(fr_rbuf_fits(&r, (1ull << 62) + 1, 4));	/* wraps to 4 */
	CU_ASSERT_FALSE(fr_rbuf_fits(&r, UINT64_MAX, UINT64_MAX)); /* to 1 */
	CU_ASSERT_FALSE(fr_rbuf_fits(&r, 1ull << 32, 1ull << 32));

	CU_ASSERT_TRUE(fr_mul_size(1ull << 31, 1ull << 32, &out));
	CU_ASSERT_EQUAL(out, 1ull << 63);
	CU_ASSERT_FALSE(fr_mul_size(1ull << 32, 1ull << 32, &out));
	CU_ASSERT_TRUE(fr_add_size(UINT64_MAX - 1, 1, &out));
	CU_ASSERT_EQUAL(out, UINT64_MAX);
	CU_ASSERT_FALSE(fr_add_size(UINT64_MAX, 1, &out));
}

/* ======================================================================
 * Half precision
 * ==================================================================== */

static uint32_t f32_bits(float f)
{
	uint32_t x;

	memcpy(&x, &f, 4);
	return x;
}

static float bits_f32(uint32_t x)
{
	float f;

	memcpy(&f, &x, 4);
	return f;
}

static float pow2f(int k)		/* normal f32 range only */
{
	return bits_f32((uint32_t)(k + 127) << 23);
}

static bool h_is_nan(uint16_t h)
{
	return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}

static void test_f16_exhaustive(void)
{
	uint32_t h;
	int bad_rt = 0, bad_val = 0, bad_nan = 0;

	for (h = 0; h < 0x10000u; h++) {
		float f = fr_f16_to_f32((uint16_t)h);
		uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
		uint16_t back = fr_f32_to_f16(f);
		float want;

		if (h_is_nan((uint16_t)h)) {
			/* Quieted: same sign and payload, quiet bit set. */
			bad_nan += f == f;
			bad_nan += back != (h | 0x200u);
			continue;
		}
		bad_rt += back != h;
		if (e == 31)
			want = bits_f32(0x7f800000u);
		else if (e == 0)
			want = (float)m * pow2f(-24);
		else
			want = (float)(1024 + m) * pow2f((int)e - 25);
		if (h & 0x8000u)
			want = -want;
		/* Bit compare so that -0 must stay -0. */
		bad_val += f32_bits(f) != f32_bits(want);
	}
	CU_ASSERT_EQUAL(bad_rt, 0);
	CU_ASSERT_EQUAL(bad_val, 0);
	CU_ASSERT_EQUAL(bad_nan, 0);
}

/* Every midpoint between neighbouring finite halves: the tie goes to the
 * even one, a hair above goes up, a hair below goes down. */
static void test_f16_ties_to_even(void)
{
	uint32_t h;
	int bad = 0;

	for (h = 0; h < 0x7bffu; h++) {
		float a = fr_f16_to_f32((uint16_t)h);
		float b = fr_f16_to_f32((uint16_t)(h + 1));
		float mid = (a + b) / 2;	/* exact: 12 significant bits */
		uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
		float above = bits_f32(f32_bits(mid) + 1);
		float below = bits_f32(f32_bits(mid) - 1);

		bad += fr_f32_to_f16(mid) != even;
		bad += fr_f32_to_f16(-mid) != (even | 0x8000u);
		bad += fr_f32_to_f16(above) != h + 1;
		bad += fr_f32_to_f16(below) != h;
		bad += fr_f32_to_f16(-above) != ((h + 1) | 0x8000u);
	}
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_f16_edges(void)
{
	float ms = pow2f(-24), half_ms = pow2f(-25);

	CU_ASSERT_EQUAL(fr_f32_to_f16(1.0f), 0x3c00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(-2.0f), 0xc000);
	CU_ASSERT_EQUAL(fr_f32_to_f16(0.1f), 0x2e66);
	CU_ASSERT_EQUAL(fr_f32_to_f16(65504.0f), 0x7bff);
	CU_ASSERT_EQUAL(fr_f32_to_f16(65519.0f), 0x7bff);
	CU_ASSERT_EQUAL(fr_f32_to_f16(65519.996f), 0x7bff);
	CU_ASSERT_EQUAL(fr_f32_to_f16(65520.0f), 0x7c00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(-65520.0f), 0xfc00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(1e10f), 0x7c00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0x7f7fffffu)), 0x7c00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0x7f800000u)), 0x7c00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0xff800000u)), 0xfc00);

	CU_ASSERT_EQUAL(fr_f32_to_f16(ms), 0x0001);
	CU_ASSERT_EQUAL(fr_f32_to_f16(half_ms), 0x0000);	/* tie -> even 0 */
	CU_ASSERT_EQUAL(fr_f32_to_f16(-half_ms), 0x8000);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(f32_bits(half_ms) + 1)), 0x0001);
	CU_ASSERT_EQUAL(fr_f32_to_f16(1.5f * ms), 0x0002);	/* tie -> even 2 */
	CU_ASSERT_EQUAL(fr_f32_to_f16(2.5f * ms), 0x0002);
	CU_ASSERT_EQUAL(fr_f32_to_f16(pow2f(-26)), 0x0000);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(1)), 0x0000);	/* f32 denormal */
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0x80000001u)), 0x8000);
	CU_ASSERT_EQUAL(fr_f32_to_f16(pow2f(-14)), 0x0400);
	/* Largest subnormal half rounds up into the smallest normal. */
	CU_ASSERT_EQUAL(fr_f32_to_f16(pow2f(-14) - pow2f(-26)), 0x0400);
	CU_ASSERT_EQUAL(fr_f32_to_f16(0.0f), 0x0000);
	CU_ASSERT_EQUAL(fr_f32_to_f16(-0.0f), 0x8000);
	CU_ASSERT_EQUAL(f32_bits(fr_f16_to_f32(0x8000)), 0x80000000u);

	/* NaN: quiet, sign and top payload kept, never infinity. */
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0x7fc00000u)), 0x7e00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0xffc00000u)), 0xfe00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0x7f800001u)), 0x7e00);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0x7fffe000u)), 0x7fff);
	CU_ASSERT_EQUAL(fr_f32_to_f16(bits_f32(0x7f802000u)), 0x7e01);
	CU_ASSERT_EQUAL(f32_bits(fr_f16_to_f32(0x7e00)), 0x7fc00000u);
	CU_ASSERT_EQUAL(f32_bits(fr_f16_to_f32(0xfc01)), 0xffc02000u);
}

static void test_f16_bulk(void)
{
	enum { N = 1000 };
	float src[N], back[N];
	uint16_t h[N];
	int i, bad = 0;

	for (i = 0; i < N; i++)
		src[i] = bits_f32((uint32_t)i * 4294967u + 12345u);
	fr_f32_to_f16_n(src, h, N);
	fr_f16_to_f32_n(h, back, N);
	for (i = 0; i < N; i++) {
		bad += h[i] != fr_f32_to_f16(src[i]);
		bad += f32_bits(back[i]) != f32_bits(fr_f16_to_f32(h[i]));
	}
	CU_ASSERT_EQUAL(bad, 0);
	fr_f32_to_f16_n(src, h, 0);	/* n == 0 touches nothing */
}

/* ======================================================================
 * Mailbox
 * ==================================================================== */

#define MB_PRODUCERS 4
#define MB_PER_PRODUCER 10000

/* Messages are encoded integers, not pointers to memory, so there is
 * nothing to free; +1 keeps every message non-NULL. */
#define MB_MSG(p, i) ((void *)(uintptr_t)(((uintptr_t)(p) << 24 | (i)) + 1))
#define MB_PROD(m) ((((uintptr_t)(m)) - 1) >> 24)
#define MB_SEQ(m) ((((uintptr_t)(m)) - 1) & 0xffffff)

struct mb_stress {
	struct event_base *base;
	struct fr_mailbox *mb;
	unsigned next[MB_PRODUCERS];
	unsigned received;
	unsigned out_of_order;
	unsigned bad;
	unsigned busy[MB_PRODUCERS];
	unsigned post_err[MB_PRODUCERS];
};

struct mb_producer {
	struct mb_stress *s;
	unsigned id;
};

static void mb_stress_cb(void *msg, void *arg)
{
	struct mb_stress *s = arg;
	uintptr_t p = MB_PROD(msg);

	if (p >= MB_PRODUCERS) {
		s->bad++;
		return;
	}
	if (MB_SEQ(msg) != s->next[p])
		s->out_of_order++;
	s->next[p] = (unsigned)MB_SEQ(msg) + 1;
	if (++s->received == MB_PRODUCERS * MB_PER_PRODUCER)
		event_base_loopbreak(s->base);
}

static void *mb_producer_main(void *arg)
{
	struct mb_producer *pr = arg;
	unsigned i;
	enum fr_err e;

	for (i = 0; i < MB_PER_PRODUCER; i++) {
		while ((e = fr_mailbox_post(pr->s->mb, MB_MSG(pr->id, i))) ==
		       FR_ERR_BUSY) {
			pr->s->busy[pr->id]++;
			sched_yield();
		}
		if (e != FR_OK) {
			pr->s->post_err[pr->id]++;
			break;
		}
	}
	return NULL;
}

/* A stall must fail the test, not hang it: closing the mailbox makes the
 * producers' retries end with FR_ERR_CLOSED so that they can be joined. */
static void mb_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mb_stress *s = arg;

	fr_mailbox_close(s->mb);
	event_base_loopbreak(s->base);
}

static void test_mailbox_producers(void)
{
	struct mb_stress s;
	struct mb_producer pr[MB_PRODUCERS];
	pthread_t th[MB_PRODUCERS];
	struct event *timeout;
	struct timeval tv = { 10, 0 };
	enum fr_err e = FR_ERR_IO;
	unsigned i;

	memset(&s, 0, sizeof(s));
	s.base = event_base_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.base);
	/* A small cap makes producers hit BUSY and retry. */
	s.mb = fr_mailbox_new(s.base, 256, mb_stress_cb, &s, &e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.mb);
	CU_ASSERT_EQUAL(e, FR_OK);
	timeout = evtimer_new(s.base, mb_timeout_cb, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(timeout);
	evtimer_add(timeout, &tv);

	for (i = 0; i < MB_PRODUCERS; i++) {
		pr[i].s = &s;
		pr[i].id = i;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL,
						     mb_producer_main, &pr[i]),
				      0);
	}
	event_base_dispatch(s.base);
	for (i = 0; i < MB_PRODUCERS; i++)
		pthread_join(th[i], NULL);

	CU_ASSERT_EQUAL(s.received, MB_PRODUCERS * MB_PER_PRODUCER);
	CU_ASSERT_EQUAL(s.out_of_order, 0);
	CU_ASSERT_EQUAL(s.bad, 0);
	for (i = 0; i < MB_PRODUCERS; i++) {
		CU_ASSERT_EQUAL(s.next[i], MB_PER_PRODUCER);
		CU_ASSERT_EQUAL(s.post_err[i], 0);
	}
	CU_ASSERT_EQUAL(fr_mailbox_pending(s.mb), 0);

	event_free(timeout);
	fr_mailbox_free(s.mb, NULL);
	event_base_free(s.base);
}

struct mb_log {
	uintptr_t got[64];
	unsigned n;
	struct fr_mailbox *mb;	/* when set, the callback posts once more */
};

static void mb_log_cb(void *msg, void *arg)
{
	struct mb_log *l = arg;

	if (l->n < 64)
		l->got[l->n] = (uintptr_t)msg;
	l->n++;
	if (l->mb) {
		fr_mailbox_post(l->mb, (void *)(uintptr_t)100);
		l->mb = NULL;
	}
}

/* drop() takes no argument, so what it sees is collected here. */
static struct mb_log mb_dropped;

static void mb_drop_cb(void *msg)
{
	if (mb_dropped.n < 64)
		mb_dropped.got[mb_dropped.n] = (uintptr_t)msg;
	mb_dropped.n++;
}

static void test_mailbox_cap_close_free(void)
{
	struct event_base *base;
	struct fr_mailbox *mb;
	struct mb_log l;
	enum fr_err e = FR_OK;
	uintptr_t i;

	memset(&l, 0, sizeof(l));
	base = event_base_new();
	CU_ASSERT_PTR_NOT_NULL_FATAL(base);

	CU_ASSERT_PTR_NULL(fr_mailbox_new(base, 0, mb_log_cb, &l, &e));
	CU_ASSERT_EQUAL(e, FR_ERR_INVAL);
	CU_ASSERT_PTR_NULL(fr_mailbox_new(base, 4, NULL, &l, &e));
	CU_ASSERT_EQUAL(e, FR_ERR_INVAL);

	mb = fr_mailbox_new(base, 4, mb_log_cb, &l, &e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	CU_ASSERT_EQUAL(e, FR_OK);

	/* Full at cap: BUSY, and the refused message stays the caller's. */
	for (i = 1; i <= 4; i++)
		CU_ASSERT_EQUAL(fr_mailbox_post(mb, (void *)i), FR_OK);
	CU_ASSERT_EQUAL(fr_mailbox_post(mb, (void *)5), FR_ERR_BUSY);
	CU_ASSERT_EQUAL(fr_mailbox_pending(mb), 4);
	CU_ASSERT_EQUAL(event_base_loop(base, EVLOOP_NONBLOCK), 0);
	CU_ASSERT_EQUAL_FATAL(l.n, 4);
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(l.got[i], i + 1);
	CU_ASSERT_EQUAL(fr_mailbox_post(mb, (void *)5), FR_OK);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL_FATAL(l.n, 5);
	CU_ASSERT_EQUAL(l.got[4], 5);
	CU_ASSERT_EQUAL(fr_mailbox_pending(mb), 0);

	/* One round delivers only what was there when it began; a message
	 * posted from inside the callback waits for the next round. */
	l.n = 0;
	l.mb = mb;
	fr_mailbox_post(mb, (void *)11);
	fr_mailbox_post(mb, (void *)12);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL(l.n, 2);
	CU_ASSERT_EQUAL(fr_mailbox_pending(mb), 1);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL_FATAL(l.n, 3);
	CU_ASSERT_EQUAL(l.got[2], 100);

	/* Close: new posts refused, queued ones still delivered. */
	l.n = 0;
	CU_ASSERT_EQUAL(fr_mailbox_post(mb, (void *)21), FR_OK);
	CU_ASSERT_EQUAL(fr_mailbox_post(mb, (void *)22), FR_OK);
	fr_mailbox_close(mb);
	CU_ASSERT_EQUAL(fr_mailbox_post(mb, (void *)23), FR_ERR_CLOSED);
	CU_ASSERT_EQUAL(fr_mailbox_pending(mb), 2);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CU_ASSERT_EQUAL_FATAL(l.n, 2);
	CU_ASSERT_EQUAL(l.got[0], 21);
	CU_ASSERT_EQUAL(l.got[1], 22);
	fr_mailbox_free(mb, mb_drop_cb);
	CU_ASSERT_EQUAL(mb_dropped.n, 0);

	/* Free hands leftovers to drop, in order. */
	mb = fr_mailbox_new(base, 8, mb_log_cb, &l, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
	l.n = 0;
	for (i = 31; i <= 33; i++)
		CU_ASSERT_EQUAL(fr_mailbox_post(mb, (void *)i), FR_OK);
	fr_mailbox_free(mb, mb_drop_cb);
	CU_ASSERT_EQUAL_FATAL(mb_dropped.n, 3);
	CU_ASSERT_EQUAL(mb_dropped.got[0], 31);
	CU_ASSERT_EQUAL(mb_dropped.got[1], 32);
	CU_ASSERT_EQUAL(mb_dropped.got[2], 33);
	CU_ASSERT_EQUAL(l.n, 0);
	/* The freed mailbox's event is gone: the loop has nothing to run. */
	CU_ASSERT_EQUAL(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	CU_ASSERT_EQUAL(l.n, 0);

	fr_mailbox_free(NULL, mb_drop_cb);
	event_base_free(base);
}

/* ======================================================================
 * Runner
 * ==================================================================== */

static const struct fr_unit_test tests[] = {
	{ "err_strings", test_err_strings },
	{ "err_detail_per_thread", test_err_detail_per_thread },
	{ "log_lazy_args", test_log_lazy_args },
	{ "log_line_format", test_log_line_format },
	{ "log_level_parse", test_log_level_parse },
	{ "hlc_monotonic", test_hlc_monotonic },
	{ "hlc_logical_overflow", test_hlc_logical_overflow },
	{ "hlc_observe", test_hlc_observe },
	{ "hlc_wall", test_hlc_wall },
	{ "buf_roundtrip", test_buf_roundtrip },
	{ "buf_growth", test_buf_growth },
	{ "buf_limit", test_buf_limit },
	{ "buf_pad_put_at", test_buf_pad_put_at },
	{ "buf_sticky_trunc", test_buf_sticky_trunc },
	{ "buf_fits", test_buf_fits },
	{ "f16_exhaustive", test_f16_exhaustive },
	{ "f16_ties_to_even", test_f16_ties_to_even },
	{ "f16_edges", test_f16_edges },
	{ "f16_bulk", test_f16_bulk },
	{ "mailbox_producers", test_mailbox_producers },
	{ "mailbox_cap_close_free", test_mailbox_cap_close_free },
};

int main(void)
{
	return fr_unit_main("common", NULL, NULL, tests, FR_UNIT_COUNT(tests));
}
