// The hierarchical-prior domain-adaptation experiment (`mmkt transfer --method hbda`):
// image students (lib/distill/student.h) classify Fashion-MNIST in a source domain with
// plenty of items and in target domains made by mmkt's covariate shifts (lib/eval/shift.h:
// rotation, noise, blur, contrast) with only 10, 100 or 1000 items per class. Five ways to
// use the source, each trained for the same number of steps and judged the same way:
//
//   source only  the source's own model applied to the target;
//   separate     one model per domain, each on its own data;
//   pooled       one model on the union of all domains' items;
//   finetune     the pooled model, trained further on one target domain's items;
//   hbda         one model per domain tied by the shared prior of hierarchical_prior.h
//                (Finkel and Manning 2009), all trained jointly, one lambda_d for all domains
//                chosen from a grid;
//   hbda-domain  the same with a lambda_d per domain (Finkel and Manning's sigma_d): each
//                target's from the grid runs by its own validation accuracy, the source's the
//                shared choice; then one more joint training with them.
//
// Every model is MAP under the same top-level prior N(0, 1/top_precision): a model fitted to
// N items minimises mean CE + top_precision / (2N) ||theta||^2 (hbda: mean CE_d +
// lambda_d / (2 N_d) ||theta_d - theta*||^2 per domain, theta* by its closed form). The
// domains' items are disjoint images of the training split; each target domain keeps its own
// validation items (validation_per_class per class, disjoint from its training items).
// Model selection uses those validation items only: every eval_every steps the validation
// accuracy of each (model, domain) pair is measured, and the test accuracy reported is the
// one at the step of best validation accuracy (early stopping); hbda's lambda_d is chosen from
// its grid by the mean best validation accuracy over the target domains. The test items are
// the dataset's test split under each domain's shift.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"

namespace mmkt::transfer {

struct HbdaOptions {
  // The source domain: mnist | fashion-mnist (targets are covariate shifts of it), or shapes:L
  // (targets are other shapes levels; the shape is the 5-class label at every level).
  std::string dataset = "fashion-mnist";
  std::string student = "mlp:256";        // image student spec (mlp:W1,... | conv:C:W)
  std::int64_t latent_dim = 64;
  std::int64_t source_per_class = 1000;
  // Target domains as covariate shifts "kind:severity" of the source (rotation:3 = 45 deg), or
  // "shapes:L" levels when the source is a shapes level.
  std::vector<std::string> targets = {"rotation:3", "noise:4", "blur:3"};
  std::vector<std::int64_t> target_per_class = {10, 100, 1000};
  std::int64_t validation_per_class = 20;
  std::int64_t test_items = 10000;  // of the test split, per domain
  std::vector<std::uint64_t> seeds = {0, 1, 2};
  std::int64_t steps = 1500;
  std::int64_t batch_size = 128;  // items per domain per step
  std::int64_t eval_every = 100;
  double lr = 1e-3;
  double top_precision = 1.0;                              // lambda_top
  std::vector<double> domain_precision = {10, 100, 1000};  // lambda_d grid (chosen on validation)
  std::vector<std::string> methods = {"source only", "separate", "pooled",
                                      "finetune",    "hbda",     "hbda-domain"};
  // For shapes domains: images rendered at S x S; per level, shapes_train_items training
  // images (seed 0) and test_items test images (seed 1), the same draws for every domain.
  std::int64_t shapes_image_size = 32;
  std::int64_t shapes_train_items = 4000;
  std::string out_dir;
  double progress_seconds = 10;
};

// The options as a JSON object (the documented defaults), and back: unknown keys, wrong types
// and values out of range are InputErrors naming `source`.
nlohmann::json hbda_options_to_json(const HbdaOptions& options);
HbdaOptions hbda_options_from_json(const nlohmann::json& user, const std::string& source);

// Runs every method for every seed and target size; writes out_dir/{config.json,
// result.json, result.md, log.jsonl} and returns result.json's content.
nlohmann::json run_hbda(const HbdaOptions& options, const Runtime& runtime);

// result.md's tables from result.json's content: target-domain test accuracy, mean +- std
// over seeds, per target size and method, plus hbda's validation grid.
std::string hbda_markdown(const nlohmann::json& result);

}  // namespace mmkt::transfer
