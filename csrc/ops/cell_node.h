// cell_node: the fused target-node kernel of an NB201 search cell (see cell_node.cpp for the design).
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace nb360 {

// NB201 nodes have at most 3 incoming edges; one more leaves room for a 5-node cell.
constexpr int64_t kCellNodeMaxEdges = 4;
// Batch-normalised conv branches per edge: nor_conv_1x1, nor_conv_3x3 (in that order).
constexpr int64_t kCellNodeBranches = 2;
// Columns of the architecture weights: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3.
constexpr int64_t kCellNodeOps = 5;
constexpr int64_t kOpSkip = 1;
constexpr int64_t kOpConv1x1 = 2;
constexpr int64_t kOpPool = 4;

// The sizes every cell_node operand shares; 1D tensors (N, C, L) are handled as H = 1, W = L.
struct CellNodeShape {
  int64_t edges;     // k, incoming edges
  int64_t branches;  // 2k BN'd conv branches
  int64_t N, C, H, W;
};

// Checks the operands of cell_node / cell_node_backward (TORCH_CHECK with the op name) and returns
// their shape. `stats` are the (2k, C) mean and var when given (backward), else nullptr.
CellNodeShape check_cell_node_args(const char* op, at::TensorList inputs, at::TensorList convs,
                                   const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight,
                                   const std::optional<at::Tensor>& bn_bias,
                                   const std::optional<at::Tensor>& running_mean,
                                   const std::optional<at::Tensor>& running_var, bool batch_stats);

// dtype of the per-channel statistics: float32 for half/bfloat16 activations, else the activations' dtype.
at::ScalarType cell_node_stats_dtype(at::ScalarType activations);

}  // namespace nb360
