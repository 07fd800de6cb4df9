/* placeholder */
extern "C" int gpu_cuda_probe_placeholder(void) { return 0; }
