// C entry points over nb360's torch-free CUDA launchers, compiled for the host emulator
// (nb360_cuda_emulator.h) and called from tests/cuda_emulator.py through ctypes. "Device" pointers
// are host pointers here. Each entry returns the launcher's cudaError_t, or -1 when the emulator
// itself found a fault (read it with emu_fault()).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "nb360_cuda_emulator.h"
#include "cell_node_kernel.h"
#include "mixed_sum_kernel.h"

namespace {

namespace cn = nb360::cuda::cellnode;
using i64 = std::int64_t;

int finish(cudaError_t launched) {
  if (!nb360_emu::tl_emulator_error.empty()) return -1;
  return static_cast<int>(launched);
}

void begin(int order) {
  nb360_emu::tl_order = static_cast<nb360_emu::Order>(order);
  nb360_emu::tl_emulator_error.clear();
  nb360_emu::tl_last_error = cudaSuccess;
}

cn::Operands operands(int edges, const i64* shape, const void* const* x, const i64* x_stride, const void* const* y,
                      const i64* y_stride) {
  cn::Operands ops{};
  ops.edges = edges;
  ops.N = shape[0];
  ops.C = shape[1];
  ops.H = shape[2];
  ops.W = shape[3];
  for (int e = 0; e < edges && e < cn::kMaxEdges; ++e) {
    ops.x[e] = x[e];
    ops.x_batch_stride[e] = x_stride[e];
  }
  for (int b = 0; b < 2 * edges && b < cn::kMaxBranches; ++b) {
    ops.y[b] = y[b];
    ops.y_batch_stride[b] = y_stride[b];
  }
  return ops;
}

// Workspace as doubles: aligned for every accumulation type, like the glue's allocation.
std::vector<double> workspace(std::size_t bytes) { return std::vector<double>(bytes / sizeof(double) + 1); }

}  // namespace

extern "C" {

const char* emu_fault() { return nb360_emu::tl_emulator_error.c_str(); }

long emu_launches() { return nb360_emu::tl_launches; }

int emu_cell_node_forward(int order, int dtype, int edges, const i64* shape, const void* const* x, const i64* x_stride,
                          const void* const* y, const i64* y_stride, const void* weights, const void* gamma,
                          const void* beta, const void* running_mean, const void* running_var, int batch_stats,
                          double eps, void* out, void* mean, void* var) {
  begin(order);
  const auto ops = operands(edges, shape, x, x_stride, y, y_stride);
  const auto kd = static_cast<cn::DType>(dtype);
  auto ws = workspace(cn::forward_workspace_bytes(kd, ops));
  const cn::Params params{weights, gamma, beta, running_mean, running_var, batch_stats != 0, eps};
  return finish(cn::forward(kd, ops, params, out, mean, var, ws.data(), nullptr));
}

int emu_cell_node_backward(int order, int dtype, int edges, const i64* shape, const void* const* x,
                           const i64* x_stride, const void* const* y, const i64* y_stride, const void* weights,
                           const void* gamma, const void* beta, int batch_stats, double eps, const void* grad,
                           const void* mean, const void* var, void* const* grad_x, void* const* grad_y,
                           void* grad_weights, void* grad_gamma, void* grad_beta) {
  begin(order);
  const auto ops = operands(edges, shape, x, x_stride, y, y_stride);
  const auto kd = static_cast<cn::DType>(dtype);
  cn::Gradients grads{};
  for (int e = 0; e < edges && e < cn::kMaxEdges; ++e) grads.x[e] = grad_x[e];
  for (int b = 0; b < 2 * edges && b < cn::kMaxBranches; ++b) grads.y[b] = grad_y[b];
  grads.weights = grad_weights;
  grads.gamma = grad_gamma;
  grads.beta = grad_beta;
  auto ws = workspace(cn::backward_workspace_bytes(kd, ops));
  const cn::Params params{weights, gamma, beta, nullptr, nullptr, batch_stats != 0, eps};
  return finish(cn::backward(kd, ops, params, grad, mean, var, grads, ws.data(), nullptr));
}

int emu_mixed_sum_forward(int order, int dtype, int count, const void* const* inputs, const void* weights, void* out,
                          i64 n) {
  begin(order);
  nb360::cuda::MixedInputs in{};
  in.count = count;
  for (int k = 0; k < count && k < nb360::cuda::kMaxMixedInputs; ++k) in.ptr[k] = inputs[k];
  return finish(nb360::cuda::mixed_sum_forward(static_cast<nb360::cuda::DType>(dtype), in, weights, out, n, nullptr));
}

int emu_mixed_sum_backward_blocks(i64 n) { return nb360::cuda::mixed_sum_backward_blocks(n); }

int emu_mixed_sum_backward_partials(int order, int dtype, const void* grad, int count, const void* const* inputs,
                                    void* partials, i64 n) {
  begin(order);
  nb360::cuda::MixedInputs in{};
  in.count = count;
  for (int k = 0; k < count && k < nb360::cuda::kMaxMixedInputs; ++k) in.ptr[k] = inputs[k];
  return finish(nb360::cuda::mixed_sum_backward_partials(static_cast<nb360::cuda::DType>(dtype), grad, in, partials,
                                                         n, nullptr));
}

}  // extern "C"
