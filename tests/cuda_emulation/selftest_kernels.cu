// Kernels that show the host emulator can fail: one correct block reduction and three broken ones
// (a missing barrier, a barrier in divergent code that splits a warp, a full-mask shuffle after lanes exited).
// Plain CUDA; tests/test_cuda_emulated.py runs them through the emulator only.
#include <cuda_runtime_api.h>

namespace {

constexpr int kThreads = 256;

// mode 0: correct tree reduction; 1: no barriers (a race); 2: lanes 0-15 at __syncthreads while lanes
// 16-31 of the same warp wait in a shuffle with them;
// 3: the upper half returns before a full-mask warp shuffle.
__global__ void block_total_kernel(const float* in, float* out, int n, int mode) {
  __shared__ float shared[kThreads];
  float v = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) v += in[i];
  if (mode == 3) {
    if (threadIdx.x >= 16) return;
    v += __shfl_down_sync(0xffffffffu, v, 1);
    if (threadIdx.x == 0) out[0] = v;
    return;
  }
  shared[threadIdx.x] = v;
  if (mode == 0) __syncthreads();
  if (mode == 2) {
    if (threadIdx.x < 16)
      __syncthreads();
    else if (threadIdx.x < 32)
      v += __shfl_down_sync(0xffffffffu, v, 1);
  }
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    if (mode == 0) __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = shared[0];
}

}  // namespace

extern "C" int emu_selftest_block_total(int order, int mode, const float* in, float* out, int n, int threads,
                                        unsigned grid_y) {
  nb360_emu::tl_order = static_cast<nb360_emu::Order>(order);
  nb360_emu::tl_emulator_error.clear();
  block_total_kernel<<<dim3(1, grid_y), threads, 0, nullptr>>>(in, out, n, mode);
  const cudaError_t e = cudaGetLastError();
  return nb360_emu::tl_emulator_error.empty() ? static_cast<int>(e) : -1;
}
