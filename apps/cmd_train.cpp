// `mmkt train`: train a multimodal VAE run from a JSON config (+ --set overrides), or resume
// one. `mmkt config`: print the defaults or a resolved configuration.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/dist/communicator.h"
#include "mmkt/dist/launcher.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/run/config.h"
#include "mmkt/train/trainer.h"

namespace mmkt::app {

void register_train(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::string config, run = "runs/latest";
    std::vector<std::string> set;
    bool resume = false;
    bool overwrite = false;
    int nproc = 0;
    double dist_timeout = 300;
    double bucket_mb = 25;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand("train", "train a JMVAE / MVAE / MMVAE run (see experiments/)");
  cmd->add_option("--config", args->config, "JSON configuration (keys: `mmkt config`)");
  cmd->add_option("--set", args->set, "override a key, e.g. --set model.latent_dim=32")->take_all();
  cmd->add_option("--run", args->run, "run directory to write")->capture_default_str();
  cmd->add_flag("--resume", args->resume, "continue the run in --run from its last checkpoint");
  cmd->add_flag("--overwrite", args->overwrite,
                "replace the run files (config, checkpoints, log, tokenizer) already in --run");
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
    const bool launched_worker = std::getenv("WORLD_SIZE") != nullptr;
    if (args->nproc > 1 && !launched_worker) {
      // The launcher: re-run this command as N workers and wait for them.
      auto worker_args = dist::without_option(command_line(), "--nproc");
      if (common.runtime.threads <= 0) {
        // N workers share the cores: each gets its share unless --threads says otherwise.
        const int per_worker = std::max(1, configure_threads(0) / args->nproc);
        worker_args.insert(worker_args.begin() + 1, {"--threads", std::to_string(per_worker)});
      }
      dist::LaunchOptions launch;
      launch.nproc = args->nproc;
      const int code = dist::launch_local_workers(worker_args, launch);
      if (code != 0) fail("distributed training failed: a worker exited with status ", code);
      return;
    }
    MMKT_CHECK_INPUT(!(launched_worker && args->nproc > 1),
                     "--nproc and a WORLD_SIZE environment both ask for workers; use one");
    const auto env = dist::env_from_environment();
    std::unique_ptr<dist::Communicator> comm;
    if (env.distributed()) {
      MMKT_CHECK_INPUT(args->dist_timeout > 0 && args->bucket_mb > 0,
                       "--dist-timeout and --bucket-mb must be positive");
      if (env.rank != 0 && log::level() < log::Level::kWarn) log::set_level(log::Level::kWarn);
      comm = std::make_unique<dist::Communicator>(
          env, std::chrono::milliseconds(static_cast<std::int64_t>(args->dist_timeout * 1000)));
    }
    nlohmann::json resolved;
    if (comm && comm->rank() != 0) {
      // Workers take rank 0's resolved configuration (no shared filesystem needed).
      resolved = nlohmann::json::parse(comm->fetch("config"));
    } else if (args->resume) {
      // The run's own configuration; --set may extend it (e.g. train.epochs).
      const RunPaths paths{args->run};
      MMKT_CHECK_INPUT(io::file_exists(paths.config()), args->run,
                       ": no run to resume (config.json missing)");
      MMKT_CHECK_INPUT(args->config.empty(), "--resume uses the run's config.json; drop --config");
      // Written back by train_run once the checkpoint has loaded under it (not before).
      resolved = resolve_config_json(paths.config(), args->set);
    } else {
      resolved = resolve_config_json(args->config, args->set);
      if (args->overwrite) {
        const RunPaths paths{args->run};
        for (const auto& f : {paths.config(), paths.checkpoint(), paths.best(), paths.log(),
                              paths.summary(), paths.tokenizer()}) {
          std::filesystem::remove(f);
        }
      }
    }
    if (comm && comm->rank() == 0) comm->publish("config", resolved.dump());
    const auto config = config_from_json(resolved, args->config.empty() ? "config" : args->config);
    auto runtime_options = common.runtime;
    runtime_options.seed = config.seed;
    if (comm && comm->rank() != 0 &&
        (runtime_options.log_level == "info" || runtime_options.log_level == "debug")) {
      runtime_options.log_level = "warn";  // only rank 0 reports progress
    }
    if (comm && runtime_options.device == "cuda") {
      runtime_options.device = "cuda:" + std::to_string(env.local_rank);
    }
    const Runtime rt = init_runtime(runtime_options);
    train::Parallel parallel;
    parallel.comm = comm.get();
    parallel.bucket_bytes = static_cast<std::int64_t>(args->bucket_mb * (1 << 20));
    const auto summary = train::train_run(config, resolved, args->run, args->resume, rt, parallel);
    if (!comm || comm->rank() == 0) std::cout << summary.dump(2) << std::endl;
  });

  auto cfg = std::make_shared<Args>();
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
