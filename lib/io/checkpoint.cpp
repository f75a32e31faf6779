#include "mmkt/io/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/io/files.h"

namespace mmkt::io {
namespace {

// Module::load re-seats each tensor with whatever shape the file holds; check names and
// shapes first so that a checkpoint of another architecture is an error, not a silent change.
void check_module(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                  const std::string& prefix, const std::string& path) {
  auto check = [&](const std::string& key, const torch::Tensor& expected, bool is_buffer) {
    torch::Tensor stored;
    MMKT_CHECK_INPUT(archive.try_read(key, stored, is_buffer), path, ": checkpoint lacks '",
                     prefix + key, "' (a different model architecture?)");
    MMKT_CHECK_INPUT(stored.sizes() == expected.sizes(), path, ": '", prefix + key, "' has shape ",
                     stored.sizes(), " in the checkpoint but ", expected.sizes(),
                     " in this model (a different configuration?)");
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) check(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) check(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive sub;
    MMKT_CHECK_INPUT(archive.try_read(child.key(), sub), path, ": checkpoint lacks module '",
                     prefix + child.key(), "' (a different model architecture?)");
    check_module(*child.value(), sub, prefix + child.key() + ".", path);
  }
}

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
  // InputArchive::read into a defined tensor re-seats it with set_(), keeping its old dtype:
  // every scalar is read into a fresh tensor.
  auto read_scalar = [&](const char* key) {
    torch::Tensor fresh;
    root.read(key, fresh);
    return fresh;
  };
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
    check_module(model, model_archive, "", path);
    model.load(model_archive);
    if (optimizer != nullptr) {
      torch::serialize::InputArchive opt_archive;
      MMKT_CHECK_INPUT(root.try_read("optimizer", opt_archive), path,
                       ": checkpoint has no optimizer state (cannot resume training from it)");
      optimizer->load(opt_archive);
    }
    state.epochs_done = read_scalar("epochs_done").item<std::int64_t>();
    state.step = read_scalar("step").item<std::int64_t>();
    state.best_validation = read_scalar("best_validation").item<double>();
    state.epochs_without_improvement =
        read_scalar("epochs_without_improvement").item<std::int64_t>();
    if (restore_rng) {
      auto generator = at::detail::getDefaultCPUGenerator();
      generator.set_state(read_scalar("rng_cpu"));
    }
  } catch (const c10::Error& e) {
    fail_input(
        path, ": checkpoint does not match this model or is corrupt: ", e.what_without_backtrace());
  }
  return state;
}

}  // namespace mmkt::io
