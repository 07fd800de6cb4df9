/*
 * common.h — the one public header of freshet's common/ module.
 *
 * What lives here: the error enum and its detail message, the fr_log macro,
 * the hybrid logical clock (HLC) that stamps row versions, bounds-checked
 * byte readers/writers for codecs, IEEE half-precision conversion, the
 * mailbox that carries work from other threads into the event loop, the
 * text rules every module shares (names, decimals, HOST:PORT, showing
 * untrusted text, hashing) and the Prometheus text renderer.
 *
 * What does not: anything that knows about shards, peers or ZooKeeper.
 * Foreign types stay out; the mailbox names libevent's event_base only as an
 * opaque forward declaration.
 */
#ifndef FRESHET_COMMON_H
#define FRESHET_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "freshet's wire and disk formats are little-endian; big-endian hosts are not supported"
#endif

/* ------------------------------------------------------------------------
 * Errors
 *
 * Functions that act return enum fr_err (FR_OK or a negative code).
 * Predicates return bool; constructors return a pointer or NULL with the
 * code in an out-parameter.  A failing function may also record a detail
 * message (which field, what was expected) with fr_fail(); the detail is
 * thread-local and read with fr_errmsg().
 * ---------------------------------------------------------------------- */
enum fr_err {
	FR_OK = 0,
	FR_ERR_NOMEM = -1,       /* allocation failed */
	FR_ERR_INVAL = -2,       /* invalid argument or input */
	FR_ERR_RANGE = -3,       /* a value is outside its allowed range */
	FR_ERR_TRUNC = -4,       /* input ended early (short buffer, torn record) */
	FR_ERR_CHECKSUM = -5,    /* checksum mismatch */
	FR_ERR_MAGIC = -6,       /* wrong magic number */
	FR_ERR_VERSION = -7,     /* unsupported format/protocol version */
	FR_ERR_IO = -8,          /* an operating-system I/O call failed */
	FR_ERR_NOTFOUND = -9,    /* no such model/table/row/file */
	FR_ERR_EXISTS = -10,     /* already exists (duplicate) */
	FR_ERR_BUSY = -11,       /* bounded queue full; retry later */
	FR_ERR_REFUSED = -12,    /* version refused (revoked by a rollback) */
	FR_ERR_NOUNDO = -13,     /* undo ring does not reach back far enough */
	FR_ERR_TOOBIG = -14,     /* exceeds a size limit (frame, budget) */
	FR_ERR_CLOSED = -15,     /* object is closed / shutting down */
	FR_ERR_UNSUPPORTED = -16,/* not built in / not available here */
	FR_ERR_CORRUPT = -17,    /* data on disk or wire is inconsistent */
	FR_ERR_PROTO = -18,      /* protocol violation by a peer */
	FR_ERR_TIMEOUT = -19,    /* operation timed out */
	FR_ERR_GPU = -20,        /* GPU runtime error (text logged at the edge) */
	FR_ERR_ZK = -21,         /* ZooKeeper error (text logged at the edge) */
	FR_ERR__COUNT = 22
};

/* Static text for a code; never NULL ("unknown error" for strangers). */
const char *fr_strerror(enum fr_err err);

/* Record a detail message for err in this thread and return err, so that
 * `return fr_fail(FR_ERR_INVAL, "table '%s': dim must be > 0", n);` reads
 * naturally.  Any thread. */
enum fr_err fr_fail(enum fr_err err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The calling thread's last detail message ("" if none).  Valid until the
 * next fr_fail() on this thread. */
const char *fr_errmsg(void);

/* Clear this thread's detail message. */
void fr_errclear(void);

/* freshet's version, "MAJOR.MINOR.PATCH", from CMake's project(VERSION).
 * Any thread. */
const char *fr_version(void);

/* ------------------------------------------------------------------------
 * Logging
 *
 * fr_log(level, module, fmt, ...) checks the level before evaluating its
 * arguments.  Each line is written with one write(2): timestamp, level,
 * node id, module, message.  Any thread.
 * ---------------------------------------------------------------------- */
enum fr_log_level {
	FR_LOG_DEBUG = 0,
	FR_LOG_INFO = 1,
	FR_LOG_WARN = 2,
	FR_LOG_ERROR = 3,
	FR_LOG_OFF = 4
};

extern volatile int fr_log_threshold;

#define fr_log(level, module, ...)                                          \
	do {                                                                \
		if ((int)(level) >= fr_log_threshold)                       \
			fr_log_write((level), (module), __VA_ARGS__);       \
	} while (0)

void fr_log_write(enum fr_log_level level, const char *module,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void fr_log_set_level(enum fr_log_level level);
/* Parse "debug|info|warn|error|off"; FR_ERR_INVAL otherwise. */
enum fr_err fr_log_level_parse(const char *s, enum fr_log_level *out);
/* Node id printed on every line (copied; NULL clears). */
void fr_log_set_node(const char *node_id);
/* Where lines go (default 2, stderr).  The fd is borrowed. */
void fr_log_set_fd(int fd);
/* Route libevent's internal log messages into fr_log (module "libevent"). */
void fr_log_route_libevent(void);

/* ------------------------------------------------------------------------
 * Hybrid logical clock
 *
 * A version is 64 bits: the top 48 are physical milliseconds since the Unix
 * epoch, the low 16 a logical counter.  fr_hlc_now() never returns a value
 * <= one it returned before, even when the wall clock steps backwards.
 * Versions from different nodes are totally ordered by (version, node id);
 * the node id travels beside the version as the row's origin.
 * A clock is owned by one thread (the loop); it has no lock.
 * ---------------------------------------------------------------------- */
#define FR_HLC_LOGICAL_BITS 16
#define FR_HLC_PHYS(v) ((uint64_t)(v) >> FR_HLC_LOGICAL_BITS)
#define FR_HLC_LOGICAL(v) ((uint64_t)(v) & ((1u << FR_HLC_LOGICAL_BITS) - 1))
#define FR_HLC_MAKE(ms, l) (((uint64_t)(ms) << FR_HLC_LOGICAL_BITS) | (uint64_t)(l))

/* Source of physical time in ms; tests inject a fake one. */
typedef uint64_t (*fr_clock_fn)(void *arg);

struct fr_hlc {
	uint64_t last;        /* last version issued or observed */
	uint32_t node_id;     /* tie-breaker, carried as the row origin */
	uint64_t max_drift_ms;/* remote versions further ahead are refused */
	fr_clock_fn now_ms;
	void *clock_arg;
};

/* Wall clock in ms (CLOCK_REALTIME); the default fr_clock_fn. */
uint64_t fr_wall_ms(void *unused);
/* Monotonic clock in ms and ns (CLOCK_MONOTONIC), for timers. */
uint64_t fr_mono_ms(void);
uint64_t fr_mono_ns(void);

/* now_ms NULL means fr_wall_ms.  max_drift_ms 0 means 60000. */
void fr_hlc_init(struct fr_hlc *c, uint32_t node_id, fr_clock_fn now_ms,
		 void *clock_arg, uint64_t max_drift_ms);
/* A fresh version for a local event, strictly greater than any before. */
uint64_t fr_hlc_now(struct fr_hlc *c);
/* Merge a version seen from a peer.  FR_ERR_RANGE (clock untouched) when
 * it is more than max_drift_ms ahead of our physical clock. */
enum fr_err fr_hlc_observe(struct fr_hlc *c, uint64_t remote);

/* ------------------------------------------------------------------------
 * Byte buffers for codecs (little-endian)
 *
 * Writers grow (or, for a fixed buffer, fail with FR_ERR_TOOBIG); readers
 * never read past their end.  Both have a sticky error: after the first
 * failure every call fails and returns zero values, so a decoder can read a
 * whole header and check `err` once.
 * ---------------------------------------------------------------------- */
struct fr_wbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t limit;     /* hard maximum length (SIZE_MAX: none) */
	bool owned;       /* data is ours to realloc/free */
	enum fr_err err;  /* first failure, FR_OK while healthy */
};

/* Growable buffer with an initial capacity and a hard limit (0: none). */
void fr_wbuf_init(struct fr_wbuf *w, size_t initial_cap, size_t limit);
/* Fixed buffer over caller memory (borrowed); never grows. */
void fr_wbuf_init_fixed(struct fr_wbuf *w, void *mem, size_t cap);
void fr_wbuf_fini(struct fr_wbuf *w);
/* Make room for n more bytes; returns a pointer to write them or NULL. */
uint8_t *fr_wbuf_reserve(struct fr_wbuf *w, size_t n);
/* Append n bytes (reserve + advance); returns where they went or NULL. */
uint8_t *fr_wbuf_append(struct fr_wbuf *w, size_t n);
void fr_wbuf_u8(struct fr_wbuf *w, uint8_t v);
void fr_wbuf_u16(struct fr_wbuf *w, uint16_t v);
void fr_wbuf_u32(struct fr_wbuf *w, uint32_t v);
void fr_wbuf_u64(struct fr_wbuf *w, uint64_t v);
void fr_wbuf_bytes(struct fr_wbuf *w, const void *p, size_t n);
/* Zero bytes until len is a multiple of align (a power of two). */
void fr_wbuf_pad(struct fr_wbuf *w, size_t align);
/* Overwrite at an offset already written (for back-patched lengths). */
void fr_wbuf_put_u32_at(struct fr_wbuf *w, size_t off, uint32_t v);
void fr_wbuf_put_u64_at(struct fr_wbuf *w, size_t off, uint64_t v);
/* Forget the contents, keep the memory. */
void fr_wbuf_reset(struct fr_wbuf *w);

struct fr_rbuf {
	const uint8_t *p;  /* borrowed */
	size_t len;
	size_t off;
	enum fr_err err;   /* FR_ERR_TRUNC after a short read */
};

void fr_rbuf_init(struct fr_rbuf *r, const void *p, size_t len);
uint8_t fr_rbuf_u8(struct fr_rbuf *r);
uint16_t fr_rbuf_u16(struct fr_rbuf *r);
uint32_t fr_rbuf_u32(struct fr_rbuf *r);
uint64_t fr_rbuf_u64(struct fr_rbuf *r);
/* Pointer to the next n bytes inside the buffer (zero-copy) and advance,
 * or NULL (sticky FR_ERR_TRUNC) when fewer than n remain. */
const uint8_t *fr_rbuf_bytes(struct fr_rbuf *r, size_t n);
/* Copy n bytes out. */
void fr_rbuf_copy(struct fr_rbuf *r, void *dst, size_t n);
/* Skip to the next multiple of align (power of two), counted from p. */
void fr_rbuf_align(struct fr_rbuf *r, size_t align);
static inline size_t fr_rbuf_left(const struct fr_rbuf *r)
{
	return r->err ? 0 : r->len - r->off;
}
/* true when count * size <= the bytes left; never overflows.  Use it
 * before trusting a count from a peer or a file. */
bool fr_rbuf_fits(const struct fr_rbuf *r, uint64_t count, uint64_t size);

/* Checked size arithmetic: false on overflow. */
bool fr_mul_size(uint64_t a, uint64_t b, uint64_t *out);
bool fr_add_size(uint64_t a, uint64_t b, uint64_t *out);

/* ------------------------------------------------------------------------
 * Half precision (IEEE 754 binary16), round to nearest even, NaN kept
 * quiet, overflow to infinity; identical on every backend.
 * ---------------------------------------------------------------------- */
uint16_t fr_f32_to_f16(float f);
float fr_f16_to_f32(uint16_t h);
void fr_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
void fr_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);

/* ------------------------------------------------------------------------
 * Mailbox: a bounded multi-producer queue drained on the event-loop
 * thread.  Any thread may post; an eventfd wakes a libevent event on the
 * loop, whose callback hands each message to `fn` in post order.
 * ---------------------------------------------------------------------- */
struct event_base;   /* libevent, opaque here */
struct fr_mailbox;

/* Called on the loop thread with a message that was posted; the callee
 * owns msg from then on. */
typedef void (*fr_mailbox_fn)(void *msg, void *arg);

/* Create a mailbox on base holding at most cap messages.  base is
 * borrowed and must outlive the mailbox.  Loop thread. */
struct fr_mailbox *fr_mailbox_new(struct event_base *base, size_t cap,
				  fr_mailbox_fn fn, void *arg,
				  enum fr_err *err);
/* Post msg (ownership passes to the mailbox on FR_OK).  FR_ERR_BUSY when
 * cap messages are queued; FR_ERR_CLOSED after fr_mailbox_close().
 * Any thread. */
enum fr_err fr_mailbox_post(struct fr_mailbox *mb, void *msg);
/* Messages waiting now (a snapshot).  Any thread. */
size_t fr_mailbox_pending(struct fr_mailbox *mb);
/* Refuse new posts; messages already queued are still delivered. */
void fr_mailbox_close(struct fr_mailbox *mb);
/* Free the mailbox; messages still queued are passed to drop (if not
 * NULL) so the caller can free them.  Loop thread; NULL does nothing. */
void fr_mailbox_free(struct fr_mailbox *mb, void (*drop)(void *msg));

/* ------------------------------------------------------------------------
 * Text rules shared by every module (text.c).  One home each:
 *
 *   names      1..max bytes of [A-Za-z0-9_.-], and neither "." nor "..":
 *              names end up in ZooKeeper paths, file names, metric labels
 *              and log lines, so nothing that needs quoting is allowed.
 *   decimals   unsigned base-10 integers, digits only (no sign, no space,
 *              no "0x"), checked for overflow.
 *   HOST:PORT  "HOST:PORT" or "[IPV6]:PORT", port 1..65535.  HOST is
 *              1..255 bytes: a name of name bytes (a dotted number must
 *              be a valid IPv4 address); in brackets a valid IPv6
 *              literal, optionally with a %zone of name bytes.
 *   showing    untrusted bytes made printable for a message or a log
 *              line: printable ASCII as is, a backslash doubled, any other
 *              byte as \xNN, cut with "..." when the buffer is too small.
 *
 * Failures go through fr_fail with a detail that starts with `what`
 * (e.g. "--model", "member field 'dc'") and then the value shown, so a
 * caller that prefixes its own location passes NULL and gets a detail
 * that starts with the value.  Any thread.
 * ---------------------------------------------------------------------- */
#define FR_NAME_CHARS "[A-Za-z0-9_.-]"
#define FR_HOST_MAX 255

/* true when c may appear in a name. */
bool fr_name_char(unsigned char c);
/* true when s is a valid name of at most max bytes (NUL-terminated
 * within max + 1 bytes). */
bool fr_name_valid(const char *s, size_t max);
/* true when exactly n bytes (no NUL needed, e.g. a name on the wire) make
 * a valid name; n 0 is not. */
bool fr_name_valid_n(const void *s, size_t n);
/* Free text (a reason, an idempotency key, a message): printable ASCII,
 * 0x20..0x7e.  fr_text_char for one byte; fr_text_valid_n when all n
 * bytes are (n 0 is). */
bool fr_text_char(unsigned char c);
bool fr_text_valid_n(const void *s, size_t n);
/* FR_OK, or FR_ERR_INVAL with a detail naming `what`, the value (shown)
 * and the rule, e.g. "--model 'a b' has byte 0x20 at 1, expected 1..63
 * bytes of [A-Za-z0-9_.-]". */
enum fr_err fr_name_check(const char *what, const char *s, size_t max);

/* Digits only, 1..len of them, no overflow: the value in *out, true; else
 * false and *out untouched.  The primitive under fr_parse_u64 and the
 * sequence-number parsers (ZooKeeper's "n_0000000012"). */
bool fr_dec_u64(const char *s, size_t len, uint64_t *out);
/* A whole NUL-terminated string as a decimal in [min, max]: FR_ERR_INVAL
 * (empty, not a decimal) or FR_ERR_RANGE (outside) with a detail naming
 * `what` and the range. */
enum fr_err fr_parse_u64(const char *what, const char *s, uint64_t min,
			 uint64_t max, uint64_t *out);

/* Split "HOST:PORT" / "[IPV6]:PORT" into host (brackets removed, at most
 * hostcap - 1 and FR_HOST_MAX bytes) and a port in 1..65535.  FR_ERR_INVAL
 * with a detail naming `what`; host and port untouched then. */
enum fr_err fr_parse_hostport(const char *what, const char *s, char *host,
			      size_t hostcap, uint16_t *port);

/* The first c in s outside "[...]" (an IPv6 literal), or NULL (s NULL
 * too): where a "h:1,[::1]:2/chroot" string's chroot starts.  The result
 * points into s. */
const char *fr_strchr_unbracketed(const char *s, int c);

/* Untrusted bytes shown in buf (cap >= 4), by the rule above; returns
 * buf.  fr_show reads a C string (NULL shows as "(null)"); fr_show_n reads
 * exactly n bytes, NUL included. */
const char *fr_show(char *buf, size_t cap, const char *s);
const char *fr_show_n(char *buf, size_t cap, const void *p, size_t n);

/* XXH3-64 of n bytes with a seed.  Where a client chooses the bytes (an
 * idempotency key), pass fr_hash_seed() so nobody can aim collisions at
 * one bucket.  Any thread. */
uint64_t fr_hash64(const void *p, size_t n, uint64_t seed);
/* A per-process random seed, fixed at first use.  Any thread. */
uint64_t fr_hash_seed(void);

/* ------------------------------------------------------------------------
 * Files (file.c)
 * ---------------------------------------------------------------------- */

/* The whole of path (at most max bytes) in a malloc'd buffer (*out, the
 * caller frees; NUL-terminated one past *len; 8-byte aligned).
 * FR_ERR_NOTFOUND when it does not exist, FR_ERR_TOOBIG over max,
 * FR_ERR_IO, FR_ERR_NOMEM; the detail starts with `what` and the path.
 * Blocks on the disk: never on the loop thread for large files. */
enum fr_err fr_read_file(const char *what, const char *path, size_t max,
			 uint8_t **out, size_t *len);

/* ------------------------------------------------------------------------
 * Prometheus text exposition, format 0.0.4 (prom.c)
 *
 * An exporter lists its families once, in a table (name, type, help), and
 * renders each by pointing at its entry, so the table is the whole list
 * of what it exports: tests/unit checks every entry against
 * docs/metrics.md.  Samples go into a growable fr_wbuf; label values are
 * escaped (backslash, double quote, newline) here and nowhere else.
 * ---------------------------------------------------------------------- */
enum fr_prom_type {
	FR_PROM_COUNTER,
	FR_PROM_GAUGE,
	FR_PROM_HISTOGRAM
};

struct fr_prom_family {
	const char *name;
	enum fr_prom_type type;
	const char *help;
};

/* Latency histogram over fixed bounds in seconds (100 us .. 10 s and
 * +Inf), buckets kept non-cumulative so an observation is one loop and
 * an increment.  Owned by whoever observes it; no lock. */
#define FR_HIST_NB 16
struct fr_hist {
	uint64_t bucket[FR_HIST_NB + 1];   /* last: +Inf */
	uint64_t count;
	double sum;
};
void fr_hist_observe(struct fr_hist *h, double seconds);

/* "text/plain; version=0.0.4; charset=utf-8" */
extern const char fr_prom_content_type[];
const char *fr_prom_type_name(enum fr_prom_type t);

/* # HELP and # TYPE lines of f. */
void fr_prom_family(struct fr_wbuf *w, const struct fr_prom_family *f);
/* One sample of family f: `name{k="v",...} value`.  The labels are
 * (key, value) string pairs ending in NULL; values are escaped.  Samples
 * are doubles, as in Prometheus itself (the shortest of 15..17 digits
 * that reads back exactly; NaN and infinities as
 * Prometheus spells them): integers are exact up to 2^53, so nothing
 * larger (a raw HLC) may be exported as a value.  fr_prom_u64 is the
 * same call for integer counters and gauges. */
void fr_prom_f64(struct fr_wbuf *w, const struct fr_prom_family *f,
		 double v, ...) __attribute__((sentinel));
#define fr_prom_u64(w, f, v, ...) fr_prom_f64((w), (f), (double)(v), __VA_ARGS__)
/* A whole histogram family's samples (buckets made cumulative, _sum,
 * _count), with labels as above. */
void fr_prom_hist(struct fr_wbuf *w, const struct fr_prom_family *f,
		  const struct fr_hist *h, ...) __attribute__((sentinel));
/* The family's HELP/TYPE and one sample, for the common case of a family
 * with a single unlabelled sample. */
void fr_prom_one_f64(struct fr_wbuf *w, const struct fr_prom_family *f,
		     double v);
#define fr_prom_one_u64(w, f, v) fr_prom_one_f64((w), (f), (double)(v))
/* Every family name in tab[0..n) well formed ([a-zA-Z_:][a-zA-Z0-9_:]*),
 * unique, counters ending in _total: FR_OK or FR_ERR_INVAL naming it. */
enum fr_err fr_prom_table_check(const struct fr_prom_family *tab, size_t n);

#endif /* FRESHET_COMMON_H */
