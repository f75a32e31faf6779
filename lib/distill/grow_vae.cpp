#include "mmkt/distill/grow_vae.h"

#include <ATen/CPUGeneratorImpl.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "mmkt/core/error.h"
#include "mmkt/distill/net2net.h"

namespace mmkt::distill {
namespace {

using Params = ParameterMap;

// The Linear layers of a ReLU MLP registered as `prefix` (a Sequential: Linear at 0, 2, 4, ...).
int linear_count(const Params& params, const std::string& prefix) {
  int n = 0;
  while (params.count(prefix + "." + std::to_string(2 * n) + ".weight") > 0) ++n;
  return n;
}

std::string linear(const std::string& prefix, int i) {
  return prefix + "." + std::to_string(2 * i);
}

// One Widening over a concatenation of blocks (the joint head's input).
Widening concatenate(const std::vector<Widening>& blocks) {
  Widening w;
  std::vector<torch::Tensor> shares;
  for (const auto& b : blocks) {
    for (const auto s : b.source) w.source.push_back(w.from + s);
    w.from += b.from;
    w.to += b.to;
    shares.push_back(b.share);
  }
  w.share = torch::cat(shares);
  return w;
}

class Grower {
 public:
  Grower(const Params& small, const Params& large, std::uint64_t seed)
      : small_(small), large_(large), generator_(at::detail::createCPUGenerator(seed)) {}

  // Grows the first `layers` Linears (-1: all) of the MLP at `prefix`, whose first layer reads
  // inputs widened by `input` (nullptr: not widened); returns the widening of the last grown
  // layer's output.
  Widening grow_mlp(const std::string& prefix, const Widening* input, int layers = -1) {
    const int count = linear_count(small_, prefix);
    MMKT_CHECK_INPUT(count == linear_count(large_, prefix), "cannot grow: ", prefix, " has ",
                     count, " layers in the trained model and ", linear_count(large_, prefix),
                     " in the larger one (growth widens, it does not deepen)");
    if (layers < 0) layers = count;
    Widening previous;
    for (int i = 0; i < layers; ++i) {
      const auto name = linear(prefix, i);
      const auto from = small_.at(name + ".weight").size(0);
      const auto to = large_.at(name + ".weight").size(0);
      MMKT_CHECK_INPUT(to >= from, "cannot grow: ", name, " has ", from,
                       " units in the trained model and ", to, " in the larger one");
      const auto w = make_widening(from, to, generator_);
      auto weight = widen_units(small(name + ".weight"), 0, w);
      if (i > 0) {
        weight = widen_inputs(weight, 1, previous);
      } else if (input != nullptr) {
        weight = widen_inputs(weight, 1, *input);
      }
      set(name + ".weight", weight);
      set(name + ".bias", widen_units(small(name + ".bias"), 0, w));
      previous = w;
    }
    return previous;
  }

  // A Linear that reads a widened layer: only its input columns change.
  void grow_consumer(const std::string& name, const Widening& input) {
    set(name + ".weight", widen_inputs(small(name + ".weight"), 1, input));
    set(name + ".bias", small(name + ".bias"));
  }

  bool has_mlp(const std::string& prefix) const { return linear_count(small_, prefix) > 0; }

  // The output width of a feature encoder that does not grow (its features feed the joint head
  // as they are).
  std::int64_t feature_width(const std::string& head) const {
    return small_.at(head + ".weight").size(1);
  }

  // Every parameter not grown above: copied, and it must have the same shape in both models.
  void copy_the_rest() {
    for (const auto& [name, tensor] : large_) {
      if (done_.count(name) > 0) continue;
      const auto it = small_.find(name);
      MMKT_CHECK_INPUT(it != small_.end(), "cannot grow: the larger model has a parameter '",
                       name, "' the trained one lacks");
      MMKT_CHECK_INPUT(it->second.sizes() == tensor.sizes(), "cannot grow: parameter '", name,
                       "' is ", it->second.sizes(), " in the trained model and ", tensor.sizes(),
                       " in the larger one, and only MLP widths grow");
      set(name, it->second.detach().cpu());
    }
  }

 private:
  torch::Tensor small(const std::string& name) const { return parameter_at(small_, name); }

  void set(const std::string& name, const torch::Tensor& value) {
    auto& target = large_.at(name);
    MMKT_CHECK_INPUT(target.sizes() == value.sizes(), "cannot grow: parameter '", name,
                     "' would be ", value.sizes(), " but the larger model has ", target.sizes());
    torch::NoGradGuard no_grad;
    target.copy_(value);
    done_.insert(name);
  }

  const Params& small_;
  Params large_;
  torch::Generator generator_;
  std::set<std::string> done_;
};

}  // namespace

models::MultimodalVae grow_multimodal_vae(models::MultimodalVae& small,
                                          const models::ModelConfig& large_config,
                                          std::uint64_t seed) {
  const auto& s = small->config();
  MMKT_CHECK_INPUT(s.type == large_config.type, "cannot grow a ", s.type, " into a ",
                   large_config.type);
  MMKT_CHECK_INPUT(s.latent_dim == large_config.latent_dim, "cannot grow: latent size ",
                   s.latent_dim, " -> ", large_config.latent_dim, " (growth keeps the latent)");
  models::MultimodalVae large(large_config);  // built on the CPU
  MMKT_CHECK_INPUT(small->modality_names() == large->modality_names(),
                   "cannot grow: the modalities differ");
  const auto small_params = parameter_map(*small);
  Grower grower(small_params, parameter_map(*large), seed);
  std::vector<Widening> joint_inputs;
  for (const auto& m : small->modality_names()) {
    // Unimodal encoder -> its Gaussian head.
    const auto enc = "enc_" + m + ".layers";
    if (grower.has_mlp(enc)) {
      grower.grow_consumer("enc_" + m + "_head", grower.grow_mlp(enc, nullptr));
    }
    // Decoder: latent -> hidden (reversed) -> out.
    const auto dec = "dec_" + m + ".layers";
    if (grower.has_mlp(dec)) {
      grower.grow_consumer("dec_" + m + ".out", grower.grow_mlp(dec, nullptr));
    }
    if (s.type != "jmvae") continue;
    const auto joint = "joint_" + m + ".layers";
    joint_inputs.push_back(grower.has_mlp(joint)
                               ? grower.grow_mlp(joint, nullptr)
                               : Widening::identity(grower.feature_width("enc_" + m + "_head")));
  }
  if (s.type == "jmvae") {
    // The joint head reads the branches' features concatenated in modality order; its last
    // Linear (to the Gaussian's 2 x latent) only reads its widened hidden layer.
    const auto input = concatenate(joint_inputs);
    const int hidden = static_cast<int>(s.joint_hidden.size());
    MMKT_CHECK_INPUT(large_config.joint_hidden.size() == s.joint_hidden.size(),
                     "cannot grow: model.joint_hidden has ", s.joint_hidden.size(),
                     " layers in the trained model and ", large_config.joint_hidden.size(),
                     " in the larger one");
    if (hidden > 0) {
      // joint_head holds Linear, ReLU, ..., Linear: its hidden layers are an MLP whose first
      // layer reads the concatenation, and the last Linear (index 2 * hidden) its consumer.
      const auto last = grower.grow_mlp("joint_head", &input, hidden);
      grower.grow_consumer("joint_head." + std::to_string(2 * hidden), last);
    } else {
      grower.grow_consumer("joint_head.0", input);
    }
  }
  grower.copy_the_rest();
  return large;
}

}  // namespace mmkt::distill
