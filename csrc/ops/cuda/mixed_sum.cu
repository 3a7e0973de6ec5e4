// mixed_sum: CUDA implementation (thin torch glue around mixed_sum_kernel.cu).
// Built only against a CUDA build of torch (see CMakeLists.txt).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "../mixed_sum.h"
#include "mixed_sum_kernel.h"

namespace nb360 {
namespace {

cuda::DType to_kernel_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return cuda::DType::kFloat32;
    case at::kDouble: return cuda::DType::kFloat64;
    case at::kHalf: return cuda::DType::kFloat16;
    case at::kBFloat16: return cuda::DType::kBFloat16;
    default: TORCH_CHECK(false, "mixed_sum: unsupported dtype ", t, " on CUDA (float32/64, float16, bfloat16)");
  }
  return cuda::DType::kFloat32;  // not reached: TORCH_CHECK throws
}

cuda::MixedInputs pack(const std::vector<at::Tensor>& xs) {
  cuda::MixedInputs in{};
  in.count = static_cast<int>(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) in.ptr[i] = xs[i].const_data_ptr();
  return in;
}

std::vector<at::Tensor> contiguous_all(at::TensorList inputs) {
  std::vector<at::Tensor> out;
  for (const auto& x : inputs) out.push_back(x.contiguous());
  return out;
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

at::Tensor mixed_sum_cuda(at::TensorList inputs, const at::Tensor& weights) {
  check_mixed_sum_args(inputs, weights, "mixed_sum");
  const c10::cuda::CUDAGuard guard(inputs[0].device());
  const auto xs = contiguous_all(inputs);
  const auto w = weights.contiguous();
  auto out = at::empty(xs[0].sizes(), xs[0].options());
  check_launch(cuda::mixed_sum_forward(to_kernel_dtype(out.scalar_type()), pack(xs), w.const_data_ptr(),
                                       out.mutable_data_ptr(), out.numel(), c10::cuda::getCurrentCUDAStream()),
               "mixed_sum");
  return out;
}

at::Tensor mixed_sum_backward_cuda(const at::Tensor& grad, at::TensorList inputs, const at::Tensor& weights) {
  check_mixed_sum_args(inputs, weights, "mixed_sum_backward");
  TORCH_CHECK(grad.sizes() == inputs[0].sizes() && grad.scalar_type() == inputs[0].scalar_type() &&
                  grad.device() == inputs[0].device(),
              "mixed_sum_backward: grad must match the inputs in shape, dtype and device, got ", grad.sizes(), " ",
              grad.scalar_type(), " on ", grad.device());
  const c10::cuda::CUDAGuard guard(inputs[0].device());
  const auto xs = contiguous_all(inputs);
  const auto g = grad.contiguous();
  const int64_t k = static_cast<int64_t>(xs.size());
  const auto acc = g.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto partials = at::empty({cuda::mixed_sum_backward_blocks(g.numel()), k}, g.options().dtype(acc));
  check_launch(cuda::mixed_sum_backward_partials(to_kernel_dtype(g.scalar_type()), g.const_data_ptr(), pack(xs),
                                                 partials.mutable_data_ptr(), g.numel(),
                                                 c10::cuda::getCurrentCUDAStream()),
               "mixed_sum_backward");
  return partials.sum(0).to(weights.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(nb360, CUDA, m) {
  m.impl("mixed_sum", &mixed_sum_cuda);
  m.impl("mixed_sum_backward", &mixed_sum_backward_cuda);
}

}  // namespace nb360
