// The run directory's guards, through the mmkt binary as a user meets them: a resume whose
// --set does not fit the checkpoint leaves config.json as it was; a fresh run refuses an old
// run's files instead of reusing its tokenizer and appending to its log; a second trainer of
// the same run is refused while the first holds the lock; the demo never deletes a trained run.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "mmkt/io/files.h"
#include "run_mmkt.h"

using mmkt::testing_support::run_mmkt;
namespace fs = std::filesystem;

namespace {

// A tiny MNIST run: 2 steps of 20 items with a 4-dimensional latent.
std::string tiny_config(const fs::path& dir) {
  const auto path = (dir / "tiny.json").string();
  std::ofstream(path) << R"({
    "data": {"dataset": "mnist", "validation": 0},
    "model": {"latent_dim": 4, "joint_hidden": [16]},
    "train": {"epochs": 1, "batch_size": 20, "max_steps_per_epoch": 2, "eval_batch_size": 2000,
              "progress_seconds": 1000}
  })";
  return path;
}

fs::path fresh(const std::string& name) {
  const auto dir = fs::path(::testing::TempDir()) / ("mmkt_run_dir_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string train_args(const fs::path& config, const fs::path& run) {
  return "--threads 1 train --config " + config.string() + " --run " + run.string();
}

}  // namespace

TEST(RunDir, ResumeWithAnIncompatibleSetLeavesConfigUntouched) {
  const auto dir = fresh("resume");
  const auto run = dir / "run";
  const auto first = run_mmkt(train_args(tiny_config(dir), run));
  ASSERT_EQ(first.code, 0) << first.output;
  const auto before = mmkt::io::read_file((run / "config.json").string());
  // The checkpoint holds a 4-dimensional latent: loading it under 9 fails.
  const auto bad = run_mmkt("--threads 1 train --run " + run.string() +
                            " --resume --set model.latent_dim=9 --set train.epochs=2");
  EXPECT_NE(bad.code, 0) << bad.output;
  EXPECT_EQ(mmkt::io::read_file((run / "config.json").string()), before)
      << "a failed resume rewrote config.json";
  // A fitting --set is kept once the resume has loaded.
  const auto good =
      run_mmkt("--threads 1 train --run " + run.string() + " --resume --set train.epochs=2");
  ASSERT_EQ(good.code, 0) << good.output;
  const auto after = nlohmann::json::parse(mmkt::io::read_file((run / "config.json").string()));
  EXPECT_EQ(after["train"]["epochs"], 2);
}

TEST(RunDir, FreshRunRefusesAnOldRunsFiles) {
  const auto dir = fresh("stale");
  const auto run = dir / "run";
  fs::create_directories(run);
  std::ofstream(run / "tokenizer.model") << "an old tokenizer";
  std::ofstream(run / "log.jsonl") << "{\"epoch\": 1}\n";
  const auto config = tiny_config(dir);
  const auto refused = run_mmkt(train_args(config, run));
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("already holds run files (log.jsonl, tokenizer.model)"),
            std::string::npos)
      << refused.output;
  EXPECT_EQ(mmkt::io::read_file((run / "log.jsonl").string()), "{\"epoch\": 1}\n");
  // --overwrite replaces them: the log then holds this run's one epoch only.
  const auto replaced = run_mmkt(train_args(config, run) + " --overwrite");
  ASSERT_EQ(replaced.code, 0) << replaced.output;
  std::ifstream log(run / "log.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) ++lines;
  EXPECT_EQ(lines, 1);
}

TEST(RunDir, SecondTrainerOfOneRunIsRefused) {
  const auto dir = fresh("lock");
  const auto run = dir / "run";
  fs::create_directories(run);
  {
    // This process plays the first trainer: it holds the run's lock.
    auto held = mmkt::io::FileLock::try_acquire((run / "train.lock").string());
    ASSERT_TRUE(held.has_value());
    const auto second = run_mmkt(train_args(tiny_config(dir), run));
    EXPECT_EQ(second.code, 2) << second.output;
    EXPECT_NE(second.output.find("another mmkt train (pid " + std::to_string(::getpid()) + ")"),
              std::string::npos)
        << second.output;
    EXPECT_FALSE(fs::exists(run / "config.json")) << "the refused trainer wrote into the run";
  }
  // Released (as at the first trainer's exit, even a crash): training goes ahead.
  const auto after = run_mmkt(train_args(tiny_config(dir), run));
  EXPECT_EQ(after.code, 0) << after.output;
  {
    // --overwrite waits for the lock too: refused while it is held, and nothing is deleted.
    auto held = mmkt::io::FileLock::try_acquire((run / "train.lock").string());
    ASSERT_TRUE(held.has_value());
    const auto overwrite = run_mmkt(train_args(tiny_config(dir), run) + " --overwrite");
    EXPECT_EQ(overwrite.code, 2) << overwrite.output;
    for (const auto* f : {"config.json", "checkpoint.pt", "log.jsonl", "summary.json"})
      EXPECT_TRUE(fs::exists(run / f)) << f << " deleted by a refused --overwrite";
  }
  EXPECT_EQ(run_mmkt(train_args(tiny_config(dir), run) + " --overwrite").code, 0);
  EXPECT_EQ(run_mmkt(train_args(tiny_config(dir), run) + " --overwrite --resume").code, 2);
}

TEST(RunDir, DemoRefusesToDeleteATrainedRun) {
  const auto dir = fresh("demo");
  const auto run = dir / "run";
  const auto trained = run_mmkt(train_args(tiny_config(dir), run));
  ASSERT_EQ(trained.code, 0) << trained.output;
  const auto demo = run_mmkt("--threads 1 demo --run " + run.string());
  EXPECT_EQ(demo.code, 2) << demo.output;
  EXPECT_NE(demo.output.find("is not an earlier demo's folder"), std::string::npos) << demo.output;
  EXPECT_TRUE(fs::exists(run / "checkpoint.pt"));
  EXPECT_TRUE(fs::exists(run / "config.json"));
}
