// cell_node kernels' internal interface: one fused NB201 target node on channels-last operands,
// with the extras the whole-cell op (search_cell.cpp) needs. Used by the public ops in
// cell_node.cpp and by search_cell.cpp; implemented for the CPU in cell_node_kernels.cpp and for
// CUDA in cuda/cell_node.cu (registered at load time, so this library links without CUDA).
//
// Operands are "channels-last views": (N, C, H, W) or (N, C, L) tensors whose channels are
// contiguous (stride(1) == 1) and whose pixels are evenly spaced (stride(W) = P, stride(H) = W * P,
// any batch stride) -- a channels-last node, or a channel slice of a wider channels-last conv output
// read in place. `as_channels_last_view` copies anything else.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "cell_node.h"

namespace nb360 {

// Elements between neighbouring pixels of a channels-last view.
int64_t pixel_stride(const at::Tensor& t);
// True when t is a channels-last view as described above.
bool is_channels_last_view(const at::Tensor& t);
// t when it is a channels-last view, else a channels-last copy.
at::Tensor as_channels_last_view(const at::Tensor& t);
// An uninitialised channels-last tensor of t's sizes ((N, C, L): strides (L C, 1, C)).
at::Tensor empty_channels_last(const at::Tensor& like, std::optional<at::ScalarType> dtype = std::nullopt);
// The public ops' output layout: channels-last when the first input is channels-last and not also
// NCHW-contiguous, else contiguous (mirrored by the fake implementations in nb360/ops/cell_node.py).
bool prefers_channels_last(const at::Tensor& t);

// One target node's operands; tensors are channels-last views (see above).
struct NodeOperands {
  std::vector<at::Tensor> inputs;          // k source nodes
  std::vector<at::Tensor> convs;           // 2k conv outputs [e0 1x1, e0 3x3, e1 1x1, ...]
  std::optional<at::Tensor> conv_bias;     // (2k, C): the convs' biases, added on read (convs hold conv - bias)
  at::Tensor weights;                      // (k, 5) architecture weights
  std::optional<at::Tensor> bn_weight, bn_bias;  // (2k, C) or none
};

struct NodeGrads {
  at::Tensor weights;    // (k, 5), weights' dtype
  at::Tensor bn_weight;  // (2k, C), BN parameters' (else the statistics') dtype
  at::Tensor bn_bias;    // (2k, C)
  at::Tensor conv_bias;  // (2k, C): sum over (n, h, w) of each conv's output gradient
  at::Tensor dy_coefficients;  // (3, 2k, C), accumulation dtype: d y_b = [0] g + [1] y_b + [2] (y_b as stored)
};

// The node kernels, called through the dispatcher: internal ops registered per device
// (cell_node_kernels.cpp for the CPU, cuda/cell_node.cu for CUDA; schemas in cell_node.cpp), so the
// whole-cell op runs on either device and tests can route them to the emulated CUDA device code.
//
// Forward: writes the node into `out` (a channels-last view) and, when given, relu(node) into
// `relu_out`; returns (mean, var) (2k, C) of the convs (bias included) -- the batch statistics, or
// the given ones (running, or precomputed batch statistics) when !batch_stats.
std::tuple<at::Tensor, at::Tensor> node_forward(const NodeOperands& ops, const std::optional<at::Tensor>& mean,
                                                const std::optional<at::Tensor>& var, bool batch_stats, double eps,
                                                const at::Tensor& out, const std::optional<at::Tensor>& relu_out);

// _cell_node_backward's input_modes, one per incoming edge.
constexpr int64_t kSkipGradient = 0, kWriteGradient = 1, kAddGradient = 2;

// Backward: writes d out/d inputs[e] into grad_inputs[e] (skipped when undefined; added to its
// contents when accumulate[e]) and d out/d convs[b] into grad_convs[b] (channels-last views, e.g.
// slices of one wide gradient buffer; skipped when undefined -- the caller then forms them itself
// from the returned coefficients); returns the small gradients and those coefficients.
NodeGrads node_backward(const at::Tensor& grad, const NodeOperands& ops, const at::Tensor& mean, const at::Tensor& var,
                        bool batch_stats, double eps, const std::vector<at::Tensor>& grad_inputs,
                        const std::vector<bool>& accumulate, const std::vector<at::Tensor>& grad_convs);

// Batch statistics (mean, biased var) of every channel of one channels-last tensor y, of y + bias
// when bias (C) is given, in the stats dtype: the same values the forward computes for its convs.
std::tuple<at::Tensor, at::Tensor> channel_stats(const at::Tensor& y, const std::optional<at::Tensor>& bias);

// dst += (src > 0) * add, elementwise over tensors of one shape: the ReLU's backward folded into
// the gradient accumulation of a source node.
void relu_backward_add(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& add);

// CPU: out (n, k C) = per edge e, columns [e C, (e + 1) C): coef[0, e] g[e] + coef[1, e] y1 + coef[2, e]
// -- the 1x1 convs' output gradients of a block of n pixel rows, from the node kernels' coefficients
// (3, k, C) (accumulation dtype), the target nodes' gradients g[e] (n, C) and the saved 1x1 outputs
// y1 (n, k C). Rows of every operand are contiguous.
void conv1x1_output_grad_rows(const at::Tensor& out, const std::vector<at::Tensor>& g, const at::Tensor& y1,
                              const at::Tensor& coefficients);

}  // namespace nb360
