// Cross-modal generation (mmkt generate): images from a caption and captions from an image,
// through the shared latent space.
//   text -> images: z_i ~ q(z | text), i = 1..n (z_1 = the posterior mean), images = the image
//   decoder's pixel means.
//   image -> captions: z_1 = the mean of q(z | image), z_2.. samples; each decoded greedily or
//   by beam search (networks.h TextDecoder).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "mmkt/models/modality.h"
#include "mmkt/run/run.h"

namespace mmkt::query {

// [n,C,H,W] pixel means in [0,1] (CPU).
torch::Tensor images_from_text(LoadedRun& run, const models::ModalityInput& text, std::int64_t n,
                               std::uint64_t seed);

// n captions; beam 1 = greedy.
std::vector<std::string> captions_from_image(LoadedRun& run, const models::ModalityInput& image,
                                             std::int64_t n, std::int64_t beam, std::uint64_t seed);

}  // namespace mmkt::query
