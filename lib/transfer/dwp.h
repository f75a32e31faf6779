// The deep weight prior in practice (Atanov et al. 2019) and its distillation variant (Kolesov
// 2022, the prior learned from a teacher's kernels), as `mmkt transfer --method dwp`.
//
// The networks are small CNNs (ConvNet): L conv layers (k x k, stride 1, same padding, ReLU,
// 2x2 max-pool) and a Linear classifier. A deep weight prior is one kernel VAE per conv layer
// (kernel_vae.h), fitted to the k x k slices of that layer in networks trained on a source
// task. A new network uses it in one of two ways:
//
//   DWP init    its conv kernels are drawn from the prior: z ~ N(0, I), w ~ p(w|z);
//   DWP prior   its conv kernels get a factorised Gaussian posterior q(w) = N(m, s^2) (m drawn
//               as in DWP init, s = 0.0067) trained by variational inference with the DWP bound
//                 L = E_q[log p(D|w)] - KL(q || p),
//                 -KL(q || p_dwp) >= H[q] + sum_kernels E_q(w)[ E_r(z|w)[log p(w|z)] -
//                                                     KL(r(z|w) || p(z)) ],
//               one sample of w and of z per step; per item: CE + beta * KL bound / N, beta
//               from kl_weights chosen by validation accuracy (beta = 1 is the bound itself;
//               beta < 1 the tempered posterior most VI practice needs on small data).
//   VI normal   the baseline for the DWP prior (the paper's standard-normal prior): the same
//               q(w), means from the random init, the same beta grid, with the closed-form
//               KL(q || N(0, I)) on the conv kernels instead of the DWP bound.
// Predictions of a DWP-prior network use the posterior means m.
// DWP + distillation adds Hinton's KD (distill/losses.h) from a teacher, a wider ConvNet
// trained on the whole training split, whose kernels are also where its prior is learned.
//
// The experiment: prior networks trained on the source dataset (MNIST digits for a
// Fashion-MNIST target); target students trained on per_class items per class, six ways
// (random, dwp-init, dwp-prior, distill = KD from random init, dwp-distill = teacher prior +
// KD, vi-normal), each for `steps` steps; the reported test accuracy is at the step of best
// validation accuracy (validation_per_class held-out items per class), the learning curves are
// accuracy on curve_items test items every eval_every steps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"
#include "mmkt/transfer/kernel_vae.h"

namespace mmkt::transfer {

struct ConvNetSpec {
  std::vector<std::int64_t> channels = {16, 32};
  std::int64_t kernel = 5;
  std::vector<std::int64_t> image_shape = {1, 28, 28};
  std::int64_t classes = 10;
};

class ConvNetImpl : public torch::nn::Module {
 public:
  explicit ConvNetImpl(const ConvNetSpec& spec);
  // Logits [B, classes]. `conv_weights`, when given, replace the conv layers' weights (a
  // sample of the variational posterior); the biases and the classifier are the module's.
  torch::Tensor forward(const torch::Tensor& x,
                        const std::vector<torch::Tensor>& conv_weights = {});
  std::vector<torch::Tensor> conv_weights() const { return weights_; }
  const ConvNetSpec& spec() const { return spec_; }

 private:
  ConvNetSpec spec_;
  std::vector<torch::Tensor> weights_, biases_;
  torch::nn::Linear classifier_{nullptr};
};
TORCH_MODULE(ConvNet);

struct DwpOptions {
  std::string source_dataset = "mnist";   // where the prior's kernels come from
  std::string dataset = "fashion-mnist";  // the target task: mnist | fashion-mnist | shapes:L
  std::vector<std::int64_t> channels = {16, 32};
  std::vector<std::int64_t> teacher_channels = {32, 64};
  std::int64_t kernel = 5;
  std::int64_t source_networks = 3;
  std::int64_t source_steps = 600;
  std::int64_t teacher_steps = 1500;
  std::int64_t vae_latent = 4;
  std::int64_t vae_hidden = 64;
  std::int64_t vae_steps = 2000;
  std::vector<std::int64_t> per_class = {50, 100, 500, 1000};
  std::int64_t validation_per_class = 20;
  std::int64_t test_items = 10000;
  std::int64_t curve_items = 2000;
  std::vector<std::uint64_t> seeds = {0, 1, 2};
  std::int64_t steps = 600;
  std::int64_t batch_size = 64;
  std::int64_t eval_every = 50;
  double lr = 1e-3;
  double kd_temperature = 4.0;
  double kd_weight = 1.0;
  std::vector<double> kl_weights = {1.0, 0.1, 0.01};  // beta grid of the DWP-prior methods
  std::vector<std::string> methods = {"random",  "dwp-init",    "dwp-prior",
                                      "distill", "dwp-distill", "vi-normal"};
  // For a "shapes:L" dataset (the shape factor as a 5-class label at level L, 3-channel images):
  std::int64_t shapes_image_size = 32;    // rendered at S x S
  std::int64_t shapes_train_items = 6000; // training split size; the test split has test_items
  std::string out_dir;
  double progress_seconds = 10;
};

nlohmann::json dwp_options_to_json(const DwpOptions& options);
DwpOptions dwp_options_from_json(const nlohmann::json& user, const std::string& source);

// The DWP bound's KL part for one conv layer: -H[q] - sum_kernels ELBO(w) at a sample w of q
// (w = mean + exp(log_sigma) * eps), an upper bound on KL(q || p_dwp) in expectation.
// `vae` is not trained here (its parameters get no gradient from the caller's optimiser).
torch::Tensor dwp_kl_bound(KernelVaeImpl& vae, const torch::Tensor& sampled_weight,
                           const torch::Tensor& log_sigma);

// KL(N(mean, exp(log_sigma)^2) || N(0, 1)), summed over the elements: the VI-normal baseline's
// KL term.
torch::Tensor normal_kl(const torch::Tensor& mean, const torch::Tensor& log_sigma);

// Trains the prior networks, the teacher and the kernel VAEs, then every method for every
// seed and size; writes out_dir/{config.json, result.json, result.md, curves.tsv, log.jsonl}.
nlohmann::json run_dwp(const DwpOptions& options, const Runtime& runtime);
std::string dwp_markdown(const nlohmann::json& result);

}  // namespace mmkt::transfer
