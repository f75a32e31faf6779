// Checkpoints: model, optimizer state, progress counters and the RNG state in one file,
// written atomically (temporary file, fsync, rename) so that a kill at any moment leaves the
// previous checkpoint intact. The file carries a format version; a mismatch is a clear error.
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace mmkt::io {

constexpr std::int64_t kCheckpointFormatVersion = 1;

struct TrainingState {
  std::int64_t epochs_done = 0;  // completed epochs
  std::int64_t step = 0;         // optimizer steps so far
  double best_validation = 1e300;
  std::int64_t epochs_without_improvement = 0;
};

// Saves `model` (and `optimizer` when not null) with `state` and the CPU RNG state.
void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainingState& state);
// Loads into `model` (and `optimizer`); restores the RNG state when `restore_rng`. Throws
// InputError naming the file when it is missing, truncated, corrupt, of another format
// version, or does not match the model's architecture.
TrainingState load_checkpoint(const std::string& path, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer, bool restore_rng);

}  // namespace mmkt::io
