#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "io/files.h"

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
