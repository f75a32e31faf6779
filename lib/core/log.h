// Levelled logging to stderr with elapsed time, safe from several threads.
// Usage: mmkt::log::info("epoch ", e, " loss ", loss);
#pragma once

#include <string>

#include "mmkt/core/error.h"

namespace mmkt::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void set_level(Level level);
Level level();
// Parses "debug" | "info" | "warn" | "error" | "off"; throws InputError otherwise.
Level parse_level(const std::string& name);
// Writes one line "[  12.3s] W message" when `level` is enabled.
void write(Level level, const std::string& message);

template <typename... Args>
void debug(Args&&... args) {
  if (level() <= Level::kDebug) write(Level::kDebug, detail::concat(std::forward<Args>(args)...));
}
template <typename... Args>
void info(Args&&... args) {
  if (level() <= Level::kInfo) write(Level::kInfo, detail::concat(std::forward<Args>(args)...));
}
template <typename... Args>
void warn(Args&&... args) {
  if (level() <= Level::kWarn) write(Level::kWarn, detail::concat(std::forward<Args>(args)...));
}
template <typename... Args>
void error(Args&&... args) {
  if (level() <= Level::kError) write(Level::kError, detail::concat(std::forward<Args>(args)...));
}

}  // namespace mmkt::log
