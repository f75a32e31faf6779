#include "mmkt/query/zero_shot_classifier.h"

#include <algorithm>

#include "mmkt/core/error.h"
#include "mmkt/eval/embed.h"

namespace mmkt::query {

ZeroShotClassifier fit_zero_shot(LoadedRun& run, std::int64_t max_train,
                                 const torch::Device& device) {
  auto task = eval::zero_shot_task(run);
  MMKT_CHECK_INPUT(task.has_value(),
                   "this run has no zero-shot task (no class attributes or no unseen classes)");
  ZeroShotClassifier zs;
  zs.task = *task;
  eval::EmbedOptions o;
  o.modalities = {"image"};
  o.max_items = max_train;
  const auto e = eval::embed_dataset(run, run.data.train, device, o);
  const auto x = e.mu.at("image");
  zs.train_items = x.size(0);
  zs.class_attributes = zs.task.class_attributes.to(torch::kFloat32);
  zs.prior = eval::attribute_prior(zs.class_attributes, zs.task.seen);
  zs.attributes = eval::fit_sigmoid(x, zs.class_attributes.index_select(0, e.labels));
  // Labels -> positions among the seen classes.
  auto position = torch::full({zs.class_attributes.size(0)}, -1, torch::kInt64);
  for (std::size_t i = 0; i < zs.task.seen.size(); ++i)
    position[zs.task.seen[i]] = static_cast<std::int64_t>(i);
  zs.seen = eval::fit_softmax(x, position.index_select(0, e.labels),
                              static_cast<std::int64_t>(zs.task.seen.size()));
  if (run.model->has_modality("text") && run.data.tokenizer)
    zs.prototypes = eval::text_class_prototypes(run, zs.task);
  return zs;
}

namespace {
torch::Tensor attribute_probs(const ZeroShotClassifier& zs, const torch::Tensor& mu,
                              const std::string& method) {
  if (method == "dap") return zs.attributes.probabilities(mu);
  const auto seen_t = torch::tensor(zs.task.seen, torch::kInt64);
  return eval::iap_attribute_probs(zs.seen.probabilities(mu),
                                   zs.class_attributes.index_select(0, seen_t));
}
}  // namespace

torch::Tensor zero_shot_scores(const ZeroShotClassifier& zs, const torch::Tensor& mu,
                               const std::string& method) {
  torch::NoGradGuard no_grad;
  if (method == "dap" || method == "iap") {
    return eval::dap_log_scores(attribute_probs(zs, mu, method), zs.class_attributes, zs.prior);
  }
  if (method == "text") {
    MMKT_CHECK_INPUT(zs.prototypes.defined(), "text zero-shot needs a run with a text modality");
    namespace F = torch::nn::functional;
    return torch::mm(F::normalize(mu, F::NormalizeFuncOptions().dim(1)),
                     F::normalize(zs.prototypes, F::NormalizeFuncOptions().dim(1)).t());
  }
  fail_input("zero-shot method '", method, "' (expected dap, iap or text)");
}

nlohmann::json explain_zero_shot(const ZeroShotClassifier& zs, const torch::Tensor& mu,
                                 const std::string& method, bool all_classes, std::int64_t top) {
  torch::NoGradGuard no_grad;
  const auto x = mu.reshape({1, -1}).to(torch::kFloat32).cpu();
  const auto scores = zero_shot_scores(zs, x, method)[0];
  std::vector<std::int64_t> candidates = zs.task.unseen;
  if (all_classes) {
    candidates.clear();
    for (std::int64_t c = 0; c < scores.size(0); ++c) candidates.push_back(c);
  }
  std::sort(candidates.begin(), candidates.end(), [&](std::int64_t a, std::int64_t b) {
    return scores[a].item<double>() > scores[b].item<double>();
  });
  nlohmann::json out{{"method", method},
                     {"candidates", all_classes ? "all" : "unseen"},
                     {"train_items", zs.train_items}};
  for (std::size_t i = 0; i < candidates.size() && static_cast<std::int64_t>(i) < top; ++i) {
    const auto c = candidates[i];
    out["ranking"].push_back(
        {{"class", zs.task.class_names[static_cast<std::size_t>(c)]},
         {"score", scores[c].item<double>()},
         {"seen", std::find(zs.task.seen.begin(), zs.task.seen.end(), c) != zs.task.seen.end()}});
  }
  if ((method == "dap" || method == "iap") && candidates.size() >= 2) {
    const auto p = attribute_probs(zs, x, method)[0];  // [M]
    const auto& a = zs.class_attributes;
    auto term = [&](std::int64_t c) {  // per-attribute DAP log-ratio for class c, [M]
      const auto ac = a[c];
      return (ac * p + (1 - ac) * (1 - p)).clamp_min(1e-12).log() -
             (ac * zs.prior + (1 - ac) * (1 - zs.prior)).clamp_min(1e-12).log();
    };
    const auto best = candidates[0], second = candidates[1];
    const auto evidence = term(best) - term(second);
    const auto order = torch::argsort(evidence, 0, /*descending=*/true);
    for (std::int64_t i = 0; i < order.size(0); ++i) {
      const auto m = order[i].item<std::int64_t>();
      out["attributes"].push_back({{"name", zs.task.attribute_names[static_cast<std::size_t>(m)]},
                                   {"probability", p[m].item<double>()},
                                   {"predicted_class_has_it", a[best][m].item<double>() > 0.5},
                                   {"runner_up_has_it", a[second][m].item<double>() > 0.5},
                                   {"evidence", evidence[m].item<double>()}});
    }
  }
  return out;
}

}  // namespace mmkt::query
