// Antidistillation of a whole multimodal VAE (distill/grow_vae.h): a trained small JMVAE, MVAE
// and MMVAE grown wider compute the same unimodal and joint posteriors and the same
// likelihoods on real shapes images and labels; what cannot grow is refused; and a run started
// with train.init_from begins at the small run's function.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "mmkt/core/error.h"
#include "mmkt/data/shapes.h"
#include "mmkt/distill/grow_vae.h"
#include "mmkt/run/run.h"
#include "tiny_runs.h"

using namespace mmkt;
using namespace mmkt::distill;

namespace {

data::ShapesDataset shapes16(std::int64_t n) { return testing_support::shapes_items(n, 9, 16); }

// Image [3,16,16] through an MLP and through a conv network (the latter does not grow), and the
// shapes class label; `image` and `label` hidden widths and the joint head's as given.
models::ModelConfig model(const std::string& type, std::vector<std::int64_t> image_hidden,
                          std::vector<std::int64_t> label_hidden,
                          std::vector<std::int64_t> joint_hidden, std::int64_t classes) {
  models::ModelConfig c;
  c.type = type;
  c.latent_dim = 4;
  c.joint_hidden = std::move(joint_hidden);
  models::ModalityConfig image;
  image.name = "image";
  image.kind = models::ModalityKind::kImage;
  image.encoder = image.decoder = "mlp";
  image.likelihood = "gaussian";
  image.likelihood_scale = 0.0;  // learned: a parameter that is copied as it is
  image.hidden = std::move(image_hidden);
  image.shape = {3, 16, 16};
  models::ModalityConfig conv = image;
  conv.name = "image_conv";
  conv.encoder = conv.decoder = "conv";
  conv.likelihood = "bernoulli";
  conv.hidden = {12};
  conv.channels = 3;
  models::ModalityConfig label;
  label.name = "label";
  label.kind = models::ModalityKind::kLabel;
  label.encoder = label.decoder = "mlp";
  label.likelihood = "categorical";
  label.hidden = std::move(label_hidden);
  label.classes = classes;
  c.modalities = {image, conv, label};
  return c;
}

struct Batch {
  models::Inputs inputs;
  std::int64_t classes = 0;
};

Batch real_batch(std::int64_t n) {
  const auto data = shapes16(n);
  const auto idx = data::index_range(n);
  const auto images = data.images(idx);
  const auto labels = data.labels(idx);
  Batch b;
  b.classes = labels.max().item<std::int64_t>() + 1;
  b.inputs["image"] = {images, {}};
  b.inputs["image_conv"] = {images, {}};
  b.inputs["label"] = {labels, {}};
  return b;
}

// A few Adam steps on the model's own objective, so that its weights are not their
// initialisation.
void train_a_little(models::MultimodalVae& m, const models::Inputs& inputs) {
  torch::manual_seed(4);
  torch::optim::Adam adam(m->parameters(), torch::optim::AdamOptions(1e-2));
  for (int i = 0; i < 5; ++i) {
    adam.zero_grad();
    m->objective(inputs, {}).loss.backward();
    adam.step();
  }
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double err = (a - b).abs().max().item<double>();
  EXPECT_LT(err, 1e-5 * std::max(1.0, a.abs().max().item<double>())) << what << ": " << err;
}

void expect_same_function(models::MultimodalVae& small, models::MultimodalVae& large,
                          const models::Inputs& inputs) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, input] : inputs) {
    const auto a = small->encode(name, input), b = large->encode(name, input);
    expect_close(a.mu, b.mu, "q(z|" + name + ") mean");
    expect_close(a.logvar, b.logvar, "q(z|" + name + ") log-variance");
    torch::manual_seed(1);
    const auto z = torch::randn({input.data.size(0), 4});
    expect_close(small->log_likelihood(name, z, input), large->log_likelihood(name, z, input),
                 "log p(" + name + "|z)");
  }
  const auto a = small->encode_joint(inputs), b = large->encode_joint(inputs);
  expect_close(a.mu, b.mu, "joint posterior mean");
  expect_close(a.logvar, b.logvar, "joint posterior log-variance");
  std::int64_t small_count = 0, large_count = 0;
  for (const auto& p : small->parameters()) small_count += p.numel();
  for (const auto& p : large->parameters()) large_count += p.numel();
  EXPECT_GT(large_count, small_count);
}

}  // namespace

TEST(GrowVae, GrownJmvaeMvaeMmvaeComputeTheSame) {
  const auto batch = real_batch(24);
  for (const std::string type : {"jmvae", "mvae", "mmvae"}) {
    SCOPED_TRACE(type);
    torch::manual_seed(2);
    models::MultimodalVae small(model(type, {16, 8}, {6}, {12}, batch.classes));
    train_a_little(small, batch.inputs);
    auto large = grow_multimodal_vae(
        small, model(type, {40, 21}, {13}, {30}, batch.classes), /*seed=*/7);
    expect_same_function(small, large, batch.inputs);
    // The copies learn apart: the image encoder's first layer grows from 16 to 40 units, so 24
    // of its rows repeat one of the first 16 exactly. One SGD step of the large model's own
    // objective moves copies of one unit differently, because their outgoing shares differ and
    // so do their gradients (Adam's first step would not show it: it moves every weight by
    // +-lr whatever the gradient's size). Only a unit dead on the whole batch (zero gradient)
    // may keep its copies equal.
    const auto w = large->named_parameters()["enc_image.layers.0.weight"];  // shares storage
    auto repeats = [&w] {
      std::vector<std::int64_t> rows;
      for (std::int64_t j = 16; j < w.size(0); ++j) {
        for (std::int64_t i = 0; i < 16; ++i) {
          if (torch::equal(w[j], w[i])) {
            rows.push_back(j);
            break;
          }
        }
      }
      return rows;
    };
    EXPECT_EQ(repeats().size(), 24U);
    torch::optim::SGD sgd(large->parameters(), torch::optim::SGDOptions(1e-2));
    large->objective(batch.inputs, {}).loss.backward();
    sgd.step();
    const auto still = repeats();
    EXPECT_LT(still.size(), 24U);
    for (const auto j : still) {
      EXPECT_EQ(w.grad()[j].abs().max().item<float>(), 0.0F) << "row " << j << " kept its copy";
    }
  }
}

TEST(GrowVae, WhatCannotGrowIsRefused) {
  const auto batch = real_batch(8);
  torch::manual_seed(2);
  models::MultimodalVae small(model("jmvae", {16, 8}, {6}, {12}, batch.classes));
  const std::vector<std::pair<std::string, models::ModelConfig>> refused = {
      {"narrower", model("jmvae", {16, 7}, {6}, {12}, batch.classes)},
      {"deeper", model("jmvae", {16, 8, 8}, {6}, {12}, batch.classes)},
      {"joint deeper", model("jmvae", {16, 8}, {6}, {12, 12}, batch.classes)},
      {"other type", model("mvae", {16, 8}, {6}, {12}, batch.classes)},
  };
  for (const auto& [what, config] : refused) {
    EXPECT_THROW(grow_multimodal_vae(small, config, 1), InputError) << what;
  }
  auto other_latent = model("jmvae", {16, 8}, {6}, {12}, batch.classes);
  other_latent.latent_dim = 5;
  EXPECT_THROW(grow_multimodal_vae(small, other_latent, 1), InputError);
  auto wider_conv = model("jmvae", {16, 8}, {6}, {12}, batch.classes);
  wider_conv.modalities[1].channels = 4;  // conv networks do not grow
  try {
    grow_multimodal_vae(small, wider_conv, 1);
    FAIL() << "a wider conv network accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("image_conv."), std::string::npos) << e.what();
  }
}

TEST(GrowVae, TrainInitFromStartsAtTheSmallRun) {
  namespace fs = std::filesystem;
  const auto root = fs::temp_directory_path() / "mmkt_test_grow_vae";
  fs::remove_all(root);
  auto j = default_config_json();
  j["data"]["dataset"] = "shapes";
  j["data"]["shapes_level"] = 3;
  j["data"]["shapes_train"] = 100;
  j["data"]["shapes_test"] = 40;
  j["data"]["validation"] = 20;
  j["data"]["workers"] = 1;
  j["tokenizer"]["vocab_size"] = 60;
  j["model"]["latent_dim"] = 4;
  j["model"]["joint_hidden"] = {8};
  j["model"]["modalities"] = nlohmann::json::array(
      {{{"name", "image"}, {"kind", "image"}, {"encoder", "mlp"}, {"decoder", "mlp"},
        {"likelihood", "bernoulli"}, {"hidden", {16}}},
       {{"name", "text"}, {"kind", "text"}, {"encoder", "conv"}, {"decoder", "conv"},
        {"likelihood", "categorical"}, {"hidden", {8}}, {"embedding_dim", 8},
        {"rnn_hidden", 8}, {"max_length", 12}}});
  j["train"]["epochs"] = 1;
  j["train"]["batch_size"] = 50;
  j["train"]["progress_seconds"] = 1000.0;
  RuntimeOptions ro;
  ro.threads = 1;
  const auto rt = init_runtime(ro);
  const auto small_dir = (root / "small").string(), large_dir = (root / "large").string();
  train::train_run(config_from_json(j, "test"), j, small_dir, train::RunStart::kFresh, rt);
  // The large run: wider image MLP and joint head, grown from the small run; Adam at lr 1e-12
  // moves no weight by more than ~1e-11 in its epoch (train.lr must be > 0), so it must still
  // compute the small run's function.
  j["model"]["modalities"][0]["hidden"] = {40};
  j["model"]["joint_hidden"] = {20};
  j["train"]["init_from"] = small_dir;
  j["train"]["lr"] = 1e-12;
  train::train_run(config_from_json(j, "test"), j, large_dir, train::RunStart::kFresh, rt);
  auto small = load_run(small_dir, torch::kCPU);
  auto large = load_run(large_dir, torch::kCPU);
  {
    torch::NoGradGuard no_grad;  // for the comparison only: the runs below train
    torch::manual_seed(3);
    const auto images = torch::rand({6, 3, 64, 64});
    const auto a = small.model->encode("image", {images, {}});
    const auto b = large.model->encode("image", {images, {}});
    expect_close(a.mu, b.mu, "q(z|image) of the grown run");
  }
  std::int64_t small_count = 0, large_count = 0;
  for (const auto& p : small.model->parameters()) small_count += p.numel();
  for (const auto& p : large.model->parameters()) large_count += p.numel();
  EXPECT_GT(large_count, small_count);
  // A resumed run never re-initialises from init_from: resuming the large run for a second
  // epoch with init_from pointing nowhere trains on; a fresh run from there is an error.
  j["train"]["init_from"] = (root / "missing").string();
  j["train"]["epochs"] = 2;
  EXPECT_NO_THROW(train::train_run(config_from_json(j, "test"), j, large_dir,
                                   train::RunStart::kResume, rt));
  EXPECT_THROW(train::train_run(config_from_json(j, "test"), j, (root / "bad").string(),
                                train::RunStart::kFresh, rt),
               InputError);
  fs::remove_all(root);
}
