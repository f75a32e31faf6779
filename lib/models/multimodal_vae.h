// Multimodal VAEs over any number (>= 2) of modalities sharing one latent space:
//   jmvae  JMVAE (Suzuki et al. 2016): joint encoder q(z|x,w) plus unimodal encoders q(z|x),
//          q(z|w) tied to it by alpha * sum_m KL(q(z|x,w) || q(z|m)) (JMVAE-kl; alpha = 0 is
//          JMVAE-zero).
//   mvae   MVAE (Wu & Goodman 2018): product of the unimodal experts and the prior; the joint
//          ELBO plus each unimodal ELBO (the sub-sampled training of the paper, with the
//          single-modality subsets).
//   mmvae  MMVAE (Shi et al. 2019): mixture of the unimodal experts; per expert m,
//          E_{z~q_m}[sum_n log p(x_n|z) + log p(z) - log (1/M) sum_k q_k(z|x_k)].
// One objective() contract for all three; a config key switches between them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mmkt/models/config.h"
#include "mmkt/models/gaussian.h"
#include "mmkt/models/modality.h"

namespace mmkt::models {

struct ObjectiveOptions {
  double kl_weight = 1.0;  // KL warm-up factor on the prior term
  // Free bits on the prior term of the loss (jmvae, mvae): sum_d max(free_bits, KL_d) per item
  // and dimension (per item, so data-parallel workers compute what one process computes).
  double free_bits = 0.0;
  double triplet_weight = 0.0;  // 0 = no triplet term
  models::TripletConfig triplet;
  torch::Tensor labels;  // [B] int64 for negatives from another class (-1 = unknown)
  // Word dropout on the encoders' text (Bowman et al. 2016, sec. 3.2, there on the decoder's
  // input): each caption token the encoders read becomes <unk> with this probability; the
  // decoders still score the whole caption. Captions of never-seen classes name them with
  // tokens the encoder never met (<unk> with a word tokenizer), so the encoder learns to read a
  // caption from the words it knows. jmvae only; training steps only.
  double token_dropout = 0.0;
};

// `ids` [B,L] with every ordinary token (id >= 4: not pad, unk, bos or eos) replaced by unk
// (id 1) with probability p, from torch's default generator.
torch::Tensor drop_tokens(const torch::Tensor& ids, double p);

// What every objective returns: the loss to minimise and named scalar terms (detached).
struct Output {
  torch::Tensor loss;
  std::map<std::string, torch::Tensor> terms;
};

// Triplet loss between the unimodal posteriors of two modalities (Kuznetsova, Bakhteev,
// Ogaltsov 2018). Anchors in each modality; positives are the paired item's posterior in the
// other; negatives another item of a different class. Returns the mean over anchors.
// kind "contrastive" replaces the triplets by a class-supervised InfoNCE over the whole batch
// (SupCon, Khosla et al. 2020, eq. 2 "L_out", across modalities as in CLIP's symmetric loss):
//   s_ij = cos(mu_a_i, mu_b_j) / tau,  P(i) = {j : y_j = y_i} (just {i} when y_i is unknown),
//   l_i  = -(1/|P(i)|) sum_{p in P(i)} [ s_ip - log sum_j exp(s_ij) ],
// averaged over anchors, then over both directions (a -> b and b -> a). With class-level
// captions the paired caption is one of many equally right ones, so every same-class caption is
// a positive rather than a negative.
torch::Tensor triplet_loss(const Gaussian& a, const Gaussian& b, const torch::Tensor& labels,
                           const models::TripletConfig& config);

class MultimodalVaeImpl : public torch::nn::Module {
 public:
  explicit MultimodalVaeImpl(const models::ModelConfig& config);

  const models::ModelConfig& config() const { return config_; }
  std::vector<std::string> modality_names() const;
  bool has_modality(const std::string& name) const;

  // Unimodal posterior q(z | m), as training defines it: the expert for jmvae and mmvae; for
  // mvae the expert times the N(0, I) prior expert (Wu & Goodman 2018, eq. 3 with one
  // modality). Retrieval, embeddings, generation, zero-shot and distillation targets use this.
  Gaussian encode(const std::string& modality, const ModalityInput& input);
  // The unimodal encoder head's Gaussian alone, before any prior expert (what MVAE multiplies
  // and MMVAE mixes).
  Gaussian encode_expert(const std::string& modality, const ModalityInput& input);
  // The unimodal encoder's features of m, before the Gaussian head [B,F] (probes, DAP).
  torch::Tensor unimodal_features(const std::string& modality, const ModalityInput& input);
  // Posterior given all modalities present in `inputs` (any non-empty subset): JMVAE uses its
  // joint encoder when every modality is present and the unimodal encoder for one; MVAE the
  // product of experts; MMVAE the moment-matched mixture of experts.
  Gaussian encode_subset(const Inputs& inputs);
  // The joint posterior q(z | all modalities) used by the ELBO and likelihood estimates.
  Gaussian encode_joint(const Inputs& inputs) { return encode_subset(inputs); }

  // log p(m | z), weighted by nothing, [B] (z [B,D]) or [K,B] (z [K,B,D]).
  torch::Tensor log_likelihood(const std::string& modality, const torch::Tensor& z,
                               const ModalityInput& target);
  DecoderImpl& decoder(const std::string& modality);

  // The training objective (loss = minus the bound, averaged over the batch).
  Output objective(const Inputs& inputs, const ObjectiveOptions& options);
  // Per-sample joint ELBO: E_q[sum_m log p(m|z)] - KL(q(z|all) || p(z)), one sample, [B].
  torch::Tensor elbo(const Inputs& inputs);

 private:
  Gaussian joint_jmvae(const Inputs& inputs);
  // sum_m weight_m log p(m | z), [B]; records each unweighted mean as rec_<m><suffix>.
  torch::Tensor weighted_reconstruction(const torch::Tensor& z, const Inputs& inputs, Output& out,
                                        const std::string& suffix);
  // `encoder_inputs`: what the encoders read (inputs, or inputs with word dropout).
  Output objective_jmvae(const Inputs& inputs, const Inputs& encoder_inputs,
                         const ObjectiveOptions& options);
  Output objective_mvae(const Inputs& inputs, const ObjectiveOptions& options);
  Output objective_mmvae(const Inputs& inputs, const ObjectiveOptions& options);
  void add_triplet(Output& out, const Inputs& inputs, const ObjectiveOptions& options,
                   const std::map<std::string, Gaussian>& unimodal);

  models::ModelConfig config_;
  std::vector<std::string> names_;
  std::map<std::string, std::shared_ptr<FeatureEncoderImpl>> unimodal_features_;
  std::map<std::string, torch::nn::Linear> unimodal_heads_;
  std::map<std::string, std::shared_ptr<FeatureEncoderImpl>> joint_features_;  // jmvae only
  torch::nn::Sequential joint_head_{nullptr};                                  // jmvae only
  std::map<std::string, std::shared_ptr<DecoderImpl>> decoders_;
};
TORCH_MODULE(MultimodalVae);

}  // namespace mmkt::models
