// Antidistillation as an experiment, `mmkt transfer --method antidistill`: a small student
// seeds a larger one (the reverse of distillation), judged against the same large student
// from random initialisation and against a large student distilled from the small one.
//
// For each seed, every image student learns from a trained multimodal run (the teacher) with one
// distillation method (distill/pipeline.h, the same code path as `mmkt distill`):
//   small       `small` (e.g. mlp:32) for small_epochs epochs;
//   then, for each E in `epochs`, the large student (`large`, e.g. mlp:512,512) for E epochs,
//   started three ways:
//     random      random initialisation;
//     grown       the small student grown by Net2Net (Chen, Goodfellow, Shlens 2016;
//                 distill/net2net.h): function-preserving, at epoch 0 it computes exactly what
//                 the small one computes;
//     grown lr    (when grown_lr > 0) the same, trained at grown_lr;
//     from small  random initialisation, learning from the small student instead of the
//                 teacher.
// Each student is evaluated like any `mmkt distill` student (retrieval against the teacher's
// text embeddings, image->image, probe). The result: mean +- std over seeds of image->text and
// image->image cosine mAP, probe accuracy and training seconds per start and epoch count; the
// first epoch count (and its training seconds) at which each start reaches the random-init
// student's final quality (after the largest E); the training-loss curves of the longest runs.
// Students already trained in out_dir (their result.json present) are reused, so an
// interrupted experiment resumes where it stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"

namespace mmkt::transfer {

struct AntidistillOptions {
  std::string teacher;  // a trained run folder (mmkt train); required
  std::string method = "bayes";
  std::string small = "mlp:32";
  std::string large = "mlp:512,512";
  std::int64_t small_epochs = 20;
  std::vector<std::int64_t> epochs = {1, 4};  // the large students' epoch counts, ascending
  std::vector<std::uint64_t> seeds = {0, 1, 2};
  std::int64_t max_items = 0;  // transfer-set items (0 = the teacher's whole training split)
  std::int64_t batch_size = 128;
  double lr = 1e-3;
  // > 0: a fourth start, the grown student trained with this learning rate instead of lr
  // (Net2Net continues training a grown network at a lower rate than the original's).
  double grown_lr = 0;
  std::string out_dir;
};

nlohmann::json antidistill_options_to_json(const AntidistillOptions& options);
AntidistillOptions antidistill_options_from_json(const nlohmann::json& user,
                                                 const std::string& source);

// Trains (or reuses) every student under out_dir/s<seed>/{small, random_e<E>, grown_e<E>,
// [grownlr_e<E>,] fromsmall_e<E>}/ and writes out_dir/{config.json, result.json, result.md}.
nlohmann::json run_antidistill(const AntidistillOptions& options, const Runtime& runtime);

// result.md's tables from result.json's content.
std::string antidistill_markdown(const nlohmann::json& result);

}  // namespace mmkt::transfer
