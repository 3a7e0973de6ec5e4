// cell_node: CUDA implementation of the node kernels' internal ops (thin torch glue around
// cell_node_kernel.cu). Built only against a CUDA build of torch (see CMakeLists.txt). The public
// ops (cell_node, cell_node_backward) and the whole-cell op (search_cell) are device-generic and
// reach these through the dispatcher; argument checks are shared with the CPU (cell_node.cpp).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "../cell_node.h"
#include "../cell_node_kernels.h"
#include "cell_node_kernel.h"

namespace nb360 {
namespace {

namespace kern = cuda::cellnode;

kern::DType kernel_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return kern::DType::kFloat32;
    case at::kDouble: return kern::DType::kFloat64;
    case at::kHalf: return kern::DType::kFloat16;
    case at::kBFloat16: return kern::DType::kBFloat16;
    default: TORCH_CHECK(false, "cell_node: unsupported dtype ", t, " on CUDA (float32/64, float16, bfloat16)");
  }
  return kern::DType::kFloat32;  // not reached: TORCH_CHECK throws
}

// The kernels' accumulation type: double for float64 activations, float otherwise (= the stats dtype).
at::ScalarType acc_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

at::Tensor as_acc(const at::Tensor& t, at::ScalarType acc) { return t.to(acc).contiguous(); }

at::Tensor as_acc(const std::optional<at::Tensor>& t, at::ScalarType acc) {
  return t.has_value() ? as_acc(*t, acc) : at::Tensor();
}

const void* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.const_data_ptr() : nullptr; }

// The kernels read any layout whose pixels are evenly spaced: NCHW planes, channels-last, and
// channel slices of either.
bool pixels_evenly_spaced(const at::Tensor& t) {
  return t.dim() == 3 || t.size(2) == 1 || t.size(3) == 1 || t.stride(2) == t.size(3) * t.stride(3);
}

kern::Strided strided(const at::Tensor& t, const char* op, const char* what) {
  TORCH_CHECK(pixels_evenly_spaced(t), op, ": ", what, " must have evenly spaced pixels, got strides ", t.strides());
  return {t.const_data_ptr(), t.size(0) > 1 ? t.stride(0) : 0, t.size(1) > 1 ? t.stride(1) : 0, pixel_stride(t)};
}

kern::MutStrided mutable_strided(const at::Tensor& t, const char* op, const char* what) {
  const auto s = strided(t, op, what);
  return {t.mutable_data_ptr(), s.sN, s.sC, s.sP};
}

void check_output(const char* op, const at::Tensor& t, const at::Tensor& like, const char* what) {
  TORCH_CHECK(t.sizes() == like.sizes() && t.scalar_type() == like.scalar_type() && t.device() == like.device(), op,
              ": ", what, " must match the inputs in shape, dtype and device, got ", t.sizes(), " ", t.scalar_type(),
              " on ", t.device());
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

kern::Operands pack(const char* op, const CellNodeShape& s, at::TensorList xs, at::TensorList ys,
                    const at::Tensor& conv_bias, const at::Tensor& out) {
  kern::Operands ops{};
  ops.edges = static_cast<int>(s.edges);
  ops.N = s.N;
  ops.C = s.C;
  ops.H = s.H;
  ops.W = s.W;
  for (size_t e = 0; e < xs.size(); ++e) ops.x[e] = strided(xs[e], op, "inputs");
  for (size_t b = 0; b < ys.size(); ++b) ops.y[b] = strided(ys[b], op, "convs");
  ops.conv_bias = ptr_or_null(conv_bias);
  ops.channels_last = s.C > 1 && out.stride(1) == 1;  // walk the elements in the output's memory order
  return ops;
}

void check_conv_bias(const char* op, const std::optional<at::Tensor>& conv_bias, const CellNodeShape& s) {
  TORCH_CHECK(!conv_bias.has_value() || (conv_bias->dim() == 2 && conv_bias->size(0) == s.branches &&
                                         conv_bias->size(1) == s.C),
              op, ": conv_bias must have shape [", s.branches, ", ", s.C, "]");
}

std::tuple<at::Tensor, at::Tensor> cell_node_forward_cuda(
    at::TensorList inputs, at::TensorList convs, const std::optional<at::Tensor>& conv_bias, const at::Tensor& weights,
    const std::optional<at::Tensor>& bn_weight, const std::optional<at::Tensor>& bn_bias,
    const std::optional<at::Tensor>& mean_in, const std::optional<at::Tensor>& var_in, bool batch_stats, double eps,
    const at::Tensor& out, const std::optional<at::Tensor>& relu_out) {
  const char* op = "cell_node";
  const auto s = check_cell_node_args(op, inputs, convs, weights, bn_weight, bn_bias, mean_in, var_in, batch_stats);
  check_conv_bias(op, conv_bias, s);
  check_output(op, out, inputs[0], "out");
  if (relu_out.has_value()) check_output(op, *relu_out, inputs[0], "relu_out");
  TORCH_CHECK(!batch_stats || s.branches * s.C <= kern::kMaxStatRows, "cell_node on CUDA: batch statistics of ",
              s.branches, " branches x ", s.C, " channels exceed the kernels' ", kern::kMaxStatRows,
              " rows; use the reference path (fused=False) for so many channels");
  const c10::cuda::CUDAGuard guard(inputs[0].device());
  const auto dtype = inputs[0].scalar_type();
  const auto acc = acc_dtype(dtype);
  const auto w = as_acc(weights, acc);
  const auto gamma = as_acc(bn_weight, acc);
  const auto beta = as_acc(bn_bias, acc);
  const auto bias = as_acc(conv_bias, acc);
  const auto rmean = batch_stats ? at::Tensor() : as_acc(mean_in, acc);
  const auto rvar = batch_stats ? at::Tensor() : as_acc(var_in, acc);
  const auto small = inputs[0].options().dtype(acc);
  auto mean = at::empty({s.branches, s.C}, small);
  auto var = at::empty({s.branches, s.C}, small);
  const auto ops = pack(op, s, inputs, convs, bias, out);
  const auto kdtype = kernel_dtype(dtype);
  auto workspace =
      at::empty({static_cast<int64_t>(kern::forward_workspace_bytes(kdtype, ops))}, small.dtype(at::kByte));
  const kern::Params params{w.const_data_ptr(), ptr_or_null(gamma), ptr_or_null(beta), ptr_or_null(rmean),
                            ptr_or_null(rvar),  batch_stats,        eps};
  const kern::MutStrided relu =
      relu_out.has_value() ? mutable_strided(*relu_out, op, "relu_out") : kern::MutStrided{nullptr, 0, 0, 0};
  check_launch(kern::forward(kdtype, ops, params, mutable_strided(out, op, "out"), relu, mean.mutable_data_ptr(),
                             var.mutable_data_ptr(), workspace.mutable_data_ptr(), c10::cuda::getCurrentCUDAStream()),
               op);
  return {mean, var};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> cell_node_backward_cuda(
    const at::Tensor& grad, at::TensorList inputs, at::TensorList convs, const std::optional<at::Tensor>& conv_bias,
    const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight, const std::optional<at::Tensor>& bn_bias,
    const at::Tensor& mean, const at::Tensor& var, bool batch_stats, double eps, at::TensorList grad_inputs,
    at::IntArrayRef input_modes, at::TensorList grad_convs) {
  const char* op = "cell_node_backward";
  const auto s = check_cell_node_args(op, inputs, convs, weights, bn_weight, bn_bias, mean, var, batch_stats);
  check_conv_bias(op, conv_bias, s);
  check_output(op, grad, inputs[0], "grad");
  TORCH_CHECK(static_cast<int64_t>(grad_inputs.size()) == s.edges && static_cast<int64_t>(input_modes.size()) == s.edges &&
                  static_cast<int64_t>(grad_convs.size()) == s.branches,
              op, ": expected ", s.edges, " grad_inputs and input_modes and ", s.branches, " grad_convs");
  TORCH_CHECK(s.C <= kern::kMaxStatRows, "cell_node_backward on CUDA: ", s.C, " channels exceed the kernels' ",
              kern::kMaxStatRows, "; use the reference path (fused=False) for so many channels");
  const c10::cuda::CUDAGuard guard(inputs[0].device());
  const auto dtype = inputs[0].scalar_type();
  const auto acc = acc_dtype(dtype);
  const auto w = as_acc(weights, acc);
  const auto gamma = as_acc(bn_weight, acc);
  const auto beta = as_acc(bn_bias, acc);
  const auto bias = as_acc(conv_bias, acc);
  const auto mean_acc = as_acc(mean, acc);
  const auto var_acc = as_acc(var, acc);
  const auto small = inputs[0].options().dtype(acc);

  kern::Gradients grads{};
  for (int64_t e = 0; e < s.edges; ++e) {
    TORCH_CHECK(input_modes[e] >= kSkipGradient && input_modes[e] <= kAddGradient, op, ": bad input mode ",
                input_modes[e]);
    if (input_modes[e] == kSkipGradient) {
      grads.x[e] = kern::MutStrided{nullptr, 0, 0, 0};
      continue;
    }
    check_output(op, grad_inputs[e], inputs[0], "grad_inputs");
    grads.x[e] = mutable_strided(grad_inputs[e], op, "grad_inputs");
    grads.accumulate[e] = input_modes[e] == kAddGradient;
  }
  for (int64_t b = 0; b < s.branches; ++b) {
    if (grad_convs[b].numel() == 0 && inputs[0].numel() > 0) {  // skipped: formed from the coefficients
      grads.y[b] = kern::MutStrided{nullptr, 0, 0, 0};
      continue;
    }
    check_output(op, grad_convs[b], inputs[0], "grad_convs");
    grads.y[b] = mutable_strided(grad_convs[b], op, "grad_convs");
  }
  auto grad_w = at::empty({s.edges, kCellNodeOps}, small);
  auto grad_gamma = at::empty({s.branches, s.C}, small);
  auto grad_beta = at::empty({s.branches, s.C}, small);
  auto grad_bias = at::empty({s.branches, s.C}, small);
  auto coefficients = at::empty({3, s.branches, s.C}, small);
  grads.coefficients = coefficients.mutable_data_ptr();
  grads.weights = grad_w.mutable_data_ptr();
  grads.gamma = grad_gamma.mutable_data_ptr();
  grads.beta = grad_beta.mutable_data_ptr();
  grads.conv_bias = grad_bias.mutable_data_ptr();

  const auto ops = pack(op, s, inputs, convs, bias, grad_convs[0]);
  const auto kdtype = kernel_dtype(dtype);
  auto workspace =
      at::empty({static_cast<int64_t>(kern::backward_workspace_bytes(kdtype, ops))}, small.dtype(at::kByte));
  const kern::Params params{w.const_data_ptr(), ptr_or_null(gamma), ptr_or_null(beta), nullptr, nullptr,
                            batch_stats,        eps};
  check_launch(kern::backward(kdtype, ops, params, strided(grad, op, "grad"), mean_acc.const_data_ptr(),
                              var_acc.const_data_ptr(), grads, workspace.mutable_data_ptr(),
                              c10::cuda::getCurrentCUDAStream()),
               op);
  const auto bn_dtype = bn_weight.has_value() ? bn_weight->scalar_type() : mean.scalar_type();
  const auto bias_dtype = conv_bias.has_value() ? conv_bias->scalar_type() : mean.scalar_type();
  return {grad_w.to(weights.scalar_type()), grad_gamma.to(bn_dtype), grad_beta.to(bn_dtype), grad_bias.to(bias_dtype),
          coefficients};
}

std::tuple<at::Tensor, at::Tensor> channel_stats_cuda(const at::Tensor& y, const std::optional<at::Tensor>& bias) {
  const char* op = "channel_stats";
  TORCH_CHECK(y.dim() == 3 || y.dim() == 4, op, ": expected (N, C, L) or (N, C, H, W), got ", y.sizes());
  const int64_t N = y.size(0), C = y.size(1), H = y.dim() == 4 ? y.size(2) : 1, W = y.size(-1);
  TORCH_CHECK(N * H * W > 1, op, ": batch statistics need more than 1 value per channel, got ", y.sizes());
  TORCH_CHECK(C <= kern::kMaxStatRows, op, ": ", C, " channels exceed the kernels' ", kern::kMaxStatRows);
  TORCH_CHECK(!bias.has_value() || bias->sizes() == at::IntArrayRef{C}, op, ": bias must have shape [", C, "]");
  const c10::cuda::CUDAGuard guard(y.device());
  const auto acc = acc_dtype(y.scalar_type());
  const auto b = as_acc(bias, acc);
  const auto small = y.options().dtype(acc);
  auto mean = at::empty({C}, small);
  auto var = at::empty({C}, small);
  const auto kdtype = kernel_dtype(y.scalar_type());
  auto workspace = at::empty({static_cast<int64_t>(kern::channel_stats_workspace_bytes(kdtype, N, C, H, W))},
                             small.dtype(at::kByte));
  check_launch(kern::channel_stats(kdtype, strided(y, op, "y"), N, C, H, W, ptr_or_null(b), mean.mutable_data_ptr(),
                                   var.mutable_data_ptr(), workspace.mutable_data_ptr(),
                                   c10::cuda::getCurrentCUDAStream()),
               op);
  return {mean, var};
}

void relu_backward_add_cuda(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& add) {
  const bool same_layout = dst.sizes() == src.sizes() && dst.sizes() == add.sizes() && dst.strides() == src.strides() &&
                           dst.strides() == add.strides() && dst.is_non_overlapping_and_dense() &&
                           dst.scalar_type() == src.scalar_type() && dst.scalar_type() == add.scalar_type();
  if (!same_layout) {  // not the cell's own buffers: the same math through ATen
    dst.add_(at::threshold_backward(add, src, 0));
    return;
  }
  const c10::cuda::CUDAGuard guard(dst.device());
  check_launch(kern::relu_backward_add(kernel_dtype(dst.scalar_type()), dst.mutable_data_ptr(), src.const_data_ptr(),
                                       add.const_data_ptr(), dst.numel(), c10::cuda::getCurrentCUDAStream()),
               "relu_backward_add");
}

}  // namespace

TORCH_LIBRARY_IMPL(nb360, CUDA, m) {
  m.impl("_cell_node_forward", &cell_node_forward_cuda);
  m.impl("_cell_node_backward", &cell_node_backward_cuda);
  m.impl("_channel_stats", &channel_stats_cuda);
  m.impl("_relu_backward_add", &relu_backward_add_cuda);
}

}  // namespace nb360
