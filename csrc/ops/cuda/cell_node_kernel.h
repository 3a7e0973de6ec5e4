// cell_node CUDA kernels: torch-free launchers (raw pointers, sizes, strides, a stream).
//
// The math is the CPU kernels' (csrc/ops/cell_node.cpp has the design notes, cell_node_kernels.cpp
// the CPU loops); this header is kept free of torch so plain nvcc compile-checks it on machines
// whose torch is a CPU build (tests/test_cuda_compile.py), and so the host emulator runs the device
// code (tests/cuda_emulator.py). The torch glue lives in cell_node.cu.
//
// Layout: every activation operand is (N, C, H, W) (1D: H = 1) with evenly spaced pixels: element
// (n, c, p), p = h * W + w, is at ptr + n * sN + c * sC + p * sP. NCHW planes (sP = 1) and
// channels-last tensors (sC = 1) -- also channel slices of a wider channels-last conv output, read
// and written in place -- are both such operands. Small operands (weights, BN parameters, conv
// biases, statistics, their gradients) are device arrays of the accumulation type: double for
// float64 activations, float otherwise.
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

// An activation operand read by the kernels.
struct Strided {
  const void* ptr;
  std::int64_t sN, sC, sP;
};

// An activation operand written by the kernels (ptr == nullptr: not wanted).
struct MutStrided {
  void* ptr;
  std::int64_t sN, sC, sP;
};

struct Operands {
  int edges;  // k incoming edges; 2k conv branches
  std::int64_t N, C, H, W;
  Strided x[kMaxEdges];     // source node of each edge
  Strided y[kMaxBranches];  // conv outputs: [edge0 1x1, edge0 3x3, edge1 1x1, ...]
  const void* conv_bias;    // (2k, C), or nullptr: y holds conv - bias, the kernels add it on read
  bool channels_last;       // elementwise kernels walk (n, p, c) with c fastest (else (n, c, p))
};

struct Params {
  const void* weights;       // (k, 5)
  const void* gamma;         // (2k, C) or nullptr (BN without affine)
  const void* beta;          // (2k, C) or nullptr
  const void* running_mean;  // (2k, C); read when !batch_stats (running, or precomputed batch statistics)
  const void* running_var;   // (2k, C)
  bool batch_stats;
  double eps;
};

// Bytes of device workspace (any alignment-safe allocation) the forward / backward launches need.
std::size_t forward_workspace_bytes(DType dtype, const Operands& ops);
std::size_t backward_workspace_bytes(DType dtype, const Operands& ops);

// out = the fused node, and relu(out) into relu_out when its ptr is set; mean / var (2k, C): the
// statistics used (biased batch variance of y + bias, or copies of the given ones when !batch_stats).
cudaError_t forward(DType dtype, const Operands& ops, const Params& params, MutStrided out, MutStrided relu_out,
                    void* mean, void* var, void* workspace, cudaStream_t stream);

struct Gradients {
  MutStrided x[kMaxEdges];       // d out / d x_e (ptr nullptr: skipped)
  bool accumulate[kMaxEdges];    // add to x[e]'s contents instead of overwriting them
  MutStrided y[kMaxBranches];    // d out / d y_b (ptr nullptr: skipped, formed from the coefficients)
  void* weights;                 // (k, 5)
  void* gamma;                   // (2k, C)
  void* beta;                    // (2k, C)
  void* conv_bias;               // (2k, C): sum over (n, p) of d y_b, or nullptr
  void* coefficients;            // (3, 2k, C): d y_b = [0] g + [1] y_b + [2], or nullptr
};

// Gradients of the fused node from grad and the forward's mean / var.
// Results are deterministic: every reduction runs in a fixed order for a given shape.
cudaError_t backward(DType dtype, const Operands& ops, const Params& params, Strided grad, const void* mean,
                     const void* var, const Gradients& grads, void* workspace, cudaStream_t stream);

// Batch statistics (mean, biased var; of y + bias when bias is set) of every channel of one operand
// of C channels, into mean / var (C), accumulation type.
std::size_t channel_stats_workspace_bytes(DType dtype, std::int64_t N, std::int64_t C, std::int64_t H,
                                          std::int64_t W);
cudaError_t channel_stats(DType dtype, Strided y, std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W,
                          const void* bias, void* mean, void* var, void* workspace, cudaStream_t stream);

// dst[i] += (src[i] > 0) * add[i] over n elements of three tensors of one dense layout.
cudaError_t relu_backward_add(DType dtype, void* dst, const void* src, const void* add, std::int64_t n,
                              cudaStream_t stream);

}  // namespace cellnode
}  // namespace cuda
}  // namespace nb360
