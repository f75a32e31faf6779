#include "mmkt/query/answer.h"

#include <chrono>

#include "mmkt/core/error.h"
#include "mmkt/eval/pictures.h"
#include "mmkt/query/inputs.h"

namespace mmkt::query {
namespace {

using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

Answer answer(LoadedRun& run, const SearchIndex& index, const Question& question,
              const AnswerOptions& options, const torch::Device& device) {
  const bool by_text = !question.text.empty();
  MMKT_CHECK_INPUT(!by_text || !question.has_image(), "a query is a caption or an image, not both");
  MMKT_CHECK_INPUT(by_text || question.has_image(),
                   "the query is empty: give a caption or an image");
  MMKT_CHECK_INPUT(question.image_path.empty() || question.image_bytes.empty(),
                   "a query image is a file or bytes, not both");
  const auto start = Clock::now();
  Answer a;
  a.query_modality =
      modality_of_kind(run, by_text ? models::ModalityKind::kText : models::ModalityKind::kImage);
  if (by_text) {
    a.input = text_input(run, question.text, device);
  } else if (!question.image_path.empty()) {
    a.input = image_file_input(run, question.image_path, device);
  } else {
    a.input = image_bytes_input(run, question.image_bytes, "the uploaded image", device);
  }
  torch::Tensor mean;
  {
    torch::NoGradGuard no_grad;
    mean = run.model->encode(a.query_modality, a.input).mu;
  }
  const auto encoded = Clock::now();
  a.hits = search(index, mean, options.top, options.score);
  a.encode_ms = ms_between(start, encoded);
  a.search_ms = ms_between(encoded, Clock::now());
  return a;
}

nlohmann::json answer_json(const LoadedRun& run, const SearchIndex& index, const Question& question,
                           const AnswerOptions& options, const Answer& answer) {
  const std::string asked = !question.text.empty()         ? question.text
                            : !question.image_path.empty() ? question.image_path
                                                           : "(uploaded image)";
  nlohmann::json out{{"query", asked},
                     {"query_modality", answer.query_modality},
                     {"target_modality", index.modality},
                     {"score", options.score},
                     {"results", nlohmann::json::array()}};
  for (std::size_t i = 0; i < answer.hits.size(); ++i) {
    const auto& h = answer.hits[i];
    nlohmann::json item{
        {"rank", i + 1}, {"item", h.item}, {"score", h.score}, {"class", class_name(run, h.label)}};
    if (!index.captions.empty()) item["caption"] = index.captions[static_cast<std::size_t>(h.item)];
    out["results"].push_back(item);
  }
  return out;
}

void write_answer_png(const LoadedRun& run, const SearchIndex& index, const Question& question,
                      const Answer& answer, const std::string& path) {
  MMKT_CHECK(index.captions.empty(), "write_answer_png: the index holds captions, not images");
  std::vector<std::int64_t> rows;
  for (const auto& h : answer.hits) rows.push_back(h.item);
  auto images = index_images(run, index, rows);
  const bool by_text = !question.text.empty();
  if (!by_text) images = torch::cat({answer.input.data.cpu().to(torch::kFloat32), images});
  eval::write_image_rows_png(
      path,
      {by_text ? "\"" + question.text + "\""
               : "query image (first), then the top " + std::to_string(rows.size())},
      images.unsqueeze(0));
}

std::string class_name(const LoadedRun& run, std::int64_t label) {
  const auto& attributes = run.data.class_attributes;
  if (attributes && label >= 0 && label < attributes->num_classes()) {
    return attributes->class_names[static_cast<std::size_t>(label)];
  }
  // Datasets without an attribute file may still name their classes (the shapes do).
  const auto& names = run.data.test->info().class_names;
  if (label >= 0 && label < static_cast<std::int64_t>(names.size())) {
    return names[static_cast<std::size_t>(label)];
  }
  return std::to_string(label);
}

}  // namespace mmkt::query
