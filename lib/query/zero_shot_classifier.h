// Zero-shot classification of single images with the evidence that decided (mmkt zeroshot):
// the DAP / IAP attribute classifiers and the text prototypes of eval/zero_shot.h, fitted on
// the run's own training embeddings (seen classes only), applied to one posterior mean.
//   DAP evidence: for each attribute m, p_m = p(a_m = 1 | x) and its share of the score gap
//   between the predicted class c and the runner-up c':
//     d_m = log[A_cm p_m + (1 - A_cm)(1 - p_m)] - log[A_cm pr_m + (1 - A_cm)(1 - pr_m)]
//         - (the same for c');   the attributes with the largest d_m decided.
//   IAP: the same with p_m from the seen-class posterior; text: cosine to each prototype.
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/eval/linear.h"
#include "mmkt/eval/zero_shot.h"
#include "mmkt/run/run.h"

namespace mmkt::query {

struct ZeroShotClassifier {
  eval::ZeroShotTask task;
  eval::LinearClassifier attributes;  // DAP: p(a_m | z), one sigmoid per attribute
  eval::LinearClassifier seen;        // IAP: p(y | z) over the seen classes
  torch::Tensor class_attributes;     // [C,M] float
  torch::Tensor prior;                // [M]
  torch::Tensor prototypes;           // [C,D] text prototypes (undefined without text)
  std::int64_t train_items = 0;
};

// Fits on (at most `max_train` of) the run's training embeddings; InputError when the run has
// no zero-shot task (no class attributes or no unseen classes).
ZeroShotClassifier fit_zero_shot(LoadedRun& run, std::int64_t max_train,
                                 const torch::Device& device);

// Scores [N,C] of posterior means mu [N,D] by method dap | iap | text.
torch::Tensor zero_shot_scores(const ZeroShotClassifier& zs, const torch::Tensor& mu,
                               const std::string& method);

// One image: {"method", "candidates": "unseen"|"all", "ranking": [{class, score}...],
// "attributes": [{name, probability, predicted class value, runner-up value, evidence}...]
// (DAP/IAP, sorted by evidence), "prototype_similarity" (text)}.
nlohmann::json explain_zero_shot(const ZeroShotClassifier& zs, const torch::Tensor& mu,
                                 const std::string& method, bool all_classes, std::int64_t top);

}  // namespace mmkt::query
