// `mmkt train` as one library call, so that the app only parses options: launch local
// data-parallel workers, or join the workers the environment names, resolve the configuration
// for this process, train, and return the summary.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"

namespace mmkt::train {

struct TrainRequest {
  std::string config;               // JSON configuration ("" = defaults); not with resume
  std::string run = "runs/latest";  // run directory
  std::vector<std::string> set;     // "key.path=value" overrides
  bool resume = false;              // continue the run from its checkpoint (its own config.json)
  bool overwrite = false;           // replace an old run's files in `run`
  int nproc = 0;                    // > 1: start that many local workers (c10d/Gloo)
  double dist_timeout = 300;        // seconds a worker waits for the others
  double bucket_mb = 25;            // gradient allreduce bucket size (MiB)
};

// With nproc > 1 (and no WORLD_SIZE in the environment), re-runs `command_line` without --nproc
// as nproc workers, each with its share of the cores unless --threads was given, and waits for
// them. Otherwise this process trains: alone, or as the worker RANK of WORLD_SIZE (rank 0 reads
// and writes the run and sends the resolved configuration to the others). Returns the summary
// on rank 0 of a training process, null for the launcher and the other ranks.
nlohmann::json run_train_request(const TrainRequest& request, RuntimeOptions runtime,
                                 const std::vector<std::string>& command_line);

}  // namespace mmkt::train
