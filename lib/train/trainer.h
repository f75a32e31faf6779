// Training a multimodal VAE run: Adam, KL warm-up, triplet warm-up, gradient clipping,
// validation every epoch, early stopping, progress lines, a JSONL log per epoch, atomic
// checkpoints after every epoch, exact resume, and a stop with a clear message on NaN/Inf.
//
// Run directory:
//   config.json      the resolved configuration (every key)
//   tokenizer.model  SentencePiece model (text runs)
//   checkpoint.pt    model + optimizer + counters + RNG (latest epoch)
//   best.pt          model at the best validation loss (when validating)
//   checkpoint_epochN.pt  the model after epoch N, for N in train.keep_checkpoints
//   log.jsonl        one line per epoch: train and validation terms, seconds
//   summary.json     final figures (test ELBO, time per epoch)
#pragma once

#include <map>
#include <optional>

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/runtime.h"
#include "dist/communicator.h"
#include "models/multimodal_vae.h"
#include "train/config.h"
#include "train/run_data.h"

namespace mmkt::train {

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

// Mean of every objective term over a dataset (eval mode, no gradients, full KL weight).
// The sampling noise is seeded, so the figures repeat; training's RNG stream is untouched.
std::map<std::string, double> evaluate_terms(models::MultimodalVae& model,
                                             const data::DatasetPtr& dataset,
                                             const RunConfig& config, const RunData& data,
                                             const std::vector<models::ModalityConfig>& modalities,
                                             const torch::Device& device);

// Data-parallel training (dist/communicator.h). With a communicator every rank runs train_run:
// parameters are broadcast from rank 0, each rank takes a disjoint shard of every global batch
// (train.batch_size rows in all) and draws the noise of the whole global batch, gradients are
// averaged in buckets, and only rank 0 reads/writes the run directory (the tokenizer and a
// checkpoint to resume from reach the others through the store). The parameters after k steps
// equal, up to float rounding, those of one process on the same global batches; terms that
// couple the items of a batch (triplet negatives) are formed within each rank's shard.
struct Parallel {
  dist::Communicator* comm = nullptr;       // null = one process
  std::int64_t bucket_bytes = 25ll << 20;   // PyTorch DDP's default bucket_cap_mb = 25
};

// A manifest run of fewer training steps than this gets a warning at its start: a short
// recipe made for a large built-in dataset learns little from a few thousand items.
constexpr std::int64_t kFewManifestSteps = 300;

// An epoch whose mean KL(q(z|all) || p(z)) (the "kl" train term) is below this many nats per
// item has collapsed: the latent code carries next to nothing.
constexpr double kCollapseKlNats = 1.0;
// The warning train_run logs (and writes into the epoch's log.jsonl line) after such an epoch:
// what happened, the likely causes and what to change; nullopt for a healthy epoch.
std::optional<std::string> collapse_warning(const std::map<std::string, double>& train_terms,
                                            std::int64_t epoch);

// Trains (or, with resume, continues) the run in `run_dir` with `config` (`resolved` is its
// JSON, written to config.json with the automatic choices of resolve_data_choices filled in).
// Returns the summary written to summary.json.
nlohmann::json train_run(const RunConfig& config, const nlohmann::json& resolved,
                         const std::string& run_dir, bool resume, const Runtime& runtime,
                         const Parallel& parallel = {});

// A model built from a run directory's config and best (else latest) checkpoint, in eval mode.
struct LoadedRun {
  RunConfig config;
  nlohmann::json resolved;
  RunData data;
  std::vector<models::ModalityConfig> modalities;
  models::MultimodalVae model{nullptr};
};
// The objective's weights at fractional epoch `epoch` of a run: the KL term and the triplet term
// warm up linearly over train.warmup_epochs and triplet.warmup_epochs (Sonderby et al. 2016 for
// the KL term). Labels are the caller's.
models::ObjectiveOptions objective_options_at(const RunConfig& config, double epoch);

// `checkpoint` names another model file of the run (e.g. checkpoint_epoch50.pt); "" = best/latest.
LoadedRun load_run(const std::string& run_dir, const torch::Device& device,
                   const std::string& checkpoint = "");

}  // namespace mmkt::train
