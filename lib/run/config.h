// The run configuration: every key, its default and its meaning in one place
// (default_config_json() in config.cpp). A user file is merged over the defaults strictly
// (unknown or mistyped keys are errors naming them); `--set key.path=value` overrides.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/models/config.h"
#include "mmkt/models/modality.h"

namespace mmkt {

struct DataConfig {
  std::string dataset = "fashion-mnist";  // mnist | fashion-mnist | shapes | manifest
  std::string root;                       // IDX folder ("" = default location)
  std::string manifest;                   // manifest: training JSONL
  std::string test_manifest;              // manifest: test JSONL ("" = carve from training)
  std::string attributes_file;            // class-attribute JSON ("" = data/<dataset>.json)
  std::int64_t validation = 5000;         // items carved from training for validation (0 = none)
  // dynamic | none | auto (images for Bernoulli likelihoods). auto (resolve_data_choices):
  // dynamic for MNIST and Fashion-MNIST (the JMVAE protocol), none for shapes, and for a
  // manifest dynamic only when its images are binary.
  std::string binarize = "auto";
  bool zero_shot_split = true;  // hold the unseen classes out of training entirely
  // Validation classes (the GZSL protocol of Xian et al. 2017): seen classes named here are held
  // out of training like unseen ones and join the validation split (as many items as each seen
  // class has there), where they play the unseen classes: `eval --split validation` then reports
  // unseen-class retrieval and zero-shot without touching the test set. For tuning runs; the
  // final model trains on every seen class.
  std::vector<std::string> validation_unseen;
  int shapes_level = 3;         // shapes: difficulty 1..5
  std::int64_t shapes_train = 50000, shapes_test = 5000;
  // Manifest images: square side and 1 (grey) or 3 (RGB) channels; 0 = auto, chosen from the
  // images themselves by resolve_data_choices (run_data.h).
  int image_size = 0, channels = 0;
  int workers = 1;               // batcher threads
  std::int64_t max_tokens = 48;  // longest caption in tokens (BOS/EOS included)
};

struct TokenizerConfig {
  std::string type = "unigram";
  int vocab_size = 256;
};

struct TrainConfig {
  std::int64_t epochs = 10;
  std::int64_t batch_size = 100;
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999;
  double warmup_epochs = 0.0;  // KL(q(z|x,w)||p(z)) weight 0 -> 1 linearly over these epochs
  // Free bits (Kingma et al. 2016, IAF, eq. 15): the prior KL term of the loss becomes
  // sum_d max(free_bits, mean over the batch of KL_d), so no latent dimension is pushed below
  // free_bits nats; reported ELBOs keep the plain KL. -1 = auto: 0 for the built-in datasets,
  // kManifestFreeBits for manifests (resolve_data_choices). jmvae and mvae; mmvae's sampled KL
  // has no per-dimension form and ignores it.
  double free_bits = -1.0;
  // Word dropout on the encoders' captions (models/multimodal_vae.h ObjectiveOptions); jmvae.
  double token_dropout = 0.0;
  double grad_clip = 0.0;                // max global gradient norm (0 = off)
  std::int64_t early_stopping = 0;       // patience in epochs on validation loss (0 = off)
  std::int64_t max_steps_per_epoch = 0;  // 0 = the whole epoch (for quick runs)
  double progress_seconds = 5.0;         // progress line period
  std::int64_t eval_batch_size = 500;
  // Learning-rate schedule over fractional epochs e (constant: lr throughout). cosine (Loshchilov
  // and Hutter 2017, without restarts): lr until lr_decay_start, then
  //   lr_min + (lr - lr_min) * (1 + cos(pi * (e - lr_decay_start) / (epochs - lr_decay_start)))
  //   / 2.
  std::string lr_schedule = "constant";
  double lr_min = 0.0;
  double lr_decay_start = 0.0;
  // Epochs after which the model is also kept as checkpoint_epoch<N>.pt (for evaluations along
  // the learning curve, e.g. the K = 1000 likelihood at epochs 50, 100, 200 of a 500-epoch run).
  std::vector<std::int64_t> keep_checkpoints;
  // A trained run whose model starts this one (not on --resume): the same architecture is a
  // warm start; wider MLPs grow from it by Net2Net, function-preserving (distill/grow_vae.h).
  std::string init_from;
};

// The learning rate at fractional epoch `epoch` (see TrainConfig::lr_schedule).
double learning_rate_at(const TrainConfig& train, double epoch);

struct RunConfig {
  std::uint64_t seed = 0;
  DataConfig data;
  TokenizerConfig tokenizer;
  models::ModelConfig model;
  models::TripletConfig triplet;
  TrainConfig train;
};

// Defaults as JSON: the one documented place (see config.cpp).
nlohmann::json default_config_json();
// Resolves a configuration: defaults <- file (if non-empty) <- overrides ("a.b=v").
nlohmann::json resolve_config_json(const std::string& file,
                                   const std::vector<std::string>& overrides);
// Keys whose values replace the defaults wholesale (lists) instead of being merged key by key.
const std::vector<std::string>& config_open_paths();
// Converts resolved JSON to structs, validating values (ranges, enum names, modalities).
RunConfig config_from_json(const nlohmann::json& resolved, const std::string& source);
nlohmann::json modality_to_json(const models::ModalityConfig& m);
models::ModalityConfig modality_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace mmkt
