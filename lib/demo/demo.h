// `mmkt demo`: the main job behind the README's first command, on Fashion-MNIST with the
// captions and attributes in data/ (nothing beyond the set-up):
//   1. trains a JMVAE-kl with contrastive image-caption constraints for a few minutes (the
//   strong recipe, experiments/fashion_strong2.json, for 4 epochs),
//   2. evaluates retrieval and zero-shot, with pictures (eval/report.h),
//   3. distils one image student (conv:8:128, Hinton KD + latent-mean MSE, the method chosen on
//      validation by experiments/distill_strong.sh) and evaluates it beside the teacher,
//   4. answers one text query from a saved index and draws images for one caption,
//   5. writes <run>/demo.md (tables, pictures, paths), prints it, and returns its figures.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"

namespace mmkt::demo {

struct DemoOptions {
  std::string run_dir = "runs/demo";
  std::int64_t epochs = 4;
  std::int64_t steps_per_epoch = 400;  // batches of 100 (400: the whole 40,000 training items)
  std::int64_t distill_epochs = 10;
  std::int64_t distill_items = 0;  // transfer-set items (0 = the whole training split)
  std::string query = "an ankle boot with a heel";
  std::string draw = "a pair of trousers";
  std::string dataset_root;  // "" = the default Fashion-MNIST location
};

// The training configuration of the demo (JSON, every other key at its default): the recipe
// of experiments/fashion_strong2.json with the demo's epochs and a 2,000-item validation split.
nlohmann::json demo_config(const DemoOptions& options);

nlohmann::json run_demo(const DemoOptions& options, const Runtime& runtime);

}  // namespace mmkt::demo
