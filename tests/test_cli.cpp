// The mmkt binary end to end: exit codes and one-line errors.
#include <gtest/gtest.h>

#include <string>

#include "run_mmkt.h"

using mmkt::testing_support::run_mmkt;

TEST(Cli, VersionAndHelp) {
  const auto v = run_mmkt("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.output.find("mmkt 0."), std::string::npos) << v.output;
  const auto h = run_mmkt("--help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.output.find("tokenizer"), std::string::npos) << h.output;
}

TEST(Cli, InfoReportsThreadsAndBlas) {
  const auto r = run_mmkt("--threads 2 info --matmul-size 64");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\"threads\": 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("BLAS"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("matmul_gflops"), std::string::npos) << r.output;
}

TEST(Cli, ErrorsAreOneLineAndNonZero) {
  const auto missing = run_mmkt("tokenizer encode --model /no/such.model --text hi");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.output.find("mmkt: error: /no/such.model"), std::string::npos)
      << missing.output;
  EXPECT_EQ(std::count(missing.output.begin(), missing.output.end(), '\n'), 1) << missing.output;
  const auto device = run_mmkt("--device tpu info");
  EXPECT_EQ(device.code, 2);
  EXPECT_NE(device.output.find("unknown device 'tpu'"), std::string::npos) << device.output;
  const auto unknown = run_mmkt("no-such-command");
  EXPECT_NE(unknown.code, 0);
}
