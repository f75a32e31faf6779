// The whole evaluation of a trained run, as `mmkt eval` runs it: retrieval, importance-weighted
// likelihoods, linear probe, zero-shot, coherence, pictures, and the same metrics again on
// shifted test sets. Writes into <run>/eval/: report.json (everything), report.md (the tables),
// pictures/*.png, evaluator_image.pt (the coherence classifier, reused by later calls).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/eval/coherence.h"
#include "mmkt/eval/embed.h"
#include "mmkt/eval/likelihood.h"
#include "mmkt/eval/zero_shot.h"
#include "mmkt/run/run.h"

namespace mmkt::eval {

struct ShiftSpec {
  std::string kind;                // rotation | noise | blur | contrast | prior | concept
  std::vector<double> severities;  // concept: the share of labels remapped
};
// "rotation:1,2,3" -> {rotation, {1,2,3}}; InputError on a malformed spec.
ShiftSpec parse_shift_spec(const std::string& spec);

struct EvalOptions {
  // retrieval, likelihood, probe, zeroshot, coherence, pictures
  std::set<std::string> metrics = {"retrieval", "probe", "zeroshot", "coherence", "pictures"};
  LikelihoodOptions likelihood;
  ZeroShotOptions zero_shot;
  CoherenceOptions coherence;
  EvaluatorOptions evaluator;
  std::int64_t probe_train_items = 20000;
  std::vector<ShiftSpec> shifts;
  std::uint64_t seed = 0;
};
// All metric names EvalOptions::metrics accepts.
const std::vector<std::string>& eval_metric_names();

// Runs everything requested and writes it under out_dir; returns report.json's content.
nlohmann::json evaluate_run(LoadedRun& run, const EvalOptions& options, const std::string& out_dir,
                            const torch::Device& device);

// Linear-probe accuracy: softmax regression on the image posterior means of `train`, scored
// on `test`; {"accuracy", "train_items", "test_items", "classes"}.
nlohmann::json probe_report(const Embeddings& train, const Embeddings& test, std::int64_t classes);

}  // namespace mmkt::eval
