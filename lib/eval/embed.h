// Posterior means and log-variances of every modality of a dataset under a trained model
// (the inputs of retrieval, zero-shot and probes), computed in batches without gradients.
#pragma once

#include <map>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/run/run.h"

namespace mmkt::eval {

struct Embeddings {
  std::map<std::string, torch::Tensor> mu;        // modality -> [N,D]
  std::map<std::string, torch::Tensor> logvar;    // modality -> [N,D]
  std::map<std::string, torch::Tensor> features;  // modality -> [N,F] encoder features (on request)
  torch::Tensor labels;                           // [N] int64
};

struct EmbedOptions {
  std::vector<std::string> modalities;  // empty = every modality of the model
  bool features = false;                // also keep the unimodal encoders' features
  std::int64_t max_items = 0;           // the first N items only (0 = all)
};

// Unimodal posteriors q(z|m) of each item of `dataset` (test-time batches, no shuffling).
Embeddings embed_dataset(LoadedRun& run, const data::DatasetPtr& dataset,
                         const torch::Device& device, const EmbedOptions& options = {});

// Text->image, image->text (class-level relevance; instance-level R@K and median rank for the
// paired item) and image->image (class-level, query removed), by Euclidean and cosine scores.
// With `unseen` classes (a zero-shot split) each figure is also given for the queries of seen
// and of unseen classes ("groups": {"seen": ..., "unseen": ...}), against the whole database,
// and for seen-class queries over the seen-class items alone ("seen_database": {"mAP", ...}):
// the difference from groups.seen is what never-seen items in the database cost.
// Returns {"<query>-><database>": {"euclidean": {...}, "cosine": {...}}, ...}.
nlohmann::json retrieval_report(const Embeddings& e, const std::string& image,
                                const std::string& text,
                                const std::vector<std::int64_t>& unseen = {});
// Image->image alone (runs without text), with the same groups.
nlohmann::json image_retrieval_report(const Embeddings& e, const std::string& image,
                                      const std::vector<std::int64_t>& unseen = {});

// "seen" and "unseen" query masks for `labels` (none when `unseen` is empty or one group has no
// query).
std::map<std::string, torch::Tensor> seen_unseen_groups(const torch::Tensor& labels,
                                                        const std::vector<std::int64_t>& unseen);

// Markdown tables of the report: mAP, P@10, P@100, R@1, R@10 with random baselines over all
// queries, then (when the report has groups) mAP and P@K of all, seen-class and unseen-class
// queries side by side.
std::string retrieval_markdown(const nlohmann::json& report);

}  // namespace mmkt::eval
