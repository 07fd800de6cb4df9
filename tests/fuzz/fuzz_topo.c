/*
 * fuzz_topo.c — libFuzzer target for topology/'s znode codecs: the member
 * (with its per-model status), leader, model, rollback, health and role
 * override JSON and the election and rollback child names, all of which a
 * node reads from ZooKeeper and must treat as untrusted (docs/design.md
 * rule 7).
 *
 * The first input byte picks what to fuzz and the rest is its input:
 *   0 member decode          1 leader decode
 *   2 model decode as "ctr"  3 model decode, znode name = the input up to
 *                              its first '\n', JSON after it
 *   4 election child parse   5 election rank: lines split on '\n', the
 *                              first is ours, the rest the children
 *   6 member encode          7 leader encode
 *   8 model encode           (6..8 fill the struct from the raw bytes)
 *   9 rollback decode: the first byte is the sequence (0xff: one past
 *     the largest a name can carry), the JSON after it
 *  10 rollback child name     11 health decode
 *  12 roles decode, the first byte is the room given (cap)
 *  13 rollback encode         14 health encode, then topo_health_push
 *  15 roles encode            (13..15 fill the structs from the raw bytes)
 * Besides "no crash, no leak", it checks the contracts topology.h states:
 * a decoder fails with FR_ERR_INVAL/FR_ERR_CORRUPT and a detail and leaves
 * *out untouched; what it accepts re-encodes, and that decodes again to
 * the same struct; what an encoder accepts decodes back to what it was
 * given (a node never writes what it would refuse to read); the rank and
 * predecessor agree with the children.  A broken contract traps.
 *
 * Not here: the ZooKeeper calls themselves (tests/integration).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0xa5
#define PRED_CAP (TOPO_NAME_MAX + 32)   /* topology.h's promise */
#define RANK_MAX 512                    /* children per input */

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* A failed decode: the right codes, a detail, *out not written. */
static void failed(enum fr_err err, const void *out, size_t n)
{
	const uint8_t *p = out;

	check(err == FR_ERR_INVAL || err == FR_ERR_CORRUPT);
	check(fr_errmsg()[0] != '\0');
	for (size_t i = 0; i < n; i++)
		check(p[i] == SENTINEL);
}

/* A NUL-terminated heap copy of n bytes (exact size, so ASan sees reads
 * past the end). */
static char *cstr(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* ------------------------------------------------------------------------
 * Member
 * ---------------------------------------------------------------------- */

/* m was accepted (by the decoder or the encoder): it encodes, decodes back
 * to itself, and that encodes to the same bytes. */
static void member_round(const struct topo_member *m)
{
	struct topo_member m2;
	enum fr_err err;
	char *j1, *j2;

	j1 = topo_member_encode(m, &err);
	check(j1 != NULL && err == FR_OK);
	memset(&m2, SENTINEL, sizeof(m2));
	check(topo_member_decode(j1, strlen(j1), &m2) == FR_OK);
	check(topo_member_eq(m, &m2));
	j2 = topo_member_encode(&m2, &err);
	check(j2 != NULL && strcmp(j1, j2) == 0);
	free(j1);
	free(j2);
}

static void member_decode(const uint8_t *p, size_t n)
{
	struct topo_member m;
	enum fr_err err;

	memset(&m, SENTINEL, sizeof(m));
	fr_errclear();
	err = topo_member_decode((const char *)p, n, &m);
	if (err == FR_OK)
		member_round(&m);
	else
		failed(err, &m, sizeof(m));
}

static void member_encode(const uint8_t *p, size_t n)
{
	struct topo_member m;
	enum fr_err err;
	char *j;

	memset(&m, 0, sizeof(m));
	memcpy(&m, p, n < sizeof(m) ? n : sizeof(m));
	m.dc[sizeof(m.dc) - 1] = '\0';
	m.addr[sizeof(m.addr) - 1] = '\0';
	m.admin[sizeof(m.admin) - 1] = '\0';
	m.roles[sizeof(m.roles) - 1] = '\0';
	j = topo_member_encode(&m, &err);
	if (j) {
		free(j);
		member_round(&m);
	} else {
		check(err != FR_OK);
	}
}

/* ------------------------------------------------------------------------
 * Leader
 * ---------------------------------------------------------------------- */

static void leader_round(const struct topo_leader *l)
{
	struct topo_leader l2;
	enum fr_err err;
	char *j1, *j2;

	j1 = topo_leader_encode(l, &err);
	check(j1 != NULL && err == FR_OK);
	memset(&l2, SENTINEL, sizeof(l2));
	check(topo_leader_decode(j1, strlen(j1), &l2) == FR_OK);
	check(topo_leader_eq(l, &l2));
	j2 = topo_leader_encode(&l2, &err);
	check(j2 != NULL && strcmp(j1, j2) == 0);
	free(j1);
	free(j2);
}

static void leader_decode(const uint8_t *p, size_t n)
{
	struct topo_leader l;
	enum fr_err err;

	memset(&l, SENTINEL, sizeof(l));
	fr_errclear();
	err = topo_leader_decode((const char *)p, n, &l);
	if (err == FR_OK)
		leader_round(&l);
	else
		failed(err, &l, sizeof(l));
}

static void leader_encode(const uint8_t *p, size_t n)
{
	struct topo_leader l;
	enum fr_err err;
	char *j;

	memset(&l, 0, sizeof(l));
	memcpy(&l, p, n < sizeof(l) ? n : sizeof(l));
	l.dc[sizeof(l.dc) - 1] = '\0';
	l.addr[sizeof(l.addr) - 1] = '\0';
	j = topo_leader_encode(&l, &err);
	if (j) {
		free(j);
		leader_round(&l);
	} else {
		check(err != FR_OK);
	}
}

/* ------------------------------------------------------------------------
 * Model
 * ---------------------------------------------------------------------- */

static void model_round(const struct shard_model_def *def)
{
	struct shard_model_def *d2 = malloc(sizeof(*d2));
	enum fr_err err;
	char *j1, *j2;

	if (!d2)
		return;
	j1 = topo_model_encode(def, &err);
	check(j1 != NULL && err == FR_OK);
	memset(d2, SENTINEL, sizeof(*d2));
	check(topo_model_decode(def->name, j1, strlen(j1), d2) == FR_OK);
	check(topo_model_eq(def, d2));
	j2 = topo_model_encode(d2, &err);
	check(j2 != NULL && strcmp(j1, j2) == 0);
	free(j1);
	free(j2);
	free(d2);
}

static void model_decode(const char *name, const uint8_t *p, size_t n)
{
	struct shard_model_def *def = malloc(sizeof(*def));
	enum fr_err err;

	if (!def)
		return;
	memset(def, SENTINEL, sizeof(*def));
	fr_errclear();
	err = topo_model_decode(name, (const char *)p, n, def);
	if (err == FR_OK) {
		check(strcmp(def->name, name) == 0);
		model_round(def);
	} else {
		failed(err, def, sizeof(*def));
	}
	free(def);
}

/* "name\n{json}": the znode name is everything before the first '\n'. */
static void model_decode_named(const uint8_t *p, size_t n)
{
	const uint8_t *nl = memchr(p, '\n', n);
	size_t nlen = nl ? (size_t)(nl - p) : n;
	char *name = cstr(p, nlen);

	if (!name)
		return;
	model_decode(name, p + nlen + (nl ? 1 : 0), n - nlen - (nl ? 1 : 0));
	free(name);
}

static void model_encode(const uint8_t *p, size_t n)
{
	struct shard_model_def *def = calloc(1, sizeof(*def));
	enum fr_err err;
	char *j;

	if (!def)
		return;
	memcpy(def, p, n < sizeof(*def) ? n : sizeof(*def));
	def->name[sizeof(def->name) - 1] = '\0';
	for (uint32_t i = 0; i < SHARD_TABLES_MAX; i++)
		def->tables[i].name[sizeof(def->tables[i].name) - 1] = '\0';
	j = topo_model_encode(def, &err);
	if (j) {
		free(j);
		model_round(def);
	} else {
		check(err != FR_OK);
	}
	free(def);
}

/* ------------------------------------------------------------------------
 * Election
 * ---------------------------------------------------------------------- */

static void election_parse(const uint8_t *p, size_t n)
{
	char *s = cstr(p, n);
	char canon[64];
	uint32_t id, id2;
	uint64_t gen, seq, gen2, seq2;
	int len;

	if (!s)
		return;
	if (topo_election_parse(s, &id, &gen, &seq) == FR_OK) {
		/* Fits the predecessor buffer topology.h promises. */
		check(strlen(s) < PRED_CAP);
		check(id >= 1 && id != UINT32_MAX && seq < 10000000000ull);
		len = snprintf(canon, sizeof(canon), "n_%" PRIu32 "_%" PRIu64
			       "_%010" PRIu64, id, gen, seq);
		check(len > 0 && (size_t)len < sizeof(canon));
		check(topo_election_parse(canon, &id2, &gen2, &seq2) == FR_OK);
		check(id2 == id && gen2 == gen && seq2 == seq);
	}
	free(s);
}

static void election_rank(const uint8_t *p, size_t n)
{
	char **lines = calloc(RANK_MAX, sizeof(*lines));
	char *pred = malloc(PRED_CAP);
	uint32_t nl = 0, rank = UINT32_MAX, id, below = 0;
	uint64_t gen, myseq = 0, sq, pseq;
	bool mine_ok, found = false;
	size_t off = 0;
	enum fr_err err;

	if (!lines || !pred)
		goto out;
	while (off <= n && nl < RANK_MAX) {
		const uint8_t *e = memchr(p + off, '\n', n - off);
		size_t len = e ? (size_t)(e - (p + off)) : n - off;

		lines[nl] = cstr(p + off, len);
		if (!lines[nl])
			goto out;
		nl++;
		off += len + 1;
	}
	mine_ok = topo_election_parse(lines[0], &id, &gen, &myseq) == FR_OK;
	/* What the answer must be, counted independently. */
	for (uint32_t i = 1; i < nl; i++) {
		if (topo_election_parse(lines[i], &id, &gen, &sq) != FR_OK)
			continue;
		if (strcmp(lines[i], lines[0]) == 0)
			found = true;
		else if (sq < myseq)
			below++;
	}
	memset(pred, SENTINEL, PRED_CAP);
	err = topo_election_rank((const char *const *)(lines + 1), nl - 1,
				 lines[0], &rank, pred, PRED_CAP);
	if (!mine_ok) {
		check(err == FR_ERR_INVAL);
	} else if (!found) {
		check(err == FR_ERR_NOTFOUND);
	} else {
		check(err == FR_OK);
		check(rank == below);
		if (rank > 0) {
			/* pred is a child below us, and none below is
			 * closer. */
			check(memchr(pred, '\0', PRED_CAP) != NULL);
			check(topo_election_parse(pred, &id, &gen, &pseq) ==
			      FR_OK);
			check(pseq < myseq && strcmp(pred, lines[0]) != 0);
			found = false;
			for (uint32_t i = 1; i < nl; i++) {
				if (topo_election_parse(lines[i], &id, &gen,
							&sq) != FR_OK ||
				    strcmp(lines[i], lines[0]) == 0)
					continue;
				check(!(sq < myseq && sq > pseq));
				if (strcmp(lines[i], pred) == 0)
					found = true;
			}
			check(found);
		}
	}
out:
	if (lines)
		for (uint32_t i = 0; i < nl; i++)
			free(lines[i]);
	free(lines);
	free(pred);
}

/* ------------------------------------------------------------------------
 * Rollback directives
 * ---------------------------------------------------------------------- */

/* d was accepted: the rules hold, and it survives a round trip. */
static void rollback_round(const struct topo_rollback *d)
{
	struct topo_rollback d2;
	enum fr_err err;
	char *j1, *j2;

	check(d->t >= 1 && d->t < d->r && d->r <= (uint64_t)INT64_MAX);
	j1 = topo_rollback_encode(d, &err);
	check(j1 != NULL && err == FR_OK);
	memset(&d2, SENTINEL, sizeof(d2));
	check(topo_rollback_decode(d->seq, j1, strlen(j1), &d2) == FR_OK);
	check(topo_rollback_eq(d, &d2));
	j2 = topo_rollback_encode(&d2, &err);
	check(j2 != NULL && strcmp(j1, j2) == 0);
	free(j1);
	free(j2);
}

static void rollback_decode(const uint8_t *p, size_t n)
{
	struct topo_rollback d;
	uint64_t seq;
	enum fr_err err;

	if (n < 1)
		return;
	seq = p[0] == 0xff ? 10000000000ull : p[0];
	memset(&d, SENTINEL, sizeof(d));
	fr_errclear();
	err = topo_rollback_decode(seq, (const char *)p + 1, n - 1, &d);
	if (err == FR_OK) {
		check(seq < 10000000000ull);
		check(d.seq == seq && d.epoch == seq + 1);
		rollback_round(&d);
	} else {
		failed(err, &d, sizeof(d));
	}
}

static void rollback_encode(const uint8_t *p, size_t n)
{
	struct topo_rollback d;
	enum fr_err err;
	char *j;

	memset(&d, 0, sizeof(d));
	memcpy(&d, p, n < sizeof(d) ? n : sizeof(d));
	d.seq %= 10000000000ull;   /* as only a name can give */
	d.epoch = d.seq + 1;
	j = topo_rollback_encode(&d, &err);
	if (j) {
		free(j);
		rollback_round(&d);
	} else {
		check(err != FR_OK);
	}
}

static void rollback_name(const uint8_t *p, size_t n)
{
	char *s = cstr(p, n);
	char canon[16];
	uint64_t seq = 12345;

	if (!s)
		return;
	if (topo_rollback_parse_name(s, &seq) == FR_OK) {
		/* Exactly one spelling per number. */
		check(seq <= 9999999999ull);
		snprintf(canon, sizeof(canon), "r_%010" PRIu64, seq);
		check(strcmp(canon, s) == 0);
	} else {
		check(seq == 12345);
	}
	free(s);
}

/* ------------------------------------------------------------------------
 * Health
 * ---------------------------------------------------------------------- */

static void health_round(const struct topo_health *h)
{
	struct topo_health *h2 = malloc(sizeof(*h2));
	enum fr_err err;
	char *j1, *j2;

	if (!h2)
		return;
	check(h->nhistory <= TOPO_HISTORY_MAX);
	j1 = topo_health_encode(h, &err);
	check(j1 != NULL && err == FR_OK);
	memset(h2, SENTINEL, sizeof(*h2));
	check(topo_health_decode(j1, strlen(j1), h2) == FR_OK);
	check(topo_health_eq(h, h2));
	j2 = topo_health_encode(h2, &err);
	check(j2 != NULL && strcmp(j1, j2) == 0);
	free(j1);
	free(j2);
	free(h2);
}

static void health_decode(const uint8_t *p, size_t n)
{
	struct topo_health *h = malloc(sizeof(*h));
	enum fr_err err;

	if (!h)
		return;
	memset(h, SENTINEL, sizeof(*h));
	fr_errclear();
	err = topo_health_decode((const char *)p, n, h);
	if (err == FR_OK)
		health_round(h);
	else
		failed(err, h, sizeof(*h));
	free(h);
}

static void health_encode(const uint8_t *p, size_t n)
{
	struct topo_health *h = calloc(1, sizeof(*h));
	enum fr_err err;
	char *j;

	if (!h)
		return;
	memcpy(h, p, n < sizeof(*h) ? n : sizeof(*h));
	j = topo_health_encode(h, &err);
	if (j) {
		free(j);
		health_round(h);
		/* A push keeps what was valid valid, history bounded. */
		topo_health_push(h, TOPO_CORRUPTED, "witness@fuzz", "probe",
				 h->at_ms);
		check(h->nhistory <= TOPO_HISTORY_MAX);
		check(h->state == TOPO_CORRUPTED);
		health_round(h);
	} else {
		check(err != FR_OK);
	}
	free(h);
}

/* ------------------------------------------------------------------------
 * Role overrides
 * ---------------------------------------------------------------------- */

static void roles_round(const struct topo_role_override *o, uint32_t n)
{
	struct topo_role_override *o2 = malloc(TOPO_ROLE_OVERRIDES_MAX *
					       sizeof(*o2));
	enum fr_err err;
	uint32_t n2 = 0;
	char *j1, *j2;

	if (!o2)
		return;
	j1 = topo_roles_encode(o, n, &err);
	check(j1 != NULL && err == FR_OK);
	check(topo_roles_decode(j1, strlen(j1), o2, TOPO_ROLE_OVERRIDES_MAX,
				&n2) == FR_OK);
	check(n2 == n);
	for (uint32_t i = 0; i < n2; i++) {
		check(i == 0 || o2[i - 1].node_id < o2[i].node_id);
		check(topo_role_valid(o2[i].role));
	}
	j2 = topo_roles_encode(o2, n2, &err);
	check(j2 != NULL && strcmp(j1, j2) == 0);
	free(j1);
	free(j2);
	free(o2);
}

static void roles_decode(const uint8_t *p, size_t n)
{
	struct topo_role_override *o = malloc(TOPO_ROLE_OVERRIDES_MAX *
					      sizeof(*o));
	uint32_t cap, cnt = 77;
	enum fr_err err;

	if (!o || n < 1) {
		free(o);
		return;
	}
	cap = p[0] == 0xff ? TOPO_ROLE_OVERRIDES_MAX : p[0];
	memset(o, SENTINEL, TOPO_ROLE_OVERRIDES_MAX * sizeof(*o));
	fr_errclear();
	err = topo_roles_decode((const char *)p + 1, n - 1, o, cap, &cnt);
	if (err == FR_OK) {
		check(cnt <= cap && cnt <= TOPO_ROLE_OVERRIDES_MAX);
		/* Nothing written past what it says it wrote. */
		for (size_t i = cnt * sizeof(*o);
		     i < TOPO_ROLE_OVERRIDES_MAX * sizeof(*o); i++)
			check(((const uint8_t *)o)[i] == SENTINEL);
		roles_round(o, cnt);
	} else if (err == FR_ERR_RANGE) {
		check(cnt == 77 && fr_errmsg()[0] != '\0');
		for (size_t i = 0; i < TOPO_ROLE_OVERRIDES_MAX * sizeof(*o);
		     i++)
			check(((const uint8_t *)o)[i] == SENTINEL);
	} else {
		check(cnt == 77);
		failed(err, o, TOPO_ROLE_OVERRIDES_MAX * sizeof(*o));
	}
	free(o);
}

static void roles_encode(const uint8_t *p, size_t n)
{
	struct topo_role_override o[8];
	uint32_t cnt;
	enum fr_err err;
	char *j;

	if (n < 1)
		return;
	memset(o, 0, sizeof(o));
	cnt = p[0] % 10;   /* 9 entries: one past the room, refused */
	memcpy(o, p + 1, n - 1 < sizeof(o) ? n - 1 : sizeof(o));
	j = topo_roles_encode(o, cnt > 8 ? 8 : cnt, &err);
	if (j) {
		free(j);
		roles_round(o, cnt > 8 ? 8 : cnt);
	} else {
		check(err != FR_OK);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + 1;
	size_t n;
	uint8_t *copy;

	if (size < 1)
		return 0;
	/* An exact-size copy: the decoders get no NUL after the bytes. */
	n = size - 1;
	copy = malloc(n ? n : 1);
	if (!copy)
		return 0;
	memcpy(copy, p, n);
	switch (data[0] % 16) {
	case 0:
		member_decode(copy, n);
		break;
	case 1:
		leader_decode(copy, n);
		break;
	case 2:
		model_decode("ctr", copy, n);
		break;
	case 3:
		model_decode_named(copy, n);
		break;
	case 4:
		election_parse(copy, n);
		break;
	case 5:
		election_rank(copy, n);
		break;
	case 6:
		member_encode(copy, n);
		break;
	case 7:
		leader_encode(copy, n);
		break;
	case 8:
		model_encode(copy, n);
		break;
	case 9:
		rollback_decode(copy, n);
		break;
	case 10:
		rollback_name(copy, n);
		break;
	case 11:
		health_decode(copy, n);
		break;
	case 12:
		roles_decode(copy, n);
		break;
	case 13:
		rollback_encode(copy, n);
		break;
	case 14:
		health_encode(copy, n);
		break;
	default:
		roles_encode(copy, n);
		break;
	}
	free(copy);
	return 0;
}
