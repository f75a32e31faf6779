// Antidistillation by function-preserving growth (distill/net2net.h): the widening on a worked
// example, and grown MLP (wider and deeper), conv and GRU students computing what the trained
// small ones compute on real shapes images and captions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "mmkt/core/error.h"
#include "mmkt/data/shapes.h"
#include "mmkt/distill/net2net.h"
#include "mmkt/distill/student.h"
#include "mmkt/text/tokenizer.h"
#include "tiny_runs.h"

using namespace mmkt;
using namespace mmkt::distill;

namespace {

data::ShapesDataset shapes(std::int64_t n) { return testing_support::shapes_items(n, 5); }

models::ModalityConfig image_modality() {
  models::ModalityConfig m;
  m.name = "image";
  m.kind = models::ModalityKind::kImage;
  m.likelihood = "bernoulli";
  m.shape = {3, 64, 64};
  return m;
}

// The small student a little trained, so that its weights are not just their initialisation.
Student trained(const StudentSpec& spec, const models::ModalityInput& input) {
  torch::manual_seed(3);
  Student s(spec);
  torch::optim::Adam adam(s->parameters(), torch::optim::AdamOptions(1e-2));
  for (int i = 0; i < 5; ++i) {
    adam.zero_grad();
    const auto q = s->encode(input);
    (q.mu.pow(2).sum() + s->logits(q.mu).logsumexp(1).sum() + q.logvar.exp().sum()).backward();
    adam.step();
  }
  return s;
}

void expect_same_function(Student& small, Student& large, const models::ModalityInput& input) {
  torch::NoGradGuard no_grad;
  const auto a = small->encode(input), b = large->encode(input);
  EXPECT_TRUE(torch::allclose(a.mu, b.mu, 1e-5, 1e-5)) << (a.mu - b.mu).abs().max();
  EXPECT_TRUE(torch::allclose(a.logvar, b.logvar, 1e-5, 1e-5)) << (a.logvar - b.logvar).abs().max();
  EXPECT_TRUE(torch::allclose(small->logits(a.mu), large->logits(b.mu), 1e-5, 1e-5));
  EXPECT_GT(large->parameter_count(), small->parameter_count());
}

}  // namespace

TEST(Net2Net, WideningOfATwoLayerNetByHand) {
  // x -> h = relu(W1 x + b1) (2 units) -> y = W2 h; unit 0 gets one copy (unit 2) with shares
  // s and 1 - s: W1' rows [w0, w1, w0], b1' = [b0, b1, b0], W2' columns [s v0, v1, (1-s) v0].
  Widening w;
  w.from = 2;
  w.to = 3;
  w.source = {0, 1, 0};
  w.share = torch::tensor({0.3f, 1.0f, 0.7f});
  const auto w1 = torch::tensor({{1.f, -2.f}, {0.5f, 3.f}});
  const auto b1 = torch::tensor({0.1f, -0.2f});
  const auto w2 = torch::tensor({{2.f, -1.f}});
  const auto wide1 = widen_units(w1, 0, w);
  const auto wide_b1 = widen_units(b1, 0, w);
  const auto wide2 = widen_inputs(w2, 1, w);
  EXPECT_TRUE(torch::equal(wide1, torch::tensor({{1.f, -2.f}, {0.5f, 3.f}, {1.f, -2.f}})));
  EXPECT_TRUE(torch::allclose(wide2, torch::tensor({{0.6f, -1.f, 1.4f}})));
  const auto x = torch::tensor({0.7f, 0.4f});
  const auto y = torch::matmul(w2, torch::relu(torch::matmul(w1, x) + b1));
  const auto y_wide = torch::matmul(wide2, torch::relu(torch::matmul(wide1, x) + wide_b1));
  EXPECT_TRUE(torch::allclose(y, y_wide, 1e-6, 1e-6)) << y << y_wide;

  // Drawn widenings: copies first, shares of one unit's copies sum to 1.
  auto g = at::detail::createCPUGenerator(7);
  const auto d = make_widening(5, 12, g);
  ASSERT_EQ(d.source.size(), 12u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(d.source[static_cast<std::size_t>(i)], i);
  auto total = torch::zeros({5});
  total.index_add_(0, torch::tensor(d.source, torch::kLong), d.share);
  EXPECT_TRUE(torch::allclose(total, torch::ones({5}), 1e-6, 1e-6)) << total;
  EXPECT_TRUE((d.share > 0).all().item<bool>());
}

TEST(Net2Net, GrownMlpWiderAndDeeperComputesTheSame) {
  const auto data = shapes(16);
  const models::ModalityInput x{data.images(data::index_range(16)), {}};
  const auto small_spec = parse_student_spec("mlp:24", image_modality(), 8, 5);
  auto small = trained(small_spec, x);
  auto large = grow_student(small, parse_student_spec("mlp:64,40,32", image_modality(), 8, 5), 1);
  expect_same_function(small, large, x);
  // The copies start equal but learn apart: after one step, a copy's incoming weights differ
  // from its original's (the shares differ, so do their gradients).
  const auto before = large->named_parameters()["encoder.layers.0.weight"].detach().clone();
  torch::optim::SGD sgd(large->parameters(), 0.1);
  large->encode(x).mu.sum().backward();
  sgd.step();
  const auto after = large->named_parameters()["encoder.layers.0.weight"].detach();
  EXPECT_TRUE(torch::equal(before[0], before[0]));
  bool some_copy_moved_apart = false;
  for (std::int64_t j = 24; j < 64; ++j) {
    for (std::int64_t u = 0; u < 24; ++u) {
      if (torch::equal(before[j], before[u]) && !torch::allclose(after[j], after[u])) {
        some_copy_moved_apart = true;
      }
    }
  }
  EXPECT_TRUE(some_copy_moved_apart);
}

TEST(Net2Net, GrownConvComputesTheSame) {
  const auto data = shapes(8);
  const models::ModalityInput x{data.images(data::index_range(8)), {}};
  auto small = trained(parse_student_spec("conv:4:16", image_modality(), 8, 5), x);
  auto large = grow_student(small, parse_student_spec("conv:7:48", image_modality(), 8, 5), 2);
  expect_same_function(small, large, x);
}

TEST(Net2Net, GrownGruComputesTheSame) {
  const auto data = shapes(64);
  const auto captions = data.captions(data::index_range(64));
  text::TokenizerTrainOptions to;
  to.vocab_size = 60;
  to.extra["hard_vocab_limit"] = "false";
  const auto tokenizer = text::Tokenizer::train(captions, to);
  std::vector<std::vector<std::int64_t>> rows;
  std::int64_t longest = 0;
  for (int i = 0; i < 12; ++i) {
    rows.push_back(tokenizer.encode_with_bos_eos(captions[static_cast<std::size_t>(i)]));
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(rows.back().size()));
  }
  auto ids = torch::zeros({12, longest}, torch::kLong);
  for (int i = 0; i < 12; ++i) {
    for (std::size_t t = 0; t < rows[static_cast<std::size_t>(i)].size(); ++t)
      ids[i][static_cast<std::int64_t>(t)] = rows[static_cast<std::size_t>(i)][t];
  }
  const models::ModalityInput x{ids, {}};
  models::ModalityConfig text;
  text.name = "text";
  text.kind = models::ModalityKind::kText;
  text.likelihood = "categorical";
  text.vocab_size = tokenizer.vocab_size();
  auto small = trained(parse_student_spec("gru:8:12:16", text, 6, 5), x);
  auto large = grow_student(small, parse_student_spec("gru:20:37:40", text, 6, 5), 3);
  expect_same_function(small, large, x);
  // Also on the inference fast path of small batches without autograd.
  torch::NoGradGuard no_grad;
  const models::ModalityInput few{ids.slice(0, 0, 3), {}};
  EXPECT_TRUE(torch::allclose(small->encode(few).mu, large->encode(few).mu, 1e-5, 1e-5));
}

TEST(Net2Net, WhatCannotGrowIsRefused) {
  const auto data = shapes(4);
  const models::ModalityInput x{data.images(data::index_range(4)), {}};
  auto small = trained(parse_student_spec("mlp:24,24", image_modality(), 8, 5), x);
  for (const auto* spec : {"mlp:16,24", "mlp:32", "conv:4:32"}) {
    EXPECT_THROW(grow_student(small, parse_student_spec(spec, image_modality(), 8, 5), 1),
                 InputError)
        << spec;
  }
  EXPECT_THROW(grow_student(small, parse_student_spec("mlp:32,32", image_modality(), 9, 5), 1),
               InputError);
}
