// The deep weight prior (transfer/kernel_vae.h, transfer/dwp.h): the kernel VAE's ELBO terms
// against their closed forms, shapes of sampled kernels, the DWP bound's value and its
// gradient reaching a student's kernels (and not the frozen prior), the conv net, training
// of the kernel VAE, and the experiment end to end.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/io/files.h"
#include "mmkt/transfer/dwp.h"
#include "mmkt/transfer/experiment.h"
#include "mmkt/transfer/kernel_vae.h"

using namespace mmkt;
using namespace mmkt::transfer;

namespace {

// A 3x3-kernel VAE whose output layers ignore their inputs (zero weights), so that
//   r(z|w) = N([0.5, -1], diag[0.25, 1])   and   p(w|z) = N(0.1 * [0..8], 0.04 I)
// whatever w and z are.
KernelVae fixed_vae() {
  torch::manual_seed(1);
  KernelVae vae(3, 2, 4);
  torch::NoGradGuard no_grad;
  vae->encoder_out->weight.zero_();
  vae->encoder_out->bias.copy_(torch::tensor({0.5f, -1.0f, std::log(0.25f), 0.0f}));
  vae->decoder_out->weight.zero_();
  auto bias = torch::full({18}, std::log(0.04f));
  bias.narrow(0, 0, 9).copy_(0.1f * torch::arange(9, torch::kFloat32));
  vae->decoder_out->bias.copy_(bias);
  return vae;
}

// log N(w; 0.1 * [0..8], 0.04 I) summed over the 9 entries, by hand.
double fixed_log_likelihood(const torch::Tensor& w) {
  double total = 0;
  for (int i = 0; i < 9; ++i) {
    const double d = w[i].item<double>() - 0.1 * i;
    total += -0.5 * (std::log(2 * M_PI * 0.04) + d * d / 0.04);
  }
  return total;
}

}  // namespace

TEST(KernelVae, ElboTermsMatchClosedForms) {
  auto vae = fixed_vae();
  const auto w = torch::tensor({{0.0f, 0.2f, 0.1f, 0.4f, 0.3f, 0.5f, 0.7f, 0.6f, 0.9f},
                                {1.0f, -1.0f, 0.0f, 0.5f, 0.5f, 0.5f, 0.0f, 0.0f, 0.0f}});
  // KL(N([0.5,-1], diag[0.25,1]) || N(0,I)) = 0.5 [(0.25 + 0.25 - 1 - ln 0.25) + (1 + 1 - 1 - 0)]
  const double kl = 0.5 * ((0.25 + 0.25 - 1 - std::log(0.25)) + 1.0);
  for (bool sample : {true, false}) {
    const auto e = vae->elbo(w, sample);
    ASSERT_EQ(e.elbo.sizes(), (std::vector<std::int64_t>{2}));
    for (int r = 0; r < 2; ++r) {
      EXPECT_NEAR(e.kl[r].item<double>(), kl, 1e-5);
      EXPECT_NEAR(e.reconstruction[r].item<double>(), fixed_log_likelihood(w[r]), 1e-4);
      EXPECT_NEAR(e.elbo[r].item<double>(), fixed_log_likelihood(w[r]) - kl, 1e-4);
    }
  }
}

TEST(KernelVae, SampledKernelShapes) {
  torch::manual_seed(2);
  KernelVae vae(5, 4, 16);
  EXPECT_EQ(vae->sample(7).sizes(), (std::vector<std::int64_t>{7, 25}));
  const auto conv = torch::randn({4, 3, 5, 5});
  const auto rows = kernel_rows(conv);
  EXPECT_EQ(rows.sizes(), (std::vector<std::int64_t>{12, 25}));
  EXPECT_TRUE(torch::equal(rows[5].view({5, 5}), conv[1][2]));  // row = out * in_channels + in
  EXPECT_THROW(kernel_rows(torch::zeros({4, 3, 5, 3})), Error);
  // Drawn into a conv weight, the kernels fill it exactly.
  EXPECT_EQ(vae->sample(12).view(conv.sizes()).sizes(), conv.sizes());
}

TEST(KernelVae, PriorGradientReachesTheStudentKernelsOnly) {
  auto vae = fixed_vae();
  for (auto& p : vae->parameters()) p.requires_grad_(false);
  torch::manual_seed(4);
  auto mean = torch::randn({2, 1, 3, 3}).mul_(0.3).requires_grad_(true);
  auto log_sigma = torch::full({2, 1, 3, 3}, -2.0).requires_grad_(true);
  const auto eps = torch::randn({2, 1, 3, 3});
  const auto w = mean + log_sigma.exp() * eps;
  const auto bound = dwp_kl_bound(*vae, w, log_sigma);
  // -H[q] - sum_kernels ELBO(w): H = 18 (ln s + 1/2 ln 2 pi e) with ln s = -2.
  const double entropy = 18 * (-2.0 + 0.5 * std::log(2 * M_PI * std::exp(1.0)));
  const double kl = 0.5 * ((0.25 + 0.25 - 1 - std::log(0.25)) + 1.0);
  const auto rows = w.detach().view({2, 9});
  const double elbo = fixed_log_likelihood(rows[0]) + fixed_log_likelihood(rows[1]) - 2 * kl;
  EXPECT_NEAR(bound.item<double>(), -entropy - elbo, 1e-3);
  bound.backward();
  // d/dm of -log N(w; mu, 0.04) = (w - mu) / 0.04 (the encoder ignores w here).
  const auto mu = (0.1 * torch::arange(9, torch::kFloat32)).view({1, 1, 3, 3});
  const auto expected = (w.detach() - mu) / 0.04;
  EXPECT_LT((mean.grad() - expected).abs().max().item<double>(), 1e-3);
  ASSERT_TRUE(log_sigma.grad().defined());
  EXPECT_GT(log_sigma.grad().abs().sum().item<double>(), 0.0);
  for (const auto& p : vae->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(KernelVae, TrainingRaisesTheElboOfItsKernels) {
  torch::manual_seed(5);
  // Kernels around two patterns (a horizontal and a vertical edge), the structure a VAE finds.
  const auto h = torch::tensor({1.f, 1.f, 1.f, 0.f, 0.f, 0.f, -1.f, -1.f, -1.f});
  const auto v = torch::tensor({1.f, 0.f, -1.f, 1.f, 0.f, -1.f, 1.f, 0.f, -1.f});
  const auto pick = torch::randint(0, 2, {400, 1}).to(torch::kFloat32);
  const auto scale = torch::rand({400, 1}) * 0.3;
  const auto kernels = (pick * h + (1 - pick) * v) * scale + 0.02 * torch::randn({400, 9});
  KernelVae vae(3, 2, 32);
  const double before = vae->elbo(kernels, false).elbo.mean().item<double>();
  KernelVaeTraining t;
  t.steps = 600;
  t.batch_size = 100;
  t.lr = 3e-3;
  const auto stats = train_kernel_vae(vae, kernels, t);
  EXPECT_GT(stats["train_elbo"].get<double>(), before + 10.0) << before;
  EXPECT_GT(stats["train_elbo"].get<double>(), 0.0);  // a density far narrower than N(0, 1)
}

TEST(ConvNet, ShapesAndWeightOverride) {
  torch::manual_seed(6);
  ConvNetSpec spec;
  spec.channels = {4, 8};
  spec.kernel = 3;
  ConvNet net(spec);
  const auto x = torch::rand({5, 1, 28, 28});
  const auto y = net->forward(x);
  EXPECT_EQ(y.sizes(), (std::vector<std::int64_t>{5, 10}));
  std::vector<torch::Tensor> other;
  for (const auto& w : net->conv_weights()) other.push_back(torch::randn_like(w));
  const auto overridden = net->forward(x, other);
  {
    torch::NoGradGuard no_grad;
    auto ws = net->conv_weights();
    for (std::size_t l = 0; l < ws.size(); ++l) ws[l].copy_(other[l]);
  }
  EXPECT_TRUE(torch::allclose(net->forward(x), overridden));
  spec.kernel = 4;
  EXPECT_THROW(ConvNet{spec}, InputError);
}

TEST(Dwp, NormalKlMatchesItsClosedForm) {
  // KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1) / 2 - log s per element:
  // m = 1, s = 1: 0.5; m = 0, s = e: (e^2 - 1) / 2 - 1; m = -2, s = e^-1: (e^-2 + 3) / 2 + 1.
  const auto mean = torch::tensor({1.0, 0.0, -2.0}, torch::kFloat64);
  const auto log_sigma = torch::tensor({0.0, 1.0, -1.0}, torch::kFloat64);
  const double e = std::exp(1.0);
  const double expected = 0.5 + ((e * e - 1) / 2 - 1) + ((1 / (e * e) + 3) / 2 + 1);
  EXPECT_NEAR(normal_kl(mean, log_sigma).item<double>(), expected, 1e-12);
  // Zero, with zero gradient, at the prior itself.
  const auto m = torch::zeros({4, 5}, torch::kFloat64).requires_grad_(true);
  const auto ls = torch::zeros({4, 5}, torch::kFloat64).requires_grad_(true);
  const auto kl = normal_kl(m, ls);
  kl.backward();
  EXPECT_NEAR(kl.item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(m.grad().abs().max().item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(ls.grad().abs().max().item<double>(), 0.0, 1e-12);
}

TEST(Dwp, ConfigErrors) {
  EXPECT_NO_THROW(dwp_options_from_json(dwp_options_to_json({}), "x.json"));
  EXPECT_THROW(dwp_options_from_json({{"kernal", 5}}, "x.json"), InputError);
  EXPECT_THROW(dwp_options_from_json({{"kernel", 4}}, "x.json"), InputError);
  EXPECT_THROW(dwp_options_from_json({{"methods", {"dwp-magic"}}}, "x.json"), InputError);
  EXPECT_THROW(dwp_options_from_json({{"teacher_channels", {32}}}, "x.json"), InputError);
  EXPECT_THROW(dwp_options_from_json({{"curve_items", 20000}}, "x.json"), InputError);
  EXPECT_THROW(dwp_options_from_json({{"dataset", "shapes:6"}}, "x.json"), InputError);
  EXPECT_THROW(dwp_options_from_json({{"dataset", "shapes:3"}}, "x.json"), InputError);  // mnist source
  EXPECT_NO_THROW(
      dwp_options_from_json({{"dataset", "shapes:3"}, {"source_dataset", "shapes:1"}}, "x.json"));
  EXPECT_EQ(shapes_dataset_level("shapes:5"), 5);
  EXPECT_EQ(shapes_dataset_level("shapes:0"), 0);
  EXPECT_EQ(shapes_dataset_level("shapes:12"), 0);
  EXPECT_EQ(shapes_dataset_level("fashion-mnist"), 0);
}

// The smallest experiment that exercises every stage: one source network, a few steps each.
static DwpOptions tiny_dwp_options(const std::filesystem::path& dir) {
  DwpOptions o;
  o.channels = {4, 8};
  o.teacher_channels = {8, 8};
  o.source_networks = 1;
  o.source_steps = 5;
  o.teacher_steps = 5;
  o.vae_steps = 20;
  o.validation_per_class = 3;
  o.seeds = {0};
  o.out_dir = dir.string();
  o.progress_seconds = 1e9;
  return o;
}

static nlohmann::json run_tiny_dwp(const DwpOptions& o) {
  RuntimeOptions ro;
  ro.threads = 1;
  ro.log_level = "warn";
  return run_dwp(o, init_runtime(ro));
}

// Shapes as the DWP task: 5 shape classes on 3-channel images, the prior from level-1 networks.
// Needs no installed data (shapes are generated).
TEST(Dwp, TinyShapesExperiment) {
  const auto dir = std::filesystem::temp_directory_path() / "mmkt_test_dwp_shapes";
  std::filesystem::remove_all(dir);
  auto o = tiny_dwp_options(dir);
  o.source_dataset = "shapes:1";
  o.dataset = "shapes:3";
  o.shapes_image_size = 16;
  o.shapes_train_items = 200;
  o.per_class = {4};
  o.test_items = 60;
  o.curve_items = 60;
  o.steps = 6;
  o.eval_every = 3;
  o.batch_size = 8;
  o.kl_weights = {0.1};
  o.methods = {"random", "dwp-init", "dwp-prior", "dwp-distill"};
  const auto result = run_tiny_dwp(o);
  ASSERT_EQ(result["rows"].size(), 4u);
  // 5 classes: the student's test accuracy is a multiple of 1/60 in [0, 1], and the priors
  // were fitted to 3-channel first-layer kernels: 4 x 3 slices of 5x5 per network.
  for (const auto& r : result["rows"]) {
    const double t = r["test"].get<double>();
    EXPECT_GE(t, 0.0);
    EXPECT_LE(t, 1.0);
    EXPECT_NEAR(t * 60, std::round(t * 60), 1e-6) << r.dump();
  }
  ASSERT_EQ(result["priors"].size(), 4u);
  EXPECT_EQ(result["priors"][0]["kernels"].get<std::int64_t>(), 4 * 3);
  EXPECT_EQ(result["config"]["dataset"], "shapes:3");
  std::filesystem::remove_all(dir);
}

TEST(Dwp, TinyExperimentEndToEnd) {
  auto installed = [](const std::string& dataset) {
    const auto file = data::default_data_root(dataset) + "/t10k-images-idx3-ubyte";
    return io::file_exists(file) || io::file_exists(file + ".gz");
  };
  const bool have = installed("mnist") && installed("fashion-mnist");
  if (!have) GTEST_SKIP() << "MNIST or Fashion-MNIST not installed";
  const auto dir = std::filesystem::temp_directory_path() / "mmkt_test_dwp";
  std::filesystem::remove_all(dir);
  auto o = tiny_dwp_options(dir);
  o.per_class = {3};
  o.test_items = 100;
  o.curve_items = 50;
  o.steps = 10;
  o.eval_every = 5;
  o.batch_size = 16;
  const auto result = run_tiny_dwp(o);
  ASSERT_EQ(result["rows"].size(), 6u);
  EXPECT_EQ(result["curves"].size(), 18u);  // steps 0, 5, 10 for each method
  EXPECT_EQ(result["priors"].size(), 4u);   // two layers x (source, teacher)
  ASSERT_EQ(result["kl_grid"].size(), 9u);  // (dwp-prior, dwp-distill, vi-normal) x 3 betas
  for (const auto& r : result["rows"]) {
    if (!r.contains("kl_weight")) continue;
    double best = -1, beta = 0;  // the first beta of the grid wins ties, as in run_dwp
    for (const auto& g : result["kl_grid"]) {
      if (g["method"] == r["method"] && g["validation"].get<double>() > best) {
        best = g["validation"].get<double>();
        beta = g["kl_weight"].get<double>();
      }
    }
    EXPECT_EQ(r["kl_weight"].get<double>(), beta) << r.dump();
    EXPECT_EQ(r["validation"].get<double>(), best);
  }
  for (const auto& r : result["rows"]) {
    EXPECT_NEAR(r["test"].get<double>() * 100, std::round(r["test"].get<double>() * 100), 1e-6);
  }
  const auto md = io::read_file((dir / "result.md").string());
  EXPECT_NE(md.find("| 3 |"), std::string::npos) << md;
  EXPECT_TRUE(io::file_exists((dir / "curves.tsv").string()));
  std::filesystem::remove_all(dir);
}
