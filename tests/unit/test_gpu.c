/*
 * test_gpu.c — CUnit suite for gpu/: the shared backend vectors run on the
 * CPU backend, backend choice by name, the CUDA device probe, and what is
 * particular to the CPU backend (huge-page-sized tables, the streaming
 * path at scale).
 *
 * What is not here: the CUDA backend's run of the vectors and its own
 * cases (test_gpu_cuda.c, label "cuda").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <CUnit/Basic.h>

#include "gpu/gpu.h"
#include "gpu_vectors.h"
#include "unit_main.h"

/* ------------------------------------------------------------------------
 * Backend choice
 * ---------------------------------------------------------------------- */

static void test_select_cpu(void)
{
	const struct gpu_backend *be = NULL;

	CU_ASSERT_EQUAL(gpu_backend_select("cpu", &be), FR_OK);
	CU_ASSERT_PTR_EQUAL(be, gpu_backend_cpu());
	CU_ASSERT_STRING_EQUAL(be->name, "cpu");
}

static void test_select_cuda(void)
{
	const struct gpu_backend *be = gpu_backend_cpu();
	enum fr_err e = gpu_backend_select("cuda", &be);

	if (gpu_backend_cuda() && gpu_cuda_device_count() > 0) {
		CU_ASSERT_EQUAL(e, FR_OK);
		CU_ASSERT_PTR_EQUAL(be, gpu_backend_cuda());
		CU_ASSERT_STRING_EQUAL(be->name, "cuda");
		return;
	}
	/* No CUDA in the build, or no device: refused, saying why. */
	CU_ASSERT_EQUAL(e, FR_ERR_UNSUPPORTED);
	CU_ASSERT_PTR_NULL(be);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "cuda"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), gpu_backend_cuda() ?
				      "no CUDA device" : "no CUDA support"));
}

static void test_select_bogus(void)
{
	const struct gpu_backend *be = gpu_backend_cpu();

	CU_ASSERT_EQUAL(gpu_backend_select("bogus", &be), FR_ERR_INVAL);
	CU_ASSERT_PTR_NULL(be);
	CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), "bogus"));
	CU_ASSERT_EQUAL(gpu_backend_select("", &be), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(gpu_backend_select("CPU", &be), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(gpu_backend_select(NULL, &be), FR_ERR_INVAL);
}

static size_t count_substr(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* "auto" picks cuda only with a backend and a device (so cpu here), and
 * says what it chose and why, once, through fr_log. */
static void test_select_auto_logs_once(void)
{
	const char *dir = getenv("FRESHET_TEST_TMP");
	const struct gpu_backend *a = NULL, *b = NULL, *want;
	char path[4096], buf[4096], line[64];
	ssize_t len;
	int fd;

	if (!dir || (mkdir(dir, 0700) != 0 && errno != EEXIST))
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/test_gpu_log.XXXXXX", dir);
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	fr_log_set_level(FR_LOG_INFO);
	fr_log_set_fd(fd);
	CU_ASSERT_EQUAL(gpu_backend_select("auto", &a), FR_OK);
	CU_ASSERT_EQUAL(gpu_backend_select("auto", &b), FR_OK);
	fr_log_set_fd(2);
	want = gpu_backend_cuda() && gpu_cuda_device_count() > 0 ?
	       gpu_backend_cuda() : gpu_backend_cpu();
	CU_ASSERT_PTR_EQUAL(a, want);
	CU_ASSERT_PTR_EQUAL(b, want);

	len = pread(fd, buf, sizeof(buf) - 1, 0);
	CU_ASSERT_FATAL(len > 0);
	buf[len] = '\0';
	snprintf(line, sizeof(line), "backend auto: using %s", want->name);
	CU_ASSERT_EQUAL(count_substr(buf, line), 1);
	CU_ASSERT_EQUAL(count_substr(buf, "backend auto:"), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "gpu: "));
	close(fd);
	unlink(path);
}

static void test_device_count(void)
{
	int n = gpu_cuda_device_count();

	CU_ASSERT(n >= 0);
	CU_ASSERT_EQUAL(gpu_cuda_device_count(), n);
	/* Without the driver's device nodes there can be no device, whether
	 * or not this build has CUDA (and the probe must not crash). */
	if (access("/dev/nvidiactl", F_OK) != 0 &&
	    access("/dev/nvidia0", F_OK) != 0)
		CU_ASSERT_EQUAL(n, 0);
}

static void test_wrappers_null(void)
{
	struct gpu_table_desc d = { .name = "t", .rows = 1, .dim = 1,
				    .dtype = GPU_F32 };
	enum fr_err e = FR_OK;

	gpu_table_free(NULL);
	CU_ASSERT_PTR_NULL(gpu_table_new(NULL, &d, &e));
	CU_ASSERT_EQUAL(e, FR_ERR_INVAL);
	CU_ASSERT_PTR_NULL(gpu_table_new(gpu_backend_cpu(), NULL, &e));
	CU_ASSERT_EQUAL(e, FR_ERR_INVAL);
}

/* ------------------------------------------------------------------------
 * CPU backend at a size that takes the huge-page path
 * ---------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A 4-8 MiB table, a batch of distinct rows in random order (the fast
 * path) and a batch with repeats (the resolving path), checked against a
 * plain copy by gather and checksum. */
static void cpu_check_large(uint32_t dim)
{
	const uint64_t rows = 16384;
	struct gpu_table_desc d = { .name = "large", .rows = rows, .dim = dim,
				    .dtype = GPU_F32 };
	size_t rb = (size_t)dim * 4, n = 6000, i;
	uint64_t seed = 0x5eed + dim, sum = 0;
	uint64_t *perm = malloc(rows * sizeof(*perm));
	uint64_t *vers = malloc(n * sizeof(*vers));
	uint8_t *model = calloc(rows, rb);
	uint8_t *vals = malloc(n * rb), *out = malloc(rows * rb);
	enum fr_err e = FR_ERR_INVAL;
	struct gpu_table *t;

	CU_ASSERT_FATAL(perm && vers && model && vals && out);
	t = gpu_table_new(gpu_backend_cpu(), &d, &e);
	CU_ASSERT_EQUAL_FATAL(e, FR_OK);

	for (i = 0; i < rows; i++)
		perm[i] = i;
	for (i = 0; i < n; i++) {
		size_t j = i + rng_next(&seed) % (rows - i);
		uint64_t x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	for (i = 0; i < n * rb; i++)
		vals[i] = (uint8_t)rng_next(&seed);
	CU_ASSERT_EQUAL(gpu_apply(t, perm, NULL, vals, n), FR_OK);
	for (i = 0; i < n; i++)
		memcpy(model + perm[i] * rb, vals + i * rb, rb);

	/* Second batch: rows 0..n/2 each twice, the first copy with the
	 * higher version, so the earlier entry must win. */
	for (i = 0; i < n; i++) {
		perm[i] = i / 2;
		vers[i] = (i % 2) ? 1 : 2;
		vals[i * rb] = (uint8_t)i;
	}
	CU_ASSERT_EQUAL(gpu_apply(t, perm, vers, vals, n), FR_OK);
	for (i = 0; i < n; i += 2)
		memcpy(model + perm[i] * rb, vals + i * rb, rb);

	/* Third: distinct rows, versions falling (no repeat to resolve). */
	for (i = 0; i < n; i++) {
		perm[i] = rows - 1 - 2 * i;
		vers[i] = n - i;
		vals[i * rb] = (uint8_t)(i + 1);
	}
	CU_ASSERT_EQUAL(gpu_apply(t, perm, vers, vals, n), FR_OK);
	for (i = 0; i < n; i++)
		memcpy(model + perm[i] * rb, vals + i * rb, rb);

	for (i = 0; i < rows; i++)
		perm[i] = i;
	CU_ASSERT_EQUAL(gpu_gather(t, perm, rows, out), FR_OK);
	CU_ASSERT(memcmp(out, model, rows * rb) == 0);
	CU_ASSERT_EQUAL(gpu_checksum(t, &sum), FR_OK);
	CU_ASSERT_EQUAL(sum, XXH3_64bits(model, rows * rb));
	CU_ASSERT(memcmp(gpu_table_host_bytes(t), model, rows * rb) == 0);

	gpu_table_free(t);
	free(out);
	free(vals);
	free(model);
	free(vers);
	free(perm);
}

static void test_cpu_large_lines(void)
{
	cpu_check_large(128);   /* 512-byte rows: streaming stores */
}

static void test_cpu_large_odd(void)
{
	cpu_check_large(65);    /* 260-byte rows: memcpy path */
}

static const struct fr_unit_test select_tests[] = {
	{ "cpu", test_select_cpu },
	{ "cuda when available, else refused", test_select_cuda },
	{ "bogus names", test_select_bogus },
	{ "auto picks cpu, logs once", test_select_auto_logs_once },
	{ "cuda device count", test_device_count },
	{ "NULL arguments", test_wrappers_null },
};

static const struct fr_unit_test cpu_tests[] = {
	{ "large table, line-sized rows", test_cpu_large_lines },
	{ "large table, odd rows", test_cpu_large_odd },
};

/* Three CUnit suites in one registry: the shared vectors, then backend
 * choice, then the CPU backend's own cases. */
int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return FR_UNIT_EXIT_SETUP;
	if (!gpu_vectors_add_suite(gpu_backend_cpu()) ||
	    !fr_unit_add_suite("select", NULL, NULL, select_tests,
			       FR_UNIT_COUNT(select_tests)) ||
	    !fr_unit_add_suite("cpu", NULL, NULL, cpu_tests,
			       FR_UNIT_COUNT(cpu_tests))) {
		CU_cleanup_registry();
		return FR_UNIT_EXIT_SETUP;
	}
	return fr_unit_run_all();
}
