#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <thread>

#include "mmkt/core/cpu_setup.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/runtime.h"
#include "mmkt/io/files.h"

using namespace mmkt;

TEST(Error, FailConcatenatesAndKeepsKind) {
  try {
    fail_input("file ", "a.idx", ": bad magic ", 42);
    FAIL() << "no throw";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "file a.idx: bad magic 42");
  }
  EXPECT_THROW(fail("x"), Error);
}

TEST(Error, WithContextPrependsAndKeepsKind) {
  try {
    with_context("loading run r1", [] { fail_input("missing key 'x'"); });
    FAIL() << "no throw";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "loading run r1: missing key 'x'");
  }
  EXPECT_EQ(with_context("c", [] { return 7; }), 7);
}

TEST(Error, CheckMacrosThrowOnlyOnFalse) {
  EXPECT_NO_THROW(MMKT_CHECK(1 + 1 == 2, "never"));
  EXPECT_THROW(MMKT_CHECK_INPUT(false, "bad ", 1), InputError);
}

TEST(Log, ParseLevelRejectsUnknownNames) {
  EXPECT_EQ(log::parse_level("warn"), log::Level::kWarn);
  EXPECT_THROW(log::parse_level("verbose"), InputError);
}

TEST(Runtime, ThreadsAreSetAndDefaultToAllCores) {
  EXPECT_EQ(configure_threads(1), 1);
  const int all = configure_threads(0);
  EXPECT_EQ(all, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  configure_threads(1);
}

TEST(Runtime, DeviceParsing) {
  EXPECT_EQ(parse_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_THROW(parse_device("tpu"), InputError);
  if (!torch::cuda::is_available()) {
    try {
      parse_device("cuda");
      FAIL() << "no throw";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA"), std::string::npos) << e.what();
    }
  }
}

TEST(Runtime, SeedEverythingMakesTorchReproducible) {
  seed_everything(123);
  const auto a = torch::rand({4});
  const auto ga = global_rng()();
  seed_everything(123);
  const auto b = torch::rand({4});
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(global_rng()(), ga);
  seed_everything(124);
  EXPECT_FALSE(torch::equal(a, torch::rand({4})));
}

TEST(Runtime, DerivedSeedsDifferByStreamAndBase) {
  EXPECT_EQ(derive_seed(1, "shuffle"), derive_seed(1, "shuffle"));
  EXPECT_NE(derive_seed(1, "shuffle"), derive_seed(1, "binarize"));
  EXPECT_NE(derive_seed(1, "shuffle"), derive_seed(2, "shuffle"));
}

TEST(Runtime, BlasIsDetectedAfterAMatmul) {
  // libtorch loads libblas.so.3 as a dependency; after a matmul it must be mapped.
  torch::mm(torch::ones({8, 8}), torch::ones({8, 8}));
  const BlasInfo blas = detect_blas();
  EXPECT_FALSE(blas.path.empty());
  EXPECT_FALSE(blas.name.empty());
}

TEST(Files, AtomicWriteReplacesWholeFileAndLeavesNoTemp) {
  const auto dir = std::filesystem::temp_directory_path() / "mmkt_test_files";
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "sub" / "f.bin").string();
  io::write_file_atomic(path, "first");
  io::write_file_atomic(path, std::string("sec\0ond", 7));
  EXPECT_EQ(io::read_file(path), std::string("sec\0ond", 7));
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "sub")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
  EXPECT_THROW(io::read_file((dir / "missing").string()), InputError);
  std::filesystem::remove_all(dir);
}

TEST(CpuSetup, FlushDenormalsReachesEveryComputeThread) {
  const int threads_before = at::get_num_threads();
  configure_threads(2);
  torch::NoGradGuard no_grad;
  const float denormal = 1e-39f;                    // below FLT_MIN = 1.18e-38
  const auto x = torch::full({1 << 20}, denormal);  // large enough for parallel chunks
  // 256 products of 1e-21 * 1e-21 sum to 2.56e-40: a denormal result from BLAS.
  const auto a = torch::full({128, 256}, 1e-21f);
  const auto b = torch::full({256, 128}, 1e-21f);

  EXPECT_EQ(apply_flush_denormals(false), at::get_num_threads());
  EXPECT_FALSE(thread_flushes_denormals());
  EXPECT_GT((x * 1.5f).min().item<float>(), 0.f);  // denormals computed as such
  EXPECT_GT(torch::mm(a, b).min().item<float>(), 0.f);

  EXPECT_EQ(apply_flush_denormals(true), at::get_num_threads());
  EXPECT_TRUE(all_threads_flush_denormals());
  EXPECT_EQ((x * 1.5f).abs().max().item<float>(), 0.f);  // every chunk's thread flushed
  EXPECT_EQ(torch::mm(a, b).abs().max().item<float>(), 0.f);
  EXPECT_EQ((x + 1.0f).sub(1.0f).abs().max().item<float>(), 0.f);
  // Normal numbers are untouched.
  EXPECT_FLOAT_EQ((torch::full({4}, 1e-30f) * 2.0f)[0].item<float>(), 2e-30f);
  // A thread started now inherits the mode (the batcher's, Gloo's).
  bool inherited = false;
  std::thread([&] { inherited = thread_flushes_denormals(); }).join();
  EXPECT_TRUE(inherited);

  apply_flush_denormals(false);
  EXPECT_FALSE(all_threads_flush_denormals());
  configure_threads(threads_before);
}

TEST(CpuSetup, GenericOpenBlasCoresAreReplacedOnlyOnCapableCpus) {
  const mmkt::CpuFeatures avx512{true, true}, avx2{true, false}, old{false, false};
  EXPECT_EQ(openblas_core_to_force("Prescott", avx512), "SkylakeX");
  EXPECT_EQ(openblas_core_to_force("Prescott", avx2), "Haswell");
  EXPECT_EQ(openblas_core_to_force("Sandybridge", avx2), "Haswell");  // AVX only
  EXPECT_EQ(openblas_core_to_force("Prescott", old), "");
  EXPECT_EQ(openblas_core_to_force("Haswell", avx512), "SkylakeX");  // Zen 4 in 0.3.21
  EXPECT_EQ(openblas_core_to_force("Zen", avx512), "SkylakeX");
  EXPECT_EQ(openblas_core_to_force("Haswell", avx2), "");  // already the best kernels
  EXPECT_EQ(openblas_core_to_force("Zen", avx2), "");
  EXPECT_EQ(openblas_core_to_force("Cooperlake", avx512), "");
  EXPECT_EQ(openblas_core_to_force("SKYLAKEX", avx512), "");
  EXPECT_EQ(openblas_core_to_force("", avx512), "");  // not OpenBLAS
}
