// `mmkt demo`: train, evaluate, distil, query and draw on Fashion-MNIST in a few minutes, then
// print the report (lib/demo/demo.h).
#include <iostream>

#include "commands.h"
#include "mmkt/demo/demo.h"
#include "mmkt/io/files.h"

namespace mmkt::app {

void register_demo(CLI::App& root, CommonOptions& common) {
  auto o = std::make_shared<demo::DemoOptions>();
  auto* cmd = root.add_subcommand(
      "demo", "the main job: train, evaluate, distil, query and draw on Fashion-MNIST");
  cmd->add_option("--run", o->run_dir, "run directory (replaced when it is an mmkt run)")
      ->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "training epochs")->capture_default_str();
  cmd->add_option("--steps", o->steps_per_epoch, "batches of 100 per epoch")->capture_default_str();
  cmd->add_option("--distill-epochs", o->distill_epochs, "student training epochs")
      ->capture_default_str();
  cmd->add_option("--distill-items", o->distill_items, "student transfer-set items (0 = all)")
      ->capture_default_str();
  cmd->add_option("--query", o->query, "the example text query")->capture_default_str();
  cmd->add_option("--draw", o->draw, "the caption images are drawn for")->capture_default_str();
  cmd->callback([&common, o] {
    const Runtime rt = init_runtime(common.runtime);
    demo::run_demo(*o, rt);
    std::cout << io::read_file(o->run_dir + "/demo.md");
  });
}

}  // namespace mmkt::app
