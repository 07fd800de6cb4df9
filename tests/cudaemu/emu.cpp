/*
 * emu.cpp — a host emulation of the slice of the CUDA runtime that
 * gpu/cuda.cu uses, so that the cuda backend's HOST logic (staging slots
 * and their events, chunking, repeated-row resolution, error paths, stream
 * ordering of gathers) runs in CI, under the sanitizers, on machines with
 * no GPU.  It is not a GPU test and proves nothing about kernels on a
 * device, PCIe or timing: test_gpu_cuda (label cuda) on a real GPU does
 * that (docs/gpu.md).
 *
 * Streams are lazy queues: queued work runs only when the host waits for
 * it (stream or event synchronize, cudaFree), so a host that reuses a
 * staging buffer before its copy has run copies the wrong bytes and the
 * test sees it.  Async copies must use pinned (cudaHostAlloc) memory.
 * Kernels run thread by thread (freshet's have no barriers or shared
 * memory) and take the (ptr, ptr, ptr, u32, u32, u32) arguments cuda.cu's
 * kernels all take.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <deque>
#include <set>
#include <map>

thread_local emu_u3 threadIdx, blockIdx, blockDim, gridDim;

struct emu_op {
	int kind;                 /* 0 copy, 1 memset, 2 kernel, 3 event */
	void *dst; const void *src; size_t n; int val;
	const void *fn; dim3 grid, block; void *a0, *a1, *a2; uint32_t u0, u1, u2;
	emu_event *ev;
};
struct emu_stream { std::deque<emu_op> q; };
struct emu_event { emu_stream *s; unsigned long pending; bool recorded; };
static std::set<emu_stream *> streams;
static std::set<void *> dev_ptrs;
static std::map<char *, size_t> host_ptrs;
unsigned long emu_ops_run, emu_launches;

typedef void (*kern_fn)(void *, void *, void *, uint32_t, uint32_t, uint32_t);

static void run_op(emu_op &o)
{
	switch (o.kind) {
	case 0: memcpy(o.dst, o.src, o.n); break;
	case 1: memset(o.dst, o.val, o.n); break;
	case 2: {
		kern_fn f = (kern_fn)o.fn;
		gridDim = { o.grid.x, 1, 1 };
		blockDim = { o.block.x, 1, 1 };
		for (unsigned b = 0; b < o.grid.x; b++)
			for (unsigned t = 0; t < o.block.x; t++) {
				blockIdx = { b, 0, 0 };
				threadIdx = { t, 0, 0 };
				f(o.a0, o.a1, o.a2, o.u0, o.u1, o.u2);
			}
		break; }
	case 3: o.ev->recorded = true; o.ev->pending--; break;
	}
	emu_ops_run++;
}

static void run_stream(emu_stream *s) { while (!s->q.empty()) { emu_op o = s->q.front(); s->q.pop_front(); run_op(o); } }
static void run_all(void) { for (auto s : streams) run_stream(s); }

const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
const char *cudaGetErrorName(cudaError_t e) { return e ? "cudaErrorEmulated" : "cudaSuccess"; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr, int) { *v = 3; return cudaSuccess; }
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, const void *, int, size_t) { *n = 2; return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = (size_t)1 << 30; *t = (size_t)2 << 30; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) { strcpy(p->name, "Emulated GPU"); return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = new emu_stream; streams.insert(*s); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { run_stream(s); streams.erase(s); delete s; return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t s) { return s->q.empty() ? cudaSuccess : cudaErrorNotReady; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { run_stream(s); return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new emu_event{ nullptr, 0, false }; return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { if (e->pending) { fprintf(stderr, "EMU: event destroyed while pending\n"); abort(); } delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { emu_op o{}; o.kind = 3; o.ev = e; e->s = s; e->pending++; s->q.push_back(o); return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
	/* Run the stream only until this event's last record has passed. */
	while (e->pending) { emu_op o = e->s->q.front(); e->s->q.pop_front(); run_op(o); }
	return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 1.0f; return cudaSuccess; }
cudaError_t cudaMalloc(void **p, size_t n) { *p = malloc(n ? n : 1); if (!*p) return cudaErrorMemoryAllocation; memset(*p, 0xdb, n); dev_ptrs.insert(*p); return cudaSuccess; }
cudaError_t cudaFree(void *p) { if (!p) return cudaSuccess; run_all(); if (!dev_ptrs.erase(p)) { fprintf(stderr, "EMU: cudaFree of unknown %p\n", p); abort(); } free(p); return cudaSuccess; }
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned) { *p = malloc(n ? n : 1); if (!*p) return cudaErrorMemoryAllocation; memset(*p, 0xcb, n); host_ptrs[(char *)*p] = n; return cudaSuccess; }
cudaError_t cudaFreeHost(void *p) { if (!p) return cudaSuccess; run_all(); if (!host_ptrs.erase((char *)p)) { fprintf(stderr, "EMU: cudaFreeHost of unknown %p\n", p); abort(); } free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { memcpy(d, s, n); return cudaSuccess; }
long emu_fail_copy_at = -1;
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st)
{
	if (emu_fail_copy_at >= 0 && emu_fail_copy_at-- == 0) return cudaErrorIllegalAddress;
	/* Async copies from/to host memory must use pinned memory here. */
	{
		char *h = (char *)(k == cudaMemcpyHostToDevice ? s : d);
		auto it = host_ptrs.upper_bound(h);
		if (it == host_ptrs.begin() || (--it, h + n > it->first + it->second)) { fprintf(stderr, "EMU: async copy with unpinned host memory\n"); abort(); }
	}
	emu_op o{}; o.kind = 0; o.dst = d; o.src = s; o.n = n; st->q.push_back(o); return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st) { emu_op o{}; o.kind = 1; o.dst = d; o.val = v; o.n = n; st->q.push_back(o); return cudaSuccess; }
cudaError_t cudaLaunchKernel(const void *fn, dim3 g, dim3 b, void **args, size_t, cudaStream_t st)
{
	emu_op o{}; o.kind = 2; o.fn = fn; o.grid = g; o.block = b;
	o.a0 = *(void **)args[0]; o.a1 = *(void **)args[1]; o.a2 = *(void **)args[2];
	o.u0 = *(uint32_t *)args[3]; o.u1 = *(uint32_t *)args[4]; o.u2 = *(uint32_t *)args[5];
	if (g.x == 0 || b.x == 0 || b.x > 1024) return cudaErrorInvalidValue;
	emu_launches++;
	st->q.push_back(o); return cudaSuccess;
}
extern "C" int gpu_cuda_probe_device_count(const char **why) { *why = nullptr; return 1; }
