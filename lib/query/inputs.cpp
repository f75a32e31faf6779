#include "mmkt/query/inputs.h"

#include <algorithm>
#include <cctype>

#include "mmkt/core/error.h"
#include "mmkt/data/batcher.h"
#include "mmkt/image/convert.h"
#include "mmkt/text/utf8.h"

namespace mmkt::query {

std::string modality_of_kind(const LoadedRun& run, models::ModalityKind kind) {
  for (const auto& m : run.modalities) {
    if (m.kind == kind) return m.name;
  }
  fail_input(run.config.data.dataset, " run has no ", kind, " modality");
}

models::ModalityInput text_input(const LoadedRun& run, const std::string& text,
                                 const torch::Device& device) {
  MMKT_CHECK_INPUT(
      std::any_of(text.begin(), text.end(), [](unsigned char c) { return !std::isspace(c); }),
      "the query text is empty");
  MMKT_CHECK_INPUT(!text::find_invalid_utf8(text), "the query text is not valid UTF-8");
  MMKT_CHECK_INPUT(run.data.tokenizer != nullptr, "this run has no tokenizer (no text modality)");
  auto [tokens, lengths] =
      data::pad_tokens({run.data.tokenizer->encode_with_bos_eos(text)}, run.config.data.max_tokens);
  return models::ModalityInput{tokens.to(device), lengths.to(device)};
}

models::ModalityInput image_file_input(const LoadedRun& run, const std::string& path,
                                       const torch::Device& device) {
  modality_of_kind(run, models::ModalityKind::kImage);  // InputError when the run has none
  return models::ModalityInput{image_file_item(run, path).unsqueeze(0).to(device), {}};
}

models::ModalityInput image_bytes_input(const LoadedRun& run, const std::string& bytes,
                                        const std::string& name, const torch::Device& device) {
  modality_of_kind(run, models::ModalityKind::kImage);  // InputError when the run has none
  return models::ModalityInput{image_bytes_item(run, bytes, name).unsqueeze(0).to(device), {}};
}

}  // namespace mmkt::query
