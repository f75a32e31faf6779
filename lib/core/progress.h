// What every training loop reports the same way (the trainer, the distiller, the coherence
// evaluator's classifier): a progress line with the rate and the time left, a stop with a
// clear message on a non-finite loss, and one JSON line per epoch in a JSONL log.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace mmkt {

// "1h02m", "3m05s", "12s"; "?" for a negative or non-finite value.
std::string format_duration(double seconds);

// Progress lines for a loop of `epochs` epochs of `steps_per_epoch` steps:
//   <what> 3/10 step 40/190 | <details> | 512 samples/s | ETA epoch 1m02s, run 9m40s
// at most one every `period_seconds`, and always after an epoch's last step.
class LoopProgress {
 public:
  LoopProgress(std::string what, std::int64_t epochs, std::int64_t steps_per_epoch,
               double period_seconds, std::string unit = "samples/s");
  // Starts epoch `epoch` (0-based; a resumed loop starts later than 0).
  void start_epoch(std::int64_t epoch);
  // After step `k` (0-based) of the current epoch, which brought the epoch to `rows` items.
  // `details` (the running loss terms) and `extra` (e.g. communication) go into the line.
  void step(std::int64_t k, std::int64_t rows, const std::string& details,
            const std::string& extra = "");
  double epoch_seconds() const;  // since start_epoch
  double seconds() const;        // since construction

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_, unit_;
  std::int64_t epochs_, steps_per_epoch_, epoch_ = 0;
  double period_;
  Clock::time_point created_, epoch_start_, last_line_;
};

// Throws Error when `loss` is NaN or infinite: "<where>: the loss is nan (<details>); <advice>".
void check_finite_loss(double loss, const std::string& where, const std::string& details,
                       const std::string& advice);

// Appends `record` as one line to the JSONL file at `path` (created when missing), flushed.
void append_jsonl(const std::string& path, const nlohmann::json& record);

}  // namespace mmkt
