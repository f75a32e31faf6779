// The generative model of convolution kernels behind the deep weight prior (Atanov, Ashukha,
// Struminsky, Vetrov, Welling 2019, "The Deep Weight Prior", ICLR). Each k x k slice w of a
// trained network's convolution weight [out, in, k, k] is one item (a vector of k^2 numbers);
// a small VAE learns their distribution, one VAE per layer:
//
//   p(z) = N(0, I_d),   p(w|z) = N(w; mu_theta(z), diag sigma_theta^2(z)),
//   r(z|w) = N(z; mu_phi(w), diag sigma_phi^2(w)),
//
// trained by the ELBO  log p(w) >= E_r[log p(w|z)] - KL(r(z|w) || p(z)).
// The same bound is what makes the implicit prior p(w) = int p(w|z) p(z) dz usable in a new
// network (dwp.h): -KL(q(w) || p(w)) >= H[q] + E_q(w)[ELBO(w)].
// Both MLPs have one hidden layer of `hidden` units (ReLU) and end in a Linear to 2 x their
// output width (mean and log variance).
#pragma once

#include <cstdint>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/models/gaussian.h"

namespace mmkt::transfer {

struct KernelElbo {
  torch::Tensor reconstruction;  // [M] log p(w|z) at one z ~ r(z|w) (or at z = mu_phi(w))
  torch::Tensor kl;              // [M] KL(r(z|w) || N(0, I)), closed form
  torch::Tensor elbo;            // [M] reconstruction - kl
};

class KernelVaeImpl : public torch::nn::Module {
 public:
  KernelVaeImpl(std::int64_t kernel_size, std::int64_t latent_dim = 4, std::int64_t hidden = 64);

  std::int64_t kernel_size() const { return kernel_size_; }
  std::int64_t latent_dim() const { return latent_dim_; }
  models::Gaussian encode(const torch::Tensor& kernels);  // kernels [M, k*k] -> r(z|w)
  models::Gaussian decode(const torch::Tensor& z);        // z [M, d] -> p(w|z)
  // Single-sample (sample = true, reparameterised) or mean (sample = false) ELBO per kernel.
  KernelElbo elbo(const torch::Tensor& kernels, bool sample = true);
  // n kernels [n, k*k]: z ~ N(0, I), w ~ p(w|z).
  torch::Tensor sample(std::int64_t n);

  torch::nn::Linear encoder_hidden{nullptr}, encoder_out{nullptr};
  torch::nn::Linear decoder_hidden{nullptr}, decoder_out{nullptr};

 private:
  std::int64_t kernel_size_, latent_dim_;
};
TORCH_MODULE(KernelVae);

// The k x k slices of conv weights [out, in, k, k] as rows [out*in, k*k].
torch::Tensor kernel_rows(const torch::Tensor& conv_weight);

struct KernelVaeTraining {
  std::int64_t steps = 2000;
  std::int64_t batch_size = 256;
  double lr = 1e-3;
  std::uint64_t seed = 0;
};

// Fits the VAE to `kernels` [M, k*k] by Adam on the mean negative ELBO; returns
// {"kernels", "steps", "train_elbo" (mean per kernel over all of them, z at the mean),
// "seconds"}.
nlohmann::json train_kernel_vae(KernelVae& vae, const torch::Tensor& kernels,
                                const KernelVaeTraining& options);

}  // namespace mmkt::transfer
