// cell_node: the fused target node of an NB201 search cell -- schemas, argument checks, the
// device-generic public ops, and the dispatcher entry points of the node kernels.
//
// Fused design (nb360 issues 6 and 20).  A DARTS/GAEA supernet cell evaluates, on every edge
// e = (s -> t), none(x_s) + skip(x_s) + BN(conv1x1(relu x_s)) + BN(conv3x3(relu x_s)) + avgpool3x3(x_s),
// each scaled by its architecture weight w[e, op], and node t is the sum over its incoming edges.
// The supernet runs a whole cell as one op (search_cell.cpp: per source node one ReLU and grouped
// convolutions, per target node one node kernel, one backward); the node kernel is this op:
//
//      nb360::cell_node(inputs[k] = x_s, convs[2k] = [y_e,1x1, y_e,3x3]..., weights (k, 5),
//                       bn_weight?, bn_bias? (2k, C), running_mean?, running_var? (2k, C),
//                       batch_stats, eps) -> (out, mean (2k, C), var (2k, C))
//      out = sum_e  w_skip x_e + w_pool avgpool(x_e) + sum_j w_j (gamma_j (y_ej - mu_j) invstd_j + beta_j)
//
// It batch-normalises every conv branch (batch statistics, or the running statistics in eval mode),
// scales each operation by its architecture weight, adds skip_connect and the 3x3 average pool
// (count_include_pad=False) and sums the incoming edges.  `none` contributes exactly zero (its
// weight's gradient is 0); k = 1 is a single mixed edge.  Two passes over memory: per-channel
// statistics, then one elementwise pass; the pool of all edges is taken once, of sum_e w_pool,e x_e.
//
// Backward (cell_node_backward) saves nothing of its own: it re-reads the op's inputs and the
// (2k, C) statistics and recomputes x_hat and the pooled gradient.  One pass computes per channel
// sum(g), sum(g (y - mu)) per branch, sum(g x_e) and sum(avgpool^T(g) x_e) per edge, and writes
//      d x_e = w_skip g + w_pool avgpool^T(g)             (avgpool^T: the pool's adjoint)
// one more writes
//      d y_b = A g + C1 y_b + C0                          (training-mode BN backward, per channel)
// and the BN affine and architecture-weight gradients come from the reduced sums.
//
// Kernels: channels-last (cell_node_kernels.cpp for the CPU, cuda/cell_node_kernel.cu for CUDA),
// reached through internal ops (_cell_node_forward, _cell_node_backward, _channel_stats,
// _relu_backward_add) that also take what the whole cell needs: conv biases added on read, relu(node)
// written beside the node, input gradients accumulated in place.  Results are deterministic and, on
// the CPU, independent of the thread count.  The public ops copy other layouts to channels-last and
// return their first input's layout.
#include "cell_node.h"
#include "cell_node_kernels.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <vector>

namespace nb360 {

at::ScalarType cell_node_stats_dtype(at::ScalarType activations) {
  return (activations == at::kHalf || activations == at::kBFloat16) ? at::kFloat : activations;
}

namespace {

void check_same(const char* op, const char* what, int64_t i, const at::Tensor& t, const at::Tensor& ref) {
  TORCH_CHECK(t.sizes() == ref.sizes(), op, ": ", what, " ", i, " has shape ", t.sizes(), " but inputs[0] has ",
              ref.sizes());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": ", what, " ", i, " has dtype ", t.scalar_type(),
              " but inputs[0] has ", ref.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), op, ": ", what, " ", i, " is on ", t.device(), " but inputs[0] is on ",
              ref.device());
}

void check_per_branch(const char* op, const char* what, const at::Tensor& t, int64_t branches, int64_t C,
                      const at::Tensor& ref) {
  TORCH_CHECK(t.dim() == 2 && t.size(0) == branches && t.size(1) == C, op, ": ", what, " must have shape [",
              branches, ", ", C, "] (one row per conv branch: 2 per incoming edge), got ", t.sizes());
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), op, ": ", what, " must be floating point, got ", t.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), op, ": ", what, " is on ", t.device(), " but the inputs are on ",
              ref.device());
}

}  // namespace

CellNodeShape check_cell_node_args(const char* op, at::TensorList inputs, at::TensorList convs,
                                   const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight,
                                   const std::optional<at::Tensor>& bn_bias,
                                   const std::optional<at::Tensor>& running_mean,
                                   const std::optional<at::Tensor>& running_var, bool batch_stats) {
  const auto k = static_cast<int64_t>(inputs.size());
  TORCH_CHECK(k >= 1 && k <= kCellNodeMaxEdges, op, ": expected 1 to ", kCellNodeMaxEdges,
              " inputs (one source node per incoming edge), got ", k);
  const auto& x0 = inputs[0];
  TORCH_CHECK(x0.dim() == 3 || x0.dim() == 4, op, ": inputs must be (N, C, L) or (N, C, H, W) tensors, got shape ",
              x0.sizes());
  TORCH_CHECK(at::isFloatingType(x0.scalar_type()), op, ": inputs must be floating point, got ", x0.scalar_type());
  for (int64_t i = 1; i < k; ++i) check_same(op, "inputs", i, inputs[i], x0);
  TORCH_CHECK(static_cast<int64_t>(convs.size()) == kCellNodeBranches * k, op, ": expected ",
              kCellNodeBranches * k, " conv outputs (nor_conv_1x1 and nor_conv_3x3 of each of the ", k,
              " edges), got ", convs.size());
  for (int64_t i = 0; i < static_cast<int64_t>(convs.size()); ++i) check_same(op, "convs", i, convs[i], x0);
  TORCH_CHECK(weights.dim() == 2 && weights.size(0) == k && weights.size(1) == kCellNodeOps, op,
              ": weights must have shape [", k, ", ", kCellNodeOps, "] (edges x NB201 operations), got ",
              weights.sizes());
  TORCH_CHECK(at::isFloatingType(weights.scalar_type()), op, ": weights must be floating point, got ",
              weights.scalar_type());
  TORCH_CHECK(weights.device() == x0.device(), op, ": weights are on ", weights.device(), " but the inputs are on ",
              x0.device());

  CellNodeShape s{};
  s.edges = k;
  s.branches = kCellNodeBranches * k;
  s.N = x0.size(0);
  s.C = x0.size(1);
  s.H = x0.dim() == 4 ? x0.size(2) : 1;
  s.W = x0.size(-1);
  TORCH_CHECK(s.C >= 1 && s.H >= 1 && s.W >= 1, op, ": channel and spatial sizes must be positive, got ",
              x0.sizes());

  TORCH_CHECK(bn_weight.has_value() == bn_bias.has_value(), op,
              ": give both bn_weight and bn_bias (affine BN) or neither");
  if (bn_weight.has_value()) {
    check_per_branch(op, "bn_weight", *bn_weight, s.branches, s.C, x0);
    check_per_branch(op, "bn_bias", *bn_bias, s.branches, s.C, x0);
  }
  TORCH_CHECK(running_mean.has_value() == running_var.has_value(), op,
              ": give both running_mean and running_var or neither");
  if (running_mean.has_value()) {
    check_per_branch(op, "running_mean", *running_mean, s.branches, s.C, x0);
    check_per_branch(op, "running_var", *running_var, s.branches, s.C, x0);
  }
  TORCH_CHECK(batch_stats || running_mean.has_value(), op,
              ": batch_stats=False (eval mode) needs running_mean and running_var");
  TORCH_CHECK(!batch_stats || s.N * s.H * s.W > 1, op,
              ": batch statistics need more than 1 value per channel, got input shape ", x0.sizes());
  return s;
}

namespace {

std::vector<at::Tensor> channels_last_views(at::TensorList ts) {
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (const auto& t : ts) out.push_back(as_channels_last_view(t));
  return out;
}

NodeOperands node_operands(at::TensorList inputs, at::TensorList convs, const at::Tensor& weights,
                           const std::optional<at::Tensor>& bn_weight, const std::optional<at::Tensor>& bn_bias) {
  NodeOperands ops;
  ops.inputs = channels_last_views(inputs);
  ops.convs = channels_last_views(convs);
  ops.weights = weights;
  ops.bn_weight = bn_weight;
  ops.bn_bias = bn_bias;
  return ops;
}

// The public ops return the layout of their first input (channels-last or contiguous).
at::Tensor in_layout_of(const at::Tensor& t, bool channels_last) { return channels_last ? t : t.contiguous(); }

// Device-generic: the node kernels are the internal ops below, dispatched by device.
std::tuple<at::Tensor, at::Tensor, at::Tensor> cell_node_impl(
    at::TensorList inputs, at::TensorList convs, const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight,
    const std::optional<at::Tensor>& bn_bias, const std::optional<at::Tensor>& running_mean,
    const std::optional<at::Tensor>& running_var, bool batch_stats, double eps) {
  check_cell_node_args("cell_node", inputs, convs, weights, bn_weight, bn_bias, running_mean, running_var,
                       batch_stats);
  auto out = empty_channels_last(inputs[0]);
  auto [mean, var] = node_forward(node_operands(inputs, convs, weights, bn_weight, bn_bias), running_mean,
                                  running_var, batch_stats, eps, out, std::nullopt);
  return {in_layout_of(out, prefers_channels_last(inputs[0])), mean, var};
}

std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor, at::Tensor, at::Tensor>
cell_node_backward_impl(const at::Tensor& grad, at::TensorList inputs, at::TensorList convs, const at::Tensor& weights,
                        const std::optional<at::Tensor>& bn_weight, const std::optional<at::Tensor>& bn_bias,
                        const at::Tensor& mean, const at::Tensor& var, bool batch_stats, double eps) {
  const auto s = check_cell_node_args("cell_node_backward", inputs, convs, weights, bn_weight, bn_bias, mean, var,
                                      batch_stats);
  TORCH_CHECK(grad.sizes() == inputs[0].sizes() && grad.scalar_type() == inputs[0].scalar_type() &&
                  grad.device() == inputs[0].device(),
              "cell_node_backward: grad must match the inputs in shape, dtype and device, got ", grad.sizes(), " ",
              grad.scalar_type(), " on ", grad.device());
  std::vector<at::Tensor> grad_inputs, grad_convs;
  for (int64_t e = 0; e < s.edges; ++e) grad_inputs.push_back(empty_channels_last(inputs[0]));
  for (int64_t b = 0; b < s.branches; ++b) grad_convs.push_back(empty_channels_last(inputs[0]));
  const auto grads = node_backward(as_channels_last_view(grad), node_operands(inputs, convs, weights, bn_weight, bn_bias),
                                   mean, var, batch_stats, eps, grad_inputs,
                                   std::vector<bool>(static_cast<size_t>(s.edges), false), grad_convs);
  const bool cl = prefers_channels_last(inputs[0]);
  for (auto& t : grad_inputs) t = in_layout_of(t, cl);
  for (auto& t : grad_convs) t = in_layout_of(t, cl);
  return {grad_inputs, grad_convs, grads.weights, grads.bn_weight, grads.bn_bias};
}

using NodeForwardOp = std::tuple<at::Tensor, at::Tensor>(
    at::TensorList, at::TensorList, const std::optional<at::Tensor>&, const at::Tensor&,
    const std::optional<at::Tensor>&, const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
    const std::optional<at::Tensor>&, bool, double, const at::Tensor&, const std::optional<at::Tensor>&);
using NodeBackwardOp = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, at::TensorList, at::TensorList, const std::optional<at::Tensor>&, const at::Tensor&,
    const std::optional<at::Tensor>&, const std::optional<at::Tensor>&, const at::Tensor&, const at::Tensor&, bool,
    double, at::TensorList, at::IntArrayRef, at::TensorList);
using ChannelStatsOp = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const std::optional<at::Tensor>&);
using ReluBackwardAddOp = void(const at::Tensor&, const at::Tensor&, const at::Tensor&);

template <typename Signature>
c10::TypedOperatorHandle<Signature> internal_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> node_forward(const NodeOperands& ops, const std::optional<at::Tensor>& mean,
                                                const std::optional<at::Tensor>& var, bool batch_stats, double eps,
                                                const at::Tensor& out, const std::optional<at::Tensor>& relu_out) {
  static const auto op = internal_op<NodeForwardOp>("nb360::_cell_node_forward");
  return op.call(ops.inputs, ops.convs, ops.conv_bias, ops.weights, ops.bn_weight, ops.bn_bias, mean, var,
                 batch_stats, eps, out, relu_out);
}

NodeGrads node_backward(const at::Tensor& grad, const NodeOperands& ops, const at::Tensor& mean, const at::Tensor& var,
                        bool batch_stats, double eps, const std::vector<at::Tensor>& grad_inputs,
                        const std::vector<bool>& accumulate, const std::vector<at::Tensor>& grad_convs) {
  static const auto op = internal_op<NodeBackwardOp>("nb360::_cell_node_backward");
  std::vector<int64_t> modes;
  std::vector<at::Tensor> targets, conv_targets;
  const auto none = at::empty({0}, grad.options());  // a skipped gradient
  for (size_t e = 0; e < grad_inputs.size(); ++e) {
    modes.push_back(!grad_inputs[e].defined() ? kSkipGradient : accumulate[e] ? kAddGradient : kWriteGradient);
    targets.push_back(grad_inputs[e].defined() ? grad_inputs[e] : none);
  }
  for (const auto& t : grad_convs) conv_targets.push_back(t.defined() ? t : none);
  auto [w, gamma, beta, bias, coefficients] =
      op.call(grad, ops.inputs, ops.convs, ops.conv_bias, ops.weights, ops.bn_weight, ops.bn_bias, mean, var,
              batch_stats, eps, targets, modes, conv_targets);
  return {w, gamma, beta, bias, coefficients};
}

std::tuple<at::Tensor, at::Tensor> channel_stats(const at::Tensor& y, const std::optional<at::Tensor>& bias) {
  static const auto op = internal_op<ChannelStatsOp>("nb360::_channel_stats");
  return op.call(y, bias);
}

void relu_backward_add(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& add) {
  static const auto op = internal_op<ReluBackwardAddOp>("nb360::_relu_backward_add");
  op.call(dst, src, add);
}

TORCH_LIBRARY_FRAGMENT(nb360, m) {
  m.def(
      "cell_node(Tensor[] inputs, Tensor[] convs, Tensor weights, Tensor? bn_weight, Tensor? bn_bias, "
      "Tensor? running_mean, Tensor? running_var, bool batch_stats, float eps) -> (Tensor, Tensor, Tensor)");
  m.def(
      "cell_node_backward(Tensor grad, Tensor[] inputs, Tensor[] convs, Tensor weights, Tensor? bn_weight, "
      "Tensor? bn_bias, Tensor mean, Tensor var, bool batch_stats, float eps) "
      "-> (Tensor[], Tensor[], Tensor, Tensor, Tensor)");
  // Internal: the node kernels themselves, writing into given channels-last views (cell_node_kernels.h).
  // Called from C++ only (the public ops above and search_cell), never traced. A grad_inputs or
  // grad_convs entry of no elements is skipped; the last output holds the (3, 2k, C) coefficients of
  // d convs = A g + C1 convs + C0.
  m.def(
      "_cell_node_forward(Tensor[] inputs, Tensor[] convs, Tensor? conv_bias, Tensor weights, Tensor? bn_weight, "
      "Tensor? bn_bias, Tensor? mean, Tensor? var, bool batch_stats, float eps, Tensor(a!) out, "
      "Tensor(b!)? relu_out) -> (Tensor, Tensor)");
  m.def(
      "_cell_node_backward(Tensor grad, Tensor[] inputs, Tensor[] convs, Tensor? conv_bias, Tensor weights, "
      "Tensor? bn_weight, Tensor? bn_bias, Tensor mean, Tensor var, bool batch_stats, float eps, "
      "Tensor(a!)[] grad_inputs, int[] input_modes, Tensor(b!)[] grad_convs) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("_channel_stats(Tensor y, Tensor? bias) -> (Tensor, Tensor)");
  m.def("_relu_backward_add(Tensor(a!) dst, Tensor src, Tensor add) -> ()");
}

TORCH_LIBRARY_IMPL(nb360, CPU, m) {
  m.impl("cell_node", &cell_node_impl);
  m.impl("cell_node_backward", &cell_node_backward_impl);
}

#if NB360_WITH_CUDA
TORCH_LIBRARY_IMPL(nb360, CUDA, m) {
  m.impl("cell_node", &cell_node_impl);
  m.impl("cell_node_backward", &cell_node_backward_impl);
}
#endif

}  // namespace nb360
