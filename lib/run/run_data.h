// Everything a run needs from its data, built from the configuration: train / validation /
// test datasets (the unseen zero-shot classes held out of training), the tokenizer trained on
// the training captions, the resolved modality list, and batch -> model input conversion.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/data/class_attributes.h"
#include "mmkt/data/dataset.h"
#include "mmkt/models/modality.h"
#include "mmkt/run/config.h"
#include "mmkt/text/tokenizer.h"

namespace mmkt {

struct RunData {
  data::DatasetPtr train;       // seen classes only when data.zero_shot_split
  data::DatasetPtr validation;  // carved from training (may be null)
  data::DatasetPtr test;        // all classes; images fixed-binarized when data.binarize=dynamic
  std::shared_ptr<const text::Tokenizer> tokenizer;  // null when no modality is text
  std::optional<data::ClassAttributes> class_attributes;
  std::vector<std::int64_t> unseen_classes;  // held out of training (the attribute file's unseen
                                             // classes, or the shapes' held-out combinations,
                                             // and the validation classes)
  // data.validation_unseen as class indices: held out of training, in the validation split
  // only; they are the validation split's unseen classes (eval --split validation).
  std::vector<std::int64_t> validation_unseen_classes;
  // Classes with no items in training or in the split under evaluation (the test's unseen
  // classes while the validation split plays the test set): zero-shot leaves them out.
  std::vector<std::int64_t> absent_classes;
};

// Free bits (nats per latent dimension and item) of a manifest run whose train.free_bits is
// auto: enough to keep every dimension of a 32-dimensional latent carrying 8 nats while the
// decoders learn, small against what a trained model's KL reaches (~20-40 nats).
constexpr double kManifestFreeBits = 0.25;

// Replaces every automatic value of `config` ("auto", 0 or -1 in config.h) with a concrete
// choice and logs each choice with its reason on one line (what a user's own data gets):
//   built-in datasets: data.binarize dynamic (MNIST, Fashion-MNIST) or none (shapes);
//     train.free_bits 0;
//   manifests, from survey_manifest_images: data.channels (3 when any surveyed image has
//     colour), data.image_size (32; 64 only for images >= 64 px with >= 20000 items),
//     data.binarize (dynamic only for binary images), train.free_bits kManifestFreeBits.
// A value the configuration sets is kept. Idempotent.
RunConfig resolve_data_choices(RunConfig config);
// Writes the values resolve_data_choices decides into resolved JSON (what config.json keeps).
void store_data_choices(const RunConfig& config, nlohmann::json& resolved);

// Loads the datasets of a resolved configuration (resolve_data_choices). The tokenizer is
// loaded from `tokenizer_path` when that file exists, otherwise trained on the training
// captions and written there ("" = never written).
RunData load_run_data(const RunConfig& config, const std::string& tokenizer_path);

// Real images of every class (the unseen ones included) for training evaluation classifiers
// (coherence): the training split of MNIST / Fashion-MNIST / the manifest, or fresh shapes of
// every combination (`max_items` of them, a seed stream of their own).
data::DatasetPtr evaluator_training_set(const RunConfig& config, std::int64_t max_items);

// The model's modalities: config.model.modalities when given, else the dataset's default
// (mnist: image MLP + label, as in the JMVAE paper; fashion-mnist: image MLP + text GRU;
// shapes and manifests: image conv + text GRU), with shapes, class counts and the vocabulary
// size filled in from the data. A manifest's default follows its data: a Bernoulli likelihood
// only for binarized images, else a Gaussian with a learned scale; 16 conv channels and a
// 256-wide layer under 10000 training items, 32 and 512 from there (logged with the reasons).
std::vector<models::ModalityConfig> resolve_modalities(const RunConfig& config,
                                                       const RunData& data);

// A batch as model inputs for `modalities`, on `device`.
models::Inputs inputs_from_batch(const data::Batch& batch,
                                 const std::vector<models::ModalityConfig>& modalities,
                                 const torch::Device& device);

}  // namespace mmkt
