// Turning what a user types or points at into model inputs: a caption (tokenized with the
// run's tokenizer) or an image file (decoded by OpenCV, resized and centre-cropped to the
// run's image shape, scaled to [0,1]).
#pragma once

#include <string>

#include "mmkt/models/modality.h"
#include "mmkt/run/run.h"

namespace mmkt::query {

// The name of the run's modality of `kind` ("image", "text"); InputError when it has none.
std::string modality_of_kind(const LoadedRun& run, models::ModalityKind kind);

// One caption as a batch of one [1,L]; InputError on empty (or all-space) or non-UTF-8 text.
models::ModalityInput text_input(const LoadedRun& run, const std::string& text,
                                 const torch::Device& device);
// One image file as a batch of one [1,C,H,W] in [0,1], preprocessed as the run's own items
// (image_file_item in run/run.h: binarized when the run's index is); InputError naming the file
// when it is missing or cannot be decoded.
models::ModalityInput image_file_input(const LoadedRun& run, const std::string& path,
                                       const torch::Device& device);
// The same for an image's bytes (an upload); `name` names it in errors.
models::ModalityInput image_bytes_input(const LoadedRun& run, const std::string& bytes,
                                        const std::string& name, const torch::Device& device);

}  // namespace mmkt::query
