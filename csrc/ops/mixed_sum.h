// mixed_sum: the weighted sum of a DARTS mixed edge, out = sum_k weights[k] * inputs[k].
#pragma once

#include <ATen/ATen.h>

namespace nb360 {

// The most operations one mixed edge may carry (the DARTS space has 8).
constexpr int64_t kMaxMixedInputs = 8;

// Checks shapes, dtypes and devices shared by the CPU and CUDA implementations (TORCH_CHECK).
void check_mixed_sum_args(at::TensorList inputs, const at::Tensor& weights, const char* op);

}  // namespace nb360
