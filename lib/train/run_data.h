// Everything a run needs from its data, built from the configuration: train / validation /
// test datasets (the unseen zero-shot classes held out of training), the tokenizer trained on
// the training captions, the resolved modality list, and batch -> model input conversion.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/class_attributes.h"
#include "data/dataset.h"
#include "models/modality.h"
#include "text/tokenizer.h"
#include "train/config.h"

namespace mmkt::train {

struct RunData {
  data::DatasetPtr train;       // seen classes only when data.zero_shot_split
  data::DatasetPtr validation;  // carved from training (may be null)
  data::DatasetPtr test;        // all classes; images fixed-binarized when data.binarize=dynamic
  std::shared_ptr<const text::Tokenizer> tokenizer;  // null when no modality is text
  std::optional<data::ClassAttributes> class_attributes;
  std::vector<std::int64_t> unseen_classes;  // held out of training (the attribute file's unseen
                                             // classes, or the shapes' held-out combinations)
};

// Loads the datasets. The tokenizer is loaded from `tokenizer_path` when that file exists,
// otherwise trained on the training captions and written there ("" = never written).
RunData load_run_data(const RunConfig& config, const std::string& tokenizer_path);

// Real images of every class (the unseen ones included) for training evaluation classifiers
// (coherence): the training split of MNIST / Fashion-MNIST / the manifest, or fresh shapes of
// every combination (`max_items` of them, a seed stream of their own).
data::DatasetPtr evaluator_training_set(const RunConfig& config, std::int64_t max_items);

// The model's modalities: config.model.modalities when given, else the dataset's default
// (mnist: image MLP + label, as in the JMVAE paper; fashion-mnist: image MLP + text GRU;
// shapes and manifests: image conv + text GRU), with shapes, class counts and the vocabulary
// size filled in from the data.
std::vector<models::ModalityConfig> resolve_modalities(const RunConfig& config,
                                                       const RunData& data);

// A batch as model inputs for `modalities`, on `device`.
models::Inputs inputs_from_batch(const data::Batch& batch,
                                 const std::vector<models::ModalityConfig>& modalities,
                                 const torch::Device& device);

}  // namespace mmkt::train
