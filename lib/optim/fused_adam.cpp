#include "mmkt/optim/fused_adam.h"

#include <cmath>

#include <ATen/Parallel.h>
#include <c10/util/string_utils.h>

namespace mmkt::optim {
namespace {

bool fusable(const torch::Tensor& p, const torch::Tensor& g) {
  return p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous() &&
         g.device().is_cpu() && g.scalar_type() == torch::kFloat32 && g.is_contiguous() &&
         !g.is_sparse();
}

// One chunk of the update, vectorized by the compiler: this file is compiled with
// -fno-math-errno (CMakeLists.txt; sqrt of v >= 0 never sets errno anyway) and, on x86-64, in an
// AVX-512, an AVX2 and a baseline version chosen at run time. The update is bound by its two
// divisions and one square root per element, so the 16-wide version halves it (measured by
// `mmkt bench --part train-mnist`, "FusedAdam's update alone"). Every version gives the same bits:
// division and sqrt are correctly rounded at any width, and -ffp-contract=off (CMakeLists.txt)
// stops the AVX-512 version from fusing a*b+c into an FMA that rounds once instead of twice.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void adam_chunk(
    float* __restrict param, const float* __restrict g, float* __restrict m, float* __restrict v,
    std::int64_t begin, std::int64_t end, float b1, float one_minus_b1, float b2,
    float one_minus_b2, float sqrt_bc2, float eps, float step_size) {
  for (std::int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float mi = m[i] * b1 + one_minus_b1 * gi;
    const float vi = v[i] * b2 + one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    param[i] -= step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
  }
}

}  // namespace

torch::Tensor FusedAdam::step(LossClosure closure) {
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    if (options.weight_decay() != 0 || options.amsgrad()) return torch::optim::Adam::step(closure);
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto& grad = p.grad();
      const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto found = state_.find(key);
      if (found == state_.end()) {
        auto state = std::make_unique<torch::optim::AdamParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        found = state_.emplace(key, std::move(state)).first;
      }
      auto& state = static_cast<torch::optim::AdamParamState&>(*found->second);
      state.step(state.step() + 1);
      const double beta1 = std::get<0>(options.betas());
      const double beta2 = std::get<1>(options.betas());
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
      const float one_minus_b1 = static_cast<float>(1 - beta1);
      const float one_minus_b2 = static_cast<float>(1 - beta2);
      const float sqrt_bc2 = static_cast<float>(std::sqrt(bias_correction2));
      const float eps = static_cast<float>(options.eps());
      const float step_size = static_cast<float>(options.lr() / bias_correction1);
      if (!fusable(p, grad) || !state.exp_avg().is_contiguous() ||
          !state.exp_avg_sq().is_contiguous()) {
        // Other devices and dtypes: torch::optim::Adam's own operations, in place.
        state.exp_avg().mul_(beta1).add_(grad, 1 - beta1);
        state.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
        const auto denom =
            (state.exp_avg_sq().sqrt() / std::sqrt(bias_correction2)).add_(options.eps());
        p.addcdiv_(state.exp_avg(), denom, -options.lr() / bias_correction1);
        continue;
      }
      float* param = p.data_ptr<float>();
      const float* g = grad.data_ptr<float>();
      float* m = state.exp_avg().data_ptr<float>();
      float* v = state.exp_avg_sq().data_ptr<float>();
      at::parallel_for(0, p.numel(), 1 << 14, [&](std::int64_t begin, std::int64_t end) {
        adam_chunk(param, g, m, v, begin, end, b1, one_minus_b1, b2, one_minus_b2, sqrt_bc2, eps,
                   step_size);
      });
    }
  }
  return loss;
}

void clear_gradients(const std::vector<torch::Tensor>& parameters) {
  for (const auto& p : parameters) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

}  // namespace mmkt::optim
