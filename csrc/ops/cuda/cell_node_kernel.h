// cell_node CUDA kernels: torch-free launchers (raw pointers, sizes, a stream).
//
// The math is the CPU kernel's (csrc/ops/cell_node.cpp has the design notes); this header is kept
// free of torch so plain nvcc compile-checks it on machines whose torch is a CPU build
// (tests/test_cuda_compile.py). The torch glue lives in cell_node.cu.
//
// Layout: every activation operand is (N, C, H, W) (1D: H = 1) with contiguous (n, c) planes and
// packed channels; element (n, c, p) is at ptr + n * batch_stride + c * H * W + p, so a channel
// slice of a wider conv output is passed without a copy. Outputs are fully contiguous.
// Small operands (weights, BN parameters, statistics, their gradients) are device arrays of the
// accumulation type: double for float64 activations, float otherwise.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace nb360 {
namespace cuda {
namespace cellnode {

enum class DType : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

constexpr int kMaxEdges = 4;
constexpr int kBranchesPerEdge = 2;  // nor_conv_1x1, nor_conv_3x3
constexpr int kMaxBranches = kMaxEdges * kBranchesPerEdge;
constexpr int kOps = 5;  // none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
// The reduction kernels put the statistics rows on the CUDA grid's y dimension: 2k * C rows in the
// forward with batch statistics, C in the backward. Launches beyond it are refused (the glue says so).
constexpr std::int64_t kMaxStatRows = 65535;

struct Operands {
  int edges;  // k incoming edges; 2k conv branches
  std::int64_t N, C, H, W;
  const void* x[kMaxEdges];  // source node of each edge
  std::int64_t x_batch_stride[kMaxEdges];
  const void* y[kMaxBranches];  // conv outputs: [edge0 1x1, edge0 3x3, edge1 1x1, ...]
  std::int64_t y_batch_stride[kMaxBranches];
};

struct Params {
  const void* weights;       // (k, 5)
  const void* gamma;         // (2k, C) or nullptr (BN without affine)
  const void* beta;          // (2k, C) or nullptr
  const void* running_mean;  // (2k, C); read when !batch_stats
  const void* running_var;   // (2k, C)
  bool batch_stats;
  double eps;
};

// Bytes of device workspace (any alignment-safe allocation) the forward / backward launches need.
std::size_t forward_workspace_bytes(DType dtype, const Operands& ops);
std::size_t backward_workspace_bytes(DType dtype, const Operands& ops);

// out (N, C, H, W) = the fused node; mean / var (2k, C): the statistics used (biased batch variance,
// or copies of the running statistics when !batch_stats).
cudaError_t forward(DType dtype, const Operands& ops, const Params& params, void* out, void* mean, void* var,
                    void* workspace, cudaStream_t stream);

struct Gradients {
  void* x[kMaxEdges];     // (N, C, H, W) each, contiguous
  void* y[kMaxBranches];  // (N, C, H, W) each, contiguous
  void* weights;          // (k, 5)
  void* gamma;            // (2k, C)
  void* beta;             // (2k, C)
};

// Gradients of the fused node from grad (contiguous (N, C, H, W)) and the forward's mean / var.
// Results are deterministic: every reduction runs in a fixed order for a given shape.
cudaError_t backward(DType dtype, const Operands& ops, const Params& params, const void* grad, const void* mean,
                     const void* var, const Gradients& grads, void* workspace, cudaStream_t stream);

}  // namespace cellnode
}  // namespace cuda
}  // namespace nb360
