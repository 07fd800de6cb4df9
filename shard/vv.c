/*
 * vv.c — version vectors: per origin node, the highest version a shard
 * holds without a gap (docs/design.md §3).
 *
 * A vector is a small array sorted by origin, usually one or two entries,
 * so lookups are a binary search and inserts a memmove.  The vector itself
 * never decides when to advance: the store advances it by a batch's covers
 * and nothing else.  Not thread-safe; the owner of the store owns these.
 */
#include <stdlib.h>
#include <string.h>

#include "shard/shard_int.h"

void shard_vv_init(struct shard_vv *vv)
{
	vv->n = 0;
	vv->cap = 0;
	vv->e = NULL;
}

void shard_vv_fini(struct shard_vv *vv)
{
	if (!vv)
		return;
	free(vv->e);
	shard_vv_init(vv);
}

/* Index of the first entry with origin >= origin. */
static uint32_t vv_lower(const struct shard_vv *vv, uint32_t origin)
{
	uint32_t lo = 0, hi = vv->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (vv->e[mid].origin < origin)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t shard_vv_get(const struct shard_vv *vv, uint32_t origin)
{
	uint32_t i;

	if (!vv || vv->n == 0)
		return 0;
	i = vv_lower(vv, origin);
	return i < vv->n && vv->e[i].origin == origin ? vv->e[i].version : 0;
}

static enum fr_err vv_reserve(struct shard_vv *vv, uint32_t want)
{
	struct shard_vv_ent *e;
	uint32_t cap;

	if (want <= vv->cap)
		return FR_OK;
	cap = vv->cap ? vv->cap * 2 : 2;
	while (cap < want)
		cap *= 2;
	if (cap > SHARD_VV_MAX)
		cap = SHARD_VV_MAX;
	e = realloc(vv->e, (size_t)cap * sizeof(*e));
	if (!e)
		return fr_fail(FR_ERR_NOMEM, "version vector: %u entries", cap);
	vv->e = e;
	vv->cap = cap;
	return FR_OK;
}

enum fr_err shard_vv_advance(struct shard_vv *vv, uint32_t origin,
			     uint64_t version)
{
	uint32_t i = vv_lower(vv, origin);
	enum fr_err err;

	if (i < vv->n && vv->e[i].origin == origin) {
		if (version > vv->e[i].version)
			vv->e[i].version = version;
		return FR_OK;
	}
	/* An absent origin reads as 0, so advancing it to 0 changes nothing
	 * and must not add an entry (entries are part of the digest). */
	if (version == 0)
		return FR_OK;
	if (vv->n >= SHARD_VV_MAX)
		return fr_fail(FR_ERR_TOOBIG,
			       "version vector: origin %u would be entry %u; at most %d origins per shard",
			       origin, vv->n + 1, SHARD_VV_MAX);
	err = vv_reserve(vv, vv->n + 1);
	if (err)
		return err;
	memmove(&vv->e[i + 1], &vv->e[i], (size_t)(vv->n - i) * sizeof(*vv->e));
	vv->e[i].origin = origin;
	vv->e[i].version = version;
	vv->n++;
	return FR_OK;
}

void shard_vv_clamp(struct shard_vv *vv, uint32_t origin, uint64_t lim)
{
	uint32_t i = vv_lower(vv, origin);

	if (i >= vv->n || vv->e[i].origin != origin || vv->e[i].version <= lim)
		return;
	if (lim > 0) {
		vv->e[i].version = lim;
		return;
	}
	/* A vector never holds a 0 entry: it would read like an absent one
	 * but hash differently in a digest. */
	memmove(&vv->e[i], &vv->e[i + 1],
		(size_t)(vv->n - i - 1) * sizeof(*vv->e));
	vv->n--;
}

enum fr_err shard_vv_copy(struct shard_vv *dst, const struct shard_vv *src)
{
	enum fr_err err;

	if (dst == src)
		return FR_OK;
	err = vv_reserve(dst, src->n);
	if (err)
		return err;
	if (src->n)
		memcpy(dst->e, src->e, (size_t)src->n * sizeof(*src->e));
	dst->n = src->n;
	return FR_OK;
}

/*
 * Entries at version 0 and absent entries mean the same thing, so
 * comparisons go through shard_vv_get semantics rather than memcmp: a
 * vector clamped down to 0 by a rollback equals one that never had the
 * origin.
 */
bool shard_vv_equal(const struct shard_vv *a, const struct shard_vv *b)
{
	return shard_vv_dominates(a, b) && shard_vv_dominates(b, a);
}

bool shard_vv_dominates(const struct shard_vv *a, const struct shard_vv *b)
{
	uint32_t i = 0;

	/* Merge walk: both are sorted by origin. */
	for (uint32_t j = 0; j < b->n; j++) {
		while (i < a->n && a->e[i].origin < b->e[j].origin)
			i++;
		if (i < a->n && a->e[i].origin == b->e[j].origin) {
			if (a->e[i].version < b->e[j].version)
				return false;
		} else if (b->e[j].version > 0) {
			return false;
		}
	}
	return true;
}
