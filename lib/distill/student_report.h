// Evaluating students with the teacher's evaluators, side by side with the teacher's own
// unimodal encoder (the layout of the PKT paper's Table 1, plus the cross-modal columns):
//   image->image mAP and P@100, Euclidean and cosine, on posterior means (query removed)
//   student image -> teacher text and teacher text -> student image retrieval (cosine/Euclid)
//   zero-shot (DAP, IAP, text through the teacher's text encoder) on the student's latent
//   linear-probe accuracy (20k training images of every class)
//   parameters and throughput (images/s at batch 500: the median of 5 measurements of >= 0.25 s
//   each, after a warm-up), with both ratios
//   to the teacher's unimodal encoder measured in the same process.
// Text students report text->image and image->text retrieval against the teacher's images.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/distill/student.h"
#include "mmkt/distill/transfer_set.h"
#include "mmkt/eval/embed.h"
#include "mmkt/eval/zero_shot.h"
#include "mmkt/run/run.h"

namespace mmkt::distill {

// An encoder under evaluation: the teacher's q_t(z|m) or a student's q_s(z|m).
struct Embedder {
  std::string name;
  std::string modality;
  std::function<models::Gaussian(const models::ModalityInput&)> encode;
  std::int64_t parameters = 0;
};
Embedder teacher_embedder(LoadedRun& run, const std::string& modality);
Embedder student_embedder(Student& student, const std::string& name);

struct StudentEvalOptions {
  std::int64_t probe_items = 20000;
  eval::ZeroShotOptions zero_shot;
  std::int64_t throughput_items = 5000;
  std::int64_t throughput_batch = 500;
  int throughput_repeats = 5;
  // Retrieval also runs on the teacher's validation split when it has one (carved from
  // training, never distilled on): what methods and weights are chosen on, never the test set.
  bool retrieval = true, zeroshot = true, probe = true;
};

// What every embedder is compared with: the teacher's test-set embeddings of every modality,
// and the inputs (test, seen-class training, probe training) embedded once per process.
struct EvaluationData {
  eval::Embeddings teacher_test, teacher_validation;
  InputBatches test, validation, train_seen, probe_train;
  std::optional<eval::ZeroShotTask> task;
};
EvaluationData evaluation_data(LoadedRun& run, const std::string& modality,
                               const StudentEvalOptions& options, const torch::Device& device);

// Posterior means of the embedder over input batches [N,D] (CPU).
torch::Tensor embed_means(const Embedder& embedder, const InputBatches& inputs,
                          const torch::Device& device);
// Median items/s over repeats (each >= 0.25 s of whole passes) after one warm-up pass.
double throughput(const Embedder& embedder, const InputBatches& inputs,
                  const StudentEvalOptions& options, const torch::Device& device);

// {"name", "modality", "parameters", "images_per_second", "retrieval": {...}, "zeroshot",
//  "probe", "validation": {"retrieval": {...}}, "seconds"}. Every figure outside "validation"
//  is on the test set.
nlohmann::json evaluate_embedder(LoadedRun& run, const Embedder& embedder,
                                 const EvaluationData& data, const StudentEvalOptions& options,
                                 const torch::Device& device);

// The comparison table: one row per evaluated encoder (the teacher first), with parameter and
// throughput ratios to the teacher row. Rows are result JSONs of evaluate_embedder with an
// optional "label" (the table's row name) and "teacher_parameters"/"teacher_images_per_second".
std::string comparison_markdown(const std::vector<nlohmann::json>& rows);

}  // namespace mmkt::distill
