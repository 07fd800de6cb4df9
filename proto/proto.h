/*
 * proto.h — the one public header of freshet's proto/ module: the codecs
 * of the messages that nodes and clients exchange over the framed TCP
 * protocol (docs/wire.md §4): HELLO, ERROR, PUBLISH, LOOKUP and their
 * replies, and a stream reader that cuts a byte stream into checked
 * frames.  Gossip's own messages (DIGEST, PULL, PULL_REPLY) are gossip/'s.
 *
 * Pure, sans-IO: encoders append a whole frame (header + payload, the
 * frame envelope of shard_frame_encode) to an fr_wbuf; decoders take a
 * frame payload that shard_frame_decode has already checked, validate
 * every field and point into it (zero-copy) where they can.  Each failure
 * records a detail naming the field (fr_errmsg()).  No shared state: any
 * thread.
 *
 * Layout rules (docs/wire.md): little-endian fixed-width fields, a fixed
 * header first, then sections that each start 8-aligned and are padded
 * with zeros to 8; names travel as a u8 length in the fixed header and the
 * bytes in a section; reserved fields and padding are zero and checked;
 * the payload must end exactly after its last section.  So every message
 * has exactly one encoding, and decode + encode gives the same bytes.
 */
#ifndef FRESHET_PROTO_H
#define FRESHET_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "shard/shard.h"

#define PROTO_VERSION 1            /* HELLO's protocol version */
#define PROTO_KEY_MAX 64           /* idempotency key bytes */
#define PROTO_ERRMSG_MAX 1024      /* ERROR text bytes */
#define PROTO_DC_MAX 63
#define PROTO_CLUSTER_MAX 63
#define PROTO_READER_CHUNK 65536   /* a good read(2) size for the reader */

/* Frame types 0x100..0x11f: node/client messages.  gossip/ uses 0x120..
 * (docs/wire.md §1.1). */
enum proto_type {
	PROTO_HELLO = 0x100,
	PROTO_HELLO_ACK = 0x101,
	PROTO_ERROR = 0x102,
	PROTO_PUBLISH = 0x110,
	PROTO_PUBLISH_ACK = 0x111,
	PROTO_LOOKUP = 0x112,
	PROTO_LOOKUP_REPLY = 0x113,
};

/* "HELLO", "PUBLISH_ACK", ... for logs; "?" for a type not listed above. */
const char *proto_type_name(uint16_t type);

enum proto_role {
	PROTO_ROLE_NODE = 1,    /* a freshetd peer */
	PROTO_ROLE_CLIENT = 2,  /* a trainer, CLI or inference client */
};

/* HELLO and HELLO_ACK: who is talking.  A node refuses a peer whose
 * protocol version or cluster differs (ERROR with FR_ERR_VERSION /
 * FR_ERR_PROTO and a message naming both values).
 * Rules: role NODE has node_id != 0; role CLIENT has node_id 0.  dc and
 * cluster follow the name rule (common.h), possibly empty (a client may
 * not know).
 * proto_version is the first field of the payload in every protocol
 * version, so a peer can always read it and name it in its refusal. */
struct proto_hello {
	uint16_t proto_version;
	enum proto_role role;
	uint32_t node_id;        /* 0 for clients */
	uint32_t epoch;          /* the sender's leader epoch in its dc while
				  * it leads it (ZooKeeper election sequence),
				  * else 0; always 0 for clients */
	uint64_t generation;     /* rises on every restart of the node */
	char dc[PROTO_DC_MAX + 1];
	char cluster[PROTO_CLUSTER_MAX + 1];
};

/* ERROR: a request failed, or the connection is about to be closed.
 * req_id 0 means "not about one request".  code is a known error code
 * other than FR_OK.  msg is printable ASCII; the encoder truncates it to
 * PROTO_ERRMSG_MAX bytes and writes '?' for any other byte. */
struct proto_error {
	uint64_t req_id;
	enum fr_err code;
	char msg[PROTO_ERRMSG_MAX + 1];
};

/* PUBLISH: rows of one table, values always f32 on the wire (the node
 * converts to the table's dtype).  values holds n * dim floats, row-major;
 * dim travels on the wire (1..SHARD_DIM_MAX) and the node checks it
 * against its schema.  n >= 1.  model and table are names (common.h) of 1..63 bytes;
 * key is 0..64 printable bytes ("" for none).  Row ids and values are not
 * checked here (the node does: row ranges, finite values if it wants).
 * A row id may repeat; what the node does with that is the node's rule. */
struct proto_publish {
	uint64_t req_id;
	char model[SHARD_NAME_MAX + 1];
	char table[SHARD_NAME_MAX + 1];
	char key[PROTO_KEY_MAX + 1];   /* idempotency key, "" for none */
	uint32_t n;
	uint32_t dim;
	const uint64_t *rows;          /* borrowed (points into the payload) */
	const float *values;           /* borrowed, n * dim */
};

/* PUBLISH_ACK: status FR_OK with the assigned version (!= 0) and origin
 * (!= 0), or an error status with version and origin 0 and a detail in
 * msg.  retry_after_ms is non-zero exactly when status is FR_ERR_BUSY
 * (back-pressure: "try again in this many ms").  msg is encoded like
 * proto_error's; with FR_OK it is not sent (the encoder ignores it). */
struct proto_publish_ack {
	uint64_t req_id;
	enum fr_err status;
	uint32_t retry_after_ms;
	uint32_t origin;
	uint64_t version;
	char msg[PROTO_ERRMSG_MAX + 1];   /* detail when status != FR_OK */
};

/* LOOKUP: rows of one table (n >= 1; names as in PUBLISH). */
struct proto_lookup {
	uint64_t req_id;
	char model[SHARD_NAME_MAX + 1];
	char table[SHARD_NAME_MAX + 1];
	uint32_t n;
	const uint64_t *rows;          /* borrowed */
};

/* LOOKUP_REPLY: values as f32 (converted from f16 tables) with each row's
 * version and origin (both 0 for a row never written), in the order the
 * LOOKUP asked; or an error status with n = dim = 0 and a detail in msg.
 * With FR_OK: n >= 1, 1 <= dim <= SHARD_DIM_MAX, and no msg (the
 * encoder ignores it). */
struct proto_lookup_reply {
	uint64_t req_id;
	enum fr_err status;
	uint32_t n;
	uint32_t dim;
	const uint64_t *versions;      /* borrowed, n */
	const uint32_t *origins;       /* borrowed, n */
	const float *values;           /* borrowed, n * dim */
	char msg[PROTO_ERRMSG_MAX + 1];
};

/* Encoders append one whole frame to w; FR_ERR_TOOBIG past max_frame
 * (0: SHARD_FRAME_MAX_DEFAULT), FR_ERR_INVAL for a field out of range
 * (names too long or not printable, n = 0, a status that breaks the rules
 * above).  w is unchanged on failure, except that a failed allocation
 * leaves w's sticky error set (FR_ERR_NOMEM).  m and the arrays it points
 * to are only read.  proto_hello_encode takes type PROTO_HELLO or
 * PROTO_HELLO_ACK and writes m->proto_version as given (tests speak other
 * versions with it). */
enum fr_err proto_hello_encode(struct fr_wbuf *w, uint16_t type,
			       const struct proto_hello *m);
enum fr_err proto_error_encode(struct fr_wbuf *w,
			       const struct proto_error *m);
enum fr_err proto_publish_encode(struct fr_wbuf *w,
				 const struct proto_publish *m,
				 uint32_t max_frame);
enum fr_err proto_publish_ack_encode(struct fr_wbuf *w,
				     const struct proto_publish_ack *m);
enum fr_err proto_lookup_encode(struct fr_wbuf *w,
				const struct proto_lookup *m,
				uint32_t max_frame);
enum fr_err proto_lookup_reply_encode(struct fr_wbuf *w,
				      const struct proto_lookup_reply *m,
				      uint32_t max_frame);

/* Decoders: payload is a checked frame's payload and must outlive the
 * borrowed pointers in the result.  PUBLISH, LOOKUP and LOOKUP_REPLY
 * point into it, so there it must be 8-byte aligned (FR_ERR_INVAL, no
 * byte read, otherwise; proto_reader hands out aligned payloads).  Errors:
 * FR_ERR_TRUNC (a section does not fit), FR_ERR_RANGE (a length or count
 * out of range), FR_ERR_CORRUPT (non-zero reserved or padding bytes, a
 * bad character or enum value, trailing bytes).  m is written only on
 * FR_OK — with one exception: proto_hello_decode of a HELLO of another
 * protocol version returns FR_ERR_VERSION having set m->proto_version
 * (and nothing else), so the receiver can name it. */
enum fr_err proto_hello_decode(const uint8_t *p, size_t len,
			       struct proto_hello *m);
enum fr_err proto_error_decode(const uint8_t *p, size_t len,
			       struct proto_error *m);
enum fr_err proto_publish_decode(const uint8_t *p, size_t len,
				 struct proto_publish *m);
enum fr_err proto_publish_ack_decode(const uint8_t *p, size_t len,
				     struct proto_publish_ack *m);
enum fr_err proto_lookup_decode(const uint8_t *p, size_t len,
				struct proto_lookup *m);
enum fr_err proto_lookup_reply_decode(const uint8_t *p, size_t len,
				      struct proto_lookup_reply *m);

/* A frame reader for byte streams: feed bytes as they arrive, take whole
 * checked frames out.  The frame payload it hands out is 8-byte aligned
 * and valid until the next call on the reader.
 *
 * Memory: call proto_reader_next until it answers FR_ERR_TRUNC before
 * feeding more (a feed while max_frame or more bytes wait is refused with
 * FR_ERR_TOOBIG).  Then the reader holds less than one frame (<= max_frame
 * bytes, checked from the header alone) plus the bytes of one feed; feed
 * at most PROTO_READER_CHUNK bytes at a time and it never holds more than
 * max_frame + PROTO_READER_CHUNK.  An emptied buffer of over 1 MiB is
 * freed.
 *
 * Used by the client library and the node's connections; a reader is used
 * by one thread at a time.  The fields are private. */
struct proto_reader {
	uint8_t *buf;
	size_t len, cap;
	size_t consumed;      /* bytes of buf already handed out */
	uint32_t max_frame;
};

/* max_frame 0: SHARD_FRAME_MAX_DEFAULT.  Allocates nothing yet. */
void proto_reader_init(struct proto_reader *r, uint32_t max_frame);
void proto_reader_fini(struct proto_reader *r);
/* Append bytes (copied).  FR_ERR_NOMEM, or FR_ERR_TOOBIG as above (then
 * nothing is copied). */
enum fr_err proto_reader_feed(struct proto_reader *r, const void *p,
			      size_t n);
/* Next whole frame: FR_OK with header and payload, FR_ERR_TRUNC when more
 * bytes are needed, or the codec's error for a bad frame (after which the
 * stream cannot be trusted unless the error is FR_ERR_CHECKSUM, in which
 * case the bad frame has been skipped and the error is reported once; the
 * next call goes on with the frame after it).  After an untrusted error
 * every later call returns the same error: close the connection. */
enum fr_err proto_reader_next(struct proto_reader *r,
			      struct shard_frame_hdr *h,
			      const uint8_t **payload, size_t *plen);
/* Bytes fed and not yet handed out (for tests and metrics). */
size_t proto_reader_pending(const struct proto_reader *r);

#endif /* FRESHET_PROTO_H */
