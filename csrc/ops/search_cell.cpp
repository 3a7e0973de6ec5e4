// search_cell: a whole NB201 search cell (4 nodes, 6 mixed edges) as one op, forward and backward.
//
// Why one op for the cell (nb360 issue 20): with one op per target node (cell_node) the autograd
// graph of a cell holds ~20 nodes whose glue -- the split-backward concatenation of conv-output
// gradients, gradient additions of source nodes used by several edges, the ReLUs and their
// backward, the layout reorders of NCHW convolutions -- cost more than torch.compile's generated
// code for the whole cell. Here the cell runs, channels-last throughout:
//
//   forward, for source s = 0, 1, 2 (node s exists once target s is done):
//     r_s = relu(node s)            (node 0: one pass; nodes 1, 2: written by the node kernel itself)
//     Y3_s = conv3x3(r_s, [3x3 kernels of every edge leaving s])   (oneDNN / cuDNN, no bias)
//     Y1_s = r_s @ [1x1 kernels of every edge leaving s]^T        (one GEMM: a 1x1 conv in NHWC)
//     node s+1 = cell_node kernel over its incoming edges, reading the conv outputs as channel
//                slices in place; the convs' biases are added by the node kernel on read.
//   backward, for target t = 3, 2, 1 (d node t is complete once every target above it is done):
//     cell_node backward kernel: d node_s of its sources written or accumulated in place, d Y of
//                its conv branches written into one gradient buffer per source;
//     then source s = t - 1 (all its outgoing edges are done): d r_s = conv3x3^T(dY3_s) + dY1_s W1_s
//                (the GEMM accumulates into the conv's result), d node s += [node s > 0] d r_s in
//                one pass, and -- only when asked for -- the weight gradients from relu(node s)
//                recomputed (not saved) and dY.
// The convs' bias gradients are the per-channel sums of dY, which the node kernel has in closed
// form (zero with batch statistics), so no pass over dY is spent on them.
//
// Saved for backward: nodes 1 and 2 and the six conv outputs (the cell input is the op's input),
// the same 6 + 4 + 2 channel blocks as the per-node path; relu(node s) is recomputed.
// `single_conv` puts each source's 1x1 kernels, zero-padded to 3x3, in the same convolution as
// its 3x3 kernels (one launch; the GPU default: oneDNN on CPUs computes the zero taps).
//
// 1D cells (N, C, L) run as 2D cells of height 1 (3x3 kernels as 1x3).
// Device-generic: convolutions and GEMMs through ATen, node kernels through the dispatcher
// (cell_node_kernels.h), so the same code serves the CPU and CUDA.
// One file (~710 lines) on purpose: the forward, the backward and the C++ autograd function of one op
// share the cell's topology, its operand and layout helpers (CellArgs, SourceKernels, SourceOutputs,
// target_operands) and the row-block GEMMs; the sections are marked by `// ----` rules.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/graph_task.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "cell_node.h"
#include "cell_node_kernels.h"

namespace nb360 {
namespace {

constexpr int kNodes = 4;
constexpr int kEdges = 6;
constexpr int kBranchesTotal = kCellNodeBranches * kEdges;  // 12: [e0 1x1, e0 3x3, e1 1x1, ...]
// (source, target) of each edge, in nb360.space.nb201.EDGES order.
constexpr std::array<std::array<int, 2>, kEdges> kEdgeNodes{{{0, 1}, {0, 2}, {1, 2}, {0, 3}, {1, 3}, {2, 3}}};

struct Topology {
  std::array<std::vector<int>, kNodes> out_edges, in_edges;
  std::array<int, kEdges> position{};  // index of edge e among its source's outgoing edges
  Topology() {
    for (int e = 0; e < kEdges; ++e) {
      position[e] = static_cast<int>(out_edges[kEdgeNodes[e][0]].size());
      out_edges[kEdgeNodes[e][0]].push_back(e);
      in_edges[kEdgeNodes[e][1]].push_back(e);
    }
  }
};

const Topology& topology() {
  static const Topology t;
  return t;
}

// (N, C, L) -> (N, C, 1, L); 4D unchanged.
at::Tensor as4d(const at::Tensor& t) { return t.dim() == 3 ? t.unsqueeze(2) : t; }

at::Tensor channels_last4d(const at::Tensor& t) { return t.contiguous(at::MemoryFormat::ChannelsLast); }

// (N, C, H, W) channels-last <-> (N*H*W, C) rows, without copies.
at::Tensor rows_of(const at::Tensor& t) { return t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)}); }
at::Tensor from_rows(const at::Tensor& rows, int64_t N, int64_t H, int64_t W) {
  return rows.view({N, H, W, rows.size(1)}).permute({0, 3, 1, 2});
}

// ---------------------------------------------------------------- the 1x1 convolutions as GEMMs
//
// In NHWC a 1x1 convolution is a GEMM over the N*H*W pixel rows, (P, C) x (C, k C): faster than
// oneDNN's 1x1 convolution here (no layout handling). These GEMMs are skinny (K, N <= 3 C), and BLAS's
// own threading of them loses on two threads (the weight gradient splits the P-long reduction), so
// they run on fixed row blocks over at::parallel_for, each block single-threaded: the same calls for
// any thread count, so the results do not depend on it either.
constexpr int64_t kGemmBlocks = 16;

int64_t gemm_block_rows(int64_t P) { return std::max<int64_t>(256, (P + kGemmBlocks - 1) / kGemmBlocks); }

// out = a @ b, or out += a @ b; a (P, K), b (K, M), out (P, M) with contiguous rows.
void gemm_rows(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out, bool accumulate) {
  const int64_t P = a.size(0), rows = gemm_block_rows(P);
  const int64_t blocks = (P + rows - 1) / rows;
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; ++i) {
      const int64_t r0 = i * rows, n = std::min(rows, P - r0);
      auto o = out.narrow(0, r0, n);  // a view: written in place
      if (accumulate) {
        o.addmm_(a.narrow(0, r0, n), b);
      } else {
        at::mm_out(o, a.narrow(0, r0, n), b);
      }
    }
  });
}

// a^T @ b over the P rows of a (P, M) and b (P, K): per-block products added in block order.
at::Tensor gemm_reduce_rows(const at::Tensor& a, const at::Tensor& b) {
  const int64_t P = a.size(0), rows = gemm_block_rows(P);
  const int64_t blocks = (P + rows - 1) / rows;
  auto partial = at::empty({blocks, a.size(1), b.size(1)}, a.options());
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; ++i) {
      const int64_t r0 = i * rows, n = std::min(rows, P - r0);
      auto slot = partial[i];
      at::mm_out(slot, a.narrow(0, r0, n).t(), b.narrow(0, r0, n));
    }
  });
  auto total = partial[0].clone();
  for (int64_t i = 1; i < blocks; ++i) total.add_(partial[i]);
  return total;
}

// The 1x1 convs' backward of one source without materialising their output gradient dY1 (P, k C):
// per fixed block of pixel rows, dY1 = A g_t + C1 y1 + C0 for each outgoing edge (the node kernels'
// coefficients, g_t the gradient of the edge's target node) into a cache-resident scratch block, then
// dr += dY1 W1 (d relu(node s), when dr is defined) and the block's share of dW1 = dY1^T relu(node s)
// (when relu is defined), added in block order. Returns dW1 (k C, C), or an undefined tensor.
at::Tensor deferred_1x1_backward(const std::vector<at::Tensor>& g_rows, const at::Tensor& coefficients,
                                 const at::Tensor& y1_rows, const at::Tensor& w1, const at::Tensor& dr_rows,
                                 const at::Tensor& relu_rows) {
  const int64_t P = y1_rows.size(0), kC = y1_rows.size(1), rows = gemm_block_rows(P);
  const int64_t blocks = (P + rows - 1) / rows;
  const auto coef = coefficients.contiguous();
  at::Tensor partial;
  if (relu_rows.defined()) partial = at::empty({blocks, kC, relu_rows.size(1)}, y1_rows.options());
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    // A scratch block per thread, kept across calls (<= 1/16 of a source's 1x1 outputs): a fresh
    // allocation per call would fault its pages in every time.
    thread_local std::vector<char> storage;
    const size_t bytes = static_cast<size_t>(rows * kC) * y1_rows.element_size();
    if (storage.size() < bytes) storage.resize(bytes);
    auto scratch = at::from_blob(storage.data(), {rows, kC}, y1_rows.options());
    std::vector<at::Tensor> g_block(g_rows.size());
    for (int64_t i = b0; i < b1; ++i) {
      const int64_t r0 = i * rows, n = std::min(rows, P - r0);
      auto block = scratch.narrow(0, 0, n);
      for (size_t e = 0; e < g_rows.size(); ++e) g_block[e] = g_rows[e].narrow(0, r0, n);
      conv1x1_output_grad_rows(block, g_block, y1_rows.narrow(0, r0, n), coef);
      if (dr_rows.defined()) {
        auto d = dr_rows.narrow(0, r0, n);  // a view: accumulated in place
        d.addmm_(block, w1);
      }
      if (relu_rows.defined()) {
        auto slot = partial[i];
        at::mm_out(slot, block.t(), relu_rows.narrow(0, r0, n));
      }
    }
  });
  if (!relu_rows.defined()) return {};
  auto total = partial[0].clone();
  for (int64_t i = 1; i < blocks; ++i) total.add_(partial[i]);
  return total;
}

// ---------------------------------------------------------------- the cell's operands and layout

at::Tensor empty_cl4d(const at::Tensor& like, int64_t channels) {
  return at::empty({like.size(0), channels, like.size(2), like.size(3)},
                   like.options().memory_format(at::MemoryFormat::ChannelsLast));
}

struct CellArgs {
  int64_t N, C, H, W;
  bool one_d;
  std::array<int64_t, 2> padding;  // of the 3x3 convolution: (1, 1), 1D (0, 1)
};

// running: whether running statistics are read (forward); backward reads the saved statistics instead.
CellArgs check_args(const char* op, const at::Tensor& x, const at::Tensor& weights, at::TensorList conv_weight,
                    at::TensorList conv_bias, at::TensorList bn_weight, at::TensorList bn_bias,
                    at::TensorList running_mean, at::TensorList running_var, bool batch_stats, bool running) {
  TORCH_CHECK(x.dim() == 3 || x.dim() == 4, op, ": x must be (N, C, L) or (N, C, H, W), got shape ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be floating point, got ", x.scalar_type());
  TORCH_CHECK(weights.dim() == 2 && weights.size(0) == kEdges && weights.size(1) == kCellNodeOps, op,
              ": weights must have shape [6, 5] (edges x NB201 operations), got ", weights.sizes());
  TORCH_CHECK(weights.device() == x.device(), op, ": weights are on ", weights.device(), " but x is on ", x.device());
  CellArgs a{};
  a.one_d = x.dim() == 3;
  a.N = x.size(0);
  a.C = x.size(1);
  a.H = a.one_d ? 1 : x.size(2);
  a.W = x.size(-1);
  a.padding = a.one_d ? std::array<int64_t, 2>{0, 1} : std::array<int64_t, 2>{1, 1};
  TORCH_CHECK(a.C >= 1 && a.H >= 1 && a.W >= 1, op, ": channel and spatial sizes must be positive, got ", x.sizes());
  TORCH_CHECK(static_cast<int64_t>(conv_weight.size()) == kBranchesTotal, op,
              ": conv_weight must hold 12 kernels (1x1 and 3x3 of each of the 6 edges), got ", conv_weight.size());
  for (int64_t b = 0; b < kBranchesTotal; ++b) {
    const int64_t k = b % 2 == 0 ? 1 : 3;
    std::vector<int64_t> want{a.C, a.C};
    for (int d = 2; d < x.dim(); ++d) want.push_back(k);
    TORCH_CHECK(conv_weight[b].sizes() == at::IntArrayRef(want), op, ": conv_weight[", b, "] must have shape ",
                at::IntArrayRef(want), ", got ", conv_weight[b].sizes());
    TORCH_CHECK(conv_weight[b].scalar_type() == x.scalar_type() && conv_weight[b].device() == x.device(), op,
                ": conv_weight[", b, "] must match x's dtype and device, got ", conv_weight[b].scalar_type(), " on ",
                conv_weight[b].device());
  }
  auto check_vectors = [&](const char* what, at::TensorList ts, bool required) {
    TORCH_CHECK(ts.empty() ? !required : static_cast<int64_t>(ts.size()) == kBranchesTotal, op, ": ", what,
                " must hold 12 vectors (one per conv branch)", required ? "" : " or none", ", got ", ts.size());
    for (const auto& t : ts) {
      TORCH_CHECK(t.dim() == 1 && t.size(0) == a.C && t.device() == x.device() && at::isFloatingType(t.scalar_type()),
                  op, ": every ", what, " entry must be a floating-point vector of ", a.C, " values on ", x.device(),
                  ", got ", t.sizes(), " ", t.scalar_type(), " on ", t.device());
    }
  };
  check_vectors("conv_bias", conv_bias, false);
  check_vectors("bn_weight", bn_weight, false);
  check_vectors("bn_bias", bn_bias, false);
  TORCH_CHECK(bn_weight.size() == bn_bias.size(), op, ": give both bn_weight and bn_bias (affine BN) or neither");
  if (running) {
    check_vectors("running_mean", running_mean, !batch_stats);
    check_vectors("running_var", running_var, !batch_stats);
  }
  TORCH_CHECK(!batch_stats || a.N * a.H * a.W > 1, op,
              ": batch statistics need more than 1 value per channel, got input shape ", x.sizes());
  return a;
}

// Rows [2 e0, 2 e1) of 12 stacked per-branch vectors, or none.
std::optional<at::Tensor> branch_rows(const std::optional<at::Tensor>& stacked, int e0, int e1) {
  if (!stacked.has_value()) return std::nullopt;
  return stacked->narrow(0, 2 * e0, 2 * (e1 - e0));
}

std::optional<at::Tensor> stack_or_none(at::TensorList ts) {
  if (ts.empty()) return std::nullopt;
  return at::stack(ts);
}

// The grouped kernels of one source: 3x3 (k C, C, 3, 3) and 1x1 (k C, C), or with single_conv one
// (2 k C, C, 3, 3) of [1x1 of every edge, centre taps | 3x3 of every edge].
struct SourceKernels {
  at::Tensor w3, w1;
};

SourceKernels source_kernels(const CellArgs& a, at::TensorList conv_weight, int s, bool single_conv) {
  std::vector<at::Tensor> k3, k1;
  for (int e : topology().out_edges[s]) {
    k1.push_back(conv_weight[2 * e].reshape({a.C, a.C}));
    k3.push_back(as4d(conv_weight[2 * e + 1]));
  }
  SourceKernels k;
  auto w1 = at::cat(k1);
  if (single_conv) {
    auto centre = at::zeros({w1.size(0), a.C, a.one_d ? 1 : 3, 3}, w1.options());
    centre.select(3, 1).select(2, a.one_d ? 0 : 1).copy_(w1);
    k.w3 = at::cat({centre, at::cat(k3)});
  } else {
    k.w3 = at::cat(k3);
    k.w1 = w1;
  }
  return k;
}

// Conv outputs of one source, channels-last 4D: single_conv -> one (N, 2kC, H, W) tensor whose
// first kC channels are the 1x1 outputs; else y1 (N, kC, H, W) and y3 (N, kC, H, W).
struct SourceOutputs {
  at::Tensor y1, y3;  // y1 undefined with single_conv (its channels are y3's first half)
  bool single = false;
  at::Tensor conv1(int64_t pos, int64_t C) const {
    return single ? y3.narrow(1, pos * C, C) : y1.narrow(1, pos * C, C);
  }
  at::Tensor conv3(int64_t pos, int64_t C, int64_t k) const {
    return single ? y3.narrow(1, (k + pos) * C, C) : y3.narrow(1, pos * C, C);
  }
};

SourceOutputs source_convs(const CellArgs& a, const at::Tensor& r, const SourceKernels& k) {
  SourceOutputs out;
  out.single = !k.w1.defined();
  out.y3 = channels_last4d(at::convolution(r, k.w3, std::nullopt, {1, 1}, a.padding, {1, 1}, false, {0, 0}, 1));
  if (k.w1.defined()) {
    auto rows = at::empty({a.N * a.H * a.W, k.w1.size(0)}, r.options());
    gemm_rows(rows_of(r), k.w1.t(), rows, false);
    out.y1 = from_rows(rows, a.N, a.H, a.W);
  }
  return out;
}

// The operands of target node t: its incoming edges' sources and conv branches.
NodeOperands target_operands(const CellArgs& a, int t, const std::vector<at::Tensor>& nodes,
                             const std::vector<SourceOutputs>& convs, const at::Tensor& weights,
                             const std::optional<at::Tensor>& conv_bias, const std::optional<at::Tensor>& gamma,
                             const std::optional<at::Tensor>& beta) {
  const auto& in = topology().in_edges[t];
  const int e0 = in.front(), e1 = in.back() + 1;  // contiguous in EDGES order
  NodeOperands ops;
  for (int e : in) {
    const int s = kEdgeNodes[e][0];
    const int64_t k = static_cast<int64_t>(topology().out_edges[s].size());
    ops.inputs.push_back(nodes[s]);
    ops.convs.push_back(convs[s].conv1(topology().position[e], a.C));
    ops.convs.push_back(convs[s].conv3(topology().position[e], a.C, k));
  }
  ops.weights = weights.narrow(0, e0, e1 - e0);
  ops.conv_bias = branch_rows(conv_bias, e0, e1);
  ops.bn_weight = branch_rows(gamma, e0, e1);
  ops.bn_bias = branch_rows(beta, e0, e1);
  return ops;
}

// Batch statistics of every conv branch of source s, into rows b = 2 e + j of branch_mean / branch_var.
void source_statistics(const CellArgs& a, int s, const SourceOutputs& y, at::TensorList conv_bias,
                       std::vector<at::Tensor>& branch_mean, std::vector<at::Tensor>& branch_var) {
  const auto& out = topology().out_edges[s];
  const int64_t k = static_cast<int64_t>(out.size());
  auto biases = [&](int j) -> std::optional<at::Tensor> {
    if (conv_bias.empty()) return std::nullopt;
    std::vector<at::Tensor> b;
    for (int e : out) b.push_back(conv_bias[2 * e + j]);
    return at::cat(b);
  };
  auto scatter = [&](const std::tuple<at::Tensor, at::Tensor>& stats, int j, int64_t first) {
    const auto& [mean, var] = stats;
    for (int64_t i = 0; i < k; ++i) {
      branch_mean[2 * out[i] + j] = mean.narrow(0, (first + i) * a.C, a.C);
      branch_var[2 * out[i] + j] = var.narrow(0, (first + i) * a.C, a.C);
    }
  };
  if (y.y1.defined()) {
    scatter(channel_stats(y.y1, biases(0)), 0, 0);
    scatter(channel_stats(y.y3, biases(1)), 1, 0);
  } else {  // single_conv: [1x1 of every edge | 3x3 of every edge]
    std::optional<at::Tensor> bias;
    if (!conv_bias.empty()) bias = at::cat({*biases(0), *biases(1)});
    const auto stats = channel_stats(y.y3, bias);
    scatter(stats, 0, 0);
    scatter(stats, 1, k);
  }
}

// ---------------------------------------------------------------- forward

std::tuple<at::Tensor, std::vector<at::Tensor>, at::Tensor, at::Tensor> search_cell_impl(
    const at::Tensor& x, const at::Tensor& weights, at::TensorList conv_weight, at::TensorList conv_bias,
    at::TensorList bn_weight, at::TensorList bn_bias, at::TensorList running_mean, at::TensorList running_var,
    bool batch_stats, double eps, bool single_conv) {
  const auto a = check_args("search_cell", x, weights, conv_weight, conv_bias, bn_weight, bn_bias, running_mean,
                            running_var, batch_stats, true);
  const auto bias = stack_or_none(conv_bias), gamma = stack_or_none(bn_weight), beta = stack_or_none(bn_bias);
  const auto rmean = stack_or_none(running_mean), rvar = stack_or_none(running_var);
  std::vector<at::Tensor> nodes{channels_last4d(as4d(x))};
  std::vector<SourceOutputs> convs;
  std::vector<at::Tensor> means, vars;
  // With batch statistics, each source's conv outputs are reduced in one pass over all their channels
  // right after the convolution (whole cache lines; each target node reads only its channel slices).
  std::vector<at::Tensor> branch_mean(kBranchesTotal), branch_var(kBranchesTotal);
  // One ReLU buffer for the cell: relu(node s) is dead once source s's convolutions ran, so node s + 1's
  // kernel writes its ReLU over it (fewer fresh pages to fault in per step).
  auto relu_buffer = empty_cl4d(nodes[0], a.C);
  at::clamp_min_out(relu_buffer, nodes[0], 0);
  at::Tensor relu = relu_buffer;
  for (int s = 0; s < kNodes - 1; ++s) {
    convs.push_back(source_convs(a, relu, source_kernels(a, conv_weight, s, single_conv)));
    if (batch_stats) source_statistics(a, s, convs.back(), conv_bias, branch_mean, branch_var);
    const int t = s + 1;
    const auto ops = target_operands(a, t, nodes, convs, weights, bias, gamma, beta);
    const auto& in = topology().in_edges[t];
    const int e0 = in.front(), e1 = in.back() + 1;
    const auto mean_t = batch_stats ? at::stack(at::TensorList(branch_mean).slice(2 * e0, 2 * (e1 - e0)))
                                    : *branch_rows(rmean, e0, e1);
    const auto var_t = batch_stats ? at::stack(at::TensorList(branch_var).slice(2 * e0, 2 * (e1 - e0)))
                                   : *branch_rows(rvar, e0, e1);
    auto out = empty_cl4d(nodes[0], a.C);
    relu = t + 1 < kNodes ? relu_buffer : at::Tensor();
    // The statistics are given (batch statistics computed above, or running ones): the node
    // normalises with them either way.
    auto [mean, var] = node_forward(ops, mean_t, var_t, false, eps, out,
                                    relu.defined() ? std::optional<at::Tensor>(relu) : std::nullopt);
    nodes.push_back(out);
    means.push_back(mean);
    vars.push_back(var);
  }
  std::vector<at::Tensor> saved{nodes[1], nodes[2]};
  for (const auto& c : convs) {
    saved.push_back(c.y3);
    if (c.y1.defined()) saved.push_back(c.y1);
  }
  auto out = a.one_d ? nodes[3].squeeze(2) : nodes[3];
  return {out, saved, at::cat(means), at::cat(vars)};
}

// ---------------------------------------------------------------- backward

// Whether the running backward pass consumes the conv kernels' gradients. A torch.compile'd graph
// fixes at trace time which gradients its backward returns (every one its inputs require); this asks
// the engine at run time instead, so a compiled architecture step (backward(inputs=[alpha])) skips
// the conv weight gradients too: they are returned as zeros, which the engine then discards.
// The kernels are found among the leaves fed by the node being evaluated -- this op's own node in
// eager mode, the compiled graph's in torch.compile -- by their storage. True (compute) outside an
// engine run, when the run computes every gradient, and whenever a kernel cannot be identified:
// inductor's layout optimisation hands the op channels-last copies of some 3x3 kernels, so in a
// compiled architecture step only the cells whose kernels all arrive as themselves skip the work
// (benchmarks/RESULTS.md); switching the weights' requires_grad off for the step skips it always.
bool conv_gradients_consumed(at::TensorList conv_weight) {
  const auto* exec_info = torch::autograd::get_current_graph_task_exec_info();
  if (exec_info == nullptr || exec_info->empty()) return true;
  const auto node = torch::autograd::get_current_node();
  if (!node) return true;
  std::unordered_map<const void*, bool> consumed;  // a leaf's data pointer -> whether its gradient is used
  for (const auto& edge : node->next_edges()) {
    auto* accumulate = dynamic_cast<torch::autograd::AccumulateGrad*>(edge.function.get());
    if (accumulate == nullptr || !accumulate->variable.defined()) continue;
    const auto it = exec_info->find(accumulate);
    consumed[accumulate->variable.const_data_ptr()] = it != exec_info->end() && it->second.should_execute();
  }
  for (const auto& w : conv_weight) {
    const auto it = consumed.find(w.const_data_ptr());
    if (it == consumed.end() || it->second) return true;
  }
  return false;
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>,
           std::vector<at::Tensor>>
search_cell_backward_impl(const at::Tensor& grad, const at::Tensor& x, at::TensorList saved, const at::Tensor& weights,
                          at::TensorList conv_weight, at::TensorList conv_bias, at::TensorList bn_weight,
                          at::TensorList bn_bias, const at::Tensor& mean, const at::Tensor& var, bool batch_stats,
                          double eps, bool single_conv, std::array<bool, 3> output_mask) {
  const auto a = check_args("search_cell_backward", x, weights, conv_weight, conv_bias, bn_weight, bn_bias, {}, {},
                            batch_stats, false);
  TORCH_CHECK(grad.sizes() == x.sizes() && grad.scalar_type() == x.scalar_type() && grad.device() == x.device(),
              "search_cell_backward: grad must match x in shape, dtype and device, got ", grad.sizes(), " ",
              grad.scalar_type(), " on ", grad.device());
  const size_t per_source = single_conv ? 1 : 2;
  TORCH_CHECK(saved.size() == 2 + 3 * per_source, "search_cell_backward: expected ", 2 + 3 * per_source,
              " saved tensors (nodes 1, 2 and the conv outputs), got ", saved.size());
  const bool want_input = output_mask[0];
  // Asked for the conv gradients, but nobody will read them: return zeros of their shapes (see above).
  const bool unused_conv = output_mask[1] && !conv_gradients_consumed(conv_weight);
  const bool want_conv = output_mask[1] && !unused_conv;
  const bool want_bn = output_mask[2] && !bn_weight.empty();
  const auto bias = stack_or_none(conv_bias), gamma = stack_or_none(bn_weight), beta = stack_or_none(bn_bias);
  const std::vector<at::Tensor> nodes{channels_last4d(as4d(x)), saved[0], saved[1]};
  std::vector<SourceOutputs> convs(3), grads(3);
  std::vector<SourceKernels> kernels_of;
  // On the CPU the 1x1 convs' output gradients are never materialised: the node kernels return their
  // coefficients, and each source forms them a block of pixel rows at a time, hot in cache, right
  // before the block's GEMMs (deferred_1x1_backward).
  const bool defer_1x1 = x.is_cpu() && !single_conv;
  for (int s = 0; s < 3; ++s) {
    convs[s].single = grads[s].single = single_conv;
    convs[s].y3 = saved[2 + s * per_source];
    if (!single_conv) convs[s].y1 = saved[3 + s * per_source];
    grads[s].y3 = at::empty_like(convs[s].y3, at::MemoryFormat::ChannelsLast);
    if (!single_conv && !defer_1x1)
      grads[s].y1 = from_rows(at::empty({a.N * a.H * a.W, convs[s].y1.size(1)}, x.options()), a.N, a.H, a.W);
    kernels_of.push_back(source_kernels(a, conv_weight, s, single_conv));
  }
  // d node s: written by target 3 (which reads every source), accumulated by the targets below it.
  std::vector<at::Tensor> dnodes(3);
  for (int s = 0; s < 3; ++s)
    if (s > 0 || want_input) dnodes[s] = empty_cl4d(nodes[0], a.C);
  std::vector<bool> written(3, false);
  at::Tensor relu_buffer;  // relu(node s), recomputed for the weight gradients (one buffer for the cell)
  at::Tensor grad_alpha = at::zeros({kEdges, kCellNodeOps}, weights.options());
  std::vector<at::Tensor> g_gamma(3), g_beta(3), g_bias(3);
  std::vector<at::Tensor> g_w3(3), g_w1(3);
  std::vector<at::Tensor> target_grad(kNodes), edge_coefficients(kEdges);  // for the deferred 1x1 gradients
  for (int t = kNodes - 1; t >= 1; --t) {
    const auto ops = target_operands(a, t, nodes, convs, weights, bias, gamma, beta);
    const auto& in = topology().in_edges[t];
    const int e0 = in.front(), e1 = in.back() + 1;
    std::vector<at::Tensor> dx, dy;
    std::vector<bool> accumulate;
    for (int e : in) {
      const int s = kEdgeNodes[e][0];
      const int64_t k = static_cast<int64_t>(topology().out_edges[s].size());
      dx.push_back(dnodes[s]);
      accumulate.push_back(written[s]);
      dy.push_back(defer_1x1 ? at::Tensor() : grads[s].conv1(topology().position[e], a.C));
      dy.push_back(grads[s].conv3(topology().position[e], a.C, k));
    }
    const auto g = t == kNodes - 1 ? channels_last4d(as4d(grad)) : dnodes[t];
    const auto ng = node_backward(g, ops, mean.narrow(0, 2 * e0, 2 * (e1 - e0)),
                                     var.narrow(0, 2 * e0, 2 * (e1 - e0)), batch_stats, eps, dx, accumulate, dy);
    target_grad[t] = g;
    for (int e : in) edge_coefficients[e] = ng.dy_coefficients.select(1, 2 * (e - e0));  // its 1x1 branch
    for (int e : in) written[kEdgeNodes[e][0]] = true;
    grad_alpha.narrow(0, e0, e1 - e0).copy_(ng.weights);
    g_gamma[t - 1] = ng.bn_weight;
    g_beta[t - 1] = ng.bn_bias;
    g_bias[t - 1] = ng.conv_bias;
    // Source s = t - 1: every edge leaving it has its conv-output gradient now.
    const int s = t - 1;
    const auto& kw = kernels_of[s];
    at::Tensor dr;  // d relu(node s)
    if (dnodes[s].defined()) {
      dr = channels_last4d(std::get<0>(at::convolution_backward(grads[s].y3, nodes[s], kw.w3, std::nullopt, {1, 1},
                                                                a.padding, {1, 1}, false, {0, 0}, 1,
                                                                {true, false, false})));
    }
    at::Tensor r;  // relu(node s), for the weight gradients
    if (want_conv) {
      if (!relu_buffer.defined()) relu_buffer = empty_cl4d(nodes[0], a.C);
      r = at::clamp_min_out(relu_buffer, nodes[s], 0);
    }
    if (kw.w1.defined() && defer_1x1) {
      std::vector<at::Tensor> g_rows, coefficients;
      for (int e : topology().out_edges[s]) {
        g_rows.push_back(rows_of(target_grad[kEdgeNodes[e][1]]));
        coefficients.push_back(edge_coefficients[e]);
      }
      const auto dw1 = deferred_1x1_backward(g_rows, at::stack(coefficients, 1), rows_of(convs[s].y1), kw.w1,
                                             dr.defined() ? rows_of(dr) : at::Tensor(),
                                             r.defined() ? rows_of(r) : at::Tensor());
      if (want_conv) g_w1[s] = dw1;
    } else if (kw.w1.defined()) {
      if (dr.defined()) gemm_rows(rows_of(grads[s].y1), kw.w1, rows_of(dr), true);
      if (want_conv) g_w1[s] = gemm_reduce_rows(rows_of(grads[s].y1), rows_of(r));
    }
    if (dnodes[s].defined()) relu_backward_add(dnodes[s], nodes[s], dr);
    if (want_conv) {
      g_w3[s] = std::get<1>(at::convolution_backward(grads[s].y3, r, kw.w3, std::nullopt, {1, 1}, a.padding, {1, 1},
                                                     false, {0, 0}, 1, {false, true, false}));
    }
  }
  at::Tensor grad_x = want_input ? (a.one_d ? dnodes[0].squeeze(2) : dnodes[0]) : at::empty({0}, x.options());
  std::vector<at::Tensor> grad_conv_weight, grad_conv_bias, grad_bn_weight, grad_bn_bias;
  if (want_conv) {
    grad_conv_weight.resize(kBranchesTotal);
    for (int s = 0; s < 3; ++s) {
      const auto& out = topology().out_edges[s];
      const int64_t k = static_cast<int64_t>(out.size());
      for (int e : out) {
        const int64_t pos = topology().position[e];
        at::Tensor g1, g3;
        if (single_conv) {
          g1 = g_w3[s].narrow(0, pos * a.C, a.C).select(3, 1).select(2, a.one_d ? 0 : 1);
          g3 = g_w3[s].narrow(0, (k + pos) * a.C, a.C);
        } else {
          g1 = g_w1[s].narrow(0, pos * a.C, a.C);
          g3 = g_w3[s].narrow(0, pos * a.C, a.C);
        }
        grad_conv_weight[2 * e] = g1.reshape(conv_weight[2 * e].sizes()).clone(at::MemoryFormat::Contiguous);
        grad_conv_weight[2 * e + 1] =
            (a.one_d ? g3.squeeze(2) : g3).clone(at::MemoryFormat::Contiguous);
      }
    }
    if (!conv_bias.empty()) {
      const auto all = at::cat(g_bias).to(conv_bias[0].scalar_type());
      for (int64_t b = 0; b < kBranchesTotal; ++b) grad_conv_bias.push_back(all[b].clone());
    }
  }
  if (unused_conv) {
    for (const auto& w : conv_weight) grad_conv_weight.push_back(at::zeros_like(w, at::MemoryFormat::Contiguous));
    for (const auto& b : conv_bias) grad_conv_bias.push_back(at::zeros_like(b));
  }
  if (want_bn) {
    const auto gg = at::cat(g_gamma).to(bn_weight[0].scalar_type());
    const auto gb = at::cat(g_beta).to(bn_bias[0].scalar_type());
    for (int64_t b = 0; b < kBranchesTotal; ++b) {
      grad_bn_weight.push_back(gg[b].clone());
      grad_bn_bias.push_back(gb[b].clone());
    }
  }
  return {grad_x, grad_alpha, grad_conv_weight, grad_conv_bias, grad_bn_weight, grad_bn_bias};
}

// ---------------------------------------------------------------- autograd (C++)

// Registered in C++ rather than with torch.library.register_autograd: the backward asks the engine
// which inputs it needs (AutogradContext::needs_input_grad -> Node::task_should_compute_output), so an
// architecture step (backward(inputs=[alpha])) skips the convolutions' weight gradients, and a call
// costs no Python. torch.compile traces through it (AOTAutograd runs this backward on fake tensors,
// asking for every gradient), so a compiled graph computes what its inputs require.
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using SearchCellOp = std::tuple<at::Tensor, std::vector<at::Tensor>, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, at::TensorList, at::TensorList, at::TensorList, at::TensorList,
    at::TensorList, at::TensorList, bool, double, bool);
using SearchCellBackwardOp =
    std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>,
               std::vector<at::Tensor>>(const at::Tensor&, const at::Tensor&, at::TensorList, const at::Tensor&,
                                        at::TensorList, at::TensorList, at::TensorList, at::TensorList,
                                        const at::Tensor&, const at::Tensor&, bool, double, bool,
                                        std::array<bool, 3>);

class SearchCellFunction : public torch::autograd::Function<SearchCellFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weights,
                               at::TensorList conv_weight, at::TensorList conv_bias, at::TensorList bn_weight,
                               at::TensorList bn_bias, at::TensorList running_mean, at::TensorList running_var,
                               bool batch_stats, double eps, bool single_conv) {
    static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("nb360::search_cell", "").typed<SearchCellOp>();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, saved, mean, var] = op.call(x, weights, conv_weight, conv_bias, bn_weight, bn_bias, running_mean,
                                           running_var, batch_stats, eps, single_conv);
    ctx->saved_data["batch_stats"] = batch_stats;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["single_conv"] = single_conv;
    ctx->saved_data["counts"] = std::vector<int64_t>{static_cast<int64_t>(saved.size()),
                                                      static_cast<int64_t>(conv_weight.size()),
                                                      static_cast<int64_t>(conv_bias.size()),
                                                      static_cast<int64_t>(bn_weight.size()),
                                                      static_cast<int64_t>(running_mean.size())};
    variable_list to_save{x, weights, mean, var};
    to_save.insert(to_save.end(), saved.begin(), saved.end());
    for (at::TensorList list : {conv_weight, conv_bias, bn_weight, bn_bias}) to_save.insert(to_save.end(), list.begin(), list.end());
    ctx->save_for_backward(to_save);
    variable_list outputs{out};
    outputs.insert(outputs.end(), saved.begin(), saved.end());
    outputs.push_back(mean);
    outputs.push_back(var);
    ctx->mark_non_differentiable(variable_list(outputs.begin() + 1, outputs.end()));
    ctx->set_materialize_grads(false);  // else autograd fills zero gradients for the saved outputs on every step
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("nb360::search_cell_backward", "")
                         .typed<SearchCellBackwardOp>();
    const auto counts = ctx->saved_data["counts"].toIntVector();
    const int64_t n_saved = counts[0], n_conv = counts[1], n_bias = counts[2], n_bn = counts[3], n_run = counts[4];
    const auto stored = ctx->get_saved_variables();
    const auto& x = stored[0];
    const auto& weights = stored[1];
    auto next = stored.begin() + 4;
    auto take = [&](int64_t n) {
      std::vector<at::Tensor> out(next, next + n);
      next += n;
      return out;
    };
    const auto saved = take(n_saved), conv_weight = take(n_conv), conv_bias = take(n_bias);
    const auto bn_weight = take(n_bn), bn_bias = take(n_bn);
    // Gradient slots, one per forward argument that is a tensor: x, weights, conv_weight[12], conv_bias[],
    // bn_weight[], bn_bias[], running_mean[], running_var[]; then batch_stats, eps, single_conv.
    const int64_t conv0 = 2, bias0 = conv0 + n_conv, gamma0 = bias0 + n_bias, beta0 = gamma0 + n_bn;
    const int64_t slots = beta0 + n_bn + 2 * n_run + 3;
    auto any_needed = [&](int64_t first, int64_t count) {
      for (int64_t i = first; i < first + count; ++i)
        if (ctx->needs_input_grad(i)) return true;
      return false;
    };
    const bool want_input = ctx->needs_input_grad(0);
    const bool want_alpha = ctx->needs_input_grad(1);
    const bool want_conv = any_needed(conv0, n_conv + n_bias);
    const bool want_bn = any_needed(gamma0, 2 * n_bn);
    variable_list result(static_cast<size_t>(slots));
    if (!want_input && !want_alpha && !want_conv && !want_bn) return result;
    auto grad = grads[0];
    if (!grad.defined()) grad = at::zeros_like(x);  // node 3 unused: every gradient is zero
    auto [gx, gw, gconv, gbias, ggamma, gbeta] =
        op.call(grad, x, saved, weights, conv_weight, conv_bias, bn_weight, bn_bias, stored[2], stored[3],
                ctx->saved_data["batch_stats"].toBool(), ctx->saved_data["eps"].toDouble(),
                ctx->saved_data["single_conv"].toBool(), {want_input, want_conv, want_bn});
    if (want_input) result[0] = gx;
    if (want_alpha) result[1] = gw;
    for (size_t i = 0; i < gconv.size(); ++i) result[conv0 + i] = gconv[i];
    for (size_t i = 0; i < gbias.size(); ++i) result[bias0 + i] = gbias[i];
    for (size_t i = 0; i < ggamma.size(); ++i) result[gamma0 + i] = ggamma[i];
    for (size_t i = 0; i < gbeta.size(); ++i) result[beta0 + i] = gbeta[i];
    return result;
  }
};

std::tuple<at::Tensor, std::vector<at::Tensor>, at::Tensor, at::Tensor> search_cell_autograd(
    const at::Tensor& x, const at::Tensor& weights, at::TensorList conv_weight, at::TensorList conv_bias,
    at::TensorList bn_weight, at::TensorList bn_bias, at::TensorList running_mean, at::TensorList running_var,
    bool batch_stats, double eps, bool single_conv) {
  auto outputs = SearchCellFunction::apply(x, weights, conv_weight, conv_bias, bn_weight, bn_bias, running_mean,
                                           running_var, batch_stats, eps, single_conv);
  std::vector<at::Tensor> saved(outputs.begin() + 1, outputs.end() - 2);
  return {outputs[0], saved, outputs[outputs.size() - 2], outputs.back()};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(nb360, m) {
  m.def(
      "search_cell(Tensor x, Tensor weights, Tensor[] conv_weight, Tensor[] conv_bias, Tensor[] bn_weight, "
      "Tensor[] bn_bias, Tensor[] running_mean, Tensor[] running_var, bool batch_stats, float eps, bool single_conv) "
      "-> (Tensor, Tensor[], Tensor, Tensor)");
  m.def(
      "search_cell_backward(Tensor grad, Tensor x, Tensor[] saved, Tensor weights, Tensor[] conv_weight, "
      "Tensor[] conv_bias, Tensor[] bn_weight, Tensor[] bn_bias, Tensor mean, Tensor var, bool batch_stats, "
      "float eps, bool single_conv, bool[3] output_mask) "
      "-> (Tensor, Tensor, Tensor[], Tensor[], Tensor[], Tensor[])");
}

TORCH_LIBRARY_IMPL(nb360, Autograd, m) { m.impl("search_cell", &search_cell_autograd); }

TORCH_LIBRARY_IMPL(nb360, CPU, m) {
  m.impl("search_cell", &search_cell_impl);
  m.impl("search_cell_backward", &search_cell_backward_impl);
}

#if NB360_WITH_CUDA
TORCH_LIBRARY_IMPL(nb360, CUDA, m) {
  m.impl("search_cell", &search_cell_impl);
  m.impl("search_cell_backward", &search_cell_backward_impl);
}
#endif

}  // namespace nb360
