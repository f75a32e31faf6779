// JMVAE / MVAE / MMVAE: closed forms, gradients, one training step, checkpoints, resume,
// configuration errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/io/checkpoint.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/models/gaussian.h"
#include "mmkt/models/multimodal_vae.h"
#include "mmkt/run/config.h"
#include "mmkt/run/datasets.h"
#include "mmkt/run/run_data.h"
#include "mmkt/train/trainer.h"
#include "tiny_runs.h"

using namespace mmkt;
using models::Gaussian;
namespace fs = std::filesystem;

namespace {

models::ModelConfig tiny_model(const std::string& type) {
  return testing_support::tiny_image_label_model(type);
}

models::Inputs tiny_inputs() {
  torch::manual_seed(5);
  models::Inputs in;
  in["image"].data = torch::bernoulli(torch::full({12, 1, 6, 6}, 0.4));
  in["label"].data = torch::arange(12) % 3;
  return in;
}

}  // namespace

TEST(Gaussians, KlAgainstClosedForm) {
  // 1-D: KL(N(1, 2^2) || N(0, 1)) = 0.5 (4 + 1 - 1 - log 4) = 2 - log 2
  const Gaussian q{torch::tensor({{1.0}}), torch::tensor({{std::log(4.0)}})};
  EXPECT_NEAR(models::kl_standard_normal(q).item<double>(), 2.0 - std::log(2.0), 1e-6);
  // KL(N(0,1) || N(1, e^2)) = log e + (1 + 1) / (2 e^2) - 0.5
  const Gaussian a{torch::tensor({{0.0}}), torch::tensor({{0.0}})};
  const Gaussian b{torch::tensor({{1.0}}), torch::tensor({{2.0}})};
  EXPECT_NEAR(models::kl_divergence(a, b).item<double>(), 1.0 + 2.0 / (2 * std::exp(2.0)) - 0.5,
              1e-6);
  EXPECT_NEAR(models::kl_divergence(a, a).item<double>(), 0.0, 1e-7);
  // symmetric, summed over dimensions
  const Gaussian a2{torch::tensor({{0.0, 0.0}}), torch::tensor({{0.0, 0.0}})};
  const Gaussian b2{torch::tensor({{1.0, 1.0}}), torch::tensor({{2.0, 2.0}})};
  const double expected =
      0.5 * (models::kl_divergence(a2, b2) + models::kl_divergence(b2, a2)).item<double>();
  EXPECT_NEAR(models::symmetric_kl(a2, b2).item<double>(), expected, 1e-6);
  EXPECT_NEAR(models::symmetric_kl(a2, b2).item<double>(),
              models::symmetric_kl(b2, a2).item<double>(), 1e-6);
}

TEST(Gaussians, LogProbAndProductOfExperts) {
  const Gaussian q{torch::tensor({{0.5}}), torch::tensor({{std::log(0.25)}})};
  // log N(1 | 0.5, 0.25) = -0.5 log(2 pi 0.25) - 0.25 / (2 * 0.25)
  EXPECT_NEAR(q.log_prob(torch::tensor({{1.0}})).item<double>(),
              -0.5 * std::log(2 * M_PI * 0.25) - 0.5, 1e-6);
  // PoE of N(1, 1) and N(3, 1) with the N(0,1) prior: precision 3, mean (1 + 3) / 3
  const Gaussian e1{torch::tensor({{1.0}}), torch::tensor({{0.0}})};
  const Gaussian e2{torch::tensor({{3.0}}), torch::tensor({{0.0}})};
  const auto p = models::product_of_experts({e1, e2}, true);
  EXPECT_NEAR(p.mu.item<double>(), 4.0 / 3.0, 1e-6);
  EXPECT_NEAR(p.logvar.item<double>(), -std::log(3.0), 1e-6);
  const auto p2 = models::product_of_experts({e1, e2}, false);
  EXPECT_NEAR(p2.mu.item<double>(), 2.0, 1e-6);
}

TEST(Triplet, SoftMarginOnHandWorkedDistances) {
  // 1-D unit-variance posteriors: symmetric KL = (mu_a - mu_b)^2 / 2.
  const Gaussian a{torch::tensor({{0.0}, {10.0}}), torch::zeros({2, 1})};
  const Gaussian b{torch::tensor({{1.0}, {10.0}}), torch::zeros({2, 1})};
  const auto labels = torch::tensor({0, 1}, torch::kInt64);
  models::TripletConfig c;
  c.kind = "soft";
  // anchor a0: D(a0,b0) = 0.5, D(a0,b1) = 50 -> softplus(-49.5); anchor a1: D(a1,b1) = 0,
  // D(a1,b0) = 40.5 -> softplus(-40.5); the b-anchored direction is symmetric here.
  const double forward = 0.5 * (std::log1p(std::exp(-49.5)) + std::log1p(std::exp(-40.5)));
  const double backward =
      0.5 * (std::log1p(std::exp(0.5 - 40.5)) + std::log1p(std::exp(0.0 - 50.0)));
  EXPECT_NEAR(models::triplet_loss(a, b, labels, c).item<double>(), 0.5 * (forward + backward),
              1e-9);
  // Hinge on means with margin 1: all terms max(0, 1 + d_pos - d_neg) = 0 here.
  c.kind = "hinge";
  EXPECT_NEAR(models::triplet_loss(a, b, labels, c).item<double>(), 0.0, 1e-6);
  // Same class everywhere: no valid negative, loss 0.
  c.kind = "soft";
  EXPECT_NEAR(models::triplet_loss(a, b, torch::tensor({1, 1}, torch::kInt64), c).item<double>(),
              0.0, 1e-9);
}

TEST(Triplet, HardNegativeIsTheClosestOtherClass) {
  const Gaussian a{torch::tensor({{0.0}, {5.0}, {1.0}}), torch::zeros({3, 1})};
  const Gaussian b{torch::tensor({{0.0}, {5.0}, {1.0}}), torch::zeros({3, 1})};
  models::TripletConfig c;
  c.kind = "hinge";
  c.margin = 2.0;
  c.negatives = "hard";
  // labels 0, 1, 1: anchor 0's hard negative is item 2 (distance 1): 2 + 0 - 1 = 1.
  // anchor 1 -> only item 0 is another class: 2 - 5 < 0; anchor 2 -> item 0: 2 - 1 = 1.
  // mean over anchors = 2/3 in each direction.
  const auto loss = models::triplet_loss(a, b, torch::tensor({0, 1, 1}, torch::kInt64), c);
  EXPECT_NEAR(loss.item<double>(), 2.0 / 3.0, 1e-5);
}

TEST(Triplet, ContrastiveOnHandWorkedCosines) {
  // a = (1,0), (0,1); b = (2,0) [cos 1 with a0, 0 with a1], (1,1) [cos 1/sqrt2 with both].
  // The means' scale and the variances do not matter (cosine of the means).
  const Gaussian a{torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::kFloat64),
                   torch::zeros({2, 2}, torch::kFloat64)};
  const Gaussian b{torch::tensor({{2.0, 0.0}, {1.0, 1.0}}, torch::kFloat64),
                   torch::ones({2, 2}, torch::kFloat64)};
  models::TripletConfig c;
  c.kind = "contrastive";
  c.temperature = 0.5;
  const double r = 1.0 / std::sqrt(2.0);
  // Cosines: a0 -> (1, r), a1 -> (0, r); b0 -> (1, 0), b1 -> (r, r). Scores s = cos / 0.5.
  const auto lse = [](double x, double y) { return std::log(std::exp(x) + std::exp(y)); };
  // Different classes: each anchor's only positive is its pair.
  const double a_to_b = -0.5 * ((2.0 - lse(2.0, 2 * r)) + (2 * r - lse(0.0, 2 * r)));
  const double b_to_a = -0.5 * ((2.0 - lse(2.0, 0.0)) + (2 * r - lse(2 * r, 2 * r)));
  EXPECT_NEAR(models::triplet_loss(a, b, torch::tensor({0, 1}, torch::kInt64), c).item<double>(),
              0.5 * (a_to_b + b_to_a), 1e-12);
  // One class: both candidates are positives, l_i = -(1/2) sum_j log softmax_ij.
  const double same_ab = -0.5 * (0.5 * ((2.0 - lse(2.0, 2 * r)) + (2 * r - lse(2.0, 2 * r))) +
                                 0.5 * ((0.0 - lse(0.0, 2 * r)) + (2 * r - lse(0.0, 2 * r))));
  const double same_ba = -0.5 * (0.5 * ((2.0 - lse(2.0, 0.0)) + (0.0 - lse(2.0, 0.0))) +
                                 0.5 * ((2 * r - lse(2 * r, 2 * r)) + (2 * r - lse(2 * r, 2 * r))));
  EXPECT_NEAR(models::triplet_loss(a, b, torch::tensor({3, 3}, torch::kInt64), c).item<double>(),
              0.5 * (same_ab + same_ba), 1e-12);
  // Unknown labels (-1): the pair alone is positive, as with different classes.
  EXPECT_NEAR(models::triplet_loss(a, b, torch::tensor({-1, -1}, torch::kInt64), c).item<double>(),
              0.5 * (a_to_b + b_to_a), 1e-12);
}

TEST(Jmvae, GradientsReachEveryParameterAndAStepLowersTheLoss) {
  for (const std::string type : {"jmvae", "mvae", "mmvae"}) {
    torch::manual_seed(1);
    models::MultimodalVae model(tiny_model(type));
    const auto inputs = tiny_inputs();
    models::ObjectiveOptions o;
    o.triplet_weight = 0.5;
    o.labels = inputs.at("label").data;
    auto out = model->objective(inputs, o);
    out.loss.backward();
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << type << ": " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << type << ": " << p.key();
    }
    // Fixed noise: the same seed before each evaluation of the bound.
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
    auto loss_at = [&] {
      torch::manual_seed(3);
      return model->objective(inputs, o).loss;
    };
    const double before = loss_at().item<double>();
    for (int i = 0; i < 5; ++i) {
      opt.zero_grad();
      loss_at().backward();
      opt.step();
    }
    EXPECT_LT(loss_at().item<double>(), before) << type;
    EXPECT_TRUE(out.terms.count("elbo")) << type;
  }
}

TEST(Jmvae, AlphaZeroLeavesUnimodalEncodersOutOfTheLoss) {
  auto config = tiny_model("jmvae");
  config.alpha = 0.0;
  models::MultimodalVae model(config);
  auto out = model->objective(tiny_inputs(), {});
  out.loss.backward();
  for (const auto& p : model->named_parameters()) {
    if (p.key().rfind("enc_", 0) == 0) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    }
  }
}

TEST(Jmvae, WordDropoutReplacesOrdinaryTokensOnly) {
  // [bos, 7, 8, 9, eos, pad] rows: special ids (pad 0, unk 1, bos 2, eos 3) always stay.
  const auto row = torch::tensor({2, 7, 8, 9, 3, 0}, torch::kInt64);
  const auto ids = row.unsqueeze(0).repeat({4000, 1});
  EXPECT_TRUE(torch::equal(models::drop_tokens(ids, 0.0), ids));
  torch::manual_seed(5);
  const auto dropped = models::drop_tokens(ids, 0.25);
  for (std::int64_t col : {0, 4, 5})
    EXPECT_TRUE(torch::equal(dropped.select(1, col), ids.select(1, col))) << col;
  const auto ordinary = dropped.narrow(1, 1, 3);
  const auto unk = ordinary.eq(1);
  // Every changed token became unk; the share is p within 5 standard errors (n = 12000).
  EXPECT_TRUE(torch::equal(ordinary.masked_select(unk.logical_not()),
                           ids.narrow(1, 1, 3).masked_select(unk.logical_not())));
  const double share = unk.to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(share, 0.25, 5 * std::sqrt(0.25 * 0.75 / 12000));
  EXPECT_THROW(models::drop_tokens(ids, 1.0), InputError);

  // Only JMVAE's objective takes it (its encoders and decoders are apart).
  models::MultimodalVae mvae(tiny_model("mvae"));
  models::ObjectiveOptions o;
  o.token_dropout = 0.1;
  EXPECT_THROW(mvae->objective(tiny_inputs(), o), InputError);
}

TEST(Mvae, UnimodalPosteriorIsTheExpertTimesThePrior) {
  // MVAE trains q(z|m) = expert x N(0,I). With the image head pinned to the expert N(2, 3 I)
  // (zero weights, bias [mu | logvar]), the posterior is precision-weighted with the prior:
  // var = 1 / (1/3 + 1) = 0.75, mu = 0.75 * (2/3) = 0.5. Retrieval and every other consumer
  // of encode() must see that, not the raw expert.
  torch::manual_seed(4);
  models::MultimodalVae model(tiny_model("mvae"));
  const auto d = model->config().latent_dim;
  for (auto& item : model->named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    if (name.rfind("enc_image_head.", 0) != 0) continue;
    torch::NoGradGuard no_grad;
    if (name == "enc_image_head.weight") p.zero_();
    if (name == "enc_image_head.bias") {
      p.narrow(0, 0, d).fill_(2.0);
      p.narrow(0, d, d).fill_(std::log(3.0));
    }
  }
  const auto inputs = tiny_inputs();
  const auto expert = model->encode_expert("image", inputs.at("image"));
  EXPECT_NEAR(expert.mu.mean().item<double>(), 2.0, 1e-6);
  const auto q = model->encode("image", inputs.at("image"));
  EXPECT_NEAR(q.mu.min().item<double>(), 0.5, 1e-5);
  EXPECT_NEAR(q.mu.max().item<double>(), 0.5, 1e-5);
  EXPECT_NEAR(q.logvar.mean().item<double>(), std::log(0.75), 1e-5);
  // encode_subset with one modality is the same posterior; JMVAE and MMVAE keep the expert.
  EXPECT_TRUE(torch::allclose(model->encode_subset({{"image", inputs.at("image")}}).mu, q.mu));
  models::MultimodalVae mmvae(tiny_model("mmvae"));
  EXPECT_TRUE(torch::equal(mmvae->encode("image", inputs.at("image")).mu,
                           mmvae->encode_expert("image", inputs.at("image")).mu));
}

TEST(Jmvae, ElboTermsAddUp) {
  torch::manual_seed(2);
  models::MultimodalVae model(tiny_model("jmvae"));
  const auto out = model->objective(tiny_inputs(), {});
  const double rec =
      out.terms.at("rec_image").item<double>() + out.terms.at("rec_label").item<double>();
  EXPECT_NEAR(out.terms.at("elbo").item<double>(), rec - out.terms.at("kl").item<double>(), 1e-3);
  const double penalty =
      0.1 * (out.terms.at("kl_image").item<double>() + out.terms.at("kl_label").item<double>());
  EXPECT_NEAR(out.loss.item<double>(), -(out.terms.at("elbo").item<double>() - penalty), 1e-3);
}

TEST(Checkpoint, RoundTripIsExactAndVersioned) {
  const auto dir = fs::temp_directory_path() / "mmkt_ckpt";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "c.pt").string();
  torch::manual_seed(4);
  models::MultimodalVae a(tiny_model("jmvae"));
  torch::optim::Adam opt(a->parameters(), torch::optim::AdamOptions(1e-3));
  auto out = a->objective(tiny_inputs(), {});
  out.loss.backward();
  opt.step();
  io::TrainingState s;
  s.epochs_done = 3;
  s.step = 42;
  s.best_validation = 1.5;
  io::save_checkpoint(path, *a, &opt, s);

  torch::manual_seed(99);
  models::MultimodalVae b(tiny_model("jmvae"));
  torch::optim::Adam opt_b(b->parameters(), torch::optim::AdamOptions(1e-3));
  const auto loaded = io::load_checkpoint(path, *b, &opt_b, false);
  EXPECT_EQ(loaded.epochs_done, 3);
  EXPECT_EQ(loaded.step, 42);
  EXPECT_DOUBLE_EQ(loaded.best_validation, 1.5);
  const auto pa = a->named_parameters();
  const auto pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  // Adam moments too: one more identical step keeps the models identical.
  opt.zero_grad();
  opt_b.zero_grad();
  for (auto* m : {&a, &b}) {
    torch::manual_seed(7);
    (*m)->objective(tiny_inputs(), {}).loss.backward();
  }
  opt.step();
  opt_b.step();
  for (const auto& p : a->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()]));

  // truncated file: a clear error naming it
  const std::string bytes = io::read_file(path);
  const std::string cut = (dir / "cut.pt").string();
  io::write_file_atomic(cut, bytes.substr(0, bytes.size() / 2));
  try {
    io::load_checkpoint(cut, *b, nullptr, false);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
  }
  // another architecture
  auto other = tiny_model("jmvae");
  other.latent_dim = 5;
  models::MultimodalVae c(other);
  EXPECT_THROW(io::load_checkpoint(path, *c, nullptr, false), InputError);
  EXPECT_THROW(io::load_checkpoint((dir / "none.pt").string(), *c, nullptr, false), InputError);
}

TEST(Config, UnknownAndMistypedKeysAreNamed) {
  const auto dir = fs::temp_directory_path() / "mmkt_cfg";
  fs::create_directories(dir);
  const auto file = (dir / "c.json").string();
  auto error_of = [&](const std::string& json, std::vector<std::string> sets = {}) {
    io::write_file_atomic(file, json);
    try {
      config_from_json(resolve_config_json(file, sets), file);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("{\"model\": {\"latnt_dim\": 3}}")
                .find("model.latnt_dim: unknown key (did you mean 'latent_dim'?)"),
            std::string::npos);
  EXPECT_NE(
      error_of("{\"train\": {\"lr\": \"fast\"}}").find("train.lr: expected number, got string"),
      std::string::npos);
  EXPECT_NE(error_of("{\"model\": {\"type\": \"vae\"}}").find("model.type: 'vae' is not one of"),
            std::string::npos);
  EXPECT_NE(error_of("{\"train\": {\"epochs\": 2,}}").find("malformed JSON"), std::string::npos);
  EXPECT_NE(error_of("{}", {"train.batch_size=0"}).find("train.batch_size must be > 0"),
            std::string::npos);
  EXPECT_NE(error_of("{}", {"train.nope=1"}).find("train.nope: unknown key"), std::string::npos);
  EXPECT_NE(error_of("{\"model\": {\"modalities\": [{\"name\": \"image\", \"kind\": \"image\", "
                     "\"hiden\": [3]}]}}")
                .find("hiden: unknown key"),
            std::string::npos);
  EXPECT_EQ(error_of("{\"train\": {\"lr\": 1}}", {"model.latent_dim=32", "data.dataset=mnist"}),
            "no error");
  const auto c = config_from_json(resolve_config_json(file, {"model.latent_dim=32"}), file);
  EXPECT_EQ(c.model.latent_dim, 32);
  EXPECT_DOUBLE_EQ(c.train.lr, 1.0);
}

TEST(Config, CosineLearningRateScheduleAndKeptCheckpoints) {
  TrainConfig t;
  t.epochs = 100;
  t.lr = 1e-3;
  EXPECT_DOUBLE_EQ(learning_rate_at(t, 60.0), 1e-3);  // constant by default
  t.lr_schedule = "cosine";
  t.lr_min = 1e-4;
  t.lr_decay_start = 20;
  EXPECT_DOUBLE_EQ(learning_rate_at(t, 0.0), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate_at(t, 20.0), 1e-3);
  EXPECT_NEAR(learning_rate_at(t, 60.0), 1e-4 + 0.9e-3 * 0.5, 1e-15);  // half-way: cos = 0
  EXPECT_NEAR(learning_rate_at(t, 40.0), 1e-4 + 0.9e-3 * 0.5 * (1 + std::sqrt(0.5)), 1e-15);
  EXPECT_NEAR(learning_rate_at(t, 100.0), 1e-4, 1e-15);
  EXPECT_NEAR(learning_rate_at(t, 130.0), 1e-4, 1e-15);

  auto j = default_config_json();
  j["train"]["lr_schedule"] = "cosine";
  j["train"]["lr_min"] = 1e-5;
  j["train"]["keep_checkpoints"] = {50, 100};
  const auto c = config_from_json(j, "test");
  EXPECT_EQ(c.train.keep_checkpoints, (std::vector<std::int64_t>{50, 100}));
  j["train"]["keep_checkpoints"] = {0};
  EXPECT_THROW(config_from_json(j, "test"), InputError);
  j["train"]["keep_checkpoints"] = nlohmann::json::array();
  j["train"]["lr_schedule"] = "step";
  EXPECT_THROW(config_from_json(j, "test"), InputError);
  j["train"]["lr_schedule"] = "cosine";
  j["train"]["lr_min"] = 1.0;  // above lr
  EXPECT_THROW(config_from_json(j, "test"), InputError);
}

TEST(Config, DatasetsAreOneRegistry) {
  EXPECT_EQ(dataset_names(),
            (std::vector<std::string>{"mnist", "fashion-mnist", "shapes", "manifest"}));
  // The traits the run's decisions are made from.
  EXPECT_TRUE(dataset_entry("mnist").label_modality);
  EXPECT_FALSE(dataset_entry("fashion-mnist").label_modality);
  EXPECT_EQ(dataset_entry("fashion-mnist").auto_binarize, "dynamic");
  EXPECT_EQ(dataset_entry("shapes").auto_binarize, "none");
  EXPECT_TRUE(dataset_entry("shapes").factor_labels);
  EXPECT_TRUE(dataset_entry("manifest").user_data);
  EXPECT_EQ(dataset_entry("manifest").auto_binarize, "");  // surveyed from the images
  for (const auto& name : dataset_names()) {
    EXPECT_TRUE(dataset_entry(name).load) << name;
    EXPECT_TRUE(dataset_entry(name).evaluator_images) << name;
  }
  try {
    dataset_entry("cifar");
    ADD_FAILURE() << "an unknown dataset was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("known: mnist, fashion-mnist, shapes, manifest"),
              std::string::npos)
        << e.what();
  }
  // The configuration accepts the registry's names and runs each entry's own checks.
  auto j = default_config_json();
  j["data"]["dataset"] = "cifar";
  EXPECT_THROW(config_from_json(j, "test"), InputError);
  j["data"]["dataset"] = "manifest";  // without data.manifest
  try {
    config_from_json(j, "test");
    ADD_FAILURE() << "a manifest run without data.manifest was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("data.manifest: required"), std::string::npos) << e.what();
  }
  j["data"]["manifest"] = "items.jsonl";
  EXPECT_EQ(config_from_json(j, "test").data.manifest, "items.jsonl");
  // Automatic choices of the built-in datasets come from their entries.
  j = default_config_json();
  j["data"]["dataset"] = "shapes";
  EXPECT_EQ(resolve_data_choices(config_from_json(j, "test")).data.binarize, "none");
  j["data"]["dataset"] = "mnist";
  EXPECT_EQ(resolve_data_choices(config_from_json(j, "test")).data.binarize, "dynamic");
}

namespace {

// A complete tiny run on generated shapes (level 1, 16x16 images so the MLP image path is used).
nlohmann::json tiny_run_config(int epochs) {
  auto j = default_config_json();
  j["seed"] = 11;
  j["data"]["dataset"] = "shapes";
  j["data"]["shapes_level"] = 1;
  j["data"]["shapes_train"] = 120;
  j["data"]["shapes_test"] = 30;
  j["data"]["validation"] = 20;
  j["data"]["workers"] = 1;
  j["tokenizer"]["vocab_size"] = 40;
  j["model"]["latent_dim"] = 4;
  j["model"]["joint_hidden"] = {16};
  j["model"]["modalities"] = nlohmann::json::array({{{"name", "image"},
                                                     {"kind", "image"},
                                                     {"encoder", "conv"},
                                                     {"decoder", "conv"},
                                                     {"likelihood", "bernoulli"},
                                                     {"hidden", {16}},
                                                     {"channels", 4}},
                                                    {{"name", "text"},
                                                     {"kind", "text"},
                                                     {"encoder", "gru"},
                                                     {"decoder", "gru"},
                                                     {"likelihood", "categorical"},
                                                     {"hidden", {16}},
                                                     {"embedding_dim", 8},
                                                     {"rnn_hidden", 16}}});
  j["triplet"]["weight"] = 0.5;
  j["train"]["epochs"] = epochs;
  j["train"]["batch_size"] = 20;
  j["train"]["warmup_epochs"] = 2.0;
  j["train"]["progress_seconds"] = 1000.0;
  return j;
}

std::vector<double> logged_losses(const std::string& dir) {
  std::ifstream in(dir + "/log.jsonl");
  std::vector<double> out;
  std::string line;
  while (std::getline(in, line))
    out.push_back(nlohmann::json::parse(line)["train"]["loss"].get<double>());
  return out;
}

}  // namespace

TEST(Trainer, ResumeMatchesAnUninterruptedRun) {
  const auto base = fs::temp_directory_path() / "mmkt_resume";
  fs::remove_all(base);
  Runtime rt;
  rt.threads = at::get_num_threads();
  auto full_json = tiny_run_config(3);
  full_json["train"]["keep_checkpoints"] = {1, 2};
  const auto full = config_from_json(full_json, "test");
  seed_everything(full.seed);
  train::train_run(full, full_json, (base / "full").string(), train::RunStart::kFresh, rt);

  const auto part_json = tiny_run_config(2);
  seed_everything(full.seed);
  train::train_run(config_from_json(part_json, "test"), part_json, (base / "part").string(),
                   train::RunStart::kFresh, rt);
  // resume with more epochs, as `mmkt train --resume --set train.epochs=3` does
  train::train_run(full, full_json, (base / "part").string(), train::RunStart::kResume, rt);

  const auto a = logged_losses((base / "full").string());
  const auto b = logged_losses((base / "part").string());
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(a[i], b[i]) << "epoch " << i + 1;
  // Models kept along the way: after epochs 1 and 2 (not 3), loadable by name, and different.
  const RunPaths paths{(base / "full").string()};
  EXPECT_TRUE(fs::exists(paths.checkpoint_at(1)));
  EXPECT_TRUE(fs::exists(paths.checkpoint_at(2)));
  EXPECT_FALSE(fs::exists(paths.checkpoint_at(3)));
  auto one = load_run(paths.dir, torch::kCPU, "checkpoint_epoch1.pt");
  auto two = load_run(paths.dir, torch::kCPU, paths.checkpoint_at(2));
  const auto p1 = one.model->parameters(), p2 = two.model->parameters();
  ASSERT_EQ(p1.size(), p2.size());
  double moved = 0;
  for (size_t i = 0; i < p1.size(); ++i) moved += (p1[i] - p2[i]).abs().sum().item<double>();
  EXPECT_GT(moved, 0.0);
  try {
    load_run(paths.dir, torch::kCPU, "checkpoint_epoch7.pt");
    FAIL() << "no throw";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint_epoch7.pt: no such checkpoint"),
              std::string::npos)
        << e.what();
  }
  // A second fresh run into an existing run directory is refused.
  EXPECT_THROW(
      train::train_run(full, full_json, (base / "full").string(), train::RunStart::kFresh, rt),
      InputError);

  // --overwrite while another process holds the run's lock: refused, and nothing deleted.
  const auto full_dir = (base / "full").string();
  fs::create_directories(base / "full" / "eval");
  const auto short_json = tiny_run_config(1);
  const auto short_config = config_from_json(short_json, "test");
  {
    auto held = io::FileLock::try_acquire(full_dir + "/train.lock");
    ASSERT_TRUE(held.has_value());
    EXPECT_THROW(
        train::train_run(short_config, short_json, full_dir, train::RunStart::kOverwrite, rt),
        InputError);
    EXPECT_TRUE(fs::exists(base / "full" / "checkpoint.pt"));
    EXPECT_TRUE(fs::exists(base / "full" / "checkpoint_epoch1.pt"));
  }
  // --overwrite: every file of the old run goes (kept epoch checkpoints and eval/ included)
  // and the new run's log starts empty.
  seed_everything(short_config.seed);
  train::train_run(short_config, short_json, full_dir, train::RunStart::kOverwrite, rt);
  EXPECT_FALSE(fs::exists(base / "full" / "checkpoint_epoch1.pt"));
  EXPECT_FALSE(fs::exists(base / "full" / "checkpoint_epoch2.pt"));
  EXPECT_FALSE(fs::exists(base / "full" / "eval"));
  EXPECT_EQ(logged_losses(full_dir).size(), 1u);
  EXPECT_EQ(io::load_json_file(full_dir + "/config.json")["train"]["epochs"].get<int>(), 1);
}
