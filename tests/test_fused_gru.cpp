// The fused GRU (lib/models/fused_gru.h) against libtorch's GRU: outputs, last states and every
// gradient, on batches with mixed lengths (0 and the full length included), and the text
// encoder and decoder computing the same values and gradients with the fused path on and off.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "mmkt/models/fused_gru.h"
#include "mmkt/models/modality.h"
#include "mmkt/models/networks.h"

using namespace mmkt::models;

namespace {

// Switches the fused path for one scope.
struct FusedScope {
  bool before;
  explicit FusedScope(bool on) : before(fused_gru_enabled()) { set_fused_gru_enabled(on); }
  ~FusedScope() { set_fused_gru_enabled(before); }
};

struct Run {
  torch::Tensor output, last, d_x, d_h0;
  std::vector<torch::Tensor> d_params;
};

// Loss = sum(output * a) + sum(last * b) with fixed random a, b: every output position and the
// last states get distinct upstream gradients.
Run run_gru(torch::nn::GRU& gru, const torch::Tensor& x0, const torch::Tensor& h00,
            const torch::Tensor& lengths, bool fused) {
  FusedScope scope(fused);
  for (auto& p : gru->parameters()) p.mutable_grad() = torch::Tensor();
  auto x = x0.clone().requires_grad_(true);
  auto h0 = h00.clone().requires_grad_(true);
  const auto seq = gru_sequence(gru, x, lengths, h0);
  torch::manual_seed(7);
  // torch::randn, not randn_like: the latter follows the strides, which differ between paths.
  const auto a = torch::randn(seq.output.sizes()), b = torch::randn(seq.last.sizes());
  ((seq.output * a).sum() + (seq.last * b).sum()).backward();
  Run run{seq.output.detach(), seq.last.detach(), x.grad().clone(), h0.grad().clone(), {}};
  for (auto& p : gru->parameters()) run.d_params.push_back(p.grad().clone());
  return run;
}

void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double err = (got - want).abs().max().item<double>();
  EXPECT_LT(err, 1e-5) << what << ": max abs difference " << err;
}

}  // namespace

TEST(FusedGru, OutputsAndGradientsEqualLibtorchGru) {
  torch::manual_seed(0);
  torch::nn::GRU gru(torch::nn::GRUOptions(5, 7).batch_first(true));
  const std::int64_t batch = 6, steps = 9;
  const auto x = torch::randn({batch, steps, 5});
  const auto h0 = torch::randn({batch, 7}) * 0.5;
  // Unsorted, with a tie, a zero length and the full length.
  const auto lengths = torch::tensor({3, 9, 0, 5, 3, 1}, torch::kLong);
  const auto fused = run_gru(gru, x, h0, lengths, true);
  const auto reference = run_gru(gru, x, h0, lengths, false);
  expect_close(fused.output, reference.output, "output");
  expect_close(fused.last, reference.last, "last");
  expect_close(fused.d_x, reference.d_x, "dL/dx");
  expect_close(fused.d_h0, reference.d_h0, "dL/dh0");
  ASSERT_EQ(fused.d_params.size(), 4u);
  for (std::size_t i = 0; i < fused.d_params.size(); ++i) {
    expect_close(fused.d_params[i], reference.d_params[i],
                 "parameter gradient " + std::to_string(i));
  }
  // Hand-checkable facts: a zero-length row keeps h0 and gets all of dL/dlast back as dL/dh0;
  // positions past a length are 0 and pass no gradient to x.
  EXPECT_TRUE(torch::equal(fused.last[2], h0[2]));
  EXPECT_EQ(fused.output[0].narrow(0, 3, 6).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(fused.d_x[0].narrow(0, 3, 6).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(fused.d_x[2].abs().sum().item<float>(), 0.0f);
  // And the full-length row equals libtorch's GRU run plainly over it.
  const auto plain = std::get<0>(gru->forward(x.narrow(0, 1, 1), h0.narrow(0, 1, 1).unsqueeze(0)));
  expect_close(fused.output[1], plain[0].detach(), "full row vs libtorch");
}

TEST(FusedGru, SaturatedGatesStayFinite) {
  // Large pre-activations reach the clamps of the exponential: results stay finite and match.
  torch::manual_seed(1);
  torch::nn::GRU gru(torch::nn::GRUOptions(3, 4).batch_first(true));
  const auto x = torch::randn({2, 4, 3}) * 200.0;
  const auto h0 = torch::zeros({2, 4});
  const auto lengths = torch::tensor({4, 2}, torch::kLong);
  const auto fused = run_gru(gru, x, h0, lengths, true);
  const auto reference = run_gru(gru, x, h0, lengths, false);
  EXPECT_TRUE(torch::isfinite(fused.output).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(fused.d_x).all().item<bool>());
  expect_close(fused.output, reference.output, "saturated output");
  expect_close(fused.last, reference.last, "saturated last");
}

TEST(FusedGru, TextNetworksMatchTheUnfusedPath) {
  ModalityConfig c;
  c.name = "text";
  c.kind = ModalityKind::kText;
  c.encoder = c.decoder = "gru";
  c.likelihood = "categorical";
  c.hidden = {8};
  c.vocab_size = 11;
  c.embedding_dim = 4;
  c.rnn_hidden = 6;
  c.max_length = 8;
  torch::manual_seed(3);
  auto enc = make_feature_encoder(c);
  auto dec = make_decoder(c, 3);
  // BOS=2 ... EOS=3, right-padded with 0; lengths 6, 3, 2 and 1 (BOS only: no prediction).
  const auto ids = torch::tensor(
      {{2, 5, 6, 7, 8, 3}, {2, 9, 3, 0, 0, 0}, {2, 3, 0, 0, 0, 0}, {2, 0, 0, 0, 0, 0}},
      torch::kLong);
  ModalityInput input{ids, {}};
  const auto z0 = torch::randn({4, 3});
  auto evaluate = [&](bool fused) {
    FusedScope scope(fused);
    enc->zero_grad();
    dec->zero_grad();
    auto z = z0.clone().requires_grad_(true);
    const auto features = enc->forward(input);
    const auto ll = dec->log_likelihood(z, input);
    (features.sum() + ll.sum()).backward();
    std::vector<torch::Tensor> grads = {z.grad().clone()};
    for (auto& p : enc->parameters())
      grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    for (auto& p : dec->parameters())
      grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    return std::make_tuple(features.detach(), ll.detach(), grads);
  };
  const auto [f1, ll1, g1] = evaluate(true);
  const auto [f0, ll0, g0] = evaluate(false);
  expect_close(f1, f0, "encoder features");
  expect_close(ll1, ll0, "decoder log-likelihood");
  EXPECT_EQ(ll1[3].item<float>(), 0.0f);  // nothing to predict after BOS alone
  ASSERT_EQ(g1.size(), g0.size());
  for (std::size_t i = 0; i < g1.size(); ++i)
    expect_close(g1[i], g0[i], "gradient " + std::to_string(i));
}
