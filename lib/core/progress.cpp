#include "mmkt/core/progress.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <utility>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"

namespace mmkt {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long>(seconds + 0.5);
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h";
  out << std::setfill('0');
  if (s >= 60) out << (s >= 3600 ? std::setw(2) : std::setw(1)) << (s / 60) % 60 << "m";
  out << std::setw(s >= 60 ? 2 : 1) << s % 60 << "s";
  return out.str();
}

LoopProgress::LoopProgress(std::string what, std::int64_t epochs, std::int64_t steps_per_epoch,
                           double period_seconds, std::string unit)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      epochs_(epochs),
      steps_per_epoch_(std::max<std::int64_t>(1, steps_per_epoch)),
      period_(period_seconds),
      created_(Clock::now()),
      epoch_start_(created_),
      last_line_(created_) {}

void LoopProgress::start_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  epoch_start_ = last_line_ = Clock::now();
}

void LoopProgress::step(std::int64_t k, std::int64_t rows, const std::string& details,
                        const std::string& extra) {
  const auto now = Clock::now();
  const bool last = k + 1 == steps_per_epoch_;
  if (std::chrono::duration<double>(now - last_line_).count() < period_ && !last) return;
  last_line_ = now;
  // Time left: this epoch's pace so far, over the rest of it and over the epochs still to come.
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  const double per_step = elapsed / static_cast<double>(k + 1);
  const double epoch_left = per_step * static_cast<double>(steps_per_epoch_ - k - 1);
  const double run_left = epoch_left + per_step * static_cast<double>(steps_per_epoch_) *
                                           static_cast<double>(epochs_ - epoch_ - 1);
  std::ostringstream line;
  line << what_ << " " << epoch_ + 1 << "/" << epochs_ << " step " << k + 1 << "/"
       << steps_per_epoch_ << " | " << details << " | " << std::fixed << std::setprecision(0)
       << static_cast<double>(rows) / std::max(elapsed, 1e-9) << " " << unit_ << extra
       << " | ETA epoch " << format_duration(epoch_left) << ", run " << format_duration(run_left);
  log::info(line.str());
}

double LoopProgress::epoch_seconds() const {
  return std::chrono::duration<double>(Clock::now() - epoch_start_).count();
}

double LoopProgress::seconds() const {
  return std::chrono::duration<double>(Clock::now() - created_).count();
}

void check_finite_loss(double loss, const std::string& where, const std::string& details,
                       const std::string& advice) {
  if (std::isfinite(loss)) return;
  fail(where, ": the loss is ", loss, details.empty() ? "" : " (" + details + ")", "; ", advice);
}

void append_jsonl(const std::string& path, const nlohmann::json& record) {
  std::ofstream out(path, std::ios::app);
  MMKT_CHECK(static_cast<bool>(out), path, ": cannot append");
  out << record.dump() << "\n" << std::flush;
  MMKT_CHECK(static_cast<bool>(out), path, ": write failed");
}

}  // namespace mmkt
