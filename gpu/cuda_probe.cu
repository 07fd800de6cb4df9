/*
 * cuda_probe.cu — the one piece of CUDA in this version: ask the runtime
 * how many devices there are, and translate its error into something the
 * C side can act on.  It includes no freshet header (they are C, not C++),
 * so it returns the runtime's error text and gpu.c logs it once.
 *
 * What is not here: the CUDA table backend (cuda.cu).
 */
#include <cuda_runtime_api.h>

/* Declared for C in gpu_int.h; see there for the contract. */
extern "C" int gpu_cuda_probe_device_count(const char **why);

extern "C" int gpu_cuda_probe_device_count(const char **why)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	*why = nullptr;
	if (e == cudaSuccess)
		return n;
	*why = cudaGetErrorString(e);
	/* Clear the runtime's last-error slot so that a later, unrelated
	 * check does not report this probe's failure. */
	(void)cudaGetLastError();
	switch (e) {
	case cudaErrorNoDevice:            /* driver present, no GPU */
	case cudaErrorInsufficientDriver:  /* no driver, or too old */
	case cudaErrorStubLibrary:         /* linked against the stub libcuda */
		return -1;
	default:
		return -2;
	}
}
