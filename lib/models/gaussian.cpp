#include "mmkt/models/gaussian.h"

#include <cmath>

#include "mmkt/core/error.h"

namespace mmkt::models {
namespace {
constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)
thread_local NoiseShard t_noise_shard;

// Standard normal noise of shape `sizes` whose dimension `row_dim` holds this rank's rows.
torch::Tensor sharded_noise(std::vector<std::int64_t> sizes, std::int64_t row_dim,
                            const torch::TensorOptions& options) {
  const auto shard = t_noise_shard;
  if (shard.global_rows <= 0) return torch::randn(sizes, options);
  const auto rows = sizes[static_cast<std::size_t>(row_dim)];
  MMKT_CHECK(shard.offset >= 0 && shard.offset + rows <= shard.global_rows, "noise shard: rows [",
             shard.offset, ", ", shard.offset + rows, ") outside a global batch of ",
             shard.global_rows);
  sizes[static_cast<std::size_t>(row_dim)] = shard.global_rows;
  return torch::randn(sizes, options).narrow(row_dim, shard.offset, rows);
}
}  // namespace

NoiseShardGuard::NoiseShardGuard(NoiseShard shard) : saved_(t_noise_shard) {
  t_noise_shard = shard;
}
NoiseShardGuard::~NoiseShardGuard() { t_noise_shard = saved_; }

torch::Tensor Gaussian::rsample() const {
  return mu + torch::exp(0.5 * logvar) * sharded_noise(mu.sizes().vec(), 0, mu.options());
}

torch::Tensor Gaussian::rsample(std::int64_t k) const {
  auto eps = sharded_noise({k, mu.size(0), mu.size(1)}, 1, mu.options());
  return mu.unsqueeze(0) + torch::exp(0.5 * logvar).unsqueeze(0) * eps;
}

torch::Tensor Gaussian::log_prob(const torch::Tensor& z) const {
  const auto diff = z - mu;
  return -0.5 * (kLog2Pi + logvar + diff * diff * torch::exp(-logvar)).sum(-1);
}

Gaussian gaussian_from_params(const torch::Tensor& params) {
  MMKT_CHECK(params.size(-1) % 2 == 0, "Gaussian parameters need an even last dimension, got ",
             params.sizes());
  auto chunks = params.chunk(2, -1);
  return {chunks[0], chunks[1].clamp(-30.0, 20.0)};
}

torch::Tensor kl_standard_normal(const Gaussian& q) {
  return 0.5 * (q.mu.pow(2) + q.logvar.exp() - 1.0 - q.logvar).sum(-1);
}

torch::Tensor kl_divergence(const Gaussian& a, const Gaussian& b) {
  return 0.5 * (b.logvar - a.logvar +
                (a.logvar.exp() + (a.mu - b.mu).pow(2)) * torch::exp(-b.logvar) - 1.0)
                   .sum(-1);
}

torch::Tensor symmetric_kl(const Gaussian& a, const Gaussian& b) {
  return 0.5 * kl_divergence(a, b) + 0.5 * kl_divergence(b, a);
}

Gaussian product_of_experts(const std::vector<Gaussian>& experts, bool with_prior) {
  MMKT_CHECK(!experts.empty(), "product_of_experts needs at least one expert");
  torch::Tensor precision_sum, weighted_mu;
  for (const auto& e : experts) {
    const auto precision = torch::exp(-e.logvar);
    precision_sum = precision_sum.defined() ? precision_sum + precision : precision;
    weighted_mu = weighted_mu.defined() ? weighted_mu + e.mu * precision : e.mu * precision;
  }
  if (with_prior) {
    precision_sum = precision_sum + 1.0;  // N(0, I): precision 1, mean 0
  }
  return {weighted_mu / precision_sum, -torch::log(precision_sum)};
}

torch::Tensor standard_normal_log_prob(const torch::Tensor& z) {
  return -0.5 * (kLog2Pi + z * z).sum(-1);
}

}  // namespace mmkt::models
