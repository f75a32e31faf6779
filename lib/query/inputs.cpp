#include "query/inputs.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "data/batcher.h"
#include "image/convert.h"
#include "text/utf8.h"

namespace mmkt::query {

std::string modality_of_kind(const train::LoadedRun& run, const std::string& kind) {
  for (const auto& m : run.modalities) {
    if (m.kind == kind) return m.name;
  }
  fail_input(run.config.data.dataset, " run has no ", kind, " modality");
}

models::ModalityInput text_input(const train::LoadedRun& run, const std::string& text,
                                 const torch::Device& device) {
  MMKT_CHECK_INPUT(std::any_of(text.begin(), text.end(), [](unsigned char c) { return !std::isspace(c); }),
                   "the query text is empty");
  MMKT_CHECK_INPUT(!text::find_invalid_utf8(text), "the query text is not valid UTF-8");
  MMKT_CHECK_INPUT(run.data.tokenizer != nullptr, "this run has no tokenizer (no text modality)");
  auto [tokens, lengths] = data::pad_tokens({run.data.tokenizer->encode_with_bos_eos(text)},
                                            run.config.data.max_tokens);
  return models::ModalityInput{tokens.to(device), lengths.to(device)};
}

models::ModalityInput image_file_input(const train::LoadedRun& run, const std::string& path,
                                       const torch::Device& device) {
  const auto name = modality_of_kind(run, "image");
  std::vector<std::int64_t> shape;
  for (const auto& m : run.modalities) {
    if (m.name == name) shape = m.shape;
  }
  MMKT_CHECK(shape.size() == 3, "image modality without a shape");
  const auto square = image::load_square_image(path, static_cast<int>(shape[0]), static_cast<int>(shape[1]));
  auto x = image::mat_to_tensor(square).to(torch::kFloat32).div(255.0).unsqueeze(0);
  return models::ModalityInput{x.to(device), {}};
}

}  // namespace mmkt::query
