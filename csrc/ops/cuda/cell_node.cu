// cell_node: CUDA implementation (thin torch glue around cell_node_kernel.cu).
// Built only against a CUDA build of torch (see CMakeLists.txt). Argument checks are shared with
// the CPU implementation (csrc/ops/cell_node.cpp); all device code is in cell_node_kernel.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "../cell_node.h"
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

std::vector<at::Tensor> plane_contiguous_all(at::TensorList ts) {
  std::vector<at::Tensor> out;
  for (const auto& t : ts) out.push_back(plane_contiguous(t));
  return out;
}

kern::Operands pack(const CellNodeShape& s, const std::vector<at::Tensor>& xs, const std::vector<at::Tensor>& ys) {
  kern::Operands ops{};
  ops.edges = static_cast<int>(s.edges);
  ops.N = s.N;
  ops.C = s.C;
  ops.H = s.H;
  ops.W = s.W;
  for (size_t e = 0; e < xs.size(); ++e) {
    ops.x[e] = xs[e].const_data_ptr();
    ops.x_batch_stride[e] = xs[e].size(0) > 1 ? xs[e].stride(0) : 0;
  }
  for (size_t b = 0; b < ys.size(); ++b) {
    ops.y[b] = ys[b].const_data_ptr();
    ops.y_batch_stride[b] = ys[b].size(0) > 1 ? ys[b].stride(0) : 0;
  }
  return ops;
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cell_node_cuda(
    at::TensorList inputs, at::TensorList convs, const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight,
    const std::optional<at::Tensor>& bn_bias, const std::optional<at::Tensor>& running_mean,
    const std::optional<at::Tensor>& running_var, bool batch_stats, double eps) {
  const auto s = check_cell_node_args("cell_node", inputs, convs, weights, bn_weight, bn_bias, running_mean,
                                      running_var, batch_stats);
  TORCH_CHECK(!batch_stats || s.branches * s.C <= kern::kMaxStatRows, "cell_node on CUDA: batch statistics of ",
              s.branches, " branches x ", s.C, " channels exceed the kernels' ", kern::kMaxStatRows,
              " rows; use the reference path (fused=False) for so many channels");
  const c10::cuda::CUDAGuard guard(inputs[0].device());
  const auto dtype = inputs[0].scalar_type();
  const auto acc = acc_dtype(dtype);
  const auto xs = plane_contiguous_all(inputs);
  const auto ys = plane_contiguous_all(convs);
  const auto w = as_acc(weights, acc);
  const auto gamma = as_acc(bn_weight, acc);
  const auto beta = as_acc(bn_bias, acc);
  const auto rmean = batch_stats ? at::Tensor() : as_acc(running_mean, acc);
  const auto rvar = batch_stats ? at::Tensor() : as_acc(running_var, acc);
  const auto act = inputs[0].options().memory_format(at::MemoryFormat::Contiguous);
  auto out = at::empty(inputs[0].sizes(), act);
  auto mean = at::empty({s.branches, s.C}, act.dtype(acc));
  auto var = at::empty({s.branches, s.C}, act.dtype(acc));
  const auto ops = pack(s, xs, ys);
  const auto kdtype = kernel_dtype(dtype);
  auto workspace = at::empty({static_cast<int64_t>(kern::forward_workspace_bytes(kdtype, ops))}, act.dtype(at::kByte));
  const kern::Params params{w.const_data_ptr(), ptr_or_null(gamma), ptr_or_null(beta), ptr_or_null(rmean),
                            ptr_or_null(rvar),  batch_stats,        eps};
  check_launch(kern::forward(kdtype, ops, params, out.mutable_data_ptr(), mean.mutable_data_ptr(),
                             var.mutable_data_ptr(), workspace.mutable_data_ptr(), c10::cuda::getCurrentCUDAStream()),
               "cell_node");
  return {out, mean, var};
}

std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor, at::Tensor, at::Tensor>
cell_node_backward_cuda(const at::Tensor& grad, at::TensorList inputs, at::TensorList convs, const at::Tensor& weights,
                        const std::optional<at::Tensor>& bn_weight, const std::optional<at::Tensor>& bn_bias,
                        const at::Tensor& mean, const at::Tensor& var, bool batch_stats, double eps) {
  const auto s = check_cell_node_args("cell_node_backward", inputs, convs, weights, bn_weight, bn_bias, mean, var,
                                      batch_stats);
  TORCH_CHECK(grad.sizes() == inputs[0].sizes() && grad.scalar_type() == inputs[0].scalar_type() &&
                  grad.device() == inputs[0].device(),
              "cell_node_backward: grad must match the inputs in shape, dtype and device, got ", grad.sizes(), " ",
              grad.scalar_type(), " on ", grad.device());
  TORCH_CHECK(s.C <= kern::kMaxStatRows, "cell_node_backward on CUDA: ", s.C, " channels exceed the kernels' ",
              kern::kMaxStatRows, "; use the reference path (fused=False) for so many channels");
  const c10::cuda::CUDAGuard guard(inputs[0].device());
  const auto dtype = inputs[0].scalar_type();
  const auto acc = acc_dtype(dtype);
  const auto g = grad.contiguous();
  const auto xs = plane_contiguous_all(inputs);
  const auto ys = plane_contiguous_all(convs);
  const auto w = as_acc(weights, acc);
  const auto gamma = as_acc(bn_weight, acc);
  const auto beta = as_acc(bn_bias, acc);
  const auto mean_acc = as_acc(mean, acc);
  const auto var_acc = as_acc(var, acc);
  const auto act = inputs[0].options().memory_format(at::MemoryFormat::Contiguous);

  std::vector<at::Tensor> grad_inputs, grad_convs;
  kern::Gradients grads{};
  for (int64_t e = 0; e < s.edges; ++e) {
    grad_inputs.push_back(at::empty(inputs[0].sizes(), act));
    grads.x[e] = grad_inputs.back().mutable_data_ptr();
  }
  for (int64_t b = 0; b < s.branches; ++b) {
    grad_convs.push_back(at::empty(inputs[0].sizes(), act));
    grads.y[b] = grad_convs.back().mutable_data_ptr();
  }
  auto grad_w = at::empty({s.edges, kCellNodeOps}, act.dtype(acc));
  auto grad_gamma = at::empty({s.branches, s.C}, act.dtype(acc));
  auto grad_beta = at::empty({s.branches, s.C}, act.dtype(acc));
  grads.weights = grad_w.mutable_data_ptr();
  grads.gamma = grad_gamma.mutable_data_ptr();
  grads.beta = grad_beta.mutable_data_ptr();

  const auto ops = pack(s, xs, ys);
  const auto kdtype = kernel_dtype(dtype);
  auto workspace =
      at::empty({static_cast<int64_t>(kern::backward_workspace_bytes(kdtype, ops))}, act.dtype(at::kByte));
  const kern::Params params{w.const_data_ptr(), ptr_or_null(gamma), ptr_or_null(beta), nullptr, nullptr,
                            batch_stats,        eps};
  check_launch(kern::backward(kdtype, ops, params, g.const_data_ptr(), mean_acc.const_data_ptr(),
                              var_acc.const_data_ptr(), grads, workspace.mutable_data_ptr(),
                              c10::cuda::getCurrentCUDAStream()),
               "cell_node_backward");
  const auto bn_dtype = bn_weight.has_value() ? bn_weight->scalar_type() : mean.scalar_type();
  return {grad_inputs, grad_convs, grad_w.to(weights.scalar_type()), grad_gamma.to(bn_dtype), grad_beta.to(bn_dtype)};
}

}  // namespace

TORCH_LIBRARY_IMPL(nb360, CUDA, m) {
  m.impl("cell_node", &cell_node_cuda);
  m.impl("cell_node_backward", &cell_node_backward_cuda);
}

}  // namespace nb360
