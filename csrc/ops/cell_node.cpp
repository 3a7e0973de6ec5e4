// cell_node: the fused target node of an NB201 search cell -- schema, argument checks, CPU kernels.
//
// Fused design (nb360 issue 6).  A DARTS/GAEA supernet cell evaluates, on every edge e = (s -> t),
//   none(x_s) + skip(x_s) + BN(conv1x1(relu x_s)) + BN(conv3x3(relu x_s)) + avgpool3x3(x_s),
// each scaled by its architecture weight w[e, op], and node t is the sum over its incoming edges.
// nb360 splits this into two kinds of work:
//
//  * per SOURCE node s (Python, nb360/models/fused_cell.py): one ReLU shared by all conv ops of all
//    edges leaving s, and their convolutions through ATen (oneDNN / cuDNN): one 3x3 convolution whose
//    output channels hold every outgoing edge's 1x1 (centre tap only) and 3x3 kernels ("single", the
//    GPU default), or on the CPU one 3x3 plus one 1x1 convolution ("by_kernel": oneDNN computes the
//    zero taps, so "single" costs ~1.8x the conv FLOPs there; see benchmarks/RESULTS.md).  relu(x_s)
//    is recomputed in backward instead of saved;
//  * per TARGET node t (this op): one call that batch-normalises every conv branch (batch statistics,
//    or the running statistics in eval mode), scales each operation by its architecture weight, adds
//    skip_connect and the 3x3 average pool (count_include_pad=False) of the source nodes and
//    accumulates all incoming edges into node t.  With k incoming edges:
//
//      nb360::cell_node(inputs[k] = x_s, convs[2k] = [y_e,1x1, y_e,3x3]..., weights (k, 5),
//                       bn_weight?, bn_bias? (2k, C), running_mean?, running_var? (2k, C),
//                       batch_stats, eps) -> (out, mean (2k, C), var (2k, C))
//      out = sum_e  w_skip x_e + w_pool avgpool(x_e) + sum_j w_j (gamma_j (y_ej - mu_j) invstd_j + beta_j)
//
//    `none` contributes exactly zero (its weight's gradient is 0); k = 1 is a single mixed edge.
//    Two passes over memory: per-channel statistics, then one elementwise pass that writes node t.
//    The pool of all edges is taken once, of sum_e w_pool,e x_e (avgpool is linear).
//
// Backward (cell_node_backward) saves nothing of its own: it re-reads the op's inputs (source nodes
// and conv outputs, which autograd keeps anyway as the convolutions' and the next node's inputs) and
// the (2k, C) statistics, and recomputes x_hat and the pooled gradient on the fly.  One reduction
// pass computes per channel sum(g), sum(g (y - mu)) per branch, sum(g x_e) and sum(avgpool^T(g) x_e)
// per edge; one elementwise pass writes
//      d x_e = w_skip g + w_pool avgpool^T(g)             (avgpool^T: the pool's adjoint)
//      d y_b = A g + C1 y_b + C0                          (training-mode BN backward, per channel)
// and the (2k, C) BN affine gradients and the (k, 5) architecture-weight gradients come from the
// reduced sums.  The reference path stores, per edge, two ReLU outputs, two conv outputs, two BN
// outputs, the pool output and the products' operands; the fused cell stores the cell's input and
// nodes 1-2 and the conv outputs of each source node (6 + 4 + 2 channel blocks of C).
//
// CPU kernels: at::parallel_for over channels (reductions: each channel reduced in a fixed order,
// lanes flushed to double, so results do not depend on the thread count) and over (n, c) planes
// (elementwise; each plane stays in L1 while all its terms are accumulated).  Arithmetic in float for
// half / bfloat16 storage (statistics are float32 then), else in the storage type.  Operands may be
// channel slices of a wider tensor (any batch stride); other layouts (channels-last) are copied to
// NCHW first.  CUDA kernels: csrc/ops/cuda/cell_node_kernel.cu (same math, same determinism).
#include "cell_node.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <cmath>
#include <vector>

namespace nb360 {

at::ScalarType cell_node_stats_dtype(at::ScalarType activations) {
  return (activations == at::kHalf || activations == at::kBFloat16) ? at::kFloat : activations;
}

at::Tensor plane_contiguous(const at::Tensor& t) {
  int64_t expected = 1;
  for (int64_t d = t.dim() - 1; d >= 1; --d) {
    if (t.size(d) != 1 && t.stride(d) != expected) return t.contiguous();
    expected *= t.size(d);
  }
  return t;
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

// ---------------------------------------------------------------- plane helpers (one (n, c) plane)

// The loops below are compiled for x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and baseline x86-64, and
// the dynamic loader picks the best the CPU has (GCC function multi-versioning): the wheel stays
// portable and the loops, which run at baseline-SSE width otherwise, get 2x on this machine.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && !defined(NB360_NO_CPU_CLONES)
#define NB360_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NB360_CPU_CLONES
#endif
// Helpers are inlined into each clone so they run at the clone's vector width too.
#define NB360_INLINE inline __attribute__((always_inline))

// Arithmetic type of the kernels: float for half / bfloat16 storage, else the storage type.
template <typename T>
using acc_t = at::opmath_type<T>;

// Lane-wise partial sums in A, flushed to double every kBlock elements: vectorisable without
// -ffast-math, and accurate for planes of any size.
constexpr int kLanes = 16;
constexpr int64_t kBlock = 1024;
// Elements below which a parallel loop stays on one thread (ATen's at::internal::GRAIN_SIZE).
constexpr int64_t kGrainSize = 32768;

template <typename A, typename F>
NB360_INLINE double plane_reduce(int64_t n, F term) {
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    A acc[kLanes] = {};
    int64_t i = start;
    for (; i + kLanes <= end; i += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += term(i + l);
    double part = 0.0;
    for (int l = 0; l < kLanes; ++l) part += static_cast<double>(acc[l]);
    for (; i < end; ++i) part += static_cast<double>(term(i));
    total += part;
  }
  return total;
}

// Clipped 3x3 box sum (1x3 when H == 1): out[i][j] = sum of in over the in-bounds window at (i, j).
template <typename T>
NB360_INLINE void box3x3(const T* in, T* out, T* rows, int64_t H, int64_t W) {
  for (int64_t i = 0; i < H; ++i) {
    const T* r = in + i * W;
    T* o = (H == 1 ? out : rows) + i * W;
    if (W == 1) {
      o[0] = r[0];
      continue;
    }
    o[0] = r[0] + r[1];
    for (int64_t j = 1; j + 1 < W; ++j) o[j] = r[j - 1] + r[j] + r[j + 1];
    o[W - 1] = r[W - 2] + r[W - 1];
  }
  if (H == 1) return;
  for (int64_t i = 0; i < H; ++i) {
    T* o = out + i * W;
    const T* mid = rows + i * W;
    const T* up = i > 0 ? rows + (i - 1) * W : nullptr;
    const T* down = i + 1 < H ? rows + (i + 1) * W : nullptr;
    if (up && down) {
      for (int64_t j = 0; j < W; ++j) o[j] = up[j] + mid[j] + down[j];
    } else if (up) {
      for (int64_t j = 0; j < W; ++j) o[j] = up[j] + mid[j];
    } else if (down) {
      for (int64_t j = 0; j < W; ++j) o[j] = mid[j] + down[j];
    } else {
      for (int64_t j = 0; j < W; ++j) o[j] = mid[j];
    }
  }
}

// 1 / (number of in-bounds taps) of each 3x3 (1x3) pooling window: count_include_pad=False.
template <typename T>
std::vector<T> inverse_window_counts(int64_t H, int64_t W) {
  std::vector<T> inv(static_cast<size_t>(H * W));
  for (int64_t i = 0; i < H; ++i) {
    const int64_t rows = 1 + (i > 0) + (i + 1 < H);
    for (int64_t j = 0; j < W; ++j) {
      const int64_t cols = 1 + (j > 0) + (j + 1 < W);
      inv[i * W + j] = T(1) / static_cast<T>(rows * cols);
    }
  }
  return inv;
}

// Element (n, c, p) of an operand is at ptr + n * batch_stride + c * HW + p (see plane_contiguous).
template <typename T>
struct Operand {
  const T* ptr;
  int64_t batch_stride;
  const T* plane(int64_t n, int64_t c, int64_t HW) const { return ptr + n * batch_stride + c * HW; }
};

template <typename T>
Operand<T> operand(const at::Tensor& t) {
  return {t.const_data_ptr<T>(), t.size(0) > 1 ? t.stride(0) : 0};
}

std::vector<at::Tensor> plane_contiguous_all(at::TensorList ts) {
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (const auto& t : ts) out.push_back(plane_contiguous(t));
  return out;
}

// Small per-branch / per-edge parameters, read once into double on the host.
std::vector<double> host_doubles(const at::Tensor& t) {
  const auto d = t.detach().to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(d.const_data_ptr<double>(), d.const_data_ptr<double>() + d.numel());
}

struct Params {
  std::vector<double> w;      // (k, 5)
  std::vector<double> gamma;  // (2k, C), ones when BN is not affine
  std::vector<double> beta;   // (2k, C), zeros when BN is not affine
};

Params read_params(const CellNodeShape& s, const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight,
                   const std::optional<at::Tensor>& bn_bias) {
  Params p;
  p.w = host_doubles(weights);
  const size_t nbc = static_cast<size_t>(s.branches * s.C);
  p.gamma = bn_weight.has_value() ? host_doubles(*bn_weight) : std::vector<double>(nbc, 1.0);
  p.beta = bn_bias.has_value() ? host_doubles(*bn_bias) : std::vector<double>(nbc, 0.0);
  return p;
}

inline double branch_weight(const Params& p, int64_t b) {
  return p.w[(b / kCellNodeBranches) * kCellNodeOps + kOpConv1x1 + b % kCellNodeBranches];
}

std::vector<int64_t> output_sizes(const at::Tensor& x0) { return x0.sizes().vec(); }

// Channels per task of the per-channel reductions: small problems run on one thread (as ATen's own
// kernels do below ~32K elements), where waking the pool would cost more than the work.
int64_t channel_grain(const CellNodeShape& s, int64_t tensors_per_channel) {
  const int64_t work = std::max<int64_t>(1, s.N * s.H * s.W * tensors_per_channel);
  return std::max<int64_t>(1, kGrainSize / work);
}

// A new CPU tensor of `dtype` holding `values` (copied: the vector may be freed afterwards).
at::Tensor tensor_from(const std::vector<double>& values, at::IntArrayRef sizes, at::ScalarType dtype) {
  auto t = at::empty(sizes, at::TensorOptions().dtype(at::kDouble));
  std::copy(values.begin(), values.end(), t.mutable_data_ptr<double>());
  return dtype == at::kDouble ? t : t.to(dtype);
}

// ---------------------------------------------------------------- forward

// Shifted sum and sum of squares of channels [c0, c1) of every branch (shift: the channel's first
// value, so one pass has no cancellation when |mean| >> std).
template <typename T>
NB360_CPU_CLONES void stats_channels(const CellNodeShape& s, const std::vector<Operand<T>>& ys, int64_t c0, int64_t c1,
                                     std::vector<double>& mean, std::vector<double>& var) {
  using A = acc_t<T>;
  const int64_t HW = s.H * s.W;
  const double M = static_cast<double>(s.N * HW);
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t b = 0; b < s.branches; ++b) {
      const A shift = static_cast<A>(ys[b].plane(0, c, HW)[0]);
      double sum = 0.0, sumsq = 0.0;
      for (int64_t n = 0; n < s.N; ++n) {
        const T* y = ys[b].plane(n, c, HW);
        // Two passes over the plane (the second from L1): one accumulator array each vectorises cleanly.
        sum += plane_reduce<A>(HW, [&](int64_t i) { return static_cast<A>(y[i]) - shift; });
        sumsq += plane_reduce<A>(HW, [&](int64_t i) {
          const A d = static_cast<A>(y[i]) - shift;
          return d * d;
        });
      }
      const double m = sum / M;
      mean[b * s.C + c] = static_cast<double>(shift) + m;
      var[b * s.C + c] = std::max(sumsq / M - m * m, 0.0);
    }
  }
}

template <typename T>
void batch_statistics(const CellNodeShape& s, const std::vector<Operand<T>>& ys, std::vector<double>& mean,
                      std::vector<double>& var) {
  at::parallel_for(0, s.C, channel_grain(s, s.branches), [&](int64_t c0, int64_t c1) {
    stats_channels<T>(s, ys, c0, c1, mean, var);
  });
}

// Output planes q = n * C + c in [q0, q1).
template <typename T>
NB360_CPU_CLONES void forward_plane_range(const CellNodeShape& s, const std::vector<Operand<T>>& xs,
                                          const std::vector<Operand<T>>& ys, const Params& p,
                                          const std::vector<double>& A, const std::vector<double>& B,
                                          const std::vector<acc_t<T>>& inv_count, T* out, int64_t q0, int64_t q1) {
  using Acc = acc_t<T>;
  constexpr bool kDirect = std::is_same_v<T, Acc>;  // accumulate in the output itself
  const int64_t HW = s.H * s.W;
  {
    std::vector<Acc> buf(static_cast<size_t>((kDirect ? 3 : 4) * HW));
    Acc* z = buf.data();
    Acc* pooled = z + HW;
    Acc* rows = pooled + HW;
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / s.C, c = q % s.C;
      Acc* o = kDirect ? reinterpret_cast<Acc*>(out + q * HW) : rows + HW;
      // avgpool is linear: pool sum_e w_pool,e x_e once instead of every edge's input.
      {
        const Acc w0 = static_cast<Acc>(p.w[kOpPool]);
        const T* x = xs[0].plane(n, c, HW);
        for (int64_t i = 0; i < HW; ++i) z[i] = w0 * static_cast<Acc>(x[i]);
      }
      for (int64_t e = 1; e < s.edges; ++e) {
        const Acc we = static_cast<Acc>(p.w[e * kCellNodeOps + kOpPool]);
        const T* x = xs[e].plane(n, c, HW);
        for (int64_t i = 0; i < HW; ++i) z[i] += we * static_cast<Acc>(x[i]);
      }
      box3x3(z, pooled, rows, s.H, s.W);
      const Acc bias = static_cast<Acc>(B[c]);
      for (int64_t i = 0; i < HW; ++i) o[i] = bias + pooled[i] * inv_count[i];
      for (int64_t e = 0; e < s.edges; ++e) {
        const Acc ws = static_cast<Acc>(p.w[e * kCellNodeOps + kOpSkip]);
        const T* x = xs[e].plane(n, c, HW);
        for (int64_t i = 0; i < HW; ++i) o[i] += ws * static_cast<Acc>(x[i]);
      }
      for (int64_t b = 0; b < s.branches; ++b) {
        const Acc a = static_cast<Acc>(A[b * s.C + c]);
        const T* y = ys[b].plane(n, c, HW);
        for (int64_t i = 0; i < HW; ++i) o[i] += a * static_cast<Acc>(y[i]);
      }
      if constexpr (!kDirect) {
        T* dst = out + q * HW;
        for (int64_t i = 0; i < HW; ++i) dst[i] = static_cast<T>(o[i]);
      }
    }
  }
}

template <typename T>
void forward_planes(const CellNodeShape& s, const std::vector<Operand<T>>& xs, const std::vector<Operand<T>>& ys,
                    const Params& p, const std::vector<double>& A, const std::vector<double>& B, T* out) {
  const auto inv_count = inverse_window_counts<acc_t<T>>(s.H, s.W);
  const int64_t grain = std::max<int64_t>(1, kGrainSize / (s.H * s.W));
  at::parallel_for(0, s.N * s.C, grain, [&](int64_t q0, int64_t q1) {
    forward_plane_range<T>(s, xs, ys, p, A, B, inv_count, out, q0, q1);
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cell_node_cpu(
    at::TensorList inputs, at::TensorList convs, const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight,
    const std::optional<at::Tensor>& bn_bias, const std::optional<at::Tensor>& running_mean,
    const std::optional<at::Tensor>& running_var, bool batch_stats, double eps) {
  const auto s = check_cell_node_args("cell_node", inputs, convs, weights, bn_weight, bn_bias, running_mean,
                                      running_var, batch_stats);
  const auto xs_t = plane_contiguous_all(inputs);
  const auto ys_t = plane_contiguous_all(convs);
  const auto p = read_params(s, weights, bn_weight, bn_bias);
  const auto dtype = inputs[0].scalar_type();
  const auto stats_dtype = cell_node_stats_dtype(dtype);
  const size_t nbc = static_cast<size_t>(s.branches * s.C);
  std::vector<double> mean(nbc), var(nbc);
  auto out = at::empty(output_sizes(inputs[0]), inputs[0].options().memory_format(at::MemoryFormat::Contiguous));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "cell_node_cpu", [&] {
    std::vector<Operand<scalar_t>> xs, ys;
    for (const auto& t : xs_t) xs.push_back(operand<scalar_t>(t));
    for (const auto& t : ys_t) ys.push_back(operand<scalar_t>(t));
    if (batch_stats) {
      batch_statistics<scalar_t>(s, ys, mean, var);
    } else {
      mean = host_doubles(*running_mean);
      var = host_doubles(*running_var);
    }
    // Round the statistics to their stored dtype first, so backward sees exactly what forward used.
    using stats_t = acc_t<scalar_t>;
    for (size_t i = 0; i < nbc; ++i) {
      mean[i] = static_cast<double>(static_cast<stats_t>(mean[i]));
      var[i] = static_cast<double>(static_cast<stats_t>(var[i]));
    }
    std::vector<double> A(nbc), B(static_cast<size_t>(s.C), 0.0);
    for (int64_t b = 0; b < s.branches; ++b) {
      const double wb = branch_weight(p, b);
      for (int64_t c = 0; c < s.C; ++c) {
        const size_t i = static_cast<size_t>(b * s.C + c);
        const double scale = p.gamma[i] / std::sqrt(var[i] + eps);
        A[i] = wb * scale;
        B[c] += wb * (p.beta[i] - scale * mean[i]);
      }
    }
    if (out.numel() > 0) forward_planes<scalar_t>(s, xs, ys, p, A, B, out.mutable_data_ptr<scalar_t>());
  });
  return {out, tensor_from(mean, {s.branches, s.C}, stats_dtype), tensor_from(var, {s.branches, s.C}, stats_dtype)};
}

// ---------------------------------------------------------------- backward

struct ChannelSums {
  std::vector<double> g;    // (C): sum g
  std::vector<double> gy;   // (2k, C): sum g (y_b - mean_b)
  std::vector<double> gx;   // (k, C): sum g x_e
  std::vector<double> gpx;  // (k, C): sum avgpool^T(g) x_e  (= sum g avgpool(x_e))
};

// gp = avgpool^T(g) of one plane, in the arithmetic type A.
template <typename T, typename A>
NB360_INLINE void pooled_grad(const T* g, const A* inv_count, A* scaled, A* gp, A* rows, int64_t H, int64_t W) {
  const int64_t HW = H * W;
  for (int64_t i = 0; i < HW; ++i) scaled[i] = static_cast<A>(g[i]) * inv_count[i];
  box3x3(scaled, gp, rows, H, W);
}

// The per-channel sums of channels [c0, c1).
template <typename T>
NB360_CPU_CLONES void backward_sums_range(const CellNodeShape& s, const T* grad, const std::vector<Operand<T>>& xs,
                                          const std::vector<Operand<T>>& ys, const std::vector<double>& mean,
                                          const std::vector<acc_t<T>>& inv_count, ChannelSums& sums, int64_t c0,
                                          int64_t c1) {
  using A = acc_t<T>;
  const int64_t HW = s.H * s.W;
  {
    std::vector<A> buf(static_cast<size_t>(3 * HW));
    A* scaled = buf.data();
    A* gp = scaled + HW;
    A* rows = gp + HW;
    for (int64_t c = c0; c < c1; ++c) {
      double sg = 0.0, sgy[2 * kCellNodeMaxEdges] = {}, sgx[kCellNodeMaxEdges] = {}, sgpx[kCellNodeMaxEdges] = {};
      for (int64_t n = 0; n < s.N; ++n) {
        const T* g = grad + (n * s.C + c) * HW;
        pooled_grad(g, inv_count.data(), scaled, gp, rows, s.H, s.W);
        sg += plane_reduce<A>(HW, [&](int64_t i) { return static_cast<A>(g[i]); });
        for (int64_t b = 0; b < s.branches; ++b) {
          const T* y = ys[b].plane(n, c, HW);
          const A mu = static_cast<A>(mean[b * s.C + c]);
          sgy[b] += plane_reduce<A>(HW, [&](int64_t i) { return static_cast<A>(g[i]) * (static_cast<A>(y[i]) - mu); });
        }
        for (int64_t e = 0; e < s.edges; ++e) {
          const T* x = xs[e].plane(n, c, HW);
          sgx[e] += plane_reduce<A>(HW, [&](int64_t i) { return static_cast<A>(g[i]) * static_cast<A>(x[i]); });
          sgpx[e] += plane_reduce<A>(HW, [&](int64_t i) { return gp[i] * static_cast<A>(x[i]); });
        }
      }
      sums.g[c] = sg;
      for (int64_t b = 0; b < s.branches; ++b) sums.gy[b * s.C + c] = sgy[b];
      for (int64_t e = 0; e < s.edges; ++e) {
        sums.gx[e * s.C + c] = sgx[e];
        sums.gpx[e * s.C + c] = sgpx[e];
      }
    }
  }
}

template <typename T>
ChannelSums backward_sums(const CellNodeShape& s, const T* grad, const std::vector<Operand<T>>& xs,
                          const std::vector<Operand<T>>& ys, const std::vector<double>& mean,
                          const std::vector<acc_t<T>>& inv_count) {
  ChannelSums sums;
  sums.g.assign(static_cast<size_t>(s.C), 0.0);
  sums.gy.assign(static_cast<size_t>(s.branches * s.C), 0.0);
  sums.gx.assign(static_cast<size_t>(s.edges * s.C), 0.0);
  sums.gpx.assign(static_cast<size_t>(s.edges * s.C), 0.0);
  at::parallel_for(0, s.C, channel_grain(s, 1 + s.branches + s.edges), [&](int64_t c0, int64_t c1) {
    backward_sums_range<T>(s, grad, xs, ys, mean, inv_count, sums, c0, c1);
  });
  return sums;
}

// Gradient planes q = n * C + c in [q0, q1).
template <typename T>
NB360_CPU_CLONES void backward_plane_range(const CellNodeShape& s, const T* grad, const std::vector<Operand<T>>& ys,
                                           const Params& p, const std::vector<double>& A,
                                           const std::vector<double>& C1, const std::vector<double>& C0,
                                           const std::vector<acc_t<T>>& inv_count, const std::vector<T*>& dx,
                                           const std::vector<T*>& dy, int64_t q0, int64_t q1) {
  using Acc = acc_t<T>;
  const int64_t HW = s.H * s.W;
  {
    std::vector<Acc> buf(static_cast<size_t>(3 * HW));
    Acc* scaled = buf.data();
    Acc* gp = scaled + HW;
    Acc* rows = gp + HW;
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / s.C, c = q % s.C;
      const T* g = grad + q * HW;
      pooled_grad(g, inv_count.data(), scaled, gp, rows, s.H, s.W);
      for (int64_t e = 0; e < s.edges; ++e) {
        const Acc ws = static_cast<Acc>(p.w[e * kCellNodeOps + kOpSkip]);
        const Acc wp = static_cast<Acc>(p.w[e * kCellNodeOps + kOpPool]);
        T* d = dx[e] + q * HW;
        for (int64_t i = 0; i < HW; ++i) d[i] = static_cast<T>(ws * static_cast<Acc>(g[i]) + wp * gp[i]);
      }
      for (int64_t b = 0; b < s.branches; ++b) {
        const size_t bc = static_cast<size_t>(b * s.C + c);
        const Acc a = static_cast<Acc>(A[bc]), c1 = static_cast<Acc>(C1[bc]), c0 = static_cast<Acc>(C0[bc]);
        const T* y = ys[b].plane(n, c, HW);
        T* d = dy[b] + q * HW;
        for (int64_t i = 0; i < HW; ++i)
          d[i] = static_cast<T>(a * static_cast<Acc>(g[i]) + c1 * static_cast<Acc>(y[i]) + c0);
      }
    }
  }
}

template <typename T>
void backward_planes(const CellNodeShape& s, const T* grad, const std::vector<Operand<T>>& ys, const Params& p,
                     const std::vector<double>& A, const std::vector<double>& C1, const std::vector<double>& C0,
                     const std::vector<acc_t<T>>& inv_count, const std::vector<T*>& dx, const std::vector<T*>& dy) {
  const int64_t grain = std::max<int64_t>(1, kGrainSize / (s.H * s.W));
  at::parallel_for(0, s.N * s.C, grain, [&](int64_t q0, int64_t q1) {
    backward_plane_range<T>(s, grad, ys, p, A, C1, C0, inv_count, dx, dy, q0, q1);
  });
}

std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor, at::Tensor, at::Tensor>
cell_node_backward_cpu(const at::Tensor& grad, at::TensorList inputs, at::TensorList convs, const at::Tensor& weights,
                       const std::optional<at::Tensor>& bn_weight, const std::optional<at::Tensor>& bn_bias,
                       const at::Tensor& mean, const at::Tensor& var, bool batch_stats, double eps) {
  const auto s = check_cell_node_args("cell_node_backward", inputs, convs, weights, bn_weight, bn_bias, mean, var,
                                      batch_stats);
  TORCH_CHECK(grad.sizes() == inputs[0].sizes() && grad.scalar_type() == inputs[0].scalar_type(),
              "cell_node_backward: grad must match the inputs in shape and dtype, got ", grad.sizes(), " ",
              grad.scalar_type());
  const auto g_t = grad.contiguous();
  const auto xs_t = plane_contiguous_all(inputs);
  const auto ys_t = plane_contiguous_all(convs);
  const auto p = read_params(s, weights, bn_weight, bn_bias);
  const auto mu = host_doubles(mean);
  const auto v = host_doubles(var);
  const int64_t HW = s.H * s.W;
  const double M = static_cast<double>(s.N * HW);
  const size_t nbc = static_cast<size_t>(s.branches * s.C);
  const auto act_opts = inputs[0].options().memory_format(at::MemoryFormat::Contiguous);

  std::vector<at::Tensor> grad_inputs, grad_convs;
  for (int64_t e = 0; e < s.edges; ++e) grad_inputs.push_back(at::empty(output_sizes(inputs[0]), act_opts));
  for (int64_t b = 0; b < s.branches; ++b) grad_convs.push_back(at::empty(output_sizes(inputs[0]), act_opts));
  std::vector<double> gw(static_cast<size_t>(s.edges * kCellNodeOps), 0.0), ggamma(nbc), gbeta(nbc);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, inputs[0].scalar_type(), "cell_node_backward_cpu", [&] {
    std::vector<Operand<scalar_t>> xs, ys;
    for (const auto& t : xs_t) xs.push_back(operand<scalar_t>(t));
    for (const auto& t : ys_t) ys.push_back(operand<scalar_t>(t));
    const auto inv_count = inverse_window_counts<acc_t<scalar_t>>(s.H, s.W);
    const scalar_t* g = g_t.const_data_ptr<scalar_t>();
    ChannelSums sums;
    if (grad.numel() > 0) {
      sums = backward_sums<scalar_t>(s, g, xs, ys, mu, inv_count);
    } else {
      sums.g.assign(static_cast<size_t>(s.C), 0.0);
      sums.gy.assign(nbc, 0.0);
      sums.gx.assign(static_cast<size_t>(s.edges * s.C), 0.0);
      sums.gpx.assign(static_cast<size_t>(s.edges * s.C), 0.0);
    }
    std::vector<double> A(nbc), C1(nbc, 0.0), C0(nbc, 0.0);
    for (int64_t b = 0; b < s.branches; ++b) {
      const double wb = branch_weight(p, b);
      double dwb = 0.0;
      for (int64_t c = 0; c < s.C; ++c) {
        const size_t i = static_cast<size_t>(b * s.C + c);
        const double invstd = 1.0 / std::sqrt(v[i] + eps);
        const double sum_g_xhat = invstd * sums.gy[i];  // sum g * (y - mean) * invstd
        A[i] = wb * p.gamma[i] * invstd;
        if (batch_stats) {
          // d y = A (g - mean(g) - x_hat mean(g x_hat)), written as A g + C1 y + C0.
          C1[i] = -A[i] * invstd * sum_g_xhat / M;
          C0[i] = -A[i] * sums.g[c] / M - C1[i] * mu[i];
        }
        ggamma[i] = wb * sum_g_xhat;
        gbeta[i] = wb * sums.g[c];
        dwb += p.gamma[i] * sum_g_xhat + p.beta[i] * sums.g[c];
      }
      gw[(b / kCellNodeBranches) * kCellNodeOps + kOpConv1x1 + b % kCellNodeBranches] = dwb;
    }
    for (int64_t e = 0; e < s.edges; ++e) {
      double skip = 0.0, pool = 0.0;
      for (int64_t c = 0; c < s.C; ++c) {
        skip += sums.gx[e * s.C + c];
        pool += sums.gpx[e * s.C + c];
      }
      gw[e * kCellNodeOps + kOpSkip] = skip;
      gw[e * kCellNodeOps + kOpPool] = pool;
    }
    if (grad.numel() > 0) {
      std::vector<scalar_t*> dx, dy;
      for (auto& t : grad_inputs) dx.push_back(t.mutable_data_ptr<scalar_t>());
      for (auto& t : grad_convs) dy.push_back(t.mutable_data_ptr<scalar_t>());
      backward_planes<scalar_t>(s, g, ys, p, A, C1, C0, inv_count, dx, dy);
    }
  });
  const auto bn_dtype = bn_weight.has_value() ? bn_weight->scalar_type() : mean.scalar_type();
  return {grad_inputs, grad_convs, tensor_from(gw, {s.edges, kCellNodeOps}, weights.scalar_type()),
          tensor_from(ggamma, {s.branches, s.C}, bn_dtype), tensor_from(gbeta, {s.branches, s.C}, bn_dtype)};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(nb360, m) {
  m.def(
      "cell_node(Tensor[] inputs, Tensor[] convs, Tensor weights, Tensor? bn_weight, Tensor? bn_bias, "
      "Tensor? running_mean, Tensor? running_var, bool batch_stats, float eps) -> (Tensor, Tensor, Tensor)");
  m.def(
      "cell_node_backward(Tensor grad, Tensor[] inputs, Tensor[] convs, Tensor weights, Tensor? bn_weight, "
      "Tensor? bn_bias, Tensor mean, Tensor var, bool batch_stats, float eps) "
      "-> (Tensor[], Tensor[], Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(nb360, CPU, m) {
  m.impl("cell_node", &cell_node_cpu);
  m.impl("cell_node_backward", &cell_node_backward_cpu);
}

}  // namespace nb360
