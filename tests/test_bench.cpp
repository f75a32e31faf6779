// The benchmark's arithmetic (median, the FLOP count of a step, the report table) and the
// fused Adam against torch::optim::Adam, step by step and through a checkpoint.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "mmkt/bench/bench.h"
#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/models/multimodal_vae.h"
#include "mmkt/optim/fused_adam.h"
#include "mmkt/run/config.h"

using namespace mmkt;

TEST(Bench, MedianOfOddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(bench::median({3, 1, 2}), 2.0);
  EXPECT_DOUBLE_EQ(bench::median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(bench::median({7}), 7.0);
  EXPECT_THROW(bench::median({}), Error);
}

TEST(Bench, LinearMultiplyAddsOfTheMnistPaperModel) {
  torch::nn::Sequential small(torch::nn::Linear(3, 4), torch::nn::ReLU(), torch::nn::Linear(4, 2));
  EXPECT_EQ(bench::linear_multiply_adds(*small), 3 * 4 + 4 * 2);

  // JMVAE, MNIST paper setting: image 784-512-512, label 10-512-512, latent 64, joint 1024-512.
  models::ModelConfig c;
  c.type = "jmvae";
  c.latent_dim = 64;
  c.joint_hidden = {512};
  models::ModalityConfig image;
  image.name = "image";
  image.kind = models::ModalityKind::kImage;
  image.encoder = image.decoder = "mlp";
  image.likelihood = "bernoulli";
  image.hidden = {512, 512};
  image.shape = {1, 28, 28};
  models::ModalityConfig label;
  label.name = "label";
  label.kind = models::ModalityKind::kLabel;
  label.encoder = label.decoder = "mlp";
  label.likelihood = "categorical";
  label.hidden = {512, 512};
  label.classes = 10;
  c.modalities = {image, label};
  models::MultimodalVae model(c);
  // enc_image 784*512 + 512*512 + 512*128 = 729,088; enc_label 10*512 + 512*512 + 512*128 =
  // 332,800; joint_image 663,552; joint_label 267,264; joint_head 1024*512 + 512*128 = 589,824;
  // dec_image 64*512 + 512*512 + 512*784 = 696,320; dec_label 64*512 + 512*512 + 512*10 = 300,032.
  EXPECT_EQ(bench::linear_multiply_adds(*model), 3578880);
}

TEST(Bench, MarkdownTableFromAReport) {
  nlohmann::json r;
  r["machine"] = {{"threads", 2},
                  {"blas", "OpenBLAS"},
                  {"device", "cpu"},
                  {"hardware_threads", 2},
                  {"repeats", 5}};
  r["matmul_1024_gflops"] = 150.04;
  r["train_mnist"] = {{"median", 4321.4},
                      {"unit", "samples/s"},
                      {"gflops", 92.8},
                      {"share_of_matmul_peak", 0.6185}};
  r["pipeline_mnist"] = {{"median", 90000.0}, {"unit", "samples/s"}, {"ratio_to_training", 20.83}};
  const auto md = bench::bench_markdown(r);
  EXPECT_NE(md.find("| matmul 1024 x 1024 x 1024 (peak) | 150.0 GFLOP/s |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| 4321 samples/s (92.8 GFLOP/s = 62% of the matmul peak) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| 90000 samples/s (21x the training step's rate) |"), std::string::npos) << md;
  EXPECT_EQ(md.find("query"), std::string::npos);  // absent figures are left out
  r["train_mnist_gemm_floor"] = {
      {"median", 12.5}, {"unit", "ms"}, {"step_ms", 25.0}, {"step_over_floor", 2.0}};
  r["train_mnist_trained_denormals_kept"] = {
      {"median", 1500.0}, {"unit", "samples/s"}, {"step_over_floor", 5.33}};
  const auto md2 = bench::bench_markdown(r);
  EXPECT_NE(md2.find("(GEMM floor) | 12.50 ms (the step: 25.00 ms = 2.00x the floor) |"),
            std::string::npos)
      << md2;
  EXPECT_NE(md2.find("denormals kept | 1500 samples/s (5.33x the GEMM floor) |"), std::string::npos)
      << md2;
}

TEST(Bench, TrainingGemmsOfAnMlpSkipTheDataGradient) {
  // 784 -> 512 reads the data (no grad_x); 512 -> 10 does not.
  torch::nn::Sequential net(torch::nn::Linear(784, 512), torch::nn::ReLU(),
                            torch::nn::Linear(512, 10));
  const auto gemms = bench::training_gemms(*net, 100, {784});
  ASSERT_EQ(gemms.size(), 5u);
  std::int64_t multiply_adds = 0;
  for (const auto& g : gemms) multiply_adds += g.m * g.k * g.n;
  EXPECT_EQ(multiply_adds, 100 * (784 * 512 * 2 + 512 * 10 * 3));
  EXPECT_EQ(gemms[0].m, 100);  // forward: x [100,784] W^T [784,512] + b
  EXPECT_EQ(gemms[0].k, 784);
  EXPECT_EQ(gemms[0].n, 512);
  EXPECT_TRUE(gemms[0].transposed_b && gemms[0].bias);
  EXPECT_EQ(gemms[1].m, 512);  // grad_W = g^T [512,100] x [100,784]
  EXPECT_EQ(gemms[1].k, 100);
  EXPECT_TRUE(gemms[1].transposed_a);
  EXPECT_EQ(gemms[4].m, 100);  // grad_x of the second layer = g [100,10] W [10,512]
  EXPECT_EQ(gemms[4].k, 10);
  EXPECT_EQ(gemms[4].n, 512);
  // Without data widths every layer also computes grad_x: the usual 6 x batch x sum(in x out).
  const auto all = bench::training_gemms(*net, 100, {});
  multiply_adds = 0;
  for (const auto& g : all) multiply_adds += g.m * g.k * g.n;
  EXPECT_EQ(multiply_adds, 3 * 100 * bench::linear_multiply_adds(*net));
}

TEST(Bench, UnknownPartIsAnInputError) {
  bench::BenchOptions o;
  o.parts = {"train", "warp-drive"};
  EXPECT_THROW(bench::run_benchmarks(o, Runtime{}), InputError);
}

TEST(Bench, DataPipelineMakesTrainingBatchesOfABuiltInDataset) {
  // `mmkt data bench`: the batches training would make (MNIST: the seen classes, binarized).
  RuntimeOptions ro;
  ro.threads = 1;
  bench::PipelineOptions o;
  o.dataset = "mnist";
  o.batch_size = 50;
  o.batches = 7;
  o.workers = 0;
  const auto report = bench::time_data_pipeline(o, init_runtime(ro));
  EXPECT_EQ(report["dataset"], "mnist-seen");
  EXPECT_EQ(report["batches"], 7);
  EXPECT_GT(report["samples_per_second"].get<double>(), 0.0);
  EXPECT_NEAR(
      report["samples_per_second"].get<double>() / report["batches_per_second"].get<double>(), 50.0,
      1e-6);
  o.dataset = "cifar";
  EXPECT_THROW(bench::time_data_pipeline(o, init_runtime(ro)), InputError);
}

TEST(FusedAdam, MatchesTorchAdamStepByStepAndThroughACheckpoint) {
  torch::manual_seed(5);
  // Shapes above and below the parallel grain, plus a float64 tensor (the fallback path).
  std::vector<torch::Tensor> a{torch::randn({300, 200}), torch::randn({7}),
                               torch::randn({3, 3}, torch::kFloat64)};
  std::vector<torch::Tensor> b;
  for (auto& t : a) {
    t.set_requires_grad(true);
    b.push_back(t.detach().clone().set_requires_grad(true));
  }
  const auto options = torch::optim::AdamOptions(2e-3).betas({0.85, 0.99}).eps(1e-7);
  optim::FusedAdam fused(a, options);
  torch::optim::Adam reference(b, options);
  const auto step_both = [&](int steps) {
    for (int s = 0; s < steps; ++s) {
      for (std::size_t i = 0; i < a.size(); ++i) {
        const auto g = torch::randn_like(a[i]) * (s + 1);
        a[i].mutable_grad() = g.clone();
        b[i].mutable_grad() = g.clone();
      }
      fused.step();
      reference.step();
    }
  };
  const auto max_difference = [&] {
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
    }
    return worst;
  };
  const auto initial = a[0].detach().clone();
  step_both(6);
  EXPECT_LT(max_difference(), 1e-6);
  EXPECT_GT((a[0] - initial).abs().max().item<double>(), 1e-3);  // the steps did move it

  // Its state is Adam's state: save the fused optimizer, load it into a torch Adam, go on.
  std::stringstream stream;
  {
    torch::serialize::OutputArchive archive;
    fused.save(archive);
    archive.save_to(stream);
  }
  std::vector<torch::Tensor> c;
  for (auto& t : a) c.push_back(t.detach().clone().set_requires_grad(true));
  torch::optim::Adam restored(c, options);
  {
    torch::serialize::InputArchive archive;
    archive.load_from(stream);
    restored.load(archive);
  }
  for (int s = 0; s < 3; ++s) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto g = torch::randn_like(a[i]);
      a[i].mutable_grad() = g.clone();
      c[i].mutable_grad() = g.clone();
    }
    fused.step();
    restored.step();
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_LT((a[i] - c[i]).abs().max().item<double>(), 1e-6) << "tensor " << i;
  }
}
