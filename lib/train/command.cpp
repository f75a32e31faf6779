#include "mmkt/train/command.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/dist/communicator.h"
#include "mmkt/dist/launcher.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/run/config.h"
#include "mmkt/run/run.h"
#include "mmkt/train/trainer.h"

namespace mmkt::train {
namespace {

// The resolved configuration of this process: rank 0's file + --set, or the run's own
// config.json + --set on resume (written back by train_run only once the checkpoint has loaded
// under it); the other ranks take rank 0's (no shared filesystem needed).
nlohmann::json resolve_for_process(const TrainRequest& r, dist::Communicator* comm) {
  nlohmann::json resolved;
  if (comm && comm->rank() != 0) {
    resolved = nlohmann::json::parse(comm->fetch("config"));
  } else if (r.resume) {
    const RunPaths paths{r.run};
    MMKT_CHECK_INPUT(io::file_exists(paths.config()), r.run,
                     ": no run to resume (config.json missing)");
    MMKT_CHECK_INPUT(r.config.empty(), "--resume uses the run's config.json; drop --config");
    resolved = resolve_config_json(paths.config(), r.set);
  } else {
    resolved = resolve_config_json(r.config, r.set);
  }
  if (comm && comm->rank() == 0) comm->publish("config", resolved.dump());
  return resolved;
}

}  // namespace

nlohmann::json run_train_request(const TrainRequest& r, RuntimeOptions runtime,
                                 const std::vector<std::string>& command_line) {
  const bool launched_worker = std::getenv("WORLD_SIZE") != nullptr;
  if (r.nproc > 1 && !launched_worker) {
    // The launcher: re-run this command as N workers and wait for them.
    auto worker_args = dist::without_option(command_line, "--nproc");
    if (runtime.threads <= 0) {
      // N workers share the cores: each gets its share unless --threads says otherwise.
      const int per_worker = std::max(1, configure_threads(0) / r.nproc);
      worker_args.insert(worker_args.begin() + 1, {"--threads", std::to_string(per_worker)});
    }
    dist::LaunchOptions launch;
    launch.nproc = r.nproc;
    const int code = dist::launch_local_workers(worker_args, launch);
    if (code != 0) fail("distributed training failed: a worker exited with status ", code);
    return nullptr;
  }
  MMKT_CHECK_INPUT(!(launched_worker && r.nproc > 1),
                   "--nproc and a WORLD_SIZE environment both ask for workers; use one");
  const auto env = dist::env_from_environment();
  std::unique_ptr<dist::Communicator> comm;
  if (env.distributed()) {
    MMKT_CHECK_INPUT(r.dist_timeout > 0 && r.bucket_mb > 0,
                     "--dist-timeout and --bucket-mb must be positive");
    if (env.rank != 0 && log::level() < log::Level::kWarn) log::set_level(log::Level::kWarn);
    comm = std::make_unique<dist::Communicator>(
        env, std::chrono::milliseconds(static_cast<std::int64_t>(r.dist_timeout * 1000)));
  }
  const auto resolved = resolve_for_process(r, comm.get());
  const auto config = config_from_json(resolved, r.config.empty() ? "config" : r.config);
  runtime.seed = config.seed;
  if (comm && comm->rank() != 0 && (runtime.log_level == "info" || runtime.log_level == "debug")) {
    runtime.log_level = "warn";  // only rank 0 reports progress
  }
  if (comm && runtime.device == "cuda") runtime.device = "cuda:" + std::to_string(env.local_rank);
  const Runtime rt = init_runtime(runtime);
  Parallel parallel;
  parallel.comm = comm.get();
  parallel.bucket_bytes = static_cast<std::int64_t>(r.bucket_mb * (1 << 20));
  MMKT_CHECK_INPUT(!(r.resume && r.overwrite), "--resume and --overwrite exclude each other");
  const auto start =
      r.resume ? RunStart::kResume : (r.overwrite ? RunStart::kOverwrite : RunStart::kFresh);
  auto summary = train_run(config, resolved, r.run, start, rt, parallel);
  if (comm && comm->rank() != 0) return nullptr;
  return summary;
}

}  // namespace mmkt::train
