/*
 * gpu.h — the one public header of freshet's gpu/ module: embedding-table
 * backends behind one plain-C interface.
 *
 * A backend is a table of function pointers chosen at run time (as SQLite
 * picks its mutex implementation): "cpu" is always built; "cuda" exists
 * when the build found nvcc (FRESHET_CUDA) and is chosen when a device is
 * present.  Callers see only struct gpu_table and enum fr_err; no CUDA type
 * crosses this header.
 *
 * A table holds rows * dim elements of its dtype (f32 or f16), row-major by
 * row id, zero at creation.  Values passed in and out are in the table's
 * dtype (convert with fr_f32_to_f16_n when needed).  The host shard store
 * decides last-writer-wins; a table only mirrors it, but an apply batch may
 * still hold one row several times: the entry with the highest version
 * wins, and among equal versions the later entry.
 *
 * Threads: a table is used by one thread at a time.  Every call is
 * synchronous: when it returns, an apply is visible to every later gather.
 *
 * The cuda backend (docs/gpu.md) keeps that promise with one CUDA stream
 * per table rather than by waiting: apply and restore return once the
 * batch is copied into pinned staging memory (the caller may reuse its
 * arrays at once) and the device work follows on the stream; gather and
 * checksum run on the same stream and wait for it, so they see every
 * earlier apply whole.  A CUDA error in work already queued is reported
 * by the next call on that table.  Any CUDA error is FR_ERR_GPU, with the
 * runtime's text in the detail and logged once; the table's contents are
 * then unknown, and every later call on it fails the same way: free it
 * and build it again from the host store.  A cuda table may move between
 * threads (each call makes its device current), never be used by two.
 */
#ifndef FRESHET_GPU_H
#define FRESHET_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

enum gpu_dtype {
	GPU_F32 = 1,   /* same values as enum shard_dtype */
	GPU_F16 = 2,
};

struct gpu_table_desc {
	const char *name;       /* for messages; borrowed */
	uint64_t rows;
	uint32_t dim;
	enum gpu_dtype dtype;
	int device;             /* device ordinal for cuda; ignored by cpu */
	uint64_t budget_bytes;  /* refuse tables above this; 0: no limit */
};

struct gpu_table;

/* The backend interface.  Each op returns FR_OK or an fr_err and leaves the
 * table unchanged on a validation error (bad row id, n too large). */
struct gpu_backend {
	const char *name;   /* "cpu", "cuda" */
	/* Create a zeroed table; NULL with *err on failure (FR_ERR_TOOBIG when
	 * it does not fit the budget or the device; detail names the table,
	 * the bytes needed and the bytes free). */
	struct gpu_table *(*table_new)(const struct gpu_table_desc *d,
				       enum fr_err *err);
	void (*table_free)(struct gpu_table *t);
	/* Write n rows: rows[i] gets values + i * row_bytes.  versions may be
	 * NULL (then later entries win).  Any row id >= rows is FR_ERR_RANGE
	 * and nothing is written. */
	enum fr_err (*apply)(struct gpu_table *t, const uint64_t *rows,
			     const uint64_t *versions, const void *values,
			     size_t n);
	/* Read n rows into out (n * row_bytes).  Out-of-range id: FR_ERR_RANGE,
	 * out untouched. */
	enum fr_err (*gather)(struct gpu_table *t, const uint64_t *rows,
			      size_t n, void *out);
	/* Overwrite rows unconditionally (rollback restores older values). */
	enum fr_err (*restore)(struct gpu_table *t, const uint64_t *rows,
			       const void *values, size_t n);
	/* XXH3-64 over the whole table's bytes, row-major: equal across
	 * backends for equal contents. */
	enum fr_err (*checksum)(struct gpu_table *t, uint64_t *out);
};

/* The always-present CPU backend. */
const struct gpu_backend *gpu_backend_cpu(void);
/* The CUDA backend, or NULL when this build has none. */
const struct gpu_backend *gpu_backend_cuda(void);
/* Number of CUDA devices usable now (0 without a build or a device). */
int gpu_cuda_device_count(void);
/* Pick by name: "cpu", "cuda" (FR_ERR_UNSUPPORTED if unavailable) or
 * "auto" (cuda when a device is present, else cpu, logged once). */
enum fr_err gpu_backend_select(const char *name,
			       const struct gpu_backend **out);

/* Convenience wrappers that dispatch through the table's backend. */
struct gpu_table *gpu_table_new(const struct gpu_backend *be,
				const struct gpu_table_desc *d,
				enum fr_err *err);
void gpu_table_free(struct gpu_table *t);
enum fr_err gpu_apply(struct gpu_table *t, const uint64_t *rows,
		      const uint64_t *versions, const void *values, size_t n);
enum fr_err gpu_gather(struct gpu_table *t, const uint64_t *rows, size_t n,
		       void *out);
enum fr_err gpu_restore(struct gpu_table *t, const uint64_t *rows,
			const void *values, size_t n);
enum fr_err gpu_checksum(struct gpu_table *t, uint64_t *out);
size_t gpu_row_bytes(const struct gpu_table *t);
uint64_t gpu_table_rows(const struct gpu_table *t);
const struct gpu_backend *gpu_table_backend(const struct gpu_table *t);
/* The table's bytes when they live in host memory (the cpu backend), else
 * NULL.  Borrowed, valid until gpu_table_free.  For benchmarks that must
 * compare against raw memory of the same table; not a way to update it. */
void *gpu_table_host_bytes(struct gpu_table *t);

#endif /* FRESHET_GPU_H */
