// mixed_sum: schema and CPU implementation.
//
//   nb360::mixed_sum(Tensor[] inputs, Tensor weights) -> Tensor
//       out = sum_k weights[k] * inputs[k]            (one pass over the inputs)
//   nb360::mixed_sum_backward(Tensor grad, Tensor[] inputs, Tensor weights) -> Tensor
//       grad_weights[k] = sum_i grad[i] * inputs[k][i]  (one pass over grad for all k)
//
// The input gradients are weights[k] * grad and need no kernel of their own
// (see nb360/ops/mixed_sum.py, which registers the autograd formula).
#include "mixed_sum.h"

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

namespace nb360 {

void check_mixed_sum_args(at::TensorList inputs, const at::Tensor& weights, const char* op) {
  const auto k = static_cast<int64_t>(inputs.size());
  TORCH_CHECK(k >= 1 && k <= kMaxMixedInputs, op, ": expected 1 to ", kMaxMixedInputs, " inputs, got ", k);
  TORCH_CHECK(weights.dim() == 1 && weights.size(0) == k, op, ": weights must have shape [", k,
              "] (one per input), got ", weights.sizes());
  const auto& first = inputs[0];
  for (int64_t i = 0; i < k; ++i) {
    const auto& x = inputs[i];
    TORCH_CHECK(x.sizes() == first.sizes(), op, ": input ", i, " has shape ", x.sizes(), " but input 0 has ",
                first.sizes());
    TORCH_CHECK(x.scalar_type() == first.scalar_type(), op, ": input ", i, " has dtype ", x.scalar_type(),
                " but input 0 has ", first.scalar_type());
    TORCH_CHECK(x.device() == first.device(), op, ": input ", i, " is on ", x.device(), " but input 0 is on ",
                first.device());
  }
  TORCH_CHECK(weights.scalar_type() == first.scalar_type(), op, ": weights have dtype ", weights.scalar_type(),
              " but the inputs have ", first.scalar_type());
  TORCH_CHECK(weights.device() == first.device(), op, ": weights are on ", weights.device(),
              " but the inputs are on ", first.device());
}

namespace {

std::vector<at::Tensor> contiguous_all(at::TensorList inputs) {
  std::vector<at::Tensor> out;
  out.reserve(inputs.size());
  for (const auto& x : inputs) out.push_back(x.contiguous());
  return out;
}

at::Tensor mixed_sum_cpu(at::TensorList inputs, const at::Tensor& weights) {
  check_mixed_sum_args(inputs, weights, "mixed_sum");
  const auto xs = contiguous_all(inputs);
  const auto w = weights.contiguous();
  auto out = at::empty(xs[0].sizes(), xs[0].options());
  const int64_t n = out.numel();
  const int64_t k = static_cast<int64_t>(xs.size());
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "mixed_sum_cpu", [&] {
    const scalar_t* src[kMaxMixedInputs];
    scalar_t wk[kMaxMixedInputs];
    for (int64_t j = 0; j < k; ++j) {
      src[j] = xs[j].const_data_ptr<scalar_t>();
      wk[j] = w.const_data_ptr<scalar_t>()[j];
    }
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        scalar_t acc = wk[0] * src[0][i];
        for (int64_t j = 1; j < k; ++j) acc += wk[j] * src[j][i];
        dst[i] = acc;
      }
    });
  });
  return out;
}

at::Tensor mixed_sum_backward_cpu(const at::Tensor& grad, at::TensorList inputs, const at::Tensor& weights) {
  check_mixed_sum_args(inputs, weights, "mixed_sum_backward");
  TORCH_CHECK(grad.sizes() == inputs[0].sizes() && grad.scalar_type() == inputs[0].scalar_type(),
              "mixed_sum_backward: grad must match the inputs in shape and dtype");
  const auto xs = contiguous_all(inputs);
  const auto g = grad.contiguous();
  const int64_t n = g.numel();
  const int64_t k = static_cast<int64_t>(xs.size());
  // Fixed chunks, each reduced in double and summed in chunk order: the result does not
  // depend on the number of threads (bit-identical runs are part of nb360's contract).
  constexpr int64_t kChunk = 32768;
  const int64_t chunks = std::max<int64_t>(1, (n + kChunk - 1) / kChunk);
  std::vector<double> partial(static_cast<size_t>(chunks * k), 0.0);
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "mixed_sum_backward_cpu", [&] {
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const scalar_t* src[kMaxMixedInputs];
    for (int64_t j = 0; j < k; ++j) src[j] = xs[j].const_data_ptr<scalar_t>();
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t begin = c * kChunk;
        const int64_t end = std::min(n, begin + kChunk);
        double acc[kMaxMixedInputs] = {0.0};
        for (int64_t i = begin; i < end; ++i) {
          const double gi = static_cast<double>(gp[i]);
          for (int64_t j = 0; j < k; ++j) acc[j] += gi * static_cast<double>(src[j][i]);
        }
        for (int64_t j = 0; j < k; ++j) partial[c * k + j] = acc[j];
      }
    });
  });
  auto total = at::zeros({k}, g.options().dtype(at::kDouble));
  double* t = total.mutable_data_ptr<double>();
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t j = 0; j < k; ++j) t[j] += partial[c * k + j];
  return total.to(weights.scalar_type());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(nb360, m) {
  m.def("mixed_sum(Tensor[] inputs, Tensor weights) -> Tensor");
  m.def("mixed_sum_backward(Tensor grad, Tensor[] inputs, Tensor weights) -> Tensor");
}

TORCH_LIBRARY_IMPL(nb360, CPU, m) {
  m.impl("mixed_sum", &mixed_sum_cpu);
  m.impl("mixed_sum_backward", &mixed_sum_backward_cpu);
}

}  // namespace nb360
