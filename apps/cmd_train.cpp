// `mmkt train`: train a multimodal VAE run from a JSON config (+ --set overrides), or resume
// one. `mmkt config`: print the defaults or a resolved configuration.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "mmkt/run/config.h"
#include "mmkt/train/command.h"

namespace mmkt::app {

void register_train(CLI::App& root, CommonOptions& common) {
  auto args = std::make_shared<train::TrainRequest>();
  auto* cmd = root.add_subcommand("train", "train a JMVAE / MVAE / MMVAE run (see experiments/)");
  cmd->add_option("--config", args->config, "JSON configuration (keys: `mmkt config`)");
  cmd->add_option("--set", args->set, "override a key, e.g. --set model.latent_dim=32")->take_all();
  cmd->add_option("--run", args->run, "run directory to write")->capture_default_str();
  cmd->add_flag("--resume", args->resume, "continue the run in --run from its last checkpoint");
  cmd->add_flag("--overwrite", args->overwrite,
                "replace the run already in --run: its checkpoints, log, summary, tokenizer and "
                "eval/ reports are deleted once this process holds the run's lock");
  cmd->add_option("--nproc", args->nproc,
                  "start N local data-parallel workers (c10d/Gloo); multi-machine runs instead "
                  "set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT for each worker");
  cmd->add_option("--dist-timeout", args->dist_timeout,
                  "seconds a worker waits for the others (joining, each collective) before it "
                  "stops with an error")
      ->capture_default_str();
  cmd->add_option("--bucket-mb", args->bucket_mb, "gradient allreduce bucket size in MiB")
      ->capture_default_str();
  cmd->callback([&common, args] {
    const auto summary = train::run_train_request(*args, common.runtime, command_line());
    if (!summary.is_null()) std::cout << summary.dump(2) << std::endl;
  });

  struct ConfigArgs {
    std::string config;
    std::vector<std::string> set;
  };
  auto cfg = std::make_shared<ConfigArgs>();
  auto* show = root.add_subcommand("config", "print the default configuration, or a resolved one");
  show->add_option("--config", cfg->config, "JSON configuration to resolve");
  show->add_option("--set", cfg->set, "overrides")->take_all();
  show->callback([cfg] {
    const auto resolved = resolve_config_json(cfg->config, cfg->set);
    config_from_json(resolved, cfg->config.empty() ? "config" : cfg->config);  // validate
    std::cout << resolved.dump(2) << std::endl;
  });
}

}  // namespace mmkt::app
