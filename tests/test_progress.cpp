// The training-loop helpers shared by the trainer, the distiller and the evaluators: durations,
// progress lines (when they print and what they say), the stop on a non-finite loss, JSONL logs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "mmkt/core/error.h"
#include "mmkt/core/progress.h"

using namespace mmkt;

TEST(Progress, DurationsReadAsPeopleWriteThem) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(9.4), "9s");
  EXPECT_EQ(format_duration(59.6), "1m00s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3725), "1h02m05s");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(std::nan("")), "?");
}

TEST(Progress, LinePrintsAtThePeriodAndAtTheEpochsLastStep) {
  // A period no test reaches: only the last step of the epoch prints.
  LoopProgress progress("epoch", 3, 4, 1e9, "samples/s");
  progress.start_epoch(1);
  testing::internal::CaptureStderr();
  for (int k = 0; k < 3; ++k) progress.step(k, 10 * (k + 1), "loss 1.00");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  testing::internal::CaptureStderr();
  progress.step(3, 40, "loss 0.50", " (2 workers)");
  const auto line = testing::internal::GetCapturedStderr();
  EXPECT_NE(line.find("epoch 2/3 step 4/4 | loss 0.50 | "), std::string::npos) << line;
  EXPECT_NE(line.find(" samples/s (2 workers) | ETA epoch 0s, run "), std::string::npos) << line;
  // A zero period prints every step.
  LoopProgress every("distill epoch", 1, 2, 0.0, "items/s");
  every.start_epoch(0);
  testing::internal::CaptureStderr();
  every.step(0, 5, "loss 2");
  EXPECT_NE(testing::internal::GetCapturedStderr().find("distill epoch 1/1 step 1/2 | loss 2 | "),
            std::string::npos);
}

TEST(Progress, NonFiniteLossStopsWithWhereAndWhatToDo) {
  EXPECT_NO_THROW(check_finite_loss(1.5, "epoch 1 step 2", "", "lower the lr"));
  try {
    check_finite_loss(std::numeric_limits<double>::infinity(), "epoch 3 step 7", "terms: kl=inf",
                      "lower train.lr");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "epoch 3 step 7: the loss is inf (terms: kl=inf); lower train.lr");
  }
  EXPECT_THROW(check_finite_loss(std::nan(""), "x", "", "y"), Error);
}

TEST(Progress, JsonlLogAppendsOneRecordPerLine) {
  const auto path = (std::filesystem::temp_directory_path() / "mmkt_progress_log.jsonl").string();
  std::filesystem::remove(path);
  append_jsonl(path, {{"epoch", 1}, {"loss", 2.5}});
  append_jsonl(path, {{"epoch", 2}, {"loss", 1.5}});
  std::ifstream in(path);
  std::string a, b, c;
  ASSERT_TRUE(std::getline(in, a) && std::getline(in, b));
  EXPECT_FALSE(std::getline(in, c));
  EXPECT_EQ(nlohmann::json::parse(a)["epoch"], 1);
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(b)["loss"].get<double>(), 1.5);
}
