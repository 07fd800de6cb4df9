/*
 * net.c — freshetd's TCP side: the listener, every connection's framing
 * and HELLO, dialing peers with jittered back-off, moving gossip output
 * onto the wire, and the per-link token buckets.
 *
 * Connection states (enum node_conn_state):
 *
 *   outgoing:  CONNECTING --connected, send HELLO--> HELLO
 *   incoming:  (accepted) ------------------------> HELLO
 *   HELLO --HELLO / HELLO_ACK checks pass--> UP  (peer: gossip_peer_up)
 *   HELLO --bad version, cluster or id----> ERROR frame, CLOSING
 *   UP    --framing lost, too many bad frames, wrong role--> CLOSING
 *   CLOSING --output written or 2 s--> freed (peer: gossip_peer_down,
 *             dialer: reconnect after back-off)
 *   shutdown: clients UP --last acks written, FIN--> CLOSING (reading and
 *             dropping until the client closes, or the node exits)
 *
 * One link per pair of nodes: the node with the larger id dials the
 * smaller.  A new HELLO from a peer that already has a link replaces it
 * (the old one is probably half-open after the peer restarted).
 *
 * Framing: whole frames are taken from the bufferevent's input
 * (shard_frame_peek on the first 24 bytes bounds what is buffered by
 * max_frame), decoded in place when the payload happens to be 8-aligned
 * and from an aligned copy otherwise (docs/wire.md §1.2, §1.3).  A bad
 * checksum drops the frame and counts it; a bad header closes the link,
 * since no next frame can be found; nothing from a bad frame is applied.
 * A client that does not read its replies stops being read from.
 *
 * Not here: what PUBLISH/LOOKUP do (publish.c) or what gossip frames mean
 * (gossip/).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "node/node_int.h"

#define NET_HELLO_TIMEOUT_S 10
#define NET_CLOSE_FLUSH_MS 2000
#define NET_WRITE_LOWAT (256u << 10)
#define NET_CLIENT_OUT_MAX (16u << 20)
#define NET_RATE_TICK_MS 100
/* Before HELLO only HELLO, HELLO_ACK or ERROR may arrive, each well under
 * this; without the bound an unknown connection could make us buffer a
 * max_frame-sized frame. */
#define NET_HELLO_FRAME_MAX 4096u

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void peer_schedule_dial(struct node_peer *p);

struct node_peer *node_peer_find(struct node *n, uint32_t id)
{
	for (uint32_t i = 0; i < n->net.npeers; i++)
		if (n->net.peers[i]->id == id)
			return n->net.peers[i];
	return NULL;
}

struct node_dc *node_dc_get(struct node *n, const char *name)
{
	struct node_dc *d;

	for (uint32_t i = 0; i < n->net.ndcs; i++)
		if (strcmp(n->net.dcs[i].name, name) == 0)
			return &n->net.dcs[i];
	if (n->net.ndcs == NODE_DCS_MAX || !name[0])
		return NULL;
	d = &n->net.dcs[n->net.ndcs++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	if (n->net.wan_cfg && strcmp(name, n->cfg->dc) != 0) {
		d->grp = bufferevent_rate_limit_group_new(n->base, n->net.wan_cfg);
		if (!d->grp)
			fr_log(FR_LOG_WARN, "net", "dc %s: WAN budget not set "
			       "up (no memory)", name);
	}
	return d;
}

static uint32_t net_rand(void)
{
	static uint64_t s;

	if (!s)
		s = fr_mono_ns() | 1;
	s ^= s << 13;   /* xorshift64: jitter, not secrets */
	s ^= s >> 7;
	s ^= s << 17;
	return (uint32_t)(s >> 16);
}

/* ========================================================================
 * Connection life
 * ===================================================================== */

static size_t conn_out_len(const struct node_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static struct node_conn *conn_new(struct node *n, evutil_socket_t fd,
				  bool outgoing)
{
	struct node_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->node = n;
	c->outgoing = outgoing;
	c->state = outgoing ? NODE_CONN_CONNECTING : NODE_CONN_HELLO;
	c->bev = bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE |
					BEV_OPT_DEFER_CALLBACKS);
	if (!c->bev) {
		free(c);
		return NULL;
	}
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
			  c);
	bufferevent_setwatermark(c->bev, EV_WRITE, NET_WRITE_LOWAT, 0);
	c->next = n->net.conns;
	if (n->net.conns)
		n->net.conns->prev = c;
	n->net.conns = c;
	n->net.nconns++;
	return c;
}

/* Undo what the connection means to the rest of the node: a peer goes
 * down (and is re-dialed), pending publishes forget where to ack. */
static void conn_detach(struct node_conn *c)
{
	struct node *n = c->node;
	struct node_peer *p = c->peer;

	if (p && p->conn == c) {
		p->conn = NULL;
		p->disconnects++;
		if (n->gossip)
			gossip_peer_down(n->gossip, p->id, fr_mono_ms());
		fr_log(FR_LOG_INFO, "net", "peer %u down", p->id);
		if (p->dialer)
			peer_schedule_dial(p);
	} else if (p && p->dialing == c) {
		p->dialing = NULL;
		if (p->dialer)
			peer_schedule_dial(p);
	}
	c->peer = NULL;
	if (c->pending)
		node_pending_forget_conn(n, c);
}

static void conn_free(struct node_conn *c)
{
	struct node *n = c->node;

	conn_detach(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		n->net.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	n->net.nconns--;
	bufferevent_free(c->bev);
	if (c->close_ev)
		event_free(c->close_ev);
	free(c->scratch);
	free(c);
}

static void conn_close_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

/* Close after the queued output (an ERROR frame, the last acks) is
 * written, or after a bound; reads stop now. */
static void conn_close(struct node_conn *c)
{
	struct timeval tv = { NET_CLOSE_FLUSH_MS / 1000,
			      (NET_CLOSE_FLUSH_MS % 1000) * 1000 };

	if (c->state == NODE_CONN_CLOSING)
		return;
	conn_detach(c);
	if (conn_out_len(c) == 0) {
		conn_free(c);
		return;
	}
	c->state = NODE_CONN_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	c->close_ev = evtimer_new(c->node->base, conn_close_timeout_cb, c);
	if (!c->close_ev) {
		conn_free(c);
		return;
	}
	event_add(c->close_ev, &tv);
}

/* ========================================================================
 * Output
 * ===================================================================== */

static void free_ref_cb(const void *data, size_t len, void *extra)
{
	free((void *)data);
}

void node_conn_send(struct node_conn *c, struct fr_wbuf *w)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct node *n = c->node;
	size_t len = w->len;
	int r;

	if (!len)
		return;
	/* Hand the frame's memory to libevent instead of copying it. */
	if (w->owned) {
		r = evbuffer_add_reference(out, w->data, len, free_ref_cb, NULL);
		if (r == 0) {
			w->data = NULL;
			w->len = w->cap = 0;
		}
	} else {
		r = evbuffer_add(out, w->data, len);
	}
	if (r != 0) {
		fr_log(FR_LOG_ERROR, "net", "%s: cannot queue %zu bytes",
		       c->name, len);
		return;
	}
	if (c->role == PROTO_ROLE_NODE && c->peer) {
		c->peer->frames_out++;
		c->peer->bytes_out += len;
		if (c->peer->dcx)
			c->peer->dcx->bytes_out += len;
	} else {
		n->metrics.client_frames_out++;
		n->metrics.client_bytes_out += len;
	}
}

void node_conn_send_error(struct node_conn *c, uint64_t req_id,
			  enum fr_err code, const char *msg)
{
	struct proto_error e = { .req_id = req_id, .code = code };
	struct fr_wbuf w;

	snprintf(e.msg, sizeof(e.msg), "%s", msg);
	fr_wbuf_init(&w, 64 + strlen(e.msg), 0);
	if (proto_error_encode(&w, &e) == FR_OK)
		node_conn_send(c, &w);
	fr_wbuf_fini(&w);
}

/* Refuse a connection: say why in an ERROR frame, then close. */
static void conn_refuse(struct node_conn *c, enum fr_err code,
			const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conn_refuse(struct node_conn *c, enum fr_err code,
			const char *fmt, ...)
{
	char msg[PROTO_ERRMSG_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->node->metrics.hello_refused++;
	fr_log(FR_LOG_WARN, "net", "%s: refused: %s", c->name, msg);
	node_conn_send_error(c, 0, code, msg);
	conn_close(c);
}

static void conn_send_hello(struct node_conn *c, uint16_t type)
{
	struct node *n = c->node;
	struct proto_hello h = {
		.proto_version = PROTO_VERSION,
		.role = PROTO_ROLE_NODE,
		.node_id = n->cfg->node_id,
		.epoch = n->zk.leader ? (uint32_t)n->zk.epoch : 0,
		.generation = n->generation,
	};
	struct fr_wbuf w;

	snprintf(h.dc, sizeof(h.dc), "%s", n->cfg->dc);
	snprintf(h.cluster, sizeof(h.cluster), "%s", n->cfg->cluster);
	fr_wbuf_init(&w, 256, 0);
	if (proto_hello_encode(&w, type, &h) == FR_OK)
		node_conn_send(c, &w);
	else
		fr_log(FR_LOG_ERROR, "net", "hello encode: %s", fr_errmsg());
	fr_wbuf_fini(&w);
}

void node_gossip_flush(struct node *n)
{
	struct gossip_output o;

	if (!n->gossip)
		return;
	while (gossip_next_output(n->gossip, &o)) {
		struct node_peer *p = node_peer_find(n, o.peer);

		if (p && p->conn && p->conn->state == NODE_CONN_UP)
			node_conn_send(p->conn, &o.frame);
		fr_wbuf_fini(&o.frame);
	}
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		struct node_conn *c = n->net.peers[i]->conn;

		if (c && c->state == NODE_CONN_UP)
			gossip_peer_backlog(n->gossip, n->net.peers[i]->id,
					    conn_out_len(c));
	}
	node_gossip_arm(n);
}

/* ========================================================================
 * HELLO
 * ===================================================================== */

/* Under ZooKeeper only leaders talk across dcs (docs/design.md §4): a node of
 * another dc is accepted while we lead ours, if our view names it as its
 * dc's leader, and only with an epoch no older than the one we know.  A
 * static peer (no ZooKeeper, or [peers]) is trusted as configured. */
static bool wan_hello_ok(struct node_conn *c, const struct proto_hello *h)
{
	struct node *n = c->node;
	struct node_peer *p = node_peer_find(n, h->node_id);
	const struct topo_leader *l = NULL;

	if (!n->zk.topo || !p || p->is_static)
		return true;
	/* The view says which dc a node is in; a HELLO may not move it
	 * (into ours, say, to skip the checks below). */
	if (p->dc[0] && strcmp(h->dc, p->dc) != 0) {
		conn_refuse(c, FR_ERR_PROTO, "node %u says dc %s, ZooKeeper "
			    "says %s", h->node_id, h->dc, p->dc);
		return false;
	}
	if (strcmp(h->dc, n->cfg->dc) == 0)
		return true;
	if (!n->zk.leader) {
		conn_refuse(c, FR_ERR_PROTO, "node %u of dc %s: node %u does "
			    "not lead dc %s, only leaders link dcs",
			    h->node_id, h->dc, n->cfg->node_id, n->cfg->dc);
		return false;
	}
	for (uint32_t i = 0; i < n->zk.nleaders; i++)
		if (strcmp(n->zk.leaders[i].dc, h->dc) == 0)
			l = &n->zk.leaders[i];
	if (!l || l->node_id != h->node_id) {
		conn_refuse(c, FR_ERR_PROTO, "node %u is not the leader of dc "
			    "%s in node %u's view (leader %u)", h->node_id,
			    h->dc, n->cfg->node_id, l ? l->node_id : 0);
		return false;
	}
	if (h->epoch < l->epoch) {
		n->metrics.stale_epoch_refused++;
		conn_refuse(c, FR_ERR_PROTO, "node %u: stale epoch %u for dc "
			    "%s, its current leader epoch is %llu", h->node_id,
			    h->epoch, h->dc, (unsigned long long)l->epoch);
		return false;
	}
	return true;
}

static bool hello_check(struct node_conn *c, const struct proto_hello *h)
{
	struct node *n = c->node;

	if (h->proto_version != PROTO_VERSION) {
		conn_refuse(c, FR_ERR_VERSION, "protocol version %u, expected "
			    "%u (node %u)", h->proto_version, PROTO_VERSION,
			    n->cfg->node_id);
		return false;
	}
	/* A client may not know the cluster's name; a node must. */
	if ((h->role == PROTO_ROLE_NODE || h->cluster[0]) &&
	    strcmp(h->cluster, n->cfg->cluster) != 0) {
		conn_refuse(c, FR_ERR_PROTO, "cluster '%s', expected '%s' "
			    "(node %u)", h->cluster, n->cfg->cluster,
			    n->cfg->node_id);
		return false;
	}
	if (h->role == PROTO_ROLE_NODE && h->node_id == n->cfg->node_id) {
		conn_refuse(c, FR_ERR_PROTO, "node id %u is this node's own id",
			    h->node_id);
		return false;
	}
	if (h->role == PROTO_ROLE_NODE && !node_peer_find(n, h->node_id)) {
		conn_refuse(c, FR_ERR_PROTO, "node id %u is not in node %u's "
			    "peer list", h->node_id, n->cfg->node_id);
		return false;
	}
	if (h->role == PROTO_ROLE_NODE && !wan_hello_ok(c, h))
		return false;
	if (h->role != PROTO_ROLE_NODE && h->role != PROTO_ROLE_CLIENT) {
		conn_refuse(c, FR_ERR_PROTO, "role %d, expected 1 (node) or 2 "
			    "(client)", (int)h->role);
		return false;
	}
	return true;
}

/* A link to peer p is up on c (either direction). */
static void peer_link_up(struct node_conn *c, struct node_peer *p,
			 const struct proto_hello *h)
{
	struct node *n = c->node;
	uint64_t idle_ms = 10000 + 10ull * n->cfg->digest_interval_ms;
	struct timeval rt = { (time_t)(idle_ms / 1000),
			      (suseconds_t)(idle_ms % 1000) * 1000 };
	struct node_conn *old = p->conn;

	if (old && old != c) {
		fr_log(FR_LOG_INFO, "net", "peer %u: new link replaces the old "
		       "one", p->id);
		conn_close(old);
	}
	if (p->dialing && p->dialing != c) {
		struct node_conn *d = p->dialing;

		p->dialing = NULL;
		d->peer = NULL;
		conn_close(d);
	}
	if (p->dialing == c)
		p->dialing = NULL;
	if (p->retry_ev)
		event_del(p->retry_ev);
	c->peer = p;
	c->role = PROTO_ROLE_NODE;
	c->state = NODE_CONN_UP;
	p->conn = c;
	p->connects++;
	p->generation = h->generation;
	snprintf(p->dc, sizeof(p->dc), "%s", h->dc);
	p->dcx = node_dc_get(n, p->dc);
	if (!p->dcx && n->net.wan_cfg && strcmp(p->dc, n->cfg->dc) != 0)
		fr_log(FR_LOG_ERROR, "net", "peer %u: dc '%s' is one dc more "
		       "than the %d this node keeps counters and WAN budgets "
		       "for; its link runs without gossip.wan_mbit", p->id,
		       p->dc, NODE_DCS_MAX);
	p->backoff_ms = n->cfg->reconnect_min_ms;
	snprintf(c->name, sizeof(c->name), "peer %u (%s:%u)", p->id,
		 p->addr.host, p->addr.port);
	/* Heartbeat DIGESTs arrive every digest_interval_ms: a link silent
	 * for much longer is dead even if TCP has not noticed. */
	bufferevent_set_timeouts(c->bev, &rt, NULL);
	if (n->net.rate_cfg && bufferevent_set_rate_limit(c->bev, n->net.rate_cfg))
		fr_log(FR_LOG_WARN, "net", "%s: rate limit not set", c->name);
	if (p->dcx && p->dcx->grp &&
	    bufferevent_add_to_rate_limit_group(c->bev, p->dcx->grp))
		fr_log(FR_LOG_WARN, "net", "%s: WAN budget not set", c->name);
	/* A WAN peer gets a window of what its link carries in about half
	 * a pull timeout: pulls then wait in our priority queue, where the
	 * urgent go first, instead of in the link, first come first
	 * served. */
	if (n->net.wan_window && strcmp(p->dc, n->cfg->dc) != 0)
		gossip_peer_set_window(n->gossip, p->id, n->net.wan_window);
	else
		gossip_peer_set_window(n->gossip, p->id, 0);
	fr_log(FR_LOG_INFO, "net", "peer %u up (%s, dc %s, generation %llu)",
	       p->id, c->outgoing ? "dialed" : "accepted", p->dc,
	       (unsigned long long)p->generation);
	gossip_peer_up(n->gossip, p->id, fr_mono_ms());
}

static bool conn_on_hello(struct node_conn *c, uint16_t type,
			  const uint8_t *payload, size_t len)
{
	struct node *n = c->node;
	struct proto_hello h;
	struct proto_error e;
	enum fr_err rc;

	if (type == PROTO_ERROR && c->outgoing) {
		if (proto_error_decode(payload, len, &e) == FR_OK)
			fr_log(FR_LOG_WARN, "net", "%s refused us: %s: %s",
			       c->name, fr_strerror(e.code), e.msg);
		conn_close(c);
		return false;
	}
	if (type != (c->outgoing ? PROTO_HELLO_ACK : PROTO_HELLO)) {
		conn_refuse(c, FR_ERR_PROTO, "frame type 0x%04x before HELLO, "
			    "expected 0x%04x", type,
			    c->outgoing ? PROTO_HELLO_ACK : PROTO_HELLO);
		return false;
	}
	rc = proto_hello_decode(payload, len, &h);
	if (rc == FR_ERR_VERSION) {
		conn_refuse(c, rc, "protocol version %u, expected %u (node %u)",
			    h.proto_version, PROTO_VERSION, n->cfg->node_id);
		return false;
	}
	if (rc) {
		conn_refuse(c, rc, "bad HELLO: %s", fr_errmsg());
		return false;
	}
	if (!hello_check(c, &h))
		return false;
	if (c->outgoing) {
		if (h.role != PROTO_ROLE_NODE || !c->peer ||
		    h.node_id != c->peer->id) {
			conn_refuse(c, FR_ERR_PROTO, "HELLO_ACK from node %u "
				    "(role %d), expected node %u", h.node_id,
				    (int)h.role, c->peer ? c->peer->id : 0);
			return false;
		}
		peer_link_up(c, c->peer, &h);
		return true;
	}
	if (n->stop.stopping) {
		conn_refuse(c, FR_ERR_CLOSED, "node %u is shutting down",
			    n->cfg->node_id);
		return false;
	}
	conn_send_hello(c, PROTO_HELLO_ACK);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	if (h.role == PROTO_ROLE_NODE) {
		peer_link_up(c, node_peer_find(n, h.node_id), &h);
		return true;
	}
	c->role = PROTO_ROLE_CLIENT;
	c->state = NODE_CONN_UP;
	if (strncmp(c->name, "conn from ", 10) == 0) {
		/* "conn from ADDR" -> "client ADDR" (both fit: 7 < 10). */
		memcpy(c->name, "client", 6);
		memmove(c->name + 6, c->name + 9, strlen(c->name + 9) + 1);
	}
	fr_log(FR_LOG_DEBUG, "net", "%s: hello", c->name);
	return true;
}

/* ========================================================================
 * Input
 * ===================================================================== */

static void conn_count_bad(struct node_conn *c, enum fr_err rc)
{
	struct node *n = c->node;
	int k = -rc > 0 && -rc < FR_ERR__COUNT ? -rc : 0;

	c->bad_frames++;
	n->metrics.bad_by_err[k]++;
	if (c->role == PROTO_ROLE_NODE && c->peer) {
		c->peer->bad_frames++;
		c->peer->bad_by_err[k]++;
	} else {
		n->metrics.client_bad_frames++;
	}
}

/* One checked frame of an UP or HELLO connection.  Returns false when
 * the connection was closed (c may be gone). */
static bool conn_dispatch(struct node_conn *c, uint16_t type,
			  const uint8_t *payload, size_t len)
{
	struct node *n = c->node;
	struct proto_error e;
	enum fr_err rc;

	if (c->state == NODE_CONN_HELLO)
		return conn_on_hello(c, type, payload, len);
	if (type == PROTO_ERROR) {
		if (proto_error_decode(payload, len, &e) == FR_OK)
			fr_log(FR_LOG_WARN, "net", "%s says: %s: %s", c->name,
			       fr_strerror(e.code), e.msg);
		return true;
	}
	if (c->role == PROTO_ROLE_CLIENT) {
		bool keep;

		if (type == PROTO_PUBLISH)
			keep = node_publish_handle(c, payload, len);
		else if (type == PROTO_LOOKUP)
			keep = node_lookup_handle(c, payload, len);
		else {
			conn_count_bad(c, FR_ERR_PROTO);
			conn_refuse(c, FR_ERR_PROTO, "frame type 0x%04x is not "
				    "a client request (PUBLISH 0x%04x, LOOKUP "
				    "0x%04x)", type, PROTO_PUBLISH,
				    PROTO_LOOKUP);
			return false;
		}
		if (!keep) {
			conn_close(c);
			return false;
		}
		return true;
	}
	if (type >= GOSSIP_DIGEST && type <= 0x13f) {
		rc = gossip_on_frame(n->gossip, c->peer->id, type, payload, len,
				     fr_mono_ms());
		if (rc) {
			conn_count_bad(c, rc);
			fr_log(FR_LOG_DEBUG, "net", "%s: gossip frame 0x%04x "
			       "refused: %s", c->name, type, fr_errmsg());
			if (gossip_peer_should_drop(n->gossip, c->peer->id)) {
				conn_refuse(c, FR_ERR_PROTO, "too many bad "
					    "frames from node %u", c->peer->id);
				return false;
			}
		}
		return true;
	}
	conn_count_bad(c, FR_ERR_PROTO);
	conn_refuse(c, FR_ERR_PROTO, "frame type 0x%04x is not a gossip "
		    "frame (0x%04x..0x013f)", type, GOSSIP_DIGEST);
	return false;
}

/* A pointer to the whole frame at the head of `in`, with its payload
 * 8-aligned: in place when it already is, else an aligned copy. */
static const uint8_t *conn_frame_bytes(struct node_conn *c,
				       struct evbuffer *in, size_t len)
{
	const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)len);

	if (!p)
		return NULL;
	if (((uintptr_t)p + SHARD_FRAME_HDR_BYTES) % 8 == 0)
		return p;
	if (c->scratch_cap < len) {
		free(c->scratch);
		c->scratch = malloc(len);
		c->scratch_cap = c->scratch ? len : 0;
		if (!c->scratch)
			return NULL;
	}
	/* malloc memory is 16-aligned, so the payload (offset 24) lands
	 * on 8. */
	memcpy(c->scratch, p, len);
	return c->scratch;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct node_conn *c = arg;
	struct node *n = c->node;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct shard_frame_hdr h;
	const uint8_t *frame, *payload;
	uint8_t hdr[SHARD_FRAME_HDR_BYTES];
	size_t plen;
	enum fr_err rc;

	for (;;) {
		if (c->state == NODE_CONN_CLOSING) {
			evbuffer_drain(in, evbuffer_get_length(in));
			break;
		}
		if (c->read_paused)
			break;
		if (evbuffer_get_length(in) < SHARD_FRAME_HDR_BYTES)
			break;
		evbuffer_copyout(in, hdr, sizeof(hdr));
		rc = shard_frame_peek(hdr, sizeof(hdr), n->max_frame, &h);
		if (rc) {
			/* No trusted length: there is no next frame. */
			char msg[PROTO_ERRMSG_MAX + 1];

			conn_count_bad(c, rc);
			snprintf(msg, sizeof(msg), "bad frame header, closing: "
				 "%s", fr_errmsg());
			fr_log(FR_LOG_WARN, "net", "%s: %s", c->name, msg);
			node_conn_send_error(c, 0, rc, msg);
			conn_close(c);
			goto out_flush;
		}
		if (c->state == NODE_CONN_HELLO &&
		    h.length > NET_HELLO_FRAME_MAX) {
			conn_count_bad(c, FR_ERR_TOOBIG);
			conn_refuse(c, FR_ERR_TOOBIG, "frame type 0x%04x of %u "
				    "bytes before HELLO, expected <= %u",
				    h.type, h.length, NET_HELLO_FRAME_MAX);
			goto out_flush;
		}
		if (evbuffer_get_length(in) < h.length)
			break;
		frame = conn_frame_bytes(c, in, h.length);
		if (!frame) {
			fr_log(FR_LOG_ERROR, "net", "%s: no memory for a %u-byte "
			       "frame, closing", c->name, h.length);
			conn_close(c);
			goto out_flush;
		}
		if (c->role == PROTO_ROLE_NODE && c->peer) {
			c->peer->frames_in++;
			c->peer->bytes_in += h.length;
			if (c->peer->dcx)
				c->peer->dcx->bytes_in += h.length;
		} else {
			n->metrics.client_frames_in++;
			n->metrics.client_bytes_in += h.length;
		}
		rc = shard_frame_decode(frame, h.length, n->max_frame, &h,
					&payload, &plen);
		if (rc) {
			/* The length was sane, so the stream goes on; the
			 * data is pulled again (from another peer if need
			 * be) when the pull times out. */
			conn_count_bad(c, rc);
			fr_log(FR_LOG_DEBUG, "net", "%s: frame dropped: %s",
			       c->name, fr_errmsg());
			evbuffer_drain(in, h.length);
			if (c->bad_frames >= NODE_BAD_FRAMES_MAX) {
				conn_refuse(c, rc, "%u bad frames",
					    c->bad_frames);
				goto out_flush;
			}
			continue;
		}
		if (!conn_dispatch(c, h.type, payload, plen))
			goto out_flush;   /* c is closing or gone */
		evbuffer_drain(in, h.length);
		if (c->role == PROTO_ROLE_CLIENT &&
		    conn_out_len(c) > NET_CLIENT_OUT_MAX) {
			/* Replies pile up: stop taking requests until the
			 * client reads. */
			c->read_paused = true;
			bufferevent_disable(c->bev, EV_READ);
		}
	}
out_flush:
	node_gossip_flush(n);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct node_conn *c = arg;
	struct node *n = c->node;

	if (c->state == NODE_CONN_CLOSING) {
		/* close_ev: closing after a flush (not a shutdown linger). */
		if (c->close_ev && conn_out_len(c) == 0)
			conn_free(c);
		return;
	}
	if (c->read_paused && conn_out_len(c) <= NET_CLIENT_OUT_MAX / 2 &&
	    !n->stop.stopping) {
		c->read_paused = false;
		bufferevent_enable(c->bev, EV_READ);
		conn_read_cb(bev, c);   /* requests already buffered */
		return;
	}
	if (c->role == PROTO_ROLE_NODE && c->peer)
		node_gossip_flush(n);   /* backlog fell: more replies may go */
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct node_conn *c = arg;
	struct node *n = c->node;
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		evutil_socket_t fd = bufferevent_getfd(bev);

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->state = NODE_CONN_HELLO;
		conn_send_hello(c, PROTO_HELLO);
		return;
	}
	if (c->state == NODE_CONN_CONNECTING)
		fr_log(FR_LOG_DEBUG, "net", "%s: connect failed: %s", c->name,
		       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else if (what & BEV_EVENT_TIMEOUT)
		fr_log(FR_LOG_WARN, "net", "%s: silent too long, closing",
		       c->name);
	else if (c->state == NODE_CONN_UP && c->role == PROTO_ROLE_NODE)
		fr_log(FR_LOG_INFO, "net", "%s: %s", c->name,
		       (what & BEV_EVENT_EOF) ? "closed by peer" :
		       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		fr_log(FR_LOG_DEBUG, "net", "%s: closed", c->name);
	conn_free(c);
	node_gossip_flush(n);
}

/* ========================================================================
 * Dialing peers
 * ===================================================================== */

static void peer_dial(struct node_peer *p)
{
	struct node *n = p->node;
	struct node_conn *c;

	if (n->stop.stopping || p->conn || p->dialing)
		return;
	c = conn_new(n, -1, true);
	if (!c) {
		peer_schedule_dial(p);
		return;
	}
	c->peer = p;
	p->dialing = c;
	snprintf(c->name, sizeof(c->name), "peer %u (%s:%u)", p->id,
		 p->addr.host, p->addr.port);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	{
		struct timeval t = { NET_HELLO_TIMEOUT_S, 0 };

		bufferevent_set_timeouts(c->bev, &t, &t);
	}
	fr_log(FR_LOG_DEBUG, "net", "dialing %s", c->name);
	if (bufferevent_socket_connect_hostname(c->bev, n->net.dns, AF_UNSPEC,
						p->addr.host,
						p->addr.port) != 0) {
		fr_log(FR_LOG_DEBUG, "net", "%s: connect: %s", c->name,
		       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		conn_free(c);   /* schedules the next try */
	}
}

static void peer_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	peer_dial(arg);
}

/* Next attempt after backoff/2 + rand(backoff/2): jitter spreads a
 * cluster's reconnects after a partition heals. */
static void peer_schedule_dial(struct node_peer *p)
{
	struct node *n = p->node;
	uint32_t b = p->backoff_ms, d;
	struct timeval tv;

	if (n->stop.stopping || !p->retry_ev)
		return;
	d = b / 2 + net_rand() % (b / 2 + 1);
	tv.tv_sec = d / 1000;
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	event_add(p->retry_ev, &tv);
	p->backoff_ms = b >= n->cfg->reconnect_max_ms / 2 ?
		n->cfg->reconnect_max_ms : b * 2;
}

/* ========================================================================
 * The peer set: static from [peers], the rest from ZooKeeper's view
 * ===================================================================== */

enum fr_err node_peer_add(struct node *n, uint32_t id,
			  const struct node_config_addr *addr, const char *dc,
			  bool is_static)
{
	struct node_peer *p;
	enum fr_err rc;

	if (node_peer_find(n, id))
		return fr_fail(FR_ERR_EXISTS, "peer %u is known already", id);
	if (n->net.npeers == n->net.peers_cap) {
		uint32_t cap = n->net.peers_cap ? 2 * n->net.peers_cap : 16;
		struct node_peer **a = realloc(n->net.peers, cap * sizeof(*a));

		if (!a)
			return fr_fail(FR_ERR_NOMEM, "peer table");
		n->net.peers = a;
		n->net.peers_cap = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return fr_fail(FR_ERR_NOMEM, "peer %u", id);
	p->node = n;
	p->id = id;
	p->addr = *addr;
	p->is_static = is_static;
	p->dialer = n->cfg->node_id > id;
	p->backoff_ms = n->cfg->reconnect_min_ms;
	snprintf(p->dc, sizeof(p->dc), "%s", dc ? dc : "");
	p->retry_ev = evtimer_new(n->base, peer_retry_cb, p);
	if (!p->retry_ev) {
		free(p);
		return fr_fail(FR_ERR_NOMEM, "peer %u timer", id);
	}
	rc = gossip_peer_add(n->gossip, id);
	if (rc) {
		event_free(p->retry_ev);
		free(p);
		return fr_fail(rc, "gossip: peer %u: %s", id, fr_errmsg());
	}
	n->net.peers[n->net.npeers++] = p;
	if (p->dialer)
		peer_dial(p);
	return FR_OK;
}

void node_peer_remove(struct node *n, uint32_t id)
{
	struct node_conn *c, *next;
	struct node_peer *p = node_peer_find(n, id);

	if (!p)
		return;
	/* Every connection that points at p lets go of it first, so that
	 * closing does not schedule a redial of a peer about to be freed. */
	p->dialer = false;
	for (c = n->net.conns; c; c = next) {
		next = c->next;
		if (c->peer == p)
			conn_close(c);
	}
	gossip_peer_remove(n->gossip, id);
	event_free(p->retry_ev);
	for (uint32_t i = 0; i < n->net.npeers; i++)
		if (n->net.peers[i] == p) {
			n->net.peers[i] = n->net.peers[--n->net.npeers];
			break;
		}
	free(p);
}

/* ========================================================================
 * Listener
 * ===================================================================== */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct node *n = arg;
	struct timeval t = { NET_HELLO_TIMEOUT_S, 0 };
	char host[INET6_ADDRSTRLEN] = "?", serv[NI_MAXSERV] = "?";
	struct node_conn *c;
	int one = 1;

	if (n->stop.stopping) {
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(n, fd, false);
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	getnameinfo(sa, (socklen_t)salen, host, sizeof(host), serv,
		    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(c->name, sizeof(c->name), "conn from %s:%s", host, serv);
	n->metrics.conns_accepted++;
	bufferevent_set_timeouts(c->bev, &t, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	fr_log(FR_LOG_DEBUG, "net", "%s: accepted", c->name);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	/* EMFILE and friends: keep running, the next accept may work. */
	fr_log(FR_LOG_WARN, "net", "accept: %s",
	       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static enum fr_err listener_open(struct node *n)
{
	const struct node_config_addr *a = &n->cfg->listen;
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	char port[8];
	int r;

	snprintf(port, sizeof(port), "%u", a->port);
	r = getaddrinfo(a->host, port, &hints, &res);
	if (r != 0)
		return fr_fail(FR_ERR_INVAL, "node.listen: '%s:%u': %s",
			       a->host, a->port, gai_strerror(r));
	n->net.listener = evconnlistener_new_bind(n->base, accept_cb, n,
					      LEV_OPT_CLOSE_ON_FREE |
					      LEV_OPT_CLOSE_ON_EXEC |
					      LEV_OPT_REUSEABLE, 128,
					      res->ai_addr,
					      (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (!n->net.listener)
		return fr_fail(FR_ERR_IO, "node.listen: '%s:%u': bind/listen: "
			       "%s", a->host, a->port,
			       evutil_socket_error_to_string(
				       EVUTIL_SOCKET_ERROR()));
	evconnlistener_set_error_cb(n->net.listener, accept_error_cb);
	return FR_OK;
}

/* ========================================================================
 * Start and stop
 * ===================================================================== */

/* A token bucket of mbit Mbit/s: refilled every NET_RATE_TICK_MS, a
 * burst of two ticks. */
static struct ev_token_bucket_cfg *bucket_new(uint32_t mbit)
{
	uint64_t per_tick = (uint64_t)mbit * 125000 /
		(1000 / NET_RATE_TICK_MS);
	struct timeval tick = { 0, NET_RATE_TICK_MS * 1000 };

	if (per_tick < 1)
		per_tick = 1;
	return ev_token_bucket_cfg_new(per_tick, 2 * per_tick, per_tick,
				       2 * per_tick, &tick);
}

enum fr_err node_net_start(struct node *n)
{
	const struct node_config *cfg = n->cfg;
	enum fr_err rc;

	if (cfg->link_mbit) {
		n->net.rate_cfg = bucket_new(cfg->link_mbit);
		if (!n->net.rate_cfg)
			return fr_fail(FR_ERR_INVAL, "gossip.link_mbit %u: "
				       "token bucket refused",
				       cfg->link_mbit);
	}
	n->net.dns = evdns_base_new(n->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
				EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!n->net.dns)
		fr_log(FR_LOG_WARN, "net", "no DNS resolver; peer names are "
		       "resolved with blocking lookups");
	if (cfg->wan_mbit) {
		n->net.wan_cfg = bucket_new(cfg->wan_mbit);
		if (!n->net.wan_cfg)
			return fr_fail(FR_ERR_INVAL, "gossip.wan_mbit %u: "
				       "token bucket refused", cfg->wan_mbit);
		n->net.wan_window = (uint64_t)cfg->wan_mbit * 125000 *
			cfg->pull_timeout_ms / 4000;
		if (n->net.wan_window < (256u << 10))
			n->net.wan_window = 256u << 10;
	}
	node_dc_get(n, cfg->dc);   /* our own dc's row comes first */
	rc = listener_open(n);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < cfg->npeers; i++) {
		rc = node_peer_add(n, cfg->peers[i].id, &cfg->peers[i].addr,
				   "", true);
		if (rc)
			return rc;
	}
	return FR_OK;
}

void node_net_stop_accepting(struct node *n)
{
	struct node_conn *c, *next;

	if (n->net.listener) {
		evconnlistener_free(n->net.listener);
		n->net.listener = NULL;
	}
	/* Clients that said HELLO keep being read: lookups are still
	 * served and publishes are answered FR_ERR_CLOSED, which beats a
	 * reset.  Connections still in HELLO are dropped. */
	for (c = n->net.conns; c; c = next) {
		next = c->next;
		if (c->role == 0 && !c->outgoing)
			conn_free(c);
	}
}

void node_net_linger_clients(struct node *n)
{
	for (struct node_conn *c = n->net.conns; c; c = c->next) {
		if (c->role != PROTO_ROLE_CLIENT ||
		    c->state == NODE_CONN_CLOSING)
			continue;
		/* FIN after the last reply; what the client still sends is
		 * read and dropped, so our close does not turn into a reset
		 * that could destroy replies it has not read yet. */
		c->state = NODE_CONN_CLOSING;
		c->read_paused = false;
		bufferevent_enable(c->bev, EV_READ);
		shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	}
}

uint32_t node_net_clients(const struct node *n)
{
	uint32_t k = 0;

	for (const struct node_conn *c = n->net.conns; c; c = c->next)
		if (c->role == PROTO_ROLE_CLIENT)
			k++;
	return k;
}

void node_net_close_peers(struct node *n)
{
	struct node_conn *c, *next;

	for (uint32_t i = 0; i < n->net.npeers; i++)
		if (n->net.peers[i]->retry_ev)
			event_del(n->net.peers[i]->retry_ev);
	for (c = n->net.conns; c; c = next) {
		next = c->next;
		if (c->role != PROTO_ROLE_CLIENT)
			conn_free(c);
	}
}

void node_net_close_all(struct node *n)
{
	node_net_close_peers(n);
	while (n->net.conns)
		conn_free(n->net.conns);
}

uint32_t node_net_clients_busy(const struct node *n)
{
	uint32_t k = 0;

	for (const struct node_conn *c = n->net.conns; c; c = c->next)
		if (c->role == PROTO_ROLE_CLIENT && conn_out_len(c) > 0)
			k++;
	return k;
}

void node_net_fini(struct node *n)
{
	/* No reconnects while tearing down. */
	n->stop.stopping = true;
	if (n->net.listener)
		evconnlistener_free(n->net.listener);
	n->net.listener = NULL;
	node_net_close_all(n);
	for (uint32_t i = 0; i < n->net.npeers; i++) {
		if (n->net.peers[i]->retry_ev)
			event_free(n->net.peers[i]->retry_ev);
		free(n->net.peers[i]);
	}
	free(n->net.peers);
	n->net.peers = NULL;
	n->net.npeers = n->net.peers_cap = 0;
	for (uint32_t i = 0; i < n->net.ndcs; i++)
		if (n->net.dcs[i].grp)
			bufferevent_rate_limit_group_free(n->net.dcs[i].grp);
	n->net.ndcs = 0;
	if (n->net.wan_cfg)
		ev_token_bucket_cfg_free(n->net.wan_cfg);
	n->net.wan_cfg = NULL;
	if (n->net.dns)
		evdns_base_free(n->net.dns, 0);
	n->net.dns = NULL;
	if (n->net.rate_cfg)
		ev_token_bucket_cfg_free(n->net.rate_cfg);
	n->net.rate_cfg = NULL;
}
