// cell_node CPU kernels on channels-last operands (interface: cell_node_kernels.h; design: cell_node.cpp).
//
// Why channels-last: oneDNN's convolutions, which produce the conv operands, run 1.1-3x faster in
// NHWC than in NCHW at the supernet's sizes (benchmarks/RESULTS.md), and torch.compile runs them
// in NHWC too. The node kernels follow: every loop here runs over pixels with the C channels of a
// pixel contiguous innermost, so per-channel coefficients are vectors and the 3x3 pool is a sum of
// neighbouring pixel vectors -- no per-plane overhead on the small 8x8 planes of the last stage.
//
// Work is split over images (at::parallel_for). Reductions keep per-image partial sums (float lanes
// flushed to double every 32 values: float32 error no larger than ATen's own reductions) and add the
// images in order, so results are identical for
// any thread count. Arithmetic is in float for half / bfloat16 storage, else in the storage type.
// One translation unit (~970 lines) on purpose: the forward and backward kernels share the lane types,
// View/Params and the multiversioned (GCC `target_clones`) loop templates; splitting the file would move
// all of that into a header compiled into several units, where multiversioned templates are a GCC
// corner (per-unit resolvers) we prefer not to depend on. Its sections are marked by `// ----` rules.
#include "cell_node_kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace nb360 {

// ---------------------------------------------------------------- layout helpers (shared with CUDA glue)

int64_t pixel_stride(const at::Tensor& t) {
  if (t.size(-1) > 1) return t.stride(-1);
  if (t.dim() == 4 && t.size(2) > 1) return t.stride(2);  // W == 1: the pixels are the rows
  return t.size(1);                                       // one pixel
}

bool is_channels_last_view(const at::Tensor& t) {
  if (t.dim() != 3 && t.dim() != 4) return false;
  if (t.size(1) > 1 && t.stride(1) != 1) return false;
  const int64_t P = pixel_stride(t);
  const int64_t W = t.size(-1), H = t.dim() == 4 ? t.size(2) : 1;
  if (H * W > 1 && P < t.size(1)) return false;  // a pixel's channels must not overlap the next pixel's
  if (H > 1 && W > 1 && t.stride(2) != W * P) return false;
  return true;
}

at::Tensor empty_channels_last(const at::Tensor& like, std::optional<at::ScalarType> dtype) {
  const auto opts = like.options().dtype(dtype.value_or(like.scalar_type()));
  if (like.dim() == 4) return at::empty(like.sizes(), opts.memory_format(at::MemoryFormat::ChannelsLast));
  return at::empty({like.size(0), like.size(2), like.size(1)}, opts).transpose(1, 2);
}

at::Tensor as_channels_last_view(const at::Tensor& t) {
  if (is_channels_last_view(t)) return t;
  auto out = empty_channels_last(t);
  out.copy_(t);
  return out;
}

bool prefers_channels_last(const at::Tensor& t) {
  if (t.is_contiguous()) return false;
  if (t.dim() == 4) return t.is_contiguous(at::MemoryFormat::ChannelsLast);
  return t.dim() == 3 && t.transpose(1, 2).is_contiguous();
}

namespace {

// The loops below are compiled for x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and baseline x86-64, and
// the dynamic loader picks the best the CPU has (GCC function multi-versioning): the wheel stays
// portable and the loops, which run at baseline-SSE width otherwise, get 2x on this machine.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && !defined(NB360_NO_CPU_CLONES)
#define NB360_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NB360_CPU_CLONES
#endif
// Helpers and lambdas are inlined into each clone so they run at the clone's vector width too.
#if defined(__GNUC__)
#define NB360_INLINE __attribute__((always_inline))
#else
#define NB360_INLINE
#endif

template <typename T>
using acc_t = at::opmath_type<T>;

// Values per channel summed in float lanes before they are flushed to double.
constexpr int64_t kFlushEvery = 32;
// Elements below which a parallel loop stays on one thread (ATen's at::internal::GRAIN_SIZE).
constexpr int64_t kGrainSize = 32768;

// A channels-last operand: element (n, pixel q, channel c) at ptr + n * sN + q * sP + c.
template <typename P>
struct View {
  P* ptr;
  int64_t sN, sP;
  P* at(int64_t n, int64_t q) const { return ptr + n * sN + q * sP; }
};

template <typename T>
View<const T> in_view(const at::Tensor& t) {
  return {t.const_data_ptr<T>(), t.size(0) > 1 ? t.stride(0) : 0, pixel_stride(t)};
}

template <typename T>
View<T> out_view(const at::Tensor& t) {
  return {t.mutable_data_ptr<T>(), t.size(0) > 1 ? t.stride(0) : 0, pixel_stride(t)};
}

// The values of a small CPU tensor (weights, BN parameters, statistics) as doubles, read in place:
// these run a dozen times per node, where a conversion op would cost an allocation and a dispatch.
std::vector<double> host_doubles(const at::Tensor& t) {
  const auto c = t.device().is_cpu() ? t.contiguous() : t.detach().to(at::kCPU).contiguous();
  std::vector<double> out(static_cast<size_t>(c.numel()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "host_doubles", [&] {
    const scalar_t* p = c.const_data_ptr<scalar_t>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(p[i]);
  });
  return out;
}

struct Params {
  std::vector<double> w;      // (k, 5)
  std::vector<double> gamma;  // (2k, C), ones when BN is not affine
  std::vector<double> beta;   // (2k, C), zeros when BN is not affine
  std::vector<double> bias;   // (2k, C), the convs' biases (zeros when none)
};

Params read_params(const CellNodeShape& s, const NodeOperands& ops) {
  Params p;
  p.w = host_doubles(ops.weights);
  const size_t nbc = static_cast<size_t>(s.branches * s.C);
  p.gamma = ops.bn_weight.has_value() ? host_doubles(*ops.bn_weight) : std::vector<double>(nbc, 1.0);
  p.beta = ops.bn_bias.has_value() ? host_doubles(*ops.bn_bias) : std::vector<double>(nbc, 0.0);
  p.bias = ops.conv_bias.has_value() ? host_doubles(*ops.conv_bias) : std::vector<double>(nbc, 0.0);
  return p;
}

inline double branch_weight(const Params& p, int64_t b) {
  return p.w[(b / kCellNodeBranches) * kCellNodeOps + kOpConv1x1 + b % kCellNodeBranches];
}

at::Tensor tensor_from(const std::vector<double>& values, at::IntArrayRef sizes, at::ScalarType dtype) {
  auto t = at::empty(sizes, at::TensorOptions().dtype(dtype));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "tensor_from", [&] {
    scalar_t* p = t.mutable_data_ptr<scalar_t>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<scalar_t>(values[i]);
  });
  return t;
}

// Images per task: small problems stay on one thread, where waking the pool costs more than the work.
int64_t image_grain(const CellNodeShape& s, int64_t tensors) {
  return std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, s.H * s.W * s.C * tensors));
}

// 1 / (taps of the 3x3 window) along one axis of length L, at i: count_include_pad=False.
inline int taps(int64_t i, int64_t L) { return 1 + (i > 0) + (i + 1 < L); }

// out[w][c] = in[w-1][c] + in[w][c] + in[w+1][c] (clipped) for one row of W pixels x C channels.
template <typename A>
inline NB360_INLINE void row_box3(const A* __restrict in, A* __restrict out, int64_t W, int64_t C) {
  if (W == 1) {
    for (int64_t c = 0; c < C; ++c) out[c] = in[c];
    return;
  }
  const int64_t WC = W * C;
  for (int64_t i = 0; i < C; ++i) out[i] = in[i] + in[C + i];
  for (int64_t i = C; i < WC - C; ++i) out[i] = in[i - C] + in[i] + in[i + C];
  for (int64_t i = WC - C; i < WC; ++i) out[i] = in[i - C] + in[i];
}

// The 3x3 box sums of an image, row by row: a ring of three horizontally summed rows, so every
// input row is read and summed once; row h's box sums are up(h) + mid(h) + down(h) (missing
// neighbours at the borders read a zero row). fill(r) writes input row r into input().
template <typename A>
struct PoolRing {
  int64_t H, W, C;
  std::vector<A> buf;  // [input row | ring 0 | ring 1 | ring 2 | zero row]
  PoolRing(int64_t H_, int64_t W_, int64_t C_) : H(H_), W(W_), C(C_), buf(static_cast<size_t>(5 * W_ * C_), A(0)) {}
  A* input() { return buf.data(); }
  A* slot(int64_t r) { return buf.data() + (1 + r % 3) * W * C; }
  const A* zeros() { return buf.data() + 4 * W * C; }
  template <typename Fill>
  NB360_INLINE void load(int64_t r, Fill& fill) {
    fill(r);
    row_box3(input(), slot(r), W, C);
  }
  // Before output row h: rows h - 1 .. h + 1 are in the ring.
  template <typename Fill>
  NB360_INLINE void before_row(int64_t h, Fill& fill) {
    if (h == 0) {
      load(0, fill);
      if (H > 1) load(1, fill);
    } else if (h + 1 < H) {
      load(h + 1, fill);
    }
  }
  const A* up(int64_t h) { return h > 0 ? slot(h - 1) : zeros(); }
  const A* mid(int64_t h) { return slot(h); }
  const A* down(int64_t h) { return h + 1 < H ? slot(h + 1) : zeros(); }
};

// ---------------------------------------------------------------- lanes

// The arithmetic on a run of a pixel's channels. float / double storage with a multiple of 16
// channels uses GCC vector types of 64 bytes (one zmm register in the AVX-512 clone, two ymm or four
// xmm in the others), so a pixel's channels stay in registers across all its terms; left to the
// auto-vectoriser, per-pixel loops over 16 channels came out as 16 scalar FMAs. Other storage
// (half, bfloat16) and channel counts use one scalar per lane.
template <typename T, bool kVector>
struct Lane {
  using A = acc_t<T>;
  using type = A;
  static constexpr int64_t width = 1;
  static NB360_INLINE type load(const T* p) { return static_cast<A>(*p); }
  static NB360_INLINE type get(const A* p) { return *p; }
  static NB360_INLINE void store(T* p, type v) { *p = static_cast<T>(v); }
  static NB360_INLINE void put(A* p, type v) { *p = v; }
  static NB360_INLINE type relu(type v) { return v > A(0) ? v : A(0); }
};

// The vector lanes only live inside always-inlined helpers of the cloned kernels, so the ABI note
// GCC gives for 64-byte vectors passed by value outside AVX-512 code does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <typename T>
struct Lane<T, true> {
  using A = T;
  typedef T type __attribute__((vector_size(64)));
  static constexpr int64_t width = 64 / sizeof(T);
  static NB360_INLINE type load(const T* p) {
    type v;
    __builtin_memcpy(&v, p, sizeof(type));
    return v;
  }
  static NB360_INLINE type get(const A* p) { return load(p); }
  static NB360_INLINE void store(T* p, type v) { __builtin_memcpy(p, &v, sizeof(type)); }
  static NB360_INLINE void put(A* p, type v) { store(p, v); }
  static NB360_INLINE type relu(type v) {
    const type zero{};
    return v > zero ? v : zero;
  }
};
#pragma GCC diagnostic pop

// Channels per block: all C for the channel counts the kernels are specialised for (16, 32, 64;
// kC = C), else 16 (kC = 0). Lanes per block: compile-time in the vector path.
template <int kC>
constexpr int64_t kBlockOf = kC > 0 ? kC : 16;
template <typename LT, int kC>
constexpr int64_t kLanesOf = LT::width > 1 ? kBlockOf<kC> / LT::width : kBlockOf<kC>;

template <int V>
using int_c = std::integral_constant<int, V>;

// Calls f(int_c<kC>, bool_constant<vector>) for the kernel instantiation that fits C.
template <typename T, typename F>
void with_layout(int64_t C, F&& f) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    if (C % 16 == 0) {
      switch (C) {
        case 16: f(int_c<16>{}, std::true_type{}); return;
        case 32: f(int_c<32>{}, std::true_type{}); return;
        case 64: f(int_c<64>{}, std::true_type{}); return;
        default: f(int_c<0>{}, std::true_type{}); return;
      }
    }
  }
  f(int_c<0>{}, std::false_type{});
}

// Per-image float accumulators of `rows` per-channel sums, flushed to double every kFlushEvery
// values: deterministic and accurate for images of any size.
template <typename A>
struct Lanes {
  std::vector<A> lane;
  std::vector<double> total;
  int64_t pending = 0;
  Lanes(int64_t rows, int64_t C) : lane(rows * C, A(0)), total(rows * C, 0.0) {}
  void start_image() {
    std::fill(lane.begin(), lane.end(), A(0));
    std::fill(total.begin(), total.end(), 0.0);
    pending = 0;
  }
  // After `values` more values per channel; flushes when enough have accumulated (or `force`).
  void added(int64_t values, bool force = false) {
    pending += values;
    if (pending < kFlushEvery && !force) return;
    for (size_t i = 0; i < lane.size(); ++i) {
      total[i] += static_cast<double>(lane[i]);
      lane[i] = A(0);
    }
    pending = 0;
  }
};

// ---------------------------------------------------------------- forward

// Per-image shifted sums and sums of squares of every branch (shift: the channel's first value),
// rows [2 b] and [2 b + 1] of the image's (4k, C) partials. Row by row, every branch over the row:
// the branches may be channel slices of wide conv outputs, and one branch at a time over the whole
// image would stream each slice's neighbours through the caches once per branch.
template <typename T, int kC, bool kVec>
NB360_CPU_CLONES void stats_images(const CellNodeShape& s, const std::vector<View<const T>>& ys,
                                   const acc_t<T>* shift, double* partials, int64_t n0, int64_t n1) {
  using LT = Lane<T, kVec>;
  using L = typename LT::type;
  using A = acc_t<T>;
  constexpr int64_t Vb = kBlockOf<kC>, LW = LT::width, NL = kLanesOf<LT, kC>;
  const int64_t C = kC > 0 ? kC : s.C, H = s.H, W = s.W;
  Lanes<A> lanes(2 * s.branches, C);
  for (int64_t n = n0; n < n1; ++n) {
    lanes.start_image();
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t b = 0; b < s.branches; ++b) {
        for (int64_t c0 = 0; c0 < C; c0 += Vb) {
          const int64_t nl = kVec ? NL : std::min<int64_t>(Vb, C - c0);
          A* lane_sum = lanes.lane.data() + 2 * b * C + c0;
          A* lane_sq = lane_sum + C;
          L sh[NL], sum[NL], sq[NL];
          for (int64_t l = 0; l < nl; ++l) {
            sh[l] = LT::get(shift + b * C + c0 + l * LW);
            sum[l] = LT::get(lane_sum + l * LW);
            sq[l] = LT::get(lane_sq + l * LW);
          }
          for (int64_t w = 0; w < W; ++w) {
            const T* __restrict y = ys[b].at(n, h * W + w) + c0;
            for (int64_t l = 0; l < nl; ++l) {
              const L d = LT::load(y + l * LW) - sh[l];
              sum[l] += d;
              sq[l] += d * d;
            }
          }
          for (int64_t l = 0; l < nl; ++l) {
            LT::put(lane_sum + l * LW, sum[l]);
            LT::put(lane_sq + l * LW, sq[l]);
          }
        }
      }
      lanes.added(W);
    }
    lanes.added(0, /*force=*/true);
    std::copy(lanes.total.begin(), lanes.total.end(), partials + n * 2 * s.branches * C);
  }
}

template <typename T>
void batch_statistics(const CellNodeShape& s, const std::vector<View<const T>>& ys, const std::vector<double>& bias,
                      std::vector<double>& mean, std::vector<double>& var) {
  using A = acc_t<T>;
  const int64_t C = s.C;
  std::vector<A> shift(static_cast<size_t>(s.branches * C));
  for (int64_t b = 0; b < s.branches; ++b)
    for (int64_t c = 0; c < C; ++c) shift[b * C + c] = static_cast<A>(ys[b].at(0, 0)[c]);
  std::vector<double> partials(static_cast<size_t>(s.N * 2 * s.branches * C));
  at::parallel_for(0, s.N, image_grain(s, s.branches), [&](int64_t n0, int64_t n1) {
    with_layout<T>(C, [&](auto kc, auto vec) {
      stats_images<T, decltype(kc)::value, decltype(vec)::value>(s, ys, shift.data(), partials.data(), n0, n1);
    });
  });
  const double M = static_cast<double>(s.N * s.H * s.W);
  for (int64_t b = 0; b < s.branches; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      double sum = 0.0, sq = 0.0;
      for (int64_t n = 0; n < s.N; ++n) {
        sum += partials[(n * 2 * s.branches + 2 * b) * C + c];
        sq += partials[(n * 2 * s.branches + 2 * b + 1) * C + c];
      }
      const double m = sum / M;
      const size_t i = static_cast<size_t>(b * C + c);
      mean[i] = static_cast<double>(shift[i]) + m + bias[i];
      var[i] = std::max(sq / M - m * m, 0.0);
    }
  }
}

template <typename T>
struct ForwardArgs {
  const CellNodeShape* s;
  std::vector<View<const T>> xs, ys;
  std::vector<acc_t<T>> w_skip, w_pool;  // (k)
  std::vector<acc_t<T>> A;               // (2k, C): y' coefficient
  std::vector<acc_t<T>> B;               // (C): constant term
  View<T> out;
  View<T> relu;  // ptr == nullptr: none
};

// Output images [n0, n1): the pool of sum_e w_pool,e x_e (a ring of three horizontally summed
// rows), then per pixel and channel block, in registers: constant, pool, skips, BN'd conv branches;
// store (and ReLU).
template <typename T, int kC, bool kVec>
NB360_CPU_CLONES void forward_images(const ForwardArgs<T>& a, int64_t n0, int64_t n1) {
  using LT = Lane<T, kVec>;
  using L = typename LT::type;
  using A = acc_t<T>;
  constexpr int64_t Vb = kBlockOf<kC>, LW = LT::width, NL = kLanesOf<LT, kC>;
  const CellNodeShape& s = *a.s;
  const int64_t C = kC > 0 ? kC : s.C, H = s.H, W = s.W, WC = W * C;
  const int64_t edges = s.edges, branches = s.branches;
  PoolRing<A> pool(H, W, C);
  A* z = pool.input();
  std::vector<A> inv_cols(W);
  for (int64_t w = 0; w < W; ++w) inv_cols[w] = A(1) / static_cast<A>(taps(w, W));
  const A* B = a.B.data();
  const A* coefs = a.A.data();
  for (int64_t n = n0; n < n1; ++n) {
    auto pool_row = [&](int64_t r) NB360_INLINE {  // input row r of the pool: sum_e w_pool,e x_e
      for (int64_t w = 0; w < W; ++w) {
        for (int64_t c0 = 0; c0 < C; c0 += Vb) {
          const int64_t nl = kVec ? NL : std::min<int64_t>(Vb, C - c0);
          L v[NL];
          const T* __restrict x0 = a.xs[0].at(n, r * W + w) + c0;
          const A wp0 = a.w_pool[0];
          for (int64_t l = 0; l < nl; ++l) v[l] = LT::load(x0 + l * LW) * wp0;
          for (int64_t e = 1; e < edges; ++e) {
            const T* __restrict x = a.xs[e].at(n, r * W + w) + c0;
            const A wp = a.w_pool[e];
            for (int64_t l = 0; l < nl; ++l) v[l] += LT::load(x + l * LW) * wp;
          }
          for (int64_t l = 0; l < nl; ++l) LT::put(z + w * C + c0 + l * LW, v[l]);
        }
      }
    };
    for (int64_t h = 0; h < H; ++h) {
      pool.before_row(h, pool_row);
      const A* __restrict up = pool.up(h);
      const A* __restrict mid = pool.mid(h);
      const A* __restrict down = pool.down(h);
      const A inv_row = A(1) / static_cast<A>(taps(h, H));
      for (int64_t w = 0; w < W; ++w) {
        const int64_t q = h * W + w;
        const A inv = inv_row * inv_cols[w];
        for (int64_t c0 = 0; c0 < C; c0 += Vb) {
          const int64_t nl = kVec ? NL : std::min<int64_t>(Vb, C - c0);
          const int64_t o = w * C + c0;
          L v[NL];
          for (int64_t l = 0; l < nl; ++l) {
            const int64_t i = o + l * LW;
            v[l] = LT::get(B + c0 + l * LW) + (LT::get(up + i) + LT::get(mid + i) + LT::get(down + i)) * inv;
          }
          for (int64_t e = 0; e < edges; ++e) {
            const T* __restrict x = a.xs[e].at(n, q) + c0;
            const A ws = a.w_skip[e];
            for (int64_t l = 0; l < nl; ++l) v[l] += LT::load(x + l * LW) * ws;
          }
          for (int64_t b = 0; b < branches; ++b) {
            const T* __restrict y = a.ys[b].at(n, q) + c0;
            const A* __restrict coef = coefs + b * C + c0;
            for (int64_t l = 0; l < nl; ++l) v[l] += LT::get(coef + l * LW) * LT::load(y + l * LW);
          }
          T* __restrict dst = a.out.at(n, q) + c0;
          for (int64_t l = 0; l < nl; ++l) LT::store(dst + l * LW, v[l]);
          if (a.relu.ptr != nullptr) {
            T* __restrict r = a.relu.at(n, q) + c0;
            for (int64_t l = 0; l < nl; ++l) LT::store(r + l * LW, LT::relu(v[l]));
          }
        }
      }
    }
  }
}

std::tuple<at::Tensor, at::Tensor> node_forward_cpu(const CellNodeShape& s, const NodeOperands& ops,
                                                    const std::optional<at::Tensor>& running_mean,
                                                    const std::optional<at::Tensor>& running_var, bool batch_stats,
                                                    double eps, const at::Tensor& out, const at::Tensor& relu_out) {
  const auto p = read_params(s, ops);
  const auto dtype = ops.inputs[0].scalar_type();
  const auto stats_dtype = cell_node_stats_dtype(dtype);
  const size_t nbc = static_cast<size_t>(s.branches * s.C);
  std::vector<double> mean(nbc), var(nbc);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "cell_node_cpu", [&] {
    using A = acc_t<scalar_t>;
    ForwardArgs<scalar_t> a;
    a.s = &s;
    for (const auto& t : ops.inputs) a.xs.push_back(in_view<scalar_t>(t));
    for (const auto& t : ops.convs) a.ys.push_back(in_view<scalar_t>(t));
    if (batch_stats) {
      batch_statistics<scalar_t>(s, a.ys, p.bias, mean, var);
    } else {
      mean = host_doubles(*running_mean);
      var = host_doubles(*running_var);
    }
    // Round the statistics to their stored dtype first, so backward sees exactly what forward used.
    for (size_t i = 0; i < nbc; ++i) {
      mean[i] = static_cast<double>(static_cast<A>(mean[i]));
      var[i] = static_cast<double>(static_cast<A>(var[i]));
    }
    std::vector<double> B(static_cast<size_t>(s.C), 0.0);
    a.A.resize(nbc);
    for (int64_t b = 0; b < s.branches; ++b) {
      const double wb = branch_weight(p, b);
      for (int64_t c = 0; c < s.C; ++c) {
        const size_t i = static_cast<size_t>(b * s.C + c);
        const double scale = p.gamma[i] / std::sqrt(var[i] + eps);
        a.A[i] = static_cast<A>(wb * scale);
        B[c] += wb * (p.beta[i] - scale * (mean[i] - p.bias[i]));  // the convs hold y - bias
      }
    }
    a.B.assign(B.begin(), B.end());
    for (int64_t e = 0; e < s.edges; ++e) {
      a.w_skip.push_back(static_cast<A>(p.w[e * kCellNodeOps + kOpSkip]));
      a.w_pool.push_back(static_cast<A>(p.w[e * kCellNodeOps + kOpPool]));
    }
    a.out = out_view<scalar_t>(out);
    a.relu = relu_out.defined() ? out_view<scalar_t>(relu_out) : View<scalar_t>{nullptr, 0, 0};
    if (out.numel() > 0) {
      at::parallel_for(0, s.N, image_grain(s, 1 + s.edges + s.branches), [&](int64_t n0, int64_t n1) {
        with_layout<scalar_t>(s.C, [&](auto kc, auto vec) {
          forward_images<scalar_t, decltype(kc)::value, decltype(vec)::value>(a, n0, n1);
        });
      });
    }
  });
  return {tensor_from(mean, {s.branches, s.C}, stats_dtype), tensor_from(var, {s.branches, s.C}, stats_dtype)};
}

// Batch statistics of every channel of one channels-last tensor (e.g. all conv branches of a
// source node in one pass over whole cache lines), of y + bias; rounded to the stats dtype.
std::tuple<at::Tensor, at::Tensor> channel_stats_cpu(const at::Tensor& y, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(is_channels_last_view(y), "channel_stats: expected a channels-last tensor, got strides ", y.strides());
  const CellNodeShape s{1, 1, y.size(0), y.size(1), y.dim() == 4 ? y.size(2) : 1, y.size(-1)};
  TORCH_CHECK(s.N * s.H * s.W > 1, "channel_stats: batch statistics need more than 1 value per channel, got ",
              y.sizes());
  const auto b = bias.has_value() ? host_doubles(*bias) : std::vector<double>(static_cast<size_t>(s.C), 0.0);
  std::vector<double> mean(static_cast<size_t>(s.C)), var(static_cast<size_t>(s.C));
  const auto stats_dtype = cell_node_stats_dtype(y.scalar_type());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "channel_stats_cpu", [&] {
    batch_statistics<scalar_t>(s, {in_view<scalar_t>(y)}, b, mean, var);
  });
  return {tensor_from(mean, {s.C}, stats_dtype), tensor_from(var, {s.C}, stats_dtype)};
}

// ---------------------------------------------------------------- backward

// Per-channel sums of the backward, one row each of the (1 + 4k, C) partials of an image.
struct SumRows {
  int64_t g, gy, gx, gpx, count;  // first row of: sum g; sum g (y_b - mu_b); sum g x_e; sum avgpool^T(g) x_e
  explicit SumRows(const CellNodeShape& s)
      : g(0), gy(1), gx(1 + s.branches), gpx(1 + s.branches + s.edges), count(1 + s.branches + 2 * s.edges) {}
};

template <typename T>
struct BackwardArgs {
  const CellNodeShape* s;
  View<const T> grad;
  std::vector<View<const T>> xs, ys;
  std::vector<acc_t<T>> w_skip, w_pool;
  std::vector<acc_t<T>> mu;   // (2k, C): the mean of y - bias, in which the convs are stored
  std::vector<View<T>> dx;    // ptr == nullptr: not wanted
  std::vector<char> accumulate;
  // Second pass: dy_b = A g + C1 y' + C0.
  std::vector<acc_t<T>> A, C1, C0;
  std::vector<View<T>> dy;
};

// Pass 1 over images [n0, n1): avgpool^T(g) (a ring of three horizontally summed rows of g / taps),
// the input gradients w_skip g + w_pool avgpool^T(g), and the per-channel sums; row by row, one
// term at a time over the row with its accumulators in registers.
template <typename T, int kC, bool kVec>
NB360_CPU_CLONES void backward_sum_images(const BackwardArgs<T>& a, double* partials, int64_t n0, int64_t n1) {
  using LT = Lane<T, kVec>;
  using L = typename LT::type;
  using A = acc_t<T>;
  constexpr int64_t Vb = kBlockOf<kC>, LW = LT::width, NL = kLanesOf<LT, kC>;
  const CellNodeShape& s = *a.s;
  const int64_t C = kC > 0 ? kC : s.C, H = s.H, W = s.W, WC = W * C;
  const SumRows rows(s);
  PoolRing<A> pool(H, W, C);
  A* scaled = pool.input();
  std::vector<A> gp_row(static_cast<size_t>(WC));
  A* gp = gp_row.data();
  std::vector<A> inv_cols(W);
  for (int64_t w = 0; w < W; ++w) inv_cols[w] = A(1) / static_cast<A>(taps(w, W));
  Lanes<A> lanes(rows.count, C);
  // Lane row `row` (channels [c0, c0 + nl lanes)) += term(w, acc) over the row's pixels.
  auto reduce_row = [&](int64_t row, int64_t c0, int64_t nl, auto term) NB360_INLINE {
    L acc[NL];
    A* lane = lanes.lane.data() + row * C + c0;
    for (int64_t l = 0; l < nl; ++l) acc[l] = LT::get(lane + l * LW);
    for (int64_t w = 0; w < W; ++w) term(w, acc);
    for (int64_t l = 0; l < nl; ++l) LT::put(lane + l * LW, acc[l]);
  };
  for (int64_t n = n0; n < n1; ++n) {
    lanes.start_image();
    auto grad_row = [&](int64_t r) NB360_INLINE {  // input row r of the pool: g / taps (avgpool's adjoint)
      const A inv_row = A(1) / static_cast<A>(taps(r, H));
      for (int64_t w = 0; w < W; ++w) {
        const T* __restrict g = a.grad.at(n, r * W + w);
        const A inv = inv_row * inv_cols[w];
        A* __restrict o = scaled + w * C;
        for (int64_t c = 0; c < C; ++c) o[c] = static_cast<A>(g[c]) * inv;
      }
    };
    for (int64_t h = 0; h < H; ++h) {
      pool.before_row(h, grad_row);
      {
        const A* __restrict up = pool.up(h);
        const A* __restrict mid = pool.mid(h);
        const A* __restrict down = pool.down(h);
        for (int64_t i = 0; i < WC; ++i) gp[i] = up[i] + mid[i] + down[i];
      }
      const int64_t q0 = h * W;
      for (int64_t c0 = 0; c0 < C; c0 += Vb) {
        const int64_t nl = kVec ? NL : std::min<int64_t>(Vb, C - c0);
        reduce_row(rows.g, c0, nl, [&](int64_t w, L* acc) NB360_INLINE {
          const T* __restrict g = a.grad.at(n, q0 + w) + c0;
          for (int64_t l = 0; l < nl; ++l) acc[l] += LT::load(g + l * LW);
        });
        for (int64_t b = 0; b < s.branches; ++b) {
          L mu[NL];
          for (int64_t l = 0; l < nl; ++l) mu[l] = LT::get(a.mu.data() + b * C + c0 + l * LW);
          reduce_row(rows.gy + b, c0, nl, [&](int64_t w, L* acc) NB360_INLINE {
            const T* __restrict g = a.grad.at(n, q0 + w) + c0;
            const T* __restrict y = a.ys[b].at(n, q0 + w) + c0;
            for (int64_t l = 0; l < nl; ++l) acc[l] += LT::load(g + l * LW) * (LT::load(y + l * LW) - mu[l]);
          });
        }
        for (int64_t e = 0; e < s.edges; ++e) {
          reduce_row(rows.gx + e, c0, nl, [&](int64_t w, L* acc) NB360_INLINE {
            const T* __restrict g = a.grad.at(n, q0 + w) + c0;
            const T* __restrict x = a.xs[e].at(n, q0 + w) + c0;
            for (int64_t l = 0; l < nl; ++l) acc[l] += LT::load(g + l * LW) * LT::load(x + l * LW);
          });
          reduce_row(rows.gpx + e, c0, nl, [&](int64_t w, L* acc) NB360_INLINE {
            const A* __restrict gpw = gp + w * C + c0;
            const T* __restrict x = a.xs[e].at(n, q0 + w) + c0;
            for (int64_t l = 0; l < nl; ++l) acc[l] += LT::get(gpw + l * LW) * LT::load(x + l * LW);
          });
          if (a.dx[e].ptr == nullptr) continue;
          const A ws = a.w_skip[e], wp = a.w_pool[e];
          const bool accumulate = a.accumulate[e] != 0;
          for (int64_t w = 0; w < W; ++w) {
            const T* __restrict g = a.grad.at(n, q0 + w) + c0;
            const A* __restrict gpw = gp + w * C + c0;
            T* __restrict d = a.dx[e].at(n, q0 + w) + c0;
            for (int64_t l = 0; l < nl; ++l) {
              L v = LT::load(g + l * LW) * ws + LT::get(gpw + l * LW) * wp;
              if (accumulate) v += LT::load(d + l * LW);
              LT::store(d + l * LW, v);
            }
          }
        }
      }
      lanes.added(W);
    }
    lanes.added(0, /*force=*/true);
    std::copy(lanes.total.begin(), lanes.total.end(), partials + n * rows.count * C);
  }
}

// Pass 2 over images [n0, n1): dy_b = A g + C1 y' + C0, every branch per pixel (g read once).
template <typename T, int kC, bool kVec>
NB360_CPU_CLONES void backward_conv_images(const BackwardArgs<T>& a, int64_t n0, int64_t n1) {
  using LT = Lane<T, kVec>;
  using L = typename LT::type;
  constexpr int64_t Vb = kBlockOf<kC>, LW = LT::width, NL = kLanesOf<LT, kC>;
  const CellNodeShape& s = *a.s;
  const int64_t C = kC > 0 ? kC : s.C, HW = s.H * s.W;
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t q = 0; q < HW; ++q) {
      for (int64_t c0 = 0; c0 < C; c0 += Vb) {
        const int64_t nl = kVec ? NL : std::min<int64_t>(Vb, C - c0);
        L gv[NL];
        const T* __restrict g = a.grad.at(n, q) + c0;
        for (int64_t l = 0; l < nl; ++l) gv[l] = LT::load(g + l * LW);
        for (int64_t b = 0; b < s.branches; ++b) {
          if (a.dy[b].ptr == nullptr) continue;  // formed by the caller from the coefficients
          const int64_t k = b * C + c0;
          const T* __restrict y = a.ys[b].at(n, q) + c0;
          T* __restrict d = a.dy[b].at(n, q) + c0;
          for (int64_t l = 0; l < nl; ++l) {
            const int64_t i = k + l * LW;
            LT::store(d + l * LW,
                      LT::get(a.A.data() + i) * gv[l] + LT::get(a.C1.data() + i) * LT::load(y + l * LW) +
                          LT::get(a.C0.data() + i));
          }
        }
      }
    }
  }
}

NodeGrads node_backward_cpu(const CellNodeShape& s, const at::Tensor& grad, const NodeOperands& ops,
                            const at::Tensor& mean_t, const at::Tensor& var_t, bool batch_stats, double eps,
                            const std::vector<at::Tensor>& grad_inputs, const std::vector<bool>& accumulate,
                            const std::vector<at::Tensor>& grad_convs) {
  const auto p = read_params(s, ops);
  const auto mu = host_doubles(mean_t);
  const auto v = host_doubles(var_t);
  const int64_t C = s.C;
  const double M = static_cast<double>(s.N * s.H * s.W);
  const size_t nbc = static_cast<size_t>(s.branches * C);
  const SumRows rows(s);
  std::vector<double> gw(static_cast<size_t>(s.edges * kCellNodeOps), 0.0), ggamma(nbc), gbeta(nbc), gbias(nbc);
  const auto acc_dtype = cell_node_stats_dtype(grad.scalar_type());
  auto coefficients = at::empty({3, s.branches, C}, at::TensorOptions().dtype(acc_dtype));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "cell_node_backward_cpu", [&] {
    using Acc = acc_t<scalar_t>;
    BackwardArgs<scalar_t> a;
    a.s = &s;
    a.grad = in_view<scalar_t>(grad);
    for (const auto& t : ops.inputs) a.xs.push_back(in_view<scalar_t>(t));
    for (const auto& t : ops.convs) a.ys.push_back(in_view<scalar_t>(t));
    for (int64_t e = 0; e < s.edges; ++e) {
      a.w_skip.push_back(static_cast<Acc>(p.w[e * kCellNodeOps + kOpSkip]));
      a.w_pool.push_back(static_cast<Acc>(p.w[e * kCellNodeOps + kOpPool]));
      const auto& d = grad_inputs[e];
      a.dx.push_back(d.defined() ? out_view<scalar_t>(d) : View<scalar_t>{nullptr, 0, 0});
      a.accumulate.push_back(accumulate[e] ? 1 : 0);
    }
    a.mu.resize(nbc);
    for (size_t i = 0; i < nbc; ++i) a.mu[i] = static_cast<Acc>(mu[i] - p.bias[i]);
    std::vector<double> sums(static_cast<size_t>(rows.count * C), 0.0);
    if (grad.numel() > 0) {
      std::vector<double> partials(static_cast<size_t>(s.N * rows.count * C));
      at::parallel_for(0, s.N, image_grain(s, 1 + s.branches + 2 * s.edges), [&](int64_t n0, int64_t n1) {
        with_layout<scalar_t>(C, [&](auto kc, auto vec) {
          backward_sum_images<scalar_t, decltype(kc)::value, decltype(vec)::value>(a, partials.data(), n0, n1);
        });
      });
      for (int64_t n = 0; n < s.N; ++n)
        for (size_t i = 0; i < sums.size(); ++i) sums[i] += partials[n * rows.count * C + i];
    }
    auto sum = [&](int64_t row, int64_t c) { return sums[row * C + c]; };
    a.A.resize(nbc);
    a.C1.assign(nbc, Acc(0));
    a.C0.assign(nbc, Acc(0));
    for (int64_t b = 0; b < s.branches; ++b) {
      const double wb = branch_weight(p, b);
      double dwb = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        const size_t i = static_cast<size_t>(b * C + c);
        const double invstd = 1.0 / std::sqrt(v[i] + eps);
        const double sum_g_xhat = invstd * sum(rows.gy + b, c);  // sum g * (y - mean) * invstd
        const double sg = sum(rows.g, c);
        const double ca = wb * p.gamma[i] * invstd;
        double c1 = 0.0, c0 = 0.0;
        if (batch_stats) {
          // d y = A (g - mean(g) - x_hat mean(g x_hat)), written as A g + C1 y + C0.
          c1 = -ca * invstd * sum_g_xhat / M;
          c0 = -ca * sg / M - c1 * mu[i];
        }
        a.A[i] = static_cast<Acc>(ca);
        a.C1[i] = static_cast<Acc>(c1);
        a.C0[i] = static_cast<Acc>(c0 + c1 * p.bias[i]);  // the convs hold y - bias
        gbias[i] = ca * sg + c1 * M * mu[i] + c0 * M;     // sum over pixels of d y: 0 with batch statistics
        ggamma[i] = wb * sum_g_xhat;
        gbeta[i] = wb * sg;
        dwb += p.gamma[i] * sum_g_xhat + p.beta[i] * sg;
      }
      gw[(b / kCellNodeBranches) * kCellNodeOps + kOpConv1x1 + b % kCellNodeBranches] = dwb;
    }
    for (int64_t e = 0; e < s.edges; ++e) {
      double skip = 0.0, pool = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        skip += sum(rows.gx + e, c);
        pool += sum(rows.gpx + e, c);
      }
      gw[e * kCellNodeOps + kOpSkip] = skip;
      gw[e * kCellNodeOps + kOpPool] = pool;
    }
    {
      Acc* coef = coefficients.mutable_data_ptr<Acc>();
      std::copy(a.A.begin(), a.A.end(), coef);
      std::copy(a.C1.begin(), a.C1.end(), coef + nbc);
      std::copy(a.C0.begin(), a.C0.end(), coef + 2 * nbc);
    }
    if (grad.numel() > 0) {
      for (const auto& t : grad_convs)
        a.dy.push_back(t.defined() ? out_view<scalar_t>(t) : View<scalar_t>{nullptr, 0, 0});
      at::parallel_for(0, s.N, image_grain(s, 3 * s.branches), [&](int64_t n0, int64_t n1) {
        with_layout<scalar_t>(C, [&](auto kc, auto vec) {
          backward_conv_images<scalar_t, decltype(kc)::value, decltype(vec)::value>(a, n0, n1);
        });
      });
    }
  });
  const auto bn_dtype = ops.bn_weight.has_value() ? ops.bn_weight->scalar_type() : mean_t.scalar_type();
  const auto bias_dtype = ops.conv_bias.has_value() ? ops.conv_bias->scalar_type() : mean_t.scalar_type();
  NodeGrads out;
  out.dy_coefficients = coefficients;
  out.weights = tensor_from(gw, {s.edges, kCellNodeOps}, ops.weights.scalar_type());
  out.bn_weight = tensor_from(ggamma, {s.branches, C}, bn_dtype);
  out.bn_bias = tensor_from(gbeta, {s.branches, C}, bn_dtype);
  out.conv_bias = tensor_from(gbias, {s.branches, C}, bias_dtype);
  return out;
}

// ---------------------------------------------------------------- ReLU backward, accumulated

template <typename T>
NB360_CPU_CLONES void relu_backward_add_range(T* __restrict dst, const T* __restrict src, const T* __restrict add,
                                              int64_t i0, int64_t i1) {
  using A = acc_t<T>;
  for (int64_t i = i0; i < i1; ++i) {
    const A v = static_cast<A>(dst[i]) + (static_cast<A>(src[i]) > A(0) ? static_cast<A>(add[i]) : A(0));
    dst[i] = static_cast<T>(v);
  }
}

void relu_backward_add_cpu(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& add) {
  const bool same_layout = dst.sizes() == src.sizes() && dst.sizes() == add.sizes() && dst.strides() == src.strides() &&
                           dst.strides() == add.strides() && dst.is_non_overlapping_and_dense() &&
                           dst.scalar_type() == src.scalar_type() && dst.scalar_type() == add.scalar_type();
  if (!same_layout) {  // not the cell's own buffers: the same math through ATen
    dst.add_(at::threshold_backward(add, src, 0));
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dst.scalar_type(), "relu_backward_add", [&] {
    scalar_t* d = dst.mutable_data_ptr<scalar_t>();
    const scalar_t* s = src.const_data_ptr<scalar_t>();
    const scalar_t* a = add.const_data_ptr<scalar_t>();
    // Dense tensors of the same strides: one offset addresses all three, whatever the layout.
    at::parallel_for(0, dst.numel(), kGrainSize,
                     [&](int64_t i0, int64_t i1) { relu_backward_add_range<scalar_t>(d, s, a, i0, i1); });
  });
}

// ---------------------------------------------------------------- 1x1 output gradients, deferred

template <typename T, int kC, bool kVec>
NB360_CPU_CLONES void conv1x1_output_grad_rows_impl(T* __restrict out, const T* const* g, const T* __restrict y1,
                                                    const acc_t<T>* __restrict coef, int64_t rows, int64_t edges,
                                                    int64_t C_, int64_t out_stride, const int64_t* g_stride,
                                                    int64_t y_stride) {
  using LT = Lane<T, kVec>;
  using L = typename LT::type;
  constexpr int64_t Vb = kBlockOf<kC>, LW = LT::width, NL = kLanesOf<LT, kC>;
  const int64_t C = kC > 0 ? kC : C_, kCe = edges * C;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t e = 0; e < edges; ++e) {
      const T* __restrict gr = g[e] + r * g_stride[e];
      const T* __restrict yr = y1 + r * y_stride + e * C;
      T* __restrict o = out + r * out_stride + e * C;
      for (int64_t c0 = 0; c0 < C; c0 += Vb) {
        const int64_t nl = kVec ? NL : std::min<int64_t>(Vb, C - c0);
        for (int64_t l = 0; l < nl; ++l) {
          const int64_t i = e * C + c0 + l * LW;
          LT::store(o + c0 + l * LW, LT::get(coef + i) * LT::load(gr + c0 + l * LW) +
                                         LT::get(coef + kCe + i) * LT::load(yr + c0 + l * LW) +
                                         LT::get(coef + 2 * kCe + i));
        }
      }
    }
  }
}

// ---------------------------------------------------------------- the internal ops' CPU kernels

void check_views(const char* op, at::TensorList ts, const char* what) {
  for (size_t i = 0; i < ts.size(); ++i) {
    TORCH_CHECK(is_channels_last_view(ts[i]), op, ": ", what, " ", i,
                " must be a channels-last view (channels contiguous, pixels evenly spaced), got strides ",
                ts[i].strides());
  }
}

void check_output(const char* op, const at::Tensor& t, const at::Tensor& like, const char* what) {
  TORCH_CHECK(t.sizes() == like.sizes() && t.scalar_type() == like.scalar_type() && t.device() == like.device(), op,
              ": ", what, " must match the inputs in shape, dtype and device, got ", t.sizes(), " ", t.scalar_type());
  check_views(op, {t}, what);
}

void check_conv_bias(const char* op, const std::optional<at::Tensor>& conv_bias, const CellNodeShape& s,
                     const at::Tensor& ref) {
  if (!conv_bias.has_value()) return;
  TORCH_CHECK(conv_bias->dim() == 2 && conv_bias->size(0) == s.branches && conv_bias->size(1) == s.C &&
                  conv_bias->device() == ref.device() && at::isFloatingType(conv_bias->scalar_type()),
              op, ": conv_bias must be a floating-point [", s.branches, ", ", s.C, "] tensor on ", ref.device(),
              ", got ", conv_bias->sizes());
}

NodeOperands operands_of(at::TensorList inputs, at::TensorList convs, const std::optional<at::Tensor>& conv_bias,
                         const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight,
                         const std::optional<at::Tensor>& bn_bias) {
  return NodeOperands{inputs.vec(), convs.vec(), conv_bias, weights, bn_weight, bn_bias};
}

std::tuple<at::Tensor, at::Tensor> cell_node_forward_op(
    at::TensorList inputs, at::TensorList convs, const std::optional<at::Tensor>& conv_bias, const at::Tensor& weights,
    const std::optional<at::Tensor>& bn_weight, const std::optional<at::Tensor>& bn_bias,
    const std::optional<at::Tensor>& mean, const std::optional<at::Tensor>& var, bool batch_stats, double eps,
    const at::Tensor& out, const std::optional<at::Tensor>& relu_out) {
  const char* op = "_cell_node_forward";
  const auto s = check_cell_node_args(op, inputs, convs, weights, bn_weight, bn_bias, mean, var, batch_stats);
  check_conv_bias(op, conv_bias, s, inputs[0]);
  check_views(op, inputs, "inputs");
  check_views(op, convs, "convs");
  check_output(op, out, inputs[0], "out");
  if (relu_out.has_value()) check_output(op, *relu_out, inputs[0], "relu_out");
  return node_forward_cpu(s, operands_of(inputs, convs, conv_bias, weights, bn_weight, bn_bias), mean, var,
                          batch_stats, eps, out, relu_out.value_or(at::Tensor()));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> cell_node_backward_op(
    const at::Tensor& grad, at::TensorList inputs, at::TensorList convs, const std::optional<at::Tensor>& conv_bias,
    const at::Tensor& weights, const std::optional<at::Tensor>& bn_weight, const std::optional<at::Tensor>& bn_bias,
    const at::Tensor& mean, const at::Tensor& var, bool batch_stats, double eps, at::TensorList grad_inputs,
    at::IntArrayRef input_modes, at::TensorList grad_convs) {
  const char* op = "_cell_node_backward";
  const auto s = check_cell_node_args(op, inputs, convs, weights, bn_weight, bn_bias, mean, var, batch_stats);
  check_conv_bias(op, conv_bias, s, inputs[0]);
  check_views(op, inputs, "inputs");
  check_views(op, convs, "convs");
  check_output(op, grad, inputs[0], "grad");
  TORCH_CHECK(static_cast<int64_t>(grad_inputs.size()) == s.edges && static_cast<int64_t>(input_modes.size()) == s.edges &&
                  static_cast<int64_t>(grad_convs.size()) == s.branches,
              op, ": expected ", s.edges, " grad_inputs and input_modes and ", s.branches, " grad_convs");
  std::vector<at::Tensor> dx;
  std::vector<bool> accumulate;
  for (int64_t e = 0; e < s.edges; ++e) {
    TORCH_CHECK(input_modes[e] >= kSkipGradient && input_modes[e] <= kAddGradient, op, ": bad input mode ",
                input_modes[e]);
    if (input_modes[e] != kSkipGradient) check_output(op, grad_inputs[e], inputs[0], "grad_inputs");
    dx.push_back(input_modes[e] == kSkipGradient ? at::Tensor() : grad_inputs[e]);
    accumulate.push_back(input_modes[e] == kAddGradient);
  }
  std::vector<at::Tensor> dy;
  for (const auto& t : grad_convs) {
    if (t.numel() == 0 && inputs[0].numel() > 0) {  // skipped: the caller forms it from the coefficients
      dy.emplace_back();
      continue;
    }
    check_output(op, t, inputs[0], "grad_convs");
    dy.push_back(t);
  }
  const auto g = node_backward_cpu(s, grad, operands_of(inputs, convs, conv_bias, weights, bn_weight, bn_bias), mean,
                                   var, batch_stats, eps, dx, accumulate, dy);
  return {g.weights, g.bn_weight, g.bn_bias, g.conv_bias, g.dy_coefficients};
}

void relu_backward_add_op(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& add) {
  TORCH_CHECK(dst.sizes() == src.sizes() && dst.sizes() == add.sizes(),
              "_relu_backward_add: dst, src and add must have one shape, got ", dst.sizes(), ", ", src.sizes(), ", ",
              add.sizes());
  relu_backward_add_cpu(dst, src, add);
}

}  // namespace

void conv1x1_output_grad_rows(const at::Tensor& out, const std::vector<at::Tensor>& g, const at::Tensor& y1,
                              const at::Tensor& coefficients) {
  const int64_t rows = out.size(0), edges = static_cast<int64_t>(g.size()), kC = out.size(1), C = kC / edges;
  TORCH_CHECK(out.stride(1) == 1 && y1.stride(1) == 1 && coefficients.is_contiguous() &&
                  coefficients.numel() == 3 * kC && y1.sizes() == out.sizes(),
              "conv1x1_output_grad_rows: bad operands");
  std::vector<int64_t> g_stride;
  for (const auto& t : g) {
    TORCH_CHECK(t.size(0) == rows && t.size(1) == C && t.stride(1) == 1, "conv1x1_output_grad_rows: bad g");
    g_stride.push_back(t.stride(0));
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(), "conv1x1_output_grad_rows", [&] {
    std::vector<const scalar_t*> gp;
    for (const auto& t : g) gp.push_back(t.const_data_ptr<scalar_t>());
    with_layout<scalar_t>(C, [&](auto kc, auto vec) {
      conv1x1_output_grad_rows_impl<scalar_t, decltype(kc)::value, decltype(vec)::value>(
          out.mutable_data_ptr<scalar_t>(), gp.data(), y1.const_data_ptr<scalar_t>(),
          coefficients.const_data_ptr<acc_t<scalar_t>>(), rows, edges, C, out.stride(0), g_stride.data(),
          y1.stride(0));
    });
  });
}

TORCH_LIBRARY_IMPL(nb360, CPU, m) {
  m.impl("_cell_node_forward", &cell_node_forward_op);
  m.impl("_cell_node_backward", &cell_node_backward_op);
  m.impl("_channel_stats", &channel_stats_cpu);
  m.impl("_relu_backward_add", &relu_backward_add_op);
}

}  // namespace nb360
