// `mmkt train --nproc N`: starts N local workers of the same command, as torchrun does on one
// machine. Each worker is this executable re-run with the launcher's arguments (minus --nproc)
// and RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free
// MASTER_PORT in its environment.
//
// Failure handling: when a worker exits with an error or a signal, the others normally stop by
// themselves within moments (their next collective fails on the closed connection); any still
// running after `grace` are terminated (SIGTERM, then SIGKILL). A SIGINT/SIGTERM sent to the
// launcher is passed on to the workers.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace mmkt::dist {

struct LaunchOptions {
  int nproc = 1;
  // Extra "VAR=value" entries for every worker's environment.
  std::vector<std::string> environment;
  std::chrono::milliseconds grace{std::chrono::seconds(30)};
};

// Runs `argv` (argv[0] is ignored: the running executable is re-run) as `nproc` workers and
// waits for them. Returns 0 when all succeeded, else the first failing worker's exit code
// (128 + signal for a signal), after printing which rank failed and how.
int launch_local_workers(const std::vector<std::string>& argv, const LaunchOptions& options);

// A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close).
int free_local_port();

// `args` without the option `name` and its value ("--nproc 2" and "--nproc=2" forms).
std::vector<std::string> without_option(const std::vector<std::string>& args,
                                        const std::string& name);

}  // namespace mmkt::dist
