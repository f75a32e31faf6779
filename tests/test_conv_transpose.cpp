// The transposed convolution on the ordinary convolution's kernels (lib/models/conv_transpose.h)
// against torch::nn::ConvTranspose2d: outputs and the gradients of input, weight and bias, for
// the decoders' k4 s2 p1 layers and other strides, paddings and kernel sizes; a hand-worked 1x1
// case; and the conv image decoder computing the same values and gradients on either path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "mmkt/models/conv_transpose.h"
#include "mmkt/models/modality.h"
#include "mmkt/models/networks.h"

using namespace mmkt::models;

namespace {

struct FastScope {
  bool before;
  explicit FastScope(bool on) : before(fast_conv_transpose_enabled()) {
    set_fast_conv_transpose_enabled(on);
  }
  ~FastScope() { set_fast_conv_transpose_enabled(before); }
};

struct Result {
  torch::Tensor y, d_x, d_w, d_b;
};

// Loss = sum(y * a) with a fixed random a: every output gets its own upstream gradient.
Result run(torch::nn::ConvTranspose2d& module, const torch::Tensor& x0, bool fast) {
  FastScope scope(fast);
  module->weight.mutable_grad() = torch::Tensor();
  if (module->bias.defined()) module->bias.mutable_grad() = torch::Tensor();
  auto x = x0.clone().requires_grad_(true);
  const auto y = conv_transpose2d(module, x);
  torch::manual_seed(11);
  const auto a = torch::randn(y.sizes());
  (y * a).sum().backward();
  return {y.detach(), x.grad().clone(), module->weight.grad().clone(),
          module->bias.defined() ? module->bias.grad().clone() : torch::Tensor()};
}

void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what,
                  double tol = 1e-5) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = std::max(1.0, want.abs().max().item<double>());
  const double err = (got - want).abs().max().item<double>() / scale;
  EXPECT_LT(err, tol) << what << ": max relative difference " << err;
}

}  // namespace

TEST(ConvTranspose, EqualsLibtorchForwardAndGradients) {
  struct Case {
    std::int64_t in, out, kernel, stride, padding, side;
    bool bias;
  };
  const std::vector<Case> cases = {
      {16, 8, 4, 2, 1, 8, true},   // the decoders' layer
      {8, 3, 4, 2, 1, 16, true},   // to RGB
      {5, 7, 3, 1, 1, 6, true},    // stride 1 ("same")
      {4, 6, 5, 3, 2, 5, false},   // stride 3, no bias
      {3, 2, 2, 2, 0, 4, true},    // non-overlapping taps
  };
  for (const auto& c : cases) {
    const std::string what = "in " + std::to_string(c.in) + " out " + std::to_string(c.out) +
                             " k " + std::to_string(c.kernel) + " s " + std::to_string(c.stride) +
                             " p " + std::to_string(c.padding);
    torch::manual_seed(3);
    torch::nn::ConvTranspose2d module(torch::nn::ConvTranspose2dOptions(c.in, c.out, c.kernel)
                                          .stride(c.stride)
                                          .padding(c.padding)
                                          .bias(c.bias));
    const auto x = torch::randn({3, c.in, c.side, c.side + 1});  // not square on purpose
    const auto fast = run(module, x, true);
    const auto ref = run(module, x, false);
    expect_close(fast.y, ref.y, what + ": output");
    expect_close(fast.d_x, ref.d_x, what + ": input gradient");
    expect_close(fast.d_w, ref.d_w, what + ": weight gradient");
    if (c.bias) expect_close(fast.d_b, ref.d_b, what + ": bias gradient");
  }
}

// By hand: one input pixel x at (0,0), a 2x2 kernel, stride 2, padding 0: the output is x times
// the kernel in its 2x2 corner, plus the bias everywhere; the weight gradient of sum(y) is x at
// each tap, and the input gradient is the sum of the kernel's taps.
TEST(ConvTranspose, HandWorkedSinglePixel) {
  torch::nn::ConvTranspose2d module(torch::nn::ConvTranspose2dOptions(1, 1, 2).stride(2));
  {
    torch::NoGradGuard no_grad;
    module->weight.copy_(torch::tensor({1.0F, 2.0F, 3.0F, 4.0F}).view({1, 1, 2, 2}));
    module->bias.fill_(0.5F);
  }
  auto x = torch::full({1, 1, 1, 1}, 2.0F).requires_grad_(true);
  const auto y = conv_transpose2d(module, x);
  ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{1, 1, 2, 2}));
  const auto want = torch::tensor({2.5F, 4.5F, 6.5F, 8.5F}).view({1, 1, 2, 2});
  EXPECT_TRUE(torch::allclose(y, want)) << y;
  y.sum().backward();
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 10.0F);
  EXPECT_TRUE(torch::allclose(module->weight.grad(), torch::full({1, 1, 2, 2}, 2.0F)));
  EXPECT_FLOAT_EQ(module->bias.grad().item<float>(), 4.0F);
}

TEST(ConvTranspose, ImageDecoderSameOnBothPaths) {
  ModalityConfig cfg;
  cfg.name = "image";
  cfg.kind = ModalityKind::kImage;
  cfg.shape = {3, 32, 32};
  cfg.encoder = cfg.decoder = "conv";
  cfg.hidden = {64};
  cfg.channels = 8;
  torch::manual_seed(5);
  auto decoder = std::make_shared<ImageConvDecoderImpl>(cfg, 6, ImageLikelihood::kBernoulli);
  const auto z = torch::randn({4, 6});
  auto grads = [&](bool fast) {
    FastScope scope(fast);
    decoder->zero_grad();
    const auto y = decoder->output(z);
    torch::manual_seed(13);
    (y * torch::randn(y.sizes())).sum().backward();
    std::vector<torch::Tensor> out = {y.detach()};
    for (const auto& p : decoder->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  const auto fast = grads(true), ref = grads(false);
  ASSERT_EQ(fast.size(), ref.size());
  for (std::size_t i = 0; i < fast.size(); ++i) {
    expect_close(fast[i], ref[i], i == 0 ? "decoder output" : "parameter " + std::to_string(i));
  }
}
