#include "mmkt/core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace mmkt::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mutex;
const auto g_start = std::chrono::steady_clock::now();
}  // namespace

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }

Level parse_level(const std::string& name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  fail_input("unknown log level '", name, "' (expected debug, info, warn, error or off)");
}

void write(Level l, const std::string& message) {
  static const char kTags[] = {'D', 'I', 'W', 'E'};
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - g_start).count();
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "[%7.1fs] %c %s\n", seconds, kTags[static_cast<int>(l)], message.c_str());
  std::fflush(stderr);
}

}  // namespace mmkt::log
