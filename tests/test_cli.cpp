// The mmkt binary end to end: exit codes and one-line errors.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "mmkt/core/cpu_setup.h"

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

namespace {
// The JSON object `mmkt info` prints after its start-up log line.
nlohmann::json info_json(const std::string& output) {
  const auto start = output.find("{\n");
  if (start == std::string::npos) return nlohmann::json::object();
  return nlohmann::json::parse(output.substr(start));
}
}  // namespace

TEST(Cli, DenormalsAreFlushedUnlessKept) {
  const auto on = run_mmkt("info --matmul-size 0");
  ASSERT_EQ(on.code, 0) << on.output;
  EXPECT_TRUE(info_json(on.output).at("flush_denormals").get<bool>()) << on.output;
  EXPECT_NE(on.output.find("denormals flushed (FTZ/DAZ)"), std::string::npos) << on.output;
  const auto flag = run_mmkt("--keep-denormals info --matmul-size 0");
  ASSERT_EQ(flag.code, 0) << flag.output;
  EXPECT_FALSE(info_json(flag.output).at("flush_denormals").get<bool>()) << flag.output;
  const auto env = run_mmkt("info --matmul-size 0", "MMKT_DENORMALS=keep");
  EXPECT_FALSE(info_json(env.output).at("flush_denormals").get<bool>()) << env.output;
}

TEST(Cli, GenericOpenBlasCoreIsReplacedByReexecution) {
  const auto cpu = mmkt::cpu_features();
  if (!cpu.avx2)
    GTEST_SKIP() << "this CPU has no AVX2: OpenBLAS's generic kernels are right for it";
  const auto first = run_mmkt("info --matmul-size 0");
  if (info_json(first.output).value("blas_core", std::string()).empty()) {
    GTEST_SKIP() << "the loaded BLAS is not OpenBLAS";
  }
  const std::string expected = mmkt::openblas_core_to_force("Prescott", cpu);
  // Start from the generic core on any machine; override tells mmkt to replace it anyway.
  const auto fixed =
      run_mmkt("info --matmul-size 256", "OPENBLAS_CORETYPE=Prescott MMKT_BLAS_FIX=override");
  ASSERT_EQ(fixed.code, 0) << fixed.output;
  const auto j = info_json(fixed.output);
  EXPECT_EQ(j.at("blas_core").get<std::string>(), expected) << fixed.output;
  EXPECT_EQ(j.at("blas_core_forced_from").get<std::string>(), "Prescott") << fixed.output;
  EXPECT_NE(fixed.output.find("forced with OPENBLAS_CORETYPE"), std::string::npos) << fixed.output;
  // The forced kernels compute the product right: float32 against float64.
  EXPECT_LT(j.at("matmul_relative_error").get<double>(), 1e-5) << fixed.output;
  EXPECT_GT(j.at("matmul_gflops").get<double>(), 0.0);
  // A user's own choice is kept, with a hint; MMKT_BLAS_FIX=0 keeps it too.
  const auto kept = run_mmkt("info --matmul-size 64", "OPENBLAS_CORETYPE=Prescott");
  const auto k = info_json(kept.output);
  EXPECT_EQ(k.at("blas_core").get<std::string>(), "Prescott") << kept.output;
  EXPECT_NE(
      k.at("blas_note").get<std::string>().find("OPENBLAS_CORETYPE=" + expected + " would be"),
      std::string::npos)
      << kept.output;
  EXPECT_LT(k.at("matmul_relative_error").get<double>(), 1e-5) << kept.output;
  const auto off = run_mmkt("info --matmul-size 0", "OPENBLAS_CORETYPE=Prescott MMKT_BLAS_FIX=0");
  EXPECT_EQ(info_json(off.output).at("blas_core").get<std::string>(), "Prescott") << off.output;
}
