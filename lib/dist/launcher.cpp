#include "mmkt/dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <thread>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"

namespace mmkt::dist {
namespace {
using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_forward_signal = 0;
extern "C" void remember_signal(int sig) { g_forward_signal = sig; }

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "stopped (status " + std::to_string(status) + ")";
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}
}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  MMKT_CHECK(fd >= 0, "socket(): ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  MMKT_CHECK(ok, "could not find a free port on 127.0.0.1: ", std::strerror(err));
  return ntohs(addr.sin_port);
}

std::vector<std::string> without_option(const std::vector<std::string>& args,
                                        const std::string& name) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name) {
      ++i;  // skip the value
      continue;
    }
    if (args[i].rfind(name + "=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

int launch_local_workers(const std::vector<std::string>& argv, const LaunchOptions& options) {
  MMKT_CHECK_INPUT(options.nproc >= 1, "--nproc must be at least 1, got ", options.nproc);
  const int port = free_local_port();
  log::info("launching ", options.nproc, " workers on 127.0.0.1:", port);

  // Signals arriving while the workers run are passed on to them.
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  std::map<pid_t, int> rank_of;
  for (int rank = 0; rank < options.nproc; ++rank) {
    std::vector<std::string> env{"RANK=" + std::to_string(rank),
                                 "LOCAL_RANK=" + std::to_string(rank),
                                 "WORLD_SIZE=" + std::to_string(options.nproc),
                                 "LOCAL_WORLD_SIZE=" + std::to_string(options.nproc),
                                 "MASTER_ADDR=127.0.0.1",
                                 "MASTER_PORT=" + std::to_string(port)};
    env.insert(env.end(), options.environment.begin(), options.environment.end());
    // The whole environment is built before fork: after it only async-signal-safe calls.
    for (char** e = environ; *e; ++e) {
      const std::string entry(*e);
      const auto key = entry.substr(0, entry.find('=') + 1);
      bool overridden = false;
      for (const auto& own : env) overridden = overridden || own.rfind(key, 0) == 0;
      if (!overridden) env.push_back(entry);
    }
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int err = errno;
      for (const auto& [p, r] : rank_of) ::kill(p, SIGKILL);
      fail("could not start worker ", rank, ": fork(): ", std::strerror(err));
    }
    if (pid == 0) {
      // Child: only async-signal-safe work until exec.
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      ::execve("/proc/self/exe", args.data(), envp.data());
      ::_exit(127);
    }
    rank_of[pid] = rank;
  }

  int first_failure = 0;
  auto failure_time = Clock::time_point::max();
  bool terminated = false, killed = false;
  while (!rank_of.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && rank_of.count(pid)) {
      const int rank = rank_of[pid];
      rank_of.erase(pid);
      const int code = exit_code(status);
      if (code != 0) {
        log::error("worker rank ", rank, " (pid ", pid, ") ", describe(status));
        if (first_failure == 0) {
          first_failure = code;
          failure_time = Clock::now();
        }
      }
      continue;
    }
    if (g_forward_signal != 0) {
      for (const auto& [p, r] : rank_of) ::kill(p, g_forward_signal);
      g_forward_signal = 0;
    }
    // After a failure the others get `grace` to stop by themselves, then SIGTERM, then SIGKILL.
    const auto now = Clock::now();
    if (first_failure != 0 && !terminated && now - failure_time > options.grace) {
      for (const auto& [p, r] : rank_of) {
        log::error("worker rank ", r, " still running ", options.grace.count() / 1000.0,
                   " s after a failure; terminating it");
        ::kill(p, SIGTERM);
      }
      terminated = true;
    }
    if (terminated && !killed && now - failure_time > options.grace + std::chrono::seconds(5)) {
      for (const auto& [p, r] : rank_of) ::kill(p, SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return first_failure;
}

}  // namespace mmkt::dist
