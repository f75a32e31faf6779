// A query asked of an index: a caption or an image file in, ranked items out. One function for
// every front end (mmkt query, the demo, the benchmark, the server), so that they all prepare,
// encode and rank a query the same way and time the same stages.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/models/modality.h"
#include "mmkt/query/index.h"
#include "mmkt/run/run.h"

namespace mmkt::query {

// Exactly one of a caption and an image (a file, or its bytes).
struct Question {
  Question() = default;
  Question(std::string text_, std::string image_path_ = "", std::string image_bytes_ = "")
      : text(std::move(text_)),
        image_path(std::move(image_path_)),
        image_bytes(std::move(image_bytes_)) {}
  std::string text;         // a caption
  std::string image_path;   // an image file (any format OpenCV decodes)
  std::string image_bytes;  // an image's encoded bytes (an upload)
  bool has_image() const { return !image_path.empty() || !image_bytes.empty(); }
};

struct AnswerOptions {
  std::int64_t top = 12;
  std::string score = "cosine";  // cosine | euclidean
};

struct Answer {
  std::string query_modality;   // the run's modality the question is encoded with
  models::ModalityInput input;  // the prepared question (an image: [1,C,H,W] as indexed items)
  std::vector<Hit> hits;        // best first
  double encode_ms = 0;         // input preparation + q(z|question)
  double search_ms = 0;         // scores over the index + top-k
};

// Prepares the question as the run's own items (query/inputs.h), encodes it with its unimodal
// posterior mean, and ranks the index. InputError on an empty, non-UTF-8 or missing question,
// or a run without the question's modality.
Answer answer(LoadedRun& run, const SearchIndex& index, const Question& question,
              const AnswerOptions& options, const torch::Device& device);

// The answer for machines: {"query", "query_modality", "target_modality", "score", "results":
// [{"rank", "item", "score", "class"[, "caption" for a text index]}]}.
nlohmann::json answer_json(const LoadedRun& run, const SearchIndex& index, const Question& question,
                           const AnswerOptions& options, const Answer& answer);
// The answer for people, when the index holds images: one row of the top images (after the query
// image when the question is one), upscaled to a visible size, titled with the question.
void write_answer_png(const LoadedRun& run, const SearchIndex& index, const Question& question,
                      const Answer& answer, const std::string& path);

// The class name of a label for people (the class-attribute file's, else the dataset's), else
// the number.
std::string class_name(const LoadedRun& run, std::int64_t label);

}  // namespace mmkt::query
