// One modality of a multimodal VAE: how its data enter (ModalityInput), the network that turns
// them into features (FeatureEncoder), and the decoder that scores them given z (Decoder).
// Networks are chosen by ModalityConfig::encoder / decoder names (see networks.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace mmkt::models {

// Data of one modality for a batch.
//   image:      data [B,C,H,W] float in [0,1] (binary for Bernoulli likelihoods)
//   text:       data [B,L] int64 token ids (BOS ... EOS, right-padded with 0), lengths [B]
//   label:      data [B] int64 class indices
//   attributes: data [B,A] float 0/1
struct ModalityInput {
  torch::Tensor data;
  torch::Tensor lengths;                       // text only
  ModalityInput repeat(std::int64_t k) const;  // each row k times, as [k*B,...] (k-major)
  ModalityInput to(const torch::Device& device) const;
};
using Inputs = std::map<std::string, ModalityInput>;

// What a modality's data are; parsed once from the configuration's names.
enum class ModalityKind { kImage, kText, kLabel, kAttributes };
// "image" | "text" | "label" | "attributes".
const char* to_string(ModalityKind kind);
std::ostream& operator<<(std::ostream& out, ModalityKind kind);
// InputError naming `where` for any other name.
ModalityKind parse_modality_kind(const std::string& name, const std::string& where);

// Configuration of one modality (JSON keys in brackets; defaults documented in config.h).
struct ModalityConfig {
  std::string name;                          // [name] unique: "image", "text", "label", ...
  ModalityKind kind = ModalityKind::kImage;  // [kind] image | text | label | attributes
  std::string encoder;  // [encoder] mlp | conv (image); gru | conv (text); mlp (label, attributes)
  std::string decoder;  // [decoder] mlp | conv (image); gru | conv (text); mlp (label, attributes)
  std::string likelihood;  // [likelihood] bernoulli | gaussian | laplace (image);
                           // categorical (text, label); bernoulli (attributes)
  std::vector<std::int64_t> hidden = {512, 512};  // [hidden] MLP widths (paper: 512-512)
  std::vector<std::int64_t> shape;                // [shape] image {C,H,W}; filled from data
  std::int64_t classes = 0;          // [classes] label: number of classes; attributes: count
  std::int64_t vocab_size = 0;       // [vocab_size] text: filled from the tokenizer
  std::int64_t embedding_dim = 128;  // [embedding_dim] text
  std::int64_t rnn_hidden = 256;     // [rnn_hidden] text network width (GRU state or conv channels)
  std::int64_t max_length = 48;      // [max_length] text: longest generated caption
  std::int64_t channels = 32;        // [channels] conv: width of the first conv layer
  double likelihood_scale = 0.1;  // [likelihood_scale] sigma (gaussian) or b (laplace); 0 = learned
  double weight = 1.0;            // [weight] multiplies this modality's log-likelihood
};

// Input -> features [B, out_features()].
class FeatureEncoderImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const ModalityInput& input) = 0;
  virtual std::int64_t out_features() const = 0;
};

// z -> a distribution over the modality's data.
class DecoderImpl : public torch::nn::Module {
 public:
  // log p(target | z), summed over the item's elements (pixels, tokens), [B]. z is [B,D].
  virtual torch::Tensor log_likelihood(const torch::Tensor& z, const ModalityInput& target) = 0;
  // The decoder's mean (images: pixel means; label/attributes: probabilities; text: the
  // greedy decoding's ids [B,L]).
  virtual torch::Tensor mean(const torch::Tensor& z) = 0;
  // log p(target | z) for z of [K,B,D] -> [K,B], through one batched call.
  torch::Tensor log_likelihood_k(const torch::Tensor& z, const ModalityInput& target);
};

// Builds the networks named by a config; throws InputError for unknown names or kinds.
std::shared_ptr<FeatureEncoderImpl> make_feature_encoder(const ModalityConfig& config);
std::shared_ptr<DecoderImpl> make_decoder(const ModalityConfig& config, std::int64_t latent_dim);

}  // namespace mmkt::models
