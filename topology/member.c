/*
 * member.c — the znodes a node owns in ZooKeeper (docs/design.md §4,
 * docs/design.md rules 1-3, 6): the persistent parents, our member znode
 * nodes/<dc>/<id> (with the per-model status the loop publishes through
 * topo_set_status), our candidate in election/<dc>, and leaders/<dc>
 * while we lead.  Each is a step of the topology thread's pass
 * (session.c), called with its work bit dirty.
 *
 * Our member znode says cfg.self plus the latest status (th_self): a
 * status change is a zoo_set by recheck_member, and after a session loss
 * the re-created znode carries it.  Calls to topo_set_status made before
 * the thread gets to it coalesce into one write.
 *
 * Leadership is claimed only while we are rank 0 in election/<dc> and
 * leaders/<dc> is ours.  The epoch is the election sequence + 1, so a
 * leader's epoch is never 0 and rises with every candidacy.  The loop
 * thread may take leadership away again when ZooKeeper stops answering
 * (rule 2, loop.c).
 *
 * Not here: reading what others wrote (reads.c), the session (session.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The synchronous zoo_* calls are declared only for the threaded client. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "topology/topo_int.h"

#define MOD "topology"

/* ------------------------------------------------------------------------
 * The persistent parents
 * ---------------------------------------------------------------------- */

/* Create a persistent node; ZNODEEXISTS is fine. */
static int ensure_node(struct topo *t, const char *path)
{
	int rc = zoo_create(t->th_zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0,
			    NULL, 0);

	if (rc == ZOK || rc == ZNODEEXISTS)
		return ZOK;
	if (rc == ZNONODE)
		fr_log(FR_LOG_ERROR, MOD,
		       "create %s: %s (does the chroot in '%s' exist?)", path,
		       zerror(rc), t->cfg.hosts);
	else
		topo_zk_fail("create", path, rc);
	return rc;
}

int topo_do_parents(struct topo *t)
{
	const char *paths[] = { "/freshet", t->root, t->p_nodes,
				t->p_nodes_dc, t->p_election,
				t->p_election_dc, t->p_leaders, t->p_models };
	int rc = ZOK;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && !rc; i++)
		rc = ensure_node(t, paths[i]);
	return rc;
}

/* ------------------------------------------------------------------------
 * Our member znode (rules 1, 6)
 * ---------------------------------------------------------------------- */

/* Still ours, and still saying what we registered?  Arms the watch on
 * our member znode; data someone else wrote into it is put back (peers
 * would otherwise leave us out of their views).  An ephemeral of a live
 * session vanishes only when someone deletes it — most likely a newer
 * generation of this node taking over (rule 6) — so rather than race it
 * to re-create, step out and try again after TOPO_RETRY_MS. */
static int recheck_member(struct topo *t)
{
	struct Stat st;
	int len = TOPO_DATA_MAX;
	int rc = zoo_wget(t->th_zh, t->p_me, topo_watch_cb, &t->w_member, t->th_buf,
			  &len, &st);

	if (rc == ZOK && st.ephemeralOwner == t->th_session) {
		enum fr_err err;
		char *json = topo_member_encode(&t->th_self, &err);
		bool mine;

		if (!json)
			return ZSYSTEMERROR;   /* checked in topo_set_status */
		if (st.dataLength != (int32_t)strlen(json) ||
		    memcmp(t->th_buf, json, strlen(json)) != 0) {
			/* What we wrote last, now stale: a new status.
			 * Anything else is someone else's doing. */
			mine = t->th_member_json && len >= 0 &&
			       st.dataLength == len &&
			       strlen(t->th_member_json) == (size_t)len &&
			       memcmp(t->th_buf, t->th_member_json,
				      (size_t)len) == 0;
			if (mine)
				fr_log(FR_LOG_DEBUG, MOD,
				       "publishing our status in %s",
				       t->p_me);
			else
				fr_log(FR_LOG_WARN, MOD,
				       "%s was overwritten by another client; writing ours back",
				       t->p_me);
			rc = zoo_set(t->th_zh, t->p_me, json, (int)strlen(json),
				     st.version);
			/* Written again meanwhile: its watch brings us back. */
			if (rc == ZBADVERSION)
				rc = TOPO_ZK_RETRY;
		}
		if (rc == ZOK) {
			free(t->th_member_json);
			t->th_member_json = json;
			json = NULL;
		}
		free(json);
		return rc;
	}
	if (rc != ZOK && rc != ZNONODE)
		return rc;
	fr_log(FR_LOG_WARN, MOD,
	       "%s was %s by another session; standing down, registering again later",
	       t->p_me, rc == ZNONODE ? "removed" : "replaced");
	t->th_member_ok = false;
	t->th_dirty |= TOPO_D_ELECTION;
	return TOPO_ZK_RETRY;
}

int topo_do_member(struct topo *t)
{
	enum fr_err err;
	char *json;
	int rc = TOPO_ZK_RETRY;
	bool ok = false;

	if (t->th_member_ok)
		return recheck_member(t);
	/* With the latest status: a re-created znode (after a session
	 * loss) says what the old one said. */
	json = topo_member_encode(&t->th_self, &err);
	if (!json)
		return ZSYSTEMERROR;   /* checked in topo_new: cannot happen */
	for (int tries = 0; tries < 3 && !ok; tries++, rc = TOPO_ZK_RETRY) {
		struct topo_member other;
		struct Stat st;
		int len;

		rc = zoo_create(t->th_zh, t->p_me, json, (int)strlen(json),
				&ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
		if (rc == ZOK) {
			fr_log(FR_LOG_INFO, MOD, "registered %s (generation %" PRIu64 ")",
			       t->p_me, t->cfg.self.generation);
			ok = true;
			break;
		}
		if (rc != ZNODEEXISTS)
			break;
		len = TOPO_DATA_MAX;
		rc = zoo_get(t->th_zh, t->p_me, 0, t->th_buf, &len, &st);
		if (rc == ZNONODE)
			continue;
		if (rc != ZOK)
			break;
		if (st.ephemeralOwner == t->th_session) {
			/* Ours: a create lost to CONNECTIONLOSS. */
			if (len != (int)strlen(json) ||
			    memcmp(t->th_buf, json, (size_t)len) != 0)
				rc = zoo_set(t->th_zh, t->p_me, json,
					     (int)strlen(json), st.version);
			ok = rc == ZOK;
			break;
		}
		if (topo_member_decode(t->th_buf, len < 0 ? 0 : (size_t)len,
				       &other) == FR_OK &&
		    other.generation >= t->cfg.self.generation) {
			if (!t->th_member_warned)
				fr_log(FR_LOG_ERROR, MOD,
				       "node id %" PRIu32 " is registered by another process (generation %" PRIu64 ", ours %" PRIu64 ") at %s; retrying when it goes",
				       t->cfg.self.node_id, other.generation,
				       t->cfg.self.generation, t->p_me);
			t->th_member_warned = true;
			/* Watch it: we try again when it goes. */
			rc = zoo_wexists(t->th_zh, t->p_me, topo_watch_cb,
					 &t->w_member, &st);
			if (rc == ZNONODE)
				continue;
			rc = rc == ZOK ? ZNODEEXISTS : rc;
			break;
		}
		/* Our own ghost from an earlier life (rule 6), or a znode
		 * nobody can read: replace it. */
		fr_log(FR_LOG_WARN, MOD,
		       "replacing %s left by session 0x%" PRIx64 " (an older generation of this node)",
		       t->p_me, (uint64_t)st.ephemeralOwner);
		rc = zoo_delete(t->th_zh, t->p_me, st.version);
		if (rc != ZOK && rc != ZNONODE && rc != ZBADVERSION)
			break;
	}
	free(json);
	if (ok) {
		t->th_member_warned = false;
		t->th_member_ok = true;
		/* Now stand for election (see topo_do_election). */
		t->th_dirty |= TOPO_D_ELECTION;
		return recheck_member(t);
	}
	if (rc != ZNODEEXISTS)
		topo_zk_fail("register", t->p_me, rc);
	/* Waiting for another holder: its watch brings us back. */
	return rc == ZNODEEXISTS ? ZOK : rc;
}

/* ------------------------------------------------------------------------
 * Election and leaders/<dc> (rules 2, 3)
 * ---------------------------------------------------------------------- */

static void set_elected(struct topo *t, bool elected, uint64_t seq)
{
	if (elected && !t->th_elected) {
		t->th_epoch = seq + 1;
		atomic_fetch_add(&t->elections_won, 1);
		fr_log(FR_LOG_INFO, MOD, "elected leader of dc %s (epoch %" PRIu64 ")",
		       t->cfg.self.dc, t->th_epoch);
	} else if (!elected && t->th_elected) {
		fr_log(FR_LOG_WARN, MOD, "no longer leader of dc %s",
		       t->cfg.self.dc);
	}
	if (elected != t->th_elected)
		t->th_view_dirty = true;
	t->th_elected = elected;
	t->th_dirty |= TOPO_D_LEADER;
}

/* Look for our own candidate among children (after CONNECTIONLOSS on
 * create); remove candidates of our node id from older generations —
 * ghosts of a previous life that could otherwise win (rule 6) — and any
 * second candidate of this session (a create whose reply was lost but
 * which ZooKeeper applied after we looked): an orphan ranked ahead of us
 * would block the DC while our session lives (rule 3).  withdraw: remove
 * every candidate of this session. */
static int adopt_or_clean(struct topo *t, const struct String_vector *sv,
			  bool withdraw)
{
	for (int32_t i = 0; i < sv->count; i++) {
		const char *c = sv->data[i];
		char path[TOPO_PATH_MAX];
		uint64_t gen, seq;
		struct Stat st;
		uint32_t id;
		int rc;

		if (topo_election_parse(c, &id, &gen, &seq) != FR_OK ||
		    id != t->cfg.self.node_id ||
		    gen > t->cfg.self.generation)
			continue;
		if (!topo_pathf(path, sizeof(path), "%s/%s", t->p_election_dc, c))
			continue;
		rc = zoo_exists(t->th_zh, path, 0, &st);
		if (rc == ZNONODE)
			continue;
		if (rc != ZOK)
			return rc;
		if (st.ephemeralOwner == t->th_session) {
			if (!withdraw && gen == t->cfg.self.generation &&
			    (!t->th_election[0] ||
			     strcmp(t->th_election, c) == 0)) {
				snprintf(t->th_election, sizeof(t->th_election),
					 "%s", c);
				continue;
			}
			fr_log(FR_LOG_WARN, MOD, "removing %s: %s", path,
			       withdraw ? "withdrawing" :
			       "a second candidate of this session");
			rc = zoo_delete(t->th_zh, path, -1);
			if (rc != ZOK && rc != ZNONODE)
				return rc;
			continue;
		}
		if (gen < t->cfg.self.generation) {
			fr_log(FR_LOG_WARN, MOD,
			       "removing %s: a candidate of an older generation of this node",
			       path);
			rc = zoo_delete(t->th_zh, path, -1);
			if (rc != ZOK && rc != ZNONODE)
				return rc;
		}
	}
	return ZOK;
}

int topo_do_election(struct topo *t)
{
	enum fr_err err;
	char *json = NULL;
	int rc = ZOK;

	if (!t->cfg.candidate)
		return ZOK;
	if (!t->th_member_ok) {
		/* Withdraw (see topo_do_member): every candidate of this session,
		 * also one whose create lost its reply (th_election is "" then
		 * but the znode may exist). */
		struct String_vector sv = { 0, NULL };

		set_elected(t, false, 0);
		rc = zoo_get_children(t->th_zh, t->p_election_dc, 0, &sv);
		if (rc == ZNONODE)
			rc = ZOK;
		else if (rc == ZOK)
			rc = adopt_or_clean(t, &sv, true);
		deallocate_String_vector(&sv);
		if (rc == ZOK && t->th_election[0]) {
			fr_log(FR_LOG_WARN, MOD, "withdrew candidate %s/%s: not registered",
			       t->p_election_dc, t->th_election);
			t->th_election[0] = '\0';
		}
		return rc;
	}
	for (int tries = 0; tries < 4; tries++, rc = TOPO_ZK_RETRY) {
		char pred[TOPO_NAME_MAX + 32], path[TOPO_PATH_MAX];
		char made[TOPO_PATH_MAX];
		struct String_vector sv = { 0, NULL };
		uint64_t gen, seq;
		uint32_t rank, id;
		struct Stat st;
		enum fr_err e;

		rc = zoo_get_children(t->th_zh, t->p_election_dc, 0, &sv);
		if (rc == ZNONODE)
			t->th_dirty |= TOPO_D_PARENTS;
		if (rc != ZOK)
			break;
		rc = adopt_or_clean(t, &sv, false);
		if (rc != ZOK) {
			deallocate_String_vector(&sv);
			break;
		}
		if (!t->th_election[0]) {
			deallocate_String_vector(&sv);
			if (!json)
				json = topo_member_encode(&t->cfg.self, &err);
			if (!json) {
				rc = ZSYSTEMERROR;
				break;
			}
			topo_pathf(path, sizeof(path), "%s/%s", t->p_election_dc,
			      t->prefix);
			rc = zoo_create(t->th_zh, path, json, (int)strlen(json),
					&ZOO_OPEN_ACL_UNSAFE,
					ZOO_EPHEMERAL | ZOO_SEQUENCE, made,
					sizeof(made));
			if (rc != ZOK)
				break;
			if (!topo_pathf(t->th_election, sizeof(t->th_election),
				   "%s", strrchr(made, '/') ?
				   strrchr(made, '/') + 1 : made)) {
				t->th_election[0] = '\0';
				rc = ZSYSTEMERROR;
				break;
			}
			fr_log(FR_LOG_INFO, MOD, "candidate %s/%s",
			       t->p_election_dc, t->th_election);
			continue;   /* list again, now with us in it */
		}
		e = topo_election_rank((const char *const *)sv.data,
				       (uint32_t)sv.count, t->th_election,
				       &rank, pred, sizeof(pred));
		deallocate_String_vector(&sv);
		if (e == FR_ERR_NOTFOUND) {
			/* Gone while the session lived (someone deleted
			 * it): stand again. */
			fr_log(FR_LOG_WARN, MOD, "our candidate %s vanished; standing again",
			       t->th_election);
			t->th_election[0] = '\0';
			set_elected(t, false, 0);
			continue;
		}
		if (e != FR_OK) {
			rc = ZSYSTEMERROR;
			break;
		}
		topo_election_parse(t->th_election, &id, &gen, &seq);
		if (rank == 0) {
			/* Watch our own candidate: if someone deletes it, our
			 * successor takes over and we must stand down now,
			 * not at the next reconnect. */
			topo_pathf(path, sizeof(path), "%s/%s", t->p_election_dc,
			      t->th_election);
			rc = zoo_wexists(t->th_zh, path, topo_watch_cb,
					 &t->w_election, &st);
			if (rc == ZNONODE)
				continue;   /* re-list: "vanished" below */
			if (rc != ZOK)
				break;
			set_elected(t, true, seq);
			break;
		}
		set_elected(t, false, 0);
		/* Watch only our predecessor (no herd); if it is already
		 * gone, re-list (rule 3). */
		topo_pathf(path, sizeof(path), "%s/%s", t->p_election_dc, pred);
		rc = zoo_wexists(t->th_zh, path, topo_watch_cb, &t->w_election, &st);
		if (rc == ZOK && st.ephemeralOwner == 0) {
			/* Not an ephemeral (made by hand or a tool): no
			 * session's end removes it, and ranked ahead of
			 * everyone it would block the DC for ever (rule 7). */
			fr_log(FR_LOG_WARN, MOD,
			       "removing %s: a candidate that is not an ephemeral znode",
			       path);
			rc = zoo_delete(t->th_zh, path, -1);
			if (rc != ZOK && rc != ZNONODE)
				break;
			continue;   /* re-list */
		}
		if (rc != ZNONODE)
			break;
	}
	free(json);
	if (rc != ZOK && !topo_conn_lost(rc)) {
		topo_zk_fail("election in", t->p_election_dc, rc);
		set_elected(t, false, 0);
	}
	return rc;
}

int topo_do_leader(struct topo *t)
{
	struct topo_leader me;
	enum fr_err err;
	uint64_t sent = fr_mono_ms();
	char *json;
	int rc = ZOK;

	if (!t->th_elected) {
		struct Stat st;

		if (!t->th_leader_owned)
			return ZOK;
		/* Resign: remove leaders/<dc> if it is still ours. */
		rc = zoo_exists(t->th_zh, t->p_leader_me, 0, &st);
		if (rc == ZOK && st.ephemeralOwner == t->th_session)
			rc = zoo_delete(t->th_zh, t->p_leader_me, st.version);
		if (rc == ZOK || rc == ZNONODE || rc == ZBADVERSION) {
			t->th_leader_owned = false;
			t->th_view_dirty = true;
			rc = ZOK;
		}
		return rc;
	}
	memset(&me, 0, sizeof(me));
	memcpy(me.dc, t->cfg.self.dc, sizeof(me.dc));
	me.node_id = t->cfg.self.node_id;
	memcpy(me.addr, t->cfg.self.addr, sizeof(me.addr));
	me.epoch = t->th_epoch;
	me.generation = t->cfg.self.generation;
	json = topo_leader_encode(&me, &err);
	if (!json)
		return ZSYSTEMERROR;
	for (int tries = 0; tries < 3; tries++, rc = TOPO_ZK_RETRY) {
		struct topo_leader other;
		struct Stat st;
		int len;

		rc = zoo_create(t->th_zh, t->p_leader_me, json,
				(int)strlen(json), &ZOO_OPEN_ACL_UNSAFE,
				ZOO_EPHEMERAL, NULL, 0);
		if (rc != ZNODEEXISTS)
			break;
		rc = topo_get_data(t, t->p_leader_me, &t->w_leaders, &len, &st);
		if (rc == ZNONODE)
			continue;
		/* ZBADARGUMENTS: too big to read, but st is filled. */
		if (rc != ZOK && rc != ZBADARGUMENTS)
			break;
		if (st.ephemeralOwner == t->th_session) {
			if (rc == ZOK && strcmp(t->th_buf, json) == 0)
				break;
			/* Ours, overwritten by another client: put our
			 * claim back (the data watch brought us here). */
			fr_log(FR_LOG_WARN, MOD,
			       "%s was overwritten by another client; writing ours back",
			       t->p_leader_me);
			rc = zoo_set(t->th_zh, t->p_leader_me, json,
				     (int)strlen(json), st.version);
			if (rc == ZBADVERSION)
				continue;   /* written again meanwhile */
			break;
		}
		/* Not an ephemeral (made by hand or a tool): no session's
		 * end will remove it, so it would block the DC for ever.  A
		 * ghost of an older generation of this node goes too. */
		if (st.ephemeralOwner == 0 ||
		    (rc == ZOK &&
		     topo_leader_decode(t->th_buf, (size_t)len, &other) ==
			     FR_OK &&
		     other.node_id == t->cfg.self.node_id &&
		     other.generation < t->cfg.self.generation)) {
			fr_log(FR_LOG_WARN, MOD, "replacing %s: %s",
			       t->p_leader_me, st.ephemeralOwner == 0 ?
			       "not an ephemeral znode (no session holds it)" :
			       "left by an older generation of this node");
			rc = zoo_delete(t->th_zh, t->p_leader_me, st.version);
			if (rc != ZOK && rc != ZNONODE && rc != ZBADVERSION)
				break;
			continue;
		}
		/* Held by another session (an old leader on its way out):
		 * the data watch set above tells us when it goes. */
		if (!t->th_leader_warned)
			fr_log(FR_LOG_WARN, MOD,
			       "%s is held by session 0x%" PRIx64 "; waiting for it to go",
			       t->p_leader_me, (uint64_t)st.ephemeralOwner);
		t->th_leader_warned = true;
		rc = ZNODEEXISTS;
		break;
	}
	free(json);
	if (rc == ZOK) {
		/* Every call above was answered (rule 2's clock). */
		topo_contact(t, sent);
		t->th_leader_warned = false;
		if (!t->th_leader_owned)
			t->th_view_dirty = true;
		t->th_leader_owned = true;
	} else {
		if (t->th_leader_owned)
			t->th_view_dirty = true;
		if (!topo_conn_lost(rc))
			t->th_leader_owned = false;
		if (rc != ZNODEEXISTS)
			topo_zk_fail("lead", t->p_leader_me, rc);
	}
	/* Waiting on another holder is not a failure to retry: its watch
	 * brings us back. */
	return rc == ZNODEEXISTS ? ZOK : rc;
}

