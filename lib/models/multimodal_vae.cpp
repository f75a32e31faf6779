#include "mmkt/models/multimodal_vae.h"

#include "mmkt/models/batch_peers.h"

#include <cmath>

#include "mmkt/core/error.h"

namespace mmkt::models {

namespace {

torch::Tensor mean_of(const torch::Tensor& t) { return t.mean().detach(); }

// Pairwise distances between the rows of a and b: [B,B].
torch::Tensor pairwise_symmetric_kl(const Gaussian& a, const Gaussian& b) {
  const Gaussian ai{a.mu.unsqueeze(1), a.logvar.unsqueeze(1)};
  const Gaussian bj{b.mu.unsqueeze(0), b.logvar.unsqueeze(0)};
  return symmetric_kl(ai, bj);
}

torch::Tensor pairwise_euclidean(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1).add(1e-12).sqrt();
}

// [n,G] true where anchor i and candidate j have the same known label (-1 is unknown).
torch::Tensor same_known_class(const torch::Tensor& anchors, const torch::Tensor& candidates) {
  const auto known = (anchors >= 0).unsqueeze(1) & (candidates >= 0).unsqueeze(0);
  return anchors.unsqueeze(1).eq(candidates.unsqueeze(0)) & known;
}

// The candidates an anchor of this batch is compared with: the batch itself in one process; the
// whole global batch under data-parallel training (models/batch_peers.h), so that N workers form
// the same triplets as one process. `offset` is the anchors' first row among the candidates.
struct Candidates {
  Gaussian b;
  torch::Tensor labels;  // undefined when unlabelled
  std::int64_t offset = 0;
  double anchor_weight = 1.0;  // global_rows / local rows: see directed_triplet
};

Candidates candidates_for(const Gaussian& b, const torch::Tensor& labels) {
  auto* peers = batch_peers();
  if (peers == nullptr) return {b, labels, 0, 1.0};
  return {Gaussian{peers->all_rows(b.mu), peers->all_rows(b.logvar)},
          labels.defined() ? peers->all_rows(labels) : labels, peers->offset(),
          static_cast<double>(peers->global_rows()) / static_cast<double>(b.mu.size(0))};
}

// Loss with anchors from `a` and positives/negatives from `b` (the anchors' rows of a batch).
// One process: sum_i w_i l_i / max(1, sum_i w_i) over the batch (w_i = 1 when anchor i has a
// valid negative). Under data parallelism each rank returns (G / n) sum_{its i} w_i l_i /
// max(1, sum over all ranks of w_i), whose rows-weighted average (n / G each) is that sum.
torch::Tensor directed_triplet(const Gaussian& a, const Gaussian& b, const torch::Tensor& labels,
                               const models::TripletConfig& config) {
  const auto n = a.mu.size(0);
  const auto c = candidates_for(b, labels);
  const auto g = c.b.mu.size(0);
  const bool soft = config.kind == "soft";
  const auto dist =
      soft ? pairwise_symmetric_kl(a, c.b) : pairwise_euclidean(a.mu, c.b.mu);  // [n,G]
  const auto rows =
      torch::arange(n, torch::TensorOptions().dtype(torch::kInt64).device(a.mu.device()));
  const auto self = rows + c.offset;  // each anchor's own (positive) column
  // Valid negatives: another item, of another class where labels are known.
  auto valid =
      torch::ones({n, g}, torch::TensorOptions().dtype(torch::kBool).device(a.mu.device()));
  valid.index_put_({rows, self}, false);
  if (labels.defined()) valid = valid & same_known_class(labels, c.labels).logical_not();
  const auto has_negative = valid.any(1);
  torch::Tensor negative_index;
  if (config.negatives == "hard") {
    // The closest item of another class.
    negative_index = dist.detach().masked_fill(valid.logical_not(), INFINITY).argmin(1);
  } else {
    // A uniformly random valid negative (random scores, masked, argmax). Every rank draws the
    // whole global batch's G x G scores and keeps its anchors' rows: the generator advances alike
    // on every rank (the noise that follows stays shared) and the draw is one process's.
    auto scores = torch::rand({g, g}, a.mu.options()).narrow(0, c.offset, n);
    negative_index = scores.masked_fill(valid.logical_not(), -1.0).argmax(1);
  }
  const auto d_pos = dist.index({rows, self});
  const auto d_neg = dist.index({rows, negative_index});
  const auto per_anchor =
      soft ? torch::softplus(d_pos - d_neg) : torch::relu(config.margin + d_pos - d_neg);
  const auto weights = has_negative.to(per_anchor.dtype());
  double total_weight = weights.sum().item<double>();
  if (auto* peers = batch_peers()) total_weight = peers->sum(total_weight);
  return (per_anchor * weights).sum() * c.anchor_weight / std::max(total_weight, 1.0);
}

// Class-supervised contrastive loss with anchors from `a` and candidates from `b` (see
// multimodal_vae.h): every item of b with the anchor's label is a positive (the paired item
// alone where labels are unknown, -1), every other item of b a negative. Under data
// parallelism the candidates are the global batch's and the mean over this rank's anchors,
// weighted n / G by the trainer, sums to one process's mean.
torch::Tensor directed_contrastive(const Gaussian& a, const Gaussian& b,
                                   const torch::Tensor& labels,
                                   const models::TripletConfig& config) {
  namespace F = torch::nn::functional;
  const auto n = a.mu.size(0);
  const auto c = candidates_for(b, labels);
  const auto ua = F::normalize(a.mu, F::NormalizeFuncOptions().dim(1));
  const auto ub = F::normalize(c.b.mu, F::NormalizeFuncOptions().dim(1));
  const auto logits = torch::mm(ua, ub.t()) / config.temperature;  // [n,G]
  const auto log_softmax = logits - logits.logsumexp(1, /*keepdim=*/true);
  const auto rows =
      torch::arange(n, torch::TensorOptions().dtype(torch::kInt64).device(a.mu.device()));
  auto positive = torch::zeros({n, c.b.mu.size(0)},
                               torch::TensorOptions().dtype(torch::kBool).device(a.mu.device()));
  positive.index_put_({rows, rows + c.offset}, true);
  if (labels.defined()) positive = positive | same_known_class(labels, c.labels);
  const auto p = positive.to(log_softmax.dtype());
  return -((log_softmax * p).sum(1) / p.sum(1)).mean();
}

}  // namespace

torch::Tensor drop_tokens(const torch::Tensor& ids, double p) {
  MMKT_CHECK_INPUT(p >= 0.0 && p < 1.0, "token dropout must be in [0, 1), got ", p);
  constexpr std::int64_t kUnk = 1, kFirstOrdinary = 4;  // text/tokenizer.h's fixed special ids
  const auto drop = (ids >= kFirstOrdinary) & (torch::rand(ids.sizes(), torch::kFloat32) < p)
                                                  .to(ids.device());
  return ids.masked_fill(drop, kUnk);
}

torch::Tensor triplet_loss(const Gaussian& a, const Gaussian& b, const torch::Tensor& labels,
                           const models::TripletConfig& config) {
  if (config.kind == "contrastive") {
    return 0.5 * (directed_contrastive(a, b, labels, config) +
                  directed_contrastive(b, a, labels, config));
  }
  return 0.5 * (directed_triplet(a, b, labels, config) + directed_triplet(b, a, labels, config));
}

MultimodalVaeImpl::MultimodalVaeImpl(const models::ModelConfig& config) : config_(config) {
  MMKT_CHECK_INPUT(config_.modalities.size() >= 2, "model: needs at least 2 modalities, got ",
                   config_.modalities.size());
  const auto d = config_.latent_dim;
  std::int64_t joint_width = 0;
  for (const auto& m : config_.modalities) {
    names_.push_back(m.name);
    auto features = make_feature_encoder(m);
    unimodal_features_[m.name] = register_module("enc_" + m.name, features);
    unimodal_heads_.emplace(m.name,
                            register_module("enc_" + m.name + "_head",
                                            torch::nn::Linear(features->out_features(), 2 * d)));
    decoders_[m.name] = register_module("dec_" + m.name, make_decoder(m, d));
    if (config_.type == "jmvae") {
      auto jf = make_feature_encoder(m);
      joint_width += jf->out_features();
      joint_features_[m.name] = register_module("joint_" + m.name, jf);
    }
  }
  if (config_.type == "jmvae") {
    torch::nn::Sequential head;
    std::int64_t width = joint_width;
    for (const auto h : config_.joint_hidden) {
      head->push_back(torch::nn::Linear(width, h));
      head->push_back(torch::nn::ReLU());
      width = h;
    }
    head->push_back(torch::nn::Linear(width, 2 * d));
    joint_head_ = register_module("joint_head", head);
  }
}

std::vector<std::string> MultimodalVaeImpl::modality_names() const { return names_; }

bool MultimodalVaeImpl::has_modality(const std::string& name) const {
  return decoders_.count(name) > 0;
}

DecoderImpl& MultimodalVaeImpl::decoder(const std::string& modality) {
  auto it = decoders_.find(modality);
  MMKT_CHECK_INPUT(it != decoders_.end(), "model has no modality '", modality, "'");
  return *it->second;
}

Gaussian MultimodalVaeImpl::encode_expert(const std::string& modality, const ModalityInput& input) {
  auto it = unimodal_features_.find(modality);
  MMKT_CHECK_INPUT(it != unimodal_features_.end(), "model has no modality '", modality, "'");
  return gaussian_from_params(unimodal_heads_.at(modality)->forward(it->second->forward(input)));
}

Gaussian MultimodalVaeImpl::encode(const std::string& modality, const ModalityInput& input) {
  auto expert = encode_expert(modality, input);
  if (config_.type == "mvae") return product_of_experts({expert}, true);
  return expert;
}

torch::Tensor MultimodalVaeImpl::unimodal_features(const std::string& modality,
                                                   const ModalityInput& input) {
  auto it = unimodal_features_.find(modality);
  MMKT_CHECK_INPUT(it != unimodal_features_.end(), "model has no modality '", modality, "'");
  return it->second->forward(input);
}

Gaussian MultimodalVaeImpl::joint_jmvae(const Inputs& inputs) {
  std::vector<torch::Tensor> features;
  for (const auto& name : names_)
    features.push_back(joint_features_.at(name)->forward(inputs.at(name)));
  return gaussian_from_params(joint_head_->forward(torch::cat(features, 1)));
}

Gaussian MultimodalVaeImpl::encode_subset(const Inputs& inputs) {
  MMKT_CHECK(!inputs.empty(), "encode_subset: no modality given");
  for (const auto& [name, input] : inputs) {
    MMKT_CHECK_INPUT(has_modality(name), "model has no modality '", name, "'");
  }
  if (inputs.size() == 1) {
    const auto& [name, input] = *inputs.begin();
    return encode(name, input);
  }
  if (config_.type == "jmvae") {
    MMKT_CHECK_INPUT(inputs.size() == names_.size(),
                     "JMVAE encodes one modality or all of them, got ", inputs.size(), " of ",
                     names_.size());
    return joint_jmvae(inputs);
  }
  std::vector<Gaussian> experts;
  for (const auto& [name, input] : inputs) experts.push_back(encode_expert(name, input));
  if (config_.type == "mvae") return product_of_experts(experts, true);
  // mmvae: moment-matched uniform mixture.
  torch::Tensor mu_sum, second_sum;
  for (const auto& e : experts) {
    const auto second = e.logvar.exp() + e.mu.pow(2);
    mu_sum = mu_sum.defined() ? mu_sum + e.mu : e.mu;
    second_sum = second_sum.defined() ? second_sum + second : second;
  }
  const double m = static_cast<double>(experts.size());
  const auto mu = mu_sum / m;
  const auto var = (second_sum / m - mu.pow(2)).clamp_min(1e-12);
  return {mu, var.log()};
}

torch::Tensor MultimodalVaeImpl::log_likelihood(const std::string& modality, const torch::Tensor& z,
                                                const ModalityInput& target) {
  auto& dec = decoder(modality);
  return z.dim() == 3 ? dec.log_likelihood_k(z, target) : dec.log_likelihood(z, target);
}

torch::Tensor MultimodalVaeImpl::elbo(const Inputs& inputs) {
  const auto q = encode_joint(inputs);
  const auto z = q.rsample();
  torch::Tensor rec = torch::zeros({q.mu.size(0)}, q.mu.options());
  for (const auto& name : names_) rec = rec + log_likelihood(name, z, inputs.at(name));
  return rec - kl_standard_normal(q);
}

Output MultimodalVaeImpl::objective(const Inputs& inputs, const ObjectiveOptions& options) {
  for (const auto& name : names_) {
    MMKT_CHECK_INPUT(inputs.count(name) > 0, "objective: batch lacks modality '", name, "'");
  }
  if (options.token_dropout > 0) {
    MMKT_CHECK_INPUT(config_.type == "jmvae", "train.token_dropout: supported for model.type "
                     "jmvae only, got '", config_.type, "'");
    Inputs encoder_inputs = inputs;
    for (const auto& m : config_.modalities) {
      if (m.kind == ModalityKind::kText) {
        auto& text = encoder_inputs.at(m.name);
        text.data = drop_tokens(text.data, options.token_dropout);
      }
    }
    return objective_jmvae(inputs, encoder_inputs, options);
  }
  if (config_.type == "jmvae") return objective_jmvae(inputs, inputs, options);
  if (config_.type == "mvae") return objective_mvae(inputs, options);
  return objective_mmvae(inputs, options);
}

torch::Tensor MultimodalVaeImpl::weighted_reconstruction(const torch::Tensor& z,
                                                         const Inputs& inputs, Output& out,
                                                         const std::string& suffix) {
  auto rec = torch::zeros({z.size(0)}, z.options());
  for (const auto& m : config_.modalities) {
    const auto ll = log_likelihood(m.name, z, inputs.at(m.name));
    out.terms["rec_" + m.name + suffix] = mean_of(ll);
    rec = rec + m.weight * ll;
  }
  return rec;
}

namespace {
// The prior term of the loss: KL(q || N(0,I)) per item, with free bits sum_d max(lambda, KL_d)
// (Kingma et al. 2016, eq. 15, per item) when lambda > 0.
torch::Tensor prior_kl_term(const Gaussian& q, double free_bits) {
  if (free_bits <= 0) return kl_standard_normal(q);
  const auto per_dim = 0.5 * (q.mu.pow(2) + q.logvar.exp() - 1.0 - q.logvar);
  return per_dim.clamp_min(free_bits).sum(-1);
}
}  // namespace

Output MultimodalVaeImpl::objective_jmvae(const Inputs& inputs, const Inputs& encoder_inputs,
                                          const ObjectiveOptions& options) {
  Output out;
  const auto q = joint_jmvae(encoder_inputs);
  const auto z = q.rsample();
  const auto rec = weighted_reconstruction(z, inputs, out, "");
  const auto kl = kl_standard_normal(q);
  auto bound = rec - options.kl_weight * prior_kl_term(q, options.free_bits);
  std::map<std::string, Gaussian> unimodal;
  if (config_.alpha > 0 || options.triplet_weight > 0) {
    for (const auto& name : names_)
      unimodal.emplace(name, encode(name, encoder_inputs.at(name)));
  }
  if (config_.alpha > 0) {
    for (const auto& name : names_) {
      const auto kl_m = kl_divergence(q, unimodal.at(name));
      out.terms["kl_" + name] = mean_of(kl_m);
      bound = bound - config_.alpha * kl_m;
    }
  }
  out.terms["kl"] = mean_of(kl);
  out.terms["elbo"] = mean_of(rec - kl);
  out.loss = -bound.mean();
  add_triplet(out, inputs, options, unimodal);
  out.terms["loss"] = out.loss.detach();
  return out;
}

Output MultimodalVaeImpl::objective_mvae(const Inputs& inputs, const ObjectiveOptions& options) {
  Output out;
  std::map<std::string, Gaussian> unimodal;  // q(z|m) = expert x prior, as encode() gives it
  std::vector<Gaussian> experts;
  for (const auto& name : names_) {
    experts.push_back(encode_expert(name, inputs.at(name)));
    unimodal.emplace(name, product_of_experts({experts.back()}, true));
  }
  // Joint ELBO with the product of all experts, then each single-modality ELBO (the
  // sub-sampled terms of Wu & Goodman 2018 for the one-modality subsets).
  const auto q = product_of_experts(experts, true);
  const auto z = q.rsample();
  const auto rec = weighted_reconstruction(z, inputs, out, "");
  const auto kl = kl_standard_normal(q);
  auto bound = rec - options.kl_weight * prior_kl_term(q, options.free_bits);
  out.terms["kl"] = mean_of(kl);
  out.terms["elbo"] = mean_of(rec - kl);
  for (const auto& m : config_.modalities) {
    const auto& qm = unimodal.at(m.name);
    const auto zm = qm.rsample();
    const auto llm = log_likelihood(m.name, zm, inputs.at(m.name));
    const auto klm = kl_standard_normal(qm);
    out.terms["elbo_" + m.name] = mean_of(llm - klm);
    bound = bound + m.weight * llm - options.kl_weight * prior_kl_term(qm, options.free_bits);
  }
  out.loss = -bound.mean();
  add_triplet(out, inputs, options, unimodal);
  out.terms["loss"] = out.loss.detach();
  return out;
}

Output MultimodalVaeImpl::objective_mmvae(const Inputs& inputs, const ObjectiveOptions& options) {
  Output out;
  std::map<std::string, Gaussian> unimodal;
  for (const auto& name : names_) unimodal.emplace(name, encode(name, inputs.at(name)));
  const double log_m = std::log(static_cast<double>(names_.size()));
  torch::Tensor bound;
  torch::Tensor elbo_sum;
  for (const auto& source : names_) {
    const auto z = unimodal.at(source).rsample();
    const auto rec = weighted_reconstruction(z, inputs, out, "_from_" + source);
    // log q_mix(z) = logsumexp_k log q_k(z) - log M
    std::vector<torch::Tensor> log_qs;
    for (const auto& k : names_) log_qs.push_back(unimodal.at(k).log_prob(z));
    const auto log_q_mix = torch::logsumexp(torch::stack(log_qs), 0) - log_m;
    const auto log_ratio = standard_normal_log_prob(z) - log_q_mix;  // -KL estimate
    const auto term = rec + options.kl_weight * log_ratio;
    bound = bound.defined() ? bound + term : term;
    const auto e = rec + log_ratio;
    elbo_sum = elbo_sum.defined() ? elbo_sum + e : e;
  }
  const double m = static_cast<double>(names_.size());
  out.terms["elbo"] = mean_of(elbo_sum / m);
  out.loss = -(bound / m).mean();
  add_triplet(out, inputs, options, unimodal);
  out.terms["loss"] = out.loss.detach();
  return out;
}

void MultimodalVaeImpl::add_triplet(Output& out, const Inputs&, const ObjectiveOptions& options,
                                    const std::map<std::string, Gaussian>& unimodal) {
  if (options.triplet_weight <= 0) return;
  auto pairs = options.triplet.pairs;
  if (pairs.empty()) pairs.emplace_back(names_[0], names_[1]);
  torch::Tensor total;
  for (const auto& [a, b] : pairs) {
    MMKT_CHECK_INPUT(unimodal.count(a) && unimodal.count(b), "triplet.pairs: unknown modality in [",
                     a, ", ", b, "]");
    const auto t = triplet_loss(unimodal.at(a), unimodal.at(b), options.labels, options.triplet);
    out.terms["triplet_" + a + "_" + b] = t.detach();
    total = total.defined() ? total + t : t;
  }
  out.loss = out.loss + options.triplet_weight * total;
}

}  // namespace mmkt::models
