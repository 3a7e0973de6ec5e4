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

cn::Strided strided(const void* ptr, const i64* strides) { return {ptr, strides[0], strides[1], strides[2]}; }

cn::MutStrided mutable_strided(void* ptr, const i64* strides) {
  return {ptr, strides ? strides[0] : 0, strides ? strides[1] : 0, strides ? strides[2] : 0};
}

// x_strides / y_strides: (sN, sC, sP) per operand, as the glue reads them from the tensors.
cn::Operands operands(int edges, const i64* shape, const void* const* x, const i64* x_strides, const void* const* y,
                      const i64* y_strides, const void* conv_bias, int channels_last) {
  cn::Operands ops{};
  ops.edges = edges;
  ops.N = shape[0];
  ops.C = shape[1];
  ops.H = shape[2];
  ops.W = shape[3];
  for (int e = 0; e < edges && e < cn::kMaxEdges; ++e) ops.x[e] = strided(x[e], x_strides + 3 * e);
  for (int b = 0; b < 2 * edges && b < cn::kMaxBranches; ++b) ops.y[b] = strided(y[b], y_strides + 3 * b);
  ops.conv_bias = conv_bias;
  ops.channels_last = channels_last != 0;
  return ops;
}

// Workspace as doubles: aligned for every accumulation type, like the glue's allocation.
std::vector<double> workspace(std::size_t bytes) { return std::vector<double>(bytes / sizeof(double) + 1); }

}  // namespace

extern "C" {

const char* emu_fault() { return nb360_emu::tl_emulator_error.c_str(); }

long emu_launches() { return nb360_emu::tl_launches; }

int emu_cell_node_forward(int order, int dtype, int edges, const i64* shape, const void* const* x,
                          const i64* x_strides, const void* const* y, const i64* y_strides, const void* conv_bias,
                          int channels_last, const void* weights, const void* gamma, const void* beta,
                          const void* running_mean, const void* running_var, int batch_stats, double eps, void* out,
                          const i64* out_strides, void* relu, const i64* relu_strides, void* mean, void* var) {
  begin(order);
  const auto ops = operands(edges, shape, x, x_strides, y, y_strides, conv_bias, channels_last);
  const auto kd = static_cast<cn::DType>(dtype);
  auto ws = workspace(cn::forward_workspace_bytes(kd, ops));
  const cn::Params params{weights, gamma, beta, running_mean, running_var, batch_stats != 0, eps};
  return finish(cn::forward(kd, ops, params, mutable_strided(out, out_strides), mutable_strided(relu, relu_strides),
                            mean, var, ws.data(), nullptr));
}

// modes[e]: 0 skip, 1 write, 2 accumulate (the internal op's input_modes).
int emu_cell_node_backward(int order, int dtype, int edges, const i64* shape, const void* const* x,
                           const i64* x_strides, const void* const* y, const i64* y_strides, const void* conv_bias,
                           int channels_last, const void* weights, const void* gamma, const void* beta,
                           int batch_stats, double eps, const void* grad, const i64* grad_strides, const void* mean,
                           const void* var, void* const* grad_x, const i64* grad_x_strides, const int* modes,
                           void* const* grad_y, const i64* grad_y_strides, void* grad_weights, void* grad_gamma,
                           void* grad_beta, void* grad_bias, void* coefficients) {
  begin(order);
  const auto ops = operands(edges, shape, x, x_strides, y, y_strides, conv_bias, channels_last);
  const auto kd = static_cast<cn::DType>(dtype);
  cn::Gradients grads{};
  for (int e = 0; e < edges && e < cn::kMaxEdges; ++e) {
    grads.x[e] = modes[e] == 0 ? cn::MutStrided{nullptr, 0, 0, 0} : mutable_strided(grad_x[e], grad_x_strides + 3 * e);
    grads.accumulate[e] = modes[e] == 2;
  }
  for (int b = 0; b < 2 * edges && b < cn::kMaxBranches; ++b)  // a null pointer: skipped
    grads.y[b] = grad_y[b] ? mutable_strided(grad_y[b], grad_y_strides + 3 * b) : cn::MutStrided{nullptr, 0, 0, 0};
  grads.weights = grad_weights;
  grads.gamma = grad_gamma;
  grads.beta = grad_beta;
  grads.conv_bias = grad_bias;
  grads.coefficients = coefficients;
  auto ws = workspace(cn::backward_workspace_bytes(kd, ops));
  const cn::Params params{weights, gamma, beta, nullptr, nullptr, batch_stats != 0, eps};
  return finish(cn::backward(kd, ops, params, strided(grad, grad_strides), mean, var, grads, ws.data(), nullptr));
}

int emu_channel_stats(int order, int dtype, const i64* shape, const void* y, const i64* strides, const void* bias,
                      void* mean, void* var) {
  begin(order);
  const auto kd = static_cast<cn::DType>(dtype);
  auto ws = workspace(cn::channel_stats_workspace_bytes(kd, shape[0], shape[1], shape[2], shape[3]));
  return finish(cn::channel_stats(kd, strided(y, strides), shape[0], shape[1], shape[2], shape[3], bias, mean, var,
                                  ws.data(), nullptr));
}

int emu_relu_backward_add(int order, int dtype, void* dst, const void* src, const void* add, i64 n) {
  begin(order);
  return finish(cn::relu_backward_add(static_cast<cn::DType>(dtype), dst, src, add, n, nullptr));
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
