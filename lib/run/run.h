// A run: a directory on disk (its configuration, tokenizer, checkpoints, log and summary) and,
// loaded, the model with its data in memory. Everything after training (eval, query, distill,
// bench, demo) starts from a LoadedRun, and every batch of a run's items is made with
// the options batcher_options decides here. Training itself is train/trainer.h.
//
// Run directory:
//   config.json      the resolved configuration (every key)
//   tokenizer.model  SentencePiece model (text runs)
//   checkpoint.pt    model + optimizer + counters + RNG (latest epoch)
//   best.pt          model at the best validation loss (when validating)
//   checkpoint_epochN.pt  the model after epoch N, for N in train.keep_checkpoints
//   log.jsonl        one line per epoch: train and validation terms, seconds
//   summary.json     final figures (test ELBO, time per epoch)
//   train.lock       held (flock) by the process training the run
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/data/batcher.h"
#include "mmkt/models/multimodal_vae.h"
#include "mmkt/run/config.h"
#include "mmkt/run/run_data.h"

namespace mmkt {

struct RunPaths {
  std::string dir;
  std::string config() const { return dir + "/config.json"; }
  std::string tokenizer() const { return dir + "/tokenizer.model"; }
  std::string checkpoint() const { return dir + "/checkpoint.pt"; }
  std::string best() const { return dir + "/best.pt"; }
  // The model after `epoch` epochs (train.keep_checkpoints).
  std::string checkpoint_at(std::int64_t epoch) const {
    return dir + "/checkpoint_epoch" + std::to_string(epoch) + ".pt";
  }
  std::string log() const { return dir + "/log.jsonl"; }
  std::string summary() const { return dir + "/summary.json"; }
  // Held (flock) by the process that trains the run: a second one is refused.
  std::string lock() const { return dir + "/train.lock"; }
};

// A model built from a run directory's config and best (else latest) checkpoint, in eval mode.
struct LoadedRun {
  RunConfig config;
  nlohmann::json resolved;
  RunData data;
  std::vector<models::ModalityConfig> modalities;
  models::MultimodalVae model{nullptr};
};

// `checkpoint` names another model file of the run (e.g. checkpoint_epoch50.pt); "" = best/latest.
LoadedRun load_run(const std::string& run_dir, const torch::Device& device,
                   const std::string& checkpoint = "");

// The objective's weights at fractional epoch `epoch` of a run: the KL term and the triplet term
// warm up linearly over train.warmup_epochs and triplet.warmup_epochs (Sonderby et al. 2016 for
// the KL term). Labels are the caller's.
models::ObjectiveOptions objective_options_at(const RunConfig& config, double epoch);

// An image file as one of the run's evaluation items [C,H,W] in [0,1]: decoded to the run's
// channels, its short side resized to the run's size and centre-cropped (image::
// load_square_image, what manifests do), and, when the run binarizes (data.binarize=dynamic,
// so its test and index images are one fixed Bernoulli draw), binarized by a fixed draw of its
// own. Manifests and queries share this path. InputError naming the file on bad input.
torch::Tensor image_file_item(const LoadedRun& run, const std::string& path);
// image_file_item on an image's bytes already in memory (an upload); `name` names it in errors.
torch::Tensor image_bytes_item(const LoadedRun& run, const std::string& bytes,
                               const std::string& name);

// What a run's batches are for. The purpose decides order, binarization and batch size, so that
// every consumer of a run's items sees them as training and evaluation define them:
enum class BatchPurpose {
  // shuffled with the run's seed, images re-binarized every epoch when data.binarize=dynamic,
  // train.batch_size rows;
  kTraining,
  // in order, images as the split holds them (test and validation sets are binarized once, with
  // a fixed seed, when data.binarize=dynamic), train.eval_batch_size rows;
  kEvaluation,
  // kEvaluation, but one fixed binarization draw of its own ("distill-transfer-binarization"
  // seed stream) when data.binarize=dynamic: students then learn from the kind of images the
  // fixed-binarized test set holds, even on the (continuous) training split.
  kTransferSet,
};
// Captions are tokenized with the run's tokenizer to data.max_tokens; data.workers threads.
// Callers change only what is theirs: the batch size of a special pass, dropping the tokenizer
// when no text is read, a data-parallel shard.
data::BatcherOptions batcher_options(const RunConfig& config, const RunData& data,
                                     BatchPurpose purpose);
data::BatcherOptions batcher_options(const LoadedRun& run, BatchPurpose purpose);

}  // namespace mmkt
