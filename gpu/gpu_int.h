/*
 * gpu_int.h — private to gpu/: what every backend shares.  Not included
 * outside this folder.
 *
 * The helpers here (defined in gpu.c) hold the rules that must not differ
 * between backends: how a descriptor is validated and sized against its
 * budget, how row ids are range-checked, and which entry of a batch wins
 * when a row appears more than once.  A backend only moves bytes.
 */
#ifndef FRESHET_GPU_INT_H
#define FRESHET_GPU_INT_H

#include "gpu/gpu.h"

/* Every backend's table struct starts with this header so the wrappers in
 * gpu.c can dispatch and validate; backends define the rest privately. */
struct gpu_table_base {
	const struct gpu_backend *be;
	uint64_t rows;
	uint32_t dim;
	enum gpu_dtype dtype;
	size_t row_bytes;
	void *host_bytes;   /* the table in host memory, or NULL */
	char name[64];
};

/* Validate d (rows > 0, dim > 0, a known dtype) and size it: *row_bytes
 * and *bytes (the whole table) on FR_OK.  FR_ERR_INVAL for a bad field,
 * FR_ERR_TOOBIG when the size overflows or exceeds d->budget_bytes; the
 * detail names the table, the bytes needed and the budget. */
enum fr_err gpu_desc_check(const struct gpu_table_desc *d, size_t *row_bytes,
			   size_t *bytes);

/* Fill the shared header from a checked descriptor. */
void gpu_base_init(struct gpu_table_base *b, const struct gpu_backend *be,
		   const struct gpu_table_desc *d, size_t row_bytes);

/* Check that every id in rows[0..n) is < b->rows: FR_ERR_RANGE naming the
 * table, the first bad entry and its id otherwise.  Cheap (one streaming
 * pass); every op calls it before writing anything. */
enum fr_err gpu_rows_check(const struct gpu_table_base *b,
			   const uint64_t *rows, size_t n);

/* true when writing the entries in batch order already leaves every row
 * with the entry the header says wins: versions is NULL (later entries
 * win) or never decreases along the batch (the usual case: a batch drained
 * from the store in version order).  Then repeats need no detection. */
bool gpu_batch_in_order(const uint64_t *versions, size_t n);

/* A bitmap of one bit per table row, all clear between calls, to find
 * repeated rows in one linear pass.  Caller-owned storage; a zeroed struct
 * means "not allocated yet" and _fini on it is a no-op. */
struct gpu_rowset {
	uint64_t *bits;
	uint64_t rows;
};

enum fr_err gpu_rowset_init(struct gpu_rowset *s, uint64_t rows);
void gpu_rowset_fini(struct gpu_rowset *s);

/* Whether some id occurs more than once in rows[0..n); every id must
 * already be < s->rows.  Leaves s all clear. */
bool gpu_rowset_has_dups(struct gpu_rowset *s, const uint64_t *rows,
			 size_t n);

/* For a batch that repeats rows: the indices of the entries that win
 * (highest version; among equal versions, or with versions NULL, the
 * later entry), one per distinct row, in *win (malloc'd, caller frees)
 * and their count in *nwin.  FR_ERR_NOMEM on allocation failure. */
enum fr_err gpu_batch_winners(const uint64_t *rows, const uint64_t *versions,
			      size_t n, size_t **win, size_t *nwin);

#ifdef FRESHET_HAVE_CUDA
/* cuda_probe.cu (compiled as C++; defined extern "C").  Returns the number
 * of CUDA devices (>= 0) with *why NULL, or on a runtime error -1 when the
 * error only means "no usable device here" (no device, no driver) and -2
 * for anything else, with *why the runtime's static error text. */
int gpu_cuda_probe_device_count(const char **why);
#endif

#endif /* FRESHET_GPU_INT_H */
