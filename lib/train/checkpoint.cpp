#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "core/error.h"
#include "io/files.h"

namespace mmkt::train {
namespace {

torch::Tensor scalar(std::int64_t v) { return torch::tensor(v, torch::kInt64); }
torch::Tensor scalar(double v) { return torch::tensor(v, torch::kFloat64); }

}  // namespace

void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainingState& state) {
  torch::serialize::OutputArchive root;
  root.write("format_version", scalar(kCheckpointFormatVersion));
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  root.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive opt_archive;
    optimizer->save(opt_archive);
    root.write("optimizer", opt_archive);
  }
  root.write("epochs_done", scalar(state.epochs_done));
  root.write("step", scalar(state.step));
  root.write("best_validation", scalar(state.best_validation));
  root.write("epochs_without_improvement", scalar(state.epochs_without_improvement));
  auto generator = at::detail::getDefaultCPUGenerator();
  root.write("rng_cpu", generator.get_state());
  std::ostringstream bytes;
  root.save_to(bytes);
  io::write_file_atomic(path, bytes.str());
}

TrainingState load_checkpoint(const std::string& path, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer, bool restore_rng) {
  if (!io::file_exists(path)) fail_input(path, ": checkpoint does not exist");
  torch::serialize::InputArchive root;
  try {
    root.load_from(path);
  } catch (const c10::Error& e) {
    fail_input(path, ": not a readable mmkt checkpoint (truncated or corrupt): ",
               e.what_without_backtrace());
  }
  TrainingState state;
  try {
    torch::Tensor t;
    if (!root.try_read("format_version", t)) {
      fail_input(path, ": not an mmkt checkpoint (no format_version)");
    }
    const auto version = t.item<std::int64_t>();
    MMKT_CHECK_INPUT(version == kCheckpointFormatVersion, path, ": checkpoint format version ",
                     version, ", this mmkt reads version ", kCheckpointFormatVersion);
    torch::serialize::InputArchive model_archive;
    root.read("model", model_archive);
    model.load(model_archive);
    if (optimizer != nullptr) {
      torch::serialize::InputArchive opt_archive;
      MMKT_CHECK_INPUT(root.try_read("optimizer", opt_archive), path,
                       ": checkpoint has no optimizer state (cannot resume training from it)");
      optimizer->load(opt_archive);
    }
    root.read("epochs_done", t);
    state.epochs_done = t.item<std::int64_t>();
    root.read("step", t);
    state.step = t.item<std::int64_t>();
    root.read("best_validation", t);
    state.best_validation = t.item<double>();
    root.read("epochs_without_improvement", t);
    state.epochs_without_improvement = t.item<std::int64_t>();
    if (restore_rng) {
      root.read("rng_cpu", t);
      auto generator = at::detail::getDefaultCPUGenerator();
      generator.set_state(t);
    }
  } catch (const c10::Error& e) {
    fail_input(path, ": checkpoint does not match this model or is corrupt: ",
               e.what_without_backtrace());
  }
  return state;
}

}  // namespace mmkt::train
