/*
 * testutil.h — small helpers several unit suites share: "does this text
 * (or the thread's fr_errmsg detail) contain that" checks which say on
 * stderr what they got when the answer is no, and the deterministic
 * xorshift64* stream the property and mutation tests draw from.
 *
 * Not here: CUnit registration and main() (unit_main.h), or fixtures of
 * one module (shard_testutil.h for the shard store).  Header-only (static
 * inline), so a suite that includes it needs no CMake change; each
 * including file gets its own rng_state.
 */
#ifndef FRESHET_TEST_TESTUTIL_H
#define FRESHET_TEST_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"

/* True when s contains needle; otherwise prints both, so a failed
 * CU_ASSERT(str_has(...)) shows what the text really said. */
static inline bool str_has(const char *s, const char *needle)
{
	if (strstr(s, needle))
		return true;
	fprintf(stderr, "\n  \"%s\" lacks \"%s\"\n", s, needle);
	return false;
}

/* str_has on this thread's error detail (fr_errmsg()). */
static inline bool errmsg_has(const char *needle)
{
	if (strstr(fr_errmsg(), needle))
		return true;
	fprintf(stderr, "\n  detail \"%s\" lacks \"%s\"\n", fr_errmsg(),
		needle);
	return false;
}

/* xorshift64*: deterministic across runs and platforms.  A test that needs
 * its own sequence assigns rng_state first (a state of 0 stays 0). */
static uint64_t rng_state;

static inline uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

/* A draw in [0, n); n > 0.  Modulo bias is irrelevant for tests. */
static inline uint64_t rnd(uint64_t n)
{
	return rng() % n;
}

#endif /* FRESHET_TEST_TESTUTIL_H */
