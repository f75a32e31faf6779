#include "mmkt/models/gru_kernels.h"

#include <cmath>
#include <cstring>

namespace mmkt::models::gru_kernels {
namespace {

// exp(x) for x in [-87, 88] (clamped outside) by Cody-Waite range reduction x = k ln2 + r and
// Cephes' degree-6 polynomial for exp(r) (cephes/single/expf.c), ~2 ulp. Written so that GCC
// vectorizes it: no calls, the 2^k scale built in the exponent bits. libm's expf would keep
// these loops scalar (errno and the call); ATen's vectorized exp is not reachable from here.
inline float exp_approx(float x) {
  x = std::fmin(std::fmax(x, -87.0f), 88.0f);
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
// tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7 near 0, which is what the state needs.
inline float tanh_approx(float x) { return 2.0f / (1.0f + exp_approx(-2.0f * x)) - 1.0f; }

}  // namespace

// Compiled with -fno-math-errno -ffp-contract=off (CMakeLists.txt) and cloned for AVX-512, AVX2
// and the baseline: every version gives the same bits (no FMA contraction; the arithmetic is
// +, -, *, / and floor, all correctly rounded at any width), so runs stay reproducible across
// machines.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void forward_rows(const float* gi, const float* gh, const float* h_prev, float* h, float* saved,
                  std::int64_t begin, std::int64_t end, std::int64_t hidden) {
  const std::int64_t H = hidden;
  for (std::int64_t row = begin; row < end; ++row) {
    const float* __restrict xi = gi + row * 3 * H;
    const float* __restrict xh = gh + row * 3 * H;
    const float* __restrict hp = h_prev + row * H;
    float* __restrict hr = h + row * H;
    float* __restrict s = saved + row * 4 * H;
    for (std::int64_t j = 0; j < H; ++j) {
      const float r = sigmoid(xi[j] + xh[j]);
      const float z = sigmoid(xi[H + j] + xh[H + j]);
      const float n = tanh_approx(xi[2 * H + j] + r * xh[2 * H + j]);
      s[j] = r;
      s[H + j] = z;
      s[2 * H + j] = n;
      s[3 * H + j] = xh[2 * H + j];
      hr[j] = (hp[j] - n) * z + n;  // (1 - z) n + z h, in ATen's gru_cell order
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void backward_rows(float* dh, const float* h_prev, const float* saved, float* dgi, float* dgh,
                   std::int64_t begin, std::int64_t end, std::int64_t hidden) {
  const std::int64_t H = hidden;
  for (std::int64_t row = begin; row < end; ++row) {
    float* __restrict d = dh + row * H;
    const float* __restrict hp = h_prev + row * H;
    const float* __restrict s = saved + row * 4 * H;
    float* __restrict gi = dgi + row * 3 * H;
    float* __restrict gh = dgh + row * 3 * H;
    for (std::int64_t j = 0; j < H; ++j) {
      const float r = s[j], z = s[H + j], n = s[2 * H + j], ghn = s[3 * H + j];
      const float g = d[j];
      // h' = (1 - z) n + z h:  dn = g (1 - z), dz = g (h - n), dh_direct = g z.
      const float dn_pre = g * (1.0f - z) * (1.0f - n * n);   // through tanh
      const float dz_pre = g * (hp[j] - n) * z * (1.0f - z);  // through sigmoid
      const float dr_pre = dn_pre * ghn * r * (1.0f - r);     // n's argument holds r * gh_n
      gi[j] = dr_pre;
      gi[H + j] = dz_pre;
      gi[2 * H + j] = dn_pre;
      gh[j] = dr_pre;
      gh[H + j] = dz_pre;
      gh[2 * H + j] = dn_pre * r;
      d[j] = g * z;
    }
  }
}

}  // namespace mmkt::models::gru_kernels
