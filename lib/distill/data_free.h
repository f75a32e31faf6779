// Data-free distillation after Lopes, Fenu & Starner 2017 ("top layer" statistics): keep,
// per class, the mean and standard deviation of the teacher's image-encoder features (its top
// hidden layer) over its training data; later, without the dataset, reconstruct inputs whose
// features match activations drawn from those statistics, and distil on the reconstructions.
//
//   stats:         mean_c, std_c over items of class c (features [F])
//   reconstruct:   pick class c, draw a ~ N(mean_c, std_c^2), x = sigmoid(v), minimise
//                  ||f_t(x) - a||^2 / F over v by Adam from v ~ N(0, 1)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "mmkt/models/multimodal_vae.h"

namespace mmkt::distill {

struct ActivationStats {
  std::string modality;        // the teacher encoder they describe ("image")
  torch::Tensor classes;       // [C] int64 class indices
  torch::Tensor mean, stddev;  // [C,F]
  torch::Tensor counts;        // [C] int64 items per class
};

// From teacher features [N,F] of items with labels [N].
ActivationStats activation_stats(const std::string& modality, const torch::Tensor& features,
                                 const torch::Tensor& labels);
// Atomic write; read checks shapes and names the file when it is not such a file.
void save_activation_stats(const std::string& path, const ActivationStats& stats);
ActivationStats load_activation_stats(const std::string& path);

struct ReconstructionOptions {
  std::int64_t items = 10000;
  std::int64_t batch_size = 500;
  std::int64_t steps = 100;
  double lr = 0.05;
  std::uint64_t seed = 0;
};

struct Reconstruction {
  torch::Tensor images;   // [N,C,H,W] in [0,1], on the CPU
  torch::Tensor labels;   // [N] the class whose statistics each image was drawn from
  double final_loss = 0;  // mean feature-matching loss of the last step, over batches
  double initial_loss = 0;
};
// Needs only the teacher and the statistics; `shape` = {C,H,W} of the teacher's images.
Reconstruction reconstruct_inputs(models::MultimodalVae& teacher, const ActivationStats& stats,
                                  const std::vector<std::int64_t>& shape,
                                  const ReconstructionOptions& options,
                                  const torch::Device& device);

}  // namespace mmkt::distill
