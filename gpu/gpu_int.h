/*
 * gpu_int.h — private to gpu/: what every backend shares.  Not included
 * outside this folder.
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
	char name[64];
};

#endif /* FRESHET_GPU_INT_H */
