// cell_node CUDA kernels (torch-free device code; see cell_node_kernel.h and, for the design,
// csrc/ops/cell_node.cpp).
//
// Forward: stats_partial (per (branch, channel) row and chunk of the N*H*W values: shifted sum and
// sum of squares) -> forward_finalize (one thread per channel: mean, var, and the per-channel
// coefficients out = B[c] + sum_b A[b, c] y_b + skip + pool) -> forward_elementwise (one thread per
// output element; the pool reads the 3x3 window of sum_e w_pool,e x_e; optionally relu(out) too).
// Backward: backward_partial (per channel and chunk: sum g, sum g (y_b - mu_b), sum g x_e,
// sum avgpool^T(g) x_e) -> backward_finalize (per channel: dy coefficients, BN affine and conv-bias
// gradients, per-channel architecture-gradient terms) -> arch_grad (sum over channels) ->
// backward_elementwise (input gradients written or accumulated, conv-output gradients).
// Operands are strided (NCHW planes or channels-last, in place); the elementwise kernels walk the
// elements in the memory order of their layout. The convs may hold conv - bias (the fused cell's
// convolutions run without bias): the kernels add the bias on read.
// Every reduction sums in a fixed order (per-thread strides, a fixed shuffle tree, chunks in order),
// so results are bitwise reproducible for a given shape.
// One file (~670 lines) on purpose: these kernels and their launchers share the operand views, the
// reduction helpers and the launch-limit checks, and tests/test_cuda_emulated.py compiles exactly the
// `*_kernel.cu` files, unchanged, on its host emulator.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cell_node_kernel.h"

namespace nb360 {
namespace cuda {
namespace cellnode {
namespace {

using i64 = std::int64_t;

template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

template <typename T> __device__ __forceinline__ typename Acc<T>::type ld(const T* p) {
  return static_cast<typename Acc<T>::type>(*p);
}
template <> __device__ __forceinline__ float ld<__half>(const __half* p) { return __half2float(*p); }
template <> __device__ __forceinline__ float ld<__nv_bfloat16>(const __nv_bfloat16* p) {
  return __bfloat162float(*p);
}

template <typename T> __device__ __forceinline__ T st(typename Acc<T>::type v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __half st<__half>(float v) { return __float2half(v); }
template <> __device__ __forceinline__ __nv_bfloat16 st<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// block_sum reduces whole warps of one block launched with exactly kThreads threads.
static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block_sum needs full warps and a legal block size");
// Backward per-channel sums: [0] g, [1, 1 + kMaxBranches) g (y_b - mu_b), then g x_e, then gp x_e.
constexpr int kSumG = 0;
constexpr int kSumGY = 1;
constexpr int kSumGX = kSumGY + kMaxBranches;
constexpr int kSumGPX = kSumGX + kMaxEdges;
constexpr int kSums = kSumGPX + kMaxEdges;
constexpr int kOpSkip = 1, kOpConv1x1 = 2, kOpPool = 4;

// Target number of blocks of the reduction kernels, and the fewest values one block reduces.
constexpr i64 kTargetBlocks = 1024;
constexpr i64 kMinPerBlock = 1024;
constexpr i64 kMaxGridY = kMaxStatRows;

i64 chunks_for(i64 M, i64 rows) {
  const i64 by_rows = (kTargetBlocks + rows - 1) / rows;
  const i64 by_size = (M + kMinPerBlock - 1) / kMinPerBlock;
  i64 chunks = by_rows < by_size ? by_rows : by_size;
  return chunks < 1 ? 1 : chunks;
}

i64 elementwise_blocks(i64 total) {
  const i64 b = (total + kThreads - 1) / kThreads;
  return b < 1 ? 1 : (b > 8192 ? 8192 : b);
}

// Block-wide sums of kCount per-thread values (fixed shuffle tree): results in thread 0's v.
template <typename A, int kCount>
__device__ __forceinline__ void block_sum(A (&v)[kCount]) {
  __shared__ A shared[kCount * kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int a = 0; a < kCount; ++a) {
    A x = v[a];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) x += __shfl_down_sync(0xffffffffu, x, off);
    if (lane == 0) shared[a * kWarps + warp] = x;
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int a = 0; a < kCount; ++a) {
      A x = lane < kWarps ? shared[a * kWarps + lane] : A(0);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) x += __shfl_down_sync(0xffffffffu, x, off);
      v[a] = x;
    }
  }
}

template <typename I>
__device__ __forceinline__ int window_count(I h, I w, I H, I W) {
  const int rows = 1 + (h > 0) + (h + 1 < H);
  const int cols = 1 + (w > 0) + (w + 1 < W);
  return rows * cols;
}

// Element (n, c, p) of a strided operand.
template <typename T, typename S>
__device__ __forceinline__ T* elem(const S& s, i64 n, i64 c, i64 p) {
  return static_cast<T*>(const_cast<void*>(static_cast<const void*>(s.ptr))) + n * s.sN + c * s.sC + p * s.sP;
}

// Element index i of the N*C*H*W elements -> (n, c, p), in the memory order of the layout.
template <typename I>
__device__ __forceinline__ void split_index(I i, I C, I HW, bool channels_last, I& n, I& c, I& p) {
  if (channels_last) {
    const I np = i / C;
    c = i - np * C;
    n = np / HW;
    p = np - n * HW;
  } else {
    const I nc = i / HW;
    p = i - nc * HW;
    n = nc / C;
    c = nc - n * C;
  }
}

template <typename A>
__device__ __forceinline__ A bias_of(const Operands& ops, int b, i64 c) {
  return ops.conv_bias ? static_cast<const A*>(ops.conv_bias)[b * ops.C + c] : A(0);
}

// ---------------------------------------------------------------- forward

// I: the type of the per-element index arithmetic (32-bit divisions when the sizes allow).
// rows = 2k * C (row = b * C + c) for a node, or C with a single operand y[0] (channel_stats).
template <typename T, typename I>
__global__ void stats_partial_kernel(Operands ops, i64 chunks, typename Acc<T>::type* partials) {
  using A = typename Acc<T>::type;
  const i64 row = blockIdx.y;  // b * C + c
  const int b = static_cast<int>(row / ops.C);
  const i64 c = row % ops.C;
  const i64 HW = ops.H * ops.W, M = ops.N * HW;
  const Strided& ys = ops.y[b];
  const T* y = static_cast<const T*>(ys.ptr) + c * ys.sC;
  const i64 per = (M + chunks - 1) / chunks;
  const i64 begin = static_cast<i64>(blockIdx.x) * per;
  const i64 end = begin + per < M ? begin + per : M;
  const A shift = ld(y);  // the channel's first value: no cancellation when |mean| >> std
  A v[2] = {A(0), A(0)};
  const I hw = static_cast<I>(HW);
  for (I i = static_cast<I>(begin + threadIdx.x); i < static_cast<I>(end); i += blockDim.x) {
    const I n = i / hw;
    const A d = ld(y + static_cast<i64>(n) * ys.sN + static_cast<i64>(i - n * hw) * ys.sP) - shift;
    v[0] += d;
    v[1] += d * d;
  }
  block_sum<A, 2>(v);
  if (threadIdx.x == 0) {
    partials[(row * chunks + blockIdx.x) * 2] = v[0];
    partials[(row * chunks + blockIdx.x) * 2 + 1] = v[1];
  }
}

// Mean and biased variance of channel `row` from the chunk partials (shift: the channel's first value).
template <typename T>
__device__ __forceinline__ void finish_stats(const Strided& ys, i64 c, i64 row, i64 chunks, double M,
                                             const typename Acc<T>::type* partials, double& mean, double& var) {
  double s = 0.0, ss = 0.0;
  for (i64 j = 0; j < chunks; ++j) {
    s += static_cast<double>(partials[(row * chunks + j) * 2]);
    ss += static_cast<double>(partials[(row * chunks + j) * 2 + 1]);
  }
  const double shift = static_cast<double>(ld(static_cast<const T*>(ys.ptr) + c * ys.sC));
  const double m = s / M;
  mean = shift + m;
  var = ss / M - m * m;
  var = var > 0.0 ? var : 0.0;
}

template <typename T>
__global__ void forward_finalize_kernel(Operands ops, Params params, i64 chunks,
                                        const typename Acc<T>::type* partials, typename Acc<T>::type* mean_out,
                                        typename Acc<T>::type* var_out, typename Acc<T>::type* coef_a,
                                        typename Acc<T>::type* coef_b) {
  using A = typename Acc<T>::type;
  const i64 c = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= ops.C) return;
  const A* w = static_cast<const A*>(params.weights);
  const A* gamma = static_cast<const A*>(params.gamma);
  const A* beta = static_cast<const A*>(params.beta);
  const A* rmean = static_cast<const A*>(params.running_mean);
  const A* rvar = static_cast<const A*>(params.running_var);
  const i64 HW = ops.H * ops.W;
  const double M = static_cast<double>(ops.N * HW);
  const int branches = ops.edges * kBranchesPerEdge;
  double bias = 0.0;
  for (int b = 0; b < branches; ++b) {
    const i64 i = b * ops.C + c;
    const double conv_bias = static_cast<double>(bias_of<A>(ops, b, c));
    double mean, var;
    if (params.batch_stats) {
      finish_stats<T>(ops.y[b], c, i, chunks, M, partials, mean, var);
      mean += conv_bias;
    } else {
      mean = static_cast<double>(rmean[i]);
      var = static_cast<double>(rvar[i]);
    }
    // Stored statistics are what backward reads: compute the coefficients from the rounded values.
    mean_out[i] = static_cast<A>(mean);
    var_out[i] = static_cast<A>(var);
    mean = static_cast<double>(mean_out[i]);
    var = static_cast<double>(var_out[i]);
    const double wb = static_cast<double>(w[(b / kBranchesPerEdge) * kOps + kOpConv1x1 + b % kBranchesPerEdge]);
    const double g = gamma ? static_cast<double>(gamma[i]) : 1.0;
    const double be = beta ? static_cast<double>(beta[i]) : 0.0;
    const double scale = g / sqrt(var + params.eps);
    coef_a[i] = static_cast<A>(wb * scale);
    bias += wb * (be - scale * (mean - conv_bias));  // the convs hold y - bias
  }
  coef_b[c] = static_cast<A>(bias);
}

// Each edge's skip_connect and avg_pool_3x3 weights (zero past the node's edges), for the elementwise kernels.
template <typename A>
__device__ __forceinline__ void edge_weights(const Operands& ops, const Params& params, A (&w_skip)[kMaxEdges],
                                             A (&w_pool)[kMaxEdges]) {
  const A* w = static_cast<const A*>(params.weights);
#pragma unroll
  for (int e = 0; e < kMaxEdges; ++e) {
    w_skip[e] = e < ops.edges ? w[e * kOps + kOpSkip] : A(0);
    w_pool[e] = e < ops.edges ? w[e * kOps + kOpPool] : A(0);
  }
}

template <typename T, typename I>
__global__ void forward_elementwise_kernel(Operands ops, Params params, const typename Acc<T>::type* coef_a,
                                           const typename Acc<T>::type* coef_b, MutStrided out, MutStrided relu) {
  using A = typename Acc<T>::type;
  A w_skip[kMaxEdges], w_pool[kMaxEdges];
  edge_weights(ops, params, w_skip, w_pool);
  const I H = static_cast<I>(ops.H), W = static_cast<I>(ops.W), HW = H * W, C = static_cast<I>(ops.C);
  const I total = static_cast<I>(ops.N) * C * HW;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    I n, c, p;
    split_index(i, C, HW, ops.channels_last, n, c, p);
    const I h = p / W, x = p - h * W;
    const I h0 = h > 0 ? h - 1 : 0, h1 = h + 1 < H ? h + 1 : H - 1;
    const I x0 = x > 0 ? x - 1 : 0, x1 = x + 1 < W ? x + 1 : W - 1;
    A acc = coef_b[c];
    A pooled = A(0);
#pragma unroll
    for (int e = 0; e < kMaxEdges; ++e) {
      if (e < ops.edges) {
        const Strided& xs = ops.x[e];
        const T* plane = elem<const T>(xs, n, c, 0);
        A window = A(0);
        for (I hh = h0; hh <= h1; ++hh)
          for (I xx = x0; xx <= x1; ++xx) window += ld(plane + static_cast<i64>(hh * W + xx) * xs.sP);
        pooled += w_pool[e] * window;
        acc += w_skip[e] * ld(plane + static_cast<i64>(p) * xs.sP);
      }
    }
    acc += pooled / static_cast<A>((h1 - h0 + 1) * (x1 - x0 + 1));
#pragma unroll
    for (int b = 0; b < kMaxBranches; ++b) {
      if (b < ops.edges * kBranchesPerEdge) acc += coef_a[b * C + c] * ld(elem<const T>(ops.y[b], n, c, p));
    }
    *elem<T>(out, n, c, p) = st<T>(acc);
    if (relu.ptr) *elem<T>(relu, n, c, p) = st<T>(acc > A(0) ? acc : A(0));
  }
}

// ---------------------------------------------------------------- backward

// avgpool^T(g) at (h, x): sum over the windows that contain (h, x) of g / window size. g_plane is
// channel c of image n; pixels sP apart.
template <typename T, typename I>
__device__ __forceinline__ typename Acc<T>::type pooled_grad(const T* g_plane, i64 sP, I h, I x, I H, I W) {
  using A = typename Acc<T>::type;
  const I h0 = h > 0 ? h - 1 : 0, h1 = h + 1 < H ? h + 1 : H - 1;
  const I x0 = x > 0 ? x - 1 : 0, x1 = x + 1 < W ? x + 1 : W - 1;
  A s = A(0);
  for (I hh = h0; hh <= h1; ++hh)
    for (I xx = x0; xx <= x1; ++xx)
      s += ld(g_plane + static_cast<i64>(hh * W + xx) * sP) / static_cast<A>(window_count(hh, xx, H, W));
  return s;
}

template <typename T, typename I>
__global__ void backward_partial_kernel(Operands ops, Strided grad, const typename Acc<T>::type* mean, i64 chunks,
                                        typename Acc<T>::type* partials) {
  using A = typename Acc<T>::type;
  const i64 c = blockIdx.y;
  const i64 H = ops.H, W = ops.W, HW = H * W, C = ops.C, M = ops.N * HW;
  const int branches = ops.edges * kBranchesPerEdge;
  A mu[kMaxBranches];  // the mean of what the convs hold (y - bias)
#pragma unroll
  for (int b = 0; b < kMaxBranches; ++b) mu[b] = b < branches ? mean[b * C + c] - bias_of<A>(ops, b, c) : A(0);
  A v[kSums];
#pragma unroll
  for (int a = 0; a < kSums; ++a) v[a] = A(0);
  const i64 per = (M + chunks - 1) / chunks;
  const i64 begin = static_cast<i64>(blockIdx.x) * per;
  const i64 end = begin + per < M ? begin + per : M;
  const I hw = static_cast<I>(HW), w_ = static_cast<I>(W), h_ = static_cast<I>(H);
  for (I i = static_cast<I>(begin + threadIdx.x); i < static_cast<I>(end); i += blockDim.x) {
    const I n = i / hw, p = i - n * hw;
    const I h = p / w_, x = p - h * w_;
    const T* g_plane = elem<const T>(grad, n, c, 0);
    const A g = ld(g_plane + static_cast<i64>(p) * grad.sP);
    const A gp = pooled_grad(g_plane, grad.sP, h, x, h_, w_);
    v[kSumG] += g;
#pragma unroll
    for (int b = 0; b < kMaxBranches; ++b) {
      if (b < branches) v[kSumGY + b] += g * (ld(elem<const T>(ops.y[b], n, c, p)) - mu[b]);
    }
#pragma unroll
    for (int e = 0; e < kMaxEdges; ++e) {
      if (e < ops.edges) {
        const A xv = ld(elem<const T>(ops.x[e], n, c, p));
        v[kSumGX + e] += g * xv;
        v[kSumGPX + e] += gp * xv;
      }
    }
  }
  block_sum<A, kSums>(v);
  if (threadIdx.x == 0) {
#pragma unroll
    for (int a = 0; a < kSums; ++a) partials[(c * chunks + blockIdx.x) * kSums + a] = v[a];
  }
}

// Per channel: dy = A g + C1 y' + C0 coefficients (y' = y - bias, what the convs hold), BN affine and
// conv-bias gradients, architecture-gradient terms.
template <typename T>
__global__ void backward_finalize_kernel(Operands ops, Params params, const typename Acc<T>::type* mean,
                                         const typename Acc<T>::type* var, i64 chunks,
                                         const typename Acc<T>::type* partials, typename Acc<T>::type* coef,
                                         typename Acc<T>::type* contrib, typename Acc<T>::type* grad_gamma,
                                         typename Acc<T>::type* grad_beta, typename Acc<T>::type* grad_bias) {
  using A = typename Acc<T>::type;
  const i64 c = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 C = ops.C;
  if (c >= C) return;
  double sums[kSums];
  for (int a = 0; a < kSums; ++a) sums[a] = 0.0;
  for (i64 j = 0; j < chunks; ++j)
    for (int a = 0; a < kSums; ++a) sums[a] += static_cast<double>(partials[(c * chunks + j) * kSums + a]);
  const A* w = static_cast<const A*>(params.weights);
  const A* gamma = static_cast<const A*>(params.gamma);
  const A* beta = static_cast<const A*>(params.beta);
  const double M = static_cast<double>(ops.N * ops.H * ops.W);
  const int branches = ops.edges * kBranchesPerEdge;
  const i64 nbc = static_cast<i64>(branches) * C;
  for (int b = 0; b < branches; ++b) {
    const i64 i = b * C + c;
    const int e = b / kBranchesPerEdge, op = kOpConv1x1 + b % kBranchesPerEdge;
    const double wb = static_cast<double>(w[e * kOps + op]);
    const double g = gamma ? static_cast<double>(gamma[i]) : 1.0;
    const double be = beta ? static_cast<double>(beta[i]) : 0.0;
    const double mu = static_cast<double>(mean[i]);
    const double invstd = 1.0 / sqrt(static_cast<double>(var[i]) + params.eps);
    const double sum_g_xhat = invstd * sums[kSumGY + b];
    const double a = wb * g * invstd;
    double c1 = 0.0, c0 = 0.0;
    if (params.batch_stats) {
      c1 = -a * invstd * sum_g_xhat / M;
      c0 = -a * sums[kSumG] / M - c1 * mu;
    }
    coef[i] = static_cast<A>(a);
    coef[nbc + i] = static_cast<A>(c1);
    coef[2 * nbc + i] = static_cast<A>(c0 + c1 * static_cast<double>(bias_of<A>(ops, b, c)));
    grad_gamma[i] = static_cast<A>(wb * sum_g_xhat);
    grad_beta[i] = static_cast<A>(wb * sums[kSumG]);
    // sum over (n, p) of d y: zero with batch statistics
    if (grad_bias) grad_bias[i] = static_cast<A>(a * sums[kSumG] + c1 * M * mu + c0 * M);
    contrib[(e * kOps + op) * C + c] = static_cast<A>(g * sum_g_xhat + be * sums[kSumG]);
  }
  for (int e = 0; e < ops.edges; ++e) {
    contrib[(e * kOps + 0) * C + c] = A(0);  // none: exactly zero output, zero gradient
    contrib[(e * kOps + kOpSkip) * C + c] = static_cast<A>(sums[kSumGX + e]);
    contrib[(e * kOps + kOpPool) * C + c] = static_cast<A>(sums[kSumGPX + e]);
  }
}

template <typename A>
__global__ void arch_grad_kernel(int entries, i64 C, const A* contrib, A* grad_weights) {
  const int t = threadIdx.x;
  if (t >= entries) return;
  double s = 0.0;
  for (i64 c = 0; c < C; ++c) s += static_cast<double>(contrib[t * C + c]);
  grad_weights[t] = static_cast<A>(s);
}

template <typename T, typename I>
__global__ void backward_elementwise_kernel(Operands ops, Params params, Strided grad,
                                            const typename Acc<T>::type* coef, Gradients grads) {
  using A = typename Acc<T>::type;
  A w_skip[kMaxEdges], w_pool[kMaxEdges];
  edge_weights(ops, params, w_skip, w_pool);
  const I H = static_cast<I>(ops.H), W = static_cast<I>(ops.W), HW = H * W, C = static_cast<I>(ops.C);
  const int branches = ops.edges * kBranchesPerEdge;
  const I nbc = static_cast<I>(branches) * C;
  const I total = static_cast<I>(ops.N) * C * HW;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    I n, c, p;
    split_index(i, C, HW, ops.channels_last, n, c, p);
    const I h = p / W, x = p - h * W;
    const T* g_plane = elem<const T>(grad, n, c, 0);
    const A g = ld(g_plane + static_cast<i64>(p) * grad.sP);
    const A gp = pooled_grad(g_plane, grad.sP, h, x, H, W);
#pragma unroll
    for (int e = 0; e < kMaxEdges; ++e) {
      if (e < ops.edges && grads.x[e].ptr) {
        T* d = elem<T>(grads.x[e], n, c, p);
        const A v = w_skip[e] * g + w_pool[e] * gp;
        *d = st<T>(grads.accumulate[e] ? ld(d) + v : v);
      }
    }
#pragma unroll
    for (int b = 0; b < kMaxBranches; ++b) {
      if (b < branches && grads.y[b].ptr) {
        const I bc = b * C + c;
        const A y = ld(elem<const T>(ops.y[b], n, c, p));
        *elem<T>(grads.y[b], n, c, p) = st<T>(coef[bc] * g + coef[nbc + bc] * y + coef[2 * nbc + bc]);
      }
    }
  }
}

// ---------------------------------------------------------------- single-operand kernels

template <typename T>
__global__ void channel_stats_finalize_kernel(Strided y, i64 N, i64 C, i64 HW, i64 chunks,
                                              const typename Acc<T>::type* partials, const void* bias,
                                              typename Acc<T>::type* mean_out, typename Acc<T>::type* var_out) {
  using A = typename Acc<T>::type;
  const i64 c = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double mean, var;
  finish_stats<T>(y, c, c, chunks, static_cast<double>(N * HW), partials, mean, var);
  if (bias) mean += static_cast<double>(static_cast<const A*>(bias)[c]);
  mean_out[c] = static_cast<A>(mean);
  var_out[c] = static_cast<A>(var);
}

template <typename T>
__global__ void relu_backward_add_kernel(T* dst, const T* src, const T* add, i64 n) {
  using A = typename Acc<T>::type;
  const i64 stride = static_cast<i64>(gridDim.x) * blockDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (ld(src + i) > A(0)) dst[i] = st<T>(ld(dst + i) + ld(add + i));
  }
}

// ---------------------------------------------------------------- launchers

// 32-bit index arithmetic (much cheaper divisions) when every element index fits, with room for
// a grid-stride step past the end.
bool small_index(const Operands& ops) {
  const i64 total = ops.N * ops.C * ops.H * ops.W;
  return total + static_cast<i64>(8192) * kThreads < (static_cast<i64>(1) << 32);
}

bool valid(const Operands& ops) {
  return ops.edges >= 1 && ops.edges <= kMaxEdges && ops.N >= 0 && ops.C >= 1 && ops.H >= 1 && ops.W >= 1;
}

template <typename T>
std::size_t forward_workspace(const Operands& ops) {
  using A = typename Acc<T>::type;
  const i64 rows = static_cast<i64>(ops.edges) * kBranchesPerEdge * ops.C;
  const i64 chunks = chunks_for(ops.N * ops.H * ops.W, rows);
  return sizeof(A) * static_cast<std::size_t>(2 * rows * chunks + rows + ops.C);
}

template <typename T>
std::size_t backward_workspace(const Operands& ops) {
  using A = typename Acc<T>::type;
  const i64 nbc = static_cast<i64>(ops.edges) * kBranchesPerEdge * ops.C;
  const i64 chunks = chunks_for(ops.N * ops.H * ops.W, ops.C);
  return sizeof(A) * static_cast<std::size_t>(kSums * ops.C * chunks + 3 * nbc + ops.edges * kOps * ops.C);
}

template <typename T>
cudaError_t launch_forward(const Operands& ops, const Params& params, MutStrided out, MutStrided relu, void* mean,
                           void* var, void* workspace, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  if (!valid(ops)) return cudaErrorInvalidValue;
  const i64 rows = static_cast<i64>(ops.edges) * kBranchesPerEdge * ops.C;
  const i64 M = ops.N * ops.H * ops.W;
  const i64 chunks = chunks_for(M, rows);
  A* partials = static_cast<A*>(workspace);
  A* coef_a = partials + 2 * rows * chunks;
  A* coef_b = coef_a + rows;
  if (params.batch_stats) {
    if (M < 2 || rows > kMaxGridY) return cudaErrorInvalidValue;
    auto kernel = small_index(ops) ? stats_partial_kernel<T, std::uint32_t> : stats_partial_kernel<T, i64>;
    kernel<<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(rows)), kThreads, 0,
                              stream>>>(ops, chunks, partials);
  }
  const unsigned finalize_blocks = static_cast<unsigned>((ops.C + 127) / 128);
  forward_finalize_kernel<T><<<finalize_blocks, 128, 0, stream>>>(ops, params, chunks, partials, static_cast<A*>(mean),
                                                                  static_cast<A*>(var), coef_a, coef_b);
  const i64 total = M * ops.C;
  if (total > 0) {
    auto kernel =
        small_index(ops) ? forward_elementwise_kernel<T, std::uint32_t> : forward_elementwise_kernel<T, i64>;
    kernel<<<static_cast<unsigned>(elementwise_blocks(total)), kThreads, 0, stream>>>(ops, params, coef_a, coef_b,
                                                                                    out, relu);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const Operands& ops, const Params& params, Strided grad, const void* mean,
                            const void* var, const Gradients& grads, void* workspace, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  if (!valid(ops) || ops.C > kMaxGridY) return cudaErrorInvalidValue;
  const i64 nbc = static_cast<i64>(ops.edges) * kBranchesPerEdge * ops.C;
  const i64 M = ops.N * ops.H * ops.W;
  const i64 chunks = chunks_for(M, ops.C);
  A* partials = static_cast<A*>(workspace);
  A* coef = grads.coefficients ? static_cast<A*>(grads.coefficients) : partials + kSums * ops.C * chunks;
  A* contrib = partials + kSums * ops.C * chunks + 3 * nbc;
  auto partial_kernel =
      small_index(ops) ? backward_partial_kernel<T, std::uint32_t> : backward_partial_kernel<T, i64>;
  partial_kernel<<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(ops.C)), kThreads, 0, stream>>>(
      ops, grad, static_cast<const A*>(mean), chunks, partials);
  const unsigned finalize_blocks = static_cast<unsigned>((ops.C + 127) / 128);
  backward_finalize_kernel<T><<<finalize_blocks, 128, 0, stream>>>(
      ops, params, static_cast<const A*>(mean), static_cast<const A*>(var), chunks, partials, coef, contrib,
      static_cast<A*>(grads.gamma), static_cast<A*>(grads.beta), static_cast<A*>(grads.conv_bias));
  arch_grad_kernel<A><<<1, 32, 0, stream>>>(ops.edges * kOps, ops.C, contrib, static_cast<A*>(grads.weights));
  const i64 total = M * ops.C;
  if (total > 0) {
    auto kernel =
        small_index(ops) ? backward_elementwise_kernel<T, std::uint32_t> : backward_elementwise_kernel<T, i64>;
    kernel<<<static_cast<unsigned>(elementwise_blocks(total)), kThreads, 0, stream>>>(ops, params, grad, coef,
                                                                                    grads);
  }
  return cudaGetLastError();
}

// The node kernels' stats_partial_kernel over one operand (C rows, y[0]).
Operands single_operand(Strided y, i64 N, i64 C, i64 H, i64 W) {
  Operands ops{};
  ops.edges = 1;
  ops.N = N;
  ops.C = C;
  ops.H = H;
  ops.W = W;
  ops.y[0] = y;
  return ops;
}

template <typename T>
std::size_t channel_stats_workspace(i64 N, i64 C, i64 H, i64 W) {
  using A = typename Acc<T>::type;
  return sizeof(A) * static_cast<std::size_t>(2 * C * chunks_for(N * H * W, C));
}

template <typename T>
cudaError_t launch_channel_stats(Strided y, i64 N, i64 C, i64 H, i64 W, const void* bias, void* mean, void* var,
                                 void* workspace, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const auto ops = single_operand(y, N, C, H, W);
  const i64 M = N * H * W;
  if (!valid(ops) || M < 2 || C > kMaxGridY) return cudaErrorInvalidValue;
  const i64 chunks = chunks_for(M, C);
  A* partials = static_cast<A*>(workspace);
  auto kernel = small_index(ops) ? stats_partial_kernel<T, std::uint32_t> : stats_partial_kernel<T, i64>;
  kernel<<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(C)), kThreads, 0, stream>>>(ops, chunks,
                                                                                               partials);
  channel_stats_finalize_kernel<T><<<static_cast<unsigned>((C + 127) / 128), 128, 0, stream>>>(
      y, N, C, H * W, chunks, partials, bias, static_cast<A*>(mean), static_cast<A*>(var));
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_relu_backward_add(void* dst, const void* src, const void* add, i64 n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  relu_backward_add_kernel<T><<<static_cast<unsigned>(elementwise_blocks(n)), kThreads, 0, stream>>>(
      static_cast<T*>(dst), static_cast<const T*>(src), static_cast<const T*>(add), n);
  return cudaGetLastError();
}

}  // namespace

std::size_t forward_workspace_bytes(DType dtype, const Operands& ops) {
  switch (dtype) {
    case DType::kFloat32: return forward_workspace<float>(ops);
    case DType::kFloat64: return forward_workspace<double>(ops);
    case DType::kFloat16: return forward_workspace<__half>(ops);
    case DType::kBFloat16: return forward_workspace<__nv_bfloat16>(ops);
  }
  return 0;
}

std::size_t backward_workspace_bytes(DType dtype, const Operands& ops) {
  switch (dtype) {
    case DType::kFloat32: return backward_workspace<float>(ops);
    case DType::kFloat64: return backward_workspace<double>(ops);
    case DType::kFloat16: return backward_workspace<__half>(ops);
    case DType::kBFloat16: return backward_workspace<__nv_bfloat16>(ops);
  }
  return 0;
}

cudaError_t forward(DType dtype, const Operands& ops, const Params& params, MutStrided out, MutStrided relu_out,
                    void* mean, void* var, void* workspace, cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat32: return launch_forward<float>(ops, params, out, relu_out, mean, var, workspace, stream);
    case DType::kFloat64: return launch_forward<double>(ops, params, out, relu_out, mean, var, workspace, stream);
    case DType::kFloat16: return launch_forward<__half>(ops, params, out, relu_out, mean, var, workspace, stream);
    case DType::kBFloat16:
      return launch_forward<__nv_bfloat16>(ops, params, out, relu_out, mean, var, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t backward(DType dtype, const Operands& ops, const Params& params, Strided grad, const void* mean,
                     const void* var, const Gradients& grads, void* workspace, cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat32: return launch_backward<float>(ops, params, grad, mean, var, grads, workspace, stream);
    case DType::kFloat64: return launch_backward<double>(ops, params, grad, mean, var, grads, workspace, stream);
    case DType::kFloat16: return launch_backward<__half>(ops, params, grad, mean, var, grads, workspace, stream);
    case DType::kBFloat16:
      return launch_backward<__nv_bfloat16>(ops, params, grad, mean, var, grads, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

std::size_t channel_stats_workspace_bytes(DType dtype, i64 N, i64 C, i64 H, i64 W) {
  switch (dtype) {
    case DType::kFloat32: return channel_stats_workspace<float>(N, C, H, W);
    case DType::kFloat64: return channel_stats_workspace<double>(N, C, H, W);
    case DType::kFloat16: return channel_stats_workspace<__half>(N, C, H, W);
    case DType::kBFloat16: return channel_stats_workspace<__nv_bfloat16>(N, C, H, W);
  }
  return 0;
}

cudaError_t channel_stats(DType dtype, Strided y, i64 N, i64 C, i64 H, i64 W, const void* bias, void* mean,
                          void* var, void* workspace, cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat32: return launch_channel_stats<float>(y, N, C, H, W, bias, mean, var, workspace, stream);
    case DType::kFloat64: return launch_channel_stats<double>(y, N, C, H, W, bias, mean, var, workspace, stream);
    case DType::kFloat16: return launch_channel_stats<__half>(y, N, C, H, W, bias, mean, var, workspace, stream);
    case DType::kBFloat16:
      return launch_channel_stats<__nv_bfloat16>(y, N, C, H, W, bias, mean, var, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t relu_backward_add(DType dtype, void* dst, const void* src, const void* add, i64 n, cudaStream_t stream) {
  switch (dtype) {
    case DType::kFloat32: return launch_relu_backward_add<float>(dst, src, add, n, stream);
    case DType::kFloat64: return launch_relu_backward_add<double>(dst, src, add, n, stream);
    case DType::kFloat16: return launch_relu_backward_add<__half>(dst, src, add, n, stream);
    case DType::kBFloat16: return launch_relu_backward_add<__nv_bfloat16>(dst, src, add, n, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace cellnode
}  // namespace cuda
}  // namespace nb360
