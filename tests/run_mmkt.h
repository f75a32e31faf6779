// Runs the mmkt binary (MMKT_BINARY) from a test, capturing stdout and stderr together.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace mmkt::testing_support {

struct CommandResult {
  int code = -1;       // exit code; -1 when the process ended by a signal
  std::string output;  // stdout + stderr
  double seconds = 0;  // wall time
};

// `env`: "VAR=value ..." prepended to the command line (a shell runs it).
inline CommandResult run_mmkt(const std::string& args, const std::string& env = "") {
  const auto start = std::chrono::steady_clock::now();
  const std::string command =
      env + (env.empty() ? "" : " ") + std::string(MMKT_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  CommandResult r;
  if (!pipe) return r;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) r.output += buffer.data();
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace mmkt::testing_support
