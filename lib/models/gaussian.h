// Diagonal Gaussian posteriors and the closed forms every objective uses.
// All per-sample quantities sum over latent dimensions and return [B].
#pragma once

#include <torch/torch.h>

namespace mmkt::models {

struct Gaussian {
  torch::Tensor mu;      // [B,D]
  torch::Tensor logvar;  // [B,D], log sigma^2

  // z = mu + sigma * eps (the reparameterisation trick, Kingma & Welling 2014).
  torch::Tensor rsample() const;
  // [K,B,D] samples.
  torch::Tensor rsample(std::int64_t k) const;
  // log N(z | mu, sigma^2) summed over D; z is [B,D] or [K,B,D] -> [B] or [K,B].
  torch::Tensor log_prob(const torch::Tensor& z) const;
  Gaussian detach() const { return {mu.detach(), logvar.detach()}; }
  Gaussian index_select(const torch::Tensor& rows) const {
    return {mu.index_select(0, rows), logvar.index_select(0, rows)};
  }
};

// Data-parallel training (dist/, train/trainer.cpp): while a guard is alive on a thread, every
// rsample() on it draws the noise of the whole global batch (`global_rows` rows, one stream on
// every rank, seeded alike) and keeps rows [offset, offset + B). N ranks then sample exactly
// the noise one process would draw for the same global batch, which is what makes an N-process
// run equal a one-process run. Without a guard, rsample() draws B rows as usual.
struct NoiseShard {
  std::int64_t offset = 0;
  std::int64_t global_rows = 0;  // 0 = no sharding
};
class NoiseShardGuard {
 public:
  explicit NoiseShardGuard(NoiseShard shard);
  ~NoiseShardGuard();
  NoiseShardGuard(const NoiseShardGuard&) = delete;
  NoiseShardGuard& operator=(const NoiseShardGuard&) = delete;

 private:
  NoiseShard saved_;
};

// Splits the last dimension of `params` [B,2D] into mu and logvar. logvar is clamped to
// [-30, 20] so that exp() neither underflows to 0 nor overflows in float32.
Gaussian gaussian_from_params(const torch::Tensor& params);

// KL(q || N(0, I)) = 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2).
torch::Tensor kl_standard_normal(const Gaussian& q);
// KL(a || b) = 0.5 * sum(log(sb^2/sa^2) + (sa^2 + (mu_a - mu_b)^2) / sb^2 - 1).
torch::Tensor kl_divergence(const Gaussian& a, const Gaussian& b);
// Symmetric KL used as the triplet distance: 0.5 KL(a||b) + 0.5 KL(b||a).
torch::Tensor symmetric_kl(const Gaussian& a, const Gaussian& b);
// Product of Gaussian experts (MVAE, Wu & Goodman 2018): precision-weighted mean, summed
// precisions; `with_prior` adds the N(0, I) expert.
Gaussian product_of_experts(const std::vector<Gaussian>& experts, bool with_prior = true);
// log N(z | 0, I) summed over D.
torch::Tensor standard_normal_log_prob(const torch::Tensor& z);

}  // namespace mmkt::models
