/*
 * gossip_int.h — private structs and helpers shared by the gossip/ sources
 * (core.c, digest.c, pull.c, sched.c).  Nothing outside gossip/ includes
 * this file; the public contract is gossip.h, the protocol is
 * docs/gossip.md.
 *
 * Layout of the core:
 *
 *   struct gossip
 *     models[]      one per served store: name, change log (which shards
 *                   changed recently, so a heartbeat lists only those)
 *     peers[]       one per peer: up/down, score, counters, per model what
 *                   we last told it and last heard from it, the work still
 *                   to be written to it (pull replies being served, full
 *                   digests being streamed)
 *     out           one FIFO of whole frames for every peer, drained by
 *                   gossip_next_output()
 *     cands         pull candidates keyed by (model, table, shard), in a
 *                   hash; each is pending (waiting for the scheduler) or in
 *                   flight (one PULL out, replies arriving)
 *     qres          a reservoir of recent candidate priorities, from which
 *                   the urgent quantile is read
 */
#ifndef FRESHET_GOSSIP_INT_H
#define FRESHET_GOSSIP_INT_H

#include "gossip/gossip.h"

/* ------------------------------------------------------------------------
 * Limits and tuning (docs/gossip.md §4 explains each)
 * ---------------------------------------------------------------------- */
/* The smallest max_frame accepted: a frame must hold any one digest entry
 * (a full 256-origin vector) with its headers, and any one PULL. */
#define GOSSIP_MIN_FRAME 8192u
#define GOSSIP_STRIKES_DROP 3        /* bad frames before should_drop */
#define GOSSIP_SCORE_MAX 100
#define GOSSIP_SCORE_MIN (-1000)
#define GOSSIP_SCORE_BAD 25          /* penalty per bad frame */
#define GOSSIP_SCORE_TIMEOUT 10      /* penalty per pull timeout */
#define GOSSIP_SCORE_RECOVER_MS 1000 /* +1 per this many ms */
#define GOSSIP_SERVES_MAX 256        /* pulls served at once per peer */
#define GOSSIP_QRES 256              /* priority reservoir size */
#define GOSSIP_QRES_MIN 8            /* fewer samples: every pull urgent */
#define GOSSIP_LOG_MAX 65536u        /* change-log entries per model */
#define GOSSIP_MIN_PULL (64u << 10)  /* smallest budget a pull asks for */
#define GOSSIP_PULL_SHARE 16         /* pulls per peer the window is sized for */

/* Fixed wire sizes (docs/gossip.md §2). */
#define GOSSIP_DIGEST_HDR 8
#define GOSSIP_DIGEST_SEC 16
#define GOSSIP_DIGEST_ENT 32
#define GOSSIP_VV_ENT 16
#define GOSSIP_DREQ_FIXED 8
#define GOSSIP_PULL_FIXED 40
#define GOSSIP_CURSOR 24
#define GOSSIP_REPLY_FIXED 16

/* DIGEST flags */
#define GOSSIP_DIGEST_FULL 0x1u
/* PULL flags */
#define GOSSIP_PULL_CURSOR 0x1u
/* PULL_REPLY flags */
#define GOSSIP_REPLY_LAST 0x1u
#define GOSSIP_REPLY_NOMODEL 0x2u
#define GOSSIP_REPLY_BUSY 0x4u
#define GOSSIP_REPLY_CURSOR 0x8u
#define GOSSIP_REPLY_MORE 0x10u     /* LAST, but the budget cut the list */
#define GOSSIP_REPLY_FLAGS 0x1fu

static inline size_t gossip_pad8(size_t n)
{
	return (8 - (n & 7)) & 7;
}

/* ------------------------------------------------------------------------
 * Models
 * ---------------------------------------------------------------------- */
struct glog_ent {
	uint64_t seq;                /* store change_seq when noted */
	uint32_t table, shard;
};

struct gmodel {
	struct shard_store *st;      /* borrowed */
	char name[SHARD_NAME_MAX + 1];
	uint8_t name_len;
	uint32_t priority;           /* max(def priority, 1) */
	uint32_t ntables, shards;
	/* Change log: a ring of (seq, table, shard) in seq order.  Every
	 * shard whose store seq is > horizon and <= noted has an entry with
	 * seq >= its store seq, so "shards changed since L" for L >= horizon
	 * is a walk back from the newest entry. */
	struct glog_ent *log;
	uint32_t log_cap, log_head, log_n;
	uint64_t log_horizon;
	uint64_t log_noted;          /* store change_seq the log accounts for */
	uint64_t epoch_ahead;        /* entries seen with a higher epoch */
	uint64_t epoch_behind;       /* entries with a lower one, not pulled */
	uint32_t ncands;             /* candidates of this model */
	bool quarantined;            /* gossip_model_quarantine: not exchanged */
	/* Shards reset for a full transfer (gossip_shard_repair): pulled from
	 * a peer at our rollback epoch or later even when our vector
	 * dominates its (after a rollback both may promise nothing), until
	 * one pull of the shard ends whole.  ntables * shards flags. */
	uint8_t *repair;
	uint32_t nrepair;
	uint64_t repairs_done;
};

static inline bool gmodel_repairing(const struct gmodel *m, uint32_t table,
				    uint32_t shard)
{
	return m->nrepair && m->repair[(size_t)table * m->shards + shard];
}

/* ------------------------------------------------------------------------
 * Peers
 * ---------------------------------------------------------------------- */
struct gpeer_model {
	uint64_t sent_seq;           /* store change_seq at our last delta */
	uint64_t summary;            /* last summary heard from the peer */
	bool summary_known;
	bool summary_stable;         /* the same summary twice in a row */
	bool req_sent;
	uint64_t req_ms;             /* when we last sent it DIGEST_REQ */
	bool full_active;            /* a full digest is being streamed */
	uint64_t full_pos;           /* next flattened shard to list */
};

struct gserve_orig {
	uint32_t origin;
	uint64_t s;                  /* server vector at the pull */
	uint64_t vreq;               /* requester's vector */
	uint32_t start, end;         /* its rows in the untrimmed list */
};

/* A pull being answered: the rows to send (listed when the PULL came,
 * trimmed to the budget) and what the covers of each reply are. */
struct gserve {
	struct gserve *next;
	uint64_t req_id;
	uint32_t model, table, shard;
	uint32_t seq;                /* of the next reply */
	uint64_t budget;             /* reply bytes left */
	uint32_t n_all;              /* rows listed before trimming */
	uint32_t n, pos;             /* rows kept, next to send */
	struct shard_change *c;      /* owned, n entries */
	struct shard_change after;   /* row n of the untrimmed list, if n < n_all */
	uint32_t norig;
	struct gserve_orig *orig;    /* owned, one per server vector entry */
	float sig;                   /* per-row significance to send, 0: none */
	uint16_t flags;              /* NOMODEL/BUSY: one empty last reply */
	char name[SHARD_NAME_MAX + 1]; /* for NOMODEL replies */
};

struct gpeer {
	uint32_t id;
	bool up;
	int32_t score;
	uint32_t strikes;            /* bad frames since up */
	bool fatal;                  /* garbage: drop now */
	uint64_t recover_ms;         /* last score recovery */
	uint64_t next_hb_ms, next_full_ms;
	uint64_t window;             /* in-flight bound; 0: the config's */
	uint64_t backlog;            /* reported by the transport */
	uint64_t queued;             /* bytes in g->out for this peer */
	struct gpeer_model *pm;      /* g->nmodels entries */
	struct gserve *serves, *serves_tail;
	uint32_t nserves;
	uint32_t full_rr;            /* round robin over full streams */
	struct gossip_peer_stats st;
};

/* ------------------------------------------------------------------------
 * Pull candidates
 * ---------------------------------------------------------------------- */
struct ghave {
	uint32_t peer;
	uint64_t epoch;
	double sig;
	struct shard_vv vv;          /* owned copy of what it advertised */
};

struct gcursor {
	uint32_t origin;
	uint64_t version;
	uint64_t row;
};

struct gcand {
	struct gcand *hnext;         /* hash chain */
	uint32_t model, table, shard;
	bool inflight;
	uint32_t idx;                /* in g->pending or g->inflight */
	uint64_t first_ms;           /* when it became a candidate */
	uint32_t nhave, caphave;
	struct ghave *have;
	bool has_cursor;
	struct gcursor cursor;
	bool avoid_set;
	uint32_t avoid;              /* peer that just failed it */
	double prio;                 /* scratch for the scheduler */
	/* in flight */
	uint32_t peer;
	uint64_t req_id;
	uint64_t max_bytes;
	uint64_t last_ms;            /* sent, or last reply frame */
	uint32_t next_seq;
	bool broken;                 /* a reply went missing: rows only */
	bool changed;                /* something was applied */
};

/* ------------------------------------------------------------------------
 * Output queue
 * ---------------------------------------------------------------------- */
struct gout {
	struct gout *next;
	uint32_t peer;
	uint16_t type;
	struct fr_wbuf frame;
};

struct gossip {
	struct gossip_config cfg;    /* defaults resolved */
	struct gossip_hooks hooks;
	struct gmodel **models;
	uint32_t nmodels;
	struct gpeer **peers;
	uint32_t npeers;
	struct gout *out, *out_tail;
	/* candidates */
	struct gcand **hash;
	uint32_t hash_cap, ncands;
	struct gcand **pending;
	uint32_t npending, cap_pending;
	struct gcand **inflight;
	uint32_t ninflight, cap_inflight;
	bool sched_dirty;
	uint64_t next_req;
	double qres[GOSSIP_QRES];
	uint32_t qres_n, qres_pos;
	uint64_t now;                /* latest time seen */
	/* scratch, reused across calls */
	struct shard_vv tmp_vv;
	uint8_t *scratch;
	size_t scratch_cap;
	struct gossip_stats st;
	uint64_t pulls_dropped;      /* candidates evicted by the bound */
	uint64_t stale_replies;
	uint64_t nomodel_served;
};

/* core.c */
struct gpeer *gossip_peer_find(const struct gossip *g, uint32_t id);
struct gmodel *gossip_model_find(const struct gossip *g, const char *name,
				 size_t len, uint32_t *idx);
/* Reserve a frame header at the end of w; returns its offset. */
size_t gossip_frame_begin(struct fr_wbuf *w);
/* Seal the frame at start (everything written after it is its payload);
 * over max_frame, w fails with FR_ERR_TOOBIG and is not sent. */
void gossip_frame_end(struct fr_wbuf *w, size_t start, uint16_t type,
		      uint32_t max_frame);
/* Queue a whole frame to peer p (takes w's buffer; drops it if the peer
 * is down or w failed). */
void gossip_out_push(struct gossip *g, struct gpeer *p, uint16_t type,
		     struct fr_wbuf *w);
/* A peer sent a bad frame: count and penalise. */
void gossip_penalise(struct gossip *g, struct gpeer *p, bool fatal);
void gossip_score_add(struct gpeer *p, int32_t d);
void *gossip_scratch(struct gossip *g, size_t n);
bool gossip_name_ok(const uint8_t *s, size_t len);
/* Read a wire version vector of nvv entries (origins ascending from 1,
 * reserved 0, versions >= 1) and point *out at it; else a detail
 * starting with `what` (and " idx" unless idx is UINT32_MAX). */
enum fr_err gossip_read_vv(struct fr_rbuf *r, uint32_t nvv, const char *what,
			   uint32_t idx, const uint8_t **out);
/* Read a model name of name_len bytes and its zero padding to 8 from r:
 * RANGE for a bad length, TRUNC, CORRUPT for bad bytes; `what` names the
 * message in the detail. */
enum fr_err gossip_read_name(struct fr_rbuf *r, uint32_t name_len,
			     const char *what, const uint8_t **name);

/* digest.c */
void gossip_log_note(struct gossip *g, struct gmodel *m, uint32_t table,
		     uint32_t shard);
void gossip_send_delta(struct gossip *g, struct gpeer *p, int model);
void gossip_full_start(struct gossip *g, struct gpeer *p, uint32_t model);
/* Write one frame of a full digest stream; false when none is active. */
bool gossip_full_step(struct gossip *g, struct gpeer *p);
enum fr_err gossip_on_digest(struct gossip *g, struct gpeer *p,
			     const uint8_t *pl, size_t len, uint64_t now);
enum fr_err gossip_on_digest_req(struct gossip *g, struct gpeer *p,
				 const uint8_t *pl, size_t len, uint64_t now);
void gossip_send_digest_req(struct gossip *g, struct gpeer *p,
			    uint32_t model, uint64_t now);

/* pull.c */
void gossip_send_pull(struct gossip *g, struct gpeer *p, struct gcand *c);
enum fr_err gossip_on_pull(struct gossip *g, struct gpeer *p,
			   const uint8_t *pl, size_t len, uint64_t now);
enum fr_err gossip_on_pull_reply(struct gossip *g, struct gpeer *p,
				 const uint8_t *pl, size_t len, uint64_t now);
/* Write the next reply frame of p's first serve; false when none. */
bool gossip_serve_step(struct gossip *g, struct gpeer *p);
void gossip_serve_free(struct gserve *s);

/* sched.c */
struct gcand *gossip_cand_find(const struct gossip *g, uint32_t model,
			       uint32_t table, uint32_t shard);
/* A peer advertised (table, shard) of model with a vector we lack. */
void gossip_cand_offer(struct gossip *g, uint32_t model, uint32_t peer,
		       const struct shard_digest_entry *e, uint64_t now);
bool gossip_model_busy(const struct gossip *g, uint32_t model);
struct gcand *gossip_inflight_find(const struct gossip *g, uint32_t peer,
				   uint64_t req_id);
/* An in-flight pull ended: ok (last reply, or refused) or failed. */
void gossip_pull_end(struct gossip *g, struct gcand *c, bool failed,
		     uint64_t now);
/* Forget a peer in every candidate (peer removed). */
void gossip_cand_forget_peer(struct gossip *g, uint32_t peer);
/* Free every pending candidate of a model (it was quarantined). */
void gossip_cand_forget_model(struct gossip *g, uint32_t model);
void gossip_cand_drop_have(struct gossip *g, struct gcand *c, uint32_t peer);
void gossip_sched_run(struct gossip *g, uint64_t now);
void gossip_sched_timeouts(struct gossip *g, uint64_t now);
uint64_t gossip_sched_deadline(const struct gossip *g);
void gossip_cands_free(struct gossip *g);

#endif /* FRESHET_GOSSIP_INT_H */
