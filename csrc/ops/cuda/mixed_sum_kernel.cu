// mixed_sum CUDA kernels (torch-free device code; see mixed_sum_kernel.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "mixed_sum_kernel.h"

namespace nb360 {
namespace cuda {
namespace {

template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

template <typename T> __device__ __forceinline__ typename Acc<T>::type load(const T* p, std::int64_t i) {
  return static_cast<typename Acc<T>::type>(p[i]);
}
template <> __device__ __forceinline__ float load<__half>(const __half* p, std::int64_t i) { return __half2float(p[i]); }
template <> __device__ __forceinline__ float load<__nv_bfloat16>(const __nv_bfloat16* p, std::int64_t i) {
  return __bfloat162float(p[i]);
}

template <typename T> __device__ __forceinline__ T store(typename Acc<T>::type v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __half store<__half>(float v) { return __float2half(v); }
template <> __device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

constexpr int kThreads = 256;

template <typename T>
__global__ void mixed_sum_forward_kernel(MixedInputs inputs, const T* weights, T* out, std::int64_t n) {
  using A = typename Acc<T>::type;
  A w[kMaxMixedInputs];
  for (int k = 0; k < inputs.count; ++k) w[k] = load(weights, k);
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    A acc = w[0] * load(static_cast<const T*>(inputs.ptr[0]), i);
    for (int k = 1; k < inputs.count; ++k) acc += w[k] * load(static_cast<const T*>(inputs.ptr[k]), i);
    out[i] = store<T>(acc);
  }
}

template <typename T>
__global__ void mixed_sum_backward_kernel(const T* grad, MixedInputs inputs, typename Acc<T>::type* partials,
                                          std::int64_t n) {
  using A = typename Acc<T>::type;
  __shared__ A shared[kMaxMixedInputs][kThreads];
  A acc[kMaxMixedInputs];
  for (int k = 0; k < kMaxMixedInputs; ++k) acc[k] = A(0);
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const A g = load(grad, i);
    for (int k = 0; k < inputs.count; ++k) acc[k] += g * load(static_cast<const T*>(inputs.ptr[k]), i);
  }
  for (int k = 0; k < inputs.count; ++k) shared[k][threadIdx.x] = acc[k];
  __syncthreads();
  // Tree reduction in a fixed order: deterministic for a fixed launch configuration.
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      for (int k = 0; k < inputs.count; ++k) shared[k][threadIdx.x] += shared[k][threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    for (int k = 0; k < inputs.count; ++k) partials[blockIdx.x * inputs.count + k] = shared[k][0];
  }
}

int blocks_for(std::int64_t n) {
  const std::int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > 1024 ? 1024 : b));
}

template <typename T>
cudaError_t launch_forward(MixedInputs inputs, const void* weights, void* out, std::int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  mixed_sum_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(inputs, static_cast<const T*>(weights),
                                                                      static_cast<T*>(out), n);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const void* grad, MixedInputs inputs, void* partials, std::int64_t n, cudaStream_t stream) {
  mixed_sum_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(
      static_cast<const T*>(grad), inputs, static_cast<typename Acc<T>::type*>(partials), n);
  return cudaGetLastError();
}

}  // namespace

cudaError_t mixed_sum_forward(DType dtype, MixedInputs inputs, const void* weights, void* out, std::int64_t n,
                              cudaStream_t stream) {
  if (inputs.count < 1 || inputs.count > kMaxMixedInputs) return cudaErrorInvalidValue;
  switch (dtype) {
    case DType::kFloat32: return launch_forward<float>(inputs, weights, out, n, stream);
    case DType::kFloat64: return launch_forward<double>(inputs, weights, out, n, stream);
    case DType::kFloat16: return launch_forward<__half>(inputs, weights, out, n, stream);
    case DType::kBFloat16: return launch_forward<__nv_bfloat16>(inputs, weights, out, n, stream);
  }
  return cudaErrorInvalidValue;
}

int mixed_sum_backward_blocks(std::int64_t n) { return blocks_for(n); }

cudaError_t mixed_sum_backward_partials(DType dtype, const void* grad, MixedInputs inputs, void* partials,
                                        std::int64_t n, cudaStream_t stream) {
  if (inputs.count < 1 || inputs.count > kMaxMixedInputs) return cudaErrorInvalidValue;
  switch (dtype) {
    case DType::kFloat32: return launch_backward<float>(grad, inputs, partials, n, stream);
    case DType::kFloat64: return launch_backward<double>(grad, inputs, partials, n, stream);
    case DType::kFloat16: return launch_backward<__half>(grad, inputs, partials, n, stream);
    case DType::kBFloat16: return launch_backward<__nv_bfloat16>(grad, inputs, partials, n, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace nb360
