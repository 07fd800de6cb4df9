/*
 * unit_main.h — the CUnit boilerplate every unit suite's main() shares:
 * create the registry, add a suite from a table of named tests, run it
 * verbosely, free the registry, and turn the outcome into an exit code.
 *
 * A suite with a single CUnit suite ends main() with
 *     return fr_unit_main("proto", NULL, NULL, tests, FR_UNIT_COUNT(tests));
 * after any setup of its own (log level, environment checks).  One that
 * registers several suites calls CU_initialize_registry, fr_unit_add_suite
 * for each and fr_unit_run_all itself.
 *
 * It is not an assertion library: the "detail contains" helpers are in
 * testutil.h.  Header-only (static inline) so each suite stays one
 * executable with no extra CMake source.
 */
#ifndef FRESHET_TEST_UNIT_MAIN_H
#define FRESHET_TEST_UNIT_MAIN_H

#include <stddef.h>

#include <CUnit/Basic.h>

/* Exit codes: CTest only tells zero from non-zero (77 is its skip code,
 * which suites return themselves); 2 keeps "could not even register the
 * tests" apart from "a test failed". */
#define FR_UNIT_EXIT_FAILED 1
#define FR_UNIT_EXIT_SETUP 2

#define FR_UNIT_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* One row of a suite's test table: CUnit's test name and function. */
struct fr_unit_test {
	const char *name;
	CU_TestFunc fn;
};

/* Add a suite named `name` (with optional init/fini, as CU_add_suite takes
 * them) holding tests[0..n) in table order.  The registry must exist.
 * Returns the suite, or NULL when CUnit refused any part of it; the
 * caller then cleans up the registry. */
static inline CU_pSuite fr_unit_add_suite(const char *name,
					  CU_InitializeFunc init,
					  CU_CleanupFunc fini,
					  const struct fr_unit_test *tests,
					  size_t n)
{
	CU_pSuite s = CU_add_suite(name, init, fini);

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!CU_add_test(s, tests[i].name, tests[i].fn))
			return NULL;
	return s;
}

/* Run every registered suite with CUnit's verbose basic interface, then
 * free the registry.  Returns 0 when all passed, FR_UNIT_EXIT_FAILED when
 * any assertion failed, any test failed, or a suite's init or cleanup
 * function failed (CUnit counts that last one apart from assertions). */
static inline int fr_unit_run_all(void)
{
	unsigned failed;

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
		 CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? FR_UNIT_EXIT_FAILED : 0;
}

/* The whole of a one-suite main(): registry, suite, run, exit code.
 * Returns FR_UNIT_EXIT_SETUP when CUnit could not register the tests,
 * otherwise what fr_unit_run_all returns. */
static inline int fr_unit_main(const char *name, CU_InitializeFunc init,
			       CU_CleanupFunc fini,
			       const struct fr_unit_test *tests, size_t n)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return FR_UNIT_EXIT_SETUP;
	if (!fr_unit_add_suite(name, init, fini, tests, n)) {
		CU_cleanup_registry();
		return FR_UNIT_EXIT_SETUP;
	}
	return fr_unit_run_all();
}

#endif /* FRESHET_TEST_UNIT_MAIN_H */
