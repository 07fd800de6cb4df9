/*
 * hlc.c — the hybrid logical clock that stamps row versions, and the raw
 * clock readers.
 *
 * A version packs 48 bits of wall-clock milliseconds over a 16-bit logical
 * counter.  The physical part follows the wall clock when it moves forward;
 * when it stands still or steps back, the packed value is simply bumped by
 * one, and a counter that overflows carries into the millisecond field.
 * That keeps versions strictly rising on one node and close to real time
 * across nodes.  The clock has no lock: the loop thread owns it.  Ordering
 * ties between nodes (by node id) is the caller's business, not this file's.
 */
#include <time.h>

#include "common/common.h"

#define FR_HLC_DEFAULT_DRIFT_MS 60000u

uint64_t fr_wall_ms(void *unused)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t fr_mono_ms(void)
{
	return fr_mono_ns() / 1000000u;
}

uint64_t fr_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void fr_hlc_init(struct fr_hlc *c, uint32_t node_id, fr_clock_fn now_ms,
		 void *clock_arg, uint64_t max_drift_ms)
{
	c->last = 0;
	c->node_id = node_id;
	c->max_drift_ms = max_drift_ms ? max_drift_ms : FR_HLC_DEFAULT_DRIFT_MS;
	c->now_ms = now_ms ? now_ms : fr_wall_ms;
	c->clock_arg = clock_arg;
}

uint64_t fr_hlc_now(struct fr_hlc *c)
{
	uint64_t phys = c->now_ms(c->clock_arg);

	if (phys > FR_HLC_PHYS(c->last))
		c->last = FR_HLC_MAKE(phys, 0);
	else
		c->last++;	/* logical overflow carries into the ms field */
	return c->last;
}

enum fr_err fr_hlc_observe(struct fr_hlc *c, uint64_t remote)
{
	uint64_t phys = c->now_ms(c->clock_arg);
	uint64_t horizon;

	if (!fr_add_size(phys, c->max_drift_ms, &horizon))
		horizon = UINT64_MAX;
	if (FR_HLC_PHYS(remote) > horizon)
		return fr_fail(FR_ERR_RANGE,
			       "remote version %llu: physical time %llu ms is "
			       "more than %llu ms ahead of local %llu ms",
			       (unsigned long long)remote,
			       (unsigned long long)FR_HLC_PHYS(remote),
			       (unsigned long long)c->max_drift_ms,
			       (unsigned long long)phys);
	/* Remembering the remote version is enough: the next now() is
	 * either a later millisecond or this value plus one. */
	if (remote > c->last)
		c->last = remote;
	return FR_OK;
}
