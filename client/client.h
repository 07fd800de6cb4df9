/*
 * client.h — the one public header of freshet's C client library
 * (fr_client_*): publish rows to a freshet node and look rows up, over the
 * node's framed TCP protocol (docs/wire.md §4).  The `freshet` command is
 * built on it.
 *
 * Blocking and timeouts: every call blocks the calling thread until it is
 * done, the node refused, or a timeout passed; nothing runs in the
 * background and no thread is started.  The socket is polled, so every
 * wait is bounded: connect + handshake by the timeout given to
 * fr_client_connect, and each request (send + wait for its reply) by the
 * same timeout, which fr_client_set_timeout changes.  A publish answered
 * BUSY is retried after the node's hint for at most the busy-retry budget
 * (fr_client_set_busy_retry).
 *
 * Threads: a client is used by one thread at a time (calls on one client
 * must not overlap; hand it between threads with your own lock if you
 * must).  Different clients are independent.  SIGPIPE is never raised.
 *
 * Errors: calls return enum fr_err.  When the node refused (an ERROR frame
 * or an error status in a reply) the node's code is returned as is
 * (FR_ERR_NOTFOUND for an unknown model, FR_ERR_BUSY, FR_ERR_VERSION, ...)
 * and fr_client_errmsg() holds the node's own text.  Local failures
 * (FR_ERR_IO, FR_ERR_TIMEOUT, FR_ERR_CLOSED, FR_ERR_PROTO, FR_ERR_INVAL
 * for bad arguments) put a description there instead.  The same text is
 * also this thread's fr_errmsg() (cut at its 511 bytes).
 *
 * After an I/O error, a protocol violation by the node, a timeout while
 * sending, or an ERROR that closes the connection, the client is
 * unusable: later calls return FR_ERR_CLOSED; close it and connect again.
 * A timeout while waiting for a reply leaves the client usable (a late
 * reply is recognised by its request id and dropped) — but a publish that
 * timed out may or may not have been applied: publish again with the same
 * idempotency key.
 */
#ifndef FRESHET_CLIENT_H
#define FRESHET_CLIENT_H

#include <stdint.h>

#include "common/common.h"

#define FR_CLIENT_TIMEOUT_DEFAULT_MS 10000
#define FR_CLIENT_BUSY_RETRY_DEFAULT_MS 30000

struct fr_client;

/* Connect to a node (host: a name or numeric IPv4/IPv6 address; every
 * address it resolves to is tried in turn), with TCP_NODELAY, and say
 * HELLO as a client.  timeout_ms bounds connect + handshake and becomes
 * the request timeout (<= 0: FR_CLIENT_TIMEOUT_DEFAULT_MS).
 * Returns the client, or NULL with *err set (err may be NULL) and the
 * detail in fr_errmsg(): FR_ERR_NOTFOUND (host does not resolve),
 * FR_ERR_IO (connection refused or failed), FR_ERR_TIMEOUT, FR_ERR_VERSION
 * (the node speaks another protocol version; both are named), or the
 * node's refusal.  host is borrowed for the call.  The caller frees the
 * client with fr_client_close. */
struct fr_client *fr_client_connect(const char *host, uint16_t port,
				    int timeout_ms, enum fr_err *err);

/* Request timeout for later calls (<= 0: the default). */
void fr_client_set_timeout(struct fr_client *c, int timeout_ms);

/* Total time a publish may spend waiting out BUSY answers before it gives
 * up with FR_ERR_BUSY (0: no retry; default
 * FR_CLIENT_BUSY_RETRY_DEFAULT_MS).  Each wait is the node's hint, cut to
 * what is left of the budget. */
void fr_client_set_busy_retry(struct fr_client *c, uint32_t max_ms);

/* Publish n rows of one table: rows[n] ids and values[n * dim] f32,
 * row-major (both borrowed for the call).  dim must be the table's; the
 * node checks.  idem_key (NULL or "" for none; up to 64 printable ASCII
 * bytes) makes a retry safe: the node answers a key it has seen with the
 * version it assigned then.  A row id may repeat; the node decides which
 * value wins.  On FR_OK, once the batch is durable on the node,
 * *version_out and *origin_out (each may be NULL) get the HLC version the
 * node stamped and its node id.  The whole publish must fit one frame
 * (64 MiB: about n * (8 + 4 * dim) bytes); FR_ERR_TOOBIG otherwise —
 * split it. */
enum fr_err fr_client_publish(struct fr_client *c, const char *model,
			      const char *table, const uint64_t *rows,
			      const float *values, uint32_t n, uint32_t dim,
			      const char *idem_key, uint64_t *version_out,
			      uint32_t *origin_out);

/* Look up n rows (rows borrowed): values_out[n * dim_expected] gets their
 * values as f32, versions_out[n] and origins_out[n] (each may be NULL)
 * their versions and origins — 0 and 0 for a row never written, whose
 * values are zeros.  FR_ERR_RANGE (nothing written) when the table's dim
 * is not dim_expected; the detail names both. */
enum fr_err fr_client_lookup(struct fr_client *c, const char *model,
			     const char *table, const uint64_t *rows,
			     uint32_t n, float *values_out,
			     uint32_t dim_expected, uint64_t *versions_out,
			     uint32_t *origins_out);

/* The same lookup for a caller that does not know the table's dim: the
 * result arrays are allocated (malloc) and owned by out until
 * fr_client_rows_fini.  out is overwritten; on failure it is empty. */
struct fr_client_rows {
	uint32_t n;
	uint32_t dim;
	uint64_t *versions;   /* n */
	uint32_t *origins;    /* n */
	float *values;        /* n * dim, row-major */
};

enum fr_err fr_client_lookup_rows(struct fr_client *c, const char *model,
				  const char *table, const uint64_t *rows,
				  uint32_t n, struct fr_client_rows *out);
/* Free what a lookup put in r (and empty it); an empty r is fine. */
void fr_client_rows_fini(struct fr_client_rows *r);

/* The text of the last failure on c ("" if none): the node's own message
 * when the node refused.  Valid until the next call on c. */
const char *fr_client_errmsg(const struct fr_client *c);

/* The node id the node gave in its HELLO_ACK. */
uint32_t fr_client_node_id(const struct fr_client *c);

/* Close the connection and free c.  NULL does nothing. */
void fr_client_close(struct fr_client *c);

#endif /* FRESHET_CLIENT_H */
