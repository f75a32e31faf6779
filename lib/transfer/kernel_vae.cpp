#include "mmkt/transfer/kernel_vae.h"

#include <chrono>

#include "mmkt/core/error.h"
#include "mmkt/core/random.h"

namespace mmkt::transfer {

KernelVaeImpl::KernelVaeImpl(std::int64_t kernel_size, std::int64_t latent_dim, std::int64_t hidden)
    : kernel_size_(kernel_size), latent_dim_(latent_dim) {
  MMKT_CHECK_INPUT(kernel_size > 0 && latent_dim > 0 && hidden > 0,
                   "kernel VAE: kernel size, latent size and width must be positive");
  const std::int64_t k2 = kernel_size * kernel_size;
  encoder_hidden = register_module("encoder_hidden", torch::nn::Linear(k2, hidden));
  encoder_out = register_module("encoder_out", torch::nn::Linear(hidden, 2 * latent_dim));
  decoder_hidden = register_module("decoder_hidden", torch::nn::Linear(latent_dim, hidden));
  decoder_out = register_module("decoder_out", torch::nn::Linear(hidden, 2 * k2));
}

models::Gaussian KernelVaeImpl::encode(const torch::Tensor& kernels) {
  MMKT_CHECK(kernels.dim() == 2 && kernels.size(1) == kernel_size_ * kernel_size_,
             "kernel VAE: expected kernels [M, ", kernel_size_ * kernel_size_, "], got ",
             kernels.sizes());
  return models::gaussian_from_params(
      encoder_out->forward(torch::relu(encoder_hidden->forward(kernels))));
}

models::Gaussian KernelVaeImpl::decode(const torch::Tensor& z) {
  return models::gaussian_from_params(
      decoder_out->forward(torch::relu(decoder_hidden->forward(z))));
}

KernelElbo KernelVaeImpl::elbo(const torch::Tensor& kernels, bool sample) {
  const auto r = encode(kernels);
  const auto z = sample ? r.rsample() : r.mu;
  KernelElbo e;
  e.reconstruction = decode(z).log_prob(kernels);
  e.kl = models::kl_standard_normal(r);
  e.elbo = e.reconstruction - e.kl;
  return e;
}

torch::Tensor KernelVaeImpl::sample(std::int64_t n) {
  const auto z = torch::randn({n, latent_dim_}, decoder_hidden->weight.options());
  return decode(z).rsample();
}

torch::Tensor kernel_rows(const torch::Tensor& conv_weight) {
  MMKT_CHECK(conv_weight.dim() == 4 && conv_weight.size(2) == conv_weight.size(3),
             "kernel_rows: expected a conv weight [out, in, k, k], got ", conv_weight.sizes());
  const auto k = conv_weight.size(2);
  return conv_weight.reshape({-1, k * k});
}

nlohmann::json train_kernel_vae(KernelVae& vae, const torch::Tensor& kernels,
                                const KernelVaeTraining& o) {
  MMKT_CHECK_INPUT(kernels.dim() == 2 && kernels.size(0) > 0, "kernel VAE: no kernels to learn");
  const auto start = std::chrono::steady_clock::now();
  torch::optim::Adam optimizer(vae->parameters(), torch::optim::AdamOptions(o.lr));
  SplitMix rng(o.seed);
  const auto m = static_cast<std::uint64_t>(kernels.size(0));
  const std::int64_t batch = std::min<std::int64_t>(o.batch_size, kernels.size(0));
  vae->train();
  for (std::int64_t step = 0; step < o.steps; ++step) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(batch));
    for (auto& r : rows) r = static_cast<std::int64_t>(rng.below(m));
    const auto w = kernels.index_select(0, torch::tensor(rows, torch::kInt64));
    optimizer.zero_grad();
    const auto loss = -vae->elbo(w).elbo.mean();
    loss.backward();
    optimizer.step();
  }
  vae->eval();
  torch::NoGradGuard no_grad;
  const double elbo = vae->elbo(kernels, false).elbo.mean().item<double>();
  return {
      {"kernels", kernels.size(0)},
      {"steps", o.steps},
      {"train_elbo", elbo},
      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
}

}  // namespace mmkt::transfer
