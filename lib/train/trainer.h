// Training a multimodal VAE run (run/run.h says what a run directory holds): Adam, KL warm-up,
// triplet warm-up, gradient clipping, validation every epoch, early stopping, progress lines, a
// JSONL log per epoch, atomic checkpoints after every epoch, exact resume, a lock against a
// second trainer, and a stop with a clear message on NaN/Inf.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"
#include "mmkt/models/multimodal_vae.h"
#include "mmkt/run/config.h"
#include "mmkt/run/run.h"
#include "mmkt/run/run_data.h"

// The communicator is only named here (dist/communicator.h pulls in c10d's headers, which
// nothing that merely trains or names a run should compile).
namespace mmkt::dist {
class Communicator;
}  // namespace mmkt::dist

namespace mmkt::train {

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
  dist::Communicator* comm = nullptr;      // null = one process
  std::int64_t bucket_bytes = 25ll << 20;  // PyTorch DDP's default bucket_cap_mb = 25
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

// How train_run treats what `run_dir` already holds. Every mode first takes the run's lock, so
// a second process touches nothing.
enum class RunStart {
  kFresh,      // refuse a directory that holds another run's files
  kResume,     // continue from checkpoint.pt under the run's own config.json
  kOverwrite,  // delete the old run's files (checkpoints, log, summary, tokenizer, eval/), then
               // start fresh
};

// Trains (or continues) the run in `run_dir` with `config` (`resolved` is its JSON, written to
// config.json with the automatic choices of resolve_data_choices filled in). Returns the
// summary written to summary.json.
nlohmann::json train_run(const RunConfig& config, const nlohmann::json& resolved,
                         const std::string& run_dir, RunStart start, const Runtime& runtime,
                         const Parallel& parallel = {});

}  // namespace mmkt::train
