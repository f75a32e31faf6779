// Data-parallel training on c10d/Gloo: the collectives on a hand-checked example (two ranks as
// two threads of this process), the batch shards, and real multi-process runs of the mmkt
// binary: N workers equal one process, resume across world sizes, a dead or missing worker.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "mmkt/core/error.h"
#include "mmkt/data/batcher.h"
#include "mmkt/dist/communicator.h"
#include "mmkt/dist/launcher.h"
#include "mmkt/io/files.h"
#include "mmkt/train/trainer.h"
#include "run_mmkt.h"

#include <unistd.h>
#include <nlohmann/json.hpp>

using namespace mmkt;
using mmkt::testing_support::run_mmkt;
namespace fs = std::filesystem;

namespace {

// Runs `body(comm)` on ranks 0 and 1, each a thread with its own Gloo group on one HashStore.
template <typename Body>
void two_ranks(Body body) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::exception_ptr errors[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        dist::Communicator comm(store, r, 2, std::chrono::seconds(30));
        body(comm);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// A tiny shapes run: 64x64 conv image + GRU text (tokenizer shared from rank 0), 240 items in
// global batches of 41 (shards of 20/21, and a short last batch of 35 = 17 + 18), dynamic
// binarization so that the sharded uniform draws are exercised too.
std::string tiny_config(const fs::path& dir) {
  const auto path = dir / "tiny.json";
  std::ofstream(path) << R"({"seed": 3,
    "data": {"dataset": "shapes", "shapes_level": 3, "shapes_train": 240, "shapes_test": 40,
             "validation": 0, "workers": 1, "binarize": "dynamic"},
    "tokenizer": {"vocab_size": 60},
    "model": {"latent_dim": 6, "joint_hidden": [16], "modalities": [
      {"name": "image", "kind": "image", "encoder": "conv", "decoder": "conv",
       "likelihood": "bernoulli", "hidden": [16], "channels": 4},
      {"name": "text", "kind": "text", "encoder": "gru", "decoder": "gru",
       "likelihood": "categorical", "hidden": [16], "embedding_dim": 8, "rnn_hidden": 16,
       "max_length": 12}]},
    "train": {"epochs": 1, "batch_size": 41, "progress_seconds": 1000.0}})";
  return path.string();
}

// Largest |a - b| over the parameters of two runs' final checkpoints.
double max_parameter_difference(const std::string& a, const std::string& b) {
  auto ra = load_run(a, torch::kCPU);
  auto rb = load_run(b, torch::kCPU);
  const auto pa = ra.model->named_parameters();
  const auto pb = rb.model->named_parameters();
  EXPECT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (const auto& item : pa) {
    const auto& other = pb[item.key()];
    worst = std::max(worst, (item.value() - other).abs().max().item<double>());
  }
  return worst;
}

fs::path scratch(const std::string& name) {
  const auto dir =
      fs::temp_directory_path() / ("mmkt_dist_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST(Distributed, BucketedAllreduceSumsBroadcastsAndShares) {
  two_ranks([](dist::Communicator& comm) {
    const double r = comm.rank();
    // Three tensors of two dtypes; 16-byte buckets force several buckets.
    std::vector<torch::Tensor> t{torch::full({2, 3}, 1.0 + r),
                                 torch::arange(5, torch::kFloat32) * (r + 1),
                                 torch::full({3}, 10.0 * (r + 1), torch::kFloat64)};
    comm.allreduce_sum(t, 16);
    EXPECT_TRUE(t[0].equal(torch::full({2, 3}, 3.0)));               // 1 + 2
    EXPECT_TRUE(t[1].equal(torch::arange(5, torch::kFloat32) * 3));  // x (1 + 2)
    EXPECT_TRUE(t[2].equal(torch::full({3}, 30.0, torch::kFloat64)));
    auto b = torch::full({4}, r == 0 ? 7.0 : -1.0);
    comm.broadcast({b}, 0);
    EXPECT_TRUE(b.equal(torch::full({4}, 7.0)));
    if (comm.rank() == 0) comm.publish("greeting", std::string("hello\0world", 11));
    EXPECT_EQ(comm.fetch("greeting"), std::string("hello\0world", 11));
    comm.barrier();
    EXPECT_GT(comm.communication_seconds(), 0.0);
  });
}

TEST(Distributed, GradientAverageWeightsUnevenShards) {
  // Rank 0 holds 3 of 4 rows with mean-gradient g0 = 2, rank 1 one row with g1 = 6: the
  // global mean gradient is (3 * 2 + 1 * 6) / 4 = 3. A parameter rank 1 never used counts as 0.
  two_ranks([](dist::Communicator& comm) {
    auto w = torch::zeros({2}, torch::requires_grad());
    auto unused = torch::zeros({1}, torch::requires_grad());
    const double g = comm.rank() == 0 ? 2.0 : 6.0;
    (w * g).sum().backward();
    if (comm.rank() == 0) (unused * 4.0).sum().backward();
    const std::int64_t rows = comm.rank() == 0 ? 3 : 1;
    dist::average_gradients(comm, {w, unused}, rows, 4, 1 << 20);
    EXPECT_TRUE(w.grad().allclose(torch::full({2}, 3.0)));
    EXPECT_TRUE(unused.grad().allclose(torch::full({1}, 3.0)));  // 3/4 * 4 + 0
  });
}

TEST(Distributed, BatchShardsAreDisjointAndEqualTheWholeBatch) {
  const std::int64_t n = 23;
  auto images = torch::rand({n, 1, 3, 3});
  auto ds = data::tensor_dataset(images, torch::arange(n) % 5, {}, torch::Tensor());
  data::BatcherOptions whole;
  whole.batch_size = 10;
  whole.seed = 9;
  whole.binarize = data::Binarize::kDynamic;
  whole.workers = 0;
  data::Batcher all(ds, whole);
  for (std::int64_t k = 0; k < all.batches_per_epoch(); ++k) {
    const auto reference = all.make_batch(2, k);
    std::vector<torch::Tensor> idx, img;
    for (int r = 0; r < 3; ++r) {
      auto o = whole;
      o.shard_rank = r;
      o.shard_count = 3;
      data::Batcher shard(ds, o);
      const auto b = shard.make_batch(2, k);
      EXPECT_EQ(b.global_rows, reference.size());
      EXPECT_EQ(b.global_offset, r * reference.size() / 3);
      idx.push_back(b.indices);
      img.push_back(b.images);
    }
    // Last batch: 3 rows -> shards of 1, 1, 1; full batches: 3, 3, 4 rows.
    EXPECT_TRUE(torch::cat(idx).equal(reference.indices)) << "batch " << k;
    EXPECT_TRUE(torch::cat(img).equal(reference.images)) << "batch " << k;
  }
  auto bad = whole;
  bad.shard_rank = 3;
  bad.shard_count = 3;
  EXPECT_THROW(data::Batcher(ds, bad), InputError);
}

TEST(Distributed, EnvironmentIsValidated) {
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "5", 1);
  EXPECT_THROW(dist::env_from_environment(), InputError);
  ::setenv("RANK", "1", 1);
  ::setenv("MASTER_PORT", "70000", 1);
  EXPECT_THROW(dist::env_from_environment(), InputError);
  ::setenv("MASTER_PORT", "29511", 1);
  ::setenv("MASTER_ADDR", "10.0.0.7", 1);
  const auto env = dist::env_from_environment();
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.world_size, 2);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "10.0.0.7");
  EXPECT_EQ(env.master_port, 29511);
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_PORT", "MASTER_ADDR"}) ::unsetenv(v);
  EXPECT_FALSE(dist::env_from_environment().distributed());
  EXPECT_EQ(
      dist::without_option({"mmkt", "train", "--nproc", "2", "--run", "x", "--nproc=3"}, "--nproc"),
      (std::vector<std::string>{"mmkt", "train", "--run", "x"}));
}

TEST(Distributed, TwoWorkersEqualOneProcessAndResumeAcrossWorldSizes) {
  const auto dir = scratch("equal");
  const auto config = tiny_config(dir);
  // One process on one thread, or two workers of one thread each.
  const auto train = [&](bool two_workers, const std::string& run, int epochs,
                         bool resume = false) {
    const auto c = run_mmkt(std::string(two_workers ? "train --nproc 2 " : "--threads 1 train ") +
                            (resume ? "--resume" : "--config " + config) + " --run " +
                            (dir / run).string() + " --set train.epochs=" + std::to_string(epochs));
    EXPECT_EQ(c.code, 0) << c.output;
    return c;
  };
  // 2 epochs x 6 steps (5 batches of 41 and one of 35).
  train(false, "one", 2);
  const auto c = train(true, "two", 2);
  // Only rank 0 reports: one progress report, one summary.
  EXPECT_NE(c.output.find("data-parallel: 2 workers"), std::string::npos) << c.output;
  std::size_t reports = 0;
  for (auto at = c.output.find("run written to"); at != std::string::npos;
       at = c.output.find("run written to", at + 1)) {
    ++reports;
  }
  EXPECT_EQ(reports, 1u) << c.output;
  const auto summary =
      nlohmann::json::parse(io::read_file((dir / "two" / "summary.json").string()));
  EXPECT_EQ(summary.at("world_size"), 2);
  EXPECT_EQ(summary.at("steps"), 12);
  EXPECT_GT(summary.at("communication_seconds_per_step").get<double>(), 0.0);

  const double two_vs_one =
      max_parameter_difference((dir / "one").string(), (dir / "two").string());
  std::printf("max |parameter difference|, 2 workers vs 1 process after 12 steps: %.3g\n",
              two_vs_one);
  EXPECT_LT(two_vs_one, 1e-5);

  // Resume with another world size: 2 workers for epoch 1, then one process for epoch 2; and
  // the reverse. After epoch 1 the runs are far from the 2-epoch weights (the tolerance above
  // is meaningful), after epoch 2 they equal them.
  train(true, "two_then_one", 1);
  const double after_one_epoch =
      max_parameter_difference((dir / "one").string(), (dir / "two_then_one").string());
  std::printf("  vs the run after epoch 1 of 2: %.3g\n", after_one_epoch);
  EXPECT_GT(after_one_epoch, 1e-3);
  train(false, "two_then_one", 2, /*resume=*/true);
  train(false, "one_then_two", 1);
  train(true, "one_then_two", 2, /*resume=*/true);
  const double two_then_one =
      max_parameter_difference((dir / "one").string(), (dir / "two_then_one").string());
  const double one_then_two =
      max_parameter_difference((dir / "one").string(), (dir / "one_then_two").string());
  std::printf("  resumed 2 -> 1 workers: %.3g, 1 -> 2 workers: %.3g\n", two_then_one, one_then_two);
  EXPECT_LT(two_then_one, 1e-5);
  EXPECT_LT(one_then_two, 1e-5);
  fs::remove_all(dir);
}

TEST(Distributed, TwoWorkersEqualOneProcessWithTriplets) {
  // Triplet terms couple the items of a batch: every worker forms them over the whole global
  // batch (models/batch_peers.h). Before, each worker formed them within its shard and drew a
  // shard-sized amount of random negatives from the shared generator, so the workers' noise
  // fell out of step and 2 workers no longer computed what one process computes.
  const auto dir = scratch("triplets");
  const auto config = tiny_config(dir);
  for (const std::string kind : {"soft", "contrastive"}) {
    const std::string sets =
        " --set train.epochs=1 --set triplet.weight=2 --set triplet.kind=" + kind;
    const auto one = run_mmkt("--threads 1 train --config " + config + " --run " +
                              (dir / ("one_" + kind)).string() + sets);
    ASSERT_EQ(one.code, 0) << one.output;
    const auto two = run_mmkt("train --nproc 2 --config " + config + " --run " +
                              (dir / ("two_" + kind)).string() + sets);
    ASSERT_EQ(two.code, 0) << two.output;
    const double difference = max_parameter_difference((dir / ("one_" + kind)).string(),
                                                       (dir / ("two_" + kind)).string());
    std::printf(
        "triplet.kind=%s: max |parameter difference|, 2 workers vs 1 process after 6 steps: %.3g\n",
        kind.c_str(), difference);
    EXPECT_LT(difference, 1e-5) << kind;
  }
  fs::remove_all(dir);
}

TEST(Distributed, UnusedParameterKeepsNoGradientOnEveryRank) {
  // A parameter no rank used keeps an undefined gradient (Adam skips it, as in one process);
  // one that some rank used gets the weighted sum (zeros from the others).
  two_ranks([](dist::Communicator& comm) {
    auto used = torch::zeros({2}, torch::requires_grad());
    auto used_by_one = torch::zeros({1}, torch::requires_grad());
    auto unused = torch::zeros({1}, torch::requires_grad());
    auto loss = used.sum() * 2.0;
    if (comm.rank() == 0) loss = loss + used_by_one.sum() * 4.0;
    loss.backward();
    dist::average_gradients(comm, {used, used_by_one, unused}, 1, 2, 1 << 20);
    EXPECT_TRUE(torch::allclose(used.grad(), torch::full({2}, 2.0)));
    ASSERT_TRUE(used_by_one.grad().defined());
    EXPECT_NEAR(used_by_one.grad().item<double>(), 2.0, 1e-6);
    EXPECT_FALSE(unused.grad().defined()) << "rank " << comm.rank();
  });
}

TEST(Distributed, DeadWorkerStopsTheOthersWithAClearError) {
  const auto dir = scratch("dead");
  const auto config = tiny_config(dir);
  // Rank 1 kills itself (SIGKILL) after step 2 of epoch 1; rank 0 must stop by itself, with
  // an error naming the failed allreduce, long before the launcher's 30 s grace or the
  // 120 s collective timeout; no checkpoint may appear.
  const auto c = run_mmkt(
      "train --nproc 2 --dist-timeout 120 --config " + config + " --run " + (dir / "run").string(),
      "MMKT_FAULT_KILL=1:2");
  EXPECT_NE(c.code, 0) << c.output;
  EXPECT_LT(c.seconds, 25.0) << c.output;
  EXPECT_NE(c.output.find("worker rank 1"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("killed by signal 9"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("rank 0 of 2: the gradient allreduce failed"), std::string::npos)
      << c.output;
  EXPECT_FALSE(fs::exists(dir / "run" / "checkpoint.pt"));
  fs::remove_all(dir);
}

TEST(Distributed, MissingWorkerTimesOut) {
  const auto dir = scratch("missing");
  const auto config = tiny_config(dir);
  // Rank 0 of 2 started alone: it must give up after --dist-timeout with a clear message.
  const auto port = std::to_string(dist::free_local_port());
  const auto c =
      run_mmkt("train --dist-timeout 2 --config " + config + " --run " + (dir / "run").string(),
               "WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port);
  EXPECT_NE(c.code, 0) << c.output;
  EXPECT_LT(c.seconds, 30.0) << c.output;
  EXPECT_NE(c.output.find("could not join the group"), std::string::npos) << c.output;
  // --nproc inside a launched worker is refused.
  const auto both =
      run_mmkt("train --nproc 2 --config " + config + " --run " + (dir / "run2").string(),
               "WORLD_SIZE=2 RANK=1 MASTER_PORT=" + port);
  EXPECT_NE(both.code, 0);
  EXPECT_NE(both.output.find("--nproc and a WORLD_SIZE"), std::string::npos) << both.output;
  fs::remove_all(dir);
}
