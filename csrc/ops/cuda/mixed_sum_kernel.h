// mixed_sum CUDA kernels: torch-free launchers (raw pointers, sizes, a stream).
//
// Kept free of torch so that plain nvcc compile-checks them on machines whose torch is a
// CPU build (tests/test_cuda_compile.py); the torch glue lives in mixed_sum.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace nb360 {
namespace cuda {

enum class DType : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

constexpr int kMaxMixedInputs = 8;

// Device pointers of up to kMaxMixedInputs equally shaped contiguous inputs.
struct MixedInputs {
  const void* ptr[kMaxMixedInputs];
  int count;
};

// out[i] = sum_k weights[k] * inputs[k][i] for i < n. Accumulates in float (double for float64).
cudaError_t mixed_sum_forward(DType dtype, MixedInputs inputs, const void* weights, void* out, std::int64_t n,
                              cudaStream_t stream);

// Number of blocks mixed_sum_backward_partials uses for n elements (size the workspace as
// blocks * inputs.count accumulators of type double for float64, float otherwise).
int mixed_sum_backward_blocks(std::int64_t n);

// partials[b * count + k] = sum over block b's slice of grad[i] * inputs[k][i]. The caller sums
// the partials over b (a fixed order, so results are deterministic).
cudaError_t mixed_sum_backward_partials(DType dtype, const void* grad, MixedInputs inputs, void* partials,
                                        std::int64_t n, cudaStream_t stream);

}  // namespace cuda
}  // namespace nb360
