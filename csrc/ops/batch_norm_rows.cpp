// batch_norm_rows: training-mode BatchNorm over the rows of a (M, N) matrix -- a channels-last
// activation (B, N, H, W) seen as its (B*H*W, N) rows -- schema and CPU implementation.
//
//   nb360::batch_norm_rows(Tensor x, Tensor weight, Tensor bias, float eps) -> (Tensor y, Tensor mean, Tensor var)
//       mean, var = the per-column batch mean and biased variance of x (two passes: mean, then the
//       centred squares), y = (x - mean) / sqrt(var + eps) * weight + bias
//   nb360::batch_norm_rows_backward(Tensor grad, Tensor x, Tensor mean, Tensor var, Tensor weight, float eps)
//       -> (Tensor grad_x, Tensor grad_weight, Tensor grad_bias)
//
// Why hand-written (nb360 issue 19): the stacked table builder runs channels-last on CPUs, where
// oneDNN's grouped convolutions are 2-3x faster than channels-first, and ATen's channels-last
// BatchNorm computes the batch variance from sums of squares in one pass: measured ~5x the rounding
// error of the channels-first path (4e-5 vs 7e-7 on data of mean 3, std 0.5), enough to break the
// builder's float64 equality with the one-at-a-time reference. Two passes keep the reference's accuracy.
//
// Every reduction sums in double over fixed blocks of rows, the blocks added in order, so results do not
// depend on the number of threads.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

namespace nb360 {
namespace {

constexpr int64_t kRowBlock = 256;

void check_rows(const at::Tensor& t, const char* op, const char* name, int64_t m, int64_t n) {
  TORCH_CHECK(t.dim() == 2 && t.size(0) == m && t.size(1) == n, op, ": ", name, " must have shape [", m, ", ", n,
              "], got ", t.sizes());
}

void check_vector(const at::Tensor& t, const at::Tensor& like, const char* op, const char* name, int64_t n) {
  TORCH_CHECK(t.dim() == 1 && t.size(0) == n, op, ": ", name, " must have shape [", n, "], got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == like.scalar_type() && t.device() == like.device(), op, ": ", name,
              " must match x in dtype and device");
}

void check_x(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.dim() == 2, op, ": x must be a (rows, channels) matrix, got shape ", x.sizes());
  TORCH_CHECK(x.size(0) > 1, op, ": training-mode BatchNorm needs more than one value per channel, got ", x.size(0),
              " rows");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be float or double, got ", x.scalar_type());
}

// Per-block, per-column partial results of block_fn over fixed blocks of rows: (blocks, outputs, n).
template <typename F>
std::vector<double> block_partials(int64_t m, int64_t n, int64_t outputs, const F& block_fn) {
  const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
  std::vector<double> partial(static_cast<size_t>(blocks * outputs * n), 0.0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      block_fn(b * kRowBlock, std::min(m, (b + 1) * kRowBlock), partial.data() + b * outputs * n);
  });
  return partial;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_rows_cpu(const at::Tensor& x_in, const at::Tensor& weight,
                                                                   const at::Tensor& bias, double eps) {
  constexpr const char* op = "batch_norm_rows";
  check_x(x_in, op);
  const int64_t m = x_in.size(0), n = x_in.size(1);
  check_vector(weight, x_in, op, "weight", n);
  check_vector(bias, x_in, op, "bias", n);
  const auto x = x_in.contiguous();
  const auto w_c = weight.contiguous();
  const auto b_c = bias.contiguous();
  auto y = at::empty_like(x);
  auto mean_t = at::empty({n}, x.options());
  auto var_t = at::empty({n}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    // Statistics in one pass over memory: each block of rows gets its own mean and centred sum of squares
    // (two passes over the block, which is in cache), and the blocks are combined exactly (Chan et al.):
    // M2 = sum_b [M2_b + n_b (mean_b - mean)^2].
    const auto partial = block_partials(m, n, 2, [&](int64_t r0, int64_t r1, double* out) {
      double* __restrict sum = out;
      double* __restrict m2 = out + n;
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict row = xp + r * n;
        for (int64_t c = 0; c < n; ++c) sum[c] += static_cast<double>(row[c]);
      }
      const double count = static_cast<double>(r1 - r0);
      for (int64_t c = 0; c < n; ++c) sum[c] /= count;  // now the block mean
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict row = xp + r * n;
        for (int64_t c = 0; c < n; ++c) {
          const double d = static_cast<double>(row[c]) - sum[c];
          m2[c] += d * d;
        }
      }
    });
    const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
    std::vector<double> total_mean(static_cast<size_t>(n), 0.0), total_m2(static_cast<size_t>(n), 0.0);
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t c = 0; c < n; ++c)
        total_mean[c] += partial[b * 2 * n + c] * static_cast<double>(std::min(m, (b + 1) * kRowBlock) - b * kRowBlock);
    for (int64_t c = 0; c < n; ++c) total_mean[c] /= static_cast<double>(m);
    for (int64_t b = 0; b < blocks; ++b) {
      const double count = static_cast<double>(std::min(m, (b + 1) * kRowBlock) - b * kRowBlock);
      for (int64_t c = 0; c < n; ++c) {
        const double d = partial[b * 2 * n + c] - total_mean[c];
        total_m2[c] += partial[b * 2 * n + n + c] + count * d * d;
      }
    }
    std::vector<acc_t> mean(static_cast<size_t>(n));
    for (int64_t c = 0; c < n; ++c) mean[c] = static_cast<acc_t>(total_mean[c]);
    // y = (x - mean) scale + bias: centring first keeps the digits a folded x scale + shift would cancel
    std::vector<acc_t> scale(static_cast<size_t>(n)), shift(static_cast<size_t>(n));
    const scalar_t* wp = w_c.const_data_ptr<scalar_t>();
    const scalar_t* bp = b_c.const_data_ptr<scalar_t>();
    scalar_t* mp = mean_t.mutable_data_ptr<scalar_t>();
    scalar_t* vp = var_t.mutable_data_ptr<scalar_t>();
    for (int64_t c = 0; c < n; ++c) {
      const acc_t var = static_cast<acc_t>(total_m2[c] / static_cast<double>(m));
      const acc_t invstd = acc_t(1) / std::sqrt(var + static_cast<acc_t>(eps));
      scale[c] = invstd * static_cast<acc_t>(wp[c]);
      shift[c] = static_cast<acc_t>(bp[c]);
      mp[c] = static_cast<scalar_t>(mean[c]);
      vp[c] = static_cast<scalar_t>(var);
    }
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, m, kRowBlock, [&](int64_t r0, int64_t r1) {
      const acc_t* __restrict sc = scale.data();
      const acc_t* __restrict sh = shift.data();
      const acc_t* __restrict mu = mean.data();
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict row = xp + r * n;
        scalar_t* __restrict out = yp + r * n;
        for (int64_t c = 0; c < n; ++c)
          out[c] = static_cast<scalar_t>((static_cast<acc_t>(row[c]) - mu[c]) * sc[c] + sh[c]);
      }
    });
  });
  return {y, mean_t, var_t};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_rows_backward_cpu(const at::Tensor& grad_in,
                                                                            const at::Tensor& x_in,
                                                                            const at::Tensor& mean_t,
                                                                            const at::Tensor& var_t,
                                                                            const at::Tensor& weight, double eps) {
  constexpr const char* op = "batch_norm_rows_backward";
  check_x(x_in, op);
  const int64_t m = x_in.size(0), n = x_in.size(1);
  check_rows(grad_in, op, "grad", m, n);
  TORCH_CHECK(grad_in.scalar_type() == x_in.scalar_type(), op, ": grad must match x in dtype");
  check_vector(mean_t, x_in, op, "mean", n);
  check_vector(var_t, x_in, op, "var", n);
  check_vector(weight, x_in, op, "weight", n);
  const auto x = x_in.contiguous();
  const auto g = grad_in.contiguous();
  auto grad_x = at::empty_like(x);
  auto grad_w = at::empty({n}, x.options());
  auto grad_b = at::empty({n}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    using sum_t = double;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const auto mean_c = mean_t.contiguous();
    const scalar_t* mp = mean_c.const_data_ptr<scalar_t>();
    std::vector<acc_t> mean(mp, mp + n);
    // sums[0:n] = sum of grad, sums[n:2n] = sum of grad * (x - mean)
    const auto partial = block_partials(m, n, 2, [&](int64_t r0, int64_t r1, sum_t* out) {
      sum_t* __restrict sg = out;
      sum_t* __restrict sgx = out + n;
      const acc_t* __restrict mu = mean.data();
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict grow = gp + r * n;
        const scalar_t* __restrict xrow = xp + r * n;
        for (int64_t c = 0; c < n; ++c) {
          const sum_t gi = static_cast<sum_t>(grow[c]);
          sg[c] += gi;
          sgx[c] += gi * static_cast<sum_t>(static_cast<acc_t>(xrow[c]) - mu[c]);
        }
      }
    });
    std::vector<sum_t> sums(static_cast<size_t>(2 * n), 0.0);
    for (size_t j = 0; j < partial.size(); ++j) sums[j % (2 * n)] += partial[j];
    const auto var_c = var_t.contiguous();
    const auto w_c = weight.contiguous();
    const scalar_t* vp = var_c.const_data_ptr<scalar_t>();
    const scalar_t* wp = w_c.const_data_ptr<scalar_t>();
    scalar_t* gwp = grad_w.mutable_data_ptr<scalar_t>();
    scalar_t* gbp = grad_b.mutable_data_ptr<scalar_t>();
    // grad_x = a (g - sum g / m - (x - mean) invstd^2 sum(g (x - mean)) / m), a = invstd w,
    // per column grad_x = a g + d (x - mean) + e (centred, as in the forward).
    std::vector<acc_t> a(static_cast<size_t>(n)), d(static_cast<size_t>(n)), e(static_cast<size_t>(n));
    for (int64_t c = 0; c < n; ++c) {
      const acc_t invstd = acc_t(1) / std::sqrt(static_cast<acc_t>(vp[c]) + static_cast<acc_t>(eps));
      const acc_t sg = static_cast<acc_t>(sums[c]), sgx = static_cast<acc_t>(sums[n + c]);
      gbp[c] = static_cast<scalar_t>(sg);
      gwp[c] = static_cast<scalar_t>(sgx * invstd);
      a[c] = invstd * static_cast<acc_t>(wp[c]);
      const acc_t c2 = invstd * invstd * sgx / static_cast<acc_t>(m);
      d[c] = -a[c] * c2;
      e[c] = -a[c] * sg / static_cast<acc_t>(m);
    }
    scalar_t* gxp = grad_x.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, m, kRowBlock, [&](int64_t r0, int64_t r1) {
      const acc_t* __restrict ap = a.data();
      const acc_t* __restrict dp = d.data();
      const acc_t* __restrict ep = e.data();
      const acc_t* __restrict mu = mean.data();
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* __restrict grow = gp + r * n;
        const scalar_t* __restrict xrow = xp + r * n;
        scalar_t* __restrict out = gxp + r * n;
        for (int64_t c = 0; c < n; ++c)
          out[c] = static_cast<scalar_t>(ap[c] * static_cast<acc_t>(grow[c]) +
                                         dp[c] * (static_cast<acc_t>(xrow[c]) - mu[c]) + ep[c]);
      }
    });
  });
  return {grad_x, grad_w, grad_b};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(nb360, m) {
  m.def("batch_norm_rows(Tensor x, Tensor weight, Tensor bias, float eps) -> (Tensor, Tensor, Tensor)");
  m.def("batch_norm_rows_backward(Tensor grad, Tensor x, Tensor mean, Tensor var, Tensor weight, float eps) "
        "-> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(nb360, CPU, m) {
  m.impl("batch_norm_rows", &batch_norm_rows_cpu);
  m.impl("batch_norm_rows_backward", &batch_norm_rows_backward_cpu);
}

}  // namespace nb360
