// `mmkt train`: train a multimodal VAE run from a JSON config (+ --set overrides), or resume
// one. `mmkt config`: print the defaults or a resolved configuration.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "core/error.h"
#include "io/files.h"
#include "io/json_config.h"
#include "train/config.h"
#include "train/trainer.h"

namespace mmkt::app {

void register_train(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::string config, run = "runs/latest";
    std::vector<std::string> set;
    bool resume = false;
    bool overwrite = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand("train", "train a JMVAE / MVAE / MMVAE run (see experiments/)");
  cmd->add_option("--config", args->config, "JSON configuration (keys: `mmkt config`)");
  cmd->add_option("--set", args->set, "override a key, e.g. --set model.latent_dim=32")
      ->take_all();
  cmd->add_option("--run", args->run, "run directory to write")->capture_default_str();
  cmd->add_flag("--resume", args->resume, "continue the run in --run from its last checkpoint");
  cmd->add_flag("--overwrite", args->overwrite,
                "replace the run files (config, checkpoints, log, tokenizer) already in --run");
  cmd->callback([&common, args] {
    nlohmann::json resolved;
    if (args->resume) {
      // The run's own configuration; --set may extend it (e.g. train.epochs).
      const train::RunPaths paths{args->run};
      MMKT_CHECK_INPUT(io::file_exists(paths.config()), args->run,
                       ": no run to resume (config.json missing)");
      MMKT_CHECK_INPUT(args->config.empty(), "--resume uses the run's config.json; drop --config");
      resolved = train::resolve_config_json(paths.config(), args->set);
      io::write_json_file(paths.config(), resolved);
    } else {
      resolved = train::resolve_config_json(args->config, args->set);
      if (args->overwrite) {
        const train::RunPaths paths{args->run};
        for (const auto& f : {paths.config(), paths.checkpoint(), paths.best(), paths.log(),
                              paths.summary(), paths.tokenizer()}) {
          std::filesystem::remove(f);
        }
      }
    }
    const auto config = train::config_from_json(resolved, args->config.empty() ? "config" : args->config);
    auto runtime_options = common.runtime;
    runtime_options.seed = config.seed;
    const Runtime rt = init_runtime(runtime_options);
    const auto summary = train::train_run(config, resolved, args->run, args->resume, rt);
    std::cout << summary.dump(2) << std::endl;
  });

  auto cfg = std::make_shared<Args>();
  auto* show = root.add_subcommand("config", "print the default configuration, or a resolved one");
  show->add_option("--config", cfg->config, "JSON configuration to resolve");
  show->add_option("--set", cfg->set, "overrides")->take_all();
  show->callback([cfg] {
    const auto resolved = train::resolve_config_json(cfg->config, cfg->set);
    train::config_from_json(resolved, cfg->config.empty() ? "config" : cfg->config);  // validate
    std::cout << resolved.dump(2) << std::endl;
  });
}

}  // namespace mmkt::app
