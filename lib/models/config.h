// The model's part of a run configuration: which multimodal VAE, its latent space and networks
// (models/modality.h), and the triplet / contrastive constraints between modalities. Parsed
// and validated with the rest of the configuration (run/config.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mmkt/models/modality.h"

namespace mmkt::models {

struct ModelConfig {
  std::string type = "jmvae";  // jmvae | mvae | mmvae
  std::int64_t latent_dim = 64;
  std::vector<std::int64_t> joint_hidden = {512};  // joint encoder MLP after concatenation
  double alpha = 0.1;  // JMVAE-kl weight of the unimodal KL terms (0 = JMVAE-zero)
  std::vector<ModalityConfig> modalities;  // empty = the dataset's default pair
};

struct TripletConfig {
  double weight = 0.0;        // 0 = off
  std::string kind = "soft";  // soft: softplus(D(a,p) - D(a,n)) on symmetric KL;
                              // hinge: max(0, margin + |mu_a-mu_p| - |mu_a-mu_n|);
                              // contrastive: class-supervised InfoNCE over the whole batch
                              // on cosine similarities of the means (multimodal_vae.h)
  double margin = 1.0;
  double temperature = 0.1;          // contrastive: the softmax temperature tau
  std::string negatives = "random";  // random | hard (in-batch, other class)
  double warmup_epochs = 0.0;        // weight ramps linearly from 0
  std::vector<std::pair<std::string, std::string>> pairs;  // empty = first two modalities
};

}  // namespace mmkt::models
