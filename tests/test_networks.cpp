#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "mmkt/core/error.h"
#include "mmkt/models/gru_inference.h"
#include "mmkt/models/modality.h"
#include "mmkt/models/networks.h"

using namespace mmkt;
using namespace mmkt::models;

namespace {

constexpr std::int64_t kPad = 0, kBos = 2, kEos = 3;
const double kLog2 = std::log(2.0);
const double kLog2Pi = std::log(2.0 * M_PI);

ModalityConfig image_config(std::vector<std::int64_t> shape = {1, 2, 2},
                            std::string encoder = "mlp", std::string decoder = "mlp",
                            std::string likelihood = "bernoulli") {
  ModalityConfig c;
  c.name = "image";
  c.kind = models::ModalityKind::kImage;
  c.encoder = std::move(encoder);
  c.decoder = std::move(decoder);
  c.likelihood = std::move(likelihood);
  c.hidden = {8, 6};
  c.shape = std::move(shape);
  c.channels = 2;
  return c;
}

ModalityConfig text_config() {
  ModalityConfig c;
  c.name = "text";
  c.kind = models::ModalityKind::kText;
  c.encoder = "gru";
  c.decoder = "gru";
  c.likelihood = "categorical";
  c.hidden = {6};
  c.vocab_size = 7;
  c.embedding_dim = 4;
  c.rnn_hidden = 5;
  c.max_length = 8;
  return c;
}

ModalityConfig conv_text_config() {
  auto c = text_config();
  c.encoder = c.decoder = "conv";
  return c;
}

ModalityConfig label_config() {
  ModalityConfig c;
  c.name = "label";
  c.kind = models::ModalityKind::kLabel;
  c.encoder = "mlp";
  c.decoder = "mlp";
  c.likelihood = "categorical";
  c.hidden = {8, 6};
  c.classes = 4;
  return c;
}

ModalityConfig attributes_config() {
  ModalityConfig c;
  c.name = "attributes";
  c.kind = models::ModalityKind::kAttributes;
  c.encoder = "mlp";
  c.decoder = "mlp";
  c.likelihood = "bernoulli";
  c.hidden = {8, 6};
  c.classes = 3;
  return c;
}

// Sets a named parameter (e.g. "out.bias") under NoGradGuard.
void set_param(torch::nn::Module& m, const std::string& name, const torch::Tensor& value) {
  torch::NoGradGuard guard;
  auto params = m.named_parameters();
  ASSERT_TRUE(params.contains(name)) << name;
  params[name].copy_(value);
}

torch::Tensor param(torch::nn::Module& m, const std::string& name) {
  return m.named_parameters()[name].detach().to(torch::kFloat64);
}

// Every parameter received a defined, not all-zero gradient.
void expect_all_grads(torch::nn::Module& m, const std::string& what) {
  auto params = m.named_parameters();
  ASSERT_GT(params.size(), 0u);
  for (const auto& p : params) {
    ASSERT_TRUE(p.value().grad().defined()) << what << ": " << p.key() << " has no grad";
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0)
        << what << ": " << p.key() << " grad is all zero";
  }
}

// Padded text batch from rows of ids (each BOS ... EOS); pads to `width`.
ModalityInput text_batch(const std::vector<std::vector<std::int64_t>>& rows, std::int64_t width) {
  const auto n = static_cast<std::int64_t>(rows.size());
  auto ids = torch::zeros({n, width}, torch::kLong);
  auto lengths = torch::zeros({n}, torch::kLong);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& r = rows[static_cast<std::size_t>(i)];
    for (std::size_t j = 0; j < r.size(); ++j) ids[i][static_cast<std::int64_t>(j)] = r[j];
    lengths[i] = static_cast<std::int64_t>(r.size());
  }
  return {ids, lengths};
}

// Format of generated ids: BOS first, no pad or BOS before the end, only pad after EOS.
void expect_well_formed(const torch::Tensor& ids, std::int64_t max_length) {
  ASSERT_EQ(ids.dim(), 2);
  ASSERT_EQ(ids.scalar_type(), torch::kLong);
  EXPECT_LE(ids.size(1), max_length);
  for (std::int64_t i = 0; i < ids.size(0); ++i) {
    EXPECT_EQ(ids[i][0].item<std::int64_t>(), kBos);
    bool ended = false;
    for (std::int64_t j = 1; j < ids.size(1); ++j) {
      const auto id = ids[i][j].item<std::int64_t>();
      if (ended) {
        EXPECT_EQ(id, kPad) << "row " << i << " col " << j;
      } else {
        EXPECT_NE(id, kPad) << "row " << i << " col " << j;
        EXPECT_NE(id, kBos) << "row " << i << " col " << j;
        ended = id == kEos;
      }
    }
  }
}

template <typename Fn>
std::string input_error_message(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

}  // namespace

// ---- Shapes ---------------------------------------------------------------------------

TEST(NetworksShapes, ImageMlp) {
  torch::manual_seed(0);
  const auto cfg = image_config();
  auto enc = make_feature_encoder(cfg);
  auto dec = make_decoder(cfg, 4);
  EXPECT_EQ(enc->out_features(), 6);
  const auto x = torch::rand({3, 1, 2, 2}).round();
  EXPECT_EQ(enc->forward({x, {}}).sizes(), (std::vector<std::int64_t>{3, 6}));
  const auto z = torch::randn({3, 4});
  const auto mean = dec->mean(z);
  EXPECT_EQ(mean.sizes(), (std::vector<std::int64_t>{3, 1, 2, 2}));
  EXPECT_GE(mean.min().item<double>(), 0.0);
  EXPECT_LE(mean.max().item<double>(), 1.0);
  EXPECT_EQ(dec->log_likelihood(z, {x, {}}).sizes(), (std::vector<std::int64_t>{3}));
  EXPECT_NE(dynamic_cast<ImageMlpEncoderImpl*>(enc.get()), nullptr);
  EXPECT_NE(dynamic_cast<ImageMlpDecoderImpl*>(dec.get()), nullptr);
}

TEST(NetworksShapes, ImageConv) {
  torch::manual_seed(0);
  for (std::int64_t side : {32, 64}) {
    auto cfg = image_config({3, side, side}, "conv", "conv", "laplace");
    cfg.hidden = {16};
    auto enc = make_feature_encoder(cfg);
    auto dec = make_decoder(cfg, 5);
    EXPECT_NE(dynamic_cast<ImageConvEncoderImpl*>(enc.get()), nullptr);
    EXPECT_NE(dynamic_cast<ImageConvDecoderImpl*>(dec.get()), nullptr);
    const auto x = torch::rand({2, 3, side, side});
    EXPECT_EQ(enc->forward({x, {}}).sizes(), (std::vector<std::int64_t>{2, 16}));
    const auto z = torch::randn({2, 5});
    const auto mean = dec->mean(z);
    EXPECT_EQ(mean.sizes(), (std::vector<std::int64_t>{2, 3, side, side}));
    EXPECT_GE(mean.min().item<double>(), 0.0);
    EXPECT_LE(mean.max().item<double>(), 1.0);
    EXPECT_EQ(dec->log_likelihood(z, {x, {}}).sizes(), (std::vector<std::int64_t>{2}));
  }
  // Non-square sizes are computed per side.
  auto cfg = image_config({3, 32, 48}, "conv", "conv");
  auto enc = make_feature_encoder(cfg);
  auto dec = make_decoder(cfg, 5);
  EXPECT_EQ(enc->forward({torch::rand({2, 3, 32, 48}), {}}).sizes(),
            (std::vector<std::int64_t>{2, 6}));
  EXPECT_EQ(dec->mean(torch::randn({2, 5})).sizes(), (std::vector<std::int64_t>{2, 3, 32, 48}));

  // 28x28 (MNIST, Fashion-MNIST) halves twice, to 7x7: conv 1->c->2c, the classic conv VAE.
  EXPECT_EQ(conv_stride2_layers(28, 28), 2);
  EXPECT_EQ(conv_stride2_layers(64, 64), 4);
  EXPECT_EQ(conv_stride2_layers(32, 48), 4);
  EXPECT_EQ(conv_stride2_layers(12, 20), 2);
  auto small = image_config({1, 28, 28}, "conv", "conv");
  small.channels = 8;
  small.hidden = {16};
  auto enc28 = make_feature_encoder(small);
  auto dec28 = make_decoder(small, 5);
  // conv1 1*8*16+8, conv2 8*16*16+16, fc 16*7*7*16+16.
  std::int64_t enc_params = 0;
  for (const auto& p : enc28->parameters()) enc_params += p.numel();
  EXPECT_EQ(enc_params, (1 * 8 * 16 + 8) + (8 * 16 * 16 + 16) + (16 * 49 * 16 + 16));
  EXPECT_EQ(enc28->forward({torch::rand({3, 1, 28, 28}), {}}).sizes(),
            (std::vector<std::int64_t>{3, 16}));
  EXPECT_EQ(dec28->mean(torch::randn({3, 5})).sizes(), (std::vector<std::int64_t>{3, 1, 28, 28}));
  EXPECT_EQ(dec28->log_likelihood(torch::randn({3, 5}), {torch::rand({3, 1, 28, 28}).round(), {}})
                .sizes(),
            (std::vector<std::int64_t>{3}));
}

TEST(NetworksShapes, Text) {
  torch::manual_seed(0);
  const auto cfg = text_config();
  auto enc = make_feature_encoder(cfg);
  auto dec = make_decoder(cfg, 3);
  const auto batch = text_batch({{2, 4, 5, 3}, {2, 6, 3}, {2, 3}}, 6);
  EXPECT_EQ(enc->out_features(), 6);
  EXPECT_EQ(enc->forward(batch).sizes(), (std::vector<std::int64_t>{3, 6}));
  const auto z = torch::randn({3, 3});
  EXPECT_EQ(dec->log_likelihood(z, batch).sizes(), (std::vector<std::int64_t>{3}));
  const auto ids = dec->mean(z);
  EXPECT_EQ(ids.size(0), 3);
  expect_well_formed(ids, cfg.max_length);
  ASSERT_NE(dynamic_cast<TextGruDecoderImpl*>(dec.get()), nullptr);
  EXPECT_NE(dynamic_cast<TextGruEncoderImpl*>(enc.get()), nullptr);
}

TEST(NetworksShapes, LabelAndAttributes) {
  torch::manual_seed(0);
  auto lenc = make_feature_encoder(label_config());
  auto ldec = make_decoder(label_config(), 3);
  const auto labels = torch::tensor({0, 3, 1}, torch::kLong);
  const auto z = torch::randn({3, 3});
  EXPECT_EQ(lenc->forward({labels, {}}).sizes(), (std::vector<std::int64_t>{3, 6}));
  const auto probs = ldec->mean(z);
  EXPECT_EQ(probs.sizes(), (std::vector<std::int64_t>{3, 4}));
  EXPECT_TRUE(torch::allclose(probs.sum(1), torch::ones({3})));
  EXPECT_EQ(ldec->log_likelihood(z, {labels, {}}).sizes(), (std::vector<std::int64_t>{3}));

  auto aenc = make_feature_encoder(attributes_config());
  auto adec = make_decoder(attributes_config(), 3);
  const auto attrs = torch::tensor({{1.f, 0.f, 1.f}, {0.f, 0.f, 0.f}, {1.f, 1.f, 1.f}});
  EXPECT_EQ(aenc->forward({attrs, {}}).sizes(), (std::vector<std::int64_t>{3, 6}));
  const auto p = adec->mean(z);
  EXPECT_EQ(p.sizes(), (std::vector<std::int64_t>{3, 3}));
  EXPECT_GE(p.min().item<double>(), 0.0);
  EXPECT_LE(p.max().item<double>(), 1.0);
  EXPECT_EQ(adec->log_likelihood(z, {attrs, {}}).sizes(), (std::vector<std::int64_t>{3}));
}

// ---- Likelihoods ----------------------------------------------------------------------

TEST(NetworksLikelihood, BernoulliZeroLogitsIsFourLog2) {
  // Logits 0 give p = 1/2 for every pixel: log p = -4 log 2 for any binary 2x2 target.
  const auto targets = torch::tensor({0.f, 1.f, 1.f, 0.f, 1.f, 1.f, 1.f, 1.f}).view({2, 1, 2, 2});
  const auto ll =
      image_log_likelihood(torch::zeros({2, 1, 2, 2}), targets, ImageLikelihood::kBernoulli, 0.1);
  EXPECT_NEAR(ll[0].item<double>(), -4 * kLog2, 1e-6);
  EXPECT_NEAR(ll[1].item<double>(), -4 * kLog2, 1e-6);

  // Through a decoder whose last layer is zeroed (so every logit is 0).
  torch::manual_seed(1);
  auto dec = make_decoder(image_config(), 3);
  set_param(*dec, "out.weight", torch::zeros({4, 8}));
  set_param(*dec, "out.bias", torch::zeros({4}));
  const auto dll = dec->log_likelihood(torch::randn({2, 3}), {targets, {}});
  EXPECT_NEAR(dll[0].item<double>(), -4 * kLog2, 1e-6);
  EXPECT_NEAR(dll[1].item<double>(), -4 * kLog2, 1e-6);
  EXPECT_TRUE(torch::allclose(dec->mean(torch::randn({1, 3})), torch::full({1, 1, 2, 2}, 0.5)));
}

TEST(NetworksLikelihood, BernoulliContinuousTargetByHand) {
  // log p = x log s(l) + (1 - x) log(1 - s(l)), per pixel.
  const std::vector<double> logits = {-2.0, 0.5, 1.5, 3.0};
  const std::vector<double> x = {0.0, 0.25, 1.0, 0.7};
  double expected = 0.0;
  for (std::size_t i = 0; i < 4; ++i) {
    const double s = 1.0 / (1.0 + std::exp(-logits[i]));
    expected += x[i] * std::log(s) + (1 - x[i]) * std::log(1 - s);
  }
  const auto ll = image_log_likelihood(torch::tensor(logits, torch::kFloat64).view({1, 1, 2, 2}),
                                       torch::tensor(x, torch::kFloat64).view({1, 1, 2, 2}),
                                       ImageLikelihood::kBernoulli, 0.1);
  EXPECT_NEAR(ll.item<double>(), expected, 1e-9);
}

TEST(NetworksLikelihood, GaussianAndLaplaceClosedForms) {
  const std::vector<double> out = {-1.0, 0.0, 0.3, 2.0};
  const std::vector<double> x = {0.1, 0.5, 0.9, 1.0};
  const double s = 0.2;
  double gauss = 0.0, laplace = 0.0;
  for (std::size_t i = 0; i < 4; ++i) {
    const double m = 1.0 / (1.0 + std::exp(-out[i]));
    gauss += -std::log(s) - 0.5 * kLog2Pi - (x[i] - m) * (x[i] - m) / (2 * s * s);
    laplace += -std::log(2 * s) - std::abs(x[i] - m) / s;
  }
  const auto o = torch::tensor(out, torch::kFloat64).view({1, 1, 2, 2});
  const auto t = torch::tensor(x, torch::kFloat64).view({1, 1, 2, 2});
  EXPECT_NEAR(image_log_likelihood(o, t, ImageLikelihood::kGaussian, s).item<double>(), gauss,
              1e-9);
  EXPECT_NEAR(image_log_likelihood(o, t, ImageLikelihood::kLaplace, s).item<double>(), laplace,
              1e-9);

  // The decoder uses likelihood_scale and sigmoid means: with the last layer zeroed the mean
  // is 0.5 everywhere.
  for (const std::string name : {"gaussian", "laplace"}) {
    auto cfg = image_config({1, 2, 2}, "mlp", "mlp", name);
    cfg.likelihood_scale = s;
    auto dec = make_decoder(cfg, 3);
    set_param(*dec, "out.weight", torch::zeros({4, 8}));
    set_param(*dec, "out.bias", torch::zeros({4}));
    double expected = 0.0;
    for (double xi : x) {
      expected += name == "gaussian"
                      ? -std::log(s) - 0.5 * kLog2Pi - (xi - 0.5) * (xi - 0.5) / (2 * s * s)
                      : -std::log(2 * s) - std::abs(xi - 0.5) / s;
    }
    const auto ll = dec->log_likelihood(torch::randn({1, 3}), {t.to(torch::kFloat32), {}});
    EXPECT_NEAR(ll.item<double>(), expected, 1e-4) << name;
  }
}

TEST(NetworksLikelihood, LabelIsLogSoftmaxPick) {
  torch::manual_seed(2);
  auto dec = make_decoder(label_config(), 3);
  auto* label = dynamic_cast<LabelDecoderImpl*>(dec.get());
  ASSERT_NE(label, nullptr);
  const auto z = torch::randn({3, 3});
  const auto y = torch::tensor({2, 0, 3}, torch::kLong);
  const auto logits = label->logits(z).to(torch::kFloat64);
  const auto ll = dec->log_likelihood(z, {y, {}});
  for (std::int64_t i = 0; i < 3; ++i) {
    const auto row = logits[i];
    const double lse = std::log(row.exp().sum().item<double>());
    EXPECT_NEAR(ll[i].item<double>(), row[y[i].item<std::int64_t>()].item<double>() - lse, 1e-5);
  }
}

TEST(NetworksLikelihood, AttributesBernoulliByHand) {
  torch::manual_seed(3);
  auto dec = make_decoder(attributes_config(), 3);
  auto* attrs = dynamic_cast<AttributeDecoderImpl*>(dec.get());
  ASSERT_NE(attrs, nullptr);
  const auto z = torch::randn({2, 3});
  const auto a = torch::tensor({{1.f, 0.f, 1.f}, {0.f, 1.f, 1.f}});
  const auto logits = attrs->logits(z).to(torch::kFloat64);
  const auto ll = dec->log_likelihood(z, {a, {}});
  for (std::int64_t i = 0; i < 2; ++i) {
    double expected = 0.0;
    for (std::int64_t m = 0; m < 3; ++m) {
      const double s = 1.0 / (1.0 + std::exp(-logits[i][m].item<double>()));
      expected += a[i][m].item<float>() > 0.5f ? std::log(s) : std::log(1 - s);
    }
    EXPECT_NEAR(ll[i].item<double>(), expected, 1e-5);
  }
}

// ---- Text -------------------------------------------------------------------------------

TEST(NetworksText, EncoderIgnoresPadding) {
  torch::manual_seed(4);
  auto enc = make_feature_encoder(text_config());
  const std::vector<std::vector<std::int64_t>> rows = {
      {2, 4, 5, 6, 3}, {2, 6, 3}, {2, 5, 4, 4, 6, 1, 3}};
  const auto short_pad = enc->forward(text_batch(rows, 10));
  const auto long_pad = enc->forward(text_batch(rows, 20));
  EXPECT_TRUE(torch::allclose(short_pad, long_pad, 1e-5, 1e-6));
  // Each row equals the row encoded alone at its exact length (the packed batch is unsorted
  // back into the input order).
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto alone =
        enc->forward(text_batch({rows[i]}, static_cast<std::int64_t>(rows[i].size())));
    EXPECT_TRUE(torch::allclose(alone[0], short_pad[static_cast<std::int64_t>(i)], 1e-5, 1e-6))
        << i;
  }
  // Ids after the length are ignored, and lengths default to the non-pad count.
  auto garbage = text_batch(rows, 10);
  garbage.data.slice(1, 8, 10).fill_(5);
  EXPECT_TRUE(torch::allclose(enc->forward(garbage), short_pad, 1e-5, 1e-6));
  EXPECT_TRUE(
      torch::allclose(enc->forward({text_batch(rows, 10).data, {}}), short_pad, 1e-5, 1e-6));
  // Different sequences give different features.
  EXPECT_FALSE(torch::allclose(short_pad[0], short_pad[1]));
}

TEST(NetworksText, InferenceFastPathEqualsLibtorchGru) {
  // Batches of <= 8 captions without autograd take gru_last_state_inference; with autograd the
  // same encoder runs libtorch's GRU. Both must give the same features, padding included.
  torch::manual_seed(11);
  auto config = text_config();
  config.rnn_hidden = 37;  // not a multiple of the vector width
  auto enc = make_feature_encoder(config);
  const std::vector<std::vector<std::int64_t>> rows = {
      {2, 4, 5, 6, 3}, {2, 6, 3}, {2, 5, 4, 4, 6, 1, 3}};
  const auto batch = text_batch(rows, 10);
  const auto reference = enc->forward(batch).detach();  // grad mode on: libtorch's GRU
  torch::Tensor fast;
  {
    torch::NoGradGuard no_grad;
    fast = enc->forward(batch);
  }
  EXPECT_TRUE(torch::allclose(fast, reference, 1e-5, 1e-6))
      << (fast - reference).abs().max().item<double>();
  // A direct check of one direction against torch::nn::GRU on one sequence.
  torch::nn::GRU gru(torch::nn::GRUOptions(4, 6).batch_first(true));
  const auto x = torch::randn({1, 5, 4});
  const auto expected = std::get<0>(gru->forward(x))[0][2];  // after 3 tokens
  EXPECT_TRUE(torch::allclose(gru_last_state_inference(gru, x[0], 3, false), expected, 1e-5, 1e-6));
  const auto flipped = std::get<0>(gru->forward(x.narrow(1, 0, 3).flip(1)))[0][2];
  EXPECT_TRUE(torch::allclose(gru_last_state_inference(gru, x[0], 3, true), flipped, 1e-5, 1e-6));
}

TEST(NetworksText, DecoderLikelihoodIgnoresPadding) {
  torch::manual_seed(5);
  auto dec = make_decoder(text_config(), 3);
  const auto z = torch::randn({2, 3});
  auto batch = text_batch({{2, 4, 5, 3}, {2, 6, 6, 4, 5, 3}}, 9);
  const auto ll = dec->log_likelihood(z, batch);
  auto changed = text_batch({{2, 4, 5, 3}, {2, 6, 6, 4, 5, 3}}, 9);
  changed.data.slice(1, 6, 9).fill_(4);
  changed.data[0][4] = 5;
  changed.data[0][5] = 1;
  EXPECT_TRUE(torch::allclose(dec->log_likelihood(z, changed), ll));
  // Wider padding changes nothing either.
  EXPECT_TRUE(torch::allclose(
      dec->log_likelihood(z, text_batch({{2, 4, 5, 3}, {2, 6, 6, 4, 5, 3}}, 15)), ll));
  EXPECT_LT(ll[0].item<double>(), 0.0);
}

TEST(NetworksText, DecoderLikelihoodByHand) {
  // h0 = tanh(W z + b); GRU cell (PyTorch gate order r, z, n):
  //   r = s(W_ir x + b_ir + W_hr h + b_hr), u = s(W_iz x + b_iz + W_hz h + b_hz),
  //   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - u) n + u h;
  // x_t = [emb(w_{t-1}), z]; log p(w_t) = log_softmax(W_o h_t + b_o)[w_t].
  torch::manual_seed(6);
  const auto cfg = text_config();
  auto dec = make_decoder(cfg, 3);
  const auto z = torch::randn({1, 3});
  const std::vector<std::int64_t> seq = {2, 5, 4, 6, 3};
  const auto ll = dec->log_likelihood(z, text_batch({seq}, 7)).item<double>();

  const auto zd = z.to(torch::kFloat64)[0];
  const auto emb = param(*dec, "embedding.weight");
  const auto w_ih = param(*dec, "gru.weight_ih_l0"), w_hh = param(*dec, "gru.weight_hh_l0");
  const auto b_ih = param(*dec, "gru.bias_ih_l0"), b_hh = param(*dec, "gru.bias_hh_l0");
  const auto w_o = param(*dec, "out.weight"), b_o = param(*dec, "out.bias");
  const std::int64_t hid = cfg.rnn_hidden;
  auto h = torch::tanh(param(*dec, "init.weight").matmul(zd) + param(*dec, "init.bias"));
  double expected = 0.0;
  for (std::size_t t = 1; t < seq.size(); ++t) {
    const auto x = torch::cat({emb[seq[t - 1]], zd});
    const auto gi = w_ih.matmul(x) + b_ih;
    const auto gh = w_hh.matmul(h) + b_hh;
    const auto r = torch::sigmoid(gi.slice(0, 0, hid) + gh.slice(0, 0, hid));
    const auto u = torch::sigmoid(gi.slice(0, hid, 2 * hid) + gh.slice(0, hid, 2 * hid));
    const auto n = torch::tanh(gi.slice(0, 2 * hid, 3 * hid) + r * gh.slice(0, 2 * hid, 3 * hid));
    h = (1 - u) * n + u * h;
    const auto logits = w_o.matmul(h) + b_o;
    const double lse = std::log(logits.exp().sum().item<double>());
    expected += logits[seq[t]].item<double>() - lse;
  }
  EXPECT_NEAR(ll, expected, 1e-4);
}

TEST(NetworksText, GreedyStopsAtEos) {
  torch::manual_seed(7);
  const auto cfg = text_config();
  auto dec = make_decoder(cfg, 3);
  auto* text = dynamic_cast<TextGruDecoderImpl*>(dec.get());
  ASSERT_NE(text, nullptr);
  const auto z = torch::randn({6, 3});
  expect_well_formed(dec->mean(z), cfg.max_length);

  // EOS dominating the output bias: every row is exactly BOS EOS.
  auto bias = torch::zeros({cfg.vocab_size});
  bias[kEos] = 100.0;
  set_param(*dec, "out.bias", bias);
  const auto ids = text->greedy(z);
  EXPECT_TRUE(torch::equal(ids, torch::tensor({kBos, kEos}).repeat({6, 1}))) << ids;

  // EOS (and the pad id) impossible, pad the best: rows run to max_length without pad or EOS.
  bias.fill_(0.0);
  bias[kPad] = 100.0;
  bias[kEos] = -100.0;
  set_param(*dec, "out.bias", bias);
  const auto long_ids = text->greedy(z);
  EXPECT_EQ(long_ids.sizes(), (std::vector<std::int64_t>{6, cfg.max_length}));
  expect_well_formed(long_ids, cfg.max_length);
  EXPECT_FALSE((long_ids == kEos).any().item<bool>());
}

TEST(NetworksText, BeamWidthOneIsGreedy) {
  torch::manual_seed(8);
  auto dec = make_decoder(text_config(), 3);
  auto* text = dynamic_cast<TextGruDecoderImpl*>(dec.get());
  ASSERT_NE(text, nullptr);
  const auto z = torch::randn({8, 3}) * 2;
  const auto greedy = text->greedy(z);
  const auto beam = text->beam_search(z, 1);
  EXPECT_TRUE(torch::equal(greedy, beam)) << greedy << beam;
  // Some rows must be longer than BOS EOS for the comparison to mean anything.
  EXPECT_GT(greedy.size(1), 3);
}

TEST(NetworksText, BeamSearchScoresAtLeastGreedy) {
  torch::manual_seed(9);
  auto cfg = text_config();
  auto dec = make_decoder(cfg, 3);
  auto* text = dynamic_cast<TextGruDecoderImpl*>(dec.get());
  ASSERT_NE(text, nullptr);
  const auto z = torch::randn({8, 3}) * 2;
  const auto greedy = text->greedy(z);
  const auto beam = text->beam_search(z, 4);
  expect_well_formed(beam, cfg.max_length);
  torch::NoGradGuard guard;
  const auto ll_greedy = dec->log_likelihood(z, {greedy, {}});
  const auto ll_beam = dec->log_likelihood(z, {beam, {}});
  EXPECT_TRUE((ll_beam >= ll_greedy - 1e-5).all().item<bool>()) << ll_beam << ll_greedy;
  EXPECT_GT((ll_beam - ll_greedy).max().item<double>(), 0.0);  // strictly better somewhere
  // A length penalty still gives well-formed sequences; beam wider than the vocabulary works.
  expect_well_formed(text->beam_search(z, 3, 1.0), cfg.max_length);
  expect_well_formed(text->beam_search(z, 12), cfg.max_length);
}

// ---- Convolutions over tokens -----------------------------------------------------------

TEST(NetworksTextConv, TapsByHand) {
  const auto x = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 4, 1});
  const auto rows = [](const torch::Tensor& t) { return t.squeeze(0); };
  // Centred, dilation 1: [x_{t-1}, x_t, x_{t+1}], zeros beyond the ends.
  EXPECT_TRUE(torch::equal(
      rows(text_conv_taps(x, 1, false)),
      torch::tensor({0.f, 1.f, 2.f, 1.f, 2.f, 3.f, 2.f, 3.f, 4.f, 3.f, 4.f, 0.f}).view({4, 3})));
  // Causal, dilation 1: [x_{t-2}, x_{t-1}, x_t].
  EXPECT_TRUE(torch::equal(
      rows(text_conv_taps(x, 1, true)),
      torch::tensor({0.f, 0.f, 1.f, 0.f, 1.f, 2.f, 1.f, 2.f, 3.f, 2.f, 3.f, 4.f}).view({4, 3})));
  // Causal, dilation 2: [x_{t-4}, x_{t-2}, x_t].
  EXPECT_TRUE(torch::equal(
      rows(text_conv_taps(x, 2, true)),
      torch::tensor({0.f, 0.f, 1.f, 0.f, 0.f, 2.f, 0.f, 1.f, 3.f, 0.f, 2.f, 4.f}).view({4, 3})));
  // Centred, dilation 2, two channels: channel blocks stay together.
  const auto two = torch::stack({x.squeeze(2), 10 * x.squeeze(2)}, 2);  // [1,4,2]
  EXPECT_TRUE(torch::equal(text_conv_taps(two, 2, false)[0][1],
                           torch::tensor({0.f, 0.f, 2.f, 20.f, 4.f, 40.f})));
}

TEST(NetworksTextConv, EncoderIgnoresPaddingAndOtherRows) {
  torch::manual_seed(14);
  auto enc = make_feature_encoder(conv_text_config());
  ASSERT_NE(dynamic_cast<TextConvEncoderImpl*>(enc.get()), nullptr);
  const std::vector<std::vector<std::int64_t>> rows = {
      {2, 4, 5, 6, 3}, {2, 6, 3}, {2, 5, 4, 4, 6, 1, 3, 4, 5, 6, 6, 1, 3}};
  const auto short_pad = enc->forward(text_batch(rows, 14));
  EXPECT_TRUE(torch::allclose(enc->forward(text_batch(rows, 30)), short_pad, 1e-5, 1e-6));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto alone =
        enc->forward(text_batch({rows[i]}, static_cast<std::int64_t>(rows[i].size())));
    EXPECT_TRUE(torch::allclose(alone[0], short_pad[static_cast<std::int64_t>(i)], 1e-5, 1e-6))
        << i;
  }
  // Ids after a row's length are ignored.
  auto garbage = text_batch(rows, 14);
  garbage.data.slice(1, 7, 14).slice(0, 0, 2).fill_(5);
  EXPECT_TRUE(torch::allclose(enc->forward(garbage), short_pad, 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(short_pad[0], short_pad[1]));
}

TEST(NetworksTextConv, TeacherForcingEqualsStepByStepDecoding) {
  // The teacher-forced pass (all positions at once) and decoding (one step per token, the conv
  // decoder reading only its last 15 ids) must give the same log-likelihood: the causal
  // convolutions see no future id, and the decoding window loses nothing. Rows longer than the
  // window test the latter; the GRU decoder is held to the same identity.
  torch::manual_seed(15);
  for (const auto* kind : {"conv", "gru"}) {
    auto cfg = text_config();
    cfg.encoder = cfg.decoder = kind;
    cfg.max_length = 40;
    auto dec = make_decoder(cfg, 3);
    auto* text = dynamic_cast<TextDecoderImpl*>(dec.get());
    ASSERT_NE(text, nullptr) << kind;
    std::vector<std::vector<std::int64_t>> rows = {{2, 4, 3}, {2}, {2}};
    for (int t = 0; t < 30; ++t) rows[1].push_back(4 + t % 3);
    for (int t = 0; t < 21; ++t) rows[2].push_back(std::vector<std::int64_t>{1, 4, 5, 6}[t % 4]);
    rows[1].push_back(3);
    rows[2].push_back(3);
    const auto batch = text_batch(rows, 36);
    const auto z = torch::randn({3, 3});
    torch::Tensor teacher;
    {
      torch::NoGradGuard no_grad;
      teacher = dec->log_likelihood(z, batch);
    }
    const auto stepwise = text->log_likelihood_stepwise(z, batch);
    EXPECT_TRUE(torch::allclose(teacher, stepwise, 1e-4, 1e-4)) << kind << teacher << stepwise;
    // Changing the last id of a row changes only its own last term.
    auto changed = text_batch(rows, 36);
    changed.data[1][30] = 1;
    const auto diff = text->log_likelihood_stepwise(z, changed) - stepwise;
    EXPECT_NE(diff[1].item<double>(), 0.0) << kind;
    EXPECT_EQ(diff[0].item<double>(), 0.0) << kind;
  }
}

TEST(NetworksTextConv, GreedyAndBeamSearch) {
  torch::manual_seed(16);
  auto cfg = conv_text_config();
  auto dec = make_decoder(cfg, 3);
  auto* text = dynamic_cast<TextConvDecoderImpl*>(dec.get());
  ASSERT_NE(text, nullptr);
  const auto z = torch::randn({8, 3}) * 2;
  const auto greedy = text->greedy(z);
  expect_well_formed(greedy, cfg.max_length);
  EXPECT_GT(greedy.size(1), 3);
  EXPECT_TRUE(torch::equal(greedy, text->beam_search(z, 1)));
  const auto beam = text->beam_search(z, 4);
  expect_well_formed(beam, cfg.max_length);
  torch::NoGradGuard guard;
  const auto ll_greedy = dec->log_likelihood(z, {greedy, {}});
  const auto ll_beam = dec->log_likelihood(z, {beam, {}});
  EXPECT_TRUE((ll_beam >= ll_greedy - 1e-5).all().item<bool>()) << ll_beam << ll_greedy;
}

// ---- Batched likelihoods and inputs ----------------------------------------------------

TEST(NetworksBatch, RepeatIsKMajor) {
  const auto data = torch::arange(6).view({2, 3});
  const ModalityInput in{data, torch::tensor({3, 1}, torch::kLong)};
  const auto rep = in.repeat(3);
  ASSERT_EQ(rep.data.sizes(), (std::vector<std::int64_t>{6, 3}));
  for (std::int64_t k = 0; k < 3; ++k) {
    for (std::int64_t b = 0; b < 2; ++b) {
      EXPECT_TRUE(torch::equal(rep.data[k * 2 + b], data[b]));
      EXPECT_EQ(rep.lengths[k * 2 + b].item<std::int64_t>(), in.lengths[b].item<std::int64_t>());
    }
  }
  const auto labels = ModalityInput{torch::tensor({4, 7}), {}}.repeat(2);
  EXPECT_TRUE(torch::equal(labels.data, torch::tensor({4, 7, 4, 7})));
  EXPECT_FALSE(labels.lengths.defined());
  const auto moved = in.to(torch::Device(torch::kCPU));
  EXPECT_TRUE(torch::equal(moved.data, in.data));
}

TEST(NetworksBatch, LogLikelihoodKEqualsLoop) {
  torch::manual_seed(10);
  const std::int64_t k = 3, b = 2, d = 3;
  const auto z = torch::randn({k, b, d});

  auto image = make_decoder(image_config(), d);
  const ModalityInput x{torch::rand({b, 1, 2, 2}).round(), {}};
  auto text = make_decoder(text_config(), d);
  const auto w = text_batch({{2, 4, 3}, {2, 5, 6, 4, 3}}, 6);
  auto label = make_decoder(label_config(), d);
  const ModalityInput y{torch::tensor({1, 3}, torch::kLong), {}};

  for (auto& [dec, target] : std::vector<std::pair<std::shared_ptr<DecoderImpl>, ModalityInput>>{
           {image, x}, {text, w}, {label, y}}) {
    const auto batched = dec->log_likelihood_k(z, target);
    ASSERT_EQ(batched.sizes(), (std::vector<std::int64_t>{k, b}));
    for (std::int64_t i = 0; i < k; ++i) {
      EXPECT_TRUE(torch::allclose(batched[i], dec->log_likelihood(z[i], target), 1e-5, 1e-6));
    }
  }
}

// ---- Gradients --------------------------------------------------------------------------

TEST(NetworksGradients, ReachEveryParameter) {
  torch::manual_seed(11);
  const std::int64_t d = 3, b = 6;
  const auto z = torch::randn({b, d});
  struct Case {
    ModalityConfig config;
    ModalityInput input;
  };
  auto conv = image_config({3, 16, 16}, "conv", "conv", "gaussian");
  std::vector<Case> cases = {
      {image_config(), {torch::rand({b, 1, 2, 2}).round(), {}}},
      {image_config({1, 2, 2}, "mlp", "mlp", "laplace"), {torch::rand({b, 1, 2, 2}), {}}},
      {conv, {torch::rand({b, 3, 16, 16}), {}}},
      {text_config(),
       text_batch({{2, 4, 3}, {2, 5, 6, 4, 3}, {2, 1, 3}, {2, 6, 6, 3}, {2, 3}, {2, 4, 5, 3}}, 7)},
      {conv_text_config(),
       text_batch({{2, 4, 3}, {2, 5, 6, 4, 3}, {2, 1, 3}, {2, 6, 6, 3}, {2, 3}, {2, 4, 5, 3}}, 7)},
      {label_config(), {torch::tensor({0, 1, 2, 3, 1, 2}, torch::kLong), {}}},
      {attributes_config(), {torch::rand({b, 3}).round(), {}}},
  };
  for (auto& c : cases) {
    const auto what = c.config.name + "/" + c.config.encoder + "/" + c.config.likelihood;
    auto enc = make_feature_encoder(c.config);
    enc->forward(c.input).sum().backward();
    expect_all_grads(*enc, what + " encoder");
    auto dec = make_decoder(c.config, d);
    dec->log_likelihood(z, c.input).sum().backward();
    expect_all_grads(*dec, what + " decoder");
  }
}

// ---- Factory and input errors ----------------------------------------------------------

TEST(NetworksFactory, ErrorsNameTheModality) {
  auto cfg = image_config();
  cfg.encoder = "cnn";
  EXPECT_EQ(input_error_message([&] { make_feature_encoder(cfg); }),
            "modality 'image': unknown encoder 'cnn' (expected mlp or conv)");

  cfg = image_config();
  cfg.decoder = "deconv";
  EXPECT_EQ(input_error_message([&] { make_decoder(cfg, 4); }),
            "modality 'image': unknown decoder 'deconv' (expected mlp or conv)");

  cfg = image_config();
  cfg.likelihood = "categorical";
  EXPECT_NE(input_error_message([&] {
              make_decoder(cfg, 4);
            }).find("modality 'image': unknown likelihood 'categorical'"),
            std::string::npos);

  cfg = image_config();
  cfg.shape.clear();
  EXPECT_NE(input_error_message([&] { make_feature_encoder(cfg); }).find("modality 'image'"),
            std::string::npos);
  EXPECT_NE(input_error_message([&] { make_decoder(cfg, 4); }).find("shape"), std::string::npos);

  cfg = image_config({1, 30, 30}, "conv", "conv");
  EXPECT_NE(input_error_message([&] { make_feature_encoder(cfg); }).find("divisible by 4"),
            std::string::npos);
  EXPECT_NE(input_error_message([&] { make_decoder(cfg, 4); }).find("modality 'image'"),
            std::string::npos);

  // Kinds are parsed once, where the configuration names them.
  EXPECT_EQ(input_error_message([&] { parse_modality_kind("video", "modality 'photo'"); }),
            "modality 'photo': unknown kind 'video' (expected image, text, label or attributes)");
  EXPECT_EQ(parse_modality_kind("attributes", "x"), ModalityKind::kAttributes);
  EXPECT_STREQ(to_string(ModalityKind::kText), "text");

  auto text = text_config();
  text.vocab_size = 4;
  EXPECT_NE(input_error_message([&] { make_feature_encoder(text); }).find("modality 'text'"),
            std::string::npos);
  EXPECT_NE(input_error_message([&] { make_decoder(text, 4); }).find("vocab_size"),
            std::string::npos);
  text = text_config();
  text.likelihood = "bernoulli";
  EXPECT_NE(input_error_message([&] { make_decoder(text, 4); }).find("modality 'text'"),
            std::string::npos);
  text = text_config();
  text.encoder = "lstm";
  EXPECT_EQ(input_error_message([&] { make_feature_encoder(text); }),
            "modality 'text': unknown encoder 'lstm' (expected gru or conv)");
  text = text_config();
  text.decoder = "lstm";
  EXPECT_EQ(input_error_message([&] { make_decoder(text, 4); }),
            "modality 'text': unknown decoder 'lstm' (expected gru or conv)");

  auto label = label_config();
  label.classes = 0;
  EXPECT_NE(input_error_message([&] { make_feature_encoder(label); }).find("modality 'label'"),
            std::string::npos);
  EXPECT_NE(input_error_message([&] { make_decoder(label, 4); }).find("classes"),
            std::string::npos);
  label = label_config();
  label.likelihood = "bernoulli";
  EXPECT_NE(input_error_message([&] { make_decoder(label, 4); }).find("modality 'label'"),
            std::string::npos);

  auto attrs = attributes_config();
  attrs.classes = -1;
  EXPECT_NE(input_error_message([&] { make_decoder(attrs, 4); }).find("modality 'attributes'"),
            std::string::npos);
  attrs = attributes_config();
  attrs.likelihood = "categorical";
  EXPECT_NE(input_error_message([&] { make_decoder(attrs, 4); }).find("modality 'attributes'"),
            std::string::npos);

  EXPECT_NE(input_error_message([&] { make_decoder(label_config(), 0); }).find("latent"),
            std::string::npos);
}

TEST(NetworksFactory, EmptyNamesPickTheKindsDefaults) {
  auto cfg = image_config({1, 2, 2}, "", "", "");
  EXPECT_NE(dynamic_cast<ImageMlpEncoderImpl*>(make_feature_encoder(cfg).get()), nullptr);
  auto dec = make_decoder(cfg, 2);
  ASSERT_NE(dynamic_cast<ImageDecoderImpl*>(dec.get()), nullptr);
  EXPECT_EQ(dynamic_cast<ImageDecoderImpl*>(dec.get())->likelihood(), ImageLikelihood::kBernoulli);
  auto text = text_config();
  text.encoder = text.decoder = text.likelihood = "";
  EXPECT_NE(dynamic_cast<TextGruDecoderImpl*>(make_decoder(text, 2).get()), nullptr);
}

TEST(NetworksFactory, BadInputsAreInputErrors) {
  torch::manual_seed(12);
  auto enc = make_feature_encoder(image_config());
  EXPECT_NE(input_error_message([&] {
              enc->forward({torch::rand({2, 1, 3, 3}), {}});
            }).find("modality 'image': expected images [B,1,2,2]"),
            std::string::npos);
  auto label = make_decoder(label_config(), 2);
  EXPECT_NE(
      input_error_message([&] {
        label->log_likelihood(torch::randn({2, 2}), {torch::tensor({0, 4}, torch::kLong), {}});
      }).find("class indices must lie in [0, 4)"),
      std::string::npos);
  auto text = make_feature_encoder(text_config());
  EXPECT_NE(input_error_message([&] {
              text->forward({torch::tensor({{2, 9, 3}}, torch::kLong), {}});
            }).find("token ids"),
            std::string::npos);
  EXPECT_NE(
      input_error_message([&] {
        text->forward({torch::tensor({{2, 4, 3}}, torch::kLong), torch::tensor({5}, torch::kLong)});
      }).find("lengths"),
      std::string::npos);
  auto dec = make_decoder(image_config(), 2);
  EXPECT_NE(input_error_message([&] {
              dec->log_likelihood(torch::randn({3, 2}), {torch::rand({2, 1, 2, 2}), {}});
            }).find("rows"),
            std::string::npos);
}
