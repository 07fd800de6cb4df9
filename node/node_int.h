/*
 * node_int.h — freshetd's private structures and the calls between its
 * files.  Not a public header: only node/ sources and node tests include it.
 *
 * One struct node owns everything, and only the libevent loop thread
 * touches it (docs/threads.md).  The WAL writer thread reaches the loop
 * only through durable_cb -> fr_mailbox.  Files:
 *
 *   main.c     command line, config, exit codes
 *   node.c     start-up and shutdown order, the gossip adapter (apply hook,
 *              timer), mirroring store batches into the table backend
 *   persist.c  data dir (lock, generation), snapshots (sync and forked),
 *              the WAL publish record, replay, idempotency-key file
 *   net.c      TCP listener, connections, framing, HELLO, peer dialing with
 *              back-off, gossip output, per-link token buckets
 *   publish.c  PUBLISH (validate, stamp, WAL, ack when durable), LOOKUP,
 *              the idempotency map
 *   http.c     the admin HTTP endpoint (evhttp): /healthz, /status (JSON),
 *              /metrics (docs/admin-http.md)
 *   metrics.c  counters and histograms, Prometheus text
 *   membership.c  the ZooKeeper view -> peers, models, leadership
 *   roles.c    roles (serving, canary, baseline), the baseline's lag
 *              buffer (baseline.c) in front of the backend, the per-model
 *              status published in ZooKeeper
 *   rollback.c rollback directives
 */
#ifndef FRESHET_NODE_INT_H
#define FRESHET_NODE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "gossip/gossip.h"
#include "gpu/gpu.h"
#include "node/config.h"
#include "node/metrics.h"
#include "node/node.h"
#include "proto/proto.h"
#include "shard/shard.h"
#include "topology/topology.h"

struct event_base;
struct event;
struct evbuffer;
struct bufferevent;
struct evconnlistener;
struct evhttp;
struct evdns_base;
struct ev_token_bucket_cfg;
struct bufferevent_rate_limit_group;
struct topo;

/* A connection, client or peer, that sent this many bad frames
 * (checksum, malformed fields) is closed (net.c); gossip also scores a
 * peer down on bad frames and timeouts (gossip_peer_should_drop()). */
#define NODE_BAD_FRAMES_MAX 16

/* ------------------------------------------------------------------------
 * Models: the store (source of truth) and one backend table per table.
 * ---------------------------------------------------------------------- */
struct node_table {
	struct gpu_table *gt;        /* mirror the lookups read */
	uint64_t max_version;        /* newest row version held */
	uint64_t bytes;              /* rows * row bytes in the backend */
};

enum node_role {
	NODE_ROLE_SERVING = 0,
	NODE_ROLE_CANARY = 1,
	NODE_ROLE_BASELINE = 2,
};

struct node_baseline;

struct node_model {
	struct shard_store *st;
	const struct shard_model_def *def;   /* the store's copy */
	struct node_table tables[SHARD_TABLES_MAX];
	bool had_snapshot;           /* loaded from data_dir/<name>.snap */
	uint64_t snap_lsn;           /* WAL records <= this are in the snapshot */
	uint64_t max_version;        /* newest row version held, all tables */
	bool registry_clash;         /* ZooKeeper defines it otherwise (logged) */
	/* Roles and rollback (rollback.c) */
	enum node_role role;         /* effective: ZooKeeper override, else config */
	bool role_override;          /* the role came from models/<m>/roles */
	struct node_baseline *bl;         /* lag buffer while role == baseline */
	uint64_t bl_floor;           /* served everything <= this when it became
				      * baseline (or the backend was refilled) */
	bool directives_seen;        /* a ZooKeeper view listed its directives */
	bool from_registry;          /* learnt from ZooKeeper (models.json) */
	uint64_t rollbacks_applied;
	uint64_t rollback_rows_restored, rollback_rows_zeroed;
	uint64_t rollback_shards_repaired;   /* noundo: full transfer */
	double last_rollback_s;      /* time to apply the last directive */
};

/* ------------------------------------------------------------------------
 * Data centres this node has links with: bytes by dc pair (ours <-> it)
 * and, for other dcs, the gossip.wan_mbit budget every link to that dc
 * shares (a libevent rate-limit group).
 * ---------------------------------------------------------------------- */
#define NODE_DCS_MAX 64

struct node_dc {
	char name[PROTO_DC_MAX + 1];
	uint64_t bytes_in, bytes_out;          /* frames from / to its nodes */
	struct bufferevent_rate_limit_group *grp;   /* NULL: ours, or no budget */
};

/* ------------------------------------------------------------------------
 * Peers and connections
 * ---------------------------------------------------------------------- */
enum node_conn_state {
	NODE_CONN_CONNECTING,   /* outgoing, TCP not up yet */
	NODE_CONN_HELLO,        /* waiting for HELLO (in) or HELLO_ACK (out) */
	NODE_CONN_UP,           /* HELLO done: frames of the role flow */
	NODE_CONN_CLOSING,      /* flushing a last frame, reads ignored */
};

struct node_peer {
	struct node *node;
	uint32_t id;
	struct node_config_addr addr;
	bool dialer;                 /* we connect out (our id is larger) */
	struct node_conn *conn;      /* after HELLO, else NULL */
	struct node_conn *dialing;   /* our outgoing attempt before HELLO_ACK */
	struct event *retry_ev;
	uint32_t backoff_ms;
	uint64_t connects, disconnects;
	uint64_t generation;         /* from its last HELLO */
	char dc[PROTO_DC_MAX + 1];   /* from ZooKeeper, then from HELLO */
	struct node_dc *dcx;         /* byte counters of its dc; NULL before */
	bool is_static;              /* from [peers]: never removed */
	bool from_zk;                /* wanted by the ZooKeeper view */
	/* Transport counters (gossip has its own per-message ones). */
	uint64_t bytes_in, bytes_out, frames_in, frames_out;
	uint64_t bad_frames;
	uint64_t bad_by_err[FR_ERR__COUNT];
};

struct node_conn {
	struct node *node;
	struct bufferevent *bev;
	struct node_conn *prev, *next;   /* node->conns */
	enum node_conn_state state;
	enum proto_role role;            /* 0 until HELLO */
	bool outgoing;
	struct node_peer *peer;          /* role node (or our dial target) */
	char name[CONFIG_ADDR_MAX + 64]; /* for logs: "peer 3 (1.2.3.4:7003)" */
	uint8_t *scratch;                /* 8-aligned copy of a frame */
	size_t scratch_cap;
	uint32_t bad_frames;
	uint32_t pending;                /* publishes awaiting durability */
	bool read_paused;                /* output over its bound */
	struct event *close_ev;          /* deadline for a closing flush */
};

/* ------------------------------------------------------------------------
 * Publishes waiting for the WAL
 * ---------------------------------------------------------------------- */
struct node_pending {
	struct node_pending *next;
	uint64_t lsn;
	struct node_conn *conn;      /* NULL once the client went away */
	uint64_t req_id;
	uint64_t t0_ns;              /* received (monotonic) */
	uint32_t model;              /* index into node->models */
	uint64_t version;
	bool ack_only;               /* a repeated key: ack when lsn is durable */
	uint8_t *rec;                /* the WAL record (owned, NULL if ack_only) */
	size_t rec_len;
};

struct node_idem;   /* publish.c */

/* ------------------------------------------------------------------------
 * The node: shared services at the top, then one part per file that owns
 * it (the file named writes it; others may read).
 * ---------------------------------------------------------------------- */

/* persist.c and publish.c: the WAL and the publishes waiting for it.
 * applied_lsn: every WAL record <= it is in the stores (so a snapshot may
 * claim it): node_lsn_settle() keeps it at the record before the oldest
 * publish still waiting for the disk, or at the last record appended when
 * none waits.  Replicated batches are applied at once and logged behind
 * (persist.c), so applied_lsn may be ahead of the disk: a snapshot claims
 * min(applied, durable). */
struct node_durable {
	struct shard_wal *wal;
	uint64_t applied_lsn;
	uint64_t last_lsn;               /* last appended */
	struct fr_mailbox *mb;
	_Atomic uint64_t durable_seen;   /* written by the WAL writer */
	struct node_pending *pend_head, *pend_tail;
	uint32_t npending;
	uint32_t npending_dups;          /* ack_only entries (not in npending) */
	struct node_idem *idem;
	/* Replicated batches the WAL refused (BUSY) are in the store but not
	 * in the log.  A later logged batch's covers may promise their rows,
	 * so after a crash the replay would advance a vector over rows it
	 * never got, and nobody would send them again.  While a skip is not
	 * yet inside a finished snapshot (repl_skips != repl_skips_snapped),
	 * replicated batches are logged without covers (persist.c). */
	uint64_t repl_skips;
	uint64_t repl_skips_snapped;
};

/* persist.c: snapshots, periodic and forked. */
struct node_snapshots {
	struct event *ev;                /* periodic */
	struct event *chld_ev;           /* SIGCHLD */
	pid_t child;                     /* 0 when none */
	uint64_t child_lsn;
	uint64_t child_skips;            /* repl_skips when it forked */
	uint64_t lsn;                    /* newest snapshot on disk covers this */
	uint64_t changes;                /* applies since start (dirty check) */
	uint64_t changes_at_fork;        /* `changes` when the last one forked */
};

/* net.c: peers, links, data centres and the client listener. */
struct node_net {
	uint32_t npeers, peers_cap;
	struct node_peer **peers;        /* stable pointers; order not kept */
	uint32_t ndcs;
	struct node_dc dcs[NODE_DCS_MAX];
	struct ev_token_bucket_cfg *rate_cfg;
	struct ev_token_bucket_cfg *wan_cfg;    /* gossip.wan_mbit, or NULL */
	uint64_t wan_window;             /* in-flight bound per WAN peer */
	struct evdns_base *dns;
	struct evconnlistener *listener;
	struct node_conn *conns;
	uint32_t nconns;
};

/* membership.c: the ZooKeeper side; all zero without ZooKeeper. */
struct node_zk {
	struct topo *topo;
	bool connected;
	bool leader;                     /* we lead our dc now */
	uint64_t epoch;                  /* our epoch while leader */
	uint32_t session_ms;             /* negotiated session timeout */
	uint32_t nmembers;               /* in the last view, all dcs */
	uint32_t nleaders;
	struct topo_leader *leaders;     /* copy of the last view's */
	uint64_t models_refused;         /* registry models we cannot serve */
	uint64_t peer_changes;           /* peers added or dropped by views */
	bool peers_held;                 /* view_peers waits for directives */
};

/* roles.c (and rollback.c's count of refused directives). */
struct node_roles {
	struct event *ev;                /* baseline release, status publish */
	uint64_t status_pub_ms;          /* last topo_set_status */
	uint64_t status_pub_hash;        /* of what it published */
	uint64_t bad_directives;         /* directives refused (logged) */
};

/* node.c: shutdown in order. */
struct node_shutdown {
	struct event *sig_ev[2];
	struct event *ev;                /* polls clients' last writes */
	uint64_t deadline_ms;            /* then closes them anyway */
	bool lingering;                  /* clients got FIN, waiting for theirs */
	bool stopping;
};

/* node.c: scratch for mirroring batches into the backend. */
struct node_mirror {
	uint8_t *won;
	uint64_t *rows, *vers;
	uint8_t *vals;
	size_t cap, vals_cap;
};

struct node {
	const struct node_config *cfg;        /* borrowed from main */
	struct event_base *base;
	struct fr_hlc hlc;
	uint64_t generation;
	int lock_fd;
	uint64_t start_mono_ms;
	uint64_t start_wall_ms;
	uint32_t max_frame;
	const struct gpu_backend *be;
	uint64_t be_bytes;               /* table bytes in the backend, all models */

	uint32_t nmodels;
	struct node_model *models;

	/* Dissemination (node.c drives the core, net.c moves its frames) */
	struct gossip *gossip;
	struct event *gossip_ev;
	uint64_t gossip_armed;           /* deadline the timer is set for */

	struct evhttp *http;             /* http.c */

	struct node_durable dur;
	struct node_snapshots snap;
	struct node_net net;
	struct node_zk zk;
	struct node_roles roles;
	struct node_shutdown stop;
	struct node_mirror mirror;

	struct node_metrics metrics;
};

/* node.c (node_new, node_run and node_free are in node.h) */
int node_model_find(const struct node *n, const char *name);
/* Apply a batch to model m's store and mirror the rows that won into the
 * backend; updates max versions and counters.  Loop thread. */
/* applied_lsn from the pending publishes and the last appended LSN. */
void node_lsn_settle(struct node *n);
/* Log a batch received from a peer (already applied) so that a restart
 * does not pull it again.  Best effort: a full WAL queue skips it (the
 * rows are re-pulled after a crash, never lost for good). */
void node_wal_log_replicated(struct node *n, struct node_model *m,
			     const struct shard_batch *b);
enum fr_err node_apply_batch(struct node *n, struct node_model *m,
			     const struct shard_batch *b,
			     struct shard_apply_result *res);
/* Free backend table t of m and make it again from the store (after the
 * backend failed, e.g. FR_ERR_GPU).  false when that failed too (logged;
 * the table is then absent and its lookups fail).  Loop thread. */
bool node_table_rebuild(struct node *n, struct node_model *m, uint32_t t);
/* Write every row of the store into backend table t as it is (a baseline
 * that stops being one serves its store at once); falls back to a
 * rebuild when the backend fails.  Loop thread. */
bool node_table_refill(struct node *n, struct node_model *m, uint32_t t);
/* Re-arm the gossip timer at gossip_next_deadline(). */
void node_gossip_arm(struct node *n);

/* persist.c */
enum fr_err node_datadir_open(struct node *n);
void node_datadir_close(struct node *n);
/* Load snapshots (or make empty stores) and replay the WAL; fills
 * n->models, n->applied_lsn and the idempotency map. */
enum fr_err node_stores_load(struct node *n);
/* Load model `want` into m: its snapshot from the data dir when there is
 * one (it must match the definition), else an empty store. */
enum fr_err node_model_load(struct node *n, struct node_model *m,
			    const struct shard_model_def *want);
/* Open the WAL after the replay. */
enum fr_err node_wal_open(struct node *n);
/* Snapshot every store at n->applied_lsn now (blocking), then truncate
 * the WAL.  Used at shutdown. */
enum fr_err node_snapshot_sync(struct node *n);
/* Start a forked background snapshot if none is running and something
 * changed; node_snapshot_reap() collects it (SIGCHLD). */
void node_snapshot_bg(struct node *n);
void node_snapshot_reap(struct node *n, bool block);

struct node_walrec {
	const char *model;           /* points into the record, not NUL-ended */
	uint8_t model_len;
	const char *key;
	uint8_t key_len;
	uint64_t version;
	uint32_t origin;
	uint32_t nbatches;
	struct fr_rbuf batches;      /* the length-prefixed batch payloads */
};
/* Encode a publish record (docs/wire.md §6) into w. */
enum fr_err node_walrec_encode(struct fr_wbuf *w, const char *model,
			       const char *key, uint64_t version,
			       uint32_t origin, const struct shard_batch_hdr *h,
			       const struct shard_batch *b, uint32_t nb);
/* Check the record header; batches are read with node_walrec_next. */
enum fr_err node_walrec_decode(const uint8_t *p, size_t len,
			       struct node_walrec *r);
/* Next batch: FR_OK, FR_ERR_NOTFOUND after the last, or a decode error. */
enum fr_err node_walrec_next(struct node_walrec *r, struct shard_batch_hdr *h,
			     struct shard_batch *b);
/* Check that every batch of a record decodes and fits model m's schema
 * (our own records, but the config may have changed under them). */
enum fr_err node_walrec_check(const struct node_model *m, const uint8_t *rec,
			      size_t len);
/* Apply every batch of a checked record to model m; live: tell gossip.
 * Stops at the first store error and returns it. */
enum fr_err node_walrec_apply(struct node *n, struct node_model *m,
			      const uint8_t *rec, size_t len, bool live);

/* publish.c */
enum fr_err node_idem_new(struct node *n);
void node_idem_free(struct node *n);
/* Remember key -> (version, origin) (replay and live).  Existing keys
 * are kept. */
void node_idem_put(struct node *n, const char *key, size_t key_len,
		   uint64_t version, uint32_t origin, uint64_t lsn);
/* Visit every remembered key (for the idempotency file). */
void node_idem_foreach(struct node *n,
		       void (*fn)(const char *key, uint64_t version,
				  uint32_t origin, void *arg),
		       void *arg);
uint32_t node_idem_count(const struct node *n);
/* Returns false when the connection must be closed. */
bool node_publish_handle(struct node_conn *c, const uint8_t *p, size_t len);
bool node_lookup_handle(struct node_conn *c, const uint8_t *p, size_t len);
/* Apply and ack every pending publish whose record is durable. */
void node_durable_process(struct node *n);
/* The connection is going away: forget it in pending publishes. */
void node_pending_forget_conn(struct node *n, struct node_conn *c);

/* net.c */
enum fr_err node_net_start(struct node *n);
/* Stop accepting connections (clients already connected stay). */
void node_net_stop_accepting(struct node *n);
/* Shutdown's last step for clients: FIN, then read and drop until they
 * close. */
void node_net_linger_clients(struct node *n);
uint32_t node_net_clients(const struct node *n);
/* Close every peer link (gossip marks them down). */
void node_net_close_peers(struct node *n);
/* Close everything now (peers go down in gossip). */
void node_net_close_all(struct node *n);
void node_net_fini(struct node *n);
/* Drain gossip output into peer connections and re-arm the timer. */
void node_gossip_flush(struct node *n);
/* Queue a whole frame on c; takes w's buffer.  Counts it. */
void node_conn_send(struct node_conn *c, struct fr_wbuf *w);
/* Send an ERROR frame (req_id 0 unless given). */
void node_conn_send_error(struct node_conn *c, uint64_t req_id,
			  enum fr_err code, const char *msg);
/* Clients with unwritten output (shutdown waits for them). */
uint32_t node_net_clients_busy(const struct node *n);
struct node_peer *node_peer_find(struct node *n, uint32_t id);
/* Add a peer (gossip too) and dial it if our id is the larger.  dc may be
 * "" (learnt from its HELLO).  FR_ERR_EXISTS if the id is known. */
enum fr_err node_peer_add(struct node *n, uint32_t id,
			  const struct node_config_addr *addr, const char *dc,
			  bool is_static);
/* Drop a peer: its links close, gossip forgets it.  Loop thread. */
void node_peer_remove(struct node *n, uint32_t id);
/* The counters of dc `name`, added on first use; NULL when NODE_DCS_MAX
 * dcs are known already. */
struct node_dc *node_dc_get(struct node *n, const char *name);

/* membership.c: ZooKeeper view -> peers, models, leadership */
/* Start the topology when zookeeper.hosts is set (no-op otherwise). */
enum fr_err node_membership_start(struct node *n);
void node_membership_stop(struct node *n);
/* Models learnt from ZooKeeper earlier, kept in data_dir/models.json so
 * that a restart can replay their WAL records before ZooKeeper answers.
 * Fills defs (up to cap) and returns how many; errors are logged. */
uint32_t node_models_cache_load(struct node *n, struct shard_model_def *defs,
				uint32_t cap);
/* Add a model while running (from ZooKeeper): store (snapshot if one is
 * on disk), backend tables, gossip.  Loop thread. */
enum fr_err node_model_add_live(struct node *n,
				const struct shard_model_def *def);

/* roles.c */
const char *node_role_name(enum node_role r);
/* The role config gives model m (node.canary / node.baseline). */
enum node_role node_role_configured(const struct node *n,
				    const struct node_model *m);
/* Switch m to role r (making or dropping the baseline's buffer: a node
 * that becomes baseline serves what it holds and lags from then on; one
 * that stops being baseline serves its store at once).  Logged. */
enum fr_err node_model_role_set(struct node *n, struct node_model *m,
				enum node_role r, bool from_zk);
void node_model_roles_fini(struct node_model *m);
/* The role ZooKeeper's models/<m>/roles gives us (else the configured
 * one), taken if it changed. */
void node_model_roles_view(struct node *n, struct node_model *m,
			   const struct topo_model_extra *x);
/* Rows that won in m's store for table t (mirror path): a baseline
 * queues them, anything else writes them to the backend now. */
enum fr_err node_mirror_rows(struct node *n, struct node_model *m,
			     uint32_t t, const uint64_t *rows,
			     const uint64_t *versions, const void *values,
			     uint32_t k);
/* Backend table t of m was (re)filled from the store. */
void node_baseline_refilled(struct node *n, struct node_model *m, uint32_t t);
/* The served cut of a baseline (every update <= it served), or the
 * newest version held for other roles. */
uint64_t node_model_cut(const struct node *n, const struct node_model *m);
/* Timer: baseline releases and catch-ups, status publishing. */
enum fr_err node_roles_start(struct node *n);
void node_roles_stop(struct node *n);
/* Publish the per-model status to ZooKeeper now (no-op without). */
void node_status_publish(struct node *n, bool force);

/* rollback.c */
/* What ZooKeeper says about model m: role overrides (roles.c) and
 * rollback directives; directives newer than the store's epoch are
 * applied in order. */
void node_model_view(struct node *n, struct node_model *m,
		     const struct topo_model_extra *x);
/* Apply one directive (epoch > the store's). */
enum fr_err node_rollback_apply(struct node *n, struct node_model *m,
				const struct topo_rollback *d);

/* http.c */
enum fr_err node_http_start(struct node *n);
void node_http_stop(struct node *n);

#endif /* FRESHET_NODE_INT_H */
