#include "mmkt/run/run.h"

#include <algorithm>
#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/image/convert.h"
#include "mmkt/io/checkpoint.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"

namespace mmkt {

models::ObjectiveOptions objective_options_at(const RunConfig& config, double epoch) {
  const auto ramp = [epoch](double warmup_epochs) {
    return warmup_epochs > 0 ? std::min(1.0, epoch / warmup_epochs) : 1.0;
  };
  models::ObjectiveOptions options;
  options.kl_weight = ramp(config.train.warmup_epochs);
  options.free_bits = std::max(0.0, config.train.free_bits);  // -1 (auto) unresolved: none
  options.triplet = config.triplet;
  options.triplet_weight = config.triplet.weight * ramp(config.triplet.warmup_epochs);
  return options;
}

LoadedRun load_run(const std::string& run_dir, const torch::Device& device,
                   const std::string& checkpoint_file) {
  const RunPaths paths{run_dir};
  MMKT_CHECK_INPUT(std::filesystem::is_directory(run_dir), run_dir,
                   ": run directory does not exist");
  LoadedRun run;
  run.resolved = io::load_json_file(paths.config());
  run.resolved =
      io::merge_strict(default_config_json(), run.resolved, paths.config(), config_open_paths());
  run.config = resolve_data_choices(config_from_json(run.resolved, paths.config()));
  store_data_choices(run.config, run.resolved);
  run.data = load_run_data(run.config, paths.tokenizer());
  run.modalities = resolve_modalities(run.config, run.data);
  auto model_config = run.config.model;
  model_config.modalities = run.modalities;
  run.model = models::MultimodalVae(model_config);
  std::string checkpoint = io::file_exists(paths.best()) ? paths.best() : paths.checkpoint();
  if (!checkpoint_file.empty()) {
    // A bare name is looked up in the run directory.
    checkpoint =
        io::file_exists(checkpoint_file) ? checkpoint_file : run_dir + "/" + checkpoint_file;
    MMKT_CHECK_INPUT(io::file_exists(checkpoint), checkpoint_file,
                     ": no such checkpoint (neither a file nor one in ", run_dir, ")");
  }
  io::load_checkpoint(checkpoint, *run.model, nullptr, false);
  run.model->to(device);
  run.model->eval();
  return run;
}

torch::Tensor image_file_item(const LoadedRun& run, const std::string& path) {
  return image_bytes_item(run, image::read_image_file(path), path);
}

torch::Tensor image_bytes_item(const LoadedRun& run, const std::string& bytes,
                               const std::string& name) {
  const models::ModalityConfig* image = nullptr;
  for (const auto& m : run.modalities) {
    if (m.kind == models::ModalityKind::kImage) image = &m;
  }
  MMKT_CHECK_INPUT(image != nullptr, run.config.data.dataset, " run has no image modality");
  MMKT_CHECK(image->shape.size() == 3, "image modality without a [C,H,W] shape");
  const auto square = image::decode_square_image(bytes, static_cast<int>(image->shape[0]),
                                                 static_cast<int>(image->shape[1]), name);
  auto x = image::mat_to_tensor(square).to(torch::kFloat32).div_(255.0);
  if (run.config.data.binarize == "dynamic") {
    // The same file always gives the same draw (a seed stream of the run's own).
    auto generator =
        at::detail::createCPUGenerator(derive_seed(run.config.seed, "image-file-binarization"));
    x = torch::bernoulli(x, generator);
  }
  return x;
}

data::BatcherOptions batcher_options(const RunConfig& config, const RunData& data,
                                     BatchPurpose purpose) {
  data::BatcherOptions o;
  o.tokenizer = data.tokenizer;
  o.max_tokens = config.data.max_tokens;
  o.workers = config.data.workers;
  o.seed = config.seed;
  const bool dynamic = config.data.binarize == "dynamic";
  switch (purpose) {
    case BatchPurpose::kTraining:
      o.batch_size = config.train.batch_size;
      o.shuffle = true;
      o.binarize = dynamic ? data::Binarize::kDynamic : data::Binarize::kNone;
      break;
    case BatchPurpose::kEvaluation:
      o.batch_size = config.train.eval_batch_size;
      o.shuffle = false;
      break;
    case BatchPurpose::kTransferSet:
      o.batch_size = config.train.eval_batch_size;
      o.shuffle = false;
      if (dynamic) {
        o.binarize = data::Binarize::kDynamic;
        o.seed = derive_seed(config.seed, "distill-transfer-binarization");
      }
      break;
  }
  return o;
}

data::BatcherOptions batcher_options(const LoadedRun& run, BatchPurpose purpose) {
  return batcher_options(run.config, run.data, purpose);
}

}  // namespace mmkt
