// Zero-shot classification of classes never seen in training.
//   DAP (Lampert et al. 2009): attribute posteriors p_m = p(a_m = 1 | x);
//     score(c) = sum_m log[A_cm p_m + (1 - A_cm)(1 - p_m)] - log[A_cm pr_m + (1 - A_cm)(1 - pr_m)]
//     with pr_m = mean of A[y,m] over the seen classes (0 or 1 replaced by 0.5).
//   IAP: p(a_m | x) = sum_k p(y_k | x) A[y_k, m] over the seen classes, then the DAP rule.
//   Text: each class's descriptions encoded by the text encoder; an image goes to the class
//     whose mean description embedding is nearest (Euclidean or cosine).
//   ZSL accuracy = per-class mean accuracy over the unseen classes, candidates = unseen;
//   GZSL (Xian et al. 2018): candidates = all classes; u and s = per-class mean accuracy on
//     unseen and seen test items; H = 2us / (u + s).
//   Generated (the CADA-VAE recipe, Schonfeld et al. 2019, in mmkt's shared latent space):
//     latents of unseen classes are drawn from q(z|caption) and q(z|description) of those
//     classes (z = mu + sigma * eps), seen-class latents from q(z|image) of training images;
//     one softmax classifier over all classes is fit on both and scores the test images' means.
//   Calibrated stacking (Chao et al. 2016), the "+cs" rows: predict
//     argmax_c score(x,c) - gamma * [c is seen], gamma chosen to maximise H on pseudo-GZSL
//     splits of the validation data (seen classes only): some seen classes play unseen, the
//     classifiers are refit without them, and gamma is swept over quantiles of the items'
//     seen-minus-unseen score gap. ZSL accuracy is unchanged by gamma.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/eval/embed.h"
#include "mmkt/run/run.h"

namespace mmkt::eval {

// prior_m over the seen classes, with 0 and 1 replaced by 0.5 (Lampert's rule). A [C,M].
torch::Tensor attribute_prior(const torch::Tensor& class_attributes,
                              const std::vector<std::int64_t>& seen);
// DAP log-scores [N,C] of attribute probabilities p [N,M] against every class of A [C,M].
torch::Tensor dap_log_scores(const torch::Tensor& attribute_probs,
                             const torch::Tensor& class_attributes, const torch::Tensor& prior);
// IAP attribute probabilities [N,M] from seen-class probabilities [N,S] and A_seen [S,M].
torch::Tensor iap_attribute_probs(const torch::Tensor& seen_class_probs,
                                  const torch::Tensor& seen_class_attributes);
// Mean over `classes` of the accuracy on the items of that class (classes without items are
// skipped). truth, predicted [N] int64.
double per_class_accuracy(const torch::Tensor& truth, const torch::Tensor& predicted,
                          const std::vector<std::int64_t>& classes);

struct ZeroShotMetrics {
  double zsl = 0, u = 0, s = 0, h = 0;
  torch::Tensor zsl_predicted;  // [N_unseen items] class indices (candidates = unseen)
  torch::Tensor zsl_truth;      // [N_unseen items]
};
// From scores [N,C] over all classes of N test items with labels `truth` [N].
ZeroShotMetrics zero_shot_metrics(const torch::Tensor& scores, const torch::Tensor& truth,
                                  const std::vector<std::int64_t>& unseen,
                                  const std::vector<std::int64_t>& seen);

// What zero-shot needs from a dataset: class names, the class-attribute matrix, the unseen
// classes and text descriptions of each class. Fashion-MNIST / MNIST / manifests: the class
// attribute file; shapes: the factor one-hots of each combination, held-out combinations
// unseen, canonical class descriptions.
struct ZeroShotTask {
  std::vector<std::string> class_names, attribute_names;
  torch::Tensor class_attributes;  // [C,M] float 0/1
  std::vector<std::int64_t> unseen, seen;
  std::vector<std::vector<std::string>> descriptions;  // per class
  std::vector<std::vector<std::string>> captions;      // per class: training-style captions
};
// nullopt when the run's data has no class attributes or no unseen classes.
std::optional<ZeroShotTask> zero_shot_task(const LoadedRun& run);
// Why zero-shot cannot be measured on the run's test set (it holds no item of an unseen class,
// e.g. a test_manifest without them), or nullopt when it can.
std::optional<std::string> test_without_unseen_items(const LoadedRun& run,
                                                     const ZeroShotTask& task);

// The mean q(z|text) of each class's descriptions [C,D] (CPU), the text zero-shot prototypes.
torch::Tensor text_class_prototypes(LoadedRun& run, const ZeroShotTask& task);

struct ZeroShotOptions {
  std::string features = "latent";  // latent (posterior means) | encoder (image encoder features)
  std::string score = "cosine";     // text zero-shot: euclidean | cosine
  std::int64_t max_train = 20000;   // training items used to fit the classifiers
  // Generated: latents per class, seen (training images) and unseen (captions, descriptions).
  std::int64_t generated_per_class = 400;
  std::int64_t calibration_folds = 3;  // pseudo-GZSL splits of the validation data
  std::uint64_t seed = 0;
};

// Calibrated stacking: scores [N,C] with gamma subtracted from the seen classes' columns.
torch::Tensor calibrated_scores(const torch::Tensor& scores, const std::vector<std::int64_t>& seen,
                                double gamma);
// The gamma among `candidates` with the highest mean GZSL H over the given (scores, truth,
// unseen, seen) splits; ties go to the smaller gamma.
struct CalibrationSplit {
  torch::Tensor scores, truth;
  std::vector<std::int64_t> unseen, seen;
};
double best_calibration(const std::vector<CalibrationSplit>& splits,
                        const std::vector<double>& candidates);

// DAP, IAP, text and generated zero-shot on the run's test set. `train` are embeddings of the
// run's own training set (seen classes only), `test` of the test set (all classes), and
// `validation` (optional: seen classes only) calibrates the "+cs" rows. Returns
// {"dap": {"zsl", "u", "s", "H"}, "dap+cs": {..., "gamma"}, ..., "unseen": [...]} and fills
// `confusions` with the ZSL confusion matrices [U,U] per method.
nlohmann::json zero_shot_report(LoadedRun& run, const ZeroShotTask& task, const Embeddings& train,
                                const Embeddings& test, const ZeroShotOptions& options,
                                std::map<std::string, torch::Tensor>* confusions = nullptr,
                                const Embeddings* validation = nullptr);

std::string zero_shot_markdown(const nlohmann::json& report);

}  // namespace mmkt::eval
